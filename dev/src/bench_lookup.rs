//! The lookup latency benchmark against a local DynamoDB endpoint (moto):
//! one LookupEvents page as the lookup function reads it today (a Query of
//! the region's partition and one of the global partition, run together,
//! then a BatchGetItem of the page's packed records), against the read of
//! the layout before 2026-11-24, which the 1.5× budget is measured
//! from: one Query whose items carry the record JSON.
//!
//! Both tables are created from template.yaml's `HistoryTable` and hold the
//! same events, 1.5–2 KB records on one day, one in five a global one;
//! today's written by ingest batches of 10 (shared index items).

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use trailkeep_shared::aws::history_table::{attr, DynamoHistory};
use trailkeep_shared::history::lookup::{self, parse_request, HistoryReader, LookupSettings, Part};
use trailkeep_shared::history::{self, HistorySettings, LookupAttribute, PRIMARY_SK};
use trailkeep_shared::ingest::normalize::Normalized;
use trailkeep_shared::model::Record;

use crate::provision::{create_table, ProvisionError, Template};

const REGION: &str = "eu-west-1";
const DAY: &str = "2026-11-24";
const MAX_RESULTS: usize = 50;
/// Events per ingest batch: fewer than the ~100 a 60-second batching
/// window collects at 100 events a minute, so these pages share less.
const BATCH: usize = 10;

/// Median page latencies, in milliseconds.
#[derive(Debug, Serialize)]
pub struct LookupLatency {
    pub events: usize,
    pub pages: usize,
    /// Time range only: today's layout (all pages; first pages alone,
    /// which no token tells how many items a page needs), and the layout
    /// before.
    pub time_ms: f64,
    pub time_first_ms: f64,
    pub time_before_ms: f64,
    /// By EventName: the same.
    pub attribute_ms: f64,
    pub attribute_first_ms: f64,
    pub attribute_before_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("{0}")]
    Failed(String),
}

pub(crate) fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

/// Event `i`: a ~1.6 KB EC2 call in eu-west-1, or (one in five) an IAM call.
pub(crate) fn event(i: usize, start: DateTime<Utc>) -> Normalized {
    let global = i.is_multiple_of(5);
    let time = start + Duration::seconds(i as i64 * 7);
    let json = json!({
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLE{i:08}:session-{}", i % 13),
            "arn": format!("arn:aws:sts::111122223333:assumed-role/deployer-{}/session-{}", i % 7, i % 13),
            "accountId": "111122223333",
            "accessKeyId": format!("ASIAEXAMPLE{:09}", i % 11),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": format!("arn:aws:iam::111122223333:role/deployer-{}", i % 7), "accountId": "111122223333", "userName": format!("deployer-{}", i % 7)},
                "attributes": {"creationDate": "2026-11-24T00:00:00Z", "mfaAuthenticated": "false"}
            }
        },
        "eventTime": trailkeep_shared::time::format(&time),
        "eventSource": if global { "iam.amazonaws.com" } else { "ec2.amazonaws.com" },
        "eventName": if global { "CreateRole" } else { "RunInstances" },
        "awsRegion": if global { "us-east-1" } else { REGION },
        "sourceIPAddress": format!("203.0.113.{}", i % 250),
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023 command/ec2.run-instances",
        "requestParameters": {"instanceType": "t3.micro", "imageId": format!("ami-{i:017x}"), "minCount": 1, "maxCount": 1, "subnetId": format!("subnet-{:017x}", i * 31), "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [{"key": "team", "value": format!("team-{}", i % 9)}]}]}},
        "responseElements": {"requestId": format!("{i:08x}-1111-2222-3333-444455556666"), "reservationId": format!("r-{i:017x}"), "instancesSet": {"items": [{"instanceId": format!("i-{i:017x}"), "currentState": {"code": 0, "name": "pending"}}]}},
        "requestID": format!("{i:08x}-1111-2222-3333-444455556666"),
        "eventID": format!("{i:08x}-aaaa-bbbb-cccc-ddddeeeeffff"),
        "readOnly": false,
        "resources": [{"ARN": format!("arn:aws:ec2:{REGION}:111122223333:instance/i-{i:017x}"), "accountId": "111122223333", "type": "AWS::EC2::Instance"}],
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("ec2.{REGION}.amazonaws.com")}
    })
    .to_string();
    Normalized {
        index: 0,
        record: serde_json::from_str::<Record>(&json).expect("the generated record parses"),
        json,
    }
}

