//! `trailkeep-dev`: the local run's and the benchmarks' helpers. They
//! refuse to run against anything but a loopback endpoint, so they can never
//! touch a real account.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use clap::{Parser, Subcommand};
use trailkeep_dev::provision::{self, Template};
use trailkeep_shared::aws::history_table::{attr, record_of};
use trailkeep_shared::history::{GLOBAL, PRIMARY_SK};
use trailkeep_shared::model::Record;

#[derive(Parser)]
#[command(
    name = "trailkeep-dev",
    about = "trailkeep development tooling (local endpoints only)"
)]
struct Cli {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Subcommand)]
enum DevCommand {
    /// Create the stack's tables, log bucket and signing key from
    /// template.yaml on the local endpoint and write the stack outputs
    /// (template.yaml's Output names) as JSON: every output the template
    /// always has must be there, from what was created here or from `--set`.
    Provision {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        /// Prefix of the created resources' names.
        #[arg(long, default_value = "trailkeep-local")]
        stack_name: String,
        /// Where to write the outputs JSON.
        #[arg(long)]
        outputs: String,
        /// An output the caller made itself (a queue, the local function URL): NAME=VALUE.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// List the log files in a bucket: key and number of records.
    ShowLogs {
        #[arg(long)]
        bucket: String,
        /// Fail unless the files hold exactly this many records (used by the scripts).
        #[arg(long)]
        expect_records: Option<usize>,
    },
    /// Generate a bucket-shaped local copy of log and digest files (signed
    /// by a new KMS key on the local endpoint) for the validation benchmark;
    /// prints what it made as JSON.
    MakeCopy {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 24)]
        hours: i64,
        #[arg(long, default_value_t = 90)]
        files_per_hour: i64,
        /// Records per log file (~1 KB each).
        #[arg(long, default_value_t = 500)]
        records: u64,
    },
    /// Time LookupEvents pages on fresh history tables (created from the
    /// template, deleted after): today's layout against the layout before;
    /// prints the medians as JSON.
    BenchLookup {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Pages timed per lookup and layout.
        #[arg(long, default_value_t = 40)]
        pages: usize,
    },
    /// Time one deliver run over a window of N staged events on a fresh
    /// state table and bucket; prints the times and peak memory as JSON.
    BenchDeliver {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        #[arg(long, default_value_t = 10000)]
        events: usize,
    },
    /// Time the digest run of an organization trail, ACCOUNTS × REGIONS
    /// chains (ACTIVE regions of each account with files in the hour), at
    /// CHAINS chains at once and at one, on a fresh state table, bucket
    /// and key; prints the times as JSON.
    BenchDigest {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        #[arg(long, default_value_t = 50)]
        accounts: usize,
        #[arg(long, default_value_t = 17)]
        regions: usize,
        #[arg(long, default_value_t = 3)]
        active: usize,
        #[arg(long, default_value_t = 16)]
        chains: usize,
        /// The endpoint the timed runs call (a local delay proxy in front
        /// of AWS_ENDPOINT_URL); default: AWS_ENDPOINT_URL.
        #[arg(long)]
        measure_endpoint: Option<String>,
    },
    /// Time ingest on fresh history and state tables (created from the
    /// template, deleted after), `concurrency` invocations at once, each a
    /// batch of 10 events; prints the times as JSON.
    BenchIngest {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Messages per invocation (the ingest rows of BENCHMARKS.md were
        /// measured in batches of 100; template.yaml's `IngestBatchSize`
        /// defaults to 500).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// Print the events stored in the history, one line each, oldest first.
    ShowHistory {
        #[arg(long, env = "HISTORY_TABLE")]
        table: String,
        /// Only this region's history (its own events and the global ones).
        #[arg(long)]
        region: Option<String>,
        /// Fail unless exactly this many events are stored (used by the scripts).
        #[arg(long)]
        expect: Option<usize>,
    },
}

#[derive(Debug, thiserror::Error)]
enum DevError {
    #[error("AWS_ENDPOINT_URL must point at a local endpoint (127.0.0.1 or localhost), got {0:?}")]
    NotLocal(Option<String>),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("expected {expected} events in the history, found {found}")]
    Count { expected: usize, found: usize },
    #[error("expected {expected} records in the log files, found {found}")]
    Records { expected: usize, found: usize },
    #[error("{key} is not a gzipped CloudTrail log file: {reason}")]
    BadLog { key: String, reason: String },
}

/// The SDK configuration, loaded once, after checking that the endpoint is local.
async fn local_config() -> Result<aws_config::SdkConfig, DevError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    if !endpoint.as_deref().is_some_and(is_local) {
        return Err(DevError::NotLocal(endpoint));
    }
    Ok(trailkeep_shared::aws::sdk_config().await)
}

