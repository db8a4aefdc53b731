//! Delivery state in the state table (DynamoDB). Items (docs/delivery.md):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | region a trail has staged events in (ingest) | `REG#{trail}` | `{region}` | `first`: earliest window staged into |
//! | delivery cursor (deliver) | `DLV#{trail}` | `{region}` | `next`: first window not yet delivered; `at`, `part`, `after`: how far a run cut short went in window `at` ([`Progress`]) |
//! | staged event (a management event's copy) | `STG#{trail}#{region}#{window}` | `{eventTime}#{eventID}` | `z` (the packed record; `rec`, its JSON, on copies staged before 2026-12-01), `fw`: the event's first window (none on copies staged before first-staging notes), `expiresAt` |
//! | batch item (data events of one ingest batch) | `STG#{trail}#{region}#{window}` | `B#{hash of the content}` | `zb`: the packed content ([`batch`]), `expiresAt` |
//! | batch copies a window delivered | `SUM#{trail}#{region}#{eventTime window}` | `{window, 12 digits}#{part}` | `d`: 16-byte keys ([`batch::CopyKey`]), `expiresAt` |
//! | delivery marker (re-delivered copies only) | `OWN#{trail}#{region}#{eventID}` | `-` | `w`: the window that owns the event, `expiresAt` |
//! | manifest entry | `MAN#{trail}#{region}#{YYYY-MM-DDTHH}` (delivery hour) | `{key}` | `bucket`, `sha256`, `oldest`, `newest`, `delivered`, `records` |
//! | digest chain head | `DIG#{trail}` | `{region}` | `end`, `bucket`, `object`, `sha256`, `signature`, `last` |
//! | chain segment mark (append-only) | `SEG#{trail}` | `{region}#{end}#{start\|final}` | `bucket`, `object` of the segment's first or final digest |
//! | delivery health (deliver) | `DLH#{trail}` | `-` | `attemptAt`, `okAt`, `wroteAt`, `lastError` (GetTrailStatus) |
//! | digest health (digest) | `DGH#{trail}` | `-` | `attemptAt`, `okAt`, `wroteAt`, `lastError` |
//! | signing key used | `KEY` | `{fingerprint}` | `keyId`, `region`, `firstUsed`, `lastUsed` (digest end times) |
//!
//! Every write is a single-item write; none needs a transaction. Ingest
//! writes only `STG#` and `REG#` items, so it cannot move a delivery cursor
//! past windows not yet delivered: a region's cursor starts at its
//! registration's `first` window, and from then on only deliver moves it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::Duration;

use crate::aws::history_table::{attr, record_of};
use crate::delivery::logfile::Staged;
use crate::delivery::{
    batch, delivery_time, BatchItem, ManifestEntry, Progress, StagedPage, StagingStore,
    DEFAULT_GRACE_SECS, MARKER_DAYS,
};
use crate::digest::{Boundary, ChainHead, DigestState, PublicKey, SegmentMark};
use crate::store::StoreError;
use crate::trail::{HealthStore, RunOutcome, TrailHealth};

/// Batch copies' keys per item of what a window delivered (16 bytes each:
/// 320 KB, inside DynamoDB's 400 KB item).
const DELIVERED_PER_ITEM: usize = 20_000;

/// The sort key of what `window` delivered (`part` of it), or, with none,
/// the key every part of an earlier window sorts before.
fn delivered_sk(window: i64, part: Option<usize>) -> String {
    match part {
        Some(part) => format!("{window:012}#{part}"),
        None => format!("{window:012}"),
    }
}

/// Delivery state on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoStaging {
    client: Client,
    table: String,
    /// (trail, region) pairs this instance has registered (below).
    registered: Arc<Mutex<HashSet<(String, String)>>>,
    /// Items per page of staged events (`None`: DynamoDB's 1 MB pages).
    page_items: Option<i32>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A string attribute of an item ("" when absent).
