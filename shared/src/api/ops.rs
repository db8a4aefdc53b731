//! The trail operations: CloudTrail's request members in, CloudTrail's
//! response shapes out (botocore's `cloudtrail/2013-11-01/service-2.json`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{ApiError, Operation};
use crate::digest::registry::{self, PublicKeys};
use crate::ingest::normalize::quote_prefix;
use crate::trail::admin::{self, NewTrail, TrailStore, TrailUpdate};
use crate::trail::{
    parse_kms_key_id, parse_log_group_arn, regional_arn, sns_topic_arn, validate_role_arn,
    validate_sns_topic, AdvancedEventSelector, CloudWatchLogs, EventSelector, KmsKeyRef, Tag,
    Trail, TrailHealth,
};

/// At most this many resources in one `ListTags` call (CloudTrail's limit).
const MAX_LIST_TAGS_RESOURCES: usize = 20;

/// `TagsList`, required (`AddTags`, `RemoveTags`) or not (`CreateTrail`).
fn tags_param(params: &Value, required: bool) -> Result<Vec<Tag>, ApiError> {
    match params.get("TagsList") {
        None | Some(Value::Null) if required => Err(ApiError::bad(
            "InvalidTagParameterException",
            "TagsList is required",
        )),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad("InvalidTagParameterException", e.to_string())),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad("InvalidParameterException", message)
}

/// A required string member (a trail's name or ARN).
pub(super) fn name_param(params: &Value, member: &str) -> Result<String, ApiError> {
    match params.get(member) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(ApiError::bad(
            "TrailNotProvidedException",
            format!("{member} is required"),
        )),
        Some(_) => Err(invalid(format!("{member} must be a non-empty string"))),
    }
}

fn string_param(params: &Value, member: &str) -> Result<Option<String>, ApiError> {
    match params.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{member} must be a string"))),
    }
}

fn bool_param(params: &Value, member: &str) -> Result<Option<bool>, ApiError> {
    match params.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{member} must be a boolean"))),
    }
}

/// `IsOrganizationTrail`: `Some(Some(org))` makes the trail an
/// organization trail of the stack's `OrganizationId`, `Some(None)` a trail
/// of the stack's own account; `None` leaves it as it is. Refused when the
/// stack names no organization, as CloudTrail refuses it outside one.
fn organization_param(params: &Value, home: &Home<'_>) -> Result<Option<Option<String>>, ApiError> {
    match bool_param(params, "IsOrganizationTrail")? {
        None => Ok(None),
        Some(false) => Ok(Some(None)),
        Some(true) => match home.organization_id {
            Some(org) => Ok(Some(Some(org.to_owned()))),
            None => Err(ApiError::bad(
                "OrganizationsNotInUseException",
                "this stack serves no organization: deploy it with the OrganizationId parameter \
                 to create organization trails (docs/organizations.md)",
            )),
        },
    }
}

/// `CreateTrailResponse`/`UpdateTrailResponse`: the trail without the
/// members only `Trail` has.
fn trail_response(t: &Trail) -> Value {
    let mut v = t.to_cloudtrail_json();
    if let Some(o) = v.as_object_mut() {
        for member in [
            "HomeRegion",
            "HasCustomEventSelectors",
            "HasInsightSelectors",
        ] {
            o.remove(member);
        }
    }
    v
}

/// `GetEventSelectorsResponse`/`PutEventSelectorsResponse`: the kind of
/// selectors the trail has.
fn selectors_response(t: &Trail) -> Value {
    if t.advanced_event_selectors.is_empty() {
        json!({ "TrailARN": t.arn(), "EventSelectors": t.event_selectors })
    } else {
        json!({ "TrailARN": t.arn(), "AdvancedEventSelectors": t.advanced_event_selectors })
    }
}

fn selectors_param<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone())
        .map_err(|e| ApiError::bad("InvalidEventSelectorsException", e.to_string()))
}

