"""The console with 10,000 events paged in (docs/console.md): how long each
"Load more" takes in Debian's headless Chromium as the table grows, and
what the page holds at the end.

The API is a stand-in on 127.0.0.1 serving LookupEvents pages of 10,000
synthetic ~1.6 KB records (what is measured is the console and the
browser, not a lookup; the lookup's own latency is its own benchmark row).
`trailkeep console` calls it signed, as it calls a stack's API.

usage: bench_console.py --trailkeep PATH [--events 10000] [--auto-layout] [--out FILE]
Prints one JSON object (and writes it to --out). --auto-layout measures the
events table with its CSS before (automatic layout, no widths, words not
broken; set through the CSSOM on the first page): the baseline of the
product's fixed layout with wrapping cells.
"""
import argparse
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(n):
    """n LookupEvents events, newest first, each with a ~1.6 KB record."""
    out = []
    t0 = 1_796_000_000
    for i in range(n):
        eid = f"00000000-0000-4000-8000-{i:012d}"
        record = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:session-{i % 40}",
                             "arn": f"arn:aws:sts::111122223333:assumed-role/role-{i % 8}/session-{i % 40}",
                             "accountId": "111122223333", "accessKeyId": f"ASIAEXAMPLE{i % 97:05d}",
                             "sessionContext": {"attributes": {"creationDate": "2026-12-01T00:00:00Z", "mfaAuthenticated": "false"},
                                                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                                  "arn": f"arn:aws:iam::111122223333:role/role-{i % 8}",
                                                                  "accountId": "111122223333", "userName": f"role-{i % 8}"}}},
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 - i * 30)),
            "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "us-east-1",
            "sourceIPAddress": f"198.51.100.{i % 250}", "userAgent": "aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux",
            "requestParameters": {"instancesSet": {"items": [{"instanceId": f"i-{i:017x}"}]}, "filterSet": {}},
            "responseElements": None, "requestID": eid, "eventID": eid, "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": "111122223333", "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": "ec2.us-east-1.amazonaws.com"},
        }
        out.append({
            "EventId": eid, "EventName": "DescribeInstances", "ReadOnly": "true",
            "AccessKeyId": record["userIdentity"]["accessKeyId"], "EventTime": float(t0 - i * 30),
            "EventSource": "ec2.amazonaws.com", "Username": f"session-{i % 40}",
            "Resources": [{"ResourceType": "AWS::EC2::Instance", "ResourceName": f"i-{i:017x}"}],
            "CloudTrailEvent": json.dumps(record),
        })
    return out


def serve_api(all_events):
    class Api(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            start = int(body.get("NextToken", "0"))
            size = int(body.get("MaxResults", 50))
            page = {"Events": all_events[start:start + size]}
            if start + size < len(all_events):
                page["NextToken"] = str(start + size)
            data = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", "--enable-precise-memory-info",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=options)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trailkeep", required=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--auto-layout", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    api = serve_api(events(args.events))
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIABENCH", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    env.pop("AWS_SESSION_TOKEN", None)
    console = subprocess.Popen([args.trailkeep, "console", "--port", str(port), "--regions", "us-east-1",
                                "--endpoint-url", f"http://127.0.0.1:{api.server_address[1]}/"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="bench-console-")
    driver = None
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/static/console.css", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        # The server's part alone: /events/rows (render + the stand-in API).
        rows_ms = []
        for i in range(20):
            t = time.perf_counter()
            urllib.request.urlopen(f"{base}/events/rows?region=us-east-1&max=50&at=1796000000&token={50 * (i + 1)}").read()
            rows_ms.append((time.perf_counter() - t) * 1000)
        driver = browser(profile)
        t = time.perf_counter()
        driver.get(f"{base}/events?region=us-east-1&max=50")
        first_ms = (time.perf_counter() - t) * 1000
        if args.auto_layout:
            # The events table's CSS before: no fixed layout, widths or
            # wrapping of its own.
            for rule in ("#events { table-layout: auto !important; min-width: 0 !important; }",
                         "#events th { width: auto !important; }",
                         "#events td { overflow-wrap: normal !important; }"):
                driver.execute_script("document.styleSheets[0].insertRule(arguments[0], "
                                      "document.styleSheets[0].cssRules.length)", rule)
            check = driver.execute_script("return getComputedStyle(document.getElementById('events')).tableLayout")
            if check != "auto":
                raise SystemExit(f"table-layout is {check}, not auto")
        driver.set_script_timeout(60)
        appends = []
        while driver.execute_script("return !!document.getElementById('more')"):
            # Timed in the page: from the click to the frame after the
            # rows are in (the fetch, the parse, the append, style, layout).
            appends.append(driver.execute_async_script("""
                const done = arguments[arguments.length - 1];
                const table = document.getElementById('events');
                const before = table.tBodies.length;
                const t = performance.now();
                const seen = new MutationObserver(() => {
                  if (table.tBodies.length > before) {
                    seen.disconnect();
                    requestAnimationFrame(() => setTimeout(() => done(performance.now() - t)));
                  }
                });
                seen.observe(table, { childList: true });
                document.getElementById('more').click();
            """))
        shown = driver.execute_script("return document.getElementById('events').tBodies.length")
        # Opening the last event's record at the end.
        expand_ms = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const bodies = document.getElementById('events').tBodies;
            const last = bodies[bodies.length - 1];
            const t = performance.now();
            last.querySelector('summary').click();
            last.querySelector('tr.record').getBoundingClientRect();
            requestAnimationFrame(() => setTimeout(() => done(performance.now() - t)));
        """)
        heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null")
        nodes = driver.execute_script("return document.getElementsByTagName('*').length")
        chars = driver.execute_script("return document.documentElement.outerHTML.length")
        tail = appends[-20:]
        result = {
            "events": shown, "pages": len(appends) + 1, "autoLayout": args.auto_layout, "firstPageMs": first_ms,
            "appendMedianMs": statistics.median(appends), "appendP95Ms": sorted(appends)[int(len(appends) * 0.95) - 1],
            "appendMaxMs": max(appends), "lastTwentyMedianMs": statistics.median(tail),
            "totalSeconds": sum(appends) / 1000, "expandLastMs": expand_ms, "jsHeapBytes": heap,
            "domElements": nodes, "htmlChars": chars, "serverRowsMedianMs": statistics.median(rows_ms),
        }
        print(json.dumps(result, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f)
        if shown != args.events:
            raise SystemExit(f"{shown} events shown, expected {args.events}")
    finally:
        if driver:
            driver.quit()
        console.terminate()
        console.wait()
        api.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
