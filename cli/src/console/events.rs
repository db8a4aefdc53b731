//! The Event history page: one lookup attribute, a time range, newest-first
//! pages of LookupEvents, each event's record on expanding its row, and the
//! filter's events downloaded as `export-history` writes them.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use trailkeep_shared::history::lookup::MAX_RESULTS;

use super::App;
use crate::lookup::{Export, Format};

/// LookupEvents' attributes, with the console's names for them.
pub(super) const ATTRIBUTES: [(&str, &str); 8] = [
    ("EventId", "Event ID"),
    ("EventName", "Event name"),
    ("ReadOnly", "Read-only"),
    ("Username", "User name"),
    ("ResourceType", "Resource type"),
    ("ResourceName", "Resource name"),
    ("EventSource", "Event source"),
    ("AccessKeyId", "AWS access key"),
];

/// The time range presets: (value, label, length).
const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "Last hour", 3_600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("90d", "Last 90 days", 90 * 86_400),
];

/// Page sizes offered (MaxResults).
const PAGE_SIZES: [i64; 5] = [1, 10, 20, 25, 50];

/// The page's query: all text, so that a bad value is shown as an error on
/// the page, not refused before it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct Filter {
    region: String,
    key: String,
    value: String,
    range: String,
    start: String,
    end: String,
    max: String,
    token: String,
    /// When a preset range was chosen (epoch seconds): the later pages and
    /// the downloads of a filter cover the same span as its first page (a
    /// NextToken is bound to its request's times).
    at: String,
}

/// A filter understood: the LookupEvents request without its token.
#[derive(Debug, PartialEq)]
pub(super) struct Lookup {
    pub body: Value,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The "now" the range was read at, when it ends now (a preset, or a
    /// custom range without an end): carried by links, so later pages and
    /// downloads ask for the same span (a NextToken is bound to it).
    pub at: Option<i64>,
}

impl Filter {
    /// The request this filter makes at `now`, or what is wrong with it.
    /// Without a region, `default_region`'s history (the one the region
    /// selector shows first), never the API's choice.
    pub(super) fn lookup(
        &self,
        now: DateTime<Utc>,
        default_region: &str,
    ) -> Result<Lookup, String> {
        let mut body = json!({
            "Region": if self.region.is_empty() { default_region } else { &self.region },
        });
        if !self.key.is_empty() {
            body["LookupAttributes"] =
                json!([{ "AttributeKey": self.key, "AttributeValue": self.value }]);
        }
        // "Now", as the first page read it.
        let anchor = || match self.at.parse::<i64>() {
            Ok(at) => DateTime::from_timestamp(at, 0)
                .ok_or_else(|| format!("ValidationException: at {at} is not a time")),
            Err(_) if self.at.is_empty() => Ok(now),
            Err(_) => Err(format!("ValidationException: at {:?}", self.at)),
        };
        let (start, end, at) = match self.range.as_str() {
            "custom" => {
                let time = |s: &str, what: &str| {
                    crate::validate::parse_time(s.trim())
                        .map_err(|e| format!("InvalidTimeRangeException: {what} time: {e}"))
                };
                let start = time(&self.start, "start")?;
                if self.end.trim().is_empty() {
                    let end = anchor()?;
                    (start, end, Some(end.timestamp()))
                } else {
                    (start, time(&self.end, "end")?, None)
                }
            }
            preset => {
                let length = RANGES
                    .iter()
                    .find(|r| r.0 == preset || (preset.is_empty() && r.0 == "90d"))
                    .map(|r| r.2)
                    .ok_or_else(|| format!("ValidationException: no time range {preset:?}"))?;
                let end = anchor()?;
                let start = end
                    .checked_sub_signed(Duration::seconds(length))
                    .ok_or_else(|| format!("ValidationException: at {:?}", self.at))?;
                (start, end, Some(end.timestamp()))
            }
        };
        body["StartTime"] = json!(start.timestamp());
        body["EndTime"] = json!(end.timestamp());
        if !self.max.is_empty() {
            match self.max.parse::<i64>() {
                Ok(m) if (1..=MAX_RESULTS).contains(&m) => body["MaxResults"] = json!(m),
                _ => {
                    return Err(format!(
                        "InvalidMaxResultsException: events per page must be 1 to {MAX_RESULTS}, not {:?}",
                        self.max
                    ))
                }
            }
        }
        Ok(Lookup {
            body,
            start,
            end,
            at,
        })
    }

