//! Configuration, read once at init from the variables template.yaml sets.

use trailkeep_shared::history::{HistorySettings, DEFAULT_RETENTION_DAYS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug)]
pub struct Config {
    /// HISTORY_TABLE: the event history table.
    pub history_table: String,
    /// STATE_TABLE: trails and delivery staging.
    pub state_table: String,
    /// TRAIL_CACHE_SECONDS (default 60): how often the trails are reloaded.
    pub trail_cache: std::time::Duration,
    /// RETENTION_DAYS (default 90) and SERVED_REGIONS (default AWS_REGION).
    pub history: HistorySettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let history_table = var("HISTORY_TABLE")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("HISTORY_TABLE"))?;
        let state_table = var("STATE_TABLE")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("STATE_TABLE"))?;
        let trail_cache_secs = match var("TRAIL_CACHE_SECONDS").filter(|v| !v.is_empty()) {
            None => 60,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "TRAIL_CACHE_SECONDS",
                    reason: format!("{v:?} is not a number of seconds from 0 to 3600"),
                })?,
        };
        let retention_days = match var("RETENTION_DAYS").filter(|v| !v.is_empty()) {
            None => DEFAULT_RETENTION_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "RETENTION_DAYS",
                    reason: format!("{v:?} is not a number of days from 1 to 3650"),
                })?,
        };
        let mut served_regions: Vec<String> = var("SERVED_REGIONS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if served_regions.is_empty() {
            served_regions.push(var("AWS_REGION").ok_or(ConfigError::Missing("AWS_REGION"))?);
        }
        Ok(Self {
            history_table,
            state_table,
            trail_cache: std::time::Duration::from_secs(trail_cache_secs),
            history: HistorySettings {
                retention_days,
                served_regions,
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
    fn defaults_are_90_days_and_the_own_region() {
        let c = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(c.history.retention_days, 90);
        assert_eq!(c.history.served_regions, ["eu-west-1"]);
    }

    #[test]
    fn served_regions_are_a_comma_list() {
        let c = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            ("SERVED_REGIONS", "eu-west-1, us-east-1,"),
            ("RETENTION_DAYS", "30"),
        ]))
        .unwrap();
        assert_eq!(c.history.served_regions, ["eu-west-1", "us-east-1"]);
        assert_eq!(c.history.retention_days, 30);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(lookup(&[
            ("HISTORY_TABLE", "t"),
            ("STATE_TABLE", "s"),
            ("RETENTION_DAYS", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("RETENTION_DAYS"), "{err}");
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().contains("HISTORY_TABLE"), "{err}");
    }
}
