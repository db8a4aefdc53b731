//! Resources from template.yaml, created on a local endpoint (moto).
//!
//! template.yaml is the one source of truth for table definitions: the local
//! run and the integration tests read the table's key schema, attribute
//! definitions and TTL from the template and create the same table under a
//! name of their choosing. A table the template changes is a table the tests
//! use.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_yaml_ng::Value;

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template has no resource {0}")]
    NoResource(String),
    #[error("resource {resource}: {reason}")]
    Invalid { resource: String, reason: String },
    #[error("creating {resource} failed: {message}")]
    Create { resource: String, message: String },
    #[error("stack outputs: {0}")]
    Outputs(String),
}

/// A parsed SAM/CloudFormation template.
pub struct Template {
    resources: serde_yaml_ng::Mapping,
    outputs: serde_yaml_ng::Mapping,
    parameters: serde_yaml_ng::Mapping,
    conditions: serde_yaml_ng::Mapping,
}

/// What the template says about one DynamoDB table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// (name, S|N|B)
    pub attributes: Vec<(String, String)>,
    /// (name, HASH|RANGE)
    pub key_schema: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub billing_mode: String,
}

impl Template {
    pub fn load(path: &str) -> Result<Self, ProvisionError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProvisionError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, ProvisionError> {
        let doc: Value = serde_yaml_ng::from_str(text)?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| ProvisionError::NoResource("Resources".into()))?;
        let outputs = doc
            .get("Outputs")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let parameters = doc
            .get("Parameters")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let conditions = doc
            .get("Conditions")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Self {
            resources,
            outputs,
            parameters,
            conditions,
        })
    }

    /// `value` as deployed with the default parameters: an
    /// `!If [Condition, then, else]` is resolved, for conditions of the form
    /// `!Equals [!Ref Parameter, literal]` (the only form a property the
    /// provisioner reads depends on).
    fn by_default<'a>(
        &self,
        resource: &str,
        value: &'a Value,
    ) -> Result<&'a Value, ProvisionError> {
        let Value::Tagged(tagged) = value else {
            return Ok(value);
        };
        let unsupported = |what: String| invalid(resource, format!("cannot resolve {what}"));
        let branches = tagged.value.as_sequence();
        let (Some([Value::String(condition), then, otherwise]), true) =
            (branches.map(Vec::as_slice), tagged.tag == "!If")
        else {
            return Err(unsupported(format!("{}", tagged.tag)));
        };
        let holds = match self.conditions.get(condition.as_str()) {
            Some(Value::Tagged(eq)) if eq.tag == "!Equals" => {
                match eq.value.as_sequence().map(Vec::as_slice) {
                    Some([Value::Tagged(r), Value::String(literal)]) if r.tag == "!Ref" => r
                        .value
                        .as_str()
                        .and_then(|p| self.parameter_default(p))
                        .is_some_and(|d| d == *literal),
                    _ => return Err(unsupported(format!("condition {condition}"))),
                }
            }
            _ => return Err(unsupported(format!("condition {condition}"))),
        };
        Ok(if holds { then } else { otherwise })
    }

    /// A parameter's default value, as text (numbers too).
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)?.get("Default")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The stack's outputs: (name, the condition it depends on, if any).
    pub fn outputs(&self) -> Vec<(String, Option<String>)> {
        self.outputs
            .iter()
            .filter_map(|(name, output)| {
                let condition = output
                    .get("Condition")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                name.as_str().map(|n| (n.to_owned(), condition))
            })
            .collect()
    }

    /// Every resource of type `resource_type`: (logical ID, definition).
    pub fn resources_of_type(&self, resource_type: &str) -> Vec<(String, &Value)> {
        self.resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(resource_type))
            .filter_map(|(id, r)| id.as_str().map(|id| (id.to_owned(), r)))
            .collect()
    }

    /// The properties of resource `logical_id`, checking its type.
    pub fn properties(
        &self,
        logical_id: &str,
        resource_type: &str,
    ) -> Result<&Value, ProvisionError> {
        let resource = self
            .resources
            .get(logical_id)
            .ok_or_else(|| ProvisionError::NoResource(logical_id.into()))?;
        let actual = resource
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if actual != resource_type {
            return Err(invalid(
                logical_id,
                format!("type is {actual:?}, expected {resource_type}"),
            ));
        }
        resource
            .get("Properties")
            .ok_or_else(|| invalid(logical_id, "has no Properties".into()))
    }

    /// The table definition of resource `logical_id` (an `AWS::DynamoDB::Table`).
    pub fn table(&self, logical_id: &str) -> Result<TableSpec, ProvisionError> {
        let props = self.properties(logical_id, "AWS::DynamoDB::Table")?;
        let pairs =
            |list: &str, a: &str, b: &str| -> Result<Vec<(String, String)>, ProvisionError> {
                props
                    .get(list)
                    .and_then(Value::as_sequence)
                    .ok_or_else(|| invalid(logical_id, format!("has no {list}")))?
                    .iter()
                    .map(|e| {
                        match (
                            e.get(a).and_then(Value::as_str),
                            e.get(b).and_then(Value::as_str),
                        ) {
                            (Some(x), Some(y)) => Ok((x.to_owned(), y.to_owned())),
                            _ => Err(invalid(
                                logical_id,
                                format!("{list} entries need {a} and {b}"),
                            )),
                        }
                    })
                    .collect()
            };
        let ttl = props.get("TimeToLiveSpecification");
        let ttl_enabled = ttl
            .and_then(|t| t.get("Enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(TableSpec {
            attributes: pairs("AttributeDefinitions", "AttributeName", "AttributeType")?,
            key_schema: pairs("KeySchema", "AttributeName", "KeyType")?,
            ttl_attribute: ttl
                .filter(|_| ttl_enabled)
                .and_then(|t| t.get("AttributeName"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            billing_mode: props
                .get("BillingMode")
                .map(|v| self.by_default(logical_id, v))
                .transpose()?
                .and_then(Value::as_str)
                .unwrap_or("PROVISIONED")
                .to_owned(),
        })
    }
}

/// What the template says about one S3 bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSpec {
    pub versioning: bool,
    /// Object Lock default retention (mode, days) as deployed with the
    /// template's default parameters, if any.
    pub object_lock: Option<(String, i32)>,
}

