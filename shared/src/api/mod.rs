//! trailkeep's API over HTTP (docs/api.md): CloudTrail's JSON 1.1 protocol
//! (`X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>`)
//! behind the IAM-authorized function URL. It answers the trail operations
//! and LookupEvents; every other CloudTrail operation answers
//! `UnsupportedOperationException`.
//!
//! Every call that changes a trail, allowed or refused, is itself recorded
//! as a management event: in the history and in the files of every trail
//! that logs it, with the caller the function URL authenticated
//! ([`audit_record`]). `StopLogging` and `DeleteTrail` are recorded before
//! they take effect, so the trail's own files and digests carry them; a
//! change whose record cannot be written is not made.

mod ops;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::delivery::{self, StagingStore};
use crate::digest::registry::PublicKeys;
use crate::history::lookup::{self, HistoryReader, HttpResponse, LookupSettings, INTERNAL_ERROR};
use crate::history::{self, HistorySettings, HistoryStore};
use crate::ingest::normalize::Normalized;
use crate::model::{Record, UserIdentity};
use crate::store::StoreError;
use crate::trail::admin::TrailStore;
use crate::trail::{HealthStore, Trail};

/// CloudTrail's JSON 1.1 target prefix; the operation follows it.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
/// The `eventSource` of trailkeep's own API calls: not an AWS service name,
/// so no record of trailkeep's can pass for one AWS wrote.
pub const EVENT_SOURCE: &str = "trailkeep";
/// A request body larger than this is not copied into the call's record
/// (`requestParameters` is then null and `additionalEventData` says so):
/// a record is at most 256 KB.
pub const MAX_RECORDED_PARAMETERS: usize = 64 * 1024;
/// Error messages (which may quote the caller's input) are cut here, in
/// answers and records.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// Who called, as the function URL's IAM authorizer and HTTP context say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub arn: Option<String>,
    /// `callerId` (the principal ID).
    pub principal_id: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One HTTP request to the API.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub method: &'a str,
    /// `X-Amz-Target`; none means LookupEvents (the lookup URL's first clients).
    pub target: Option<&'a str>,
    pub body: &'a [u8],
    pub caller: &'a Caller,
    /// The function URL's request ID: the record's `requestID` and the seed
    /// of its `eventID`, so a retried invocation records the same event.
    pub request_id: &'a str,
    /// The request's time.
    pub now: DateTime<Utc>,
}

/// What the API needs to know of its deployment.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Who may change trails: caller ARNs, `*` matching any run of
    /// characters (`arn:aws:sts::111122223333:assumed-role/Admin/*`). Empty:
    /// nobody; reading and LookupEvents need only the function URL's IAM.
    pub trail_admins: Vec<String>,
    pub lookup: LookupSettings,
    pub history: HistorySettings,
    /// The KMS keys a trail's `KmsKeyId` may name: the stack's
    /// `LogEncryptionKeyArns`, which deliver and digest may encrypt with.
    pub log_encryption_keys: Vec<String>,
    /// The SNS topics a trail's `SnsTopicName` may name: the stack's
    /// `NotificationTopicArns`, which deliver may publish to.
    pub notification_topics: Vec<String>,
    /// The log groups a trail's `CloudWatchLogsLogGroupArn` may name: the
    /// stack's `LogGroupArns`, which deliver may write to.
    pub log_groups: Vec<String>,
    /// The organization the stack serves (`OrganizationId`): organization
    /// trails log its accounts' events (docs/organizations.md).
    pub organization_id: Option<String>,
}

impl ApiSettings {
    /// Whether a caller may change trails.
    pub fn may_change(&self, caller: Option<&str>) -> bool {
        let caller = caller.unwrap_or_default();
        self.trail_admins.iter().any(|p| glob(p, caller))
    }
}

/// `*` matches any run of characters (none included); nothing else is special.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The API over its ports.
pub struct Api<'a, T, H, S, K> {
    /// The deployment's account (`recipientAccountId`, new trails' account).
    pub account_id: &'a str,
    pub trails: &'a T,
    pub history: &'a H,
    pub staging: &'a S,
    /// The digest signing keys (`ListPublicKeys`).
    pub keys: &'a K,
    pub settings: &'a ApiSettings,
}

