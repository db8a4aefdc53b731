//! Reading the functions' configuration from environment variables (once,
//! at init), with clear errors naming the variable.

/// A variable missing or unreadable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Variables from a lookup function (the process environment, or a test's).
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number from `min` to `max`; `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?} is not a number from {min} to {max}"),
                }),
        }
    }

    /// A comma-separated list of regions; `AWS_REGION` when unset.
    pub fn regions(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let mut regions: Vec<String> = self
            .get(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if regions.is_empty() {
            regions.push(self.required("AWS_REGION")?);
        }
        Ok(regions)
    }

    /// ORGANIZATION_ID: the organization the stack serves (the stack's
    /// `OrganizationId`); unset or blank, none.
    pub fn organization_id(&self) -> Result<Option<String>, ConfigError> {
        const NAME: &str = "ORGANIZATION_ID";
        match self.get(NAME).map(|v| v.trim().to_owned()) {
            Some(id) if !crate::trail::is_organization_id(&id) => Err(ConfigError::Invalid {
                name: NAME,
                reason: format!(
                    "\"{}\" is not an organization ID (o- and 10 to 32 lowercase letters or digits)",
                    crate::ingest::normalize::quote_prefix(&id)
                ),
            }),
            id => Ok(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_regions_and_errors_name_the_variable() {
        let env = Env(|name: &str| match name {
            "N" => Some("42".to_owned()),
            "BAD" => Some("x".to_owned()),
            "BLANK" => Some("  ".to_owned()),
            "R" => Some("eu-west-1, us-east-1,".to_owned()),
            "AWS_REGION" => Some("ap-south-1".to_owned()),
            _ => None,
        });
        assert_eq!(env.number("N", 1, 0, 100), Ok(42));
        let org = |v: &'static str| Env(move |_: &str| Some(v.to_owned())).organization_id();
        assert_eq!(org(" o-a1b2c3d4e5 "), Ok(Some("o-a1b2c3d4e5".into())));
        assert_eq!(org(""), Ok(None));
        for bad in ["o-short", "O-A1B2C3D4E5", "r-a1b2c3d4e5", "o-a1b2c3d4e5/x"] {
            let err = org(bad).unwrap_err().to_string();
            assert!(err.contains("ORGANIZATION_ID"), "{bad}: {err}");
        }
        assert_eq!(env.number("UNSET", 7, 0, 100), Ok(7));
        assert_eq!(env.number("BLANK", 7, 0, 100), Ok(7));
        let err = env.number("N", 1, 0, 10).unwrap_err();
        assert!(err.to_string().contains("N is invalid"), "{err}");
        assert!(env.number("BAD", 1, 0, 10).is_err());
        assert_eq!(env.regions("R").unwrap(), ["eu-west-1", "us-east-1"]);
        assert_eq!(env.regions("UNSET").unwrap(), ["ap-south-1"]);
        assert_eq!(env.required("BLANK"), Err(ConfigError::Missing("BLANK")));
    }
}
