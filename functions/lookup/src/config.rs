//! Configuration, read once at init from the variables template.yaml sets.

use trailkeep_shared::api::ApiSettings;
use trailkeep_shared::aws::kms::KeyMap;
pub use trailkeep_shared::config::ConfigError;
use trailkeep_shared::config::Env;
use trailkeep_shared::history::lookup::LookupSettings;
use trailkeep_shared::history::{HistorySettings, DEFAULT_RETENTION_DAYS, MAX_SHARDS};

/// The token key must be at least this long (HMAC-SHA256).
const MIN_TOKEN_KEY_BYTES: usize = 32;

#[derive(Debug)]
pub struct Config {
    /// HISTORY_TABLE: the event history table.
    pub history_table: String,
    /// STATE_TABLE: the trails, and the staged copies of the API's own
    /// records.
    pub state_table: String,
    /// TRAIL_ADMIN_ARNS, LOG_ENCRYPTION_KEYS, NOTIFICATION_TOPICS and
    /// LOG_GROUPS are in `api` (`trail_admins`, `log_encryption_keys`,
    /// `notification_topics`, `log_groups`), and so is ORGANIZATION_ID
    /// (optional: the organization organization trails log).
    /// ACCOUNT_ID (optional, local emulators only): the deployment's
    /// account when the function's ARN carries none. On AWS it does, and
    /// template.yaml does not set it.
    pub account_id: Option<String>,
    /// SIGNING_KEYS (optional): every key whose public half
    /// `ListPublicKeys` lists, comma-separated, each `REGION=KEY`, `*=KEY`
    /// or `KEY` (template.yaml: the stack's key, `SigningKeyArns` and
    /// `RetiredSigningKeyArns`). Unset: it lists none.
    pub signing_keys: Vec<String>,
    /// AWS_REGION (the default history region), SERVED_REGIONS (default
    /// AWS_REGION), RETENTION_DAYS (default 90), LOOKUP_TOKEN_KEY (≥ 32
    /// bytes; authenticates NextToken).
    pub api: ApiSettings,
}