/// A refusal in CloudTrail's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status: 400,
            code,
            message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
        }
    }

    pub(super) fn internal(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "API call failed");
        Self {
            status: 500,
            code: "InternalFailure",
            message: INTERNAL_ERROR.into(),
        }
    }

    fn response(&self) -> HttpResponse {
        HttpResponse {
            status: self.status,
            body: json!({ "__type": self.code, "message": self.message }).to_string(),
        }
    }
}

impl From<crate::trail::AdminError> for ApiError {
    fn from(e: crate::trail::AdminError) -> Self {
        match e {
            crate::trail::AdminError::Store(s) => Self::internal(&s),
            e => Self::bad(e.code(), e.detail()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

/// The operations this API answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    LookupEvents,
    CreateTrail,
    UpdateTrail,
    DeleteTrail,
    DescribeTrails,
    GetTrail,
    ListTrails,
    GetTrailStatus,
    StartLogging,
    StopLogging,
    PutEventSelectors,
    GetEventSelectors,
    AddTags,
    RemoveTags,
    ListTags,
    ListPublicKeys,
}

impl Operation {
    const ALL: [Self; 16] = [
        Self::LookupEvents,
        Self::CreateTrail,
        Self::UpdateTrail,
        Self::DeleteTrail,
        Self::DescribeTrails,
        Self::GetTrail,
        Self::ListTrails,
        Self::GetTrailStatus,
        Self::StartLogging,
        Self::StopLogging,
        Self::PutEventSelectors,
        Self::GetEventSelectors,
        Self::AddTags,
        Self::RemoveTags,
        Self::ListTags,
        Self::ListPublicKeys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::LookupEvents => "LookupEvents",
            Self::CreateTrail => "CreateTrail",
            Self::UpdateTrail => "UpdateTrail",
            Self::DeleteTrail => "DeleteTrail",
            Self::DescribeTrails => "DescribeTrails",
            Self::GetTrail => "GetTrail",
            Self::ListTrails => "ListTrails",
            Self::GetTrailStatus => "GetTrailStatus",
            Self::StartLogging => "StartLogging",
            Self::StopLogging => "StopLogging",
            Self::PutEventSelectors => "PutEventSelectors",
            Self::GetEventSelectors => "GetEventSelectors",
            Self::AddTags => "AddTags",
            Self::RemoveTags => "RemoveTags",
            Self::ListTags => "ListTags",
            Self::ListPublicKeys => "ListPublicKeys",
        }
    }

    /// The names of every operation the API answers.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|op| op.name()).collect()
    }

    /// The operation an `X-Amz-Target` names.
    pub fn from_target(target: &str) -> Result<Self, ApiError> {
        let name = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
            ApiError::bad(
                "UnknownOperationException",
                format!(
                    "{} is not a CloudTrail operation",
                    crate::ingest::normalize::quote_prefix(target)
                ),
            )
        })?;
        Self::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| {
                ApiError::bad(
                    "UnsupportedOperationException",
                    format!(
                        "{} is not supported by trailkeep",
                        crate::ingest::normalize::quote_prefix(name)
                    ),
                )
            })
    }

    /// Whether the operation changes a trail (and so is recorded).
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Self::CreateTrail
                | Self::UpdateTrail
                | Self::DeleteTrail
                | Self::StartLogging
                | Self::StopLogging
                | Self::PutEventSelectors
                | Self::AddTags
                | Self::RemoveTags
        )
    }
}

