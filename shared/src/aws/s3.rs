//! The log bucket on S3: log files and digests written, read, listed and
//! hashed (streaming).

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{EncodingType, ServerSideEncryption};
use aws_sdk_s3::Client;

use crate::delivery::LogSink;
use crate::digest::gzhash::{GzError, GzHasher, Inflated};
use crate::digest::DigestBucket;
use crate::digest::SIGNATURE_ALGORITHM;
use crate::store::StoreError;
use crate::validate::MAX_DIGEST_BYTES;
use crate::validate::{Fetched, Source};

/// An S3 client for `sdk`; path-style addressing when an endpoint is set
/// (a local emulator), since `bucket.127.0.0.1` does not resolve.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(conf)
}

/// Writes log and digest files to S3: with SSE-KMS under the trail's key
/// when it names one (and an S3 Bucket Key, so KMS is called per bucket
/// key, not per object), else with no encryption header, so the bucket's
/// default encryption applies (SSE-S3 on the stack's log bucket).
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
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        self.put_gzip(bucket, key, gzip, &[], kms_key).await
    }
}

fn no_such_key<E: aws_sdk_s3::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> bool {
    matches!(
        e.as_service_error().and_then(|s| s.code()),
        Some("NoSuchKey" | "NotFound")
    )
}

impl S3Logs {
    fn fail(
        operation: &'static str,
        bucket: &str,
        key: &str,
        e: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Backend {
            operation,
            resource: format!("s3://{bucket}/{key}"),
            message: e.to_string(),
        }
    }

    /// PutObject of a gzip file (log or digest) with user metadata, under
    /// SSE-KMS with `kms_key` if given.
    async fn put_gzip(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        metadata: &[(&str, &str)],
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(gzip))
            // No Content-Encoding: clients must get the gzip bytes as stored
            // (validation hashes the inflated content itself).
            .content_type("application/gzip");
        if let Some(kms_key) = kms_key {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms_key)
                .bucket_key_enabled(true);
        }
        for (name, value) in metadata {
            put = put.metadata(*name, *value);
        }
        put.send()
            .await
            .map_err(|e| Self::fail("PutObject", bucket, key, DisplayErrorContext(&e)))?;
        Ok(())
    }

    /// GetObject; `None` if there is no such key.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) if no_such_key(&e) => Ok(None),
            Err(e) => Err(Self::fail(
                "GetObject",
                bucket,
                key,
                DisplayErrorContext(&e),
            )),
        }
    }

    /// Streams an object through inflate + SHA-256; `None` if it does not exist.
    pub async fn hash_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        let Some(out) = self.get(bucket, key).await? else {
            return Ok(None);
        };
        let mut body = out.body;
        let mut hasher = GzHasher::new();
        let mut bad = None;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Self::fail("GetObject", bucket, key, e))?
        {
            // Keep draining after a format error: the connection is reused.
            if bad.is_none() {
                bad = hasher.update(&chunk).err();
            }
        }
        Ok(Some(match bad {
            Some(e) => Err(e),
            None => hasher.finish(),
        }))
    }
}

impl DigestBucket for S3Logs {
    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        self.hash_object(bucket, key).await
    }

    async fn put_digest(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        signature_hex: &str,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let meta = [
            ("signature", signature_hex),
            ("signature-algorithm", SIGNATURE_ALGORITHM),
        ];
        self.put_gzip(bucket, key, gzip, &meta, kms_key).await
    }
}

/// A key of a listing asked for with `encoding-type=url`: S3 encodes a
/// space as `+` (and `+` as `%2B`), as a form does. Without the encoding,
/// a key with a control character, which anyone who may write to the
/// bucket can plant, makes the XML page unreadable and stops the listing
/// (and with it validation) until the object is removed.
fn url_decoded(key: &str) -> String {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Source for S3Logs {
    fn location(&self, bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }

    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .encoding_type(EncodingType::Url)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                Self::fail("ListObjectsV2", bucket, prefix, DisplayErrorContext(&e))
            })?;
            for p in page.common_prefixes() {
                let folder = p.prefix().map(url_decoded).unwrap_or_default();
                if let Some(name) = folder
                    .strip_prefix(prefix)
                    .and_then(|p| p.strip_suffix('/'))
                {
                    out.push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .start_after(start_after)
            .encoding_type(EncodingType::Url)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                Self::fail("ListObjectsV2", bucket, prefix, DisplayErrorContext(&e))
            })?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(url_decoded)),
            );
        }
        Ok(out)
    }

    async fn get_digest(&self, bucket: &str, key: &str) -> Result<Option<Fetched>, StoreError> {
        let Some(out) = self.get(bucket, key).await? else {
            return Ok(None);
        };
        let meta = out.metadata().cloned().unwrap_or_default();
        // At most one byte past the cap is read: the validator reports a
        // larger digest INVALID, and a hostile object cannot fill memory.
        let mut bytes = Vec::new();
        let mut body = out.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Self::fail("GetObject", bucket, key, e))?
        {
            let room = (MAX_DIGEST_BYTES + 1).saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() > MAX_DIGEST_BYTES {
                break;
            }
        }
        Ok(Some(Fetched {
            bytes,
            signature: meta.get("signature").cloned(),
            signature_algorithm: meta.get("signature-algorithm").cloned(),
        }))
    }

    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        self.hash_object(bucket, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::url_decoded;

    #[test]
    fn listed_keys_are_decoded_as_s3_and_moto_encode_them() {
        // S3: a space as `+`, a `+` as `%2B`; control characters escaped.
        assert_eq!(url_decoded("a+b%2Bc%01d%2F%E2%82%AC"), "a b+c\u{1}d/€");
        // moto: a space as `%20`.
        assert_eq!(url_decoded("a%20b%2Bc"), "a b+c");
        // The keys trailkeep writes come back as they are.
        let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/02/111122223333_CloudTrail_eu-west-1_20261202T1005Z_abc.json.gz";
        assert_eq!(url_decoded(key), key);
    }
}
