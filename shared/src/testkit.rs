//! In-memory fakes of every port (feature `testkit`), so each use case runs
//! in a unit test in milliseconds, without a network. They keep the
//! semantics the AWS adapters give the use cases (conditional writes,
//! claims that return the owner, DynamoDB's `Limit` before the TTL filter),
//! and each can be told to fail the way the real service can, to prove what
//! a use case does then. moto proves the adapters themselves
//! (tests/integration).
//!
//! - [`MemoryHistory`]: [`HistoryStore`] and [`HistoryReader`].
//! - [`MemoryState`]: [`StagingStore`] and [`DigestState`] (the state table).
//! - [`MemoryTrails`]: [`TrailStore`], with version conflicts on demand.
//! - [`MemoryBucket`]: [`LogSink`], [`DigestBucket`] and the validator's
//!   [`Source`], with write failures on demand.
//! - [`MemoryQueue`]: the ingest queue's [`Receipts`]: messages it handed
//!   out, and an outage on demand.
//! - [`TestSigner`]: a [`Signer`] with the committed test key
//!   (`shared/testdata/testkit-signing-key.pk8.der`).
//! - [`IngestFakes`]: the ingest use case's targets on these fakes.
//! - [`env`]: an environment of fixed pairs, for the functions' config tests.
//! - [`deflated`]: bytes packed as records were before 2026-12-03.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::delivery::batch::{self, CopyKey};
use crate::delivery::logfile::Staged;
use crate::delivery::{
    BatchItem, FirstSeen, LogSink, ManifestEntry, Progress, StagedPage, StagingStore,
};
use crate::digest::gzhash::{hash_gzip, GzError, Inflated};
use crate::digest::{
    fingerprint, Boundary, ChainHead, DigestBucket, DigestState, PublicKey, SegmentMark, Signer,
};
use crate::history::lookup::{HistoryReader, Part, Stored};
use crate::history::{Claim, HistorySettings, HistoryStore, Item};
use crate::ingest::queue::{Message, Receipt, Receipts};
use crate::ingest::Targets;
use crate::store::StoreError;
use crate::trail::{HealthStore, RunOutcome, Trail, TrailHealth, TrailSet, TrailStore};
use crate::validate::{Fetched, Keys, Source};

/// A lock that a panicking test thread cannot poison for the others.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn injected(operation: &'static str, resource: &str) -> StoreError {
    StoreError::Backend {
        operation,
        resource: resource.to_owned(),
        message: "injected failure (testkit)".into(),
    }
}

/// A countdown of writes that succeed before every later one fails.
#[derive(Debug, Default)]
struct FailAfter(Mutex<Option<usize>>);

impl FailAfter {
    fn set(&self, n: Option<usize>) {
        *lock(&self.0) = n;
    }

    /// True if this write must fail.
    fn tick(&self) -> bool {
        let mut left = lock(&self.0);
        match left.as_mut() {
            None => false,
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
        }
    }
}

/// What one history item holds beside its keys and TTL.
#[derive(Clone, Debug)]
enum Body {
    /// An index item of today's layout: keys alone (and ReadOnly on the
    /// time index item).
    Keys {
        read_only: Option<bool>,
        /// A shared index item's members (sort keys after the bucket).
        members: Vec<String>,
    },
    /// A primary item of today's layout: the packed record.
    Packed(Vec<u8>),
    /// Any item of the layout before records were stored once: its JSON.
    Json(String),
}

impl Body {
    /// As the adapter reads it: an unreadable record is left out.
    fn record(&self) -> Option<String> {
        match self {
            Body::Keys { .. } => None,
            Body::Packed(p) => crate::history::unpack(p).ok(),
            Body::Json(j) => Some(j.clone()),
        }
    }
}

/// The event history table in memory.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    /// (pk, sk) → (what the item holds, expiresAt).
    items: Mutex<BTreeMap<(String, String), (Body, i64)>>,
    /// (pk, sk) → the first delivery window noted on a primary item.
    first_windows: Mutex<HashMap<(String, String), i64>>,
    failing: std::sync::atomic::AtomicBool,
    /// Every `put_all` (the index write) fails, as a throttled table does.
    failing_puts: std::sync::atomic::AtomicBool,
    /// Partition keys longer than this are refused, as DynamoDB refuses
    /// those over 2,048 bytes (0: DynamoDB's own limit).
    max_pk: AtomicUsize,
    /// Eventually consistent batch reads see none of the primary items yet.
    stale: std::sync::atomic::AtomicBool,
    /// Queries answered so far.
    queries: AtomicUsize,
    /// Items those queries read (before the TTL filter, as DynamoDB bills).
    items_read: AtomicUsize,
    /// At most this many items read per query (0: no bound), as DynamoDB
    /// stops a Query's page at 1 MB whatever its `Limit`.
    page_items: AtomicUsize,
}

impl MemoryHistory {
    /// How many queries were answered so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    /// How many items the queries read so far.
    pub fn items_read(&self) -> usize {
        self.items_read.load(Ordering::Relaxed)
    }

    /// From now on a query reads at most `n` items whatever its limit, as
    /// DynamoDB reads at most 1 MB per Query (0: no bound).
    pub fn page_items(&self, n: usize) {
        self.page_items.store(n, Ordering::Relaxed);
    }

    /// Eventually consistent `records` reads answer nothing from now on, as
    /// a replica behind the write does (`false`: caught up); strongly
    /// consistent ones still answer.
    pub fn stale_reads(&self, stale: bool) {
        self.stale.store(stale, Ordering::Relaxed);
    }

