//! The digest run at organization scale against a local endpoint (moto):
//! one organization trail, `accounts` accounts × `regions` regions, each
//! chain one hour after its last digest. A share of the chains had events
//! in the hour (each account works in a few regions: `active` of them, 12
//! files each, one per delivery window); the others are empty hours, which
//! CloudTrail signs too.
//!
//! The setup (staging, one deliver run, the chain heads) goes straight to
//! the endpoint; the measured digest runs may go through another one,
//! `measure_endpoint` (scripts/bench.sh: a loopback proxy adding a fixed
//! delay to every request, as AWS's round trips would). The same hour is
//! signed twice: once `chains` chains at once, then one chain at a time,
//! the heads put back between the runs.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use trailkeep_shared::aws::kms::{KeyMap, KmsSigner};
use trailkeep_shared::aws::s3::S3Logs;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::delivery::logfile::Staged;
use trailkeep_shared::delivery::{window_of, DeliverSettings, Deliverer, StagingStore};
use trailkeep_shared::digest::{ChainHead, DigestSettings, DigestState, Digester};
use trailkeep_shared::testkit::{trail, MemoryEventLog, MemoryNotifier, ACCOUNT};
use trailkeep_shared::trail::{Place, Trail};

use crate::bench_lookup::{event, failed, BenchError};
use crate::provision::{create_key, create_table, KeySpec, Template};

const ORG: &str = "o-a1b2c3d4e5";

/// Every commercial region a CloudTrail trail logs by default (17 of them
/// had been enabled by default in an account).
const REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
];

/// What the benchmark asks for.
#[derive(Clone, Debug)]
pub struct DigestBench {
    pub accounts: usize,
    pub regions: usize,
    /// Regions of each account with events in the hour.
    pub active: usize,
    /// Chains extended at once in the first run (`CHAIN_CONCURRENCY`).
    pub chains: usize,
}

/// What one digest run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestRun {
    pub chains_at_once: usize,
    pub seconds: f64,
    pub digests: usize,
    pub log_files: usize,
}

/// Both runs over the same hour.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestTimes {
    pub accounts: usize,
    pub regions: usize,
    pub chains: usize,
    /// Chains with files in the hour (the rest are empty hours).
    pub active_chains: usize,
    pub concurrent: DigestRun,
    pub one_at_a_time: DigestRun,
}

