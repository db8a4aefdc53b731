//! Trail verbs with the AWS CLI's names and flags (`aws cloudtrail …`), and
//! JSON output shaped like CloudTrail's responses.

use clap::{ArgAction, Args, Subcommand};
use serde_json::{json, Value};
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::trail::{admin, AdminError, NewTrail, TrailUpdate};
use trailkeep_shared::trail::{EventSelector, Trail};

/// Where the trails are: the stack's state table (output `StateTableName`).
#[derive(Args, Clone, Debug)]
pub struct StateArgs {
    #[arg(long, env = "TRAILKEEP_STATE_TABLE", global = true, default_value = "")]
    pub state_table: String,
}

/// `--flag` / `--no-flag` pairs, as the AWS CLI spells booleans.
#[derive(Args, Clone, Debug, Default)]
pub struct TrailFlags {
    #[arg(long)]
    s3_key_prefix: Option<String>,
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_include_global_service_events")]
    include_global_service_events: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_include_global_service_events: bool,
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_is_multi_region_trail")]
    is_multi_region_trail: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    no_is_multi_region_trail: bool,
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
    /// Set a trail's event selectors (JSON, or file://PATH).
    PutEventSelectors {
        #[arg(long)]
        trail_name: String,
        #[arg(long)]
        event_selectors: String,
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
    #[error("the state table is not set: pass --state-table or set TRAILKEEP_STATE_TABLE (stack output StateTableName)")]
    NoTable,
    #[error("An error occurred ({code}) when calling the {operation} operation: {message}")]
    Service {
        code: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("--event-selectors: {0}")]
    Selectors(String),
    #[error("cannot find the account: sts:GetCallerIdentity failed: {0}")]
    Account(String),
}

impl TrailCliError {
    /// The AWS CLI's exit codes: 254 for a service error, 252 for bad input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Service { .. } | Self::Account(_) => 254,
            Self::NoTable | Self::Selectors(_) => 252,
        }
    }
}

fn trail_status(t: &Trail) -> Value {
    let mut v = json!({ "IsLogging": t.is_logging });
    if let Some(at) = t.start_logging_time {
        v["StartLoggingTime"] = json!(trailkeep_shared::time::format(&at));
    }
    if let Some(at) = t.stop_logging_time {
        v["StopLoggingTime"] = json!(trailkeep_shared::time::format(&at));
    }
    v
}

fn selectors_json(t: &Trail) -> Value {
    json!({ "TrailARN": t.arn(), "EventSelectors": t.event_selectors })
}

/// `--event-selectors` takes JSON or `file://PATH`, as the AWS CLI does.
fn parse_selectors(arg: &str) -> Result<Vec<EventSelector>, TrailCliError> {
    let text = match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| TrailCliError::Selectors(format!("{path}: {e}")))?,
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| TrailCliError::Selectors(e.to_string()))
}

/// `create-trail`'s flags, with the AWS CLI's defaults: global events on,
/// single-region, no validation.
fn new_trail(name: String, s3_bucket_name: String, flags: TrailFlags) -> NewTrail {
    let update = trail_update(None, flags);
    NewTrail {
        name,
        s3_bucket_name,
        s3_key_prefix: update.s3_key_prefix,
        include_global_service_events: update.include_global_service_events.unwrap_or(true),
        is_multi_region_trail: update.is_multi_region_trail.unwrap_or(false),
        log_file_validation_enabled: update.log_file_validation_enabled.unwrap_or(false),
    }
}

/// `update-trail`'s flags: what is not given stays as it is.
fn trail_update(s3_bucket_name: Option<String>, flags: TrailFlags) -> TrailUpdate {
    TrailUpdate {
        s3_bucket_name,
        s3_key_prefix: flags.s3_key_prefix,
        include_global_service_events: pick(
            flags.include_global_service_events,
            flags.no_include_global_service_events,
        ),
        is_multi_region_trail: pick(flags.is_multi_region_trail, flags.no_is_multi_region_trail),
        log_file_validation_enabled: pick(
            flags.enable_log_file_validation,
            flags.no_enable_log_file_validation,
        ),
    }
}

