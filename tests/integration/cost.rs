//! What one event costs, measured: every request each function makes for
//! management events and for data events (through the proxy, without
//! faults), with the DynamoDB capacity units and the bytes stored. The
//! request counts are checked against what the design says each function
//! does per event; the measurements go to `cost-model.json` (in cargo's
//! test scratch directory), from which `scripts/cost-model.py` prices them
//! (docs/cost.md).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::kms::{KeyMap, KmsSigner};
use trailkeep_shared::aws::s3::{self, S3Logs};
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::delivery::{DeliverSettings, Deliverer};
use trailkeep_shared::digest::{DigestSettings, Digester};
use trailkeep_shared::history::HistorySettings;
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::ingest::{ingest, Targets};
use trailkeep_shared::trail::{TrailCache, TrailStore};

use crate::delivery::ACCOUNT;
use crate::digests::kms_key;
use crate::faults::{ActionStats, Faults};
use crate::helpers::{parse_time, sdk_config, TestBucket, TestTable};
use crate::load::{log_everything, payload, Function};

const SERVED: [&str; 2] = ["eu-west-1", "us-east-1"];
/// Events of each kind: management events of load.rs's shapes 0–6 (regional
/// writes, reads, service events; IAM and console sign-in, global), data
/// events of shapes 7–9 (S3 notifications and EventBridge object events,
/// Lambda invocations).
const EVENTS: usize = 700;

fn count(stats: &BTreeMap<String, ActionStats>, action: &str) -> u64 {
    stats.get(action).map_or(0, |s| s.requests)
}

/// Bytes of every item of a table, as DynamoDB bills storage (attribute
/// names + values, numbers ~1 byte per two digits + 1, plus 100 bytes of
/// overhead per item), and the number of items.
async fn table_bytes(table: &TestTable) -> (usize, usize) {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let items = table.items().await;
    let bytes = items
        .iter()
        .map(|item| {
            100 + item
                .iter()
                .map(|(name, value)| {
                    name.len()
                        + match value {
                            A::S(s) => s.len(),
                            A::N(n) => n.len().div_ceil(2) + 1,
                            A::B(b) => b.as_ref().len(),
                            _ => 1,
                        }
                })
                .sum::<usize>()
        })
        .sum();
    (bytes, items.len())
}

