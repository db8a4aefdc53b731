//! The hourly digest run (docs/digests.md): for every trail with log file
//! validation on and every region it logs, one signed digest per hour, by
//! delivery time, chained to the previous one.
//!
//! - The digest ending at `H` lists the files delivered in `[H − 1 h, H)`
//!   (the manifest partition of that delivery hour).
//! - It is written only once every file of that hour is delivered: the
//!   delivery cursor of every region of the trail must be at a window whose
//!   delivery time is ≥ `H` (docs/delivery.md, "What the digest function can
//!   rely on"). Otherwise the hour waits for the next run; hours are written
//!   oldest first, so no file can fall between two digests.
//! - The chain head (last digest's end, key, hash, signature) moves with a
//!   conditional write from the end it was read at; a run that loses the race
//!   stops for that chain, so two runs can never fork it.
//! - The bytes of a digest depend only on the head it extends and on the
//!   manifest, and PKCS#1 v1.5 signatures are deterministic: a re-run for the
//!   same hour writes the same key, bytes and signature.

pub mod file;
pub mod gzhash;
pub mod registry;
pub mod sha256;

pub use file::{
    digest_end, digest_key, fingerprint, pkcs1_from_spki, sha256_hex, string_to_sign, DigestFile,
    DigestLogFile, KeyError, HASH_ALGORITHM, SIGNATURE_ALGORITHM,
};

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use futures::{stream, StreamExt, TryStreamExt};

use crate::delivery::{delivery_time, window_of, ManifestEntry};
use crate::store::{failed, Failed, Incomplete, StoreError};
use crate::trail::{health, HealthStore, Place, RunOutcome, Trail};
use gzhash::{GzError, Inflated};

/// The `alarm` field of a failed trail/region's error log: a log query finds
/// the trail and region (docs/operations.md "A stuck trail or region"); the
/// run then fails, so the digest errors alarm fires.
pub const ALARM: &str = "DigestFailed";

/// The last digest of a chain, as the next one needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub end: DateTime<Utc>,
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the uncompressed digest.
    pub sha256: String,
    /// Hex signature.
    pub signature: String,
    /// The chain's final digest (the trail stopped): a restart begins a new chain.
    pub last: bool,
}

/// Which end of a chain segment a digest is. A stop and a restart start a
/// new segment (a digest with no previous one); the state keeps each
/// segment's first and final digest, append-only, so the validator can
/// check every segment to its end (docs/digests.md "Chain segments").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Boundary {
    /// The first digest of a segment.
    Start,
    /// The final digest of a segment: the trail stopped.
    Final,
}

impl Boundary {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Final => "final",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Self::Start),
            "final" => Some(Self::Final),
            _ => None,
        }
    }
}

/// One end of a chain segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMark {
    pub boundary: Boundary,
    /// The digest's end time.
    pub end: DateTime<Utc>,
    pub bucket: String,
    pub key: String,
}

/// A signing key's public half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The KMS key ARN or id.
    pub key_id: String,
    /// PKCS#1 `RSAPublicKey` DER.
    pub pkcs1: Vec<u8>,
    /// `digestPublicKeyFingerprint`.
    pub fingerprint: String,
}

