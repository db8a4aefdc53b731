//! Staging and log file delivery through DynamoDB and S3 on moto: every
//! event a trail logs is in exactly one of its log files.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tokio::sync::RwLock;
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::s3::S3Logs;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::delivery::{
    window_of, DeliverReport, DeliverSettings, Deliverer, LogSink, Progress, StagingStore,
};
use trailkeep_shared::history::lookup::{self, LookupSettings};
use trailkeep_shared::history::HistorySettings;
use trailkeep_shared::ingest::normalize::{normalize, Context};
use trailkeep_shared::ingest::{ingest, Targets};
use trailkeep_shared::store::{Incomplete, StoreError};
use trailkeep_shared::trail::{admin, CloudWatchLogs, NewTrail};
use trailkeep_shared::trail::{
    DataResource, EventSelector, ReadWriteType, Trail, LAMBDA_FUNCTION, S3_OBJECT,
};

use crate::helpers::{assert_each_once, event_json, parse_time, TestBucket, TestTable};

/// One deliver run: the use case over these ports.
async fn deliver<S: StagingStore + trailkeep_shared::trail::HealthStore, L: LogSink>(
    staging: &S,
    logs: &L,
    trails: &[Trail],
    now: &DateTime<Utc>,
    settings: &DeliverSettings,
) -> Result<DeliverReport, Incomplete> {
    let deliverer = Deliverer {
        staging,
        logs,
        notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
        events: &trailkeep_shared::testkit::MemoryEventLog::default(),
        settings,
    };
    deliverer.run(trails, now).await.into_result()
}

pub(crate) const ACCOUNT: &str = "111122223333";
pub(crate) const HOME: &str = "eu-west-1";

/// The pipeline's resources for one test: history and state tables, a log
/// bucket, and the adapters over them.
pub(crate) struct Pipeline {
    pub history: TestTable,
    pub state: TestTable,
    pub bucket: TestBucket,
    pub history_store: DynamoHistory,
    pub staging: DynamoStaging,
    pub sink: S3Logs,
    pub settings: HistorySettings,
}

impl Pipeline {
    pub async fn new() -> Self {
        let history = TestTable::history().await;
        let state = TestTable::state().await;
        let bucket = TestBucket::new().await;
        Self {
            history_store: DynamoHistory::new(history.client.clone(), &history.name),
            staging: DynamoStaging::new(state.client.clone(), &state.name),
            sink: S3Logs::new(bucket.client.clone()),
            settings: HistorySettings {
                retention_days: 90,
                shards: 1,
            },
            history,
            state,
            bucket,
        }
    }

    pub fn targets<'a>(&'a self, trails: &'a [Trail]) -> Targets<'a, DynamoHistory, DynamoStaging> {
        Targets {
            history: &self.history_store,
            settings: &self.settings,
            staging: &self.staging,
            trails,
            // A member account's events reach organization trails.
            organization: true,
        }
    }

    pub async fn delete(self) {
        self.history.delete().await;
        self.state.delete().await;
    }
}

/// A simulated clock. Ingest calls hold a read guard from reading the time
/// to their last write; the clock only moves under the write guard, by less
/// than the grace period. That is the bound the Lambda timeout gives in
/// production: no ingest write lands more than `grace` after its clock read.
pub(crate) struct Clock {
    pub now: AtomicI64,
    pub calls: RwLock<()>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.now.load(Ordering::SeqCst), 0).unwrap()
    }
    pub async fn advance(&self, secs: i64) {
        let _exclusive = self.calls.write().await;
        self.now.fetch_add(secs, Ordering::SeqCst);
    }
}

/// The real S3 sink, failing every put after the first `ok` ones: a deliver
/// run that dies midway.
pub(crate) struct DiesAfter<'a> {
    pub inner: &'a S3Logs,
    pub ok: usize,
    pub done: std::sync::atomic::AtomicUsize,
}

impl LogSink for DiesAfter<'_> {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.done.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(StoreError::Backend {
                operation: "PutObject",
                resource: key.into(),
                message: "killed".into(),
            });
        }
        self.inner.put(bucket, key, gzip, kms_key).await
    }
}

/// One trail, "audit", logging into `bucket` since 2026-11-24T00:00Z.
async fn audit_trail(p: &Pipeline, bucket: &str, global: bool) -> Vec<Trail> {
    let store = p.state.trails();
    let audit = NewTrail {
        name: "audit".into(),
        s3_bucket_name: bucket.to_owned(),
        include_global_service_events: global,
        ..NewTrail::default()
    };
    admin::create(&store, ACCOUNT, HOME, audit).await.unwrap();
    admin::set_logging(&store, "audit", true, parse_time("2026-11-24T00:00:00Z"))
        .await
        .unwrap();
    admin::describe(&store, &[]).await.unwrap()
}

async fn make_trails(
    store: &trailkeep_shared::aws::trail_items::DynamoTrails,
    bucket: &str,
) -> Vec<Trail> {
    let new = |name: &str, prefix: &str, multi: bool| NewTrail {
        name: name.into(),
        s3_bucket_name: bucket.into(),
        s3_key_prefix: Some(prefix.into()),
        kms_key_id: None,
        sns_topic_name: None,
        cloud_watch_logs: None,
        is_multi_region_trail: multi,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        tags: Vec::new(),
    };
    admin::create(store, ACCOUNT, HOME, new("all-management", "all", true))
        .await
        .unwrap();
    admin::create(
        store,
        ACCOUNT,
        HOME,
        new("writes-and-uploads", "writes", false),
    )
    .await
    .unwrap();
    admin::create(store, ACCOUNT, HOME, new("invocations", "lambda", true))
        .await
        .unwrap();
    admin::put_event_selectors(
        store,
        "writes-and-uploads",
        vec![
            EventSelector {
                read_write_type: ReadWriteType::WriteOnly,
                include_management_events: true,
                data_resources: vec![],
                exclude_management_event_sources: Vec::new(),
            },
            EventSelector {
                read_write_type: ReadWriteType::All,
                include_management_events: false,
                data_resources: vec![DataResource {
                    resource_type: S3_OBJECT.into(),
                    values: vec!["arn:aws:s3:::example-uploads/".into()],
                }],
                exclude_management_event_sources: Vec::new(),
            },
        ],
    )
    .await
    .unwrap();
    admin::put_event_selectors(
        store,
        "invocations",
        vec![EventSelector {
            read_write_type: ReadWriteType::All,
            include_management_events: false,
            data_resources: vec![DataResource {
                resource_type: LAMBDA_FUNCTION.into(),
                values: vec!["arn:aws:lambda".into()],
            }],
            exclude_management_event_sources: Vec::new(),
        }],
    )
    .await
    .unwrap();
    for name in ["all-management", "writes-and-uploads", "invocations"] {
        admin::set_logging(store, name, true, parse_time("2026-11-24T00:00:00Z"))
            .await
            .unwrap();
    }
    admin::describe(store, &[]).await.unwrap()
}