/// A comma-separated list, entries trimmed, empty ones dropped; unset: empty.
fn list(value: Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(var);
        let token_key = env.required("LOOKUP_TOKEN_KEY")?.into_bytes();
        if token_key.len() < MIN_TOKEN_KEY_BYTES {
            return Err(ConfigError::Invalid {
                name: "LOOKUP_TOKEN_KEY",
                reason: format!("must be at least {MIN_TOKEN_KEY_BYTES} bytes long"),
            });
        }
        let served_regions = env.regions("SERVED_REGIONS")?;
        let retention_days =
            env.number("RETENTION_DAYS", i64::from(DEFAULT_RETENTION_DAYS), 1, 3650)? as u32;
        // The history's index shards: read by lookups, written by the API's
        // own records of trail changes, as ingest writes them.
        let shards = env.number("HISTORY_SHARDS", 1, 1, i64::from(MAX_SHARDS))? as u32;
        let organization_id = env.organization_id()?;
        Ok(Self {
            history_table: env.required("HISTORY_TABLE")?,
            state_table: env.required("STATE_TABLE")?,
            account_id: env.get("ACCOUNT_ID"),
            signing_keys: match env.get("SIGNING_KEYS") {
                None => Vec::new(),
                Some(text) => KeyMap::every_key(&text).map_err(|e| ConfigError::Invalid {
                    name: "SIGNING_KEYS",
                    reason: e.to_string(),
                })?,
            },
            api: ApiSettings {
                // Who may change trails (comma-separated ARN patterns, `*`
                // a wildcard); unset: nobody.
                trail_admins: list(env.get("TRAIL_ADMIN_ARNS")),
                lookup: LookupSettings {
                    // The API sets the account per invocation (the function's ARN).
                    account_id: String::new(),
                    organization: organization_id.is_some(),
                    home_region: env.required("AWS_REGION")?,
                    served_regions,
                    retention_days,
                    token_key,
                    shards,
                },
                history: HistorySettings {
                    retention_days,
                    shards,
                },
                // The stack's LogEncryptionKeyArns (comma-separated); unset
                // or empty: no trail may name a KmsKeyId.
                log_encryption_keys: list(env.get("LOG_ENCRYPTION_KEYS")),
                // The stack's NotificationTopicArns; unset or empty: no
                // trail may name an SnsTopicName.
                notification_topics: list(env.get("NOTIFICATION_TOPICS")),
                // The stack's LogGroupArns; unset or empty: no trail may
                // name a CloudWatch Logs group.
                log_groups: list(env.get("LOG_GROUPS")),
                organization_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use trailkeep_shared::testkit::env as lookup;

    #[test]
    fn the_token_key_is_required_and_long_enough() {
        let key = "k".repeat(32);
        let base = [
            ("HISTORY_TABLE", "h"),
            ("AWS_REGION", "eu-west-1"),
            ("LOOKUP_TOKEN_KEY", key.as_str()),
            ("STATE_TABLE", "s"),
        ];
        let c = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(c.api.lookup.served_regions, ["eu-west-1"]);
        assert_eq!(c.api.lookup.retention_days, 90);
        assert_eq!((c.api.lookup.shards, c.api.history.shards), (1, 1));
        let sharded = [base[0], base[1], base[2], base[3], ("HISTORY_SHARDS", "8")];
        let c8 = Config::from_lookup(lookup(&sharded)).unwrap();
        // Reads and the API's own records of trail changes: the same count.
        assert_eq!((c8.api.lookup.shards, c8.api.history.shards), (8, 8));
        let too_many = [base[0], base[1], base[2], base[3], ("HISTORY_SHARDS", "17")];
        let err = Config::from_lookup(lookup(&too_many)).unwrap_err();
        assert!(err.to_string().contains("HISTORY_SHARDS"), "{err}");
        assert!(
            c.api.trail_admins.is_empty(),
            "nobody changes trails unless named"
        );
        let admins = [
            base[0],
            base[1],
            base[2],
            base[3],
            (
                "TRAIL_ADMIN_ARNS",
                "arn:aws:iam::1:role/A, arn:aws:sts::1:assumed-role/A/*",
            ),
        ];
        let c = Config::from_lookup(lookup(&admins)).unwrap();
        assert_eq!(
            c.api.trail_admins,
            ["arn:aws:iam::1:role/A", "arn:aws:sts::1:assumed-role/A/*"]
        );
        // The template joins an empty list parameter into "": nothing listed.
        assert!(c.api.log_encryption_keys.is_empty() && c.api.notification_topics.is_empty());
        let lists = [
            base[0],
            base[1],
            base[2],
            base[3],
            (
                "LOG_ENCRYPTION_KEYS",
                "arn:aws:kms:eu-west-1:1:key/a,arn:aws:kms:eu-west-1:1:key/b",
            ),
            ("NOTIFICATION_TOPICS", ""),
            ("LOG_GROUPS", "arn:aws:logs:eu-west-1:1:log-group:trail:*"),
        ];
        let c = Config::from_lookup(lookup(&lists)).unwrap();
        assert_eq!(
            c.api.log_encryption_keys,
            [
                "arn:aws:kms:eu-west-1:1:key/a",
                "arn:aws:kms:eu-west-1:1:key/b"
            ]
        );
        assert!(c.api.notification_topics.is_empty());
        assert_eq!(
            c.api.log_groups,
            ["arn:aws:logs:eu-west-1:1:log-group:trail:*"]
        );
        assert!(
            Config::from_lookup(lookup(&base[..3])).is_err(),
            "STATE_TABLE"
        );
        let short = [base[0], base[1], ("LOOKUP_TOKEN_KEY", "short"), base[3]];
        let err = Config::from_lookup(lookup(&short)).unwrap_err();
        assert!(err.to_string().contains("LOOKUP_TOKEN_KEY"), "{err}");
        assert!(Config::from_lookup(lookup(&base[..2])).is_err());
        assert!(c.signing_keys.is_empty());
        let keys = [
            base[0],
            base[1],
            base[2],
            base[3],
            ("SIGNING_KEYS", "arn:aws:kms:eu-west-1:1:key/a"),
        ];
        let c = Config::from_lookup(lookup(&keys)).unwrap();
        assert_eq!(c.signing_keys, ["arn:aws:kms:eu-west-1:1:key/a"]);
        let rotated = [
            base[0],
            base[1],
            base[2],
            base[3],
            ("SIGNING_KEYS", "arn:k/stack,*=arn:k/new,,arn:k/old"),
        ];
        let c = Config::from_lookup(lookup(&rotated)).unwrap();
        assert_eq!(c.signing_keys, ["arn:k/stack", "arn:k/new", "arn:k/old"]);
        let bad = [
            base[0],
            base[1],
            base[2],
            base[3],
            ("SIGNING_KEYS", "eu-west-1="),
        ];
        let err = Config::from_lookup(lookup(&bad)).unwrap_err();
        assert!(err.to_string().contains("SIGNING_KEYS"), "{err}");
    }
}
