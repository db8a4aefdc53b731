//! Decode the schedule, call `shared`, map errors.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use trailkeep_shared::digester::{
    self, DigestBucket, DigestReport, DigestSettings, DigestState, Signer,
};
use trailkeep_shared::trails::TrailStore;

pub(crate) struct Deps<S, T, K, B> {
    pub state: S,
    pub trails: T,
    pub signer: K,
    pub bucket: B,
    pub settings: DigestSettings,
}

#[derive(Debug, thiserror::Error)]
enum DigestError {
    #[error("the scheduled event has no time: digest takes \"now\" from it")]
    NoTime,
}

/// "Now" is the scheduled event's time, so a run replays exactly.
pub(crate) async fn handle<S: DigestState, T: TrailStore, K: Signer, B: DigestBucket>(
    deps: &Deps<S, T, K, B>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<DigestReport, Error> {
    let now = event.payload.time.ok_or(DigestError::NoTime)?;
    let trails = deps.trails.load().await?.trails;
    let report = digester::run(
        &deps.state,
        &deps.signer,
        &deps.bucket,
        &trails,
        &now,
        &deps.settings,
    )
    .await?;
    tracing::info!(
        now = %now,
        digests = report.digests,
        log_files = report.log_files,
        tampered = report.tampered,
        waiting = report.waiting,
        raced = report.raced,
        "digested"
    );
    Ok(report)
}