/// Where event `i` of [`payload`] goes in each of `make_trails`' trails
/// (home `eu-west-1`), written by hand from docs/trails.md's "Into which
/// region's log files" table rather than from `Trail::log_region`: a
/// routing bug fails the test. (That table keeps CloudTrail's rule from
/// before November 2021 for single-region trails outside us-east-1: they
/// still get global-service events, as `IncludeGlobalServiceEvents` says.)
fn expected_route(i: usize, trail: &str) -> Option<&'static str> {
    let region = ["eu-west-1", "us-east-1", "ap-south-1"][i % 3];
    let in_home = region == "eu-west-1";
    match (i % 5, trail) {
        // EC2 calls, write (0) and read (1): a multi-region trail files
        // them in their region; the single-region trail logs writes of
        // its home region only.
        (0 | 1, "all-management") => Some(region),
        (0, "writes-and-uploads") if in_home => Some("eu-west-1"),
        // An IAM call (global): us-east-1 in a multi-region trail, the
        // home region in a single-region one.
        (2, "all-management") => Some("us-east-1"),
        (2, "writes-and-uploads") => Some("eu-west-1"),
        // An upload to example-uploads: the single-region trail's S3
        // selector, in its home region only.
        (3, "writes-and-uploads") if in_home => Some("eu-west-1"),
        // A Lambda invocation: the invocations trail, its region.
        (4, "invocations") => Some(region),
        _ => None,
    }
}

/// Event `i`: one of five shapes, in one of three regions, with a unique id.
fn payload(i: usize) -> String {
    let region = ["eu-west-1", "us-east-1", "ap-south-1"][i % 3];
    let id = format!("00000000-0000-4000-8000-{i:012}");
    match i % 5 {
        0 | 1 => {
            let mut p = event_json(if i.is_multiple_of(5) {
                "eventbridge/api-call-write.json"
            } else {
                "eventbridge/api-call-read.json"
            });
            p["detail"]["eventID"] = json!(id);
            p["detail"]["awsRegion"] = json!(region);
            p.to_string()
        }
        2 => {
            let mut p = event_json("eventbridge/iam-global-call.json");
            p["detail"]["eventID"] = json!(id);
            p.to_string()
        }
        3 => {
            let mut p = event_json("s3/put.json");
            p["Records"][0]["awsRegion"] = json!(region);
            p["Records"][0]["s3"]["object"]["sequencer"] = json!(format!("{i:018X}"));
            p.to_string()
        }
        _ => {
            let mut p = event_json("eventbridge/lambda-invoke-data-event.json");
            p["detail"]["eventID"] = json!(id);
            p["detail"]["awsRegion"] = json!(region);
            p.to_string()
        }
    }
}

