//! The hourly digest run on in-memory fakes (crate::testkit): chains that
//! continue across a missed run and catch up after an outage, checked by
//! the validator with the test key.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::delivery::{DeliverSettings, Deliverer};
use crate::ingest::normalize::Normalized;
use crate::testkit::stage;
use crate::testkit::{api_call_record, trail, MemoryBucket, MemoryState, TestSigner};
use crate::validate::{validate, Finding, Report, Request};

fn t(s: &str) -> DateTime<Utc> {
    crate::time::parse(s).unwrap()
}

/// A trail logging since 00:20, with one event at half past every hour
/// from 00:30, and the fakes it runs on.
struct World {
    state: MemoryState,
    bucket: MemoryBucket,
    signer: TestSigner,
    trails: Vec<Trail>,
    settings: DigestSettings,
}

impl World {
    async fn new(hours: i64) -> Self {
        let w = World {
            state: MemoryState::default(),
            bucket: MemoryBucket::default(),
            signer: TestSigner::new(),
            trails: vec![trail("audit", t("2026-11-24T00:20:00Z"))],
            settings: DigestSettings::default(),
        };
        for h in 0..hours {
            let at = t("2026-11-24T00:30:00Z") + Duration::hours(h);
            let id = format!("00000000-0000-4000-8000-{h:012}");
            let event = api_call_record(&id, &at);
            stage(&w.state, &w.trails, &event.record, &event.json, &at)
                .await
                .unwrap();
        }
        w
    }

    async fn deliver(&self, now: &str) {
        let settings = DeliverSettings::default();
        let deliverer = Deliverer {
            staging: &self.state,
            logs: &self.bucket,
            notifier: &crate::testkit::MemoryNotifier::default(),
            events: &crate::testkit::MemoryEventLog::default(),
            settings: &settings,
        };
        deliverer
            .run(&self.trails, &t(now))
            .await
            .into_result()
            .unwrap();
    }

    async fn digest(&self, now: &str) -> DigestReport {
        let digester = Digester {
            state: &self.state,
            signer: &self.signer,
            bucket: &self.bucket,
            settings: &self.settings,
        };
        digester
            .run(&self.trails, &t(now))
            .await
            .into_result()
            .unwrap()
    }

    /// validate-logs over the fakes, with the test key.
    async fn validate(&self, end: &str) -> (Report, Vec<Finding>) {
        self.validate_regions(end, &[]).await
    }

    /// validate-logs naming `regions` (`--regions`).
    async fn validate_regions(&self, end: &str, regions: &[&str]) -> (Report, Vec<Finding>) {
        self.validate_request(&self.request(end, regions)).await
    }

