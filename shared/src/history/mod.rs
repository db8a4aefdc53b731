//! The event history: per region, management events only, kept for the
//! retention period (default 90 days) by a DynamoDB TTL attribute.
//!
//! One table, items keyed so that every LookupEvents attribute and a plain
//! time range are answered by one Query per page, newest first (design and
//! write cost in docs/event-history.md):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | primary (one per event and region) | `{region}#EventId#{eventID}` | `event` |
//! | time index | `{region}#Time#{YYYY-MM-DD}` | `{eventTime}#{eventID}` |
//! | attribute index | `{region}#{Attribute}#{value}#{YYYY-MM-DD}` | `{eventTime}#{eventID}` |
//!
//! Every item carries the record (`rec`) and the TTL (`expiresAt`).
//! Idempotence: the primary item is written only if absent; the index items
//! are derived from the record the primary item holds, and have deterministic
//! keys, so re-deliveries (also concurrent ones, also with different content
//! under the same eventID) never add a second entry anywhere.

pub mod lookup;

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::ingest::normalize::Normalized;
use crate::model::{EventCategory, Record};
use crate::time;

/// Default retention of the event history.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Attribute values longer than this are not indexed (a DynamoDB partition
/// key holds at most 2048 bytes); lookups refuse longer values.
pub const MAX_INDEXED_VALUE_BYTES: usize = 1900;

/// Sort key of the primary item.
pub const PRIMARY_SK: &str = "event";

/// The LookupEvents attributes, by their CloudTrail names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupAttribute {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupAttribute {
    pub const ALL: [LookupAttribute; 8] = [
        Self::EventId,
        Self::EventName,
        Self::ReadOnly,
        Self::Username,
        Self::ResourceType,
        Self::ResourceName,
        Self::EventSource,
        Self::AccessKeyId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventId => "EventId",
            Self::EventName => "EventName",
            Self::ReadOnly => "ReadOnly",
            Self::Username => "Username",
            Self::ResourceType => "ResourceType",
            Self::ResourceName => "ResourceName",
            Self::EventSource => "EventSource",
            Self::AccessKeyId => "AccessKeyId",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The values of this attribute a record is found under (several for resources).
    pub fn values(self, record: &Record) -> Vec<&str> {
        let resources = record.resources.iter().flatten();
        let values: Vec<&str> = match self {
            Self::EventId => vec![record.event_id.as_str()],
            Self::EventName => vec![record.event_name.as_str()],
            Self::ReadOnly => vec![if record.is_read_only() {
                "true"
            } else {
                "false"
            }],
            Self::Username => record.lookup_username().into_iter().collect(),
            Self::ResourceType => resources
                .filter_map(|r| r.resource_type.as_deref())
                .collect(),
            Self::ResourceName => resources.filter_map(|r| r.arn.as_deref()).collect(),
            Self::EventSource => vec![record.event_source.as_str()],
            Self::AccessKeyId => record
                .user_identity
                .access_key_id
                .as_deref()
                .into_iter()
                .collect(),
        };
        values
            .into_iter()
            .filter(|v| !v.is_empty() && v.len() <= MAX_INDEXED_VALUE_BYTES)
            .collect()
    }
}

/// Partition key of the primary item of an event in a region's history.
pub fn primary_pk(region: &str, event_id: &str) -> String {
    format!("{region}#EventId#{event_id}")
}

/// Partition key of the time index for one UTC day.
pub fn time_pk(region: &str, day: &str) -> String {
    format!("{region}#Time#{day}")
}

/// Partition key of an attribute index for one UTC day.
pub fn attribute_pk(region: &str, attribute: LookupAttribute, value: &str, day: &str) -> String {
    format!("{region}#{}#{value}#{day}", attribute.as_str())
}

/// Sort key of index items: time-ordered, unique per event.
pub fn index_sk(event_time: &DateTime<Utc>, event_id: &str) -> String {
    format!("{}#{event_id}", time::format(event_time))
}

