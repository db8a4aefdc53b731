//! Normalization: every trigger ingest accepts, turned into records.
//!
//! `normalize` never fails as a whole: each record of a payload either becomes
//! a [`Normalized`] record, is [`Ignored`] on purpose (with the reason), or is
//! [`Rejected`] with the field and the reason, so one bad record never costs
//! the good ones beside it. The mapping from each source's fields to record
//! fields is documented in docs/normalization.md.

mod eventbridge;
mod s3;

use serde_json::value::RawValue;

use crate::ingest::classify;
use crate::model::{Record, MAX_RECORD_BYTES, UNSET_TIME};

/// Facts about the receiving deployment that a payload may not carry.
#[derive(Clone, Debug)]
pub struct Context {
    /// The deployment's account: `recipientAccountId` when the source omits it.
    pub account_id: String,
}

/// A record ready to store: the classified record and its serialized form.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    /// The record's position in the payload.
    pub index: usize,
    pub record: Record,
    /// The record as CloudTrail JSON (what is stored and delivered), at most 256 KB.
    pub json: String,
}

/// A record deliberately not recorded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub index: usize,
    pub reason: String,
}

/// A record refused: which one (position in the payload, event id when known) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {index}{}: {error}", event_id.as_ref().map(|id| format!(" (eventID {id})")).unwrap_or_default())]
pub struct Rejected {
    pub index: usize,
    pub event_id: Option<String>,
    #[source]
    pub error: RecordError,
}

/// Why a record was refused. Each names the field and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("payload is neither an EventBridge event (source, detail-type, detail) nor an S3 event notification (Records[])")]
    UnknownPayload,
    #[error("field {field} is missing")]
    Missing { field: &'static str },
    #[error("field {field} is invalid: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the record is {bytes} bytes; events over {limit} bytes (256 KB) are refused", limit = MAX_RECORD_BYTES)]
    TooLarge { bytes: usize },
}

/// What became of one payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<Normalized>,
    pub ignored: Vec<Ignored>,
    pub rejected: Vec<Rejected>,
}

/// What a source-specific normalizer made of one record.
enum Outcome {
    /// A record trailkeep built (S3 notification, application event):
    /// classified and written in trailkeep's own version.
    Record(Box<Record>),
    /// A record AWS wrote, with its JSON exactly as AWS sent it (only
    /// missing fields filled): neither reclassified nor re-serialized.
    AsSent(Box<Record>, String),
    Ignored(String),
}

impl Batch {
    fn push(
        &mut self,
        index: usize,
        result: Result<Outcome, RecordError>,
        event_id: Option<String>,
    ) {
        let (result, event_id) = match result {
            Ok(Outcome::Record(r)) => {
                let id = Some(r.event_id.clone())
                    .filter(|id| !id.is_empty())
                    .or(event_id);
                (finish(*r, None), id)
            }
            Ok(Outcome::AsSent(r, json)) => {
                let id = Some(r.event_id.clone())
                    .filter(|id| !id.is_empty())
                    .or(event_id);
                (finish(*r, Some(json)), id)
            }
            Ok(Outcome::Ignored(reason)) => return self.ignored.push(Ignored { index, reason }),
            Err(e) => (Err(e), event_id),
        };
        match result {
            Ok(n) => self.records.push(Normalized { index, ..n }),
            Err(error) => self.rejected.push(Rejected {
                index,
                // The id as sent may be anything (5,000 bytes, control
                // characters): a report names the record, it does not copy it.
                event_id: event_id.map(|id| quote_prefix(&id)),
                error,
            }),
        }
    }
}

/// The envelope of every payload ingest accepts, decoded in one pass from
/// the bytes Lambda hands over: an EventBridge event (`detail-type`,
/// `source`, `detail`…), an S3 notification (`Records`), or S3's
/// `s3:TestEvent`. Nested parts stay raw until their shape is known, so no
/// intermediate JSON tree is built.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope {
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    account: Option<String>,
    #[serde(default, with = "optional_time")]
    time: Option<chrono::DateTime<chrono::Utc>>,
    region: Option<String>,
    resources: Option<Vec<String>>,
    detail: Option<Box<RawValue>>,
    #[serde(rename = "Records")]
    records: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

mod optional_time {
    use chrono::{DateTime, Utc};
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        crate::time::serde_event_time::deserialize(d).map(Some)
    }
}

/// Normalizes one Lambda payload (JSON text): an EventBridge event or an S3 notification.
pub fn normalize(payload: &str, ctx: &Context) -> Batch {
    let mut batch = Batch::default();
    let envelope: Envelope = match serde_json::from_str(payload) {
        Ok(e) => e,
        Err(e) => {
            let error = if payload.trim_start().starts_with('{') {
                invalid("payload", e)
            } else {
                RecordError::UnknownPayload
            };
            batch.rejected.push(Rejected {
                index: 0,
                event_id: None,
                error,
            });
            return batch;
        }
    };
    if envelope.detail_type.is_some() {
        let id = envelope.id.clone();
        batch.push(0, eventbridge::normalize(envelope), id);
    } else if let Some(records) = envelope.records {
        s3::normalize_notification(records, ctx, &mut batch);
    } else if envelope.event.as_deref() == Some("s3:TestEvent") {
        // S3 sends this once when a notification is configured; it is not an event.
        batch.ignored.push(Ignored {
            index: 0,
            reason: "s3:TestEvent (sent when a notification is configured)".into(),
        });
    } else {
        batch.rejected.push(Rejected {
            index: 0,
            event_id: None,
            error: RecordError::UnknownPayload,
        });
    }
    batch
}

