//! Decode the schedule, call `shared`, map errors.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use trailkeep_shared::delivery::cloudwatch::EventLog;
use trailkeep_shared::delivery::{
    DeliverReport, DeliverSettings, Deliverer, LogSink, Notifier, StagingStore,
};
use trailkeep_shared::store::{Incomplete, StoreError};
use trailkeep_shared::trail::{HealthStore, TrailStore};

pub(crate) struct Deps<S, T, L, N, E> {
    pub staging: S,
    pub trails: T,
    pub logs: L,
    pub notifier: N,
    pub events: E,
    pub settings: DeliverSettings,
    /// How long before the invocation's deadline a run stops starting
    /// work; none: it does not watch the clock.
    pub stop_before: Option<std::time::Duration>,
}

/// Why a run failed; its `errorType` says whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliverError {
    /// Permanent: the trigger is not a scheduled event.
    #[error("the scheduled event has no time: deliver takes \"now\" from it")]
    NoTime,
    /// Transient: the next run (or a retry) picks up where this one stopped.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some trails/regions failed; the others went on. Retried next run.
    #[error(transparent)]
    Incomplete(#[from] Incomplete),
}

impl From<DeliverError> for Diagnostic {
    fn from(e: DeliverError) -> Self {
        let error_type = match e {
            DeliverError::NoTime => "BadTrigger",
            DeliverError::Store(_) => "StoreUnavailable",
            DeliverError::Incomplete(_) => "PartialFailure",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// When the run stops starting new work: the invocation's deadline (epoch
/// milliseconds) less `stop_before` (STOP_BEFORE_DEADLINE_SECONDS, 30 in
/// template.yaml: past it a run starts no new window and stops at the next
/// file or page, and what it is doing then — at most one file of up to
/// 50 MB, its manifest entry, a note on the cursor — takes seconds;
/// docs/delivery.md "A window longer than a run"). None without either.
fn deadline(
    deadline_ms: u64,
    stop_before: Option<std::time::Duration>,
) -> Option<std::time::Instant> {
    let stop_before = stop_before.filter(|_| deadline_ms > 0)?;
    let end = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(deadline_ms))?;
    let left = end
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Some(std::time::Instant::now() + left.saturating_sub(stop_before))
}

/// "Now" is the scheduled event's time, so a run replays exactly.
pub(crate) async fn handle<
    S: StagingStore + HealthStore,
    T: TrailStore,
    L: LogSink,
    N: Notifier,
    E: EventLog,
>(
    deps: &Deps<S, T, L, N, E>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<DeliverReport, DeliverError> {
    let now = event.payload.time.ok_or(DeliverError::NoTime)?;
    let trails = deps.trails.load().await?.trails;
    let deliverer = Deliverer {
        staging: &deps.staging,
        logs: &deps.logs,
        notifier: &deps.notifier,
        events: &deps.events,
        settings: &deps.settings,
    };
    let report = deliverer
        .run_until(
            &trails,
            &now,
            &deadline(event.context.deadline, deps.stop_before),
        )
        .await;
    tracing::info!(
        now = %now,
        windows = report.windows,
        files = report.files,
        records = report.records,
        duplicates = report.duplicates,
        behind = report.behind,
        notified = report.notified,
        notify_failed = report.notify_failed,
        cwl_sent = report.cwl_sent,
        cwl_failed = report.cwl_failed,
        failed = report.failed.len(),
        "delivered"
    );
    Ok(report.into_result()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailkeep_shared::testkit::{
        api_call_record, trail, MemoryBucket, MemoryEventLog, MemoryNotifier, MemoryState,
        MemoryTrails,
    };

    #[test]
    fn the_run_stops_starting_work_the_configured_time_before_the_deadline() {
        let epoch_ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
        };
        let thirty = Some(std::time::Duration::from_secs(30));
        let now = std::time::SystemTime::now();
        let in_four_minutes = epoch_ms(now + std::time::Duration::from_secs(240));
        let left = deadline(in_four_minutes, thirty).unwrap() - std::time::Instant::now();
        assert!(left <= std::time::Duration::from_secs(210), "{left:?}");
        assert!(left > std::time::Duration::from_secs(205), "{left:?}");
        // Less than that left, or past: stop at once (after the first file
        // or window, docs/delivery.md).
        let soon = epoch_ms(now + std::time::Duration::from_secs(10));
        assert!(deadline(soon, thirty).unwrap() <= std::time::Instant::now());
        // Not configured (a local runtime), or no deadline: none.
        assert_eq!(deadline(in_four_minutes, None), None);
        assert_eq!(deadline(0, thirty), None);
    }

    fn scheduled(time: Option<&str>) -> LambdaEvent<EventBridgeEvent<Value>> {
        let mut v: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/scheduled/deliver.json"
        )))
        .unwrap();
        match time {
            Some(t) => v["time"] = t.into(),
            None => drop(v.as_object_mut().unwrap().remove("time")),
        }
        LambdaEvent::new(serde_json::from_value(v).unwrap(), Default::default())
    }

    async fn deps() -> Deps<MemoryState, MemoryTrails, MemoryBucket, MemoryNotifier, MemoryEventLog>
    {
        let since = trailkeep_shared::time::parse("2026-11-24T00:00:00Z").unwrap();
        let event = api_call_record("6f1b2b7e-6a5b-4f3d-9d43-5c1a9e2f1a02", &since);
        let deps = Deps {
            staging: MemoryState::default(),
            trails: MemoryTrails::with(vec![trail("audit", since)]),
            logs: MemoryBucket::default(),
            notifier: MemoryNotifier::default(),
            events: MemoryEventLog::default(),
            settings: DeliverSettings::default(),
            stop_before: None,
        };
        let trails = deps.trails.trails();
        // A management event's copy, following no first-staging note: claimed.
        trailkeep_shared::delivery::stage_noted(
            &deps.staging,
            &trails,
            &event.record,
            &event.json,
            &since,
            trailkeep_shared::delivery::Note::Known(None),
        )
        .await
        .unwrap();
        deps
    }

    #[tokio::test]
    async fn a_scheduled_run_delivers_the_sealed_windows_of_its_time() {
        let deps = deps().await;
        let report = handle(&deps, scheduled(Some("2026-11-24T00:10:00Z")))
            .await
            .unwrap();
        assert_eq!((report.files, report.records), (1, 1));
        assert_eq!(
            deps.logs.logged_event_ids("logs"),
            ["6f1b2b7e-6a5b-4f3d-9d43-5c1a9e2f1a02"]
        );
    }

    #[tokio::test]
    async fn a_trigger_without_time_is_a_bad_trigger_and_a_failed_write_a_partial_failure() {
        let deps = deps().await;
        let no_time = handle(&deps, scheduled(None)).await.unwrap_err();
        assert_eq!(Diagnostic::from(no_time).error_type, "BadTrigger");
        deps.logs.fail_writes_after(Some(0));
        let failed = handle(&deps, scheduled(Some("2026-11-24T00:10:00Z")))
            .await
            .unwrap_err();
        let d = Diagnostic::from(failed);
        assert_eq!(d.error_type, "PartialFailure");
        assert!(d.error_message.contains("PutObject"), "{}", d.error_message);
    }
}
