//! The event history: per region, management events only, kept for the
//! retention period (default 90 days) by a DynamoDB TTL attribute.
//!
//! One table, items keyed so that every LookupEvents attribute and a plain
//! time range are answered by one Query per partition read (the region's
//! and the global one, run together) per page, newest first, and one
//! BatchGetItem of the page's records (design and write cost in
//! docs/event-history.md):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | primary (one per event) | `{partition}#EventId#{eventID}` | `event` |
//! | time index | `{partition}#Time#{YYYY-MM-DD}` | `{eventTime}#{eventID}` |
//! | attribute index | `{partition}#{Attribute}#{value}#{YYYY-MM-DD}` | `{eventTime}#{eventID}` |
//!
//! The partition is the event's region, or [`GLOBAL`] for a global-service
//! event, which is stored once and read beside every served region's own
//! partitions. Another account's event (an organization's member, on a
//! stack with `OrganizationId`) is in its account's partitions,
//! `{account}/{region}` and `{account}/global` ([`account_partition`]),
//! never in the stack account's, which keep their names. `ReadOnly` has no item of its own: the time index item
//! carries it (`ro`) and a ReadOnly lookup filters the time partition.
//! Every item carries the TTL (`expiresAt`). Only the primary item holds
//! the record, packed ([`pack`]: zstd with a preset dictionary); an index item is its keys alone, and
//! its sort key names the event, so a lookup reads a page of index items
//! and then the page's primary items (docs/event-history.md). Items written
//! before these layouts (the record as JSON in every item; global events
//! copied into each served region; a ReadOnly item per event) are read
//! until they expire.
//! Idempotence: the primary item is written only if absent; the index items
//! are derived from the record the primary item holds, and have deterministic
//! keys, so re-deliveries (also concurrent ones, also with different content
//! under the same eventID) never add a second entry anywhere.

pub mod lookup;
pub mod resources;

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Read;

use chrono::{DateTime, Utc};

use crate::delivery::{FirstSeen, Note};
use crate::ingest::normalize::Normalized;
use crate::model::{EventCategory, Record};
use crate::time;

/// Default retention of the event history.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Attribute values longer than this are not indexed (a DynamoDB partition
/// key holds at most 2048 bytes); lookups refuse longer values.
pub const MAX_INDEXED_VALUE_BYTES: usize = 1900;

/// Sort key of the primary item.
pub const PRIMARY_SK: &str = "event";

/// The history partition of global-service events (IAM, STS's global
/// endpoint, console sign-in …): stored once, read beside every served
/// region's own partitions. Not a region name (ingest accepts only those as
/// `awsRegion`), so no regional event can land in it.
pub const GLOBAL: &str = "global";

