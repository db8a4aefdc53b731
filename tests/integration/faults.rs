//! A fault-injecting HTTP proxy on loopback, between the functions' AWS SDK
//! clients and the moto server.
//!
//! moto keeps its state only in memory, so faults cannot come from
//! restarting it; they are injected here instead, per request, at random
//! (seeded): the connection dropped before the request reaches moto, the
//! connection dropped *after* moto applied it (the client never learns that
//! its write happened), the service's throttling error, or a 5xx. The SDK
//! retries each of them; what outlives its retries reaches trailkeep's code
//! as a failed call.
//!
//! Every request is also counted by IAM action (`dynamodb:PutItem`,
//! `s3:GetObject`, `kms:Sign` …), with its bytes and, for DynamoDB, the
//! capacity units it consumes: the integration tests compare the actions
//! with template.yaml's policies, and the cost model (docs/cost.md) is
//! made from the counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// The share of requests that get each fault (0.0–1.0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// The connection is closed before the request is forwarded.
    pub drop_before: f64,
    /// The request is forwarded and applied, then the connection is closed
    /// without an answer.
    pub drop_after: f64,
    /// The service's throttling error (DynamoDB/KMS `ThrottlingException`, S3 `SlowDown`).
    pub throttle: f64,
    /// HTTP 500 with the service's internal error.
    pub server_error: f64,
}

/// What went through the proxy for one IAM action.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStats {
    /// Requests that reached the service (forwarded), faults excluded.
    pub requests: u64,
    /// Requests answered with an injected fault or dropped.
    pub faults: u64,
    /// The faults by kind: [dropped before, dropped after being applied,
    /// throttled, server error].
    pub fault_kinds: [u64; 4],
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// DynamoDB on-demand write request units (1 KB per item, rounded up).
    pub write_units: f64,
    /// DynamoDB read request units (4 KB, strongly consistent = 1, else 0.5).
    pub read_units: f64,
    /// DynamoDB: bytes of the items written (as DynamoDB sizes them).
    pub item_bytes: u64,
}

#[derive(Default)]
struct State {
    by_action: Mutex<BTreeMap<String, ActionStats>>,
    /// (IAM action, resource): a DynamoDB table's name, an S3 object's or
    /// bucket's ARN, a KMS key id.
    access: Mutex<BTreeSet<(String, String)>>,
    /// (IAM action, table, partition key) of every DynamoDB write.
    writes: Mutex<BTreeSet<(String, String, String)>>,
    armed: AtomicBool,
}

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (the moto endpoint) on a free loopback port,
    /// with `faults` armed from the start.
    pub async fn start(upstream: &str, faults: Faults, seed: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(State {
            armed: AtomicBool::new(true),
            ..State::default()
        });
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (state, client, upstream, rng) =
                        (state.clone(), client.clone(), upstream.clone(), rng.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let fault = if state.armed.load(Ordering::Relaxed) {
                                pick(&mut rng.lock().unwrap(), &faults)
                            } else {
                                None
                            };
                            forward(req, fault, state.clone(), client.clone(), upstream.clone())
                        });
                        // An error here is a dropped connection: the fault itself.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Self { url, state, task }
    }

    /// Stops (or resumes) injecting faults; requests are still counted.
    pub fn set_armed(&self, armed: bool) {
        self.state.armed.store(armed, Ordering::SeqCst);
    }

    /// What went through, by IAM action.
    pub fn stats(&self) -> BTreeMap<String, ActionStats> {
        self.state.by_action.lock().unwrap().clone()
    }

    /// Every (IAM action, resource) requested: DynamoDB table names, S3
    /// ARNs (`arn:aws:s3:::bucket/key`), KMS key ids as the request named them.
    pub fn access(&self) -> BTreeSet<(String, String)> {
        self.state.access.lock().unwrap().clone()
    }

    /// Every DynamoDB write and partition Query: (IAM action, table, the
    /// partition key), what `dynamodb:LeadingKeys` conditions are evaluated on.
    pub fn written_keys(&self) -> BTreeSet<(String, String, String)> {
        self.state.writes.lock().unwrap().clone()
    }

    /// Requests that reached the service so far.
    pub fn requests(&self) -> u64 {
        self.stats().values().map(|s| s.requests).sum()
    }

    /// Returns once `n` more requests than `since` have reached the service.
    pub async fn after_requests(&self, since: u64, n: u64) {
        while self.requests() < since + n {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Forgets the counts so far.
    pub fn reset_stats(&self) {
        self.state.by_action.lock().unwrap().clear();
    }

    /// An SDK configuration whose every client goes through this proxy,
    /// retrying quickly (3 attempts, as the SDK's standard mode, but
    /// backing off from 5 ms instead of 1 s to keep the test short).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        trailkeep_shared::aws::sdk_config_loader()
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_initial_backoff(std::time::Duration::from_millis(5)),
            )
            .load()
            .await
    }
}

