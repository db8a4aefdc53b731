//! Decode the trigger, call `shared`, map errors.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::value::RawValue;
use trailkeep_shared::history::{HistorySettings, HistoryStore};
use trailkeep_shared::ingest::{self, IngestReport};
use trailkeep_shared::normalize::Context;

pub(crate) struct Deps<S> {
    pub store: S,
    pub settings: HistorySettings,
}

/// Any JSON payload is accepted as text; normalization decides what it is. An
/// error makes Lambda retry the payload and, after the retries, send it to
/// the dead-letter queue with the error message (docs/ingest.md).
pub(crate) async fn handle<S: HistoryStore>(
    deps: &Deps<S>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<IngestReport, Error> {
    let ctx = Context {
        account_id: account_of(&event.context.invoked_function_arn).to_owned(),
    };
    let report = ingest::ingest(&deps.store, &deps.settings, &ctx, event.payload.get()).await?;
    tracing::info!(
        accepted = report.accepted,
        stored = report.stored,
        duplicates = report.duplicates,
        data_events = report.data_events,
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