    /// The request validate-logs makes without the state table.
    fn request(&self, end: &str, regions: &[&str]) -> Request {
        Request {
            bucket: "logs".into(),
            prefix: None,
            account_id: crate::testkit::ACCOUNT.into(),
            organization_id: None,
            trail_name: "audit".into(),
            home_region: "eu-west-1".into(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            start: t("2026-11-24T00:00:00Z"),
            end: t(end),
            now: t(end),
            heads: HashMap::new(),
            segments: HashMap::new(),
            tail_grace: Duration::minutes(30),
            concurrency: 4,
            report_unlisted: false,
        }
    }

    async fn validate_request(&self, request: &Request) -> (Report, Vec<Finding>) {
        let mut findings = Vec::new();
        let report = validate(&self.bucket, &self.signer.keys(), request, |f| {
            findings.push(f)
        })
        .await
        .unwrap();
        (report, findings)
    }

    fn digest_keys(&self) -> Vec<String> {
        self.bucket
            .keys("logs", "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/")
    }
}

#[tokio::test]
async fn a_chain_continues_after_a_missed_hour() {
    // GIVEN hourly deliveries, and a digest run at 01:10
    let w = World::new(3).await;
    w.deliver("2026-11-24T01:05:00Z").await;
    assert_eq!(w.digest("2026-11-24T01:10:00Z").await.digests, 1);
    // WHEN the 02:10 run never happens
    w.deliver("2026-11-24T02:05:00Z").await;
    w.deliver("2026-11-24T03:05:00Z").await;
    let report = w.digest("2026-11-24T03:10:00Z").await;

    // THEN the 03:10 run writes the missed hour and its own, chained
    assert_eq!((report.digests, report.log_files), (2, 2));
    assert_eq!(
        w.digest_keys(),
        [
            "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T010000Z.json.gz",
            "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T020000Z.json.gz",
            "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T030000Z.json.gz",
        ]
    );
    let head = w.state.chain_head("audit", "eu-west-1").unwrap();
    assert_eq!(head.end, t("2026-11-24T03:00:00Z"));
    // AND the validator finds one unbroken, correctly signed chain
    let (report, findings) = w.validate("2026-11-24T03:10:00Z").await;
    assert!(report.all_valid(), "{findings:?}");
    assert_eq!((report.digests_total, report.logs_total), (3, 3));
}

#[tokio::test]
async fn an_outage_is_caught_up_hour_by_hour_in_one_run() {
    // GIVEN six hours of deliveries and no digest run at all
    let w = World::new(6).await;
    for h in 1..=6 {
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
    }
    // WHEN the digest function comes back at 06:10
    let report = w.digest("2026-11-24T06:10:00Z").await;

    // THEN it writes every hour from the one logging started in, oldest first
    assert_eq!((report.digests, report.log_files), (6, 6));
    assert_eq!(w.digest_keys().len(), 6);
    // AND the key registry has the key from the first hour it signed
    let noted = w.state.keys_used();
    assert_eq!(noted.len(), 1);
    assert_eq!(
        (noted[0].first, noted[0].last),
        (t("2026-11-24T01:00:00Z"), t("2026-11-24T06:00:00Z"))
    );
    assert_eq!(noted[0].regions.iter().collect::<Vec<_>>(), ["eu-west-1"]);
    // AND a second run at the same time writes nothing new
    assert_eq!(w.digest("2026-11-24T06:10:00Z").await.digests, 0);
    assert_eq!(w.bucket.puts(), 6 + 6, "six log files, six digests");
    // AND every file is in the chain, valid
    let (report, findings) = w.validate("2026-11-24T06:10:00Z").await;
    assert!(report.all_valid(), "{findings:?}");
    assert_eq!((report.digests_total, report.logs_total), (6, 6));
}

#[tokio::test]
async fn an_hour_waits_until_its_files_are_delivered() {
    // GIVEN an event at 00:30 that deliver has not handled yet
    let w = World::new(1).await;
    // WHEN the digest run comes first
    let report = w.digest("2026-11-24T01:10:00Z").await;
    // THEN the hour waits instead of being signed without its file
    assert_eq!((report.digests, report.waiting), (0, 1));
    w.deliver("2026-11-24T01:15:00Z").await;
    let report = w.digest("2026-11-24T01:20:00Z").await;
    assert_eq!((report.digests, report.log_files), (1, 1));
}

#[tokio::test]
async fn a_digest_bomb_is_reported_invalid_and_validation_goes_on() {
    use std::io::Write as _;
    // GIVEN three hours of digests, the middle one replaced by 64 MiB of
    // zeros gzipped (64 KiB), its signature metadata kept
    let w = World::new(3).await;
    for h in 1..=3 {
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
    }
    assert_eq!(w.digest("2026-11-24T03:10:00Z").await.digests, 3);
    let bomb_key = w.digest_keys()[1].clone();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let mut bomb = w.bucket.object("logs", &bomb_key).unwrap();
    bomb.bytes = gz.finish().unwrap();
    assert!(bomb.bytes.len() < 1 << 20);
    w.bucket.set_object("logs", &bomb_key, Some(bomb));

    // WHEN it is validated
    let (report, findings) = w.validate("2026-11-24T03:10:00Z").await;

    // THEN the bomb is INVALID with its key, and the rest is still checked
    let bad: Vec<&Finding> = findings.iter().filter(|f| f.problem.is_some()).collect();
    assert_eq!(bad.len(), 1, "{findings:?}");
    assert!(bad[0].location.ends_with(&bomb_key));
    assert!(
        bad[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("bytes inflated"),
        "{:?}",
        bad[0]
    );
    assert_eq!((report.digests_total, report.digests_valid), (3, 2));
    assert_eq!(
        report.logs_valid, 2,
        "the valid digests' log files were checked"
    );
}

#[tokio::test]
async fn one_failing_trail_never_holds_up_the_others_digests() {
    // GIVEN two trails with validation, one writing to a bucket that
    // refuses writes
    let mut w = World::new(2).await;
    let mut broken = trail("broken", t("2026-11-24T00:20:00Z"));
    broken.s3_bucket_name = "broken".into();
    // First: a run that stopped at the first failure would sign nothing.
    w.trails.insert(0, broken);
    for h in 0..2 {
        let at = t("2026-11-24T00:30:00Z") + Duration::hours(h);
        let id = format!("00000000-0000-4000-8000-{h:012}");
        let event = api_call_record(&id, &at);
        stage(&w.state, &w.trails[..1], &event.record, &event.json, &at)
            .await
            .unwrap();
    }
    w.bucket.break_bucket("broken", true);
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: &w.state,
        logs: &w.bucket,
        notifier: &crate::testkit::MemoryNotifier::default(),
        events: &crate::testkit::MemoryEventLog::default(),
        settings: &settings,
    };
    for now in ["2026-11-24T01:05:00Z", "2026-11-24T02:05:00Z"] {
        assert!(!deliverer.run(&w.trails, &t(now)).await.failed.is_empty());
    }
    let digester = Digester {
        state: &w.state,
        signer: &w.signer,
        bucket: &w.bucket,
        settings: &w.settings,
    };

    // WHEN the digest function runs
    let report = digester.run(&w.trails, &t("2026-11-24T02:10:00Z")).await;

    // THEN the healthy trail's chain is written and valid; the broken
    // trail waits for its files, and nothing of it is signed
    assert_eq!(report.digests, 2);
    assert_eq!(report.waiting, 1);
    let (valid, findings) = w.validate("2026-11-24T02:10:00Z").await;
    assert!(valid.all_valid(), "{findings:?}");
    assert_eq!(w.state.chain_head("broken", "eu-west-1"), None);

    // WHEN the bucket is fixed: deliver catches up, then the digests do
    w.bucket.break_bucket("broken", false);
    deliverer
        .run(&w.trails, &t("2026-11-24T02:15:00Z"))
        .await
        .into_result()
        .unwrap();
    let report = digester.run(&w.trails, &t("2026-11-24T02:20:00Z")).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.digests, report.log_files), (2, 2));
    let head = w.state.chain_head("broken", "eu-west-1").unwrap();
    assert_eq!(head.end, t("2026-11-24T02:00:00Z"));

    // AND a digest write that fails is reported and retried, not skipped
    w.bucket.break_bucket("broken", true);
    w.deliver("2026-11-24T03:05:00Z").await;
    let failed = digester.run(&w.trails, &t("2026-11-24T03:10:00Z")).await;
    assert_eq!(failed.failed.len(), 1);
    assert_eq!(failed.failed[0].trail, "broken");
    assert_eq!(
        w.state.chain_head("audit", "eu-west-1").unwrap().end,
        t("2026-11-24T03:00:00Z")
    );
    w.bucket.break_bucket("broken", false);
    let retried = digester.run(&w.trails, &t("2026-11-24T03:20:00Z")).await;
    assert_eq!(retried.digests, 1);
    assert_eq!(
        w.state.chain_head("broken", "eu-west-1").unwrap().end,
        t("2026-11-24T03:00:00Z")
    );
}