impl<T, H, S, K> Api<'_, T, H, S, K>
where
    T: TrailStore,
    H: HistoryStore + HistoryReader,
    S: StagingStore + HealthStore,
    K: PublicKeys,
{
    /// Answers one HTTP request. Errors are AWS JSON protocol errors
    /// (`{"__type", "message"}`), 400 for the caller's, 500 ("internal
    /// error" and nothing more; the detail goes to the log) for the stores'.
    pub async fn http(&self, call: &Call<'_>) -> HttpResponse {
        if !call.method.eq_ignore_ascii_case("POST") {
            return ApiError {
                status: 405,
                code: "MethodNotAllowedException",
                message: format!(
                    "{} is not allowed: POST a CloudTrail request",
                    crate::ingest::normalize::quote_prefix(call.method)
                ),
            }
            .response();
        }
        let op = match call.target.map(Operation::from_target) {
            None => Operation::LookupEvents,
            Some(Ok(op)) => op,
            Some(Err(e)) => return e.response(),
        };
        if op == Operation::LookupEvents {
            let settings = lookup::LookupSettings {
                account_id: self.account_id.to_owned(),
                ..self.settings.lookup.clone()
            };
            return lookup::http(
                self.history,
                &settings,
                call.method,
                Some(lookup::TARGET),
                call.body,
                &call.now,
            )
            .await;
        }
        let params = match parse_body(call.body) {
            Ok(p) => p,
            Err(e) => return e.response(),
        };
        let answer = match op {
            op if op.is_change() => self.change(op, &params, call).await,
            Operation::GetTrailStatus => self.status(&params).await,
            Operation::ListPublicKeys => ops::public_keys(self.keys, &params).await,
            op => ops::read(self.trails, op, &params).await,
        };
        match answer {
            Ok(body) => HttpResponse {
                status: 200,
                body: body.to_string(),
            },
            Err(e) => e.response(),
        }
    }

    /// A change, recorded. `StopLogging` and `DeleteTrail` are recorded
    /// first (while the trail still logs), the others once their outcome is
    /// known; a refusal is recorded with its error code.
    async fn change(
        &self,
        op: Operation,
        params: &Value,
        call: &Call<'_>,
    ) -> Result<Value, ApiError> {
        let before = self.trails.load().await?.trails;
        // Who may change trails: the `TRAIL_ADMIN_ARNS` patterns (a reader
        // of the history may not). A refusal is recorded like any other.
        if !self.settings.may_change(call.caller.arn.as_deref()) {
            let e = ApiError::bad(
                "AccessDeniedException",
                format!(
                    "{} may not change trails (the stack's TrailAdminArns)",
                    call.caller
                        .arn
                        .as_deref()
                        .unwrap_or("an unauthenticated caller")
                ),
            );
            self.record(op, params, call, Some(&e), None, &[&before])
                .await?;
            return Err(e);
        }
        if matches!(op, Operation::StopLogging | Operation::DeleteTrail) {
            let name = ops::name_param(params, "Name");
            // The trail as loaded above: no second read.
            let found = name.and_then(|n| {
                crate::trail::admin::find(&before, &n)
                    .map(|_| ())
                    .map_err(ApiError::from)
            });
            if let Err(e) = found {
                self.record(op, params, call, Some(&e), None, &[&before])
                    .await?;
                return Err(e);
            }
            self.record(op, params, call, None, None, &[&before])
                .await?;
            let done = ops::change(self.trails, op, params, &self.home(), call.now).await;
            if let Err(e) = &done {
                // The attempt is already recorded as made: its failure too.
                self.record(op, params, call, Some(e), None, &[&before])
                    .await?;
            }
            return done;
        }
        let done = ops::change(self.trails, op, params, &self.home(), call.now).await;
        // Staged for the trails as they were and as they are: a change that
        // silences a trail (selectors, bucket) is in that trail's files too,
        // and one that starts it is in its first ones.
        let after = match &done {
            Ok(_) => self
                .trails
                .load()
                .await
                .map(|s| s.trails)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let response = done.as_ref().ok().filter(|_| op == Operation::CreateTrail);
        let error = done.as_ref().err();
        let recorded = self
            .record(op, params, call, error, response, &[&before, &after])
            .await;
        if let (Err(e), Ok(_)) = (&recorded, &done) {
            tracing::error!(
                alarm = "ApiCallNotRecorded",
                operation = op.name(),
                caller = ?call.caller.arn,
                request_id = call.request_id,
                "the change was made but its record could not be written: {}",
                e.message
            );
        }
        recorded?;
        done
    }

    /// `GetTrailStatus`: the trail, and what deliver and digest last did.
    async fn status(&self, params: &Value) -> Result<Value, ApiError> {
        let trail =
            crate::trail::admin::get(self.trails, &ops::name_param(params, "Name")?).await?;
        let health = self.staging.health(&trail.name).await?;
        Ok(ops::status_response(&trail, &health))
    }

    fn home(&self) -> ops::Home<'_> {
        ops::Home {
            account_id: self.account_id,
            region: &self.settings.lookup.home_region,
            log_keys: &self.settings.log_encryption_keys,
            topics: &self.settings.notification_topics,
            log_groups: &self.settings.log_groups,
            organization_id: self.settings.organization_id.as_deref(),
        }
    }

    /// Records the call in the history and stages it for the trails of
    /// each set in `trails` that log it (staging twice is one item). A store
    /// failure fails the call (500).
    async fn record(
        &self,
        op: Operation,
        params: &Value,
        call: &Call<'_>,
        error: Option<&ApiError>,
        response: Option<&Value>,
        trails: &[&[Trail]],
    ) -> Result<(), ApiError> {
        let record = audit_record(
            &AuditedCall {
                op,
                params,
                call,
                error,
                response,
            },
            self.account_id,
            &self.settings.lookup.home_region,
        );
        let json = serde_json::to_string(&record).map_err(|e| ApiError::internal(&e))?;
        let event = Normalized {
            index: 0,
            record,
            json,
        };
        let window = delivery::window_of(&call.now);
        let (_, note) =
            history::record_noting(self.history, &self.settings.history, &event, Some(window))
                .await?;
        for set in trails {
            delivery::stage_noted(
                self.staging,
                set,
                &event.record,
                &event.json,
                &call.now,
                note,
            )
            .await?;
        }
        Ok(())
    }
}

