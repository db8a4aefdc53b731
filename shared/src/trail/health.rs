//! What the last deliver and digest runs did for a trail, as
//! `GetTrailStatus` reports it (docs/api.md): deliver and digest each note
//! their outcome per trail after every run, the API reads both.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::store::StoreError;

/// A trail's delivery health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailHealth {
    /// The last deliver run that handled the trail, and whether every one
    /// of its regions was delivered.
    pub delivery_attempt: Option<DateTime<Utc>>,
    pub delivery_succeeded: Option<bool>,
    /// The last deliver run that delivered every region of the trail.
    pub delivery_ok: Option<DateTime<Utc>>,
    /// The last run that wrote a log file.
    pub delivered: Option<DateTime<Utc>>,
    /// The last failed run's error (gone once a run succeeds).
    pub delivery_error: Option<String>,
    /// The last run that wrote a digest.
    pub digest_delivered: Option<DateTime<Utc>>,
    /// The last failed digest run's error (gone once a run succeeds).
    pub digest_error: Option<String>,
    /// The last run that published an SNS notification for the trail
    /// (`LatestNotificationTime`).
    pub notified: Option<DateTime<Utc>>,
    /// The last refused notification's error (`LatestNotificationError`;
    /// gone once a run publishes without one).
    pub notify_error: Option<String>,
    /// The last run that sent events to the trail's CloudWatch Logs group
    /// (`LatestCloudWatchLogsDeliveryTime`).
    pub cwl_delivered: Option<DateTime<Utc>>,
    /// The last refused send's error (`LatestCloudWatchLogsDeliveryError`;
    /// gone once a run sends without one).
    pub cwl_error: Option<String>,
}

/// One run's outcome for one trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// The run's time (the schedule's).
    pub at: DateTime<Utc>,
    /// Whether the run got through the trail (deliver: a run out of time
    /// leaves regions for the next): a run that did not, and failed
    /// nowhere, notes its attempt only — neither a success nor the end of
    /// an earlier error.
    pub complete: bool,
    /// Whether the run wrote a file (log file or digest) for the trail.
    pub wrote: bool,
    /// The first failure, if a region of the trail failed.
    pub error: Option<String>,
    /// Deliver only: whether the run published a notification, and the
    /// last publish it was refused, if any.
    pub notified: bool,
    pub notify_error: Option<String>,
    /// Deliver only: whether the run sent events to CloudWatch Logs, and
    /// the last send it was refused, if any.
    pub cwl_sent: bool,
    pub cwl_error: Option<String>,
}

/// Where runs note their outcome (the state table in production).
pub trait HealthStore: Send + Sync {
    fn note_delivery(
        &self,
        trail: &str,
        outcome: &RunOutcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn note_digest(
        &self,
        trail: &str,
        outcome: &RunOutcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn health(&self, trail: &str) -> impl Future<Output = Result<TrailHealth, StoreError>> + Send;
}

/// Notes a run's outcome; a failure to note is logged, never fails the run
/// (the files are what matter; the status is a report on them).
pub async fn note<F: Future<Output = Result<(), StoreError>>>(trail: &str, noted: F) {
    if let Err(e) = noted.await {
        tracing::warn!(trail, error = %e, "could not note the run's outcome for GetTrailStatus");
    }
}
