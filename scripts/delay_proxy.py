"""A loopback HTTP proxy that adds a fixed delay before every request it
forwards: a local endpoint (moto) made to answer like a remote one, for the
online validation benchmark (scripts/bench.sh). Requests and responses pass
through unchanged (SigV4 signatures included: the client signs for the
proxy's host, which moto does not check); one thread per connection, so
concurrent clients wait concurrently, as they would on a network.

With `--replay`, the answer to each GET or HEAD of a path (query
included) is kept and served again, with the delay, without asking the
target: moto handles one request at a time (a 24-hour validation's 264
requests take ~0.9 s of its CPU, which was the whole run's time at any
concurrency), so a replayed answer stands for a store that, like S3,
serves many requests at once. Only for an unchanging bucket; the first
pass fills it.

usage: python3 scripts/delay_proxy.py PORT TARGET_URL DELAY_MS [--replay]
"""
import http.client
import http.server
import socket
import sys
import threading
import time
import urllib.parse

PORT, TARGET, DELAY = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), float(sys.argv[3]) / 1000
REPLAY = "--replay" in sys.argv[4:]
# (method, path) -> (status, reason, headers, payload), when replaying.
KEPT = {}
KEPT_LOCK = threading.Lock()

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own, not forwarded.
HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


def no_delay(sock):
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
    # algorithm holds the second until the peer's delayed ACK (~40 ms),
    # which would add a second, unintended delay to every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        no_delay(self.connection)

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        time.sleep(DELAY)
        key = (self.command, self.path)
        kept = REPLAY and self.command in ("GET", "HEAD")
        with KEPT_LOCK:
            answer = KEPT.get(key) if kept else None
        if answer is None:
            upstream = http.client.HTTPConnection(TARGET.hostname, TARGET.port, timeout=60)
            upstream.connect()
            no_delay(upstream.sock)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            answer = (response.status, response.reason, response.getheaders(), response.read())
            upstream.close()
            if kept and answer[0] == 200:
                with KEPT_LOCK:
                    KEPT[key] = answer
        status, reason, headers, payload = answer
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