#[tokio::test]
async fn a_region_whose_digests_are_all_deleted_is_reported_when_named() {
    // GIVEN a multi-region trail with three hours of digests in eu-west-1
    // and in us-east-1
    let mut w = World::new(3).await;
    w.trails[0].is_multi_region_trail = true;
    for h in 0..3 {
        let at = t("2026-11-24T00:40:00Z") + Duration::hours(h);
        let id = format!("00000000-0000-4000-8000-1000000000{h:02}");
        let mut event = api_call_record(&id, &at);
        event.record.aws_region = "us-east-1".into();
        stage(&w.state, &w.trails, &event.record, &event.json, &at)
            .await
            .unwrap();
    }
    for h in 1..=3 {
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
        w.digest(&format!("2026-11-24T0{h}:10:00Z")).await;
    }
    let us_east = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/";
    assert_eq!(w.bucket.keys("logs", us_east).len(), 3);
    assert!(w.validate("2026-11-24T03:10:00Z").await.0.all_valid());

    // WHEN every us-east-1 digest is deleted (the log files stay)
    for key in w.bucket.keys("logs", us_east) {
        w.bucket.set_object("logs", &key, None);
    }

    // THEN a validator that only finds regions by their digest folders
    // sees nothing wrong, and naming the region reports every missing hour
    let (blind, _) = w.validate("2026-11-24T03:10:00Z").await;
    assert!(
        blind.all_valid(),
        "no folder, no region: the gap --regions closes"
    );
    let (report, findings) = w
        .validate_regions("2026-11-24T03:10:00Z", &["us-east-1"])
        .await;
    assert!(!report.all_valid());
    let missing: Vec<&str> = findings
        .iter()
        .filter(|f| {
            f.problem
                .as_deref()
                .is_some_and(|p| p.starts_with("not found"))
        })
        .map(|f| f.location.as_str())
        .collect();
    // Without the state table's head, the tail rule demands digests up to
    // the end less an hour and the grace (01:00 here): 00:00 and 01:00.
    assert_eq!(missing.len(), 2, "{findings:?}");
    assert!(missing
        .iter()
        .all(|k| k.contains("/CloudTrail-Digest/us-east-1/")));
}

/// The problems among findings, as (key, problem).
fn problems(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .filter_map(|f| {
            let key = f.location.strip_prefix("memory://logs/");
            let key = key.unwrap_or(&f.location).to_owned();
            Some((key, f.problem.clone()?))
        })
        .collect()
}

