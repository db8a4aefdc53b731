//! LookupEvents over the event history, through DynamoDB on moto.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use trailkeep_shared::aws::history_table::{attr, DynamoHistory};
use trailkeep_shared::history::lookup::{self, LookupSettings};
use trailkeep_shared::history::{self, HistorySettings, LookupAttribute};
use trailkeep_shared::ingest::normalize::{normalize, Context};

use crate::helpers::{event, event_json, parse_time, TestTable};

const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

fn lookup_settings() -> LookupSettings {
    LookupSettings {
        account_id: String::new(),
        organization: false,
        home_region: "eu-west-1".into(),
        served_regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        retention_days: 90,
        token_key: b"integration-test-token-key-32-bytes!".to_vec(),
        shards: 1,
    }
}

fn now() -> DateTime<Utc> {
    parse_time("2026-11-24T12:00:00Z")
}

async fn record(store: &DynamoHistory, payload: &str, retention_days: u32) {
    let settings = HistorySettings {
        retention_days,
        shards: 1,
    };
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    for n in normalize(payload, &ctx).records {
        history::record(store, &settings, &n).await.unwrap();
    }
}

/// Every page of a lookup, following NextToken: the eventIDs in order and
/// the number of pages.
async fn all_pages(store: &DynamoHistory, request: Value) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let mut body = request.clone();
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let l =
            lookup::parse_request(body.to_string().as_bytes(), &lookup_settings(), &now()).unwrap();
        let page = lookup::lookup(store, &l, &lookup_settings(), &now())
            .await
            .unwrap();
        let response = lookup::response_json(&page);
        pages += 1;
        for e in response["Events"].as_array().unwrap() {
            ids.push(e["EventId"].as_str().unwrap().to_owned());
        }
        token = page.next_token;
        if token.is_none() {
            return (ids, pages);
        }
        assert!(pages < 200, "runaway pagination");
    }
}

async fn ids(store: &DynamoHistory, request: Value) -> Vec<String> {
    all_pages(store, request).await.0
}

fn by(attribute: &str, value: &str) -> Value {
    json!({ "LookupAttributes": [{ "AttributeKey": attribute, "AttributeValue": value }] })
}

fn id(n: &str) -> String {
    format!("a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b{n}")
}

/// The sample payloads: management events in eu-west-1, global ones (IAM,
/// console sign-in) and a Lambda data event.
async fn samples() -> (TestTable, DynamoHistory) {
    let table = TestTable::history().await;
    let store = table.store();
    for p in [
        "eventbridge/api-call-read.json",
        "eventbridge/api-call-write.json",
        "eventbridge/console-action.json",
        "eventbridge/console-signin-failure.json",
        "eventbridge/console-signin-success.json",
        "eventbridge/iam-global-call.json",
        "eventbridge/lambda-invoke-data-event.json",
        "eventbridge/service-event.json",
    ] {
        record(&store, &event(p), 90).await;
    }
    (table, store)
}

