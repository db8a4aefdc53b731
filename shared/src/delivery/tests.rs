//! The deliver use case on in-memory fakes (crate::testkit): exactly once
//! across windows, re-runs and killed runs.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::store::StoreError;
use crate::testkit::{
    api_call_record, stage, trail, MemoryBucket, MemoryEventLog, MemoryNotifier, MemoryState,
};

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
) -> Result<DeliverReport, crate::store::Incomplete> {
    run_with(state, bucket, trails, now, &DeliverSettings::default()).await
}

async fn run_with(
    state: &MemoryState,
    logs: &impl LogSink,
    trails: &[Trail],
    now: &str,
    settings: &DeliverSettings,
) -> Result<DeliverReport, crate::store::Incomplete> {
    let outlets = Outlets::default();
    run_sending(state, logs, &outlets, trails, now, settings)
        .await
        .into_result()
}

/// Where a run announces files and sends events.
#[derive(Default)]
struct Outlets {
    notifier: MemoryNotifier,
    events: MemoryEventLog,
}

impl Outlets {
    /// Outlets whose CloudWatch Logs has the group `trail-events`.
    fn with_group() -> Self {
        let outlets = Self::default();
        outlets.events.create_group("trail-events");
        outlets
    }
}

/// One deliver run publishing and sending through `outlets`: its report,
/// failures included.
async fn run_sending(
    state: &MemoryState,
    logs: &impl LogSink,
    outlets: &Outlets,
    trails: &[Trail],
    now: &str,
    settings: &DeliverSettings,
) -> DeliverReport {
    let deliverer = Deliverer {
        staging: state,
        logs,
        notifier: &outlets.notifier,
        events: &outlets.events,
        settings,
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
    // AND it took one read of the first window, no claim: the first copies
    // are delivered without a write
    assert_eq!((state.checks(), state.claims()), (1, 0));
    // AND a second run delivers nothing more
    let again = run(&state, &bucket, &trails, "2026-11-24T01:25:00Z")
        .await
        .unwrap();
    assert_eq!((again.files, again.records), (0, 0));
}

/// Event `n`'s first staging noted at ingest time `now`, by an attempt
/// that then died before staging it.
async fn note_only(state: &MemoryState, n: usize, at: &str, now: &str) {
    let seen = FirstSeen {
        window: window_of(&t(now)),
        event_time: t(at),
    };
    state.first_seen(&id(n), &seen);
}

#[tokio::test]
async fn a_first_attempt_that_died_before_staging_is_delivered_once_by_two_retries() {
    // GIVEN an event whose first attempt noted its window (01:01) and died,
    // retried at 01:07 and at 01:13 (two later windows, both staging it)
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let at = "2026-11-24T01:00:00Z";
    note_only(&state, 1, at, "2026-11-24T01:01:00Z").await;
    stage_event(&state, &trails, 1, at, "2026-11-24T01:07:00Z").await;
    stage_event(&state, &trails, 1, at, "2026-11-24T01:13:00Z").await;

    // WHEN deliver runs after each window is sealed
    for now in [
        "2026-11-24T01:08:00Z",
        "2026-11-24T01:13:00Z",
        "2026-11-24T01:19:00Z",
    ] {
        run(&state, &bucket, &trails, now).await.unwrap();
    }

    // THEN the event is in one file: the first retry's window claimed it,
    // the second found the claim
    assert_eq!(bucket.logged_event_ids("logs"), [id(1)]);
    assert_eq!(bucket.keys("logs", "").len(), 1);
    assert_eq!((state.checks(), state.claims()), (2, 2));
}

#[tokio::test]
async fn attempts_overlapping_a_window_boundary_stage_one_copy_in_the_first_window() {
    // GIVEN an event delivered twice at once: the attempt whose clock read
    // 01:05:10 noted first; the one whose clock read 01:04:50 (the window
    // before) noted second
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let at = "2026-11-24T01:00:00Z";
    stage_event(&state, &trails, 1, at, "2026-11-24T01:05:10Z").await;
    stage_event(&state, &trails, 1, at, "2026-11-24T01:04:50Z").await;

    // THEN both copies are one item, in the later (first-noted) window
    assert_eq!(state.staged_ids("audit", "eu-west-1"), [id(1)]);

    // AND deliver runs for both windows deliver it once, with no write
    for now in ["2026-11-24T01:07:00Z", "2026-11-24T01:13:00Z"] {
        run(&state, &bucket, &trails, now).await.unwrap();
    }
    assert_eq!(bucket.logged_event_ids("logs"), [id(1)]);
    assert_eq!((state.checks(), state.claims()), (0, 0));
}

#[tokio::test]
async fn a_record_reusing_an_event_id_with_another_event_time_is_not_placed_by_its_note() {
    // GIVEN an event staged at 01:01, then a record with its eventID and
    // another eventTime (a 1970 one) ingested a window later
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
        "1970-01-01T00:00:00Z",
        "2026-11-24T01:07:00Z",
    )
    .await;

    // THEN the second is staged in its own window under its own eventTime,
    // naming no first window: the note's time never keys another record
    let page = state
        .staged(
            "audit",
            "eu-west-1",
            window_of(&t("2026-11-24T01:07:00Z")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].event_time, t("1970-01-01T00:00:00Z"));
    assert_eq!(page.events[0].first, None);
    // AND it is claimed in its window; the first was delivered without a
    // claim, so both records are logged, each once (before first-staging
    // notes, the one claimed second was left out as a re-delivery)
    run(&state, &bucket, &trails, "2026-11-24T01:20:00Z")
        .await
        .unwrap();
    assert_eq!(bucket.logged_event_ids("logs"), [id(1), id(1)]);
    assert_eq!(state.claims(), 1);
}

#[tokio::test]
async fn a_first_staging_note_far_ahead_or_unreadable_is_not_followed() {
    // GIVEN first-staging notes written outside trailkeep: one a day ahead
    // (which would hold the copy back until then), one that does not parse
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let at = "2026-11-24T01:00:00Z";
    state.tamper_first_seen(
        &id(1),
        Some(FirstSeen {
            window: window_of(&t("2026-11-25T01:00:00Z")),
            event_time: t(at),
        }),
    );
    state.tamper_first_seen(&id(2), None);

    // WHEN both events are ingested at 01:01 (and event 1 again at 01:02)
    stage_event(&state, &trails, 1, at, "2026-11-24T01:01:00Z").await;
    stage_event(&state, &trails, 1, at, "2026-11-24T01:02:00Z").await;
    stage_event(&state, &trails, 2, at, "2026-11-24T01:01:00Z").await;

    // THEN they are delivered in their own window, claimed, once each
    let report = run(&state, &bucket, &trails, "2026-11-24T01:08:00Z")
        .await
        .unwrap();
    assert_eq!(sorted(bucket.logged_event_ids("logs")), [id(1), id(2)]);
    assert_eq!(report.records, 2);
    assert_eq!(state.claims(), 2);
}

