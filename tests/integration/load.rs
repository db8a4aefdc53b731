//! Load and faults: 20,000 events through ingest, every tenth re-delivered,
//! deliver and digest running alongside on a simulated clock, every call to
//! DynamoDB, S3 and KMS going through a proxy that drops connections
//! (before and after the request took effect) and answers with throttling
//! and 5xx errors, and deliver and digest runs killed midway. Afterwards:
//! the validator finds every digest and log file valid, each event is in
//! its regions' histories and in exactly one log file, each log file in
//! exactly one digest — and each function called exactly the AWS actions
//! template.yaml grants its role.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tokio::sync::RwLock;
use trailkeep_shared::api::{Api, ApiSettings, Call, Caller, TARGET_PREFIX};
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::kms::{KeyMap, KmsSigner};
use trailkeep_shared::aws::logs::CloudWatchEventLog;
use trailkeep_shared::aws::s3::{self, S3Logs};
use trailkeep_shared::aws::sns::SnsNotifier;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::delivery::batch::CopyKey;
use trailkeep_shared::delivery::logfile::Staged;
use trailkeep_shared::delivery::{
    DeliverSettings, Deliverer, ManifestEntry, Progress, StagedPage, StagingStore,
};
use trailkeep_shared::digest::{DigestFile, DigestSettings, Digester, Signer};
use trailkeep_shared::history::lookup::LookupSettings;
use trailkeep_shared::history::HistorySettings;
use trailkeep_shared::ingest::normalize::{normalize, Context};
use trailkeep_shared::ingest::{ingest, Targets};
use trailkeep_shared::store::StoreError;
use trailkeep_shared::trail::{
    admin, CloudWatchLogs, NewTrail, TrailCache, TrailStore, TrailUpdate,
};
use trailkeep_shared::trail::{
    DataResource, EventSelector, ReadWriteType, LAMBDA_FUNCTION, S3_OBJECT,
};
use trailkeep_shared::validate::{Keys, Request};

use crate::delivery::{gunzip, Clock, ACCOUNT};
use crate::digests::{check, kms_key, problems};
use crate::faults::{FaultProxy, Faults};
use crate::helpers::{
    assert_each_once, endpoint, event_json, parse_time, sdk_config, TestBucket, TestTable,
};
use crate::policies::{self, table_arn};

const EVENTS: usize = 20_000;
/// Concurrent ingest invocations.
const TASKS: usize = 16;
const TRAIL: &str = "load";
pub(crate) const SERVED: [&str; 2] = ["eu-west-1", "us-east-1"];
const HOME: &str = "us-east-1";
/// Lambda invocations of one payload before it would go to the DLQ (the
/// sources retry far longer: EventBridge for 24 hours).
const INVOCATIONS: usize = 12;

/// Around 7% of requests fail in one of four ways; the SDK makes up to 3
/// attempts per request, so a few dozen of the ~100,000 calls fail for good
/// and the functions' own retries (Lambda's, the next scheduled run) take
/// over (the test prints how many).
const FAULTS: Faults = Faults {
    drop_before: 0.015,
    drop_after: 0.015,
    throttle: 0.025,
    server_error: 0.015,
};

/// Event `i`: management events (regional in the served regions, and
/// global), S3 object events (notifications and EventBridge) and Lambda
/// invocations, with unique ids and event times spread over two hours from
/// `t0`.
pub(crate) fn payload(i: usize, t0: DateTime<Utc>) -> String {
    let region = SERVED[i % 2];
    let data_region = ["eu-west-1", "us-east-1", "ap-south-1"][i % 3];
    let id = format!("00000000-0000-4000-8000-{i:012}");
    let time = trailkeep_shared::time::format(&(t0 + Duration::milliseconds(i as i64 * 350)));
    let cloudtrail = |file: &str, region: Option<&str>| {
        let mut p = event_json(file);
        p["detail"]["eventID"] = json!(id);
        p["detail"]["eventTime"] = json!(time);
        if let Some(r) = region {
            p["detail"]["awsRegion"] = json!(r);
        }
        p.to_string()
    };
    match i % 10 {
        0 | 1 => cloudtrail("eventbridge/api-call-write.json", Some(region)),
        2 | 3 => cloudtrail("eventbridge/api-call-read.json", Some(region)),
        4 => cloudtrail("eventbridge/service-event.json", Some(region)),
        5 => cloudtrail("eventbridge/iam-global-call.json", None),
        6 => cloudtrail("eventbridge/console-signin-success.json", None),
        7 => {
            let mut p = event_json("s3/put.json");
            p["Records"][0]["awsRegion"] = json!(data_region);
            p["Records"][0]["eventTime"] = json!(time);
            p["Records"][0]["s3"]["object"]["sequencer"] = json!(format!("{i:018X}"));
            p.to_string()
        }
        8 => {
            let mut p = event_json("eventbridge/s3-object-created.json");
            p["region"] = json!(data_region);
            p["time"] = json!(time);
            p["id"] = json!(id);
            p["detail"]["object"]["sequencer"] = json!(format!("{i:018X}"));
            p.to_string()
        }
        _ => cloudtrail(
            "eventbridge/lambda-invoke-data-event.json",
            Some(data_region),
        ),
    }
}

