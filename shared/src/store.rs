//! What every store adapter reports when the backend fails.

/// An error from a store; all of them are worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} on table {table} failed: {message}")]
    Backend {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("DynamoDB left {items} items unprocessed after {attempts} attempts (throttled)")]
    Unprocessed { items: usize, attempts: u32 },
}