mod any_interleaving {
    use super::*;
    use proptest::prelude::*;

    /// How far an ingest attempt gets.
    #[derive(Clone, Copy, Debug)]
    enum Reach {
        /// Dies after noting the event, before staging it.
        Noted,
        /// Dies after staging it for the first trail, not the second.
        FirstTrail,
        /// Stages it for both trails.
        Done,
    }

    /// One ingest attempt at an event: its clock (seconds after 01:00),
    /// how long its writes take to land (an invocation lives 30 s), and
    /// how far it gets.
    #[derive(Clone, Debug)]
    struct Attempt {
        clock: i64,
        lands_after: i64,
        reach: Reach,
    }

    /// An event's attempts: clocks around one base (half the time within
    /// 40 s of a window's end), each either overlapping it (a source
    /// delivering twice at once: within 35 s) or a retry up to ~30 minutes
    /// later (the ingest queue's 5 receives, each up to the 120 s batching
    /// window and the 300 s visibility timeout after the one before).
    fn attempts() -> impl Strategy<Value = Vec<Attempt>> {
        let base = prop_oneof![
            0i64..1_200,
            (1i64..4, -40i64..40).prop_map(|(k, o)| k * 300 + o)
        ];
        let delta = prop_oneof![-35i64..35, 0i64..1_800];
        let reach = prop_oneof![
            1 => Just(Reach::Noted),
            1 => Just(Reach::FirstTrail),
            3 => Just(Reach::Done),
        ];
        let attempt = (delta, 0i64..=30, reach);
        (base, proptest::collection::vec(attempt, 1..5)).prop_map(|(base, attempts)| {
            attempts
                .into_iter()
                .map(|(delta, lands_after, reach)| Attempt {
                    clock: (base + delta).max(0),
                    lands_after,
                    reach,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the attempts (retries, overlapping duplicates, deaths
        /// before or between trails) and wherever the deliver runs fall,
        /// an event that any attempt staged for a trail is in exactly one
        /// of that trail's log files, and one no attempt staged for it in
        /// none. Each event has its own eventTime. Data events are staged
        /// in batch items (no note: `Noted` is an attempt that died before
        /// staging), each attempt's beside a companion event of its own,
        /// so that repeats lie in different items of one window too.
        #[test]
        fn every_staged_event_is_delivered_exactly_once(
            events in proptest::collection::vec((attempts(), any::<bool>()), 1..5),
            every in 40i64..200,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
                let mut second = trail("second", t("2026-11-24T00:00:00Z"));
                second.s3_bucket_name = "logs2".into();
                let trails = [trail("audit", t("2026-11-24T00:00:00Z")), second];
                let base = t("2026-11-24T01:00:00Z");
                let at = |n: usize| crate::time::format(&(base - Duration::seconds(n as i64 * 7)));
                // Every action in the order its writes land: attempts at
                // clock + delay, deliver runs every `every` seconds.
                let mut actions: Vec<(i64, Option<(usize, &Attempt)>)> = Vec::new();
                for (n, (attempts, _)) in events.iter().enumerate() {
                    for a in attempts {
                        actions.push((a.clock + a.lands_after, Some((n, a))));
                    }
                }
                // Companions: (event, attempt's trails).
                let mut companions: Vec<usize> = Vec::new();
                actions.extend((0..2_700 / every).map(|k| (k * every, None)));
                actions.sort_by_key(|(at, _)| *at);
                for (when, action) in actions {
                    match action {
                        Some((n, a)) => {
                            let clock = crate::time::format(&(base + Duration::seconds(a.clock)));
                            let event = api_call_record(&id(n), &t(&at(n)));
                            let data = events[n].1;
                            let reached: &[Trail] = match a.reach {
                                Reach::Noted if data => continue,
                                Reach::Noted => {
                                    note_only(&state, n, &at(n), &clock).await;
                                    continue;
                                }
                                Reach::FirstTrail => &trails[..1],
                                Reach::Done => &trails,
                            };
                            if data {
                                let c = 100 + companions.len();
                                companions.push(reached.len());
                                let companion = api_call_record(&id(c), &t(&at(n)));
                                let batch = [
                                    (&event.record, event.json.as_str()),
                                    (&companion.record, companion.json.as_str()),
                                ];
                                stage_batch(&state, reached, &batch, &t(&clock))
                                    .await
                                    .unwrap();
                            } else {
                                stage(&state, reached, &event.record, &event.json, &t(&clock))
                                    .await
                                    .unwrap();
                            }
                        }
                        None => {
                            let now = crate::time::format(&(base + Duration::seconds(when)));
                            run(&state, &bucket, &trails, &now).await.unwrap();
                        }
                    }
                }
                run(&state, &bucket, &trails, "2026-11-24T02:00:00Z").await.unwrap();
                for (trail, bucket_name, reaches) in [
                    ("audit", "logs", &[Reach::FirstTrail, Reach::Done][..]),
                    ("second", "logs2", &[Reach::Done][..]),
                ] {
                    let logged = bucket.logged_event_ids(bucket_name);
                    for (c, reached) in companions.iter().enumerate() {
                        let got = logged.iter().filter(|l| **l == id(100 + c)).count();
                        let want = usize::from(bucket_name == "logs" || *reached == 2);
                        prop_assert_eq!(got, want, "{} companion {}", trail, c);
                    }
                    for (n, (attempts, _)) in events.iter().enumerate() {
                        let staged = attempts
                            .iter()
                            .any(|a| reaches.iter().any(|r| std::mem::discriminant(r) == std::mem::discriminant(&a.reach)));
                        let got = logged.iter().filter(|l| **l == id(n)).count();
                        prop_assert_eq!(got, usize::from(staged), "{} event {} in {:?}", trail, n, attempts);
                    }
                }
                Ok(())
            })?;
        }
    }
}

/// A trail with a KMS key has every log file written under it; a trail
/// without one, beside it, under none.
#[tokio::test]
async fn each_trail_writes_under_its_own_kms_key_or_none() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let since = t("2026-11-24T00:00:00Z");
    let key = "arn:aws:kms:eu-west-1:111122223333:key/0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f7";
    let mut sealed = trail("sealed", since);
    sealed.kms_key_id = Some(key.into());
    sealed.s3_key_prefix = Some("sealed".into());
    let trails = [sealed, trail("plain", since)];
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:00:00Z",
        "2026-11-24T01:00:10Z",
    )
    .await;
    let report = run(&state, &bucket, &trails, "2026-11-24T01:20:00Z")
        .await
        .unwrap();
    assert_eq!(report.files, 2);
    let under = |prefix: &str| -> Vec<Option<String>> {
        bucket
            .keys("logs", prefix)
            .iter()
            .map(|k| bucket.object("logs", k).unwrap().kms_key)
            .collect()
    };
    assert_eq!(under("sealed/"), [Some(key.to_owned())]);
    assert_eq!(under("AWSLogs/"), [None]);
}

/// A trail with an SNS topic gets CloudTrail's message for each log file,
/// once per file; a topic that refuses loses its notifications, not the
/// files; a re-run of a window notifies again (at least once, by key).
#[tokio::test]
async fn each_log_file_of_a_notifying_trail_is_published_once() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::default();
    let notifier = &outlets.notifier;
    let since = t("2026-11-24T00:00:00Z");
    let mut loud = trail("loud", since);
    loud.sns_topic_name = Some("trail-files".into());
    loud.s3_key_prefix = Some("loud".into());
    let mut broken = trail("broken", since);
    broken.sns_topic_name = Some("arn:aws:sns:eu-west-1:111122223333:gone".into());
    broken.s3_key_prefix = Some("broken".into());
    let trails = [loud, broken, trail("quiet", since)];
    notifier.break_topic("arn:aws:sns:eu-west-1:111122223333:gone");
    for n in 0..3 {
        let at = format!("2026-11-24T01:0{}:00Z", 3 * n);
        stage_event(&state, &trails, n, &at, &at).await;
    }
    let settings = DeliverSettings::default();
    let deliver = |now| run_sending(&state, &bucket, &outlets, &trails, now, &settings);
    let report = deliver("2026-11-24T01:20:00Z").await.into_result().unwrap();
    // Two windows (01:00-01:05, 01:05-01:10) for each of three trails.
    assert_eq!(report.files, 6);
    assert_eq!((report.notified, report.notify_failed), (2, 2));
    let loud_files = bucket.keys("logs", "loud/");
    assert_eq!(loud_files.len(), 2);
    let expected: Vec<(String, String)> = loud_files
        .iter()
        .map(|k| {
            (
                "arn:aws:sns:eu-west-1:111122223333:trail-files".to_owned(),
                format!(r#"{{"s3Bucket":"logs","s3ObjectKey":["{k}"]}}"#),
            )
        })
        .collect();
    let mut sent = notifier.sent();
    sent.sort();
    assert_eq!(sent, expected);
    assert_eq!(
        bucket.keys("logs", "broken/").len(),
        2,
        "delivered all the same"
    );
    // AND GetTrailStatus will say so: the refusal for the broken topic,
    // the time of the last notification for the other.
    let broken = state.health("broken").await.unwrap();
    assert!(
        broken
            .notify_error
            .as_deref()
            .is_some_and(|e| e.contains("AuthorizationError")),
        "{broken:?}"
    );
    assert_eq!(broken.notified, None);
    let loud = state.health("loud").await.unwrap();
    assert_eq!(
        (loud.notified, loud.notify_error),
        (Some(t("2026-11-24T01:20:00Z")), None)
    );
    assert_eq!(state.health("quiet").await.unwrap().notified, None);
    // A later run with nothing new sends nothing.
    let again = deliver("2026-11-24T01:25:00Z").await.into_result().unwrap();
    assert_eq!((again.files, again.notified), (0, 0));
    assert_eq!(notifier.sent().len(), 2);
}

/// A run killed between a file and its manifest entry: the re-run writes
/// the same key and publishes it again, so the subscriber hears of the
/// file at least once (never zero times), and dedupes by key.
#[tokio::test]
async fn a_run_killed_after_a_notification_notifies_again_never_not_at_all() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::default();
    let notifier = &outlets.notifier;
    let mut loud = trail("loud", t("2026-11-24T00:00:00Z"));
    loud.sns_topic_name = Some("trail-files".into());
    let trails = [loud];
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:00:00Z",
        "2026-11-24T01:00:10Z",
    )
    .await;
    let settings = DeliverSettings::default();
    let deliver = |now| run_sending(&state, &bucket, &outlets, &trails, now, &settings);
    state.fail_manifests_after(Some(0));
    let killed = deliver("2026-11-24T01:20:00Z").await;
    assert_eq!(killed.failed.len(), 1, "{killed:?}");
    assert_eq!(
        notifier.sent().len(),
        1,
        "published before the manifest entry"
    );
    state.fail_manifests_after(None);
    let rerun = deliver("2026-11-24T01:25:00Z").await.into_result().unwrap();
    assert_eq!((rerun.files, rerun.notified), (1, 1));
    let keys = bucket.keys("logs", "AWSLogs/");
    assert_eq!(keys.len(), 1, "the same key, rewritten");
    let sent = notifier.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the same message twice: dedupe by key");
    assert!(sent[0].1.contains(&keys[0]));
}

