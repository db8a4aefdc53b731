//! Configuration, read once at init from the variables template.yaml sets.

use trailkeep_shared::delivery::{DeliverSettings, DEFAULT_GRACE_SECS};
use trailkeep_shared::logfile::{DEFAULT_MAX_FILE_BYTES, MIN_MAX_FILE_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug)]
pub struct Config {
    /// STATE_TABLE: trails, staging, manifests.
    pub state_table: String,
    /// GRACE_SECONDS (default 120; must exceed the ingest timeout) and
    /// MAX_FILE_BYTES (default 50 MB, uncompressed).
    pub deliver: DeliverSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let state_table = var("STATE_TABLE")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("STATE_TABLE"))?;
        let number =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match var(name).filter(|v| !v.is_empty()) {
                    None => Ok(default),
                    Some(v) => v
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| ConfigError::Invalid {
                            name,
                            reason: format!("{v:?} is not a number from {min} to {max}"),
                        }),
                }
            };
        let grace = number("GRACE_SECONDS", DEFAULT_GRACE_SECS as u64, 60, 3600)?;
        let max_file = number(
            "MAX_FILE_BYTES",
            DEFAULT_MAX_FILE_BYTES as u64,
            MIN_MAX_FILE_BYTES as u64,
            1 << 30,
        )?;
        Ok(Self {
            state_table,
            deliver: DeliverSettings {
                grace_secs: grace as i64,
                max_file_bytes: max_file as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let c = Config::from_lookup(lookup(&[("STATE_TABLE", "s")])).unwrap();
        assert_eq!(c.deliver.grace_secs, 120);
        assert_eq!(c.deliver.max_file_bytes, 50 * 1024 * 1024);
        let err = Config::from_lookup(lookup(&[("STATE_TABLE", "s"), ("GRACE_SECONDS", "10")]))
            .unwrap_err();
        assert!(err.to_string().contains("GRACE_SECONDS"), "{err}");
        assert!(Config::from_lookup(lookup(&[])).is_err());
    }
}
