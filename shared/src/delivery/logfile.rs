//! Trail log files: CloudTrail's key layout and content (docs/trails.md "Log files").
//!
//! Content: gzip of `{"Records":[…]}`, one or more records sorted by
//! `eventTime` (ties by `eventID`, so the bytes are the same on every re-run).
//! Records are stored already serialized, so assembly only concatenates,
//! hashes and compresses; it never re-serializes a record.

use std::io::Write;

use crate::digest::sha256::Sha256;
use crate::trail::Place;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;

/// CloudTrail caps a log file at 50 MB compressed. trailkeep caps the
/// *uncompressed* size, which bounds the compressed size too.
pub const DEFAULT_MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// A cap below one maximal record (256 KB) plus the envelope cannot hold every record.
pub const MIN_MAX_FILE_BYTES: usize = crate::model::MAX_RECORD_BYTES + ENVELOPE.len() + 1;

const HEAD: &[u8] = b"{\"Records\":[";
const TAIL: &[u8] = b"]}";
const ENVELOPE: &str = "{\"Records\":[]}";

/// One record waiting for delivery: its sort key, its JSON, and the window
/// the event was first staged in (docs/delivery.md "Who delivers a copy").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub event_time: DateTime<Utc>,
    pub event_id: String,
    pub json: String,
    /// The first window the event was staged in, as ingest noted it; none
    /// for copies staged before ingest noted it (or when the note it found
    /// was unreadable, implausibly far ahead or of another eventTime):
    /// those are claimed, as every copy once was.
    pub first: Option<i64>,
}

/// One assembled log file, before it has a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// The gzipped content.
    pub gzip: Vec<u8>,
    /// Hex SHA-256 of the uncompressed content (what digests list).
    pub sha256: String,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
    pub records: usize,
    pub uncompressed_bytes: usize,
}

/// Sorts `records` and packs them into as few files as the cap allows, in
/// order; never an empty file. `max_bytes` must be at least [`MIN_MAX_FILE_BYTES`].
pub fn assemble(records: &mut [Staged], max_bytes: usize) -> std::io::Result<Vec<Assembled>> {
    records.sort_unstable_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    let mut packer = Packer::new(max_bytes);
    let mut files = Vec::new();
    for r in records.iter() {
        files.extend(packer.push(r)?);
    }
    files.extend(packer.finish()?);
    Ok(files)
}

/// Packs records, given in sort order, into files of at most `max_bytes`
/// uncompressed, greedily: a record that does not fit closes the file and
/// opens the next. Each record is hashed and compressed as it is pushed, so
/// memory holds one file's compressed bytes, never a window's records: a
/// window of any size streams through ([`assemble`] packs the same way).
pub struct Packer {
    max_bytes: usize,
    open: Option<OpenFile>,
}

/// The file being written: its hash and gzip so far.
struct OpenFile {
    sha: Sha256,
    gz: GzEncoder<Vec<u8>>,
    size: usize,
    records: usize,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
}

impl OpenFile {
    fn start(first: &Staged) -> std::io::Result<Self> {
        let mut f = Self {
            sha: Sha256::new(),
            gz: GzEncoder::new(Vec::new(), Compression::default()),
            size: 0,
            records: 0,
            oldest: first.event_time,
            newest: first.event_time,
        };
        f.put(HEAD)?;
        f.size += TAIL.len();
        Ok(f)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sha.update(bytes);
        self.size += bytes.len();
        self.gz.write_all(bytes)
    }

    fn add(&mut self, r: &Staged) -> std::io::Result<()> {
        if self.records > 0 {
            self.put(b",")?;
        }
        self.put(r.json.as_bytes())?;
        self.records += 1;
        self.oldest = self.oldest.min(r.event_time);
        self.newest = self.newest.max(r.event_time);
        Ok(())
    }

    fn close(mut self) -> std::io::Result<Assembled> {
        // `size` already counts the tail.
        self.sha.update(TAIL);
        self.gz.write_all(TAIL)?;
        Ok(Assembled {
            gzip: self.gz.finish()?,
            sha256: self.sha.finish_hex(),
            oldest: self.oldest,
            newest: self.newest,
            records: self.records,
            uncompressed_bytes: self.size,
        })
    }
}

impl Packer {
    /// A cap below [`MIN_MAX_FILE_BYTES`] is raised to it.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes: max_bytes.max(MIN_MAX_FILE_BYTES),
            open: None,
        }
    }

    /// Adds the next record; returns the file it closed, if the record did
    /// not fit in it (the record then opens the next file).
    pub fn push(&mut self, r: &Staged) -> std::io::Result<Option<Assembled>> {
        let closed = match self.open.take() {
            Some(f) if f.size + r.json.len() + 1 > self.max_bytes => Some(f.close()?),
            Some(f) => {
                self.open = Some(f);
                None
            }
            None => None,
        };
        let file = match self.open.as_mut() {
            Some(f) => f,
            None => self.open.insert(OpenFile::start(r)?),
        };
        file.add(r)?;
        Ok(closed)
    }

    /// Closes the last file, if any record was pushed since the last one closed.
    pub fn finish(self) -> std::io::Result<Option<Assembled>> {
        self.open.map(OpenFile::close).transpose()
    }
}