/// A trail with a log group: CloudWatch Logs settings for group `name`.
fn logs_to(name: &str) -> Option<crate::trail::CloudWatchLogs> {
    Some(crate::trail::CloudWatchLogs {
        log_group_arn: format!("arn:aws:logs:eu-west-1:111122223333:log-group:{name}:*"),
        role_arn: "arn:aws:iam::111122223333:role/CloudTrail_CloudWatchLogs".into(),
    })
}

/// A trail logging since 2026-11-24 00:00 whose events also go to the
/// log group `trail-events`.
fn watched(name: &str) -> Trail {
    let mut watched = trail(name, t("2026-11-24T00:00:00Z"));
    watched.cloud_watch_logs = logs_to("trail-events");
    watched
}

/// CloudTrail's stream for the sample events (account 111122223333,
/// eu-west-1), written by hand from CloudTrail's documentation.
const STREAM: &str = "111122223333_CloudTrail_eu-west-1";

/// A trail with a log group sends every event it delivers there, once, in
/// CloudTrail's stream, sorted by time, the record's JSON as the message;
/// a group that refuses loses its events, not the files, and
/// GetTrailStatus says so.
#[tokio::test]
async fn each_delivered_event_reaches_the_trails_log_group_once() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::with_group();
    let since = t("2026-11-24T00:00:00Z");
    let mut watched = watched("watched");
    watched.s3_key_prefix = Some("watched".into());
    let mut lost = trail("lost", since);
    lost.cloud_watch_logs = logs_to("deleted-group");
    lost.s3_key_prefix = Some("lost".into());
    let trails = [watched, lost, trail("plain", since)];
    // Staged out of time order within a window: 01:04 before 01:02.
    let mut staged = Vec::new();
    for (n, at) in ["01:04:00", "01:02:00", "01:07:00"].iter().enumerate() {
        let at = format!("2026-11-24T{at}Z");
        stage_event(&state, &trails, n, &at, &at).await;
        staged.push((
            t(&at).timestamp_millis(),
            api_call_record(&id(n), &t(&at)).json,
        ));
    }
    let settings = DeliverSettings::default();
    let deliver = |now| run_sending(&state, &bucket, &outlets, &trails, now, &settings);
    let report = deliver("2026-11-24T01:20:00Z").await.into_result().unwrap();
    assert_eq!(report.files, 6, "two windows for each of three trails");
    assert_eq!((report.cwl_sent, report.cwl_failed), (3, 3));
    assert_eq!(outlets.events.streams("trail-events"), [STREAM]);
    let got: Vec<(i64, String)> = outlets
        .events
        .events("trail-events", STREAM)
        .into_iter()
        .map(|e| (e.timestamp, e.message))
        .collect();
    staged.sort();
    assert_eq!(
        got, staged,
        "each event once, by time, its record as the message"
    );
    assert_eq!(
        bucket.keys("logs", "lost/").len(),
        2,
        "delivered all the same"
    );
    let lost = state.health("lost").await.unwrap();
    assert!(
        lost.cwl_error
            .as_deref()
            .is_some_and(|e| e.contains("ResourceNotFoundException")),
        "{lost:?}"
    );
    assert_eq!(lost.cwl_delivered, None);
    let watched = state.health("watched").await.unwrap();
    assert_eq!(
        (watched.cwl_delivered, watched.cwl_error),
        (Some(t("2026-11-24T01:20:00Z")), None)
    );
    // A later run sends nothing again.
    let calls = outlets.events.calls();
    let again = deliver("2026-11-24T01:25:00Z").await.into_result().unwrap();
    assert_eq!((again.files, again.cwl_sent), (0, 0));
    assert_eq!(outlets.events.calls(), calls);
}

