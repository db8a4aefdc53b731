//! Configuration, read once at init from the variables template.yaml sets.

pub use trailkeep_shared::config::ConfigError;
use trailkeep_shared::config::Env;
use trailkeep_shared::history::{HistorySettings, DEFAULT_RETENTION_DAYS, MAX_SHARDS};

#[derive(Debug)]
pub struct Config {
    /// HISTORY_TABLE: the event history table.
    pub history_table: String,
    /// STATE_TABLE: trails and delivery staging.
    pub state_table: String,
    /// INGEST_QUEUE_URL: the queue every event arrives through.
    pub queue_url: String,
    /// INGEST_QUEUE_VISIBILITY_SECONDS (default 300): the queue's visibility
    /// timeout, which confirming a receipt handle sets again.
    pub queue_visibility_seconds: i32,
    /// TRAIL_CACHE_SECONDS (default 60): how often the trails are reloaded.
    pub trail_cache: std::time::Duration,
    /// RETENTION_DAYS (default 90) and HISTORY_SHARDS (default 1, at most 16).
    pub history: HistorySettings,
    /// ORGANIZATION_ID (optional): the stack serves this organization, so
    /// its accounts' events are taken (for organization trails).
    pub organization_id: Option<String>,
    /// ACCOUNT_ID (optional, local emulators only): the stack's account
    /// when the function's ARN carries none. On AWS it does, and
    /// template.yaml does not set it.
    pub account_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(var);
        Ok(Self {
            history_table: env.required("HISTORY_TABLE")?,
            state_table: env.required("STATE_TABLE")?,
            queue_url: env.required("INGEST_QUEUE_URL")?,
            queue_visibility_seconds: env.number(
                "INGEST_QUEUE_VISIBILITY_SECONDS",
                300,
                1,
                43_200,
            )? as i32,
            trail_cache: std::time::Duration::from_secs(env.number(
                "TRAIL_CACHE_SECONDS",
                60,
                0,
                3600,
            )? as u64),
            history: HistorySettings {
                retention_days: env.number(
                    "RETENTION_DAYS",
                    i64::from(DEFAULT_RETENTION_DAYS),
                    1,
                    3650,
                )? as u32,
                shards: env.number("HISTORY_SHARDS", 1, 1, i64::from(MAX_SHARDS))? as u32,
            },
            organization_id: env.organization_id()?,
            account_id: env.get("ACCOUNT_ID"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use trailkeep_shared::testkit::env as lookup;

    #[test]
    fn retention_defaults_to_90_days() {
        let c = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            (
                "INGEST_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
            ),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(c.history.retention_days, 90);
        assert_eq!(c.history.shards, 1);
        let c = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            (
                "INGEST_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
            ),
            ("RETENTION_DAYS", "30"),
            ("HISTORY_SHARDS", "8"),
        ]))
        .unwrap();
        assert_eq!(c.history.retention_days, 30);
        assert_eq!(c.history.shards, 8);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            (
                "INGEST_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
            ),
            ("RETENTION_DAYS", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("RETENTION_DAYS"), "{err}");
        let err = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            (
                "INGEST_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
            ),
            ("HISTORY_SHARDS", "17"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("HISTORY_SHARDS"), "{err}");
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().contains("HISTORY_TABLE"), "{err}");
    }
}
