//! The deliver use case on in-memory fakes (crate::testkit): exactly once
//! across windows, re-runs and killed runs.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::testkit::{api_call_record, trail, MemoryBucket, MemoryState};

fn t(s: &str) -> DateTime<Utc> {
    crate::time::parse(s).unwrap()
}

fn id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Stages event `n` (eventTime `at`) as ingest would at ingest time `now`.
async fn stage_event(state: &MemoryState, trails: &[Trail], n: usize, at: &str, now: &str) {
    let event = api_call_record(&id(n), &t(at));
    let copies = stage(state, trails, &event.record, &event.json, &t(now))
        .await
        .unwrap();
    assert_eq!(copies, trails.len());
}

async fn run(
    state: &MemoryState,
    bucket: &MemoryBucket,
    trails: &[Trail],
    now: &str,
) -> Result<DeliverReport, StoreError> {
    let settings = DeliverSettings::default();
    let deliverer = Deliverer {
        staging: state,
        logs: bucket,
        settings: &settings,
    };
    deliverer.run(trails, &t(now)).await
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn a_redelivery_staged_in_two_windows_is_delivered_once() {
    // GIVEN one event that EventBridge delivered twice, 6 minutes apart, so
    // it was staged in two delivery windows
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:00:00Z",
        "2026-11-24T01:01:00Z",
    )
    .await;
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:00:00Z",
        "2026-11-24T01:07:00Z",
    )
    .await;
    stage_event(
        &state,
        &trails,
        2,
        "2026-11-24T01:06:00Z",
        "2026-11-24T01:07:00Z",
    )
    .await;

    // WHEN deliver runs once both windows are sealed
    let report = run(&state, &bucket, &trails, "2026-11-24T01:20:00Z")
        .await
        .unwrap();

    // THEN the event is in exactly one file, and the second copy was counted
    // as a duplicate
    assert_eq!(sorted(bucket.logged_event_ids("logs")), [id(1), id(2)]);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.records, 2);
    assert_eq!(report.files, 2, "one file per window that owns events");
    // AND a second run delivers nothing more
    let again = run(&state, &bucket, &trails, "2026-11-24T01:25:00Z")
        .await
        .unwrap();
    assert_eq!((again.files, again.records), (0, 0));
}

/// 30 events, 30 s apart from 01:00: three windows of ten.
async fn stage_thirty(state: &MemoryState, trails: &[Trail]) {
    for n in 0..30 {
        let at = t("2026-11-24T01:00:00Z") + Duration::seconds(30 * n as i64);
        let at = crate::time::format(&at);
        stage_event(state, trails, n, &at, &at).await;
    }
}

#[tokio::test]
async fn a_killed_deliver_run_resumes_with_the_same_files_and_nothing_twice() {
    // GIVEN 30 events over three windows
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    stage_thirty(&state, &trails).await;

    // WHEN the first run dies after writing one file
    bucket.fail_writes_after(Some(1));
    assert!(run(&state, &bucket, &trails, "2026-11-24T01:30:00Z")
        .await
        .is_err());
    assert_eq!(bucket.puts(), 1);
    // AND the next run finds the bucket healthy
    bucket.fail_writes_after(None);
    let report = run(&state, &bucket, &trails, "2026-11-24T01:35:00Z")
        .await
        .unwrap();

    // THEN every event is in exactly one file
    let expected: Vec<String> = sorted((0..30).map(id).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), expected);
    assert_eq!(
        report.files, 2,
        "the killed run had written the first window's file"
    );
    // AND the files are the ones an undisturbed run writes: same keys, same bytes
    let (clean_state, clean) = (MemoryState::default(), MemoryBucket::default());
    stage_thirty(&clean_state, &trails).await;
    run(&clean_state, &clean, &trails, "2026-11-24T01:35:00Z")
        .await
        .unwrap();
    let keys = bucket.keys("logs", "");
    assert_eq!(keys, clean.keys("logs", ""));
    for key in &keys {
        assert_eq!(
            bucket.object("logs", key),
            clean.object("logs", key),
            "{key}"
        );
    }
    assert!(keys
        .iter()
        .all(|k| k.starts_with("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/")));
}

#[tokio::test]
async fn an_outage_longer_than_one_run_is_caught_up_window_by_window() {
    // GIVEN events staged over 5 hours (60 windows) that no deliver run saw
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    for n in 0..60 {
        let at = t("2026-11-24T00:00:10Z") + Duration::minutes(5 * n as i64);
        let at = crate::time::format(&at);
        stage_event(&state, &trails, n, &at, &at).await;
    }

    // WHEN deliver runs after the outage: one run handles 48 windows at most
    let first = run(&state, &bucket, &trails, "2026-11-24T05:10:00Z")
        .await
        .unwrap();
    assert_eq!((first.windows, first.files, first.behind), (48, 48, 1));
    let second = run(&state, &bucket, &trails, "2026-11-24T05:15:00Z")
        .await
        .unwrap();

    // THEN the next run catches up the rest, and nothing is lost or repeated
    assert_eq!(second.behind, 0);
    assert_eq!(second.files, 12);
    let expected: Vec<String> = sorted((0..60).map(id).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), expected);
    assert_eq!(state.delivered("audit", "eu-west-1").len(), 60);
}