fn text(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> String {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    e: &aws_sdk_dynamodb::error::SdkError<E, impl std::fmt::Debug>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

impl DynamoStaging {
    /// A chain's cursor where deliver has one, else the first window
    /// ingest registered (deliver creates the cursor when it moves it);
    /// with that first window.
    async fn chain_cursors(&self, trail: &str) -> Result<Vec<crate::digest::Cursor>, StoreError> {
        let window = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let mut out: std::collections::BTreeMap<String, (Option<i64>, Option<i64>)> =
            std::collections::BTreeMap::new();
        for item in self.partition(format!("REG#{trail}")).await? {
            if let Some(first) = window(&item, "first") {
                out.entry(text(&item, attr::SK)).or_default().0 = Some(first);
            }
        }
        for item in self.partition(format!("DLV#{trail}")).await? {
            if let Some(next) = window(&item, "next") {
                out.entry(text(&item, attr::SK)).or_default().1 = Some(next);
            }
        }
        Ok(out
            .into_iter()
            .filter_map(|(chain, (first, next))| {
                Some(crate::digest::Cursor {
                    next: next.or(first)?,
                    chain,
                    first,
                })
            })
            .collect())
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            registered: Arc::default(),
            page_items: None,
        }
    }

    /// Reads staged events `n` items per page (tests: paging without
    /// megabytes of records).
    pub fn with_page_items(mut self, n: i32) -> Self {
        self.page_items = Some(n);
        self
    }

    /// The registered pairs (a poisoned lock only means another thread
    /// panicked mid-insert; the set is still valid).
    fn registered_pairs(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail(&self, operation: &'static str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            operation,
            resource: self.table.clone(),
            message: message.to_string(),
        }
    }

    /// Every item of one partition, strongly consistent.
    async fn partition(
        &self,
        pk: String,
    ) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|e| self.fail("Query", DisplayErrorContext(&e)))?);
        }
        Ok(items)
    }

    /// Manifest entries of one delivery hour (`YYYY-MM-DDTHH`), by key.
    pub async fn manifest_partition(
        &self,
        trail: &str,
        region: &str,
        hour: &str,
    ) -> Result<Vec<ManifestEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .partition(format!("MAN#{trail}#{region}#{hour}"))
            .await?
        {
            let get = |k: &str| text(&item, k);
            let time =
                |k: &str| crate::time::parse(&get(k)).map_err(|e| self.fail("read manifest", e));
            out.push(ManifestEntry {
                bucket: get("bucket"),
                key: get(attr::SK),
                sha256: get("sha256"),
                oldest: time("oldest")?,
                newest: time("newest")?,
                delivered: time("delivered")?,
                records: item
                    .get("records")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            });
        }
        Ok(out)
    }
}