/// Writes `event` as the layout before 2026-11-24 did, in the region's
/// partitions: the record JSON on the primary item and on every index item.
fn old_layout(event: &Normalized) -> Vec<WriteRequest> {
    let r = &event.record;
    let expires_at = r.event_time.timestamp() + 90 * 86_400;
    let mut keys = vec![(
        history::primary_pk(REGION, &r.event_id),
        PRIMARY_SK.to_owned(),
    )];
    keys.extend(
        history::index_items(r, REGION, expires_at, 1)
            .into_iter()
            .map(|i| (i.pk, i.sk)),
    );
    keys.into_iter()
        .map(|(pk, sk)| {
            let put = PutRequest::builder()
                .item(attr::PK, AttributeValue::S(pk))
                .item(attr::SK, AttributeValue::S(sk))
                .item(attr::RECORD, AttributeValue::S(event.json.clone()))
                .item(attr::EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
                .build()
                .expect("pk and sk are set");
            WriteRequest::builder().put_request(put).build()
        })
        .collect()
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

/// Runs the benchmark on fresh tables named after `prefix`, then deletes them.
pub async fn run(
    aws: &aws_config::SdkConfig,
    template: &str,
    prefix: &str,
    events: usize,
    pages: usize,
) -> Result<LookupLatency, BenchError> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    let spec = Template::load(template)?.table("HistoryTable")?;
    let (new_table, old_table) = (format!("{prefix}-new"), format!("{prefix}-old"));
    for t in [&new_table, &old_table] {
        create_table(&client, t, &spec).await?;
    }
    let result = measure(&client, &new_table, &old_table, events, pages).await;
    for t in [&new_table, &old_table] {
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
    new_table: &str,
    old_table: &str,
    events: usize,
    pages: usize,
) -> Result<LookupLatency, BenchError> {
    let start = trailkeep_shared::time::parse(&format!("{DAY}T01:00:00Z")).map_err(failed)?;
    let now = trailkeep_shared::time::parse(&format!("{DAY}T23:00:00Z")).map_err(failed)?;
    let new = DynamoHistory::new(client.clone(), new_table);
    let old = DynamoHistory::new(client.clone(), old_table);
    let settings = HistorySettings {
        retention_days: 90,
        shards: 1,
    };
    let mut old_writes = Vec::new();
    // Today's table as ingest writes it: the index entries of a batch's
    // events together (shared index items), batches of `BATCH` events.
    let all: Vec<Normalized> = (0..events).map(|i| event(i, start)).collect();
    for batch in all.chunks(BATCH) {
        let mut entries = Vec::new();
        for e in batch {
            let (_, _, mine) = history::claim_noting(&new, &settings, e, None)
                .await
                .map_err(failed)?;
            entries.extend(mine);
            old_writes.extend(old_layout(e));
        }
        history::write_index(&new, entries, &settings)
            .await
            .map_err(failed)?;
    }
    for chunk in old_writes.chunks(25) {
        client
            .batch_write_item()
            .request_items(old_table, chunk.to_vec())
            .send()
            .await
            .map_err(|e| failed(aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    let lookup_settings = LookupSettings {
        account_id: String::new(),
        organization: false,
        home_region: REGION.into(),
        served_regions: vec![REGION.into()],
        retention_days: 90,
        token_key: vec![7; 32],
        shards: 1,
    };
    let body = |attribute: Option<&str>| {
        let mut b = json!({"StartTime": format!("{DAY}T00:00:00Z"), "EndTime": format!("{DAY}T23:00:00Z"), "MaxResults": MAX_RESULTS});
        if let Some(name) = attribute {
            b["LookupAttributes"] = json!([{"AttributeKey": "EventName", "AttributeValue": name}]);
        }
        b
    };
    let low = format!("{DAY}T00:00:00Z#");
    let high = format!("{DAY}T23:00:00Z#\u{10FFFF}");
    let mut result = Vec::new();
    for attribute in [None, Some("RunInstances")] {
        // Today's read: the lookup use case through the DynamoDB adapter,
        // following NextToken, from the first page again when it runs out.
        let (mut today, mut first) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        while today.len() < pages {
            let mut b = body(attribute);
            if let Some(t) = &token {
                b["NextToken"] = json!(t);
            }
            let request =
                parse_request(b.to_string().as_bytes(), &lookup_settings, &now).map_err(failed)?;
            let t0 = Instant::now();
            let page = lookup::lookup(&new, &request, &lookup_settings, &now)
                .await
                .map_err(failed)?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            today.push(ms);
            if token.is_none() {
                first.push(ms);
            }
            if page.records.is_empty() && page.next_token.is_some() {
                return Err(failed("an empty page in the middle of the day"));
            }
            token = page.next_token;
        }
        // The layout before: one Query of the region's partition, records inline.
        let part = Part {
            pk: match attribute {
                None => history::time_pk(REGION, DAY),
                Some(name) => history::attribute_pk(REGION, LookupAttribute::EventName, name, DAY),
            },
            read_only: None,
        };
        let mut before = Vec::new();
        let mut after: Option<String> = None;
        while before.len() < pages {
            let t0 = Instant::now();
            let (items, last) = old
                .query(
                    &part,
                    &low,
                    &high,
                    after.as_deref(),
                    MAX_RESULTS,
                    now.timestamp(),
                )
                .await
                .map_err(failed)?;
            before.push(t0.elapsed().as_secs_f64() * 1e3);
            if items.iter().any(|s| s.record.is_none()) {
                return Err(failed("an old-layout item without its record"));
            }
            after = last;
        }
        result.push((median(today), median(first), median(before)));
    }
    Ok(LookupLatency {
        events,
        pages,
        time_ms: result[0].0,
        time_first_ms: result[0].1,
        time_before_ms: result[0].2,
        attribute_ms: result[1].0,
        attribute_first_ms: result[1].1,
        attribute_before_ms: result[1].2,
    })
}