/// Events CloudWatch Logs rejects (older than the group's retention) are
/// counted and reported, the others of the batch kept.
#[tokio::test]
async fn events_the_log_group_rejects_are_reported_and_the_rest_kept() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::with_group();
    outlets
        .events
        .reject_before(t("2026-11-24T01:03:00Z").timestamp_millis());
    let trails = [watched("watched")];
    for (n, at) in ["01:01:00", "01:02:00", "01:04:00"].iter().enumerate() {
        let at = format!("2026-11-24T{at}Z");
        stage_event(&state, &trails, n, &at, &at).await;
    }
    let settings = DeliverSettings::default();
    let report = run_sending(
        &state,
        &bucket,
        &outlets,
        &trails,
        "2026-11-24T01:20:00Z",
        &settings,
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(
        (report.files, report.cwl_sent, report.cwl_failed),
        (1, 1, 2)
    );
    assert!(report
        .cwl_error
        .is_some_and(|e| e.contains("rejected 2 events")));
    assert_eq!(outlets.events.events("trail-events", STREAM).len(), 1);
    let health = state.health("watched").await.unwrap();
    assert!(
        health.cwl_error.is_some() && health.cwl_delivered.is_some(),
        "{health:?}"
    );
}

/// CloudWatch Logs unavailable (throttled past the SDK's retries, an
/// outage): the window fails and the next run sends the file's events, so
/// an outage delays them and loses none.
#[tokio::test]
async fn a_cloudwatch_outage_delays_the_events_and_loses_none() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::with_group();
    let trails = [watched("watched")];
    for (n, at) in ["01:01:00", "01:02:00"].iter().enumerate() {
        let at = format!("2026-11-24T{at}Z");
        stage_event(&state, &trails, n, &at, &at).await;
    }
    let settings = DeliverSettings::default();
    let deliver = |now| run_sending(&state, &bucket, &outlets, &trails, now, &settings);
    outlets.events.unavailable_after(Some(0));
    let failed = deliver("2026-11-24T01:20:00Z").await;
    assert_eq!((failed.failed.len(), failed.cwl_sent), (1, 0), "{failed:?}");
    assert!(outlets.events.events("trail-events", STREAM).is_empty());
    outlets.events.unavailable_after(None);
    let next = deliver("2026-11-24T01:25:00Z").await.into_result().unwrap();
    assert_eq!((next.files, next.cwl_sent, next.cwl_failed), (1, 2, 0));
    assert_eq!(outlets.events.events("trail-events", STREAM).len(), 2);
    assert_eq!(bucket.keys("logs", "AWSLogs/").len(), 1, "the same file");
}

/// A window an hour behind is not held back for CloudWatch Logs: an
/// outage then loses its events in the group (reported), not the files.
#[tokio::test]
async fn a_window_an_hour_behind_is_not_held_back_for_cloudwatch_logs() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::with_group();
    let trails = [watched("watched")];
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:01:00Z",
        "2026-11-24T01:01:00Z",
    )
    .await;
    outlets.events.unavailable_after(Some(0));
    // The first run since: 01:00's window is two hours behind.
    let settings = DeliverSettings::default();
    let report = run_sending(
        &state,
        &bucket,
        &outlets,
        &trails,
        "2026-11-24T03:00:00Z",
        &settings,
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(
        (report.files, report.cwl_sent, report.cwl_failed),
        (1, 0, 1)
    );
    assert!(
        report
            .cwl_error
            .as_deref()
            .is_some_and(|e| e.contains("an hour behind")),
        "{report:?}"
    );
}