#[tokio::test]
async fn each_lookup_attribute_finds_its_events_and_only_them() {
    let (table, store) = samples().await;
    let contains = |got: &[String], want: &[&str], not: &[&str]| {
        for w in want {
            assert!(got.contains(&id(w)), "{w} missing from {got:?}");
        }
        for n in not {
            assert!(!got.contains(&id(n)), "{n} must not be in {got:?}");
        }
    };
    assert_eq!(ids(&store, by("EventId", &id("02"))).await, [id("02")]);
    assert_eq!(
        ids(&store, by("EventId", &id("99"))).await,
        Vec::<String>::new()
    );
    // Newest first.
    assert_eq!(
        ids(&store, by("EventName", "ConsoleLogin")).await,
        [id("04"), id("03")]
    );
    let read_only = ids(&store, by("ReadOnly", "true")).await;
    contains(&read_only, &["01"], &["02", "06", "05"]);
    let writes = ids(&store, by("ReadOnly", "false")).await;
    contains(&writes, &["02", "06", "05"], &["01"]);
    let bob = ids(&store, by("Username", "bob")).await;
    contains(&bob, &["02", "06"], &["01", "03", "04"]);
    assert_eq!(
        ids(&store, by("ResourceType", "AWS::EC2::SecurityGroup")).await,
        [id("02")]
    );
    assert_eq!(
        ids(
            &store,
            by("ResourceName", "arn:aws:iam::111122223333:role/deploy")
        )
        .await,
        [id("06")]
    );
    // By name too: a role's, a policy's, a security group's (found by its
    // ARN through its ID).
    for name in ["deploy", "AdministratorAccess"] {
        assert_eq!(ids(&store, by("ResourceName", name)).await, [id("06")]);
    }
    for sg in [
        "sg-0123456789abcdef0",
        "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0123456789abcdef0",
    ] {
        assert_eq!(ids(&store, by("ResourceName", sg)).await, [id("02")]);
    }
    assert_eq!(
        ids(&store, by("EventSource", "kms.amazonaws.com")).await,
        [id("05")]
    );
    assert_eq!(
        ids(&store, by("AccessKeyId", "AKIAEXAMPLEKEY00002")).await,
        [id("06"), id("02")]
    );
    // Data events are never in the history.
    assert_eq!(
        ids(&store, by("EventName", "Invoke")).await,
        Vec::<String>::new()
    );
    let everything = ids(&store, json!({})).await;
    assert!(!everything.contains(&id("09")));
    assert_eq!(everything.len(), 7, "{everything:?}");
    table.delete().await;
}

/// `eventbridge/api-call-write.json` as event `n`, calling `name` on
/// `source` with these parameters and no `resources` list.
fn call(n: &str, source: &str, name: &str, params: Value) -> String {
    let mut e: Value = serde_json::from_str(&event("eventbridge/api-call-write.json")).unwrap();
    let d = e["detail"].as_object_mut().unwrap();
    d.remove("resources");
    d.insert("eventID".into(), json!(id(n)));
    d.insert("eventSource".into(), json!(source));
    d.insert("eventName".into(), json!(name));
    d.insert("requestParameters".into(), params);
    e["source"] = json!(format!("aws.{}", source.trim_end_matches(".amazonaws.com")));
    e.to_string()
}

#[tokio::test]
async fn resources_named_only_in_the_parameters_are_found_by_name_and_shown() {
    // GIVEN calls whose records list no resources: an instance stopped, a
    // bucket created, and a Lambda function updated, and the IAM sample,
    // whose role has the bucket's name
    let table = TestTable::history().await;
    let store = table.store();
    let instance = "i-0abc1234def567890";
    let items = json!({"instancesSet": {"items": [{"instanceId": instance}]}});
    for payload in [
        call("21", "ec2.amazonaws.com", "StopInstances", items),
        call(
            "22",
            "s3.amazonaws.com",
            "CreateBucket",
            json!({"bucketName": "deploy"}),
        ),
        call(
            "23",
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            json!({"functionName": "arn:aws:lambda:eu-west-1:111122223333:function:charge-card"}),
        ),
        event("eventbridge/iam-global-call.json"),
    ] {
        record(&store, &payload, 90).await;
    }

    // THEN each is found by its name, and a bucket, an instance or a
    // function given as an ARN by the ARN
    let instance_arn = format!("arn:aws:ec2:eu-west-1:111122223333:instance/{instance}");
    let function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:charge-card";
    for (value, want) in [
        (instance, vec![id("21")]),
        (instance_arn.as_str(), vec![id("21")]),
        ("charge-card", vec![id("23")]),
        (function_arn, vec![id("23")]),
        ("deploy", vec![id("06"), id("22")]),
        // The bucket's ARN: not the role of the same name.
        ("arn:aws:s3:::deploy", vec![id("22")]),
    ] {
        assert_eq!(
            ids(&store, by("ResourceName", value)).await,
            want,
            "{value}"
        );
    }
    assert_eq!(
        ids(&store, by("ResourceType", "AWS::EC2::Instance")).await,
        [id("21")]
    );
    // AND the answer shows them as CloudTrail does
    let l = lookup::parse_request(
        by("EventName", "StopInstances").to_string().as_bytes(),
        &lookup_settings(),
        &now(),
    )
    .unwrap();
    let page = lookup::lookup(&store, &l, &lookup_settings(), &now())
        .await
        .unwrap();
    assert_eq!(
        lookup::response_json(&page)["Events"][0]["Resources"],
        json!([{"ResourceType": "AWS::EC2::Instance", "ResourceName": instance}])
    );
    table.delete().await;
}