pub(crate) fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_staged_event_is_in_exactly_one_log_file_whatever_the_interleaving() {
    // GIVEN three trails (management, writes + one bucket's objects, Lambda
    // invocations), a history, a log bucket and a simulated clock
    let p = Pipeline::new().await;
    let trails = Arc::new(make_trails(&p.state.trails(), &p.bucket.name).await);
    let (staging, sink) = (&p.staging, &p.sink);
    let deliver_settings = DeliverSettings::default();
    // After the sample events' times (ingest refuses an eventTime more
    // than 5 minutes ahead of its clock).
    let start = crate::helpers::parse_time("2026-11-24T02:00:30Z");
    let clock = Arc::new(Clock {
        now: AtomicI64::new(start.timestamp()),
        calls: RwLock::new(()),
    });
    const EVENTS: usize = 2000;
    const TASKS: usize = 8;

    // WHEN 8 tasks ingest 2,000 events, re-delivering every tenth one later,
    // each waiting for one more deliver run every 12 events, and each
    // deliver run waiting for at least one more event (so the two
    // interleave however fast either is, paced by each other's progress,
    // not by the clock; a task is never held for more than one run),
    let ingested = crate::helpers::Progress::default();
    let runs_done = crate::helpers::Progress::default();
    let ingesting = async {
        let tasks = (0..TASKS).map(|task| {
            let (clock, trails) = (clock.clone(), trails.clone());
            let (p, runs_done, ingested) = (&p, &runs_done, &ingested);
            async move {
                let ctx = Context {
                    account_id: ACCOUNT.into(),
                };
                let targets = p.targets(&trails);
                let mine: Vec<usize> = (task..EVENTS).step_by(TASKS).collect();
                let again: Vec<usize> = mine.iter().copied().filter(|i| i % 10 == 7).collect();
                for (n, i) in mine.into_iter().chain(again).enumerate() {
                    runs_done.reach(n / 12).await;
                    let call = clock.calls.read().await;
                    ingest(&targets, &ctx, &payload(i), &clock.now())
                        .await
                        .expect("ingest");
                    drop(call);
                    ingested.bump();
                }
            }
        });
        futures::future::join_all(tasks).await;
        ingested.finish();
    };
    // … while deliver runs every simulated minute until they are done; from
    // the tenth run on, runs die after their first file until one has died.
    let delivering = async {
        let mut runs = 0;
        let mut died = false;
        while !ingested.finished() {
            clock.advance(60).await;
            let now = clock.now();
            if runs >= 10 && !died {
                let dying = DiesAfter {
                    inner: sink,
                    ok: 1,
                    done: 0.into(),
                };
                let result = deliver(staging, &dying, &trails, &now, &deliver_settings).await;
                died = result.is_err() && dying.done.load(Ordering::SeqCst) > 1;
            } else {
                deliver(staging, sink, &trails, &now, &deliver_settings)
                    .await
                    .expect("deliver");
            }
            runs += 1;
            runs_done.bump();
            ingested.reach(ingested.get() + 1).await;
        }
        // (At least 22 runs happen by construction: each task waits for
        // one run per 12 of its events.)
        died
    };
    let ((), died) = tokio::join!(ingesting, delivering);
    assert!(died, "the aborted run failed midway");
    // AND after the last event, deliver runs until every window is sealed and delivered.
    clock.advance(3600).await;
    for _ in 0..3 {
        let report = deliver(staging, sink, &trails, &clock.now(), &deliver_settings)
            .await
            .unwrap();
        assert_eq!(report.behind, 0);
    }

    // THEN each trail's log files hold exactly the events it logs, once each
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let mut expected: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for i in 0..EVENTS {
        // Only the event ID comes from the code; the routing is written
        // by hand (`expected_route`).
        let record = normalize(&payload(i), &ctx).records.remove(0).record;
        for trail in trails.iter() {
            if let Some(region) = expected_route(i, &trail.name) {
                expected
                    .entry((trail.name.clone(), region.to_owned()))
                    .or_default()
                    .insert(record.event_id.clone());
            }
        }
    }
    let key_pattern = regex::Regex::new(
        r"^(all|writes|lambda)/AWSLogs/111122223333/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/111122223333_CloudTrail_([a-z0-9-]+)_(\d{8})T(\d{2})(\d{2})Z_[0-9a-f]{16}\.json\.gz$",
    )
    .unwrap();
    let mut actual: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let objects = p.bucket.objects().await;
    assert!(objects.len() > 10, "{} files", objects.len());
    for (key, gz) in &objects {
        let caps = key_pattern
            .captures(key)
            .unwrap_or_else(|| panic!("key {key} is not in CloudTrail's layout"));
        assert_eq!(
            &caps[2], &caps[6],
            "{key}: region folder and file name agree"
        );
        assert_eq!(
            format!("{}{}{}", &caps[3], &caps[4], &caps[5]),
            &caps[7],
            "{key}: date folder and file name agree"
        );
        let minute: u32 = caps[9].parse().unwrap();
        assert_eq!(
            minute % 5,
            2,
            "{key}: delivered at a window's seal time (end + 2 min)"
        );
        let trail = match &caps[1] {
            "all" => "all-management",
            "writes" => "writes-and-uploads",
            _ => "invocations",
        };
        let doc: Value = serde_json::from_slice(&gunzip(gz)).expect("JSON");
        let records = doc["Records"].as_array().expect("a Records array");
        assert!(!records.is_empty(), "{key} is empty");
        let times: Vec<&str> = records
            .iter()
            .map(|r| r["eventTime"].as_str().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{key} is not sorted by eventTime"
        );
        let ids = actual
            .entry((trail.to_owned(), caps[2].to_owned()))
            .or_default();
        ids.extend(
            records
                .iter()
                .map(|r| r["eventID"].as_str().unwrap().to_owned()),
        );
    }
    assert_each_once(&actual, &expected);

    // AND every file has a manifest entry with the hash of its content
    let manifests = manifest_entries(staging, &trails).await;
    assert_eq!(manifests.len(), objects.len());
    for (key, gz) in &objects {
        let sha = trailkeep_tests_sha256(&gunzip(gz));
        assert_eq!(manifests.get(key), Some(&sha), "{key}");
    }

    p.delete().await;
}

async fn manifest_entries(staging: &DynamoStaging, trails: &[Trail]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for trail in trails {
        for (region, _) in staging.regions(&trail.name).await.unwrap() {
            for hour in 0..6 {
                let h = format!("2026-11-24T{hour:02}");
                for e in staging
                    .manifest_partition(&trail.name, &region, &h)
                    .await
                    .unwrap()
                {
                    out.insert(e.key, e.sha256);
                }
            }
        }
    }
    out
}

