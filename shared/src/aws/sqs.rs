//! The ingest queue: receipt handles confirmed (docs/security.md).

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;

use crate::ingest::queue::{Message, Receipt, Receipts};
use crate::store::StoreError;

/// SQS allows at most this many entries per batch request.
const MAX_BATCH: usize = 10;

/// Confirms receipt handles by setting each message's visibility timeout
/// to the queue's own: a no-op for a message in flight, and
/// `ReceiptHandleIsInvalid` for a handle the queue never gave out.
pub struct SqsReceipts {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    visibility_seconds: i32,
}

impl SqsReceipts {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: &str, visibility_seconds: i32) -> Self {
        Self {
            client,
            queue_url: queue_url.to_owned(),
            visibility_seconds,
        }
    }
}

impl Receipts for SqsReceipts {
    async fn confirm(&self, messages: &[Message]) -> Result<Vec<Receipt>, StoreError> {
        let fail = |message: String| StoreError::Backend {
            operation: "ChangeMessageVisibilityBatch",
            resource: self.queue_url.clone(),
            message,
        };
        // An empty handle is no handle; the others are asked for, ten at a
        // time. Entry IDs are positions, not the message IDs: a made-up
        // batch may hold IDs SQS would refuse, or the same one twice.
        let mut answers: Vec<Receipt> = messages
            .iter()
            .map(|m| {
                if m.receipt_handle.is_empty() {
                    Receipt::Unknown
                } else {
                    Receipt::Unanswered
                }
            })
            .collect();
        let asked: Vec<usize> = (0..messages.len())
            .filter(|&i| !messages[i].receipt_handle.is_empty())
            .collect();
        for chunk in asked.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .map(|&i| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&messages[i].receipt_handle)
                        .visibility_timeout(self.visibility_seconds)
                        .build()
                        .map_err(|e| fail(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| fail(DisplayErrorContext(&e).to_string()))?;
            let position = |id: &str| id.parse::<usize>().ok().filter(|i| chunk.contains(i));
            for ok in out.successful() {
                if let Some(i) = position(ok.id()) {
                    answers[i] = Receipt::Confirmed;
                }
            }
            for refused in out.failed() {
                let Some(i) = position(refused.id()) else {
                    continue;
                };
                // Only an invalid handle says "never handed out"; anything
                // else (a message no longer in flight, an internal error)
                // is for the queue to deliver again.
                if refused.code() == "ReceiptHandleIsInvalid" {
                    answers[i] = Receipt::Unknown;
                } else {
                    tracing::warn!(
                        entry = refused.id(),
                        code = refused.code(),
                        "receipt not confirmed"
                    );
                }
            }
        }
        Ok(answers)
    }
}
