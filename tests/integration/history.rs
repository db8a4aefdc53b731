//! Ingest into the event history, through DynamoDB on moto.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;
use trailkeep_shared::aws::history_table::attr;
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::history::{self, HistorySettings, HistoryStore, Item, PRIMARY_SK};
use trailkeep_shared::ingest::normalize::{normalize, Context};
use trailkeep_shared::ingest::{IngestError, IngestReport, Targets};
use trailkeep_shared::model::{EventCategory, Record};

use crate::helpers::{event, event_json, n, s, TestTable};

/// The record JSON a primary item holds (packed); "" for an item without one.
fn record_in(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> String {
    item.get(attr::PACKED)
        .and_then(|v| v.as_b().ok())
        .map(|b| history::unpack(b.as_ref()).expect("a packed record inflates"))
        .unwrap_or_default()
}

/// Ingest with no trails: only the history is written (staging is tested in delivery.rs).
async fn ingest(
    history: &DynamoHistory,
    settings: &HistorySettings,
    ctx: &Context,
    payload: &str,
) -> Result<IngestReport, IngestError> {
    let staging = DynamoStaging::new(crate::helpers::dynamodb().await, "unused-without-trails");
    let targets = Targets {
        history,
        settings,
        staging: &staging,
        trails: &[],
        organization: false,
    };
    let now = chrono::Utc::now();
    trailkeep_shared::ingest::ingest(&targets, ctx, payload, &now).await
}

/// The item keys docs/event-history.md gives (unsharded), written out here
/// rather than taken from `history::`'s key functions, so a change of
/// layout fails these tests instead of moving with them (issue 19).
mod keys {
    use std::collections::BTreeSet;

    use trailkeep_shared::history::LookupAttribute;
    use trailkeep_shared::model::Record;

    /// The primary item's partition key.
    pub fn event(partition: &str, id: &str) -> String {
        format!("{partition}#EventId#{id}")
    }

    pub fn time(partition: &str, day: &str) -> String {
        format!("{partition}#Time#{day}")
    }

    pub fn attribute(partition: &str, name: &str, value: &str, day: &str) -> String {
        format!("{partition}#{name}#{value}#{day}")
    }

    pub fn day(record: &Record) -> String {
        record.event_time.format("%Y-%m-%d").to_string()
    }

    /// Index items' sort key: the event time to the second, then the ID.
    pub fn sort(record: &Record) -> String {
        format!(
            "{}#{}",
            record.event_time.format("%Y-%m-%dT%H:%M:%SZ"),
            record.event_id
        )
    }

    /// The attributes with an index item of their own: all eight but
    /// EventId (the primary item) and ReadOnly (a flag on the time item).
    pub const INDEXED: [(LookupAttribute, &str); 6] = [
        (LookupAttribute::EventName, "EventName"),
        (LookupAttribute::EventSource, "EventSource"),
        (LookupAttribute::Username, "Username"),
        (LookupAttribute::AccessKeyId, "AccessKeyId"),
        (LookupAttribute::ResourceType, "ResourceType"),
        (LookupAttribute::ResourceName, "ResourceName"),
    ];

    /// Every (pk, sk) one management event has in `partition`: the
    /// primary item, the time item, one item per indexed value. Which
    /// values a record has under an attribute is the lookup's semantics
    /// (tested in lookup.rs); how they become keys is written here.
    pub fn of(record: &Record, partition: &str) -> BTreeSet<(String, String)> {
        let (day, sk) = (day(record), sort(record));
        let mut all = BTreeSet::from([
            (event(partition, &record.event_id), "event".to_owned()),
            (time(partition, &day), sk.clone()),
        ]);
        for (a, name) in INDEXED {
            for value in a.values(record) {
                all.insert((attribute(partition, name, &value, &day), sk.clone()));
            }
        }
        all
    }
}

fn ctx() -> Context {
    Context {
        account_id: "111122223333".into(),
    }
}

fn settings(retention_days: u32) -> HistorySettings {
    HistorySettings {
        retention_days,
        shards: 1,
    }
}

/// Every good payload of events/, the history partition it belongs in and
/// its ReadOnly value, written down by hand from the payload (not computed by
/// the code under test): regional calls in their region; IAM and console
/// sign-in in the global partition, once; data events nowhere. ReadOnly is
/// the detail's `readOnly`, else the event name's verb (console-action.json
/// is `DescribeEventAggregates`).
const GOOD_PAYLOADS: [(&str, Option<(&str, bool)>); 14] = [
    ("eventbridge/api-call-read.json", Some(("eu-west-1", true))),
    (
        "eventbridge/api-call-write.json",
        Some(("eu-west-1", false)),
    ),
    ("eventbridge/console-action.json", Some(("eu-west-1", true))),
    (
        "eventbridge/console-signin-failure.json",
        Some(("global", false)),
    ),
    (
        "eventbridge/console-signin-success.json",
        Some(("global", false)),
    ),
    (
        "eventbridge/custom-app-event.json",
        Some(("eu-west-1", false)),
    ),
    ("eventbridge/iam-global-call.json", Some(("global", false))),
    ("eventbridge/lambda-invoke-data-event.json", None),
    ("eventbridge/s3-object-created.json", None),
    ("eventbridge/s3-object-deleted.json", None),
    ("eventbridge/service-event.json", Some(("eu-west-1", false))),
    ("s3/copy.json", None),
    ("s3/delete.json", None),
    ("s3/put.json", None),
];

#[tokio::test]
async fn every_payload_in_events_is_stored_where_it_belongs_with_its_index() {
    // GIVEN a history
    let table = TestTable::history().await;
    let store = table.store();
    let cfg = settings(90);

    // WHEN every good payload of events/ is ingested
    let mut expected_items = BTreeSet::new();
    let mut data_event_ids = Vec::new();
    for (path, partition) in GOOD_PAYLOADS {
        let report = ingest(&store, &cfg, &ctx(), &event(path))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(report.accepted, 1, "{path}");
        let normalized = normalize(&event(path), &ctx()).records.remove(0);
        let record = &normalized.record;
        let Some((region, read_only)) = partition else {
            assert_eq!(record.event_category, Some(EventCategory::Data), "{path}");
            assert_eq!(report.data_events, 1, "{path}");
            data_event_ids.push(record.event_id.clone());
            continue;
        };
        assert_eq!(report.stored, 1, "{path}");
        {
            let primary = table
                .partition(&keys::event(region, &record.event_id))
                .await;
            assert_eq!(primary.len(), 1, "{path} in {region}");
            // THEN the stored record is the normalized record, with its classification
            let stored: Record = serde_json::from_str(&record_in(&primary[0])).unwrap();
            assert_eq!(&stored, record, "{path}");
            assert_eq!(s(&primary[0], attr::SK), "event");
            // AND it is found under every lookup attribute it has, on its
            // day, but ReadOnly, which its time index item carries
            let mine = keys::of(record, region);
            for (pk, sk) in &mine {
                let items = table.partition(pk).await;
                assert!(items.iter().any(|i| s(i, attr::SK) == sk), "{path}: {pk}");
            }
            let by_time = table
                .partition(&keys::time(region, &keys::day(record)))
                .await;
            let time_item = by_time
                .iter()
                .find(|i| s(i, attr::SK) == keys::sort(record))
                .unwrap_or_else(|| panic!("{path}: time index"));
            assert_eq!(
                time_item
                    .get(attr::READ_ONLY)
                    .and_then(|v| v.as_bool().ok()),
                Some(&read_only),
                "{path}: ReadOnly on the time item"
            );
            expected_items.extend(mine);
        }
    }

    // THEN the table holds exactly those items: nothing for data events, nothing extra
    let all = table.items().await;
    let actual: BTreeSet<(String, String)> = all
        .iter()
        .map(|i| (s(i, attr::PK).to_owned(), s(i, attr::SK).to_owned()))
        .collect();
    assert_eq!(actual, expected_items);
    for id in &data_event_ids {
        assert!(
            all.iter().all(|i| !record_in(i).contains(id.as_str())),
            "data event {id} in history"
        );
    }
    // AND only primary items hold the record, once, packed; index items are keys and TTL
    for item in &all {
        let primary = s(item, attr::SK) == PRIMARY_SK;
        assert_eq!(item.contains_key(attr::PACKED), primary, "{item:?}");
        assert!(!item.contains_key(attr::RECORD), "{item:?}");
        if !primary {
            let time = s(item, attr::PK).contains("#Time#");
            assert_eq!(
                item.len(),
                3 + usize::from(time),
                "pk, sk, expiresAt (and ro on time items): {item:?}"
            );
        }
    }
    let primaries = all.iter().filter(|i| s(i, attr::SK) == PRIMARY_SK).count();
    assert_eq!(
        primaries, 8,
        "5 regional management events, 3 global ones stored once"
    );
    table.delete().await;
}

#[tokio::test]
async fn the_same_event_delivered_five_times_concurrently_is_stored_once() {
    let table = TestTable::history().await;
    let store = table.store();
    let cfg = settings(90);
    let c = ctx();
    let payload = event("eventbridge/api-call-write.json");

    let results = join_all((0..5).map(|_| ingest(&store, &cfg, &c, &payload))).await;

    let reports: Vec<_> = results.into_iter().map(|r| r.expect("ingest")).collect();
    assert_eq!(
        reports.iter().map(|r| r.stored).sum::<usize>(),
        1,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.duplicates).sum::<usize>(),
        4,
        "{reports:?}"
    );
    let normalized = normalize(&payload, &c).records.remove(0);
    let items = table.items().await;
    let actual: BTreeSet<(String, String)> = items
        .iter()
        .map(|i| (s(i, attr::PK).to_owned(), s(i, attr::SK).to_owned()))
        .collect();
    assert_eq!(items.len(), actual.len());
    assert_eq!(
        actual,
        keys::of(&normalized.record, "eu-west-1"),
        "one primary item and one of each index item"
    );
    let by_time = table.partition("eu-west-1#Time#2026-11-24").await;
    assert_eq!(by_time.len(), 1);
    table.delete().await;
}

