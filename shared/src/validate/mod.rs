//! Log file validation (docs/validation.md): walks
//! each region's digest chain from newest to oldest over a time range and
//! checks every digest and every log file it lists, with the AWS CLI's
//! messages.
//!
//! Checked, per digest: present; gzip + JSON well-formed; at the key and
//! bucket it names (not moved or copied); signature metadata present; key
//! fingerprint known; RSA signature over the string to sign; its
//! `previousDigest*` hash and signature equal the previous digest actually
//! found. Per log file of a valid digest: present, one gzip member with
//! nothing after it, SHA-256 of the inflated bytes as listed. Missing
//! digests are reported one by one (several in a row too), and so is a
//! truncated tail: digests are written every hour, so a range must hold
//! them up to its end minus one hour and a grace period (or up to the
//! chain head, when it can be read). With the state table, every ended
//! chain segment must also reach the final digest its marks name.

pub mod localcopy;
pub mod organization;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};

use crate::digest::gzhash::{inflate_at_most, GzError, Inflated};
use crate::digest::{
    digest_end, digest_key, fingerprint, pkcs1_from_spki, sha256_hex, string_to_sign, DigestFile,
    DigestLogFile, SIGNATURE_ALGORITHM,
};
use crate::digest::{Boundary, ChainHead, SegmentMark};
use crate::store::StoreError;
use crate::trail::Place;

/// A digest object with its signature metadata.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
}

/// Where the files are: the bucket itself, or a local copy of it.
pub trait Source: Send + Sync {
    /// How a file is named in the report (`s3://bucket/key`, or a path).
    fn location(&self, bucket: &str, key: &str) -> String;
    /// The names of the "folders" right under `prefix` (which ends in `/`).
    fn folders(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The keys under `prefix` after `start_after`, in order.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn get_digest(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Fetched>, StoreError>> + Send;
    /// Streams a log file through inflate + SHA-256; `None` if it is not there.
    fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Result<Inflated, GzError>>, StoreError>> + Send;
}

/// Public keys by fingerprint (PKCS#1 DER).
#[derive(Clone, Debug, Default)]
pub struct Keys(HashMap<String, Vec<u8>>);

/// A public key file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyFileError(String);

impl Keys {
    /// Adds a PKCS#1 DER key; returns its fingerprint.
    pub fn add_pkcs1(&mut self, pkcs1: Vec<u8>) -> String {
        let fp = fingerprint(&pkcs1);
        self.0.insert(fp.clone(), pkcs1);
        fp
    }

    /// Adds a key given as PEM or DER, SubjectPublicKeyInfo or PKCS#1.
    pub fn add_file_bytes(&mut self, bytes: &[u8]) -> Result<String, KeyFileError> {
        let (der, spki) = if bytes.starts_with(b"-----BEGIN") {
            let (label, der) =
                pem_rfc7468::decode_vec(bytes).map_err(|e| KeyFileError(format!("PEM: {e}")))?;
            match label {
                "PUBLIC KEY" => (der, true),
                "RSA PUBLIC KEY" => (der, false),
                other => {
                    return Err(KeyFileError(format!(
                        "PEM label {other:?}: expected PUBLIC KEY or RSA PUBLIC KEY"
                    )))
                }
            }
        } else {
            let spki = pkcs1_from_spki(bytes).is_ok();
            (bytes.to_vec(), spki)
        };
        let pkcs1 = if spki {
            pkcs1_from_spki(&der).map_err(|e| KeyFileError(e.to_string()))?
        } else {
            der
        };
        if pkcs1.first() != Some(&0x30) {
            return Err(KeyFileError(
                "not a DER RSA public key (PKCS#1 or SubjectPublicKeyInfo)".into(),
            ));
        }
        Ok(self.add_pkcs1(pkcs1))
    }

    /// The PKCS#1 DER key with this fingerprint, if trusted.
    pub fn get(&self, fingerprint: &str) -> Option<&[u8]> {
        self.0.get(fingerprint).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn verify(&self, fingerprint: &str, message: &[u8], signature: &[u8]) -> Option<bool> {
        let key = self.0.get(fingerprint)?;
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key,
        );
        Some(key.verify(message, signature).is_ok())
    }
}

/// What to validate.
#[derive(Clone, Debug)]
pub struct Request {
    pub bucket: String,
    pub prefix: Option<String>,
    /// The account whose chains are checked: a member account's, for an
    /// organization trail (`--account-id`).
    pub account_id: String,
    /// An organization trail's organization: its chains are under
    /// `AWSLogs/{org}/{account}/` (docs/organizations.md).
    pub organization_id: Option<String>,
    pub trail_name: String,
    pub home_region: String,
    /// Regions to check; empty: every region with digests under the prefix.
    /// Regions the auditor names: checked even when none of their digests
    /// is left (added to those found).
    pub regions: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The time of the check: the tail rule never expects digests after it.
    pub now: DateTime<Utc>,
    /// Chain heads per region, when the state table can be read.
    pub heads: HashMap<String, ChainHead>,
    /// Chain segment marks per region (oldest first), when the state table
    /// can be read: every segment is checked to its final digest.
    pub segments: HashMap<String, Vec<SegmentMark>>,
    /// How late a digest may be beyond its hour (tail truncation rule).
    pub tail_grace: Duration,
    /// Log files checked at once.
    pub concurrency: usize,
    /// Also report each log file in the trail's folders that no digest
    /// lists, where the digests found say every file should be listed
    /// (`--report-unlisted`; off by default, as in the AWS CLI, which never
    /// looks: trails sharing a bucket and prefix share the folders).
    pub report_unlisted: bool,
}

impl Request {
    /// The trail's key prefix as keys begin with it: `prefix/`, or nothing.
    fn key_prefix(&self) -> String {
        self.prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default()
    }

    /// The chain of `region` this request checks.
    fn place<'a>(&'a self, region: &'a str) -> Place<'a> {
        Place {
            org: self.organization_id.as_deref(),
            account: &self.account_id,
            region,
        }
    }

    /// `[prefix/]AWSLogs/[{org}/]{account}/{kind}/`: where the chains' folders are.
    fn folders(&self, kind: &str) -> String {
        format!("{}{}/{kind}/", self.key_prefix(), self.place("").root())
    }
}

/// Default grace for the tail rule.
pub const DEFAULT_TAIL_GRACE_MINUTES: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    #[serde(rename = "digest")]
    Digest,
    #[serde(rename = "log")]
    Log,
}

/// One file's verdict.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub location: String,
    /// `None`: valid; otherwise what is wrong, in the AWS CLI's words.
    pub problem: Option<String>,
    /// A log file checked: its bytes, inflated (progress, not reported).
    #[serde(skip)]
    pub bytes: u64,
    /// A valid digest: the log files it lists, now queued for checking
    /// (progress, not reported).
    #[serde(skip)]
    pub listed: usize,
    /// The region of the chain it was found in (the report counts it
    /// there; its key names it too).
    #[serde(skip)]
    pub region: String,
}

