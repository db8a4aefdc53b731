//! Shared helpers: the local endpoint, clients, tables made from template.yaml.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use trailkeep_dev::provision::{self, Template};
use trailkeep_shared::aws::history_table::{attr, DynamoHistory};

/// The local endpoint; refuses to run against anything but loopback.
pub fn endpoint() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let host = endpoint.split("://").nth(1).unwrap_or_default();
    assert!(
        host.starts_with("127.") || host.starts_with("localhost"),
        "integration tests need a local moto server: run scripts/test.sh, or start moto and set \
         AWS_ENDPOINT_URL=http://127.0.0.1:PORT (got {endpoint:?})"
    );
    endpoint
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    trailkeep_shared::aws::sdk_config_loader()
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
        .load()
        .await
}

pub async fn dynamodb() -> Client {
    Client::new(&sdk_config().await)
}

/// An S3 bucket with a random name, as the log bucket.
pub struct TestBucket {
    pub client: aws_sdk_s3::Client,
    pub name: String,
}

impl TestBucket {
    pub async fn new() -> Self {
        let client = trailkeep_shared::aws::s3::client(&sdk_config().await);
        let name = format!("logs-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        Self { client, name }
    }

    /// A bucket made as template.yaml makes the log bucket with its default
    /// parameters: versioned, Object Lock default retention.
    pub async fn log_bucket() -> Self {
        let client = trailkeep_shared::aws::s3::client(&sdk_config().await);
        let name = format!("logs-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        let spec = template().bucket("LogBucket").expect("LogBucket");
        provision::create_bucket(&client, &name, &spec)
            .await
            .expect("create the log bucket");
        Self { client, name }
    }

    /// HeadObject of `key`: its metadata and encryption headers.
    pub async fn head(&self, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {key}: {e}"))
    }

    /// Every object: (key, bytes), by key.
    pub async fn objects(&self) -> Vec<(String, Vec<u8>)> {
        // The validator's own listing (keys URL-encoded on the wire, so a
        // planted key with a control character is listed too).
        use trailkeep_shared::validate::Source as _;
        let mut keys = trailkeep_shared::aws::s3::S3Logs::new(self.client.clone())
            .list(&self.name, "", "")
            .await
            .expect("list");
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let got = self
                .client
                .get_object()
                .bucket(&self.name)
                .key(&key)
                .send()
                .await
                .expect("get");
            let bytes = got
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec();
            out.push((key, bytes));
        }
        out
    }
}

pub fn template() -> Template {
    Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("template.yaml parses")
}

/// A table made from one of template.yaml's tables; `delete` removes it.
pub struct TestTable {
    pub client: Client,
    pub name: String,
}

impl TestTable {
    pub async fn history() -> Self {
        Self::from_template("HistoryTable").await
    }

    pub async fn state() -> Self {
        Self::from_template("StateTable").await
    }

    async fn from_template(logical_id: &str) -> Self {
        let client = dynamodb().await;
        let name = format!("{logical_id}-{}", uuid::Uuid::new_v4());
        let spec = template()
            .table(logical_id)
            .expect("table in template.yaml");
        provision::create_table(&client, &name, &spec)
            .await
            .expect("create table");
        Self { client, name }
    }

    pub fn trails(&self) -> trailkeep_shared::aws::trail_items::DynamoTrails {
        trailkeep_shared::aws::trail_items::DynamoTrails::new(self.client.clone(), &self.name)
    }

    pub fn store(&self) -> DynamoHistory {
        DynamoHistory::new(self.client.clone(), &self.name)
    }

    /// Every item of the table (tests use small tables).
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.name)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            out.push(item.expect("scan"));
        }
        out
    }

    /// The items of one partition, newest first.
    pub async fn partition(&self, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .scan_index_forward(false)
            .send()
            .await
            .expect("query")
            .items
            .unwrap_or_default()
    }

    pub async fn delete(self) {
        let _ = self
            .client
            .delete_table()
            .table_name(&self.name)
            .send()
            .await;
    }
}

pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> &'a str {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_default()
}

pub fn n(item: &HashMap<String, AttributeValue>, key: &str) -> i64 {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN)
}

/// A new SNS topic `name` with a new SQS queue `name` subscribed with raw
/// delivery, as a SIEM importer subscribes: (topic ARN, queue URL).
pub async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let topic = sns.create_topic().name(name).send().await.unwrap();
    let topic = topic.topic_arn.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    (topic, queue_url)
}

/// A payload from events/, as the text Lambda hands over.
pub fn event(path: &str) -> String {
    let full = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A payload from events/, parsed (for a test to change it).
pub fn event_json(path: &str) -> serde_json::Value {
    serde_json::from_str(&event(path)).unwrap()
}

pub fn parse_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    trailkeep_shared::time::parse(s).expect("a valid time")
}

/// Asserts that the event ids found per group (a region, a trail and
/// region…) are exactly the expected ones, each found once: the same
/// groups, no id twice within a group, the same ids.
pub fn assert_each_once<K: Ord + std::fmt::Debug>(
    found: &BTreeMap<K, Vec<String>>,
    expected: &BTreeMap<K, BTreeSet<String>>,
) {
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (group, ids) in found {
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{group:?}: an event is in two files"
        );
        assert_eq!(&unique, &expected[group], "{group:?}: the events found");
    }
}

/// A count that one task raises and another waits on: tests pace their
/// concurrent parts by each other's progress, never by the wall clock.
#[derive(Default)]
pub struct Progress {
    count: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicBool,
    changed: tokio::sync::Notify,
}

impl Progress {
    pub fn get(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One more.
    pub fn bump(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// No more will come: every waiter returns.
    pub fn finish(&self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn finished(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Returns once the count reaches `target`, or it is finished.
    pub async fn reach(&self, target: usize) {
        loop {
            // Registered before the check, so no bump in between is missed.
            let changed = self.changed.notified();
            if self.get() >= target || self.finished() {
                return;
            }
            changed.await;
        }
    }
}