/// One item of the history table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item<'a> {
    pub pk: String,
    pub sk: String,
    /// The record as CloudTrail JSON.
    pub record: &'a str,
    /// TTL: epoch seconds after which the item is gone from the history.
    pub expires_at: i64,
}

/// The index items (time and attributes, not the primary item) of a record
/// in one region's history, without duplicates.
pub fn index_items<'a>(
    record: &Record,
    json: &'a str,
    region: &str,
    expires_at: i64,
) -> Vec<Item<'a>> {
    let day = time::day(&record.event_time);
    let sk = index_sk(&record.event_time, &record.event_id);
    let mut pks = BTreeSet::new();
    pks.insert(time_pk(region, &day));
    for attribute in LookupAttribute::ALL
        .into_iter()
        .filter(|a| *a != LookupAttribute::EventId)
    {
        for value in attribute.values(record) {
            pks.insert(attribute_pk(region, attribute, value, &day));
        }
    }
    pks.into_iter()
        .map(|pk| Item {
            pk,
            sk: sk.clone(),
            record: json,
            expires_at,
        })
        .collect()
}

/// How long events stay, and which regions' histories global events go to.
#[derive(Clone, Debug)]
pub struct HistorySettings {
    pub retention_days: u32,
    /// Regions this deployment serves; global-service events are stored in each.
    pub served_regions: Vec<String>,
}

impl HistorySettings {
    /// TTL of a record: eventTime + retention, in epoch seconds.
    pub fn expires_at(&self, record: &Record) -> i64 {
        record.event_time.timestamp() + i64::from(self.retention_days) * 86_400
    }

    /// The regions whose history a record belongs in: none for data events;
    /// every served region for global-service events; else its own region.
    pub fn regions<'a>(&'a self, record: &'a Record) -> Vec<&'a str> {
        if record.category() == EventCategory::Data {
            Vec::new()
        } else if crate::ingest::classify::is_global(record) {
            self.served_regions.iter().map(String::as_str).collect()
        } else {
            vec![record.aws_region.as_str()]
        }
    }
}

/// What the store says when asked to claim an event's primary item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The item was absent and is now written.
    Stored,
    /// An item with this key exists; it holds this record JSON.
    Exists { record: String },
}

pub use crate::store::StoreError;