impl StagingStore for DynamoStaging {
    async fn is_staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        sk: &str,
    ) -> Result<bool, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("STG#{trail}#{region}#{window}")))
            .key(attr::SK, s(sk))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        Ok(got.item.is_some())
    }

    async fn register(&self, trail: &str, region: &str, window: i64) -> Result<(), StoreError> {
        // One write per (trail, region) for the life of the container, not
        // one per event: once `first` exists and is at or below a window that
        // was current, every later window is at or above it, and deliver
        // starts the region's cursor there (docs/delivery.md).
        let pair = (trail.to_owned(), region.to_owned());
        if self.registered_pairs().contains(&pair) {
            return Ok(());
        }
        // Lower `first` to this window if it is above it (only a race between
        // the first registrations can make it so); never raise it.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("REG#{trail}")))
            .key(attr::SK, s(region))
            .update_expression("SET #first = :w")
            .condition_expression("attribute_not_exists(#first) OR #first > :w")
            .expression_attribute_names("#first", "first")
            .expression_attribute_values(":w", n(window))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if conditional_failed(&e) => {}
            Err(e) => return Err(self.fail("UpdateItem", DisplayErrorContext(&e))),
        }
        self.registered_pairs().insert(pair);
        Ok(())
    }

    async fn stage(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        event: &Staged,
    ) -> Result<(), StoreError> {
        let expires = delivery_time(window, DEFAULT_GRACE_SECS) + Duration::days(MARKER_DAYS);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(format!("STG#{trail}#{region}#{window}")))
            .item(
                attr::SK,
                s(crate::history::index_sk(&event.event_time, &event.event_id)),
            )
            // Packed as the history's records are: most staged copies fit
            // one write unit (docs/delivery.md "Costs").
            .item(
                attr::PACKED,
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                    crate::history::pack(&event.json),
                )),
            )
            .item(attr::EXPIRES_AT, n(expires.timestamp()));
        let put = match event.first {
            Some(first) => put.item(attr::FIRST_WINDOW, n(first)),
            None => put,
        };
        put.send()
            .await
            .map_err(|e| self.fail("PutItem", DisplayErrorContext(&e)))?;
        Ok(())
    }

    async fn stage_batch(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        let expires = delivery_time(window, DEFAULT_GRACE_SECS) + Duration::days(MARKER_DAYS);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(format!("STG#{trail}#{region}#{window}")))
            .item(attr::SK, s(batch::item_sk(content)))
            .item(
                attr::BATCH,
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                    crate::history::pack_bytes(content),
                )),
            )
            .item(attr::EXPIRES_AT, n(expires.timestamp()))
            .send()
            .await
            .map_err(|e| self.fail("PutItem", DisplayErrorContext(&e)))?;
        Ok(())
    }

    async fn delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        before: i64,
    ) -> Result<Vec<batch::CopyKey>, StoreError> {
        let pk = format!("SUM#{trail}#{region}#{at}");
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":before", s(delivered_sk(before, None)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.fail("Query", DisplayErrorContext(&e)))?;
        let mut keys = Vec::new();
        for item in &items {
            let bytes = item
                .get(attr::DELIVERED)
                .and_then(|v| v.as_b().ok())
                .map(|b| b.as_ref());
            // Not what deliver writes (no keys, or not whole ones): stop
            // the region's run (retried, alarmed) rather than deliver what
            // may be a repeat.
            let Some(bytes) = bytes.filter(|b| !b.is_empty() && b.len() % 16 == 0) else {
                return Err(self.fail(
                    "read delivered copies",
                    format!("{pk} {:?} is unreadable", text(item, attr::SK)),
                ));
            };
            keys.extend(bytes.chunks_exact(16).map(|k| {
                let mut key = [0; 16];
                key.copy_from_slice(k);
                key
            }));
        }
        Ok(keys)
    }

    async fn record_delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        window: i64,
        keys: &[batch::CopyKey],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        for (part, keys) in keys.chunks(DELIVERED_PER_ITEM).enumerate() {
            self.client
                .put_item()
                .table_name(&self.table)
                .item(attr::PK, s(format!("SUM#{trail}#{region}#{at}")))
                .item(attr::SK, s(delivered_sk(window, Some(part))))
                .item(
                    attr::DELIVERED,
                    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(keys.concat())),
                )
                .item(attr::EXPIRES_AT, n(expires_at))
                .send()
                .await
                .map_err(|e| self.fail("PutItem", DisplayErrorContext(&e)))?;
        }
        Ok(())
    }

    async fn regions(&self, trail: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let cursors = self.chain_cursors(trail).await?;
        Ok(cursors.into_iter().map(|c| (c.chain, c.next)).collect())
    }

    async fn staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        after: Option<&str>,
    ) -> Result<StagedPage, StoreError> {
        let pk = format!("STG#{trail}#{region}#{window}");
        // One Query page: at most 1 MB, or `page_items` items; after a sort
        // key that need not be an item's (a batch item's position).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true)
            .set_limit(self.page_items);
        let query = match after {
            Some(after) => query
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("pk = :pk"),
        };
        let page = query
            .send()
            .await
            .map_err(|e| self.fail("Query", DisplayErrorContext(&e)))?;
        let mut events = Vec::new();
        let mut batches = Vec::new();
        for item in page.items() {
            let sk = text(item, attr::SK);
            // Unreadable, it stops the region's run (retried, alarmed;
            // docs/operations.md "A stuck trail or region"): a log file
            // never silently lacks an event.
            let unreadable = |why: String| {
                self.fail(
                    "read staged event",
                    format!("{pk} {sk:?} is unreadable: {why}"),
                )
            };
            if sk.starts_with(batch::SK_PREFIX) {
                let packed = item
                    .get(attr::BATCH)
                    .and_then(|v| v.as_b().ok())
                    .ok_or_else(|| unreadable("it holds no copies".into()))?;
                let content =
                    crate::history::unpack_bytes(packed.as_ref(), batch::MAX_CONTENT_BYTES as u64)
                        .map_err(|e| unreadable(e.to_string()))?;
                let copies = batch::decode(&content).map_err(unreadable)?;
                batches.push(BatchItem { sk, copies });
                continue;
            }
            // sk = {eventTime}#{eventID}; eventTime is fixed-width (20 chars).
            let (time, id) = sk
                .split_once('#')
                .ok_or_else(|| self.fail("read staged event", format!("bad sort key {sk:?}")))?;
            let event_time =
                crate::time::parse(time).map_err(|e| self.fail("read staged event", e))?;
            // Packed (`z`), or JSON (`rec`) as staged before records were
            // packed.
            let json = record_of(item)
                .map_err(|e| unreadable(e.to_string()))?
                .ok_or_else(|| unreadable("it holds no record".into()))?;
            let first = item
                .get(attr::FIRST_WINDOW)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok());
            events.push(Staged {
                event_time,
                event_id: id.to_owned(),
                json,
                first,
            });
        }
        let next = page
            .last_evaluated_key()
            .map(|k| k.get(attr::SK).and_then(|v| v.as_s().ok()).cloned())
            .map(|sk| sk.ok_or_else(|| self.fail("Query", "a page ended without a sort key")))
            .transpose()?;
        Ok(StagedPage {
            events,
            batches,
            next,
        })
    }

    async fn claim(
        &self,
        trail: &str,
        region: &str,
        event_id: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        let key_pk = format!("OWN#{trail}#{region}#{event_id}");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(&key_pk))
            .item(attr::SK, s("-"))
            .item("w", n(window))
            .item(attr::EXPIRES_AT, n(expires_at))
            .condition_expression("attribute_not_exists(pk) OR w = :w")
            .expression_attribute_values(":w", n(window))
            .send()
            .await;
        match result {
            Ok(_) => Ok(window),
            Err(e) if conditional_failed(&e) => {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(attr::PK, s(&key_pk))
                    .key(attr::SK, s("-"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
                got.item
                    .and_then(|i| {
                        i.get("w")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok())
                    })
                    .ok_or_else(|| self.fail("read delivery marker", format!("{key_pk} vanished")))
            }
            Err(e) => Err(self.fail("PutItem", DisplayErrorContext(&e))),
        }
    }

    async fn record_manifest(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<(), StoreError> {
        let hour = entry.delivered.format("%Y-%m-%dT%H");
        self.client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(format!("MAN#{trail}#{region}#{hour}")))
            .item(attr::SK, s(&entry.key))
            .item("bucket", s(&entry.bucket))
            .item("sha256", s(&entry.sha256))
            .item("oldest", s(crate::time::format(&entry.oldest)))
            .item("newest", s(crate::time::format(&entry.newest)))
            .item("delivered", s(crate::time::format(&entry.delivered)))
            .item("records", n(entry.records))
            .send()
            .await
            .map_err(|e| self.fail("PutItem", DisplayErrorContext(&e)))?;
        Ok(())
    }

    async fn manifest_recorded(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<bool, StoreError> {
        let hour = entry.delivered.format("%Y-%m-%dT%H");
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("MAN#{trail}#{region}#{hour}")))
            .key(attr::SK, s(&entry.key))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", attr::PK)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        Ok(got.item.is_some())
    }

    async fn advance(
        &self,
        trail: &str,
        region: &str,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("DLV#{trail}")))
            .key(attr::SK, s(region))
            .update_expression("SET #next = :to REMOVE #at, #part, #after")
            // No cursor yet: `from` is the registration's first window.
            .condition_expression("attribute_not_exists(#next) OR #next = :from")
            .expression_attribute_names("#next", "next")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#part", "part")
            .expression_attribute_names("#after", "after")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(self.fail("UpdateItem", DisplayErrorContext(&e))),
        }
    }

    async fn progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
    ) -> Result<Option<Progress>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("DLV#{trail}")))
            .key(attr::SK, s(region))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        let Some(item) = item.item() else {
            return Ok(None);
        };
        let number = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        if number("at") != Some(window) {
            return Ok(None);
        }
        let part = number("part")
            .and_then(|p| usize::try_from(p).ok())
            .ok_or_else(|| self.fail("read delivery progress", "no part"))?;
        let after = item
            .get("after")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| self.fail("read delivery progress", "no sort key"))?;
        Ok(Some(Progress {
            part,
            after: after.clone(),
        }))
    }

    async fn save_progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        progress: &Progress,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("DLV#{trail}")))
            .key(attr::SK, s(region))
            .update_expression("SET #at = :w, #part = :part, #after = :after")
            // Still the region's next window (no cursor yet: the first).
            .condition_expression("attribute_not_exists(#next) OR #next = :w")
            .expression_attribute_names("#next", "next")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#part", "part")
            .expression_attribute_names("#after", "after")
            .expression_attribute_values(":w", n(window))
            .expression_attribute_values(":part", n(progress.part))
            .expression_attribute_values(":after", s(&progress.after))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(self.fail("UpdateItem", DisplayErrorContext(&e))),
        }
    }
}