fn is_local(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match local_config().await {
        Err(e) => Err(e),
        Ok(aws) => match cli.command {
            DevCommand::Provision {
                template,
                stack_name,
                outputs,
                set,
            } => provision(&aws, &template, &stack_name, &outputs, &set).await,
            DevCommand::ShowLogs {
                bucket,
                expect_records,
            } => show_logs(&aws, &bucket, expect_records).await,
            DevCommand::MakeCopy {
                dir,
                hours,
                files_per_hour,
                records,
            } => make_copy(&aws, &dir, hours, files_per_hour, records).await,
            DevCommand::BenchLookup {
                template,
                events,
                pages,
            } => {
                let prefix = format!("bench-lookup-{}", std::process::id());
                let run = trailkeep_dev::bench_lookup::run(&aws, &template, &prefix, events, pages);
                print_bench("bench-lookup", run.await)
            }
            DevCommand::BenchDeliver { template, events } => {
                let prefix = format!("bench-deliver-{}", std::process::id());
                let run = trailkeep_dev::bench_deliver::run(&aws, &template, &prefix, events);
                print_bench("bench-deliver", run.await)
            }
            DevCommand::BenchDigest {
                template,
                accounts,
                regions,
                active,
                chains,
                measure_endpoint,
            } => match measure_endpoint {
                Some(e) if !is_local(&e) => Err(DevError::NotLocal(Some(e))),
                endpoint => {
                    // Set on the loader, the endpoint is the client's own
                    // and wins over AWS_ENDPOINT_URL (set on a built
                    // SdkConfig, the environment's would win).
                    let measure = match endpoint {
                        Some(e) => {
                            let loader = trailkeep_shared::aws::sdk_config_loader();
                            loader.endpoint_url(e).load().await
                        }
                        None => aws.clone(),
                    };
                    let prefix = format!("bench-digest-{}", std::process::id());
                    let bench = trailkeep_dev::bench_digest::DigestBench {
                        accounts,
                        regions,
                        active,
                        chains,
                    };
                    let run = trailkeep_dev::bench_digest::run(
                        &aws, &measure, &template, &prefix, &bench,
                    );
                    print_bench("bench-digest", run.await)
                }
            },
            DevCommand::BenchIngest {
                template,
                events,
                batch,
                concurrency,
            } => {
                let prefix = format!("bench-ingest-{}", std::process::id());
                let run = trailkeep_dev::bench_ingest::run(
                    &aws,
                    &template,
                    &prefix,
                    events,
                    batch,
                    concurrency,
                );
                print_bench("bench-ingest", run.await)
            }
            DevCommand::ShowHistory {
                table,
                region,
                expect,
            } => show_history(&aws, &table, region.as_deref(), expect).await,
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trailkeep-dev: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn provision(
    aws: &aws_config::SdkConfig,
    template: &str,
    stack_name: &str,
    outputs: &str,
    set: &[String],
) -> Result<(), DevError> {
    let template = Template::load(template)?;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let known = template.outputs();
    for pair in set {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            provision::ProvisionError::Outputs(format!("--set {pair:?}: expected NAME=VALUE"))
        })?;
        if !known.iter().any(|(n, _)| n == name) {
            return Err(provision::ProvisionError::Outputs(format!(
                "--set {name}: template.yaml has no such output"
            ))
            .into());
        }
        out.insert(name.to_owned(), value.to_owned());
    }
    // What this command creates; every other output the template
    // always has must come from --set.
    const CREATED: [&str; 4] = [
        "HistoryTableName",
        "StateTableName",
        "LogBucketName",
        "SigningKeyArn",
    ];
    let missing: Vec<&str> = known
        .iter()
        .filter(|(name, condition)| {
            condition.is_none() && !out.contains_key(name) && !CREATED.contains(&name.as_str())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(provision::ProvisionError::Outputs(format!(
            "no local value for {} (pass --set NAME=VALUE)",
            missing.join(", ")
        ))
        .into());
    }
    for (logical_id, output) in [
        ("HistoryTable", "HistoryTableName"),
        ("StateTable", "StateTableName"),
    ] {
        let table = format!("{stack_name}-{logical_id}");
        provision::create_table(
            &aws_sdk_dynamodb::Client::new(aws),
            &table,
            &template.table(logical_id)?,
        )
        .await?;
        eprintln!("created table {table} (from template.yaml {logical_id})");
        out.insert(output.into(), table);
    }
    let bucket = format!("{stack_name}-logbucket").to_lowercase();
    let s3 = trailkeep_shared::aws::s3::client(aws);
    provision::create_bucket(&s3, &bucket, &template.bucket("LogBucket")?).await?;
    eprintln!("created bucket {bucket} (from template.yaml LogBucket)");
    out.insert("LogBucketName".into(), bucket);
    let kms = aws_sdk_kms::Client::new(aws);
    let key = provision::create_key(&kms, &template.key("SigningKey")?).await?;
    eprintln!("created signing key {key} (from template.yaml SigningKey)");
    out.insert("SigningKeyArn".into(), key);
    let json = serde_json::to_string_pretty(&out).unwrap_or_default();
    std::fs::write(outputs, json + "\n").map_err(|source| DevError::Write {
        path: outputs.to_owned(),
        source,
    })?;
    Ok(())
}

async fn show_logs(
    aws: &aws_config::SdkConfig,
    bucket: &str,
    expect_records: Option<usize>,
) -> Result<(), DevError> {
    let s3 = trailkeep_shared::aws::s3::client(aws);
    let fail = |operation: &'static str, e: &dyn std::fmt::Display| DevError::Aws {
        operation,
        message: e.to_string(),
    };
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut total = 0;
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| fail("ListObjectsV2", &aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            let got = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| fail("GetObject", &aws_sdk_s3::error::DisplayErrorContext(&e)))?;
            let gz = got
                .body
                .collect()
                .await
                .map_err(|e| fail("GetObject", &e))?
                .into_bytes();
            let bad = |reason: String| DevError::BadLog {
                key: key.to_owned(),
                reason,
            };
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw)
                .map_err(|e| bad(e.to_string()))?;
            let doc: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
            let records = doc["Records"]
                .as_array()
                .map(Vec::len)
                .ok_or_else(|| bad("no Records array".into()))?;
            total += records;
            println!("s3://{bucket}/{key}  {records} records");
        }
    }
    println!("{total} records in log files");
    match expect_records {
        Some(expected) if expected != total => Err(DevError::Records {
            expected,
            found: total,
        }),
        _ => Ok(()),
    }
}