/// `GetTrailStatusResponse`: the trail's logging state and what the last
/// deliver and digest runs did. Timestamps are epoch seconds (JSON 1.1);
/// the `…Attempt…` and `TimeLogging…` members are strings, as CloudTrail's.
pub(super) fn status_response(t: &Trail, h: &TrailHealth) -> Value {
    let mut v = json!({ "IsLogging": t.is_logging });
    let mut time = |member: &str, at: Option<DateTime<Utc>>| {
        if let Some(at) = at {
            v[member] = json!(at.timestamp());
        }
    };
    time("StartLoggingTime", t.start_logging_time);
    time("StopLoggingTime", t.stop_logging_time);
    time("LatestDeliveryTime", h.delivered);
    time("LatestDigestDeliveryTime", h.digest_delivered);
    time("LatestNotificationTime", h.notified);
    time("LatestCloudWatchLogsDeliveryTime", h.cwl_delivered);
    let mut text = |member: &str, value: Option<String>| {
        if let Some(value) = value {
            v[member] = json!(value);
        }
    };
    let iso = |at: Option<DateTime<Utc>>| at.map(|at| crate::time::format(&at));
    text("TimeLoggingStarted", iso(t.start_logging_time));
    text("TimeLoggingStopped", iso(t.stop_logging_time));
    text("LatestDeliveryError", h.delivery_error.clone());
    text("LatestDigestDeliveryError", h.digest_error.clone());
    text("LatestNotificationError", h.notify_error.clone());
    text("LatestCloudWatchLogsDeliveryError", h.cwl_error.clone());
    text("LatestDeliveryAttemptTime", iso(h.delivery_attempt));
    text("LatestDeliveryAttemptSucceeded", iso(h.delivery_ok));
    v
}

/// The operations that read trails.
pub(super) async fn read<T: TrailStore>(
    store: &T,
    op: Operation,
    params: &Value,
) -> Result<Value, ApiError> {
    Ok(match op {
        Operation::DescribeTrails => {
            let names: Vec<String> = match params.get("trailNameList") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|_| invalid("trailNameList must be a list of strings"))?,
            };
            let list = admin::describe(store, &names).await?;
            json!({ "trailList": list.iter().map(Trail::to_cloudtrail_json).collect::<Vec<_>>() })
        }
        Operation::GetTrail => {
            let t = admin::get(store, &name_param(params, "Name")?).await?;
            json!({ "Trail": t.to_cloudtrail_json() })
        }
        Operation::ListTrails => {
            // At most five trails: one page, never a NextToken.
            let list = admin::describe(store, &[]).await?;
            let trails: Vec<Value> = list
                .iter()
                .map(
                    |t| json!({ "TrailARN": t.arn(), "Name": t.name, "HomeRegion": t.home_region }),
                )
                .collect();
            json!({ "Trails": trails })
        }
        Operation::ListTags => {
            // `ResourceIdList`: trail ARNs, each answered with its tags
            // (a trail that is not there is an error, as in CloudTrail).
            let ids: Vec<String> = match params.get("ResourceIdList") {
                Some(v) if !v.is_null() => serde_json::from_value(v.clone())
                    .map_err(|_| invalid("ResourceIdList must be a list of strings"))?,
                _ => return Err(invalid("ResourceIdList is required")),
            };
            if ids.len() > MAX_LIST_TAGS_RESOURCES {
                return Err(invalid(format!(
                    "at most {MAX_LIST_TAGS_RESOURCES} resources per ListTags call"
                )));
            }
            let trails = store.load().await?.trails;
            let mut list = Vec::new();
            for id in &ids {
                let t = admin::find(&trails, id)?;
                list.push(json!({ "ResourceId": t.arn(), "TagsList": t.tags }));
            }
            json!({ "ResourceTagList": list })
        }
        Operation::GetEventSelectors => {
            selectors_response(&admin::get(store, &name_param(params, "TrailName")?).await?)
        }
        other => {
            return Err(ApiError::bad(
                "UnsupportedOperationException",
                format!("{} is not a read", other.name()),
            ))
        }
    })
}

