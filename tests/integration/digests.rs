//! Hourly signed digests and the validator, through DynamoDB, S3 and KMS on
//! moto (whose KMS signs with real RSA keys): chains, catch-up, stop/start,
//! overlapping runs, the in-flight delivery at an hour boundary, validation
//! online and offline, from S3 and from a local copy, the tamper matrix, and
//! the AWS CLI's own validator on our files.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::AtomicUsize;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::MetadataDirective;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use trailkeep_shared::aws::kms::{self, KeyMap, KmsSigner};
use trailkeep_shared::delivery::{DeliverSettings, Deliverer};
use trailkeep_shared::digest::{
    self, string_to_sign, DigestFile, DigestReport, DigestSettings, DigestState, Digester, Signer,
};
use trailkeep_shared::ingest::ingest;
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::trail::{admin, NewTrail, TrailUpdate};
use trailkeep_shared::trail::{HealthStore, Trail};
use trailkeep_shared::validate::localcopy::{self, LocalDir};
use trailkeep_shared::validate::organization;
use trailkeep_shared::validate::{self, Finding, Keys, Kind, Request};

use crate::delivery::{gunzip, DiesAfter, Pipeline, ACCOUNT, HOME};
use crate::helpers::{event_json, parse_time, sdk_config};

const TRAIL: &str = "audit";

/// A KMS signing key on moto: RSA_2048, SIGN_VERIFY.
pub(crate) async fn kms_key(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create key")
        .key_metadata
        .expect("metadata")
        .arn
        .expect("arn")
}

/// A KMS key on moto for SSE-KMS (symmetric, the default kind): its ARN.
pub(crate) async fn sse_key(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .description("trailkeep test: log file encryption")
        .send()
        .await
        .expect("create key")
        .key_metadata
        .expect("metadata")
        .arn
        .expect("arn")
}

/// One trail with log file validation, its pipeline and signer.
struct Audit {
    p: Pipeline,
    kms: aws_sdk_kms::Client,
    key_arn: String,
    signer: KmsSigner,
    trails: Vec<Trail>,
    settings: DigestSettings,
    events: usize,
}

impl Audit {
    async fn new() -> Self {
        let p = Pipeline::new().await;
        let sdk = sdk_config().await;
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key_arn = kms_key(&kms).await;
        let signer = KmsSigner::new(&sdk, KeyMap::parse(&key_arn).unwrap());
        let new = NewTrail {
            name: TRAIL.into(),
            s3_bucket_name: p.bucket.name.clone(),
            log_file_validation_enabled: true,
            ..NewTrail::default()
        };
        admin::create(&p.state.trails(), ACCOUNT, HOME, new)
            .await
            .unwrap();
        Self {
            p,
            kms,
            key_arn,
            signer,
            trails: Vec::new(),
            settings: DigestSettings {
                regions: vec![HOME.into()],
                ..DigestSettings::default()
            },
            events: 0,
        }
    }

    async fn set_logging(&mut self, on: bool, at: DateTime<Utc>) {
        let store = self.p.state.trails();
        admin::set_logging(&store, TRAIL, on, at).await.unwrap();
        self.trails = admin::describe(&store, &[]).await.unwrap();
    }

    /// Makes the trail an organization trail of `org`, logging from `t0`.
    async fn organization_trail(&mut self, org: &str, t0: DateTime<Utc>) {
        let update = TrailUpdate {
            organization_id: Some(Some(org.into())),
            ..TrailUpdate::default()
        };
        admin::update(&self.p.state.trails(), TRAIL, update)
            .await
            .unwrap();
        self.set_logging(true, t0).await;
    }

    /// Three hours from `t0`: each of `members` sends an event at each of
    /// `minutes` past the hour, the stack's account one an hour; deliver
    /// runs every 5 minutes, digest at ten past each hour, to 03:10.
    async fn three_org_hours(&mut self, t0: DateTime<Utc>, members: &[&str], minutes: &[&str]) {
        let mut t = t0;
        while t < t0 + Duration::hours(3) + Duration::minutes(15) {
            let minute = t.format("%M").to_string();
            if t < t0 + Duration::hours(3) && minutes.contains(&minute.as_str()) {
                for member in members {
                    self.ingest_of(member, t + Duration::seconds(20)).await;
                }
                if minute == "00" {
                    self.ingest(t + Duration::seconds(40)).await;
                }
            }
            self.deliver(t + Duration::minutes(4)).await;
            if minute == "10" {
                self.digest(t).await;
            }
            t += Duration::minutes(5);
        }
    }

    /// One management event in the home region, ingested at `at`.
    async fn ingest(&mut self, at: DateTime<Utc>) {
        self.ingest_of(ACCOUNT, at).await;
    }

    /// One management event of `account` in the home region (forwarded
    /// from its own bus), ingested at `at`.
    async fn ingest_of(&mut self, account: &str, at: DateTime<Utc>) {
        self.events += 1;
        let mut p = event_json("eventbridge/api-call-write.json");
        p["account"] = json!(account);
        p["detail"]["recipientAccountId"] = json!(account);
        p["detail"]["eventID"] = json!(format!("00000000-0000-4000-8000-{:012}", self.events));
        p["detail"]["eventTime"] = json!(trailkeep_shared::time::format(&at));
        let ctx = Context {
            account_id: ACCOUNT.into(),
        };
        ingest(&self.p.targets(&self.trails), &ctx, &p.to_string(), &at)
            .await
            .unwrap();
    }

    async fn deliver(&self, at: DateTime<Utc>) {
        let settings = DeliverSettings::default();
        let deliverer = Deliverer {
            staging: &self.p.staging,
            logs: &self.p.sink,
            notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
            events: &trailkeep_shared::testkit::MemoryEventLog::default(),
            settings: &settings,
        };
        deliverer
            .run(&self.trails, &at)
            .await
            .into_result()
            .unwrap();
    }

    async fn digest(&self, at: DateTime<Utc>) -> DigestReport {
        let digester = Digester {
            state: &self.p.staging,
            signer: &self.signer,
            bucket: &self.p.sink,
            settings: &self.settings,
        };
        digester.run(&self.trails, &at).await.into_result().unwrap()
    }

    /// Five-minute ticks over `[from, to)`: `events(tick)` events are
    /// ingested, deliver runs every tick, digest at ten past each hour
    /// unless `digest_runs(hour start)` says the run was missed.
    async fn simulate(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        events: impl Fn(DateTime<Utc>) -> usize,
        digest_runs: impl Fn(DateTime<Utc>) -> bool,
    ) {
        let mut t = from;
        while t < to {
            for i in 0..events(t) {
                self.ingest(t + Duration::seconds(20 + i as i64)).await;
            }
            self.deliver(t + Duration::minutes(4)).await;
            if t.format("%M").to_string() == "10" && digest_runs(t) {
                self.digest(t).await;
            }
            t += Duration::minutes(5);
        }
    }

    fn request(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Request {
        Request {
            bucket: self.p.bucket.name.clone(),
            prefix: None,
            account_id: ACCOUNT.into(),
            organization_id: None,
            trail_name: TRAIL.into(),
            home_region: HOME.into(),
            regions: Vec::new(),
            start,
            end,
            now: end,
            heads: HashMap::new(),
            segments: HashMap::new(),
            tail_grace: Duration::minutes(validate::DEFAULT_TAIL_GRACE_MINUTES),
            concurrency: 4,
            report_unlisted: false,
        }
    }

    /// The keys an auditor trusts: the stack's signing key ARN, as
    /// `validate-logs --signing-key-arn` reads them.
    async fn keys(&self) -> Keys {
        kms::trusted_keys(&sdk_config().await, std::slice::from_ref(&self.key_arn))
            .await
            .unwrap()
    }

    /// Every digest in the bucket, by end time, parsed.
    async fn digests(&self) -> BTreeMap<String, (String, DigestFile)> {
        let mut out = BTreeMap::new();
        for (key, gz) in self.p.bucket.objects().await {
            if key.contains("/CloudTrail-Digest/") {
                let d: DigestFile = serde_json::from_slice(&gunzip(&gz)).unwrap();
                out.insert(d.digest_end_time.clone(), (key, d));
            }
        }
        out
    }

    async fn delete(self) {
        let _ = self
            .kms
            .schedule_key_deletion()
            .key_id(&self.key_arn)
            .send()
            .await;
        self.p.delete().await;
    }
}

/// Validates, collecting the findings.
pub(crate) async fn check<S: validate::Source>(src: &S, keys: &Keys, req: &Request) -> Checked {
    let mut findings = Vec::new();
    let report = validate::validate(src, keys, req, |f| findings.push(f))
        .await
        .unwrap();
    Checked { report, findings }
}

pub(crate) struct Checked {
    pub report: validate::Report,
    pub findings: Vec<Finding>,
}

impl Checked {
    fn digests(&self) -> (usize, usize) {
        (self.report.digests_valid, self.report.digests_total)
    }
    fn logs(&self) -> (usize, usize) {
        (self.report.logs_valid, self.report.logs_total)
    }
    fn all_valid(&self) -> bool {
        self.report.all_valid()
    }
}

pub(crate) fn problems(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.problem.is_some())
        .map(Finding::line)
        .collect()
}

/// The PEM file of the signing key, as `list-public-keys --pem-dir` writes it.
pub fn pem_file(pkcs1: &[u8], dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("key.pem");
    let pem =
        pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, pkcs1).unwrap();
    std::fs::write(&path, pem).unwrap();
    path
}