pub use crate::digest::registry::KeyUse;

impl DynamoStaging {
    /// Every signing key the digest function has used.
    pub async fn keys_used(&self) -> Result<Vec<KeyUse>, StoreError> {
        Ok(self
            .partition("KEY".into())
            .await?
            .into_iter()
            .map(|item| {
                let get = |k: &str| text(&item, k);
                // `regions` (a set); items noted before it, one `region`.
                let mut regions = match item.get("regions") {
                    Some(AttributeValue::Ss(set)) => set.clone(),
                    _ => Vec::new(),
                };
                let legacy = get("region");
                if !legacy.is_empty() && !regions.contains(&legacy) {
                    regions.push(legacy);
                }
                regions.sort();
                KeyUse {
                    key_id: get("keyId"),
                    regions,
                    fingerprint: get(attr::SK),
                    first_used: get("firstUsed"),
                    last_used: get("lastUsed"),
                }
            })
            .collect())
    }
}

impl HealthStore for DynamoStaging {
    async fn note_delivery(&self, trail: &str, outcome: &RunOutcome) -> Result<(), StoreError> {
        self.note_run("DLH", trail, outcome).await
    }

    async fn note_digest(&self, trail: &str, outcome: &RunOutcome) -> Result<(), StoreError> {
        self.note_run("DGH", trail, outcome).await
    }