/// A run killed after a window's manifest entries, before its cursor
/// moved: the re-run writes the same files again but neither notifies nor
/// sends their events a second time. Killed before the manifest entry, it
/// does both again (at least once, never zero times).
#[tokio::test]
async fn a_rerun_announces_only_files_whose_manifest_entry_is_missing() {
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let outlets = Outlets::with_group();
    let mut loud = watched("loud");
    loud.sns_topic_name = Some("trail-files".into());
    let trails = [loud];
    stage_event(
        &state,
        &trails,
        1,
        "2026-11-24T01:00:00Z",
        "2026-11-24T01:00:10Z",
    )
    .await;
    let settings = DeliverSettings::default();
    let deliver = |now| run_sending(&state, &bucket, &outlets, &trails, now, &settings);
    state.fail_advances_after(Some(0));
    let killed = deliver("2026-11-24T01:20:00Z").await;
    assert_eq!(killed.failed.len(), 1, "{killed:?}");
    assert_eq!((killed.notified, killed.cwl_sent), (1, 1));
    state.fail_advances_after(None);
    let rerun = deliver("2026-11-24T01:25:00Z").await.into_result().unwrap();
    assert_eq!((rerun.files, rerun.notified, rerun.cwl_sent), (1, 0, 0));
    assert_eq!(outlets.notifier.sent().len(), 1);
    assert_eq!(outlets.events.events("trail-events", STREAM).len(), 1);
    // Killed before the manifest entry: the next window's file is
    // announced and sent again by the re-run.
    stage_event(
        &state,
        &trails,
        2,
        "2026-11-24T01:26:00Z",
        "2026-11-24T01:26:00Z",
    )
    .await;
    state.fail_manifests_after(Some(0));
    let killed = deliver("2026-11-24T01:40:00Z").await;
    assert_eq!((killed.failed.len(), killed.cwl_sent), (1, 1));
    state.fail_manifests_after(None);
    let rerun = deliver("2026-11-24T01:45:00Z").await.into_result().unwrap();
    assert_eq!((rerun.files, rerun.notified, rerun.cwl_sent), (1, 1, 1));
    assert_eq!(outlets.notifier.sent().len(), 3);
    assert_eq!(outlets.events.events("trail-events", STREAM).len(), 3);
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

#[tokio::test]
async fn one_failing_trail_never_holds_up_the_others_and_catches_up_after() {
    // GIVEN four trails, one of them writing to a bucket that refuses writes
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let since = t("2026-11-24T00:00:00Z");
    let mut broken = trail("broken", since);
    broken.s3_bucket_name = "broken".into();
    // First: a run that stopped at the first failure would deliver nothing.
    let trails = [
        broken,
        trail("one", since),
        trail("two", since),
        trail("three", since),
    ];
    for n in 0..10 {
        let at = crate::time::format(&(t("2026-11-24T01:00:00Z") + Duration::seconds(n as i64)));
        stage_event(&state, &trails, n, &at, &at).await;
    }
    bucket.break_bucket("broken", true);

    // WHEN deliver runs
    let report = run(&state, &bucket, &trails, "2026-11-24T01:10:00Z").await;

    // THEN the three healthy trails are delivered, the broken one reported
    let Err(crate::store::Incomplete(failed)) = report else {
        panic!("expected the broken trail to be reported: {report:?}");
    };
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].trail.as_str(), failed[0].region.as_str()),
        ("broken", "eu-west-1")
    );
    let once: Vec<String> = sorted((0..10).map(id).collect());
    let thrice: Vec<String> = sorted((0..10).flat_map(|n| [id(n), id(n), id(n)]).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), thrice);
    assert!(bucket.logged_event_ids("broken").is_empty());
    assert_eq!(
        state.cursor("broken", "eu-west-1"),
        Some(5_984_940),
        "not moved past the failure"
    );
    // AND GetTrailStatus's health: the error for broken, a delivery for one
    use crate::trail::HealthStore;
    let broken = state.health("broken").await.unwrap();
    assert!(broken.delivery_error.is_some() && broken.delivered.is_none());
    let one = state.health("one").await.unwrap();
    assert_eq!(one.delivered, Some(t("2026-11-24T01:10:00Z")));
    assert_eq!(one.delivery_error, None);

    // WHEN the bucket is fixed, the next run catches the trail up
    bucket.break_bucket("broken", false);
    run(&state, &bucket, &trails, "2026-11-24T01:15:00Z")
        .await
        .unwrap();
    assert_eq!(sorted(bucket.logged_event_ids("broken")), once);
    let healed = state.health("broken").await.unwrap();
    assert_eq!(healed.delivered, Some(t("2026-11-24T01:15:00Z")));
    assert_eq!(healed.delivery_error, None, "a good run clears the error");
    assert_eq!(
        sorted(bucket.logged_event_ids("logs")),
        thrice,
        "nothing twice"
    );
}

/// A log sink that notes, at each file written, how many pages of staged
/// events the deliver run had read.
struct PagesAtEachPut<'a> {
    state: &'a MemoryState,
    bucket: &'a MemoryBucket,
    at: std::sync::Mutex<Vec<usize>>,
}

impl LogSink for PagesAtEachPut<'_> {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        gzip: Vec<u8>,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        self.at.lock().unwrap().push(self.state.pages_read());
        self.bucket.put(bucket, key, gzip, kms_key).await
    }
}

/// Event `i` of about 40 KB, at 01:00:0(i mod 7).
fn large_event(i: usize) -> Staged {
    let at = t("2026-11-24T01:00:00Z") + Duration::seconds(i as i64 % 7);
    let json = serde_json::json!({
        "eventID": id(i),
        "eventTime": crate::time::format(&at),
        "pad": "x".repeat(40_000),
    })
    .to_string();
    Staged {
        event_time: at,
        event_id: id(i),
        json,
        first: None,
    }
}

