//! Trails: which events a trail logs, and into which region's log files.
//!
//! The rules (docs/trails.md "Which events a trail logs"): a trail with no event selectors logs all
//! management events and no data events; a selector picks management events
//! by ReadWriteType and data events by resource ARN prefix (S3 objects) or
//! exact ARN (Lambda functions); a multi-region trail logs every region's
//! events into that region's files; a single-region trail only its home
//! region's. Global-service events go to us-east-1's files of a multi-region
//! trail and to the home region's files of a single-region trail, if the
//! trail includes global service events. A stopped trail logs nothing.

use serde::{Deserialize, Serialize};

use crate::ingest::classify::{is_global, partition, GLOBAL_REGION};
use crate::model::{EventCategory, Record};

pub use super::advanced::{validate_advanced, AdvancedEventSelector, FieldSelector};

/// At most this many trails per region.
pub const MAX_TRAILS_PER_REGION: usize = 5;
/// At most this many event selectors per trail (CloudTrail's limit).
pub const MAX_EVENT_SELECTORS: usize = 5;
/// At most this many data resource values per trail (CloudTrail's limit).
pub const MAX_DATA_RESOURCE_VALUES: usize = 250;

pub const S3_OBJECT: &str = "AWS::S3::Object";
pub const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";

/// `ReadWriteType` of an event selector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadWriteType {
    ReadOnly,
    WriteOnly,
    #[default]
    All,
}

/// One event selector, in CloudTrail's `PutEventSelectors` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSelector {
    #[serde(default)]
    pub read_write_type: ReadWriteType,
    #[serde(default = "yes")]
    pub include_management_events: bool,
    #[serde(default)]
    pub data_resources: Vec<DataResource>,
    /// Management events of these sources are not selected (CloudTrail's
    /// `ExcludeManagementEventSources`, e.g. `kms.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_management_event_sources: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `DataResources[]`: a resource type and the ARN (prefixes) it selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataResource {
    #[serde(rename = "Type")]
    pub resource_type: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A trail's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub account_id: String,
    pub s3_bucket_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
    /// The KMS key log and digest files are encrypted with (SSE-KMS), as
    /// given: a key ID, key ARN, alias name or alias ARN. `None`: no
    /// encryption header is sent and the bucket's default encryption applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The SNS topic notified of each delivered log file, by name (in the
    /// trail's home region and account) or ARN, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_name: Option<String>,
    /// The CloudWatch Logs group that receives every event the trail
    /// delivers (`CloudWatchLogsLogGroupArn` and `CloudWatchLogsRoleArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logs: Option<CloudWatchLogs>,
    pub is_multi_region_trail: bool,
    /// An organization trail's organization (`o-…`, the stack's
    /// `OrganizationId`): it logs every account's events that reach the
    /// stack, under `AWSLogs/{org}/{account}/` (docs/organizations.md);
    /// `None`, the stack's own account only (`IsOrganizationTrail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    pub include_global_service_events: bool,
    pub log_file_validation_enabled: bool,
    pub is_logging: bool,
    /// When logging last started / stopped (`GetTrailStatus`'s
    /// `StartLoggingTime` / `StopLoggingTime`); the digest function starts a
    /// chain at the first and ends it after the second (docs/digests.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_logging_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_logging_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Empty (and no advanced selectors): all management events, no data
    /// events.
    #[serde(default)]
    pub event_selectors: Vec<EventSelector>,
    /// When not empty, these select the events and `event_selectors` is
    /// empty: a trail has one kind or the other, as in CloudTrail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advanced_event_selectors: Vec<AdvancedEventSelector>,
    /// The trail's tags (`AddTags`, `ListTags`), keys unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A trail's CloudWatch Logs delivery, as given. CloudTrail takes the two
/// together; trailkeep's deliver function writes with its own role, limited
/// to the stack's `LogGroupArns`, so the role is checked and kept (tools
/// that set it see it again) but not assumed (docs/trails.md "Events in
/// CloudWatch Logs").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchLogs {
    pub log_group_arn: String,
    pub role_arn: String,
}