#[tokio::test]
async fn time_ranges_are_inclusive_and_global_events_are_in_every_region() {
    let (table, store) = samples().await;
    let range = json!({
        "StartTime": "2026-11-24T01:04:10Z",
        "EndTime": parse_time("2026-11-24T01:11:30Z").timestamp(),
    });
    assert_eq!(ids(&store, range).await, [id("04"), id("03"), id("02")]);
    for region in REGIONS {
        let mut q = by("EventName", "AttachRolePolicy");
        q["Region"] = json!(region);
        assert_eq!(ids(&store, q).await, [id("06")], "{region}");
    }
    // A regional event is only in its region.
    let mut q = by("EventId", &id("02"));
    q["Region"] = json!("us-east-1");
    assert_eq!(ids(&store, q).await, Vec::<String>::new());
    table.delete().await;
}

#[tokio::test]
async fn items_past_their_retention_are_never_returned() {
    // GIVEN an event recorded with a 1-day retention, 4 days old (moto, like
    // AWS for up to days, has not deleted it)
    let table = TestTable::history().await;
    let store = table.store();
    let mut p = event_json("eventbridge/api-call-write.json");
    p["detail"]["eventTime"] = json!("2026-11-20T10:00:00Z");
    record(&store, &p.to_string(), 1).await;
    let mut fresh = event_json("eventbridge/api-call-write.json");
    fresh["detail"]["eventID"] = json!(id("50"));
    record(&store, &fresh.to_string(), 90).await;
    assert!(
        table.items().await.len() > 2,
        "the expired items are still stored"
    );

    // THEN neither a time lookup over those days, an attribute lookup nor
    // an EventId lookup returns it
    let since = json!({ "StartTime": "2026-11-19T00:00:00Z" });
    let (found, pages) = all_pages(&store, since).await;
    assert_eq!(found, [id("50")]);
    assert_eq!(pages, 6, "one page per day from 11-24 back to 11-19");
    let mut q = by("EventName", "AuthorizeSecurityGroupIngress");
    q["StartTime"] = json!("2026-11-19T00:00:00Z");
    assert_eq!(ids(&store, q).await, [id("50")]);
    assert_eq!(
        ids(&store, by("EventId", &id("02"))).await,
        Vec::<String>::new()
    );
    table.delete().await;
}

