//! The ingest queue: the only way in (docs/security.md "Only AWS speaks as AWS").
//!
//! EventBridge's rules and S3's notifications send to a queue whose policy
//! refuses every other sender, and Lambda polls it for the ingest function.
//! A principal allowed `lambda:InvokeFunction` could still hand the
//! function a made-up batch of "messages", so before a message is trusted
//! its receipt handle is confirmed with the queue: only a message really
//! received from it (in flight, by the ingest role, the one principal the
//! queue policy lets receive) has one. A message the queue does not know is
//! refused as forged, and never retried.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::normalize::Context;
use super::{IngestError, IngestReport, Targets};
use crate::delivery::StagingStore;
use crate::history::HistoryStore;
use crate::store::StoreError;

/// One message of a batch, as the trigger hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub receipt_handle: String,
    /// An EventBridge event or an S3 notification (JSON text).
    pub body: String,
}

/// What the queue says about one message's receipt handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// A message in flight in the queue: received from it.
    Confirmed,
    /// A handle the queue never gave out (`ReceiptHandleIsInvalid`).
    Unknown,
    /// The queue could not say for this message (a transient failure).
    Unanswered,
}

/// The port to the queue: which of these receipt handles belong to
/// messages in flight in it.
pub trait Receipts: Send + Sync {
    /// One answer per message, in order, each for that message's own
    /// handle. Fails only when the queue could not answer at all.
    fn confirm(
        &self,
        messages: &[Message],
    ) -> impl Future<Output = Result<Vec<Receipt>, StoreError>> + Send;
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Per message processed: its id and what ingesting it did.
    pub ingested: Vec<(String, IngestReport)>,
    /// Messages to retry (their ids): a store failure, bad records (which
    /// after the queue's retries go to the dead-letter queue for a person),
    /// or a receipt the queue could not confirm this time.
    pub failed: Vec<String>,
    /// Messages the queue does not know: forged, refused, never retried.
    pub forged: Vec<String>,
}

impl BatchReport {
    /// The ids Lambda should return to the queue (`batchItemFailures`).
    pub fn retry_ids(&self) -> Vec<&str> {
        self.failed.iter().map(String::as_str).collect()
    }
}

/// Ingests the messages the queue confirms, each on its own and all at
/// once (an invocation lasts as long as its slowest message, not the sum:
/// docs/cost.md "Scaling"): one failing message never costs the others.
/// `now` is the ingest time.
/// Err only when the queue could not confirm anything (retry the batch).
pub async fn ingest_batch<R: Receipts, H: HistoryStore, S: StagingStore>(
    receipts: &R,
    targets: &Targets<'_, H, S>,
    ctx: &Context,
    messages: &[Message],
    now: &DateTime<Utc>,
) -> Result<BatchReport, StoreError> {
    let receipts = receipts.confirm(messages).await?;
    let mut report = BatchReport::default();
    let mut confirmed = Vec::new();
    // Each message by its own answer, by position: an ID is whatever the
    // caller wrote, and a made-up message may repeat a real one's.
    for (i, m) in messages.iter().enumerate() {
        match receipts.get(i).copied().unwrap_or(Receipt::Unanswered) {
            Receipt::Confirmed => {}
            Receipt::Unknown => {
                tracing::error!(
                    alarm = "ForgedMessage",
                    message_id = %super::normalize::quote_prefix(&m.id),
                    "message refused: the ingest queue does not know its receipt handle (not received from the queue: forged)"
                );
                report.forged.push(m.id.clone());
                continue;
            }
            Receipt::Unanswered => {
                tracing::warn!(message_id = %m.id, "the queue did not confirm the message this time: handed back");
                report.failed.push(m.id.clone());
                continue;
            }
        }
        confirmed.push(m);
    }
    let outcomes = ingest_all(targets, ctx, &confirmed, now).await;
    for (m, outcome) in confirmed.into_iter().zip(outcomes) {
        match outcome {
            Ok(r) => report.ingested.push((m.id.clone(), r)),
            Err(e) => {
                tracing::error!(message_id = %m.id, error = %e, "message failed");
                report.failed.push(m.id.clone());
            }
        }
    }
    Ok(report)
}