#[tokio::test]
async fn one_event_id_with_different_content_keeps_one_version_and_one_index() {
    // A source re-delivers an event with changed fields (here: another time
    // and name) while the first delivery is still being written.
    let table = TestTable::history().await;
    let store = table.store();
    let cfg = settings(90);
    let c = ctx();
    let first = event_json("eventbridge/api-call-write.json");
    let mut second = first.clone();
    second["detail"]["eventTime"] = json!("2026-11-25T09:00:00Z");
    second["detail"]["eventName"] = json!("RevokeSecurityGroupIngress");
    let payloads: Vec<String> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                first.to_string()
            } else {
                second.to_string()
            }
        })
        .collect();

    let results = join_all(payloads.iter().map(|p| ingest(&store, &cfg, &c, p))).await;
    assert!(results.iter().all(Result::is_ok));

    let items = table.items().await;
    let primaries: Vec<_> = items
        .iter()
        .filter(|i| s(i, attr::SK) == PRIMARY_SK)
        .collect();
    assert_eq!(primaries.len(), 1, "one stored version");
    let winner: Record = serde_json::from_str(&record_in(primaries[0])).unwrap();
    // Every index item is the winning version's: its keys, nothing else.
    let expected = keys::of(&winner, "eu-west-1");
    let actual: BTreeSet<(String, String)> = items
        .iter()
        .map(|i| (s(i, attr::PK).to_owned(), s(i, attr::SK).to_owned()))
        .collect();
    assert_eq!(actual, expected);
    table.delete().await;
}