    async fn health(&self, trail: &str) -> Result<TrailHealth, StoreError> {
        let (deliver, digest) = (
            self.run_item("DLH", trail).await?,
            self.run_item("DGH", trail).await?,
        );
        let time = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .and_then(|t| crate::time::parse(t).ok())
        };
        let text = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
            item.get(k).and_then(|v| v.as_s().ok()).cloned()
        };
        let error = |item| text(item, "lastError");
        let attempt = time(&deliver, "attemptAt");
        Ok(TrailHealth {
            delivery_attempt: attempt,
            delivery_succeeded: attempt.map(|a| time(&deliver, "okAt") == Some(a)),
            delivery_ok: time(&deliver, "okAt"),
            delivered: time(&deliver, "wroteAt"),
            delivery_error: error(&deliver),
            digest_delivered: time(&digest, "wroteAt"),
            digest_error: error(&digest),
            notified: time(&deliver, "notifiedAt"),
            notify_error: text(&deliver, "notifyError"),
            cwl_delivered: time(&deliver, "cwlAt"),
            cwl_error: text(&deliver, "cwlError"),
        })
    }
}

impl DigestState for DynamoStaging {
    async fn cursors(&self, trail: &str) -> Result<Vec<crate::digest::Cursor>, StoreError> {
        self.chain_cursors(trail).await
    }