/// Stages `n` large events in the window of 01:00.
async fn stage_large(state: &MemoryState, n: usize) {
    let now = t("2026-11-24T01:00:30Z");
    for i in 0..n {
        let event = Staged {
            first: Some(window_of(&now)),
            ..large_event(i)
        };
        state
            .register("audit", "eu-west-1", window_of(&now))
            .await
            .unwrap();
        state
            .stage("audit", "eu-west-1", window_of(&now), &event)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_large_window_streams_through_file_by_file_and_pages_do_not_change_the_files() {
    // GIVEN one window of 60 events of 40 KB (2.4 MB), read 7 events per
    // page (9 pages), with files capped at the smallest cap (~256 KB: about
    // six events each)
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let settings = DeliverSettings {
        max_file_bytes: logfile::MIN_MAX_FILE_BYTES,
        ..DeliverSettings::default()
    };
    let state = MemoryState::default().with_page_items(7);
    stage_large(&state, 60).await;
    let bucket = MemoryBucket::default();
    let sink = PagesAtEachPut {
        state: &state,
        bucket: &bucket,
        at: std::sync::Mutex::default(),
    };

    // WHEN deliver runs
    let report = run_with(&state, &sink, &trails, "2026-11-24T01:10:00Z", &settings)
        .await
        .unwrap();

    // THEN every event is delivered once, in files of at most the cap
    assert_eq!(report.records, 60);
    assert!(report.files >= 10, "{} files", report.files);
    let expected: Vec<String> = sorted((0..60).map(id).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), expected);
    // AND files were written while the window was still being read: the
    // first before the last page was read (a run that loads the window
    // whole writes its first file after reading all 9 pages)
    assert_eq!(state.pages_read(), 9);
    let at = sink.at.lock().unwrap().clone();
    assert_eq!(at.len(), report.files);
    assert!(at[0] <= 2, "first file written after {} pages", at[0]);
    // AND the files are the ones the window makes read whole in one page:
    // same keys, same bytes
    let whole = MemoryState::default().with_page_items(1000);
    stage_large(&whole, 60).await;
    let one_page = MemoryBucket::default();
    run_with(
        &whole,
        &one_page,
        &trails,
        "2026-11-24T01:10:00Z",
        &settings,
    )
    .await
    .unwrap();
    assert_eq!(whole.pages_read(), 1);
    let keys = bucket.keys("logs", "");
    assert_eq!(keys, one_page.keys("logs", ""));
    for key in &keys {
        assert_eq!(bucket.object("logs", key), one_page.object("logs", key));
    }
    // AND they are what assembling the whole window at once gives
    let mut all: Vec<Staged> = (0..60).map(large_event).collect();
    let assembled = logfile::assemble(&mut all, settings.max_file_bytes).unwrap();
    let mut hashes: Vec<String> = state
        .delivered("audit", "eu-west-1")
        .into_iter()
        .map(|e| e.sha256)
        .collect();
    let mut expected: Vec<String> = assembled.into_iter().map(|f| f.sha256).collect();
    hashes.sort();
    expected.sort();
    assert_eq!(hashes, expected);
}

/// A run's time, spent at its `n`th look at the clock (and after).
struct Looks {
    n: usize,
    seen: std::sync::atomic::AtomicUsize,
}

impl Looks {
    fn spent_at(n: usize) -> Self {
        Self {
            n,
            seen: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Budget for Looks {
    fn spent(&self) -> bool {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= self.n
    }
}

/// One deliver run at `now` whose time is spent at its `looks`th look at
/// the clock, announcing through `outlets`.
async fn run_spent_at(
    state: &MemoryState,
    bucket: &MemoryBucket,
    outlets: &Outlets,
    trails: &[Trail],
    now: DateTime<Utc>,
    looks: usize,
) -> DeliverReport {
    run_spent_with(
        state,
        bucket,
        outlets,
        trails,
        now,
        looks,
        &DeliverSettings::default(),
    )
    .await
}

/// [`run_spent_at`] with these settings.
async fn run_spent_with(
    state: &MemoryState,
    bucket: &MemoryBucket,
    outlets: &Outlets,
    trails: &[Trail],
    now: DateTime<Utc>,
    looks: usize,
    settings: &DeliverSettings,
) -> DeliverReport {
    let deliverer = Deliverer {
        staging: state,
        logs: bucket,
        notifier: &outlets.notifier,
        events: &outlets.events,
        settings,
    };
    deliverer
        .run_until(trails, &now, &Looks::spent_at(looks))
        .await
}

/// Deliver runs at 01:10, each out of time at its first look at the
/// clock (after its first file), until window `w` of audit's eu-west-1 is
/// delivered: each writes one file and goes no further. Returns the runs.
async fn deliver_a_file_a_run(
    state: &MemoryState,
    bucket: &MemoryBucket,
    trails: &[Trail],
    w: i64,
    settings: &DeliverSettings,
) -> usize {
    let mut runs = 0;
    let outlets = Outlets::default();
    while state.cursor("audit", "eu-west-1") == Some(w) {
        let now = t("2026-11-24T01:10:00Z");
        let report = run_spent_with(state, bucket, &outlets, trails, now, 1, settings).await;
        runs += 1;
        assert!(report.failed.is_empty(), "{report:?}");
        assert_eq!(report.files, 1, "run {runs}: {report:?}");
        assert_eq!(
            report.behind,
            usize::from(state.cursor("audit", "eu-west-1") == Some(w))
        );
        assert!(runs <= 60, "no progress");
    }
    runs
}

#[tokio::test]
async fn a_window_longer_than_a_run_goes_on_file_by_file_with_the_same_files() {
    // GIVEN one window of 60 events of 40 KB, ~10 files at the smallest cap,
    // and deliver runs that are out of time as soon as they start
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let settings = DeliverSettings {
        max_file_bytes: logfile::MIN_MAX_FILE_BYTES,
        ..DeliverSettings::default()
    };
    let state = MemoryState::default().with_page_items(7);
    stage_large(&state, 60).await;
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    let bucket = MemoryBucket::default();

    // WHEN deliver runs until the window is delivered
    // THEN each run writes one file and goes no further
    let runs = deliver_a_file_a_run(&state, &bucket, &trails, w, &settings).await;

    // AND the files are those of one uninterrupted run: same keys, same
    // bytes, each recorded once, every event in exactly one
    let whole = MemoryState::default();
    stage_large(&whole, 60).await;
    let one_run = MemoryBucket::default();
    let report = run_with(&whole, &one_run, &trails, "2026-11-24T01:10:00Z", &settings)
        .await
        .unwrap();
    assert_eq!(runs, report.files);
    let keys = bucket.keys("logs", "");
    assert_eq!(keys, one_run.keys("logs", ""));
    for key in &keys {
        assert_eq!(bucket.object("logs", key), one_run.object("logs", key));
    }
    let manifest = |s: &MemoryState| {
        let mut m: Vec<(String, String)> = s
            .delivered("audit", "eu-west-1")
            .into_iter()
            .map(|e| (e.key, e.sha256))
            .collect();
        m.sort();
        m
    };
    assert_eq!(manifest(&state), manifest(&whole));
    let expected: Vec<String> = sorted((0..60).map(id).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), expected);
}

#[tokio::test]
async fn progress_noted_in_a_window_is_forgotten_when_the_cursor_moves_on() {
    let state = MemoryState::default();
    state.register("audit", "eu-west-1", 7).await.unwrap();
    let p = Progress {
        part: 3,
        after: "2026-11-24T01:00:00Z#x".into(),
    };
    assert!(state
        .save_progress("audit", "eu-west-1", 7, &p)
        .await
        .unwrap());
    assert_eq!(
        state.progress("audit", "eu-west-1", 7).await.unwrap(),
        Some(p.clone())
    );
    // Not another window's.
    assert_eq!(state.progress("audit", "eu-west-1", 8).await.unwrap(), None);
    assert!(state.advance("audit", "eu-west-1", 7, 8).await.unwrap());
    assert_eq!(state.progress("audit", "eu-west-1", 7).await.unwrap(), None);
    // A run that lost the race for window 7 notes nothing.
    assert!(!state
        .save_progress("audit", "eu-west-1", 7, &p)
        .await
        .unwrap());
    assert_eq!(state.progress("audit", "eu-west-1", 7).await.unwrap(), None);
}

#[tokio::test]
async fn runs_cut_between_pages_or_after_files_make_the_files_of_one_run_each_announced_once() {
    // GIVEN a notifying trail with one window of 60 events of 40 KB (~10
    // files), read 1, 7 or 30 events a page
    let mut audit = trail("audit", t("2026-11-24T00:00:00Z"));
    audit.sns_topic_name = Some("files".into());
    let trails = [audit];
    let settings = DeliverSettings {
        max_file_bytes: logfile::MIN_MAX_FILE_BYTES,
        ..DeliverSettings::default()
    };
    let whole = MemoryState::default();
    stage_large(&whole, 60).await;
    let one_run = MemoryBucket::default();
    let report = run_with(&whole, &one_run, &trails, "2026-11-24T01:10:00Z", &settings)
        .await
        .unwrap();
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    for page in [1, 7, 30] {
        for looks in 1..=4 {
            // WHEN runs whose time is spent at their first to fourth look
            // at the clock (after a file, or between pages once a file is
            // written) deliver the window
            let state = MemoryState::default().with_page_items(page);
            stage_large(&state, 60).await;
            let (bucket, outlets) = (MemoryBucket::default(), Outlets::default());
            let mut runs = 0;
            while state.cursor("audit", "eu-west-1") == Some(w) {
                let now = t("2026-11-24T01:10:00Z");
                let r =
                    run_spent_with(&state, &bucket, &outlets, &trails, now, looks, &settings).await;
                assert!(r.failed.is_empty(), "{r:?}");
                assert!(r.files >= 1, "a run gets a file written: {r:?}");
                runs += 1;
                assert!(runs <= 60, "no progress");
            }
            // THEN it took several runs, and the files are those of one
            // run: same keys, same bytes, each announced once
            let case = format!("{page} a page, spent at look {looks}");
            assert!(runs > 1, "{case}: never cut");
            let keys = bucket.keys("logs", "");
            assert_eq!(keys, one_run.keys("logs", ""), "{case}");
            for key in &keys {
                assert_eq!(
                    bucket.object("logs", key),
                    one_run.object("logs", key),
                    "{case}"
                );
            }
            let mut announced: Vec<String> = outlets
                .notifier
                .sent()
                .into_iter()
                .map(|(_, m)| m)
                .collect();
            announced.sort();
            let before = announced.len();
            announced.dedup();
            assert_eq!(before, announced.len(), "{case}: a file announced twice");
            assert_eq!(announced.len(), report.files, "{case}");
        }
    }
}

#[tokio::test]
async fn the_region_a_cut_run_leaves_waiting_goes_first_in_a_later_run() {
    // GIVEN two regions of one trail, each with a window of events
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let state = MemoryState::default();
    for (region, n) in [("eu-west-1", 1), ("us-east-1", 2)] {
        let event = large_event(n);
        let at = t("2026-11-24T01:00:30Z");
        state
            .register("audit", region, window_of(&at))
            .await
            .unwrap();
        state
            .stage("audit", region, window_of(&at), &event)
            .await
            .unwrap();
    }
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    // WHEN runs 5 minutes apart are spent at their first look, each
    // delivering one region's window
    let (bucket, outlets) = (MemoryBucket::default(), Outlets::default());
    let mut served = Vec::new();
    for now in ["2026-11-24T01:10:00Z", "2026-11-24T01:15:00Z"] {
        let r = run_spent_at(&state, &bucket, &outlets, &trails, t(now), 1).await;
        assert_eq!(r.windows, 1, "{r:?}");
        assert!(r.behind >= 1, "{r:?}");
        served.push(
            ["eu-west-1", "us-east-1"]
                .into_iter()
                .filter(|region| state.cursor("audit", region) != Some(w))
                .count(),
        );
    }
    // THEN the second run took the region the first left waiting
    assert_eq!(served, [1, 2]);
}

/// Stages one large event for `trail` in `region` in the window of 01:00.
async fn stage_one(state: &MemoryState, trail: &str, region: &str, n: usize) {
    let at = t("2026-11-24T01:00:30Z");
    state.register(trail, region, window_of(&at)).await.unwrap();
    state
        .stage(
            trail,
            region,
            window_of(&at),
            &Staged {
                first: Some(window_of(&at)),
                ..large_event(n)
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn over_as_many_runs_as_trail_regions_each_goes_first_once() {
    // GIVEN two trails, each with a window waiting in two regions
    let since = t("2026-11-24T00:00:00Z");
    let trails = [trail("a", since), trail("b", since)];
    let state = MemoryState::default();
    let pairs = [
        ("a", "eu-west-1"),
        ("a", "us-east-1"),
        ("b", "eu-west-1"),
        ("b", "us-east-1"),
    ];
    for (n, (t, r)) in pairs.iter().enumerate() {
        stage_one(&state, t, r, n).await;
    }
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    // WHEN four runs, 5 minutes apart, are each spent at their first look
    // at the clock (each delivers the first pair it takes)
    let (bucket, outlets) = (MemoryBucket::default(), Outlets::default());
    for k in 0..4 {
        let now = t("2026-11-24T01:10:00Z") + Duration::minutes(5 * k);
        run_spent_at(&state, &bucket, &outlets, &trails, now, 1).await;
    }
    // THEN every pair went first once: each window is delivered
    for (t, r) in pairs {
        assert_ne!(state.cursor(t, r), Some(w), "{t} {r} never delivered");
    }
}

#[tokio::test]
async fn a_trail_the_run_had_no_time_for_keeps_its_last_error() {
    // GIVEN two trails whose last delivery failed, each with a window waiting
    let since = t("2026-11-24T00:00:00Z");
    let trails = [trail("a", since), trail("b", since)];
    let state = MemoryState::default();
    for (n, name) in ["a", "b"].into_iter().enumerate() {
        stage_one(&state, name, "eu-west-1", n).await;
        let failed = crate::trail::RunOutcome {
            at: t("2026-11-24T01:05:00Z"),
            complete: true,
            wrote: false,
            error: Some("Query failed".into()),
            notified: false,
            notify_error: None,
            cwl_sent: false,
            cwl_error: None,
        };
        state.note_delivery(name, &failed).await.unwrap();
    }
    // WHEN a run has time for the first trail only
    let (bucket, outlets) = (MemoryBucket::default(), Outlets::default());
    let now = t("2026-11-24T01:10:00Z");
    let report = run_spent_at(&state, &bucket, &outlets, &trails, now, 1).await;
    assert_eq!((report.windows, report.behind), (1, 1), "{report:?}");
    // THEN the delivered trail is healthy, and the other still shows its
    // error and no success: the run did not get to it
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    let (done, skipped) = if state.cursor("a", "eu-west-1") == Some(w) {
        ("b", "a")
    } else {
        ("a", "b")
    };
    let h = state.health(done).await.unwrap();
    assert_eq!((h.delivery_succeeded, h.delivery_error), (Some(true), None));
    let h = state.health(skipped).await.unwrap();
    assert_eq!(h.delivery_succeeded, Some(false));
    assert_eq!(h.delivery_error.as_deref(), Some("Query failed"));
    assert_eq!(h.delivery_attempt, Some(t("2026-11-24T01:10:00Z")));
}

/// Stages events (`n`, eventTime `at`) in one batch item per trail chain,
/// as ingest stages a batch's data events at ingest time `now`.
async fn stage_data(state: &MemoryState, trails: &[Trail], events: &[(usize, &str)], now: &str) {
    let records: Vec<_> = events
        .iter()
        .map(|(n, at)| api_call_record(&id(*n), &t(at)))
        .collect();
    let refs: Vec<(&crate::model::Record, &str)> = records
        .iter()
        .map(|e| (&e.record, e.json.as_str()))
        .collect();
    let copies = stage_batch(state, trails, &refs, &t(now)).await.unwrap();
    assert_eq!(copies, vec![trails.len(); events.len()]);
}

#[tokio::test]
async fn batch_copies_repeated_in_a_window_or_in_later_windows_are_delivered_once() {
    // GIVEN data events staged in batches: a batch of 1–3 at 01:01, its
    // retry with event 4 beside them at 01:02 (another item, same window),
    // then 1 and 4 re-delivered at 01:07 and 3 at 01:40, and event 5 with
    // 2's eventID and another eventTime (another record) at 01:07
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let (at, later) = ("2026-11-24T01:00:30Z", "2026-11-24T01:00:31Z");
    stage_data(
        &state,
        &trails,
        &[(1, at), (2, at), (3, at)],
        "2026-11-24T01:01:00Z",
    )
    .await;
    stage_data(
        &state,
        &trails,
        &[(3, at), (1, at), (2, at), (4, later)],
        "2026-11-24T01:02:00Z",
    )
    .await;
    stage_data(
        &state,
        &trails,
        &[(1, at), (4, later)],
        "2026-11-24T01:07:00Z",
    )
    .await;
    stage_data(&state, &trails, &[(3, at)], "2026-11-24T01:40:00Z").await;
    let other = "2026-11-24T01:03:00Z";
    let record = api_call_record(&id(2), &t(other));
    stage_batch(
        &state,
        &trails,
        &[(&record.record, &record.json)],
        &t("2026-11-24T01:07:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(state.batch_writes(), 5);

    // WHEN deliver runs after each window is sealed
    let mut duplicates = 0;
    for now in [
        "2026-11-24T01:08:00Z",
        "2026-11-24T01:13:00Z",
        "2026-11-24T01:50:00Z",
    ] {
        duplicates += run(&state, &bucket, &trails, now).await.unwrap().duplicates;
    }

    // THEN each record is in one file, once: 2's eventID twice, as two
    // records; the repeats are left out, with no claim and no check
    assert_eq!(
        sorted(bucket.logged_event_ids("logs")),
        [id(1), id(2), id(2), id(3), id(4)]
    );
    assert_eq!(duplicates, 3 + 2 + 1);
    assert_eq!((state.claims(), state.checks()), (0, 0));

    // AND a re-run of the first window (its cursor moved back, as when a
    // run dies after its note of what it delivered) writes the same file:
    // a window's own note is never read back as an earlier window's
    let w = window_of(&t("2026-11-24T01:01:00Z"));
    let file = bucket.keys("logs", "")[0].clone();
    let bytes = bucket.object("logs", &file);
    let next = state.cursor("audit", "eu-west-1").unwrap();
    assert!(state.advance("audit", "eu-west-1", next, w).await.unwrap());
    let again = MemoryBucket::default();
    let report = run(&state, &again, &trails, "2026-11-24T01:08:00Z")
        .await
        .unwrap();
    assert_eq!((report.files, report.records), (1, 4));
    assert_eq!(again.keys("logs", ""), std::slice::from_ref(&file));
    assert_eq!(again.object("logs", &file), bytes);
}

#[tokio::test]
async fn a_management_copy_and_batch_copies_share_a_window_each_delivered_once() {
    // GIVEN a window holding a management event's copy (re-delivered, so
    // claimed) and data events' batch items
    let (state, bucket) = (MemoryState::default(), MemoryBucket::default());
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let at = "2026-11-24T01:00:30Z";
    stage_event(&state, &trails, 1, at, "2026-11-24T01:01:00Z").await;
    stage_event(&state, &trails, 1, at, "2026-11-24T01:06:00Z").await;
    stage_data(&state, &trails, &[(2, at), (3, at)], "2026-11-24T01:06:00Z").await;
    stage_data(&state, &trails, &[(3, at)], "2026-11-24T01:06:10Z").await;

    // WHEN deliver runs for both windows
    for now in ["2026-11-24T01:08:00Z", "2026-11-24T01:13:00Z"] {
        run(&state, &bucket, &trails, now).await.unwrap();
    }

    // THEN every event is logged once
    assert_eq!(
        sorted(bucket.logged_event_ids("logs")),
        [id(1), id(2), id(3)]
    );
}

#[tokio::test]
async fn a_window_of_batch_items_cut_between_files_goes_on_with_the_same_files() {
    // GIVEN one window of 60 events of 40 KB in batch items of ~7 (the
    // later ones repeating some of the earlier ones' events), read 2
    // items a page, files at the smallest cap (~6 events each)
    let trails = [trail("audit", t("2026-11-24T00:00:00Z"))];
    let settings = DeliverSettings {
        max_file_bytes: logfile::MIN_MAX_FILE_BYTES,
        ..DeliverSettings::default()
    };
    let stage_all = |state: MemoryState| async move {
        let now = t("2026-11-24T01:00:30Z");
        for chunk in (0..60).collect::<Vec<usize>>().chunks(7) {
            // Each batch repeats the event before it.
            let mut copies: Vec<Staged> = chunk.iter().map(|&i| large_event(i)).collect();
            if chunk[0] > 0 {
                copies.push(large_event(chunk[0] - 1));
            }
            state
                .register("audit", "eu-west-1", window_of(&now))
                .await
                .unwrap();
            for content in batch::contents(copies) {
                state
                    .stage_batch("audit", "eu-west-1", window_of(&now), &content)
                    .await
                    .unwrap();
            }
        }
        state
    };
    let state = stage_all(MemoryState::default().with_page_items(2)).await;
    let w = window_of(&t("2026-11-24T01:00:30Z"));
    let bucket = MemoryBucket::default();

    // WHEN deliver runs, each out of time after its first file, until the
    // window is delivered
    let runs = deliver_a_file_a_run(&state, &bucket, &trails, w, &settings).await;

    // THEN the files are those of one uninterrupted run, and every event
    // is in exactly one
    let whole = stage_all(MemoryState::default()).await;
    let one_run = MemoryBucket::default();
    let report = run_with(&whole, &one_run, &trails, "2026-11-24T01:10:00Z", &settings)
        .await
        .unwrap();
    assert_eq!(runs, report.files);
    assert!(runs > 5, "{runs}");
    let keys = bucket.keys("logs", "");
    assert_eq!(keys, one_run.keys("logs", ""));
    for key in &keys {
        assert_eq!(bucket.object("logs", key), one_run.object("logs", key));
    }
    let expected: Vec<String> = sorted((0..60).map(id).collect());
    assert_eq!(sorted(bucket.logged_event_ids("logs")), expected);
    assert_eq!(sorted(one_run.logged_event_ids("logs")), expected);
}
