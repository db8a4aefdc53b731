//! S3 object events, from S3 event notifications (`Records[]`) and from
//! EventBridge ("Object Created" / "Object Deleted"), as S3 data events.
//!
//! Both paths build the same [`ObjectEvent`] and so the same record: the
//! eventID is derived from bucket, key, version and sequencer, which are the
//! same on every re-delivery and on both paths, so an operation seen twice is
//! stored once.

use aws_lambda_events::s3::S3EventRecord;
use chrono::{DateTime, SubsecRound, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::{invalid, Batch, Context, Envelope, Outcome, RecordError};
use crate::ingest::classify::partition;
use crate::model::{event_type, EventCategory, Record, Resource, UserIdentity};

/// Notification event names → the S3 API operation they record.
const NOTIFICATION_EVENTS: [(&str, &str); 6] = [
    ("ObjectCreated:Put", "PutObject"),
    ("ObjectCreated:Post", "PostObject"),
    ("ObjectCreated:Copy", "CopyObject"),
    (
        "ObjectCreated:CompleteMultipartUpload",
        "CompleteMultipartUpload",
    ),
    ("ObjectRemoved:Delete", "DeleteObject"),
    ("ObjectRemoved:DeleteMarkerCreated", "DeleteObject"),
];

/// EventBridge `reason` values → the S3 API operation they record.
const EVENTBRIDGE_REASONS: [(&str, &str); 5] = [
    ("PutObject", "PutObject"),
    ("POST Object", "PostObject"),
    ("CopyObject", "CopyObject"),
    ("CompleteMultipartUpload", "CompleteMultipartUpload"),
    ("DeleteObject", "DeleteObject"),
];

/// One object-level operation, whichever path reported it.
struct ObjectEvent {
    event_name: &'static str,
    time: DateTime<Utc>,
    region: String,
    account: String,
    bucket: String,
    key: String,
    version_id: Option<String>,
    sequencer: Option<String>,
    size: Option<i64>,
    etag: Option<String>,
    requester: Option<String>,
    source_ip: Option<String>,
    request_id: Option<String>,
}

pub(super) fn normalize_notification(
    records: Vec<Box<RawValue>>,
    ctx: &Context,
    batch: &mut Batch,
) {
    for (index, raw) in records.into_iter().enumerate() {
        batch.push(index, from_notification(&raw, ctx), None);
    }
}

fn from_notification(raw: &RawValue, ctx: &Context) -> Result<Outcome, RecordError> {
    let r: S3EventRecord = serde_json::from_str(raw.get()).map_err(|e| invalid("Records[]", e))?;
    let name = r
        .event_name
        .as_deref()
        .ok_or(RecordError::Missing { field: "eventName" })?;
    let name = name.strip_prefix("s3:").unwrap_or(name);
    let Some((_, operation)) = NOTIFICATION_EVENTS.iter().find(|(n, _)| *n == name) else {
        return Ok(Outcome::Ignored(format!(
            "S3 notification {name} does not record an API call"
        )));
    };
    let encoded_key = r.s3.object.key.as_deref().ok_or(RecordError::Missing {
        field: "s3.object.key",
    })?;
    let key = decode_key(encoded_key)?;
    let request_id = r.response_elements.get("x-amz-request-id").cloned();
    ObjectEvent {
        event_name: operation,
        time: r.event_time,
        region: r
            .aws_region
            .ok_or(RecordError::Missing { field: "awsRegion" })?,
        account: ctx.account_id.clone(),
        bucket: r.s3.bucket.name.ok_or(RecordError::Missing {
            field: "s3.bucket.name",
        })?,
        key,
        version_id: r.s3.object.version_id,
        sequencer: r.s3.object.sequencer,
        size: r.s3.object.size,
        etag: r.s3.object.e_tag,
        requester: r.principal_id.principal_id,
        source_ip: r.request_parameters.source_ip_address,
        request_id,
    }
    .into_record()
}

/// The `detail` of an EventBridge S3 event.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Detail {
    bucket: DetailBucket,
    object: DetailObject,
    request_id: Option<String>,
    requester: Option<String>,
    source_ip_address: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct DetailBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DetailObject {
    key: String,
    size: Option<i64>,
    etag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

pub(super) fn from_eventbridge(event: Envelope) -> Result<Outcome, RecordError> {
    let raw = event
        .detail
        .ok_or(RecordError::Missing { field: "detail" })?;
    let d: Detail = serde_json::from_str(raw.get()).map_err(|e| invalid("detail", e))?;
    let reason = d.reason.as_deref().ok_or(RecordError::Missing {
        field: "detail.reason",
    })?;
    let Some((_, operation)) = EVENTBRIDGE_REASONS.iter().find(|(r, _)| *r == reason) else {
        return Ok(Outcome::Ignored(format!(
            "S3 {} with reason {reason:?} does not record an API call",
            event.detail_type.unwrap_or_default()
        )));
    };
    ObjectEvent {
        event_name: operation,
        time: event.time.ok_or(RecordError::Missing { field: "time" })?,
        region: event
            .region
            .ok_or(RecordError::Missing { field: "region" })?,
        account: event
            .account
            .ok_or(RecordError::Missing { field: "account" })?,
        bucket: d.bucket.name,
        key: d.object.key,
        version_id: d.object.version_id,
        sequencer: d.object.sequencer,
        size: d.object.size,
        etag: d.object.etag,
        requester: d.requester,
        source_ip: d.source_ip_address,
        request_id: d.request_id,
    }
    .into_record()
}

/// Notification keys are URL-encoded as in a form: `+` is a space.
fn decode_key(encoded: &str) -> Result<String, RecordError> {
    let plus_decoded = encoded.replace('+', " ");
    percent_decode_str(&plus_decoded)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| RecordError::Invalid {
            field: "s3.object.key".into(),
            reason: format!("not URL-encoded UTF-8: {e}"),
        })
}

/// A stable GUID for one operation on one object: the same for every
/// re-delivery and for both delivery paths.
pub fn object_event_id(
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    sequencer: Option<&str>,
) -> String {
    let mut h = crate::digest::sha256::Sha256::new();
    for part in [
        bucket,
        key,
        version_id.unwrap_or(""),
        sequencer.unwrap_or(""),
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).hyphenated().to_string()
}

/// `userIdentity` from a requester id: an IAM user (`AIDA…`), a role session
/// (`AROA…:session`), a service (`*.amazonaws.com`) or an account.
fn identity(requester: Option<String>) -> UserIdentity {
    let Some(raw) = requester else {
        return UserIdentity {
            identity_type: Some("Unknown".into()),
            ..UserIdentity::default()
        };
    };
    let principal = raw.strip_prefix("AWS:").unwrap_or(&raw).to_owned();
    let (identity_type, account_id, invoked_by) = if principal.starts_with("AIDA") {
        ("IAMUser", None, None)
    } else if principal.starts_with("AROA") {
        ("AssumedRole", None, None)
    } else if principal.ends_with(".amazonaws.com") {
        ("AWSService", None, Some(principal.clone()))
    } else if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        ("AWSAccount", Some(principal.clone()), None)
    } else {
        ("Unknown", None, None)
    };
    UserIdentity {
        identity_type: Some(identity_type.into()),
        principal_id: Some(principal),
        account_id,
        invoked_by,
        ..UserIdentity::default()
    }
}

