//! `lookup-events` and `export-history` (docs/lookup.md): through the
//! deployed endpoint (`--endpoint-url`, stack output `LookupUrl`; requests
//! SigV4-signed with the caller's credentials), or reading the history table
//! directly (`--history-table`, stack output `HistoryTableName`).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::history::lookup::{self, LookupError, LookupSettings};

use crate::api_client::{ApiCallError, ApiClient};

#[derive(Args, Debug, Clone)]
pub struct Query {
    /// The lookup endpoint (stack output LookupUrl): IAM-signed requests.
    #[arg(long, env = "TRAILKEEP_LOOKUP_URL", conflicts_with = "history_table")]
    endpoint_url: Option<String>,
    /// Or read the history table directly (stack output HistoryTableName).
    #[arg(long, env = "TRAILKEEP_HISTORY_TABLE")]
    history_table: Option<String>,
    /// `AttributeKey=K,AttributeValue=V`, as the AWS CLI takes it.
    #[arg(long)]
    lookup_attributes: Option<String>,
    /// ISO 8601 or epoch seconds (default: the retention window).
    #[arg(long)]
    start_time: Option<String>,
    #[arg(long)]
    end_time: Option<String>,
    /// The history's region, among those the deployment serves (default:
    /// the deployment's, or with --history-table the configured region).
    #[arg(long)]
    region: Option<String>,
    /// A member account's history, on a stack that serves an organization
    /// (default: the stack's own account). With --history-table, name
    /// member accounts only: the stack's own history is the default.
    #[arg(long)]
    account_id: Option<String>,
    /// Days the history keeps events (the default start time).
    #[arg(long, default_value_t = 90)]
    retention_days: u32,
    /// With --history-table: at least the stack's HistoryShards (reading
    /// more shards than the history was written with only costs a few more
    /// reads; fewer misses events). Default: the most a stack can have.
    #[arg(long, env = "TRAILKEEP_HISTORY_SHARDS", default_value_t = trailkeep_shared::history::MAX_SHARDS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(trailkeep_shared::history::MAX_SHARDS)))]
    history_shards: u32,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum LookupCommand {
    /// LookupEvents, following pages (as `aws cloudtrail lookup-events`).
    LookupEvents {
        #[command(flatten)]
        query: Query,
        /// Events per request (1-50).
        #[arg(long)]
        max_results: Option<i64>,
        /// Stop after this many events and print a NextToken.
        #[arg(long)]
        max_items: Option<usize>,
        /// Go on from a NextToken printed before.
        #[arg(long)]
        starting_token: Option<String>,
    },
    /// Every event of a range (and attribute) as CSV (the console download's
    /// columns, formula cells neutralised) or JSON (`{"Records": […]}`).
    ExportHistory {
        #[command(flatten)]
        query: Query,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LookupCliError {
    #[error("An error occurred ({code}) when calling the LookupEvents operation: {source}", code = .0.code(), source = .0)]
    Lookup(#[from] LookupError),
    #[error("--lookup-attributes: expected AttributeKey=K,AttributeValue=V, got {0:?}")]
    Attributes(String),
    #[error("pass --endpoint-url (TRAILKEEP_LOOKUP_URL, stack output LookupUrl) or --history-table (TRAILKEEP_HISTORY_TABLE)")]
    NoSource,
    /// An error answer of the endpoint, or no answer.
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Csv(#[from] csv::Error),
}

impl LookupCliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Lookup(e) if e.status() < 500 => 252,
            Self::Attributes(_) | Self::NoSource => 252,
            Self::Api(e) => e.exit_code(),
            _ => 254,
        }
    }
}

/// The request body the flags describe.
fn body(
    query: &Query,
    max_results: Option<i64>,
    token: Option<&str>,
) -> Result<Value, LookupCliError> {
    let mut b = json!({});
    if let Some(a) = &query.lookup_attributes {
        let mut key = None;
        let mut value = None;
        for part in a.split(',') {
            match part.split_once('=') {
                Some(("AttributeKey", k)) => key = Some(k),
                Some(("AttributeValue", v)) => value = Some(v),
                _ => return Err(LookupCliError::Attributes(a.clone())),
            }
        }
        b["LookupAttributes"] = json!([{ "AttributeKey": key, "AttributeValue": value }]);
    }
    if let Some(t) = &query.start_time {
        b["StartTime"] = json!(crate::validate::parse_time(t)
            .map_err(|e| LookupError::InvalidTimeRange(e.to_string()))?
            .timestamp());
    }
    if let Some(t) = &query.end_time {
        b["EndTime"] = json!(crate::validate::parse_time(t)
            .map_err(|e| LookupError::InvalidTimeRange(e.to_string()))?
            .timestamp());
    }
    if let Some(m) = max_results {
        b["MaxResults"] = json!(m);
    }
    if let Some(r) = &query.region {
        // trailkeep's extension: the history region among those served.
        b["Region"] = json!(r);
    }
    if let Some(a) = &query.account_id {
        // trailkeep's extension: another account's history (organizations).
        b["AccountId"] = json!(a);
    }
    if let Some(t) = token {
        b["NextToken"] = json!(t);
    }
    Ok(b)
}

/// Where pages come from.
enum Backend {
    Table {
        reader: DynamoHistory,
        settings: LookupSettings,
        now: chrono::DateTime<chrono::Utc>,
    },
    Http(Box<ApiClient>),
}

impl Backend {
    async fn new(query: &Query) -> Result<Self, LookupCliError> {
        if let Some(url) = &query.endpoint_url {
            return Ok(Self::Http(Box::new(ApiClient::new(url).await?)));
        }
        let aws = trailkeep_shared::aws::sdk_config().await;
        let table = query
            .history_table
            .clone()
            .ok_or(LookupCliError::NoSource)?;
        let region = query
            .region
            .clone()
            .or_else(|| aws.region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".into());
        let settings = LookupSettings {
            // Whoever may read the table reads any account's partitions.
            account_id: String::new(),
            organization: true,
            home_region: region.clone(),
            served_regions: vec![region],
            retention_days: query.retention_days,
            // Tokens of direct reads only travel between runs of this command.
            token_key: Sha256::digest(format!("trailkeep-cli:{table}")).to_vec(),
            shards: query.history_shards,
        };
        Ok(Self::Table {
            reader: DynamoHistory::new(aws_sdk_dynamodb::Client::new(&aws), &table),
            settings,
            now: chrono::Utc::now(),
        })
    }

    /// One LookupEvents call: the response JSON (`Events`, `NextToken`).
    async fn call(&self, body: &Value) -> Result<Value, LookupCliError> {
        match self {
            Self::Table {
                reader,
                settings,
                now,
            } => {
                let request = lookup::parse_request(body.to_string().as_bytes(), settings, now)?;
                let page = lookup::lookup(reader, &request, settings, now).await?;
                Ok(lookup::response_json(&page))
            }
            Self::Http(api) => Ok(api.call("LookupEvents", body).await?),
        }
    }
}

/// Reads pages until `limit` events or the end; hands each event (the
/// LookupEvents output shape) to `each`. Returns the token to go on with,
/// if stopped early.
async fn pages(
    query: &Query,
    max_results: Option<i64>,
    limit: Option<usize>,
    starting_token: Option<String>,
    mut each: impl FnMut(&Value) -> Result<(), LookupCliError>,
) -> Result<Option<String>, LookupCliError> {
    let backend = Backend::new(query).await?;
    let (mut token, mut seen) = (starting_token, 0usize);
    loop {
        // Never read past --max-items, so the token resumes exactly.
        let page_size = match (limit, max_results) {
            (Some(l), m) => Some(m.unwrap_or(lookup::MAX_RESULTS).min((l - seen) as i64)),
            (None, m) => m,
        };
        let b = body(query, page_size, token.as_deref())?;
        let response = backend.call(&b).await?;
        let events = response["Events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            each(e)?;
        }
        seen += events.len();
        token = response["NextToken"].as_str().map(str::to_owned);
        if token.is_none() || limit.is_some_and(|l| seen >= l) {
            return Ok(token);
        }
    }
}

pub async fn run(cmd: LookupCommand) -> Result<(), LookupCliError> {
    match cmd {
        LookupCommand::LookupEvents {
            query,
            max_results,
            max_items,
            starting_token,
        } => {
            let mut events = Vec::new();
            let next = pages(&query, max_results, max_items, starting_token, |e| {
                let mut e = e.clone();
                // The AWS CLI prints timestamps as ISO 8601.
                if let Some(t) = e["EventTime"]
                    .as_f64()
                    .and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0))
                {
                    e["EventTime"] = json!(t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string());
                }
                events.push(e);
                Ok(())
            })
            .await?;
            let mut out = json!({ "Events": events });
            if let Some(t) = next {
                out["NextToken"] = json!(t);
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        LookupCommand::ExportHistory {
            query,
            format,
            output,
        } => {
            let sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut export = Export::new(format, sink)?;
            pages(&query, None, None, None, |e| export.event(e)).await?;
            export.finish()?.flush()?;
            Ok(())
        }
    }
}

/// `export-history`'s file, written as events come (the console's
/// downloads are the same bytes): CSV with the console download's columns,
/// formula cells neutralised, or `{"Records": […]}`.
pub struct Export<W: Write> {
    out: ExportOut<W>,
    first: bool,
}

enum ExportOut<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Json(W),
}

impl<W: Write> Export<W> {
    pub fn new(format: Format, w: W) -> Result<Self, LookupCliError> {
        let out = match format {
            Format::Csv => {
                let mut w = Box::new(csv::Writer::from_writer(w));
                w.write_record(lookup::CSV_COLUMNS)?;
                ExportOut::Csv(w)
            }
            Format::Json => {
                let mut w = w;
                w.write_all(b"{\"Records\":[")?;
                ExportOut::Json(w)
            }
        };
        Ok(Self { out, first: true })
    }

    /// One event of a LookupEvents page.
    pub fn event(&mut self, e: &Value) -> Result<(), LookupCliError> {
        let record = e["CloudTrailEvent"].as_str().unwrap_or_default();
        match &mut self.out {
            ExportOut::Csv(w) => {
                if let Some(row) = lookup::csv_row(record) {
                    w.write_record(&row)?;
                }
            }
            ExportOut::Json(w) => {
                if !self.first {
                    w.write_all(b",")?;
                }
                w.write_all(record.as_bytes())?;
            }
        }
        self.first = false;
        Ok(())
    }

    /// Hands what is written so far to the writer (the CSV writer buffers
    /// rows).
    pub fn flush(&mut self) -> Result<(), LookupCliError> {
        match &mut self.out {
            ExportOut::Csv(w) => w.flush()?,
            ExportOut::Json(w) => w.flush()?,
        }
        Ok(())
    }

    /// Ends the file; the writer.
    pub fn finish(mut self) -> Result<W, LookupCliError> {
        if let ExportOut::Json(w) = &mut self.out {
            w.write_all(b"]}\n")?;
        }
        match self.out {
            ExportOut::Csv(w) => w.into_inner().map_err(|e| e.into_error().into()),
            ExportOut::Json(w) => Ok(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(attributes: Option<&str>) -> Query {
        Query {
            endpoint_url: None,
            history_table: Some("t".into()),
            lookup_attributes: attributes.map(str::to_owned),
            start_time: Some("2026-11-24T00:00:00Z".into()),
            end_time: None,
            region: None,
            account_id: None,
            retention_days: 90,
            history_shards: 1,
        }
    }

    #[test]
    fn flags_become_a_lookup_events_body() {
        let b = body(
            &query(Some("AttributeKey=Username,AttributeValue=bob")),
            Some(5),
            Some("tok"),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({
                "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "bob"}],
                "StartTime": 1795478400,
                "MaxResults": 5,
                "NextToken": "tok",
            })
        );
        assert!(matches!(
            body(&query(Some("Username=bob")), None, None),
            Err(LookupCliError::Attributes(_))
        ));
        // trailkeep's extensions: the region and a member account
        let mut member = query(None);
        (member.region, member.account_id) =
            (Some("us-east-2".into()), Some("222233334444".into()));
        let b = body(&member, None, None).unwrap();
        assert_eq!(
            (&b["Region"], &b["AccountId"]),
            (&json!("us-east-2"), &json!("222233334444"))
        );
    }
}
