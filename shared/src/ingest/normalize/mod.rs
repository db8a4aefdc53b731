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
    Record(Box<Record>),
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
                (finish(*r), id)
            }
            Ok(Outcome::Ignored(reason)) => return self.ignored.push(Ignored { index, reason }),
            Err(e) => (Err(e), event_id),
        };
        match result {
            Ok(n) => self.records.push(n),
            Err(error) => self.rejected.push(Rejected {
                index,
                event_id,
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

/// Classifies, checks and serializes a record.
fn finish(mut record: Record) -> Result<Normalized, RecordError> {
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
    classify::classify(&mut record);
    let json = serde_json::to_string(&record).map_err(|e| RecordError::Invalid {
        field: "record".into(),
        reason: e.to_string(),
    })?;
    if json.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { bytes: json.len() });
    }
    Ok(Normalized { record, json })
}

/// Maps a serde error on a source structure to a record error naming the structure.
fn invalid(field: &str, e: serde_json::Error) -> RecordError {
    RecordError::Invalid {
        field: field.into(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
