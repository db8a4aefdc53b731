"""A loopback stand-in for a function URL's IAM auth (scripts/local-run.sh).

Checks each request's SigV4 signature as AWS does for a Lambda function URL
with AuthType AWS_IAM: the credential scope must name service `lambda` and
the function's region, X-Amz-Date must be within 5 minutes of now, host and
every x-amz-* header must be signed, the access key must be the test
credentials' and the signature must verify with their secret, recomputed
here from the SigV4 specification (not with botocore's signer, which made
it). A request that passes is forwarded to
the local function URL; one that fails is answered 403 and never reaches it.

Usage: sigv4_proxy.py --upstream URL --region R --port-file FILE (the chosen
port is written there). Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Each decision is logged on stderr.
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

SERVICE = "lambda"
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$"
)


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")
    return "&".join("%s=%s" % (enc(k), enc(v)) for k, v in sorted(pairs))


MAX_SKEW = datetime.timedelta(minutes=5)


def check(method, target, headers, body, access_key, secret, expected_region, now):
    """None when the request is signed for `lambda` in `expected_region` by
    the test credentials, else why not."""
    m = AUTH.match(headers.get("authorization", ""))
    if not m:
        return "no SigV4 Authorization header"
    key_id, date, region, service, signed, signature = m.groups()
    if service != SERVICE:
        return "credential scope names service %r, not %r" % (service, SERVICE)
    if region != expected_region:
        return "credential scope names region %r, not %r" % (region, expected_region)
    if key_id != access_key:
        return "unknown access key %r" % key_id
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "X-Amz-Date %r is not the scope's date %s" % (amz_date, date)
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "X-Amz-Date %r is not a SigV4 time" % amz_date
    if abs(now - signed_at) > MAX_SKEW:
        return "X-Amz-Date %s is more than 5 minutes from now" % amz_date
    names = signed.split(";")
    if "host" not in names or names != sorted(names):
        return "SignedHeaders must be sorted and include host"
    unsigned = [h for h in headers if h.startswith("x-amz-") and h not in names]
    if unsigned:
        return "x-amz-* headers not signed: %s" % ", ".join(sorted(unsigned))
    path, _, query = target.partition("?")
    canonical_headers = "".join(
        "%s:%s\n" % (n, " ".join(headers.get(n, "").split())) for n in names
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path or "/", safe="/~"),
            canonical_query(query),
            canonical_headers,
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the signature does not verify with the test credentials"
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--upstream", required=True)
    p.add_argument("--region", required=True, help="the function's region")
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    access_key = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self):
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > 10 * 1024 * 1024:
                return self._answer(400, b'{"Message": "bad Content-Length"}', "application/json")
            body = self.rfile.read(int(length))
            headers = {}
            for k, v in self.headers.items():  # repeated headers: comma-joined
                k = k.lower()
                headers[k] = headers[k] + "," + v if k in headers else v
            now = datetime.datetime.now(datetime.timezone.utc)
            why = check(self.command, self.path, headers, body, access_key, secret, args.region, now)
            op = headers.get("x-amz-target", "").rsplit(".", 1)[-1]
            if why:
                print("sigv4-proxy: refused %s: %s" % (op, why), file=sys.stderr, flush=True)
                msg = json.dumps({"Message": "Forbidden: " + why}).encode()
                return self._answer(403, msg, "application/json")
            print("sigv4-proxy: verified %s (scope %s)" % (op, SERVICE), file=sys.stderr, flush=True)
            forward = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            req = urllib.request.Request(args.upstream, data=body, headers=forward, method=self.command)
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    status, out, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                status, out, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
            self._answer(status, out, ctype or "application/json")

        do_POST = _handle
        do_GET = _handle

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