/// A copy of the bucket as `download-logs` lays it out.
async fn local_copy(a: &Audit, dir: &std::path::Path) {
    for (key, gz) in a.p.bucket.objects().await {
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, gz).unwrap();
        let head = a.p.bucket.head(&key).await;
        if let Some(meta) = head.metadata().filter(|m| !m.is_empty()) {
            std::fs::write(
                dir.join(localcopy::sidecar(&key)),
                serde_json::to_string(meta).unwrap(),
            )
            .unwrap();
        }
    }
    std::fs::write(
        dir.join(localcopy::COPY_INFO),
        json!({ "bucket": a.p.bucket.name }).to_string(),
    )
    .unwrap();
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trailkeep-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Issue 16, item 1: a trail with a `KmsKeyId` has its log files and
/// digests written under SSE-KMS with that key (and an S3 Bucket Key);
/// after the key is removed, new files carry no encryption header, so the
/// bucket's default applies. moto stores and returns the headers but
/// encrypts nothing and checks no KMS permission: which roles may use the
/// key is evaluated in policies.rs. The files validate either way.
#[tokio::test]
async fn a_trail_with_a_kms_key_writes_its_files_under_sse_kms() {
    let mut a = Audit::new().await;
    let log_key = sse_key(&a.kms).await;
    let store = a.p.state.trails();
    let set_key = |key: &str| TrailUpdate {
        kms_key_id: Some(key.to_owned()),
        ..TrailUpdate::default()
    };
    admin::update(&store, TRAIL, set_key(&log_key))
        .await
        .unwrap();
    let start = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, start).await;
    a.simulate(start, start + Duration::minutes(75), |_| 1, |_| true)
        .await;
    let encrypted: Vec<String> =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    // The key is removed: the next files are written without it.
    admin::update(&store, TRAIL, set_key("")).await.unwrap();
    a.trails = admin::describe(&store, &[]).await.unwrap();
    a.simulate(
        start + Duration::minutes(75),
        start + Duration::minutes(135),
        |_| 1,
        |_| true,
    )
    .await;

    let mut seen = (0, 0);
    for (key, _) in a.p.bucket.objects().await {
        let head = a.p.bucket.head(&key).await;
        let digest = key.contains("/CloudTrail-Digest/");
        if encrypted.contains(&key) {
            seen.0 += 1;
            assert_eq!(
                head.server_side_encryption(),
                Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
                "{key}"
            );
            assert_eq!(head.ssekms_key_id(), Some(log_key.as_str()), "{key}");
            assert_eq!(head.bucket_key_enabled(), Some(true), "{key}");
        } else {
            seen.1 += 1;
            assert_eq!(
                head.server_side_encryption(),
                None,
                "{key} (digest: {digest})"
            );
            assert_eq!(head.ssekms_key_id(), None, "{key}");
        }
    }
    // Both kinds of file were written in both periods.
    let kinds = |keys: &[String]| {
        (
            keys.iter().any(|k| k.contains("/CloudTrail-Digest/")),
            keys.iter().any(|k| k.contains("/CloudTrail/")),
        )
    };
    assert_eq!(kinds(&encrypted), (true, true), "{encrypted:?}");
    let later: Vec<String> =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !encrypted.contains(k))
            .collect();
    assert_eq!(kinds(&later), (true, true), "{later:?}");
    assert!(seen.0 > 0 && seen.1 > 0, "{seen:?}");
    let keys = a.keys().await;
    let checked = check(
        &a.p.sink,
        &keys,
        &a.request(start, start + Duration::minutes(135)),
    )
    .await;
    assert!(checked.all_valid(), "{:?}", problems(&checked.findings));
    let _ = a.kms.schedule_key_deletion().key_id(&log_key).send().await;
    a.delete().await;
}

#[tokio::test]
async fn fifty_hours_of_digests_form_one_valid_chain_per_logging_period() {
    // GIVEN a trail logging from 00:05, with events every twenty minutes except
    // in two empty hours (05:00–07:00), digest runs missed from 10:10 to
    // 14:10 (an outage), a stop at 20:58 (its last events are delivered at
    // 21:02, so the final digest is 22:00's) and a restart at 23:40
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-20T00:00:00Z");
    let h = |n: i64| t0 + Duration::hours(n);
    a.set_logging(true, t0 + Duration::minutes(5)).await;
    let events = |t: DateTime<Utc>| {
        let hour = (t - t0).num_hours();
        let minute = t.format("%M").to_string();
        usize::from(!(5..7).contains(&hour) && ["05", "25", "45"].contains(&minute.as_str()))
    };
    let outage = |t: DateTime<Utc>| !(10..15).contains(&(t - t0).num_hours());
    a.simulate(t0, h(20) + Duration::minutes(58), events, outage)
        .await;
    a.set_logging(false, h(20) + Duration::minutes(58)).await;
    a.simulate(h(21), h(23) + Duration::minutes(40), events, |_| true)
        .await;
    a.set_logging(true, h(23) + Duration::minutes(40)).await;
    a.simulate(
        h(23) + Duration::minutes(40),
        h(52) + Duration::minutes(15),
        events,
        |_| true,
    )
    .await;

    // THEN one digest per hour: 01:00–22:00 (the 22:00 digest is the final
    // one after the stop) and 24:00–52:00 (a new chain), none in between
    let digests = a.digests().await;
    let ends: Vec<DateTime<Utc>> = digests.keys().map(|e| parse_time(e)).collect();
    let expected: Vec<DateTime<Utc>> = (1..=22).chain(24..=52).map(h).collect();
    assert_eq!(ends, expected);
    assert!(digests.len() >= 48);
    let chain_starts: Vec<&String> = digests
        .iter()
        .filter(|(_, (_, d))| d.previous_digest_signature.is_none())
        .map(|(end, _)| end)
        .collect();
    assert_eq!(
        chain_starts,
        ["2026-11-20T01:00:00Z", "2026-11-21T00:00:00Z"]
    );
    // Empty hours have digests with no log files and null event times.
    let empty = &digests["2026-11-20T07:00:00Z"].1;
    assert!(empty.log_files.is_empty() && empty.newest_event_time.is_none());
    // Every hour links to the previous hour, every start is the previous end.
    for w in digests.values().collect::<Vec<_>>().windows(2) {
        let ((prev_key, prev), (_, next)) = (w[0], w[1]);
        if next.previous_digest_s3_object.is_some() {
            assert_eq!(next.previous_digest_s3_object.as_ref(), Some(prev_key));
            assert_eq!(next.digest_start_time, prev.digest_end_time);
        }
    }
    // Every log file delivered before the last digest's end is listed in
    // exactly one digest (the ones after it wait for the next hour's).
    let last_end = h(52).format("%Y%m%dT%H%MZ").to_string();
    let (logs, later): (Vec<String>, Vec<String>) =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("/CloudTrail/"))
            .partition(|k| k.rsplit('_').nth(1).is_some_and(|t| *t < *last_end));
    assert_eq!(later.len(), 1, "the file delivered at 04:12");
    let mut listed: Vec<String> = digests
        .values()
        .flat_map(|(_, d)| d.log_files.iter().map(|l| l.s3_object.clone()))
        .collect();
    listed.sort();
    let (n, m) = (listed.len(), logs.len());
    assert!(listed == logs, "{n} listed, {m} delivered");
    assert!(logs.len() > 100, "{} log files", logs.len());

    // AND the validator finds everything valid: S3 + KMS key, S3 + PEM,
    // local copy + either
    let (start, end) = (t0, h(52) + Duration::minutes(15));
    let mut request = a.request(start, end);
    let keys = a.keys().await;
    let s3_report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&s3_report.findings), Vec::<String>::new());
    assert_eq!(s3_report.digests(), (51, 51));
    assert_eq!(s3_report.logs(), (logs.len(), logs.len()));
    // With the chain head read from the state table, too.
    let head = a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap();
    assert_eq!(head.end, h(52));
    request.heads.insert(HOME.into(), head);
    let dir = temp_dir("copy");
    let pem = pem_file(&a.signer.public_key(HOME).await.unwrap().pkcs1, &dir);
    let mut offline = Keys::default();
    offline
        .add_file_bytes(&std::fs::read(&pem).unwrap())
        .unwrap();
    let copy = dir.join("bucket");
    local_copy(&a, &copy).await;
    for report in [
        check(&a.p.sink, &offline, &request).await,
        check(&LocalDir::new(&copy), &keys, &request).await,
        check(&LocalDir::new(&copy), &offline, &request).await,
    ] {
        assert_eq!(problems(&report.findings), Vec::<String>::new());
        assert_eq!(report.findings.len(), s3_report.findings.len());
    }

    // AND the AWS CLI's own validator accepts the same files
    let out = awscli_validate(&a, start, end, &pem);
    assert_eq!(out["problems"], json!([]), "{out}");
    assert_eq!(out["digests"], json!(51), "{out}");
    // One gap, where the chain restarted at 24:00 after the stop (its
    // first digest links to nothing while 01:00–22:00 lie before it).
    assert_eq!(
        out["gaps"].as_array().map(Vec::len),
        Some(1),
        "one stop and restart, one gap: {out}"
    );
    assert_eq!(out["validLogs"], json!(logs.len()), "{out}");
    assert_eq!(out["invalidLogs"], json!(0), "{out}");
    // … and is not simply agreeing: with another key it refuses every digest.
    let other_key = kms_key(&a.kms).await;
    let other = KmsSigner::fetch(&a.kms, &other_key).await.unwrap();
    let wrong = pem_file(&other.pkcs1, &temp_dir("wrong"));
    let out = awscli_validate(&a, start, end, &wrong);
    assert_eq!(out["digests"], json!(0), "{out}");
    assert!(out["problems"].as_array().is_some_and(|p| !p.is_empty()));

    std::fs::remove_dir_all(&dir).unwrap();
    a.delete().await;
}