#[tokio::test]
async fn a_global_event_is_stored_once_in_the_global_partition() {
    let table = TestTable::history().await;
    let cfg = settings(90);
    let report = ingest(
        &table.store(),
        &cfg,
        &ctx(),
        &event("eventbridge/iam-global-call.json"),
    )
    .await
    .unwrap();
    assert_eq!(report.stored, 1);
    let id = "a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b06";
    let primary = table.partition(&format!("global#EventId#{id}")).await;
    assert_eq!(primary.len(), 1);
    let by_user = table.partition("global#Username#bob#2026-11-24").await;
    assert_eq!(by_user.len(), 1);
    for region in ["eu-west-1", "us-east-1"] {
        assert!(table
            .partition(&format!("{region}#EventId#{id}"))
            .await
            .is_empty());
    }
    // A regional event stays in its own region only.
    ingest(
        &table.store(),
        &cfg,
        &ctx(),
        &event("eventbridge/api-call-write.json"),
    )
    .await
    .unwrap();
    let pk = |r| keys::event(r, "a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02");
    assert_eq!(table.partition(&pk("eu-west-1")).await.len(), 1);
    assert!(table.partition(&pk("us-east-1")).await.is_empty());
    table.delete().await;
}

#[tokio::test]
async fn data_events_are_accepted_but_not_in_the_history() {
    let table = TestTable::history().await;
    let cfg = settings(90);
    for path in [
        "s3/put.json",
        "eventbridge/s3-object-created.json",
        "eventbridge/lambda-invoke-data-event.json",
    ] {
        let report = ingest(&table.store(), &cfg, &ctx(), &event(path))
            .await
            .unwrap();
        assert_eq!(
            (report.accepted, report.data_events, report.stored),
            (1, 1, 0),
            "{path}"
        );
    }
    assert!(table.items().await.is_empty());
    table.delete().await;
}