/// The management event sources a selector may exclude (CloudTrail's
/// `ExcludeManagementEventSources`, and an advanced selector's
/// `eventSource` `NotEquals`): high-volume sources, nothing else.
pub const EXCLUDABLE_SOURCES: [&str; 2] = ["kms.amazonaws.com", "rdsdata.amazonaws.com"];

/// A trail's configuration, serialized, is at most this many bytes: all
/// five trails share one DynamoDB item (400 KB), so no trail's selectors
/// can crowd out the others'. CloudTrail's own limits (500 values of up to
/// 2048 characters) would allow more; trailkeep refuses that.
pub const MAX_TRAIL_BYTES: usize = 64 * 1024;

/// At most this many tags per trail (CloudTrail's limit).
pub const MAX_TAGS: usize = 50;

/// One tag, in CloudTrail's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Checks tags: at most [`MAX_TAGS`], keys of 1–128 characters, unique,
/// not starting with `aws:` (reserved), values of at most 256.
pub fn validate_tags(tags: &[Tag]) -> Result<(), TrailError> {
    if tags.len() > MAX_TAGS {
        return Err(TrailError::TagsLimitExceeded(format!(
            "{} tags; at most {MAX_TAGS} per trail",
            tags.len()
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        let bad = |why: &str| {
            Err(TrailError::InvalidTagParameter(format!(
                "tag key {}: {why}",
                crate::ingest::normalize::quote_prefix(&tag.key)
            )))
        };
        if !(1..=128).contains(&tag.key.chars().count()) {
            return bad("keys are 1 to 128 characters");
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return bad("the prefix aws: is reserved");
        }
        if tag.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return bad("values are at most 256 characters");
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return bad("appears twice");
        }
    }
    Ok(())
}

/// Why a trail configuration is refused, with CloudTrail's error names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrailError {
    #[error("InvalidTrailNameException: {0}")]
    InvalidTrailName(String),
    #[error("InvalidEventSelectorsException: {0}")]
    InvalidEventSelectors(String),
    #[error("InvalidS3PrefixException: {0}")]
    InvalidS3Prefix(String),
    #[error("InvalidS3BucketNameException: {0}")]
    InvalidS3BucketName(String),
    #[error("InvalidTagParameterException: {0}")]
    InvalidTagParameter(String),
    #[error("TagsLimitExceededException: {0}")]
    TagsLimitExceeded(String),
    #[error("InvalidKmsKeyIdException: {0}")]
    InvalidKmsKeyId(String),
    #[error("InvalidSnsTopicNameException: {0}")]
    InvalidSnsTopicName(String),
    #[error("InvalidCloudWatchLogsLogGroupArnException: {0}")]
    InvalidCloudWatchLogsLogGroupArn(String),
    #[error("InvalidCloudWatchLogsRoleArnException: {0}")]
    InvalidCloudWatchLogsRoleArn(String),
}

/// A log group named by ARN, as CloudTrail takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogGroup<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// Reads a `CloudWatchLogsLogGroupArn`:
/// `arn:PARTITION:logs:REGION:ACCOUNT:log-group:NAME:*` (CloudTrail's form;
/// the `:*` may be left out), the name 1–512 of `[A-Za-z0-9._/#-]`.
pub fn parse_log_group_arn(given: &str) -> Result<LogGroup<'_>, TrailError> {
    let bad = || {
        TrailError::InvalidCloudWatchLogsLogGroupArn(format!(
            "CloudWatchLogsLogGroupArn \"{}\" is not a log group ARN \
             (arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*)",
            crate::ingest::normalize::quote_prefix(given)
        ))
    };
    let (region, account, resource) = regional_arn(given, "logs").ok_or_else(bad)?;
    let name = resource.strip_prefix("log-group:").ok_or_else(bad)?;
    let name = name.strip_suffix(":*").unwrap_or(name);
    let name_ok = (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/#-".contains(&b));
    if !name_ok {
        return Err(bad());
    }
    Ok(LogGroup {
        region,
        account,
        name,
    })
}

/// Checks a `CloudWatchLogsRoleArn`: an IAM role's ARN as IAM writes
/// them, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`: a path of
/// printable ASCII (at most 512), a name of 1–64 of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_role_arn(given: &str) -> Result<(), TrailError> {
    let role = arn_rest(given, "iam")
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split_once(':'))
        .filter(|(account, _)| account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(_, resource)| resource.strip_prefix("role/"));
    let valid = role.is_some_and(|role| {
        let (path, name) = role.rsplit_once('/').unwrap_or(("", role));
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            && path.len() <= 512
            && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err(TrailError::InvalidCloudWatchLogsRoleArn(format!(
            "CloudWatchLogsRoleArn \"{}\" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            crate::ingest::normalize::quote_prefix(given)
        )))
    }
}