/// Issue 21, item 7: a stop ends a chain segment, and a restart begins a
/// new one with no link to it. Deleting the last digests (and their log
/// files) before a stop leaves the first segment looking shorter: no link
/// and no tail rule shows it. The state's append-only segment marks do.
#[tokio::test]
async fn deleting_the_digests_before_a_stop_is_reported_from_the_segment_marks() {
    // GIVEN a trail logging from 00:05, stopped at 02:50 (final digest
    // 03:00) and restarted at 04:40 (a new segment from 05:00), to 07:15
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    let h = |n: i64| t0 + Duration::hours(n);
    let events = |t: DateTime<Utc>| usize::from(t.format("%M").to_string() == "25");
    a.set_logging(true, t0 + Duration::minutes(5)).await;
    a.simulate(t0, h(2) + Duration::minutes(50), events, |_| true)
        .await;
    a.set_logging(false, h(2) + Duration::minutes(50)).await;
    a.simulate(h(3), h(4) + Duration::minutes(40), events, |_| true)
        .await;
    a.set_logging(true, h(4) + Duration::minutes(40)).await;
    let end = h(7) + Duration::minutes(15);
    a.simulate(h(4) + Duration::minutes(40), end, events, |_| true)
        .await;
    let digests = a.digests().await;
    let ends: Vec<DateTime<Utc>> = digests.keys().map(|e| parse_time(e)).collect();
    assert_eq!(ends, [1, 2, 3, 5, 6, 7].map(h));
    // The state table recorded each segment's first and final digest.
    let segments = a.p.staging.segments(TRAIL).await.unwrap();
    let marks: Vec<(digest::Boundary, DateTime<Utc>, String)> = segments[HOME]
        .iter()
        .map(|m| (m.boundary, m.end, m.key.clone()))
        .collect();
    let key_at = |n: i64| digests[&trailkeep_shared::time::format(&h(n))].0.clone();
    assert_eq!(
        marks,
        [
            (digest::Boundary::Start, h(1), key_at(1)),
            (digest::Boundary::Final, h(3), key_at(3)),
            (digest::Boundary::Start, h(5), key_at(5)),
        ]
    );
    let keys = a.keys().await;
    let mut request = a.request(t0, end);
    request.heads.insert(
        HOME.into(),
        a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap(),
    );
    request.segments = segments;
    let report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert_eq!(report.digests(), (6, 6));

    // WHEN the 02:00 and 03:00 digests and every log file they list are deleted
    for n in [2, 3] {
        let (key, d) = &digests[&trailkeep_shared::time::format(&h(n))];
        for log in &d.log_files {
            delete(&a, &log.s3_object).await;
        }
        delete(&a, key).await;
    }

    // THEN the chain head alone sees nothing wrong
    let mut heads_only = request.clone();
    heads_only.segments.clear();
    let blind = check(&a.p.sink, &keys, &heads_only).await;
    assert!(blind.all_valid(), "{:?}", problems(&blind.findings));
    // AND with the segment marks both digests are reported missing, and
    // nothing else
    let report = check(&a.p.sink, &keys, &request).await;
    let found = problems(&report.findings);
    assert_eq!(found.len(), 2, "{found:?}");
    for (line, n) in found.iter().zip([3, 2]) {
        assert!(
            line.contains(&key_at(n)) && line.contains("INVALID: not found"),
            "{line}"
        );
    }
    assert_eq!(report.digests(), (4, 6));
    a.delete().await;
}

/// Issue 21, item 3, through S3, DynamoDB and KMS: one trail whose bucket
/// refuses every write (here: it does not exist) stays behind and is
/// reported, while three others deliver and digest on time; once the
/// bucket is there, the next runs catch it up and nothing is lost.
#[tokio::test]
async fn a_trail_whose_bucket_refuses_writes_stays_behind_while_three_others_go_on() {
    // GIVEN four trails, "broken" first, writing to a bucket that is missing
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    let store = a.p.state.trails();
    let missing = format!("{}-later", a.p.bucket.name);
    for (name, bucket) in [
        ("broken", &missing),
        ("two", &a.p.bucket.name),
        ("three", &a.p.bucket.name),
    ] {
        let new = NewTrail {
            name: name.into(),
            s3_bucket_name: bucket.clone(),
            log_file_validation_enabled: true,
            ..NewTrail::default()
        };
        admin::create(&store, ACCOUNT, HOME, new).await.unwrap();
    }
    for name in ["broken", TRAIL, "two", "three"] {
        admin::set_logging(&store, name, true, t0).await.unwrap();
    }
    a.trails = admin::describe(&store, &[]).await.unwrap();
    assert_eq!(a.trails.len(), 4);
    for m in 0..10 {
        a.ingest(t0 + Duration::minutes(5 * m + 1)).await;
    }
    let deliver = |at: &str| {
        let settings = DeliverSettings::default();
        let (staging, sink, trails) = (&a.p.staging, &a.p.sink, &a.trails);
        let at = parse_time(at);
        async move {
            let deliverer = Deliverer {
                staging,
                logs: sink,
                notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
                events: &trailkeep_shared::testkit::MemoryEventLog::default(),
                settings: &settings,
            };
            deliverer.run(trails, &at).await
        }
    };
    let digest = |at: &str| {
        let digester = Digester {
            state: &a.p.staging,
            signer: &a.signer,
            bucket: &a.p.sink,
            settings: &a.settings,
        };
        let (trails, at) = (&a.trails, parse_time(at));
        async move { digester.run(trails, &at).await }
    };
    let failed = |f: &[trailkeep_shared::store::Failed]| -> Vec<(String, String)> {
        f.iter()
            .map(|f| (f.trail.clone(), f.region.clone()))
            .collect()
    };

    // WHEN deliver and digest run
    let delivered = deliver("2026-11-24T01:05:00Z").await;
    let digested = digest("2026-11-24T01:10:00Z").await;

    // THEN the three healthy trails have every event and the 01:00 digest,
    // and only "broken" is reported
    assert_eq!(
        failed(&delivered.failed),
        [("broken".to_owned(), HOME.to_owned())]
    );
    assert_eq!(delivered.records, 30, "ten events for each healthy trail");
    assert!(digested.failed.is_empty(), "{digested:?}");
    assert_eq!(digested.digests, 3, "{digested:?}");
    assert_eq!(digested.waiting, 1, "broken's hour waits for its files");
    for name in [TRAIL, "two", "three"] {
        let head = a.p.staging.head(name, HOME).await.unwrap().unwrap();
        assert_eq!(head.end, t0 + Duration::hours(1), "{name}");
    }
    assert_eq!(a.p.staging.head("broken", HOME).await.unwrap(), None);
    // AND GetTrailStatus's health says so (issue 13, item 5)
    let (at_5, at_10) = (t0 + Duration::minutes(65), t0 + Duration::minutes(70));
    let broken = a.p.staging.health("broken").await.unwrap();
    assert_eq!(broken.delivery_attempt, Some(at_5));
    assert_eq!(broken.delivery_succeeded, Some(false));
    assert_eq!(broken.delivered, None);
    assert!(
        broken
            .delivery_error
            .as_deref()
            .is_some_and(|e| e.contains("PutObject")),
        "{broken:?}"
    );
    let two = a.p.staging.health("two").await.unwrap();
    assert_eq!(
        (two.delivered, two.digest_delivered, two.delivery_succeeded),
        (Some(at_5), Some(at_10), Some(true))
    );
    assert_eq!((two.delivery_error, two.digest_error), (None, None));

    // WHEN the bucket appears, the next runs catch "broken" up
    a.p.bucket
        .client
        .create_bucket()
        .bucket(&missing)
        .send()
        .await
        .unwrap();
    let delivered = deliver("2026-11-24T02:05:00Z").await;
    assert!(delivered.failed.is_empty(), "{delivered:?}");
    assert_eq!(delivered.records, 10);
    let digested = digest("2026-11-24T02:10:00Z").await;
    assert!(digested.failed.is_empty(), "{digested:?}");
    let healed = a.p.staging.health("broken").await.unwrap();
    assert_eq!(healed.delivery_error, None, "a good run clears the error");
    assert_eq!(healed.delivered, Some(t0 + Duration::minutes(125)));
    assert_eq!(healed.digest_delivered, Some(t0 + Duration::minutes(130)));

    // THEN its chain validates with every one of its ten events in it
    let keys = a.keys().await;
    let mut request = a.request(t0, parse_time("2026-11-24T02:15:00Z"));
    (request.bucket, request.trail_name) = (missing.clone(), "broken".into());
    let report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert_eq!(report.digests(), (2, 2));
    let later = crate::helpers::TestBucket {
        client: a.p.bucket.client.clone(),
        name: missing.clone(),
    };
    let mut ids = Vec::new();
    for (key, gz) in later.objects().await {
        if key.contains("/CloudTrail/") {
            let doc: serde_json::Value = serde_json::from_slice(&gunzip(&gz)).unwrap();
            for r in doc["Records"].as_array().unwrap() {
                ids.push(r["eventID"].as_str().unwrap().to_owned());
            }
        }
    }
    ids.sort();
    let expected: Vec<String> = (1..=10)
        .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
        .collect();
    assert_eq!(ids, expected, "nothing lost, nothing twice");
    a.delete().await;
}