#[tokio::test]
async fn the_ttl_attribute_is_event_time_plus_retention() {
    let table = TestTable::history().await;
    let cfg = settings(30);
    ingest(
        &table.store(),
        &cfg,
        &ctx(),
        &event("eventbridge/console-signin-success.json"),
    )
    .await
    .unwrap();
    let event_time = chrono::DateTime::parse_from_rfc3339("2026-11-24T01:10:00Z")
        .unwrap()
        .timestamp();
    let items = table.items().await;
    assert!(!items.is_empty());
    for item in &items {
        assert_eq!(
            n(item, attr::EXPIRES_AT),
            event_time + 30 * 86_400,
            "{}",
            s(item, attr::PK)
        );
    }
    table.delete().await;
}

#[tokio::test]
async fn a_malformed_record_is_reported_and_the_good_ones_beside_it_go_on() {
    let table = TestTable::history().await;
    let cfg = settings(90);
    let store = table.store();

    // A notification batch: records 0 and 2 are good, record 1 has a bad time.
    let err = ingest(
        &store,
        &cfg,
        &ctx(),
        &event("s3/batch-with-bad-record.json"),
    )
    .await
    .unwrap_err();
    let IngestError::Rejected {
        rejected, accepted, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*accepted, 2, "the good records were accepted");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].index, 1);
    let msg = err.to_string();
    assert!(
        msg.contains("record 1: field Records[] is invalid"),
        "{msg}"
    );

    // A management batch: one EventBridge event per invocation; a bad one
    // stores nothing, and the good event in the next invocation is stored.
    let err = ingest(
        &store,
        &cfg,
        &ctx(),
        &event("malformed/bad-event-time.json"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("eventTime"), "{err}");
    assert!(table.items().await.is_empty());
    let ok = ingest(
        &store,
        &cfg,
        &ctx(),
        &event("eventbridge/api-call-write.json"),
    )
    .await
    .unwrap();
    assert_eq!(ok.stored, 1);
    table.delete().await;
}

#[tokio::test]
async fn put_all_writes_more_items_than_one_batch_holds() {
    // Contract of the DynamoDB adapter: BatchWriteItem takes 25 items on AWS,
    // so the adapter chunks; every item arrives, rewriting is harmless.
    let table = TestTable::history().await;
    let store = table.store();
    let packed = history::pack("{}");
    let items: Vec<Item<'_>> = (0..60)
        .map(|i| Item {
            pk: format!("p#{}", i % 7),
            sk: format!("s#{i:03}"),
            record: (i % 2 == 0).then_some(packed.as_slice()),
            read_only: (i % 3 == 0).then_some(i % 2 == 0),
            expires_at: 1,
            ..Item::default()
        })
        .collect();
    store.put_all(&items).await.unwrap();
    store.put_all(&items).await.unwrap();
    assert_eq!(table.items().await.len(), 60);
    table.delete().await;
}

