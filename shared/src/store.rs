//! What every store adapter reports when the backend fails.

/// An error from a store; all of them are worth a retry.
#[derive(Debug, thiserror::Error)]
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
}