/// The ingest function's staging, cut in one invocation: its first staging
/// call never returns and the invocation is dropped there, as Lambda ends
/// one that times out after its history write and before its staging.
/// The next invocation finds the event in the history (a duplicate) and
/// must still stage it, once.
struct CutBeforeStaging<'a> {
    inner: &'a DynamoStaging,
    cut: bool,
    reached: tokio::sync::Notify,
}

impl CutBeforeStaging<'_> {
    async fn gate(&self) {
        if self.cut {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

impl StagingStore for CutBeforeStaging<'_> {
    async fn is_staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        sk: &str,
    ) -> Result<bool, StoreError> {
        self.inner.is_staged(trail, region, window, sk).await
    }

    async fn register(&self, trail: &str, region: &str, window: i64) -> Result<(), StoreError> {
        self.gate().await;
        self.inner.register(trail, region, window).await
    }

    async fn stage(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        event: &Staged,
    ) -> Result<(), StoreError> {
        self.gate().await;
        self.inner.stage(trail, region, window, event).await
    }

    async fn stage_batch(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        self.gate().await;
        self.inner.stage_batch(trail, region, window, content).await
    }

    async fn delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        before: i64,
    ) -> Result<Vec<CopyKey>, StoreError> {
        self.inner.delivered_copies(trail, region, at, before).await
    }

    async fn record_delivered_copies(
        &self,
        trail: &str,
        region: &str,
        at: i64,
        window: i64,
        keys: &[CopyKey],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .record_delivered_copies(trail, region, at, window, keys, expires_at)
            .await
    }

    async fn regions(&self, trail: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.regions(trail).await
    }

    async fn staged(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        after: Option<&str>,
    ) -> Result<StagedPage, StoreError> {
        self.inner.staged(trail, region, window, after).await
    }

    async fn claim(
        &self,
        trail: &str,
        region: &str,
        event_id: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        self.inner
            .claim(trail, region, event_id, window, expires_at)
            .await
    }

    async fn record_manifest(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<(), StoreError> {
        self.inner.record_manifest(trail, region, entry).await
    }

    async fn manifest_recorded(
        &self,
        trail: &str,
        region: &str,
        entry: &ManifestEntry,
    ) -> Result<bool, StoreError> {
        self.inner.manifest_recorded(trail, region, entry).await
    }

    async fn advance(
        &self,
        trail: &str,
        region: &str,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        self.inner.advance(trail, region, from, to).await
    }

    async fn progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
    ) -> Result<Option<Progress>, StoreError> {
        self.inner.progress(trail, region, window).await
    }

    async fn save_progress(
        &self,
        trail: &str,
        region: &str,
        window: i64,
        progress: &Progress,
    ) -> Result<bool, StoreError> {
        self.inner
            .save_progress(trail, region, window, progress)
            .await
    }
}

/// Where event `i` of [`payload`] is logged, and whose history shows it:
/// written by hand from docs/trails.md ("Into which region's log files")
/// and docs/event-history.md (global-service events stored once, shown in
/// every served region) for the `log_everything` trail (multi-region, home
/// `us-east-1`, every event), not from the code's routing
/// (`Trail::log_region`, `history::partition`), so a routing bug fails the
/// test instead of moving its expectations.
pub(crate) fn expected_route(i: usize) -> (&'static str, Vec<&'static str>) {
    let region = SERVED[i % 2];
    let data_region = ["eu-west-1", "us-east-1", "ap-south-1"][i % 3];
    match i % 10 {
        // API calls and a service event: their region's files and history.
        0..=4 => (region, vec![region]),
        // IAM and a console sign-in (signin.amazonaws.com, a global service
        // in trailkeep's classification whatever its awsRegion):
        // us-east-1's files (a multi-region trail files them there) and
        // every served history.
        5 | 6 => ("us-east-1", SERVED.to_vec()),
        // S3 and Lambda data events: their region's files, no history.
        _ => (data_region, Vec::new()),
    }
}

