//! Trail verbs with the AWS CLI's names and flags (`aws cloudtrail …`),
//! calling trailkeep's API (stack output `ApiUrl`, SigV4-signed): the only
//! way trails change, so every change is recorded as an event
//! (docs/api.md). Output: CloudTrail's response JSON.

use clap::{ArgAction, Args, Subcommand};
use serde_json::{json, Value};
use trailkeep_shared::trail::{AdvancedEventSelector, EventSelector};

use crate::api_client::{ApiCallError, ApiClient};

/// The stack's state table (output `StateTableName`), which validation reads.
#[derive(Args, Clone, Debug)]
pub struct StateArgs {
    #[arg(long, env = "TRAILKEEP_STATE_TABLE", global = true, default_value = "")]
    pub state_table: String,
}

/// trailkeep's API (output `ApiUrl`), which the trail verbs call.
#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    #[arg(long, env = "TRAILKEEP_API_URL", global = true, default_value = "")]
    pub api_url: String,
}

/// `--flag` / `--no-flag` pairs, as the AWS CLI spells booleans.
#[derive(Args, Clone, Debug, Default)]
pub struct TrailFlags {
    #[arg(long)]
    s3_key_prefix: Option<String>,
    /// KMS key for SSE-KMS of log and digest files (key ID, key ARN, alias
    /// name or alias ARN; one of the stack's LogEncryptionKeyArns). "" on
    /// update-trail removes it.
    #[arg(long)]
    kms_key_id: Option<String>,
    /// SNS topic (name or ARN; one of the stack's NotificationTopicArns)
    /// notified of each log file. "" on update-trail removes it.
    #[arg(long)]
    sns_topic_name: Option<String>,
    /// CloudWatch Logs group (ARN, one of the stack's LogGroupArns) that
    /// receives every delivered event; with --cloud-watch-logs-role-arn.
    /// "" for both on update-trail removes it.
    #[arg(long)]
    cloud_watch_logs_log_group_arn: Option<String>,
    /// IAM role ARN given with the log group (kept for CloudTrail's tools;
    /// deliver writes with its own role).
    #[arg(long)]
    cloud_watch_logs_role_arn: Option<String>,
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_include_global_service_events")]
    include_global_service_events: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_include_global_service_events: bool,
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_is_multi_region_trail")]
    is_multi_region_trail: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_is_multi_region_trail: bool,
    /// Log every account of the stack's organization (OrganizationId),
    /// under AWSLogs/o-…/ACCOUNT/ (docs/organizations.md).
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_is_organization_trail")]
    is_organization_trail: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_is_organization_trail: bool,
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_enable_log_file_validation")]
    enable_log_file_validation: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_enable_log_file_validation: bool,
}

fn pick(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

#[derive(Subcommand, Debug)]
pub enum TrailCommand {
    /// Create a trail (it logs once started with start-logging).
    CreateTrail {
        #[arg(long)]
        name: String,
        #[arg(long)]
        s3_bucket_name: String,
        #[command(flatten)]
        flags: TrailFlags,
    },
    /// Change a trail's settings; options not given stay as they are.
    UpdateTrail {
        #[arg(long)]
        name: String,
        #[arg(long)]
        s3_bucket_name: Option<String>,
        #[command(flatten)]
        flags: TrailFlags,
    },
    /// Delete a trail (its log files stay in the bucket).
    DeleteTrail {
        #[arg(long)]
        name: String,
    },
    /// Describe the named trails, or all.
    DescribeTrails {
        #[arg(long, num_args = 1..)]
        trail_name_list: Vec<String>,
    },
    /// Describe one trail.
    GetTrail {
        #[arg(long)]
        name: String,
    },
    /// Whether a trail is logging.
    GetTrailStatus {
        #[arg(long)]
        name: String,
    },
    /// Start logging.
    StartLogging {
        #[arg(long)]
        name: String,
    },
    /// Stop logging.
    StopLogging {
        #[arg(long)]
        name: String,
    },
    /// Set a trail's event selectors, basic or advanced (JSON, or
    /// file://PATH); either kind replaces the other.
    PutEventSelectors {
        #[arg(long)]
        trail_name: String,
        #[arg(long, required_unless_present = "advanced_event_selectors")]
        event_selectors: Option<String>,
        #[arg(long, conflicts_with = "event_selectors")]
        advanced_event_selectors: Option<String>,
    },
    /// Show a trail's event selectors.
    GetEventSelectors {
        #[arg(long)]
        trail_name: String,
    },
}

impl TrailCommand {
    /// The CloudTrail operation, for error messages.
    fn operation(&self) -> &'static str {
        match self {
            Self::CreateTrail { .. } => "CreateTrail",
            Self::UpdateTrail { .. } => "UpdateTrail",
            Self::DeleteTrail { .. } => "DeleteTrail",
            Self::DescribeTrails { .. } => "DescribeTrails",
            Self::GetTrail { .. } => "GetTrail",
            Self::GetTrailStatus { .. } => "GetTrailStatus",
            Self::StartLogging { .. } => "StartLogging",
            Self::StopLogging { .. } => "StopLogging",
            Self::PutEventSelectors { .. } => "PutEventSelectors",
            Self::GetEventSelectors { .. } => "GetEventSelectors",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrailCliError {
    #[error(
        "the API URL is not set: pass --api-url or set TRAILKEEP_API_URL (stack output ApiUrl)"
    )]
    NoApi,
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error("--event-selectors: {0}")]
    Selectors(String),
}