/// The port the history needs from its store.
pub trait HistoryStore: Send + Sync {
    /// Writes `item` unless an item with its key exists (then returns that item's record).
    fn claim(&self, item: &Item<'_>) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Writes (overwrites) every item; idempotent.
    fn put_all(&self, items: &[Item<'_>]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What recording one event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time in this many regions' histories (others already had it).
    Stored { regions: usize },
    /// Every region's history already had it.
    Duplicate,
    /// A data event: never in the history.
    NotInHistory,
}

/// Records one normalized event in each region's history it belongs to.
pub async fn record<S: HistoryStore>(
    store: &S,
    settings: &HistorySettings,
    event: &Normalized,
) -> Result<Recorded, StoreError> {
    let regions = settings.regions(&event.record);
    if regions.is_empty() {
        return Ok(Recorded::NotInHistory);
    }
    let expires_at = settings.expires_at(&event.record);
    let mut new = 0;
    for region in regions {
        let primary = Item {
            pk: primary_pk(region, &event.record.event_id),
            sk: PRIMARY_SK.to_owned(),
            record: &event.json,
            expires_at,
        };
        match store.claim(&primary).await? {
            Claim::Stored => {
                new += 1;
                store
                    .put_all(&index_items(&event.record, &event.json, region, expires_at))
                    .await?;
            }
            Claim::Exists {
                record: stored_json,
            } => {
                // Complete the index of the stored version (a writer may have
                // crashed between the two steps); its keys are deterministic,
                // so this never adds an entry that is not already there.
                let stored: Record = match serde_json::from_str(&stored_json) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(event_id = %event.record.event_id, error = %e, "stored record unreadable; indexing the new copy");
                        event.record.clone()
                    }
                };
                let stored_expires_at = settings.expires_at(&stored);
                store
                    .put_all(&index_items(
                        &stored,
                        &stored_json,
                        region,
                        stored_expires_at,
                    ))
                    .await?;
            }
        }
    }
    Ok(if new == 0 {
        Recorded::Duplicate
    } else {
        Recorded::Stored { regions: new }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;

    fn record() -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "eventTime": "2026-11-24T02:10:06Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "AttachRolePolicy",
            "awsRegion": "us-east-1",
            "eventID": "e1",
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIAEXAMPLE"},
            "resources": [
                {"ARN": "arn:aws:iam::111122223333:role/a", "type": "AWS::IAM::Role"},
                {"ARN": "arn:aws:iam::aws:policy/b", "type": "AWS::IAM::Policy"},
                {"ARN": "arn:aws:iam::111122223333:role/c", "type": "AWS::IAM::Role"}
            ]
        }))
        .unwrap();
        crate::ingest::classify::classify(&mut r);
        r
    }

    #[test]
    fn every_lookup_attribute_of_a_record_gets_one_index_item() {
        let r = record();
        let items = index_items(&r, "{}", "eu-west-1", 7);
        let pks: Vec<&str> = items.iter().map(|i| i.pk.as_str()).collect();
        assert_eq!(
            pks,
            [
                "eu-west-1#AccessKeyId#AKIAEXAMPLE#2026-11-24",
                "eu-west-1#EventName#AttachRolePolicy#2026-11-24",
                "eu-west-1#EventSource#iam.amazonaws.com#2026-11-24",
                "eu-west-1#ReadOnly#false#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::111122223333:role/a#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::111122223333:role/c#2026-11-24",
                "eu-west-1#ResourceName#arn:aws:iam::aws:policy/b#2026-11-24",
                "eu-west-1#ResourceType#AWS::IAM::Policy#2026-11-24",
                "eu-west-1#ResourceType#AWS::IAM::Role#2026-11-24",
                "eu-west-1#Time#2026-11-24",
                "eu-west-1#Username#alice#2026-11-24",
            ]
        );
        assert!(items
            .iter()
            .all(|i| i.sk == "2026-11-24T02:10:06Z#e1" && i.expires_at == 7));
    }

    #[test]
    fn oversized_and_empty_values_are_not_indexed() {
        let mut r = record();
        r.resources = Some(vec![Resource {
            arn: Some("x".repeat(MAX_INDEXED_VALUE_BYTES + 1)),
            resource_type: Some(String::new()),
            ..Resource::default()
        }]);
        assert!(LookupAttribute::ResourceName.values(&r).is_empty());
        assert!(LookupAttribute::ResourceType.values(&r).is_empty());
    }

    #[test]
    fn ttl_is_event_time_plus_retention() {
        let s = HistorySettings {
            retention_days: 90,
            served_regions: vec!["eu-west-1".into()],
        };
        let r = record();
        assert_eq!(s.expires_at(&r), r.event_time.timestamp() + 90 * 86_400);
    }

    #[test]
    fn global_events_go_to_every_served_region_and_data_events_nowhere() {
        let s = HistorySettings {
            retention_days: 90,
            served_regions: vec!["eu-west-1".into(), "us-east-1".into()],
        };
        let iam = record();
        assert_eq!(s.regions(&iam), ["eu-west-1", "us-east-1"]);
        let mut ec2 = record();
        ec2.event_source = "ec2.amazonaws.com".into();
        ec2.aws_region = "ap-south-1".into();
        assert_eq!(s.regions(&ec2), ["ap-south-1"]);
        let mut data = record();
        data.event_category = Some(EventCategory::Data);
        assert!(s.regions(&data).is_empty());
    }

    #[test]
    fn attribute_names_round_trip() {
        for a in LookupAttribute::ALL {
            assert_eq!(LookupAttribute::parse(a.as_str()), Some(a));
        }
        assert_eq!(LookupAttribute::parse("eventname"), None);
    }
}
