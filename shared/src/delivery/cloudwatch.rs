//! A trail's events in CloudWatch Logs (docs/trails.md "Events in CloudWatch Logs"):
//! each delivered log file's records, as `PutLogEvents` batches.

use std::future::Future;

use crate::store::StoreError;

/// `PutLogEvents`' limits: bytes per batch (each event's message plus
/// [`EVENT_OVERHEAD`]), events per batch, and the time one batch may span.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 60 * 60 * 1000;
/// CloudTrail sends no event larger than 256 KB to CloudWatch Logs.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// One log event: the record's `eventTime` (epoch milliseconds) and JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub message: String,
}

/// What became of a batch the service answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    /// Taken, but for `rejected` events (older than the group's retention
    /// or 14 days, or more than 2 hours ahead).
    Accepted { rejected: usize },
    /// Refused for good: the group is gone, the role may not write, the
    /// batch is invalid. Sending it again would fail the same way.
    Refused(String),
}

/// Where a trail's events go besides its log files (CloudWatch Logs in
/// production).
pub trait EventLog: Send + Sync {
    /// Sends one batch (sorted, within `PutLogEvents`' limits) to `stream`
    /// of the log group `group` (a name), creating the stream if it does
    /// not exist yet. An `Err` is a failure that may pass (throttling, the
    /// service unavailable, the network): the caller tries again later.
    fn put(
        &self,
        group: &str,
        stream: &str,
        batch: Vec<LogEvent>,
    ) -> impl Future<Output = Result<Put, StoreError>> + Send;
}

/// A file's events as `PutLogEvents` batches, in order: sorted by time
/// (ties keep the file's order), each batch within the byte, count and
/// 24-hour limits. Events over [`MAX_EVENT_BYTES`] are left out; their
/// number is returned with the batches.
pub fn batches(mut events: Vec<LogEvent>) -> (Vec<Vec<LogEvent>>, usize) {
    let before = events.len();
    events.retain(|e| e.message.len() + EVENT_OVERHEAD <= MAX_EVENT_BYTES);
    let too_large = before - events.len();
    events.sort_by_key(|e| e.timestamp);
    let mut out: Vec<Vec<LogEvent>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = event.message.len() + EVENT_OVERHEAD;
        let fits = out.last().is_some_and(|batch| {
            batch.len() < MAX_BATCH_EVENTS
                && bytes + size <= MAX_BATCH_BYTES
                && event.timestamp - batch[0].timestamp <= MAX_BATCH_SPAN_MS
        });
        match out.last_mut() {
            Some(batch) if fits => batch.push(event),
            _ => {
                bytes = 0;
                out.push(vec![event]);
            }
        }
        bytes += size;
    }
    (out, too_large)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(timestamp: i64, len: usize) -> LogEvent {
        LogEvent {
            timestamp,
            message: "x".repeat(len),
        }
    }

    #[test]
    fn a_batch_closes_at_each_limit() {
        // 10,001 small events: one full batch and one of a single event.
        let many: Vec<_> = (0..10_001).map(|i| event(i, 10)).collect();
        let (b, _) = batches(many);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [10_000, 1]);
        // Bytes: 4 events of 256 KB less the overhead fill 1 MB exactly;
        // the fifth opens a batch.
        let big = MAX_EVENT_BYTES - EVENT_OVERHEAD;
        let (b, _) = batches((0..5).map(|i| event(i, big)).collect());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [4, 1]);
        // Span: exactly 24 h fits, a millisecond more does not.
        let (b, _) = batches(vec![
            event(0, 1),
            event(MAX_BATCH_SPAN_MS, 1),
            event(MAX_BATCH_SPAN_MS + 1, 1),
        ]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        // Too large to send: left out and counted.
        let (b, too_large) = batches(vec![event(0, big + 1), event(1, 5)]);
        assert_eq!((b.len(), b[0].len(), too_large), (1, 1, 1));
        assert_eq!(batches(Vec::new()), (Vec::new(), 0));
    }

    proptest! {
        /// Every sendable event is sent once, in time order, and every
        /// batch keeps PutLogEvents' limits.
        #[test]
        fn batches_keep_every_limit(
            raw in prop::collection::vec((0i64..200_000_000, prop_oneof![0usize..2_000, 200_000usize..300_000]), 0..40)
        ) {
            let events: Vec<_> = raw.iter().map(|&(t, len)| event(t, len)).collect();
            let sendable = events
                .iter()
                .filter(|e| e.message.len() + EVENT_OVERHEAD <= MAX_EVENT_BYTES)
                .count();
            let (b, too_large) = batches(events);
            prop_assert_eq!(sendable + too_large, raw.len());
            let flat: Vec<&LogEvent> = b.iter().flatten().collect();
            prop_assert_eq!(flat.len(), sendable);
            prop_assert!(flat.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
            for batch in &b {
                prop_assert!(!batch.is_empty() && batch.len() <= MAX_BATCH_EVENTS);
                let bytes: usize = batch.iter().map(|e| e.message.len() + EVENT_OVERHEAD).sum();
                prop_assert!(bytes <= MAX_BATCH_BYTES);
                let span = batch[batch.len() - 1].timestamp - batch[0].timestamp;
                prop_assert!(span <= MAX_BATCH_SPAN_MS);
            }
        }
    }
}