#[tokio::test]
async fn every_chain_segment_is_checked_to_its_final_digest() {
    // GIVEN a trail stopped at 02:45 (final digest 03:00) and restarted at
    // 04:40 (a new segment from 05:00), digests up to 07:00
    let mut w = World::new(3).await;
    for h in 1..=7 {
        if h == 3 {
            w.trails[0].is_logging = false;
            w.trails[0].stop_logging_time = Some(t("2026-11-24T02:45:00Z"));
        }
        if h == 5 {
            w.trails[0].is_logging = true;
            w.trails[0].start_logging_time = Some(t("2026-11-24T04:40:00Z"));
        }
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
        w.digest(&format!("2026-11-24T0{h}:10:00Z")).await;
    }
    let (region, end) = ("eu-west-1", "2026-11-24T07:15:00Z");
    let ends = |b: Boundary| -> Vec<DateTime<Utc>> {
        w.state
            .segments("audit", region)
            .iter()
            .filter(|m| m.boundary == b)
            .map(|m| m.end)
            .collect()
    };
    assert_eq!(
        ends(Boundary::Start),
        [t("2026-11-24T01:00:00Z"), t("2026-11-24T05:00:00Z")]
    );
    assert_eq!(ends(Boundary::Final), [t("2026-11-24T03:00:00Z")]);
    let digest = |hour: &str| {
        w.digest_keys()
            .into_iter()
            .find(|k| k.ends_with(&format!("_20261124T{hour}0000Z.json.gz")))
            .unwrap()
    };
    // validate-logs with the state table: heads and segment marks
    let mut with_state = w.request(end, &[]);
    with_state
        .heads
        .insert(region.into(), w.state.chain_head("audit", region).unwrap());
    with_state
        .segments
        .insert(region.into(), w.state.segments("audit", region));
    let (report, findings) = w.validate_request(&with_state).await;
    assert!(report.all_valid(), "{:?}", problems(&findings));
    assert_eq!(report.digests_total, 6);
    // A range that ends during the stop expects nothing after the final
    // digest.
    let mut in_stop = with_state.clone();
    (in_stop.end, in_stop.now) = (t("2026-11-24T03:50:00Z"), t(end));
    let (report, findings) = w.validate_request(&in_stop).await;
    assert!(report.all_valid(), "{:?}", problems(&findings));

    // WHEN the first digest of the second segment is missing: it is
    // reported, and the hour before it (between the segments) is not
    let five = digest("05");
    let saved = w.bucket.object("logs", &five);
    w.bucket.set_object("logs", &five, None);
    let (_, findings) = w.validate_request(&with_state).await;
    let found = problems(&findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, five);
    w.bucket.set_object("logs", &five, saved);

    // WHEN the last two digests before the stop and their log files are
    // deleted
    let (two, three) = (digest("02"), digest("03"));
    for key in [&two, &three] {
        let bytes = w.bucket.object("logs", key).unwrap().bytes;
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json)
            .unwrap();
        let d: DigestFile = serde_json::from_slice(&json).unwrap();
        for log in d.log_files {
            w.bucket.set_object("logs", &log.s3_object, None);
        }
        w.bucket.set_object("logs", key, None);
    }

    // THEN the chain head alone sees nothing wrong: the first segment just
    // looks shorter
    let mut heads_only = with_state.clone();
    heads_only.segments.clear();
    let (blind, _) = w.validate_request(&heads_only).await;
    assert!(blind.all_valid(), "the gap the segment marks close");
    // AND with the segment marks both missing digests are reported, and
    // nothing else
    let (report, findings) = w.validate_request(&with_state).await;
    let found = problems(&findings);
    let missing: Vec<&str> = found.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(missing, [three.as_str(), two.as_str()], "{found:?}");
    assert!(found
        .iter()
        .all(|(_, p)| p.starts_with("not found") && p.contains("2026-11-24T03:00:00Z")));
    assert_eq!(report.digests_valid, 4);
    // AND so they are, once each, when the range ends during the stop
    let (_, findings) = w.validate_request(&in_stop).await;
    let found = problems(&findings);
    let missing: Vec<&str> = found.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(missing, [three.as_str(), two.as_str()], "{found:?}");
}

/// The bucket, with every digest GET taking a while (it yields before it
/// answers), counting how many are in flight at once.
struct Slow<'a> {
    bucket: &'a MemoryBucket,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl crate::validate::Source for Slow<'_> {
    fn location(&self, bucket: &str, key: &str) -> String {
        self.bucket.location(bucket, key)
    }
    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.bucket.folders(bucket, prefix).await
    }
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.bucket.list(bucket, prefix, start_after).await
    }
    async fn get_digest(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<crate::validate::Fetched>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, SeqCst);
        self.bucket.get_digest(bucket, key).await
    }
    async fn hash_log(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<
        Option<Result<crate::digest::gzhash::Inflated, crate::digest::gzhash::GzError>>,
        StoreError,
    > {
        crate::validate::Source::hash_log(self.bucket, bucket, key).await
    }
}

#[tokio::test]
async fn the_walk_fetches_digests_ahead_and_still_checks_the_chain_in_order() {
    // GIVEN eight hours of digests, one of them tampered with, one deleted
    let w = World::new(8).await;
    for h in 1..=8 {
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
    }
    w.digest("2026-11-24T08:10:00Z").await;
    let keys = w.digest_keys();
    assert_eq!(keys.len(), 8);
    let (plain, plain_findings) = w.validate("2026-11-24T08:10:00Z").await;
    assert!(plain.all_valid(), "{plain_findings:?}");
    // (its signature no longer matches: one byte of it changed)
    let mut tampered = w.bucket.object("logs", &keys[3]).unwrap();
    let sig = tampered.signature.take().unwrap();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    tampered.signature = Some(format!("{flipped}{}", &sig[1..]));
    w.bucket.set_object("logs", &keys[3], Some(tampered));
    // … and one gone, so the walk steps over a hole
    w.bucket.set_object("logs", &keys[5], None);
    let (expected, expected_findings) = w.validate("2026-11-24T08:10:00Z").await;
    assert!(!expected.all_valid());

    // WHEN the validator reads them from a bucket whose GETs take a while
    let slow = Slow {
        bucket: &w.bucket,
        in_flight: Default::default(),
        most: Default::default(),
    };
    let mut findings = Vec::new();
    let report = validate(
        &slow,
        &w.signer.keys(),
        &w.request("2026-11-24T08:10:00Z", &[]),
        |f| findings.push(f),
    )
    .await
    .unwrap();

    // THEN digests were in flight together (the request's concurrency is 4)
    let most = slow.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} digest GETs at once");
    // AND the verdicts, digests in walk order, are the same as read one by one
    let digests = |f: &[Finding]| -> Vec<String> {
        f.iter()
            .filter(|f| f.line().contains("CloudTrail-Digest"))
            .map(Finding::line)
            .collect()
    };
    assert_eq!(digests(&findings), digests(&expected_findings));
    assert_eq!(report.summary(), expected.summary());
}