/// Issue 13: a StopLogging call through the API, by one principal, is in
/// the history and in the trail's own last log file with that principal's
/// ARN, and the final digest covers that file.
#[tokio::test]
async fn a_stop_through_the_api_is_in_the_trails_last_log_file_with_the_callers_arn() {
    use trailkeep_shared::api::{Api, ApiSettings, Call, Caller, TARGET_PREFIX};
    // GIVEN a trail logging with validation since 00:00, events every hour
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    let events = |t: DateTime<Utc>| usize::from(t.format("%M").to_string() == "25");
    a.simulate(t0, t0 + Duration::hours(1), events, |_| true)
        .await;

    // WHEN bob stops it through the API at 01:02
    // The API function's own adapters over the same tables.
    let store = a.p.state.trails();
    let history = trailkeep_shared::aws::history_table::DynamoHistory::new(
        a.p.history.client.clone(),
        &a.p.history.name,
    );
    let staging = trailkeep_shared::aws::state_table::DynamoStaging::new(
        a.p.state.client.clone(),
        &a.p.state.name,
    );
    let settings = ApiSettings {
        trail_admins: vec![format!("arn:aws:iam::{ACCOUNT}:user/*")],
        lookup: trailkeep_shared::history::lookup::LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: HOME.into(),
            served_regions: vec![HOME.into()],
            retention_days: 90,
            token_key: vec![7; 32],
            shards: 1,
        },
        history: a.p.settings.clone(),
        log_encryption_keys: Vec::new(),
        notification_topics: Vec::new(),
        log_groups: Vec::new(),
        organization_id: None,
    };
    // A retired key that can no longer be read (deleted here; disabled or
    // unreadable by this role on AWS) does not hide the one that can.
    let keys = trailkeep_shared::aws::kms::AwsPublicKeys {
        aws: sdk_config().await,
        key_arns: vec![
            format!("arn:aws:kms:{HOME}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000"),
            a.key_arn.clone(),
        ],
        registry: trailkeep_shared::aws::state_table::DynamoStaging::new(
            a.p.state.client.clone(),
            &a.p.state.name,
        ),
    };
    let api = Api {
        account_id: ACCOUNT,
        trails: &store,
        history: &history,
        staging: &staging,
        keys: &keys,
        settings: &settings,
    };
    let bob_arn = format!("arn:aws:iam::{ACCOUNT}:user/bob");
    let bob = Caller {
        arn: Some(bob_arn.clone()),
        principal_id: Some("AIDABOB".into()),
        account_id: Some(ACCOUNT.into()),
        source_ip: Some("192.0.2.7".into()),
        ..Caller::default()
    };
    let stopped_at = t0 + Duration::minutes(62);
    let (stop_target, lookup_target) = (
        format!("{TARGET_PREFIX}StopLogging"),
        format!("{TARGET_PREFIX}LookupEvents"),
    );
    let stop = Call {
        method: "POST",
        target: Some(&stop_target),
        body: br#"{"Name": "audit"}"#,
        caller: &bob,
        request_id: "req-stop",
        now: stopped_at,
    };
    let answer = api.http(&stop).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    a.trails = admin::describe(&store, &[]).await.unwrap();
    assert!(!a.trails[0].is_logging);
    // AND the pipeline runs on: deliver every 5 minutes, digest hourly
    a.simulate(
        t0 + Duration::minutes(65),
        t0 + Duration::hours(3) + Duration::minutes(15),
        |_| 0,
        |_| true,
    )
    .await;

    // THEN the history has bob's StopLogging
    let found = api
        .http(&Call {
            target: Some(&lookup_target),
            body: br#"{"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "StopLogging"}]}"#,
            request_id: "req-lookup",
            now: stopped_at + Duration::minutes(1),
            ..stop.clone()
        })
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let page: serde_json::Value = serde_json::from_str(&found.body).unwrap();
    assert_eq!(page["Events"].as_array().unwrap().len(), 1);
    // AND the trail's last log file holds it, with bob's ARN
    let mut stops = Vec::new();
    for (key, gz) in a.p.bucket.objects().await {
        if !key.contains("/CloudTrail/") {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_slice(&gunzip(&gz)).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            if r["eventName"] == "StopLogging" {
                stops.push((key.clone(), r.clone()));
            }
        }
    }
    assert_eq!(stops.len(), 1, "{stops:?}");
    let (stop_file, record) = &stops[0];
    assert_eq!(record["userIdentity"]["arn"], json!(bob_arn));
    assert_eq!(record["eventSource"], json!("trailkeep"));
    assert_eq!(record["sourceIPAddress"], json!("192.0.2.7"));
    // AND the chain ends with the final digest (02:00), which lists that
    // file, and validates
    let digests = a.digests().await;
    let (_, last) = digests.values().next_back().unwrap();
    assert_eq!(last.digest_end_time, "2026-11-24T02:00:00Z");
    assert!(last.log_files.iter().any(|l| &l.s3_object == stop_file));
    let keys = a.keys().await;
    let mut request = a.request(t0, t0 + Duration::hours(3) + Duration::minutes(15));
    request.heads.insert(
        HOME.into(),
        a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap(),
    );
    let report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert!(report
        .findings
        .iter()
        .any(|f| f.location.ends_with(stop_file.as_str()) && f.problem.is_none()));
    // AND ListPublicKeys (KMS and the key registry on moto) lists the key
    // that signed them, over the hours it signed.
    let target = format!("{TARGET_PREFIX}ListPublicKeys");
    let answer = api
        .http(&Call {
            method: "POST",
            target: Some(&target),
            body: b"{}",
            caller: &bob,
            request_id: "list-keys",
            now: t0 + Duration::hours(4),
        })
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let out: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let list = out["PublicKeyList"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(
        list[0]["Fingerprint"],
        json!(last.digest_public_key_fingerprint)
    );
    assert_eq!(list[0]["ValidityStartTime"], json!(t0.timestamp()));
    assert_eq!(
        list[0]["ValidityEndTime"],
        json!(parse_time("2026-11-24T02:00:00Z").timestamp())
    );
    let mut listed = Keys::default();
    let value = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        list[0]["Value"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(listed.add_pkcs1(value), last.digest_public_key_fingerprint);
    a.delete().await;
}

/// Runs tests/awscli_validate.py (the AWS CLI's validator) on the bucket.
fn awscli_validate(
    a: &Audit,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    pem: &std::path::Path,
) -> serde_json::Value {
    awscli_validate_bucket(&a.p.bucket.name, (TRAIL, HOME), HOME, start, end, pem)
}

/// The AWS CLI's validator (tests/awscli_validate.py) over one region's
/// chain of a trail (name, home region; account `ACCOUNT`) in `bucket`.
pub fn awscli_validate_bucket(
    bucket: &str,
    trail: (&str, &str),
    region: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    pem: &std::path::Path,
) -> serde_json::Value {
    awscli_run(bucket, ACCOUNT, trail, region, (start, end), pem, &[])
}

/// The AWS CLI's validator over `account`'s chain of a region; `org`
/// (organization ID, owner account): an organization trail's, as the CLI
/// finds it (DescribeTrails says IsOrganizationTrail, `--account-id`).
fn awscli_run(
    bucket: &str,
    account: &str,
    (trail, home): (&str, &str),
    region: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    pem: &std::path::Path,
    org: &[&str],
) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/awscli_validate.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([
            &crate::helpers::endpoint(),
            bucket,
            account,
            trail,
            home,
            region,
            &trailkeep_shared::time::format(&start),
            &trailkeep_shared::time::format(&end),
        ])
        .arg(pem)
        .args(org)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("python3 with the pinned awscli (scripts/test.sh puts its venv first on PATH)");
    assert!(
        out.status.success(),
        "awscli_validate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from awscli_validate.py")
}