    /// Every read fails from now on (`false`: heals), as a throttled or
    /// unreachable table does; the error names the table, as the adapter's do.
    pub fn fail_reads(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Every index write (`put_all`) fails from now on (`false`: heals),
    /// as writes to a throttled table do once their retries are spent.
    pub fn fail_index_writes(&self, failing: bool) {
        self.failing_puts.store(failing, Ordering::Relaxed);
    }

    /// Refuse partition keys over `bytes` (DynamoDB's limit is 2,048).
    pub fn refuse_keys_over(&self, bytes: usize) {
        self.max_pk.store(bytes, Ordering::Relaxed);
    }

    fn check_key(&self, item: &Item<'_>) -> Result<(), StoreError> {
        let max = match self.max_pk.load(Ordering::Relaxed) {
            0 => 2048,
            n => n,
        };
        if item.pk.len() > max {
            return Err(StoreError::Refused {
                operation: "PutItem",
                resource: "history".into(),
                message: format!(
                    "ValidationException: Size of hashkey has exceeded the maximum size limit of {max} bytes"
                ),
            });
        }
        Ok(())
    }

    fn read(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(injected("Query", "trailkeep-HistoryTable-secret-name"));
        }
        Ok(())
    }

    /// Every item's (pk, sk), in key order.
    pub fn keys(&self) -> Vec<(String, String)> {
        lock(&self.items).keys().cloned().collect()
    }

    /// The record JSON an item holds (none for an index item of today's
    /// layout, which holds keys alone).
    pub fn record(&self, pk: &str, sk: &str) -> Option<String> {
        lock(&self.items)
            .get(&(pk.to_owned(), sk.to_owned()))
            .and_then(|(body, _)| body.record())
    }

    /// Writes an item of the layout before records were stored once (every
    /// item holding the record JSON), as a stack deployed before it left.
    pub fn put_legacy(&self, pk: &str, sk: &str, json: &str, expires_at: i64) {
        lock(&self.items).insert(
            (pk.to_owned(), sk.to_owned()),
            (Body::Json(json.to_owned()), expires_at),
        );
    }

    /// Replaces what an item holds with these bytes as its packed record
    /// (an item altered outside trailkeep).
    pub fn corrupt(&self, pk: &str, sk: &str, bytes: &[u8]) {
        if let Some((body, _)) = lock(&self.items).get_mut(&(pk.to_owned(), sk.to_owned())) {
            *body = Body::Packed(bytes.to_vec());
        }
    }
}

fn body_of(item: &Item<'_>) -> Body {
    match item.record {
        Some(packed) => Body::Packed(packed.to_vec()),
        None => Body::Keys {
            read_only: item.read_only,
            members: item.members.clone(),
        },
    }
}

impl HistoryStore for MemoryHistory {
    async fn claim(&self, item: &Item<'_>, first_window: Option<i64>) -> Result<Claim, StoreError> {
        self.check_key(item)?;
        let mut items = lock(&self.items);
        let mut first_windows = lock(&self.first_windows);
        let key = (item.pk.clone(), item.sk.clone());
        if let Some((body, expires_at)) = items.get(&key) {
            return Ok(Claim::Exists {
                record: body.record(),
                expires_at: Some(*expires_at),
                first_window: first_windows.get(&key).copied(),
            });
        }
        if let Some(w) = first_window {
            first_windows.insert(key.clone(), w);
        }
        items.insert(key, (body_of(item), item.expires_at));
        Ok(Claim::Stored)
    }