/// Checks a record; classifies and serializes one trailkeep built (`json`
/// is `None`), keeps the JSON of one AWS wrote.
fn finish(mut record: Record, json: Option<String>) -> Result<Normalized, RecordError> {
    for (field, value) in [
        ("eventID", &record.event_id),
        ("eventSource", &record.event_source),
        ("eventName", &record.event_name),
        ("awsRegion", &record.aws_region),
    ] {
        if value.trim().is_empty() {
            return Err(RecordError::Invalid {
                field: field.into(),
                reason: "must not be empty".into(),
            });
        }
    }
    if record.event_time == UNSET_TIME {
        return Err(RecordError::Missing { field: "eventTime" });
    }
    check_keys(&record)?;
    let json = match json {
        Some(json) => json,
        None => {
            classify::classify(&mut record);
            serde_json::to_string(&record).map_err(|e| RecordError::Invalid {
                field: "record".into(),
                reason: e.to_string(),
            })?
        }
    };
    if json.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { bytes: json.len() });
    }
    Ok(Normalized {
        index: 0,
        record,
        json,
    })
}

/// JSON text without the whitespace between its tokens; strings, numbers
/// and field order untouched. `json` must be valid JSON.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// At most 40 characters of a value from a record, control characters
/// escaped, with `…` if cut: what a report may quote of hostile input.
pub fn quote_prefix(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    if value.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// How far past the ingest time an `eventTime` may lie. AWS never sends a
/// time in the future; this allows for clocks that disagree.
pub const MAX_FUTURE_SECONDS: i64 = 300;

/// Checks that a record's `eventTime` lies between the start of the
/// history's retention and [`MAX_FUTURE_SECONDS`] after `now` (the ingest
/// time). A record from year 9999 would otherwise live forever (its TTL is
/// eventTime + retention), and one older than the retention would be
/// stored already expired.
pub fn check_event_time(
    record: &Record,
    now: &chrono::DateTime<chrono::Utc>,
    retention_days: u32,
) -> Result<(), RecordError> {
    let earliest = *now - chrono::Duration::days(i64::from(retention_days));
    let latest = *now + chrono::Duration::seconds(MAX_FUTURE_SECONDS);
    let t = &record.event_time;
    let bad = |reason: String| RecordError::Invalid {
        field: "eventTime".into(),
        reason,
    };
    if *t > latest {
        return Err(bad(format!(
            "{} is more than {MAX_FUTURE_SECONDS} s after the ingest time {} (AWS never sends a future time)",
            crate::time::format(t),
            crate::time::format(now)
        )));
    }
    if *t < earliest {
        return Err(bad(format!(
            "{} is before the history's retention window ({retention_days} days back from {})",
            crate::time::format(t),
            crate::time::format(now)
        )));
    }
    Ok(())
}

/// The longest eventID accepted (CloudTrail's are 36-character GUIDs).
pub const MAX_EVENT_ID: usize = 128;

/// Checks every value that becomes part of a DynamoDB or S3 key where it
/// enters (docs/normalization.md "Values that become keys"): the region
/// (history partitions, log file keys), the event ID (history and staging
/// keys) and the recipient account.
fn check_keys(record: &Record) -> Result<(), RecordError> {
    let bad = |field: &str, reason: String| RecordError::Invalid {
        field: field.into(),
        reason,
    };
    if !is_region(&record.aws_region) {
        return Err(bad(
            "awsRegion",
            format!(
                "\"{}\" is not an AWS region name (like eu-west-1: lowercase words and a number, joined by -, at most 32 characters)",
                quote_prefix(&record.aws_region)
            ),
        ));
    }
    let id = &record.event_id;
    if id.len() > MAX_EVENT_ID
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(bad(
            "eventID",
            format!(
                "must be 1 to {MAX_EVENT_ID} characters of A-Z a-z 0-9 - _ . : (got {} bytes)",
                id.len()
            ),
        ));
    }
    let account = &record.recipient_account_id;
    let twelve_digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !account.is_empty() && !twelve_digits {
        return Err(bad("recipientAccountId", "must be 12 digits".into()));
    }
    Ok(())
}

/// AWS's region syntax: `us-east-1`, `us-gov-west-1`, `eu-central-2`:
/// lowercase words joined by `-`, ending in a number of one or two digits.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    region.len() <= 32
        && words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Maps a serde error on a source structure to a record error naming the
/// structure. serde quotes the offending value: at most 200 characters of
/// the message are kept, so a report never carries a record's contents.
fn invalid(field: &str, e: serde_json::Error) -> RecordError {
    let reason = e.to_string();
    let mut short: String = reason.chars().take(200).collect();
    if short.len() < reason.len() {
        short.push('…');
    }
    RecordError::Invalid {
        field: field.into(),
        reason: short,
    }
}

#[cfg(test)]
mod tests;