impl TrailCliError {
    /// The AWS CLI's exit codes: 254 for a service error, 252 for bad input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api(e) => e.exit_code(),
            Self::NoApi | Self::Selectors(_) => 252,
        }
    }
}

/// The AWS CLI prints timestamps as ISO 8601; the API sends epoch seconds.
fn iso_times(mut v: Value, members: &[&str]) -> Value {
    for m in members {
        if let Some(t) = v[*m]
            .as_i64()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        {
            v[*m] = json!(trailkeep_shared::time::format(&t));
        }
    }
    v
}

/// `--event-selectors` takes JSON or `file://PATH`, as the AWS CLI does.
fn parse_selectors<T: serde::de::DeserializeOwned>(arg: &str) -> Result<T, TrailCliError> {
    let text = match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| TrailCliError::Selectors(format!("{path}: {e}")))?,
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| TrailCliError::Selectors(e.to_string()))
}

/// `--flag`/`--no-flag` pairs into the request members they set (absent:
/// the API's default, or unchanged on update).
fn flag_members(flags: &TrailFlags) -> Value {
    let mut b = json!({});
    if let Some(p) = &flags.s3_key_prefix {
        b["S3KeyPrefix"] = json!(p);
    }
    if let Some(k) = &flags.kms_key_id {
        b["KmsKeyId"] = json!(k);
    }
    if let Some(t) = &flags.sns_topic_name {
        b["SnsTopicName"] = json!(t);
    }
    if let Some(g) = &flags.cloud_watch_logs_log_group_arn {
        b["CloudWatchLogsLogGroupArn"] = json!(g);
    }
    if let Some(r) = &flags.cloud_watch_logs_role_arn {
        b["CloudWatchLogsRoleArn"] = json!(r);
    }
    for (member, on, off) in [
        (
            "IncludeGlobalServiceEvents",
            flags.include_global_service_events,
            flags.no_include_global_service_events,
        ),
        (
            "IsMultiRegionTrail",
            flags.is_multi_region_trail,
            flags.no_is_multi_region_trail,
        ),
        (
            "IsOrganizationTrail",
            flags.is_organization_trail,
            flags.no_is_organization_trail,
        ),
        (
            "EnableLogFileValidation",
            flags.enable_log_file_validation,
            flags.no_enable_log_file_validation,
        ),
    ] {
        if let Some(v) = pick(on, off) {
            b[member] = json!(v);
        }
    }
    b
}

/// The operation and request body a verb makes.
fn request(cmd: TrailCommand) -> Result<(&'static str, Value), TrailCliError> {
    let operation = cmd.operation();
    let body = match cmd {
        TrailCommand::CreateTrail {
            name,
            s3_bucket_name,
            flags,
        } => {
            let mut b = flag_members(&flags);
            b["Name"] = json!(name);
            b["S3BucketName"] = json!(s3_bucket_name);
            b
        }
        TrailCommand::UpdateTrail {
            name,
            s3_bucket_name,
            flags,
        } => {
            let mut b = flag_members(&flags);
            b["Name"] = json!(name);
            if let Some(bucket) = s3_bucket_name {
                b["S3BucketName"] = json!(bucket);
            }
            b
        }
        TrailCommand::DescribeTrails { trail_name_list } if trail_name_list.is_empty() => json!({}),
        TrailCommand::DescribeTrails { trail_name_list } => {
            json!({ "trailNameList": trail_name_list })
        }
        TrailCommand::DeleteTrail { name }
        | TrailCommand::GetTrail { name }
        | TrailCommand::GetTrailStatus { name }
        | TrailCommand::StartLogging { name }
        | TrailCommand::StopLogging { name } => json!({ "Name": name }),
        TrailCommand::PutEventSelectors {
            trail_name,
            event_selectors,
            advanced_event_selectors,
        } => match (event_selectors, advanced_event_selectors) {
            (_, Some(advanced)) => {
                let selectors: Vec<AdvancedEventSelector> = parse_selectors(&advanced)?;
                json!({ "TrailName": trail_name, "AdvancedEventSelectors": selectors })
            }
            (basic, None) => {
                let selectors: Vec<EventSelector> =
                    parse_selectors(basic.as_deref().unwrap_or("[]"))?;
                json!({ "TrailName": trail_name, "EventSelectors": selectors })
            }
        },
        TrailCommand::GetEventSelectors { trail_name } => json!({ "TrailName": trail_name }),
    };
    Ok((operation, body))
}

