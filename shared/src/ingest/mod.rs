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

use crate::delivery::{self, Note, StagingStore};
use crate::history::{self, Entry, HistorySettings, HistoryStore, Recorded, StoreError};
use crate::trail::Trail;
use normalize::{Context, Ignored, Normalized, Rejected};

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
    /// Events of another account (an organization's member, by
    /// `recipientAccountId`), also counted above: staged for organization
    /// trails, and (management events) in that account's own history
    /// partitions (docs/organizations.md).
    #[serde(skip_serializing_if = "is_zero")]
    pub other_accounts: usize,
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

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    /// The stack serves an organization (`OrganizationId`): another
    /// account's events are taken, for organization trails. Else such an
    /// event is refused (it could only come through a bus policy made by
    /// hand; refused, it reaches the dead-letter queue and its alarm).
    pub organization: bool,
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
    let mut outcomes = ingest_many(targets, ctx, &[("", payload)], now).await;
    outcomes
        .pop()
        .unwrap_or_else(|| Ok(IngestReport::default()))
}

/// At most this many records of a batch are stored at once.
const RECORDS_AT_ONCE: usize = 32;

/// [`ingest`] of several payloads (an ingest batch's messages: each its
/// message ID and body) at once, each with its own outcome, in order, and
/// its log lines in a span naming its message: one failing payload never
/// fails the others. The index entries of all their events are written together,
/// so that events sharing an index value and ten minutes share an item (docs/event-history.md "Shared index items").
pub async fn ingest_many<H: HistoryStore, S: StagingStore>(
    targets: &Targets<'_, H, S>,
    ctx: &Context,
    payloads: &[(&str, &str)],
    now: &DateTime<Utc>,
) -> Vec<Result<IngestReport, IngestError>> {
    let spans: Vec<tracing::Span> = payloads
        .iter()
        .map(|(id, _)| tracing::info_span!("message", message_id = %id))
        .collect();
    let mut batches: Vec<normalize::Batch> = payloads
        .iter()
        .zip(&spans)
        .map(|((_, payload), span)| {
            let _in = span.enter();
            let mut batch = normalize::normalize(payload, ctx);
            // Times are checked here, against the ingest time and the retention.
            for n in std::mem::take(&mut batch.records) {
                let checked =
                    normalize::check_event_time(&n.record, now, targets.settings.retention_days)
                        .and_then(|()| admitted(&n.record, ctx, targets.organization));
                match checked {
                    Ok(()) => batch.records.push(n),
                    Err(error) => batch.rejected.push(Rejected {
                        index: n.index,
                        event_id: Some(normalize::quote_prefix(&n.record.event_id)),
                        error,
                    }),
                }
            }
            batch
        })
        .collect();
    let events: Vec<(&Normalized, &tracing::Span)> = batches
        .iter()
        .zip(&spans)
        .flat_map(|(b, span)| b.records.iter().map(move |r| (r, span)))
        .collect();
    let mut outcomes = store(targets, ctx, &events, now).await.into_iter();
    let mut reports = Vec::with_capacity(batches.len());
    for (batch, span) in batches.iter_mut().zip(&spans) {
        let outcomes: Vec<_> = outcomes.by_ref().take(batch.records.len()).collect();
        let _in = span.enter();
        reports.push(report(batch, ctx, outcomes));
    }
    reports
}