#[tokio::test]
async fn claim_stores_once_and_then_returns_what_is_stored() {
    use trailkeep_shared::history::Claim;
    let table = TestTable::history().await;
    let store = table.store();
    let (v1, v2) = (history::pack("{\"v\":1}"), history::pack("{\"v\":2}"));
    let first = Item {
        pk: "r#EventId#x".into(),
        sk: PRIMARY_SK.into(),
        record: Some(&v1),
        read_only: None,
        expires_at: 5,
        ..Item::default()
    };
    let second = Item {
        record: Some(&v2),
        expires_at: 9,
        ..first.clone()
    };
    assert_eq!(store.claim(&first, Some(42)).await.unwrap(), Claim::Stored);
    assert_eq!(
        store.claim(&second, Some(43)).await.unwrap(),
        Claim::Exists {
            record: Some("{\"v\":1}".into()),
            expires_at: Some(5),
            first_window: Some(42),
        }
    );
    // An item written with no note (as before notes moved to the primary
    // item) answers none.
    let third = Item {
        pk: "r#EventId#y".into(),
        ..first.clone()
    };
    assert_eq!(store.claim(&third, None).await.unwrap(), Claim::Stored);
    let again = store.claim(&third, Some(44)).await.unwrap();
    assert!(
        matches!(
            again,
            Claim::Exists {
                first_window: None,
                ..
            }
        ),
        "{again:?}"
    );
    table.delete().await;
}