/// Ingests each message on its own outcome, all at once (their index items
/// written together: [`super::ingest_many`]): the outcomes in order.
pub async fn ingest_all<H: HistoryStore, S: StagingStore>(
    targets: &Targets<'_, H, S>,
    ctx: &Context,
    messages: &[&Message],
    now: &DateTime<Utc>,
) -> Vec<Result<IngestReport, IngestError>> {
    let payloads: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.id.as_str(), m.body.as_str()))
        .collect();
    super::ingest_many(targets, ctx, &payloads, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{api_call, IngestFakes, MemoryQueue, ACCOUNT};

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse(s).unwrap()
    }

    async fn run(
        queue: &MemoryQueue,
        fakes: &IngestFakes,
        batch: &[Message],
    ) -> Result<BatchReport, StoreError> {
        let ctx = Context {
            account_id: ACCOUNT.into(),
        };
        let now = t("2026-11-24T01:00:05Z");
        ingest_batch(queue, &fakes.targets(), &ctx, batch, &now).await
    }

    #[tokio::test]
    async fn a_message_the_queue_never_handed_out_is_refused_and_the_real_ones_go_on() {
        // GIVEN one message really received from the queue and one made up
        // by a caller of the function (an AWS source and all)
        let queue = MemoryQueue::default();
        let real = queue.receive(&api_call(
            "11111111-1111-4111-8111-111111111111",
            &t("2026-11-24T01:00:00Z"),
        ));
        let forged = Message {
            id: "f0f0f0f0-0000-4000-8000-000000000000".into(),
            receipt_handle: "AQEBforgedhandle==".into(),
            body: api_call(
                "22222222-2222-4222-8222-222222222222",
                &t("2026-11-24T01:00:01Z"),
            ),
        };
        // … and one made up with the real message's ID
        let same_id = Message {
            id: real.id.clone(),
            ..forged.clone()
        };
        let fakes = IngestFakes::default();
        // WHEN the batch is ingested
        let report = run(&queue, &fakes, &[forged.clone(), real.clone(), same_id])
            .await
            .unwrap();
        // THEN the real one is stored and staged, the forged ones neither,
        // and they are not handed back for a retry
        assert_eq!(report.forged, [forged.id, real.id.clone()]);
        assert_eq!(report.ingested.len(), 1);
        assert_eq!(report.ingested[0].0, real.id);
        assert!(report.retry_ids().is_empty());
        let keys: Vec<String> = fakes.history.keys().into_iter().map(|(pk, _)| pk).collect();
        assert!(keys.iter().any(|k| k.contains("11111111-1111")));
        assert!(
            !keys.iter().any(|k| k.contains("22222222-2222")),
            "{keys:?}"
        );
        assert_eq!(
            fakes.staging.staged_ids("audit", "eu-west-1"),
            ["11111111-1111-4111-8111-111111111111"]
        );
    }

    /// The history, counting the claims under way at once.
    #[derive(Default)]
    struct Overlap {
        inner: crate::testkit::MemoryHistory,
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl crate::history::HistoryStore for Overlap {
        async fn claim(
            &self,
            item: &crate::history::Item<'_>,
            first_window: Option<i64>,
        ) -> Result<crate::history::Claim, StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(n, SeqCst);
            // A round trip: the other messages get their turn meanwhile.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            self.now.fetch_sub(1, SeqCst);
            self.inner.claim(item, first_window).await
        }

        async fn put_all(&self, items: &[crate::history::Item<'_>]) -> Result<(), StoreError> {
            self.inner.put_all(items).await
        }
    }

    #[tokio::test]
    async fn the_messages_of_a_batch_are_ingested_at_once() {
        let queue = MemoryQueue::default();
        let batch: Vec<Message> = (0..10)
            .map(|i| {
                queue.receive(&api_call(
                    &format!("5555555{i}-5555-4555-8555-555555555555"),
                    &t("2026-11-24T01:00:00Z"),
                ))
            })
            .collect();
        let fakes = IngestFakes::default();
        let history = Overlap::default();
        let targets = Targets {
            history: &history,
            settings: &fakes.settings,
            staging: &fakes.staging,
            trails: &fakes.trails,
            organization: false,
        };
        let ctx = Context {
            account_id: ACCOUNT.into(),
        };
        let now = t("2026-11-24T01:00:05Z");
        let report = ingest_batch(&queue, &targets, &ctx, &batch, &now)
            .await
            .unwrap();
        assert_eq!(report.ingested.len(), 10);
        // In the batch's order, each with its own answer.
        let ids: Vec<&str> = report.ingested.iter().map(|(id, _)| id.as_str()).collect();
        let sent: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, sent);
        assert_eq!(history.most.load(std::sync::atomic::Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn a_failing_message_is_retried_alone_and_a_silent_queue_retries_the_batch() {
        let queue = MemoryQueue::default();
        let good = queue.receive(&api_call(
            "33333333-3333-4333-8333-333333333333",
            &t("2026-11-24T01:00:00Z"),
        ));
        let bad = queue.receive("{\"detail-type\": \"x\"}");
        let fakes = IngestFakes::default();
        let batch = [bad.clone(), good.clone()];
        let report = run(&queue, &fakes, &batch).await.unwrap();
        assert_eq!(report.retry_ids(), [bad.id.as_str()]);
        assert_eq!(report.ingested.len(), 1);
        // The queue cannot answer for one message: it is handed back, not
        // called forged, and not ingested.
        let unsure = queue.receive(&api_call(
            "44444444-4444-4444-8444-444444444444",
            &t("2026-11-24T01:00:00Z"),
        ));
        queue.leave_unanswered(&unsure.receipt_handle);
        let report = run(&queue, &fakes, std::slice::from_ref(&unsure))
            .await
            .unwrap();
        assert_eq!(report.retry_ids(), [unsure.id.as_str()]);
        assert!(report.forged.is_empty() && report.ingested.is_empty());
        // The queue cannot answer at all: nothing is trusted, the batch is retried.
        queue.fail(true);
        assert!(run(&queue, &fakes, &batch).await.is_err());
    }
}
