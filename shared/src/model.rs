//! The event record: one CloudTrail-format JSON object per event.
//!
//! Field names and order follow CloudTrail's record (docs/normalization.md). Fields a
//! source sends that the model does not name are kept in `extra` and written
//! back out unchanged, so nothing a source says is dropped.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record format version trailkeep writes.
pub const EVENT_VERSION: &str = "1.11";

/// CloudTrail refuses events larger than 256 KB; so does trailkeep.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The `eventTime` of a record whose source did not give one (yet).
pub const UNSET_TIME: DateTime<Utc> = DateTime::<Utc>::MIN_UTC;

fn unset_time() -> DateTime<Utc> {
    UNSET_TIME
}

/// `eventType` values CloudTrail defines (docs/normalization.md).
pub mod event_type {
    pub const API_CALL: &str = "AwsApiCall";
    pub const SERVICE_EVENT: &str = "AwsServiceEvent";
    pub const CONSOLE_ACTION: &str = "AwsConsoleAction";
    pub const CONSOLE_SIGN_IN: &str = "AwsConsoleSignIn";
    pub const ALL: [&str; 4] = [API_CALL, SERVICE_EVENT, CONSOLE_ACTION, CONSOLE_SIGN_IN];
    /// trailkeep's own: an application's audit event (from the audit bus,
    /// any non-`aws.` source). Never one of CloudTrail's four, so no tool
    /// can take it for a record AWS wrote (docs/normalization.md).
    pub const APPLICATION: &str = "ApplicationEvent";
}

/// `eventCategory`: management (control plane) or data (object level, invocations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventCategory {
    #[default]
    Management,
    Data,
}

/// One event, in CloudTrail's record shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(default)]
    pub event_version: String,
    #[serde(default)]
    pub user_identity: UserIdentity,
    /// [`UNSET_TIME`] only while a record is being normalized and the
    /// source has not said; normalization fills it or refuses the record.
    #[serde(with = "crate::time::serde_event_time", default = "unset_time")]
    pub event_time: DateTime<Utc>,
    pub event_source: String,
    pub event_name: String,
    /// Empty only while a record is being normalized (the envelope fills it).
    #[serde(default)]
    pub aws_region: String,
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Always written, `null` when absent, as CloudTrail does.
    #[serde(default)]
    pub request_parameters: Option<Value>,
    /// Always written, `null` when absent, as CloudTrail does.
    #[serde(default)]
    pub response_elements: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Empty only while a record is being normalized (the envelope fills it).
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    /// `None` only while a record is being normalized; classification fills it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Resource>>,
    #[serde(default)]
    pub event_type: String,
    /// `None` only while a record is being normalized; classification fills it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_event: Option<bool>,
    #[serde(default)]
    pub recipient_account_id: String,
    #[serde(
        rename = "sharedEventID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    /// `None` only while a record is being normalized; classification fills it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_category: Option<EventCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<Value>,
    /// Fields the model does not name, kept as the source sent them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `userIdentity`: who made the request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// `{attributes{creationDate, mfaAuthenticated}, sessionIssuer{…}}`, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `resources`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "ARN", default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(rename = "accountId", default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Record {
    /// The category the record states, else the one the classification
    /// rules give (an AWS record before 1.07 has no `eventCategory`).
    pub fn category(&self) -> EventCategory {
        self.event_category.unwrap_or_else(|| {
            if crate::ingest::classify::is_data_event(&self.event_source, &self.event_name) {
                EventCategory::Data
            } else {
                EventCategory::Management
            }
        })
    }

    /// `readOnly` as the record states it, else by the operation's name.
    pub fn is_read_only(&self) -> bool {
        self.read_only
            .unwrap_or_else(|| crate::ingest::classify::is_read_only_name(&self.event_name))
    }

    /// The user name LookupEvents reports and filters on: `userIdentity.userName`,
    /// else the role session name of an assumed role (the ARN's last segment),
    /// else `root` for the root user, else the invoking service.
    pub fn lookup_username(&self) -> Option<&str> {
        let id = &self.user_identity;
        if let Some(name) = id.user_name.as_deref().filter(|n| !n.is_empty()) {
            return Some(name);
        }
        match id.identity_type.as_deref() {
            Some("AssumedRole") => id
                .arn
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .filter(|s| !s.is_empty()),
            Some("Root") => Some("root"),
            Some("AWSService") => id.invoked_by.as_deref(),
            _ => None,
        }
    }
}