/// The LookupEvents attributes, by their CloudTrail names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupAttribute {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupAttribute {
    pub const ALL: [LookupAttribute; 8] = [
        Self::EventId,
        Self::EventName,
        Self::ReadOnly,
        Self::Username,
        Self::ResourceType,
        Self::ResourceName,
        Self::EventSource,
        Self::AccessKeyId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventId => "EventId",
            Self::EventName => "EventName",
            Self::ReadOnly => "ReadOnly",
            Self::Username => "Username",
            Self::ResourceType => "ResourceType",
            Self::ResourceName => "ResourceName",
            Self::EventSource => "EventSource",
            Self::AccessKeyId => "AccessKeyId",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The values of this attribute a record is found under (several for
    /// resources: [`resources`]).
    pub fn values(self, record: &Record) -> Vec<String> {
        let resources = || resources::lookup_resources(record);
        let values: Vec<&str> = match self {
            Self::EventId => vec![record.event_id.as_str()],
            Self::EventName => vec![record.event_name.as_str()],
            Self::ReadOnly => vec![if record.is_read_only() {
                "true"
            } else {
                "false"
            }],
            Self::Username => record.lookup_username().into_iter().collect(),
            Self::ResourceType => {
                return keep(resources().into_iter().filter_map(|r| r.resource_type));
            }
            Self::ResourceName => {
                let resources = resources();
                return keep(
                    resources
                        .iter()
                        .flat_map(|r| r.index_values())
                        .map(str::to_owned),
                );
            }
            Self::EventSource => vec![record.event_source.as_str()],
            Self::AccessKeyId => record
                .user_identity
                .access_key_id
                .as_deref()
                .into_iter()
                .collect(),
        };
        keep(values.into_iter().map(str::to_owned))
    }
}

/// The values an index holds: not empty, and short enough for a key.
fn keep(values: impl Iterator<Item = String>) -> Vec<String> {
    values
        .filter(|v| !v.is_empty() && v.len() <= MAX_INDEXED_VALUE_BYTES)
        .collect()
}

/// Partition key of the primary item of an event in a history partition
/// (a region, or [`GLOBAL`]).
pub fn primary_pk(region: &str, event_id: &str) -> String {
    format!("{region}#EventId#{event_id}")
}

/// Partition key of the time index for one UTC day.
pub fn time_pk(region: &str, day: &str) -> String {
    format!("{region}#Time#{day}")
}

/// Partition key of an attribute index for one UTC day.
pub fn attribute_pk(region: &str, attribute: LookupAttribute, value: &str, day: &str) -> String {
    format!("{region}#{}#{value}#{day}", attribute.as_str())
}

/// Sort key of index items: time-ordered, unique per event.
pub fn index_sk(event_time: &DateTime<Utc>, event_id: &str) -> String {
    format!("{}#{event_id}", time::format(event_time))
}

/// The event ID an index item's sort key names (`{eventTime}#{eventID}`;
/// times never hold `#`, event IDs may).
pub fn event_id_of(index_sk: &str) -> Option<&str> {
    index_sk.split_once('#').map(|(_, id)| id)
}

/// Index sort keys share a bucket when their first `BUCKET_LEN` bytes
/// agree (`YYYY-MM-DDTHH:M`: the ten minutes of eventTime, `HH:M0` to
/// `HH:M9`). The events one shared index item lists are all in one bucket,
/// so a lookup that resumes inside a bucket re-reads that bucket alone
/// (docs/event-history.md "Shared index items": at 100 events a minute,
/// with batches of up to two minutes, ten minutes share a third more than
/// one minute does).
pub const BUCKET_LEN: usize = 15;

/// A shared item whose events all lie in one minute is that minute's
/// (`YYYY-MM-DDTHH:MM~{hash}`, as every shared item was from 2026-12-02 to
/// 2026-12-04): its key sorts above its minute's own items and below the
/// next minute's, inside its bucket, so a lookup reading on below it knows
/// the events of the minutes above it are all there (where a batch takes
/// seconds of events, at thousands a minute, nearly every shared item is
/// a minute's, and a lookup reads a minute's shared items at a time, not
/// ten minutes').
pub const MINUTE_BUCKET_LEN: usize = 16;

/// The span of a bucket, in seconds.
pub const BUCKET_SECONDS: i64 = 600;

/// Most events one shared index item lists (each ~40 bytes: ~4 KB).
pub const MAX_MEMBERS: usize = 100;

/// The bucket of an index sort key, a shared item's or a lookup position
/// (the ten minutes: a minute's shared item, of the layout before, is in
/// the ten minutes holding that minute).
pub fn bucket_of(sk: &str) -> &str {
    sk.get(..BUCKET_LEN).unwrap_or(sk)
}

/// Whether an index sort key is a shared item's (`{bucket}~{hash}`, or
/// `{minute}~{hash}`): an event's own item has a digit and `:` there (its
/// eventTime's minute, then its seconds), whatever its eventID, so the two
/// never collide.
pub fn is_shared(sk: &str) -> bool {
    shared_prefix(sk).is_some()
}

/// A shared item's bucket or minute: the prefix its members' suffixes go
/// after, and above whose keys it sorts.
pub fn shared_prefix(sk: &str) -> Option<&str> {
    [BUCKET_LEN, MINUTE_BUCKET_LEN]
        .into_iter()
        .find(|&at| sk.as_bytes().get(at) == Some(&b'~'))
        .and_then(|at| sk.get(..at))
}

/// Sort key of the item shared by these events' entries (their sort keys
/// after the bucket, sorted): `{bucket}~{hash}`. It sorts above every
/// event's own item of the bucket and below the next bucket; the hash
/// makes it a function of the members, so writing the same batch again
/// overwrites the same item.
pub fn shared_sk(bucket: &str, members: &[String]) -> String {
    let mut h = crate::digest::sha256::Sha256::new();
    h.update(bucket.as_bytes());
    for m in members {
        // Length-prefixed: no two member lists hash the same input.
        h.update(&(m.len() as u64).to_be_bytes());
        h.update(m.as_bytes());
    }
    let d = h.finish();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{bucket}~{hex}")
}

/// The sort keys of the events a shared item lists (`members`, each its
/// sort key after the bucket).
pub fn member_sks(shared_sk: &str, members: &[String]) -> Vec<String> {
    let bucket = shared_prefix(shared_sk).unwrap_or_else(|| bucket_of(shared_sk));
    members.iter().map(|m| format!("{bucket}{m}")).collect()
}

/// One item of the history table.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item<'a> {
    pub pk: String,
    pub sk: String,
    /// The primary item's record, [`pack`]ed; index items hold none.
    pub record: Option<&'a [u8]>,
    /// On the time index item: whether the event is read-only (a ReadOnly
    /// lookup filters the time partition on it).
    pub read_only: Option<bool>,
    /// TTL: epoch seconds after which the item is gone from the history.
    pub expires_at: i64,
    /// On a shared index item ([`is_shared`]): the events it lists, each
    /// by its sort key after the bucket; empty on every other item.
    pub members: Vec<String>,
}

/// One event's entry in one index partition, before it is written: in an
/// item of its own, or in one shared with the other entries of a batch in
/// the same partition and bucket ([`items_of`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The partition key, before sharding.
    pub pk: String,
    pub read_only: Option<bool>,
    /// The event's index sort key.
    pub sk: String,
    pub expires_at: i64,
    /// The event's shard ([`shard_of`] its eventID).
    pub shard: u32,
}

impl Entry {
    fn own_item(self) -> Item<'static> {
        Item {
            pk: shard_pk(self.pk, self.shard),
            sk: self.sk,
            read_only: self.read_only,
            expires_at: self.expires_at,
            ..Item::default()
        }
    }
}

/// The items that index `entries` (of one batch of events): entries of one
/// partition, ReadOnly value and bucket share an item (at most
/// [`MAX_MEMBERS`] each, in the shard its sort key hashes to, expiring
/// with its earliest member, all of whose members expire in the same
/// ten minutes; a minute's item where they all lie in one minute:
/// [`MINUTE_BUCKET_LEN`]); an entry alone in its group gets an item of
/// its own, exactly as one event's index is written. Repeated entries are
/// written once.
pub fn items_of(mut entries: Vec<Entry>, shards: u32) -> Vec<Item<'static>> {
    entries.sort();
    entries.dedup_by(|a, b| a.pk == b.pk && a.read_only == b.read_only && a.sk == b.sk);
    let mut items = Vec::new();
    let mut rest = entries.as_slice();
    while let Some(first) = rest.first() {
        let bucket = bucket_of(&first.sk);
        let len = rest
            .iter()
            .take(MAX_MEMBERS)
            .take_while(|e| {
                e.pk == first.pk
                    && e.read_only == first.read_only
                    && bucket_of(&e.sk) == bucket
                    // Not with an entry kept for another retention (a
                    // re-delivery stored before RetentionDays changed):
                    // one bucket's events expire within the same ten
                    // minutes (whole days after it).
                    && e.expires_at.div_euclid(BUCKET_SECONDS)
                        == first.expires_at.div_euclid(BUCKET_SECONDS)
            })
            .count();
        let (group, tail) = rest.split_at(len);
        rest = tail;
        if let [one] = group {
            items.push(one.clone().own_item());
            continue;
        }
        // The group's minute, if its events all lie in one.
        let minute = first.sk.get(..MINUTE_BUCKET_LEN).filter(|m| {
            group
                .iter()
                .all(|e| e.sk.get(..MINUTE_BUCKET_LEN) == Some(*m))
        });
        let prefix = minute.unwrap_or(bucket);
        let members: Vec<String> = group
            .iter()
            .map(|e| e.sk.get(prefix.len()..).unwrap_or_default().to_owned())
            .collect();
        let sk = shared_sk(prefix, &members);
        items.push(Item {
            pk: shard_pk(first.pk.clone(), shard_of(&sk, shards)),
            sk,
            record: None,
            read_only: first.read_only,
            expires_at: group.iter().map(|e| e.expires_at).min().unwrap_or_default(),
            members,
        });
    }
    items
}