/// Where new trails live: the deployment's account and region.
pub(super) struct Home<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// The keys deliver and digest may encrypt with (`LogEncryptionKeyArns`).
    pub log_keys: &'a [String],
    /// The topics deliver may notify (`NotificationTopicArns`).
    pub topics: &'a [String],
    /// The log groups deliver may write to (`LogGroupArns`).
    pub log_groups: &'a [String],
    /// The organization the stack serves (`OrganizationId`), if any.
    pub organization_id: Option<&'a str>,
}

/// `CloudWatchLogsLogGroupArn` with `CloudWatchLogsRoleArn`, checked: the
/// two come together (both `""`: remove), and the group is one the stack
/// lets deliver write to (`LogGroupArns`, compared by region, account and
/// name), so a trail never names a group its events would be refused at.
/// `None`: neither given (an update leaves the setting as it is).
fn cloud_watch_logs_param(
    params: &Value,
    home: &Home<'_>,
) -> Result<Option<Option<CloudWatchLogs>>, ApiError> {
    let group = string_param(params, "CloudWatchLogsLogGroupArn")?;
    let role = string_param(params, "CloudWatchLogsRoleArn")?;
    let given = group.is_some() || role.is_some();
    let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let (group, role) = match (nonempty(group), nonempty(role)) {
        (None, None) => return Ok(given.then_some(None)),
        (Some(_), None) => {
            return Err(ApiError::bad(
                "InvalidCloudWatchLogsRoleArnException",
                "CloudWatchLogsLogGroupArn needs CloudWatchLogsRoleArn (give both, or both as \"\" to remove them)",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::bad(
                "InvalidCloudWatchLogsLogGroupArnException",
                "CloudWatchLogsRoleArn needs CloudWatchLogsLogGroupArn (give both, or both as \"\" to remove them)",
            ))
        }
        (Some(group), Some(role)) => (group, role),
    };
    let code = "InvalidCloudWatchLogsLogGroupArnException";
    let parsed = parse_log_group_arn(&group).map_err(|e| ApiError::bad(code, e.to_string()))?;
    validate_role_arn(&role)
        .map_err(|e| ApiError::bad("InvalidCloudWatchLogsRoleArnException", e.to_string()))?;
    if (parsed.region, parsed.account) != (home.region, home.account_id) {
        return Err(ApiError::bad(
            code,
            format!(
                "the log group is in {}/{}: deliver writes to log groups of the stack's account and region ({}/{})",
                parsed.account, parsed.region, home.account_id, home.region
            ),
        ));
    }
    let listed = |arn: &String| parse_log_group_arn(arn).is_ok_and(|g| g == parsed);
    if !home.log_groups.iter().any(listed) {
        return Err(ApiError::bad(
            code,
            format!(
                "log group \"{}\" is not one of the stack's LogGroupArns, so deliver may not write to it (docs/trails.md \"Events in CloudWatch Logs\")",
                quote_prefix(parsed.name)
            ),
        ));
    }
    Ok(Some(Some(CloudWatchLogs {
        log_group_arn: group,
        role_arn: role,
    })))
}

/// `SnsTopicName`, checked: a standard topic's name or ARN that the stack
/// lets deliver publish to (a name is the topic in the stack's region and
/// account), so a trail never names a topic its notifications would be
/// refused at. `""` (remove the topic) passes.
fn sns_topic_param(params: &Value, home: &Home<'_>) -> Result<Option<String>, ApiError> {
    let given = string_param(params, "SnsTopicName")?;
    let Some(topic) = given.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(given);
    };
    validate_sns_topic(topic)
        .map_err(|e| ApiError::bad("InvalidSnsTopicNameException", e.to_string()))?;
    let arn = sns_topic_arn(topic, home.region, home.account_id);
    // Deliver publishes through a client of the stack's region.
    if regional_arn(&arn, "sns").map(|(region, _, _)| region) != Some(home.region) {
        return Err(ApiError::bad(
            "InvalidSnsTopicNameException",
            format!(
                "the topic is not in the stack's region ({}): deliver publishes there",
                home.region
            ),
        ));
    }
    if !home.topics.contains(&arn) {
        return Err(ApiError::bad(
            "InsufficientSnsTopicPolicyException",
            format!(
                "{arn} is not one of the stack's NotificationTopicArns, so deliver may not publish to it (docs/trails.md \"File notifications\")"
            ),
        ));
    }
    Ok(given)
}