/// A multi-region trail (home `us-east-1`) that logs every management
/// and data event, with log file validation, logging from `t0`.
pub(crate) async fn log_everything(
    admin: &DynamoTrails,
    name: &str,
    bucket: &str,
    t0: DateTime<Utc>,
) {
    admin::create(
        admin,
        ACCOUNT,
        HOME,
        NewTrail {
            name: name.into(),
            s3_bucket_name: bucket.into(),
            is_multi_region_trail: true,
            organization_id: None,
            include_global_service_events: true,
            log_file_validation_enabled: true,
            ..NewTrail::default()
        },
    )
    .await
    .unwrap();
    let everything = |resource_type: &str, prefix: &str| DataResource {
        resource_type: resource_type.into(),
        values: vec![prefix.into()],
    };
    admin::put_event_selectors(
        admin,
        name,
        vec![EventSelector {
            read_write_type: ReadWriteType::All,
            include_management_events: true,
            data_resources: vec![
                everything(S3_OBJECT, "arn:aws:s3"),
                everything(LAMBDA_FUNCTION, "arn:aws:lambda"),
            ],
            exclude_management_event_sources: Vec::new(),
        }],
    )
    .await
    .unwrap();
    admin::set_logging(admin, name, true, t0).await.unwrap();
}

/// One function's view of AWS: its own proxy (so that what it calls can be
/// told apart), its clients and adapters.
pub(crate) struct Function {
    pub proxy: FaultProxy,
    pub sdk: aws_config::SdkConfig,
}

impl Function {
    pub async fn new(seed: u64) -> Self {
        Self::with_faults(FAULTS, seed).await
    }
    pub async fn with_faults(faults: Faults, seed: u64) -> Self {
        let proxy = FaultProxy::start(&endpoint(), faults, seed).await;
        let sdk = proxy.sdk_config().await;
        Self { proxy, sdk }
    }
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }
}