/// The first byte of a record packed with [`DICTIONARY_V1`]: a zstd frame
/// follows. Records packed before 2026-12-03 are raw deflate (RFC 1951),
/// whose first byte's bits 1–2 are the first block's type, `11` being
/// reserved: no deflate stream starts with `0x06`, so the two never mix up.
/// A later dictionary takes another tag with those bits set (`0x0e`,
/// `0x16`, …) and this one stays readable.
pub const PACKED_V1: u8 = 0x06;

/// The preset dictionary of [`PACKED_V1`]: the CloudTrail records of
/// `events/versions/cloudtrail-records.json` and `events/eventbridge/`
/// (their `detail`s as compact JSON, a line each), as they were on
/// 2026-12-03. Frozen: every record packed with it needs these exact bytes
/// to unpack (`a_record_packed_on_2026_12_03_unpacks_forever`). Keys,
/// identity shapes, user agents and TLS details repeat from record to
/// record, so a 2.9 KB record packs to ~490 bytes instead of deflate's ~950
/// (docs/event-history.md "Item sizes").
pub const DICTIONARY_V1: &[u8] = include_bytes!("pack-dictionary-v1.jsonl");

/// zstd level: 9 stores ~17% less than 3 on realistic records at ~50 µs a
/// record; 19 another ~4% at ~15× the time.
const PACK_LEVEL: i32 = 9;

thread_local! {
    static PACKER: std::cell::RefCell<zstd::bulk::Compressor<'static>> = std::cell::RefCell::new(
        zstd::bulk::Compressor::with_dictionary(PACK_LEVEL, DICTIONARY_V1)
            .expect("zstd takes a raw-content dictionary"),
    );
    static UNPACKER: std::cell::RefCell<zstd::bulk::Decompressor<'static>> = std::cell::RefCell::new(
        zstd::bulk::Decompressor::with_dictionary(DICTIONARY_V1)
            .expect("zstd takes a raw-content dictionary"),
    );
}

/// The stored form of a record (a primary item's, or a staged copy's):
/// [`PACKED_V1`], then its JSON as one zstd frame compressed with
/// [`DICTIONARY_V1`], holding its size and no checksum. Measured on the
/// realistic mix (2.9 KB median): ~490 bytes, against ~950 for raw deflate
/// alone (the format before) and ~1,000 for zstd without a dictionary.
pub fn pack(json: &str) -> Vec<u8> {
    pack_bytes(json.as_bytes())
}

/// [`pack`] of any bytes (a batch item of staged copies:
/// [`crate::delivery::batch`]).
pub fn pack_bytes(bytes: &[u8]) -> Vec<u8> {
    let frame = PACKER
        .with_borrow_mut(|packer| packer.compress(bytes))
        .expect("compressing into a Vec cannot fail");
    [&[PACKED_V1][..], &frame].concat()
}

/// The bytes of a [`pack_bytes`] frame, refused before they are held in
/// memory if the frame declares more than `cap` bytes (or no size).
pub fn unpack_bytes(packed: &[u8], cap: u64) -> Result<Vec<u8>, StoreError> {
    unzstd(packed, cap).map_err(|why| StoreError::Corrupt {
        message: format!("a packed item does not unpack: {why}"),
    })
}

fn unzstd(packed: &[u8], cap: u64) -> Result<Vec<u8>, String> {
    let Some((&PACKED_V1, frame)) = packed.split_first() else {
        return Err("not a zstd frame packed by trailkeep".into());
    };
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= cap => size as usize,
        Ok(Some(size)) => return Err(format!("longer than {cap} bytes ({size})")),
        Ok(None) | Err(_) => return Err("no zstd frame of a known size".into()),
    };
    UNPACKER
        .with_borrow_mut(|unpacker| unpacker.decompress(frame, size))
        .map_err(|e| e.to_string())
}

/// The record JSON of a [`pack`]ed record, of either format. Ingest refuses
/// records over [`crate::model::MAX_RECORD_BYTES`], so a frame declaring
/// more (or none), or bytes inflating past that (deflate expands up to
/// ~1,000:1), were not written by trailkeep and are refused before they
/// are held in memory.
pub fn unpack(packed: &[u8]) -> Result<String, StoreError> {
    let cap = crate::model::MAX_RECORD_BYTES as u64;
    let corrupt = |why: String| StoreError::Corrupt {
        message: format!("a packed record does not unpack: {why}"),
    };
    let bytes = match packed.first() {
        Some(&PACKED_V1) => unzstd(packed, cap).map_err(corrupt)?,
        _ => {
            let mut json = Vec::new();
            flate2::read::DeflateDecoder::new(packed)
                .take(cap + 1)
                .read_to_end(&mut json)
                .map_err(|e| corrupt(e.to_string()))?;
            if json.len() as u64 > cap {
                return Err(corrupt(format!("longer than {cap} bytes")));
            }
            json
        }
    };
    String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))
}