    async fn put_all(&self, new: &[Item<'_>]) -> Result<(), StoreError> {
        if self.failing_puts.load(Ordering::Relaxed) {
            return Err(StoreError::Unprocessed {
                items: new.len(),
                attempts: 8,
            });
        }
        for item in new {
            self.check_key(item)?;
        }
        let mut items = lock(&self.items);
        for item in new {
            items.insert(
                (item.pk.clone(), item.sk.clone()),
                (body_of(item), item.expires_at),
            );
        }
        Ok(())
    }
}

impl HistoryReader for MemoryHistory {
    /// As DynamoDB answers: `limit` items are *read* (newest first; fewer
    /// under [`MemoryHistory::page_items`]), then the expired ones and
    /// those the part's filter refuses are left out, and the last key read
    /// is returned whenever the limit was reached.
    async fn query(
        &self,
        part: &Part,
        low: &str,
        high: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<(Vec<Stored>, Option<String>), StoreError> {
        self.read()?;
        self.queries.fetch_add(1, Ordering::Relaxed);
        // As DynamoDB: a start key must lie inside the range queried, and
        // past its low end (a descending query has nothing after it).
        if after.is_some_and(|a| a <= low || a > high) {
            return Err(StoreError::Backend {
                operation: "Query",
                resource: part.pk.clone(),
                message: format!(
                    "ValidationException: the provided starting key {after:?} is outside the query's bounds [{low}, {high}]"
                ),
            });
        }
        let limit = match self.page_items.load(Ordering::Relaxed) {
            0 => limit,
            page => limit.min(page),
        };
        let items = lock(&self.items);
        let pk = &part.pk;
        let read: Vec<(&String, &(Body, i64))> = items
            .range((pk.clone(), low.to_owned())..=(pk.clone(), high.to_owned()))
            .rev()
            .filter(|((_, sk), _)| after.is_none_or(|a| sk.as_str() < a))
            .take(limit)
            .map(|((_, sk), v)| (sk, v))
            .collect();
        self.items_read.fetch_add(read.len(), Ordering::Relaxed);
        let last = (read.len() == limit)
            .then(|| read.last().map(|(sk, _)| (*sk).clone()))
            .flatten();
        let stored = read
            .into_iter()
            .filter(|(_, (_, expires))| *expires > now)
            .filter(|(_, (body, _))| {
                part.read_only.is_none()
                    || matches!(body, Body::Keys { read_only, .. } if *read_only == part.read_only)
            })
            .map(|(sk, (body, _))| Stored {
                sk: sk.clone(),
                record: body.record(),
                members: match body {
                    Body::Keys { members, .. } => crate::history::member_sks(sk, members),
                    _ => Vec::new(),
                },
            })
            .collect();
        Ok((stored, last))
    }

    async fn get(&self, pk: &str, sk: &str, now: i64) -> Result<Option<String>, StoreError> {
        self.read()?;
        Ok(lock(&self.items)
            .get(&(pk.to_owned(), sk.to_owned()))
            .filter(|(_, expires)| *expires > now)
            .and_then(|(body, _)| body.record()))
    }

    async fn records(
        &self,
        pks: &[String],
        now: i64,
        consistent: bool,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut distinct = pks.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != pks.len() {
            return Err(StoreError::Refused {
                operation: "BatchGetItem",
                resource: "history".into(),
                message: "ValidationException: Provided list of item keys contains duplicates"
                    .into(),
            });
        }
        let mut found = HashMap::new();
        if self.stale.load(Ordering::Relaxed) && !consistent {
            self.read()?;
            return Ok(found);
        }
        for pk in pks {
            if let Some(record) = self.get(pk, crate::history::PRIMARY_SK, now).await? {
                found.insert(pk.clone(), record);
            }
        }
        Ok(found)
    }
}

type TrailRegion = (String, String);

#[derive(Debug, Default)]
struct State {
    /// First window ingest staged into, per (trail, region) (`REG#`).
    first: BTreeMap<TrailRegion, i64>,
    /// First window not yet delivered, per (trail, region) (`DLV#`).
    next: BTreeMap<TrailRegion, i64>,
    /// How far an unfinished window went, per (trail, region): the window
    /// and its progress (on the `DLV#` item).
    progress: BTreeMap<TrailRegion, (i64, Progress)>,
    /// Staged copies per (trail, region, window), by `{eventTime}#{eventID}`.
    staged: BTreeMap<(String, String, i64), BTreeMap<String, Staged>>,
    /// The window owning each (trail, region, eventID).
    owners: HashMap<(String, String, String), i64>,
    /// Batch items per (trail, region, window): content by sort key.
    batches: BTreeMap<(String, String, i64), BTreeMap<String, Vec<u8>>>,
    /// Batch copies delivered per (trail, region, eventTime window), by
    /// the window that delivered them (`SUM#`).
    delivered: BTreeMap<(String, String, i64), BTreeMap<i64, Vec<CopyKey>>>,
    /// Each event's first-staging note, as a management event's history
    /// primary item holds it; `None`: unreadable.
    seen: HashMap<String, Option<FirstSeen>>,
    /// Manifest entries per (trail, region, delivery hour `YYYY-MM-DDTHH`), by key.
    manifest: BTreeMap<(String, String, String), BTreeMap<String, ManifestEntry>>,
    heads: HashMap<TrailRegion, ChainHead>,
    /// Each trail's health, as the runs noted it.
    health: HashMap<String, TrailHealth>,
    /// Chain segment marks per (trail, region), by (end, boundary).
    segments: BTreeMap<TrailRegion, BTreeMap<(DateTime<Utc>, Boundary), SegmentMark>>,
    /// Fingerprint → the key registry's entry.
    keys: BTreeMap<String, NotedKey>,
}

/// A key registry entry: the key, the regions it signed, and the ends of
/// the first and last digests it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotedKey {
    pub key: PublicKey,
    pub regions: BTreeSet<String>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The state table (delivery and digest items) in memory.
#[derive(Debug, Default)]
pub struct MemoryState {
    state: Mutex<State>,
    claims: AtomicUsize,
    /// Lookups of a copy in an event's first window.
    checks: AtomicUsize,
    /// Batch items written (one PutItem each in DynamoDB).
    batch_writes: AtomicUsize,
    /// Staged events per page (0: 100).
    page_items: AtomicUsize,
    /// Pages of staged events read so far.
    pages: AtomicUsize,
    /// Manifest writes that succeed before the later ones fail.
    manifest_fail: FailAfter,
    /// Cursor moves that succeed before the later ones fail.
    advance_fail: FailAfter,
    /// Batch item writes that succeed before the later ones fail.
    batch_fail: FailAfter,
}

fn pair(trail: &str, region: &str) -> TrailRegion {
    (trail.to_owned(), region.to_owned())
}

fn hour_of(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

impl MemoryState {
    /// After `n` more manifest entries, every write of one fails (`None`:
    /// heals): a deliver run killed between a file and its manifest entry.
    pub fn fail_manifests_after(&self, n: Option<usize>) {
        self.manifest_fail.set(n);
    }

    /// After `n` more cursor moves, every one fails (`None`: heals): a
    /// deliver run killed after a window's files and manifest entries,
    /// before its cursor moved.
    pub fn fail_advances_after(&self, n: Option<usize>) {
        self.advance_fail.set(n);
    }

    /// After `n` more batch items, every write of one fails (`None`:
    /// heals): DynamoDB throttling ingest past its retries.
    pub fn fail_batches_after(&self, n: Option<usize>) {
        self.batch_fail.set(n);
    }

    /// Reads staged events `n` per page.
    pub fn with_page_items(self, n: usize) -> Self {
        self.page_items.store(n, Ordering::Relaxed);
        self
    }

    /// Pages of staged events read so far.
    pub fn pages_read(&self) -> usize {
        self.pages.load(Ordering::Relaxed)
    }

    /// Claims made so far (one conditional write each in DynamoDB).
    pub fn claims(&self) -> usize {
        self.claims.load(Ordering::Relaxed)
    }

    /// Lookups of a re-delivered copy's first window made so far (one read
    /// each in DynamoDB).
    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::Relaxed)
    }

    /// Batch items written so far (one PutItem each in DynamoDB).
    pub fn batch_writes(&self) -> usize {
        self.batch_writes.load(Ordering::Relaxed)
    }

    /// Notes `seen` as the event's first staging unless one is noted, as a
    /// management event's history primary item does; returns the one
    /// noted (none if unreadable).
    pub fn first_seen(&self, event_id: &str, seen: &FirstSeen) -> Option<FirstSeen> {
        *lock(&self.state)
            .seen
            .entry(event_id.to_owned())
            .or_insert(Some(*seen))
    }

    /// Overwrites an event's first-staging note, as a writer outside
    /// trailkeep could (`None`: an item that does not parse).
    pub fn tamper_first_seen(&self, event_id: &str, seen: Option<FirstSeen>) {
        lock(&self.state).seen.insert(event_id.to_owned(), seen);
    }

    /// The chain head of a trail's region.
    pub fn chain_head(&self, trail: &str, region: &str) -> Option<ChainHead> {
        lock(&self.state).heads.get(&pair(trail, region)).cloned()
    }

