//! `trailkeep-dev make-copy`: a generated, bucket-shaped local copy of a
//! trail's log and digest files for the validation benchmark
//! (scripts/bench.sh). Log files come from the real assembly code, digests
//! from the real digest run (signed by a KMS key on the local endpoint),
//! so the copy validates exactly like a delivered bucket.

use std::path::PathBuf;

use crate::provision;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest as _, Sha256};
use trailkeep_shared::aws::kms::{KeyMap, KmsSigner};
use trailkeep_shared::delivery::logfile::{self, Staged};
use trailkeep_shared::delivery::StagingStore;
use trailkeep_shared::delivery::{window_of, ManifestEntry};
use trailkeep_shared::digest::gzhash::{GzError, Inflated};
use trailkeep_shared::digest::{
    DigestBucket, DigestSettings, Digester, Signer, SIGNATURE_ALGORITHM,
};
use trailkeep_shared::store::StoreError;
use trailkeep_shared::testkit::MemoryState;
use trailkeep_shared::trail::Trail;
use trailkeep_shared::validate::localcopy::{self, LocalDir};
use trailkeep_shared::validate::Source;

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "eu-west-1";
pub const TRAIL: &str = "bench";

/// A local directory as the digest run's bucket: log files are hashed
/// where they lie, digests written with their signature sidecars, as
/// `download-logs` lays out a copy.
struct CopyBucket(LocalDir);

impl DigestBucket for CopyBucket {
    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        Source::hash_log(&self.0, bucket, key).await
    }

    async fn put_digest(
        &self,
        _bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        signature_hex: &str,
        // A local copy is not encrypted at rest by this tool.
        _kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let meta = std::collections::HashMap::from([
            ("signature".to_owned(), signature_hex.to_owned()),
            (
                "signature-algorithm".to_owned(),
                SIGNATURE_ALGORITHM.to_owned(),
            ),
        ]);
        self.0.write_object(key, &gzip, &meta)
    }
}

