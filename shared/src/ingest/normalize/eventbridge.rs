//! EventBridge events: CloudTrail-delivered events, S3 object events, and
//! custom application events (any other source / detail-type).

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{invalid, s3, Envelope, Outcome, RecordError};
use crate::model::{event_type, Record, Resource, UserIdentity, UNSET_TIME};

/// detail-types whose detail is (close to) a CloudTrail record, with the
/// `eventType` each implies when the detail does not say.
const CLOUDTRAIL_DETAIL_TYPES: [(&str, &str); 4] = [
    ("AWS API Call via CloudTrail", event_type::API_CALL),
    (
        "AWS Console Sign In via CloudTrail",
        event_type::CONSOLE_SIGN_IN,
    ),
    (
        "AWS Console Action via CloudTrail",
        event_type::CONSOLE_ACTION,
    ),
    (
        "AWS Service Event via CloudTrail",
        event_type::SERVICE_EVENT,
    ),
];

/// Detail fields of a custom event that map to the record field of the same name.
const CUSTOM_RECORD_FIELDS: [&str; 10] = [
    "eventName",
    "userIdentity",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "requestID",
    "readOnly",
];

pub(super) fn normalize(event: Envelope) -> Result<Outcome, RecordError> {
    let detail_type = event.detail_type.as_deref().unwrap_or_default();
    let source = event
        .source
        .as_deref()
        .ok_or(RecordError::Missing { field: "source" })?;
    if let Some((_, implied_type)) = CLOUDTRAIL_DETAIL_TYPES
        .iter()
        .find(|(dt, _)| *dt == detail_type)
    {
        // EventBridge refuses PutEvents with an `aws.` source: only AWS can
        // send one, so it is the proof that CloudTrail wrote this record.
        if !source.starts_with("aws.") {
            return Err(RecordError::Invalid {
                field: "source".into(),
                reason: format!(
                    "\"{}\" is not an AWS source: a {detail_type:?} event is accepted only from an aws.* source (forged CloudTrail record refused)",
                    super::quote_prefix(source)
                ),
            });
        }
        return cloudtrail(event, implied_type);
    }
    if source == "aws.s3" && matches!(detail_type, "Object Created" | "Object Deleted") {
        return s3::from_eventbridge(event);
    }
    custom(event)
}

/// A CloudTrail record in `detail`, kept as AWS wrote it: the record's JSON
/// is the detail's own text (whitespace between tokens removed), every
/// field and value unchanged, `eventVersion` included. Only a field the
/// detail lacks (or leaves empty) is filled, from the envelope: `eventID`,
/// `awsRegion`, `recipientAccountId`, `eventTime`, and the `eventType` the
/// detail-type implies (docs/normalization.md "AWS's records").
fn cloudtrail(event: Envelope, implied_type: &str) -> Result<Outcome, RecordError> {
    let detail = event
        .detail
        .ok_or(RecordError::Missing { field: "detail" })?;
    let mut record: Record =
        serde_json::from_str(detail.get()).map_err(|e| invalid("detail", e))?;
    // EventBridge sets `account` to the account whose bus the event came
    // from, and AWS's record of an account's activity names that account
    // (`recipientAccountId`). A record naming another one was altered on
    // its way (an organization's member must not file events in another
    // account's chain: docs/organizations.md), so it is refused.
    if let Some(account) = event.account.as_deref() {
        let named = &record.recipient_account_id;
        if !named.is_empty() && named != account {
            return Err(RecordError::Invalid {
                field: "detail.recipientAccountId".into(),
                reason: format!(
                    "\"{}\" is not the account {} the event came from",
                    super::quote_prefix(named),
                    super::quote_prefix(account)
                ),
            });
        }
    }
    let mut filled: Vec<(&str, String)> = Vec::new();
    let mut fill = |name, field: &mut String, fallback: Option<String>| {
        if let Some(value) = fallback.filter(|_| field.is_empty()) {
            field.clone_from(&value);
            filled.push((name, value));
        }
    };
    fill("eventID", &mut record.event_id, event.id);
    fill("awsRegion", &mut record.aws_region, event.region);
    fill(
        "recipientAccountId",
        &mut record.recipient_account_id,
        event.account,
    );
    fill(
        "eventType",
        &mut record.event_type,
        Some(implied_type.to_owned()),
    );
    if record.event_time == UNSET_TIME {
        if let Some(time) = event.time {
            record.event_time = time;
            filled.push(("eventTime", crate::time::format(&time)));
        }
    }
    let json = if filled.is_empty() {
        super::compact(detail.get())
    } else {
        // Rare (AWS sends all of these): the detail as a map, in its own
        // field order, with the missing values set.
        let mut map: Map<String, Value> =
            serde_json::from_str(detail.get()).map_err(|e| invalid("detail", e))?;
        for (name, value) in filled {
            map.insert(name.to_owned(), Value::String(value));
        }
        serde_json::to_string(&map).map_err(|e| invalid("detail", e))?
    };
    Ok(Outcome::AsSent(Box::new(record), json))
}

