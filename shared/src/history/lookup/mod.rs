//! LookupEvents over the event history (DESIGN §2 "Event history lookup";
//! docs/event-history.md "How a lookup reads it").
//!
//! - The request is CloudTrail's `LookupEvents` input (AWS JSON 1.1: times
//!   as epoch seconds, or ISO-8601 strings); errors carry CloudTrail's names.
//! - One page is one read: a `Query` of one day's index partition (an
//!   attribute's, or the time index), newest first, `Limit = MaxResults`,
//!   items whose retention has passed filtered out (TTL deletion is lazy);
//!   an EventId lookup is one `GetItem`. A page can hold fewer events than
//!   asked (expired items, the end of a day); `NextToken` says where to go on.
//! - Sort keys are `{eventTime}#{eventID}`, so the order is total and a page
//!   resumes exactly after the last item of the previous one: events sharing
//!   an eventTime are never skipped or repeated.
//! - `NextToken` is opaque and authenticated (HMAC-SHA256 over the position
//!   and a digest of the request's region, attribute, time range and page
//!   size): a forged or altered token, or one reused with other parameters,
//!   is refused.

use std::future::Future;

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::history::{
    attribute_pk, primary_pk, time_pk, LookupAttribute, MAX_INDEXED_VALUE_BYTES, PRIMARY_SK,
};
use crate::model::Record;
use crate::store::StoreError;

/// `MaxResults` bounds and default.
pub const MAX_RESULTS: i64 = 50;

/// Why a lookup is refused, with CloudTrail's error names.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    InvalidLookupAttributes(String),
    #[error("{0}")]
    InvalidTimeRange(String),
    #[error("{0}")]
    InvalidMaxResults(String),
    #[error("{0}")]
    InvalidNextToken(String),
    /// The body is not a LookupEvents request at all.
    #[error("{0}")]
    Serialization(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LookupError {
    /// The error's `__type` in the AWS JSON protocol.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            Self::InvalidTimeRange(_) => "InvalidTimeRangeException",
            Self::InvalidMaxResults(_) => "InvalidMaxResultsException",
            Self::InvalidNextToken(_) => "InvalidNextTokenException",
            Self::Serialization(_) => "SerializationException",
            Self::Store(_) => "InternalFailure",
        }
    }

    /// 400 for the caller's mistakes, 500 for the store's.
    pub fn status(&self) -> u16 {
        match self {
            Self::Store(_) => 500,
            _ => 400,
        }
    }
}

/// A validated lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub region: String,
    pub attribute: Option<(LookupAttribute, String)>,
    /// Inclusive.
    pub start: DateTime<Utc>,
    /// Inclusive.
    pub end: DateTime<Utc>,
    pub max_results: usize,
    /// Where this page starts (from the request's `NextToken`).
    pub position: Position,
    /// What a token of this request is bound to (the parameters as sent).
    pub binding: String,
}

/// Where a page starts: a day partition, after a sort key; and the time
/// range of the first page (defaults resolved then: "now" moves on).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Position {
    /// The range's start and end, epoch seconds.
    #[serde(rename = "s", default)]
    pub start: i64,
    #[serde(rename = "e", default)]
    pub end: i64,
    /// `YYYY-MM-DD`; `None`: the end time's day.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// The last sort key returned; `None`: the top of the day.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct WireRequest {
    lookup_attributes: Option<Vec<WireAttribute>>,
    start_time: Option<WireTime>,
    end_time: Option<WireTime>,
    max_results: Option<i64>,
    next_token: Option<String>,
    /// Not CloudTrail's: the history region, among those served (default:
    /// the deployment's). CloudTrail takes the region from the endpoint.
    region: Option<String>,
    /// CloudTrail's; only management events are in the history.
    event_category: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAttribute {
    attribute_key: Option<String>,
    attribute_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireTime {
    Epoch(f64),
    Text(String),
}

fn wire_time(t: WireTime, name: &str) -> Result<DateTime<Utc>, LookupError> {
    let bad = || LookupError::InvalidTimeRange(format!("{name} is not a valid timestamp"));
    match t {
        WireTime::Epoch(s) if s.is_finite() => {
            DateTime::from_timestamp(s.floor() as i64, 0).ok_or_else(bad)
        }
        WireTime::Epoch(_) => Err(bad()),
        WireTime::Text(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                s.parse::<f64>()
                    .map_err(|_| ())
                    .and_then(|n| DateTime::from_timestamp(n.floor() as i64, 0).ok_or(()))
            })
            .map_err(|_| bad()),
    }
}

