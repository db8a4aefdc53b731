//! Decode the trigger, call `shared`, map errors.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use trailkeep_shared::delivery::StagingStore;
use trailkeep_shared::history::{HistorySettings, HistoryStore};
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::ingest::queue::{ingest_batch, Message, Receipts};
use trailkeep_shared::ingest::Targets;
use trailkeep_shared::store::StoreError;
use trailkeep_shared::trail::{TrailCache, TrailStore};

pub(crate) struct Deps<R, H, S, T> {
    pub receipts: R,
    pub history: H,
    pub staging: S,
    pub trails: TrailCache<T>,
    pub settings: HistorySettings,
    /// The stack serves an organization (ORGANIZATION_ID).
    pub organization: bool,
    /// ACCOUNT_ID: the stack's account where the function's ARN has none
    /// (local emulators only).
    pub account_id: Option<String>,
}

/// Why a batch failed as a whole (Lambda returns every message to the
/// queue); its `errorType` names the cause (docs/ingest.md). One message's
/// failure is not here: it is a `batchItemFailures` entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandlerError {
    /// The trails could not be read: transient.
    #[error("loading the trails failed (the batch will be retried): {0}")]
    Trails(StoreError),
    /// The queue could not confirm the receipt handles: transient.
    #[error(
        "confirming the messages with the ingest queue failed (the batch will be retried): {0}"
    )]
    Queue(StoreError),
    /// Messages the queue never handed out: someone invoked the function
    /// directly with a made-up batch.
    #[error("{forged} of {total} messages refused: the ingest queue does not know their receipt handles (forged; only messages received from the queue are ingested)")]
    Forged { forged: usize, total: usize },
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Trails(_) | HandlerError::Queue(_) => "StoreUnavailable",
            HandlerError::Forged { .. } => "ForgedMessages",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// One batch of the ingest queue. Each message is confirmed with the queue,