/// A fault; its value indexes `ActionStats::fault_kinds`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    DropBefore = 0,
    DropAfter = 1,
    Throttle = 2,
    ServerError = 3,
}

fn pick(rng: &mut fastrand::Rng, f: &Faults) -> Option<Fault> {
    let x = rng.f64();
    let mut edge = 0.0;
    for (share, fault) in [
        (f.drop_before, Fault::DropBefore),
        (f.drop_after, Fault::DropAfter),
        (f.throttle, Fault::Throttle),
        (f.server_error, Fault::ServerError),
    ] {
        edge += share;
        if x < edge {
            return Some(fault);
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the fault proxy")]
struct Dropped;

async fn forward(
    req: Request<Incoming>,
    fault: Option<Fault>,
    state: Arc<State>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Arc<str>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let service = Service::of(&parts.headers);
    let action = action(service, &parts, &body);
    {
        let mut access = state.access.lock().unwrap();
        for resource in resources(service, &parts, &body) {
            access.insert((action.clone(), resource));
        }
        // SSE-KMS: S3 asks KMS for a data key with the caller's rights.
        if let Some(key) = parts.headers.get(SSE_KMS_KEY).and_then(|v| v.to_str().ok()) {
            access.insert((format!("kms:GenerateDataKey{VIA_S3}"), key.to_owned()));
        }
    }
    if service == Service::DynamoDb {
        let mut writes = state.writes.lock().unwrap();
        for (table, key) in written_keys(&action, &body) {
            writes.insert((action.clone(), table, key));
        }
    }
    let count = |f: &dyn Fn(&mut ActionStats)| {
        f(state
            .by_action
            .lock()
            .unwrap()
            .entry(action.clone())
            .or_default())
    };
    let faulted = |kind: Fault| {
        count(&|s| {
            s.faults += 1;
            s.fault_kinds[kind as usize] += 1;
        })
    };
    match fault {
        Some(Fault::DropBefore) => {
            faulted(Fault::DropBefore);
            return Err(Dropped);
        }
        Some(kind @ (Fault::Throttle | Fault::ServerError)) => {
            faulted(kind);
            return Ok(error_response(service, kind == Fault::Throttle));
        }
        Some(Fault::DropAfter) | None => {}
    }
    let uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut upstream_req = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        upstream_req = upstream_req.header(name, value);
    }
    let upstream_req = upstream_req
        .body(Full::new(body.clone()))
        .map_err(|_| Dropped)?;
    let answer = client.request(upstream_req).await.map_err(|_| Dropped)?;
    let (answer_parts, answer_body) = answer.into_parts();
    // Reading an SSE-KMS object: S3 decrypts its data key with the caller's rights.
    if let Some(key) = answer_parts
        .headers
        .get(SSE_KMS_KEY)
        .and_then(|v| v.to_str().ok())
    {
        if action == "s3:GetObject" {
            let mut access = state.access.lock().unwrap();
            access.insert((format!("kms:Decrypt{VIA_S3}"), key.to_owned()));
        }
    }
    let answer_body = answer_body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let (write_units, read_units, item_bytes) = if service == Service::DynamoDb {
        dynamodb_units(&action, &body, &answer_body)
    } else {
        (0.0, 0.0, 0)
    };
    count(&|s| {
        s.requests += 1;
        s.bytes_in += body.len() as u64;
        s.bytes_out += answer_body.len() as u64;
        s.write_units += write_units;
        s.read_units += read_units;
        s.item_bytes += item_bytes;
    });
    if fault == Some(Fault::DropAfter) {
        faulted(Fault::DropAfter);
        return Err(Dropped);
    }
    Ok(Response::from_parts(answer_parts, Full::new(answer_body)))
}

/// The header naming an object's SSE-KMS key, in a PUT and in a GET's answer.
const SSE_KMS_KEY: &str = "x-amz-server-side-encryption-aws-kms-key-id";

/// Marks a KMS action S3 takes for the caller (`kms:ViaService` is S3).
pub const VIA_S3: &str = " via s3";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Service {
    DynamoDb,
    Kms,
    S3,
    Sns,
    Logs,
}

impl Service {
    fn of(headers: &hyper::HeaderMap) -> Self {
        let form = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        match target(headers) {
            Some(t) if t.starts_with("DynamoDB_") => Self::DynamoDb,
            Some(t) if t.starts_with("TrentService.") => Self::Kms,
            Some(t) if t.starts_with("Logs_") => Self::Logs,
            // SNS speaks the query protocol: a form, no target.
            None if form => Self::Sns,
            _ => Self::S3,
        }
    }
}

/// A field of a query-protocol form body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn target(headers: &hyper::HeaderMap) -> Option<&str> {
    headers.get("x-amz-target").and_then(|v| v.to_str().ok())
}

/// The IAM action a request needs (S3: path-style requests).
fn action(service: Service, parts: &hyper::http::request::Parts, body: &[u8]) -> String {
    let operation = || target(&parts.headers).and_then(|t| t.split('.').nth(1));
    match service {
        Service::DynamoDb => format!("dynamodb:{}", operation().unwrap_or("?")),
        Service::Kms => format!("kms:{}", operation().unwrap_or("?")),
        Service::Logs => format!("logs:{}", operation().unwrap_or("?")),
        Service::Sns => format!(
            "sns:{}",
            form_field(body, "Action").unwrap_or_else(|| "?".into())
        ),
        Service::S3 => {
            let path = parts.uri.path().trim_start_matches('/');
            let object = path.split_once('/').is_some_and(|(_, k)| !k.is_empty());
            let action = match (parts.method.as_str(), object) {
                ("GET" | "HEAD", true) => "GetObject",
                ("PUT", true) => "PutObject",
                ("DELETE", true) => "DeleteObject",
                ("GET", false) => "ListBucket",
                ("PUT", false) => "CreateBucket",
                _ => "?",
            };
            format!("s3:{action}")
        }
    }
}

/// The resources a request names.
fn resources(service: Service, parts: &hyper::http::request::Parts, body: &[u8]) -> Vec<String> {
    let json = || serde_json::from_slice::<Value>(body).unwrap_or_default();
    match service {
        Service::DynamoDb => {
            let req = json();
            match req["TableName"].as_str() {
                Some(table) => vec![table.to_owned()],
                None => req["RequestItems"]
                    .as_object()
                    .map(|tables| tables.keys().cloned().collect())
                    .unwrap_or_default(),
            }
        }
        Service::Kms => json()["KeyId"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
        Service::Sns => form_field(body, "TopicArn").into_iter().collect(),
        // The ARN's resource part; the caller knows the region and account.
        Service::Logs => {
            let req = json();
            match (req["logGroupName"].as_str(), req["logStreamName"].as_str()) {
                (Some(group), Some(stream)) => {
                    vec![format!("log-group:{group}:log-stream:{stream}")]
                }
                (Some(group), None) => vec![format!("log-group:{group}")],
                _ => Vec::new(),
            }
        }
        Service::S3 => {
            let path =
                percent_encoding::percent_decode_str(parts.uri.path().trim_start_matches('/'))
                    .decode_utf8_lossy()
                    .into_owned();
            vec![format!("arn:aws:s3:::{}", path.trim_end_matches('/'))]
        }
    }
}

/// The (table, partition key) pairs a DynamoDB write request writes, or a
/// Query (`pk = :pk`) reads.
fn written_keys(action: &str, body: &[u8]) -> Vec<(String, String)> {
    let req: Value = serde_json::from_slice(body).unwrap_or_default();
    let pk = |item: &Value| item["pk"]["S"].as_str().map(str::to_owned);
    let table = req["TableName"].as_str().unwrap_or_default().to_owned();
    match action {
        "dynamodb:PutItem" => pk(&req["Item"]).map(|k| (table, k)).into_iter().collect(),
        "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => {
            pk(&req["Key"]).map(|k| (table, k)).into_iter().collect()
        }
        "dynamodb:Query" if req["KeyConditionExpression"] == "pk = :pk" => req
            ["ExpressionAttributeValues"][":pk"]["S"]
            .as_str()
            .map(|k| (table, k.to_owned()))
            .into_iter()
            .collect(),
        "dynamodb:BatchWriteItem" => req["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(table, writes)| {
                writes.as_array().into_iter().flatten().filter_map(|w| {
                    pk(&w["PutRequest"]["Item"])
                        .or_else(|| pk(&w["DeleteRequest"]["Key"]))
                        .map(|k| (table.clone(), k))
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn error_response(service: Service, throttle: bool) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (service, throttle) {
        (Service::DynamoDb, true) => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
        ),
        (Service::DynamoDb, false) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (injected)"}"#,
        ),
        (Service::Kms, true) => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        (Service::Kms, false) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/x-amz-json-1.1",
            r#"{"__type":"KMSInternalException","message":"Internal error (injected)"}"#,
        ),
        (Service::Logs, true) => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        (Service::Logs, false) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/x-amz-json-1.1",
            r#"{"__type":"ServiceUnavailableException","message":"Internal error (injected)"}"#,
        ),
        (Service::Sns, true) => (
            StatusCode::BAD_REQUEST,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>injected</RequestId></ErrorResponse>",
        ),
        (Service::Sns, false) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/xml",
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>Internal error (injected)</Message></Error><RequestId>injected</RequestId></ErrorResponse>",
        ),
        (Service::S3, true) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        ),
        (Service::S3, false) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid response")
}