impl Template {
    /// The bucket definition of resource `logical_id` (an `AWS::S3::Bucket`).
    pub fn bucket(&self, logical_id: &str) -> Result<BucketSpec, ProvisionError> {
        let props = self.properties(logical_id, "AWS::S3::Bucket")?;
        let status = props
            .get("VersioningConfiguration")
            .and_then(|v| v.get("Status"))
            .and_then(Value::as_str);
        // `ObjectLockConfiguration: !If [UseObjectLock, {… Mode: !Ref
        // ObjectLockMode, Days: !Ref ObjectLockDays}, …]`, with the defaults.
        let object_lock = match (
            props.get("ObjectLockConfiguration"),
            self.parameter_default("ObjectLockMode"),
            self.parameter_default("ObjectLockDays"),
        ) {
            (Some(_), Some(mode), Some(days)) if mode != "NONE" => {
                let days = days
                    .parse()
                    .map_err(|_| invalid(logical_id, format!("ObjectLockDays {days:?}")))?;
                Some((mode, days))
            }
            _ => None,
        };
        Ok(BucketSpec {
            versioning: status == Some("Enabled"),
            object_lock,
        })
    }
}

/// Creates bucket `name` as `spec` describes.
pub async fn create_bucket(
    client: &aws_sdk_s3::Client,
    name: &str,
    spec: &BucketSpec,
) -> Result<(), ProvisionError> {
    let fail = |e: &dyn std::fmt::Display| ProvisionError::Create {
        resource: name.into(),
        message: e.to_string(),
    };
    client
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(spec.object_lock.is_some())
        .send()
        .await
        .map_err(|e| fail(&aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    if spec.versioning {
        let versioning = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
            .build();
        client
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(versioning)
            .send()
            .await
            .map_err(|e| fail(&aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    }
    if let Some((mode, days)) = &spec.object_lock {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
            ObjectLockRule,
        };
        let config = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(
                ObjectLockRule::builder()
                    .default_retention(
                        DefaultRetention::builder()
                            .mode(ObjectLockRetentionMode::from(mode.as_str()))
                            .days(*days)
                            .build(),
                    )
                    .build(),
            )
            .build();
        client
            .put_object_lock_configuration()
            .bucket(name)
            .object_lock_configuration(config)
            .send()
            .await
            .map_err(|e| fail(&aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// What the template says about a KMS key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub key_spec: String,
    pub key_usage: String,
}

impl Template {
    /// The key definition of resource `logical_id` (an `AWS::KMS::Key`).
    pub fn key(&self, logical_id: &str) -> Result<KeySpec, ProvisionError> {
        let props = self.properties(logical_id, "AWS::KMS::Key")?;
        let get = |name: &str| {
            props
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(logical_id, format!("no {name}")))
        };
        Ok(KeySpec {
            key_spec: get("KeySpec")?,
            key_usage: get("KeyUsage")?,
        })
    }
}

/// Creates a KMS key as `spec` describes; returns its ARN.
pub async fn create_key(
    client: &aws_sdk_kms::Client,
    spec: &KeySpec,
) -> Result<String, ProvisionError> {
    let fail = |message: String| ProvisionError::Create {
        resource: "KMS key".into(),
        message,
    };
    let out = client
        .create_key()
        .key_spec(spec.key_spec.as_str().into())
        .key_usage(spec.key_usage.as_str().into())
        .description("trailkeep local run - signs digest files")
        .send()
        .await
        .map_err(|e| fail(aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
    out.key_metadata
        .and_then(|m| m.arn)
        .ok_or_else(|| fail("no key ARN in the response".into()))
}

fn invalid(resource: &str, reason: String) -> ProvisionError {
    ProvisionError::Invalid {
        resource: resource.into(),
        reason,
    }
}

/// Creates table `name` as `spec` describes, with TTL, and waits until it is active.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    spec: &TableSpec,
) -> Result<(), ProvisionError> {
    let fail = |e: &dyn std::fmt::Display| ProvisionError::Create {
        resource: name.into(),
        message: e.to_string(),
    };
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(spec.billing_mode.as_str()));
    for (attr, kind) in &spec.attributes {
        let def = AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::from(kind.as_str()))
            .build()
            .map_err(|e| fail(&e))?;
        create = create.attribute_definitions(def);
    }
    for (attr, kind) in &spec.key_schema {
        let key = KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(KeyType::from(kind.as_str()))
            .build()
            .map_err(|e| fail(&e))?;
        create = create.key_schema(key);
    }
    create
        .send()
        .await
        .map_err(|e| fail(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    if let Some(attr) = &spec.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(true)
            .build()
            .map_err(|e| fail(&e))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| fail(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../template.yaml");

    #[test]
    fn the_history_table_in_the_template_has_the_keys_and_ttl_the_code_writes() {
        use trailkeep_shared::aws::history_table::attr;
        let spec = Template::parse(TEMPLATE)
            .unwrap()
            .table("HistoryTable")
            .unwrap();
        assert_eq!(
            spec.key_schema,
            [
                (attr::PK.to_owned(), "HASH".to_owned()),
                (attr::SK.to_owned(), "RANGE".to_owned())
            ]
        );
        assert_eq!(
            spec.attributes,
            [
                (attr::PK.to_owned(), "S".to_owned()),
                (attr::SK.to_owned(), "S".to_owned())
            ]
        );
        assert_eq!(spec.ttl_attribute.as_deref(), Some(attr::EXPIRES_AT));
        assert_eq!(spec.billing_mode, "PAY_PER_REQUEST");
        // The capacity mode parameter decides it.
        let provisioned = TEMPLATE.replacen(
            "Default: ON_DEMAND\n    AllowedValues: [ON_DEMAND, PROVISIONED]",
            "Default: PROVISIONED\n    AllowedValues: [ON_DEMAND, PROVISIONED]",
            1,
        );
        assert_ne!(provisioned, TEMPLATE);
        let spec = Template::parse(&provisioned)
            .unwrap()
            .table("HistoryTable")
            .unwrap();
        assert_eq!(spec.billing_mode, "PROVISIONED");
    }

    #[test]
    fn the_state_table_in_the_template_has_the_keys_the_adapters_use() {
        use trailkeep_shared::aws::history_table::attr;
        let spec = Template::parse(TEMPLATE)
            .unwrap()
            .table("StateTable")
            .unwrap();
        assert_eq!(
            spec.key_schema,
            [
                (attr::PK.to_owned(), "HASH".to_owned()),
                (attr::SK.to_owned(), "RANGE".to_owned())
            ]
        );
        assert_eq!(spec.ttl_attribute.as_deref(), Some(attr::EXPIRES_AT));
    }

    #[test]
    fn outputs_are_read_with_their_conditions() {
        let outputs = Template::parse(TEMPLATE).unwrap().outputs();
        assert!(outputs.contains(&("LogBucketName".into(), None)));
        assert!(outputs.contains(&("AthenaTableName".into(), Some("AthenaEnabled".into()))));
        let none = Template::parse("Resources: {}\n").unwrap().outputs();
        assert!(none.is_empty());
    }

    #[test]
    fn the_log_bucket_is_versioned_and_locked_by_default() {
        let spec = Template::parse(TEMPLATE)
            .unwrap()
            .bucket("LogBucket")
            .unwrap();
        assert!(spec.versioning);
        assert_eq!(spec.object_lock, Some(("GOVERNANCE".to_owned(), 400)));
    }

    #[test]
    fn the_signing_key_is_an_rsa_signing_key() {
        let spec = Template::parse(TEMPLATE)
            .unwrap()
            .key("SigningKey")
            .unwrap();
        assert_eq!(spec.key_spec, "RSA_2048");
        assert_eq!(spec.key_usage, "SIGN_VERIFY");
    }

    #[test]
    fn a_wrong_type_is_reported() {
        let t =
            Template::parse("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {}\n")
                .unwrap();
        let err = t.table("Q").unwrap_err().to_string();
        assert!(err.contains("AWS::DynamoDB::Table"), "{err}");
    }
}
