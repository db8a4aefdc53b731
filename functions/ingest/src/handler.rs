//! Decode the trigger, call `shared`, map errors.

use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::value::RawValue;
use trailkeep_shared::delivery::StagingStore;
use trailkeep_shared::history::{HistorySettings, HistoryStore};
use trailkeep_shared::ingest::{self, IngestReport, Targets};
use trailkeep_shared::normalize::Context;
use trailkeep_shared::trails::{TrailCache, TrailStore};

pub(crate) struct Deps<H, S, T> {
    pub history: H,
    pub staging: S,
    pub trails: TrailCache<T>,
    pub settings: HistorySettings,
}

/// Any JSON payload is accepted as text; normalization decides what it is.
/// An error makes Lambda retry the payload and, after the retries, send it
/// to the dead-letter queue with the error message (docs/ingest.md).
pub(crate) async fn handle<H: HistoryStore, S: StagingStore, T: TrailStore>(
    deps: &Deps<H, S, T>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<IngestReport, Error> {
    // The ingest time picks the delivery window: it is the moment of arrival.
    let now = Utc::now();
    let ctx = Context {
        account_id: account_of(&event.context.invoked_function_arn).to_owned(),
    };
    let trails = deps.trails.trails().await?;
    let targets = Targets {
        history: &deps.history,
        settings: &deps.settings,
        staging: &deps.staging,
        trails: &trails,
    };
    let report = ingest::ingest(&targets, &ctx, event.payload.get(), &now).await?;
    tracing::info!(
        accepted = report.accepted,
        stored = report.stored,
        duplicates = report.duplicates,
        data_events = report.data_events,
        staged = report.staged,
        ignored = report.ignored.len(),
        "payload ingested"
    );
    Ok(report)
}

/// The account of `arn:aws:lambda:region:account:function:name`.
fn account_of(function_arn: &str) -> &str {
    function_arn.split(':').nth(4).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_account_comes_from_the_function_arn() {
        assert_eq!(
            super::account_of("arn:aws:lambda:eu-west-1:111122223333:function:ingest"),
            "111122223333"
        );
        assert_eq!(super::account_of("garbage"), "");
    }
}
