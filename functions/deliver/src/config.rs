//! Configuration, read once at init from the variables template.yaml sets.

pub use trailkeep_shared::config::ConfigError;
use trailkeep_shared::config::Env;
use trailkeep_shared::delivery::logfile::{DEFAULT_MAX_FILE_BYTES, MIN_MAX_FILE_BYTES};
use trailkeep_shared::delivery::{DeliverSettings, DEFAULT_GRACE_SECS};

#[derive(Debug)]
pub struct Config {
    /// STATE_TABLE: trails, staging, manifests.
    pub state_table: String,
    /// GRACE_SECONDS (default 120; must exceed the ingest timeout) and
    /// MAX_FILE_BYTES (default 50 MB, uncompressed).
    pub deliver: DeliverSettings,
    /// STOP_BEFORE_DEADLINE_SECONDS: a run stops starting work this long
    /// before the invocation's deadline (docs/delivery.md "A window longer
    /// than a run"). Unset: it does not watch the clock — a local runtime
    /// (cargo-lambda) counts the function's build into the deadline.
    pub stop_before: Option<std::time::Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(var);
        Ok(Self {
            state_table: env.required("STATE_TABLE")?,
            deliver: DeliverSettings {
                grace_secs: env.number("GRACE_SECONDS", DEFAULT_GRACE_SECS, 60, 3600)?,
                max_file_bytes: env.number(
                    "MAX_FILE_BYTES",
                    DEFAULT_MAX_FILE_BYTES as i64,
                    MIN_MAX_FILE_BYTES as i64,
                    1 << 30,
                )? as usize,
            },
            stop_before: match env.get("STOP_BEFORE_DEADLINE_SECONDS") {
                None => None,
                Some(_) => Some(std::time::Duration::from_secs(env.number(
                    "STOP_BEFORE_DEADLINE_SECONDS",
                    30,
                    1,
                    600,
                )? as u64)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use trailkeep_shared::testkit::env as lookup;

    #[test]
    fn defaults_and_bounds() {
        let c = Config::from_lookup(lookup(&[("STATE_TABLE", "s")])).unwrap();
        assert_eq!(c.deliver.grace_secs, 120);
        assert_eq!(c.deliver.max_file_bytes, 50 * 1024 * 1024);
        assert_eq!(c.stop_before, None);
        let stop = [("STATE_TABLE", "s"), ("STOP_BEFORE_DEADLINE_SECONDS", "30")];
        let c = Config::from_lookup(lookup(&stop)).unwrap();
        assert_eq!(c.stop_before, Some(std::time::Duration::from_secs(30)));
        let zero = [("STATE_TABLE", "s"), ("STOP_BEFORE_DEADLINE_SECONDS", "0")];
        assert!(Config::from_lookup(lookup(&zero)).is_err());
        let err = Config::from_lookup(lookup(&[("STATE_TABLE", "s"), ("GRACE_SECONDS", "10")]))
            .unwrap_err();
        assert!(err.to_string().contains("GRACE_SECONDS"), "{err}");
        assert!(Config::from_lookup(lookup(&[])).is_err());
    }
}
