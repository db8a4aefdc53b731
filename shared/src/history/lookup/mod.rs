//! LookupEvents over the event history (docs/lookup.md;
//! docs/event-history.md "How a lookup reads it").
//!
//! - The request is CloudTrail's `LookupEvents` input (AWS JSON 1.1: times
//!   as epoch seconds, or ISO-8601 strings); errors carry CloudTrail's names.
//! - Most pages are two rounds of reads: `Query`s, run together, of one
//!   day's index partitions (an attribute's, or the time index) in the
//!   region's own history and in the global-service events'
//!   ([`GLOBAL`](crate::history::GLOBAL)), newest first, `Limit` a guess on
//!   a first page, on later ones what the page before found a page needs
//!   (carried in its token; parts read too short for a full page read on,
//!   up to [`READ_ON_ROUNDS`] more rounds), items whose retention has passed
//!   filtered out (TTL deletion is lazy); their items merged newest first; then one
//!   `BatchGetItem` of the page's primary items, which hold the records
//!   (index items written before that layout hold their record and need
//!   none; a primary item not seen yet is read once more, strongly
//!   consistent). ReadOnly reads the ReadOnly partition the layout before
//!   wrote, then the time partitions filtered on it from where that read
//!   stopped (a filtered `Query` may be repeated, with a larger `Limit`, to
//!   fill the page). An EventId lookup is one `GetItem` per partition
//!   (each index partition is read in every shard). A page can hold fewer
//!   events than asked (expired items, the end of a day); `NextToken` says
//!   where to go on.
//! - Sort keys are `{eventTime}#{eventID}`, so the order is total and a page
//!   resumes after one key in every partition at once (the last event of a
//!   full page, else where the partitions were read to): events sharing an
//!   eventTime are never skipped or repeated. The page ends where every
//!   partition has been read to, so no partition's unread items can belong
//!   before its last event; an event found in two partitions (a global
//!   event stored in a region's history by the layout before, and again
//!   after) is served once.
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

use std::collections::{HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::history::{
    attribute_pk, bucket_of, event_id_of, is_shared, primary_pk, resources, shard_pk,
    shared_prefix, time_pk, LookupAttribute, BUCKET_LEN, BUCKET_SECONDS, MINUTE_BUCKET_LEN,
    PRIMARY_SK,
};
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
    /// On a shared index item: the sort keys of the events it lists
    /// ([`crate::history::member_sks`]); empty on an event's own item.
    pub members: Vec<String>,
}

/// One partition a lookup reads: a day of one index, optionally only its
/// items with this ReadOnly value (the time index carries it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub pk: String,
    pub read_only: Option<bool>,
}

/// The reads a lookup needs from the history (DynamoDB in production).
pub trait HistoryReader: Send + Sync {
    /// One page of `part`, sort keys in `[low, high]`, newest first,
    /// before `after`, at most `limit` items read, items whose `expiresAt`
    /// is at or before `now` (or that the part's filter refuses) left out.
    /// Returns the items and the last sort key read when more may follow.
    fn query(
        &self,
        part: &Part,
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

/// Queries of a filtered part: each reads `FILTER_GROWTH` times more items
/// than the one before, until the page is full or the day is read.
const FILTERED_QUERIES: u32 = 4;
const FILTER_GROWTH: usize = 4;

/// Rounds of Queries a page may add where its first reads fall short of a
/// page (`lookup`): as deep as the missing events need (`read_on_limit`),
/// then `FILTER_GROWTH` times deeper each.
const READ_ON_ROUNDS: u32 = 3;

/// Queries a part may add, each `FILTER_GROWTH` times larger, to read on
/// past a shared item's key until enough events lie in later buckets
/// (`read_part`): DynamoDB returns at most 1 MB per Query, so a part reads
/// at most ~5 MB of items this way for one page.
const SHARED_QUERIES: u32 = 4;

/// A first page's `Limit` per unfiltered part, before any page has told
/// how many items a page needs: a quarter of the page and two, enough where
/// shared items list a few events each (ingest's batches write them, at
/// any rate above a few events a minute), a round or more of reading on
/// where each event has its own item.
fn first_guess(max_results: usize) -> usize {
    (max_results / 4 + 2).min(max_results)
}

/// The partitions a page of `request` reads on `day`, each with the history
/// partition (region or [`GLOBAL`](crate::history::GLOBAL)) whose primary items it leads to: every
/// shard of the index (`shards`; the layout before sharding is shard 0).
fn parts(request: &Lookup, day: &str, shards: u32) -> Vec<(String, Part)> {
    let mut parts = Vec::new();
    let (own, global) = request.partitions();
    for region in [own.as_str(), global.as_str()] {
        let mut part = |pk: String, read_only| {
            for shard in 0..shards.max(1) {
                let pk = shard_pk(pk.clone(), shard);
                parts.push((region.to_owned(), Part { pk, read_only }));
            }
        };
        match &request.attribute {
            None => part(time_pk(region, day), None),
            Some((LookupAttribute::ReadOnly, value)) => {
                // The time index carries ReadOnly; the layout before wrote a
                // ReadOnly item per event in the region's partitions (global
                // events included), read until they expire (the read can go
                // a retention period after every stack upgraded:
                // docs/event-history.md "No way back").
                let ro = match value.as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                };
                if ro.is_some() {
                    part(time_pk(region, day), ro);
                }
                // Written before sharding (and before member accounts had
                // a history): never sharded, never a member's.
                if region != global && request.account.is_none() {
                    parts.push((
                        region.to_owned(),
                        Part {
                            pk: attribute_pk(region, LookupAttribute::ReadOnly, value, day),
                            read_only: None,
                        },
                    ));
                }
            }
            Some((LookupAttribute::ResourceName, v)) => {
                for value in resources::lookup_values(v) {
                    part(
                        attribute_pk(region, LookupAttribute::ResourceName, value, day),
                        None,
                    );
                }
            }
            Some((a, v)) => part(attribute_pk(region, *a, v, day), None),
        }
    }
    parts
}

/// One part read for a page: its items and the last sort key read when
/// more may follow. A page that resumes below `after` reads the part from
/// the top of `after`'s bucket (ten minutes; `query_high`), so that it
/// reads the bucket's shared items (they sort at the top of their bucket,
/// above `after`, and may list events below it), unless the page before
/// read them all in every part and the token carries the events they list
/// below `after` (`bucket_carried`: the bucket is settled): then from just
/// below `after`, re-reading nothing (`lookup` adds the carried events).
/// Reading goes on while nothing below `after` was
/// read yet, or the last key read is a shared item's (more of its bucket's
/// may follow, listing events above the ones read) and fewer than `want`
/// events lie in later buckets (at most `SHARED_QUERIES` more Queries: a
/// page may end at a shared item's key, serving none of its bucket's
/// events, which the next page reads), or, in a filtered part, too few
/// items matched. Each further query reads `FILTER_GROWTH` times more.
async fn read_part<R: HistoryReader>(
    reader: &R,
    part: &Part,
    range: (&str, &str),
    query_high: &str,
    position: &Position,
    (first_limit, want, max_results): (usize, usize, usize),
    now: i64,
) -> Result<(Vec<Stored>, Option<String>), StoreError> {
    let (low, after) = (range.0, position.after.as_deref());
    // Nothing to read at or below the low bound (the floor may be a key of
    // this partition: DynamoDB refuses a start key at the end of the range
    // it queries).
    if after.is_some_and(|a| a <= low) {
        return Ok((Vec::new(), None));
    }
    let start = after.filter(|_| position.bucket_carried);
    let (mut items, mut last) = reader
        .query(part, low, query_high, start, first_limit, now)
        .await?;
    let (mut limit, mut filtered_queries, mut shared_queries) = (first_limit, 1, 0);
    while let Some(from) = last.clone().filter(|from| from.as_str() > low) {
        // Below a shared item's key, its bucket may list more events (in
        // shared items not read yet, or their own), so only the events of
        // later buckets are known to be all there is. Reading on for that
        // stops after `SHARED_QUERIES` more Queries (items past their
        // retention, not yet deleted, count against `Limit` and list
        // nothing: a stretch of them would otherwise be read in one
        // request); the page then ends at this shared item's key at the
        // lowest, and the next one reads on from its bucket's top.
        let above = after.is_some_and(|a| from.as_str() >= a);
        let shared = !above
            && shared_queries < SHARED_QUERIES
            && is_shared(&from)
            && complete_above(&items, &from, range, after) < want;
        let short = part.read_only.is_some()
            && filtered_queries < FILTERED_QUERIES
            && items.len() < max_results;
        if !(above || shared || short) {
            break;
        }
        if short {
            filtered_queries += 1;
        }
        if shared {
            shared_queries += 1;
        }
        // Past the bucket's shared items (they sort at its top), the items
        // down to `after` are ones the page leaves out: skip them, but for
        // the shared items of `after`'s minute, at that minute's top, which
        // may list events below `after` (another minute's list only events
        // of that minute).
        let from = match after {
            Some(a) if above && !is_bucket_shared(&from) => {
                let top = minute_top(a);
                if from > top {
                    top
                } else if !is_shared(&from) {
                    a.to_owned()
                } else {
                    limit *= FILTER_GROWTH;
                    from
                }
            }
            _ => {
                limit *= FILTER_GROWTH;
                from
            }
        };
        let (more, next) = reader
            .query(part, low, query_high, Some(&from), limit, now)
            .await?;
        items.extend(more);
        last = next;
    }
    Ok((items, last))
}

/// Whether `sk` is a shared item of a ten-minute bucket (not of a
/// minute: [`MINUTE_BUCKET_LEN`]).
fn is_bucket_shared(sk: &str) -> bool {
    sk.as_bytes().get(BUCKET_LEN) == Some(&b'~')
}

/// The first `Limit` of a page's reading on (`lookup`): the items that
/// `missing` events take at the density of the items `reads` read (one
/// per event where events have their own; a fraction where shared items
/// list several), and the most shared items read of one bucket or minute
/// (before a partition serves any event of an older bucket it reads all
/// that bucket's shared items), and two; at most `max_results`.
fn read_on_limit<T>(
    reads: &[(usize, T, Vec<Stored>, Option<String>)],
    missing: usize,
    max_results: usize,
) -> usize {
    let items: usize = reads.iter().map(|(_, _, items, _)| items.len()).sum();
    let events: usize = reads
        .iter()
        .flat_map(|(_, _, items, _)| items)
        .map(|s| s.members.len().max(1))
        .sum();
    let block = shared_block(
        reads
            .iter()
            .flat_map(|(_, _, items, _)| items)
            .map(|s| s.sk.as_str()),
    );
    ((missing * items).div_ceil(events.max(1)) + block + 2).clamp(1, max_results)
}

/// The most shared items among `keys` of one bucket or one minute (a
/// minute's sort above that minute): what a partition reads of an older
/// bucket before it serves any of its events.
fn shared_block<'a>(keys: impl Iterator<Item = &'a str>) -> usize {
    let mut per_prefix: HashMap<&str, usize> = HashMap::new();
    for prefix in keys.filter_map(shared_prefix) {
        *per_prefix.entry(prefix).or_default() += 1;
    }
    per_prefix.into_values().max().unwrap_or(0)
}