/// Settings of the lookup function.
#[derive(Clone, Debug)]
pub struct LookupSettings {
    /// The deployment's region (the default history region).
    pub home_region: String,
    /// The regions whose history this deployment keeps.
    pub served_regions: Vec<String>,
    pub retention_days: u32,
    /// Key authenticating `NextToken`s (at least 32 bytes).
    pub token_key: Vec<u8>,
}

/// Reads and checks a LookupEvents request body at `now`.
pub fn parse_request(
    body: &[u8],
    settings: &LookupSettings,
    now: &DateTime<Utc>,
) -> Result<Lookup, LookupError> {
    let wire: WireRequest = serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
        .map_err(|e| {
            LookupError::Serialization(format!("the request is not a LookupEvents request: {e}"))
        })?;
    let region = wire.region.unwrap_or_else(|| settings.home_region.clone());
    if !settings.served_regions.contains(&region) {
        return Err(LookupError::Serialization(format!(
            "region {region} is not served by this deployment (served: {})",
            settings.served_regions.join(", ")
        )));
    }
    if let Some(c) = wire.event_category {
        return Err(LookupError::Serialization(format!(
            "EventCategory {c:?} is not supported: the history holds management events only"
        )));
    }
    let attribute = match wire.lookup_attributes {
        None => None,
        Some(list) => {
            let bad = |why: String| Err(LookupError::InvalidLookupAttributes(why));
            if list.len() != 1 {
                return bad(format!(
                    "LookupAttributes must contain exactly one attribute, got {}",
                    list.len()
                ));
            }
            let a = &list[0];
            let key = a.attribute_key.as_deref().unwrap_or_default();
            let Some(attribute) = LookupAttribute::parse(key) else {
                return bad(format!(
                    "AttributeKey {key:?} is not one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId"
                ));
            };
            let value = a.attribute_value.clone().unwrap_or_default();
            if value.is_empty() || value.len() > MAX_INDEXED_VALUE_BYTES {
                return bad(format!(
                    "AttributeValue must be 1 to {MAX_INDEXED_VALUE_BYTES} bytes long"
                ));
            }
            Some((attribute, value))
        }
    };
    let explicit_end = wire.end_time.map(|t| wire_time(t, "EndTime")).transpose()?;
    let explicit_start = wire
        .start_time
        .map(|t| wire_time(t, "StartTime"))
        .transpose()?;
    let end = explicit_end.unwrap_or(*now);
    let start = explicit_start.unwrap_or(*now - Duration::days(i64::from(settings.retention_days)));
    if start > end {
        return Err(LookupError::InvalidTimeRange(
            "StartTime must be before EndTime".into(),
        ));
    }
    let max_results = wire.max_results.unwrap_or(MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&max_results) {
        return Err(LookupError::InvalidMaxResults(format!(
            "MaxResults must be from 1 to {MAX_RESULTS}, got {max_results}"
        )));
    }
    let binding = binding(
        &region,
        attribute.as_ref(),
        explicit_start,
        explicit_end,
        max_results,
    );
    let mut lookup = Lookup {
        region,
        attribute,
        start,
        end,
        max_results: max_results as usize,
        position: Position {
            start: start.timestamp(),
            end: end.timestamp(),
            ..Position::default()
        },
        binding,
    };
    if let Some(token) = wire.next_token {
        let position = open_token(&token, &lookup, &settings.token_key)?;
        // The range is the first page's (its defaults were resolved then).
        let (Some(start), Some(end)) = (
            DateTime::from_timestamp(position.start, 0),
            DateTime::from_timestamp(position.end, 0),
        ) else {
            return Err(LookupError::InvalidNextToken(
                "NextToken is malformed".into(),
            ));
        };
        (lookup.start, lookup.end) = (start, end);
        lookup.position = position;
    }
    Ok(lookup)
}