#[tokio::test]
async fn a_member_accounts_chain_of_an_organization_trail_passes_both_validators() {
    const ORG: &str = "o-a1b2c3d4e5";
    const MEMBER: &str = "222233334444";
    // GIVEN the trail made an organization trail, logging from 00:00
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.organization_trail(ORG, t0).await;
    // WHEN for three hours a member sends an event every quarter hour and
    // the stack's account one an hour; deliver runs every 5 minutes, digest
    // at ten past each hour
    a.three_org_hours(t0, &[MEMBER], &["00", "15", "30", "45"])
        .await;

    // THEN the member's files and digests are in the organization's folder
    let keys: Vec<String> =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    let member_root = format!("AWSLogs/{ORG}/{MEMBER}/");
    let own_root = format!("AWSLogs/{ORG}/{ACCOUNT}/");
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&member_root) || k.starts_with(&own_root)),
        "{keys:?}"
    );
    let member_logs = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{member_root}CloudTrail/")))
        .count();
    assert!(member_logs >= 12, "{member_logs} member log files");
    // AND trailkeep's validator, told the organization and the member,
    // finds the member's chain whole
    let (start, end) = (t0, t0 + Duration::hours(3) + Duration::minutes(15));
    let mut request = a.request(start, end);
    (request.account_id, request.organization_id) = (MEMBER.into(), Some(ORG.into()));
    let report = check(&a.p.sink, &a.keys().await, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert_eq!(report.digests(), (3, 3));
    assert_eq!(report.logs(), (member_logs, member_logs));
    // AND so does the AWS CLI's, finding the trail an organization trail
    // and the member's chain by --account-id
    let dir = temp_dir("org");
    let pem = pem_file(&a.signer.public_key(HOME).await.unwrap().pkcs1, &dir);
    let org = [ORG, ACCOUNT];
    let out = awscli_run(
        &a.p.bucket.name,
        MEMBER,
        (TRAIL, HOME),
        HOME,
        (start, end),
        &pem,
        &org,
    );
    assert_eq!(out["problems"], json!([]), "{out}");
    assert_eq!(out["digests"], json!(3), "{out}");
    assert_eq!(out["validLogs"], json!(member_logs), "{out}");
    // … and, taking it for a trail of one account, finds no digest: nothing
    // is filed outside the organization's folder
    let out = awscli_validate_bucket(&a.p.bucket.name, (TRAIL, HOME), HOME, start, end, &pem);
    assert_eq!(out["digests"], json!(0), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
    a.delete().await;
}

/// The state table's chains of the trail, as `validate-logs` reads them:
/// each chain's head and every segment mark.
async fn chains(a: &Audit) -> organization::Chains {
    let mut chains = organization::Chains::default();
    for cursor in a.p.staging.cursors(TRAIL).await.unwrap() {
        if let Some(head) = a.p.staging.head(TRAIL, &cursor.chain).await.unwrap() {
            chains.heads.insert(cursor.chain, head);
        }
    }
    chains.segments = a.p.staging.segments(TRAIL).await.unwrap();
    chains
}

/// Issue 17, item 4: `validate-logs` of an organization trail without
/// `--account-id` validates every account's chains at once, with a report
/// per account and region; deleting an account's whole folder does not
/// take it out of the report while the state table names its chains.
#[tokio::test]
async fn every_account_of_an_organization_trail_is_validated_and_a_deleted_one_is_reported() {
    const ORG: &str = "o-a1b2c3d4e5";
    const MEMBERS: [&str; 2] = ["222233334444", "333344445555"];
    // GIVEN the trail made an organization trail, logging from 00:00
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.organization_trail(ORG, t0).await;
    // AND for three hours two members send an event every half hour and
    // the stack's account one an hour; deliver every 5 minutes, digest at
    // ten past each hour
    a.three_org_hours(t0, &MEMBERS, &["00", "30"]).await;
    let end = t0 + Duration::hours(3) + Duration::minutes(15);
    let logs_of = |keys: &[String], account: &str| {
        let folder = format!("AWSLogs/{ORG}/{account}/CloudTrail/");
        keys.iter().filter(|k| k.starts_with(&folder)).count()
    };
    let keys: Vec<String> =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();

    // WHEN every account is validated, as validate-logs does without
    // --account-id: accounts from the state table and the bucket's folders
    let trusted = a.keys().await;
    let chains = chains(&a).await;
    let mut request = a.request(t0, end);
    request.organization_id = Some(ORG.into());
    let bucket = a.p.bucket.name.clone();
    let at = organization::Folder {
        bucket: &bucket,
        prefix: None,
        org: ORG,
        own_account: ACCOUNT,
    };
    let every_account = |chains: organization::Chains| {
        let (request, trusted, sink) = (&request, &trusted, &a.p.sink);
        async move {
            let accounts = organization::find_accounts(sink, at, &chains)
                .await
                .unwrap();
            let mut findings = Vec::new();
            let report = organization::validate_accounts(
                sink,
                trusted,
                request,
                &chains,
                &accounts,
                |account, f| findings.push((account.to_owned(), f)),
            )
            .await
            .unwrap();
            (accounts, report, findings)
        }
    };
    let (accounts, report, findings) = every_account(chains.clone()).await;

    // THEN the stack's account and both members are found, in the state
    // table and in the bucket, and each has its own summary, all valid
    let all = [ACCOUNT, MEMBERS[0], MEMBERS[1]];
    assert_eq!(accounts.ids, all);
    assert_eq!(accounts.known.iter().collect::<Vec<_>>(), all);
    assert_eq!(accounts.odd_folders, Vec::<String>::new());
    let problems_of = |findings: &[(String, Finding)]| {
        findings
            .iter()
            .filter(|(_, f)| f.problem.is_some())
            .map(|(account, f)| format!("{account}: {}", f.line()))
            .collect::<Vec<_>>()
    };
    assert_eq!(problems_of(&findings), Vec::<String>::new());
    let summaries: Vec<(String, Vec<String>, String)> = report
        .accounts
        .iter()
        .map(|r| {
            (
                r.account_id.clone(),
                r.report.regions.keys().cloned().collect(),
                r.report.regions[HOME].summary(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<String>, String)> = all
        .iter()
        .map(|account| {
            let n = logs_of(&keys, account);
            assert!(n >= 3, "{account}: {n} log files");
            (
                account.to_string(),
                vec![HOME.to_owned()],
                format!("3/3 digest files valid, {n}/{n} log files valid"),
            )
        })
        .collect();
    assert_eq!(summaries, expected);
    assert!(report
        .accounts
        .iter()
        .all(|r| r.verdict() == organization::Verdict::Valid));
    assert!(report.all_valid());
    // AND each finding is in its own account's folder
    for (account, f) in &findings {
        let folder = format!("s3://{bucket}/AWSLogs/{ORG}/{account}/");
        assert!(f.location.starts_with(&folder), "{account}: {}", f.location);
    }
    // AND without the state table the folders alone find the same accounts
    let (blind, _, _) = every_account(organization::Chains::default()).await;
    assert_eq!(blind.ids, all);

    // WHEN a member's whole folder is deleted, log files and digests
    let gone = MEMBERS[1];
    let folder = format!("AWSLogs/{ORG}/{gone}/");
    let deleted: Vec<&String> = keys.iter().filter(|k| k.starts_with(&folder)).collect();
    assert!(deleted.len() > 3);
    for key in &deleted {
        delete(&a, key).await;
    }
    let (accounts, report, findings) = every_account(chains).await;

    // THEN it is still validated, from the state table's chains, and
    // reported INVALID: each of its three digests is missing
    assert_eq!(accounts.ids, all);
    let member = report
        .accounts
        .iter()
        .find(|r| r.account_id == gone)
        .expect("the deleted account is in the report");
    assert_eq!(member.verdict(), organization::Verdict::Invalid);
    assert_eq!(
        member.report.regions[HOME].summary(),
        "0/3 digest files valid, 0/0 log files valid"
    );
    let missing = problems_of(&findings);
    assert_eq!(missing.len(), 3, "{missing:?}");
    for line in &missing {
        assert!(
            line.starts_with(&format!("{gone}: Digest file\ts3://{bucket}/{folder}"))
                && line.contains("INVALID: not found"),
            "{line}"
        );
    }
    // AND the others are as valid as before, the run is not
    assert!(report
        .accounts
        .iter()
        .filter(|r| r.account_id != gone)
        .all(|r| r.verdict() == organization::Verdict::Valid));
    assert!(!report.all_valid());
    // … which without the state table could not be told from an account
    // that never was: only its folders named it
    let (blind, _, _) = every_account(organization::Chains::default()).await;
    assert_eq!(blind.ids, [ACCOUNT, MEMBERS[0]]);
    a.delete().await;
}

#[tokio::test]
async fn a_file_delivered_by_a_run_in_flight_at_the_hour_is_in_exactly_one_digest() {
    // GIVEN events at 03:50 (window delivering at 03:57) and at 03:58
    // (window delivering at 04:02), and a deliver run that died at 03:59
    // before writing anything: the 03:50 window is still undelivered
    let mut a = Audit::new().await;
    a.set_logging(true, parse_time("2026-11-24T03:00:00Z"))
        .await;
    a.ingest(parse_time("2026-11-24T03:50:30Z")).await;
    a.ingest(parse_time("2026-11-24T03:58:30Z")).await;
    let dead = DiesAfter {
        inner: &a.p.sink,
        ok: 0,
        done: AtomicUsize::new(0),
    };
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: &a.p.staging,
        logs: &dead,
        notifier: &trailkeep_shared::testkit::MemoryNotifier::default(),
        events: &trailkeep_shared::testkit::MemoryEventLog::default(),
        settings: &settings,
    };
    let died = deliverer
        .run(&a.trails, &parse_time("2026-11-24T03:59:00Z"))
        .await;
    assert!(!died.failed.is_empty());

    // WHEN the digest runs at 04:10, before the re-run of deliver
    let report = a.digest(parse_time("2026-11-24T04:10:00Z")).await;

    // THEN the 04:00 digest waits: a file delivering before 04:00 is missing
    assert_eq!((report.digests, report.waiting), (0, 1));
    assert!(a.digests().await.is_empty());

    // WHEN deliver completes (04:12) and the digest runs again (04:13), then
    // the next hour's run (05:10)
    a.deliver(parse_time("2026-11-24T04:12:00Z")).await;
    a.digest(parse_time("2026-11-24T04:13:00Z")).await;
    a.deliver(parse_time("2026-11-24T05:09:00Z")).await;
    a.digest(parse_time("2026-11-24T05:10:00Z")).await;

    // THEN the 03:57 file is in the 04:00 digest, the 04:02 file in the
    // 05:00 digest, each exactly once
    let digests = a.digests().await;
    let listed = |end: &str| -> Vec<String> {
        digests[end]
            .1
            .log_files
            .iter()
            .map(|l| l.s3_object.rsplit('_').nth(1).unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed("2026-11-24T04:00:00Z"), ["20261124T0357Z"]);
    assert_eq!(listed("2026-11-24T05:00:00Z"), ["20261124T0402Z"]);
    a.delete().await;
}

#[tokio::test]
async fn overlapping_runs_never_fork_a_chain_and_a_rerun_writes_the_same_object() {
    // GIVEN a trail with events in two hours
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    a.simulate(
        t0,
        t0 + Duration::hours(2) + Duration::minutes(5),
        |_| 1,
        |_| false,
    )
    .await;

    // WHEN two digest runs for 02:10 overlap
    let at = t0 + Duration::hours(2) + Duration::minutes(10);
    let (r1, r2) = tokio::join!(a.digest(at), a.digest(at));

    // THEN the chain has exactly one digest per hour, and it validates
    assert_eq!(r1.digests + r2.digests, 2, "{r1:?} {r2:?}");
    let digests = a.digests().await;
    assert_eq!(digests.len(), 2);
    let request = a.request(t0, at);
    let report = check(&a.p.sink, &a.keys().await, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert_eq!(report.digests(), (2, 2));

    // WHEN the 02:00 digest is written again from the same head (a run that
    // died before advancing the head)
    let (key, _) = &digests["2026-11-24T02:00:00Z"];
    let before = object_with_meta(&a, key).await;
    let head = a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap();
    let (_, first) = &digests["2026-11-24T01:00:00Z"];
    let rewound = digest::ChainHead {
        end: t0 + Duration::hours(1),
        bucket: first.digest_s3_bucket.clone(),
        key: first.digest_s3_object.clone(),
        sha256: hex_sha256(&gunzip(
            &object_with_meta(&a, &first.digest_s3_object).await.0,
        )),
        signature: object_with_meta(&a, &first.digest_s3_object).await.1["signature"].clone(),
        last: false,
    };
    assert!(a
        .p
        .staging
        .advance_head(TRAIL, HOME, Some(&head.end), &rewound)
        .await
        .unwrap());
    assert_eq!(a.digest(at).await.digests, 1);

    // THEN the same key holds the same bytes and the same signature
    assert_eq!(object_with_meta(&a, key).await, before);
    assert_eq!(a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap(), head);
    a.delete().await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn object_with_meta(a: &Audit, key: &str) -> (Vec<u8>, HashMap<String, String>) {
    let got =
        a.p.bucket
            .client
            .get_object()
            .bucket(&a.p.bucket.name)
            .key(key)
            .send()
            .await
            .unwrap();
    let meta = got.metadata().cloned().unwrap_or_default();
    (got.body.collect().await.unwrap().to_vec(), meta)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The tamper matrix's bucket state, restored between cases.
struct Snapshot(Vec<(String, Vec<u8>, HashMap<String, String>)>);

impl Snapshot {
    async fn take(a: &Audit) -> Self {
        let mut out = Vec::new();
        for (key, _) in a.p.bucket.objects().await {
            let (bytes, meta) = object_with_meta(a, &key).await;
            out.push((key, bytes, meta));
        }
        Self(out)
    }

    async fn restore(&self, a: &Audit) {
        let now: Vec<String> =
            a.p.bucket
                .objects()
                .await
                .into_iter()
                .map(|(k, _)| k)
                .collect();
        for key in now
            .iter()
            .filter(|k| !self.0.iter().any(|(s, _, _)| s == *k))
        {
            delete(a, key).await;
        }
        for (key, bytes, meta) in &self.0 {
            put(a, key, bytes.clone(), meta.clone()).await;
        }
    }
}

async fn put(a: &Audit, key: &str, bytes: Vec<u8>, meta: HashMap<String, String>) {
    a.p.bucket
        .client
        .put_object()
        .bucket(&a.p.bucket.name)
        .key(key)
        .body(bytes.into())
        .set_metadata(Some(meta))
        .send()
        .await
        .unwrap();
}

/// Signs `d` with `signer`'s key (naming its fingerprint) and puts it at
/// `key` with the new signature in `meta`: a forgery by a key holder.
async fn resign(
    a: &Audit,
    key: &str,
    d: &mut DigestFile,
    mut meta: HashMap<String, String>,
    signer: &KmsSigner,
) {
    d.digest_public_key_fingerprint = signer.public_key(HOME).await.unwrap().fingerprint;
    let json = serde_json::to_vec(&d).unwrap();
    let to_sign = string_to_sign(
        &d.digest_end_time,
        &d.digest_s3_bucket,
        key,
        &json,
        d.previous_digest_signature.as_deref(),
    );
    let sig = signer.sign(HOME, to_sign.as_bytes()).await.unwrap();
    meta.insert("signature".into(), hex::encode(sig));
    put(a, key, gzip(&json), meta).await;
}

async fn delete(a: &Audit, key: &str) {
    a.p.bucket
        .client
        .delete_object()
        .bucket(&a.p.bucket.name)
        .key(key)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_kind_of_tampering_is_reported_and_nothing_else() {
    // GIVEN ten hours of digests with two log files an hour
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    let end = t0 + Duration::hours(10) + Duration::minutes(15);
    a.simulate(
        t0,
        end,
        |t| usize::from(["05", "35"].contains(&t.format("%M").to_string().as_str())),
        |_| true,
    )
    .await;
    let digests: Vec<(String, DigestFile)> = a.digests().await.into_values().collect();
    assert_eq!(digests.len(), 10);
    assert!(digests[1..].iter().all(|(_, d)| d.log_files.len() == 2));
    let keys = a.keys().await;
    let mut request = a.request(t0, end);
    request.heads.insert(
        HOME.into(),
        a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap(),
    );
    let clean = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&clean.findings), Vec::<String>::new());
    let snapshot = Snapshot::take(&a).await;
    let loc = |key: &str| format!("s3://{}/{key}", a.p.bucket.name);
    let digest_key = |i: usize| digests[i].0.clone();
    let log_key = |i: usize, j: usize| digests[i].1.log_files[j].s3_object.clone();
    let other_key = kms_key(&a.kms).await;

    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "one byte of a log file changed",
            vec![format!(
                "Log file\t{}\tINVALID: hash value doesn't match",
                loc(&log_key(3, 0))
            )],
        ),
        (
            "a log file deleted",
            vec![format!(
                "Log file\t{}\tINVALID: not found",
                loc(&log_key(4, 1))
            )],
        ),
        (
            "a second gzip member appended to a log",
            vec![format!(
                "Log file\t{}\tINVALID: unexpected data after end of compressed stream",
                loc(&log_key(5, 0))
            )],
        ),
        (
            "a digest's JSON changed",
            vec![format!(
                "Digest file\t{}\tINVALID: signature verification failed",
                loc(&digest_key(6))
            )],
        ),
        (
            "the signature metadata replaced",
            vec![format!(
                "Digest file\t{}\tINVALID: signature verification failed",
                loc(&digest_key(2))
            )],
        ),
        (
            "the signature metadata removed",
            vec![format!(
                "Digest file\t{}\tINVALID: signature verification failed",
                loc(&digest_key(3))
            )],
        ),
        (
            "a middle digest deleted",
            vec![format!(
                "Digest file\t{}\tINVALID: not found",
                loc(&digest_key(5))
            )],
        ),
        (
            "two consecutive digests deleted",
            vec![
                format!("Digest file\t{}\tINVALID: not found", loc(&digest_key(6))),
                format!("Digest file\t{}\tINVALID: not found", loc(&digest_key(5))),
            ],
        ),
        ("the newest three digests and their logs deleted", {
            let must = trailkeep_shared::time::format(&(t0 + Duration::hours(10)));
            (7..10)
                .rev()
                .map(|i| {
                    format!(
                        "Digest file\t{}\tINVALID: not found (the chain must reach {must}: digests are written every hour)",
                        loc(&digest_key(i))
                    )
                })
                .collect()
        }),
        (
            "a digest copied to another key",
            vec![format!(
                "Digest file\t{}\tINVALID: has been moved from its original location",
                loc(&digest_key(4).replace("0000Z.json.gz", "3000Z.json.gz"))
            )],
        ),
        ("a digest signed by another key", {
            let other = KmsSigner::fetch(&a.kms, &other_key).await.unwrap();
            vec![format!(
                "Digest file\t{}\tINVALID: public key not found in region {HOME} for fingerprint {}",
                loc(&digest_key(7)),
                other.fingerprint
            )]
        }),
        (
            "a log file swapped for another valid log file",
            vec![format!(
                "Log file\t{}\tINVALID: hash value doesn't match",
                loc(&log_key(8, 1))
            )],
        ),
        // Only the signer can write these two: a digest whose link to the
        // previous one is broken, correctly signed (the stack's own key).
        // The link is checked when the walk reaches the previous digest.
        // The newest digest re-signed: only its predecessor is reported.
        (
            "a digest re-signed by the signer with a broken previous-hash link",
            vec![format!(
                "Digest file\t{}\tINVALID: hash value doesn't match",
                loc(&digest_key(8))
            )],
        ),
        // A middle one: its own bytes changed too, so its successor's link
        // to it breaks as well.
        (
            "a digest re-signed by the signer with a broken previous-signature link",
            vec![
                format!(
                    "Digest file\t{}\tINVALID: hash value doesn't match",
                    loc(&digest_key(4))
                ),
                format!(
                    "Digest file\t{}\tINVALID: hash value doesn't match",
                    loc(&digest_key(3))
                ),
            ],
        ),
        (
            "a log file replaced by a valid log file of another trail",
            vec![format!(
                "Log file\t{}\tINVALID: hash value doesn't match",
                loc(&log_key(2, 1))
            )],
        ),
        // Not listed in any digest: invisible by default (as to the AWS
        // CLI); `report_unlisted` finds it (below).
        (
            "a log file no digest lists added to the trail's folder, its key with a control character, a space and a +",
            vec![],
        ),
    ];
    // Where the AWS CLI's validator (tests/awscli_validate.py, the CLI's
    // own DigestTraverser and log check) cannot see the tampering, and why.
    // Every other case it must report too.
    let awscli_blind: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "the newest three digests and their logs deleted",
            "it starts from the newest digest it finds and knows no chain head or hourly rule",
        ),
        (
            "a digest copied to another key",
            "it follows previous-digest links from the newest digest and never lists what lies beside the chain",
        ),
        (
            "a digest re-signed by the signer with a broken previous-hash link",
            "it never compares a digest's previousDigestHashValue with the previous digest",
        ),
        (
            "a digest re-signed by the signer with a broken previous-signature link",
            "it never compares a digest's previousDigestSignature with the previous digest's signature",
        ),
        (
            "a log file no digest lists added to the trail's folder, its key with a control character, a space and a +",
            "it only reads the log files digests list",
        ),
    ]);
    let pem = pem_file(
        &a.signer.public_key(HOME).await.unwrap().pkcs1,
        &temp_dir("tamper-key"),
    );
    let other_trail_log = {
        // The same hour's log file of another deployment's trail: a valid
        // CloudTrail log file, not the one the digest lists.
        let mut b = Audit::new().await;
        b.set_logging(true, t0).await;
        b.simulate(
            t0,
            t0 + Duration::hours(3) + Duration::minutes(15),
            |t| usize::from(t.format("%M").to_string() == "35"),
            |_| true,
        )
        .await;
        let (_, d) = b.digests().await.into_values().nth(2).unwrap();
        let log = object_with_meta(&b, &d.log_files[0].s3_object).await;
        b.delete().await;
        log
    };

    let mut unlisted: Option<String> = None;
    for (case, expected) in cases {
        // WHEN the bucket is tampered with
        match case {
            "one byte of a log file changed" => {
                let key = log_key(3, 0);
                let (gz, meta) = object_with_meta(&a, &key).await;
                let mut json = gunzip(&gz);
                let at = json.iter().position(|b| *b == b'7').unwrap();
                json[at] = b'8';
                put(&a, &key, gzip(&json), meta).await;
            }
            "a log file deleted" => delete(&a, &log_key(4, 1)).await,
            "a second gzip member appended to a log" => {
                let key = log_key(5, 0);
                let (mut gz, meta) = object_with_meta(&a, &key).await;
                gz.extend(gzip(b"{\"Records\":[]}"));
                put(&a, &key, gz, meta).await;
            }
            "a digest's JSON changed" => {
                let key = digest_key(6);
                let (gz, meta) = object_with_meta(&a, &key).await;
                let mut d: DigestFile = serde_json::from_slice(&gunzip(&gz)).unwrap();
                d.log_files.pop();
                put(&a, &key, gzip(&serde_json::to_vec(&d).unwrap()), meta).await;
            }
            "the signature metadata replaced" => {
                let key = digest_key(2);
                let (_, meta3) = object_with_meta(&a, &digest_key(3)).await;
                replace_meta(&a, &key, meta3).await;
            }
            "the signature metadata removed" => {
                replace_meta(&a, &digest_key(3), HashMap::new()).await;
            }
            "a middle digest deleted" => delete(&a, &digest_key(5)).await,
            "two consecutive digests deleted" => {
                delete(&a, &digest_key(5)).await;
                delete(&a, &digest_key(6)).await;
            }
            "the newest three digests and their logs deleted" => {
                for (key, digest) in &digests[7..10] {
                    delete(&a, key).await;
                    for l in &digest.log_files {
                        delete(&a, &l.s3_object).await;
                    }
                }
            }
            "a digest copied to another key" => {
                let (gz, meta) = object_with_meta(&a, &digest_key(4)).await;
                put(
                    &a,
                    &digest_key(4).replace("0000Z.json.gz", "3000Z.json.gz"),
                    gz,
                    meta,
                )
                .await;
            }
            "a digest signed by another key" => {
                let key = digest_key(7);
                let (gz, meta) = object_with_meta(&a, &key).await;
                let mut d: DigestFile = serde_json::from_slice(&gunzip(&gz)).unwrap();
                let other = KmsSigner::new(&sdk_config().await, KeyMap::parse(&other_key).unwrap());
                resign(&a, &key, &mut d, meta, &other).await;
            }
            "a log file swapped for another valid log file" => {
                let (gz, meta) = object_with_meta(&a, &log_key(8, 0)).await;
                put(&a, &log_key(8, 1), gz, meta).await;
            }
            "a digest re-signed by the signer with a broken previous-hash link" => {
                let key = digest_key(9);
                let (gz, meta) = object_with_meta(&a, &key).await;
                let mut d: DigestFile = serde_json::from_slice(&gunzip(&gz)).unwrap();
                d.previous_digest_hash_value = Some("0".repeat(64));
                resign(&a, &key, &mut d, meta, &a.signer).await;
            }
            "a digest re-signed by the signer with a broken previous-signature link" => {
                let key = digest_key(4);
                let (gz, meta) = object_with_meta(&a, &key).await;
                let mut d: DigestFile = serde_json::from_slice(&gunzip(&gz)).unwrap();
                d.previous_digest_signature = Some("ab".repeat(256));
                resign(&a, &key, &mut d, meta, &a.signer).await;
            }
            "a log file replaced by a valid log file of another trail" => {
                let (gz, meta) = other_trail_log.clone();
                put(&a, &log_key(2, 1), gz, meta).await;
            }
            "a log file no digest lists added to the trail's folder, its key with a control character, a space and a +" => {
                let (gz, meta) = object_with_meta(&a, &log_key(3, 0)).await;
                // Beside it, the same delivery minute, another unique part.
                let listed = log_key(3, 0);
                // A hostile name: unreadable in a listing's XML unless the
                // listing asks S3 to encode the keys.
                let added = format!(
                    "{}_ADDED\u{1}ADDED +ADDED0.json.gz",
                    &listed[..listed.rfind('_').unwrap()]
                );
                put(&a, &added, gz, meta).await;
                unlisted = Some(added);
            }
            other => panic!("no tampering for {other}"),
        }

        // THEN exactly the expected findings are INVALID, in S3 and in a
        // local copy, with the AWS CLI's messages
        let report = check(&a.p.sink, &keys, &request).await;
        assert_eq!(problems(&report.findings), expected, "{case}");
        assert_eq!(report.all_valid(), expected.is_empty(), "{case}");
        if let Some(added) = unlisted.take() {
            let mut asked = request.clone();
            asked.report_unlisted = true;
            let report = check(&a.p.sink, &keys, &asked).await;
            assert_eq!(
                problems(&report.findings),
                [format!(
                    "Log file\t{}\tINVALID: not listed in any digest",
                    trailkeep_shared::validate::printable(&loc(&added))
                )],
                "{case}, report_unlisted"
            );
        }
        // AND the AWS CLI's validator sees it too, or cannot by design
        let cli = awscli_validate(&a, t0, end, &pem);
        let cli_found = cli["problems"].as_array().is_some_and(|p| !p.is_empty())
            || cli["invalidLogs"].as_u64() != Some(0);
        assert_eq!(
            cli_found,
            !awscli_blind.contains_key(case),
            "{case}: the AWS CLI's verdict {cli} ({})",
            awscli_blind.get(case).unwrap_or(&"it should see this")
        );
        let dir = temp_dir("tamper");
        local_copy(&a, &dir).await;
        let local = check(&LocalDir::new(&dir), &keys, &request).await;
        let local_problems: Vec<String> = problems(&local.findings)
            .into_iter()
            .map(|l| {
                l.replace(
                    &dir.display().to_string(),
                    &format!("s3://{}", a.p.bucket.name),
                )
            })
            .collect();
        assert_eq!(local_problems, expected, "{case} (local copy)");
        std::fs::remove_dir_all(&dir).unwrap();
        snapshot.restore(&a).await;
    }

    // AND after restoring, all is valid again
    let report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());
    assert_eq!(report.findings.len(), clean.findings.len());
    assert!(report
        .findings
        .iter()
        .any(|f| f.kind == Kind::Log && f.problem.is_none()));
    a.delete().await;
}

