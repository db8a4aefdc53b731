//! What every store adapter reports when the backend fails.

/// A trail's region whose run failed while the others went on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failed {
    pub trail: String,
    /// `*`: the trail's regions could not even be listed.
    pub region: String,
    pub error: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trail {} region {}: {}",
            self.trail, self.region, self.error
        )
    }
}

/// A run that went on past failed trails/regions, and the failures.
#[derive(Debug, thiserror::Error)]
#[error("{} trail/region(s) failed (the others went on; retried next run): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Incomplete(pub Vec<Failed>);

impl Incomplete {
    /// `Err` with the failures, if any.
    pub fn check(failed: &[Failed]) -> Result<(), Incomplete> {
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Incomplete(failed.to_vec()))
        }
    }
}

/// Logs a trail/region failure with an `alarm` field a log query can
/// match, and returns it for the run's report.
pub fn failed(alarm: &'static str, trail: &str, region: &str, error: &StoreError) -> Failed {
    tracing::error!(alarm, trail, region, error = %error, "failed; the other trails and regions went on, this one is retried next run");
    Failed {
        trail: trail.to_owned(),
        region: region.to_owned(),
        error: error.to_string(),
    }
}

/// An error from a store: worth a retry, unless [`StoreError::is_permanent`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{operation} on {resource} failed: {message}")]
    Backend {
        operation: &'static str,
        /// The table, bucket or object.
        resource: String,
        message: String,
    },
    #[error("DynamoDB left {items} items unprocessed after {attempts} attempts (throttled)")]
    Unprocessed { items: usize, attempts: u32 },
    /// The service refused the request itself (DynamoDB's
    /// ValidationException: a key too long, an item too large): retrying
    /// the same input can never succeed.
    #[error("{operation} on {resource} refused: {message}")]
    Refused {
        operation: &'static str,
        resource: String,
        message: String,
    },
    /// An item holds what trailkeep never writes (its stored record does
    /// not decode): altered outside trailkeep, or damaged.
    #[error("an item in the store is unreadable: {message}")]
    Corrupt { message: String },
}

impl StoreError {
    /// True if the same request can never succeed (a bad record, not a
    /// store that is down).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::Corrupt { .. })
    }
}