/// `KmsKeyId`, checked: a form CloudTrail takes, naming a key the stack
/// lets deliver and digest use, so a trail never points its writers at a
/// key they would be refused (every delivery failing until someone looks).
/// An alias is taken as given: KMS resolves it at each write, and an alias
/// moved to a key not listed fails there (deliver's health says so).
/// `""` (remove the key) passes.
fn kms_key_param(params: &Value, home: &Home<'_>) -> Result<Option<String>, ApiError> {
    let given = string_param(params, "KmsKeyId")?;
    let Some(key) = given.as_deref().filter(|k| !k.is_empty()) else {
        return Ok(given);
    };
    let code = "InvalidKmsKeyIdException";
    let key = parse_kms_key_id(key).map_err(|e| ApiError::bad(code, e.to_string()))?;
    if home.log_keys.is_empty() {
        return Err(ApiError::bad(
            code,
            "this stack lets no trail use SSE-KMS: list the key in its LogEncryptionKeyArns parameter first (docs/trails.md \"Encrypting log files\")",
        ));
    }
    // S3 encrypts with a key of the bucket's region only: the stack's.
    if let Some((region, _, _)) = given.as_deref().and_then(|g| regional_arn(g, "kms")) {
        if region != home.region {
            return Err(ApiError::bad(
                code,
                format!(
                    "the key is in {region}: S3 encrypts the stack's log bucket ({}) only with a key of that region",
                    home.region
                ),
            ));
        }
    }
    let listed = |arn: &String| key.names(arn, home.region, home.account_id);
    if key != KmsKeyRef::Alias && !home.log_keys.iter().any(listed) {
        return Err(ApiError::bad(
            code,
            format!(
                "\"{}\" is not one of the stack's LogEncryptionKeyArns (a bare key ID means a key of the stack's account and region), so deliver and digest may not encrypt with it",
                quote_prefix(given.as_deref().unwrap_or_default())
            ),
        ));
    }
    Ok(given)
}