/// The log stream CloudTrail writes an account's events of a region to:
/// `{orgId}_{account}_CloudTrail_{region}` for an organization trail.
pub fn log_stream_name(place: &Place<'_>) -> String {
    let Place {
        org,
        account,
        region,
    } = place;
    match org {
        Some(org) => format!("{org}_{account}_CloudTrail_{region}"),
        None => format!("{account}_CloudTrail_{region}"),
    }
}

/// AWS Organizations' ID syntax: `o-` and 10 to 32 lowercase letters or digits.
pub fn is_organization_id(id: &str) -> bool {
    id.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An account ID: 12 digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// One chain of a trail's log files and digests: the account (and, for an
/// organization trail, the organization) and region whose folder they go
/// in, `[prefix/]AWSLogs/[{org}/]{account}/CloudTrail[-Digest]/{region}/`.
/// The state table keys a chain by [`Place::chain`] where it keyed a region
/// before organization trails: the region alone for the trail's own
/// account, `{org}/{account}/{region}` for an organization trail's (its
/// own account's too, as in CloudTrail). A chain's layout is thus fixed
/// when its first event is staged: a trail turned into an organization
/// trail (or back) finishes its old chains in their old folders and starts
/// new ones (docs/organizations.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    pub org: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
}

impl<'a> Place<'a> {
    /// The place a stored chain of `trail` names; `None` if it is not one
    /// trailkeep writes.
    pub fn parse(chain: &'a str, trail: &'a Trail) -> Option<Self> {
        let parts: Vec<&str> = chain.split('/').collect();
        match parts[..] {
            [region] => Some(Place {
                org: None,
                account: &trail.account_id,
                region,
            }),
            [org, account, region] if is_organization_id(org) && is_account_id(account) => {
                Some(Place {
                    org: Some(org),
                    account,
                    region,
                })
            }
            _ => None,
        }
        .filter(|p| crate::ingest::normalize::is_region(p.region))
    }

    /// The chain's key in the state table.
    pub fn chain(&self) -> String {
        match self.org {
            Some(org) => format!("{org}/{}/{}", self.account, self.region),
            None => self.region.to_owned(),
        }
    }

    /// `AWSLogs/[{org}/]{account}`: the chain's folders' common root.
    pub fn root(&self) -> String {
        match self.org {
            Some(org) => format!("AWSLogs/{org}/{}", self.account),
            None => format!("AWSLogs/{}", self.account),
        }
    }
}

/// The ARN `SnsTopicName` stands for: itself when it is an ARN, else the
/// topic of that name in `region` of `account`.
pub fn sns_topic_arn(topic: &str, region: &str, account: &str) -> String {
    if topic.starts_with("arn:") {
        topic.to_owned()
    } else {
        format!("arn:{}:sns:{region}:{account}:{topic}", partition(region))
    }
}

