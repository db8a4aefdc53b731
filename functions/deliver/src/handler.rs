//! Decode the schedule, call `shared`, map errors.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use trailkeep_shared::delivery::{self, DeliverReport, DeliverSettings, LogSink, StagingStore};
use trailkeep_shared::trails::TrailStore;

pub(crate) struct Deps<S, T, L> {
    pub staging: S,
    pub trails: T,
    pub logs: L,
    pub settings: DeliverSettings,
}

#[derive(Debug, thiserror::Error)]
enum DeliverError {
    #[error("the scheduled event has no time: deliver takes \"now\" from it")]
    NoTime,
}

/// "Now" is the scheduled event's time, so a run replays exactly.
pub(crate) async fn handle<S: StagingStore, T: TrailStore, L: LogSink>(
    deps: &Deps<S, T, L>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<DeliverReport, Error> {
    let now = event.payload.time.ok_or(DeliverError::NoTime)?;
    let trails = deps.trails.load().await?.trails;
    let report =
        delivery::deliver(&deps.staging, &deps.logs, &trails, &now, &deps.settings).await?;
    tracing::info!(
        now = %now,
        windows = report.windows,
        files = report.files,
        records = report.records,
        duplicates = report.duplicates,
        behind = report.behind,
        "delivered"
    );
    Ok(report)
}