    /// The chain segment marks of a trail's region, oldest first.
    pub fn segments(&self, trail: &str, region: &str) -> Vec<SegmentMark> {
        lock(&self.state)
            .segments
            .get(&pair(trail, region))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The first undelivered window of a trail's region.
    pub fn cursor(&self, trail: &str, region: &str) -> Option<i64> {
        let s = lock(&self.state);
        let key = pair(trail, region);
        s.next.get(&key).or_else(|| s.first.get(&key)).copied()
    }

    /// Every manifest entry of a trail's region, oldest delivery first.
    pub fn delivered(&self, trail: &str, region: &str) -> Vec<ManifestEntry> {
        lock(&self.state)
            .manifest
            .iter()
            .filter(|((t, r, _), _)| t == trail && r == region)
            .flat_map(|(_, entries)| entries.values().cloned())
            .collect()
    }

    /// The eventIDs staged for a trail's region, over every window: the
    /// per-event copies', then the batch copies'.
    pub fn staged_ids(&self, trail: &str, region: &str) -> Vec<String> {
        let s = lock(&self.state);
        let mine = |(t, r, _): &(String, String, i64)| t == trail && r == region;
        let single = s
            .staged
            .iter()
            .filter(|(k, _)| mine(k))
            .flat_map(|(_, events)| events.values().map(|e| e.event_id.clone()));
        let batched = s
            .batches
            .iter()
            .filter(|(k, _)| mine(k))
            .flat_map(|(_, items)| items.values())
            .flat_map(|content| batch::decode(content).unwrap_or_default())
            .map(|e| e.event_id);
        single.chain(batched).collect()
    }

    /// The batch items staged for a trail's region: (window, copies).
    pub fn batch_items(&self, trail: &str, region: &str) -> Vec<(i64, usize)> {
        lock(&self.state)
            .batches
            .iter()
            .filter(|((t, r, _), _)| t == trail && r == region)
            .flat_map(|((_, _, w), items)| {
                items
                    .values()
                    .map(|c| (*w, batch::decode(c).map_or(0, |c| c.len())))
            })
            .collect()
    }

    /// The keys the digest run noted.
    pub fn keys_used(&self) -> Vec<NotedKey> {
        lock(&self.state).keys.values().cloned().collect()
    }
}

impl StagingStore for MemoryState {
    async fn is_staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        sk: &str,
    ) -> Result<bool, StoreError> {
        self.checks.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.state)
            .staged
            .get(&(trail.to_owned(), region.to_owned(), window))
            .is_some_and(|w| w.contains_key(sk)))
    }

    async fn register(&self, trail: &str, region: &str, window: i64) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let first = s.first.entry(pair(trail, region)).or_insert(window);
        *first = (*first).min(window);
        Ok(())
    }

    async fn stage(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        event: &Staged,
    ) -> Result<(), StoreError> {
        let sk = crate::history::index_sk(&event.event_time, &event.event_id);
        lock(&self.state)
            .staged
            .entry((trail.to_owned(), region.to_owned(), window))
            .or_default()
            .insert(sk, event.clone());
        Ok(())
    }

    async fn regions(&self, trail: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let s = lock(&self.state);
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        for map in [&s.first, &s.next] {
            for ((_, r), w) in map.iter().filter(|((t, _), _)| t == trail) {
                out.insert(r.clone(), *w);
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn stage_batch(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        if self.batch_fail.tick() {
            return Err(injected(
                "PutItem",
                &format!("STG#{trail}#{region}#{window}"),
            ));
        }
        self.batch_writes.fetch_add(1, Ordering::Relaxed);
        lock(&self.state)
            .batches
            .entry((trail.to_owned(), region.to_owned(), window))
            .or_default()
            .insert(batch::item_sk(content), content.to_vec());
        Ok(())
    }

    async fn delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        before: i64,
    ) -> Result<Vec<CopyKey>, StoreError> {
        Ok(lock(&self.state)
            .delivered
            .get(&(trail.to_owned(), region.to_owned(), at))
            .map(|by| {
                by.range(..before)
                    .flat_map(|(_, keys)| keys.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn record_delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        window: i64,
        keys: &[CopyKey],
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        lock(&self.state)
            .delivered
            .entry((trail.to_owned(), region.to_owned(), at))
            .or_default()
            .insert(window, keys.to_vec());
        Ok(())
    }

    async fn staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        after: Option<&str>,
    ) -> Result<StagedPage, StoreError> {
        use std::ops::Bound;
        self.pages.fetch_add(1, Ordering::Relaxed);
        let per_page = match self.page_items.load(Ordering::Relaxed) {
            0 => 100,
            n => n,
        };
        let s = lock(&self.state);
        let key = (trail.to_owned(), region.to_owned(), window);
        let from = || after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        // Per-event copies' keys sort before batch items' (batch::SK_PREFIX).
        let single = s
            .staged
            .get(&key)
            .into_iter()
            .flat_map(|w| w.range((from(), Bound::Unbounded)))
            .map(|(k, e)| (k.clone(), Ok(e.clone())));
        let batched = s
            .batches
            .get(&key)
            .into_iter()
            .flat_map(|w| w.range((from(), Bound::Unbounded)))
            .map(|(k, c)| (k.clone(), Err(c.clone())));
        let mut items = single.chain(batched);
        let read: Vec<(String, Result<Staged, Vec<u8>>)> = items.by_ref().take(per_page).collect();
        let next = if items.next().is_some() {
            read.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let mut page = StagedPage {
            next,
            ..StagedPage::default()
        };
        for (sk, item) in read {
            match item {
                Ok(event) => page.events.push(event),
                Err(content) => {
                    let copies = batch::decode(&content).map_err(|e| StoreError::Corrupt {
                        message: format!("batch item {sk}: {e}"),
                    })?;
                    page.batches.push(BatchItem { sk, copies });
                }
            }
        }
        Ok(page)
    }

    async fn claim(
        &self,
        trail: &str,
        region: &str,
        event_id: &str,
        window: i64,
        _expires_at: i64,
    ) -> Result<i64, StoreError> {
        self.claims.fetch_add(1, Ordering::Relaxed);
        let key = (trail.to_owned(), region.to_owned(), event_id.to_owned());
        Ok(*lock(&self.state).owners.entry(key).or_insert(window))
    }

    async fn record_manifest(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<(), StoreError> {
        if self.manifest_fail.tick() {
            return Err(injected("PutItem", &format!("MAN#{trail}#{region}")));
        }
        let hour = hour_of(&entry.delivered);
        lock(&self.state)
            .manifest
            .entry((trail.to_owned(), region.to_owned(), hour))
            .or_default()
            .insert(entry.key.clone(), entry.clone());
        Ok(())
    }

    async fn manifest_recorded(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<bool, StoreError> {
        let hour = hour_of(&entry.delivered);
        Ok(lock(&self.state)
            .manifest
            .get(&(trail.to_owned(), region.to_owned(), hour))
            .is_some_and(|files| files.contains_key(&entry.key)))
    }

    async fn advance(
        &self,
        trail: &str,
        region: &str,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        if self.advance_fail.tick() {
            return Err(injected("UpdateItem", &format!("DLV#{trail}#{region}")));
        }
        let mut s = lock(&self.state);
        let key = pair(trail, region);
        match s.next.get(&key) {
            Some(next) if *next != from => Ok(false),
            _ => {
                s.progress.remove(&key);
                s.next.insert(key, to);
                Ok(true)
            }
        }
    }

    async fn progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
    ) -> Result<Option<Progress>, StoreError> {
        let s = lock(&self.state);
        Ok(s.progress
            .get(&pair(trail, region))
            .filter(|(w, _)| *w == window)
            .map(|(_, p)| p.clone()))
    }

    async fn save_progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        progress: &Progress,
    ) -> Result<bool, StoreError> {
        let mut s = lock(&self.state);
        let key = pair(trail, region);
        if s.next.get(&key).is_some_and(|next| *next != window) {
            return Ok(false);
        }
        s.progress.insert(key, (window, progress.clone()));
        Ok(true)
    }
}

impl HealthStore for MemoryState {
    async fn note_delivery(&self, trail: &str, outcome: &RunOutcome) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let h = s.health.entry(trail.to_owned()).or_default();
        h.delivery_attempt = Some(outcome.at);
        let ok = outcome.error.is_none() && outcome.complete;
        h.delivery_succeeded = Some(ok);
        if ok {
            h.delivery_ok = Some(outcome.at);
        }
        if outcome.wrote {
            h.delivered = Some(outcome.at);
        }
        if outcome.error.is_some() || ok {
            h.delivery_error = outcome.error.clone();
        }
        if outcome.notified {
            h.notified = Some(outcome.at);
        }
        if outcome.notify_error.is_some() {
            h.notify_error = outcome.notify_error.clone();
        } else if outcome.notified {
            h.notify_error = None;
        }
        if outcome.cwl_sent {
            h.cwl_delivered = Some(outcome.at);
        }
        if outcome.cwl_error.is_some() {
            h.cwl_error = outcome.cwl_error.clone();
        } else if outcome.cwl_sent {
            h.cwl_error = None;
        }
        Ok(())
    }

    async fn note_digest(&self, trail: &str, outcome: &RunOutcome) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let h = s.health.entry(trail.to_owned()).or_default();
        if outcome.wrote {
            h.digest_delivered = Some(outcome.at);
        }
        h.digest_error = outcome.error.clone();
        Ok(())
    }

    async fn health(&self, trail: &str) -> Result<TrailHealth, StoreError> {
        Ok(lock(&self.state)
            .health
            .get(trail)
            .cloned()
            .unwrap_or_default())
    }
}

impl DigestState for MemoryState {
    async fn cursors(&self, trail: &str) -> Result<Vec<crate::digest::Cursor>, StoreError> {
        let first: BTreeMap<String, i64> = {
            let s = lock(&self.state);
            s.first
                .iter()
                .filter(|((t, _), _)| t == trail)
                .map(|((_, r), w)| (r.clone(), *w))
                .collect()
        };
        Ok(self
            .regions(trail)
            .await?
            .into_iter()
            .map(|(chain, next)| crate::digest::Cursor {
                first: first.get(&chain).copied(),
                chain,
                next,
            })
            .collect())
    }

    async fn manifest(
        &self,
        trail: &str,
        region: &str,
        hour: &DateTime<Utc>,
    ) -> Result<Vec<ManifestEntry>, StoreError> {
        Ok(lock(&self.state)
            .manifest
            .get(&(trail.to_owned(), region.to_owned(), hour_of(hour)))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn head(&self, trail: &str, region: &str) -> Result<Option<ChainHead>, StoreError> {
        Ok(self.chain_head(trail, region))
    }

    async fn advance_head(
        &self,
        trail: &str,
        region: &str,
        expected: Option<&DateTime<Utc>>,
        next: &ChainHead,
    ) -> Result<bool, StoreError> {
        let mut s = lock(&self.state);
        let current = s.heads.get(&pair(trail, region)).map(|h| h.end);
        if current.as_ref() != expected {
            return Ok(false);
        }
        s.heads.insert(pair(trail, region), next.clone());
        Ok(true)
    }

    async fn note_segment(
        &self,
        trail: &str,
        region: &str,
        mark: &SegmentMark,
    ) -> Result<(), StoreError> {
        lock(&self.state)
            .segments
            .entry(pair(trail, region))
            .or_default()
            .entry((mark.end, mark.boundary))
            .or_insert_with(|| mark.clone());
        Ok(())
    }

    async fn note_key(
        &self,
        region: &str,
        key: &PublicKey,
        first: &DateTime<Utc>,
        last: &DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let entry = s
            .keys
            .entry(key.fingerprint.clone())
            .or_insert_with(|| NotedKey {
                key: key.clone(),
                regions: BTreeSet::new(),
                first: *first,
                last: *last,
            });
        entry.regions.insert(region.to_owned());
        entry.first = entry.first.min(*first);
        entry.last = entry.last.max(*last);
        Ok(())
    }
}

/// The ingest queue: the receipt handles of the messages it handed out.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    in_flight: Mutex<Vec<String>>,
    unanswered: Mutex<Vec<String>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryQueue {
    /// `body` sent to the queue and received from it, as Lambda's poller
    /// receives it: a message with a handle the queue knows.
    pub fn receive(&self, body: &str) -> Message {
        let mut in_flight = lock(&self.in_flight);
        let n = in_flight.len();
        let handle = format!("AQEB-memory-queue-{n}");
        in_flight.push(handle.clone());
        Message {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            receipt_handle: handle,
            body: body.to_owned(),
        }
    }

    /// The queue will not answer for this handle (a transient per-entry
    /// failure).
    pub fn leave_unanswered(&self, handle: &str) {
        lock(&self.unanswered).push(handle.to_owned());
    }

    /// Whether the queue fails to answer from now on.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}

impl Receipts for MemoryQueue {
    async fn confirm(&self, messages: &[Message]) -> Result<Vec<Receipt>, StoreError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(injected("ChangeMessageVisibilityBatch", "ingest-queue"));
        }
        let (in_flight, unanswered) = (lock(&self.in_flight), lock(&self.unanswered));
        Ok(messages
            .iter()
            .map(|m| {
                if unanswered.contains(&m.receipt_handle) {
                    Receipt::Unanswered
                } else if in_flight.contains(&m.receipt_handle) {
                    Receipt::Confirmed
                } else {
                    Receipt::Unknown
                }
            })
            .collect())
    }
}

/// The trail document in memory, with compare-and-set on its version.
#[derive(Debug, Default)]
pub struct MemoryTrails {
    set: Mutex<TrailSet>,
    /// Saves still to lose to a (simulated) concurrent writer.
    conflicts: AtomicUsize,
    saves: AtomicUsize,
}

impl MemoryTrails {
    pub fn with(trails: Vec<Trail>) -> Self {
        let version = u64::from(!trails.is_empty());
        Self {
            set: Mutex::new(TrailSet { trails, version }),
            ..Self::default()
        }
    }

    /// The next `n` saves lose: just before each, another writer changes
    /// the document (its version moves on, and the first trail's key
    /// prefix becomes `other-writer-{version}`).
    pub fn conflict_next_saves(&self, n: usize) {
        self.conflicts.store(n, Ordering::Relaxed);
    }

    /// Saves attempted so far, lost ones included.
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::Relaxed)
    }

    pub fn trails(&self) -> Vec<Trail> {
        lock(&self.set).trails.clone()
    }
}

impl TrailStore for MemoryTrails {
    async fn load(&self) -> Result<TrailSet, StoreError> {
        Ok(lock(&self.set).clone())
    }

    async fn save(&self, trails: &[Trail], expected: u64) -> Result<bool, StoreError> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        let mut set = lock(&self.set);
        let lose = self
            .conflicts
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            // Another writer's change: a prefix on the first trail.
            set.version += 1;
            let version = set.version;
            if let Some(first) = set.trails.first_mut() {
                first.s3_key_prefix = Some(format!("other-writer-{version}"));
            }
        }
        if set.version != expected {
            return Ok(false);
        }
        *set = TrailSet {
            trails: trails.to_vec(),
            version: expected + 1,
        };
        Ok(true)
    }
}