/// Runs `run` unless `kill` is set, in which case the run is dropped (a
/// Lambda killed mid-flight) after `after` of its requests went through;
/// returns whether it was killed midway and its result otherwise.
async fn maybe_killed<T, E: std::fmt::Display>(
    proxy: &FaultProxy,
    kill: bool,
    after: u64,
    run: impl std::future::Future<Output = Result<T, E>>,
) -> Option<Result<T, String>> {
    let since = proxy.requests();
    if !kill {
        return Some(run.await.map_err(|e| e.to_string()));
    }
    tokio::select! {
        result = run => Some(result.map_err(|e| e.to_string())),
        () = proxy.after_requests(since, after) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_events_through_faults_and_killed_runs_lose_and_duplicate_nothing() {
    // GIVEN the stack's tables, bucket and signing key, and one
    // multi-region trail logging every management and data event, with
    // log file validation
    let history_table = TestTable::history().await;
    let state_table = TestTable::state().await;
    let bucket = TestBucket::new().await;
    let direct = sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&direct);
    let key_arn = kms_key(&kms).await;
    // Yesterday, just after midnight: recent, because CloudWatch Logs
    // (moto too) takes no event older than 14 days.
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() / 86_400 * 86_400 - 86_400 + 30, 0)
        .unwrap();
    // The events happened in the two hours before the test's clock starts
    // (ingest refuses an eventTime more than 5 minutes ahead of it).
    let events_from = t0 - Duration::seconds(EVENTS as i64 * 350 / 1000 + 60);
    let admin = state_table.trails();
    log_everything(&admin, TRAIL, &bucket.name, t0).await;
    // … with every outlet a trail has (issue 16): its files under its own
    // KMS key, a notification per file into a subscribed queue, and every
    // event in a log group
    let outlets = Outlets::new(&direct).await;
    admin::update(&admin, TRAIL, outlets.trail_update())
        .await
        .unwrap();

    // … and each function with its own faulty way to AWS, built as its
    // main.rs builds it
    let (ingest_fn, deliver_fn, digest_fn, lookup_fn) = (
        Function::new(1).await,
        Function::new(2).await,
        Function::new(3).await,
        Function::new(4).await,
    );
    let settings = HistorySettings {
        retention_days: 90,
        shards: 1,
    };
    let ingest_history = DynamoHistory::new(ingest_fn.dynamodb(), &history_table.name);
    let ingest_staging = DynamoStaging::new(ingest_fn.dynamodb(), &state_table.name);
    let ingest_trails = TrailCache::new(
        DynamoTrails::new(ingest_fn.dynamodb(), &state_table.name),
        std::time::Duration::from_secs(60),
    );
    let deliver_staging = DynamoStaging::new(deliver_fn.dynamodb(), &state_table.name);
    let deliver_trails = DynamoTrails::new(deliver_fn.dynamodb(), &state_table.name);
    let deliver_logs = S3Logs::new(s3::client(&deliver_fn.sdk));
    let deliver_notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&deliver_fn.sdk));
    let deliver_events =
        CloudWatchEventLog::new(aws_sdk_cloudwatchlogs::Client::new(&deliver_fn.sdk));
    let deliver_settings = DeliverSettings::default();
    let digest_state = DynamoStaging::new(digest_fn.dynamodb(), &state_table.name);
    let digest_trails = DynamoTrails::new(digest_fn.dynamodb(), &state_table.name);
    let signer = KmsSigner::new(&digest_fn.sdk, KeyMap::parse(&key_arn).unwrap());
    let digest_bucket = S3Logs::new(s3::client(&digest_fn.sdk));
    let digest_settings = DigestSettings {
        regions: SERVED.map(String::from).to_vec(),
        ..DigestSettings::default()
    };
    let clock = Clock {
        now: AtomicI64::new(t0.timestamp()),
        calls: RwLock::new(()),
    };
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };

    // WHEN 16 concurrent invocations ingest 20,000 events and every tenth
    // once more later (an invocation that fails is invoked again, as Lambda
    // and EventBridge do), …
    let lambda_retries = AtomicUsize::new(0);
    let cut_invocations = AtomicUsize::new(0);
    let ingested = crate::helpers::Progress::default();
    let ingesting = async {
        let tasks = (0..TASKS).map(|task| {
            let (clock, ctx, lambda_retries, ingested, cut_invocations) =
                (&clock, &ctx, &lambda_retries, &ingested, &cut_invocations);
            let (history, staging, trails, settings) =
                (&ingest_history, &ingest_staging, &ingest_trails, &settings);
            async move {
                let mine: Vec<usize> = (task..EVENTS).step_by(TASKS).collect();
                let again: Vec<usize> = mine.iter().copied().filter(|i| i % 10 == 7).collect();
                for i in mine.into_iter().chain(again) {
                    let payload = payload(i, events_from);
                    let mut attempt = 0;
                    loop {
                        attempt += 1;
                        let call = clock.calls.read().await;
                        // Every 37th event's first invocation is cut
                        // between its history write and its staging.
                        let staging = CutBeforeStaging {
                            inner: staging,
                            cut: attempt == 1 && i % 37 == 0,
                            reached: tokio::sync::Notify::new(),
                        };
                        let result = async {
                            let trails = trails.trails().await.map_err(|e| e.to_string())?;
                            let targets = Targets {
                                history,
                                settings,
                                staging: &staging,
                                trails: &trails,
                                organization: false,
                            };
                            let now = clock.now();
                            tokio::select! {
                                r = ingest(&targets, ctx, &payload, &now) => {
                                    r.map_err(|e| e.to_string())
                                }
                                () = staging.reached.notified() => {
                                    cut_invocations.fetch_add(1, Ordering::Relaxed);
                                    Err("cut between the history write and staging".to_owned())
                                }
                            }
                        }
                        .await;
                        drop(call);
                        match result {
                            Ok(_) => {
                                ingested.bump();
                                break;
                            }
                            Err(e) if attempt < INVOCATIONS => {
                                lambda_retries.fetch_add(1, Ordering::Relaxed);
                                verbose(&format!("event {i}: invocation {attempt} failed: {e}"));
                            }
                            Err(e) => panic!("event {i} failed {INVOCATIONS} invocations: {e}"),
                        }
                    }
                }
            }
        });
        futures::future::join_all(tasks).await;
        ingested.finish();
    };
    // … while deliver runs every 100 simulated seconds (the next run
    // after at least 50 more events), and digest at ten past each hour; every 4th deliver run (windows seal every 3rd) and
    // every 2nd digest run is killed after a few of its
    // requests. A failed run is simply followed by the
    // next scheduled one.
    let killed = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failed_runs = AtomicUsize::new(0);
    let deliver_run = |n: usize, kill: bool| {
        let (staging, trails, logs, settings) = (
            &deliver_staging,
            &deliver_trails,
            &deliver_logs,
            &deliver_settings,
        );
        let (notifier, events) = (&deliver_notifier, &deliver_events);
        let (clock, proxy) = (&clock, &deliver_fn.proxy);
        async move {
            let now = clock.now();
            let run = async {
                let trails = trails.load().await.map_err(|e| e.to_string())?.trails;
                let deliverer = Deliverer {
                    staging,
                    logs,
                    notifier,
                    events,
                    settings,
                };
                let report = deliverer.run(&trails, &now).await;
                report.into_result().map_err(|e| e.to_string())
            };
            maybe_killed(proxy, kill, 3 + (n as u64 * 7) % 40, run).await
        }
    };
    let digest_run = |n: usize, kill: bool| {
        let (state, trails, signer, bucket, settings) = (
            &digest_state,
            &digest_trails,
            &signer,
            &digest_bucket,
            &digest_settings,
        );
        let (clock, proxy) = (&clock, &digest_fn.proxy);
        async move {
            let now = clock.now();
            let run = async {
                let trails = trails.load().await.map_err(|e| e.to_string())?.trails;
                let digester = Digester {
                    state,
                    signer,
                    bucket,
                    settings,
                };
                let report = digester.run(&trails, &now).await;
                report.into_result().map_err(|e| e.to_string())
            };
            maybe_killed(proxy, kill, 2 + (n as u64 * 5) % 30, run).await
        }
    };
    // Runs go on after ingest ends until digest has run 4 times: how many
    // hours ingest spans depends on the machine's speed.
    let scheduling = async {
        let (mut delivers, mut digests, mut during_ingest) = (0, 0, 0);
        while !ingested.finished() || digests < 4 {
            if !ingested.finished() {
                during_ingest = digests;
            }
            clock.advance(100).await;
            delivers += 1;
            match deliver_run(delivers, delivers % 4 == 0).await {
                None => {
                    killed.0.fetch_add(1, Ordering::Relaxed);
                }
                Some(Err(_)) => {
                    failed_runs.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
            }
            if (10..12).contains(&clock.now().format("%M").to_string().parse::<u32>().unwrap()) {
                digests += 1;
                match digest_run(digests, digests % 2 == 0).await {
                    None => {
                        killed.1.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(_)) => {
                        failed_runs.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(_)) => {}
                }
            }
            // Paced by ingest's progress, not by the wall clock: the next
            // run waits for at least 50 more events (ingest is never held
            // back, so more arrive while a run is slow).
            ingested.reach(ingested.get() + 50).await;
        }
        (delivers, digests, during_ingest)
    };
    let ((), (delivers, digests, digests_during_ingest)) = tokio::join!(ingesting, scheduling);

    // AND after the last event the schedules go on (faults still on, no
    // more kills) until every window is delivered and, two hours on, a
    // digest run has caught up every hour
    let offset = clock.now().timestamp().rem_euclid(300);
    clock.advance(300 - offset + 30).await;
    let mut ticks = 0;
    let end = loop {
        clock.advance(300).await;
        ticks += 1;
        assert!(ticks < 400, "deliver and digest never caught up");
        let delivered = matches!(deliver_run(0, false).await, Some(Ok(r)) if r.behind == 0);
        if clock.now().format("%M").to_string() == "10" {
            // How many digest runs fall inside the ingest phase depends on
            // the machine's speed (one simulated hour is ~36 ticks); if
            // fewer than two were killed there, the first catch-up runs
            // are killed instead, so the kills always happen.
            let kill = killed.1.load(Ordering::Relaxed) < 2;
            let outcome = digest_run(0, kill).await;
            if outcome.is_none() {
                killed.1.fetch_add(1, Ordering::Relaxed);
            }
            let digested = matches!(outcome, Some(Ok(r)) if r.waiting == 0);
            if delivered && digested && ticks >= 24 {
                break clock.now() - Duration::minutes(10);
            }
        }
    };
    for f in [&ingest_fn, &deliver_fn, &digest_fn, &lookup_fn] {
        f.proxy.set_armed(false);
    }
    let stats: BTreeMap<&str, _> = [
        ("ingest", ingest_fn.proxy.stats()),
        ("deliver", deliver_fn.proxy.stats()),
        ("digest", digest_fn.proxy.stats()),
    ]
    .into_iter()
    .collect();
    let faults_seen = |f: &str| stats[f].values().map(|s| s.faults).sum::<u64>();
    eprintln!(
        "load: {EVENTS} events + {} re-deliveries; {} ingest invocations retried; \
         deliver runs {delivers} ({} killed midway), digest runs {digests} ({} killed midway), \
         {} failed runs; faults injected: ingest {}, deliver {}, digest {}",
        EVENTS / 10,
        lambda_retries.load(Ordering::Relaxed),
        killed.0.load(Ordering::Relaxed),
        killed.1.load(Ordering::Relaxed),
        failed_runs.load(Ordering::Relaxed),
        faults_seen("ingest"),
        faults_seen("deliver"),
        faults_seen("digest"),
    );
    // The faults and kills did happen (else the test proves nothing).
    assert!(faults_seen("ingest") > 1000, "{stats:?}");
    // Every 37th event's first invocation was cut after its history write
    // (unless a fault failed it earlier).
    let cut = cut_invocations.load(Ordering::Relaxed);
    assert!(
        cut > EVENTS / 37 / 2,
        "{cut} invocations cut before staging"
    );
    assert!(faults_seen("deliver") > 100 && faults_seen("digest") > 10);
    // … each kind of fault, in each function's requests.
    for f in ["ingest", "deliver", "digest"] {
        let mut kinds = [0u64; 4];
        for s in stats[f].values() {
            for (k, n) in kinds.iter_mut().zip(s.fault_kinds) {
                *k += n;
            }
        }
        assert!(
            kinds.iter().all(|&n| n > 0),
            "{f}: [dropped before, dropped after, throttled, 5xx] = {kinds:?}"
        );
    }
    assert!(
        killed.0.load(Ordering::Relaxed) >= 5,
        "deliver runs killed midway"
    );
    assert!(
        killed.1.load(Ordering::Relaxed) >= 2,
        "digest runs killed midway"
    );
    assert!(
        digests_during_ingest >= 2,
        "digest ran {digests_during_ingest} times alongside ingest"
    );

    // THEN the validator finds every digest and log file valid, …
    let direct_logs = S3Logs::new(bucket.client.clone());
    let mut keys = Keys::default();
    keys.add_pkcs1(signer.public_key(HOME).await.unwrap().pkcs1);
    let request = Request {
        bucket: bucket.name.clone(),
        prefix: None,
        account_id: ACCOUNT.into(),
        organization_id: None,
        trail_name: TRAIL.into(),
        home_region: HOME.into(),
        regions: Vec::new(),
        start: t0,
        end,
        now: end,
        heads: Default::default(),
        segments: Default::default(),
        tail_grace: Duration::minutes(30),
        concurrency: 8,
        report_unlisted: true,
    };
    let checked = check(&direct_logs, &keys, &request).await;
    assert_eq!(problems(&checked.findings), Vec::<String>::new());
    assert!(checked.report.all_valid());

    // … every log file is listed in exactly one digest, and every digest of
    // a region forms one chain, hour after hour …
    let objects = bucket.objects().await;
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    let mut digest_ends: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut logged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, gz) in &objects {
        if key.contains("/CloudTrail-Digest/") {
            let d: DigestFile = serde_json::from_slice(&gunzip(gz)).unwrap();
            for f in &d.log_files {
                *listed.entry(f.s3_object.clone()).or_default() += 1;
            }
            let region = key.split('/').nth(3).unwrap().to_owned();
            digest_ends
                .entry(region)
                .or_default()
                .push(d.digest_end_time.clone());
        } else {
            let region = key.split('/').nth(3).unwrap().to_owned();
            let doc: Value = serde_json::from_slice(&gunzip(gz)).unwrap();
            logged.entry(region).or_default().extend(
                doc["Records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["eventID"].as_str().unwrap().to_owned()),
            );
        }
    }
    let log_keys: Vec<&String> = objects
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("/CloudTrail/"))
        .collect();
    assert_eq!(checked.report.logs_total, log_keys.len());
    // … the AWS CLI's own validator agrees, region by region: every digest
    // and listed log file valid, and no gap (the trail never stopped; a
    // gap is where a chain restarts) …
    let pem = crate::digests::pem_file(
        &signer.public_key(HOME).await.unwrap().pkcs1,
        &crate::digests::temp_dir("load-key"),
    );
    let mut cli_logs = 0;
    for region in digest_ends.keys() {
        let out = crate::digests::awscli_validate_bucket(
            &bucket.name,
            (TRAIL, HOME),
            region,
            t0,
            end,
            &pem,
        );
        assert_eq!(out["problems"], json!([]), "{region}: {out}");
        assert_eq!(out["gaps"], json!([]), "{region}: {out}");
        assert_eq!(out["invalidLogs"], json!(0), "{region}: {out}");
        assert!(out["digests"].as_u64().unwrap_or(0) > 0, "{region}: {out}");
        cli_logs += out["validLogs"].as_u64().unwrap_or(0) as usize;
    }
    assert_eq!(
        cli_logs,
        log_keys.len(),
        "the AWS CLI checked every log file"
    );
    for key in &log_keys {
        assert_eq!(listed.get(*key), Some(&1), "{key} in digests");
    }
    assert_eq!(
        listed.len(),
        log_keys.len(),
        "digests list only existing files"
    );
    for (region, ends) in &digest_ends {
        let hours: Vec<DateTime<Utc>> = ends.iter().map(|e| parse_time(e)).collect();
        assert!(
            hours.windows(2).all(|w| w[1] - w[0] == Duration::hours(1)),
            "{region}: one digest per hour, no gap: {ends:?}"
        );
        assert_eq!(
            checked.report.digests_total,
            digest_ends.values().map(Vec::len).sum::<usize>()
        );
    }

    // … each event is in exactly one log file of the region the trail logs
    // it in, …
    let mut expected_logs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut expected_history: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in 0..EVENTS {
        // The event ID only comes from the code (an S3 notification's is
        // derived); where it goes is the hand-written table.
        let record = normalize(&payload(i, events_from), &ctx)
            .records
            .remove(0)
            .record;
        let (logged_in, visible_in) = expected_route(i);
        expected_logs
            .entry(logged_in.to_owned())
            .or_default()
            .insert(record.event_id.clone());
        for region in visible_in {
            expected_history
                .entry(region.to_owned())
                .or_default()
                .insert(record.event_id.clone());
        }
    }
    assert_each_once(&logged, &expected_logs);
    assert_eq!(
        logged.values().map(Vec::len).sum::<usize>(),
        EVENTS,
        "every event logged once"
    );

    // … every file and digest is under the trail's key, every file was
    // announced and every event sent to the log group, each at least once
    // (docs/trails.md: a killed run or a lost answer repeats them) …
    for (key, _) in &objects {
        let head = bucket.head(key).await;
        assert_eq!(
            head.ssekms_key_id(),
            Some(outlets.sse_key.as_str()),
            "{key}"
        );
    }
    let announced = outlets.announced().await;
    let distinct: BTreeSet<&String> = announced.iter().collect();
    assert_eq!(distinct, log_keys.iter().copied().collect::<BTreeSet<_>>());
    let sent = outlets.sent().await;
    let mut streams: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let sent_total = sent.len();
    for (stream, id) in sent {
        streams.entry(stream).or_default().insert(id);
    }
    let expected_streams: BTreeMap<String, BTreeSet<String>> = expected_logs
        .iter()
        .map(|(region, ids)| (format!("{ACCOUNT}_CloudTrail_{region}"), ids.clone()))
        .collect();
    assert_eq!(
        streams, expected_streams,
        "every event in its region's stream"
    );
    eprintln!(
        "load: {} log files announced {} times; {EVENTS} events sent {sent_total} times",
        log_keys.len(),
        announced.len()
    );

    // … and in the history of each region it belongs to, exactly once, as
    // LookupEvents pages through it (the lookup function: trailkeep's API,
    // built as its main.rs builds it)
    let api_trails = DynamoTrails::new(lookup_fn.dynamodb(), &state_table.name);
    let api_history = DynamoHistory::new(lookup_fn.dynamodb(), &history_table.name);
    let api_staging = DynamoStaging::new(lookup_fn.dynamodb(), &state_table.name);
    let api_keys = trailkeep_shared::aws::kms::AwsPublicKeys {
        aws: lookup_fn.sdk.clone(),
        key_arns: vec![key_arn.clone()],
        registry: DynamoStaging::new(lookup_fn.dynamodb(), &state_table.name),
    };
    let api_settings = ApiSettings {
        trail_admins: vec!["*".into()],
        lookup: LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: HOME.into(),
            served_regions: SERVED.map(String::from).to_vec(),
            retention_days: 90,
            token_key: vec![7; 32],
            shards: 1,
        },
        history: settings.clone(),
        log_encryption_keys: Vec::new(),
        notification_topics: Vec::new(),
        log_groups: Vec::new(),
        organization_id: None,
    };
    let api = Api {
        account_id: ACCOUNT,
        trails: &api_trails,
        history: &api_history,
        staging: &api_staging,
        keys: &api_keys,
        settings: &api_settings,
    };
    let now = clock.now();
    let caller = Caller::default();
    let lookup_target = format!("{TARGET_PREFIX}LookupEvents");
    let lookup = |body: Value| {
        let (api, caller, target) = (&api, &caller, &lookup_target);
        async move {
            let body = body.to_string();
            api.http(&Call {
                method: "POST",
                target: Some(target),
                body: body.as_bytes(),
                caller,
                request_id: "load-lookup",
                now,
            })
            .await
        }
    };
    for region in SERVED {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "Region": region,
                "StartTime": events_from.timestamp() - 60,
                "EndTime": end.timestamp(),
                "MaxResults": 50,
            });
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let answer = lookup(body).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            let page: Value = serde_json::from_str(&answer.body).unwrap();
            found.extend(
                page["Events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["EventId"].as_str().unwrap().to_owned()),
            );
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<String> = found.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            found.len(),
            "{region}: an event twice in the history"
        );
        assert_eq!(unique, expected_history[region], "{region}: history");
        // One lookup by EventId too (the other read path).
        let one = unique.iter().next().unwrap();
        let body = json!({"Region": region, "StartTime": events_from.timestamp() - 60, "EndTime": end.timestamp(),
            "LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": one}]});
        let answer = lookup(body).await;
        assert!(answer.body.contains(one.as_str()), "{}", answer.body);
    }

    // AND a trail change through the API, through the same faults: a
    // client retries until it gets an answer, and its first request is
    // repeated (a Lambda retry of the same request: recorded once)
    let start = format!("{TARGET_PREFIX}StartLogging");
    let body = json!({ "Name": TRAIL }).to_string();
    let mut answered = 0;
    for _ in 0..20 {
        let answer = api
            .http(&Call {
                method: "POST",
                target: Some(&start),
                body: body.as_bytes(),
                caller: &caller,
                request_id: "load-start-logging",
                now,
            })
            .await;
        answered += usize::from(answer.status == 200);
        if answered == 2 {
            break;
        }
    }
    assert_eq!(answered, 2, "the API never answered through the faults");
    let recorded = lookup(json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "StartLogging"}]})).await;
    let recorded: Value = serde_json::from_str(&recorded.body).unwrap();
    assert_eq!(
        recorded["Events"].as_array().map(Vec::len),
        Some(1),
        "{recorded}"
    );

    // AND ListPublicKeys lists the key that signed the digests
    let list_keys = format!("{TARGET_PREFIX}ListPublicKeys");
    let answer = api
        .http(&Call {
            method: "POST",
            target: Some(&list_keys),
            body: b"{}",
            caller: &caller,
            request_id: "load-list-keys",
            now,
        })
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let listed: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        listed["PublicKeyList"][0]["Fingerprint"],
        json!(signer.public_key(HOME).await.unwrap().fingerprint),
        "{listed}"
    );

    // AND each function called exactly the actions its role in
    // template.yaml allows, on exactly its resources
    let mut stack = policies::Stack::new(&history_table.name, &state_table.name, &bucket.name);
    stack.bind.insert("SigningKey", key_arn.clone());
    outlets.bind(&mut stack);
    let deployment = stack.bind["AWS::AccountId"].clone();
    let to_arn = |action: &str, resource: &str| {
        if action.starts_with("dynamodb:") {
            table_arn(resource)
        } else if action.starts_with("logs:") {
            format!("arn:aws:logs:{HOME}:{deployment}:{resource}")
        } else {
            resource.to_owned()
        }
    };
    let mut problems_found = Vec::new();
    for (function, f) in [
        ("IngestFunction", &ingest_fn),
        ("DeliverFunction", &deliver_fn),
        ("DigestFunction", &digest_fn),
        ("LookupFunction", &lookup_fn),
    ] {
        problems_found.extend(policies::compare(
            function,
            &stack,
            &f.proxy.access(),
            &f.proxy.written_keys(),
            to_arn,
        ));
    }
    assert_eq!(problems_found, Vec::<String>::new());

    let _ = kms.schedule_key_deletion().key_id(&key_arn).send().await;
    outlets.delete().await;
    history_table.delete().await;
    state_table.delete().await;
}