impl Finding {
    /// The AWS CLI's line: `Digest file\ts3://…\tvalid` / `…\tINVALID: …`.
    pub fn line(&self) -> String {
        let kind = match self.kind {
            Kind::Digest => "Digest file",
            Kind::Log => "Log file",
        };
        let location = printable(&self.location);
        match &self.problem {
            None => format!("{kind}\t{location}\tvalid"),
            Some(p) => format!("{kind}\t{location}\tINVALID: {}", printable(p)),
        }
    }
}

/// `text` with control characters, line and paragraph separators,
/// bidirectional marks and overrides, and backslashes escaped (`\n`,
/// `\t`, `\u{1b}`, `\u{2028}`, `\u{202e}`, `\\`): object keys come from
/// the bucket, and one holding a newline could forge a `valid` line of the
/// report, a terminal escape could rewrite the screen, an override could
/// show a name backwards; a backslash is escaped so that a key spelling
/// `\n` does not print like one holding a newline. Text without them is
/// returned as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\\'
                    | '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    };
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// The outcome: counts and the time range of the valid digests, in all
/// and per region. Findings themselves go to the caller's sink as they are
/// made, so memory stays flat however large the range.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub digests_valid: usize,
    pub digests_total: usize,
    pub logs_valid: usize,
    pub logs_total: usize,
    /// Time range of the digests that were found valid.
    pub found_start: Option<String>,
    pub found_end: Option<String>,
    /// The same, per region checked (each with no regions of its own):
    /// every region the run looked at, those where nothing was found too.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, Report>,
}

impl Report {
    /// Counts a verdict, in all and in its region.
    fn count(&mut self, f: &Finding) {
        self.tally(f);
        self.regions.entry(f.region.clone()).or_default().tally(f);
    }

    fn tally(&mut self, f: &Finding) {
        let (valid, total) = match f.kind {
            Kind::Digest => (&mut self.digests_valid, &mut self.digests_total),
            Kind::Log => (&mut self.logs_valid, &mut self.logs_total),
        };
        *total += 1;
        *valid += usize::from(f.problem.is_none());
    }

    pub fn all_valid(&self) -> bool {
        self.digests_valid == self.digests_total && self.logs_valid == self.logs_total
    }

    /// `N/N digest files valid, M/M log files valid`.
    pub fn summary(&self) -> String {
        format!(
            "{}/{} digest files valid, {}/{} log files valid",
            self.digests_valid, self.digests_total, self.logs_valid, self.logs_total
        )
    }
}

/// The largest digest file read, compressed or inflated: one hour's digest
/// of even 5,000 log files is about 2.5 MB of JSON. A larger one is
/// reported INVALID unread, so a hostile file cannot exhaust memory.
pub const MAX_DIGEST_BYTES: usize = 16 << 20;

const NOT_FOUND: &str = "not found";
const BAD_FORMAT: &str = "invalid format";
const BAD_SIGNATURE: &str = "signature verification failed";
const MOVED: &str = "has been moved from its original location";
const BAD_HASH: &str = "hash value doesn't match";
const UNLISTED: &str = "not listed in any digest";