/// CloudWatch Logs in memory: log groups made with [`Self::create_group`]
/// hold streams of events. Like the service it refuses a batch to a group
/// that does not exist, one out of time order or over `PutLogEvents`'
/// limits, and rejects (without refusing the batch) events older than
/// [`Self::reject_before`].
#[derive(Debug, Default)]
pub struct MemoryEventLog {
    groups: Mutex<BTreeMap<String, BTreeMap<String, Vec<crate::delivery::cloudwatch::LogEvent>>>>,
    oldest: Mutex<Option<i64>>,
    calls: AtomicUsize,
    unavailable: FailAfter,
}

impl MemoryEventLog {
    pub fn create_group(&self, name: &str) {
        lock(&self.groups).entry(name.to_owned()).or_default();
    }

    /// From now on, events before `timestamp` (ms) are rejected.
    pub fn reject_before(&self, timestamp: i64) {
        *lock(&self.oldest) = Some(timestamp);
    }

    /// Every event of a stream, in the order received.
    pub fn events(&self, group: &str, stream: &str) -> Vec<crate::delivery::cloudwatch::LogEvent> {
        lock(&self.groups)
            .get(group)
            .and_then(|streams| streams.get(stream))
            .cloned()
            .unwrap_or_default()
    }

    /// The streams of a group.
    pub fn streams(&self, group: &str) -> Vec<String> {
        lock(&self.groups)
            .get(group)
            .map(|streams| streams.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `PutLogEvents` calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// After `n` more batches, the service is unavailable (`None`: back).
    pub fn unavailable_after(&self, n: Option<usize>) {
        self.unavailable.set(n);
    }
}

impl crate::delivery::cloudwatch::EventLog for MemoryEventLog {
    async fn put(
        &self,
        group: &str,
        stream: &str,
        batch: Vec<crate::delivery::cloudwatch::LogEvent>,
    ) -> Result<crate::delivery::cloudwatch::Put, StoreError> {
        use crate::delivery::cloudwatch::{
            Put, EVENT_OVERHEAD, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BATCH_SPAN_MS,
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.unavailable.tick() {
            return Err(injected("PutLogEvents", group));
        }
        let refused = |why: &str| Ok(Put::Refused(format!("PutLogEvents on {group}: {why}")));
        let bytes: usize = batch.iter().map(|e| e.message.len() + EVENT_OVERHEAD).sum();
        let sorted = batch.windows(2).all(|w| w[0].timestamp <= w[1].timestamp);
        let span = match (batch.first(), batch.last()) {
            (Some(first), Some(last)) => last.timestamp - first.timestamp,
            _ => return refused("InvalidParameterException: no events"),
        };
        if !sorted
            || batch.len() > MAX_BATCH_EVENTS
            || bytes > MAX_BATCH_BYTES
            || span > MAX_BATCH_SPAN_MS
        {
            return refused("InvalidParameterException: batch out of order or over a limit");
        }
        let oldest = *lock(&self.oldest);
        let mut groups = lock(&self.groups);
        let Some(streams) = groups.get_mut(group) else {
            return refused("ResourceNotFoundException: the log group does not exist");
        };
        let (accepted, rejected): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|e| oldest.is_none_or(|oldest| e.timestamp >= oldest));
        streams
            .entry(stream.to_owned())
            .or_default()
            .extend(accepted);
        Ok(Put::Accepted {
            rejected: rejected.len(),
        })
    }
}

/// SNS in memory: every message published, in order; topics marked broken
/// refuse.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<(String, String)>>,
    broken: Mutex<std::collections::BTreeSet<String>>,
}

impl MemoryNotifier {
    /// Every (topic ARN, message) published so far.
    pub fn sent(&self) -> Vec<(String, String)> {
        lock(&self.sent).clone()
    }

