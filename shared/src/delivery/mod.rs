//! Staging at ingest and log file delivery, exactly once (docs/delivery.md).
//!
//! - Ingest stages each event for every trail that logs it, into the
//!   delivery window of its *ingest* time: 5-minute windows, numbered from
//!   the epoch. A staged copy is keyed by (trail, region, window, eventTime,
//!   eventID), so re-staging in the same window is harmless.
//! - Before staging a management event, ingest notes the event's *first*
//!   window on its history primary item (no write of its own; the first
//!   note stands). A copy staged in its first window is delivered without
//!   further ado; a later copy (a re-delivery) names the first window, and
//!   is delivered only if no copy was staged there and it wins the event's
//!   delivery marker (a conditional write) — so the common case costs
//!   deliver no write at all.
//! - Data events (no history item to note on) are staged in batch items,
//!   one per ingest batch, trail chain and window ([`batch`]); deliver
//!   leaves out the repeats in a window and the events earlier windows
//!   delivered, which it notes per eventTime window as it delivers.
//! - A window is *sealed* `grace` after its end. Ingest writes only into the
//!   window of the moment it writes (or a window after it), and an
//!   invocation lives at most the Lambda timeout, so with `grace` > timeout
//!   no write can land in a sealed window. Deliver only touches sealed
//!   windows.
//! - Deliver processes a trail's region window by window, in order, from its
//!   cursor. The files are a pure function of the events the window owns,
//!   so a re-run writes the same keys with the same bytes.

pub mod batch;
pub mod cloudwatch;
pub mod logfile;
mod window;

pub use window::{
    delivery_time, last_sealed, window_end, window_of, DEFAULT_GRACE_SECS, WINDOW_SECS,
};

use std::future::Future;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::{stream, StreamExt, TryStreamExt};

use crate::store::{failed, Failed, Incomplete, StoreError};
use crate::trail::{
    health, log_stream_name, parse_log_group_arn, HealthStore, Place, RunOutcome, Trail,
};
use cloudwatch::{EventLog, LogEvent, Put};
use logfile::Staged;

/// How long first-staging notes, staged copies and delivery markers are
/// kept after their window: a source re-delivering an event later than
/// this would see it logged again. EventBridge retries for at most 24 h,
/// Lambda's asynchronous retries for at most 6 h.
pub const MARKER_DAYS: i64 = 7;
/// Windows one deliver run handles per trail and region at most (a long
/// outage is caught up over several runs).
pub const MAX_WINDOWS_PER_RUN: i64 = 48;
/// The `alarm` field of a failed trail/region's error log: a log query finds
/// the trail and region (docs/operations.md "A stuck trail or region"); the
/// run then fails, so the deliver errors alarm fires.
pub const ALARM: &str = "DeliveryFailed";
/// Re-delivered copies checked at once in a page of a window (a read and
/// maybe a conditional write each; docs/delivery.md "Who delivers a copy").
const CHECKS_AT_ONCE: usize = 64;
/// How far ahead of its own window an attempt accepts an event's noted
/// first window: attempts that overlap (a source delivering twice at once)
/// read clocks at most an invocation apart (the ingest timeout, 30 s; it
/// must stay under one window, 300 s), so one window; a first window
/// further ahead was not noted by an honest attempt, and is not followed.
const MAX_FIRST_AHEAD: i64 = 1;
/// A window this many windows (an hour) behind the last sealed one is not
/// held back for CloudWatch Logs: a failure there that outlives the SDK's
/// retries loses those events in the log group (reported) instead of
/// failing the window, so a long CloudWatch Logs outage delays log files
/// by an hour at most.
const CWL_PATIENCE_WINDOWS: i64 = 12;

/// One delivered log file, as the digest function will read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the uncompressed file.
    pub sha256: String,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
    pub delivered: DateTime<Utc>,
    pub records: usize,
}

/// The first staging of an event: its window and the record's event time
/// (a later copy follows the note only if its event time is the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstSeen {
    pub window: i64,
    pub event_time: DateTime<Utc>,
}

/// How an event is staged, by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A management event: a copy of its own, following the first-staging
    /// note on its history primary item, as it stands (none if unreadable
    /// or absent: the copy is claimed).
    Known(Option<FirstSeen>),
    /// A data event (not in the history, so no note): in batch items
    /// ([`stage_batch`]).
    Batch,
}