/// What a token is bound to: the request's parameters as sent (defaults
/// unresolved), so a token works only with the request that issued it.
fn binding(
    region: &str,
    attribute: Option<&(LookupAttribute, String)>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    max_results: i64,
) -> String {
    let attribute = attribute
        .map(|(a, v)| format!("{}={v}", a.as_str()))
        .unwrap_or_default();
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp().to_string()).unwrap_or_default();
    let canonical = format!(
        "{region}\n{attribute}\n{}\n{}\n{max_results}",
        time(start),
        time(end)
    );
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref()[..16])
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn seal_token(position: &Position, lookup: &Lookup, key: &[u8]) -> String {
    let body = json!({ "p": position, "b": lookup.binding }).to_string();
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        body.as_bytes(),
    );
    format!("{}.{}", B64.encode(body), B64.encode(mac.as_ref()))
}

fn open_token(token: &str, lookup: &Lookup, key: &[u8]) -> Result<Position, LookupError> {
    let bad = |why: &str| LookupError::InvalidNextToken(format!("NextToken {why}"));
    let (body, mac) = token.split_once('.').ok_or_else(|| bad("is malformed"))?;
    let body = B64.decode(body).map_err(|_| bad("is malformed"))?;
    let mac = B64.decode(mac).map_err(|_| bad("is malformed"))?;
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        &body,
        &mac,
    )
    .map_err(|_| bad("was not issued by this service or was altered"))?;
    #[derive(Deserialize)]
    struct Sealed {
        p: Position,
        b: String,
    }
    let sealed: Sealed = serde_json::from_slice(&body).map_err(|_| bad("is malformed"))?;
    if sealed.b != lookup.binding {
        return Err(bad(
            "belongs to a request with other LookupAttributes, time range, MaxResults or region",
        ));
    }
    Ok(sealed.p)
}

/// One stored history item as a lookup reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub sk: String,
    pub record: String,
}

