//! The key registry: which signing keys the digest function has used and
//! over which span, and the public keys listed from it (CloudTrail's
//! `ListPublicKeys`; the API's operation and `trailkeep list-public-keys`).
//! A registry entry is never trusted alone: only keys the deployment signs
//! with (their public keys fetched from KMS) are listed, since whoever can
//! write the state table could add an entry (docs/security.md).

use std::future::Future;

use chrono::{DateTime, Duration, Utc};

use crate::store::StoreError;
use crate::validate::Keys;

/// A signing key the digest function has used (the state table's `KEY`
/// items): its fingerprint, every region whose digests it signed (one key
/// may sign several), and the ends of the first and last digests it signed
/// (RFC 3339, as stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: String,
    pub regions: Vec<String>,
    pub fingerprint: String,
    pub first_used: String,
    pub last_used: String,
}

/// The port `ListPublicKeys` needs.
pub trait PublicKeys: Send + Sync {
    /// The registry.
    fn keys_used(&self) -> impl Future<Output = Result<Vec<KeyUse>, StoreError>> + Send;
    /// The public keys of the keys the deployment signs with (KMS).
    fn trusted(&self) -> impl Future<Output = Result<Keys, StoreError>> + Send;
}

/// One listed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedKey {
    pub key: KeyUse,
    /// PKCS#1 `RSAPublicKey` DER.
    pub pkcs1: Vec<u8>,
    /// The start of the first hour the key signed (a digest covers the
    /// hour before its end).
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// The trusted keys of the registry whose span meets `[start, end]`; and
/// the entries naming a key that is not trusted (reported, never listed).
pub fn list(
    used: Vec<KeyUse>,
    trusted: &Keys,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> (Vec<ListedKey>, Vec<KeyUse>) {
    let (mut listed, mut untrusted) = (Vec::new(), Vec::new());
    for key in used {
        let Some(pkcs1) = trusted.get(&key.fingerprint) else {
            untrusted.push(key);
            continue;
        };
        let valid_from = crate::time::parse(&key.first_used)
            .map(|t| t - Duration::hours(1))
            .ok();
        let valid_to = crate::time::parse(&key.last_used).ok();
        if start.zip(valid_to).is_some_and(|(s, to)| to < s)
            || end.zip(valid_from).is_some_and(|(e, from)| from > e)
        {
            continue;
        }
        listed.push(ListedKey {
            pkcs1: pkcs1.to_vec(),
            key,
            valid_from,
            valid_to,
        });
    }
    (listed, untrusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(fingerprint: &str, first: &str, last: &str) -> KeyUse {
        KeyUse {
            key_id: format!("key-{fingerprint}"),
            regions: vec!["eu-west-1".into()],
            fingerprint: fingerprint.into(),
            first_used: first.into(),
            last_used: last.into(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse(s).unwrap()
    }

    #[test]
    fn only_trusted_keys_are_listed_each_with_the_span_it_signed() {
        let mut trusted = Keys::default();
        let a = trusted.add_pkcs1(vec![1, 2, 3]);
        let b = trusted.add_pkcs1(vec![4, 5, 6]);
        let registry = vec![
            used(&a, "2026-11-01T01:00:00Z", "2026-11-10T00:00:00Z"),
            used(&b, "2026-11-10T01:00:00Z", "2026-11-20T00:00:00Z"),
            used(
                "00000000000000000000000000000000",
                "2026-11-01T01:00:00Z",
                "2026-11-30T00:00:00Z",
            ),
        ];
        let (all, untrusted) = list(registry.clone(), &trusted, None, None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].pkcs1, vec![1, 2, 3]);
        assert_eq!(all[0].valid_from, Some(t("2026-11-01T00:00:00Z")));
        assert_eq!(all[0].valid_to, Some(t("2026-11-10T00:00:00Z")));
        assert_eq!(
            untrusted.len(),
            1,
            "a registry entry alone is never trusted"
        );
        // A range: only the keys whose span meets it.
        let (after, _) = list(
            registry.clone(),
            &trusted,
            Some(t("2026-11-15T00:00:00Z")),
            None,
        );
        assert_eq!(
            after.iter().map(|k| &k.key.fingerprint).collect::<Vec<_>>(),
            [&b]
        );
        let (before, _) = list(registry, &trusted, None, Some(t("2026-11-05T00:00:00Z")));
        assert_eq!(
            before
                .iter()
                .map(|k| &k.key.fingerprint)
                .collect::<Vec<_>>(),
            [&a]
        );
    }
}
