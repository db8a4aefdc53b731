//! LookupEvents over the event history (docs/lookup.md;
//! docs/event-history.md "How a lookup reads it").
//!
//! - The request is CloudTrail's `LookupEvents` input (AWS JSON 1.1: times
//!   as epoch seconds, or ISO-8601 strings); errors carry CloudTrail's names.
//! - One page is at most two reads: a `Query` of one day's index partition
//!   (an attribute's, or the time index), newest first, `Limit = MaxResults`,
//!   items whose retention has passed filtered out (TTL deletion is lazy),
//!   then one `BatchGetItem` of the page's primary items, which hold the
//!   records (index items written before that layout hold their record and
//!   need none; a primary item not seen yet is read once more, strongly
//!   consistent); an EventId lookup is one `GetItem`. A page can hold fewer
//!   events than asked (expired items, the end of a day); `NextToken` says
//!   where to go on.
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

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::history::{attribute_pk, event_id_of, primary_pk, time_pk, LookupAttribute, PRIMARY_SK};
use crate::model::Record;
use crate::store::StoreError;
use token::seal_token;

/// One index item as a lookup reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub sk: String,
    /// The record JSON, on items of the layout before records were stored
    /// once (none on today's index items: the primary item holds it).
    pub record: Option<String>,
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
    /// The record of one item, unless absent or expired at `now`.
    fn get(
        &self,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The records of the primary items (sort key [`PRIMARY_SK`]) with these
    /// distinct partition keys (any number: the adapter batches them), by
    /// partition key; absent, expired and unreadable ones left out.
    /// `consistent`: a strongly consistent read.
    fn records(
        &self,
        pks: &[String],
        now: i64,
        consistent: bool,
    ) -> impl Future<Output = Result<HashMap<String, String>, StoreError>> + Send;
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
    let primary_of = |sk: &str| event_id_of(sk).map(|id| primary_pk(&request.region, id));
    // Distinct: DynamoDB refuses a batch naming one key twice, and an event
    // is in a partition twice if a re-delivery changed its eventTime.
    let mut wanted: Vec<String> = stored
        .iter()
        .filter(|s| s.record.is_none())
        .filter_map(|s| primary_of(&s.sk))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::new();
    if !wanted.is_empty() {
        found = reader.records(&wanted, now_s, false).await?;
        // The Query and the BatchGetItem are eventually consistent reads of
        // different items: an event recorded a moment ago can have its index
        // item seen and its primary item not yet. Misses are read again,
        // strongly consistent, before they are called missing.
        let missed: Vec<String> = wanted
            .into_iter()
            .filter(|pk| !found.contains_key(pk))
            .collect();
        if !missed.is_empty() {
            found.extend(reader.records(&missed, now_s, true).await?);
        }
    }
    let records = stored
        .into_iter()
        .filter_map(|s| {
            let record = s
                .record
                .or_else(|| primary_of(&s.sk).and_then(|pk| found.get(&pk).cloned()));
            if record.is_none() {
                // The primary item is written before its index items and
                // expires with them: an index item without a readable
                // record is one whose primary item was deleted or altered
                // outside trailkeep.
                tracing::warn!(pk = %pk, sk = %s.sk, "index item without a readable record; left out");
            }
            record
        })
        .collect();
    Ok(Page {
        records,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{index_items, pack, HistoryStore, Item};
    use crate::testkit::MemoryHistory;

    const REGION: &str = "eu-west-1";
    const KEEP: i64 = 4_102_444_800;

    fn event(id: &str, minute: u32) -> (Record, String) {
        let json = json!({
            "eventVersion": "1.09",
            "eventTime": format!("2026-11-24T08:{minute:02}:00Z"),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "awsRegion": REGION,
            "eventID": id,
            "userIdentity": {"type": "IAMUser", "userName": "alice"}
        })
        .to_string();
        (serde_json::from_str(&json).unwrap(), json)
    }

    /// Stores an event as ingest does today: packed primary, keys-only index.
    async fn store(h: &MemoryHistory, id: &str, minute: u32) {
        let (r, json) = event(id, minute);
        let packed = pack(&json);
        let primary = Item {
            pk: primary_pk(REGION, id),
            sk: PRIMARY_SK.into(),
            record: Some(&packed),
            expires_at: KEEP,
        };
        h.put_all(&[primary]).await.unwrap();
        h.put_all(&index_items(&r, REGION, KEEP)).await.unwrap();
    }

    fn settings() -> LookupSettings {
        LookupSettings {
            home_region: REGION.into(),
            served_regions: vec![REGION.into()],
            retention_days: 90,
            token_key: b"unit-test-token-key-of-32-bytes!".to_vec(),
        }
    }

    async fn event_ids(h: &MemoryHistory, body: Value) -> Vec<String> {
        let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
        let request = parse_request(body.to_string().as_bytes(), &settings(), &now).unwrap();
        let page = lookup(h, &request, &settings(), &now).await.unwrap();
        response_json(&page)["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let inner: Value =
                    serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
                assert_eq!(inner["eventID"], e["EventId"]);
                e["EventId"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    fn today() -> Value {
        json!({"StartTime": "2026-11-24T00:00:00Z", "EndTime": "2026-11-24T12:00:00Z"})
    }

    #[tokio::test]
    async fn a_page_holds_records_from_primary_items_and_from_old_layout_index_items() {
        let h = MemoryHistory::default();
        store(&h, "new-1", 1).await;
        store(&h, "new-3", 3).await;
        // An event of the layout before: the record JSON on every item.
        let (old, json) = event("old-2", 2);
        h.put_legacy(&primary_pk(REGION, "old-2"), PRIMARY_SK, &json, KEEP);
        for i in index_items(&old, REGION, KEEP) {
            h.put_legacy(&i.pk, &i.sk, &json, KEEP);
        }
        assert_eq!(event_ids(&h, today()).await, ["new-3", "old-2", "new-1"]);
        let mut by_user = today();
        by_user["LookupAttributes"] =
            json!([{"AttributeKey": "Username", "AttributeValue": "alice"}]);
        assert_eq!(event_ids(&h, by_user).await, ["new-3", "old-2", "new-1"]);
        let mut by_id = today();
        by_id["LookupAttributes"] = json!([{"AttributeKey": "EventId", "AttributeValue": "old-2"}]);
        assert_eq!(event_ids(&h, by_id).await, ["old-2"]);
    }

    #[tokio::test]
    async fn an_unreadable_or_missing_record_is_left_out_and_the_rest_of_the_page_stands() {
        let h = MemoryHistory::default();
        for (id, minute) in [("a", 1), ("b", 2), ("c", 3)] {
            store(&h, id, minute).await;
        }
        // b's primary item altered outside trailkeep; d indexed without one.
        h.corrupt(&primary_pk(REGION, "b"), PRIMARY_SK, b"not deflate at all");
        let (d, _) = event("d", 4);
        h.put_all(&index_items(&d, REGION, KEEP)).await.unwrap();
        assert_eq!(event_ids(&h, today()).await, ["c", "a"]);
        let mut by_id = today();
        by_id["LookupAttributes"] = json!([{"AttributeKey": "EventId", "AttributeValue": "b"}]);
        assert!(event_ids(&h, by_id).await.is_empty());
    }

    #[tokio::test]
    async fn a_primary_item_a_stale_read_misses_is_read_again_strongly_consistent() {
        let h = MemoryHistory::default();
        store(&h, "a", 1).await;
        store(&h, "b", 2).await;
        h.stale_reads(true);
        assert_eq!(event_ids(&h, today()).await, ["b", "a"]);
    }

    #[tokio::test]
    async fn an_event_indexed_twice_in_one_partition_is_read_with_its_key_once() {
        // Two index items of one event (its eventTime changed between two
        // deliveries of the layout before): the batch names its key once
        // (the fake, like DynamoDB, refuses duplicates), both items get it.
        let h = MemoryHistory::default();
        store(&h, "a", 1).await;
        let (moved, _) = event("a", 5);
        h.put_all(&index_items(&moved, REGION, KEEP)).await.unwrap();
        assert_eq!(event_ids(&h, today()).await, ["a", "a"]);
    }
}