async fn replace_meta(a: &Audit, key: &str, meta: HashMap<String, String>) {
    a.p.bucket
        .client
        .copy_object()
        .bucket(&a.p.bucket.name)
        .key(key)
        .copy_source(format!("{}/{key}", a.p.bucket.name))
        .metadata_directive(MetadataDirective::Replace)
        .set_metadata(Some(meta))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_tail_rule_uses_the_chain_head_when_it_can_be_read() {
    // GIVEN four hours of digests, the newest deleted, validated three hours
    // after the last one with nothing else written (the function stalled)
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    let end = t0 + Duration::hours(4) + Duration::minutes(15);
    a.simulate(t0, end, |_| 0, |_| true).await;
    let digests: Vec<String> = a.digests().await.into_values().map(|(k, _)| k).collect();
    assert_eq!(digests.len(), 4);
    let keys = a.keys().await;

    // WHEN validating up to 04:15 with the head (04:00): all valid
    let mut request = a.request(t0, end);
    request.heads.insert(
        HOME.into(),
        a.p.staging.head(TRAIL, HOME).await.unwrap().unwrap(),
    );
    let report = check(&a.p.sink, &keys, &request).await;
    assert_eq!(problems(&report.findings), Vec::<String>::new());

    // WHEN the 04:00 digest is deleted: the head says it existed
    delete(&a, &digests[3]).await;
    let report = check(&a.p.sink, &keys, &request).await;
    let found = problems(&report.findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&digests[3]) && found[0].contains("not found"));

    // WHEN validating at 07:30 without the head: digests up to 06:00 are due
    request.heads.clear();
    request.end = t0 + Duration::hours(7) + Duration::minutes(30);
    request.now = request.end;
    let report = check(&a.p.sink, &keys, &request).await;
    let missing: Vec<String> = problems(&report.findings);
    assert_eq!(missing.len(), 3, "{missing:?}");
    for (line, hour) in missing.iter().zip(["T060000Z", "T050000Z", "T040000Z"]) {
        assert!(
            line.contains(hour) && line.contains("INVALID: not found"),
            "{line}"
        );
    }
    a.delete().await;
}

