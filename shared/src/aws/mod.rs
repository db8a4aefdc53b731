//! Adapters from the library's ports to AWS services.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// How every trailkeep binary reaches AWS: the environment's region,
/// credentials and endpoint (`AWS_ENDPOINT_URL` for moto), over HTTPS with
/// rustls on ring. The SDK crates are built without their default client
/// (rustls on aws-lc-rs), which would add half a megabyte and a C build to
/// every function for the same TLS.
pub fn sdk_config_loader() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

/// [`sdk_config_loader`], loaded.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// The event history table: history items, lookups' reads.
pub mod history_table;
/// KMS: the digest signer, public keys.
pub mod kms;
/// CloudWatch Logs: a trail's events beside its log files.
pub mod logs;
/// S3: log files and digests written, read and hashed.
pub mod s3;
/// SNS: a notification per delivered log file.
pub mod sns;
/// SQS: the ingest queue's receipt handles confirmed.
pub mod sqs;
/// The state table's delivery and digest items: staging, claims, cursors,
/// manifests, chain heads, the key registry.
pub mod state_table;
/// The state table's trail document.
pub mod trail_items;