/// then ingested on its own; a message that fails (store failure, bad
/// records) is handed back in `batchItemFailures`, so the queue retries it
/// alone and, after its retries, moves it to the dead-letter queue
/// (docs/ingest.md).
pub(crate) async fn handle<R: Receipts, H: HistoryStore, S: StagingStore, T: TrailStore>(
    deps: &Deps<R, H, S, T>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, HandlerError> {
    // The ingest time picks the delivery window: it is the moment of
    // processing, read once here at the edge.
    let now = Utc::now();
    let ctx = Context {
        account_id: Some(account_of(&event.context.invoked_function_arn))
            .filter(|a| !a.is_empty())
            .or(deps.account_id.as_deref())
            .unwrap_or_default()
            .to_owned(),
    };
    let trails = deps.trails.trails().await.map_err(HandlerError::Trails)?;
    let targets = Targets {
        history: &deps.history,
        settings: &deps.settings,
        staging: &deps.staging,
        trails: &trails,
        organization: deps.organization,
    };
    let messages: Vec<Message> = event
        .payload
        .records
        .into_iter()
        .map(|m| Message {
            id: m.message_id.unwrap_or_default(),
            receipt_handle: m.receipt_handle.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let report = ingest_batch(&deps.receipts, &targets, &ctx, &messages, &now)
        .await
        .map_err(HandlerError::Queue)?;
    let sum = |f: fn(&trailkeep_shared::ingest::IngestReport) -> usize| {
        report.ingested.iter().map(|(_, r)| f(r)).sum::<usize>()
    };
    tracing::info!(
        messages = messages.len(),
        accepted = sum(|r| r.accepted),
        stored = sum(|r| r.stored),
        duplicates = sum(|r| r.duplicates),
        data_events = sum(|r| r.data_events),
        staged = sum(|r| r.staged),
        failed = report.failed.len(),
        forged = report.forged.len(),
        "batch ingested"
    );
    if !report.forged.is_empty() {
        return Err(HandlerError::Forged {
            forged: report.forged.len(),
            total: messages.len(),
        });
    }
    let mut response = SqsBatchResponse::default();
    for id in report.retry_ids() {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id.to_owned();
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The account of `arn:aws:lambda:region:account:function:name`.
fn account_of(function_arn: &str) -> &str {
    function_arn.split(':').nth(4).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessage;
    use trailkeep_shared::testkit::{MemoryHistory, MemoryQueue, MemoryState, MemoryTrails};

    type TestDeps = Deps<MemoryQueue, MemoryHistory, MemoryState, MemoryTrails>;

    fn deps() -> TestDeps {
        let since = trailkeep_shared::time::parse("2026-11-24T00:00:00Z").unwrap();
        Deps {
            receipts: MemoryQueue::default(),
            history: Default::default(),
            staging: Default::default(),
            trails: TrailCache::new(
                MemoryTrails::with(vec![trailkeep_shared::testkit::trail("audit", since)]),
                std::time::Duration::from_secs(60),
            ),
            settings: HistorySettings {
                retention_days: 90,
                shards: 1,
            },
            organization: false,
            account_id: None,
        }
    }

    /// `body` as an event of the queue it was received from; with
    /// `forged`, a made-up receipt handle the queue never gave out.
    fn batch(deps: &TestDeps, bodies: &[(String, bool)]) -> LambdaEvent<SqsEvent> {
        let mut event = SqsEvent::default();
        for (body, forged) in bodies {
            let m = deps.receipts.receive(body);
            let mut record = SqsMessage::default();
            record.message_id = Some(m.id);
            record.receipt_handle = Some(if *forged {
                "AQEBmadeup==".to_owned()
            } else {
                m.receipt_handle
            });
            record.body = Some(m.body);
            event.records.push(record);
        }
        let mut ctx = lambda_runtime::Context::default();
        ctx.invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:ingest".into();
        LambdaEvent::new(event, ctx)
    }

    /// A sample payload, its times moved to just before now (the ingest
    /// time is the wall clock here).
    fn sample(file: &str) -> String {
        let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let now = trailkeep_shared::time::format(&(Utc::now() - chrono::Duration::minutes(1)));
        if v.get("time").is_some() {
            v["time"] = now.clone().into();
        }
        if v["detail"].get("eventTime").is_some() {
            v["detail"]["eventTime"] = now.into();
        }
        v.to_string()
    }

    #[tokio::test]
    async fn an_api_call_from_the_queue_is_stored_and_staged_for_the_trail() {
        let deps = deps();
        let event = batch(&deps, &[(sample("eventbridge/api-call-write.json"), false)]);
        let response = handle(&deps, event).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            deps.staging.staged_ids("audit", "eu-west-1"),
            ["a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02"]
        );
    }

    #[tokio::test]
    async fn a_bad_message_is_handed_back_alone() {
        let deps = deps();
        let event = batch(
            &deps,
            &[
                (sample("malformed/missing-event-source.json"), false),
                (sample("eventbridge/api-call-write.json"), false),
            ],
        );
        let bad_id = event.payload.records[0].message_id.clone().unwrap();
        let response = handle(&deps, event).await.unwrap();
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, [bad_id.as_str()]);
        assert_eq!(deps.staging.staged_ids("audit", "eu-west-1").len(), 1);
    }

    #[tokio::test]
    async fn a_direct_invocation_with_made_up_messages_is_refused_as_forged() {
        // Issue 21, item 1: a principal allowed lambda:InvokeFunction hands
        // the function an "AWS API Call" it wrote itself, shaped as a batch
        // of the queue. The queue does not know its receipt handle.
        let deps = deps();
        let event = batch(&deps, &[(sample("eventbridge/api-call-write.json"), true)]);
        let err = handle(&deps, event).await.unwrap_err();
        let d = Diagnostic::from(err);
        assert_eq!(d.error_type, "ForgedMessages");
        assert!(deps.staging.staged_ids("audit", "eu-west-1").is_empty());
        assert!(deps.history.keys().is_empty(), "nothing stored");
    }

    #[tokio::test]
    async fn a_queue_that_cannot_answer_fails_the_batch_for_a_retry() {
        let deps = deps();
        deps.receipts.fail(true);
        let event = batch(&deps, &[(sample("eventbridge/api-call-write.json"), false)]);
        let d = Diagnostic::from(handle(&deps, event).await.unwrap_err());
        assert_eq!(d.error_type, "StoreUnavailable");
        assert!(
            d.error_message.contains("ingest queue"),
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