#[tokio::test]
async fn pages_over_events_sharing_one_event_time_hold_each_exactly_once() {
    // GIVEN 25 events with the same eventTime
    let table = TestTable::history().await;
    let store = table.store();
    let mut expected = BTreeSet::new();
    for i in 0..25 {
        let mut p = event_json("eventbridge/api-call-write.json");
        let eid = format!("00000000-0000-4000-8000-{i:012}");
        p["detail"]["eventID"] = json!(eid);
        p["detail"]["eventTime"] = json!("2026-11-23T08:00:00Z");
        record(&store, &p.to_string(), 90).await;
        expected.insert(eid);
    }

    // WHEN they are read 10 at a time
    let mut q = by("EventName", "AuthorizeSecurityGroupIngress");
    q["MaxResults"] = json!(10);
    q["StartTime"] = json!("2026-11-23T08:00:00Z");
    q["EndTime"] = json!("2026-11-23T08:00:00Z");
    let (found, pages) = all_pages(&store, q.clone()).await;

    // THEN three pages hold all 25, each once, in the history's order
    assert_eq!(pages, 3);
    assert_eq!(found.len(), 25);
    let unique: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(unique, expected);
    let mut newest_first = found.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(found, newest_first);

    // AND a token is refused with other parameters
    let l = lookup::parse_request(q.to_string().as_bytes(), &lookup_settings(), &now()).unwrap();
    let first = lookup::lookup(&store, &l, &lookup_settings(), &now())
        .await
        .unwrap();
    let mut other = q.clone();
    other["MaxResults"] = json!(20);
    other["NextToken"] = json!(first.next_token.unwrap());
    let err = lookup::parse_request(other.to_string().as_bytes(), &lookup_settings(), &now())
        .unwrap_err();
    assert_eq!(err.code(), "InvalidNextTokenException");
    table.delete().await;
}

/// CloudTrail's `LookupEvents` output, strictly: an unknown or missing
/// field, or a wrong type, fails the parse.
#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct LookupEventsOutput {
    events: Vec<CloudTrailEvent>,
    next_token: Option<String>,
}

#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CloudTrailEvent {
    event_id: String,
    event_name: String,
    read_only: String,
    access_key_id: Option<String>,
    /// Epoch seconds: the AWS JSON protocol's timestamp.
    event_time: f64,
    event_source: String,
    username: Option<String>,
    resources: Vec<Resource>,
    cloud_trail_event: String,
}

#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Resource {
    resource_type: Option<String>,
    resource_name: Option<String>,
}

#[tokio::test]
async fn the_cloudtrail_json_protocol_gets_cloudtrails_lookup_events_output() {
    let (table, store) = samples().await;
    let call = |target: Option<&'static str>, body: Value| {
        let store = &store;
        async move {
            lookup::http(
                store,
                &lookup_settings(),
                "POST",
                target,
                body.to_string().as_bytes(),
                &now(),
            )
            .await
        }
    };
    // WHEN a CloudTrail client posts LookupEvents
    let mut q = by("Username", "bob");
    q["MaxResults"] = json!(1);
    let r = call(Some(lookup::TARGET), q.clone()).await;

    // THEN the answer parses as LookupEventsOutput, with the newest event
    // first, its record as a JSON string, and a token to the next
    assert_eq!(r.status, 200, "{}", r.body);
    let out: LookupEventsOutput = serde_json::from_str(&r.body).unwrap();
    assert_eq!(out.events.len(), 1);
    let e = &out.events[0];
    assert_eq!(e.event_id, id("06"));
    assert_eq!(e.event_name, "AttachRolePolicy");
    assert_eq!(e.read_only, "false");
    assert_eq!(e.access_key_id.as_deref(), Some("AKIAEXAMPLEKEY00002"));
    assert_eq!(
        e.event_time,
        parse_time("2026-11-24T01:30:45Z").timestamp() as f64
    );
    assert_eq!(e.event_source, "iam.amazonaws.com");
    assert_eq!(e.username.as_deref(), Some("bob"));
    // The role by its name, the policy by its ARN, as CloudTrail shows them.
    let shown: Vec<(Option<&str>, Option<&str>)> = e
        .resources
        .iter()
        .map(|r| (r.resource_type.as_deref(), r.resource_name.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            (Some("AWS::IAM::Role"), Some("deploy")),
            (
                Some("AWS::IAM::Policy"),
                Some("arn:aws:iam::aws:policy/AdministratorAccess")
            ),
        ]
    );
    let record: Value = serde_json::from_str(&e.cloud_trail_event).unwrap();
    assert_eq!(record["eventID"], json!(id("06")));
    q["NextToken"] = json!(out.next_token.unwrap());
    let second: LookupEventsOutput =
        serde_json::from_str(&call(Some(lookup::TARGET), q).await.body).unwrap();
    assert_eq!(second.events[0].event_id, id("02"));

    // AND errors are AWS JSON protocol errors with status 400
    for (target, body, code) in [
        (
            Some(lookup::TARGET),
            json!({ "MaxResults": 99 }),
            "InvalidMaxResultsException",
        ),
        (
            Some(lookup::TARGET),
            json!({ "StartTime": 2, "EndTime": 1 }),
            "InvalidTimeRangeException",
        ),
        (
            Some(lookup::TARGET),
            json!({ "NextToken": "forged.token" }),
            "InvalidNextTokenException",
        ),
        (
            Some(lookup::TARGET),
            json!({ "LookupAttributes": [] }),
            "InvalidLookupAttributesException",
        ),
        (
            Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DeleteTrail"),
            json!({}),
            "UnknownOperationException",
        ),
    ] {
        let r = call(target, body).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["__type"], json!(code), "{}", r.body);
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let bad = lookup::http(
        &store,
        &lookup_settings(),
        "POST",
        None,
        b"{not json",
        &now(),
    )
    .await;
    assert_eq!(bad.status, 400);
    let get = lookup::http(&store, &lookup_settings(), "GET", None, b"", &now()).await;
    assert_eq!(get.status, 405);
    table.delete().await;
}