#[tokio::test]
async fn an_item_altered_outside_trailkeep_is_left_out_and_never_fails_a_read_or_a_write() {
    // GIVEN three events stored, then one's packed record replaced by
    // bytes that are neither format, one's by a deflate bomb (1 MB of
    // spaces packed to ~1 KB, past the 256 KB a record can be) and one's by
    // a zstd frame of 1 MB behind the dictionary format's tag
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use trailkeep_shared::history::lookup::{self, HistoryReader, LookupSettings};
    let table = TestTable::history().await;
    let store = table.store();
    let cfg = settings(90);
    let c = ctx();
    let read = event_json("eventbridge/api-call-read.json");
    let write = event_json("eventbridge/api-call-write.json");
    let action = event_json("eventbridge/console-action.json");
    for p in [&read, &write, &action] {
        ingest(&store, &cfg, &c, &p.to_string()).await.unwrap();
    }
    let id_of = |p: &serde_json::Value| p["detail"]["eventID"].as_str().unwrap().to_owned();
    let bomb = trailkeep_shared::testkit::deflated(&vec![b' '; 1 << 20]);
    let zstd_bomb = [
        &[trailkeep_shared::history::PACKED_V1][..],
        &zstd::bulk::compress(&vec![b' '; 1 << 20], 19).unwrap(),
    ]
    .concat();
    for (p, bytes) in [
        (&read, b"not deflate".to_vec()),
        (&write, bomb),
        (&action, zstd_bomb),
    ] {
        table
            .client
            .update_item()
            .table_name(&table.name)
            .key(attr::PK, A::S(keys::event("eu-west-1", &id_of(p))))
            .key(attr::SK, A::S(PRIMARY_SK.into()))
            .update_expression("SET #z = :z")
            .expression_attribute_names("#z", attr::PACKED)
            .expression_attribute_values(":z", A::B(Blob::new(bytes)))
            .send()
            .await
            .unwrap();
    }
    // THEN reads leave them out: the records, one by one, and a lookup page
    let pks: Vec<String> = [&read, &write, &action]
        .iter()
        .map(|p| keys::event("eu-west-1", &id_of(p)))
        .collect();
    assert!(store.records(&pks, 0, false).await.unwrap().is_empty());
    for pk in &pks {
        assert_eq!(store.get(pk, PRIMARY_SK, 0).await.unwrap(), None, "{pk}");
    }
    let settings = LookupSettings {
        account_id: String::new(),
        organization: false,
        home_region: "eu-west-1".into(),
        served_regions: vec!["eu-west-1".into()],
        retention_days: 90,
        token_key: b"integration-test-token-key-32-bytes!".to_vec(),
        shards: 1,
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
        .unwrap()
        .to_utc();
    let body = serde_json::json!({"StartTime": "2026-11-24T00:00:00Z"}).to_string();
    let request = lookup::parse_request(body.as_bytes(), &settings, &now).unwrap();
    let page = lookup::lookup(&store, &request, &settings, &now)
        .await
        .unwrap();
    assert!(page.records.is_empty(), "{:?}", page.records);
    // AND a re-delivery of one is neither an error nor indexed again
    let before = table.items().await.len();
    let report = ingest(&store, &cfg, &c, &read.to_string()).await.unwrap();
    assert_eq!(report.duplicates, 1);
    assert_eq!(table.items().await.len(), before);
    table.delete().await;
}

#[tokio::test]
async fn a_key_dynamodb_refuses_is_a_permanent_refusal_not_a_store_outage() {
    // Contract of the DynamoDB adapter: a ValidationException (here a
    // partition key over DynamoDB's 2,048-byte limit) is the store refusing
    // this input, which no retry can change; any other failure stays
    // transient.
    use trailkeep_shared::history::{HistoryStore, Item};
    let table = TestTable::history().await;
    let store = table.store();
    let packed = history::pack("{}");
    let huge = Item {
        pk: format!("eu-west-1#EventId#{}", "x".repeat(5000)),
        sk: "event".into(),
        record: Some(&packed),
        read_only: None,
        expires_at: 4_102_444_800,
        ..Item::default()
    };
    let err = store.claim(&huge, None).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    let gone = DynamoHistory::new(crate::helpers::dynamodb().await, "no-such-table-trailkeep");
    let outage = gone
        .claim(
            &Item {
                pk: "eu-west-1#EventId#x".into(),
                ..huge
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(!outage.is_permanent(), "{outage}");
    table.delete().await;
}

/// Issue 19: the exact items of two representative events, written by hand
/// from docs/event-history.md's key table rather than from the code's key
/// functions: an EC2 call is stored under its region, an IAM call once
/// under `global`; one primary item each, a time item, and one index item
/// per lookup attribute value (ReadOnly rides on the time item).
#[tokio::test]
async fn two_events_are_stored_under_exactly_the_keys_the_design_gives() {
    let table = TestTable::history().await;
    let store = table.store();
    let cfg = settings(90);
    for path in [
        "eventbridge/api-call-write.json",
        "eventbridge/iam-global-call.json",
    ] {
        ingest(&store, &cfg, &ctx(), &event(path)).await.unwrap();
    }
    let keys: BTreeSet<(String, String)> = table
        .items()
        .await
        .iter()
        .map(|i| (s(i, attr::PK).to_owned(), s(i, attr::SK).to_owned()))
        .collect();
    let ec2 = "2026-11-24T01:04:10Z#a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02";
    let iam = "2026-11-24T01:30:45Z#a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b06";
    let expected: BTreeSet<(String, String)> = [
        (
            "eu-west-1#EventId#a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02",
            "event",
        ),
        ("eu-west-1#Time#2026-11-24", ec2),
        (
            "eu-west-1#EventName#AuthorizeSecurityGroupIngress#2026-11-24",
            ec2,
        ),
        ("eu-west-1#EventSource#ec2.amazonaws.com#2026-11-24", ec2),
        ("eu-west-1#Username#bob#2026-11-24", ec2),
        ("eu-west-1#AccessKeyId#AKIAEXAMPLEKEY00002#2026-11-24", ec2),
        (
            "eu-west-1#ResourceType#AWS::EC2::SecurityGroup#2026-11-24",
            ec2,
        ),
        // A security group ID names it alone: the one item is by the ID.
        (
            "eu-west-1#ResourceName#sg-0123456789abcdef0#2026-11-24",
            ec2,
        ),
        (
            "global#EventId#a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b06",
            "event",
        ),
        ("global#Time#2026-11-24", iam),
        ("global#EventName#AttachRolePolicy#2026-11-24", iam),
        ("global#EventSource#iam.amazonaws.com#2026-11-24", iam),
        ("global#Username#bob#2026-11-24", iam),
        ("global#AccessKeyId#AKIAEXAMPLEKEY00002#2026-11-24", iam),
        ("global#ResourceType#AWS::IAM::Role#2026-11-24", iam),
        ("global#ResourceType#AWS::IAM::Policy#2026-11-24", iam),
        (
            "global#ResourceName#arn:aws:iam::111122223333:role/deploy#2026-11-24",
            iam,
        ),
        (
            "global#ResourceName#arn:aws:iam::aws:policy/AdministratorAccess#2026-11-24",
            iam,
        ),
        // The role and the policy also by their names.
        ("global#ResourceName#deploy#2026-11-24", iam),
        ("global#ResourceName#AdministratorAccess#2026-11-24", iam),
    ]
    .into_iter()
    .map(|(pk, sk)| (pk.to_owned(), sk.to_owned()))
    .collect();
    assert_eq!(keys, expected);
    table.delete().await;
}