    /// From now on, publishing to `topic_arn` fails.
    pub fn break_topic(&self, topic_arn: &str) {
        lock(&self.broken).insert(topic_arn.to_owned());
    }
}

impl crate::delivery::Notifier for MemoryNotifier {
    async fn notify(&self, topic_arn: &str, message: &str) -> Result<(), StoreError> {
        if lock(&self.broken).contains(topic_arn) {
            return Err(StoreError::Backend {
                operation: "Publish",
                resource: topic_arn.to_owned(),
                message: "AuthorizationError (memory notifier)".into(),
            });
        }
        lock(&self.sent).push((topic_arn.to_owned(), message.to_owned()));
        Ok(())
    }
}

/// One object: bytes, the digest signature metadata, and the KMS key it
/// was written under (SSE-KMS), if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
    pub kms_key: Option<String>,
}

/// Buckets in memory: (bucket, key) → object.
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<(String, String), Object>>,
    fail: FailAfter,
    /// Buckets that refuse every write.
    broken: Mutex<std::collections::BTreeSet<String>>,
    puts: AtomicUsize,
}

impl MemoryBucket {
    /// After `n` more successful writes, every write fails (a run killed
    /// midway, or a bucket that refuses writes); `None` heals it.
    pub fn fail_writes_after(&self, n: Option<usize>) {
        self.fail.set(n);
    }

