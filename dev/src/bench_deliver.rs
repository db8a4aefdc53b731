//! Deliver's throughput and memory against a local endpoint (moto): one
//! delivery window of N staged ~1.6 KB management events (a scaled-down
//! 5-minute window of a busy region), delivered by one deliver run through
//! the DynamoDB and S3 adapters into a fresh state table (created from
//! template.yaml) and bucket.
//!
//! It reports the run's wall time and events per second, this process's
//! CPU time per event, and the peak resident memory of the run alone (the
//! high-water mark is reset after staging). moto serves one request at a
//! time, so the wall time is mostly moto's; the CPU per event and the peak
//! memory are deliver's own, and the memory staying flat from a small
//! window to a large one is what streaming means (docs/delivery.md).

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use trailkeep_shared::aws::s3::S3Logs;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::delivery::logfile::Staged;
use trailkeep_shared::delivery::{window_of, DeliverSettings, Deliverer, StagingStore};
use trailkeep_shared::testkit::{trail, MemoryEventLog, MemoryNotifier};

use crate::bench_ingest::cpu_seconds;
use crate::bench_lookup::{event, failed, BenchError};
use crate::provision::{create_table, Template};

const REGION: &str = "eu-west-1";

/// What one run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverTimes {
    pub events: usize,
    pub files: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    /// This process's CPU time (user + system) per event delivered.
    pub cpu_per_event_ms: f64,
    /// Peak resident memory during the run, in MiB.
    pub peak_mib: f64,
}

/// The process's resident memory high-water mark (VmHWM), in KiB.
fn peak_kib() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(failed)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| failed("no VmHWM in /proc/self/status"))
}

/// Runs the benchmark on a fresh table and bucket named after `prefix`;
/// the table is deleted after (moto's buckets go with the server).
pub async fn run(
    aws: &aws_config::SdkConfig,
    template: &str,
    prefix: &str,
    events: usize,
) -> Result<DeliverTimes, BenchError> {
    if events == 0 {
        return Err(failed("--events must be at least 1"));
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(aws);
    let table = format!("{prefix}-state");
    create_table(
        &dynamodb,
        &table,
        &Template::load(template)?.table("StateTable")?,
    )
    .await?;
    let result = measure(aws, &dynamodb, &table, prefix, events).await;
    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    result
}

async fn measure(
    aws: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    bucket: &str,
    events: usize,
) -> Result<DeliverTimes, BenchError> {
    let s3 = trailkeep_shared::aws::s3::client(aws);
    let region = aws.region().map(|r| r.as_ref().to_owned());
    let location = region.filter(|r| r != "us-east-1").map(|r| {
        aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                r.as_str(),
            ))
            .build()
    });
    s3.create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(location)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    let start = trailkeep_shared::time::parse("2026-11-24T01:00:00Z").map_err(failed)?;
    let mut audit = trail("bench", start);
    audit.s3_bucket_name = bucket.to_owned();
    let staging = DynamoStaging::new(dynamodb.clone(), table);
    // Every event staged in the window of 01:00, as ingest would have.
    let w = window_of(&start);
    staging
        .register(&audit.name, REGION, w)
        .await
        .map_err(failed)?;
    futures::stream::iter(0..events)
        .map(|i| {
            let e = event(i, start);
            let staged = Staged {
                event_time: e.record.event_time,
                event_id: e.record.event_id,
                json: e.json,
                // Each event's first staging, as most are.
                first: Some(w),
            };
            let staging = &staging;
            let name = &audit.name;
            async move { staging.stage(name, REGION, w, &staged).await }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
        .map_err(failed)?;
    let logs = S3Logs::new(s3);
    let (notifier, sent) = (MemoryNotifier::default(), MemoryEventLog::default());
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: &staging,
        logs: &logs,
        notifier: &notifier,
        events: &sent,
        settings: &settings,
    };
    let trails = [audit];
    // The memory high-water mark from here on (Linux: writing 5 to
    // clear_refs resets VmHWM to the current resident size).
    std::fs::write("/proc/self/clear_refs", "5").map_err(failed)?;
    let cpu_before = cpu_seconds()?;
    let began = Instant::now();
    let now = start + chrono::Duration::minutes(10);
    let report = deliverer.run(&trails, &now).await;
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    let peak = peak_kib()?;
    if !report.failed.is_empty() || report.records != events {
        return Err(failed(format!(
            "deliver did not deliver every event: {report:?}"
        )));
    }
    Ok(DeliverTimes {
        events,
        files: report.files,
        seconds,
        events_per_second: events as f64 / seconds,
        cpu_per_event_ms: cpu * 1000.0 / events as f64,
        peak_mib: peak as f64 / 1024.0,
    })
}