/// The operations that change trails. `now` (the request's time) is the
/// time logging starts or stops.
pub(super) async fn change<T: TrailStore>(
    store: &T,
    op: Operation,
    params: &Value,
    home: &Home<'_>,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    Ok(match op {
        Operation::CreateTrail => {
            let account = home.account_id;
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                // A trail ARN without an account would name no trail.
                return Err(ApiError::internal(&"the deployment's account is unknown"));
            }
            let new = NewTrail {
                name: name_param(params, "Name")?,
                s3_bucket_name: string_param(params, "S3BucketName")?.ok_or_else(|| {
                    ApiError::bad("InvalidS3BucketNameException", "S3BucketName is required")
                })?,
                s3_key_prefix: string_param(params, "S3KeyPrefix")?,
                kms_key_id: kms_key_param(params, home)?,
                sns_topic_name: sns_topic_param(params, home)?,
                cloud_watch_logs: cloud_watch_logs_param(params, home)?.flatten(),
                // CloudTrail's defaults: global events on, one region, no validation.
                include_global_service_events: bool_param(params, "IncludeGlobalServiceEvents")?
                    .unwrap_or(true),
                is_multi_region_trail: bool_param(params, "IsMultiRegionTrail")?.unwrap_or(false),
                organization_id: organization_param(params, home)?.flatten(),
                log_file_validation_enabled: bool_param(params, "EnableLogFileValidation")?
                    .unwrap_or(false),
                tags: tags_param(params, false)?,
            };
            trail_response(&admin::create(store, home.account_id, home.region, new).await?)
        }
        Operation::UpdateTrail => {
            let update = TrailUpdate {
                s3_bucket_name: string_param(params, "S3BucketName")?,
                s3_key_prefix: string_param(params, "S3KeyPrefix")?,
                kms_key_id: kms_key_param(params, home)?,
                sns_topic_name: sns_topic_param(params, home)?,
                cloud_watch_logs: cloud_watch_logs_param(params, home)?,
                is_multi_region_trail: bool_param(params, "IsMultiRegionTrail")?,
                organization_id: organization_param(params, home)?,
                include_global_service_events: bool_param(params, "IncludeGlobalServiceEvents")?,
                log_file_validation_enabled: bool_param(params, "EnableLogFileValidation")?,
            };
            trail_response(&admin::update(store, &name_param(params, "Name")?, update).await?)
        }
        Operation::DeleteTrail => {
            admin::delete(store, &name_param(params, "Name")?).await?;
            json!({})
        }
        Operation::AddTags | Operation::RemoveTags => {
            let trail = name_param(params, "ResourceId")?;
            let tags = tags_param(params, true)?;
            if op == Operation::AddTags {
                admin::add_tags(store, &trail, &tags).await?;
            } else {
                admin::remove_tags(store, &trail, &tags).await?;
            }
            json!({})
        }
        Operation::StartLogging | Operation::StopLogging => {
            let on = op == Operation::StartLogging;
            admin::set_logging(store, &name_param(params, "Name")?, on, now).await?;
            json!({})
        }
        Operation::PutEventSelectors => {
            let name = name_param(params, "TrailName")?;
            let given = |member| params.get(member).filter(|v| !v.is_null());
            let trail = match (given("EventSelectors"), given("AdvancedEventSelectors")) {
                (Some(basic), None) => {
                    let selectors: Vec<EventSelector> = selectors_param(basic)?;
                    admin::put_event_selectors(store, &name, selectors).await?
                }
                (None, Some(advanced)) => {
                    let selectors: Vec<AdvancedEventSelector> = selectors_param(advanced)?;
                    admin::put_advanced_event_selectors(store, &name, selectors).await?
                }
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad(
                        "InvalidParameterCombinationException",
                        "give EventSelectors or AdvancedEventSelectors, not both",
                    ))
                }
                (None, None) => {
                    return Err(ApiError::bad(
                        "InvalidParameterCombinationException",
                        "EventSelectors or AdvancedEventSelectors is required",
                    ))
                }
            };
            selectors_response(&trail)
        }
        other => {
            return Err(ApiError::bad(
                "UnsupportedOperationException",
                format!("{} is not a change", other.name()),
            ))
        }
    })
}

/// A timestamp member (JSON 1.1: epoch seconds, as botocore sends them).
fn time_param(params: &Value, member: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match params.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::history::lookup::time_member(v)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad(
                    "InvalidTimeRangeException",
                    format!("{member} is not a timestamp"),
                )
            }),
    }
}

/// `ListPublicKeys`: the deployment's signing keys the key registry says
/// signed digests in `[StartTime, EndTime]` (absent: any time), with the
/// span each signed. One page, never a `NextToken`. A registry entry for a
/// key the deployment does not sign with is logged and not listed.
pub(super) async fn public_keys<K: PublicKeys>(
    keys: &K,
    params: &Value,
) -> Result<Value, ApiError> {
    use base64::Engine as _;
    let (start, end) = (
        time_param(params, "StartTime")?,
        time_param(params, "EndTime")?,
    );
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(ApiError::bad(
                "InvalidTimeRangeException",
                "EndTime is before StartTime",
            ));
        }
    }
    let (listed, untrusted) =
        registry::list(keys.keys_used().await?, &keys.trusted().await?, start, end);
    for k in untrusted {
        tracing::warn!(
            key_id = %crate::ingest::normalize::quote_prefix(&k.key_id),
            fingerprint = %crate::ingest::normalize::quote_prefix(&k.fingerprint),
            "the key registry names a key the deployment does not sign with: not listed"
        );
    }
    let list: Vec<Value> = listed
        .iter()
        .map(|k| {
            let mut v = json!({
                "Value": base64::engine::general_purpose::STANDARD.encode(&k.pkcs1),
                "Fingerprint": k.key.fingerprint,
            });
            if let Some(t) = k.valid_from {
                v["ValidityStartTime"] = json!(t.timestamp());
            }
            if let Some(t) = k.valid_to {
                v["ValidityEndTime"] = json!(t.timestamp());
            }
            v
        })
        .collect();
    Ok(json!({ "PublicKeyList": list }))
}