/// Bytes of every log file in the bucket.
async fn log_bytes(bucket: &TestBucket) -> usize {
    bucket
        .objects()
        .await
        .iter()
        .filter(|(k, _)| k.contains("/CloudTrail/"))
        .map(|(_, b)| b.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_event_are_what_the_design_says_and_are_recorded_for_the_cost_model() {
    // GIVEN the stack's resources, a multi-region trail logging every
    // management and data event with validation, and each function's view
    // of AWS through a counting proxy without faults
    let history = TestTable::history().await;
    let state = TestTable::state().await;
    let bucket = TestBucket::new().await;
    let kms = aws_sdk_kms::Client::new(&sdk_config().await);
    let key_arn = kms_key(&kms).await;
    let admin = state.trails();
    let t0 = parse_time("2026-11-24T00:00:00Z");
    log_everything(&admin, "cost", &bucket.name, t0).await;
    let none = Faults::default();
    let (ingest_fn, deliver_fn, digest_fn) = (
        Function::with_faults(none, 1).await,
        Function::with_faults(none, 2).await,
        Function::with_faults(none, 3).await,
    );
    let settings = HistorySettings {
        retention_days: 90,
        shards: 1,
    };
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let signer = KmsSigner::new(&digest_fn.sdk, KeyMap::parse(&key_arn).unwrap());
    let digest_settings = DigestSettings {
        regions: SERVED.map(String::from).to_vec(),
        ..DigestSettings::default()
    };

    let mut report = serde_json::Map::new();
    for (kind, shapes, hour) in [("management", 0..7, 0), ("data", 7..10, 2)] {
        for f in [&ingest_fn, &deliver_fn, &digest_fn] {
            f.proxy.reset_stats();
        }
        // WHEN a fresh set of functions (new containers) ingests 700
        // events of the kind over 50 minutes, deliver runs every 5 minutes
        // and digest at ten past the next hour
        let ingest_history = DynamoHistory::new(ingest_fn.dynamodb(), &history.name);
        let ingest_staging = DynamoStaging::new(ingest_fn.dynamodb(), &state.name);
        let ingest_trails = TrailCache::new(
            DynamoTrails::new(ingest_fn.dynamodb(), &state.name),
            std::time::Duration::from_secs(3600),
        );
        let start = t0 + Duration::hours(hour);
        let bytes_before = (
            log_bytes(&bucket).await,
            table_bytes(&history).await,
            table_bytes(&state).await,
        );
        let ids: Vec<usize> = (0..)
            .filter(|i| shapes.contains(&(i % 10)))
            .take(EVENTS)
            .collect();
        let mut history_copies = 0;
        let mut staged_regions = std::collections::BTreeSet::new();
        for (n, &i) in ids.iter().enumerate() {
            let at: DateTime<Utc> = start + Duration::seconds(n as i64 * 3000 / EVENTS as i64);
            // `payload` dates event i at its base + i × 350 ms: the event
            // happens at `at`, when it is ingested.
            let text = payload(i, at - Duration::milliseconds(i as i64 * 350));
            // Where it goes: the load test's hand-written table.
            let (logged_in, visible_in) = crate::load::expected_route(i);
            history_copies += u64::from(!visible_in.is_empty());
            staged_regions.insert(logged_in.to_owned());
            let trails = ingest_trails.trails().await.unwrap();
            let targets = Targets {
                history: &ingest_history,
                settings: &settings,
                staging: &ingest_staging,
                trails: &trails,
            };
            ingest(&targets, &ctx, &text, &at).await.unwrap();
        }
        let staging = DynamoStaging::new(deliver_fn.dynamodb(), &state.name);
        let deliver_trails = DynamoTrails::new(deliver_fn.dynamodb(), &state.name);
        let logs = S3Logs::new(s3::client(&deliver_fn.sdk));
        let mut files = 0;
        for tick in 1..=14 {
            let now = start + Duration::minutes(5 * tick);
            let trails = deliver_trails.load().await.unwrap().trails;
            let settings = DeliverSettings::default();
            let deliverer = Deliverer {
                staging: &staging,
                logs: &logs,
                notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
                events: &trailkeep_shared::testkit::MemoryEventLog::default(),
                settings: &settings,
            };
            let r = deliverer.run(&trails, &now).await.into_result().unwrap();
            files += r.files as u64;
        }
        let digest_trails = DynamoTrails::new(digest_fn.dynamodb(), &state.name);
        let digest_state = DynamoStaging::new(digest_fn.dynamodb(), &state.name);
        let digest_bucket = S3Logs::new(s3::client(&digest_fn.sdk));
        let trails = digest_trails.load().await.unwrap().trails;
        let digester = Digester {
            state: &digest_state,
            signer: &signer,
            bucket: &digest_bucket,
            settings: &digest_settings,
        };
        let digest = digester
            .run(&trails, &(start + Duration::minutes(70)))
            .await
            .into_result()
            .unwrap();

        // THEN ingest wrote each event once per history region (a put and
        // one batch of index items) and staged it once, registering each
        // region once per container and reading the trails once
        let (i, d, g) = (
            ingest_fn.proxy.stats(),
            deliver_fn.proxy.stats(),
            digest_fn.proxy.stats(),
        );
        let n = EVENTS as u64;
        assert_eq!(
            count(&i, "dynamodb:PutItem"),
            history_copies + n,
            "{kind}: {i:?}"
        );
        assert_eq!(
            count(&i, "dynamodb:BatchWriteItem"),
            history_copies,
            "{kind}"
        );
        // (and noted each data event's first staging: one update each; a
        // management event's rides on its primary item's put)
        let notes = if kind == "data" { n } else { 0 };
        assert_eq!(
            count(&i, "dynamodb:UpdateItem"),
            staged_regions.len() as u64 + notes,
            "{kind}"
        );
        assert_eq!(
            i.get("dynamodb:UpdateItem").map_or(0.0, |s| s.write_units),
            (staged_regions.len() as u64 + notes) as f64,
            "{kind}: a first-staging note is one WRU"
        );
        assert_eq!(count(&i, "dynamodb:GetItem"), 1, "{kind}: the trails, once");
        assert_eq!(
            i.len(),
            3 + usize::from(history_copies > 0),
            "{kind}: {:?}",
            i.keys()
        );
        if kind == "data" {
            assert_eq!(history_copies, 0, "data events are not history");
        }
        // … deliver wrote each file and its manifest entry once, and no
        // claim (every copy was its event's first staging); digest re-read
        // each file and signed and wrote one digest per region
        assert!(files > 0);
        assert_eq!(count(&d, "dynamodb:PutItem"), files, "{kind}: manifest");
        assert_eq!(count(&d, "s3:PutObject"), files, "{kind}");
        assert_eq!(
            digest.log_files as u64, files,
            "{kind}: every file in the digest"
        );
        assert_eq!(count(&g, "s3:GetObject"), files, "{kind}");
        assert_eq!(count(&g, "kms:Sign"), digest.digests as u64, "{kind}");
        assert_eq!(count(&g, "s3:PutObject"), digest.digests as u64, "{kind}");

        // The bytes stored: this phase's log files as gzipped in S3.
        let gz_bytes = log_bytes(&bucket).await - bytes_before.0;
        // … and the items: the history's for the retention period, the
        // state table's (staged copies, delivery markers, manifest) for a week.
        let (history_after, history_items_after) = table_bytes(&history).await;
        let history_bytes = history_after - bytes_before.1 .0;
        let history_items = history_items_after - bytes_before.1 .1;
        let state_bytes = table_bytes(&state).await.0 - bytes_before.2 .0;
        if kind == "data" {
            assert_eq!(history_bytes, 0);
        }
        // … the record once per history copy and once per staged copy,
        // packed: one write unit each (this mix's records are under 2 KB of
        // JSON), and index items of keys alone: one write unit each
        assert_eq!(
            i.get("dynamodb:PutItem").map_or(0.0, |s| s.write_units),
            (history_copies + n) as f64,
            "{kind}: a packed record is one WRU"
        );
        let index_items = history_items as u64 - history_copies;
        assert_eq!(
            i.get("dynamodb:BatchWriteItem")
                .map_or(0.0, |s| s.write_units),
            index_items as f64,
            "{kind}: an index item is one WRU"
        );
        // (an index item: ~150 bytes of keys and TTL + 100 of overhead; a
        // primary item: the packed 0.3–0.9 KB record + keys + overhead)
        assert!(
            history_bytes as u64 <= 300 * index_items + 1200 * history_copies,
            "{kind}: {history_bytes} bytes for {history_copies} copies, {index_items} index items"
        );
        report.insert(
            kind.into(),
            json!({
                "events": EVENTS,
                "historyCopies": history_copies,
                "logFiles": files,
                "digests": digest.digests,
                "logBytesGzipped": gz_bytes,
                "historyItemBytes": history_bytes,
                "historyItems": history_items,
                "stateItemBytes": state_bytes,
                "ingest": i,
                "deliver": d,
                "digest": g,
            }),
        );
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cost-model.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    eprintln!("cost model measurements: {}", path.display());

    let _ = kms.schedule_key_deletion().key_id(&key_arn).send().await;
    history.delete().await;
    state.delete().await;
}