#[tokio::test]
async fn a_log_file_changed_before_its_digest_keeps_its_delivery_hash_and_raises_the_alarm() {
    // GIVEN an hour with two delivered log files, one of them overwritten
    // (and one deleted) before the digest run
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    a.simulate(
        t0,
        t0 + Duration::minutes(55),
        |t| usize::from(["05", "35"].contains(&t.format("%M").to_string().as_str())),
        |_| false,
    )
    .await;
    a.deliver(t0 + Duration::minutes(64)).await;
    let logs: Vec<String> =
        a.p.bucket
            .objects()
            .await
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("/CloudTrail/"))
            .collect();
    assert_eq!(logs.len(), 2);
    let (gz, meta) = object_with_meta(&a, &logs[0]).await;
    let mut json = gunzip(&gz);
    json.retain(|b| *b != b' ');
    json.push(b' ');
    put(&a, &logs[0], gzip(&json), meta).await;
    delete(&a, &logs[1]).await;

    // WHEN the digest runs
    let report = a.digest(t0 + Duration::minutes(70)).await;

    // THEN it reports both files, lists them with the hashes recorded at
    // delivery, and validation flags them
    assert_eq!((report.digests, report.tampered), (1, 2));
    let manifest =
        a.p.staging
            .manifest(TRAIL, HOME, &t0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.sha256))
            .collect::<BTreeMap<_, _>>();
    let digests = a.digests().await;
    let listed = &digests["2026-11-24T01:00:00Z"].1.log_files;
    assert_eq!(listed.len(), 2);
    for l in listed {
        assert_eq!(Some(&l.hash_value), manifest.get(&l.s3_object));
    }
    let request = a.request(t0, t0 + Duration::minutes(75));
    let found = check(&a.p.sink, &a.keys().await, &request).await;
    let mut problems = problems(&found.findings);
    problems.sort();
    let loc = |key: &str| format!("s3://{}/{key}", a.p.bucket.name);
    let mut expected = vec![
        format!(
            "Log file\t{}\tINVALID: hash value doesn't match",
            loc(&logs[0])
        ),
        format!("Log file\t{}\tINVALID: not found", loc(&logs[1])),
    ];
    expected.sort();
    assert_eq!(problems, expected);
    a.delete().await;
}