/// A trail's outlets on moto: a KMS key for SSE-KMS, an SNS topic with a
/// queue subscribed (raw delivery), a CloudWatch Logs group.
struct Outlets {
    kms: aws_sdk_kms::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    sse_key: String,
    topic: String,
    queue_url: String,
    group: String,
    group_arn: String,
}

impl Outlets {
    async fn new(sdk: &aws_config::SdkConfig) -> Self {
        let (kms, sns, sqs, logs) = (
            aws_sdk_kms::Client::new(sdk),
            aws_sdk_sns::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            aws_sdk_cloudwatchlogs::Client::new(sdk),
        );
        let name = format!("load-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let sse_key = crate::digests::sse_key(&kms).await;
        let (topic, queue_url) = crate::helpers::subscribed_queue(&sns, &sqs, &name).await;
        let group = format!("CloudTrail/{name}");
        logs.create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .unwrap();
        let account = sse_key.split(':').nth(4).unwrap().to_owned();
        let group_arn = format!("arn:aws:logs:{HOME}:{account}:log-group:{group}:*");
        Self {
            kms,
            sns,
            sqs,
            logs,
            sse_key,
            topic,
            queue_url,
            group,
            group_arn,
        }
    }

    fn trail_update(&self) -> TrailUpdate {
        TrailUpdate {
            kms_key_id: Some(self.sse_key.clone()),
            sns_topic_name: Some(self.topic.clone()),
            cloud_watch_logs: Some(Some(CloudWatchLogs {
                log_group_arn: self.group_arn.clone(),
                role_arn: format!("arn:aws:iam::{ACCOUNT}:role/CloudTrail_CloudWatchLogs"),
            })),
            ..TrailUpdate::default()
        }
    }

    /// The stack's parameters that let deliver and digest use them.
    fn bind(&self, stack: &mut policies::Stack) {
        for condition in [
            "HasLogEncryptionKeys",
            "HasNotificationTopics",
            "HasLogGroups",
        ] {
            stack.conditions.insert(condition, true);
        }
        stack
            .bind
            .insert("LogEncryptionKeyArns", self.sse_key.clone());
        stack
            .bind
            .insert("NotificationTopicArns", self.topic.clone());
        stack.bind.insert("LogGroupArns", self.group_arn.clone());
    }

    /// The `s3ObjectKey` of every notification the queue received.
    async fn announced(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut empty = 0;
        while empty < 3 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                empty += 1;
            }
            for m in got.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                keys.push(body["s3ObjectKey"][0].as_str().unwrap().to_owned());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        keys
    }

    /// (stream, eventID) of every event in the log group.
    async fn sent(&self) -> Vec<(String, String)> {
        let mut sent = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .logs
                .filter_log_events()
                .log_group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for e in page.events() {
                let record: Value = serde_json::from_str(e.message().unwrap()).unwrap();
                let id = record["eventID"].as_str().unwrap().to_owned();
                sent.push((e.log_stream_name().unwrap().to_owned(), id));
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return sent;
            }
        }
    }

    async fn delete(&self) {
        let _ = self
            .kms
            .schedule_key_deletion()
            .key_id(&self.sse_key)
            .send()
            .await;
        let _ = self
            .sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
        let _ = self.sns.delete_topic().topic_arn(&self.topic).send().await;
        let _ = self
            .logs
            .delete_log_group()
            .log_group_name(&self.group)
            .send()
            .await;
    }
}

/// Detail for a failing run's log (`TRAILKEEP_LOAD_VERBOSE=1`).
fn verbose(line: &str) {
    if std::env::var_os("TRAILKEEP_LOAD_VERBOSE").is_some() {
        eprintln!("{line}");
    }
}