/// `[prefix/]AWSLogs/[{orgId}/]{acct}/CloudTrail/{region}/{YYYY}/{MM}/{DD}/{acct}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_{unique}.json.gz`
/// with the date and timestamp of delivery (the organization's folder for
/// an organization trail's chain).
pub fn log_file_key(
    prefix: Option<&str>,
    place: &Place<'_>,
    delivered: &DateTime<Utc>,
    unique: &str,
) -> String {
    let prefix = prefix
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .unwrap_or_default();
    let (root, account, region) = (place.root(), place.account, place.region);
    format!(
        "{prefix}{root}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{unique}.json.gz",
        delivered.format("%Y/%m/%d"),
        delivered.format("%Y%m%dT%H%MZ"),
    )
}

/// The 16-character unique part of a key, derived from what identifies the
/// file (trail, region, window, part) so that a re-run writes the same key.
pub fn unique_suffix(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finish()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};
    use std::io::Read;

    fn staged(secs: i64, id: &str, pad: usize) -> Staged {
        let t = DateTime::from_timestamp(1_795_000_000 + secs, 0).unwrap();
        let json = format!(
            r#"{{"eventTime":"{}","eventID":"{id}","pad":"{}"}}"#,
            crate::time::format(&t),
            "x".repeat(pad)
        );
        Staged {
            event_time: t,
            event_id: id.into(),
            json,
            first: None,
        }
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_file_is_the_records_envelope_sorted_by_time_then_id() {
        let mut records = vec![staged(5, "b", 0), staged(1, "z", 0), staged(5, "a", 0)];
        let files = assemble(&mut records, DEFAULT_MAX_FILE_BYTES).unwrap();
        assert_eq!(files.len(), 1);
        let raw = gunzip(&files[0].gzip);
        assert_eq!(hex::encode(Sha256::digest(&raw)), files[0].sha256);
        assert_eq!(raw.len(), files[0].uncompressed_bytes);
        let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let ids: Vec<&str> = doc["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["eventID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["z", "a", "b"]);
        assert_eq!(files[0].oldest, records[0].event_time);
        assert_eq!(files[0].newest, records[2].event_time);
    }

    #[test]
    fn the_same_records_in_any_order_give_the_same_bytes() {
        let mut a = vec![staged(3, "c", 10), staged(1, "a", 10), staged(2, "b", 10)];
        let mut b = vec![staged(2, "b", 10), staged(3, "c", 10), staged(1, "a", 10)];
        assert_eq!(
            assemble(&mut a, DEFAULT_MAX_FILE_BYTES).unwrap(),
            assemble(&mut b, DEFAULT_MAX_FILE_BYTES).unwrap()
        );
    }

    #[test]
    fn no_records_no_file() {
        assert!(assemble(&mut [], DEFAULT_MAX_FILE_BYTES)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn keys_follow_cloudtrails_layout() {
        let t = crate::time::parse("2026-11-24T02:05:00Z").unwrap();
        let own = |account, region| Place {
            org: None,
            account,
            region,
        };
        assert_eq!(
            log_file_key(Some("org"), &own("111122223333", "eu-west-1"), &t, "0123456789abcdef"),
            "org/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/111122223333_CloudTrail_eu-west-1_20261124T0205Z_0123456789abcdef.json.gz"
        );
        assert!(log_file_key(None, &own("1", "r"), &t, "u")
            .starts_with("AWSLogs/1/CloudTrail/r/2026/11/24/"));
        // An organization trail's, as CloudTrail documents it
        // ("Finding your CloudTrail log files": AWSLogs/O-ID/Account-ID/
        // CloudTrail/Region/YYYY/MM/DD/, the file named by the member account).
        let member = Place {
            org: Some("o-exampleorgid"),
            account: "222233334444",
            region: "us-east-2",
        };
        assert_eq!(
            log_file_key(None, &member, &t, "0123456789abcdef"),
            "AWSLogs/o-exampleorgid/222233334444/CloudTrail/us-east-2/2026/11/24/222233334444_CloudTrail_us-east-2_20261124T0205Z_0123456789abcdef.json.gz"
        );
        let u = unique_suffix(&["trail", "eu-west-1", "2026-11-24T02:05:00Z", "0"]);
        assert_eq!(u.len(), 16);
        assert_eq!(
            u,
            unique_suffix(&["trail", "eu-west-1", "2026-11-24T02:05:00Z", "0"])
        );
        assert_ne!(
            u,
            unique_suffix(&["trail", "eu-west-1", "2026-11-24T02:05:00Z", "1"])
        );
    }

    proptest! {
        // Each case gzips up to 2 MB in a debug build: fewer cases keep the suite quick.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// However the cap splits them, every record is in exactly one file,
        /// files are in time order, none is empty, none exceeds the cap.
        #[test]
        fn splitting_keeps_every_record_once(times in proptest::collection::vec((0i64..100, 0usize..40_000), 1..60), cap in 0usize..1_000_000) {
            let mut records: Vec<Staged> = times.iter().enumerate().map(|(i, (t, pad))| staged(*t, &format!("{i:04}"), *pad)).collect();
            let files = assemble(&mut records, cap).unwrap();
            let mut seen = Vec::new();
            for f in &files {
                prop_assert!(f.records > 0);
                prop_assert!(f.uncompressed_bytes <= cap.max(MIN_MAX_FILE_BYTES));
                let doc: serde_json::Value = serde_json::from_slice(&gunzip(&f.gzip)).unwrap();
                for r in doc["Records"].as_array().unwrap() {
                    seen.push(r["eventID"].as_str().unwrap().to_owned());
                }
            }
            let expected: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