fn trailkeep_tests_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_rerun_for_the_same_window_writes_the_same_objects_however_it_pages() {
    let p = Pipeline::new().await;
    let trails = make_trails(&p.state.trails(), &p.bucket.name).await;
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let at = crate::helpers::parse_time("2026-11-24T03:01:00Z");
    for i in 0..40 {
        ingest(&p.targets(&trails), &ctx, &payload(i), &at)
            .await
            .unwrap();
    }
    let later = at + Duration::minutes(10);
    let settings = DeliverSettings::default();
    let first_run = deliver(&p.staging, &p.sink, &trails, &later, &settings)
        .await
        .unwrap();
    let first = p.bucket.objects().await;
    // Rewind the cursors, as if the run had died before advancing them.
    for trail in &trails {
        for (region, next) in p.staging.regions(&trail.name).await.unwrap() {
            let rewound = p
                .staging
                .advance(&trail.name, &region, next, window_of(&at))
                .await;
            assert!(rewound.unwrap());
        }
    }
    // The re-run reads each window 3 staged events per Query page
    // (ExclusiveStartKey): a window streams through page by page (issue 21,
    // item 3), and the files do not depend on where the pages fall.
    let paged = DynamoStaging::new(p.state.client.clone(), &p.state.name).with_page_items(3);
    let second_run = deliver(&paged, &p.sink, &trails, &later, &settings)
        .await
        .unwrap();
    let second = p.bucket.objects().await;
    assert!(!first.is_empty());
    assert_eq!(first, second, "same keys, same bytes");
    // The re-run did the work again (not merely found the objects there):
    // the same windows, files and records as the first run, which are the
    // files in the bucket and the records in them.
    assert_eq!(
        (second_run.windows, second_run.files, second_run.records),
        (first_run.windows, first_run.files, first_run.records),
        "{first_run:?} / {second_run:?}"
    );
    let records: usize = first
        .iter()
        .filter(|(k, _)| k.contains("/CloudTrail/"))
        .map(|(_, gz)| {
            let doc: serde_json::Value = serde_json::from_slice(&gunzip(gz)).unwrap();
            doc["Records"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(
        (first_run.files, first_run.records),
        (first.len(), records),
        "{first_run:?}"
    );
    assert!(records > 0 && second_run.windows > 0);
    p.delete().await;
}

#[tokio::test]
async fn a_cut_windows_progress_is_kept_on_its_cursor_until_the_cursor_moves() {
    // GIVEN a trail's region registered from window 7, no cursor yet
    let state = TestTable::state().await;
    let staging = DynamoStaging::new(state.client.clone(), &state.name);
    staging.register("audit", HOME, 7).await.unwrap();
    let p = Progress {
        part: 3,
        after: "2026-11-24T01:00:00Z#x".into(),
    };
    // WHEN a run cut in window 7 notes its progress
    assert!(staging.save_progress("audit", HOME, 7, &p).await.unwrap());
    // THEN the next run reads it for window 7 only, and the region's next
    // window is still 7
    assert_eq!(
        staging.progress("audit", HOME, 7).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(staging.progress("audit", HOME, 8).await.unwrap(), None);
    assert_eq!(
        staging.regions("audit").await.unwrap(),
        [(HOME.to_owned(), 7)]
    );
    // AND once the cursor moves on it is gone, and a run that lost the race
    // for window 7 cannot note any
    assert!(staging.advance("audit", HOME, 7, 8).await.unwrap());
    assert_eq!(staging.progress("audit", HOME, 7).await.unwrap(), None);
    assert!(!staging.save_progress("audit", HOME, 7, &p).await.unwrap());
    assert_eq!(staging.progress("audit", HOME, 7).await.unwrap(), None);
    assert_eq!(
        staging.regions("audit").await.unwrap(),
        [(HOME.to_owned(), 8)]
    );
    state.delete().await;
}

/// Item 10 of issue 21: CloudTrail records of versions 1.05 to 1.11, with
/// and without the optional blocks (errorCode, resources, tlsDetails,
/// addendum, fields trailkeep has no name for, numbers like `1024.0`),
/// come out of the log files and LookupEvents' `CloudTrailEvent` equal to
/// the detail that went in, `eventVersion` included: nothing rewritten,
/// nothing added, nothing dropped.
#[tokio::test]
async fn aws_records_of_every_version_come_out_as_aws_wrote_them() {
    let p = Pipeline::new().await;
    let trails = audit_trail(&p, &p.bucket.name, true).await;
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let events = event_json("versions/cloudtrail-records.json");
    let mut sent = BTreeMap::new();
    let at = parse_time("2026-11-24T01:00:20Z");
    for e in events.as_array().unwrap() {
        let detail = &e["detail"];
        sent.insert(
            detail["eventID"].as_str().unwrap().to_owned(),
            detail.clone(),
        );
        // Pretty-printed, as a hand-made payload might be: only the
        // whitespace between tokens may go.
        let payload = serde_json::to_string_pretty(e).unwrap();
        let report = ingest(&p.targets(&trails), &ctx, &payload, &at)
            .await
            .unwrap();
        assert_eq!(report.accepted, 1, "{report:?}");
    }
    assert_eq!(sent.len(), 8);
    let versions: BTreeSet<&str> = sent
        .values()
        .map(|d| d["eventVersion"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        BTreeSet::from(["1.05", "1.06", "1.07", "1.08", "1.09", "1.10", "1.11"])
    );

    deliver(
        &p.staging,
        &p.sink,
        &trails,
        &(at + Duration::minutes(8)),
        &DeliverSettings::default(),
    )
    .await
    .unwrap();
    let mut delivered = BTreeMap::new();
    for (_, gz) in p.bucket.objects().await {
        let doc: Value = serde_json::from_slice(&gunzip(&gz)).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            delivered.insert(r["eventID"].as_str().unwrap().to_owned(), r.clone());
        }
    }
    assert_eq!(
        delivered.keys().collect::<Vec<_>>(),
        sent.keys().collect::<Vec<_>>()
    );
    for (id, detail) in &sent {
        assert_eq!(&delivered[id], detail, "the log file's record {id}");
    }

    let settings = LookupSettings {
        account_id: String::new(),
        organization: false,
        home_region: HOME.into(),
        served_regions: vec![HOME.into()],
        retention_days: 90,
        token_key: b"integration-test-token-key-32-bytes!".to_vec(),
        shards: 1,
    };
    for (id, detail) in &sent {
        let request =
            json!({ "LookupAttributes": [{ "AttributeKey": "EventId", "AttributeValue": id }] });
        let request =
            lookup::parse_request(request.to_string().as_bytes(), &settings, &at).unwrap();
        let page = lookup::lookup(&p.history_store, &request, &settings, &at)
            .await
            .unwrap();
        let answer = lookup::response_json(&page);
        let events = answer["Events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{id}: {answer}");
        let looked_up: Value =
            serde_json::from_str(events[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(&looked_up, detail, "LookupEvents' CloudTrailEvent of {id}");
    }
    p.delete().await;
}

/// Item 8 of issue 21: in a bucket made as template.yaml makes the log
/// bucket by default (Object Lock, GOVERNANCE), deliver writes its log files
/// (S3 wants a checksum on every put under Object Lock: the SDK sends one),
/// and nobody can delete a delivered version or overwrite it in place. The
/// GOVERNANCE bypass is the bucket policy's to refuse
/// (`policies::nobody_but_the_bucket_admin_changes_retention`).
#[tokio::test]
async fn under_the_default_object_lock_a_delivered_version_cannot_be_deleted() {
    let p = Pipeline::new().await;
    let bucket = TestBucket::log_bucket().await;
    let trails = audit_trail(&p, &bucket.name, false).await;
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let at = parse_time("2026-11-24T04:00:10Z");
    ingest(
        &p.targets(&trails),
        &ctx,
        &crate::helpers::event("eventbridge/api-call-write.json"),
        &at,
    )
    .await
    .unwrap();
    let report = deliver(
        &p.staging,
        &p.sink,
        &trails,
        &(at + Duration::minutes(8)),
        &DeliverSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.files, 1, "{report:?}");
    let objects = bucket.objects().await;
    assert_eq!(objects.len(), 1);
    let (key, original) = &objects[0];

    let s3 = &bucket.client;
    let head = bucket.head(key).await;
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    let version = head.version_id().unwrap().to_owned();
    // The attack: delete the delivered version, with and without the
    // version ID (the latter only hides it behind a delete marker).
    let deleted = s3
        .delete_object()
        .bucket(&bucket.name)
        .key(key)
        .version_id(&version)
        .send()
        .await;
    assert!(deleted.is_err(), "a locked version was deleted");
    s3.put_object()
        .bucket(&bucket.name)
        .key(key)
        .body(b"forged".to_vec().into())
        .send()
        .await
        .unwrap();
    // An overwrite is a new version; the delivered one is still there, whole.
    let kept = s3
        .get_object()
        .bucket(&bucket.name)
        .key(key)
        .version_id(&version)
        .send()
        .await
        .unwrap();
    let kept = kept.body.collect().await.unwrap().into_bytes();
    assert_eq!(&kept[..], &original[..]);
    p.delete().await;
}

/// Issue 16, item 2: each log file of a trail with a topic is announced in
/// CloudTrail's message, once, through SNS on moto into an SQS queue
/// subscribed with raw delivery (as a SIEM importer subscribes).
#[tokio::test]
async fn each_log_file_is_announced_on_the_trails_topic() {
    use trailkeep_shared::aws::sns::SnsNotifier;
    let p = Pipeline::new().await;
    let sdk = crate::helpers::sdk_config().await;
    let (sns, sqs) = (
        aws_sdk_sns::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let name = format!(
        "trail-files-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let (topic, queue_url) = crate::helpers::subscribed_queue(&sns, &sqs, &name).await;
    let store = p.state.trails();
    for (trail, topic) in [("announced", Some(topic.clone())), ("silent", None)] {
        let new = NewTrail {
            name: trail.into(),
            s3_bucket_name: p.bucket.name.clone(),
            s3_key_prefix: Some(trail.into()),
            sns_topic_name: topic,
            ..NewTrail::default()
        };
        admin::create(&store, ACCOUNT, HOME, new).await.unwrap();
        admin::set_logging(&store, trail, true, parse_time("2026-11-24T00:00:00Z"))
            .await
            .unwrap();
    }
    let trails = admin::describe(&store, &[]).await.unwrap();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let at = parse_time("2026-11-24T04:00:10Z");
    for (i, path) in [
        "eventbridge/api-call-write.json",
        "eventbridge/api-call-read.json",
        "eventbridge/console-action.json",
    ]
    .into_iter()
    .enumerate()
    {
        // One event per delivery window: three files per trail.
        let at = at + Duration::minutes(5 * i as i64);
        ingest(&p.targets(&trails), &ctx, &crate::helpers::event(path), &at)
            .await
            .unwrap();
    }
    let notifier = SnsNotifier::new(sns.clone());
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: &p.staging,
        logs: &p.sink,
        notifier: &notifier,
        events: &trailkeep_shared::testkit::MemoryEventLog::default(),
        settings: &settings,
    };
    let report = deliverer
        .run(&trails, &(at + Duration::minutes(25)))
        .await
        .into_result()
        .unwrap();
    assert_eq!(
        (report.files, report.notified, report.notify_failed),
        (6, 3, 0)
    );

    let mut bodies = Vec::new();
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        bodies.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
        if bodies.len() >= 3 {
            break;
        }
    }
    let mut got: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    got.sort_by_key(|v| v.to_string());
    let mut expected: Vec<Value> = p
        .bucket
        .objects()
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("announced/"))
        .map(|(k, _)| json!({"s3Bucket": p.bucket.name, "s3ObjectKey": [k]}))
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(expected.len(), 3);
    assert_eq!(got, expected);
    // GetTrailStatus's LatestNotificationTime, from the state table.
    use trailkeep_shared::trail::HealthStore;
    let health = p.staging.health("announced").await.unwrap();
    assert_eq!(
        (health.notified, health.notify_error),
        (Some(at + Duration::minutes(25)), None)
    );
    assert_eq!(p.staging.health("silent").await.unwrap().notified, None);
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
    let _ = sns.delete_topic().topic_arn(&topic).send().await;
    p.delete().await;
}

/// Issue 16, item 3: every event a trail with a log group delivers is in
/// CloudTrail's stream of that group once, read back with FilterLogEvents
/// through the real SDK on moto; the records are those of the trail's
/// log files, and a run with nothing new sends nothing.
#[tokio::test]
async fn each_delivered_event_is_read_back_from_the_trails_log_group() {
    use trailkeep_shared::aws::logs::CloudWatchEventLog;
    let p = Pipeline::new().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&crate::helpers::sdk_config().await);
    let group = format!(
        "CloudTrail/trail-events-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let store = p.state.trails();
    let group_arn = format!("arn:aws:logs:{HOME}:{ACCOUNT}:log-group:{group}:*");
    for (trail, watched) in [("watched", true), ("plain", false)] {
        let new = NewTrail {
            name: trail.into(),
            s3_bucket_name: p.bucket.name.clone(),
            s3_key_prefix: Some(trail.into()),
            cloud_watch_logs: watched.then(|| CloudWatchLogs {
                log_group_arn: group_arn.clone(),
                role_arn: format!("arn:aws:iam::{ACCOUNT}:role/CloudTrail_CloudWatchLogs"),
            }),
            ..NewTrail::default()
        };
        admin::create(&store, ACCOUNT, HOME, new).await.unwrap();
        admin::set_logging(&store, trail, true, parse_time("2026-11-24T00:00:00Z"))
            .await
            .unwrap();
    }
    let trails = admin::describe(&store, &[]).await.unwrap();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    // Recent times: CloudWatch Logs rejects events older than 14 days.
    let at = DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap();
    for (i, path) in [
        "eventbridge/api-call-write.json",
        "eventbridge/api-call-read.json",
        "eventbridge/console-action.json",
    ]
    .into_iter()
    .enumerate()
    {
        let mut v: Value = serde_json::from_str(&crate::helpers::event(path)).unwrap();
        let at = at + Duration::minutes(5 * i as i64);
        v["detail"]["eventTime"] = json!(trailkeep_shared::time::format(&at));
        ingest(&p.targets(&trails), &ctx, &v.to_string(), &at)
            .await
            .unwrap();
    }
    let events = CloudWatchEventLog::new(logs.clone());
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: &p.staging,
        logs: &p.sink,
        notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
        events: &events,
        settings: &settings,
    };
    let now = at + Duration::minutes(25);
    let report = deliverer.run(&trails, &now).await.into_result().unwrap();
    assert_eq!(
        (report.files, report.cwl_sent, report.cwl_failed),
        (6, 3, 0)
    );

    let read = || async {
        let mut got = Vec::new();
        let mut token = None;
        loop {
            let page = logs
                .filter_log_events()
                .log_group_name(&group)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            got.extend(page.events().iter().map(|e| {
                let message: Value = serde_json::from_str(e.message().unwrap()).unwrap();
                (
                    e.log_stream_name().unwrap().to_owned(),
                    e.timestamp().unwrap(),
                    message,
                )
            }));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        got
    };
    let got = read().await;
    // The records of the watched trail's log files, with their times.
    let mut expected: Vec<(String, i64, Value)> = Vec::new();
    for (key, gzip) in p.bucket.objects().await {
        if !key.starts_with("watched/") {
            continue;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_string(&mut text)
            .unwrap();
        let file: Value = serde_json::from_str(&text).unwrap();
        for record in file["Records"].as_array().unwrap() {
            let time = parse_time(record["eventTime"].as_str().unwrap());
            let stream = format!(
                "{ACCOUNT}_CloudTrail_{}",
                record["awsRegion"].as_str().unwrap()
            );
            expected.push((stream, time.timestamp_millis(), record.clone()));
        }
    }
    let key = |e: &(String, i64, Value)| (e.0.clone(), e.1, e.2["eventID"].to_string());
    let (mut got, mut expected) = (got, expected);
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(expected.len(), 3);
    assert_eq!(got, expected);
    // A term filter finds the one event that names it.
    let found = logs
        .filter_log_events()
        .log_group_name(&group)
        .filter_pattern("\"DescribeEventAggregates\"")
        .send()
        .await
        .unwrap();
    let names: Vec<Value> = found
        .events()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e.message().unwrap()).unwrap()["eventName"].clone())
        .collect();
    assert_eq!(names, [json!("DescribeEventAggregates")]);
    // GetTrailStatus's LatestCloudWatchLogsDeliveryTime, from the state table.
    use trailkeep_shared::trail::HealthStore;
    let health = p.staging.health("watched").await.unwrap();
    assert_eq!((health.cwl_delivered, health.cwl_error), (Some(now), None));
    // Nothing new: nothing sent again.
    let again = deliverer
        .run(&trails, &(now + Duration::minutes(5)))
        .await
        .into_result()
        .unwrap();
    assert_eq!(again.cwl_sent, 0);
    assert_eq!(read().await.len(), 3);
    // The group deleted: the next file is delivered, its event counted as
    // not sent, and GetTrailStatus says why (a refusal, not an outage that
    // would hold the window back).
    logs.delete_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let later = now + Duration::minutes(10);
    let mut v: Value =
        serde_json::from_str(&crate::helpers::event("eventbridge/api-call-write.json")).unwrap();
    v["detail"]["eventID"] = json!(uuid::Uuid::new_v4().to_string());
    v["detail"]["eventTime"] = json!(trailkeep_shared::time::format(&later));
    ingest(&p.targets(&trails), &ctx, &v.to_string(), &later)
        .await
        .unwrap();
    let refused = deliverer
        .run(&trails, &(later + Duration::minutes(10)))
        .await
        .into_result()
        .unwrap();
    assert_eq!(
        (refused.files, refused.cwl_sent, refused.cwl_failed),
        (2, 0, 1),
        "{refused:?}"
    );
    let health = p.staging.health("watched").await.unwrap();
    assert!(
        health
            .cwl_error
            .as_deref()
            .is_some_and(|e| e.contains("ResourceNotFoundException")),
        "{health:?}"
    );
    p.delete().await;
}

/// The state table keeps deliver's side channels (SNS, CloudWatch Logs)
/// apart: each one's last success and last refusal, a refusal cleared only
/// by a run that sent on that channel without one.
#[tokio::test]
async fn a_run_out_of_time_notes_its_attempt_and_keeps_the_last_error() {
    use trailkeep_shared::trail::{HealthStore, RunOutcome};
    let p = Pipeline::new().await;
    let at = |m: i64| parse_time("2026-11-24T01:00:00Z") + Duration::minutes(m);
    let run = |m: i64, complete: bool, error: Option<&str>| RunOutcome {
        at: at(m),
        complete,
        wrote: false,
        error: error.map(str::to_owned),
        notified: false,
        notify_error: None,
        cwl_sent: false,
        cwl_error: None,
    };
    let mut seen = Vec::new();
    // Failed; out of time before the trail (no error of its own); through.
    for step in [
        run(5, true, Some("Query failed")),
        run(10, false, None),
        run(15, true, None),
    ] {
        p.staging.note_delivery("audit", &step).await.unwrap();
        let h = p.staging.health("audit").await.unwrap();
        seen.push((
            h.delivery_attempt,
            h.delivery_succeeded,
            h.delivery_ok,
            h.delivery_error,
        ));
    }
    let failed = Some("Query failed".to_owned());
    assert_eq!(
        seen,
        [
            (Some(at(5)), Some(false), None, failed.clone()),
            (Some(at(10)), Some(false), None, failed),
            (Some(at(15)), Some(true), Some(at(15)), None),
        ]
    );
    p.delete().await;
}

#[tokio::test]
async fn each_side_channel_keeps_its_own_last_success_and_refusal() {
    use trailkeep_shared::trail::{HealthStore, RunOutcome};
    let p = Pipeline::new().await;
    let at = |m: i64| parse_time("2026-11-24T01:00:00Z") + Duration::minutes(m);
    let run = |m: i64| RunOutcome {
        at: at(m),
        complete: true,
        wrote: true,
        error: None,
        notified: false,
        notify_error: None,
        cwl_sent: false,
        cwl_error: None,
    };
    let steps = [
        // Publishing refused, events sent.
        RunOutcome {
            notify_error: Some("Publish refused".into()),
            cwl_sent: true,
            ..run(5)
        },
        // Published; sending refused.
        RunOutcome {
            notified: true,
            cwl_error: Some("PutLogEvents refused".into()),
            ..run(10)
        },
        // Neither channel used: both stay as they were.
        run(15),
    ];
    let mut seen = Vec::new();
    for step in &steps {
        p.staging.note_delivery("audit", step).await.unwrap();
        let h = p.staging.health("audit").await.unwrap();
        seen.push((h.notified, h.notify_error, h.cwl_delivered, h.cwl_error));
    }
    let (refused, sent_refused) = (
        Some("Publish refused".to_owned()),
        Some("PutLogEvents refused".to_owned()),
    );
    assert_eq!(
        seen,
        [
            (None, refused.clone(), Some(at(5)), None),
            (Some(at(10)), None, Some(at(5)), sent_refused.clone()),
            (Some(at(10)), None, Some(at(5)), sent_refused),
        ]
    );
    p.delete().await;
}

#[tokio::test]
async fn a_delivered_log_file_has_cloudtrails_format() {
    let p = Pipeline::new().await;
    let trails = audit_trail(&p, &p.bucket.name, false).await;
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let at = crate::helpers::parse_time("2026-11-24T04:00:10Z");
    for path in [
        "eventbridge/api-call-write.json",
        "eventbridge/api-call-read.json",
        "eventbridge/console-action.json",
    ] {
        ingest(&p.targets(&trails), &ctx, &crate::helpers::event(path), &at)
            .await
            .unwrap();
    }
    let later = at + Duration::minutes(8);
    deliver(
        &p.staging,
        &p.sink,
        &trails,
        &later,
        &DeliverSettings::default(),
    )
    .await
    .unwrap();

    let objects = p.bucket.objects().await;
    assert_eq!(objects.len(), 1);
    let (key, gz) = &objects[0];
    assert_eq!(
        key,
        &format!(
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/111122223333_CloudTrail_eu-west-1_20261124T0407Z_{}.json.gz",
            &key[key.len() - 24..key.len() - 8]
        )
    );
    let doc: Value = serde_json::from_slice(&gunzip(gz)).unwrap();
    let top: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(top, ["Records"]);
    let records = doc["Records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        for field in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "eventID",
            "eventType",
            "recipientAccountId",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
    }
    // AWS's own version is kept (the samples are 1.10, 1.10 and 1.08).
    let versions: Vec<&str> = records
        .iter()
        .map(|r| r["eventVersion"].as_str().unwrap())
        .collect();
    assert_eq!(versions.iter().filter(|v| **v == "1.10").count(), 2);
    assert_eq!(versions.iter().filter(|v| **v == "1.08").count(), 1);
    p.delete().await;
}

#[tokio::test]
async fn staged_copies_are_packed_and_those_staged_before_still_read() {
    // Contract of the staging adapter: a staged copy is stored packed (`z`)
    // and read back as the JSON staged; a copy staged as JSON (`rec`) by a
    // stack before the upgrade, still in a window when it deploys, reads
    // the same; a copy that is neither stops the read rather than leaving
    // an event out of a log file.
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use trailkeep_shared::aws::history_table::attr;
    use trailkeep_shared::delivery::logfile::Staged;
    let state = TestTable::state().await;
    let staging = DynamoStaging::new(state.client.clone(), &state.name);
    let at = parse_time("2026-11-24T03:01:00Z");
    let window = window_of(&at);
    let staged = |i: u32| Staged {
        event_time: at + Duration::seconds(i.into()),
        event_id: format!("e{i}"),
        json: json!({"eventID": format!("e{i}"), "requestParameters": {"pad": "x".repeat(900)}})
            .to_string(),
        first: (i == 3).then_some(window),
    };
    for i in [1, 3] {
        staging
            .stage("t", "eu-west-1", window, &staged(i))
            .await
            .unwrap();
    }
    let pk = format!("STG#t#eu-west-1#{window}");
    let old = staged(2);
    let sk = trailkeep_shared::history::index_sk(&old.event_time, &old.event_id);
    let put = |value: (&str, A)| {
        state
            .client
            .put_item()
            .table_name(&state.name)
            .item(attr::PK, A::S(pk.clone()))
            .item(attr::SK, A::S(sk.clone()))
            .item(value.0, value.1)
            .item(attr::EXPIRES_AT, A::N("4102444800".into()))
            .send()
    };
    put((attr::RECORD, A::S(old.json.clone()))).await.unwrap();
    // … and one deflated, as staged from 2026-11-24 to 2026-12-03.
    let deflated = staged(4);
    state
        .client
        .put_item()
        .table_name(&state.name)
        .item(attr::PK, A::S(pk.clone()))
        .item(
            attr::SK,
            A::S(trailkeep_shared::history::index_sk(
                &deflated.event_time,
                &deflated.event_id,
            )),
        )
        .item(
            attr::PACKED,
            A::B(Blob::new(trailkeep_shared::testkit::deflated(
                deflated.json.as_bytes(),
            ))),
        )
        .item(attr::EXPIRES_AT, A::N("4102444800".into()))
        .send()
        .await
        .unwrap();

    let page = staging
        .staged("t", "eu-west-1", window, None)
        .await
        .unwrap();
    assert_eq!(page.events, [staged(1), old.clone(), staged(3), deflated]);
    // The adapter's copies: packed only, in today's format (the tag byte
    // of the dictionary's packing, docs/event-history.md "Item sizes").
    let tags: Vec<u8> = state
        .items()
        .await
        .iter()
        .filter(|i| !i.contains_key(attr::RECORD))
        .filter_map(|i| i.get(attr::PACKED)?.as_b().ok()?.as_ref().first().copied())
        .collect();
    assert_eq!(
        tags.iter()
            .filter(|&&t| t == trailkeep_shared::history::PACKED_V1)
            .count(),
        2,
        "the adapter's copies are packed with the dictionary: {tags:?}"
    );
    assert_eq!(tags.len(), 3, "{tags:?}");

    for (bad, why) in [
        (
            (attr::PACKED, A::B(Blob::new(b"not deflate".to_vec()))),
            "does not unpack",
        ),
        (("x", A::S(old.json.clone())), "holds no record"),
    ] {
        put(bad).await.unwrap();
        let err = staging
            .staged("t", "eu-west-1", window, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("read staged event"), "{err}");
        assert!(
            err.contains(&pk) && err.contains(&sk),
            "names the item: {err}"
        );
        assert!(err.contains(why), "{err}");
    }
    state.delete().await;
}

/// A copy is found only in its window, under its own sort key
/// (the first-window lookup of a re-delivered copy, through DynamoDB).
#[tokio::test]
async fn a_copy_is_found_only_in_its_window_under_its_own_sort_key() {
    use trailkeep_shared::delivery::logfile::Staged;
    use trailkeep_shared::delivery::FirstSeen;
    let state = TestTable::state().await;
    let staging = DynamoStaging::new(state.client.clone(), &state.name);
    let at = parse_time("2026-11-24T03:01:00Z");
    let first = FirstSeen {
        window: window_of(&at),
        event_time: at - Duration::seconds(5),
    };
    let copy = Staged {
        event_time: first.event_time,
        event_id: "e1".into(),
        json: json!({"eventID": "e1"}).to_string(),
        first: Some(first.window),
    };
    staging
        .stage("t", "eu-west-1", first.window, &copy)
        .await
        .unwrap();
    let sk = trailkeep_shared::history::index_sk(&copy.event_time, "e1");
    let other_sk = trailkeep_shared::history::index_sk(&at, "e1");
    for (trail, window, sk, found) in [
        ("t", first.window, &sk, true),
        ("t", first.window + 1, &sk, false),
        ("t", first.window, &other_sk, false),
        ("u", first.window, &sk, false),
    ] {
        let got = staging.is_staged(trail, "eu-west-1", window, sk).await;
        assert_eq!(got.unwrap(), found, "{trail} {window} {sk}");
    }
    state.delete().await;
}

/// Batch items and what a window delivered, through DynamoDB: a batch
/// item reads back as its copies after the per-event copies, in one item
/// packed with the dictionary; what windows delivered is read back only
/// for windows before the one asking, however many items it takes; and a
/// batch item trailkeep did not write stops the read, naming it.
#[tokio::test]
async fn batch_items_and_delivered_copies_round_trip_through_dynamodb() {
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use trailkeep_shared::aws::history_table::attr;
    use trailkeep_shared::delivery::batch;
    use trailkeep_shared::delivery::logfile::Staged;
    let state = TestTable::state().await;
    let staging = DynamoStaging::new(state.client.clone(), &state.name).with_page_items(2);
    let at = parse_time("2026-11-24T03:01:00Z");
    let w = window_of(&at);
    let copy = |n: usize, first: Option<i64>| Staged {
        event_time: at + Duration::seconds(n as i64),
        event_id: format!("e{n}"),
        json: json!({"eventID": format!("e{n}"), "pad": "x".repeat(2_000)}).to_string(),
        first,
    };
    staging
        .stage("t", "eu-west-1", w, &copy(9, Some(w)))
        .await
        .unwrap();
    let contents = batch::contents((0..5).map(|n| copy(n, None)).collect());
    assert_eq!(contents.len(), 1);
    staging
        .stage_batch("t", "eu-west-1", w, &contents[0])
        .await
        .unwrap();
    // The same content again (a retried batch) is the same item.
    staging
        .stage_batch("t", "eu-west-1", w, &contents[0])
        .await
        .unwrap();
    let others = batch::contents(vec![copy(5, None)]);
    staging
        .stage_batch("t", "eu-west-1", w, &others[0])
        .await
        .unwrap();

    let (mut events, mut batches, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let page = staging
            .staged("t", "eu-west-1", w, after.as_deref())
            .await
            .unwrap();
        events.extend(page.events);
        batches.extend(page.batches);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(events, [copy(9, Some(w))]);
    assert_eq!(batches.len(), 2);
    let mut copies: Vec<Staged> = batches.iter().flat_map(|b| b.copies.clone()).collect();
    copies.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(copies, (0..6).map(|n| copy(n, None)).collect::<Vec<_>>());
    // Read from a batch position: only batch items, in order.
    let from = staging
        .staged("t", "eu-west-1", w, Some(batch::BEFORE_BATCHES))
        .await
        .unwrap();
    assert!(from.events.is_empty());
    assert_eq!(from.batches[0], batches[0]);
    // One item, packed: five records of 2 KB in well under 5 KB.
    let items = state.items().await;
    let packed: Vec<usize> = items
        .iter()
        .filter_map(|i| Some(i.get(attr::BATCH)?.as_b().ok()?.as_ref().len()))
        .collect();
    assert_eq!(packed.len(), 2, "{packed:?}");
    assert!(packed.iter().all(|&n| n < 1_000), "{packed:?}");

    // What windows delivered: 45,000 keys take three items.
    let keys: Vec<batch::CopyKey> = (0..45_000u32)
        .map(|i| {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&i.to_le_bytes());
            k
        })
        .collect();
    let expires = 4_102_444_800;
    staging
        .record_delivered_copies("t", "eu-west-1", w, w + 1, &keys, expires)
        .await
        .unwrap();
    staging
        .record_delivered_copies("t", "eu-west-1", w, w + 3, &keys[..1], expires)
        .await
        .unwrap();
    let read = |before: i64| staging.delivered_copies("t", "eu-west-1", w, before);
    assert_eq!(read(w + 1).await.unwrap().len(), 0);
    assert_eq!(read(w + 2).await.unwrap(), keys);
    assert_eq!(read(w + 4).await.unwrap().len(), 45_001);
    let sum_items = state
        .items()
        .await
        .iter()
        .filter(|i| i[attr::PK].as_s().is_ok_and(|pk| pk.starts_with("SUM#")))
        .count();
    assert_eq!(sum_items, 4);

    // A batch item or a delivered item trailkeep did not write.
    let put = |pk: String, sk: &str, name: &str, bytes: &[u8]| {
        state
            .client
            .put_item()
            .table_name(&state.name)
            .item(attr::PK, A::S(pk))
            .item(attr::SK, A::S(sk.into()))
            .item(name, A::B(Blob::new(bytes.to_vec())))
            .send()
    };
    put(
        format!("SUM#t#eu-west-1#{w}"),
        "000000000000#0",
        attr::DELIVERED,
        b"odd",
    )
    .await
    .unwrap();
    let err = read(w + 4).await.unwrap_err().to_string();
    assert!(err.contains("unreadable"), "{err}");
    // … or one holding no keys at all.
    put(format!("SUM#t#eu-west-1#{w}"), "000000000000#0", "x", b"-")
        .await
        .unwrap();
    let err = read(w + 4).await.unwrap_err().to_string();
    assert!(err.contains("unreadable"), "{err}");
    let sk = "B#ffffffffffffffffffffffffffffffff";
    put(
        format!("STG#t#eu-west-1#{w}"),
        sk,
        attr::BATCH,
        b"not packed",
    )
    .await
    .unwrap();
    // The bad item may be on a later page.
    let (mut err, mut after) = (None, Some(batch::BEFORE_BATCHES.to_owned()));
    while err.is_none() {
        let page = staging.staged("t", "eu-west-1", w, after.as_deref()).await;
        match page {
            Err(e) => err = Some(e),
            Ok(page) => after = Some(page.next.expect("the bad item is read")),
        }
    }
    let err = err.unwrap().to_string();
    assert!(err.contains(sk) && err.contains("unreadable"), "{err}");
    state.delete().await;
}