    /// Every write to `bucket` fails (`false`: heals it), as a deleted
    /// bucket or a policy that denies the function does.
    pub fn break_bucket(&self, bucket: &str, broken: bool) {
        let mut set = lock(&self.broken);
        if broken {
            set.insert(bucket.to_owned());
        } else {
            set.remove(bucket);
        }
    }

    /// Writes that succeeded so far.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::Relaxed)
    }

    /// Every key of a bucket under `prefix`, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        lock(&self.objects)
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Replaces (or, with `None`, deletes) an object: the tampering an
    /// attacker with write access could do.
    pub fn set_object(&self, bucket: &str, key: &str, object: Option<Object>) {
        let k = (bucket.to_owned(), key.to_owned());
        let mut objects = lock(&self.objects);
        match object {
            Some(o) => objects.insert(k, o),
            None => objects.remove(&k),
        };
    }

    fn put(&self, bucket: &str, key: &str, object: Object) -> Result<(), StoreError> {
        if lock(&self.broken).contains(bucket) || self.fail.tick() {
            return Err(injected("PutObject", key));
        }
        lock(&self.objects).insert((bucket.to_owned(), key.to_owned()), object);
        self.puts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl LogSink for MemoryBucket {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        MemoryBucket::put(
            self,
            bucket,
            key,
            Object {
                bytes: gzip,
                kms_key: kms_key.map(str::to_owned),
                ..Object::default()
            },
        )
    }
}

impl DigestBucket for MemoryBucket {
    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        Ok(self.object(bucket, key).map(|o| hash_gzip(&o.bytes)))
    }

    async fn put_digest(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        signature_hex: &str,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let object = Object {
            bytes: gzip,
            signature: Some(signature_hex.to_owned()),
            signature_algorithm: Some(crate::digest::SIGNATURE_ALGORITHM.to_owned()),
            kms_key: kms_key.map(str::to_owned),
        };
        MemoryBucket::put(self, bucket, key, object)
    }
}

impl Source for MemoryBucket {
    fn location(&self, bucket: &str, key: &str) -> String {
        format!("memory://{bucket}/{key}")
    }

    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self
            .keys(bucket, prefix)
            .iter()
            .filter_map(|k| k[prefix.len()..].split_once('/').map(|(f, _)| f.to_owned()))
            .collect();
        out.dedup();
        Ok(out)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .keys(bucket, prefix)
            .into_iter()
            .filter(|k| k.as_str() > start_after)
            .collect())
    }

    async fn get_digest(&self, bucket: &str, key: &str) -> Result<Option<Fetched>, StoreError> {
        Ok(self.object(bucket, key).map(|o| Fetched {
            bytes: o.bytes,
            signature: o.signature,
            signature_algorithm: o.signature_algorithm,
        }))
    }

    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        DigestBucket::hash_log(self, bucket, key).await
    }
}

/// The committed test key (PKCS#8 DER, RSA-2048): test data only.
const TEST_KEY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/testkit-signing-key.pk8.der"
));

/// Signs like KMS (RSASSA-PKCS1-v1_5 SHA-256), with the committed test key
/// for every region.
pub struct TestSigner {
    pair: ring::signature::RsaKeyPair,
    public: PublicKey,
}

impl Default for TestSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigner {
    /// # Panics
    /// Only if the committed test key is not a valid RSA PKCS#8 key.
    pub fn new() -> Self {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(TEST_KEY)
            .expect("shared/testdata/testkit-signing-key.pk8.der is an RSA PKCS#8 key");
        let pkcs1 = ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec();
        let public = PublicKey {
            key_id: "testkit-signing-key".into(),
            fingerprint: fingerprint(&pkcs1),
            pkcs1,
        };
        Self { pair, public }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The validator's trusted keys: this one.
    pub fn keys(&self) -> Keys {
        let mut keys = Keys::default();
        keys.add_pkcs1(self.public.pkcs1.clone());
        keys
    }
}

impl Signer for TestSigner {
    async fn public_key(&self, _region: &str) -> Result<PublicKey, StoreError> {
        Ok(self.public.clone())
    }