/// Issue 19: a log file put into the trail's folder that no digest lists is
/// invisible to a validator that only follows digests (the AWS CLI's, and
/// ours by default); `report_unlisted` reports it, and anything else in the
/// folder that is not a log file of that day, but only in hours a valid
/// digest covers, within the range asked for.
#[tokio::test]
async fn a_log_file_no_digest_lists_is_reported_when_asked() {
    // GIVEN four hours of digested log files
    let w = World::new(4).await;
    for h in 1..=4 {
        w.deliver(&format!("2026-11-24T0{h}:05:00Z")).await;
    }
    w.digest("2026-11-24T04:10:00Z").await;
    let folder = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/";
    let listed = w.bucket.keys("logs", folder);
    assert_eq!(listed.len(), 4);
    // WHEN a valid log file (a copy of a listed one) is added at 02:40 and
    // another at 03:30 (the newest digest's hour), one named for the next
    // day, and a file that is no log file at all
    let copy = w.bucket.object("logs", &listed[0]);
    let name = |time: &str, unique: &str| {
        format!("{folder}111122223333_CloudTrail_eu-west-1_{time}_{unique}.json.gz")
    };
    let added = name("20261124T0240Z", "AAAAAAAAAAAAAAAA");
    let recent = name("20261124T0330Z", "BBBBBBBBBBBBBBBB");
    let other_day = name("20261125T0240Z", "CCCCCCCCCCCCCCCC");
    let stray = format!("{folder}notes.txt");
    // AND two log files in a region folder that has no digests at all: one
    // delivered when a digest would be due by now, one too recent for that
    // (a region that has just started is not reported before its first
    // digest could exist)
    let fake = |time: &str| {
        format!("AWSLogs/111122223333/CloudTrail/ap-fake-1/2026/11/24/111122223333_CloudTrail_ap-fake-1_{time}_DDDDDDDDDDDDDDDD.json.gz")
    };
    let elsewhere = fake("20261124T0140Z");
    let too_recent = fake("20261124T0330Z");
    for key in [&added, &recent, &other_day, &stray, &elsewhere, &too_recent] {
        w.bucket.set_object("logs", key, copy.clone());
    }

    // THEN by default nothing is reported, as the AWS CLI reports nothing
    let (report, findings) = w.validate("2026-11-24T04:10:00Z").await;
    assert!(report.all_valid(), "{findings:?}");
    // AND asked to, the validator reports each of them
    let world = &w;
    let unlisted = |request: &Request| {
        let request = request.clone();
        async move {
            let (_, findings) = world.validate_request(&request).await;
            let mut keys: Vec<String> = problems(&findings)
                .into_iter()
                .inspect(|(_, p)| assert_eq!(p, "not listed in any digest"))
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            keys
        }
    };
    let mut request = w.request("2026-11-24T04:10:00Z", &[]);
    request.report_unlisted = true;
    let mut all = vec![
        added.clone(),
        recent.clone(),
        other_day.clone(),
        stray.clone(),
        elsewhere.clone(),
    ];
    all.sort();
    assert_eq!(unlisted(&request).await, all);
    // AND a range that ends before 02:40 or starts after it leaves those
    // files out (the odd names are reported wherever the day is covered)
    let mut early = request.clone();
    early.end = t("2026-11-24T02:30:00Z");
    early.now = early.end;
    let mut odd = vec![other_day.clone(), stray.clone()];
    odd.sort();
    assert_eq!(unlisted(&early).await, odd);
    let mut late = request.clone();
    late.start = t("2026-11-24T03:00:00Z");
    let mut expected = vec![recent.clone(), other_day.clone(), stray.clone()];
    expected.sort();
    assert_eq!(unlisted(&late).await, expected);
}

/// An API call of `account` in `region`, as its own default bus forwards it.
fn call_of(account: &str, region: &str, id: &str, at: &DateTime<Utc>) -> Normalized {
    let mut v: serde_json::Value = serde_json::from_str(&crate::testkit::api_call(id, at)).unwrap();
    v["account"] = account.into();
    v["region"] = region.into();
    v["detail"]["recipientAccountId"] = account.into();
    v["detail"]["awsRegion"] = region.into();
    let ctx = crate::ingest::normalize::Context {
        account_id: crate::testkit::ACCOUNT.into(),
    };
    crate::ingest::normalize::normalize(&v.to_string(), &ctx)
        .records
        .pop()
        .unwrap()
}

