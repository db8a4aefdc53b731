//! Log files on S3.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use crate::delivery::LogSink;
use crate::store::StoreError;

/// An S3 client for `sdk`; path-style addressing when an endpoint is set
/// (a local emulator), since `bucket.127.0.0.1` does not resolve.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(conf)
}

/// Writes log files to S3, encrypted at rest (SSE-S3; a bucket default of
/// SSE-KMS applies instead when the bucket sets one).
#[derive(Clone, Debug)]
pub struct S3Logs {
    client: Client,
}

impl S3Logs {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl LogSink for S3Logs {
    async fn put(&self, bucket: &str, key: &str, gzip: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(gzip))
            // No Content-Encoding: clients must get the gzip bytes as stored
            // (validation hashes the inflated content itself).
            .content_type("application/gzip")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| StoreError::Backend {
                operation: "PutObject",
                resource: format!("s3://{bucket}/{key}"),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}