    async fn manifest(
        &self,
        trail: &str,
        region: &str,
        hour: &chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ManifestEntry>, StoreError> {
        self.manifest_partition(trail, region, &hour.format("%Y-%m-%dT%H").to_string())
            .await
    }

    async fn head(&self, trail: &str, region: &str) -> Result<Option<ChainHead>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("DIG#{trail}")))
            .key(attr::SK, s(region))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        let Some(item) = got.item else {
            return Ok(None);
        };
        let get = |k: &str| text(&item, k);
        Ok(Some(ChainHead {
            end: crate::time::parse(&get("end")).map_err(|e| self.fail("read chain head", e))?,
            bucket: get("bucket"),
            key: get("object"),
            sha256: get("sha256"),
            signature: get("signature"),
            last: item
                .get("last")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        }))
    }

    async fn advance_head(
        &self,
        trail: &str,
        region: &str,
        expected: Option<&chrono::DateTime<chrono::Utc>>,
        next: &ChainHead,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(format!("DIG#{trail}")))
            .item(attr::SK, s(region))
            .item("end", s(crate::time::format(&next.end)))
            .item("bucket", s(&next.bucket))
            .item("object", s(&next.key))
            .item("sha256", s(&next.sha256))
            .item("signature", s(&next.signature))
            .item("last", AttributeValue::Bool(next.last));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(end) => put
                .condition_expression("#end = :expected")
                .expression_attribute_names("#end", "end")
                .expression_attribute_values(":expected", s(crate::time::format(end))),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(self.fail("PutItem", DisplayErrorContext(&e))),
        }
    }

    async fn note_key(
        &self,
        region: &str,
        key: &PublicKey,
        first: &chrono::DateTime<chrono::Utc>,
        last: &chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        // Several regions' runs (and a catch-up, which signs older hours)
        // note the same key: the region joins a set, and each end moves
        // only outwards, so no run's region or span is lost to another's.
        let (first, last) = (s(crate::time::format(first)), s(crate::time::format(last)));
        let update = |expression: &str, condition: Option<&str>| {
            self.client
                .update_item()
                .table_name(&self.table)
                .key(attr::PK, s("KEY"))
                .key(attr::SK, s(&key.fingerprint))
                .update_expression(expression)
                .set_condition_expression(condition.map(str::to_owned))
        };
        update(
            "SET keyId = :id, firstUsed = if_not_exists(firstUsed, :first), lastUsed = if_not_exists(lastUsed, :last) ADD regions :region",
            None,
        )
        .expression_attribute_values(":id", s(&key.key_id))
        .expression_attribute_values(":first", first.clone())
        .expression_attribute_values(":last", last.clone())
        .expression_attribute_values(":region", AttributeValue::Ss(vec![region.to_owned()]))
        .send()
        .await
        .map_err(|e| self.fail("UpdateItem", DisplayErrorContext(&e)))?;
        for (expression, condition, value) in [
            ("SET lastUsed = :t", "lastUsed < :t", last),
            ("SET firstUsed = :t", "firstUsed > :t", first),
        ] {
            let result = update(expression, Some(condition))
                .expression_attribute_values(":t", value)
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if conditional_failed(&e) => {}
                Err(e) => return Err(self.fail("UpdateItem", DisplayErrorContext(&e))),
            }
        }
        Ok(())
    }

    async fn note_segment(
        &self,
        trail: &str,
        region: &str,
        mark: &SegmentMark,
    ) -> Result<(), StoreError> {
        // Append-only: a mark once written is never replaced.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, s(format!("SEG#{trail}")))
            .item(
                attr::SK,
                s(format!(
                    "{region}#{}#{}",
                    crate::time::format(&mark.end),
                    mark.boundary.as_str()
                )),
            )
            .item("bucket", s(&mark.bucket))
            .item("object", s(&mark.key))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(self.fail("PutItem", DisplayErrorContext(&e))),
        }
    }
}