/// Runs one verb through the API; prints its JSON response (nothing for
/// the verbs whose CloudTrail response is empty).
pub async fn run(api: ApiArgs, cmd: TrailCommand) -> Result<(), TrailCliError> {
    if api.api_url.is_empty() {
        return Err(TrailCliError::NoApi);
    }
    let (operation, body) = request(cmd)?;
    let client = ApiClient::new(&api.api_url).await?;
    let out = client.call(operation, &body).await?;
    let out = iso_times(
        out,
        &[
            "StartLoggingTime",
            "StopLoggingTime",
            "LatestDeliveryTime",
            "LatestDigestDeliveryTime",
        ],
    );
    if out.as_object().is_some_and(|o| !o.is_empty()) {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_come_as_json_or_from_a_file() {
        let json = r#"[{"ReadWriteType": "ReadOnly"}]"#;
        assert_eq!(
            parse_selectors::<Vec<EventSelector>>(json).unwrap().len(),
            1
        );
        let path = std::env::temp_dir().join(format!("selectors-{}.json", std::process::id()));
        std::fs::write(&path, json).unwrap();
        assert_eq!(
            parse_selectors::<Vec<EventSelector>>(&format!("file://{}", path.display()))
                .unwrap()
                .len(),
            1
        );
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            parse_selectors::<Vec<EventSelector>>("not json"),
            Err(TrailCliError::Selectors(_))
        ));
    }

    #[test]
    fn flag_pairs_map_to_set_unset_or_untouched() {
        assert_eq!(pick(true, false), Some(true));
        assert_eq!(pick(false, true), Some(false));
        assert_eq!(pick(false, false), None);
    }

    #[test]
    fn verbs_become_cloudtrail_requests() {
        let flags = TrailFlags {
            is_multi_region_trail: true,
            is_organization_trail: true,
            no_include_global_service_events: true,
            ..TrailFlags::default()
        };
        let (op, body) = request(TrailCommand::CreateTrail {
            name: "audit".into(),
            s3_bucket_name: "logs".into(),
            flags,
        })
        .unwrap();
        assert_eq!(op, "CreateTrail");
        assert_eq!(
            body,
            json!({"Name": "audit", "S3BucketName": "logs", "IsMultiRegionTrail": true,
                   "IsOrganizationTrail": true, "IncludeGlobalServiceEvents": false})
        );
        let (op, body) = request(TrailCommand::UpdateTrail {
            name: "audit".into(),
            s3_bucket_name: None,
            flags: TrailFlags::default(),
        })
        .unwrap();
        assert_eq!((op, body), ("UpdateTrail", json!({"Name": "audit"})));
        let (_, body) = request(TrailCommand::UpdateTrail {
            name: "audit".into(),
            s3_bucket_name: None,
            flags: TrailFlags {
                kms_key_id: Some("alias/trail-logs".into()),
                sns_topic_name: Some(String::new()),
                cloud_watch_logs_log_group_arn: Some(
                    "arn:aws:logs:eu-west-1:1:log-group:g:*".into(),
                ),
                cloud_watch_logs_role_arn: Some(String::new()),
                ..TrailFlags::default()
            },
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"Name": "audit", "KmsKeyId": "alias/trail-logs", "SnsTopicName": "",
                   "CloudWatchLogsLogGroupArn": "arn:aws:logs:eu-west-1:1:log-group:g:*",
                   "CloudWatchLogsRoleArn": ""})
        );
        let (op, body) = request(TrailCommand::PutEventSelectors {
            trail_name: "audit".into(),
            event_selectors: Some(r#"[{"ReadWriteType": "WriteOnly"}]"#.into()),
            advanced_event_selectors: None,
        })
        .unwrap();
        assert_eq!(op, "PutEventSelectors");
        assert_eq!(body["EventSelectors"][0]["ReadWriteType"], "WriteOnly");
        let advanced =
            r#"[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]"#;
        let (_, body) = request(TrailCommand::PutEventSelectors {
            trail_name: "audit".into(),
            event_selectors: None,
            advanced_event_selectors: Some(advanced.into()),
        })
        .unwrap();
        assert_eq!(
            body["AdvancedEventSelectors"],
            serde_json::from_str::<Value>(advanced).unwrap()
        );
        assert!(body.get("EventSelectors").is_none());
        // A misspelt operator is refused here, before any request.
        assert!(request(TrailCommand::PutEventSelectors {
            trail_name: "audit".into(),
            event_selectors: None,
            advanced_event_selectors: Some(
                r#"[{"FieldSelectors": [{"Field": "eventCategory", "Equal": ["Data"]}]}]"#.into()
            ),
        })
        .is_err());
        assert_eq!(
            iso_times(
                json!({"StartLoggingTime": 1795489200}),
                &["StartLoggingTime"]
            ),
            json!({"StartLoggingTime": "2026-11-24T03:00:00Z"})
        );
    }
}