#[tokio::test]
async fn an_organization_trail_keeps_one_chain_per_account_and_region_in_the_org_folder() {
    const ORG: &str = "o-a1b2c3d4e5";
    const OWN: &str = crate::testkit::ACCOUNT;
    const MEMBER: &str = "222233334444";
    // GIVEN an organization trail and a trail of the stack's own account,
    // and events of both accounts in two regions, at 00:30 and 01:30
    let mut org = trail("org", t("2026-11-24T00:20:00Z"));
    org.organization_id = Some(ORG.into());
    let mut w = World::new(0).await;
    w.trails = vec![org, trail("audit", t("2026-11-24T00:20:00Z"))];
    w.settings.regions = vec!["eu-west-1".into()];
    let places = [
        (OWN, "eu-west-1"),
        (MEMBER, "eu-west-1"),
        (MEMBER, "us-east-2"),
    ];
    let mut ids: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for h in 0..2 {
        let at = t("2026-11-24T00:30:00Z") + Duration::hours(h);
        for (i, (account, region)) in places.iter().enumerate() {
            let id = format!("00000000-0000-4000-8000-{h:06}{i:06}");
            let event: Normalized = call_of(account, region, &id, &at);
            stage(&w.state, &w.trails, &event.record, &event.json, &at)
                .await
                .unwrap();
            ids.entry((account, region)).or_default().push(id);
        }
    }
    // WHEN deliver and digest run through 02:10
    for now in ["01:05", "02:05"] {
        w.deliver(&format!("2026-11-24T{now}:00Z")).await;
    }
    w.digest("2026-11-24T02:10:00Z").await;

    // THEN each account's events of a region are in that account and
    // region's folder of the organization, each exactly once
    for ((account, region), expected) in &ids {
        let folder = format!("AWSLogs/{ORG}/{account}/CloudTrail/{region}/");
        assert_eq!(&w.bucket.logged_event_ids_under("logs", &folder), expected);
        let files = w.bucket.keys("logs", &folder);
        let stem = format!("{folder}2026/11/24/{account}_CloudTrail_{region}_20261124T");
        assert!(files.iter().all(|k| k.starts_with(&stem)), "{files:?}");
    }
    // AND the trail of one account logged its own account's events only
    let own = w
        .bucket
        .logged_event_ids_under("logs", &format!("AWSLogs/{OWN}/"));
    assert_eq!(own, ids[&(OWN, "eu-west-1")]);
    assert!(w
        .bucket
        .keys("logs", &format!("AWSLogs/{MEMBER}/"))
        .is_empty());
    // AND each chain has its own digests, named and filled for its account
    for (account, region) in places {
        let folder = format!("AWSLogs/{ORG}/{account}/CloudTrail-Digest/{region}/2026/11/24/");
        let keys = w.bucket.keys("logs", &folder);
        let name = |h| {
            format!("{folder}{account}_CloudTrail-Digest_{region}_org_eu-west-1_20261124T0{h}0000Z.json.gz")
        };
        assert_eq!(keys, [name(1), name(2)], "{account} {region}");
        let object = w.bucket.object("logs", &keys[1]).unwrap();
        let json = crate::digest::gzhash::inflate(&object.bytes).unwrap();
        let digest: DigestFile = serde_json::from_slice(&json).unwrap();
        assert_eq!(digest.aws_account_id, account);
        assert_eq!(digest.digest_s3_object, keys[1]);
        assert_eq!(digest.previous_digest_s3_object.as_deref(), Some(&*keys[0]));
        assert_eq!(digest.log_files.len(), 1);
    }
    // AND the validator, told the organization and a member account, finds
    // that account's chains whole, and no other account's
    let mut member = w.request("2026-11-24T02:10:00Z", &[]);
    (member.account_id, member.organization_id) = (MEMBER.into(), Some(ORG.into()));
    member.trail_name = "org".into();
    let (report, findings) = w.validate_request(&member).await;
    assert!(report.all_valid(), "{findings:?}");
    assert_eq!((report.digests_total, report.logs_total), (4, 4));
    assert!(findings.iter().all(|f| f.location.contains(MEMBER)));
    // AND without the organization, no digest of the member is found valid
    member.organization_id = None;
    let (report, findings) = w.validate_request(&member).await;
    assert!(!report.all_valid(), "{findings:?}");
    assert!(findings.iter().all(|f| f.problem.is_some()), "{findings:?}");
}