/// Runs the benchmark on a fresh table, bucket and key named after
/// `prefix`; the table is deleted after (moto's buckets and keys go with
/// the server).
pub async fn run(
    aws: &aws_config::SdkConfig,
    measure: &aws_config::SdkConfig,
    template: &str,
    prefix: &str,
    bench: &DigestBench,
) -> Result<DigestTimes, BenchError> {
    if bench.accounts == 0 || !(1..=REGIONS.len()).contains(&bench.regions) {
        return Err(failed(format!(
            "--accounts must be at least 1 and --regions 1 to {}",
            REGIONS.len()
        )));
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(aws);
    let table = format!("{prefix}-state");
    create_table(
        &dynamodb,
        &table,
        &Template::load(template)?.table("StateTable")?,
    )
    .await?;
    let result = measure_runs(aws, measure, &dynamodb, &table, prefix, bench).await;
    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    result
}

/// Account `a` of the organization: the stack's own first.
fn account(a: usize) -> String {
    if a == 0 {
        ACCOUNT.to_owned()
    } else {
        format!("{:012}", 200_000_000_000 + a)
    }
}

async fn measure_runs(
    aws: &aws_config::SdkConfig,
    measure: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    bucket: &str,
    bench: &DigestBench,
) -> Result<DigestTimes, BenchError> {
    let s3 = trailkeep_shared::aws::s3::client(aws);
    let location = aws.region().filter(|r| r.as_ref() != "us-east-1").map(|r| {
        aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(r.as_ref().into())
            .build()
    });
    s3.create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(location)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    let key = create_key(
        &aws_sdk_kms::Client::new(aws),
        &KeySpec {
            key_spec: "RSA_2048".into(),
            key_usage: "SIGN_VERIFY".into(),
        },
    )
    .await?;
    let hour = trailkeep_shared::time::parse("2026-11-24T01:00:00Z").map_err(failed)?;
    let mut org = trail("bench", hour - Duration::days(1));
    org.s3_bucket_name = bucket.to_owned();
    org.organization_id = Some(ORG.into());
    let regions = &REGIONS[..bench.regions];
    let chains: Vec<(String, bool)> = (0..bench.accounts)
        .flat_map(|a| {
            regions.iter().enumerate().map(move |(r, region)| {
                let place = Place {
                    org: Some(ORG),
                    account: &account(a),
                    region,
                }
                .chain();
                // Each account works in `active` regions, spread over the list.
                (place, (r + a) % bench.regions < bench.active)
            })
        })
        .collect();
    let staging = DynamoStaging::new(dynamodb.clone(), table);
    stage_hour(&staging, &org, &chains, hour).await?;
    // Deliver the hour's windows (and move every chain's cursor past it).
    let logs = S3Logs::new(s3);
    let deliverer = Deliverer {
        staging: &staging,
        logs: &logs,
        notifier: &MemoryNotifier::default(),
        events: &MemoryEventLog::default(),
        settings: &DeliverSettings::default(),
    };
    let trails = [org];
    let delivered = deliverer
        .run(&trails, &(hour + Duration::minutes(65)))
        .await
        .into_result()
        .map_err(failed)?;
    let active_chains = chains.iter().filter(|(_, active)| *active).count();
    if delivered.files != active_chains * 12 {
        return Err(failed(format!(
            "expected {} log files delivered, got {delivered:?}",
            active_chains * 12
        )));
    }
    // Every chain's head at the hour before: the runs sign the hour ending
    // at 02:00 on each.
    let head = |end: DateTime<Utc>| ChainHead {
        end,
        bucket: bucket.to_owned(),
        key: format!("AWSLogs/{ORG}/previous.json.gz"),
        sha256: "0".repeat(64),
        signature: "0".repeat(512),
        last: false,
    };
    let set_heads = |expected: Option<DateTime<Utc>>| {
        let (staging, trails, head) = (&staging, &trails, &head);
        futures::stream::iter(&chains)
            .map(move |(chain, _)| async move {
                staging
                    .advance_head(&trails[0].name, chain, expected.as_ref(), &head(hour))
                    .await
            })
            .buffer_unordered(16)
            .try_collect::<Vec<bool>>()
    };
    set_heads(None).await.map_err(failed)?;

    let keys = KeyMap::parse(&key).map_err(failed)?;
    let signer = KmsSigner::new(measure, keys);
    let measured_state = DynamoStaging::new(aws_sdk_dynamodb::Client::new(measure), table);
    let measured_logs = S3Logs::new(trailkeep_shared::aws::s3::client(measure));
    let now = hour + Duration::minutes(70);
    let mut runs = Vec::new();
    for at_once in [bench.chains, 1] {
        let settings = DigestSettings {
            regions: regions.iter().map(|r| r.to_string()).collect(),
            chains: at_once,
            ..DigestSettings::default()
        };
        let digester = Digester {
            state: &measured_state,
            signer: &signer,
            bucket: &measured_logs,
            settings: &settings,
        };
        let began = Instant::now();
        let report = digester.run(&trails, &now).await;
        let seconds = began.elapsed().as_secs_f64();
        let report = report.into_result().map_err(failed)?;
        if report.digests != chains.len() || report.log_files != delivered.files {
            return Err(failed(format!(
                "expected {} digests listing {} files, got {report:?}",
                chains.len(),
                delivered.files
            )));
        }
        runs.push(DigestRun {
            chains_at_once: at_once,
            seconds,
            digests: report.digests,
            log_files: report.log_files,
        });
        // Put the heads back for the next run (the digests it writes are
        // the same objects, byte for byte).
        set_heads(Some(hour + Duration::hours(1)))
            .await
            .map_err(failed)?;
    }
    let one_at_a_time = runs.pop().ok_or_else(|| failed("no run"))?;
    let concurrent = runs.pop().ok_or_else(|| failed("no run"))?;
    Ok(DigestTimes {
        accounts: bench.accounts,
        regions: bench.regions,
        chains: chains.len(),
        active_chains,
        concurrent,
        one_at_a_time,
    })
}

/// Registers every chain from the first window delivered in the hour, as
/// ingest would have, and stages one event in each window the hour
/// delivers, in each active chain.
async fn stage_hour(
    staging: &DynamoStaging,
    org: &Trail,
    chains: &[(String, bool)],
    hour: DateTime<Utc>,
) -> Result<(), BenchError> {
    // The windows delivered in the hour: 00:55 (delivered at 01:02) to
    // 01:50 (01:57).
    let start = hour - Duration::minutes(5);
    let first = window_of(&start);
    let work: Vec<(&str, Option<i64>)> = chains
        .iter()
        .flat_map(|(chain, active)| {
            let staged = (0..12).filter(move |_| *active).map(|w| Some(first + w));
            std::iter::once((chain.as_str(), None)).chain(staged.map(move |w| (chain.as_str(), w)))
        })
        .collect();
    futures::stream::iter(work.into_iter().enumerate())
        .map(|(i, (chain, window))| async move {
            let Some(w) = window else {
                return staging.register(&org.name, chain, first).await;
            };
            let e = event(i, start + Duration::minutes(5 * (w - first)));
            let staged = Staged {
                event_time: e.record.event_time,
                event_id: e.record.event_id,
                json: e.json,
                first: Some(w),
            };
            staging.stage(&org.name, chain, w, &staged).await
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
        .map_err(failed)
}