/// Writes an event as a stack deployed before records were stored once
/// wrote it: the record JSON (`rec`) on the primary item and on every index
/// item, a ReadOnly item, nothing packed, no `ro`; `region` is where that
/// stack put it (global events: in every served region).
async fn record_in_old_layout(table: &TestTable, payload: &str, region: &str) -> String {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use trailkeep_shared::aws::history_table::attr;
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    let n = normalize(payload, &ctx).records.remove(0);
    let expires_at = n.record.event_time.timestamp() + 90 * 86_400;
    let mut keys = vec![(
        history::primary_pk(region, &n.record.event_id),
        history::PRIMARY_SK.to_owned(),
    )];
    keys.extend(
        history::index_items(&n.record, region, expires_at, 1)
            .into_iter()
            .map(|i| (i.pk, i.sk)),
    );
    let read_only = if n.record.is_read_only() {
        "true"
    } else {
        "false"
    };
    keys.push((
        history::attribute_pk(
            region,
            history::LookupAttribute::ReadOnly,
            read_only,
            &trailkeep_shared::time::day(&n.record.event_time),
        ),
        history::index_sk(&n.record.event_time, &n.record.event_id),
    ));
    for (pk, sk) in keys {
        table
            .client
            .put_item()
            .table_name(&table.name)
            .item(attr::PK, A::S(pk))
            .item(attr::SK, A::S(sk))
            .item(attr::RECORD, A::S(n.json.clone()))
            .item(attr::EXPIRES_AT, A::N(expires_at.to_string()))
            .send()
            .await
            .unwrap();
    }
    n.record.event_id
}