/// Signs digests (KMS in production): each region's digests with that region's key.
pub trait Signer: Send + Sync {
    fn public_key(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<PublicKey, StoreError>> + Send;
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    fn sign(
        &self,
        region: &str,
        message: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}

/// Where a chain's delivery is, as the digest run reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The chain (`region`, or `{org}/{account}/{region}`: [`Place`]).
    pub chain: String,
    /// The first window not yet delivered.
    pub next: i64,
    /// The first window anything was staged into (ingest's registration),
    /// if known: no file of the chain is delivered before it.
    pub first: Option<i64>,
}

/// The state the digest run reads and advances (DynamoDB in production).
pub trait DigestState: Send + Sync {
    /// The chains the trail has staged events in, with their delivery cursors.
    fn cursors(&self, trail: &str) -> impl Future<Output = Result<Vec<Cursor>, StoreError>> + Send;
    /// The files delivered in the hour starting at `hour`.
    fn manifest(
        &self,
        trail: &str,
        region: &str,
        hour: &DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ManifestEntry>, StoreError>> + Send;
    fn head(
        &self,
        trail: &str,
        region: &str,
    ) -> impl Future<Output = Result<Option<ChainHead>, StoreError>> + Send;
    /// Replaces the head whose end is `expected` (`None`: no head yet) with
    /// `next`; false if another run moved it first.
    fn advance_head(
        &self,
        trail: &str,
        region: &str,
        expected: Option<&DateTime<Utc>>,
        next: &ChainHead,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records one end of a chain segment; never changes one already
    /// recorded (a re-run records the same mark again, harmlessly).
    fn note_segment(
        &self,
        trail: &str,
        region: &str,
        mark: &SegmentMark,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records that `key` signed `region`'s digests ending `first` to
    /// `last` (the key registry, for `list-public-keys`).
    fn note_key(
        &self,
        region: &str,
        key: &PublicKey,
        first: &DateTime<Utc>,
        last: &DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The log bucket, as the digest run sees it.
pub trait DigestBucket: Send + Sync {
    /// Streams a log file and hashes its inflated content; `None` if it is gone.
    fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Result<Inflated, GzError>>, StoreError>> + Send;
    /// Writes a gzipped digest with its signature metadata, encrypted as
    /// the trail's log files are (`kms_key`: SSE-KMS under that key).
    fn put_digest(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        signature_hex: &str,
        kms_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Settings of the digest function.
#[derive(Clone, Debug)]
pub struct DigestSettings {
    /// Deliver's `GRACE_SECONDS`.
    pub grace_secs: i64,
    /// How long after a stop ingest may still stage events for the trail:
    /// ingest's trail cache lifetime plus its timeout.
    pub settle_secs: i64,
    /// The regions a multi-region trail logs.
    pub regions: Vec<String>,
    /// Log files re-hashed at once (per chain).
    pub concurrency: usize,
    /// Chains of a trail extended at once.
    pub chains: usize,
}

impl Default for DigestSettings {
    fn default() -> Self {
        Self {
            grace_secs: crate::delivery::DEFAULT_GRACE_SECS,
            settle_secs: 90,
            regions: Vec::new(),
            concurrency: 8,
            chains: 16,
        }
    }
}

/// What a digest run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestReport {
    pub digests: usize,
    pub log_files: usize,
    /// Listed files whose object is gone or no longer hashes as delivered.
    pub tampered: usize,
    /// Chains whose next hour waits for deliveries still to come.
    pub waiting: usize,
    /// Chains another run advanced first.
    pub raced: usize,
    /// Trail/regions whose digest failed this run (caught up next run; the
    /// others were written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
}

/// The digest that ends a stopped trail's chain: the first hour boundary
/// after the last file of events staged before the stop can be delivered.
pub fn final_end(stopped: &DateTime<Utc>, settings: &DigestSettings) -> DateTime<Utc> {
    let last_window = window_of(&(*stopped + Duration::seconds(settings.settle_secs)));
    digest_end(&delivery_time(last_window, settings.grace_secs)) + Duration::hours(1)
}

/// The digests a chain is due for at a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// End time of the first digest to write.
    pub first: DateTime<Utc>,
    /// End time of the last digest to write in this run.
    pub last: DateTime<Utc>,
    /// The first digest extends the stored head (false: a new chain).
    pub continues: bool,
    /// The end time of the chain's final digest, if the trail is stopped.
    pub final_end: Option<DateTime<Utc>>,
}

/// The hours (digest end times) a chain is due for at `now`; `None` if
/// nothing is (docs/digests.md, "Which hours are due").
pub fn due(
    trail: &Trail,
    head: Option<&ChainHead>,
    now: &DateTime<Utc>,
    settings: &DigestSettings,
) -> Option<Due> {
    if !trail.log_file_validation_enabled {
        return None;
    }
    let hour = Duration::hours(1);
    let this_hour = digest_end(now);
    let final_end = if trail.is_logging {
        None
    } else {
        Some(final_end(&trail.stop_logging_time?, settings))
    };
    let (first, continues) = match head {
        Some(h) if !h.last => (h.end + hour, true),
        _ => {
            let started = trail
                .start_logging_time
                .map(|s| digest_end(&s) + hour)
                .unwrap_or(this_hour);
            (
                started.max(head.map(|h| h.end + hour).unwrap_or(started)),
                false,
            )
        }
    };
    let last = final_end.map_or(this_hour, |f| f.min(this_hour));
    (first <= last).then_some(Due {
        first,
        last,
        continues,
        final_end,
    })
}

/// A signing key and the digest end times it signed, in one region.
#[derive(Clone)]
struct KeyUse {
    region: String,
    key: PublicKey,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl KeyUse {
    fn widen(&mut self, other: &KeyUse) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

impl DigestReport {
    /// Adds one chain's part of the run.
    fn absorb(&mut self, part: DigestReport) {
        self.digests += part.digests;
        self.log_files += part.log_files;
        self.tampered += part.tampered;
        self.waiting += part.waiting;
        self.raced += part.raced;
        self.failed.extend(part.failed);
    }

    /// The report, or the trail/regions that failed.
    pub fn into_result(self) -> Result<Self, Incomplete> {
        Incomplete::check(&self.failed).map(|()| self)
    }
}

/// The hourly digest run, over its ports.
pub struct Digester<'a, S, K, B> {
    pub state: &'a S,
    pub signer: &'a K,
    pub bucket: &'a B,
    pub settings: &'a DigestSettings,
}

impl<S: DigestState + HealthStore, K: Signer, B: DigestBucket> Digester<'_, S, K, B> {
    /// Writes every digest that is due at `now` (the schedule's time). A
    /// trail's chains are extended concurrently (`settings.chains` at once);
    /// one that fails is reported in `failed` and caught up by the next run,
    /// and never holds up the others.
    pub async fn run(&self, trails: &[Trail], now: &DateTime<Utc>) -> DigestReport {
        let mut report = DigestReport::default();
        for trail in trails.iter().filter(|t| t.log_file_validation_enabled) {
            let (digests, failures) = (report.digests, report.failed.len());
            match self.state.cursors(&trail.name).await {
                Ok(cursors) => self.run_trail(trail, &cursors, now, &mut report).await,
                Err(e) => report.failed.push(failed(ALARM, &trail.name, "*", &e)),
            }
            let outcome = RunOutcome {
                at: *now,
                complete: true,
                wrote: report.digests > digests,
                error: report.failed.get(failures).map(|f| f.error.clone()),
                notified: false,
                notify_error: None,
                cwl_sent: false,
                cwl_error: None,
            };
            health::note(&trail.name, self.state.note_digest(&trail.name, &outcome)).await;
        }
        report
    }

    /// Extends every chain of one trail, `settings.chains` at once (chains
    /// share nothing but the key registry; whichever finishes first frees
    /// its slot, so one long chain never holds up the others), and notes
    /// each signing key per region: at its first use in the run (a run cut
    /// short by its timeout has noted it), and at the end for the whole
    /// span the run signed, if it grew.
    async fn run_trail(
        &self,
        trail: &Trail,
        cursors: &[Cursor],
        now: &DateTime<Utc>,
        report: &mut DigestReport,
    ) {
        let grace = self.settings.grace_secs;
        let chains = self.regions(trail, cursors);
        let mut runs = stream::iter(&chains)
            .map(|region| async move {
                let cursor = cursors.iter().find(|c| &c.chain == region);
                // The region's hour ending at H is complete once its first
                // undelivered window delivers at or after H.
                let complete_until = cursor.map(|c| delivery_time(c.next, grace));
                // A chain begins with the hour its first file can be
                // delivered in, not before (a member account's first event
                // may come long after the trail started).
                let not_before = cursor
                    .and_then(|c| c.first)
                    .map(|w| digest_end(&delivery_time(w, grace)) + Duration::hours(1));
                let (mut part, mut used) = (DigestReport::default(), None);
                let bounds = (complete_until, not_before);
                let done = self
                    .chain(trail, region, bounds, now, &mut part, &mut used)
                    .await;
                (region, part, done, used)
            })
            .buffer_unordered(self.settings.chains.max(1));
        // (signing region, key fingerprint) → the key, the span it signed
        // and the span noted so far.
        let mut keys: BTreeMap<(String, String), (KeyUse, KeyUse)> = BTreeMap::new();
        let mut failures = Vec::new();
        while let Some((region, part, done, used)) = runs.next().await {
            report.absorb(part);
            if let Err(e) = done {
                failures.push(failed(ALARM, &trail.name, region, &e));
            }
            // A chain that failed part way notes the hours it did write.
            let Some(u) = used else { continue };
            match keys.entry((u.region.clone(), u.key.fingerprint.clone())) {
                Entry::Vacant(v) => {
                    self.note_key(trail, &u, &mut failures).await;
                    v.insert((u.clone(), u));
                }
                Entry::Occupied(mut o) => o.get_mut().0.widen(&u),
            }
        }
        for (signed, noted) in keys.into_values() {
            if (signed.first, signed.last) != (noted.first, noted.last) {
                self.note_key(trail, &signed, &mut failures).await;
            }
        }
        failures.sort_by(|a, b| a.region.cmp(&b.region));
        report.failed.extend(failures);
    }

    /// Notes a key's use in the key registry; a failure is the trail's,
    /// filed under `key {fingerprint}` in the region.
    async fn note_key(&self, trail: &Trail, u: &KeyUse, failures: &mut Vec<Failed>) {
        let noted = self.state.note_key(&u.region, &u.key, &u.first, &u.last);
        if let Err(e) = noted.await {
            let what = format!("{} (key {})", u.region, u.key.fingerprint);
            failures.push(failed(ALARM, &trail.name, &what, &e));
        }
    }

    /// The chains a trail's digests cover: the stack account's chains of
    /// a multi-region trail's served regions and every chain it has staged
    /// events in (an organization trail's member accounts' included, from
    /// their first event on); else the home region's chains. The stack
    /// account's chains are digested every hour, events or not, as in
    /// CloudTrail; a member account's once it has one.
    fn regions(&self, trail: &Trail, cursors: &[Cursor]) -> Vec<String> {
        let own = |region: &str| {
            Place {
                org: trail.organization_id.as_deref(),
                account: &trail.account_id,
                region,
            }
            .chain()
        };
        let mut regions: Vec<String> = if trail.is_multi_region_trail {
            self.settings
                .regions
                .iter()
                .map(|r| own(r))
                .chain(cursors.iter().map(|c| c.chain.clone()))
                .collect()
        } else {
            let home = |chain: &String| {
                crate::delivery::place(trail, chain).is_ok_and(|p| p.region == trail.home_region)
            };
            std::iter::once(own(&trail.home_region))
                .chain(cursors.iter().map(|c| c.chain.clone()).filter(home))
                .collect()
        };
        regions.sort();
        regions.dedup();
        regions
    }

    /// Extends one region's chain by every hour that is due and complete
    /// (up to `complete_until`); a new chain from `not_before` at the earliest.
    /// Sets `used` to the key it signed with and the span it wrote, as it
    /// writes (so that a chain failing part way still tells).
    async fn chain(
        &self,
        trail: &Trail,
        region: &str,
        (complete_until, not_before): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        now: &DateTime<Utc>,
        report: &mut DigestReport,
        used: &mut Option<KeyUse>,
    ) -> Result<(), StoreError> {
        let stored = self.state.head(&trail.name, region).await?;
        let Some(mut due) = due(trail, stored.as_ref(), now, self.settings) else {
            return Ok(());
        };
        if !due.continues {
            due.first = due.first.max(not_before.unwrap_or(due.first));
        }
        let mut expected = stored.as_ref().map(|h| h.end);
        let mut previous = if due.continues { stored.clone() } else { None };
        let place = crate::delivery::place(trail, region)?;
        let key = self.signer.public_key(place.region).await?;
        let mut end = due.first;
        while end <= due.last {
            if complete_until.is_some_and(|c| c < end) {
                report.waiting += 1;
                break;
            }
            let last = due.final_end == Some(end);
            let first = previous.is_none();
            let head = self
                .write_digest((trail, region, &key), previous.as_ref(), end, last, report)
                .await?;
            // Marks before the head moves: a run that dies in between
            // leaves the head where it was, and the next run writes the
            // same digest and marks again.
            for (is, boundary) in [(first, Boundary::Start), (last, Boundary::Final)] {
                if is {
                    let mark = SegmentMark {
                        boundary,
                        end,
                        bucket: head.bucket.clone(),
                        key: head.key.clone(),
                    };
                    self.state.note_segment(&trail.name, region, &mark).await?;
                }
            }
            if !self
                .state
                .advance_head(&trail.name, region, expected.as_ref(), &head)
                .await?
            {
                report.raced += 1;
                break;
            }
            report.digests += 1;
            let signed = KeyUse {
                region: place.region.to_owned(),
                key: key.clone(),
                first: end,
                last: end,
            };
            match used {
                Some(u) => u.widen(&signed),
                None => *used = Some(signed),
            }
            expected = Some(end);
            previous = Some(head);
            end += Duration::hours(1);
        }
        Ok(())
    }

    /// Writes the digest ending at `end` of a trail's region (signed with
    /// `key`), and returns the chain's new head.
    async fn write_digest(
        &self,
        (trail, region, key): (&Trail, &str, &PublicKey),
        previous: Option<&ChainHead>,
        end: DateTime<Utc>,
        last: bool,
        report: &mut DigestReport,
    ) -> Result<ChainHead, StoreError> {
        let start = end - Duration::hours(1);
        let mut entries = self.state.manifest(&trail.name, region, &start).await?;
        entries.sort_by(|a, b| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)));
        report.tampered += recheck(self.bucket, &entries, self.settings.concurrency).await?;
        report.log_files += entries.len();

        let place = crate::delivery::place(trail, region)?;
        let digest = digest_file(trail, &place, key, previous, end, &entries);
        let object = digest.digest_s3_object.clone();
        let fail = |operation: &'static str, e: &dyn std::fmt::Display| StoreError::Backend {
            operation,
            resource: object.clone(),
            message: e.to_string(),
        };
        let json = serde_json::to_vec(&digest).map_err(|e| fail("serialize digest", &e))?;
        let to_sign = string_to_sign(
            &digest.digest_end_time,
            &digest.digest_s3_bucket,
            &object,
            &json,
            digest.previous_digest_signature.as_deref(),
        );
        let signature = hex::encode(self.signer.sign(place.region, to_sign.as_bytes()).await?);
        let gzip = gzip(&json).map_err(|e| fail("compress digest", &e))?;
        self.bucket
            .put_digest(
                &trail.s3_bucket_name,
                &object,
                gzip,
                &signature,
                trail.kms_key_id.as_deref(),
            )
            .await?;
        Ok(ChainHead {
            end,
            bucket: trail.s3_bucket_name.clone(),
            key: object,
            sha256: sha256_hex(&json),
            signature,
            last,
        })
    }
}

/// The digest file ending at `end` that lists `entries` (sorted) and
/// extends `previous` (`None`: the first of a chain).
fn digest_file(
    trail: &Trail,
    place: &crate::trail::Place<'_>,
    key: &PublicKey,
    previous: Option<&ChainHead>,
    end: DateTime<Utc>,
    entries: &[ManifestEntry],
) -> DigestFile {
    let time = crate::time::format;
    let start = end - Duration::hours(1);
    DigestFile {
        // The chain's account: a member's, in an organization trail's chain.
        aws_account_id: place.account.to_owned(),
        digest_start_time: time(&start),
        digest_end_time: time(&end),
        digest_s3_bucket: trail.s3_bucket_name.clone(),
        digest_s3_object: digest_key(
            trail.s3_key_prefix.as_deref(),
            place,
            &trail.name,
            &trail.home_region,
            &end,
        ),
        digest_public_key_fingerprint: key.fingerprint.clone(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
        newest_event_time: entries.iter().map(|e| e.newest).max().map(|t| time(&t)),
        oldest_event_time: entries.iter().map(|e| e.oldest).min().map(|t| time(&t)),
        previous_digest_s3_bucket: previous.map(|p| p.bucket.clone()),
        previous_digest_s3_object: previous.map(|p| p.key.clone()),
        previous_digest_hash_value: previous.map(|p| p.sha256.clone()),
        previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.into()),
        previous_digest_signature: previous.map(|p| p.signature.clone()),
        log_files: entries
            .iter()
            .map(|e| DigestLogFile {
                s3_bucket: e.bucket.clone(),
                s3_object: e.key.clone(),
                hash_value: e.sha256.clone(),
                hash_algorithm: HASH_ALGORITHM.into(),
                newest_event_time: time(&e.newest),
                oldest_event_time: time(&e.oldest),
            })
            .collect(),
    }
}

/// Re-hashes the listed files as they are in the bucket now. A file that is
/// gone or changed since delivery keeps its delivery-time hash in the digest
/// (so validation flags it) and raises an error log for the alarm.
async fn recheck<B: DigestBucket>(
    bucket: &B,
    entries: &[ManifestEntry],
    concurrency: usize,
) -> Result<usize, StoreError> {
    let found: Vec<Option<Result<Inflated, GzError>>> = stream::iter(entries)
        .map(|e| bucket.hash_log(&e.bucket, &e.key))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut tampered = 0;
    for (entry, now) in entries.iter().zip(found) {
        let problem = match now {
            None => Some("the object is gone".to_owned()),
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(h)) if h.sha256 != entry.sha256 => {
                Some(format!("its SHA-256 is now {}", h.sha256))
            }
            Some(Ok(_)) => None,
        };
        if let Some(problem) = problem {
            tampered += 1;
            tracing::error!(
                alarm = "LogFileTampered",
                bucket = %entry.bucket,
                key = %entry.key,
                delivered_sha256 = %entry.sha256,
                "log file changed after delivery: {problem}; the digest lists its delivery-time hash"
            );
        }
    }
    Ok(tampered)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse(s).unwrap()
    }