/// The state delivery keeps (DynamoDB in production).
pub trait StagingStore: Send + Sync {
    /// Whether a copy with the sort key `sk` is staged in `window`
    /// (strongly consistent).
    fn is_staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        sk: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Notes that `trail` has events in `region`, staged from window `window` on.
    fn register(
        &self,
        trail: &str,
        region: &str,
        window: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stages one event in a window.
    fn stage(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        event: &Staged,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stages one batch item in a window: `content` as [`batch::contents`]
    /// makes it, under [`batch::item_sk`].
    fn stage_batch(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        content: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The batch copies windows before `before` delivered of events whose
    /// eventTime lies in window `at` (strongly consistent).
    fn delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        before: i64,
    ) -> impl Future<Output = Result<Vec<batch::CopyKey>, StoreError>> + Send;
    /// Notes the batch copies `window` delivered of events whose eventTime
    /// lies in window `at` (replacing what it noted before), kept until
    /// `expires_at`.
    fn record_delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        window: i64,
        keys: &[batch::CopyKey],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The regions `trail` has staged events in, with the first window not yet delivered.
    fn regions(
        &self,
        trail: &str,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// One page of what is staged in a window (strongly consistent), in
    /// sort key order, starting after the sort key `after`: the per-event
    /// copies (`{eventTime}#{eventID}`), then the batch items.
    fn staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        after: Option<&str>,
    ) -> impl Future<Output = Result<StagedPage, StoreError>> + Send;
    /// Claims the event for `window` unless another window has; returns the owner.
    fn claim(
        &self,
        trail: &str,
        region: &str,
        event_id: &str,
        window: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    fn record_manifest(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether the manifest entry of the file `entry` names (its trail,
    /// region, delivery hour and key) is recorded (strongly consistent).
    fn manifest_recorded(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Where the delivery of `window` goes on, if an earlier run left it
    /// unfinished (strongly consistent).
    fn progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
    ) -> impl Future<Output = Result<Option<Progress>, StoreError>> + Send;
    /// Notes how far the delivery of `window` went, if the region's next
    /// window still is `window`; `false` if another run moved it.
    fn save_progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        progress: &Progress,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves the region's next window from `from` to `to`, if it still is
    /// `from` (and forgets the progress noted in `from`).
    fn advance(
        &self,
        trail: &str,
        region: &str,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// How far an unfinished window's delivery went: its files up to part
/// `part` are written and recorded, and the next file starts with the
/// first staged event after `after`: a per-event copy's sort key, or a
/// copy in a batch item ([`batch::position`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub part: usize,
    pub after: String,
}

/// A page of staged events and where the next one starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StagedPage {
    pub events: Vec<Staged>,
    /// Batch items, after the per-event copies.
    pub batches: Vec<BatchItem>,
    /// The sort key of the last item read, if more may follow.
    pub next: Option<String>,
}

/// One batch item: its sort key and its copies, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchItem {
    pub sk: String,
    pub copies: Vec<Staged>,
}

/// Where log files go (S3 in production).
pub trait LogSink: Send + Sync {
    /// Writes one gzipped log file: with SSE-KMS under `kms_key` when the
    /// trail names one, else under the bucket's default encryption.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        kms_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where a trail's file notifications go (SNS in production).
pub trait Notifier: Send + Sync {
    /// Publishes one message to the topic `topic_arn`.
    fn notify(
        &self,
        topic_arn: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// CloudTrail's notification for one delivered log file.
pub fn file_notification(bucket: &str, key: &str) -> String {
    serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": [key] }).to_string()
}

/// Stages one event for every trail that logs it; `now` is the ingest
/// time. `note` says how: a management event's copy follows the note its
/// history primary item holds ([`crate::history::record_noting`], written
/// in the same request as the record): the copy goes into the later of its
/// own window and the noted one, and names the noted window
/// ([`Staged::first`]); deliver decides by it ([`Deliverer`]). A data
/// event goes into a batch item ([`stage_batch`]). Every attempt at one
/// event does the same (the event's kind decides it). Returns the copies.
pub async fn stage_noted<S: StagingStore>(
    store: &S,
    trails: &[Trail],
    record: &crate::model::Record,
    json: &str,
    now: &DateTime<Utc>,
    note: Note,
) -> Result<usize, StoreError> {
    let noted = match note {
        Note::Known(noted) => noted,
        Note::Batch => {
            let copies = stage_batch(store, trails, &[(record, json)], now).await?;
            return Ok(copies.iter().sum());
        }
    };
    let targets: Vec<(&Trail, std::borrow::Cow<'_, str>)> = trails
        .iter()
        .filter_map(|trail| trail.log_chain(record).map(|chain| (trail, chain)))
        .collect();
    if targets.is_empty() {
        return Ok(0);
    }
    let ours = FirstSeen {
        window: window_of(now),
        event_time: record.event_time,
    };
    let (window, event) = placement(&ours, noted.as_ref(), &record.event_id, json);
    for (trail, chain) in &targets {
        // Registered with this attempt's own window: at most the one staged into.
        store.register(&trail.name, chain, ours.window).await?;
        store.stage(&trail.name, chain, window, &event).await?;
    }
    Ok(targets.len())
}

/// Stages data events (each its record and JSON) for every trail that
/// logs them, in batch items of the window of `now`: per trail chain, one
/// item holding all of their copies (a few, for a large batch:
/// [`batch::contents`]). No note, no item per event: deliver leaves out
/// repeats (docs/delivery.md "Data events: batch copies"). Returns the
/// copies per event, in order.
pub async fn stage_batch<S: StagingStore>(
    store: &S,
    trails: &[Trail],
    events: &[(&crate::model::Record, &str)],
    now: &DateTime<Utc>,
) -> Result<Vec<usize>, StoreError> {
    let window = window_of(now);
    let mut copies = vec![0; events.len()];
    let mut chains: std::collections::BTreeMap<(&str, std::borrow::Cow<'_, str>), Vec<Staged>> =
        std::collections::BTreeMap::new();
    for ((record, json), n) in events.iter().zip(&mut copies) {
        for trail in trails {
            if let Some(chain) = trail.log_chain(record) {
                chains
                    .entry((trail.name.as_str(), chain))
                    .or_default()
                    .push(Staged {
                        event_time: record.event_time,
                        event_id: record.event_id.clone(),
                        json: (*json).to_owned(),
                        first: None,
                    });
                *n += 1;
            }
        }
    }
    for ((trail, chain), staged) in chains {
        store.register(trail, &chain, window).await?;
        for content in batch::contents(staged) {
            store.stage_batch(trail, &chain, window, &content).await?;
        }
    }
    Ok(copies)
}

/// Where an attempt stages a copy, given its own first staging (`ours`)
/// and the one noted: the later window of the two, naming the noted
/// window. A note is not followed if it is unreadable, names a window
/// further ahead than [`MAX_FIRST_AHEAD`] (it would hold the copy back
/// until then), or another eventTime (not a copy of this record: an
/// eventID reused): the copy goes into its own window, naming none, and
/// is claimed.
fn placement(
    ours: &FirstSeen,
    noted: Option<&FirstSeen>,
    event_id: &str,
    json: &str,
) -> (i64, Staged) {
    let (seen, first) = match noted {
        Some(noted)
            if noted.window <= ours.window + MAX_FIRST_AHEAD
                && noted.event_time == ours.event_time =>
        {
            let window = ours.window.max(noted.window);
            (FirstSeen { window, ..*ours }, Some(noted.window))
        }
        _ => {
            tracing::warn!(
                event_id,
                noted = ?noted,
                own = ours.window,
                "the event's first-staging note is unreadable, implausibly far ahead or of another eventTime; staged in its own window and claimed"
            );
            (*ours, None)
        }
    };
    (
        seen.window,
        Staged {
            event_time: seen.event_time,
            event_id: event_id.to_owned(),
            json: json.to_owned(),
            first,
        },
    )
}

/// Settings of the deliver function.
#[derive(Clone, Debug)]
pub struct DeliverSettings {
    pub grace_secs: i64,
    pub max_file_bytes: usize,
}

impl Default for DeliverSettings {
    fn default() -> Self {
        Self {
            grace_secs: DEFAULT_GRACE_SECS,
            max_file_bytes: logfile::DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What a deliver run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverReport {
    pub windows: usize,
    pub files: usize,
    pub records: usize,
    /// Staged copies left out because another window owns the event.
    pub duplicates: usize,
    /// Trail/regions that still have sealed windows (caught up next run).
    pub behind: usize,
    /// SNS notifications published, one per log file of a trail with a
    /// topic; and those that failed (the file is delivered all the same).
    pub notified: usize,
    pub notify_failed: usize,
    /// The last refused publish's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
    /// Events sent to CloudWatch Logs, and those not sent: refused (the
    /// whole batch), rejected by the service (too old or too new), or over
    /// 256 KB. Their files are delivered all the same.
    pub cwl_sent: usize,
    pub cwl_failed: usize,
    /// The last refused or partly rejected send's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwl_error: Option<String>,
    /// Trail/regions whose delivery failed this run (retried next run; the
    /// others were delivered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
}

impl DeliverReport {
    /// Whether the run has delivered anything yet (a file or a window).
    fn worked(&self) -> bool {
        self.files > 0 || self.windows > 0
    }

    /// The report, or the trail/regions that failed.
    pub fn into_result(self) -> Result<Self, Incomplete> {
        Incomplete::check(&self.failed).map(|()| self)
    }
}

/// When a deliver run must stop starting work.
pub trait Budget: Sync {
    /// Whether the run's time is spent.
    fn spent(&self) -> bool;
}

/// A deadline (the function's time limit less a margin); none: never spent.
impl Budget for Option<Instant> {
    fn spent(&self) -> bool {
        self.is_some_and(|d| Instant::now() >= d)
    }
}

/// Which window's files are being written.
struct FileOf<'a> {
    trail: &'a Trail,
    region: &'a str,
    w: i64,
    delivered: DateTime<Utc>,
    /// Whether a CloudWatch Logs failure that may pass fails the window
    /// (else it loses the events there; [`CWL_PATIENCE_WINDOWS`]).
    wait_for_logs: bool,
}

fn assemble_failed(e: std::io::Error) -> StoreError {
    StoreError::Backend {
        operation: "assemble",
        resource: "log file".into(),
        message: e.to_string(),
    }
}

/// Log file delivery, over its ports.
pub struct Deliverer<'a, S, L, N, E> {
    pub staging: &'a S,
    pub logs: &'a L,
    pub notifier: &'a N,
    pub events: &'a E,
    pub settings: &'a DeliverSettings,
}

impl<S, L, N, E> Deliverer<'_, S, L, N, E>
where
    S: StagingStore + HealthStore,
    L: LogSink,
    N: Notifier,
    E: EventLog,
{
    /// Delivers every sealed window of every trail (logging or not: what
    /// was staged before a stop is still delivered). A trail's region that
    /// fails is reported in `failed` and retried next run from its cursor;
    /// it never holds up the others.
    pub async fn run(&self, trails: &[Trail], now: &DateTime<Utc>) -> DeliverReport {
        self.run_until(trails, now, &None::<Instant>).await
    }

    /// [`Self::run`], stopping when `budget` is spent (the function's time
    /// limit less a margin). The clock is looked at before each window, after
    /// each file and between pages, once the run has done something (a
    /// file or a window): a run always gets one thing done. Where a
    /// window's delivery is cut, the next run goes on after the last whole
    /// file ([`Progress`]), with the same files. The trails, and each
    /// trail's regions, are taken in an order that turns with every run
    /// (from `now`), so a region that fills whole runs does not keep the
    /// ones after it waiting.
    pub async fn run_until(
        &self,
        trails: &[Trail],
        now: &DateTime<Utc>,
        budget: &impl Budget,
    ) -> DeliverReport {
        let mut report = DeliverReport::default();
        let sealed = last_sealed(now, self.settings.grace_secs);
        // Run k starts with trail k mod n and, in it, with region
        // (k div n) mod m: over n × m runs every pair goes first once.
        let turn = usize::try_from(window_of(now)).unwrap_or(0);
        let first = turn.checked_rem(trails.len()).unwrap_or(0);
        let region_turn = turn.checked_div(trails.len()).unwrap_or(0);
        for trail in trails[first..].iter().chain(&trails[..first]) {
            let (files, failures) = (report.files, report.failed.len());
            let mut complete = true;
            let (notified, refused) = (report.notified, report.notify_failed);
            let (sent, unsent) = (report.cwl_sent, report.cwl_failed);
            match self.staging.regions(&trail.name).await {
                Ok(mut regions) => {
                    if let Some(k) = region_turn.checked_rem(regions.len()) {
                        regions.rotate_left(k);
                    }
                    for (region, next) in regions {
                        let run = self.region(trail, &region, next, sealed, budget, &mut report);
                        match run.await {
                            Ok(done) => complete &= done,
                            Err(e) => report.failed.push(failed(ALARM, &trail.name, &region, &e)),
                        }
                    }
                }
                Err(e) => report.failed.push(failed(ALARM, &trail.name, "*", &e)),
            }
            let outcome = RunOutcome {
                at: *now,
                complete,
                wrote: report.files > files,
                error: report.failed.get(failures).map(|f| f.error.clone()),
                notified: report.notified > notified,
                notify_error: (report.notify_failed > refused)
                    .then(|| report.notify_error.clone())
                    .flatten(),
                cwl_sent: report.cwl_sent > sent,
                cwl_error: (report.cwl_failed > unsent)
                    .then(|| report.cwl_error.clone())
                    .flatten(),
            };
            health::note(
                &trail.name,
                self.staging.note_delivery(&trail.name, &outcome),
            )
            .await;
        }
        report
    }

    /// Delivers a trail's region window by window from its cursor, up to
    /// the last sealed window (at most [`MAX_WINDOWS_PER_RUN`]). Returns
    /// `false` if the run's time ran out before it got there.
    async fn region(
        &self,
        trail: &Trail,
        region: &str,
        next: i64,
        sealed: i64,
        budget: &impl Budget,
        report: &mut DeliverReport,
    ) -> Result<bool, StoreError> {
        let last = sealed.min(next + MAX_WINDOWS_PER_RUN - 1);
        for w in next..=last {
            if report.worked() && budget.spent() {
                report.behind += 1;
                return Ok(false);
            }
            if !self
                .window(trail, region, w, sealed, budget, report)
                .await?
            {
                // Cut: the next run goes on after the last whole file.
                report.behind += 1;
                return Ok(false);
            }
            report.windows += 1;
            if !self.staging.advance(&trail.name, region, w, w + 1).await? {
                // Another run moved the cursor first: it delivers the rest
                // (the same files; stopping only saves the duplicate work;
                // not counted behind, that run is on it).
                return Ok(true);
            }
        }
        if last < sealed {
            report.behind += 1;
        }
        Ok(true)
    }

    /// Delivers window `w` of a trail's region, page by page: decides which
    /// of each page's events it owns ([`Self::claim`] for per-event copies,
    /// [`Self::judge`] for batch copies), packs those into files as they
    /// come, and
    /// writes each file (and its manifest entry) as soon as it is full. A
    /// window of any size streams through: memory holds one page and one
    /// file's compressed bytes (and, for a trail with a log group, the
    /// file's records, up to the file size cap), plus the keys of the
    /// batch copies met (~50 bytes each). Pages come in sort order
    /// and the packing is greedy, so the files are the same however the
    /// pages fall; a window an earlier run cut goes on from its
    /// [`Progress`], with the same files. Once the files are written, it
    /// notes which batch copies it delivered, for later windows to leave
    /// their repeats out. Returns whether the window is
    /// delivered (else it was cut when `budget` was spent: after a file, or between
    /// pages, going on after the last whole file).
    async fn window(
        &self,
        trail: &Trail,
        region: &str,
        w: i64,
        sealed: i64,
        budget: &impl Budget,
        report: &mut DeliverReport,
    ) -> Result<bool, StoreError> {
        let file = FileOf {
            trail,
            region,
            w,
            delivered: delivery_time(w, self.settings.grace_secs),
            wait_for_logs: w + CWL_PATIENCE_WINDOWS > sealed,
        };
        let mut packer = logfile::Packer::new(self.settings.max_file_bytes);
        // The open file's events, kept for CloudWatch Logs (moved, not copied).
        let mut kept: Option<Vec<Staged>> = trail.cloud_watch_logs.is_some().then(Vec::new);
        let progress = self.staging.progress(&trail.name, region, w).await?;
        let mut part = progress.as_ref().map_or(0, |p| p.part);
        let mut after: Option<String> = progress.map(|p| p.after);
        // A cut inside the batch items: they are read again from the first,
        // the copies up to the cut judged (so that their repeats are still
        // left out) but not packed: the files holding them are written.
        let resume: Option<(String, usize)> = after
            .as_deref()
            .and_then(batch::parse_position)
            .map(|(sk, index)| (sk.to_owned(), index));
        if resume.is_some() {
            after = Some(batch::BEFORE_BATCHES.to_owned());
        }
        let mut dedup = batch::Dedup::default();
        // Where the last event packed lies: where a closing file ends.
        let mut packed: Option<String> = None;
        // Where this run's last whole file ended: where a cut goes on.
        let mut closed: Option<Progress> = None;
        // The run did something before this window: it may stop in it
        // before a file of its own.
        let started = report.worked();
        loop {
            let page = self
                .staging
                .staged(&trail.name, region, w, after.as_deref())
                .await?;
            let mut owned: Vec<(Staged, String)> = self
                .claim(trail, region, w, page.events, &file.delivered, report)
                .await?
                .into_iter()
                .map(|e| {
                    let at = crate::history::index_sk(&e.event_time, &e.event_id);
                    (e, at)
                })
                .collect();
            for item in page.batches {
                for (index, copy) in item.copies.into_iter().enumerate() {
                    let written = resume
                        .as_ref()
                        .is_some_and(|(sk, i)| (item.sk.as_str(), index) <= (sk.as_str(), *i));
                    let verdict = self.judge(trail, region, w, &mut dedup, &copy).await?;
                    match (verdict, written) {
                        (_, true) => {}
                        (true, false) => owned.push((copy, batch::position(&item.sk, index))),
                        (false, false) => report.duplicates += 1,
                    }
                }
            }
            for (event, at) in owned {
                if let Some(full) = packer.push(&event).map_err(assemble_failed)? {
                    let events = kept.as_mut().map(std::mem::take);
                    self.write(&file, part, full, events, report).await?;
                    part += 1;
                    closed = packed.take().map(|after| Progress { part, after });
                    if budget.spent() {
                        return self.cut(trail, region, w, closed.as_ref()).await;
                    }
                }
                packed = Some(at);
                if let Some(kept) = kept.as_mut() {
                    kept.push(event);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            // Between pages: the open file is dropped and made again next
            // run from the last whole file (or from where this run began).
            if (started || closed.is_some()) && budget.spent() {
                return self.cut(trail, region, w, closed.as_ref()).await;
            }
        }
        if let Some(last) = packer.finish().map_err(assemble_failed)? {
            self.write(&file, part, last, kept, report).await?;
        }
        // What the window's batch items delivered, for the windows after it
        // to leave out (rewritten the same by a re-run).
        let expires_at = (file.delivered + Duration::days(MARKER_DAYS)).timestamp();
        for (at, keys) in &dedup.owned {
            self.staging
                .record_delivered_copies(&trail.name, region, *at, w, keys, expires_at)
                .await?;
        }
        Ok(true)
    }

    /// Whether window `w` delivers the batch copy `copy`: the first copy of
    /// its event in the window, unless an earlier window delivered one
    /// (docs/delivery.md "Data events: batch copies").
    async fn judge(
        &self,
        trail: &Trail,
        region: &str,
        w: i64,
        dedup: &mut batch::Dedup,
        copy: &Staged,
    ) -> Result<bool, StoreError> {
        loop {
            match dedup.judge(copy) {
                batch::Verdict::Owned => return Ok(true),
                batch::Verdict::Repeat => return Ok(false),
                batch::Verdict::Unknown(at) => {
                    let keys = self
                        .staging
                        .delivered_copies(&trail.name, region, at, w)
                        .await?;
                    dedup.learn(at, keys);
                }
            }
        }
    }

    /// Stops window `w` short: notes where this run's last whole file
    /// ended, if it wrote one (else an earlier run's note, or the window's
    /// start, stands). Returns `false`: the window is not delivered.
    async fn cut(
        &self,
        trail: &Trail,
        region: &str,
        w: i64,
        closed: Option<&Progress>,
    ) -> Result<bool, StoreError> {
        if let Some(progress) = closed {
            self.staging
                .save_progress(&trail.name, region, w, progress)
                .await?;
        }
        Ok(false)
    }

    /// Writes part `part` of a window's files, sends its notification and
    /// its `events` to CloudWatch Logs (the trail's, if it has them), then
    /// records its manifest entry.
    async fn write(
        &self,
        of: &FileOf<'_>,
        part: usize,
        file: logfile::Assembled,
        events: Option<Vec<Staged>>,
        report: &mut DeliverReport,
    ) -> Result<(), StoreError> {
        let trail = of.trail;
        let unique = logfile::unique_suffix(&[
            &trail.arn(),
            of.region,
            &of.w.to_string(),
            &part.to_string(),
        ]);
        let key = logfile::log_file_key(
            trail.s3_key_prefix.as_deref(),
            &place(trail, of.region)?,
            &of.delivered,
            &unique,
        );
        let entry = ManifestEntry {
            bucket: trail.s3_bucket_name.clone(),
            key: key.clone(),
            sha256: file.sha256.clone(),
            oldest: file.oldest,
            newest: file.newest,
            delivered: of.delivered,
            records: file.records,
        };
        self.logs
            .put(
                &trail.s3_bucket_name,
                &key,
                file.gzip,
                trail.kms_key_id.as_deref(),
            )
            .await?;
        // A file whose manifest entry is recorded was written and announced
        // by an earlier run that stopped before moving the cursor: it is
        // written again (the same bytes), never announced twice.
        let side_effects = trail.sns_topic_name.is_some() || trail.cloud_watch_logs.is_some();
        let announced = side_effects
            && self
                .staging
                .manifest_recorded(&trail.name, of.region, &entry)
                .await?;
        // Events first: a CloudWatch Logs failure that fails the window
        // does so before the file is announced.
        if let (Some(events), false) = (events, announced) {
            self.send_events(of, &key, events, report).await?;
        }
        // After the file, before its manifest entry: a run killed in
        // between rewrites the same key and announces it again, so a
        // subscriber sees each file at least once and dedupes by key. A
        // failed publish loses that notification, not the file (as in
        // CloudTrail): it is logged and counted.
        if let (Some(topic), false) = (trail.sns_topic_arn(), announced) {
            let message = file_notification(&trail.s3_bucket_name, &key);
            match self.notifier.notify(&topic, &message).await {
                Ok(()) => report.notified += 1,
                Err(e) => {
                    report.notify_failed += 1;
                    report.notify_error = Some(e.to_string());
                    tracing::warn!(
                        trail = %trail.name,
                        topic = %topic,
                        key = %key,
                        error = %e,
                        "log file delivered, its SNS notification not published"
                    );
                }
            }
        }
        self.staging
            .record_manifest(&trail.name, of.region, &entry)
            .await?;
        report.files += 1;
        report.records += entry.records;
        Ok(())
    }

    /// Sends one delivered file's events to the trail's log group, in the
    /// stream CloudTrail names for the account and region. Like a refused
    /// notification, a refused send loses those events there, not the file:
    /// it is logged, counted and shown by GetTrailStatus. A failure that may
    /// pass (throttling, an outage) fails the window instead, so the next
    /// run sends the file's events again; but not for a window an hour
    /// behind ([`CWL_PATIENCE_WINDOWS`]), whose events there are then lost
    /// like refused ones.
    async fn send_events(
        &self,
        of: &FileOf<'_>,
        key: &str,
        events: Vec<Staged>,
        report: &mut DeliverReport,
    ) -> Result<(), StoreError> {
        let (trail, region) = (of.trail, of.region);
        let Some(logs) = &trail.cloud_watch_logs else {
            return Ok(());
        };
        let events = events
            .into_iter()
            .map(|e| LogEvent {
                timestamp: e.event_time.timestamp_millis(),
                message: e.json,
            })
            .collect();
        let (batches, too_large) = cloudwatch::batches(events);
        let mut unsent = too_large;
        let mut error = (too_large > 0)
            .then(|| format!("{too_large} events over 256 KB were not sent (as in CloudTrail)"));
        match parse_log_group_arn(&logs.log_group_arn) {
            Ok(group) => {
                let stream = log_stream_name(&place(trail, region)?);
                for batch in batches {
                    let n = batch.len();
                    let put = match self.events.put(group.name, &stream, batch).await {
                        Ok(put) => put,
                        Err(e) if of.wait_for_logs => return Err(e),
                        Err(e) => {
                            Put::Refused(format!("{e} (the window is an hour behind: not retried)"))
                        }
                    };
                    match put {
                        Put::Accepted { rejected: 0 } => report.cwl_sent += n,
                        Put::Accepted { rejected } => {
                            report.cwl_sent += n - rejected;
                            unsent += rejected;
                            error = Some(format!(
                                "CloudWatch Logs rejected {rejected} events (older than the log group's retention or 14 days, or more than 2 hours ahead)"
                            ));
                        }
                        Put::Refused(why) => {
                            unsent += n;
                            error = Some(why);
                        }
                    }
                }
            }
            Err(e) => {
                unsent += batches.iter().map(Vec::len).sum::<usize>();
                error = Some(e.to_string());
            }
        }
        if let Some(error) = error {
            report.cwl_failed += unsent;
            tracing::warn!(
                trail = %trail.name,
                log_group = %logs.log_group_arn,
                key = %key,
                unsent,
                error = %error,
                "log file delivered, some of its events not sent to CloudWatch Logs"
            );
            report.cwl_error = Some(error);
        }
        Ok(())
    }

    /// The staged events window `w` owns (docs/delivery.md "Who delivers a
    /// copy"): a copy staged in the event's first window, without a write;
    /// a later copy only if no copy was staged in the first window and it
    /// wins the event's delivery marker; a copy naming no first window (or
    /// one after `w`) if it wins the marker. The others are re-deliveries
    /// another window delivers, left out.
    async fn claim(
        &self,
        trail: &Trail,
        region: &str,
        w: i64,
        staged: Vec<Staged>,
        delivered: &DateTime<Utc>,
        report: &mut DeliverReport,
    ) -> Result<Vec<Staged>, StoreError> {
        let expires_at = (*delivered + Duration::days(MARKER_DAYS)).timestamp();
        let verdicts: Vec<bool> = stream::iter(staged.iter())
            .map(|e| self.owns(trail, region, w, e, expires_at))
            .buffered(CHECKS_AT_ONCE)
            .try_collect()
            .await?;
        let mut owned = Vec::with_capacity(staged.len());
        for (event, owns) in staged.into_iter().zip(verdicts) {
            if owns {
                owned.push(event);
            } else {
                report.duplicates += 1;
            }
        }
        Ok(owned)
    }

    /// Whether window `w` delivers the staged copy `e` ([`Self::claim`]).
    async fn owns(
        &self,
        trail: &Trail,
        region: &str,
        w: i64,
        e: &Staged,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        match e.first {
            Some(first) if first == w => return Ok(true),
            Some(first) if first < w => {
                let sk = crate::history::index_sk(&e.event_time, &e.event_id);
                if self
                    .staging
                    .is_staged(&trail.name, region, first, &sk)
                    .await?
                {
                    return Ok(false);
                }
            }
            _ => {}
        }
        let owner = self
            .staging
            .claim(&trail.name, region, &e.event_id, w, expires_at)
            .await?;
        Ok(owner == w)
    }
}

/// The account and region (and organization) of a trail's stored chain
/// (`region` in the staging store's words); an error if the state holds
/// something trailkeep never writes there.
pub fn place<'a>(trail: &'a Trail, chain: &'a str) -> Result<Place<'a>, StoreError> {
    Place::parse(chain, trail).ok_or_else(|| StoreError::Corrupt {
        message: format!(
            "trail {}'s chain \"{}\" is neither a region nor {{organization}}/{{account}}/{{region}}",
            trail.name,
            crate::ingest::normalize::quote_prefix(chain)
        ),
    })
}

#[cfg(test)]
mod tests;