#[tokio::test]
async fn a_history_written_in_the_old_layout_answers_beside_the_new_one() {
    // GIVEN events stored by a stack before the upgrade (every item holding
    // the record JSON) and events stored after it (packed, once), on one day
    let table = TestTable::history().await;
    let store = table.store();
    let mut old_ids = Vec::new();
    for (i, minute) in ["00", "02", "04"].iter().enumerate() {
        let mut p = event_json("eventbridge/api-call-write.json");
        p["detail"]["eventID"] = json!(id(&format!("7{i}")));
        p["detail"]["eventTime"] = json!(format!("2026-11-24T08:{minute}:00Z"));
        old_ids.push(record_in_old_layout(&table, &p.to_string(), "eu-west-1").await);
    }
    for (i, minute) in ["01", "03", "05"].iter().enumerate() {
        let mut p = event_json("eventbridge/api-call-write.json");
        p["detail"]["eventID"] = json!(id(&format!("8{i}")));
        p["detail"]["eventTime"] = json!(format!("2026-11-24T08:{minute}:00Z"));
        record(&store, &p.to_string(), 90).await;
    }
    let newest_first: Vec<String> = ["82", "72", "81", "71", "80", "70"]
        .iter()
        .map(|n| id(n))
        .collect();

    // THEN a time lookup, paged 4 by 4, and an attribute lookup return both
    // layouts' events in order, each once, with their full records
    let window = json!({ "StartTime": "2026-11-24T07:00:00Z", "EndTime": "2026-11-24T09:00:00Z" });
    let mut paged = window.clone();
    paged["MaxResults"] = json!(4);
    let (found, pages) = all_pages(&store, paged).await;
    assert_eq!(found, newest_first);
    assert!(pages >= 2, "{pages} pages");
    let mut by_name = by("EventName", "AuthorizeSecurityGroupIngress");
    by_name["StartTime"] = window["StartTime"].clone();
    by_name["EndTime"] = window["EndTime"].clone();
    assert_eq!(ids(&store, by_name).await, newest_first);
    let l =
        lookup::parse_request(window.to_string().as_bytes(), &lookup_settings(), &now()).unwrap();
    let page = lookup::lookup(&store, &l, &lookup_settings(), &now())
        .await
        .unwrap();
    for e in lookup::response_json(&page)["Events"].as_array().unwrap() {
        let inner: Value = serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(inner["eventID"], e["EventId"], "{e}");
        assert_eq!(inner["eventName"], "AuthorizeSecurityGroupIngress");
    }
    // AND an EventId lookup finds an old one and a new one
    for n in ["71", "81"] {
        assert_eq!(ids(&store, by("EventId", &id(n))).await, [id(n)]);
    }
    // AND a re-delivery of an old event after the upgrade adds nothing: its
    // stored version (old layout) stays the one indexed
    let before = table.items().await.len();
    let mut again = event_json("eventbridge/api-call-write.json");
    again["detail"]["eventID"] = json!(old_ids[1].clone());
    again["detail"]["eventTime"] = json!("2026-11-24T08:02:00Z");
    record(&store, &again.to_string(), 90).await;
    let items = table.items().await;
    assert_eq!(items.len(), before);
    // … its index items are rewritten keys-only, and lead to its old primary
    use trailkeep_shared::aws::history_table::attr;
    let sk_of = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        i[attr::SK].as_s().unwrap().clone()
    };
    // (its ReadOnly item, which today's layout does not write, stays as it
    // was until it expires)
    let rewritten: Vec<_> = items
        .iter()
        .filter(|i| sk_of(i).ends_with(&old_ids[1]))
        .filter(|i| !i[attr::PK].as_s().unwrap().contains("#ReadOnly#"))
        .collect();
    assert!(rewritten.len() > 2, "{rewritten:?}");
    for item in rewritten {
        assert_eq!(
            item.contains_key(attr::RECORD),
            sk_of(item) == history::PRIMARY_SK,
            "{item:?}"
        );
    }
    assert_eq!(all_pages(&store, window.clone()).await.0, newest_first);
    // AND ReadOnly finds the old layout's events by their ReadOnly items and
    // the new ones by their time items, each once
    let mut writes = by("ReadOnly", "false");
    writes["StartTime"] = window["StartTime"].clone();
    writes["EndTime"] = window["EndTime"].clone();
    writes["MaxResults"] = json!(4);
    assert_eq!(ids(&store, writes.clone()).await, newest_first);
    writes["LookupAttributes"][0]["AttributeValue"] = json!("true");
    assert!(ids(&store, writes).await.is_empty());

    // GIVEN a global event the old stack copied into both served regions,
    // and one stored once after the upgrade
    let mut global = event_json("eventbridge/iam-global-call.json");
    global["detail"]["eventTime"] = json!("2026-11-24T08:06:00Z");
    global["detail"]["eventID"] = json!(id("90"));
    for region in ["eu-west-1", "us-east-1"] {
        record_in_old_layout(&table, &global.to_string(), region).await;
    }
    let mut new_global = global.clone();
    new_global["detail"]["eventTime"] = json!("2026-11-24T08:07:00Z");
    new_global["detail"]["eventID"] = json!(id("91"));
    record(&store, &new_global.to_string(), 90).await;
    let in_region = |region: &str| {
        let mut w = window.clone();
        w["Region"] = json!(region);
        w["MaxResults"] = json!(2);
        w
    };
    let globals = [id("91"), id("90")];
    let eu: Vec<String> = globals
        .iter()
        .cloned()
        .chain(newest_first.clone())
        .collect();
    for _delivery in 0..2 {
        // THEN each region's lookups show both, once, in order
        assert_eq!(ids(&store, in_region("eu-west-1")).await, eu);
        assert_eq!(ids(&store, in_region("us-east-1")).await, globals);
        let mut by_user = by("Username", "bob");
        by_user["Region"] = json!("us-east-1");
        by_user["StartTime"] = window["StartTime"].clone();
        by_user["EndTime"] = window["EndTime"].clone();
        assert_eq!(ids(&store, by_user).await, globals);
        assert_eq!(ids(&store, by("EventId", &id("90"))).await, [id("90")]);
        // … also after the old one is delivered again, now stored in the
        // global partition too
        record(&store, &global.to_string(), 90).await;
    }
    table.delete().await;
}