/// A digest as checked: its verdict, and what the chain walk needs of it.
struct Checked {
    problem: Option<String>,
    digest: Option<DigestFile>,
    sha256: Option<String>,
    signature: Option<String>,
}

async fn check_digest<S: Source>(
    src: &S,
    keys: &Keys,
    req: &Request,
    key: &str,
) -> Result<Checked, StoreError> {
    let fetched = src.get_digest(&req.bucket, key).await?;
    Ok(check_fetched(keys, req, key, fetched))
}

/// Checks digest `key` as fetched (`None`: not there).
fn check_fetched(keys: &Keys, req: &Request, key: &str, fetched: Option<Fetched>) -> Checked {
    let mut out = Checked {
        problem: None,
        digest: None,
        sha256: None,
        signature: None,
    };
    let Some(fetched) = fetched else {
        out.problem = Some(NOT_FOUND.into());
        return out;
    };
    if fetched.bytes.len() > MAX_DIGEST_BYTES {
        out.problem = Some(format!(
            "{BAD_FORMAT}: {} bytes, a digest is at most {MAX_DIGEST_BYTES}",
            fetched.bytes.len()
        ));
        return out;
    }
    let json = match inflate_at_most(&fetched.bytes, MAX_DIGEST_BYTES) {
        Ok(json) => json,
        Err(GzError::TooLarge(_)) => {
            out.problem = Some(format!(
                "{BAD_FORMAT}: over {MAX_DIGEST_BYTES} bytes inflated (a digest lists at most a few thousand log files)"
            ));
            return out;
        }
        Err(_) => {
            out.problem = Some(BAD_FORMAT.into());
            return out;
        }
    };
    let Ok(digest) = serde_json::from_slice::<DigestFile>(&json) else {
        out.problem = Some(BAD_FORMAT.into());
        return out;
    };
    out.sha256 = Some(sha256_hex(&json));
    out.signature = fetched.signature.clone();
    out.problem = if digest.digest_s3_bucket != req.bucket || digest.digest_s3_object != key {
        Some(MOVED.into())
    } else if fetched.signature_algorithm.as_deref() != Some(SIGNATURE_ALGORITHM)
        || digest.digest_signature_algorithm != SIGNATURE_ALGORITHM
    {
        Some(BAD_SIGNATURE.into())
    } else {
        let to_sign = string_to_sign(
            &digest.digest_end_time,
            &digest.digest_s3_bucket,
            &digest.digest_s3_object,
            &json,
            digest.previous_digest_signature.as_deref(),
        );
        let signature = fetched
            .signature
            .as_deref()
            .and_then(|s| hex::decode(s).ok());
        match signature.map(|s| {
            keys.verify(
                &digest.digest_public_key_fingerprint,
                to_sign.as_bytes(),
                &s,
            )
        }) {
            None | Some(Some(false)) => Some(BAD_SIGNATURE.into()),
            Some(None) => Some(format!(
                "public key not found in region {} for fingerprint {}",
                req.home_region, digest.digest_public_key_fingerprint
            )),
            Some(Some(true)) => None,
        }
    };
    out.digest = Some(digest);
    out
}