/// Checks an `SnsTopicName`: a standard topic's name (1–256 of
/// `[A-Za-z0-9_-]`) or its ARN. FIFO topics (`.fifo`) are refused, as
/// CloudTrail refuses them.
pub fn validate_sns_topic(given: &str) -> Result<(), TrailError> {
    let bad = |why: &str| {
        Err(TrailError::InvalidSnsTopicName(format!(
            "SnsTopicName \"{}\" {why}",
            crate::ingest::normalize::quote_prefix(given)
        )))
    };
    let name = if given.starts_with("arn:") {
        match regional_arn(given, "sns") {
            Some((_, _, name)) => name,
            None => return bad("is not an SNS topic ARN"),
        }
    } else {
        given
    };
    if name.ends_with(".fifo") {
        return bad("is a FIFO topic: CloudTrail's notifications go to standard topics");
    }
    if !(1..=256).contains(&name.len())
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("is not a valid topic name (1-256 letters, digits, - and _)");
    }
    Ok(())
}

/// What a `KmsKeyId` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmsKeyRef<'a> {
    /// A key, by its ID (`1234abcd-…`, `mrk-…`) and, when given as one,
    /// its ARN.
    Key { id: &'a str, arn: Option<&'a str> },
    /// An alias (`alias/…`, by name or ARN): which key it names is KMS's
    /// to say, at the time of each write.
    Alias,
}

impl KmsKeyRef<'_> {
    /// Does this reference, given by a trail homed in `region` of
    /// `account`, name the key `arn` (an alias: unknown, `false`)? A bare
    /// key ID is looked up where the writes happen, so it names only a key
    /// of that account and region.
    pub fn names(&self, arn: &str, region: &str, account: &str) -> bool {
        match self {
            Self::Key { arn: Some(a), .. } => *a == arn,
            Self::Key { id, arn: None } => {
                arn == format!("arn:{}:kms:{region}:{account}:key/{id}", partition(region))
            }
            Self::Alias => false,
        }
    }
}

