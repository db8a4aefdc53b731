//! A LookupEvents request: CloudTrail's input (AWS JSON 1.1: times as
//! epoch seconds or ISO-8601 strings), checked, with CloudTrail's error names.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::token::{binding, open_token};
use crate::history::{LookupAttribute, MAX_INDEXED_VALUE_BYTES};
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
    /// `AccountId` names another account on a stack that serves no organization.
    #[error("{0}")]
    OrganizationsNotInUse(String),
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
            Self::OrganizationsNotInUse(_) => "OrganizationsNotInUseException",
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
    /// Another account's history (`AccountId`, an organization's member);
    /// `None`: the stack's own account.
    pub account: Option<String>,
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

impl Lookup {
    /// The history partitions the lookup reads: the account's region and
    /// its global-service events ([`crate::history::account_partition`]).
    pub fn partitions(&self) -> (String, String) {
        let account = self.account.as_deref();
        (
            crate::history::account_partition(account, &self.region),
            crate::history::account_partition(account, crate::history::GLOBAL),
        )
    }
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
    /// The page before read every part's shared index items of `after`'s
    /// bucket (ten minutes), which was settled (`lookup::settled`: no
    /// batch writes to it any more), and `carried` lists the events they
    /// hold below `after`: the next page reads every part from just below
    /// `after` (`lookup::read_part`), not from the bucket's top. False
    /// (tokens issued before 2026-12-04, whose `n` meant a minute's and is
    /// ignored; a bucket still settling; more events than a token carries):
    /// read the bucket from its top.
    #[serde(rename = "u", default, skip_serializing_if = "is_false")]
    pub bucket_carried: bool,
    /// With `bucket_carried`: the part (`lookup::parts` order) and the sort
    /// key after the bucket of each such event.
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<(u16, String)>,
    /// With `bucket_carried`: how many parts the page read. A next page
    /// reading another number (`HistoryShards` changed between pages; the
    /// CLI resumed with another `--history-shards`) would take `carried`'s
    /// part numbers for other partitions: it reads the bucket from its top.
    #[serde(rename = "p", default, skip_serializing_if = "is_zero")]
    pub parts: u16,
    /// For each part of `day` (`lookup::parts` order), the first Query's
    /// `Limit` and the events below which a part read on, from what the
    /// page before read per event it served (`lookup::next_limits`): a
    /// partition of shared items, each listing several events, needs fewer
    /// items for a page than one of events' own items. Empty (a first page,
    /// a new day, tokens issued before it): `MaxResults` each. Only a
    /// page's size and its reads depend on it, never which events it
    /// serves, nor in what order.
    #[serde(rename = "q", default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<[u16; 2]>,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u16) -> bool {
    *n == 0
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
    /// Not CloudTrail's: the account whose history to read (default: the
    /// stack's). CloudTrail takes it from the caller's credentials.
    account_id: Option<String>,
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

/// A JSON 1.1 timestamp member as clients send it: epoch seconds
/// (botocore), or RFC 3339 or numeric text; `None` when it is not a time.
pub fn time_member(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    let t: WireTime = serde_json::from_value(v.clone()).ok()?;
    wire_time(t, "").ok()
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
    /// Shards of the index partitions to read (`HISTORY_SHARDS`): at least
    /// as many as the history was ever written with.
    pub shards: u32,
    /// The stack's account (empty: unknown); its history is the default.
    pub account_id: String,
    /// The stack serves an organization: its members' histories are kept
    /// too, each read alone (`AccountId`).
    pub organization: bool,
}

/// The account a request's `AccountId` names: `None` for the stack's own
/// (or none named), else another account's, which only a stack serving an
/// organization keeps.
fn account(
    named: Option<String>,
    settings: &LookupSettings,
) -> Result<Option<String>, LookupError> {
    let Some(named) = named.filter(|a| *a != settings.account_id) else {
        return Ok(None);
    };
    if !crate::trail::is_account_id(&named) {
        return Err(LookupError::Serialization(format!(
            "AccountId must be 12 digits, got {:?}",
            crate::ingest::normalize::quote_prefix(&named)
        )));
    }
    if !settings.organization {
        return Err(LookupError::OrganizationsNotInUse(format!(
            "AccountId {named} is not this stack's account, and the stack serves no organization (OrganizationId): it keeps its own account's history alone"
        )));
    }
    Ok(Some(named))
}

/// The one lookup attribute of a request, checked.
fn attribute(list: Vec<WireAttribute>) -> Result<(LookupAttribute, String), LookupError> {
    let bad = |why: String| Err(LookupError::InvalidLookupAttributes(why));
    let [a] = list.as_slice() else {
        return bad(format!(
            "LookupAttributes must contain exactly one attribute, got {}",
            list.len()
        ));
    };
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
    Ok((attribute, value))
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
    let account = account(wire.account_id, settings)?;
    if let Some(c) = wire.event_category {
        return Err(LookupError::Serialization(format!(
            "EventCategory {c:?} is not supported: the history holds management events only"
        )));
    }
    let attribute = wire.lookup_attributes.map(attribute).transpose()?;
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
    // A token is bound to the account's partition: for the stack's own
    // account, the region, as before accounts.
    let binding = binding(
        &crate::history::account_partition(account.as_deref(), &region),
        attribute.as_ref(),
        explicit_start,
        explicit_end,
        max_results,
    );
    let mut lookup = Lookup {
        region,
        account,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::lookup::token::{seal_token, B64};
    use base64::Engine as _;

    fn settings() -> LookupSettings {
        LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: "eu-west-1".into(),
            served_regions: vec!["eu-west-1".into(), "us-east-1".into()],
            retention_days: 90,
            token_key: b"0123456789abcdef0123456789abcdef".to_vec(),
            shards: 1,
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
            bucket_carried: true,
            carried: vec![(1, "0:59Z#y".into())],
            parts: 2,
            limits: vec![[3, 1], [50, 20]],
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