/// The request body as a JSON object (`{}` when empty).
fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ApiError::bad(
            "SerializationException",
            "the request body is not a JSON object",
        )),
    }
}

/// What a recorded call consists of.
pub struct AuditedCall<'a> {
    pub op: Operation,
    pub params: &'a Value,
    pub call: &'a Call<'a>,
    pub error: Option<&'a ApiError>,
    pub response: Option<&'a Value>,
}

/// The management event that records an API call, as CloudTrail records
/// its own: `eventSource` [`EVENT_SOURCE`], `eventName` the operation, the
/// caller's identity, address and agent, the request's parameters, and the
/// error when refused. `eventType` is `ApplicationEvent`: trailkeep is not
/// an AWS service (docs/normalization.md).
pub fn audit_record(a: &AuditedCall<'_>, account_id: &str, region: &str) -> Record {
    let caller = a.call.caller;
    let identity_type = caller.arn.as_deref().map(|arn| {
        if arn.contains(":assumed-role/") {
            "AssumedRole"
        } else if arn.ends_with(":root") {
            "Root"
        } else if arn.contains(":user/") {
            "IAMUser"
        } else {
            "Unknown"
        }
    });
    let (request_parameters, additional) = {
        let size = a.call.body.len();
        if size <= MAX_RECORDED_PARAMETERS {
            (Some(a.params.clone()), None)
        } else {
            (
                None,
                Some(json!({ "requestParametersOmitted": format!("{size} bytes") })),
            )
        }
    };
    let mut record = Record {
        user_identity: UserIdentity {
            identity_type: identity_type.map(str::to_owned),
            principal_id: caller.principal_id.clone(),
            arn: caller.arn.clone(),
            account_id: caller.account_id.clone(),
            access_key_id: caller.access_key_id.clone(),
            ..UserIdentity::default()
        },
        event_time: a.call.now,
        event_source: EVENT_SOURCE.into(),
        event_name: a.op.name().into(),
        aws_region: region.into(),
        source_ip_address: caller.source_ip.clone(),
        user_agent: caller.user_agent.clone(),
        error_code: a.error.map(|e| e.code.to_owned()),
        error_message: a
            .error
            .map(|e| e.message.chars().take(MAX_MESSAGE_CHARS).collect()),
        request_parameters,
        response_elements: a.response.cloned(),
        additional_event_data: additional,
        request_id: Some(a.call.request_id.to_owned()),
        // The outcome is part of the seed: a retry of a request whose first
        // attempt failed records its own outcome beside the failure.
        event_id: event_id(a.call.request_id, a.error.map_or("ok", |e| e.code)),
        event_type: crate::model::event_type::APPLICATION.into(),
        recipient_account_id: account_id.into(),
        ..Record::default()
    };
    crate::ingest::classify::classify(&mut record);
    record
}

/// A UUID derived from the request ID and the record's phase: a retried
/// invocation of the same request records the same event, once.
fn event_id(request_id: &str, phase: &str) -> String {
    let mut h = crate::digest::sha256::Sha256::new();
    h.update(request_id.as_bytes());
    h.update(b"#");
    h.update(phase.as_bytes());
    let digest = h.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}