/// Runs one verb; prints its JSON response (nothing for the verbs whose
/// CloudTrail response is empty).
pub async fn run(state: StateArgs, cmd: TrailCommand) -> Result<(), TrailCliError> {
    if state.state_table.is_empty() {
        return Err(TrailCliError::NoTable);
    }
    let aws = trailkeep_shared::aws::sdk_config().await;
    let store = DynamoTrails::new(aws_sdk_dynamodb::Client::new(&aws), &state.state_table);
    let operation = cmd.operation();
    let service = |e: AdminError| TrailCliError::Service {
        code: e.code(),
        operation,
        message: e.to_string(),
    };
    let out: Option<Value> = match cmd {
        TrailCommand::CreateTrail {
            name,
            s3_bucket_name,
            flags,
        } => {
            let sts = aws_sdk_sts::Client::new(&aws);
            let who = sts.get_caller_identity().send().await.map_err(|e| {
                TrailCliError::Account(aws_sdk_sts::error::DisplayErrorContext(&e).to_string())
            })?;
            let account = who.account().unwrap_or_default().to_owned();
            let region = aws.region().map(|r| r.to_string()).unwrap_or_default();
            let new = new_trail(name, s3_bucket_name, flags);
            let t = admin::create(&store, &account, &region, new)
                .await
                .map_err(service)?;
            Some(t.to_cloudtrail_json())
        }
        TrailCommand::UpdateTrail {
            name,
            s3_bucket_name,
            flags,
        } => Some(
            admin::update(&store, &name, trail_update(s3_bucket_name, flags))
                .await
                .map_err(service)?
                .to_cloudtrail_json(),
        ),
        TrailCommand::DeleteTrail { name } => {
            admin::delete(&store, &name).await.map_err(service)?;
            None
        }
        TrailCommand::DescribeTrails { trail_name_list } => {
            let list = admin::describe(&store, &trail_name_list)
                .await
                .map_err(service)?;
            Some(
                json!({ "trailList": list.iter().map(Trail::to_cloudtrail_json).collect::<Vec<_>>() }),
            )
        }
        TrailCommand::GetTrail { name } => Some(
            json!({ "Trail": admin::get(&store, &name).await.map_err(service)?.to_cloudtrail_json() }),
        ),
        TrailCommand::GetTrailStatus { name } => Some(trail_status(
            &admin::get(&store, &name).await.map_err(service)?,
        )),
        TrailCommand::StartLogging { name } => {
            admin::set_logging(&store, &name, true, chrono::Utc::now())
                .await
                .map_err(service)?;
            None
        }
        TrailCommand::StopLogging { name } => {
            admin::set_logging(&store, &name, false, chrono::Utc::now())
                .await
                .map_err(service)?;
            None
        }
        TrailCommand::PutEventSelectors {
            trail_name,
            event_selectors,
        } => {
            let selectors = parse_selectors(&event_selectors)?;
            Some(selectors_json(
                &admin::put_event_selectors(&store, &trail_name, selectors)
                    .await
                    .map_err(service)?,
            ))
        }
        TrailCommand::GetEventSelectors { trail_name } => Some(selectors_json(
            &admin::get(&store, &trail_name).await.map_err(service)?,
        )),
    };
    if let Some(v) = out {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_come_as_json_or_from_a_file() {
        let json = r#"[{"ReadWriteType": "ReadOnly"}]"#;
        assert_eq!(parse_selectors(json).unwrap().len(), 1);
        let path = std::env::temp_dir().join(format!("selectors-{}.json", std::process::id()));
        std::fs::write(&path, json).unwrap();
        assert_eq!(
            parse_selectors(&format!("file://{}", path.display()))
                .unwrap()
                .len(),
            1
        );
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            parse_selectors("not json"),
            Err(TrailCliError::Selectors(_))
        ));
    }

    #[test]
    fn flag_pairs_map_to_set_unset_or_untouched() {
        assert_eq!(pick(true, false), Some(true));
        assert_eq!(pick(false, true), Some(false));
        assert_eq!(pick(false, false), None);
    }
}