    fn trail(logging: bool) -> Trail {
        Trail {
            name: "audit".into(),
            home_region: "us-east-1".into(),
            account_id: "111122223333".into(),
            s3_bucket_name: "logs".into(),
            s3_key_prefix: None,
            kms_key_id: None,
            sns_topic_name: None,
            cloud_watch_logs: None,
            is_multi_region_trail: false,
            organization_id: None,
            include_global_service_events: true,
            log_file_validation_enabled: true,
            is_logging: logging,
            start_logging_time: Some(t("2026-11-24T03:20:00Z")),
            stop_logging_time: None,
            event_selectors: vec![],
            advanced_event_selectors: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn head(end: &str, last: bool) -> ChainHead {
        ChainHead {
            end: t(end),
            bucket: "logs".into(),
            key: "k".into(),
            sha256: "h".into(),
            signature: "s".into(),
            last,
        }
    }

    #[test]
    fn a_new_chain_starts_with_the_hour_logging_started_in() {
        let s = DigestSettings::default();
        let due = due(&trail(true), None, &t("2026-11-24T06:10:00Z"), &s);
        assert_eq!(
            due,
            Some(Due {
                first: t("2026-11-24T04:00:00Z"),
                last: t("2026-11-24T06:00:00Z"),
                continues: false,
                final_end: None
            })
        );
    }

    #[test]
    fn a_chain_continues_hour_by_hour_after_its_head() {
        let s = DigestSettings::default();
        let h = head("2026-11-24T04:00:00Z", false);
        assert_eq!(
            due(&trail(true), Some(&h), &t("2026-11-24T07:59:59Z"), &s),
            Some(Due {
                first: t("2026-11-24T05:00:00Z"),
                last: t("2026-11-24T07:00:00Z"),
                continues: true,
                final_end: None
            })
        );
        // Nothing due within the hour after the head.
        assert_eq!(
            due(&trail(true), Some(&h), &t("2026-11-24T04:59:59Z"), &s),
            None
        );
    }

    #[test]
    fn a_stopped_trail_ends_its_chain_once_its_last_files_can_be_delivered() {
        let s = DigestSettings::default();
        let mut stopped = trail(false);
        // Stopped at 05:30: the last events are staged by 05:31:30, in the
        // window delivering at 05:37, so the 06:00 digest is the final one.
        stopped.stop_logging_time = Some(t("2026-11-24T05:30:00Z"));
        let h = head("2026-11-24T04:00:00Z", false);
        let (five, six, seven) = (
            t("2026-11-24T05:00:00Z"),
            t("2026-11-24T06:00:00Z"),
            t("2026-11-24T07:00:00Z"),
        );
        assert_eq!(
            due(&stopped, Some(&h), &t("2026-11-24T09:10:00Z"), &s),
            Some(Due {
                first: five,
                last: six,
                continues: true,
                final_end: Some(six)
            })
        );
        // Stopped at 05:58: files can still arrive at 06:07, so the final
        // digest is 07:00's; a run at 06:10 writes up to 06:00, not final.
        stopped.stop_logging_time = Some(t("2026-11-24T05:58:00Z"));
        assert_eq!(final_end(&t("2026-11-24T05:58:00Z"), &s), seven);
        assert_eq!(
            due(&stopped, Some(&h), &t("2026-11-24T06:10:00Z"), &s),
            Some(Due {
                first: five,
                last: six,
                continues: true,
                final_end: Some(seven)
            })
        );
        // After the final digest: nothing more.
        let done = head("2026-11-24T07:00:00Z", true);
        assert_eq!(
            due(&stopped, Some(&done), &t("2026-11-24T12:00:00Z"), &s),
            None
        );
    }

    #[test]
    fn a_restart_after_a_final_digest_starts_a_new_chain_after_it() {
        let s = DigestSettings::default();
        let mut restarted = trail(true);
        restarted.start_logging_time = Some(t("2026-11-24T09:40:00Z"));
        let done = head("2026-11-24T07:00:00Z", true);
        assert_eq!(
            due(&restarted, Some(&done), &t("2026-11-24T11:10:00Z"), &s),
            Some(Due {
                first: t("2026-11-24T10:00:00Z"),
                last: t("2026-11-24T11:00:00Z"),
                continues: false,
                final_end: None
            })
        );
        // Restarted within the final digest's hour: the new chain starts after it.
        restarted.start_logging_time = Some(t("2026-11-24T06:40:00Z"));
        assert_eq!(
            due(&restarted, Some(&done), &t("2026-11-24T08:10:00Z"), &s),
            Some(Due {
                first: t("2026-11-24T08:00:00Z"),
                last: t("2026-11-24T08:00:00Z"),
                continues: false,
                final_end: None
            })
        );
    }

    #[test]
    fn no_digests_without_validation_or_before_logging_ever_stopped_or_started() {
        let s = DigestSettings::default();
        let mut off = trail(true);
        off.log_file_validation_enabled = false;
        assert_eq!(due(&off, None, &t("2026-11-24T09:10:00Z"), &s), None);
        let mut never = trail(false);
        never.start_logging_time = None;
        assert_eq!(due(&never, None, &t("2026-11-24T09:10:00Z"), &s), None);
    }
}

#[cfg(test)]
mod chain_tests;