    /// This filter's URL at `path`, anchored at `at`, going on from `token`.
    fn url(
        &self,
        path: &str,
        at: Option<i64>,
        token: Option<&str>,
        extra: &[(&str, &str)],
    ) -> String {
        let mut f = self.clone();
        f.at = at.map(|a| a.to_string()).unwrap_or_default();
        f.token = token.unwrap_or_default().to_owned();
        let mut pairs: Vec<(&str, &str)> = [
            ("region", f.region.as_str()),
            ("key", &f.key),
            ("value", &f.value),
            ("range", &f.range),
            ("start", &f.start),
            ("end", &f.end),
            ("max", &f.max),
            ("at", &f.at),
            ("token", &f.token),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        pairs.extend_from_slice(extra);
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{path}?{query}")
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One event's row: CloudTrail's console columns, and its record.
#[derive(Debug, Serialize)]
pub(super) struct Row {
    id: String,
    time: String,
    user: String,
    name: String,
    resource_type: String,
    resource_name: String,
    source: String,
    access_key: String,
    region: String,
    error: String,
    ip: String,
    read_only: String,
    record: String,
}

/// A LookupEvents `Event` as a row (the record's own fields for the
/// columns LookupEvents does not return).
pub(super) fn row(e: &Value) -> Row {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let raw = e["CloudTrailEvent"].as_str().unwrap_or_default();
    let record: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let resources = e["Resources"].as_array().cloned().unwrap_or_default();
    let join = |field: &str| {
        resources
            .iter()
            .filter_map(|r| r[field].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let time = e["EventTime"]
        .as_f64()
        .and_then(|s| DateTime::from_timestamp(s as i64, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Row {
        id: text(&e["EventId"]),
        time,
        user: text(&e["Username"]),
        name: text(&e["EventName"]),
        resource_type: join("ResourceType"),
        resource_name: join("ResourceName"),
        source: text(&e["EventSource"]),
        access_key: text(&e["AccessKeyId"]),
        region: text(&record["awsRegion"]),
        error: text(&record["errorCode"]),
        ip: text(&record["sourceIPAddress"]),
        read_only: text(&e["ReadOnly"]),
        record: serde_json::to_string_pretty(&record).unwrap_or_else(|_| raw.to_owned()),
    }
}

/// One page of events, or the API's error.
struct Page {
    rows: Vec<Row>,
    next: Option<String>,
}

/// LookupEvents calls one page of the console may make.
const CALLS_PER_PAGE: usize = 100;

/// A page: LookupEvents' pages from `token` on until they hold at least
/// the page size (MaxResults stays the same, as the token is bound to it)
/// or there are no more. The API answers a long range a day at a time, so
/// one page of it can be empty although later days have events; the
/// console never shows an empty page with "Load more" under it, unless
/// [`CALLS_PER_PAGE`] calls found nothing.
async fn fetch(app: &App, lookup: &Lookup, token: &str) -> Result<Page, String> {
    let size = lookup.body["MaxResults"]
        .as_i64()
        .unwrap_or(MAX_RESULTS)
        .max(1) as usize;
    let mut page = Page {
        rows: Vec::new(),
        next: (!token.is_empty()).then(|| token.to_owned()),
    };
    for _ in 0..CALLS_PER_PAGE {
        let mut body = lookup.body.clone();
        if let Some(t) = &page.next {
            body["NextToken"] = json!(t);
        }
        let v = app.call("LookupEvents", &body).await?;
        page.rows
            .extend(v["Events"].as_array().into_iter().flatten().map(row));
        page.next = v["NextToken"].as_str().map(str::to_owned);
        if page.next.is_none() || page.rows.len() >= size {
            break;
        }
    }
    Ok(page)
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

/// `GET /events`.
pub(super) async fn page(State(app): State<Arc<App>>, Query(f): Query<Filter>) -> Response {
    let now = Utc::now();
    let (page, lookup, error) = match f.lookup(now, &app.regions[0]) {
        Ok(l) => match fetch(&app, &l, &f.token).await {
            Ok(p) => (Some(p), Some(l), None),
            Err(e) => (None, Some(l), Some(e)),
        },
        Err(e) => (None, None, Some(e)),
    };
    let at = lookup.as_ref().and_then(|l| l.at);
    let next = page.as_ref().and_then(|p| p.next.as_deref());
    let choices = |items: &mut dyn Iterator<Item = (String, String)>| -> Vec<Choice> {
        items
            .map(|(value, label)| Choice { value, label })
            .collect()
    };
    let mut regions = app.regions.clone();
    if !f.region.is_empty() && !regions.contains(&f.region) {
        regions.push(f.region.clone());
    }
    let mut sizes: Vec<String> = PAGE_SIZES.iter().map(i64::to_string).collect();
    if !f.max.is_empty() && !sizes.contains(&f.max) {
        sizes.push(f.max.clone());
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = app.render(
        "events.html",
        minijinja::context! {
            title => "Event history",
            f => &f,
            region => if f.region.is_empty() { app.regions[0].clone() } else { f.region.clone() },
            range => if f.range.is_empty() { "90d" } else { f.range.as_str() },
            max => if f.max.is_empty() { MAX_RESULTS.to_string() } else { f.max.clone() },
            regions => regions,
            attributes => choices(&mut ATTRIBUTES.iter().map(|(v, l)| (v.to_string(), l.to_string()))),
            ranges => choices(&mut RANGES.iter().map(|(v, l, _)| (v.to_string(), l.to_string()))),
            sizes => sizes,
            start => lookup.as_ref().map(|l| l.start.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            end => lookup.as_ref().map(|l| l.end.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            rows => page.as_ref().map(|p| &p.rows[..]).unwrap_or(&[]),
            more => next.map(|t| f.url("/events", at, Some(t), &[])),
            more_rows => next.map(|t| f.url("/events/rows", at, Some(t), &[])),
            csv => f.url("/download", at, None, &[("format", "csv")]),
            json => f.url("/download", at, None, &[("format", "json")]),
            error => error,
        },
    );
    (status, body).into_response()
}

/// `GET /events/rows`: the next page's rows and "load more" link, which
/// console.js puts in place of the link.
pub(super) async fn rows(State(app): State<Arc<App>>, Query(f): Query<Filter>) -> Response {
    let result = match f.lookup(Utc::now(), &app.regions[0]) {
        Ok(l) => fetch(&app, &l, &f.token).await.map(|p| (p, l.at)),
        Err(e) => Err(e),
    };
    match result {
        Ok((page, at)) => app.render(
            "rows.html",
            minijinja::context! {
                rows => &page.rows,
                fragment => true,
                more => page.next.as_deref().map(|t| f.url("/events", at, Some(t), &[])),
                more_rows => page.next.as_deref().map(|t| f.url("/events/rows", at, Some(t), &[])),
            },
        ),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct DownloadFormat {
    #[serde(default)]
    format: String,
}

/// What [`Export`] writes, taken out page by page.
#[derive(Clone, Default)]
struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("download buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn take(&self) -> Bytes {
        self.0
            .lock()
            .map(|mut b| Bytes::from(std::mem::take(&mut *b)))
            .unwrap_or_default()
    }
}

/// `GET /download?format=csv|json&…`: every event of the filter, as
/// `trailkeep export-history` writes them, streamed a page at a time (the
/// next page is read only when the browser has taken the last: a client
/// that stops reading stops the download). An error on the first page sends
/// the browser back to the filter's page, which shows it as the API names
/// it; a later one cuts the download short, so the browser says it failed
/// rather than keeping half.
pub(super) async fn download(
    State(app): State<Arc<App>>,
    Query(f): Query<Filter>,
    Query(DownloadFormat { format }): Query<DownloadFormat>,
) -> Response {
    let (format, name, kind) = match format.as_str() {
        "json" => (Format::Json, "trailkeep-events.json", "application/json"),
        "csv" | "" => (
            Format::Csv,
            "trailkeep-events.csv",
            "text/csv; charset=utf-8",
        ),
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("no download format {other:?}"),
            )
                .into_response()
        }
    };
    let back = |at: Option<i64>| Redirect::to(&f.url("/events", at, None, &[])).into_response();
    let mut lookup = match f.lookup(Utc::now(), &app.regions[0]) {
        Ok(l) => l,
        Err(_) => return back(None),
    };
    // Every event of the filter: the largest pages, from the first.
    lookup.body["MaxResults"] = json!(MAX_RESULTS);
    let first = match app.call("LookupEvents", &lookup.body).await {
        Ok(v) => v,
        Err(_) => return back(lookup.at),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let buffer = Buffer::default();
        let mut page = first;
        let result: Result<(), String> = async {
            let mut export = Export::new(format, buffer.clone()).map_err(|e| e.to_string())?;
            loop {
                for e in page["Events"].as_array().into_iter().flatten() {
                    export.event(e).map_err(|e| e.to_string())?;
                }
                export.flush().map_err(|e| e.to_string())?;
                tx.send(Ok(buffer.take()))
                    .await
                    .map_err(|_| "the browser stopped reading".to_owned())?;
                let Some(token) = page["NextToken"].as_str() else {
                    break;
                };
                let mut body = lookup.body.clone();
                body["NextToken"] = json!(token);
                page = app.call("LookupEvents", &body).await?;
            }
            export.finish().map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                let _ = tx.send(Ok(buffer.take())).await;
            }
            Err(e) => {
                tracing::warn!("download stopped: {e}");
                let _ = tx.send(Err(std::io::Error::other(e))).await;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn filter(pairs: &str) -> Filter {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn a_preset_range_is_anchored_so_later_pages_ask_for_the_same_span() {
        let now = at("2026-12-02T12:00:00Z");
        let l = filter("region=us-east-1&key=EventName&value=ConsoleLogin&range=24h&max=10")
            .lookup(now, "eu-west-1")
            .unwrap();
        assert_eq!(
            l.body,
            json!({
                "Region": "us-east-1",
                "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}],
                "StartTime": now.timestamp() - 86_400,
                "EndTime": now.timestamp(),
                "MaxResults": 10,
            })
        );
        // An hour later, the anchored filter asks for the same span.
        let later = filter(&format!("range=24h&at={}", now.timestamp()))
            .lookup(now + Duration::hours(1), "eu-west-1")
            .unwrap();
        assert_eq!(later.body["EndTime"], json!(now.timestamp()));
        // No range: the whole history (90 days), as CloudTrail's console;
        // no region: the one the selector shows first.
        let all = filter("").lookup(now, "eu-west-1").unwrap();
        assert_eq!(all.start, now - Duration::days(90));
        assert_eq!(all.body.get("LookupAttributes"), None);
        assert_eq!(all.body["Region"], json!("eu-west-1"));
        // An anchor no clock can hold is refused, not a panic.
        assert!(filter(&format!("at={}", i64::MIN))
            .lookup(now, "eu-west-1")
            .is_err());
        assert!(filter("at=-8334601228800")
            .lookup(now, "eu-west-1")
            .is_err());
    }

    #[test]
    fn a_custom_range_and_page_size_are_checked_before_any_call() {
        let now = at("2026-12-02T12:00:00Z");
        let l = filter("range=custom&start=2026-12-01T00:00:00Z&end=2026-12-01T06:00:00Z")
            .lookup(now, "eu-west-1")
            .unwrap();
        assert_eq!(
            (l.start, l.end, l.at),
            (at("2026-12-01T00:00:00Z"), at("2026-12-01T06:00:00Z"), None)
        );
        for bad in [
            "range=custom&start=yesterday",
            "range=custom",
            "range=2w",
            "max=0",
            "max=51",
            "max=ten",
            "at=soon",
        ] {
            assert!(filter(bad).lookup(now, "eu-west-1").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_next_page_link_asks_for_exactly_the_first_pages_request_later() {
        // The API binds a NextToken to the request's times and page size:
        // the link must rebuild the same body however late it is followed.
        let now = at("2026-12-02T12:00:00Z");
        for first in [
            "region=us-east-1&range=7d&max=5",
            "region=us-east-1&range=custom&start=2026-11-30T00:00:00Z",
            "region=us-east-1&range=custom&start=2026-11-30T00:00:00Z&end=2026-12-01T00:00:00Z&key=Username&value=a%2Bb",
        ] {
            let f = filter(first);
            let l = f.lookup(now, "eu-west-1").unwrap();
            let link = f.url("/events", l.at, Some("t"), &[]);
            let next: Filter = serde_urlencoded::from_str(link.split_once('?').unwrap().1).unwrap();
            let later = next.lookup(now + Duration::minutes(7), "eu-west-1").unwrap();
            assert_eq!(later.body, l.body, "{first} -> {link}");
            assert_eq!(next.token, "t");
        }
    }

    #[test]
    fn links_carry_the_filter_its_anchor_and_the_token_encoded() {
        let f = filter("region=us-east-1&key=Username&value=a%26b%3Dc%20d&range=1h");
        let url = f.url("/events", Some(1_700_000_000), Some("tok/+="), &[]);
        assert_eq!(
            url,
            "/events?region=us%2Deast%2D1&key=Username&value=a%26b%3Dc%20d&range=1h&at=1700000000&token=tok%2F%2B%3D"
        );
        let back: Filter = serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap();
        assert_eq!(
            (back.value.as_str(), back.token.as_str()),
            ("a&b=c d", "tok/+=")
        );
    }

    #[test]
    fn a_row_takes_the_columns_lookup_events_lacks_from_the_record() {
        let record = json!({
            "eventID": "e1", "awsRegion": "eu-west-1", "errorCode": "AccessDenied",
            "sourceIPAddress": "203.0.113.9", "eventName": "GetObject"
        });
        let r = row(&json!({
            "EventId": "e1", "EventName": "GetObject", "ReadOnly": "true",
            "EventTime": 1_764_547_200.0, "Username": "alice", "EventSource": "s3.amazonaws.com",
            "AccessKeyId": "AKIAEXAMPLE",
            "Resources": [{"ResourceType": "AWS::S3::Bucket", "ResourceName": "b1"},
                          {"ResourceType": "AWS::S3::Object", "ResourceName": "b1/k"}],
            "CloudTrailEvent": record.to_string(),
        }));
        assert_eq!(r.time, "2025-12-01T00:00:00Z");
        assert_eq!(r.resource_type, "AWS::S3::Bucket, AWS::S3::Object");
        assert_eq!(r.resource_name, "b1, b1/k");
        assert_eq!(
            (r.region.as_str(), r.error.as_str(), r.ip.as_str()),
            ("eu-west-1", "AccessDenied", "203.0.113.9")
        );
        assert_eq!(serde_json::from_str::<Value>(&r.record).unwrap(), record);
    }

    #[tokio::test]
    async fn hostile_event_fields_are_shown_as_text_never_as_markup() {
        let app = super::super::tests::app().await;
        let evil = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
        let record =
            json!({ "eventName": evil, "awsRegion": evil, "userIdentity": {"userName": evil} });
        let rows = vec![row(&json!({
            "EventId": evil, "EventName": evil, "Username": evil, "EventSource": evil,
            "AccessKeyId": evil, "ReadOnly": evil, "EventTime": 1.0,
            "Resources": [{"ResourceType": evil, "ResourceName": evil}],
            "CloudTrailEvent": record.to_string(),
        }))];
        let f = filter(&format!("value={}", encode(evil)));
        let html = app
            .pages
            .get_template("events.html")
            .unwrap()
            .render(minijinja::context! {
                title => "Event history", f => &f, region => "eu-west-1", range => "90d", max => "50",
                regions => &app.regions, attributes => Vec::<Choice>::new(), ranges => Vec::<Choice>::new(),
                sizes => Vec::<String>::new(), rows => &rows, more => Some(f.url("/events", None, Some(evil), &[])),
                more_rows => Some("/events/rows"), csv => "/download", json => "/download", error => Some(evil),
            })
            .unwrap();
        assert!(
            !html.contains("<script>alert") && !html.contains("<img src=x"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        // The only scripts are the console's own.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
    }
}