/// The end time in a digest key's file name (`…_YYYYMMDDTHHMMSSZ.json.gz`).
fn key_end(key: &str) -> Option<DateTime<Utc>> {
    let stem = key.strip_suffix(".json.gz")?;
    let ts = stem.get(stem.len().checked_sub(16)?..)?;
    NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The regions to check: every region with digests, the home region, those
/// the chain heads name, and those the auditor named. A region whose digests
/// are all gone has no folder left: it is checked, and reported, when the
/// state table (its chain head) or the auditor (`--regions`) names it.
async fn regions<S: Source>(src: &S, req: &Request, root: &str) -> Result<Vec<String>, StoreError> {
    let mut r = src.folders(&req.bucket, root).await?;
    // The trail's own account has a home-region chain from the start; an
    // organization's member has chains only where it had events (their
    // heads name them when the state table is read).
    if req.organization_id.is_none() {
        r.push(req.home_region.clone());
    }
    r.extend(req.heads.keys().cloned());
    r.extend(req.segments.keys().cloned());
    r.extend(req.regions.iter().cloned());
    r.sort();
    r.dedup();
    Ok(r)
}

/// Log files queued between the chain walk and the log checks.
const LOG_QUEUE: usize = 256;

/// Validates every region's chain of the trail over the range, handing each
/// finding to `sink` as soon as it is made (digests in walk order, log
/// files as their checks complete, `concurrency` at a time).
pub async fn validate<S: Source>(
    src: &S,
    keys: &Keys,
    req: &Request,
    mut sink: impl FnMut(Finding) + Send,
) -> Result<Report, StoreError> {
    let root = req.folders("CloudTrail-Digest");
    let regions = regions(src, req, &root).await?;
    let (log_tx, log_rx) = mpsc::channel::<QueuedLog>(LOG_QUEUE);
    let (out_tx, mut out_rx) = mpsc::unbounded::<Finding>();
    let walk = {
        let (mut log_tx, out_tx) = (log_tx, out_tx.clone());
        let (regions, root) = (&regions, &root);
        async move {
            let mut found = BTreeMap::new();
            for region in regions {
                let chain = RegionChain {
                    src,
                    keys,
                    req,
                    root,
                    region,
                    out: &out_tx,
                };
                let mut here = Found::default();
                chain.check(&mut here, &mut log_tx).await?;
                found.insert(region.clone(), here);
            }
            if req.report_unlisted {
                // A region with log files and no digests at all: no digest
                // lists any of its files, so each delivered in the range
                // is reported (a planted folder is found this way).
                let log_root = req.folders("CloudTrail");
                for region in src.folders(&req.bucket, &log_root).await? {
                    if regions.contains(&region) {
                        continue;
                    }
                    let chain = RegionChain {
                        src,
                        keys,
                        req,
                        root,
                        region: &region,
                        out: &out_tx,
                    };
                    // As far as a digest would be due by now (the tail
                    // rule): a region that has just started is not
                    // reported before its first digest could exist.
                    let due = req.end.min(req.now) - Duration::hours(1) - req.tail_grace;
                    let whole_range = Listed {
                        keys: HashSet::new(),
                        spans: vec![(req.start, digest_end(&due))],
                    };
                    chain.report_unlisted(&whole_range).await?;
                }
            }
            Ok::<_, StoreError>(found)
        }
    };
    let logs = {
        let out_tx = out_tx;
        async move {
            log_rx
                .map(|(region, log)| check_log(src, region, log))
                .buffered(req.concurrency.max(1))
                .try_for_each(|f| {
                    let sent = out_tx.unbounded_send(f);
                    async move {
                        sent.map_err(|e| StoreError::Backend {
                            operation: "report",
                            resource: "findings".into(),
                            message: e.to_string(),
                        })
                    }
                })
                .await
        }
    };
    let mut report = Report::default();
    for region in &regions {
        report.regions.insert(region.clone(), Report::default());
    }
    let drain = async {
        while let Some(f) = out_rx.next().await {
            report.count(&f);
            sink(f);
        }
    };
    let (walked, checked, ()) = futures::join!(walk, logs, drain);
    let found = walked?;
    checked?;
    let mut all = Found::default();
    for (region, here) in found {
        all.merge(&here);
        let counts = report.regions.entry(region).or_default();
        (counts.found_start, counts.found_end) = (here.start, here.end);
    }
    report.found_start = all.start;
    report.found_end = all.end;
    Ok(report)
}

/// A log file a valid digest lists, queued for checking, with the region
/// of its digest's chain.
type QueuedLog = (String, DigestLogFile);

async fn check_log<S: Source>(
    src: &S,
    region: String,
    log: DigestLogFile,
) -> Result<Finding, StoreError> {
    let hashed = src.hash_log(&log.s3_bucket, &log.s3_object).await?;
    let inflated = hashed.as_ref().and_then(|h| h.as_ref().ok()).map(|h| h.len);
    let problem = match hashed {
        None => Some(NOT_FOUND.to_owned()),
        Some(Err(GzError::TrailingData)) => Some(GzError::TrailingData.to_string()),
        Some(Err(GzError::Invalid(_) | GzError::TooLarge(_))) => Some(BAD_FORMAT.to_owned()),
        Some(Ok(h)) if h.sha256 != log.hash_value => Some(BAD_HASH.to_owned()),
        Some(Ok(_)) => None,
    };
    Ok(Finding {
        kind: Kind::Log,
        location: src.location(&log.s3_bucket, &log.s3_object),
        problem,
        bytes: inflated.unwrap_or(0),
        listed: 0,
        region,
    })
}

/// The time range covered by the valid digests.
#[derive(Default)]
pub(super) struct Found {
    start: Option<String>,
    end: Option<String>,
}

impl Found {
    /// Widens the range to cover a valid digest.
    fn extend(&mut self, d: &DigestFile) {
        if self.start.as_ref().is_none_or(|s| *s > d.digest_start_time) {
            self.start = Some(d.digest_start_time.clone());
        }
        if self.end.as_ref().is_none_or(|e| *e < d.digest_end_time) {
            self.end = Some(d.digest_end_time.clone());
        }
    }

    /// The range a report found.
    pub(super) fn of(report: &Report) -> Self {
        Found {
            start: report.found_start.clone(),
            end: report.found_end.clone(),
        }
    }

    /// Widens the range to cover another.
    pub(super) fn merge(&mut self, other: &Found) {
        if let Some(s) = &other.start {
            if self.start.as_ref().is_none_or(|mine| mine > s) {
                self.start = Some(s.clone());
            }
        }
        if let Some(e) = &other.end {
            if self.end.as_ref().is_none_or(|mine| mine < e) {
                self.end = Some(e.clone());
            }
        }
    }
}

/// The log files the valid digests of one region list, and the spans
/// (start to end) those digests cover (for `report_unlisted`).
#[derive(Default)]
struct Listed {
    keys: HashSet<String>,
    spans: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Listed {
    fn add(&mut self, d: &DigestFile) {
        self.keys
            .extend(d.log_files.iter().map(|l| l.s3_object.clone()));
        if let (Ok(start), Ok(end)) = (
            crate::time::parse(&d.digest_start_time),
            crate::time::parse(&d.digest_end_time),
        ) {
            self.spans.push((start, end));
        }
    }
}

/// What the walk knows of the digest it goes to next: the hash and
/// signature the newer digest says it has (none for the newest).
struct Link {
    sha256: Option<String>,
    signature: Option<String>,
}

/// The next digest to visit: its end time, key, and what links it.
type Step = (DateTime<Utc>, String, Option<Link>);

/// One region's chain: found in range, checked for a truncated tail,
/// walked newest to oldest, and what the walk never reached reported.
struct RegionChain<'a, S> {
    src: &'a S,
    keys: &'a Keys,
    req: &'a Request,
    root: &'a str,
    region: &'a str,
    out: &'a mpsc::UnboundedSender<Finding>,
}

impl<S: Source> RegionChain<'_, S> {
    async fn check(
        &self,
        found_range: &mut Found,
        logs: &mut mpsc::Sender<QueuedLog>,
    ) -> Result<(), StoreError> {
        let found = self.in_range().await?;
        self.report_tail(&found)?;
        self.report_segment_ends(&found)?;
        let mut listed = Listed::default();
        let visited = self.walk(&found, found_range, logs, &mut listed).await?;
        self.report_strays(&found, &visited).await?;
        if self.req.report_unlisted {
            self.report_unlisted(&listed).await?;
        }
        Ok(())
    }

    /// Log files in this region's folders that no valid digest lists,
    /// delivered in an hour a valid digest covers (a digest lists exactly
    /// the files delivered in its hour, and a file's name carries its
    /// delivery minute), within the range asked for. In the day folders
    /// those hours fall in, an object whose name is not a log file of this
    /// account and region, or names another day than its folder, is
    /// reported too: nothing else belongs there. Hours whose digest is
    /// missing or invalid are not covered (that digest is reported).
    async fn report_unlisted(&self, listed: &Listed) -> Result<(), StoreError> {
        let req = self.req;
        let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = listed
            .spans
            .iter()
            .map(|(s, e)| ((*s).max(req.start), (*e).min(req.end)))
            .filter(|(s, e)| s < e)
            .collect();
        let mut days: Vec<chrono::NaiveDate> = Vec::new();
        for (s, e) in &spans {
            let mut day = s.date_naive();
            let last = (*e - Duration::seconds(1)).date_naive();
            while day <= last {
                days.push(day);
                match day.succ_opt() {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        days.sort();
        days.dedup();
        let stem = format!("{}_CloudTrail_{}_", req.account_id, self.region);
        for day in days {
            let folder = format!(
                "{}{}/{}/",
                req.folders("CloudTrail"),
                self.region,
                day.format("%Y/%m/%d")
            );
            for key in self.src.list(&req.bucket, &folder, "").await? {
                if listed.keys.contains(&key) {
                    continue;
                }
                let name = key.rsplit('/').next().unwrap_or_default();
                let delivered = name
                    .strip_prefix(&stem)
                    .filter(|_| name.ends_with(".json.gz"))
                    .and_then(|rest| rest.get(..14))
                    .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%MZ").ok())
                    .map(|t| t.and_utc());
                let report = match delivered {
                    // Not a log file's name, or in another day's folder.
                    None => true,
                    Some(t) if t.date_naive() != day => true,
                    Some(t) => spans.iter().any(|(s, e)| *s <= t && t < *e),
                };
                if report {
                    self.emit(Kind::Log, &key, Some(UNLISTED.into()))?;
                }
            }
        }
        Ok(())
    }

    fn emit(&self, kind: Kind, key: &str, problem: Option<String>) -> Result<(), StoreError> {
        self.emit_listing(kind, key, problem, 0)
    }

    /// As [`Self::emit`], for a valid digest that lists `listed` log files.
    fn emit_listing(
        &self,
        kind: Kind,
        key: &str,
        problem: Option<String>,
        listed: usize,
    ) -> Result<(), StoreError> {
        let finding = Finding {
            kind,
            location: self.src.location(&self.req.bucket, key),
            problem,
            bytes: 0,
            listed,
            region: self.region.to_owned(),
        };
        self.out
            .unbounded_send(finding)
            .map_err(|e| StoreError::Backend {
                operation: "report",
                resource: "findings".into(),
                message: e.to_string(),
            })
    }

    fn expected_key(&self, end: &DateTime<Utc>) -> String {
        let req = self.req;
        digest_key(
            req.prefix.as_deref(),
            &req.place(self.region),
            &req.trail_name,
            &req.home_region,
            end,
        )
    }

    /// The digests of this trail in range, as the AWS CLI picks them: end
    /// times from the start to one hour past the end; by end time.
    async fn in_range(&self) -> Result<BTreeMap<DateTime<Utc>, Vec<String>>, StoreError> {
        let req = self.req;
        let folder = format!("{}{}/", self.root, self.region);
        let stem = format!(
            "{}_CloudTrail-Digest_{}_{}_{}_",
            req.account_id, self.region, req.trail_name, req.home_region
        );
        let start_after = self.expected_key(&(req.start - Duration::minutes(1)));
        let last_end = req.end + Duration::hours(1);
        let mut found: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
        for key in self.src.list(&req.bucket, &folder, &start_after).await? {
            let name = key.rsplit('/').next().unwrap_or_default();
            let Some(end) = key_end(&key) else { continue };
            if name.starts_with(&stem) && end >= req.start && end <= last_end {
                found.entry(end).or_default().push(key);
            }
        }
        Ok(found)
    }

    /// Tail: with hourly digests, the range must hold them up to its end
    /// minus an hour and the grace — or, if the chain head is known, up to
    /// the head (and no further once the chain has ended).
    fn report_tail(&self, found: &BTreeMap<DateTime<Utc>, Vec<String>>) -> Result<(), StoreError> {
        let (req, hour) = (self.req, Duration::hours(1));
        let last_end = digest_end(&(req.end + hour));
        let by_rule = digest_end(&(req.end.min(req.now) - hour - req.tail_grace));
        let expected_newest = match req.heads.get(self.region) {
            Some(h) if h.last => h.end.min(last_end),
            Some(h) => h.end.min(last_end).max(by_rule),
            None => by_rule,
        };
        // A chain that began after the range (its first mark is the start
        // of its first segment, later: a chain begins with its first file,
        // and this region's, or this member account's, first event came
        // later) owes no digest in it. (A chain stopped before marks were
        // kept has its first mark at a later restart: its tail before that
        // is not checked here; its digests found still are.)
        let first_mark = self.marks().iter().min_by_key(|m| (m.end, m.boundary));
        if first_mark.is_some_and(|m| m.boundary == Boundary::Start && m.end > expected_newest) {
            return Ok(());
        }
        // A range that ends during a stop: the segment before it ended, and
        // its end is checked against its final mark (report_segment_ends).
        let latest_mark = self
            .marks()
            .iter()
            .filter(|m| m.end <= expected_newest)
            .max_by_key(|m| (m.end, m.boundary));
        if latest_mark.is_some_and(|m| m.boundary == Boundary::Final && m.end < expected_newest) {
            return Ok(());
        }
        let tail_from = match found.keys().next_back() {
            Some(newest) => *newest + hour,
            // Nothing at all: from the first hour boundary in the range.
            None => digest_end(&(req.start + hour - Duration::seconds(1))),
        };
        // Not below the start of the segment the tail belongs to.
        let tail_from = self
            .segment_start(&expected_newest)
            .map_or(tail_from, |s| tail_from.max(s));
        let problem = format!(
            "{NOT_FOUND} (the chain must reach {}: digests are written every hour)",
            crate::time::format(&expected_newest)
        );
        self.report_missing(expected_newest, tail_from, &problem)
    }

    /// Reports the digests from `newest` down to `floor` (and the range's
    /// start) as missing.
    fn report_missing(
        &self,
        newest: DateTime<Utc>,
        floor: DateTime<Utc>,
        problem: &str,
    ) -> Result<(), StoreError> {
        let mut t = newest;
        while t >= floor && t >= self.req.start {
            self.emit(Kind::Digest, &self.expected_key(&t), Some(problem.into()))?;
            t -= Duration::hours(1);
        }
        Ok(())
    }

    /// This region's chain segment marks (from the state table).
    fn marks(&self) -> &[SegmentMark] {
        self.req
            .segments
            .get(self.region)
            .map_or(&[][..], Vec::as_slice)
    }

    /// The first digest of the segment the digest ending at `end` belongs
    /// to, if the state table recorded it.
    fn segment_start(&self, end: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.marks()
            .iter()
            .filter(|m| m.boundary == Boundary::Start && m.end <= *end)
            .map(|m| m.end)
            .max()
    }

    /// Every ended segment must reach its final digest: deleting the last
    /// digests (and their log files) before a stop leaves an older digest
    /// as the segment's apparent end, which no link and no tail rule would
    /// show. The state's append-only marks say where each segment ended.
    fn report_segment_ends(
        &self,
        found: &BTreeMap<DateTime<Utc>, Vec<String>>,
    ) -> Result<(), StoreError> {
        let req = self.req;
        let last_end = req.end + Duration::hours(1);
        // The current chain's final digest is the tail rule's (report_tail).
        let head_end = req.heads.get(self.region).filter(|h| h.last).map(|h| h.end);
        for m in self.marks() {
            let l = m.end;
            if m.boundary != Boundary::Final
                || l < req.start
                || l > last_end
                || Some(l) == head_end
                || found.contains_key(&l)
            {
                continue;
            }
            let start = self.segment_start(&l);
            let floor = found
                .range(start.unwrap_or(req.start)..l)
                .next_back()
                .map_or(start.unwrap_or(req.start), |(newest, _)| {
                    *newest + Duration::hours(1)
                });
            let problem = format!(
                "{NOT_FOUND} (the chain segment must reach {}, where it ended when the trail stopped)",
                crate::time::format(&l)
            );
            self.report_missing(l, floor, &problem)?;
        }
        Ok(())
    }

    /// The walk, newest to oldest, following each digest's link to the
    /// previous one; the log files of valid digests go to `logs`. Returns
    /// the keys visited.
    async fn walk(
        &self,
        found: &BTreeMap<DateTime<Utc>, Vec<String>>,
        found_range: &mut Found,
        logs: &mut mpsc::Sender<QueuedLog>,
        listed: &mut Listed,
    ) -> Result<HashSet<String>, StoreError> {
        let found_keys: HashSet<&String> = found.values().flatten().collect();
        // The digests found, fetched ahead in a window of `concurrency` GETs
        // in the order the walk visits them when the chain is whole (newest
        // first), so while it checks and links them one after another the
        // next ones are already on their way. The walk only goes to older
        // digests: what the window yields before the one it wants (newer,
        // or a stray copy at the same time) is dropped; the one older than
        // it is kept for the next step (at most one digest held); a digest
        // the window is past (a link to a newer one) is fetched on its own.
        let (src, bucket) = (self.src, self.req.bucket.as_str());
        let mut ahead = futures::stream::iter(
            found
                .iter()
                .rev()
                .flat_map(|(end, ks)| ks.iter().map(move |k| (*end, k.clone()))),
        )
        .map(|(end, k)| async move {
            let fetched = src.get_digest(bucket, &k).await;
            (end, k, fetched)
        })
        .buffered(self.req.concurrency.max(1));
        type Came = (DateTime<Utc>, String, Result<Option<Fetched>, StoreError>);
        let mut came: Option<Came> = None;
        let older = |end: &DateTime<Utc>| -> Option<(DateTime<Utc>, String)> {
            found
                .range(..*end)
                .next_back()
                .and_then(|(e, ks)| ks.first().map(|k| (*e, k.clone())))
        };
        let starts: HashSet<DateTime<Utc>> = self
            .marks()
            .iter()
            .filter(|m| m.boundary == Boundary::Start)
            .map(|m| m.end)
            .collect();
        let mut visited: HashSet<String> = HashSet::new();
        let mut cursor: Option<Step> = found
            .iter()
            .next_back()
            .and_then(|(e, ks)| ks.first().map(|k| (*e, k.clone(), None)));
        while let Some((end, key, link)) = cursor.take() {
            if end < self.req.start || !visited.insert(key.clone()) {
                break;
            }
            if !found_keys.contains(&key) {
                self.emit(Kind::Digest, &key, Some(NOT_FOUND.into()))?;
                // Its predecessor is the previous hour's digest, unless no
                // digest older than it was found at all, or it began a
                // segment (then the next older one found is the previous
                // segment's).
                cursor = if starts.contains(&end) {
                    older(&end).map(|(e, k)| (e, k, None))
                } else {
                    older(&end).map(|_| {
                        let prev = end - Duration::hours(1);
                        (prev, self.expected_key(&prev), None)
                    })
                };
                continue;
            }
            let fetched = loop {
                let next = match came.take() {
                    Some(c) => Some(c),
                    None => ahead.next().await,
                };
                match next {
                    Some((_, k, f)) if k == key => break f,
                    // Past it: keep this one, fetch the wanted one alone.
                    Some((e, k, f)) if e < end => {
                        came = Some((e, k, f));
                        break src.get_digest(bucket, &key).await;
                    }
                    Some(_) => {}
                    None => break src.get_digest(bucket, &key).await,
                }
            }?;
            let checked = self.check_linked(&key, link.as_ref(), fetched)?;
            if let (None, Some(d)) = (&checked.problem, &checked.digest) {
                // Only a valid digest vouches for the files it lists.
                listed.add(d);
                found_range.extend(d);
                // Its log files are checked while the walk goes on.
                for log in &d.log_files {
                    logs.send((self.region.to_owned(), log.clone()))
                        .await
                        .map_err(|e| StoreError::Backend {
                            operation: "queue log file",
                            resource: log.s3_object.clone(),
                            message: e.to_string(),
                        })?;
                }
            }
            cursor = match checked.digest {
                Some(DigestFile {
                    previous_digest_s3_bucket: Some(pb),
                    previous_digest_s3_object: Some(pk),
                    previous_digest_hash_value,
                    previous_digest_signature,
                    ..
                }) if pb == self.req.bucket => key_end(&pk).map(|pe| {
                    let link = Link {
                        sha256: previous_digest_hash_value,
                        signature: previous_digest_signature,
                    };
                    (pe, pk, Some(link))
                }),
                // A chain's first digest (or one that cannot be read): go
                // on with the next older digest found.
                _ => older(&end).map(|(e, k)| (e, k, None)),
            };
        }
        Ok(visited)
    }

    /// Checks one digest, and that it is the one its newer neighbour
    /// links to; reports the verdict.
    fn check_linked(
        &self,
        key: &str,
        link: Option<&Link>,
        fetched: Option<Fetched>,
    ) -> Result<Checked, StoreError> {
        let mut checked = check_fetched(self.keys, self.req, key, fetched);
        if checked.problem.is_none()
            && link.is_some_and(|l| l.sha256 != checked.sha256 || l.signature != checked.signature)
        {
            checked.problem = Some(BAD_HASH.into());
        }
        let listed = match (&checked.problem, &checked.digest) {
            (None, Some(d)) => d.log_files.len(),
            _ => 0,
        };
        self.emit_listing(Kind::Digest, key, checked.problem.clone(), listed)?;
        Ok(checked)
    }

    /// Digests in range the walk never reached: copies or strays.
    async fn report_strays(
        &self,
        found: &BTreeMap<DateTime<Utc>, Vec<String>>,
        visited: &HashSet<String>,
    ) -> Result<(), StoreError> {
        for key in found.values().flatten().filter(|k| !visited.contains(*k)) {
            let checked = check_digest(self.src, self.keys, self.req, key).await?;
            let problem = match checked.problem {
                Some(p) if p != NOT_FOUND => p,
                _ => "not part of the digest chain".into(),
            };
            self.emit(Kind::Digest, key, Some(problem))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_time_comes_from_the_key_name() {
        let k = "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/11/24/1_CloudTrail-Digest_us-east-1_audit_us-east-1_20261124T030000Z.json.gz";
        assert_eq!(
            key_end(k),
            Some(crate::time::parse("2026-11-24T03:00:00Z").unwrap())
        );
        assert_eq!(key_end("short.json.gz"), None);
        assert_eq!(key_end("AWSLogs/x_20261124T0300.json"), None);
    }

    #[test]
    fn keys_are_read_as_pem_or_der_spki_or_pkcs1_with_one_fingerprint() {
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
        let pem = |label: &str, der: &[u8]| {
            pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
        };
        let mut keys = Keys::default();
        for bytes in [
            spki.to_vec(),
            pkcs1.clone(),
            pem("PUBLIC KEY", spki).into_bytes(),
            pem("RSA PUBLIC KEY", &pkcs1).into_bytes(),
        ] {
            assert_eq!(keys.add_file_bytes(&bytes).unwrap(), expected);
        }
        assert!(keys.add_file_bytes(b"junk").is_err());
        assert!(keys
            .add_file_bytes(pem("CERTIFICATE", spki).as_bytes())
            .is_err());
    }

    #[test]
    fn report_lines_and_summary_read_like_the_aws_clis() {
        let valid = Finding {
            kind: Kind::Digest,
            location: "s3://b/d".into(),
            problem: None,
            bytes: 0,
            listed: 3,
            region: "eu-west-1".into(),
        };
        let invalid = Finding {
            kind: Kind::Log,
            location: "s3://b/l".into(),
            problem: Some(BAD_HASH.into()),
            bytes: 0,
            listed: 0,
            region: "us-east-2".into(),
        };
        assert_eq!(valid.line(), "Digest file\ts3://b/d\tvalid");
        assert_eq!(
            invalid.line(),
            "Log file\ts3://b/l\tINVALID: hash value doesn't match"
        );
        // A hostile key cannot forge a second line, a tab-separated
        // column, a terminal escape or a reversed name.
        let forged = Finding {
            location: "s3://b/x.json.gz\n\u{1b}[2KLog file\ts3://b/y\tvalid\u{202e}zg.nosj".into(),
            ..invalid.clone()
        };
        assert_eq!(
            forged.line(),
            "Log file\ts3://b/x.json.gz\\n\\u{1b}[2KLog file\\ts3://b/y\\tvalid\\u{202e}zg.nosj\tINVALID: hash value doesn't match"
        );
        assert_eq!(
            printable("AWSLogs/1/CloudTrail/é x.json.gz"),
            "AWSLogs/1/CloudTrail/é x.json.gz"
        );
        // A key spelling "\n" stays distinguishable from one holding a
        // newline; separators and bidi marks are escaped too.
        assert_eq!(printable(r"a\nb"), r"a\\nb");
        assert_ne!(printable(r"a\nb"), printable("a\nb"));
        assert_eq!(printable("a\u{2028}b\u{200f}"), r"a\u{2028}b\u{200f}");
        let mut r = Report::default();
        r.count(&valid);
        assert!(r.all_valid());
        r.count(&invalid);
        assert_eq!(r.summary(), "1/1 digest files valid, 0/1 log files valid");
        assert!(!r.all_valid());
        // … and each in its region's counts
        assert_eq!(
            r.regions["eu-west-1"].summary(),
            "1/1 digest files valid, 0/0 log files valid"
        );
        assert!(r.regions["eu-west-1"].all_valid());
        assert_eq!(
            r.regions["us-east-2"].summary(),
            "0/0 digest files valid, 0/1 log files valid"
        );
        assert!(!r.regions["us-east-2"].all_valid());
    }
}