async fn make_copy(
    aws: &aws_config::SdkConfig,
    dir: &std::path::Path,
    hours: i64,
    files_per_hour: i64,
    records: u64,
) -> Result<(), DevError> {
    let made = trailkeep_dev::make_copy::make_copy(aws, dir, hours, files_per_hour, records)
        .await
        .map_err(|e| DevError::Aws {
            operation: "make-copy",
            message: e.to_string(),
        })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&made).unwrap_or_default()
    );
    Ok(())
}

async fn show_history(
    aws: &aws_config::SdkConfig,
    table: &str,
    region: Option<&str>,
    expect: Option<usize>,
) -> Result<(), DevError> {
    let mut events = Vec::new();
    let mut pages = aws_sdk_dynamodb::Client::new(aws)
        .scan()
        .table_name(table)
        .filter_expression("#sk = :primary")
        .expression_attribute_names("#sk", attr::SK)
        .expression_attribute_values(":primary", AttributeValue::S(PRIMARY_SK.into()))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| DevError::Aws {
            operation: "Scan",
            message: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        })?;
        let pk = item
            .get(attr::PK)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        // A region's history shows its own events and the global ones.
        let history_region = pk.split('#').next().unwrap_or_default().to_owned();
        if region.is_some_and(|r| r != history_region && history_region != GLOBAL) {
            continue;
        }
        let record = record_of(&item).map(|json| json.map(|j| serde_json::from_str::<Record>(&j)));
        let record = match record {
            Ok(Some(Ok(record))) => record,
            Ok(Some(Err(e))) => {
                eprintln!("  skipped {pk}: its record is not a CloudTrail record: {e}");
                continue;
            }
            Ok(None) => {
                eprintln!("  skipped {pk}: no record");
                continue;
            }
            Err(e) => {
                eprintln!("  skipped {pk}: {e}");
                continue;
            }
        };
        events.push((history_region, record));
    }
    events.sort_by(|a, b| {
        (a.1.event_time, &a.0, &a.1.event_id).cmp(&(b.1.event_time, &b.0, &b.1.event_id))
    });
    println!(
        "{:<12} {:<20} {:<24} {:<32} {:<10} {:<6}",
        "HISTORY", "EVENT TIME", "SOURCE", "NAME", "USER", "READ"
    );
    for (r, e) in &events {
        println!(
            "{:<12} {:<20} {:<24} {:<32} {:<10} {:<6}",
            r,
            trailkeep_shared::time::format(&e.event_time),
            e.event_source,
            e.event_name,
            e.lookup_username().unwrap_or("-"),
            e.is_read_only()
        );
    }
    println!("{} events", events.len());
    match expect {
        Some(expected) if expected != events.len() => Err(DevError::Count {
            expected,
            found: events.len(),
        }),
        _ => Ok(()),
    }
}

/// Prints a benchmark's measurements as one JSON line.
fn print_bench<T: serde::Serialize>(
    operation: &'static str,
    result: Result<T, trailkeep_dev::bench_lookup::BenchError>,
) -> Result<(), DevError> {
    match result {
        Ok(measured) => {
            println!("{}", serde_json::json!(measured));
            Ok(())
        }
        Err(e) => Err(DevError::Aws {
            operation,
            message: e.to_string(),
        }),
    }
}
