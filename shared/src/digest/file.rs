//! Digest files: CloudTrail's digest format, key, string to sign and key
//! fingerprint (docs/digests.md). Pure functions; the digest
//! function and the validator build on them.

use chrono::{DateTime, Duration, DurationRound, Utc};
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use crate::trail::Place;

/// `digestSignatureAlgorithm` and the `signature-algorithm` metadata.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// `previousDigestHashAlgorithm` and each log file's `hashAlgorithm`.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// One log file listed in a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Hex SHA-256 of the uncompressed log file.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// A digest file, with exactly CloudTrail's fields in CloudTrail's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    /// `null` when the digest lists no log files.
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    /// The five `previousDigest*` fields are `null` in a chain's first digest.
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLogFile>,
}

/// `[prefix/]AWSLogs/[{orgId}/]{acct}/CloudTrail-Digest/{region}/{YYYY}/{MM}/{DD}/{acct}_CloudTrail-Digest_{region}_{trailName}_{homeRegion}_{YYYYMMDDTHHMMSSZ}.json.gz`,
/// dated by the digest's end time (the organization's folder for an
/// organization trail's chain).
pub fn digest_key(
    prefix: Option<&str>,
    place: &Place<'_>,
    trail_name: &str,
    home_region: &str,
    end: &DateTime<Utc>,
) -> String {
    let prefix = prefix
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .unwrap_or_default();
    let (root, account, region) = (place.root(), place.account, place.region);
    format!(
        "{prefix}{root}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{trail_name}_{home_region}_{}.json.gz",
        end.format("%Y/%m/%d"),
        end.format("%Y%m%dT%H%M%SZ"),
    )
}

/// The string a digest's signature signs:
/// `digestEndTime \n bucket/key \n hex(SHA-256(uncompressed digest)) \n previousSignature`,
/// where a missing previous signature is the four letters `null`.
pub fn string_to_sign(
    end_time: &str,
    bucket: &str,
    key: &str,
    uncompressed_digest: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{key}\n{}\n{}",
        sha256_hex(uncompressed_digest),
        previous_signature.unwrap_or("null")
    )
}

/// Lowercase hex SHA-256, the form digests and the signing string use.
pub use super::sha256::sha256_hex;

/// Why a public key is unusable.
#[derive(Debug, thiserror::Error)]
#[error("not a DER SubjectPublicKeyInfo: {0}")]
pub struct KeyError(String);

/// The PKCS#1 `RSAPublicKey` DER inside a SubjectPublicKeyInfo DER (what
/// KMS `GetPublicKey` returns).
pub fn pkcs1_from_spki(spki_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let info =
        spki::SubjectPublicKeyInfoRef::try_from(spki_der).map_err(|e| KeyError(e.to_string()))?;
    Ok(info.subject_public_key.raw_bytes().to_vec())
}

/// `digestPublicKeyFingerprint`: lowercase hex MD5 of the PKCS#1 DER.
pub fn fingerprint(pkcs1_der: &[u8]) -> String {
    hex::encode(Md5::digest(pkcs1_der))
}

/// The end of the digest a run at `trigger` writes: the hour boundary at or before it.
pub fn digest_end(trigger: &DateTime<Utc>) -> DateTime<Utc> {
    trigger
        .duration_trunc(Duration::hours(1))
        .unwrap_or(*trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse(s).unwrap()
    }

    #[test]
    fn the_fingerprint_is_md5_of_the_pkcs1_key_as_openssl_computes_it() {
        // testdata: an RSA-2048 public key as KMS returns it (SPKI DER), and
        // `openssl rsa -RSAPublicKey_out -outform DER | md5sum` of the same key.
        let spki = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/signing-key.spki.der"
        ));
        let expected = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/signing-key.fingerprint"
        ))
        .trim();
        let pkcs1 = pkcs1_from_spki(spki).unwrap();
        assert!(pkcs1.len() < spki.len());
        assert_eq!(fingerprint(&pkcs1), expected);
        assert!(pkcs1_from_spki(b"not der").is_err());
    }

    #[test]
    fn the_string_to_sign_is_four_lines_with_null_for_a_first_digest() {
        let s = string_to_sign(
            "2026-11-24T03:00:00Z",
            "logs",
            "AWSLogs/x.json.gz",
            b"{}",
            None,
        );
        assert_eq!(
            s,
            "2026-11-24T03:00:00Z\nlogs/AWSLogs/x.json.gz\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\nnull"
        );
        let chained = string_to_sign("t", "b", "k", b"", Some("abcd"));
        assert!(chained.ends_with("\nabcd"));
    }

    #[test]
    fn digest_keys_follow_cloudtrails_layout() {
        let own = Place {
            org: None,
            account: "111122223333",
            region: "us-east-1",
        };
        assert_eq!(
            digest_key(Some("org"), &own, "audit", "eu-west-1", &t("2026-11-24T03:00:00Z")),
            "org/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/24/111122223333_CloudTrail-Digest_us-east-1_audit_eu-west-1_20261124T030000Z.json.gz"
        );
        // An organization trail's, as CloudTrail documents it ("CloudTrail
        // digest file structure": AWSLogs/O-ID/Account-ID/CloudTrail-Digest/
        // Region/YYYY/MM/DD/, the file named by the member account and the
        // trail's home region).
        let member = Place {
            org: Some("o-exampleorgid"),
            account: "222233334444",
            region: "us-east-2",
        };
        assert_eq!(
            digest_key(None, &member, "audit", "eu-west-1", &t("2026-11-24T03:00:00Z")),
            "AWSLogs/o-exampleorgid/222233334444/CloudTrail-Digest/us-east-2/2026/11/24/222233334444_CloudTrail-Digest_us-east-2_audit_eu-west-1_20261124T030000Z.json.gz"
        );
    }

    #[test]
    fn a_digest_ends_on_the_hour_at_or_before_the_trigger() {
        assert_eq!(
            digest_end(&t("2026-11-24T03:59:59Z")),
            t("2026-11-24T03:00:00Z")
        );
        assert_eq!(
            digest_end(&t("2026-11-24T03:00:00Z")),
            t("2026-11-24T03:00:00Z")
        );
    }

    #[test]
    fn a_first_digest_serializes_its_previous_fields_as_null_in_cloudtrails_order() {
        let d = DigestFile {
            aws_account_id: "111122223333".into(),
            digest_start_time: "2026-11-24T02:00:00Z".into(),
            digest_end_time: "2026-11-24T03:00:00Z".into(),
            digest_s3_bucket: "logs".into(),
            digest_s3_object: "k".into(),
            digest_public_key_fingerprint: "f".into(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
            newest_event_time: None,
            oldest_event_time: None,
            previous_digest_s3_bucket: None,
            previous_digest_s3_object: None,
            previous_digest_hash_value: None,
            previous_digest_hash_algorithm: None,
            previous_digest_signature: None,
            log_files: vec![],
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"awsAccountId":"111122223333","digestStartTime":"2026-11-24T02:00:00Z","digestEndTime":"2026-11-24T03:00:00Z","digestS3Bucket":"logs","digestS3Object":"k","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#
        );
        let back: DigestFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