/// Records `events` in the history (the primary items, then the index
/// items of all of them together) and stages each one the history took
/// for the trails that log it (each in its message's span): per event,
/// what it did and its copies.
async fn store<H: HistoryStore, S: StagingStore>(
    targets: &Targets<'_, H, S>,
    ctx: &Context,
    events: &[(&Normalized, &tracing::Span)],
    now: &DateTime<Utc>,
) -> Vec<Result<(Recorded, usize), StoreError>> {
    use futures::StreamExt;
    use tracing::Instrument;
    let window = delivery::window_of(now);
    // A management event's first-staging note rides on its primary item;
    // the staging notes the others' (docs/delivery.md).
    let mut claims: Vec<Result<_, StoreError>> = futures::stream::iter(events)
        .map(|(event, span)| {
            async move {
                // Another account's event (admitted on an organization's
                // stack alone) goes in that account's own partitions.
                let account = other_account(&event.record, ctx)
                    .then_some(event.record.recipient_account_id.as_str());
                let (history, settings) = (targets.history, targets.settings);
                history::claim_noting_in(history, settings, event, Some(window), account).await
            }
            .instrument((*span).clone())
        })
        .buffered(RECORDS_AT_ONCE)
        .collect()
        .await;
    let entries: Vec<Entry> = claims
        .iter()
        .flatten()
        .flat_map(|(_, _, entries)| entries.iter().cloned())
        .collect();
    match history::write_index(targets.history, entries, targets.settings).await {
        Ok(()) => {}
        // The store failed (throttled past its retries, down): every event
        // with index entries fails, so its message is retried; writing
        // each one's alone would only add load.
        Err(e) if !e.is_permanent() => {
            for claim in &mut claims {
                if claim
                    .as_ref()
                    .is_ok_and(|(_, _, entries)| !entries.is_empty())
                {
                    *claim = Err(e.clone());
                }
            }
        }
        // The store refused the batch (say, a key over DynamoDB's limits):
        // each event's index on its own, so that the refusal is the
        // event's alone, and the others go on.
        Err(e) => {
            tracing::warn!(error = %e, "the batch's index was refused; writing each event's alone");
            let alone = futures::stream::iter(claims.iter_mut())
                .map(|claim| async move {
                    if let Ok((_, _, entries)) = claim {
                        let entries = std::mem::take(entries);
                        if let Err(e) =
                            history::write_index(targets.history, entries, targets.settings).await
                        {
                            *claim = Err(e);
                        }
                    }
                })
                .buffer_unordered(RECORDS_AT_ONCE);
            alone.collect::<Vec<()>>().await;
        }
    }
    // The history first: a record it refuses (rejected, dead-lettered) is
    // never staged for a trail either.
    let mut outcomes: Vec<Result<(Recorded, usize), StoreError>> =
        futures::stream::iter(events.iter().zip(&claims))
            .map(|((event, span), claim)| {
                async move {
                    let (recorded, note, _) = claim.as_ref().map_err(Clone::clone)?;
                    // Data events are staged below, together.
                    if *note == Note::Batch {
                        return Ok((*recorded, 0));
                    }
                    let copies = delivery::stage_noted(
                        targets.staging,
                        targets.trails,
                        &event.record,
                        &event.json,
                        now,
                        *note,
                    )
                    .await?;
                    Ok((*recorded, copies))
                }
                .instrument((*span).clone())
            })
            .buffered(RECORDS_AT_ONCE)
            .collect()
            .await;
    // The batch's data events, in batch items of their own (one per trail
    // chain: docs/delivery.md "Data events: batch copies"). If staging
    // them fails, they all fail: their messages are retried, and deliver
    // leaves out what is then staged twice.
    let data: Vec<usize> = claims
        .iter()
        .enumerate()
        .filter(|(_, claim)| matches!(claim, Ok((_, Note::Batch, _))))
        .map(|(i, _)| i)
        .collect();
    if !data.is_empty() {
        let records: Vec<(&crate::model::Record, &str)> = data
            .iter()
            .map(|&i| (&events[i].0.record, events[i].0.json.as_str()))
            .collect();
        match delivery::stage_batch(targets.staging, targets.trails, &records, now).await {
            Ok(copies) => {
                for (&i, n) in data.iter().zip(copies) {
                    if let Ok((_, staged)) = &mut outcomes[i] {
                        *staged = n;
                    }
                }
            }
            Err(e) => {
                for &i in &data {
                    outcomes[i] = Err(e.clone());
                }
            }
        }
    }
    outcomes
}

/// Another account's record is admitted only on a stack that serves an organization.
fn admitted(
    record: &crate::model::Record,
    ctx: &Context,
    organization: bool,
) -> Result<(), normalize::RecordError> {
    if organization || !other_account(record, ctx) {
        return Ok(());
    }
    Err(normalize::RecordError::Invalid {
        field: "recipientAccountId".into(),
        reason: format!(
            "account {} is not this stack's ({}), and the stack serves no organization (OrganizationId)",
            normalize::quote_prefix(&record.recipient_account_id),
            ctx.account_id
        ),
    })
}

/// Whether the record is another account's than the stack's (never when
/// the stack's account is unknown: a local emulator without ACCOUNT_ID).
fn other_account(record: &crate::model::Record, ctx: &Context) -> bool {
    !ctx.account_id.is_empty()
        && !record.recipient_account_id.is_empty()
        && record.recipient_account_id != ctx.account_id
}

/// The report (or error) of one payload from its events' outcomes.
fn report(
    batch: &mut normalize::Batch,
    ctx: &Context,
    outcomes: Vec<Result<(Recorded, usize), StoreError>>,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport {
        accepted: batch.records.len(),
        ..IngestReport::default()
    };
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    for (event, outcome) in batch.records.iter().zip(outcomes) {
        report.event_ids.push(event.record.event_id.clone());
        match outcome {
            Ok((recorded, copies)) => {
                report.staged += copies;
                report.other_accounts += usize::from(other_account(&event.record, ctx));
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
            rejected: std::mem::take(&mut batch.rejected),
            accepted: report.accepted,
            stored: report.stored,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