impl ObjectEvent {
    fn into_record(self) -> Result<Outcome, RecordError> {
        if self.bucket.is_empty() {
            return Err(RecordError::Invalid {
                field: "bucket name".into(),
                reason: "must not be empty".into(),
            });
        }
        let partition = partition(&self.region);
        let event_id = object_event_id(
            &self.bucket,
            &self.key,
            self.version_id.as_deref(),
            self.sequencer.as_deref(),
        );
        let mut request = Map::new();
        request.insert("bucketName".into(), json!(self.bucket));
        request.insert("key".into(), json!(self.key));
        let response = self
            .version_id
            .as_ref()
            .map(|v| json!({ "x-amz-version-id": v }));
        let mut additional = Map::new();
        if let Some(size) = self.size {
            additional.insert("objectSize".into(), json!(size));
        }
        if let Some(etag) = &self.etag {
            additional.insert("objectETag".into(), json!(etag));
        }
        if let Some(sequencer) = &self.sequencer {
            additional.insert("sequencer".into(), json!(sequencer));
        }
        let resources = vec![
            Resource {
                arn: Some(format!("arn:{partition}:s3:::{}/{}", self.bucket, self.key)),
                resource_type: Some("AWS::S3::Object".into()),
                ..Resource::default()
            },
            Resource {
                arn: Some(format!("arn:{partition}:s3:::{}", self.bucket)),
                account_id: Some(self.account.clone()),
                resource_type: Some("AWS::S3::Bucket".into()),
                ..Resource::default()
            },
        ];
        Ok(Outcome::Record(Box::new(Record {
            user_identity: identity(self.requester),
            event_time: self.time.trunc_subsecs(0),
            event_source: "s3.amazonaws.com".into(),
            event_name: self.event_name.into(),
            aws_region: self.region,
            source_ip_address: self.source_ip,
            request_parameters: Some(Value::Object(request)),
            response_elements: response,
            additional_event_data: (!additional.is_empty()).then_some(Value::Object(additional)),
            request_id: self.request_id,
            event_id,
            read_only: Some(false),
            resources: Some(resources),
            event_type: event_type::API_CALL.into(),
            recipient_account_id: self.account,
            event_category: Some(EventCategory::Data),
            ..Record::default()
        })))
    }
}