/// DynamoDB on-demand capacity of one request, from the items it writes or
/// reads: (write units, read units, bytes of the items written). Writes: 1
/// unit per KB of each item, rounded up per item (an update or a refused
/// condition: at least 1). Reads: 1 unit per 4 KB read strongly
/// consistent, half eventually, summed over a query's items and rounded up
/// once.
fn dynamodb_units(action: &str, request: &[u8], answer: &[u8]) -> (f64, f64, u64) {
    let req: Value = serde_json::from_slice(request).unwrap_or_default();
    let ans: Value = serde_json::from_slice(answer).unwrap_or_default();
    let write = |item: &Value| (item_size(item) as f64 / 1024.0).ceil().max(1.0);
    let written = |items: &[&Value]| items.iter().map(|i| item_size(i) as u64).sum::<u64>();
    // A batch read's consistency is its table entry's.
    let consistent = req["ConsistentRead"]
        .as_bool()
        .or_else(|| {
            req["RequestItems"]
                .as_object()
                .and_then(|tables| tables.values().next())
                .and_then(|t| t["ConsistentRead"].as_bool())
        })
        .unwrap_or(false);
    let read = |bytes: usize| {
        let units = (bytes as f64 / 4096.0).ceil().max(1.0);
        if consistent {
            units
        } else {
            units / 2.0
        }
    };
    match action {
        "dynamodb:PutItem" => (write(&req["Item"]), 0.0, written(&[&req["Item"]])),
        "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => (1.0, 0.0, 0),
        "dynamodb:BatchWriteItem" => {
            let items: Vec<&Value> = req["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(Value::as_array)
                .flatten()
                .map(|w| &w["PutRequest"]["Item"])
                .collect();
            (items.iter().map(|i| write(i)).sum(), 0.0, written(&items))
        }
        "dynamodb:GetItem" => (0.0, read(item_size(&ans["Item"])), 0),
        // Each item of a batch read is rounded up to 4 KB on its own.
        "dynamodb:BatchGetItem" => {
            let units = ans["Responses"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(Value::as_array)
                .flatten()
                .map(|i| read(item_size(i)))
                .sum();
            (0.0, units, 0)
        }
        "dynamodb:Query" | "dynamodb:Scan" => {
            let bytes = ans["Items"]
                .as_array()
                .map_or(0, |items| items.iter().map(item_size).sum());
            (0.0, read(bytes), 0)
        }
        _ => (0.0, 0.0, 0),
    }
}

/// A DynamoDB item's size as DynamoDB bills it: attribute names plus
/// values (strings and binaries by length, numbers ~1 byte per two digits
/// + 1, others by their JSON length as an upper bound).
fn item_size(item: &Value) -> usize {
    let Some(attrs) = item.as_object() else {
        return 0;
    };
    attrs
        .iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size of one attribute value (a list: 3 bytes, and 1 per element
/// beside the element's own).
fn value_size(value: &Value) -> usize {
    match value.as_object().and_then(|o| o.iter().next()) {
        Some((t, Value::String(s))) if t == "S" => s.len(),
        // Binary travels base64-encoded; DynamoDB bills its bytes.
        Some((t, Value::String(s))) if t == "B" => {
            s.len() / 4 * 3 - s.bytes().rev().take_while(|b| *b == b'=').count()
        }
        Some((t, Value::String(s))) if t == "N" => s.len().div_ceil(2) + 1,
        Some((t, _)) if t == "BOOL" || t == "NULL" => 1,
        Some((t, Value::Array(l))) if t == "L" => {
            3 + l.iter().map(|e| 1 + value_size(e)).sum::<usize>()
        }
        _ => value.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_picked_in_their_shares() {
        let faults = Faults {
            drop_before: 0.1,
            drop_after: 0.1,
            throttle: 0.2,
            server_error: 0.1,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..100_000 {
            *seen
                .entry(format!("{:?}", pick(&mut rng, &faults)))
                .or_default() += 1;
        }
        let share = |k: &str| seen[k] as f64 / 100_000.0;
        assert!((share("None") - 0.5).abs() < 0.01, "{seen:?}");
        assert!((share("Some(Throttle)") - 0.2).abs() < 0.01, "{seen:?}");
        assert!((share("Some(DropAfter)") - 0.1).abs() < 0.01, "{seen:?}");
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let item =
            serde_json::json!({"pk": {"S": "abc"}, "n": {"N": "12345"}, "b": {"BOOL": true}});
        // pk: 2 + 3; n: 1 + (5 digits → 3 + 1); b: 1 + 1
        assert_eq!(item_size(&item), 5 + 5 + 2);
        // m: 1 + 3 + (1 + 2) + (1 + 0)
        assert_eq!(
            item_size(&serde_json::json!({"m": {"L": [{"S": "ab"}, {"S": ""}]}})),
            1 + 3 + 3 + 1
        );
        // z: 1 + 5 bytes (base64 "aGVsbG8=")
        assert_eq!(
            item_size(&serde_json::json!({"z": {"B": "aGVsbG8="}})),
            1 + 5
        );
        assert_eq!(
            item_size(&serde_json::json!({"z": {"B": "aGVsbG8h"}})),
            1 + 6
        );
        let batch = serde_json::json!({"Responses": {"t": [
            {"z": {"S": "x".repeat(100)}}, {"z": {"S": "x".repeat(5000)}}
        ]}});
        assert_eq!(
            dynamodb_units("dynamodb:BatchGetItem", b"{}", batch.to_string().as_bytes()),
            (0.0, 0.5 + 1.0, 0),
            "each item rounded up to 4 KB, eventually consistent at half"
        );
        assert_eq!(
            dynamodb_units(
                "dynamodb:BatchGetItem",
                br#"{"RequestItems": {"t": {"ConsistentRead": true}}}"#,
                batch.to_string().as_bytes()
            ),
            (0.0, 1.0 + 2.0, 0),
            "strongly consistent at full"
        );
        let put = serde_json::json!({"Item": {"rec": {"S": "x".repeat(1500)}}});
        assert_eq!(
            dynamodb_units("dynamodb:PutItem", put.to_string().as_bytes(), b"{}"),
            (2.0, 0.0, 1503),
            "1,503 bytes are two write units"
        );
        let query = serde_json::json!({"Items": [{"rec": {"S": "x".repeat(3000)}}, {"rec": {"S": "x".repeat(3000)}}]});
        assert_eq!(
            dynamodb_units(
                "dynamodb:Query",
                br#"{"ConsistentRead": true}"#,
                query.to_string().as_bytes()
            ),
            (0.0, 2.0, 0),
            "6 KB read strongly consistent are two read units"
        );
    }
}