/// Any other event: an application's own audit event, or an AWS service
/// event that CloudTrail does not describe. Mapping in docs/normalization.md.
fn custom(event: Envelope) -> Result<Outcome, RecordError> {
    let id = event.id.ok_or(RecordError::Missing { field: "id" })?;
    let time = event.time.ok_or(RecordError::Missing { field: "time" })?;
    let region = event
        .region
        .ok_or(RecordError::Missing { field: "region" })?;
    let account = event
        .account
        .ok_or(RecordError::Missing { field: "account" })?;
    let mut detail = detail_object(event.detail.as_deref())?;
    let source = event
        .source
        .ok_or(RecordError::Missing { field: "source" })?;
    let detail_type = event.detail_type.unwrap_or_default();
    let aws_service = source.strip_prefix("aws.");
    let event_source = custom_source(&source)?;
    // Take the recognised fields out of the detail; what remains is additionalEventData.
    let mut known = Map::new();
    for field in CUSTOM_RECORD_FIELDS {
        if let Some(v) = detail.remove(field) {
            known.insert(field.to_owned(), v);
        }
    }
    let take_str =
        |known: &mut Map<String, Value>, field: &str| -> Result<Option<String>, RecordError> {
            match known.remove(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(RecordError::Invalid {
                    field: format!("detail.{field}"),
                    reason: "must be a string".into(),
                }),
            }
        };
    let user_identity = custom_identity(&mut known, aws_service.is_some(), &event_source)?;
    let read_only = match known.remove("readOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(RecordError::Invalid {
                field: "detail.readOnly".into(),
                reason: "must be true or false".into(),
            })
        }
    };
    let event_type = custom_event_type(aws_service.is_some(), &mut detail);
    let resources = event
        .resources
        .filter(|r| !r.is_empty())
        .map(|arns| arns.into_iter().map(resource_from_arn).collect());
    let record = Record {
        user_identity,
        event_time: time,
        event_name: take_str(&mut known, "eventName")?.unwrap_or(detail_type),
        event_source,
        aws_region: region,
        source_ip_address: take_str(&mut known, "sourceIPAddress")?,
        user_agent: take_str(&mut known, "userAgent")?,
        error_code: take_str(&mut known, "errorCode")?,
        error_message: take_str(&mut known, "errorMessage")?,
        request_parameters: known.remove("requestParameters").filter(|v| !v.is_null()),
        response_elements: known.remove("responseElements").filter(|v| !v.is_null()),
        additional_event_data: (!detail.is_empty()).then_some(Value::Object(detail)),
        request_id: take_str(&mut known, "requestID")?,
        event_id: id,
        read_only: Some(read_only),
        resources,
        event_type,
        recipient_account_id: account,
        ..Record::default()
    };
    Ok(Outcome::Record(Box::new(record)))
}

/// The record's `eventSource`: `aws.X` is `X.amazonaws.com`; any other
/// source as sent, unless it could pass for an AWS service.
fn custom_source(source: &str) -> Result<String, RecordError> {
    match source.strip_prefix("aws.") {
        Some(service) => Ok(format!("{service}.amazonaws.com")),
        None if names_an_aws_service(source) => Err(RecordError::Invalid {
            field: "source".into(),
            reason: format!(
                "\"{}\" names an AWS service: an application event's source may not pass for AWS (use your own, e.g. com.example.app)",
                super::quote_prefix(source)
            ),
        }),
        None => Ok(source.to_owned()),
    }
}

/// The record's `eventType`: an AWS service event's own type if it is one
/// of CloudTrail's four, else `AwsServiceEvent`; an application's event is
/// always `ApplicationEvent`, and a type it said it had stays in the
/// detail (additionalEventData).
fn custom_event_type(aws_service: bool, detail: &mut Map<String, Value>) -> String {
    match (aws_service, detail.remove("eventType")) {
        (true, Some(Value::String(t))) if event_type::ALL.contains(&t.as_str()) => t,
        (true, None) => event_type::SERVICE_EVENT.to_owned(),
        (aws, said) => {
            if let Some(said) = said {
                detail.insert("eventType".into(), said);
            }
            if aws {
                event_type::SERVICE_EVENT.to_owned()
            } else {
                event_type::APPLICATION.to_owned()
            }
        }
    }
}

/// An application event's detail: a JSON object, or nothing.
fn detail_object(raw: Option<&RawValue>) -> Result<Map<String, Value>, RecordError> {
    let detail: Option<Value> = match raw {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| invalid("detail", e))?,
        None => None,
    };
    match detail {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(RecordError::Invalid {
            field: "detail".into(),
            reason: "must be a JSON object".into(),
        }),
    }
}

/// The detail's `userIdentity`, or the service (for `aws.*` sources) or
/// an unknown caller.
fn custom_identity(
    known: &mut Map<String, Value>,
    aws_service: bool,
    event_source: &str,
) -> Result<UserIdentity, RecordError> {
    match known.remove("userIdentity") {
        None | Some(Value::Null) => Ok(UserIdentity {
            identity_type: Some(if aws_service { "AWSService" } else { "Unknown" }.to_owned()),
            invoked_by: aws_service.then(|| event_source.to_owned()),
            ..UserIdentity::default()
        }),
        Some(v) => serde_json::from_value(v).map_err(|e| invalid("detail.userIdentity", e)),
    }
}

/// A source that could read as an AWS service's: one starting `aws` or
/// holding `amazonaws` anywhere (`iam.amazonaws.com`, `.com.cn`, `.com.`),
/// in any case, or with any character outside ASCII (look-alike letters,
/// zero-width spaces). EventBridge itself refuses only the exact `aws.`
/// prefix.
fn names_an_aws_service(source: &str) -> bool {
    let s = source.trim().to_ascii_lowercase();
    !source.is_ascii() || s.starts_with("aws") || s.contains("amazonaws")
}

/// `arn:partition:service:region:account:resource` → a resource entry; the
/// account comes from the ARN when it has one.
fn resource_from_arn(arn: String) -> Resource {
    let account_id = arn
        .split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned);
    Resource {
        arn: Some(arn),
        account_id,
        ..Resource::default()
    }
}
