//! The ingest use case: one payload (a message of the ingest queue) →
//! normalized records → history and trail staging.
//!
//! What is retried and what is not (docs/ingest.md):
//! - a store failure (throttling, 5xx, network) is transient: the payload
//!   fails as a whole, so its message goes back to the queue and is
//!   retried; every write is idempotent, so the records already stored are
//!   not stored twice;
//! - a bad record (including an `eventTime` outside the retention window or
//!   in the future) is permanent: the good records beside it are stored, the
//!   bad one is reported with its field and reason, and the payload is then
//!   failed too, so that after the queue's retries it lands in the
//!   dead-letter queue where the operator finds it.
//!
//! [`queue`] confirms each message with the queue before this runs.

pub mod classify;
pub mod normalize;
pub mod queue;

use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::delivery::{self, StagingStore};
use crate::history::{self, HistorySettings, HistoryStore, Recorded, StoreError};
use crate::trail::Trail;
use normalize::{Context, Ignored, Rejected};

/// What one payload did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Records normalized from the payload.
    pub accepted: usize,
    /// Records newly stored in at least one region's history.
    pub stored: usize,
    /// Records every target history already had (re-deliveries).
    pub duplicates: usize,
    /// Data events: accepted, not part of the history.
    pub data_events: usize,
    /// Copies staged for trails' log files (one per trail that logs an event).
    pub staged: usize,
    /// The eventIDs accepted, in payload order.
    pub event_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
}

/// Why a payload failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Transient: retry the payload.
    #[error(
        "storing {failed} of {accepted} records failed (the payload will be retried): {first}"
    )]
    Store {
        failed: usize,
        accepted: usize,
        first: StoreError,
    },
    /// Permanent: some records are bad. The others were stored.
    #[error("{} of {} records rejected ({stored} stored): {}", rejected.len(), rejected.len() + accepted, join(rejected))]
    Rejected {
        rejected: Vec<Rejected>,
        accepted: usize,
        stored: usize,
    },
}

fn join(rejected: &[Rejected]) -> String {
    rejected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where accepted events go: the event history, and the staging of every
/// trail that logs them.
pub struct Targets<'a, H, S> {
    pub history: &'a H,
    pub settings: &'a HistorySettings,
    pub staging: &'a S,
    /// The trails as the function last loaded them.
    pub trails: &'a [Trail],
}

/// Normalizes `payload`, records each record in the history and stages it
/// for the trails that log it. `now` is the ingest time (it picks the
/// delivery window).
pub async fn ingest<H: HistoryStore, S: StagingStore>(
    targets: &Targets<'_, H, S>,
    ctx: &Context,
    payload: &str,
    now: &DateTime<Utc>,
) -> Result<IngestReport, IngestError> {
    let mut batch = normalize::normalize(payload, ctx);
    // Times are checked here, against the ingest time and the retention.
    for n in std::mem::take(&mut batch.records) {
        match normalize::check_event_time(&n.record, now, targets.settings.retention_days) {
            Ok(()) => batch.records.push(n),
            Err(error) => batch.rejected.push(Rejected {
                index: n.index,
                event_id: Some(normalize::quote_prefix(&n.record.event_id)),
                error,
            }),
        }
    }
    let mut report = IngestReport {
        accepted: batch.records.len(),
        ..IngestReport::default()
    };
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    for event in &batch.records {
        report.event_ids.push(event.record.event_id.clone());
        // The history first: a record it refuses (rejected, dead-lettered)
        // is never staged for a trail either.
        let outcome = async {
            // A management event's first-staging note rides on its primary
            // item; the staging notes the others' (docs/delivery.md).
            let (recorded, note) = history::record_noting(
                targets.history,
                targets.settings,
                event,
                Some(delivery::window_of(now)),
            )
            .await?;
            let copies = delivery::stage_noted(
                targets.staging,
                targets.trails,
                &event.record,
                &event.json,
                now,
                note,
            )
            .await?;
            Ok::<_, StoreError>((recorded, copies))
        }
        .await;
        match outcome {
            Ok((recorded, copies)) => {
                report.staged += copies;
                match recorded {
                    Recorded::Stored => report.stored += 1,
                    Recorded::Duplicate => report.duplicates += 1,
                    Recorded::NotInHistory => report.data_events += 1,
                }
            }
            // The store refused this record itself (a key over its limits):
            // permanent, so the record is rejected, not the payload retried.
            Err(e) if e.is_permanent() => refused.push(Rejected {
                index: event.index,
                event_id: Some(event.record.event_id.clone()),
                error: normalize::RecordError::Invalid {
                    field: "record".into(),
                    reason: e.to_string(),
                },
            }),
            Err(e) => {
                tracing::error!(event_id = %event.record.event_id, error = %e, "storing event failed");
                failures.push(e);
            }
        }
    }
    for Ignored { index, reason } in &batch.ignored {
        tracing::info!(index, reason = %reason, "record ignored");
        report.ignored.push(format!("record {index}: {reason}"));
    }
    // A record the store refused was counted as accepted: it is rejected.
    report.accepted -= refused.len();
    batch.rejected.extend(refused);
    for r in &batch.rejected {
        tracing::error!(index = r.index, event_id = ?r.event_id, error = %r.error, "record rejected");
        report.rejected.push(r.to_string());
    }
    let failed = failures.len();
    if let Some(first) = failures.into_iter().next() {
        return Err(IngestError::Store {
            failed,
            accepted: report.accepted,
            first,
        });
    }
    if !batch.rejected.is_empty() {
        return Err(IngestError::Rejected {
            rejected: batch.rejected,
            accepted: report.accepted,
            stored: report.stored,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
