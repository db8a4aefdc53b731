//! The ingest queue: receipt handles confirmed (docs/security.md).

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;

use crate::ingest::queue::{Message, Receipts};
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
    async fn confirm(&self, messages: &[Message]) -> Result<Vec<String>, StoreError> {
        let fail = |message: String| StoreError::Backend {
            operation: "ChangeMessageVisibilityBatch",
            resource: self.queue_url.clone(),
            message,
        };
        // Entry IDs are the positions, not the message IDs: a made-up
        // batch may hold IDs SQS would refuse, or the same one twice.
        let candidates: Vec<&Message> = messages
            .iter()
            .filter(|m| !m.receipt_handle.is_empty())
            .collect();
        let mut confirmed = Vec::new();
        for chunk in candidates.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
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
            for ok in out.successful() {
                if let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    confirmed.push(m.id.clone());
                }
            }
            for refused in out.failed() {
                tracing::warn!(
                    entry = refused.id(),
                    code = refused.code(),
                    "receipt handle not confirmed"
                );
            }
        }
        Ok(confirmed)
    }
}
