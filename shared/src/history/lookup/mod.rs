//! LookupEvents over the event history (docs/lookup.md;
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

mod export;
mod http;
mod request;
mod token;

pub use export::{csv_row, neutralise, CSV_COLUMNS};
pub use http::{http, HttpResponse, CONTENT_TYPE, INTERNAL_ERROR, TARGET};
pub use request::{
    parse_request, time_member, Lookup, LookupError, LookupSettings, Position, MAX_RESULTS,
};

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::history::{attribute_pk, primary_pk, time_pk, LookupAttribute, PRIMARY_SK};
use crate::model::Record;
use crate::store::StoreError;
use token::seal_token;

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
        "ReadOnly": if r.is_read_only() { "true" } else { "false" },
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