/// The reads a lookup needs from the history (DynamoDB in production).
pub trait HistoryReader: Send + Sync {
    /// One page of partition `pk`, sort keys in `[low, high]`, newest first,
    /// after `after`, at most `limit` items read, items whose `expiresAt` is
    /// at or before `now` left out. Returns the items and the last sort key
    /// read when more may follow.
    fn query(
        &self,
        pk: &str,
        low: &str,
        high: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> impl Future<Output = Result<(Vec<Stored>, Option<String>), StoreError>> + Send;
    /// One item, unless absent or expired at `now`.
    fn get(
        &self,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// One page of results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The records, newest first, as stored (CloudTrail JSON).
    pub records: Vec<String>,
    pub next_token: Option<String>,
}

fn day(t: &DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// Reads one page.
pub async fn lookup<R: HistoryReader>(
    reader: &R,
    request: &Lookup,
    settings: &LookupSettings,
    now: &DateTime<Utc>,
) -> Result<Page, LookupError> {
    let now_s = now.timestamp();
    let in_range = |t: &DateTime<Utc>| *t >= request.start && *t <= request.end;
    if let Some((LookupAttribute::EventId, id)) = &request.attribute {
        let found = reader
            .get(&primary_pk(&request.region, id), PRIMARY_SK, now_s)
            .await?;
        let records = found
            .into_iter()
            .filter(|rec| {
                serde_json::from_str::<Record>(rec).is_ok_and(|r| in_range(&r.event_time))
            })
            .collect();
        return Ok(Page {
            records,
            next_token: None,
        });
    }
    let first_day = day(&request.start);
    let this_day = match &request.position.day {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .filter(|d| *d >= first_day && *d <= day(&request.end))
            .ok_or_else(|| LookupError::InvalidNextToken("NextToken is out of range".into()))?,
        None => day(&request.end),
    };
    let day_text = this_day.format("%Y-%m-%d").to_string();
    let pk = match &request.attribute {
        Some((a, v)) => attribute_pk(&request.region, *a, v, &day_text),
        None => time_pk(&request.region, &day_text),
    };
    let low = format!("{}#", crate::time::format(&request.start));
    let high = format!("{}#\u{10FFFF}", crate::time::format(&request.end));
    let (stored, last) = reader
        .query(
            &pk,
            &low,
            &high,
            request.position.after.as_deref(),
            request.max_results,
            now_s,
        )
        .await?;
    let (start, end) = (request.start.timestamp(), request.end.timestamp());
    let next = match last {
        Some(after) => Some(Position {
            start,
            end,
            day: Some(day_text),
            after: Some(after),
        }),
        None => this_day
            .pred_opt()
            .filter(|d| *d >= first_day)
            .map(|d| Position {
                start,
                end,
                day: Some(d.format("%Y-%m-%d").to_string()),
                after: None,
            }),
    };
    Ok(Page {
        records: stored.into_iter().map(|s| s.record).collect(),
        next_token: next.map(|p| seal_token(&p, request, &settings.token_key)),
    })
}

/// One event of the response, in CloudTrail's `LookupEvents` output shape
/// (`EventTime` as epoch seconds, as the AWS JSON protocol sends it).
pub fn event_json(record_json: &str) -> Option<Value> {
    let r: Record = serde_json::from_str(record_json).ok()?;
    let resources: Vec<Value> = r
        .resources
        .iter()
        .flatten()
        .map(|res| {
            json!({
                "ResourceType": res.resource_type,
                "ResourceName": res.arn,
            })
        })
        .collect();
    Some(json!({
        "EventId": r.event_id,
        "EventName": r.event_name,
        "ReadOnly": if r.read_only.unwrap_or(false) { "true" } else { "false" },
        "AccessKeyId": r.user_identity.access_key_id,
        "EventTime": r.event_time.timestamp(),
        "EventSource": r.event_source,
        "Username": r.lookup_username(),
        "Resources": resources,
        "CloudTrailEvent": record_json,
    }))
}

/// The response body of a page.
pub fn response_json(page: &Page) -> Value {
    let events: Vec<Value> = page.records.iter().filter_map(|r| event_json(r)).collect();
    let mut v = json!({ "Events": events });
    if let Some(t) = &page.next_token {
        v["NextToken"] = json!(t);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LookupSettings {
        LookupSettings {
            home_region: "eu-west-1".into(),
            served_regions: vec!["eu-west-1".into(), "us-east-1".into()],
            retention_days: 90,
            token_key: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    fn now() -> DateTime<Utc> {
        crate::time::parse("2026-11-24T12:00:00Z").unwrap()
    }

    fn parse(body: &str) -> Result<Lookup, LookupError> {
        parse_request(body.as_bytes(), &settings(), &now())
    }

    #[test]
    fn defaults_are_the_retention_window_fifty_results_and_the_home_region() {
        let l = parse("{}").unwrap();
        assert_eq!(l.region, "eu-west-1");
        assert_eq!(l.end, now());
        assert_eq!(l.start, now() - Duration::days(90));
        assert_eq!(l.max_results, 50);
        assert_eq!(l.attribute, None);
        assert_eq!(parse("").unwrap(), l);
        assert_eq!(l.position.day, None);
    }

    #[test]
    fn times_come_as_epoch_seconds_or_iso_8601() {
        let l = parse(r#"{"StartTime": 1795489200, "EndTime": "2026-11-24T04:00:00Z"}"#).unwrap();
        assert_eq!(l.start, crate::time::parse("2026-11-24T03:00:00Z").unwrap());
        assert_eq!(l.end, crate::time::parse("2026-11-24T04:00:00Z").unwrap());
        let l = parse(r#"{"StartTime": 1795489200.5}"#).unwrap();
        assert_eq!(l.start.timestamp(), 1795489200);
    }

    #[test]
    fn every_bad_input_gets_cloudtrails_error_name() {
        for (body, code) in [
            (
                r#"{"LookupAttributes": []}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "A"}, {"AttributeKey": "EventName", "AttributeValue": "B"}]}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"LookupAttributes": [{"AttributeKey": "Colour", "AttributeValue": "red"}]}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": ""}]}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"LookupAttributes": [{}]}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"StartTime": "2026-11-24T05:00:00Z", "EndTime": "2026-11-24T04:00:00Z"}"#,
                "InvalidTimeRangeException",
            ),
            (r#"{"StartTime": "yesterday"}"#, "InvalidTimeRangeException"),
            (r#"{"MaxResults": 0}"#, "InvalidMaxResultsException"),
            (r#"{"MaxResults": 51}"#, "InvalidMaxResultsException"),
            (r#"{"NextToken": "abc"}"#, "InvalidNextTokenException"),
            (r#"{"#, "SerializationException"),
            (r#"[]"#, "SerializationException"),
            (r#"{"Region": "ap-south-1"}"#, "SerializationException"),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.code(), code, "{body}: {err}");
            assert_eq!(err.status(), 400);
        }
        let long = "x".repeat(MAX_INDEXED_VALUE_BYTES + 1);
        let body = format!(
            r#"{{"LookupAttributes": [{{"AttributeKey": "Username", "AttributeValue": "{long}"}}]}}"#
        );
        assert_eq!(
            parse(&body).unwrap_err().code(),
            "InvalidLookupAttributesException"
        );
    }

    #[test]
    fn tokens_are_bound_to_the_request_and_cannot_be_altered() {
        let l = parse(r#"{"MaxResults": 5}"#).unwrap();
        let p = Position {
            start: l.start.timestamp(),
            end: l.end.timestamp(),
            day: Some("2026-11-24".into()),
            after: Some("2026-11-24T01:00:00Z#x".into()),
        };
        let token = seal_token(&p, &l, &settings().token_key);
        let with = |extra: &str| format!(r#"{{"MaxResults": 5, "NextToken": "{token}"{extra}}}"#);
        assert_eq!(parse(&with("")).unwrap().position, p);
        // A later page keeps the first page's defaulted range, though "now" moved.
        let later = parse_request(
            with("").as_bytes(),
            &settings(),
            &(now() + Duration::minutes(5)),
        )
        .unwrap();
        assert_eq!((later.start, later.end), (l.start, l.end));
        // Other parameters: refused.
        let other = format!(r#"{{"MaxResults": 6, "NextToken": "{token}"}}"#);
        assert_eq!(
            parse(&other).unwrap_err().code(),
            "InvalidNextTokenException"
        );
        let other = with(r#", "Region": "us-east-1""#);
        assert_eq!(
            parse(&other).unwrap_err().code(),
            "InvalidNextTokenException"
        );
        // Altered position or MAC: refused.
        let (body, mac) = token.split_once('.').unwrap();
        let mut forged = B64.decode(body).unwrap();
        let at = forged.iter().position(|b| *b == b'x').unwrap();
        forged[at] = b'y';
        let forged = format!("{}.{mac}", B64.encode(forged));
        let req = format!(r#"{{"MaxResults": 5, "NextToken": "{forged}"}}"#);
        assert_eq!(parse(&req).unwrap_err().code(), "InvalidNextTokenException");
        // Issued with another key: refused.
        let stranger = seal_token(&p, &l, b"another key, another service!!!!");
        let req = format!(r#"{{"MaxResults": 5, "NextToken": "{stranger}"}}"#);
        assert_eq!(parse(&req).unwrap_err().code(), "InvalidNextTokenException");
    }
}

/// CloudTrail's `X-Amz-Target` for LookupEvents (AWS JSON 1.1).
pub const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// The AWS JSON 1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An HTTP answer: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// One HTTP request to the lookup endpoint (a Lambda function URL):
/// `POST`, a LookupEvents body, and — when a CloudTrail client calls —
/// `X-Amz-Target: …LookupEvents`. Errors are AWS JSON protocol errors
/// (`{"__type": …, "message": …}`) with status 400, or 500 for the store's.
pub async fn http<R: HistoryReader>(
    reader: &R,
    settings: &LookupSettings,
    method: &str,
    target: Option<&str>,
    body: &[u8],
    now: &DateTime<Utc>,
) -> HttpResponse {
    let error = |status: u16, code: &str, message: String| HttpResponse {
        status,
        body: json!({ "__type": code, "message": message }).to_string(),
    };
    if !method.eq_ignore_ascii_case("POST") {
        return error(
            405,
            "MethodNotAllowedException",
            format!("{method} is not allowed: POST a LookupEvents request"),
        );
    }
    if let Some(t) = target.filter(|t| *t != TARGET) {
        return error(
            400,
            "UnknownOperationException",
            format!("{t} is not supported: this endpoint answers {TARGET} only"),
        );
    }
    let result = match parse_request(body, settings, now) {
        Ok(request) => lookup(reader, &request, settings, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(page) => HttpResponse {
            status: 200,
            body: response_json(&page).to_string(),
        },
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(error = %e, "lookup failed");
            }
            error(e.status(), e.code(), e.to_string())
        }
    }
}

/// The CSV columns of an export, after the CloudTrail console's event
/// history download.
pub const CSV_COLUMNS: [&str; 12] = [
    "Event ID",
    "Event time",
    "User name",
    "Event name",
    "Resource type",
    "Resource name",
    "AWS access key",
    "Event source",
    "AWS region",
    "Error code",
    "Source IP address",
    "Read only",
];

/// A cell as a spreadsheet may safely open it: a value starting with `=`,
/// `+`, `-`, `@` (or a tab or carriage return) would be read as a formula,
/// so it gets a leading `'`.
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// One record as a CSV row of [`CSV_COLUMNS`] (cells neutralised).
pub fn csv_row(record_json: &str) -> Option<Vec<String>> {
    let r: Record = serde_json::from_str(record_json).ok()?;
    let join = |f: &dyn Fn(&crate::model::Resource) -> Option<&str>| {
        r.resources
            .iter()
            .flatten()
            .filter_map(f)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cells = [
        r.event_id.clone(),
        crate::time::format(&r.event_time),
        r.lookup_username().unwrap_or_default().to_owned(),
        r.event_name.clone(),
        join(&|x| x.resource_type.as_deref()),
        join(&|x| x.arn.as_deref()),
        r.user_identity.access_key_id.clone().unwrap_or_default(),
        r.event_source.clone(),
        r.aws_region.clone(),
        r.error_code.clone().unwrap_or_default(),
        r.source_ip_address.clone().unwrap_or_default(),
        r.read_only.unwrap_or(false).to_string(),
    ];
    Some(cells.iter().map(|c| neutralise(c)).collect())
}

#[cfg(test)]
mod export_tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_untouched() {
        for bad in ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        for ok in ["bob", "arn:aws:iam::1:role/x", "2026-11-24T01:00:00Z", ""] {
            assert_eq!(neutralise(ok), ok);
        }
    }

    #[test]
    fn a_csv_row_has_every_column_and_neutralised_cells() {
        let mut r: Value =
            serde_json::from_str(include_str!("../../events/eventbridge/api-call-write.json"))
                .unwrap();
        let mut record = r["detail"].take();
        record["userIdentity"]["userName"] = json!("=HYPERLINK(\"http://x\")");
        let row = csv_row(&record.to_string()).unwrap();
        assert_eq!(row.len(), CSV_COLUMNS.len());
        assert_eq!(row[0], "a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02");
        assert_eq!(row[1], "2026-11-24T01:04:10Z");
        assert_eq!(row[2], "'=HYPERLINK(\"http://x\")");
        assert_eq!(row[3], "AuthorizeSecurityGroupIngress");
        assert_eq!(row[4], "AWS::EC2::SecurityGroup");
        assert_eq!(row[11], "false");
    }
}