    async fn sign(&self, _region: &str, message: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| injected("Sign", "testkit-signing-key"))?;
        Ok(signature)
    }
}

/// The account of the samples below.
pub const ACCOUNT: &str = "111122223333";

/// events/eventbridge/api-call-write.json (an EC2 call in eu-west-1) as an
/// EventBridge payload, with this eventID and eventTime.
pub fn api_call(event_id: &str, event_time: &DateTime<Utc>) -> String {
    let sample = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge/api-call-write.json"
    ));
    let mut v: serde_json::Value =
        serde_json::from_str(sample).expect("events/eventbridge/api-call-write.json is JSON");
    v["detail"]["eventID"] = event_id.into();
    v["detail"]["eventTime"] = crate::time::format(event_time).into();
    v.to_string()
}

/// The one record of [`api_call`], normalized.
pub fn api_call_record(
    event_id: &str,
    event_time: &DateTime<Utc>,
) -> crate::ingest::normalize::Normalized {
    let ctx = crate::ingest::normalize::Context {
        account_id: ACCOUNT.into(),
    };
    crate::ingest::normalize::normalize(&api_call(event_id, event_time), &ctx)
        .records
        .pop()
        .expect("the sample API call normalizes to one record")
}

/// A multi-region trail logging every management event into bucket `logs`,
/// with log file validation, logging since `since`.
pub fn trail(name: &str, since: DateTime<Utc>) -> Trail {
    Trail {
        name: name.into(),
        home_region: "eu-west-1".into(),
        account_id: ACCOUNT.into(),
        s3_bucket_name: "logs".into(),
        s3_key_prefix: None,
        kms_key_id: None,
        sns_topic_name: None,
        cloud_watch_logs: None,
        is_multi_region_trail: true,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        is_logging: true,
        start_logging_time: Some(since),
        stop_logging_time: None,
        event_selectors: Vec::new(),
        advanced_event_selectors: Vec::new(),
        tags: Vec::new(),
    }
}

impl MemoryBucket {
    /// The eventIDs in a bucket's log files (`…/CloudTrail/…`), file by file
    /// in key order, records in file order. An unreadable file panics.
    pub fn logged_event_ids(&self, bucket: &str) -> Vec<String> {
        self.logged_event_ids_under(bucket, "")
    }

    /// [`Self::logged_event_ids`] of the log files whose keys begin with `prefix`.
    pub fn logged_event_ids_under(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for key in self.keys(bucket, prefix) {
            if !key.contains("/CloudTrail/") {
                continue;
            }
            let bytes = self.object(bucket, &key).unwrap_or_default().bytes;
            let json = crate::digest::gzhash::inflate(&bytes).expect("a log file is gzip");
            let doc: serde_json::Value = serde_json::from_slice(&json).expect("a log file is JSON");
            for record in doc["Records"].as_array().into_iter().flatten() {
                ids.push(record["eventID"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }
}

/// An environment of fixed pairs, for tests of the functions' configuration.
pub fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Where the ingest use case writes, on fakes: the histories of eu-west-1
/// and us-east-1 (90 days), staging, and trail `audit` logging every
/// management event since 2026-11-24.
pub struct IngestFakes {
    pub history: MemoryHistory,
    pub staging: MemoryState,
    pub settings: HistorySettings,
    pub trails: Vec<Trail>,
    /// [`Targets::organization`].
    pub organization: bool,
}

impl Default for IngestFakes {
    fn default() -> Self {
        let since = crate::time::parse("2026-11-24T00:00:00Z").expect("a valid time");
        Self {
            history: MemoryHistory::default(),
            staging: MemoryState::default(),
            settings: HistorySettings {
                retention_days: 90,
                shards: 1,
            },
            trails: vec![trail("audit", since)],
            organization: false,
        }
    }
}

impl IngestFakes {
    pub fn targets(&self) -> Targets<'_, MemoryHistory, MemoryState> {
        Targets {
            history: &self.history,
            settings: &self.settings,
            staging: &self.staging,
            trails: &self.trails,
            organization: self.organization,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_signer_has_the_fingerprint_openssl_computed() {
        let expected = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/testkit-signing-key.fingerprint"
        ));
        assert_eq!(TestSigner::new().public().fingerprint, expected.trim());
    }
}

/// The `PublicKeys` port in memory: a registry and the trusted keys.
#[derive(Debug, Default)]
pub struct MemoryKeys {
    pub used: Vec<crate::digest::registry::KeyUse>,
    pub trusted: crate::validate::Keys,
}

impl crate::digest::registry::PublicKeys for MemoryKeys {
    async fn keys_used(&self) -> Result<Vec<crate::digest::registry::KeyUse>, StoreError> {
        Ok(self.used.clone())
    }

    async fn trusted(&self) -> Result<crate::validate::Keys, StoreError> {
        Ok(self.trusted.clone())
    }
}

/// `bytes` as raw deflate (RFC 1951) at level 6: how records and staged
/// copies were packed from 2026-11-24 to 2026-12-03, which
/// [`crate::history::unpack`] still reads (docs/event-history.md "Item sizes").
pub fn deflated(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).expect("writing into a Vec cannot fail");
    e.finish().expect("writing into a Vec cannot fail")
}

/// Stages a management event as ingest does at ingest time `now`: its
/// first-staging note as its history primary item keeps it
/// ([`MemoryState::first_seen`]), then its copies, following the note.
pub async fn stage(
    state: &MemoryState,
    trails: &[Trail],
    record: &crate::model::Record,
    json: &str,
    now: &DateTime<Utc>,
) -> Result<usize, StoreError> {
    let seen = FirstSeen {
        window: crate::delivery::window_of(now),
        event_time: record.event_time,
    };
    let noted = state.first_seen(&record.event_id, &seen);
    let note = crate::delivery::Note::Known(noted);
    crate::delivery::stage_noted(state, trails, record, json, now, note).await
}