/// Most events a token carries (`Position::carried`, ~50-180 bytes each);
/// past it, the next page reads the bucket's shared items again.
const MAX_CARRIED: usize = 64;

/// The events of `after`'s bucket below `after`, inside `range`, that the
/// page's shared items above `after` list (`listed`: the part's index, the
/// item's key, the event's key), as the part's index and the key after
/// the bucket; `None` where more than [`MAX_CARRIED`]. The page read every
/// part from above `after`'s bucket's shared items (they sort at its top)
/// down to `after` at least, so these are all of them.
fn carried(
    listed: &[(usize, String, String)],
    after: &str,
    range: (&str, &str),
) -> Option<Vec<(u16, String)>> {
    let bucket = bucket_of(after);
    let mut carried: Vec<(u16, String)> = listed
        .iter()
        .filter(|(_, item, m)| {
            item.as_str() > after
                && bucket_of(item) == bucket
                && m.as_str() < after
                && m.as_str() >= range.0
                && m.as_str() <= range.1
        })
        .filter_map(|(i, _, m)| Some((u16::try_from(*i).ok()?, m.strip_prefix(bucket)?.to_owned())))
        .collect();
    carried.sort_unstable();
    carried.dedup();
    (carried.len() <= MAX_CARRIED).then_some(carried)
}

/// Just above every key of `after`'s minute, its shared items
/// (`{minute}~{hash}`) included; `after` itself where it is a ten-minute
/// bucket's shared item (no minute's lies above it in its bucket).
fn minute_top(after: &str) -> String {
    match after.get(..MINUTE_BUCKET_LEN) {
        Some(minute) if !minute.ends_with('~') => format!("{minute}~~"),
        _ => after.to_owned(),
    }
}

/// How long after a bucket ends a page trusts that no shared item of it is
/// still to come: ingest writes an event within about two and a half
/// minutes of its time (CloudTrail's ~20 s to EventBridge, the queue's
/// batching window of up to 120 s, the invocation), or up to ~31 minutes
/// later when a batch is retried (5 receives, each up to ~425 s after the
/// one before: the batching window, then the 300 s visibility timeout that
/// ingest's receipt confirmation sets, then the invocation).
const LATE_BATCH_SECONDS: i64 = 36 * 60;

/// Whether `bucket` (`YYYY-MM-DDTHH:M`, ten minutes) ended
/// [`LATE_BATCH_SECONDS`] before `now`: a page that met no shared item in
/// it lets the next one skip reading it again; for a newer bucket the next
/// page reads it again from its top, in case a batch wrote one since.
fn settled(bucket: &str, now: &DateTime<Utc>) -> bool {
    chrono::NaiveDateTime::parse_from_str(&format!("{bucket}0"), "%Y-%m-%dT%H:%M").is_ok_and(|m| {
        m.and_utc().timestamp() + BUCKET_SECONDS + LATE_BATCH_SECONDS <= now.timestamp()
    })
}

/// The events an index item leads to: itself, or the ones a shared item
/// lists.
fn listed(item: Stored) -> Vec<Stored> {
    if item.members.is_empty() {
        return vec![item];
    }
    item.members
        .into_iter()
        .map(|sk| Stored {
            sk,
            record: None,
            members: Vec::new(),
        })
        .collect()
}

/// The next page's `[first Limit, events wanted]` for each part, from the
/// items each read at or above `after` (where the page ended) and the
/// events each gave the page (`served`), scaled to a page of
/// `max_results`: the items a quarter more and two more, so that a page of
/// like density needs one Query per part, and the events a quarter fewer
/// (at least one), below which a part that stopped at a shared item reads
/// on (`read_part`; without a hint, one: the page reads on). A part that read one
/// item per event gets `max_results` items; one whose shared items list
/// four events each, about a third of it; one that gave the page nothing,
/// a first page's guess. A hint too small makes the page read on
/// (`lookup`), never wrong. Empty when the page served nothing.
fn next_limits(
    read_keys: &[(usize, Vec<String>)],
    served: &[usize],
    (after, carried): (&str, Option<&[(u16, String)]>),
    max_results: usize,
) -> Vec<[u16; 2]> {
    let page: usize = served.iter().sum();
    if page == 0 {
        return Vec::new();
    }
    let to_u16 = |n: usize| n.clamp(1, max_results) as u16;
    let mut limits = vec![[to_u16(max_results); 2]; served.len()];
    for (i, keys) in read_keys {
        // A part that gave the page nothing says nothing of how deep the
        // next page must read it (a read of one item would stop at its
        // next item, and the page read on from there): a first page's
        // guess.
        if served[*i] == 0 {
            limits[*i] = [to_u16(first_guess(max_results)), 1];
            continue;
        }
        let used = keys.iter().filter(|k| k.as_str() >= after).count();
        let want = served[*i] * max_results * 3 / (page * 4);
        // A page that crosses into an older bucket (or minute) reads all
        // its shared items (at its top) before it can serve any of its
        // events: unless the token carries the events the part is to give,
        // room for as many as this part held in one bucket saves a round.
        let carried = carried.map_or(0, |c| {
            c.iter()
                .filter(|(part, _)| usize::from(*part) == *i)
                .count()
        });
        let block = if carried >= want.max(1) {
            0
        } else {
            shared_block(keys.iter().map(String::as_str))
        };
        limits[*i] = [
            to_u16((used * max_results * 5).div_ceil(page * 4) + 2 + block),
            to_u16(want),
        ];
    }
    limits
}

/// The highest of the last keys the parts were read to: only items at or
/// above it are known to be all there is, in every part.
fn last_read<T>(reads: &[(usize, T, Vec<Stored>, Option<String>)]) -> Option<String> {
    reads
        .iter()
        .filter_map(|(_, _, _, last)| last.clone())
        .max()
}

