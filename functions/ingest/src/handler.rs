//! Decode the trigger, call `shared`, map errors.

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use trailkeep_shared::delivery::StagingStore;
use trailkeep_shared::history::{HistorySettings, HistoryStore};
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::ingest::{self, IngestError, IngestReport, Targets};
use trailkeep_shared::store::StoreError;
use trailkeep_shared::trail::{TrailCache, TrailStore};

pub(crate) struct Deps<H, S, T> {
    pub history: H,
    pub staging: S,
    pub trails: TrailCache<T>,
    pub settings: HistorySettings,
}

/// Why a payload failed; its `errorType` tells a DLQ reader and the
/// metrics whether a retry can help (docs/ingest.md).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandlerError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The trails could not be read: transient.
    #[error("loading the trails failed (the payload will be retried): {0}")]
    Trails(#[from] StoreError),
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Ingest(IngestError::Rejected { .. }) => "RecordsRejected",
            HandlerError::Ingest(IngestError::Store { .. }) | HandlerError::Trails(_) => {
                "StoreUnavailable"
            }
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Any JSON payload is accepted as text; normalization decides what it is.
/// An error makes Lambda retry the payload and, after the retries, send it
/// to the dead-letter queue with the error message (docs/ingest.md).
pub(crate) async fn handle<H: HistoryStore, S: StagingStore, T: TrailStore>(
    deps: &Deps<H, S, T>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<IngestReport, HandlerError> {
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
    use super::*;

    #[test]
    fn rejected_records_and_store_failures_have_their_own_error_types() {
        let store = || StoreError::Backend {
            operation: "PutItem",
            resource: "history".into(),
            message: "throttled".into(),
        };
        let rejected = HandlerError::Ingest(IngestError::Rejected {
            rejected: Vec::new(),
            accepted: 1,
            stored: 1,
        });
        let failed = HandlerError::Ingest(IngestError::Store {
            failed: 1,
            accepted: 1,
            first: store(),
        });
        assert_eq!(Diagnostic::from(rejected).error_type, "RecordsRejected");
        let d = Diagnostic::from(failed);
        assert_eq!(d.error_type, "StoreUnavailable");
        assert!(d.error_message.contains("throttled"), "{}", d.error_message);
        let trails = Diagnostic::from(HandlerError::Trails(store()));
        assert_eq!(trails.error_type, "StoreUnavailable");
    }

    fn deps() -> Deps<
        trailkeep_shared::testkit::MemoryHistory,
        trailkeep_shared::testkit::MemoryState,
        trailkeep_shared::testkit::MemoryTrails,
    > {
        let since = trailkeep_shared::time::parse("2026-11-24T00:00:00Z").unwrap();
        Deps {
            history: Default::default(),
            staging: Default::default(),
            trails: TrailCache::new(
                trailkeep_shared::testkit::MemoryTrails::with(vec![
                    trailkeep_shared::testkit::trail("audit", since),
                ]),
                std::time::Duration::from_secs(60),
            ),
            settings: HistorySettings {
                retention_days: 90,
                served_regions: vec!["eu-west-1".into()],
            },
        }
    }

    fn invoke(file: &str) -> LambdaEvent<Box<RawValue>> {
        let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut ctx = lambda_runtime::Context::default();
        ctx.invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:ingest".into();
        LambdaEvent::new(RawValue::from_string(text).unwrap(), ctx)
    }

    #[tokio::test]
    async fn an_api_call_is_stored_and_staged_for_the_trail() {
        let deps = deps();
        let report = handle(&deps, invoke("eventbridge/api-call-write.json"))
            .await
            .unwrap();
        assert_eq!((report.accepted, report.stored, report.staged), (1, 1, 1));
        assert_eq!(report.event_ids, ["a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02"]);
    }

    #[tokio::test]
    async fn a_malformed_payload_fails_as_records_rejected() {
        let deps = deps();
        let err = handle(&deps, invoke("malformed/missing-event-source.json"))
            .await
            .unwrap_err();
        let d = Diagnostic::from(err);
        assert_eq!(d.error_type, "RecordsRejected");
        assert!(
            d.error_message.contains("eventSource"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn the_account_comes_from_the_function_arn() {
        assert_eq!(
            super::account_of("arn:aws:lambda:eu-west-1:111122223333:function:ingest"),
            "111122223333"
        );
        assert_eq!(super::account_of("garbage"), "");
    }
}