/// Reads a `KmsKeyId` in the forms CloudTrail takes: a key ID, a key ARN,
/// an alias name (`alias/…`) or an alias ARN. AWS managed keys
/// (`alias/aws/…`) are refused: their key policies cannot let a trail's
/// writer in.
pub fn parse_kms_key_id(given: &str) -> Result<KmsKeyRef<'_>, TrailError> {
    let bad = |why: &str| {
        Err(TrailError::InvalidKmsKeyId(format!(
            "KmsKeyId \"{}\" {why}",
            crate::ingest::normalize::quote_prefix(given)
        )))
    };
    let key_id = |id: &str| {
        let uuid = id.len() == 36
            && id.bytes().enumerate().all(|(i, b)| {
                if [8, 13, 18, 23].contains(&i) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        let multi_region = id
            .strip_prefix("mrk-")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        uuid || multi_region
    };
    let alias_name = |name: &str| {
        (1..=250).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    };
    let (resource, arn) = if given.starts_with("arn:") {
        match regional_arn(given, "kms") {
            Some((_, _, resource)) => (resource, Some(given)),
            None => return bad("is not a KMS key or alias ARN"),
        }
    } else {
        (given, None)
    };
    if let Some(name) = resource.strip_prefix("alias/") {
        if name.starts_with("aws/") {
            return bad("is an AWS managed key: give a customer managed key");
        }
        if !alias_name(name) {
            return bad("is not a valid alias name");
        }
        return Ok(KmsKeyRef::Alias);
    }
    let id = match (resource.strip_prefix("key/"), arn) {
        (Some(id), Some(_)) => id,
        (None, None) => resource,
        _ => return bad("is not a key ID, key ARN, alias name or alias ARN"),
    };
    if !key_id(id) {
        return bad("is not a key ID, key ARN, alias name or alias ARN");
    }
    Ok(KmsKeyRef::Key { id, arn })
}

/// Checks a trail name: 3–128 of `[A-Za-z0-9._-]`, starting and ending with a
/// letter or digit, no two adjacent `.`, `_`, `-`, and not an IP address.
pub fn validate_name(name: &str) -> Result<(), TrailError> {
    let bad = |why: &str| {
        Err(TrailError::InvalidTrailName(format!(
            "trail name {name:?} {why}"
        )))
    };
    if !(3..=128).contains(&name.len()) {
        return bad("must be 3 to 128 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return bad("may contain only letters, digits, periods, underscores and dashes");
    }
    let (first, last) = (name.as_bytes()[0], name.as_bytes()[name.len() - 1]);
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must start and end with a letter or digit");
    }
    if name
        .as_bytes()
        .windows(2)
        .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
    {
        return bad("must not contain adjacent periods, underscores or dashes");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    Ok(())
}

/// Checks event selectors against CloudTrail's rules for them.
pub fn validate_selectors(selectors: &[EventSelector]) -> Result<(), TrailError> {
    let bad = |why: String| Err(TrailError::InvalidEventSelectors(why));
    if selectors.len() > MAX_EVENT_SELECTORS {
        return bad(format!(
            "{} event selectors; at most {MAX_EVENT_SELECTORS} are allowed",
            selectors.len()
        ));
    }
    let values: usize = selectors
        .iter()
        .flat_map(|s| &s.data_resources)
        .map(|d| d.values.len())
        .sum();
    if values > MAX_DATA_RESOURCE_VALUES {
        return bad(format!(
            "{values} data resource values; at most {MAX_DATA_RESOURCE_VALUES} are allowed"
        ));
    }
    for source in selectors
        .iter()
        .flat_map(|s| &s.exclude_management_event_sources)
    {
        if !EXCLUDABLE_SOURCES.contains(&source.as_str()) {
            return bad(format!(
                "ExcludeManagementEventSources {:?}: only {} may be excluded",
                crate::ingest::normalize::quote_prefix(source),
                EXCLUDABLE_SOURCES.join(" and ")
            ));
        }
    }
    for resource in selectors.iter().flat_map(|s| &s.data_resources) {
        if resource.values.is_empty() {
            return bad(format!(
                "data resource {} has no values",
                resource.resource_type
            ));
        }
        for value in &resource.values {
            let ok = match resource.resource_type.as_str() {
                S3_OBJECT => valid_s3_value(value),
                LAMBDA_FUNCTION => valid_lambda_value(value),
                other => return bad(format!("data resource type {other:?} is not supported: use {S3_OBJECT} or {LAMBDA_FUNCTION}")),
            };
            if !ok {
                return bad(format!(
                    "{value:?} is not a valid {} value: {}",
                    resource.resource_type,
                    if resource.resource_type == S3_OBJECT {
                        "use arn:aws:s3 (all buckets), arn:aws:s3:::BUCKET/ or arn:aws:s3:::BUCKET/PREFIX"
                    } else {
                        "use arn:aws:lambda (all functions) or a function ARN"
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Splits `arn:PARTITION:SERVICE:rest` for one of the known partitions.
fn arn_rest<'a>(value: &'a str, service: &str) -> Option<&'a str> {
    let rest = value.strip_prefix("arn:")?;
    let (part, rest) = rest.split_once(':').unwrap_or((rest, ""));
    if !["aws", "aws-cn", "aws-us-gov"].contains(&part) {
        return None;
    }
    if rest == service {
        return Some("");
    }
    rest.strip_prefix(service)?.strip_prefix(':')
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` for one of the known
/// partitions, with a well-formed region and a 12-digit account: (region,
/// account, resource).
pub fn regional_arn<'a>(value: &'a str, service: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let mut parts = arn_rest(value, service)?.splitn(3, ':');
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (region_ok && account_ok).then_some((region, account, resource))
}

fn valid_s3_value(value: &str) -> bool {
    match arn_rest(value, "s3") {
        Some("") => true,
        // "::bucket/" or "::bucket/prefix"
        Some(rest) => rest
            .strip_prefix("::")
            .and_then(|r| r.split_once('/'))
            .is_some_and(|(bucket, _)| (3..=63).contains(&bucket.len())),
        None => false,
    }
}

fn valid_lambda_value(value: &str) -> bool {
    match arn_rest(value, "lambda") {
        Some("") => true,
        // region:account:function:name
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            parts.len() == 4
                && !parts[0].is_empty()
                && parts[1].len() == 12
                && parts[2] == "function"
                && !parts[3].is_empty()
        }
        None => false,
    }
}

impl Trail {
    /// The ARN of the topic notified of each log file: `SnsTopicName` as
    /// given when it is an ARN, else the topic of that name in the trail's
    /// home region and account.
    pub fn sns_topic_arn(&self) -> Option<String> {
        let topic = self.sns_topic_name.as_deref()?;
        Some(sns_topic_arn(topic, &self.home_region, &self.account_id))
    }

    /// `arn:{partition}:cloudtrail:{home region}:{account}:trail/{name}`.
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:cloudtrail:{}:{}:trail/{}",
            partition(&self.home_region),
            self.home_region,
            self.account_id,
            self.name
        )
    }

    /// The trail as CloudTrail's `Trail` structure (DescribeTrails, GetTrail).
    pub fn to_cloudtrail_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "Name": self.name,
            "S3BucketName": self.s3_bucket_name,
            "IncludeGlobalServiceEvents": self.include_global_service_events,
            "IsMultiRegionTrail": self.is_multi_region_trail,
            "HomeRegion": self.home_region,
            "TrailARN": self.arn(),
            "LogFileValidationEnabled": self.log_file_validation_enabled,
            "HasCustomEventSelectors": !self.event_selectors.is_empty()
                || !self.advanced_event_selectors.is_empty(),
            "HasInsightSelectors": false,
            "IsOrganizationTrail": self.organization_id.is_some(),
        });
        if let Some(prefix) = &self.s3_key_prefix {
            v["S3KeyPrefix"] = serde_json::json!(prefix);
        }
        if let Some(key) = &self.kms_key_id {
            v["KmsKeyId"] = serde_json::json!(key);
        }
        if let (Some(name), Some(arn)) = (&self.sns_topic_name, self.sns_topic_arn()) {
            v["SnsTopicName"] = serde_json::json!(name);
            v["SnsTopicARN"] = serde_json::json!(arn);
        }
        if let Some(logs) = &self.cloud_watch_logs {
            v["CloudWatchLogsLogGroupArn"] = serde_json::json!(logs.log_group_arn);
            v["CloudWatchLogsRoleArn"] = serde_json::json!(logs.role_arn);
        }
        v
    }

    /// Checks the whole configuration.
    pub fn validate(&self) -> Result<(), TrailError> {
        validate_name(&self.name)?;
        validate_selectors(&self.event_selectors)?;
        validate_advanced(&self.advanced_event_selectors)?;
        validate_tags(&self.tags)?;
        let bytes = serde_json::to_vec(self).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_TRAIL_BYTES {
            return Err(TrailError::InvalidEventSelectors(format!(
                "the trail's configuration would be {bytes} bytes; trailkeep keeps at most \
                 {MAX_TRAIL_BYTES} per trail (all trails share one 400 KB item): use fewer or \
                 shorter selector values"
            )));
        }
        if !self.event_selectors.is_empty() && !self.advanced_event_selectors.is_empty() {
            return Err(TrailError::InvalidEventSelectors(
                "a trail has EventSelectors or AdvancedEventSelectors, not both".into(),
            ));
        }
        let bucket = &self.s3_bucket_name;
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b))
        {
            return Err(TrailError::InvalidS3BucketName(format!(
                "{bucket:?} is not a valid S3 bucket name"
            )));
        }
        if let Some(prefix) = &self.s3_key_prefix {
            if prefix.len() > 200 || prefix.starts_with('/') || prefix.ends_with('/') {
                return Err(TrailError::InvalidS3Prefix(format!(
                    "{prefix:?}: at most 200 characters, without a leading or trailing slash"
                )));
            }
        }
        if let Some(key) = &self.kms_key_id {
            parse_kms_key_id(key)?;
        }
        if let Some(topic) = &self.sns_topic_name {
            validate_sns_topic(topic)?;
        }
        if let Some(logs) = &self.cloud_watch_logs {
            parse_log_group_arn(&logs.log_group_arn)?;
            validate_role_arn(&logs.role_arn)?;
        }
        Ok(())
    }

    /// Does the trail's configuration select this event (ignoring logging state and region)?
    pub fn selects(&self, record: &Record) -> bool {
        if !self.advanced_event_selectors.is_empty() {
            return self
                .advanced_event_selectors
                .iter()
                .any(|s| s.selects(record));
        }
        if self.event_selectors.is_empty() {
            return record.category() == EventCategory::Management;
        }
        self.event_selectors.iter().any(|s| s.selects(record))
    }

    /// The chain of this trail's log files (and digests) the event goes
    /// into ([`Place::chain`]), or `None` when the trail does not log it:
    /// a trail that is not an organization trail logs only its own
    /// account's events (`recipientAccountId`; none given is the stack's).
    pub fn log_chain<'a>(&'a self, record: &'a Record) -> Option<std::borrow::Cow<'a, str>> {
        let region = self.log_region(record)?;
        let account = Some(record.recipient_account_id.as_str())
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.account_id);
        match &self.organization_id {
            Some(org) => Some(std::borrow::Cow::Owned(
                Place {
                    org: Some(org),
                    account,
                    region,
                }
                .chain(),
            )),
            None if account == self.account_id => Some(std::borrow::Cow::Borrowed(region)),
            None => None,
        }
    }

    /// The region whose log files of this trail the event goes into, or
    /// `None` when the trail does not log it at all (whatever its account).
    pub fn log_region<'a>(&'a self, record: &'a Record) -> Option<&'a str> {
        if !self.is_logging || !self.selects(record) {
            return None;
        }
        if is_global(record) {
            if !self.include_global_service_events {
                None
            } else if self.is_multi_region_trail {
                Some(GLOBAL_REGION)
            } else {
                Some(&self.home_region)
            }
        } else if self.is_multi_region_trail || record.aws_region == self.home_region {
            Some(&record.aws_region)
        } else {
            None
        }
    }
}

impl EventSelector {
    fn selects(&self, record: &Record) -> bool {
        let read_only = record.is_read_only();
        let direction = match self.read_write_type {
            ReadWriteType::All => true,
            ReadWriteType::ReadOnly => read_only,
            ReadWriteType::WriteOnly => !read_only,
        };
        if !direction {
            return false;
        }
        match record.category() {
            EventCategory::Management => {
                self.include_management_events
                    && !self
                        .exclude_management_event_sources
                        .contains(&record.event_source)
            }
            EventCategory::Data => self.data_resources.iter().any(|d| d.selects(record)),
        }
    }
}

/// The service (`eventSource`) whose data events a resource type names.
pub(super) fn type_source(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        S3_OBJECT => Some("s3.amazonaws.com"),
        LAMBDA_FUNCTION => Some("lambda.amazonaws.com"),
        _ => None,
    }
}

/// The event's resources of one type.
pub(super) fn resources_of_type<'a>(
    record: &'a Record,
    resource_type: &'a str,
) -> impl Iterator<Item = &'a crate::model::Resource> {
    record
        .resources
        .iter()
        .flatten()
        .filter(move |r| r.resource_type.as_deref() == Some(resource_type))
}

impl DataResource {
    fn selects(&self, record: &Record) -> bool {
        let Some(source) = type_source(&self.resource_type) else {
            return false;
        };
        if record.event_source != source {
            return false;
        }
        let service = if self.resource_type == S3_OBJECT {
            "s3"
        } else {
            "lambda"
        };
        let arns = resources_of_type(record, &self.resource_type).filter_map(|r| r.arn.as_deref());
        let mut arns = arns.peekable();
        arns.peek().is_some()
            && arns.any(|arn| {
                self.values.iter().any(|value| {
                    if arn_rest(value, service) == Some("") {
                        return true; // arn:aws:s3 / arn:aws:lambda: all
                    }
                    if service == "s3" {
                        arn.starts_with(value.as_str())
                    } else {
                        arn == value
                    }
                })
            })
    }
}

#[cfg(test)]
mod tests;
