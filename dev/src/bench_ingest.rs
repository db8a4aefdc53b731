//! Ingest's time per event against a local endpoint (moto), at a number of
//! concurrent invocations: each invocation ingests one batch of `--batch`
//! EventBridge messages (default 100, as BENCHMARKS.md's ingest rows were
//! measured; the template's `IngestBatchSize` defaults to 500) as
//! the ingest function does (all messages of a
//! batch at once: `ingest::queue::ingest_all`; the queue's receipt check,
//! one SQS call per batch, is left out), into fresh history and state
//! tables created from template.yaml, with one trail logging every
//! management event, so each event is recorded (primary item, index items)
//! and staged.
//!
//! It reports the wall time per invocation (what Lambda bills, divided by
//! the batch's events) and this process's CPU time per event (the part
//! that is trailkeep's own, whatever the endpoint's speed). moto serves one
//! request at a time, so at 20 invocations the wall time per invocation is
//! mostly waiting for moto; the CPU per event says whether trailkeep's own
//! work grows with concurrency (docs/cost.md "Scaling").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Duration;
use serde::Serialize;
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::history::HistorySettings;
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::ingest::queue::{ingest_all, Message};
use trailkeep_shared::ingest::Targets;
use trailkeep_shared::trail::admin::{self, NewTrail, TrailStore};

use crate::bench_lookup::{event, failed, BenchError};
use crate::provision::{create_table, Template};

const ACCOUNT: &str = "111122223333";
const HOME: &str = "eu-west-1";
/// What one run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestTimes {
    pub concurrency: usize,
    /// Messages per invocation.
    pub batch: usize,
    pub events: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Median and 95th percentile wall time of one invocation (a batch).
    pub invocation_median_ms: f64,
    pub invocation_p95_ms: f64,
    /// The median invocation's time per event.
    pub per_event_ms: f64,
    /// This process's CPU time (user + system) per event.
    pub cpu_per_event_ms: f64,
}

/// This process's CPU time so far, in seconds (Linux: /proc/self/stat).
pub(crate) fn cpu_seconds() -> Result<f64, BenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(failed)?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, BenchError> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| failed("unreadable /proc/self/stat"))
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here;
    // clock ticks of 1/100 s on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Runs the benchmark on fresh tables named after `prefix`, then deletes them.
pub async fn run(
    aws: &aws_config::SdkConfig,
    template: &str,
    prefix: &str,
    events: usize,
    batch: usize,
    concurrency: usize,
) -> Result<IngestTimes, BenchError> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    let template = Template::load(template)?;
    let (history_table, state_table) = (format!("{prefix}-history"), format!("{prefix}-state"));
    create_table(&client, &history_table, &template.table("HistoryTable")?).await?;
    create_table(&client, &state_table, &template.table("StateTable")?).await?;
    let result = measure(
        &client,
        &history_table,
        &state_table,
        events,
        batch,
        concurrency,
    )
    .await;
    for t in [&history_table, &state_table] {
        client
            .delete_table()
            .table_name(t)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    result
}

async fn measure(
    client: &aws_sdk_dynamodb::Client,
    history_table: &str,
    state_table: &str,
    events: usize,
    batch: usize,
    concurrency: usize,
) -> Result<IngestTimes, BenchError> {
    if events == 0 || batch == 0 {
        return Err(failed("--events and --batch must be at least 1"));
    }
    let start = trailkeep_shared::time::parse("2026-11-24T01:00:00Z").map_err(failed)?;
    let trails = DynamoTrails::new(client.clone(), state_table);
    let new = NewTrail {
        name: "bench".into(),
        s3_bucket_name: "bench-bucket".into(),
        is_multi_region_trail: true,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        ..NewTrail::default()
    };
    admin::create(&trails, ACCOUNT, HOME, new)
        .await
        .map_err(failed)?;
    admin::set_logging(&trails, "bench", true, start)
        .await
        .map_err(failed)?;
    let loaded = trails.load().await.map_err(failed)?.trails;
    let history = DynamoHistory::new(client.clone(), history_table);
    let staging = DynamoStaging::new(client.clone(), state_table);
    let settings = HistorySettings {
        retention_days: 90,
        shards: 1,
    };
    let targets = Targets {
        history: &history,
        settings: &settings,
        staging: &staging,
        trails: &loaded,
        organization: false,
    };
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    // Event i happens 7 s after event i - 1; all are ingested after the last.
    let now = start + Duration::seconds(events as i64 * 7 + 60);
    let payloads: Vec<String> = (0..events)
        .map(|i| envelope(&event(i, start).json))
        .collect::<Result<_, _>>()?;
    let messages: Vec<Message> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, body)| Message {
            id: format!("bench-{i}"),
            receipt_handle: String::new(),
            body,
        })
        .collect();
    let batches: Vec<&[Message]> = messages.chunks(batch).collect();
    let next = AtomicUsize::new(0);
    let cpu_before = cpu_seconds()?;
    let began = Instant::now();
    let invocation = || async {
        let mut times = Vec::new();
        while let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
            let batch: Vec<&Message> = batch.iter().collect();
            let t = Instant::now();
            for outcome in ingest_all(&targets, &ctx, &batch, &now).await {
                let report = outcome.map_err(failed)?;
                if report.stored != 1 || report.staged != 1 {
                    return Err(failed(format!(
                        "an event was not stored and staged: {report:?}"
                    )));
                }
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok::<_, BenchError>(times)
    };
    let runs = futures::future::try_join_all((0..concurrency.max(1)).map(|_| invocation())).await?;
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    let mut times: Vec<f64> = runs.into_iter().flatten().collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(IngestTimes {
        concurrency,
        batch,
        events,
        seconds,
        events_per_second: events as f64 / seconds,
        invocation_median_ms: median,
        invocation_p95_ms: times[(times.len() * 95 / 100).min(times.len() - 1)],
        per_event_ms: median / batch.min(events) as f64,
        cpu_per_event_ms: cpu * 1000.0 / events as f64,
    })
}

/// The EventBridge message of a CloudTrail record, as the default bus
/// hands an `AWS API Call via CloudTrail` event to the ingest queue.
fn envelope(record: &str) -> Result<String, BenchError> {
    let detail: serde_json::Value = serde_json::from_str(record).map_err(failed)?;
    let source = detail["eventSource"]
        .as_str()
        .and_then(|s| s.strip_suffix(".amazonaws.com"))
        .unwrap_or("ec2");
    Ok(serde_json::json!({
        "version": "0",
        "id": format!("{}-e", detail["eventID"].as_str().unwrap_or_default()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{source}"),
        "account": ACCOUNT,
        "time": detail["eventTime"],
        "region": detail["awsRegion"],
        "resources": [],
        "detail": detail,
    })
    .to_string())
}