#[tokio::test]
async fn records_are_read_in_batches_of_at_most_100_leaving_out_absent_and_expired() {
    // Contract of the DynamoDB adapter's BatchGetItem: AWS (and moto) take
    // at most 100 keys a request, so 131 keys are read in two.
    use trailkeep_shared::history::lookup::HistoryReader;
    use trailkeep_shared::history::{pack, HistoryStore, Item, PRIMARY_SK};
    let table = TestTable::history().await;
    let store = table.store();
    let packed: Vec<Vec<u8>> = (0..130).map(|i| pack(&format!("{{\"n\":{i}}}"))).collect();
    let items: Vec<Item<'_>> = (0..130)
        .map(|i| Item {
            pk: format!("eu-west-1#EventId#{i}"),
            sk: PRIMARY_SK.into(),
            record: Some(&packed[i]),
            read_only: None,
            // Every tenth one expired at `now` = 1,000.
            expires_at: if i % 10 == 0 { 1_000 } else { 2_000 },
            ..Item::default()
        })
        .collect();
    store.put_all(&items).await.unwrap();
    let mut wanted: Vec<String> = (0..130).map(|i| format!("eu-west-1#EventId#{i}")).collect();
    wanted.push("eu-west-1#EventId#absent".into());
    let found = store.records(&wanted, 1_000, false).await.unwrap();
    assert_eq!(store.records(&wanted, 1_000, true).await.unwrap(), found);
    assert_eq!(found.len(), 130 - 13);
    for i in 0..130 {
        let got = found.get(&format!("eu-west-1#EventId#{i}"));
        if i % 10 == 0 {
            assert_eq!(got, None, "{i} expired");
        } else {
            assert_eq!(
                got.map(String::as_str),
                Some(format!("{{\"n\":{i}}}").as_str())
            );
        }
    }
    table.delete().await;
}