/// How many of the events `items` lead to lie in later buckets than the
/// shared item `last` (in later minutes, if it is a minute's: its bucket's
/// items sort above it, and were read), inside the range, and below `after`.
fn complete_above(items: &[Stored], last: &str, range: (&str, &str), after: Option<&str>) -> usize {
    let top = format!("{}~", shared_prefix(last).unwrap_or(bucket_of(last)));
    let counts = |sk: &str| {
        sk > top.as_str() && sk >= range.0 && sk <= range.1 && after.is_none_or(|a| sk < a)
    };
    items
        .iter()
        .map(|s| {
            if s.members.is_empty() {
                usize::from(counts(&s.sk))
            } else {
                s.members.iter().filter(|m| counts(m)).count()
            }
        })
        .sum()
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
        // A regional event is in its region's partition, a global one in
        // the global partition (or, stored by the layout before, in the
        // region's); an event ID names one event.
        let (own, global) = request.partitions();
        let mut found = reader.get(&primary_pk(&own, id), PRIMARY_SK, now_s).await?;
        if found.is_none() {
            found = reader
                .get(&primary_pk(&global, id), PRIMARY_SK, now_s)
                .await?;
        }
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
    let parts = parts(request, &day_text, settings.shards);
    // The events the token carries are numbered by part: they stand only
    // for the parts the page before read (else the bucket is read from its
    // top, as without them).
    let position = Position {
        bucket_carried: request.position.bucket_carried
            && usize::from(request.position.parts) == parts.len(),
        ..request.position.clone()
    };
    let position = &position;
    let low = format!("{}#", crate::time::format(&request.start));
    let high = format!("{}#\u{10FFFF}", crate::time::format(&request.end));
    let after = request.position.after.as_deref();
    // Shared index items sort at the top of their bucket: a page reads from
    // the top of the bucket of the end, or of `after` (or from just below
    // `after` where that bucket has none: `read_part`), and what is above
    // the page's start, or out of the range, is left out below.
    let top = after.map_or(high.as_str(), |a| a.min(high.as_str()));
    let query_high = format!("{}~\u{10FFFF}", bucket_of(top));
    // Each part's first `Limit`: what the page before found a page needs
    // (`next_limits`), on its day; on a first page (of the lookup, or of a
    // day) a guess (`first_guess`), the read going on below where
    // that falls short; a filtered part's, `MaxResults`.
    let hinted = request.position.day.as_deref() == Some(day_text.as_str())
        && request.position.limits.len() == parts.len();
    let first_limit = |i: usize, part: &Part| {
        let max = request.max_results;
        match request.position.limits.get(i) {
            _ if part.read_only.is_some() => (max, max, max),
            Some(&[limit, want]) if hinted => (
                usize::from(limit).clamp(1, max),
                usize::from(want).clamp(1, max),
                max,
            ),
            _ => (first_guess(max), 1, max),
        }
    };
    // Reads every part whose filter is `filtered`, together, from `low`:
    // (its place in `parts`, the history partition it leads to, its items,
    // its last key read).
    let read = |filtered: bool, low: String| {
        let (request_high, high, parts) = (high.as_str(), &query_high, &parts);
        async move {
            let reads = parts
                .iter()
                .enumerate()
                .filter(move |(_, (_, p))| p.read_only.is_some() == filtered)
                .map(|(i, (region, p))| {
                    let low = low.as_str();
                    async move {
                        read_part(
                            reader,
                            p,
                            (low, request_high),
                            high,
                            position,
                            first_limit(i, p),
                            now_s,
                        )
                        .await
                        .map(|(items, last)| (i, region.as_str(), items, last))
                    }
                });
            futures::future::try_join_all(reads).await
        }
    };
    // Whether an event's key belongs on this page, given the frontier.
    let serves = |sk: &str, frontier: Option<&str>| {
        sk >= low.as_str()
            && sk <= high.as_str()
            && after.is_none_or(|a| sk < a)
            && frontier.is_none_or(|f| sk >= f)
    };
    // The events of `after`'s bucket below `after` that its shared items
    // list, carried in the token where the page before read all of them
    // (`Position::carried`): one item of each part as if read again (its
    // key, `{bucket}~`, is no written item's).
    let carry = |reads: &mut [(usize, &str, Vec<Stored>, Option<String>)]| {
        let Some(a) = after.filter(|_| position.bucket_carried) else {
            return;
        };
        for (i, _, items, _) in reads {
            let members: Vec<String> = request
                .position
                .carried
                .iter()
                .filter(|(part, _)| usize::from(*part) == *i)
                .map(|(_, m)| format!("{}{m}", bucket_of(a)))
                .collect();
            if !members.is_empty() {
                items.push(Stored {
                    sk: format!("{}~", bucket_of(a)),
                    record: None,
                    members,
                });
            }
        }
    };
    // The unfiltered parts first (all of them, but for ReadOnly).
    let mut reads = read(false, low.clone()).await?;
    carry(&mut reads);
    // A read too short for this page (a part's next item lies above where
    // the others would fill it: its hint or first guess was too small)
    // reads on where the part(s) holding the frontier stopped, as many
    // items as the events missing need at the density read so far (and a
    // bucket's shared items more, at most a page: `read_on_limit`), then
    // `FILTER_GROWTH` times more each round, until the page is full,
    // they are read to their end, or `READ_ON_ROUNDS` rounds are spent
    // (items past their retention but not yet deleted count against
    // `Limit` and serve nothing: a day of them would otherwise be read in
    // one request). A page that stops at the cap ends at the frontier, as
    // any page does, and the next one goes on from there.
    let mut limit = None;
    for _ in 0..READ_ON_ROUNDS {
        let Some(frontier) = last_read(&reads) else {
            break;
        };
        let events: HashSet<String> = reads
            .iter()
            .flat_map(|(_, _, items, _)| items.iter().cloned().flat_map(listed))
            .map(|s| s.sk)
            .filter(|sk| serves(sk, Some(&frontier)))
            .collect();
        if events.len() >= request.max_results || frontier.as_str() <= low.as_str() {
            break;
        }
        let round = *limit.get_or_insert_with(|| {
            read_on_limit(
                &reads,
                request.max_results - events.len(),
                request.max_results,
            )
        });
        let more = reads
            .iter_mut()
            .filter(|(_, _, _, last)| last.as_deref() == Some(frontier.as_str()))
            .map(|read| {
                let (part, frontier, low) = (&parts[read.0].1, &frontier, &low);
                let query_high = query_high.as_str();
                async move {
                    reader
                        .query(part, low, query_high, Some(frontier), round, now_s)
                        .await
                        .map(|more| (read, more))
                }
            });
        for ((_, _, items, last), (more, next)) in futures::future::try_join_all(more).await? {
            items.extend(more);
            *last = next;
        }
        limit = Some(round.saturating_mul(FILTER_GROWTH));
        // A read that did not move the frontier down would repeat itself.
        if last_read(&reads).is_some_and(|f| f >= frontier) {
            break;
        }
    }
    // Then the filtered ones, which need not read below the highest key the
    // unfiltered parts stopped at: this page serves nothing below it (on a
    // day before the upgrade the filtered time partition matches nothing,
    // and would otherwise be read to its end for every page).
    let floor = last_read(&reads).map_or(low.clone(), |f| f.max(low.clone()));
    let mut filtered = read(true, floor).await?;
    carry(&mut filtered);
    reads.extend(filtered);
    // Every part has been read down to its last key read (or to its end):
    // only items at or after the highest of those are known to be all there
    // is, in every part.
    let frontier = last_read(&reads);
    // The events shared items list, by part, with the shared item's key
    // (every part was read from above its page's start, or with what the
    // token carried, down to the frontier, or to its end).
    let listed_by_shared: Vec<(usize, String, String)> = reads
        .iter()
        .flat_map(|(i, _, items, _)| items.iter().map(move |s| (*i, s)))
        .flat_map(|(i, s)| s.members.iter().map(move |m| (i, s.sk.clone(), m.clone())))
        .collect();
    // Each part's items' keys (not a carried one's), for the next page's
    // limits.
    let read_keys: Vec<(usize, Vec<String>)> = reads
        .iter()
        .map(|(i, _, items, _)| {
            let keys = items.iter().filter(|s| !s.sk.ends_with('~'));
            (*i, keys.map(|s| s.sk.clone()).collect())
        })
        .collect();
    let mut merged: Vec<(usize, &str, Stored)> = reads
        .into_iter()
        .flat_map(|(i, region, items, _)| {
            items
                .into_iter()
                .flat_map(listed)
                .map(move |s| (i, region, s))
        })
        .filter(|(_, _, s)| serves(&s.sk, frontier.as_deref()))
        .collect();
    merged.sort_by(|a, b| b.2.sk.cmp(&a.2.sk));
    merged.dedup_by(|a, b| a.2.sk == b.2.sk);
    let full = merged.len() > request.max_results;
    merged.truncate(request.max_results);
    // The events each part gave this page, for the next page's limits.
    let mut served = vec![0; parts.len()];
    for (i, _, _) in &merged {
        served[*i] += 1;
    }
    let merged: Vec<(&str, Stored)> = merged.into_iter().map(|(_, r, s)| (r, s)).collect();
    let (start, end) = (request.start.timestamp(), request.end.timestamp());
    let resume = if full {
        merged.last().map(|(_, s)| s.sk.clone())
    } else {
        frontier
    };
    let next = match resume {
        Some(after) => {
            // A settled bucket gets no more shared items: the next page
            // needs only those this one read, whose events below `after`
            // the token carries, and reads on from just below `after`.
            let carried = (!is_shared(&after) && settled(bucket_of(&after), now))
                .then(|| carried(&listed_by_shared, &after, (&low, &high)))
                .flatten();
            Some(Position {
                start,
                end,
                limits: next_limits(
                    &read_keys,
                    &served,
                    (&after, carried.as_deref()),
                    request.max_results,
                ),
                day: Some(day_text),
                bucket_carried: carried.is_some(),
                carried: carried.unwrap_or_default(),
                parts: u16::try_from(parts.len()).unwrap_or(0),
                after: Some(after),
            })
        }
        None => this_day
            .pred_opt()
            .filter(|d| *d >= first_day)
            .map(|d| Position {
                start,
                end,
                day: Some(d.format("%Y-%m-%d").to_string()),
                after: None,
                bucket_carried: false,
                carried: Vec::new(),
                parts: 0,
                limits: Vec::new(),
            }),
    };
    let primary_of = |region: &str, sk: &str| event_id_of(sk).map(|id| primary_pk(region, id));
    // Distinct: DynamoDB refuses a batch naming one key twice, and an event
    // is in a partition twice if a re-delivery changed its eventTime.
    let mut wanted: Vec<String> = merged
        .iter()
        .filter(|(_, s)| s.record.is_none())
        .filter_map(|(region, s)| primary_of(region, &s.sk))
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
    let records = merged
        .into_iter()
        .filter_map(|(region, s)| {
            let record = s
                .record
                .or_else(|| primary_of(region, &s.sk).and_then(|pk| found.get(&pk).cloned()));
            if record.is_none() {
                // The primary item is written before its index items and
                // expires with them: an index item without a readable
                // record is one whose primary item was deleted or altered
                // outside trailkeep.
                tracing::warn!(region, sk = %s.sk, "index item without a readable record; left out");
            }
            record
        })
        .filter(|record| match &request.attribute {
            // The name partition of a bucket, an instance or a key also
            // holds other types' resources of that name.
            Some((LookupAttribute::ResourceName, v)) if resources::lookup_values(v).len() > 1 => {
                serde_json::from_str::<Record>(record).is_ok_and(|r| resources::matches(&r, v))
            }
            _ => true,
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
    let resources: Vec<Value> = resources::lookup_resources(&r)
        .iter()
        .map(|res| {
            json!({
                "ResourceType": res.resource_type,
                "ResourceName": res.shown(),
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
    use crate::history::GLOBAL;
    use crate::history::{index_items, index_sk, pack, HistoryStore, Item};
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
        store_with(h, id, minute, json!({})).await;
    }

    fn settings() -> LookupSettings {
        LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: REGION.into(),
            served_regions: vec![REGION.into()],
            retention_days: 90,
            token_key: b"unit-test-token-key-of-32-bytes!".to_vec(),
            shards: 1,
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

    /// Stores record `json` (event `id` at `minute`, with `body`'s fields)
    /// as ingest does today.
    async fn store_with(h: &MemoryHistory, id: &str, minute: u32, body: Value) -> String {
        let (_, json) = event(id, minute);
        let mut v: Value = serde_json::from_str(&json).unwrap();
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let json = v.to_string();
        let r: Record = serde_json::from_str(&json).unwrap();
        let packed = pack(&json);
        let primary = Item {
            pk: primary_pk(REGION, id),
            sk: PRIMARY_SK.into(),
            record: Some(&packed),
            read_only: None,
            expires_at: KEEP,
            ..Item::default()
        };
        h.put_all(&[primary]).await.unwrap();
        h.put_all(&index_items(&r, REGION, KEEP, 1)).await.unwrap();
        json
    }

    #[tokio::test]
    async fn resource_names_find_by_name_and_by_arn_and_a_bucket_arn_not_a_role_of_its_name() {
        let h = MemoryHistory::default();
        let s3 = json!({"eventSource": "s3.amazonaws.com", "eventName": "CreateBucket",
                        "requestParameters": {"bucketName": "deploy"}});
        store_with(&h, "bucket", 1, s3).await;
        let iam = json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateRole",
                         "requestParameters": {"roleName": "deploy"}});
        store_with(&h, "role", 2, iam).await;
        let listed = json!({"eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy",
            "resources": [{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::deploy"}]});
        let listed = store_with(&h, "listed", 3, listed).await;
        // The layout before indexed the bucket under its ARN alone.
        let (_, old) = event("old", 4);
        let mut old: Value = serde_json::from_str(&old).unwrap();
        old["resources"] = json!([{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::deploy"}]);
        let old = old.to_string();
        let sk = index_sk(&crate::time::parse("2026-11-24T08:04:00Z").unwrap(), "old");
        let pk = attribute_pk(
            REGION,
            LookupAttribute::ResourceName,
            "arn:aws:s3:::deploy",
            "2026-11-24",
        );
        h.put_legacy(&pk, &sk, &old, KEEP);

        let by = |v: &str| {
            let mut b = today();
            b["LookupAttributes"] = json!([{"AttributeKey": "ResourceName", "AttributeValue": v}]);
            b
        };
        assert_eq!(
            event_ids(&h, by("deploy")).await,
            ["listed", "role", "bucket"]
        );
        assert_eq!(
            event_ids(&h, by("arn:aws:s3:::deploy")).await,
            ["old", "listed", "bucket"]
        );
        // One a page: the role's item is read and left out, no event twice.
        let pages = pages(&h, by("arn:aws:s3:::deploy"), 1).await;
        assert_eq!(pages.concat(), ["old", "listed", "bucket"], "{pages:?}");
        assert_eq!(
            event_ids(&h, by("arn:aws:iam::111122223333:role/deploy")).await,
            Vec::<String>::new(),
            "a role named in the parameters has no ARN to be found by"
        );
        let shown = event_json(&listed).unwrap();
        assert_eq!(
            shown["Resources"],
            json!([{"ResourceType": "AWS::S3::Bucket", "ResourceName": "deploy"}])
        );
    }

    #[tokio::test]
    async fn a_page_holds_records_from_primary_items_and_from_old_layout_index_items() {
        let h = MemoryHistory::default();
        store(&h, "new-1", 1).await;
        store(&h, "new-3", 3).await;
        // An event of the layout before: the record JSON on every item.
        let (old, json) = event("old-2", 2);
        h.put_legacy(&primary_pk(REGION, "old-2"), PRIMARY_SK, &json, KEEP);
        for i in index_items(&old, REGION, KEEP, 1) {
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
        h.put_all(&index_items(&d, REGION, KEEP, 1)).await.unwrap();
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

    /// An event `id` at `second` past 08:00, global (IAM) or regional
    /// (EC2), read-only or not, stored as ingest stores it today.
    async fn store_shaped(h: &MemoryHistory, id: &str, second: u32, global: bool, ro: bool) {
        store_sharded(h, id, second, global, ro, 1).await;
    }

    /// Event `id` at `second` past 08:00, global (IAM) or regional (EC2),
    /// read-only or not, normalized.
    fn shaped_event(
        id: &str,
        second: u32,
        global: bool,
        ro: bool,
    ) -> crate::ingest::normalize::Normalized {
        let json = json!({
            "eventVersion": "1.09",
            "eventTime": format!("2026-11-24T08:{:02}:{:02}Z", second / 60, second % 60),
            "eventSource": if global { "iam.amazonaws.com" } else { "ec2.amazonaws.com" },
            "eventName": if ro { "DescribeThings" } else { "CreateThing" },
            "awsRegion": if global { "us-east-1" } else { REGION },
            "eventID": id,
            "readOnly": ro,
            "userIdentity": {"type": "IAMUser", "userName": "alice"}
        })
        .to_string();
        crate::ingest::normalize::Normalized {
            index: 0,
            record: serde_json::from_str(&json).unwrap(),
            json,
        }
    }

    /// Issue 17: an organization's stack keeps each member's history in
    /// its own partitions; a lookup reads one account's, the stack's own
    /// unless `AccountId` names another.
    #[tokio::test]
    async fn each_account_has_its_own_history_and_a_page_never_mixes_accounts() {
        use crate::history::{claim_noting_in, write_index, HistorySettings};
        const OWN: &str = "111122223333";
        const MEMBER: &str = "222233334444";
        let h = MemoryHistory::default();
        let hs = HistorySettings {
            retention_days: 90,
            shards: 1,
        };
        // GIVEN alike events of the stack's account and of a member: two
        // regional, one global each, interleaved in time
        for (account, prefix) in [(None, "own"), (Some(MEMBER), "member")] {
            for (i, kind) in ["1", "2", "g"].into_iter().enumerate() {
                let second = 2 * i as u32 + u32::from(account.is_some());
                let n = shaped_event(&format!("{prefix}-{kind}"), second, kind == "g", false);
                let (_, _, entries) = claim_noting_in(&h, &hs, &n, None, account).await.unwrap();
                write_index(&h, entries, &hs).await.unwrap();
            }
        }
        let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
        let mut s = settings();
        (s.account_id, s.organization) = (OWN.into(), true);
        let h = &h;
        let page = |body: Value, s: LookupSettings| async move {
            let request = parse_request(body.to_string().as_bytes(), &s, &now)?;
            let page = lookup(h, &request, &s, &now).await?;
            let json = response_json(&page);
            let ids: Vec<String> = json["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["EventId"].as_str().unwrap().to_owned())
                .collect();
            Ok::<_, LookupError>((ids, json["NextToken"].as_str().map(str::to_owned)))
        };
        let with = |extra: Value| {
            let mut body = today();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };

        // THEN a lookup reads the stack's account by default, or when named
        let own = vec!["own-g", "own-2", "own-1"];
        assert_eq!(page(today(), s.clone()).await.unwrap().0, own);
        let named = page(with(json!({"AccountId": OWN})), s.clone()).await;
        assert_eq!(named.unwrap().0, own);
        // AND the member's when named: its regional and global events alone
        let member = page(with(json!({"AccountId": MEMBER})), s.clone()).await;
        assert_eq!(member.unwrap().0, ["member-g", "member-2", "member-1"]);
        // AND by attribute and by event ID, within the account named
        let by_name = with(json!({"AccountId": MEMBER,
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateThing"}]}));
        assert_eq!(page(by_name, s.clone()).await.unwrap().0.len(), 3);
        let by_id = |account: &str, id: &str| {
            with(json!({"AccountId": account,
                "LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": id}]}))
        };
        assert_eq!(
            page(by_id(MEMBER, "member-g"), s.clone()).await.unwrap().0,
            ["member-g"]
        );
        assert!(page(by_id(OWN, "member-1"), s.clone())
            .await
            .unwrap()
            .0
            .is_empty());
        assert!(page(by_id(MEMBER, "own-1"), s.clone())
            .await
            .unwrap()
            .0
            .is_empty());

        // AND pages of one account never continue into another's: a token
        // of the member's lookup is refused for the stack's account
        let small = with(json!({"AccountId": MEMBER, "MaxResults": 2}));
        let (first, token) = page(small.clone(), s.clone()).await.unwrap();
        assert_eq!(first, ["member-g", "member-2"]);
        let mut next = small.clone();
        next["NextToken"] = json!(token.clone().unwrap());
        assert_eq!(page(next.clone(), s.clone()).await.unwrap().0, ["member-1"]);
        next.as_object_mut().unwrap().remove("AccountId");
        let err = page(next, s.clone()).await.unwrap_err();
        assert_eq!(err.code(), "InvalidNextTokenException", "{err}");

        // AND an account that is not 12 digits is refused, as is another
        // account on a stack that serves no organization
        for bad in ["../global", "2222333344445", "global", ""] {
            let err = page(with(json!({"AccountId": bad})), s.clone())
                .await
                .unwrap_err();
            assert_eq!(err.code(), "SerializationException", "{bad}: {err}");
        }
        s.organization = false;
        let err = page(with(json!({"AccountId": MEMBER})), s.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "OrganizationsNotInUseException", "{err}");
        assert_eq!(page(today(), s).await.unwrap().0, own);
    }

    /// As [`store_shaped`], by an ingest writing `shards` shards.
    async fn store_sharded(
        h: &MemoryHistory,
        id: &str,
        second: u32,
        global: bool,
        ro: bool,
        shards: u32,
    ) {
        let settings = crate::history::HistorySettings {
            retention_days: 90,
            shards,
        };
        let n = shaped_event(id, second, global, ro);
        crate::history::record(h, &settings, &n).await.unwrap();
    }

    /// Stores record `json` in the region's partitions as the layout before
    /// 2026-12-01 did: a ReadOnly item, no `ro` on the time item (and a
    /// global event in the region's partitions, not the global ones).
    async fn store_before_2026_12(h: &MemoryHistory, json: &str) {
        let r: Record = serde_json::from_str(json).unwrap();
        let packed = pack(json);
        let mut items = index_items(&r, REGION, KEEP, 1);
        for i in &mut items {
            i.read_only = None;
        }
        items.push(Item {
            pk: attribute_pk(
                REGION,
                LookupAttribute::ReadOnly,
                if r.is_read_only() { "true" } else { "false" },
                &crate::time::day(&r.event_time),
            ),
            sk: items[0].sk.clone(),
            record: None,
            read_only: None,
            expires_at: KEEP,
            ..Item::default()
        });
        items.push(Item {
            pk: primary_pk(REGION, &r.event_id),
            sk: PRIMARY_SK.into(),
            record: Some(&packed),
            read_only: None,
            expires_at: KEEP,
            ..Item::default()
        });
        h.put_all(&items).await.unwrap();
    }

    /// Every page of `body` at `max` results, followed to the end: the event
    /// IDs of each page.
    async fn pages(h: &MemoryHistory, body: Value, max: usize) -> Vec<Vec<String>> {
        pages_of(h, body, max, 1).await
    }

    /// As [`pages`], reading `shards` shards.
    async fn pages_of(h: &MemoryHistory, body: Value, max: usize, shards: u32) -> Vec<Vec<String>> {
        pages_hinted(h, body, max, shards, &[]).await
    }

    /// As [`pages_of`], each token's per-part limits replaced by `hints`
    /// (in turn; none: as issued), as if the pages before had found other
    /// densities.
    async fn pages_hinted(
        h: &MemoryHistory,
        body: Value,
        max: usize,
        shards: u32,
        hints: &[[u16; 2]],
    ) -> Vec<Vec<String>> {
        let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
        pages_at(h, body, max, shards, hints, now).await
    }

    /// [`pages_hinted`], at `now`.
    async fn pages_at(
        h: &MemoryHistory,
        mut body: Value,
        max: usize,
        shards: u32,
        hints: &[[u16; 2]],
        now: DateTime<Utc>,
    ) -> Vec<Vec<String>> {
        let settings = LookupSettings {
            account_id: String::new(),
            organization: false,
            shards,
            ..settings()
        };
        body["MaxResults"] = json!(max);
        let mut pages = Vec::new();
        loop {
            let request = parse_request(body.to_string().as_bytes(), &settings, &now).unwrap();
            let page = lookup(h, &request, &settings, &now).await.unwrap();
            let ids = page
                .records
                .iter()
                .map(|r| serde_json::from_str::<Record>(r).unwrap().event_id)
                .collect::<Vec<_>>();
            assert!(ids.len() <= max, "{ids:?}");
            pages.push(ids);
            assert!(pages.len() < 500, "no end of pages: {pages:?}");
            match page.next_token {
                Some(t) if !hints.is_empty() => {
                    let mut p = token::open_token(&t, &request, &settings.token_key).unwrap();
                    for (i, l) in p.limits.iter_mut().enumerate() {
                        *l = hints[i % hints.len()];
                    }
                    body["NextToken"] = json!(seal_token(&p, &request, &settings.token_key));
                }
                Some(t) => body["NextToken"] = json!(t),
                None => return pages,
            }
        }
    }

    #[tokio::test]
    async fn global_events_are_stored_once_and_merged_into_the_regions_pages_in_order() {
        let h = MemoryHistory::default();
        // r = regional, g = global, one second apart, newest last.
        let shapes = ["r0", "g1", "g2", "r3", "g4", "r5", "r6", "g7"];
        for (s, id) in shapes.iter().enumerate() {
            store_shaped(&h, id, s as u32, id.starts_with('g'), false).await;
        }
        let newest_first = ["g7", "r6", "r5", "g4", "r3", "g2", "g1", "r0"];
        for max in 1..=9 {
            let pages = pages(&h, today(), max).await;
            let all: Vec<String> = pages.concat();
            assert_eq!(all, newest_first, "MaxResults {max}: {pages:?}");
        }
        // Stored once: one primary item, under the global partition.
        let mut by_id = today();
        by_id["LookupAttributes"] = json!([{"AttributeKey": "EventId", "AttributeValue": "g4"}]);
        assert_eq!(event_ids(&h, by_id).await, ["g4"]);
        let mut by_source = today();
        by_source["LookupAttributes"] =
            json!([{"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}]);
        assert_eq!(
            pages(&h, by_source, 2).await.concat(),
            ["g7", "g4", "g2", "g1"]
        );
    }

    #[tokio::test]
    async fn read_only_filters_the_time_partitions_and_reads_the_old_read_only_items_too() {
        let h = MemoryHistory::default();
        // 40 read-only events and, among them, 3 writes: a ReadOnly=false
        // page must look past many read-only items to fill itself.
        for s in 0..43u32 {
            let write = [5, 20, 41].contains(&s);
            store_shaped(&h, &format!("e{s:02}"), s, s % 4 == 0, !write).await;
        }
        // Two events of the layout before: a ReadOnly item each, and no `ro`
        // on their time item (so the filter on the time partition skips them).
        for (id, minute, ro) in [("old-w", 50, false), ("old-r", 51, true)] {
            let (_, json) = event(id, minute);
            let mut v: Value = serde_json::from_str(&json).unwrap();
            v["readOnly"] = json!(ro);
            store_before_2026_12(&h, &v.to_string()).await;
        }
        let by_ro = |v: &str| {
            let mut b = today();
            b["LookupAttributes"] = json!([{"AttributeKey": "ReadOnly", "AttributeValue": v}]);
            b
        };
        for max in [1, 2, 3, 50] {
            let writes = pages(&h, by_ro("false"), max).await;
            assert_eq!(
                writes.concat(),
                ["old-w", "e41", "e20", "e05"],
                "{max}: {writes:?}"
            );
            let reads = pages(&h, by_ro("true"), max).await.concat();
            let mut expected: Vec<String> = (0..43u32)
                .filter(|s| ![5, 20, 41].contains(s))
                .map(|s| format!("e{s:02}"))
                .collect();
            expected.push("old-r".into());
            expected.reverse();
            assert_eq!(reads, expected, "{max}");
        }
        // A page of two writes among 40 reads is filled by the filtered
        // queries' growing limits, not left for later pages.
        assert_eq!(pages(&h, by_ro("false"), 2).await[1], ["e20", "e05"]);
        // Neither value: nothing (CloudTrail's values are "true" and "false").
        assert_eq!(
            pages(&h, by_ro("TRUE"), 50).await.concat(),
            Vec::<String>::new()
        );
    }

    /// Every page of a lookup of `body` (MaxResults `max`, one shard),
    /// each token's limits replaced by `hints` if some; per page, the
    /// items and Queries it read; per token, the limits it carried.
    async fn walk(
        h: &MemoryHistory,
        mut body: Value,
        max: usize,
        hints: Option<[u16; 2]>,
    ) -> (Vec<Vec<String>>, Vec<(usize, usize)>, Vec<Vec<[u16; 2]>>) {
        let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
        let settings = settings();
        body["MaxResults"] = json!(max);
        let (mut pages, mut cost, mut limits) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let request = parse_request(body.to_string().as_bytes(), &settings, &now).unwrap();
            let (items, queries) = (h.items_read(), h.queries());
            let page = lookup(h, &request, &settings, &now).await.unwrap();
            cost.push((h.items_read() - items, h.queries() - queries));
            pages.push(
                page.records
                    .iter()
                    .map(|r| serde_json::from_str::<Record>(r).unwrap().event_id)
                    .collect::<Vec<_>>(),
            );
            assert!(pages.len() < 50, "{pages:?}");
            let Some(t) = page.next_token else {
                return (pages, cost, limits);
            };
            let mut p = token::open_token(&t, &request, &settings.token_key).unwrap();
            limits.push(p.limits.clone());
            for l in p.limits.iter_mut() {
                *l = hints.unwrap_or(*l);
            }
            body["NextToken"] = json!(seal_token(&p, &request, &settings.token_key));
        }
    }

    #[tokio::test]
    async fn a_page_reading_into_expired_items_stops_after_its_rounds_and_the_next_goes_on() {
        // 3,000 items past their retention, not yet deleted (TTL deletion
        // is lazy; a retention made longer also leaves them in range),
        // between two live events at each end: every Query that reaches
        // them counts them against its Limit and serves nothing. A page
        // must not read them all in one request.
        let h = MemoryHistory::default();
        for (id, minute) in [("new1", 56), ("new0", 55), ("old1", 6), ("old0", 5)] {
            store(&h, id, minute).await;
        }
        let expired: Vec<Item> = (0..3000)
            .map(|n| Item {
                pk: time_pk(REGION, "2026-11-24"),
                sk: format!(
                    "2026-11-24T08:{:02}:{:02}Z#gone-{n:04}",
                    10 + n / 75,
                    n % 60
                ),
                read_only: Some(false),
                expires_at: 1,
                ..Item::default()
            })
            .collect();
        h.put_all(&expired).await.unwrap();
        let (pages, cost, _) = walk(&h, today(), 50, None).await;
        assert_eq!(pages.concat(), ["new1", "new0", "old1", "old0"]);
        // Each page: the two partitions' first reads (a first guess, or
        // the token's), at most two more Queries each to reach where the
        // page before stopped, and three rounds of at most 50, 200 and 800
        // items.
        for &(items, queries) in &cost {
            assert!(items <= 2 * 50 + 1050 && queries <= 7, "{cost:?}");
        }
        assert!(pages.len() >= 3, "{pages:?} {cost:?}");
    }

    #[tokio::test]
    async fn a_page_reading_into_expired_shared_items_stops_after_its_rounds_and_the_next_goes_on()
    {
        // As above, with 20,000 shared items past their retention (two
        // members each): a partition whose last key read is a shared
        // item's reads on, each Query 4x larger, until enough events lie
        // in later minutes, and these list none.
        let h = MemoryHistory::default();
        for (id, minute) in [("new1", 56), ("new0", 55), ("old1", 6), ("old0", 5)] {
            store(&h, id, minute).await;
        }
        let expired: Vec<Item> = (0..20_000)
            .map(|n| {
                let bucket = format!("2026-11-24T08:{:02}", 10 + n / 500);
                let members = vec![
                    format!(":{:02}Z#gone-{n:05}a", n % 60),
                    format!(":{:02}Z#gone-{n:05}b", n % 60),
                ];
                Item {
                    pk: time_pk(REGION, "2026-11-24"),
                    sk: crate::history::shared_sk(&bucket, &members),
                    read_only: Some(false),
                    expires_at: 1,
                    members,
                    ..Item::default()
                }
            })
            .collect();
        h.put_all(&expired).await.unwrap();
        // DynamoDB reads at most 1 MB per Query: here, 1,000 items.
        h.page_items(1000);
        let (pages, cost, _) = walk(&h, today(), 50, None).await;
        assert_eq!(pages.concat(), ["new1", "new0", "old1", "old0"]);
        // The region's first Query, up to four more reading down to where
        // the page before stopped (that minute's 500 items: 14, 56, 224,
        // 896), four reading on past shared items; the global one's; the
        // page's three rounds of reading on (measured: at most 9; 22 with
        // no bound on reading past shared items).
        for &(_, queries) in &cost {
            assert!(queries <= 1 + 4 + 4 + 1 + 3, "{cost:?}");
        }
        assert!(pages.len() >= 3, "{pages:?} {cost:?}");
    }

    #[tokio::test]
    async fn a_page_ends_where_every_partition_has_been_read_to() {
        // One partition's time index starts with expired items (TTL
        // deletion is lazy): a Query of it reads them and returns nothing
        // but how far it read. The other partition's older events must wait
        // until it has been read past them. Both ways round.
        for (expired_in, global_first) in [(REGION, true), (GLOBAL, false)] {
            let h = MemoryHistory::default();
            // Oldest to newest: a, b, c; b is in the partition with the
            // expired items.
            store_shaped(&h, "a", 5, global_first, false).await;
            store_shaped(&h, "b", 10, !global_first, false).await;
            store_shaped(&h, "c", 20, global_first, false).await;
            let expired: Vec<Item> = (50..53)
                .map(|s| Item {
                    pk: time_pk(expired_in, "2026-11-24"),
                    sk: format!("2026-11-24T08:00:{s}Z#gone-{s}"),
                    record: None,
                    read_only: Some(false),
                    expires_at: 1,
                    ..Item::default()
                })
                .collect();
            h.put_all(&expired).await.unwrap();
            for max in 1..=4 {
                let pages = pages(&h, today(), max).await;
                assert_eq!(
                    pages.concat(),
                    ["c", "b", "a"],
                    "expired in {expired_in}, MaxResults {max}: {pages:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_filtered_partition_that_stops_short_of_a_match_leaves_a_token_not_a_gap() {
        // 100 read-only events between two writes in the region's time
        // partition: a ReadOnly=false page of one reads 1 + 4 + 16 + 64 = 85
        // time items, then stops with a token; the older write comes on a
        // later page.
        let h = MemoryHistory::default();
        store_shaped(&h, "w-old", 0, false, false).await;
        for s in 1..=100u32 {
            store_shaped(&h, &format!("r{s:03}"), s, false, true).await;
        }
        store_shaped(&h, "w-new", 101, false, false).await;
        let mut writes = today();
        writes["LookupAttributes"] =
            json!([{"AttributeKey": "ReadOnly", "AttributeValue": "false"}]);
        let pages = pages(&h, writes, 1).await;
        assert_eq!(pages.concat(), ["w-new", "w-old"], "{pages:?}");
        assert!(
            pages.iter().any(Vec::is_empty),
            "the growth ran out: {pages:?}"
        );
    }

    #[tokio::test]
    async fn a_global_event_of_the_layout_before_delivered_again_is_one_read_only_result() {
        // The layout before: in the region's partitions, with a ReadOnly item
        // and no `ro`; delivered again after the upgrade: in the global
        // partitions, with `ro` on its time item.
        let h = MemoryHistory::default();
        store_shaped(&h, "g", 3, true, true).await;
        let json = h
            .get(&primary_pk(GLOBAL, "g"), PRIMARY_SK, 0)
            .await
            .unwrap()
            .unwrap();
        store_before_2026_12(&h, &json).await;
        store_shaped(&h, "r", 4, false, true).await;
        let mut reads = today();
        reads["LookupAttributes"] = json!([{"AttributeKey": "ReadOnly", "AttributeValue": "true"}]);
        for max in 1..=3 {
            assert_eq!(
                pages(&h, reads.clone(), max).await.concat(),
                ["r", "g"],
                "{max}"
            );
        }
    }

    #[tokio::test]
    async fn a_sharded_history_pages_in_order_also_across_a_raise_of_the_shard_count() {
        // Events 0–19 written unsharded, 20–39 after a raise to 4 shards.
        let h = MemoryHistory::default();
        let shape = |s: u32| (s.is_multiple_of(3), !s.is_multiple_of(4));
        for s in 0..40u32 {
            let (global, ro) = shape(s);
            let shards = if s < 20 { 1 } else { 4 };
            store_sharded(&h, &format!("e{s:02}"), s, global, ro, shards).await;
        }
        let newest_first = |keep: &dyn Fn(u32) -> bool| -> Vec<String> {
            (0..40u32)
                .rev()
                .filter(|s| keep(*s))
                .map(|s| format!("e{s:02}"))
                .collect()
        };
        let with = |key: &str, value: &str| {
            let mut b = today();
            b["LookupAttributes"] = json!([{"AttributeKey": key, "AttributeValue": value}]);
            b
        };
        for max in [1, 3, 7, 50] {
            let all = pages_of(&h, today(), max, 4).await;
            assert_eq!(
                all.concat(),
                newest_first(&|_| true),
                "MaxResults {max}: {all:?}"
            );
            let iam = pages_of(&h, with("EventSource", "iam.amazonaws.com"), max, 4).await;
            assert_eq!(iam.concat(), newest_first(&|s| shape(s).0), "{max}");
            let writes = pages_of(&h, with("ReadOnly", "false"), max, 4).await;
            assert_eq!(writes.concat(), newest_first(&|s| !shape(s).1), "{max}");
        }
        // Read with too few shards, the sharded events are missed: the
        // shard count may only be raised.
        let unsharded = pages_of(&h, today(), 50, 1).await.concat();
        assert!(
            unsharded.len() < 40 && unsharded.len() >= 20,
            "{unsharded:?}"
        );
    }

    #[tokio::test]
    async fn read_only_over_a_day_of_the_layout_before_pages_without_a_query_outside_its_range() {
        // 60 read-only events of the layout before (a ReadOnly item each, no
        // `ro`): the old partition's page ends on a key the time partition
        // has too, the filtered Queries' floor; none may start at it.
        let h = MemoryHistory::default();
        for s in 0..60u32 {
            let (mut r, _) = event(&format!("o{s:02}"), 0);
            r.event_time =
                crate::time::parse(&format!("2026-11-24T08:{:02}:{:02}Z", s / 60 + 1, s % 60))
                    .unwrap();
            r.read_only = Some(true);
            store_before_2026_12(&h, &serde_json::to_string(&r).unwrap()).await;
        }
        let mut reads = today();
        reads["LookupAttributes"] = json!([{"AttributeKey": "ReadOnly", "AttributeValue": "true"}]);
        let expected: Vec<String> = (0..60u32).rev().map(|s| format!("o{s:02}")).collect();
        for max in [1, 7, 50] {
            assert_eq!(
                pages(&h, reads.clone(), max).await.concat(),
                expected,
                "{max}"
            );
        }
    }

    #[tokio::test]
    async fn a_global_event_also_stored_by_the_layout_before_is_served_once() {
        // Stored in the region's partitions before the upgrade, delivered
        // again after it: in both partitions, one event.
        let h = MemoryHistory::default();
        store_shaped(&h, "g", 3, true, false).await;
        store_shaped(&h, "r", 4, false, false).await;
        let global_pk = primary_pk(GLOBAL, "g");
        let json = h.get(&global_pk, PRIMARY_SK, 0).await.unwrap().unwrap();
        let r: Record = serde_json::from_str(&json).unwrap();
        let packed = pack(&json);
        let mut copy = index_items(&r, REGION, KEEP, 1);
        copy.push(Item {
            pk: primary_pk(REGION, "g"),
            sk: PRIMARY_SK.into(),
            record: Some(&packed),
            read_only: None,
            expires_at: KEEP,
            ..Item::default()
        });
        h.put_all(&copy).await.unwrap();
        for max in 1..=3 {
            assert_eq!(pages(&h, today(), max).await.concat(), ["r", "g"], "{max}");
        }
    }

    #[tokio::test]
    async fn an_event_indexed_twice_in_one_partition_is_read_with_its_key_once() {
        // Two index items of one event (its eventTime changed between two
        // deliveries of the layout before): the batch names its key once
        // (the fake, like DynamoDB, refuses duplicates), both items get it.
        let h = MemoryHistory::default();
        store(&h, "a", 1).await;
        let (moved, _) = event("a", 5);
        h.put_all(&index_items(&moved, REGION, KEEP, 1))
            .await
            .unwrap();
        assert_eq!(event_ids(&h, today()).await, ["a", "a"]);
    }

    /// Events written by ingest batches, their index entries of one batch
    /// together (shared items: `history::items_of`).
    mod shared_items {
        use super::*;
        use crate::history::{claim_noting, write_index, HistorySettings};
        use crate::ingest::normalize::Normalized;
        use proptest::prelude::*;

        /// Event `e{i}` of a shape: [`shaped_event`].
        fn shaped(i: usize, (second, global, ro): (u32, bool, bool)) -> Normalized {
            shaped_event(&format!("e{i:02}"), second, global, ro)
        }

        /// Writes `events` as ingest does, batch by batch.
        async fn ingest(
            h: &MemoryHistory,
            events: &[Normalized],
            batches: &[Vec<usize>],
            shards: u32,
        ) {
            let settings = HistorySettings {
                retention_days: 90,
                shards,
            };
            for batch in batches {
                let mut entries = Vec::new();
                for &i in batch {
                    let (_, _, e) = claim_noting(h, &settings, &events[i], None).await.unwrap();
                    entries.extend(e);
                }
                write_index(h, entries, &settings).await.unwrap();
            }
        }

        /// Writes `events` as ingest did from 2026-12-02 to 2026-12-04
        /// (as it still does where a group's events lie in one minute): a
        /// batch's entries of one partition, ReadOnly value and minute
        /// share an item (`{minute}~{hash}`, members after the minute).
        async fn ingest_by_minute(
            h: &MemoryHistory,
            events: &[Normalized],
            batch: &[usize],
            shards: u32,
        ) {
            use crate::history::{shard_of, shared_sk, Item, MINUTE_BUCKET_LEN as M};
            let settings = HistorySettings {
                retention_days: 90,
                shards,
            };
            let mut entries = Vec::new();
            for &i in batch {
                let (_, _, e) = claim_noting(h, &settings, &events[i], None).await.unwrap();
                entries.extend(e);
            }
            entries.sort();
            entries.dedup_by(|a, b| a.pk == b.pk && a.read_only == b.read_only && a.sk == b.sk);
            let mut items = Vec::new();
            for group in entries.chunk_by(|a, b| {
                a.pk == b.pk && a.read_only == b.read_only && a.sk[..M] == b.sk[..M]
            }) {
                if let [one] = group {
                    items.push(one.clone().own_item());
                    continue;
                }
                let members: Vec<String> = group.iter().map(|e| e.sk[M..].to_owned()).collect();
                let sk = shared_sk(&group[0].sk[..M], &members);
                items.push(Item {
                    pk: shard_pk(group[0].pk.clone(), shard_of(&sk, shards)),
                    sk,
                    read_only: group[0].read_only,
                    expires_at: group.iter().map(|e| e.expires_at).min().unwrap(),
                    members,
                    ..Item::default()
                });
            }
            h.put_all(&items).await.unwrap();
        }

        fn at(second: u32) -> String {
            format!("2026-11-24T08:{:02}:{:02}Z", second / 60, second % 60)
        }

        #[tokio::test]
        async fn a_page_reads_about_the_items_it_needs_once_the_page_before_saw_them() {
            // 300 events, one every 7 s, one in five global: a page of 50
            // holds ~40 of the region's and ~10 global ones.
            let events: Vec<_> = (0..300)
                .map(|i| shaped_event(&format!("e{i:03}"), i as u32 * 7, i % 5 == 0, false))
                .collect();
            let newest_first: Vec<String> = (0..300).rev().map(|i| format!("e{i:03}")).collect();
            // The events ingested in batches of `size`, read page by page.
            let walked = |size: usize, hints: Option<[u16; 2]>| {
                let (events, newest_first) = (&events, &newest_first);
                async move {
                    let h = MemoryHistory::default();
                    let batches: Vec<Vec<usize>> = (0..300)
                        .collect::<Vec<_>>()
                        .chunks(size)
                        .map(<[usize]>::to_vec)
                        .collect();
                    ingest(&h, events, &batches, 1).await;
                    let (pages, cost, limits) = walk(&h, today(), 50, hints).await;
                    assert_eq!(&pages.concat(), newest_first);
                    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
                    assert_eq!(sizes, [50; 6]);
                    (cost, limits)
                }
            };
            // Written one per batch, each event has its own item. A first
            // page's guess (14 items per partition) falls short and reads
            // on; the token then asks for ~40 × 5/4 + 2 of the region's
            // (at most a page) and ~10 × 5/4 + 2 global ones, and every
            // page after the first is one Query per partition.
            let (cost, limits) = walked(1, None).await;
            assert!(cost[0].1 > 2, "{cost:?}");
            assert!(cost[1..].iter().all(|&(_, q)| q == 2), "{cost:?}");
            for l in &limits {
                assert!(l[0][0] == 50 && (12..=20).contains(&l[1][0]), "{limits:?}");
                assert!((25..=35).contains(&l[0][1]), "{limits:?}");
            }
            // With the hints replaced by a first page's guess, those pages
            // read on, as the first does.
            let (cost, _) = walked(1, Some([14, 1])).await;
            assert!(
                cost[1..cost.len() - 1].iter().all(|&(_, q)| q > 2),
                "{cost:?}"
            );
            // Written in batches of 10 (70 s each), the region's shared
            // items list ~4-8 events each and the global ones 1-2: the
            // token asks for fewer items than a page, and a page reads on
            // at most once (to the end of an older bucket's shared items;
            // measured: 19-34 items a page, against 300 / 6 events' own).
            let (cost, limits) = walked(10, None).await;
            assert!(
                cost[1..].iter().all(|&(n, q)| n <= 40 && q <= 3),
                "{cost:?}"
            );
            assert!(limits.iter().all(|l| l[0][0] <= 40), "{limits:?}");
        }

        #[tokio::test]
        async fn a_part_that_served_nothing_gets_a_first_guess_so_pages_stay_full() {
            // 500 events, one every 7 s, one in fifty global, in four
            // shards: the global partition (and a shard, now and then)
            // gives a page nothing; the next page must still read far
            // enough into it that its next item does not end the page.
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..500)
                .map(|i| shaped_event(&format!("e{i:03}"), i as u32 * 7, i % 50 == 0, false))
                .collect();
            let batches: Vec<Vec<usize>> = (0..500).map(|i| vec![i]).collect();
            ingest(&h, &events, &batches, 4).await;
            let newest_first: Vec<String> = (0..500).rev().map(|i| format!("e{i:03}")).collect();
            // The first page (e499-e480) has no global event: the token
            // gives each of the four global shards (parts 4-7, after the
            // region's) a first page's guess, 20 / 4 + 2 items, and wants
            // one event of it, not the one item it read per event served.
            let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
            let settings = LookupSettings {
                shards: 4,
                ..settings()
            };
            let mut body = today();
            body["MaxResults"] = json!(20);
            let request = parse_request(body.to_string().as_bytes(), &settings, &now).unwrap();
            let page = lookup(&h, &request, &settings, &now).await.unwrap();
            let token = page.next_token.unwrap();
            let p = token::open_token(&token, &request, &settings.token_key).unwrap();
            assert_eq!(p.limits[4..], [[7, 1]; 4], "{:?}", p.limits);
            // Every page full, as issued, and with every hint a page deep.
            let mut items_read = Vec::new();
            for hints in [&[][..], &[[20, 20]]] {
                let before = h.items_read();
                let pages = pages_hinted(&h, today(), 20, 4, hints).await;
                items_read.push(h.items_read() - before);
                assert_eq!(pages.concat(), newest_first);
                let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
                assert_eq!(sizes, [20; 25], "{sizes:?}");
            }
            // The hints save reads (measured: 1,178 items, against 1,979
            // with every part of every page after the first read a page
            // deep).
            assert!(items_read[0] * 3 < items_read[1] * 2, "{items_read:?}");
        }

        #[tokio::test]
        async fn a_batch_shares_one_item_per_partition_and_bucket_and_pages_read_into_it() {
            // Twelve events across a ten minutes' end (08:09:55 to
            // 08:10:06), one batch: the time partition has one item per
            // (bucket, ReadOnly), not twelve.
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..12)
                .map(|i| shaped(i, (595 + i as u32, false, i % 3 == 0)))
                .collect();
            ingest(&h, &events, &[(0..12).collect()], 1).await;
            let time_items: Vec<_> = h
                .keys()
                .into_iter()
                .filter(|(pk, _)| pk.contains("#Time#"))
                .map(|(_, sk)| sk)
                .collect();
            assert_eq!(time_items.len(), 4, "{time_items:?}");
            assert!(time_items.iter().all(|sk| crate::history::is_shared(sk)));
            let newest_first: Vec<String> = (0..12).rev().map(|i| format!("e{i:02}")).collect();
            for max in [1, 2, 5, 50] {
                let pages = pages(&h, today(), max).await;
                assert_eq!(pages.concat(), newest_first, "{max}");
                // Each page full but the last: a page reads on to the end
                // of the shared items of the bucket it stops in.
                let (last, full) = pages.split_last().unwrap();
                assert!(full.iter().all(|p| p.len() == max), "{max}: {pages:?}");
                assert!(!last.is_empty() || full.is_empty(), "{max}: {pages:?}");
            }
            // A range ending and starting inside the buckets.
            let mut body = today();
            body["StartTime"] = json!(at(598));
            body["EndTime"] = json!(at(602));
            assert_eq!(
                pages(&h, body, 2).await.concat(),
                ["e07", "e06", "e05", "e04", "e03"]
            );
        }

        /// Which of the events' shapes a lookup matches.
        type Matches = dyn Fn(&(u32, bool, bool)) -> bool;

        #[tokio::test]
        async fn a_resumed_page_reads_from_its_buckets_top_only_where_the_page_before_met_shared_items(
        ) {
            // Four events in one bucket (08:00:10 to 08:00:40), regional,
            // each its own item (one batch each); then four in the next
            // bucket (08:10:50 to 08:11:20) in one batch.
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..8)
                .map(|i| shaped(i, (10 + 10 * i as u32 + 600 * (i as u32 / 4), false, false)))
                .collect();
            ingest(
                &h,
                &events,
                &[vec![0], vec![1], vec![2], vec![3], (4..8).collect()],
                1,
            )
            .await;
            // Pages of one: each reads the region's and the global time
            // partition, one Query each, but where the region's stops at a
            // shared item, or above the page's start, and reads on.
            let newest_first: Vec<String> = (0..8).rev().map(|i| format!("e{i:02}")).collect();
            let walk = |now: &str| {
                let now = crate::time::parse(now).unwrap();
                let h = &h;
                async move {
                    let mut body = json!({"StartTime": "2026-11-24T08:00:00Z",
                        "EndTime": "2026-11-24T08:15:00Z", "MaxResults": 1});
                    let (mut ids, mut per_page) = (Vec::new(), Vec::new());
                    loop {
                        let request =
                            parse_request(body.to_string().as_bytes(), &settings(), &now).unwrap();
                        let before = h.queries();
                        let page = lookup(h, &request, &settings(), &now).await.unwrap();
                        per_page.push(h.queries() - before);
                        ids.extend(
                            page.records
                                .iter()
                                .map(|r| serde_json::from_str::<Record>(r).unwrap().event_id),
                        );
                        match page.next_token {
                            Some(t) => body["NextToken"] = json!(t),
                            None => return (ids, per_page),
                        }
                    }
                }
            };
            // Page 1 reads the region's partition from the top of the end's
            // bucket (08:10-08:19): the first Query, of one item, stops at
            // its shared item, and a second reads on. Every later page
            // resumes in a settled bucket, whose shared items the page
            // before read: its token carries their events below its last
            // (08:10-08:19's), and the page reads from just below it, one
            // Query per partition (the 9th, at the end, is empty).
            let (ids, per_page) = walk("2026-11-24T12:00:00Z").await;
            assert_eq!(ids, newest_first);
            assert_eq!(per_page, [3, 2, 2, 2, 2, 2, 2, 2, 2]);
            // Within LATE_BATCH_SECONDS of a bucket's end a batch could
            // still add a shared item to it: pages resuming in it read it
            // from its top (the first Query stops at a shared item, or at
            // an event above the page's start; a second reads on).
            let (ids, per_page) = walk("2026-11-24T08:15:00Z").await;
            assert_eq!(ids, newest_first);
            assert_eq!(per_page, [3; 9]);
            // The boundary: 08:00-08:09 ends at 08:10, settled 36 minutes
            // later; 08:10-08:19 at 08:56.
            assert_eq!(walk("2026-11-24T08:45:59Z").await.1, [3; 9]);
            assert_eq!(
                walk("2026-11-24T08:46:00Z").await.1,
                [3, 3, 3, 3, 3, 2, 2, 2, 2]
            );
            assert_eq!(
                walk("2026-11-24T08:55:59Z").await.1,
                [3, 3, 3, 3, 3, 2, 2, 2, 2]
            );
            assert_eq!(
                walk("2026-11-24T08:56:00Z").await.1,
                [3, 2, 2, 2, 2, 2, 2, 2, 2]
            );
        }

        #[tokio::test]
        async fn a_resumed_page_reads_every_shared_item_of_its_minute_of_the_layout_before() {
            // Two batches written with minute buckets (2026-12-02 to
            // 2026-12-04), each listing events above and below the others'
            // in 08:14, read in pages of one, each part's first Query one
            // item, while the bucket is still settling (so each page reads
            // it again from its top): a page that resumes in 08:14 must
            // read both minute items, whichever sorts first.
            let h = MemoryHistory::default();
            let events: Vec<_> = [850, 860, 880, 890]
                .into_iter()
                .enumerate()
                .map(|(i, second)| shaped(i, (second, false, false)))
                .collect();
            ingest_by_minute(&h, &events, &[3, 0], 1).await;
            ingest_by_minute(&h, &events, &[2, 1], 1).await;
            let now = crate::time::parse("2026-11-24T08:30:00Z").unwrap();
            for hints in [&[][..], &[[1, 1]]] {
                let pages = pages_at(&h, today(), 1, 1, hints, now).await;
                assert_eq!(pages.concat(), ["e03", "e02", "e01", "e00"], "{hints:?}");
            }
        }

        #[tokio::test]
        async fn where_batches_take_seconds_pages_read_a_minutes_shared_items_at_a_time() {
            // 1,200 events a second apart, in batches of 20 (20 s each):
            // nearly every shared item is a minute's (a batch spans two
            // minutes one time in three), and a page (50 events, under a
            // minute) reads about a minute's worth of items, not its ten
            // minutes' (60 items of 10 events each, by ReadOnly).
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..1200)
                .map(|i| shaped_event(&format!("e{i:04}"), i as u32, false, i % 2 == 0))
                .collect();
            let batches: Vec<Vec<usize>> = (0..1200)
                .collect::<Vec<_>>()
                .chunks(20)
                .map(<[usize]>::to_vec)
                .collect();
            ingest(&h, &events, &batches, 1).await;
            let (pages, cost, _) = walk(&h, today(), 50, None).await;
            let newest_first: Vec<String> = (0..1200).rev().map(|i| format!("e{i:04}")).collect();
            assert_eq!(pages.concat(), newest_first);
            // (measured: at most 16 items a page; 60-120 with every item a
            // bucket's, each page reading all of one that holds 60)
            assert!(cost.iter().all(|&(n, q)| n <= 24 && q == 2), "{cost:?}");
        }

        #[tokio::test]
        async fn carried_events_are_not_taken_for_other_partitions_when_the_shards_change() {
            // Twelve events of one batch in one bucket, one in three
            // global: a page carries events by part number (the global
            // partition is part 1 with one shard). Pages after the first
            // read with two shards (HistoryShards raised, or the CLI
            // resumed with another --history-shards): part 1 is then the
            // region's second shard, so the token's events are not taken
            // for it and the bucket is read from its top.
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..12)
                .map(|i| shaped(i, (600 + i as u32, i % 3 == 0, false)))
                .collect();
            ingest(&h, &events, &[(0..12).collect()], 1).await;
            let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
            let mut body = today();
            body["MaxResults"] = json!(2);
            let mut ids = Vec::new();
            for page in 0.. {
                let settings = LookupSettings {
                    shards: if page == 0 { 1 } else { 2 },
                    ..settings()
                };
                let request = parse_request(body.to_string().as_bytes(), &settings, &now).unwrap();
                let page = lookup(&h, &request, &settings, &now).await.unwrap();
                ids.extend(
                    page.records
                        .iter()
                        .map(|r| serde_json::from_str::<Record>(r).unwrap().event_id),
                );
                let Some(t) = page.next_token else { break };
                if ids.len() == 2 {
                    let p = token::open_token(&t, &request, &settings.token_key).unwrap();
                    assert!(p.bucket_carried && p.parts == 2, "{p:?}");
                    assert!(p.carried.iter().any(|(part, _)| *part == 1), "{p:?}");
                }
                body["NextToken"] = json!(t);
            }
            let newest_first: Vec<String> = (0..12).rev().map(|i| format!("e{i:02}")).collect();
            assert_eq!(ids, newest_first);
        }

        #[tokio::test]
        async fn a_token_carries_at_most_max_carried_events_and_reads_the_bucket_again_past_it() {
            // 200 events of one batch in one bucket (08:10:00 to 08:16:38),
            // settled, in pages of 10: while more than MAX_CARRIED of the
            // bucket's events lie below a page's last, its token carries
            // none and the next page reads the bucket from its top; then
            // the token carries them, and each page is a Query per part.
            let h = MemoryHistory::default();
            let events: Vec<_> = (0..200)
                .map(|i| shaped(i, (600 + 2 * i as u32, false, false)))
                .collect();
            ingest(&h, &events, &[(0..200).collect()], 1).await;
            let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
            let mut body = today();
            body["MaxResults"] = json!(10);
            let (mut ids, mut tokens) = (Vec::new(), Vec::new());
            loop {
                let request =
                    parse_request(body.to_string().as_bytes(), &settings(), &now).unwrap();
                let page = lookup(&h, &request, &settings(), &now).await.unwrap();
                ids.extend(
                    page.records
                        .iter()
                        .map(|r| serde_json::from_str::<Record>(r).unwrap().event_id),
                );
                let Some(t) = page.next_token else { break };
                let p = token::open_token(&t, &request, &settings().token_key).unwrap();
                assert!(
                    p.carried.len() <= MAX_CARRIED && t.len() < 5_000,
                    "{}",
                    t.len()
                );
                tokens.push((p.bucket_carried, p.carried.len()));
                body["NextToken"] = json!(t);
            }
            let newest_first: Vec<String> = (0..200).rev().map(|i| format!("e{i:02}")).collect();
            assert_eq!(ids, newest_first);
            // Below the 14th page's last, 60 events: carried from then on.
            let carrying: Vec<bool> = tokens.iter().map(|t| t.0).collect();
            assert_eq!(carrying[..13], [false; 13], "{tokens:?}");
            assert!(carrying[13..].iter().all(|c| *c), "{tokens:?}");
            assert_eq!(tokens[13].1, 60, "{tokens:?}");
        }

        fn event_shape() -> impl Strategy<Value = (u32, bool, bool)> {
            // Seconds crowd into a few minutes, across a minute's end and
            // ten minutes' ends.
            (
                prop_oneof![0u32..4, 55u32..65, 595u32..605, 1195u32..1205, 0u32..1300],
                any::<bool>(),
                any::<bool>(),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// However events are split into batches (some delivered
            /// again in a later one), whatever the shards and the page
            /// size, every lookup pages through exactly the events it
            /// matches, newest first, none twice.
            #[test]
            fn every_lookup_pages_through_each_matching_event_once_in_order(
                shapes in proptest::collection::vec(event_shape(), 1..40),
                batch_of in proptest::collection::vec(0usize..4, 40),
                again in proptest::collection::vec(any::<bool>(), 40),
                legacy in proptest::collection::vec(0u8..8, 40),
                shards in 1u32..4,
                max in 1usize..8,
                range in (0u32..1300, 0u32..1300),
                hints in proptest::collection::vec((1u16..4, 1u16..4), 0..4),
                settling in any::<bool>(),
            ) {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                rt.block_on(async {
                    let h = MemoryHistory::default();
                    let events: Vec<_> = shapes.iter().enumerate().map(|(i, s)| shaped(i, *s)).collect();
                    let mut batches = vec![Vec::new(); 5];
                    let mut by_minute = [Vec::new(), Vec::new()];
                    for i in 0..events.len() {
                        // One in eight written by the layout before
                        // 2026-12-01 (a ReadOnly item, in the region's
                        // partitions), two in eight by that of minute
                        // buckets (2026-12-02 to 2026-12-04) in two
                        // batches, as a stack upgraded meanwhile holds.
                        match legacy[i] {
                            0 => {
                                store_before_2026_12(&h, &events[i].json).await;
                                continue;
                            }
                            1 | 2 => by_minute[usize::from(legacy[i] - 1)].push(i),
                            _ => batches[batch_of[i]].push(i),
                        }
                        if again[i] {
                            batches[4].push(i);
                        }
                    }
                    ingest(&h, &events, &batches, shards).await;
                    for batch in &by_minute {
                        ingest_by_minute(&h, &events, batch, shards).await;
                    }
                    let (start, end) = (range.0.min(range.1), range.0.max(range.1));
                    let queries: [(Option<(&str, &str)>, &Matches); 4] = [
                        (None, &|_| true),
                        (Some(("EventSource", "iam.amazonaws.com")), &|s| s.1),
                        (Some(("ReadOnly", "false")), &|s| !s.2),
                        (Some(("EventName", "DescribeThings")), &|s| s.2),
                    ];
                    for (attribute, matches) in queries {
                        let mut body = json!({"StartTime": at(start), "EndTime": at(end)});
                        if let Some((k, v)) = attribute {
                            body["LookupAttributes"] = json!([{"AttributeKey": k, "AttributeValue": v}]);
                        }
                        let mut expected: Vec<(u32, String)> = shapes
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| matches(s) && (start..=end).contains(&s.0))
                            .map(|(i, s)| (s.0, format!("e{i:02}")))
                            .collect();
                        expected.sort();
                        expected.reverse();
                        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
                        // (with tokens whose per-part limits are any
                        // small ones, as after pages of other densities)
                        let hints: Vec<[u16; 2]> = hints.iter().map(|&(l, w)| [l, w]).collect();
                        // (at noon, every bucket settled: pages carry
                        // what the next one needs in their tokens; or
                        // minutes after the events, when the next page
                        // reads the bucket again)
                        let now = if settling { "2026-11-24T08:30:00Z" } else { "2026-11-24T12:00:00Z" };
                        let now = crate::time::parse(now).unwrap();
                        let got = pages_at(&h, body, max, shards, &hints, now).await.concat();
                        prop_assert_eq!(got, expected, "{:?} max {}", attribute, max);
                    }
                    Ok(())
                })?;
            }
        }
    }
}