/// The attributes with an index item per value. `EventId` is the primary
/// item's key; `ReadOnly`, two values that split every event between them,
/// is a filter on the time index (it would cost an item per event and
/// bought nothing the time partition does not give).
pub const INDEXED: [LookupAttribute; 6] = [
    LookupAttribute::EventName,
    LookupAttribute::Username,
    LookupAttribute::ResourceType,
    LookupAttribute::ResourceName,
    LookupAttribute::EventSource,
    LookupAttribute::AccessKeyId,
];

/// Most shards an index may be written in (`HISTORY_SHARDS`).
pub const MAX_SHARDS: u32 = 16;

/// The shard (`0..shards`) an event's index items go to: from the SHA-256
/// of its eventID, so every writer, and every version, agrees, and a busy
/// partition's events spread evenly.
pub fn shard_of(event_id: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut h = crate::digest::sha256::Sha256::new();
    h.update(event_id.as_bytes());
    let d = h.finish();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % shards
}

/// Shard `shard` of index partition `pk`: shard 0 is `pk` itself, so a
/// history written unsharded (or with fewer shards) is read by any shard
/// count at least as large; shard n is `{pk}~{n}` (a partition key
/// otherwise ends in its day, never in `~` and a number).
pub fn shard_pk(pk: String, shard: u32) -> String {
    if shard == 0 {
        pk
    } else {
        format!("{pk}~{shard}")
    }
}

/// The index entries (time and attributes, not the primary item) of a
/// record in one history partition, without duplicates, in the record's
/// shard of `shards`.
pub fn index_entries(record: &Record, region: &str, expires_at: i64, shards: u32) -> Vec<Entry> {
    let day = time::day(&record.event_time);
    let sk = index_sk(&record.event_time, &record.event_id);
    let shard = shard_of(&record.event_id, shards);
    let entry = |pk, read_only| Entry {
        pk,
        read_only,
        sk: sk.clone(),
        expires_at,
        shard,
    };
    let mut pks = BTreeSet::new();
    for attribute in INDEXED {
        for value in attribute.values(record) {
            pks.insert(attribute_pk(region, attribute, &value, &day));
        }
    }
    std::iter::once(entry(time_pk(region, &day), Some(record.is_read_only())))
        .chain(pks.into_iter().map(|pk| entry(pk, None)))
        .collect()
}

/// The index items of one record alone: one item per entry
/// ([`index_entries`]).
pub fn index_items(
    record: &Record,
    region: &str,
    expires_at: i64,
    shards: u32,
) -> Vec<Item<'static>> {
    index_entries(record, region, expires_at, shards)
        .into_iter()
        .map(Entry::own_item)
        .collect()
}

/// How long events stay in the history, and how many shards its index
/// partitions are written in.
#[derive(Clone, Debug)]
pub struct HistorySettings {
    pub retention_days: u32,
    /// 1 (no sharding) to [`MAX_SHARDS`]: each index partition (the time
    /// index, every attribute value) of a day is split in this many, by a
    /// hash of the eventID, so no partition takes more than its share of
    /// the writes (docs/event-history.md "Limits"). Only ever raised:
    /// lookups read shards `0..shards`.
    pub shards: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
            shards: 1,
        }
    }
}

impl HistorySettings {
    /// TTL of a record: eventTime + retention, in epoch seconds.
    pub fn expires_at(&self, record: &Record) -> i64 {
        record.event_time.timestamp() + i64::from(self.retention_days) * 86_400
    }
}

/// The history partition `partition` (a region or [`GLOBAL`]) of
/// `account`: the name itself for the stack's own account (`None`),
/// `{account}/{partition}` for another (12 digits, checked by ingest, so
/// no account's partition is another's or a region's).
pub fn account_partition(account: Option<&str>, partition: &str) -> String {
    match account {
        Some(account) => format!("{account}/{partition}"),
        None => partition.to_owned(),
    }
}

/// The history partition a record belongs in: none for data events;
/// [`GLOBAL`] for global-service events (every served region's lookups
/// read it); else its own region.
pub fn partition(record: &Record) -> Option<&str> {
    if record.category() == EventCategory::Data {
        None
    } else if crate::ingest::classify::is_global(record) {
        Some(GLOBAL)
    } else {
        Some(record.aws_region.as_str())
    }
}

/// What the store says when asked to claim an event's primary item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The item was absent and is now written.
    Stored,
    /// An item with this key exists: the record JSON it holds (none if it
    /// is unreadable, or gone again: expired and deleted in between), its
    /// TTL, and the first delivery window noted on it (none on items
    /// written before first-staging notes moved there).
    Exists {
        record: Option<String>,
        expires_at: Option<i64>,
        first_window: Option<i64>,
    },
}

pub use crate::store::StoreError;

