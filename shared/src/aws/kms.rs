//! Digest signing with KMS: `Sign` (MessageType RAW, RSASSA_PKCS1_V1_5_SHA_256;
//! moto's DIGEST mode is wrong, and a string to sign is far below RAW's 4 KB
//! limit) and `GetPublicKey` (SubjectPublicKeyInfo DER, converted to PKCS#1
//! for the fingerprint).

use std::collections::HashMap;

use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use tokio::sync::Mutex;

use crate::digest::{fingerprint, pkcs1_from_spki};
use crate::digest::{PublicKey, Signer};
use crate::store::StoreError;

/// Which key signs which region's digests: `REGION=KEY,…` with `*=KEY` (or a
/// bare `KEY`) for every other region. Keys are KMS key ARNs, ids or aliases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMap {
    by_region: HashMap<String, String>,
    default: Option<String>,
}

/// A `SIGNING_KEYS` value that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("SIGNING_KEYS: {0}")]
pub struct KeyMapError(String);

impl KeyMap {
    pub fn parse(text: &str) -> Result<Self, KeyMapError> {
        let mut map = KeyMap::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => map.default = Some(part.to_owned()),
                Some((region, key)) => {
                    let (region, key) = (region.trim(), key.trim());
                    if region.is_empty() || key.is_empty() {
                        return Err(KeyMapError(format!("cannot read {part:?} as REGION=KEY")));
                    }
                    if region == "*" {
                        map.default = Some(key.to_owned());
                    } else {
                        map.by_region.insert(region.to_owned(), key.to_owned());
                    }
                }
            }
        }
        if map.by_region.is_empty() && map.default.is_none() {
            return Err(KeyMapError("no signing key configured".into()));
        }
        Ok(map)
    }

    /// Every key a list names, once each, in order: entries `REGION=KEY`,
    /// `*=KEY` or a bare `KEY` (the lookup function's `SIGNING_KEYS`: the
    /// keys that sign now and those that signed before a rotation, whose
    /// public halves `ListPublicKeys` lists).
    pub fn every_key(text: &str) -> Result<Vec<String>, KeyMapError> {
        let mut keys: Vec<String> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let key = match part.split_once('=') {
                None => part,
                Some((region, key)) if !region.trim().is_empty() && !key.trim().is_empty() => {
                    key.trim()
                }
                Some(_) => return Err(KeyMapError(format!("cannot read {part:?} as REGION=KEY"))),
            };
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
        if keys.is_empty() {
            return Err(KeyMapError("no signing key configured".into()));
        }
        Ok(keys)
    }

    /// The key for `region`.
    pub fn key(&self, region: &str) -> Option<&str> {
        self.by_region
            .get(region)
            .or(self.default.as_ref())
            .map(String::as_str)
    }

    /// Every configured key.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_region
            .values()
            .chain(self.default.as_ref())
            .map(String::as_str)
    }
}

/// The region of a KMS key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
fn arn_region(key: &str) -> Option<&str> {
    let mut parts = key.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
}

/// Signs digests with KMS keys (a client in each key's own region).
#[derive(Debug)]
pub struct KmsSigner {
    keys: KeyMap,
    default_client: Client,
    clients: HashMap<String, Client>,
    public: Mutex<HashMap<String, PublicKey>>,
}

impl KmsSigner {
    pub fn new(sdk: &aws_config::SdkConfig, keys: KeyMap) -> Self {
        let clients = keys
            .keys()
            .filter_map(arn_region)
            .map(|region| {
                let conf = aws_sdk_kms::config::Builder::from(sdk)
                    .region(aws_config::Region::new(region.to_owned()))
                    .build();
                (region.to_owned(), Client::from_conf(conf))
            })
            .collect();
        Self {
            keys,
            default_client: Client::new(sdk),
            clients,
            public: Mutex::new(HashMap::new()),
        }
    }

    fn key_for(&self, region: &str) -> Result<(&str, &Client), StoreError> {
        let key = self.keys.key(region).ok_or_else(|| StoreError::Backend {
            operation: "Sign",
            resource: region.to_owned(),
            message: format!("no signing key configured for region {region} (SIGNING_KEYS)"),
        })?;
        let client = arn_region(key)
            .and_then(|r| self.clients.get(r))
            .unwrap_or(&self.default_client);
        Ok((key, client))
    }

    /// The public key of one KMS key, as `GetPublicKey` returns it.
    pub async fn fetch(client: &Client, key: &str) -> Result<PublicKey, StoreError> {
        let fail = |message: String| StoreError::Backend {
            operation: "GetPublicKey",
            resource: key.to_owned(),
            message,
        };
        let out = client
            .get_public_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| fail(DisplayErrorContext(&e).to_string()))?;
        let spki = out
            .public_key()
            .ok_or_else(|| fail("no public key in the response".into()))?;
        let pkcs1 = pkcs1_from_spki(spki.as_ref()).map_err(|e| fail(e.to_string()))?;
        Ok(PublicKey {
            key_id: out.key_id().unwrap_or(key).to_owned(),
            fingerprint: fingerprint(&pkcs1),
            pkcs1,
        })
    }
}

impl Signer for KmsSigner {
    async fn public_key(&self, region: &str) -> Result<PublicKey, StoreError> {
        let (key, client) = self.key_for(region)?;
        if let Some(k) = self.public.lock().await.get(key) {
            return Ok(k.clone());
        }
        let fetched = Self::fetch(client, key).await?;
        self.public
            .lock()
            .await
            .insert(key.to_owned(), fetched.clone());
        Ok(fetched)
    }