/// Issue 21, item 6: what validation trusts is not writable by the
/// pipeline. A writer of the state table (any function's role today) names
/// its own KMS key in the key registry and re-signs the newest digest with
/// a log file struck from it. A validator that took its keys from the
/// registry finds nothing wrong; with the stack's key ARN (what
/// `validate-logs --signing-key-arn` uses), the forged digest is INVALID.
#[tokio::test]
async fn a_key_the_state_table_names_is_not_trusted() {
    let mut a = Audit::new().await;
    let t0 = parse_time("2026-11-24T00:00:00Z");
    a.set_logging(true, t0).await;
    let end = t0 + Duration::hours(3) + Duration::minutes(15);
    a.simulate(
        t0,
        end,
        |t| usize::from(t.format("%M").to_string() == "05"),
        |_| true,
    )
    .await;
    let digests = a.digests().await;
    let (key, mut d) = digests.values().next_back().cloned().unwrap();
    assert_eq!(d.log_files.len(), 1, "the newest digest lists a file");

    // The attack: strike the log file, sign with a key of one's own, and
    // name that key in the registry as the digest function does.
    let rogue_arn = kms_key(&a.kms).await;
    let rogue = KmsSigner::new(&sdk_config().await, KeyMap::parse(&rogue_arn).unwrap());
    let rogue_public = rogue.public_key(HOME).await.unwrap();
    let (_, meta) = object_with_meta(&a, &key).await;
    d.log_files.clear();
    resign(&a, &key, &mut d, meta, &rogue).await;
    a.p.staging
        .note_key(
            HOME,
            &rogue_public,
            &parse_time(&d.digest_end_time),
            &parse_time(&d.digest_end_time),
        )
        .await
        .unwrap();

    let request = a.request(t0, end);
    let registry = a.p.staging.keys_used().await.unwrap();
    let mut from_registry = Keys::default();
    for k in &registry {
        from_registry.add_pkcs1(KmsSigner::fetch(&a.kms, &k.key_id).await.unwrap().pkcs1);
    }
    let fooled = check(&a.p.sink, &from_registry, &request).await;
    assert!(
        fooled.all_valid(),
        "trusting the registry, the forgery passes: {:?}",
        problems(&fooled.findings)
    );

    let report = check(&a.p.sink, &a.keys().await, &request).await;
    assert_eq!(
        problems(&report.findings),
        [format!(
            "Digest file\ts3://{}/{key}\tINVALID: public key not found in region {HOME} for fingerprint {}",
            a.p.bucket.name, rogue_public.fingerprint
        )]
    );
    a.delete().await;
}

/// Issue 20: one key signing two regions' digests is registered with both,
/// whichever run notes it first and even when both end the same hour; a
/// catch-up (an older hour) widens the span instead of being dropped; an
/// item noted before the registry kept a set still reads with its region.
#[tokio::test]
async fn the_key_registry_keeps_every_region_a_key_signed_and_its_whole_span() {
    use crate::helpers::{s as text, TestTable};
    use trailkeep_shared::aws::state_table::DynamoStaging;
    let table = TestTable::state().await;
    let staging = DynamoStaging::new(table.client.clone(), &table.name);
    let key = digest::PublicKey {
        key_id: "arn:aws:kms:eu-west-1:111122223333:key/k".into(),
        pkcs1: vec![1, 2, 3],
        fingerprint: "0123456789abcdef0123456789abcdef".into(),
    };
    let at = |t: &str| parse_time(t);
    // The hourly runs of two regions, the second at the same end.
    staging
        .note_key(
            "eu-west-1",
            &key,
            &at("2026-11-24T10:00:00Z"),
            &at("2026-11-24T10:00:00Z"),
        )
        .await
        .unwrap();
    staging
        .note_key(
            "us-east-1",
            &key,
            &at("2026-11-24T10:00:00Z"),
            &at("2026-11-24T10:00:00Z"),
        )
        .await
        .unwrap();
    // A later hour, and a region catching up on older hours in one run.
    staging
        .note_key(
            "eu-west-1",
            &key,
            &at("2026-11-24T11:00:00Z"),
            &at("2026-11-24T11:00:00Z"),
        )
        .await
        .unwrap();
    staging
        .note_key(
            "ap-south-1",
            &key,
            &at("2026-11-24T07:00:00Z"),
            &at("2026-11-24T09:00:00Z"),
        )
        .await
        .unwrap();
    let used = staging.keys_used().await.unwrap();
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].regions, ["ap-south-1", "eu-west-1", "us-east-1"]);
    assert_eq!(used[0].first_used, "2026-11-24T07:00:00Z");
    assert_eq!(used[0].last_used, "2026-11-24T11:00:00Z");
    assert_eq!(used[0].key_id, key.key_id);

    // An item as the registry wrote it before: one `region` string.
    let sv = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    let legacy_fingerprint = "fedcba9876543210fedcba9876543210";
    let mut put = table.client.put_item().table_name(&table.name);
    for (name, value) in [
        ("pk", "KEY"),
        ("sk", legacy_fingerprint),
        ("keyId", "k2"),
        ("region", "eu-west-1"),
        ("firstUsed", "2026-11-01T01:00:00Z"),
        ("lastUsed", "2026-11-02T01:00:00Z"),
    ] {
        put = put.item(name, sv(value));
    }
    put.send().await.unwrap();
    let old = digest::PublicKey {
        key_id: "k2".into(),
        pkcs1: vec![4],
        fingerprint: legacy_fingerprint.into(),
    };
    staging
        .note_key(
            "us-west-2",
            &old,
            &at("2026-11-03T01:00:00Z"),
            &at("2026-11-03T01:00:00Z"),
        )
        .await
        .unwrap();
    let used = staging.keys_used().await.unwrap();
    let legacy = used.iter().find(|k| k.key_id == "k2").unwrap();
    assert_eq!(legacy.regions, ["eu-west-1", "us-west-2"]);
    assert_eq!(legacy.first_used, "2026-11-01T01:00:00Z");
    assert_eq!(legacy.last_used, "2026-11-03T01:00:00Z");
    let item = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", sv("KEY"))
        .key("sk", sv(legacy_fingerprint))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(text(&item, "lastUsed"), "2026-11-03T01:00:00Z");
    table.delete().await;
}
