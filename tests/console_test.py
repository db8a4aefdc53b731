"""The browser test of `trailkeep console`: Debian's headless chromium,
driven through Debian's chromedriver by selenium (PyPI, pinned in
scripts/requirements.lock), against a console on 127.0.0.1 that serves the
local stack (scripts/local-run.sh runs it with CONSOLE_TEST=1). Every page
is checked against the stack's own API answers (boto3's CloudTrail client
on the API URL: the local function URL checks no signature) and the CLI's
export-history.

Prints one `ok …` line per check; stops at the first failed check with a
message on stderr (and OUT/failure.png, OUT/failure.html) and exit status 1.

usage: console_test.py --console-url http://127.0.0.1:PORT --api-url URL
         --trailkeep PATH --out-dir DIR --validate-start T --validate-end T
         [--secret S]... [--console-log FILE]

Nothing is downloaded: selenium is handed chromedriver's path, so Selenium
Manager never runs.
"""
import argparse
import csv
import datetime
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.exceptions
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

# The history the test browses: the local stack's home region (the API's
# default history), which holds exactly 2 console sign-ins.
REGION = "us-east-1"
ATTRIBUTE = {"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}
HOSTILE = "<script>window.pwned=1</script>"
WAIT = 30  # seconds for a page, a fragment or a download
VALIDATION_WAIT = 120


class CheckFailed(Exception):
    pass


def fail(message):
    raise CheckFailed(message)


def check(condition, message, detail=None):
    """Raises CheckFailed(message: detail) unless condition."""
    if not condition:
        fail(message if detail is None else f"{message}: {detail}")


def ok(message):
    print(f"ok {message}", flush=True)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Console:
    """The browser, and a record of every page and file the test saw."""

    def __init__(self, args):
        self.url = args.console_url.rstrip("/")
        self.out = pathlib.Path(args.out_dir).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.seen = {}  # what must hold no secret: name -> text
        self.profile = tempfile.mkdtemp(prefix="console-test-chromium-")
        self.driver = self._start()

    def _start(self):
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        for path in (chromium, chromedriver):
            if not os.access(path, os.X_OK):
                fail(f"{path} not found: install Debian's chromium and chromium-driver (scripts/lib.sh ensure_chromium)")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        # Headless as root on a machine without a network or a GPU.
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.add_experimental_option("prefs", {
            "download.default_directory": str(self.out),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False,
        })
        # chromedriver's own path: Selenium Manager (a downloader) never runs.
        service = Service(executable_path=chromedriver, log_output=str(self.out / "chromedriver.log"))
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(60)
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(self.out)})
        return driver

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, path):
        self.driver.get(self.url + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete", f"{path} to load")

    def keep(self, name):
        """The page as it is now, for the secrets check."""
        self.seen[f"page {name} ({self.driver.current_url})"] = self.driver.page_source

    def wait(self, condition, what, timeout=WAIT):
        try:
            return WebDriverWait(self.driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException:
            text = " ".join(self.driver.find_element(By.TAG_NAME, "body").text.split())[:300]
            fail(f"waited {timeout} s for {what}; the page is {self.driver.current_url}, reading {text!r}")

    def one(self, css, within=None):
        found = (within or self.driver).find_elements(By.CSS_SELECTOR, css)
        check(len(found) == 1, f"expected one element {css}", f"found {len(found)} on {self.driver.current_url}")
        return found[0]

    def all(self, css, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def event_ids(self):
        return [t.get_attribute("data-event-id") for t in self.all("table#events tbody.event")]

    def screenshot(self, name):
        path = self.out / name
        self.driver.execute_script("window.scrollTo(0, 0)")
        check(self.driver.save_screenshot(str(path)), f"screenshot {path} not written")
        return path

    def download(self, link_css, name):
        """Clicks the link; the downloaded file's bytes, once complete."""
        target = self.out / name
        for stale in [target, *self.out.glob(name + "*"), *self.out.glob("*.crdownload")]:
            stale.unlink(missing_ok=True)
        link = self.one(link_css)
        href = link.get_attribute("href")
        link.click()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if target.exists() and not list(self.out.glob("*.crdownload")):
                data = target.read_bytes()
                self.seen[f"download {name}"] = data.decode("utf-8", "replace")
                return href, data
            time.sleep(0.2)
        fail(f"{link_css} ({href}) did not download {target} within {WAIT} s: {sorted(p.name for p in self.out.iterdir())}")


def fetch(url, method="GET", headers=None, data=None):
    """(status, body) of one request, without a proxy; error answers too."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with opener.open(request, timeout=WAIT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def choose(element, value):
    """Sets a form field: a <select> by option value, else typed."""
    if element.tag_name.lower() == "select":
        Select(element).select_by_value(value)
    else:
        element.clear()
        element.send_keys(value)


def api_lookup(history, page_size):
    """Every event of the test's attribute, following NextToken to its end,
    and the (1-based) numbers of the pages that held them: a page may be
    empty (one per day of the window without a match), as CloudTrail's."""
    events, where, token = [], [], None
    for number in range(1, 201):
        kwargs = {"LookupAttributes": [ATTRIBUTE], "MaxResults": page_size}
        if token:
            kwargs["NextToken"] = token
        page = history.lookup_events(**kwargs)
        events += page["Events"]
        where += [number] * len(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events, where, number
    fail("the API gave a NextToken for 200 pages in a row")


def run(args, c):
    env_region = os.environ.get("AWS_REGION")
    check(env_region == REGION, f"AWS_REGION must be {REGION} (the API's default history, which the test browses)", env_region)
    cloudtrail = boto3.client("cloudtrail", endpoint_url=args.api_url, region_name=env_region)

    # a. The filter form, filled in as a person would.
    api_events, api_page_numbers, api_page_count = api_lookup(cloudtrail, 1)
    api_ids = [e["EventId"] for e in api_events]
    check(len(api_ids) == 2, f"the API should find 2 {ATTRIBUTE['AttributeValue']} events (the local stack's)", api_ids)
    api_paging = (f"the API, 1 per page, gives them on pages {api_page_numbers[0]} and {api_page_numbers[1]} "
                  f"of {api_page_count} (the others empty)")

    c.open("/events")
    form = c.one("form#filter")
    check((form.get_attribute("method") or "get").lower() == "get", "form#filter should use GET", form.get_attribute("method"))
    choose(c.one("#region"), REGION)
    attribute = c.one("#attribute")
    check(attribute.tag_name.lower() == "select" and attribute.get_attribute("name") == "key",
          "#attribute should be a <select name=key>", f"<{attribute.tag_name} name={attribute.get_attribute('name')}>")
    choose(attribute, ATTRIBUTE["AttributeKey"])
    choose(c.one("#value"), ATTRIBUTE["AttributeValue"])
    choose(c.one("#range"), "90d")
    choose(c.one("#max"), "1")
    c.one("#apply").click()
    c.wait(EC.staleness_of(form), "the filter form to submit")
    c.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the filtered page to load")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(c.driver.current_url).query)
    for key, value in {"region": REGION, "key": "EventName", "value": "ConsoleLogin", "range": "90d", "max": "1"}.items():
        check(query.get(key) == [value], f"the submitted filter should carry {key}={value}", c.driver.current_url)
    ids = c.event_ids()
    check(ids == api_ids[:1], "table#events after the filter: tbody.event data-event-id should be the API's first event",
          f"expected {api_ids[:1]}, got {ids}; {api_paging}")
    names = [td.text.strip() for td in c.all("table#events tbody.event td.event-name")]
    check(names == ["ConsoleLogin"], "td.event-name of each row should read ConsoleLogin", names)
    c.keep("events, filtered")
    ok(f"filter form (region {REGION}, EventName = ConsoleLogin, 90 days, 1 per page): 1 event, the API's first ({ids[0]}); {api_paging}")

    # b. Load more, in place (the page is not reloaded).
    c.driver.execute_script("window.__consoleTestMarker = 1")
    more = c.one("a#more")
    check(more.is_displayed(), "a#more should be shown while the API has a next page")
    more.click()
    c.wait(lambda d: len(c.event_ids()) >= 2, f"a second tbody.event after clicking #more ({api_paging})")
    check(c.driver.execute_script("return window.__consoleTestMarker") == 1,
          "#more should append the next page in place (with JS), not load a new page", c.driver.current_url)
    ids = c.event_ids()
    check(ids == api_ids, "tbody.event IDs after load more should be the API's two events, in order",
          f"expected {api_ids}, got {ids}; {api_paging}")
    # A page of the console is filled from the API's pages (some empty), so
    # after the last event one more "Load more" may only find that nothing
    # follows: it must add no row and take the link away.
    for _ in range(3):
        shown = [m for m in c.all("a#more") if m.is_displayed()]
        if not shown:
            break
        href = shown[0].get_attribute("href")
        shown[0].click()

        def settled(_):
            links = [m for m in c.all("a#more") if m.is_displayed()]
            return not links or links[0].get_attribute("href") != href

        c.wait(settled, f"a#more to load the next page ({api_paging})")
    check(not any(m.is_displayed() for m in c.all("a#more")),
          f"a#more should go once the API has nothing after the last event ({api_paging})")
    check(c.event_ids() == api_ids, "no row should be added after the API's last event", c.event_ids())
    names = [td.text.strip() for td in c.all("table#events tbody.event td.event-name")]
    check(names == ["ConsoleLogin"] * 2, "td.event-name of each row should read ConsoleLogin", names)
    c.keep("events, two pages")
    ok(f"load more: the second event in place, in the API's order ({', '.join(ids)}); #more gone after the last one")

    # c. Expanding an event: by mouse, then by keyboard.
    for i, (event, how) in enumerate(zip(api_events, ("click", "keyboard"))):
        body = c.one(f'table#events tbody.event[data-event-id="{event["EventId"]}"]')
        record_row = c.one("tr.record", body)
        check(not record_row.is_displayed(), f"tr.record of event {i + 1} should be hidden before it is expanded")
        details = c.one("details.expand", body)
        first_cell = c.one("tr.row > td:first-child, tr.row > th:first-child", body)
        check(first_cell.find_elements(By.CSS_SELECTOR, "details.expand"), "details.expand should be in the first cell of tr.row")
        summary = c.one("summary", details)
        if how == "click":
            summary.click()
        else:
            c.driver.execute_script("arguments[0].focus()", summary)
            check(c.driver.switch_to.active_element == summary, "the event's summary should take the keyboard focus")
            summary.send_keys(Keys.ENTER)
        c.wait(lambda d: record_row.is_displayed(), f"tr.record of event {i + 1} to show after {how}")
        check(details.get_property("open"), f"details.expand of event {i + 1} should be open after {how}")
        text = c.one("pre.json", record_row).get_attribute("textContent")
        try:
            shown = json.loads(text)
        except ValueError as e:
            fail(f"pre.json of event {i + 1} is not JSON ({e}): {text[:300]!r}")
        check(shown == json.loads(event["CloudTrailEvent"]),
              f"pre.json of event {i + 1} should be the API's CloudTrailEvent", f"got {text[:300]!r}")
        ok(f"expand by {how}: event {i + 1}'s record (summary {summary.text.strip()!r}) is the API's CloudTrailEvent")
    c.keep("events, expanded")

    # d. Downloads: the CLI's export-history, byte for byte.
    href, data = c.download("a#download-csv", "trailkeep-events.csv")
    link = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
    check(urllib.parse.urlsplit(href).path == "/download" and link.get("format") == ["csv"]
          and link.get("value") == ["ConsoleLogin"] and link.get("key") == ["EventName"],
          "#download-csv should link /download?format=csv with the current filter", href)
    exported = subprocess.run(
        [args.trailkeep, "export-history", "--endpoint-url", args.api_url, "--region", REGION,
         "--lookup-attributes", f"AttributeKey={ATTRIBUTE['AttributeKey']},AttributeValue={ATTRIBUTE['AttributeValue']}",
         "--format", "csv"], capture_output=True, env=os.environ.copy(), timeout=120)
    check(exported.returncode == 0, "trailkeep export-history failed", exported.stderr.decode(errors="replace"))
    check(data == exported.stdout, "trailkeep-events.csv should equal trailkeep export-history --format csv byte for byte",
          f"\n--- download\n{data.decode(errors='replace')}\n--- export-history\n{exported.stdout.decode(errors='replace')}")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    check([r.get("Event ID") for r in rows] == api_ids, "the CSV's Event ID column should be the API's IDs",
          [r.get("Event ID") for r in rows])
    # The columns against the API's own fields, not only the CLI's writer
    # (which the console shares).
    for r, e in zip(rows, api_events):
        record = json.loads(e["CloudTrailEvent"])
        expected = {"Event name": e["EventName"], "User name": e.get("Username", ""), "Event source": e["EventSource"],
                    "AWS region": record.get("awsRegion", ""), "Source IP address": record.get("sourceIPAddress", ""),
                    "Event time": e["EventTime"].astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        got = {k: r.get(k) for k in expected}
        check(got == expected, f"the CSV row of {e['EventId']} should hold the API's values", f"{got} != {expected}")
    ok(f"download CSV: {len(data)} bytes, the same as trailkeep export-history --format csv; Event IDs are the API's")
    _, data = c.download("a#download-json", "trailkeep-events.json")
    try:
        records = json.loads(data)["Records"]
    except (ValueError, KeyError, TypeError) as e:
        fail(f"trailkeep-events.json is not {{\"Records\": [...]}} ({e!r}): {data[:300]!r}")
    check([r.get("eventID") for r in records] == api_ids, "trailkeep-events.json's eventIDs should be the API's",
          [r.get("eventID") for r in records])
    check(records == [json.loads(e["CloudTrailEvent"]) for e in api_events], "trailkeep-events.json's records should be the API's")
    ok(f"download JSON: {{\"Records\": [...]}} with the API's {len(records)} records")

    # e.
    ok(f"screenshot {c.screenshot('events.png')}")

    # f. Trails and their status.
    trails = cloudtrail.describe_trails()["trailList"]
    check(trails, "DescribeTrails lists no trail (the local stack has org-audit)")
    c.open("/trails")
    shown = {row.get_attribute("data-name"): row for row in c.all("table#trails tr.trail")}
    check(sorted(shown) == sorted(t["Name"] for t in trails), "table#trails tr.trail[data-name] should be DescribeTrails' trails",
          f"expected {sorted(t['Name'] for t in trails)}, got {sorted(shown)}")
    for trail in trails:
        logging = cloudtrail.get_trail_status(Name=trail["Name"])["IsLogging"]
        text = c.one("td.is-logging", shown[trail["Name"]]).text.strip()
        check(text == ("Yes" if logging else "No"), f"td.is-logging of {trail['Name']} should follow GetTrailStatus (IsLogging {logging})", text)
    c.keep("trails")
    listed = ", ".join(f"{t} (logging: {c.one('td.is-logging', shown[t]).text.strip()})" for t in sorted(shown))
    ok(f"trails: {listed}, as DescribeTrails and GetTrailStatus")
    ok(f"screenshot {c.screenshot('trails.png')}")

    # f2. At 200% zoom (a 1400 px window shows 700 CSS px): no page-wide
    # horizontal scrolling (tables scroll in their own box), the filter's
    # button and the first event's time still on screen.
    c.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                             {"width": 700, "height": 1000, "deviceScaleFactor": 2, "mobile": False})
    try:
        for path in ("/events?" + urllib.parse.urlencode({"region": REGION, "key": ATTRIBUTE["AttributeKey"],
                                                           "value": ATTRIBUTE["AttributeValue"]}), "/trails"):
            c.open(path)
            widths = c.driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            check(widths[0] <= widths[1], f"{path} at 200% zoom should not scroll sideways",
                  f"page {widths[0]} CSS px wide in a {widths[1]} px viewport")
            if path.startswith("/events"):
                check(c.one("#apply").is_displayed() and c.all("table#events summary")[0].is_displayed(),
                      "at 200% zoom the Apply button and the first event's time should be shown")
                zoomed = c.screenshot("events-200.png")
        ok(f"200% zoom: /events and /trails fit the width, tables scroll in their box ({zoomed})")
    finally:
        c.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # g. Validate now, from the trail's row.
    name = "org-audit" if "org-audit" in shown else sorted(shown)[0]
    row = c.one(f'table#trails tr.trail[data-name="{name}"]')
    form = c.one("form.validate", row)
    check((form.get_attribute("method") or "").lower() == "post", "form.validate should POST", form.get_attribute("method"))
    # The local run's own validate-logs range, which holds its simulated hours.
    choose(c.one("input[name=start]", form), args.validate_start)
    choose(c.one("input[name=end]", form), args.validate_end)
    c.one("button[type=submit], input[type=submit], button:not([type])", form).click()
    c.wait(lambda d: urllib.parse.urlsplit(d.current_url).path.startswith("/validations/"), "the validation page (/validations/ID)")
    c.one("progress#progress")
    statuses = {"running", "valid", "INVALID", "failed"}
    seen_status = []

    def finished(driver):
        found = driver.find_elements(By.CSS_SELECTOR, "#status")
        if len(found) != 1:
            return False
        status = found[0].text.strip()
        check(status in statuses, f"#status should be one of {sorted(statuses)}", status)
        if not seen_status or seen_status[-1] != status:
            seen_status.append(status)
        return status != "running" and status

    status = c.wait(finished, "#status to leave running", VALIDATION_WAIT)
    c.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the validation page to load")
    summary = c.one("#summary").text.strip()
    findings = c.all("table#findings tr.finding")
    classes = [set((f.get_attribute("class") or "").split()) for f in findings]
    c.keep("validation")
    check(status == "valid", f"validation of {name} should be valid", f"#status {status}, #summary {summary!r}")
    check(findings, "table#findings should have at least one tr.finding")
    check(all(len(cls & {"valid", "invalid"}) == 1 for cls in classes), "each tr.finding should be class valid or invalid",
          [sorted(cls) for cls in classes])
    check(not any("invalid" in cls for cls in classes), "no tr.finding should be invalid",
          [f.text for f in findings if "invalid" in (f.get_attribute("class") or "").split()])
    check(summary, "#summary should not be empty")
    ok(f"validate {name} from {args.validate_start} to {args.validate_end}: {' -> '.join(seen_status)}, "
       f"{len(findings)} findings, none invalid; summary {summary[:120]!r}")
    ok(f"screenshot {c.screenshot('validation.png')}")

    # h. Hostile input and an error answer.
    hostile = "/events?" + urllib.parse.urlencode({"region": REGION, "key": "EventName", "value": HOSTILE, "range": "90d"})
    c.open(hostile)
    check(c.driver.execute_script("return window.pwned") is None, "a script in the filter value ran (window.pwned is set)")
    check(c.one("#value").get_property("value") == HOSTILE, "#value should hold the literal hostile value",
          c.one("#value").get_property("value"))
    check(c.driver.execute_script("return [...document.scripts].filter(s => s.text.includes('pwned')).length") == 0,
          "the hostile value made a <script> element")
    c.keep("events, hostile value")
    status, raw = fetch(c.url + hostile)
    raw = raw.decode("utf-8", "replace")
    check(status == 200, f"GET {hostile} should answer 200", status)
    check(HOSTILE not in raw, "the hostile value appears unescaped in the HTML")
    check("&lt;script&gt;" in raw, "the hostile value should appear escaped (&lt;script&gt;) in the HTML")
    ok("hostile filter value: escaped in the HTML, held literally by #value, never run")
    c.open("/events?" + urllib.parse.urlencode({"region": "mars-1", "key": "", "value": "", "range": "90d"}))
    error = c.one("#error")
    check(error.get_attribute("role") == "alert", "#error should have role=alert", error.get_attribute("role"))
    text = error.text.strip()
    check("Exception" in text or "Invalid" in text, "#error for region mars-1 should name the API's error code", text)
    check(not c.all("table#events tbody.event"), "no events should be shown for region mars-1")
    c.keep("events, region mars-1")
    ok(f"region mars-1: #error (role=alert) {text[:160]!r}")

    # i. No secret anywhere; the request guards.
    for asset in ("/static/console.css", "/static/console.js"):
        status, body = fetch(c.url + asset)
        check(status == 200 and body, f"GET {asset} should answer 200 with a body", status)
        c.seen[f"asset {asset}"] = body.decode("utf-8", "replace")
    if args.console_log:
        c.seen[f"console log {args.console_log}"] = pathlib.Path(args.console_log).read_text(errors="replace")
    secrets = [s for s in args.secret if s]
    for i, secret in enumerate(secrets, 1):
        leaks = [name for name, text in c.seen.items() if secret in text]
        check(not leaks, f"secret {i} of {len(secrets)} (--secret, {len(secret)} characters) appears in", "; ".join(leaks))
    ok(f"no secret ({len(secrets)} checked) in {len(c.seen)} pages, assets, downloads and logs")
    port = urllib.parse.urlsplit(c.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, _ = fetch(c.url + "/events", headers={"Host": host})
        check(status == 200, f"GET /events with Host {host} should answer 200", status)
    status, _ = fetch(c.url + "/events", headers={"Host": "evil.example"})
    check(status == 403, "GET /events with Host: evil.example should answer 403 (DNS rebinding)", status)
    ok("Host: evil.example refused with 403 (127.0.0.1 and localhost on the port served)")
    arn = next((t["TrailARN"] for t in trails if t["Name"] == name), name)
    body = urllib.parse.urlencode({"trail": arn, "start": args.validate_start, "end": args.validate_end}).encode()
    status, _ = fetch(c.url + "/trails/validate", method="POST", data=body,
                      headers={"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"})
    check(status == 403, "POST /trails/validate with Origin: http://evil.example should answer 403", status)
    ok("POST /trails/validate from Origin http://evil.example refused with 403")
    # What another site's page makes the browser fetch (here an <img> of a
    # download) is refused; following a link to a page is not.
    status, _ = fetch(c.url + "/download?format=csv", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    check(status == 403, "GET /download fetched for another site's page should answer 403", status)
    status, _ = fetch(c.url + "/trails", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    check(status == 200, "a link from another site to /trails should be followed (200)", status)
    ok("a download fetched for another site refused with 403; a link from another site to /trails served")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--console-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--trailkeep", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--secret", action="append", default=[])
    parser.add_argument("--console-log")
    parser.add_argument("--validate-start", required=True, help="Validate now's start (ISO 8601)")
    parser.add_argument("--validate-end", required=True, help="Validate now's end (ISO 8601)")
    args = parser.parse_args()
    c = None
    try:
        c = Console(args)
        run(args, c)
    except (CheckFailed, WebDriverException, OSError, subprocess.TimeoutExpired,
            botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        message = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
        if c is not None:
            try:
                c.screenshot("failure.png")
                (c.out / "failure.html").write_text(c.driver.page_source)
                message += f"\n  (at {c.driver.current_url}; {c.out / 'failure.png'}, {c.out / 'failure.html'})"
            except Exception:  # noqa: BLE001 - the failure is what matters
                pass
        print(f"FAILED console test: {message}", file=sys.stderr)
        return 1
    finally:
        if c is not None:
            c.quit()
    print("console test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