    async fn sign(&self, region: &str, message: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (key, client) = self.key_for(region)?;
        let out = client
            .sign()
            .key_id(key)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| StoreError::Backend {
                operation: "Sign",
                resource: key.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        out.signature()
            .map(|s| s.as_ref().to_vec())
            .ok_or_else(|| StoreError::Backend {
                operation: "Sign",
                resource: key.to_owned(),
                message: "no signature in the response".into(),
            })
    }
}

/// The keys an auditor trusts: the public halves of exactly these KMS
/// keys (the stack's `SigningKeyArn`, one per region if several), each from
/// its own region. Validation never trusts a key because the state table
/// names it: any principal that can write that table could name its own
/// (docs/security.md "What validation trusts").
pub async fn trusted_keys(
    aws: &aws_config::SdkConfig,
    key_arns: &[String],
) -> Result<crate::validate::Keys, StoreError> {
    let mut keys = crate::validate::Keys::default();
    for arn in key_arns {
        let public = KmsSigner::fetch(&client_for(aws, arn), arn).await?;
        keys.add_pkcs1(public.pkcs1);
    }
    Ok(keys)
}

/// The `PublicKeys` port on AWS: the registry in the state table; the
/// trusted keys are `key_arns`' public keys, fetched from KMS on each call
/// (`ListPublicKeys` is rare, and a rotated key shows at once).
pub struct AwsPublicKeys {
    pub aws: aws_config::SdkConfig,
    pub key_arns: Vec<String>,
    pub registry: crate::aws::state_table::DynamoStaging,
}

impl crate::digest::registry::PublicKeys for AwsPublicKeys {
    async fn keys_used(&self) -> Result<Vec<crate::digest::registry::KeyUse>, StoreError> {
        self.registry.keys_used().await
    }

    /// A key whose public half cannot be read (disabled, or its policy
    /// does not let this role read it) is logged and left out, so one such
    /// key does not hide the others; only when none can be read is it an
    /// error.
    async fn trusted(&self) -> Result<crate::validate::Keys, StoreError> {
        let mut keys = crate::validate::Keys::default();
        let mut failed = None;
        for arn in &self.key_arns {
            match KmsSigner::fetch(&client_for(&self.aws, arn), arn).await {
                Ok(public) => {
                    keys.add_pkcs1(public.pkcs1);
                }
                Err(e) => {
                    tracing::warn!(key = %arn, error = %e, "a signing key's public half cannot be read: not listed");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) if keys.is_empty() => Err(e),
            _ => Ok(keys),
        }
    }
}

/// A KMS client in the key's region when `key` is an ARN, else the
/// configuration's.
pub fn client_for(aws: &aws_config::SdkConfig, key: &str) -> Client {
    let region = key
        .strip_prefix("arn:")
        .and_then(|r| r.split(':').nth(2))
        .filter(|r| !r.is_empty());
    match region {
        Some(r) => Client::from_conf(
            aws_sdk_kms::config::Builder::from(aws)
                .region(aws_config::Region::new(r.to_owned()))
                .build(),
        ),
        None => Client::new(aws),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_maps_name_a_key_per_region_with_a_default() {
        let m =
            KeyMap::parse("eu-west-1=arn:aws:kms:eu-west-1:1:key/a, *=alias/trailkeep").unwrap();
        assert_eq!(m.key("eu-west-1"), Some("arn:aws:kms:eu-west-1:1:key/a"));
        assert_eq!(m.key("us-east-1"), Some("alias/trailkeep"));
        let bare = KeyMap::parse("arn:aws:kms:us-east-1:1:key/b").unwrap();
        assert_eq!(
            bare.key("ap-south-1"),
            Some("arn:aws:kms:us-east-1:1:key/b")
        );
        let only = KeyMap::parse("eu-west-1=k").unwrap();
        assert_eq!(only.key("us-east-1"), None);
        assert!(KeyMap::parse("").is_err());
        assert!(KeyMap::parse("eu-west-1=").is_err());
    }

    #[test]
    fn every_key_of_a_list_is_named_once_whatever_region_it_signs_for() {
        // The lookup's SIGNING_KEYS as template.yaml joins it: the stack's
        // key, SigningKeyArns, RetiredSigningKeyArns (empty lists leave
        // empty entries).
        let keys = KeyMap::every_key(
            "arn:aws:kms:eu-west-1:1:key/stack,eu-west-1=arn:aws:kms:eu-west-1:1:key/new, *=arn:aws:kms:eu-west-1:1:key/new,,arn:aws:kms:eu-west-1:1:key/old,arn:aws:kms:eu-west-1:1:key/stack",
        )
        .unwrap();
        assert_eq!(
            keys,
            [
                "arn:aws:kms:eu-west-1:1:key/stack",
                "arn:aws:kms:eu-west-1:1:key/new",
                "arn:aws:kms:eu-west-1:1:key/old"
            ]
        );
        // Two bare keys are both listed (parse keeps one default).
        assert_eq!(KeyMap::every_key("a,b").unwrap(), ["a", "b"]);
        assert!(KeyMap::every_key(",,").is_err());
        assert!(KeyMap::every_key("a,eu-west-1=").is_err());
        assert!(KeyMap::every_key("=b").is_err());
    }

    #[test]
    fn a_key_arn_names_its_region() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:111122223333:key/x"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("alias/x"), None);
        assert_eq!(arn_region("1234abcd-12ab"), None);
    }
}