/// The port the history needs from its store.
pub trait HistoryStore: Send + Sync {
    /// Writes `item` (with `first_window`, the event's first delivery
    /// window, if given) unless an item with its key exists (then returns
    /// that item's record and first window).
    fn claim(
        &self,
        item: &Item<'_>,
        first_window: Option<i64>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Writes (overwrites) every item; idempotent.
    fn put_all(&self, items: &[Item<'_>]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What recording one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time.
    Stored,
    /// The history already had it.
    Duplicate,
    /// A data event: never in the history.
    NotInHistory,
}

/// Records one normalized event in the history partition it belongs to
/// ([`partition`]).
pub async fn record<S: HistoryStore>(
    store: &S,
    settings: &HistorySettings,
    event: &Normalized,
) -> Result<Recorded, StoreError> {
    Ok(record_noting(store, settings, event, None).await?.0)
}

/// [`record`], noting on the primary item `window` as the event's first
/// delivery window (docs/delivery.md "Who delivers a copy"): the first
/// attempt's stands. Returns what staging should follow: the note as it
/// now is ([`Note::Known`]: none if the stored item has no readable one,
/// or without a `window`), or, for an event not in the history (a data
/// event), [`Note::Batch`].
pub async fn record_noting<S: HistoryStore>(
    store: &S,
    settings: &HistorySettings,
    event: &Normalized,
    window: Option<i64>,
) -> Result<(Recorded, Note), StoreError> {
    let (recorded, note, entries) = claim_noting(store, settings, event, window).await?;
    write_index(store, entries, settings).await?;
    Ok((recorded, note))
}

/// Writes the index items of `entries` (of one event, or of every event
/// of an ingest batch: [`items_of`]); nothing if there are none.
pub async fn write_index<S: HistoryStore>(
    store: &S,
    entries: Vec<Entry>,
    settings: &HistorySettings,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    store.put_all(&items_of(entries, settings.shards)).await
}

/// The first step of [`record_noting`]: the primary item, claimed (or
/// found), and the index entries still to write ([`write_index`]) for the
/// version it holds, so that a batch of events writes its index together.
/// The primary item is always written before its index items.
pub async fn claim_noting<S: HistoryStore>(
    store: &S,
    settings: &HistorySettings,
    event: &Normalized,
    window: Option<i64>,
) -> Result<(Recorded, Note, Vec<Entry>), StoreError> {
    claim_noting_in(store, settings, event, window, None).await
}

/// [`claim_noting`] in the partitions of `account` ([`account_partition`]:
/// `None` for the stack's own account).
pub async fn claim_noting_in<S: HistoryStore>(
    store: &S,
    settings: &HistorySettings,
    event: &Normalized,
    window: Option<i64>,
    account: Option<&str>,
) -> Result<(Recorded, Note, Vec<Entry>), StoreError> {
    let Some(part) = partition(&event.record) else {
        return Ok((Recorded::NotInHistory, Note::Batch, Vec::new()));
    };
    let part = account_partition(account, part);
    let region = part.as_str();
    let expires_at = settings.expires_at(&event.record);
    let packed = pack(&event.json);
    let primary = Item {
        pk: primary_pk(region, &event.record.event_id),
        sk: PRIMARY_SK.to_owned(),
        record: Some(&packed),
        expires_at,
        ..Item::default()
    };
    match store.claim(&primary, window).await? {
        Claim::Stored => {
            let entries = index_entries(&event.record, region, expires_at, settings.shards);
            let note = Note::Known(window.map(|window| FirstSeen {
                window,
                event_time: event.record.event_time,
            }));
            Ok((Recorded::Stored, note, entries))
        }
        Claim::Exists {
            record: stored_json,
            expires_at: stored_expires_at,
            first_window,
        } => {
            // Complete the index of the stored version (a writer may have
            // crashed between the two steps); its entries are
            // deterministic, so this never adds an event to a partition it
            // is not already in (a second listing of it, in another shared
            // item, is read once: lookups drop repeated sort keys), and its
            // items expire with the primary item they lead to.
            let stored = stored_json.as_deref().map(serde_json::from_str::<Record>);
            let mut noted = None;
            let mut entries = Vec::new();
            match stored {
                Some(Ok(stored)) => {
                    let expires_at =
                        stored_expires_at.unwrap_or_else(|| settings.expires_at(&stored));
                    entries = index_entries(&stored, region, expires_at, settings.shards);
                    noted = first_window.map(|window| FirstSeen {
                        window,
                        event_time: stored.event_time,
                    });
                }
                // An index leading to a record no lookup can read would
                // serve nothing (and a second eventTime would put the
                // event in a page twice): left as it is.
                _ => tracing::warn!(
                    event_id = %event.record.event_id,
                    region,
                    "stored record unreadable or gone; not indexed again"
                ),
            }
            // No readable note (an item from before notes moved here, or
            // unreadable): the copies are claimed.
            Ok((Recorded::Duplicate, Note::Known(noted), entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;
    use crate::testkit::deflated;

    fn record() -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "eventTime": "2026-11-24T02:10:06Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "AttachRolePolicy",
            "awsRegion": "us-east-1",
            "eventID": "e1",
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIAEXAMPLE"},
            "resources": [
                {"ARN": "arn:aws:iam::111122223333:role/a", "type": "AWS::IAM::Role"},
                {"ARN": "arn:aws:iam::aws:policy/b", "type": "AWS::IAM::Policy"},
                {"ARN": "arn:aws:iam::111122223333:role/c", "type": "AWS::IAM::Role"}
            ]
        }))
        .unwrap();
        crate::ingest::classify::classify(&mut r);
        r
    }

    #[test]
    fn every_lookup_attribute_of_a_record_gets_one_index_item() {
        let r = record();
        let items = index_items(&r, "eu-west-1", 7, 1);
        let pks: Vec<&str> = items.iter().map(|i| i.pk.as_str()).collect();
        assert_eq!(
            pks,
            [
                "eu-west-1#Time#2026-11-24",
                "eu-west-1#AccessKeyId#AKIAEXAMPLE#2026-11-24",
                "eu-west-1#EventName#AttachRolePolicy#2026-11-24",
                "eu-west-1#EventSource#iam.amazonaws.com#2026-11-24",
                // Each role and policy by its ARN and by its name.
                "eu-west-1#ResourceName#a#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::111122223333:role/a#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::111122223333:role/c#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::aws:policy/b#2026-11-24",
                "eu-west-1#ResourceName#b#2026-11-24",
                "eu-west-1#ResourceName#c#2026-11-24",
                "eu-west-1#ResourceType#AWS::IAM::Policy#2026-11-24",
                "eu-west-1#ResourceType#AWS::IAM::Role#2026-11-24",
                "eu-west-1#Username#alice#2026-11-24",
            ]
        );
        assert!(items
            .iter()
            .all(|i| i.sk == "2026-11-24T02:10:06Z#e1" && i.expires_at == 7 && i.record.is_none()));
        // ReadOnly rides on the time item, the only one that carries it.
        let read_only: Vec<_> = items.iter().map(|i| i.read_only).collect();
        assert_eq!(read_only[0], Some(false));
        assert!(read_only[1..].iter().all(Option::is_none));
        assert_eq!(event_id_of(&items[0].sk), Some("e1"));
        assert_eq!(event_id_of("2026-11-24T02:10:06Z#a#b"), Some("a#b"));
    }

    #[test]
    fn a_batch_shares_one_item_per_partition_readonly_value_and_bucket() {
        let at = |id: &str, time: &str, ro: bool| {
            let mut r = record();
            r.event_id = id.into();
            r.event_time = crate::time::parse(time).unwrap();
            r.read_only = Some(ro);
            r.resources = None;
            r
        };
        let batch = [
            at("a", "2026-11-24T02:10:01Z", true),
            at("b", "2026-11-24T02:10:09Z", true),
            at("c", "2026-11-24T02:10:05Z", false),
            // Another minute of the same ten.
            at("e", "2026-11-24T02:19:59Z", true),
            // Another bucket (the next ten minutes).
            at("d", "2026-11-24T02:20:00Z", true),
            // Delivered twice in the batch: listed once.
            at("a", "2026-11-24T02:10:01Z", true),
        ];
        let expires = [30, 10, 20, 50, 40, 30];
        let entries: Vec<Entry> = batch
            .iter()
            .zip(expires)
            .flat_map(|(r, e)| index_entries(r, "r", e, 1))
            .collect();
        let items = items_of(entries, 1);
        let time: Vec<&Item> = items
            .iter()
            .filter(|i| i.pk == "r#Time#2026-11-24")
            .collect();
        // a, b and e (read-only) share an item; c (not read-only) and d
        // (another bucket) are alone, in items as one event's own.
        assert_eq!(time.len(), 3, "{time:?}");
        let shared = time.iter().find(|i| is_shared(&i.sk)).unwrap();
        assert!(shared.sk.starts_with("2026-11-24T02:1~"), "{}", shared.sk);
        assert_eq!(shared.members, ["0:01Z#a", "0:09Z#b", "9:59Z#e"]);
        assert_eq!(
            member_sks(&shared.sk, &shared.members),
            [
                "2026-11-24T02:10:01Z#a",
                "2026-11-24T02:10:09Z#b",
                "2026-11-24T02:19:59Z#e"
            ]
        );
        assert_eq!((shared.read_only, shared.expires_at), (Some(true), 10));
        // Where a group's events all lie in one minute, the item is that
        // minute's.
        let one_minute: Vec<Entry> = batch[..2]
            .iter()
            .flat_map(|r| index_entries(r, "r", 10, 1))
            .filter(|e| e.pk == "r#Time#2026-11-24")
            .collect();
        let minute = &items_of(one_minute, 1)[0];
        assert!(minute.sk.starts_with("2026-11-24T02:10~"), "{}", minute.sk);
        assert_eq!(minute.members, [":01Z#a", ":09Z#b"]);
        assert_eq!(
            member_sks(&minute.sk, &minute.members),
            ["2026-11-24T02:10:01Z#a", "2026-11-24T02:10:09Z#b"]
        );
        let own: Vec<_> = time.iter().filter(|i| !is_shared(&i.sk)).collect();
        assert_eq!(own.len(), 2);
        assert!(own.iter().all(|i| i.members.is_empty()));
        // An event alone in its batch is written exactly as its own index.
        let alone = &batch[3];
        let mut own = index_items(alone, "r", 40, 4);
        own.sort();
        assert_eq!(items_of(index_entries(alone, "r", 40, 4), 4), own);
        // Every attribute partition is shared the same way: EventName of
        // all five (two buckets × ReadOnly none) in two items.
        let names: Vec<&Item> = items
            .iter()
            .filter(|i| i.pk.starts_with("r#EventName#"))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // The same batch again writes the same keys (idempotent).
        let again: Vec<Entry> = batch
            .iter()
            .rev()
            .zip(expires)
            .flat_map(|(r, e)| index_entries(r, "r", e, 1))
            .collect();
        let keys = |items: &[Item]| -> Vec<(String, String)> {
            items.iter().map(|i| (i.pk.clone(), i.sk.clone())).collect()
        };
        assert_eq!(keys(&items_of(again, 1)), keys(&items));
    }

    #[test]
    fn no_event_id_makes_an_events_own_key_a_shared_items() {
        let t = crate::time::parse("2026-11-24T02:10:06Z").unwrap();
        for id in ["~", "~0123456789abcdef", "#~", "e1", ""] {
            let sk = index_sk(&t, id);
            assert!(!is_shared(&sk), "{sk}");
            assert_eq!(bucket_of(&sk), "2026-11-24T02:1");
        }
        let sk = shared_sk("2026-11-24T02:1", &["0:06Z#e1".into()]);
        assert!(is_shared(&sk));
        assert!(sk > index_sk(&t, "~~~") && sk.as_str() < "2026-11-24T02:20");
        // A minute's shared item (its events all in that minute, as every
        // shared item was from 2026-12-02 to 2026-12-04) is in its ten
        // minutes' bucket, its members after its minute.
        let minute = "2026-11-24T02:10~0123456789abcdef";
        assert!(is_shared(minute));
        assert_eq!(bucket_of(minute), "2026-11-24T02:1");
        assert_eq!(
            member_sks(minute, &[":06Z#e1".into()]),
            ["2026-11-24T02:10:06Z#e1"]
        );
        assert!(minute > index_sk(&t, "~~~").as_str() && minute < sk.as_str());
        // Members are bounded: a large batch in one partition and bucket
        // is split into items of at most MAX_MEMBERS.
        let mut r = record();
        let entries: Vec<Entry> = (0..MAX_MEMBERS * 2 + 1)
            .flat_map(|n| {
                r.event_id = format!("e{n:04}");
                index_entries(&r, "r", 1, 1)
            })
            .filter(|e| e.pk.contains("#Time#"))
            .collect();
        let items = items_of(entries, 1);
        let sizes: Vec<usize> = items.iter().map(|i| i.members.len().max(1)).collect();
        assert_eq!(sizes, [MAX_MEMBERS, MAX_MEMBERS, 1]);
    }

    #[test]
    fn a_record_packs_smaller_and_unpacks_to_the_same_json() {
        let json = serde_json::to_string(&record()).unwrap();
        let packed = pack(&json);
        assert_eq!(packed[0], PACKED_V1);
        assert!(
            packed.len() < json.len() / 2,
            "{} vs {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack(&packed).unwrap(), json);
        // And the empty string, and text that is not JSON at all.
        for text in ["", "not json \u{1F600} \0 \u{10FFFF}"] {
            assert_eq!(unpack(&pack(text)).unwrap(), text);
        }
    }

    /// A record as the realistic mix writes it (tests/integration/mix.rs:
    /// an AssumeRole by an assumed role, 3.8 KB of JSON), packed by
    /// python-zstandard with the dictionary file, not by [`pack`]: the format
    /// is zstd's own, and the dictionary's bytes cannot change unnoticed.
    #[test]
    fn a_record_packed_on_2026_12_03_unpacks_forever() {
        let json = include_str!("testdata/record.json");
        let packed = include_bytes!("testdata/record.packed-v1");
        assert_eq!(unpack(packed).unwrap(), json);
        // What it is for: a 3.8 KB record and its item's keys in one WRU.
        let ours = pack(json);
        assert!(ours.len() <= 700, "{} bytes", ours.len());
        assert_eq!(unpack(&ours).unwrap(), json);
    }

    #[test]
    fn records_packed_before_the_dictionary_still_unpack() {
        let json = serde_json::to_string(&record()).unwrap();
        let old = deflated(json.as_bytes());
        assert_ne!(old[0], PACKED_V1);
        assert_eq!(unpack(&old).unwrap(), json);
    }

    #[test]
    fn bytes_that_are_not_a_packed_record_are_an_error_not_a_panic() {
        assert!(unpack(b"{\"eventID\": \"e1\"}").is_err());
        assert!(unpack(b"").is_err());
        for cut in [1, 2, 5] {
            let mut bad = pack("{\"eventID\": \"e1\"}");
            bad.truncate(cut);
            assert!(unpack(&bad).is_err(), "cut at {cut}");
        }
        let mut flipped = pack(&serde_json::to_string(&record()).unwrap());
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        flipped[last - 20] ^= 0x55;
        // zstd finds most damage; what it misses is other text, never a panic
        // (the digests, not the history, prove integrity).
        if let Ok(text) = unpack(&flipped) {
            assert_ne!(text, serde_json::to_string(&record()).unwrap());
        }
        // The tag before anything that is not a zstd frame.
        assert!(unpack(&[PACKED_V1, 0x28, 0xb5, 0x2f]).is_err());
        assert!(unpack(&[&[PACKED_V1][..], &deflated(b"{}")].concat()).is_err());
        // Not UTF-8 once unpacked, in either format.
        assert!(unpack(&deflated(&[0xff, 0xfe])).is_err());
        let frame = zstd::bulk::compress(&[0xff, 0xfe], 3).unwrap();
        assert!(unpack(&[&[PACKED_V1][..], &frame].concat()).is_err());
        // A frame that does not say its size.
        let mut no_size = zstd::bulk::Compressor::new(3).unwrap();
        no_size
            .set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
            .unwrap();
        let frame = no_size.compress(b"{}").unwrap();
        let err = unpack(&[&[PACKED_V1][..], &frame].concat()).unwrap_err();
        assert!(err.to_string().contains("known size"), "{err}");
        // A frame that says less than it holds: unpacking stops at the size
        // said (the content size field, after the magic number, the frame
        // header descriptor, the window and dictionary fields, rewritten).
        let mut liar = zstd::bulk::compress(&[b' '; 100_000], 3).unwrap();
        let fhd = liar[4];
        let at = 5 + usize::from(fhd & 0x20 == 0) + [0, 1, 2, 4][usize::from(fhd & 3)];
        assert_eq!(fhd >> 6, 2, "a 4-byte size field for 100,000 bytes");
        liar[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&liar)
                .ok()
                .flatten(),
            Some(100)
        );
        assert!(unpack(&[&[PACKED_V1][..], &liar].concat()).is_err());
        // Two frames, the first saying its own size only.
        let two = [
            &[PACKED_V1][..],
            &zstd::bulk::compress(b"{}", 3).unwrap(),
            &zstd::bulk::compress(&[b' '; 100_000], 3).unwrap(),
        ]
        .concat();
        assert!(unpack(&two).is_err());
        // A deflate stream whose first block has the reserved type (what
        // the tag byte relies on), final or not.
        for first in [0x07, 0x0e, 0x0f] {
            assert!(unpack(&[first, 0, 0, 0]).is_err(), "{first:#x}");
        }
        // Bombs: past the largest record ingest accepts, in either format.
        let at_most = " ".repeat(crate::model::MAX_RECORD_BYTES);
        assert_eq!(unpack(&pack(&at_most)).unwrap().len(), at_most.len());
        let err = unpack(&pack(&format!("{at_most} "))).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        assert!(err.is_permanent());
        let err = unpack(&deflated(format!("{at_most} ").as_bytes())).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn oversized_and_empty_values_are_not_indexed() {
        let mut r = record();
        r.resources = Some(vec![Resource {
            arn: Some("x".repeat(MAX_INDEXED_VALUE_BYTES + 1)),
            resource_type: Some(String::new()),
            ..Resource::default()
        }]);
        assert!(LookupAttribute::ResourceName.values(&r).is_empty());
        assert!(LookupAttribute::ResourceType.values(&r).is_empty());
    }

    #[test]
    fn ttl_is_event_time_plus_retention() {
        let s = HistorySettings {
            retention_days: 90,
            shards: 1,
        };
        let r = record();
        assert_eq!(s.expires_at(&r), r.event_time.timestamp() + 90 * 86_400);
    }

    #[test]
    fn global_events_go_to_the_global_partition_once_and_data_events_nowhere() {
        let iam = record();
        assert_eq!(partition(&iam), Some("global"));
        let mut ec2 = record();
        ec2.event_source = "ec2.amazonaws.com".into();
        ec2.aws_region = "ap-south-1".into();
        assert_eq!(partition(&ec2), Some("ap-south-1"));
        let mut data = record();
        data.event_category = Some(EventCategory::Data);
        assert_eq!(partition(&data), None);
        // No region can be named like the global partition.
        assert!(!crate::ingest::normalize::is_region(GLOBAL));
    }

    #[test]
    fn shards_are_stable_spread_and_shard_zero_is_the_unsharded_key() {
        // Fixed values (Python: int.from_bytes(sha256(b"e0").digest()[:4],
        // "big") % 8, …): a change in the hash would move every event
        // written before it to another shard.
        assert_eq!(shard_of("e1", 1), 0);
        assert_eq!(
            (0..8)
                .map(|n| shard_of(&format!("e{n}"), 8))
                .collect::<Vec<_>>(),
            [2, 7, 0, 3, 2, 7, 1, 0]
        );
        assert_eq!(shard_of("a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b06", 16), 12);
        let mut per_shard = [0u32; 4];
        for n in 0..4000 {
            per_shard[shard_of(&format!("{n:08x}-aaaa-bbbb"), 4) as usize] += 1;
        }
        assert!(
            per_shard.iter().all(|&c| (900..1100).contains(&c)),
            "{per_shard:?}"
        );
        assert_eq!(shard_pk("r#Time#2026-11-24".into(), 0), "r#Time#2026-11-24");
        assert_eq!(
            shard_pk("r#Time#2026-11-24".into(), 3),
            "r#Time#2026-11-24~3"
        );
        // Every index item of an event is in one shard, the event's.
        let r = record();
        let shard = shard_of(&r.event_id, 4);
        let suffix = format!("~{shard}");
        for i in index_items(&r, "eu-west-1", 7, 4) {
            assert_eq!(shard == 0, !i.pk.contains('~'), "{}", i.pk);
            assert!(shard == 0 || i.pk.ends_with(&suffix), "{}", i.pk);
        }
    }

    /// The busiest partition's writes in any one second (WRU: index items
    /// are 100–250 bytes, 1 WRU each) when `per_second` events a second
    /// arrive for `seconds` seconds: half from one service, a third by one
    /// user, two in five one API call, four in five read-only, one in ten
    /// global; each names its own resource.
    fn hottest_partition_wru(shards: u32, per_second: usize, seconds: usize) -> (u32, String) {
        let mut base = record();
        base.event_version = "1.11".into();
        let mut hottest = (0, String::new());
        for second in 0..seconds {
            let mut wru: std::collections::HashMap<String, u32> = Default::default();
            for n in 0..per_second {
                let i = second * per_second + n;
                let mut r = base.clone();
                r.event_id = format!("{i:08x}-1111-4222-8333-444455556666");
                r.event_time += chrono::Duration::milliseconds((i * 1000 / per_second) as i64);
                r.event_source = if i.is_multiple_of(2) {
                    "ec2.amazonaws.com".into()
                } else {
                    format!("svc{}.amazonaws.com", i % 37)
                };
                r.event_name = if i % 5 < 2 {
                    "DescribeInstances".into()
                } else {
                    format!("Call{}", i % 101)
                };
                r.user_identity.user_name = Some(if i.is_multiple_of(3) {
                    "ci-deployer".into()
                } else {
                    format!("user{}", i % 53)
                });
                r.user_identity.access_key_id = Some(format!("AKIA{:012}", i % 211));
                r.read_only = Some(!i.is_multiple_of(5));
                r.resources = Some(vec![Resource {
                    arn: Some(format!(
                        "arn:aws:ec2:eu-west-1:111122223333:instance/i-{i:017x}"
                    )),
                    resource_type: Some("AWS::EC2::Instance".into()),
                    ..Resource::default()
                }]);
                let region = if i.is_multiple_of(10) {
                    GLOBAL
                } else {
                    "eu-west-1"
                };
                for item in index_items(&r, region, 0, shards) {
                    *wru.entry(item.pk).or_default() += 1;
                }
            }
            if let Some((pk, w)) = wru.into_iter().max_by_key(|(_, w)| *w) {
                if w > hottest.0 {
                    hottest = (w, pk);
                }
            }
        }
        hottest
    }

    #[test]
    fn five_thousand_events_a_second_for_a_minute_heat_no_partition_past_1000_wru_with_8_shards() {
        // DynamoDB takes ~1,000 WRU/s per partition.
        let (wru, pk) = hottest_partition_wru(8, 5000, 60);
        assert!(wru <= 1000, "{pk}: {wru} WRU in one second");
        // Unsharded, the time partition alone takes every regional event.
        let (wru, pk) = hottest_partition_wru(1, 5000, 1);
        assert!(wru > 4000, "{pk}: {wru}");
        assert!(
            pk.contains("#Time#") || pk.contains("#ResourceType#"),
            "{pk}"
        );
    }

    #[test]
    fn attribute_names_round_trip() {
        for a in LookupAttribute::ALL {
            assert_eq!(LookupAttribute::parse(a.as_str()), Some(a));
        }
        assert_eq!(LookupAttribute::parse("eventname"), None);
    }
}