#[tokio::test]
async fn a_member_accounts_chain_begins_with_its_first_file_not_with_the_trail() {
    const MEMBER: &str = "222233334444";
    // GIVEN an organization trail logging since 00:20, and a member
    // account whose first event arrives at 03:30
    let mut org = trail("org", t("2026-11-24T00:20:00Z"));
    org.organization_id = Some("o-a1b2c3d4e5".into());
    let mut w = World::new(0).await;
    w.trails = vec![org];
    w.settings.regions = vec!["eu-west-1".into()];
    let at = t("2026-11-24T03:30:00Z");
    let event = call_of(
        MEMBER,
        "eu-west-1",
        "00000000-0000-4000-8000-000000000001",
        &at,
    );
    stage(&w.state, &w.trails, &event.record, &event.json, &at)
        .await
        .unwrap();
    // WHEN deliver and digest run at 04:05 and 04:10
    w.deliver("2026-11-24T04:05:00Z").await;
    w.digest("2026-11-24T04:10:00Z").await;
    // THEN the member's chain has the one hour of its file, no empty hours
    // before its first event; the stack's own account has every hour
    let digests = |account: &str| {
        w.bucket.keys(
            "logs",
            &format!("AWSLogs/o-a1b2c3d4e5/{account}/CloudTrail-Digest/eu-west-1/"),
        )
    };
    let member = digests(MEMBER);
    assert_eq!(member.len(), 1, "{member:?}");
    assert!(
        member[0].ends_with("_20261124T040000Z.json.gz"),
        "{member:?}"
    );
    assert_eq!(digests(crate::testkit::ACCOUNT).len(), 4);
    // AND the next hour extends it, empty or not
    w.deliver("2026-11-24T05:05:00Z").await;
    w.digest("2026-11-24T05:10:00Z").await;
    assert_eq!(digests(MEMBER).len(), 2);
    // AND the validator, told the member and reading the state table, finds
    // the chain whole from its start, and owes nothing before it: not for a
    // range that ends before the chain began, nor in the home region of a
    // member with no chain there
    let chain = format!("o-a1b2c3d4e5/{MEMBER}/eu-west-1");
    let member_request = |end: &str| {
        let mut r = w.request(end, &[]);
        (r.account_id, r.organization_id) = (MEMBER.into(), Some("o-a1b2c3d4e5".into()));
        r.trail_name = "org".into();
        let head = w.state.chain_head("org", &chain).unwrap();
        r.heads.insert("eu-west-1".into(), head);
        r.segments
            .insert("eu-west-1".into(), w.state.segments("org", &chain));
        r
    };
    let (report, findings) = w
        .validate_request(&member_request("2026-11-24T05:10:00Z"))
        .await;
    assert!(report.all_valid(), "{findings:?}");
    assert_eq!((report.digests_total, report.logs_total), (2, 1));
    let (report, findings) = w
        .validate_request(&member_request("2026-11-24T02:30:00Z"))
        .await;
    assert!(report.all_valid(), "{findings:?}");
    assert_eq!(report.digests_total, 0);
    let mut stranger = member_request("2026-11-24T05:10:00Z");
    stranger.account_id = "333344445555".into();
    (stranger.heads, stranger.segments) = Default::default();
    let (report, findings) = w.validate_request(&stranger).await;
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(report.digests_total, 0);
    // … while the chain's own hours are still owed: its digests deleted,
    // the same range is INVALID
    for key in digests(MEMBER) {
        w.bucket.set_object("logs", &key, None);
    }
    let (report, _) = w
        .validate_request(&member_request("2026-11-24T05:10:00Z"))
        .await;
    assert!(!report.all_valid());
}

/// A signer that counts the signatures in flight at once.
struct CountingSigner<'a> {
    inner: &'a TestSigner,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl Signer for CountingSigner<'_> {
    async fn public_key(&self, region: &str) -> Result<PublicKey, StoreError> {
        self.inner.public_key(region).await
    }

    async fn sign(&self, region: &str, message: &[u8]) -> Result<Vec<u8>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        // KMS takes a while; let the other chains' calls in meanwhile.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        self.inner.sign(region, message).await
    }
}