#[tokio::test]
async fn a_history_in_four_shards_answers_every_lookup_as_an_unsharded_one_does() {
    // GIVEN the same 70 management events (regional and global, reads and
    // writes) recorded unsharded in one table, in four shards in another,
    // and in four shards by ingest batches of 10 (shared index items) in a
    // third
    let (one, four, batched) = (
        TestTable::history().await,
        TestTable::history().await,
        TestTable::history().await,
    );
    let (store1, store4, store_b) = (one.store(), four.store(), batched.store());
    let mut events = Vec::new();
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    let t0 = parse_time("2026-11-24T08:00:00Z");
    let mut values: BTreeSet<(&str, String)> = BTreeSet::new();
    for i in (0..100).filter(|i| i % 10 < 7) {
        for n in normalize(&crate::load::payload(i, t0), &ctx).records {
            for (store, shards) in [(&store1, 1), (&store4, 4)] {
                let settings = HistorySettings {
                    retention_days: 90,
                    shards,
                };
                history::record(store, &settings, &n).await.unwrap();
            }
            events.push(n.clone());
            for a in [
                LookupAttribute::EventName,
                LookupAttribute::Username,
                LookupAttribute::EventSource,
                LookupAttribute::ResourceType,
                LookupAttribute::ResourceName,
                LookupAttribute::AccessKeyId,
            ] {
                for v in a.values(&n.record) {
                    values.insert((a.as_str(), v.to_owned()));
                }
            }
        }
    }
    let settings = HistorySettings {
        retention_days: 90,
        shards: 4,
    };
    for batch in events.chunks(10) {
        let mut entries = Vec::new();
        for n in batch {
            let (_, _, e) = history::claim_noting(&store_b, &settings, n, None)
                .await
                .unwrap();
            entries.extend(e);
        }
        history::write_index(&store_b, entries, &settings)
            .await
            .unwrap();
    }
    assert!(
        four.items()
            .await
            .iter()
            .any(|i| i[attr::PK].as_s().unwrap().ends_with("~3")),
        "the four-shard table is sharded"
    );
    let shared = batched
        .items()
        .await
        .iter()
        .filter(|i| i.contains_key(attr::MEMBERS))
        .count();
    assert!(
        shared > 20,
        "the batched table shares index items: {shared}"
    );
    values.insert(("ReadOnly", "true".into()));
    values.insert(("ReadOnly", "false".into()));

    // THEN every lookup, paged 3 by 3 in both served regions, returns the
    // same events in the same order from both
    let pages = |store: &DynamoHistory, shards: u32, request: Value| {
        let store = store.clone();
        async move {
            let settings = LookupSettings {
                account_id: String::new(),
                organization: false,
                shards,
                ..lookup_settings()
            };
            let (mut ids, mut token) = (Vec::new(), None::<String>);
            loop {
                let mut body = request.clone();
                body["MaxResults"] = json!(3);
                if let Some(t) = &token {
                    body["NextToken"] = json!(t);
                }
                let l =
                    lookup::parse_request(body.to_string().as_bytes(), &settings, &now()).unwrap();
                let page = lookup::lookup(&store, &l, &settings, &now()).await.unwrap();
                for e in lookup::response_json(&page)["Events"].as_array().unwrap() {
                    ids.push(e["EventId"].as_str().unwrap().to_owned());
                }
                token = page.next_token;
                if token.is_none() {
                    return ids;
                }
            }
        }
    };
    let mut requests = vec![json!({})];
    requests.extend(values.iter().map(|(a, v)| by(a, v)));
    let mut seen = 0;
    for region in REGIONS {
        for mut request in requests.clone() {
            request["Region"] = json!(region);
            request["StartTime"] = json!("2026-11-24T00:00:00Z");
            let unsharded = pages(&store1, 1, request.clone()).await;
            let sharded = pages(&store4, 4, request.clone()).await;
            assert_eq!(sharded, unsharded, "{request}");
            let shared = pages(&store_b, 4, request.clone()).await;
            assert_eq!(shared, unsharded, "shared items: {request}");
            let distinct: BTreeSet<_> = sharded.iter().collect();
            assert_eq!(distinct.len(), sharded.len(), "repeats: {request}");
            seen += sharded.len();
        }
    }
    assert!(seen > 70, "{seen}");
    one.delete().await;
    four.delete().await;
    batched.delete().await;
}