/// One synthetic management event (~1 KB, varied like real ones).
fn record(n: u64, at: &DateTime<Utc>) -> Staged {
    let h = hex::encode(Sha256::digest(n.to_le_bytes()));
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    let req = format!(
        "{}-{}-4{}-9{}-{}",
        &h[32..40],
        &h[40..44],
        &h[45..48],
        &h[49..52],
        &h[52..64]
    );
    let time = trailkeep_shared::time::format(at);
    let user = ["alice", "bob", "carol", "dave"][(n % 4) as usize];
    let json = format!(
        r#"{{"eventVersion":"1.11","userIdentity":{{"type":"IAMUser","principalId":"AIDA{up}","arn":"arn:aws:iam::{ACCOUNT}:user/{user}","accountId":"{ACCOUNT}","accessKeyId":"AKIA{up}","userName":"{user}"}},"eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"{REGION}","sourceIPAddress":"203.0.113.{ip}","userAgent":"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023","errorCode":null,"errorMessage":null,"requestParameters":{{"instanceType":"t3.micro","imageId":"ami-{ami}","minCount":1,"maxCount":1,"subnetId":"subnet-{sub}"}},"responseElements":{{"requestId":"{req}","reservationId":"r-{res}","instancesSet":{{"items":[{{"instanceId":"i-{inst}","currentState":{{"code":0,"name":"pending"}}}}]}}}},"requestID":"{req}","eventID":"{id}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.{REGION}.amazonaws.com"}}}}"#,
        up = h[0..16].to_uppercase(),
        ip = n % 250,
        ami = &h[16..33],
        sub = &h[33..50],
        res = &h[50..67.min(h.len())],
        inst = &h[40..57],
    );
    Staged {
        event_time: *at,
        event_id: id,
        json,
        first: None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Incomplete(#[from] trailkeep_shared::store::Incomplete),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What was generated.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Made {
    pub log_files: usize,
    pub digests: usize,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
    pub trail_arn: String,
    pub start: String,
    pub end: String,
    pub public_key: PathBuf,
}

/// Writes the log files of `shape` (hours, files per hour, records per
/// file) into `dir` and their manifest entries into `state`; returns their
/// uncompressed and compressed sizes.
async fn write_logs(
    dir: &std::path::Path,
    bucket: &str,
    state: &MemoryState,
    t0: DateTime<Utc>,
    shape: (i64, i64, u64),
) -> Result<(u64, u64), CopyError> {
    let (hours, files_per_hour, records) = shape;
    let (mut uncompressed, mut compressed, mut n) = (0u64, 0u64, 0u64);
    for h in 0..hours {
        for f in 0..files_per_hour {
            let delivered = t0 + Duration::hours(h) + Duration::seconds(f * 3600 / files_per_hour);
            let mut staged: Vec<Staged> = (0..records)
                .map(|i| {
                    n += 1;
                    record(n, &(delivered - Duration::seconds(300 - (i % 300) as i64)))
                })
                .collect();
            let files = logfile::assemble(&mut staged, logfile::DEFAULT_MAX_FILE_BYTES)?;
            for (part, file) in files.into_iter().enumerate() {
                let unique = logfile::unique_suffix(&[
                    TRAIL,
                    &h.to_string(),
                    &f.to_string(),
                    &part.to_string(),
                ]);
                let place = trailkeep_shared::trail::Place {
                    org: None,
                    account: ACCOUNT,
                    region: REGION,
                };
                let key = logfile::log_file_key(None, &place, &delivered, &unique);
                let path = dir.join(&key);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                uncompressed += file.uncompressed_bytes as u64;
                compressed += file.gzip.len() as u64;
                std::fs::write(&path, &file.gzip)?;
                let entry = ManifestEntry {
                    bucket: bucket.into(),
                    key,
                    sha256: file.sha256,
                    oldest: file.oldest,
                    newest: file.newest,
                    delivered,
                    records: file.records,
                };
                state.record_manifest(TRAIL, REGION, &entry).await?;
            }
        }
    }
    Ok((uncompressed, compressed))
}

/// Writes `hours` hours of `files_per_hour` log files of `records` records
/// each, and their digests, into `dir`; the PEM public key beside it.
pub async fn make_copy(
    aws: &aws_config::SdkConfig,
    dir: &std::path::Path,
    hours: i64,
    files_per_hour: i64,
    records: u64,
) -> Result<Made, CopyError> {
    let t0 = trailkeep_shared::time::parse("2026-11-01T00:00:00Z").unwrap_or_default();
    let kms = aws_sdk_kms::Client::new(aws);
    let key = provision::create_key(
        &kms,
        &provision::KeySpec {
            key_spec: "RSA_2048".into(),
            key_usage: "SIGN_VERIFY".into(),
        },
    )
    .await?;
    let signer = KmsSigner::new(
        aws,
        KeyMap::parse(&key).map_err(|e| StoreError::Backend {
            operation: "SIGNING_KEYS",
            resource: key.clone(),
            message: e.to_string(),
        })?,
    );
    let bucket = "bench-copy";
    let copy = CopyBucket(LocalDir::new(dir));
    let state = MemoryState::default();
    let first_window = window_of(&t0);
    state.register(TRAIL, REGION, first_window).await?;
    let (uncompressed, compressed) =
        write_logs(dir, bucket, &state, t0, (hours, files_per_hour, records)).await?;
    let trail = Trail {
        name: TRAIL.into(),
        home_region: REGION.into(),
        account_id: ACCOUNT.into(),
        s3_bucket_name: bucket.into(),
        s3_key_prefix: None,
        kms_key_id: None,
        sns_topic_name: None,
        cloud_watch_logs: None,
        is_multi_region_trail: false,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        is_logging: true,
        start_logging_time: Some(t0),
        stop_logging_time: None,
        event_selectors: Vec::new(),
        advanced_event_selectors: Vec::new(),
        tags: Vec::new(),
    };
    let now = t0 + Duration::hours(hours) + Duration::minutes(10);
    // Every window up to now is delivered.
    state
        .advance(TRAIL, REGION, first_window, window_of(&now))
        .await?;
    let settings = DigestSettings {
        regions: vec![REGION.into()],
        ..DigestSettings::default()
    };
    let digester = Digester {
        state: &state,
        signer: &signer,
        bucket: &copy,
        settings: &settings,
    };
    let report = digester
        .run(std::slice::from_ref(&trail), &now)
        .await
        .into_result()?;
    std::fs::write(
        dir.join(localcopy::COPY_INFO),
        serde_json::json!({ "bucket": bucket }).to_string(),
    )?;
    let public = signer.public_key(REGION).await?;
    let pem =
        pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, &public.pkcs1)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    let public_key = dir.with_extension("pem");
    std::fs::write(&public_key, pem)?;
    Ok(Made {
        log_files: state.delivered(TRAIL, REGION).len(),
        digests: report.digests,
        uncompressed_bytes: uncompressed,
        compressed_bytes: compressed,
        trail_arn: trail.arn(),
        start: trailkeep_shared::time::format(&t0),
        end: trailkeep_shared::time::format(&(t0 + Duration::hours(hours))),
        public_key,
    })
}