/// Issue 17's scale case on the fakes: 3 accounts × 4 regions, 5,040
/// events through ingest, deliver and digest over three hours.
#[tokio::test]
async fn three_accounts_in_four_regions_each_event_in_one_file_each_file_in_one_digest() {
    use crate::ingest::normalize::Context;
    use crate::ingest::{ingest_many, Targets};
    const ORG: &str = "o-a1b2c3d4e5";
    let accounts = [crate::testkit::ACCOUNT, "222233334444", "333344445555"];
    let regions = ["eu-west-1", "us-east-1", "us-east-2", "ap-south-1"];
    let mut org = trail("org", t("2026-11-24T00:00:00Z"));
    org.organization_id = Some(ORG.into());
    let trails = vec![org];
    let signer = TestSigner::new();
    let history_settings = crate::history::HistorySettings {
        retention_days: 90,
        shards: 1,
    };

    // GIVEN one event per account and region every 25 s from 00:20 to
    // 03:15, ingested in batches of 12 as they arrive (one world digests
    // a chain at a time, the other 8 at once)
    let mut worlds = Vec::new();
    let mut ids: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for chains in [1, 8] {
        let (state, history) = (
            MemoryState::default(),
            crate::testkit::MemoryHistory::default(),
        );
        let targets = Targets {
            history: &history,
            settings: &history_settings,
            staging: &state,
            trails: &trails,
            organization: true,
        };
        let ctx = Context {
            account_id: crate::testkit::ACCOUNT.into(),
        };
        for n in 0..420 {
            let at = t("2026-11-24T00:20:00Z") + Duration::seconds(25 * n);
            let mut batch = Vec::new();
            for (a, account) in accounts.iter().enumerate() {
                for (r, region) in regions.iter().enumerate() {
                    let id = format!("00000000-0000-4000-8{a}{r}0-{n:012}");
                    let mut v: serde_json::Value =
                        serde_json::from_str(&crate::testkit::api_call(&id, &at)).unwrap();
                    v["account"] = (*account).into();
                    v["region"] = (*region).into();
                    v["detail"]["recipientAccountId"] = (*account).into();
                    v["detail"]["awsRegion"] = (*region).into();
                    batch.push(v.to_string());
                    if chains == 1 {
                        ids.entry((account, region)).or_default().push(id);
                    }
                }
            }
            let payloads: Vec<(&str, &str)> = batch.iter().map(|p| ("", p.as_str())).collect();
            for outcome in
                ingest_many(&targets, &ctx, &payloads, &(at + Duration::seconds(2))).await
            {
                outcome.unwrap();
            }
        }
        let counting = CountingSigner {
            inner: &signer,
            in_flight: Default::default(),
            most: Default::default(),
        };
        let bucket = MemoryBucket::default();
        let settings = DigestSettings {
            regions: regions.iter().map(|r| r.to_string()).collect(),
            chains,
            ..DigestSettings::default()
        };
        // WHEN deliver runs every five minutes and digest every hour, to 04:10
        let mut digests = 0;
        let mut now = t("2026-11-24T00:25:00Z");
        while now <= t("2026-11-24T04:10:00Z") {
            let deliverer = Deliverer {
                staging: &state,
                logs: &bucket,
                notifier: &crate::testkit::MemoryNotifier::default(),
                events: &crate::testkit::MemoryEventLog::default(),
                settings: &DeliverSettings::default(),
            };
            deliverer.run(&trails, &now).await.into_result().unwrap();
            if now.format("%M").to_string() == "10" {
                let digester = Digester {
                    state: &state,
                    signer: &counting,
                    bucket: &bucket,
                    settings: &settings,
                };
                digests += digester
                    .run(&trails, &now)
                    .await
                    .into_result()
                    .unwrap()
                    .digests;
            }
            now += Duration::minutes(5);
        }
        let most = counting.most.load(std::sync::atomic::Ordering::SeqCst);
        worlds.push((bucket, digests, most, state));
    }
    let (bucket, digests, most, state) = &worlds[1];
    assert_eq!(ids.values().map(Vec::len).sum::<usize>(), 5_040);

    // THEN every event is in exactly one log file, under its account and region
    let all = bucket.logged_event_ids_under("logs", &format!("AWSLogs/{ORG}/"));
    assert_eq!(all.len(), 5_040, "no event twice");
    for ((account, region), expected) in &ids {
        let folder = format!("AWSLogs/{ORG}/{account}/CloudTrail/{region}/");
        let mut found = bucket.logged_event_ids_under("logs", &folder);
        found.sort();
        assert_eq!(&found, expected, "{account} {region}");
    }
    // AND every log file is listed by exactly one digest of its own chain
    // (12 chains, each signed for the hours ending 01:00 to 04:00)
    let files = bucket.keys("logs", &format!("AWSLogs/{ORG}/"));
    let (logs, digest_keys): (Vec<_>, Vec<_>) =
        files.iter().partition(|k| k.contains("/CloudTrail/"));
    assert_eq!((*digests, digest_keys.len()), (12 * 4, 12 * 4));
    let mut listed = Vec::new();
    for key in &digest_keys {
        let object = bucket.object("logs", key).unwrap();
        let json = crate::digest::gzhash::inflate(&object.bytes).unwrap();
        let digest: DigestFile = serde_json::from_slice(&json).unwrap();
        let chain = key.replace("/CloudTrail-Digest/", "/CloudTrail/");
        let folder = chain.split("/2026/").next().unwrap();
        for f in digest.log_files {
            assert!(f.s3_object.starts_with(folder), "{} in {key}", f.s3_object);
            listed.push(f.s3_object);
        }
    }
    listed.sort();
    let mut logs: Vec<String> = logs.into_iter().cloned().collect();
    logs.sort();
    assert_eq!(listed, logs);
    // AND validate-logs finds each account's chains whole: 4 regions × 4 hours
    for account in accounts {
        let request = Request {
            bucket: "logs".into(),
            prefix: None,
            account_id: account.into(),
            organization_id: Some(ORG.into()),
            trail_name: "org".into(),
            home_region: "eu-west-1".into(),
            regions: Vec::new(),
            start: t("2026-11-24T00:00:00Z"),
            end: t("2026-11-24T04:10:00Z"),
            now: t("2026-11-24T04:10:00Z"),
            heads: HashMap::new(),
            segments: HashMap::new(),
            tail_grace: Duration::minutes(30),
            concurrency: 8,
            report_unlisted: true,
        };
        let mut findings = Vec::new();
        let report = validate(bucket, &signer.keys(), &request, |f| findings.push(f))
            .await
            .unwrap();
        let problems: Vec<_> = findings.iter().filter(|f| f.problem.is_some()).collect();
        assert!(report.all_valid(), "{account}: {problems:?}");
        let own_files = logs.iter().filter(|k| k.contains(account)).count();
        assert_eq!((report.digests_total, report.logs_total), (16, own_files));
    }
    // AND the chains were signed concurrently, to the same bytes as one
    // chain at a time
    assert!((2..=8).contains(most), "{most} signatures at once");
    assert_eq!(worlds[0].2, 1);
    let one_at_a_time = &worlds[0].0;
    assert_eq!(one_at_a_time.keys("logs", ""), bucket.keys("logs", ""));
    for key in &files {
        assert_eq!(
            one_at_a_time.object("logs", key).map(|o| o.bytes),
            bucket.object("logs", key).map(|o| o.bytes),
            "{key}"
        );
    }
    // AND the key registry has the one key, for every region, over the
    // whole span the chains signed (noted once per region, not per chain)
    let noted = state.keys_used();
    assert_eq!(noted.len(), 1);
    let regions: std::collections::BTreeSet<String> =
        regions.iter().map(|r| r.to_string()).collect();
    assert_eq!(noted[0].regions, regions);
    let span = (noted[0].first, noted[0].last);
    assert_eq!(span, (t("2026-11-24T01:00:00Z"), t("2026-11-24T04:00:00Z")));
}