/// An error as GetTrailStatus shows it: at most this many characters.
const MAX_HEALTH_ERROR_CHARS: usize = 500;

impl DynamoStaging {
    /// Notes one run's outcome in `{kind}#{trail}` (`DLH#`: deliver's,
    /// `DGH#`: digest's): the attempt, the last time it wrote, the error of a
    /// failed run (removed by a run without one).
    async fn note_run(
        &self,
        kind: &str,
        trail: &str,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        let mut set = vec!["attemptAt = :a".to_owned()];
        if outcome.wrote {
            set.push("wroteAt = :a".into());
        }
        let mut remove = Vec::new();
        if outcome.error.is_some() {
            set.push("lastError = :e".into());
        } else if outcome.complete {
            set.push("okAt = :a".into());
            remove.push("lastError");
        }
        // Deliver's side channels (SNS, CloudWatch Logs): the last run that
        // sent and the last refusal; one that sent without a refusal clears it.
        let sides = [
            (
                outcome.notified,
                &outcome.notify_error,
                "notified",
                "notifyError",
                ":n",
            ),
            (
                outcome.cwl_sent,
                &outcome.cwl_error,
                "cwl",
                "cwlError",
                ":c",
            ),
        ];
        let mut values = Vec::new();
        for (sent, error, at, error_name, value) in sides {
            if sent {
                set.push(format!("{at}At = :a"));
            }
            match error {
                Some(e) => {
                    set.push(format!("{error_name} = {value}"));
                    values.push((value, e));
                }
                None if sent => remove.push(error_name),
                None => {}
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("{kind}#{trail}")))
            .key(attr::SK, s("-"))
            .update_expression(expression)
            .expression_attribute_values(":a", s(crate::time::format(&outcome.at)));
        if let Some(e) = &outcome.error {
            let e: String = e.chars().take(MAX_HEALTH_ERROR_CHARS).collect();
            update = update.expression_attribute_values(":e", s(e));
        }
        for (name, e) in values {
            let e: String = e.chars().take(MAX_HEALTH_ERROR_CHARS).collect();
            update = update.expression_attribute_values(name, s(e));
        }
        update
            .send()
            .await
            .map_err(|e| self.fail("UpdateItem", DisplayErrorContext(&e)))?;
        Ok(())
    }

    /// One health item's attributes (none if absent).
    async fn run_item(
        &self,
        kind: &str,
        trail: &str,
    ) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(format!("{kind}#{trail}")))
            .key(attr::SK, s("-"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        Ok(got.item.unwrap_or_default())
    }

    /// Every chain segment mark of a trail, per region, oldest first (for
    /// `validate-logs`).
    pub async fn segments(
        &self,
        trail: &str,
    ) -> Result<std::collections::HashMap<String, Vec<SegmentMark>>, StoreError> {
        let mut out: std::collections::HashMap<String, Vec<SegmentMark>> =
            std::collections::HashMap::new();
        for item in self.partition(format!("SEG#{trail}")).await? {
            let sk = text(&item, attr::SK);
            let bad = || self.fail("read chain segment", format!("bad sort key {sk:?}"));
            let mut parts = sk.splitn(3, '#');
            let (Some(region), Some(end), Some(boundary)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let end = crate::time::parse(end).map_err(|_| bad())?;
            let boundary = Boundary::parse(boundary).ok_or_else(bad)?;
            out.entry(region.to_owned()).or_default().push(SegmentMark {
                boundary,
                end,
                bucket: text(&item, "bucket"),
                key: text(&item, "object"),
            });
        }
        for marks in out.values_mut() {
            marks.sort_by_key(|m| (m.end, m.boundary));
        }
        Ok(out)
    }
}
