//! Configuration, read once at init from the variables template.yaml sets.

use trailkeep_shared::aws::kms::KeyMap;
pub use trailkeep_shared::config::ConfigError;
use trailkeep_shared::config::Env;
use trailkeep_shared::delivery::DEFAULT_GRACE_SECS;
use trailkeep_shared::digest::DigestSettings;

#[derive(Debug)]
pub struct Config {
    /// STATE_TABLE: trails, delivery cursors and manifests, chain heads.
    pub state_table: String,
    /// SIGNING_KEYS: `REGION=KEY,…`, `*=KEY` for every other region.
    pub keys: KeyMap,
    /// GRACE_SECONDS (deliver's, default 120), SETTLE_SECONDS (how long
    /// after a stop ingest may still stage: its trail cache lifetime plus
    /// its timeout; default 90), SERVED_REGIONS (the regions a multi-region
    /// trail logs; default AWS_REGION), HASH_CONCURRENCY (default 8),
    /// CHAIN_CONCURRENCY (default 16).
    pub digest: DigestSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(var);
        let keys =
            KeyMap::parse(&env.required("SIGNING_KEYS")?).map_err(|e| ConfigError::Invalid {
                name: "SIGNING_KEYS",
                reason: e.to_string(),
            })?;
        Ok(Self {
            state_table: env.required("STATE_TABLE")?,
            keys,
            digest: DigestSettings {
                grace_secs: env.number("GRACE_SECONDS", DEFAULT_GRACE_SECS, 60, 3600)?,
                settle_secs: env.number("SETTLE_SECONDS", 90, 0, 3600)?,
                regions: env.regions("SERVED_REGIONS")?,
                concurrency: env.number("HASH_CONCURRENCY", 8, 1, 64)? as usize,
                chains: env.number("CHAIN_CONCURRENCY", 16, 1, 64)? as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use trailkeep_shared::testkit::env as lookup;

    #[test]
    fn defaults_regions_and_bounds() {
        let base = [
            ("STATE_TABLE", "s"),
            ("SIGNING_KEYS", "alias/k"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let c = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(c.digest.grace_secs, 120);
        assert_eq!(c.digest.settle_secs, 90);
        assert_eq!((c.digest.concurrency, c.digest.chains), (8, 16));
        assert_eq!(c.digest.regions, ["eu-west-1"]);
        assert_eq!(c.keys.key("ap-south-1"), Some("alias/k"));
        let mut more = base.to_vec();
        more.push(("SERVED_REGIONS", "us-east-1, eu-west-1"));
        more.push(("HASH_CONCURRENCY", "0"));
        let err = Config::from_lookup(lookup(&more)).unwrap_err();
        assert!(err.to_string().contains("HASH_CONCURRENCY"), "{err}");
        more.pop();
        more.push(("CHAIN_CONCURRENCY", "65"));
        let err = Config::from_lookup(lookup(&more)).unwrap_err();
        assert!(err.to_string().contains("CHAIN_CONCURRENCY"), "{err}");
        more.pop();
        let c = Config::from_lookup(lookup(&more)).unwrap();
        assert_eq!(c.digest.regions, ["us-east-1", "eu-west-1"]);
        assert!(Config::from_lookup(lookup(&base[..1])).is_err());
        let bad = [("STATE_TABLE", "s"), ("SIGNING_KEYS", "eu-west-1=")];
        assert!(Config::from_lookup(lookup(&bad))
            .unwrap_err()
            .to_string()
            .contains("SIGNING_KEYS"));
    }
}
