//! Normalization of every payload in events/, and of the edge cases around them.

use super::*;
use crate::model::EventCategory;
use proptest::prelude::*;
use serde_json::{json, Value};

fn ctx() -> Context {
    Context {
        account_id: "111122223333".into(),
    }
}

fn load(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn one(name: &str) -> Normalized {
    let batch = normalize(&load(name).to_string(), &ctx());
    assert!(batch.rejected.is_empty(), "{name}: {:?}", batch.rejected);
    assert_eq!(batch.records.len(), 1, "{name}");
    batch.records.into_iter().next().unwrap()
}

/// The JSON the record was serialized to, parsed back.
fn written(n: &Normalized) -> Value {
    serde_json::from_str(&n.json).unwrap()
}

#[test]
fn a_cloudtrail_record_is_kept_as_aws_wrote_it() {
    let n = one("eventbridge/api-call-write.json");
    let source = load("eventbridge/api-call-write.json")["detail"].clone();
    // Every field of the source, with its value and nothing else: the
    // version stays 1.10.
    assert_eq!(written(&n), source);
    assert_eq!(written(&n)["eventVersion"], "1.10");
    // The text is AWS's, only the whitespace between tokens gone.
    assert_eq!(n.json, serde_json::to_string(&source).unwrap());
    assert_eq!(n.record.read_only, Some(false));
    assert_eq!(n.record.event_category, Some(EventCategory::Management));
    assert_eq!(n.record.lookup_username(), Some("bob"));
}

#[test]
fn a_record_naming_another_account_than_the_bus_it_came_from_is_refused() {
    let mut v = load("eventbridge/api-call-write.json");
    // A member's own event, as its forwarder sends it: accepted, its own.
    v["account"] = json!("222233334444");
    v["detail"]["recipientAccountId"] = json!("222233334444");
    let batch = normalize(&v.to_string(), &ctx());
    assert_eq!(batch.records.len(), 1, "{:?}", batch.rejected);
    assert_eq!(batch.records[0].record.recipient_account_id, "222233334444");
    // The same account's bus claiming the stack's account (or a third's):
    // refused, named by field.
    for claimed in ["111122223333", "333344445555"] {
        v["detail"]["recipientAccountId"] = json!(claimed);
        let batch = normalize(&v.to_string(), &ctx());
        assert!(batch.records.is_empty(), "{claimed}");
        let error = batch.rejected[0].to_string();
        assert!(
            error.contains("detail.recipientAccountId") && error.contains("222233334444"),
            "{error}"
        );
    }
    // No recipientAccountId in the record: the bus's account is filled in.
    v["detail"]
        .as_object_mut()
        .unwrap()
        .remove("recipientAccountId");
    let batch = normalize(&v.to_string(), &ctx());
    assert_eq!(batch.records[0].record.recipient_account_id, "222233334444");
}

#[test]
fn read_only_call_of_an_assumed_role_is_found_under_its_session_name() {
    let n = one("eventbridge/api-call-read.json");
    assert_eq!(n.record.read_only, Some(true));
    assert_eq!(n.record.lookup_username(), Some("alice"));
    assert_eq!(
        n.record.user_identity.access_key_id.as_deref(),
        Some("ASIAEXAMPLEKEY00001")
    );
    assert_eq!(written(&n)["responseElements"], Value::Null);
}

#[test]
fn console_sign_ins_are_global_write_management_events() {
    for (file, outcome) in [
        ("console-signin-success.json", "Success"),
        ("console-signin-failure.json", "Failure"),
    ] {
        let n = one(&format!("eventbridge/{file}"));
        let out = written(&n);
        assert_eq!(out["eventType"], "AwsConsoleSignIn", "{file}");
        // AWS records a sign-in in the region of the sign-in endpoint; the
        // record keeps it, and the event is still global (every region's
        // history, the global-service log files).
        assert_eq!(out["awsRegion"], "eu-west-1", "{file}: as AWS wrote it");
        assert!(crate::ingest::classify::is_global(&n.record), "{file}");
        assert_eq!(out["readOnly"], false, "{file}");
        assert_eq!(out["managementEvent"], true, "{file}");
        assert_eq!(out["responseElements"]["ConsoleLogin"], outcome, "{file}");
        assert_eq!(out["requestParameters"], Value::Null, "{file}");
    }
    let failed = written(&one("eventbridge/console-signin-failure.json"));
    assert_eq!(failed["errorMessage"], "Failed authentication");
}

#[test]
fn service_event_keeps_fields_the_model_does_not_name() {
    let out = written(&one("eventbridge/service-event.json"));
    assert_eq!(out["eventType"], "AwsServiceEvent");
    assert_eq!(out["serviceEventDetails"], json!({"keyRotated": true}));
    assert_eq!(out["userIdentity"]["invokedBy"], "kms.amazonaws.com");
}

#[test]
fn iam_call_is_global() {
    let n = one("eventbridge/iam-global-call.json");
    assert_eq!(n.record.aws_region, "us-east-1");
    assert!(crate::ingest::classify::is_global(&n.record));
    assert_eq!(n.record.resources.as_ref().map(Vec::len), Some(2));
}

#[test]
fn a_cloudtrail_record_without_classification_gains_no_fields_but_is_classified() {
    // An AWS record that does not say readOnly, eventCategory or
    // managementEvent (AWS wrote none before 1.06/1.07) is stored without
    // them; the rules still classify it for history and trail selection.
    let source = load("eventbridge/console-action.json")["detail"].clone();
    for field in ["readOnly", "eventCategory", "managementEvent"] {
        assert!(source.get(field).is_none(), "the sample has no {field}");
    }
    let n = one("eventbridge/console-action.json");
    assert_eq!(written(&n), source);
    assert!(n.record.is_read_only(), "Describe* reads");
    assert_eq!(n.record.category(), EventCategory::Management);
}

#[test]
fn lambda_invoke_is_a_data_event() {
    let n = one("eventbridge/lambda-invoke-data-event.json");
    assert_eq!(n.record.event_category, Some(EventCategory::Data));
    assert_eq!(n.record.management_event, Some(false));
}

#[test]
fn s3_put_notification_becomes_a_put_object_data_event() {
    let n = one("s3/put.json");
    let out = written(&n);
    assert_eq!(out["eventSource"], "s3.amazonaws.com");
    assert_eq!(out["eventName"], "PutObject");
    assert_eq!(out["eventCategory"], "Data");
    assert_eq!(out["managementEvent"], false);
    assert_eq!(out["readOnly"], false);
    assert_eq!(out["eventTime"], "2026-11-24T01:40:00Z");
    assert_eq!(out["awsRegion"], "eu-west-1");
    assert_eq!(out["recipientAccountId"], "111122223333");
    assert_eq!(out["sourceIPAddress"], "203.0.113.7");
    assert_eq!(out["requestID"], "C3D13FE58DE4C810");
    assert_eq!(
        out["userIdentity"],
        json!({"type": "IAMUser", "principalId": "AIDAEXAMPLEUSERID01"})
    );
    // The notification's key is URL-encoded: '+' is a space, %28 %29 parentheses.
    assert_eq!(
        out["requestParameters"]["key"],
        "incoming/photo 2026(11).jpg"
    );
    assert_eq!(
        out["resources"],
        json!([
            {"ARN": "arn:aws:s3:::example-uploads/incoming/photo 2026(11).jpg", "type": "AWS::S3::Object"},
            {"ARN": "arn:aws:s3:::example-uploads", "accountId": "111122223333", "type": "AWS::S3::Bucket"}
        ])
    );
    assert_eq!(
        out["responseElements"],
        json!({"x-amz-version-id": "096fKKXTRTtl3on89fVO.nfljtsv6qko"})
    );
}

#[test]
fn s3_copy_and_delete_notifications_name_the_operation_and_the_role() {
    let copy = written(&one("s3/copy.json"));
    assert_eq!(copy["eventName"], "CopyObject");
    assert_eq!(copy["userIdentity"]["type"], "AssumedRole");
    assert_eq!(
        copy["userIdentity"]["principalId"],
        "AROAEXAMPLEROLEID:backup-job"
    );
    let delete = written(&one("s3/delete.json"));
    assert_eq!(delete["eventName"], "DeleteObject");
    assert_eq!(delete["readOnly"], false);
}

#[test]
fn s3_events_from_eventbridge_become_data_events() {
    let created = written(&one("eventbridge/s3-object-created.json"));
    assert_eq!(created["eventName"], "PutObject");
    assert_eq!(created["eventCategory"], "Data");
    assert_eq!(
        created["userIdentity"],
        json!({"type": "AWSAccount", "principalId": "111122223333", "accountId": "111122223333"})
    );
    assert_eq!(
        created["resources"][0]["ARN"],
        "arn:aws:s3:::example-reports/2026/11/q3 summary.pdf"
    );
    let deleted = written(&one("eventbridge/s3-object-deleted.json"));
    assert_eq!(deleted["eventName"], "DeleteObject");
}

#[test]
fn the_same_s3_operation_has_the_same_event_id_on_both_paths() {
    let notification = one("s3/put.json");
    // The same operation reported through EventBridge (key not URL-encoded there).
    let mut eb = load("eventbridge/s3-object-created.json");
    eb["detail"]["bucket"]["name"] = json!("example-uploads");
    eb["detail"]["object"]["key"] = json!("incoming/photo 2026(11).jpg");
    eb["detail"]["object"]["version-id"] = json!("096fKKXTRTtl3on89fVO.nfljtsv6qko");
    eb["detail"]["object"]["sequencer"] = json!("0055AED6DCD90281E5");
    let via_eventbridge = normalize(&eb.to_string(), &ctx()).records.remove(0);
    assert_eq!(
        notification.record.event_id,
        via_eventbridge.record.event_id
    );
    // And a re-delivery of the notification has it too.
    assert_eq!(
        one("s3/put.json").record.event_id,
        notification.record.event_id
    );
}

#[test]
fn custom_application_event_maps_the_envelope_and_keeps_the_rest_of_the_detail() {
    let n = one("eventbridge/custom-app-event.json");
    let out = written(&n);
    assert_eq!(out["eventID"], "c0ffee00-1234-4abc-9def-0123456789ab");
    assert_eq!(out["eventSource"], "com.example.billing");
    assert_eq!(out["eventName"], "InvoiceApproved");
    assert_eq!(out["eventTime"], "2026-11-24T01:50:00Z");
    assert_eq!(out["eventType"], "ApplicationEvent");
    assert_eq!(out["recipientAccountId"], "111122223333");
    assert_eq!(out["userIdentity"]["userName"], "dave");
    assert_eq!(out["sourceIPAddress"], "198.51.100.42");
    assert_eq!(out["requestParameters"]["invoiceId"], "INV-2026-0042");
    assert_eq!(
        out["additionalEventData"],
        json!({"approvalChain": ["erin", "dave"]})
    );
    assert_eq!(
        out["resources"],
        json!([{"ARN": "arn:aws:dynamodb:eu-west-1:111122223333:table/invoices", "accountId": "111122223333"}])
    );
    assert_eq!(out["eventCategory"], "Management");
    assert_eq!(out["readOnly"], false);
}

#[test]
fn an_aws_service_event_without_cloudtrail_shape_is_a_service_event() {
    let payload = json!({
        "version": "0", "id": "1d1e1f00-0000-4000-8000-000000000001",
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "111122223333", "time": "2026-11-24T02:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc"],
        "detail": {"instance-id": "i-0abc", "state": "stopped"}
    });
    let batch = normalize(&payload.to_string(), &ctx());
    let out = written(&batch.records[0]);
    assert_eq!(out["eventSource"], "ec2.amazonaws.com");
    assert_eq!(out["eventType"], "AwsServiceEvent");
    assert_eq!(
        out["userIdentity"],
        json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"})
    );
    assert_eq!(
        out["additionalEventData"],
        json!({"instance-id": "i-0abc", "state": "stopped"})
    );
}

#[test]
fn a_bad_record_is_rejected_with_its_field_and_the_good_ones_beside_it_go_on() {
    let batch = normalize(&load("s3/batch-with-bad-record.json").to_string(), &ctx());
    let names: Vec<&str> = batch
        .records
        .iter()
        .map(|n| n.record.event_name.as_str())
        .collect();
    assert_eq!(names, ["PostObject", "CompleteMultipartUpload"]);
    assert_eq!(batch.rejected.len(), 1);
    let r = &batch.rejected[0];
    assert_eq!(r.index, 1);
    let msg = r.to_string();
    assert!(
        msg.starts_with("record 1: field Records[] is invalid"),
        "{msg}"
    );
}

#[test]
fn malformed_payloads_are_rejected_with_a_clear_reason() {
    let unknown = normalize(&load("malformed/unknown-shape.json").to_string(), &ctx());
    assert_eq!(unknown.rejected[0].error, RecordError::UnknownPayload);

    let bad_time = normalize(&load("malformed/bad-event-time.json").to_string(), &ctx());
    assert!(bad_time.records.is_empty());
    let msg = bad_time.rejected[0].to_string();
    assert!(
        msg.contains("eventTime \"24/11/2026 01:02\" is not an RFC 3339 timestamp"),
        "{msg}"
    );
    assert!(
        msg.contains("a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b99") || msg.contains("6f1b2b7e"),
        "{msg}"
    );

    let missing = normalize(
        &load("malformed/missing-event-source.json").to_string(),
        &ctx(),
    );
    let msg = missing.rejected[0].to_string();
    assert!(msg.contains("missing field `eventSource`"), "{msg}");
}

#[test]
fn an_event_over_256_kb_is_refused() {
    let mut payload = load("eventbridge/api-call-write.json");
    payload["detail"]["requestParameters"] = json!({"blob": "x".repeat(MAX_RECORD_BYTES)});
    let batch = normalize(&payload.to_string(), &ctx());
    assert!(batch.records.is_empty());
    assert!(
        matches!(batch.rejected[0].error, RecordError::TooLarge { bytes } if bytes > MAX_RECORD_BYTES)
    );
    assert!(batch.rejected[0].to_string().contains("256 KB"));
}

#[test]
fn an_event_just_under_the_limit_is_accepted() {
    let mut payload = load("eventbridge/api-call-write.json");
    let base = one("eventbridge/api-call-write.json").json.len();
    let old = serde_json::to_string(&payload["detail"]["requestParameters"])
        .unwrap()
        .len();
    // {"blob":"…"} adds 11 bytes of syntax around the filler.
    let filler = MAX_RECORD_BYTES - base + old - 11;
    payload["detail"]["requestParameters"] = json!({"blob": "x".repeat(filler)});
    let batch = normalize(&payload.to_string(), &ctx());
    assert_eq!(batch.records.len(), 1, "{:?}", batch.rejected);
    assert_eq!(batch.records[0].json.len(), MAX_RECORD_BYTES);
}

#[test]
fn non_api_s3_notifications_and_test_events_are_ignored_not_rejected() {
    let mut payload = load("s3/put.json");
    payload["Records"][0]["eventName"] = json!("LifecycleExpiration:Delete");
    let batch = normalize(&payload.to_string(), &ctx());
    assert!(batch.records.is_empty() && batch.rejected.is_empty());
    assert_eq!(batch.ignored.len(), 1);
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
    assert_eq!(normalize(&test_event.to_string(), &ctx()).ignored.len(), 1);
}

#[test]
fn cloudtrail_detail_without_event_id_takes_the_envelope_id() {
    let mut payload = load("eventbridge/api-call-write.json");
    payload["detail"].as_object_mut().unwrap().remove("eventID");
    let batch = normalize(&payload.to_string(), &ctx());
    assert_eq!(
        batch.records[0].record.event_id,
        "6f1b2b7e-6a5b-4f3d-9d43-5c1a9e2f1a02"
    );
}

#[test]
fn cloudtrail_detail_without_time_or_region_takes_the_envelope_values() {
    let mut payload = load("eventbridge/api-call-write.json");
    let detail = payload["detail"].as_object_mut().unwrap();
    detail.remove("eventTime");
    detail.remove("awsRegion");
    payload["time"] = json!("2026-11-24T05:06:07Z");
    let batch = normalize(&payload.to_string(), &ctx());
    let mut out = written(&batch.records[0]);
    assert_eq!(out["eventTime"], "2026-11-24T05:06:07Z");
    assert_eq!(out["awsRegion"], "eu-west-1");
    // Only the two missing fields were added; the rest is as sent, in order.
    let out = out.as_object_mut().unwrap();
    out.remove("eventTime");
    out.remove("awsRegion");
    assert_eq!(
        serde_json::to_string(out).unwrap(),
        payload["detail"].to_string()
    );
}

proptest! {
    /// `compact` removes exactly the whitespace between tokens: any JSON,
    /// pretty-printed, comes back as its compact text, strings with spaces,
    /// tabs, quotes and backslashes unchanged.
    #[test]
    fn compact_removes_only_the_whitespace_between_tokens(
        keys in proptest::collection::vec("[ a-z\\\\\"\t\n]{0,8}", 1..5),
        strings in proptest::collection::vec("[ a-zA-Z\\\\\"\t\né☃]{0,12}", 5),
        n in any::<i64>(),
        f in -1e9f64..1e9,
    ) {
        let mut m = serde_json::Map::new();
        for (i, (k, v)) in keys.iter().zip(&strings).enumerate() {
            m.insert(k.clone(), json!([v, {"n": n, "f": f, "i": i, "z": null, "t": true}]));
        }
        let v = Value::Object(m);
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        prop_assert_eq!(super::compact(&pretty), v.to_string());
    }
}

#[test]
fn an_event_with_no_time_anywhere_is_refused() {
    let mut payload = load("eventbridge/api-call-write.json");
    payload["detail"]
        .as_object_mut()
        .unwrap()
        .remove("eventTime");
    payload.as_object_mut().unwrap().remove("time");
    let batch = normalize(&payload.to_string(), &ctx());
    assert!(batch.records.is_empty());
    assert_eq!(
        batch.rejected[0].error,
        RecordError::Missing { field: "eventTime" }
    );
}

#[test]
fn a_payload_that_is_not_a_json_object_is_refused() {
    for payload in ["[1, 2]", "\"text\"", "{\"detail-type\": 5}"] {
        let batch = normalize(payload, &ctx());
        assert_eq!(batch.rejected.len(), 1, "{payload}");
    }
    assert_eq!(
        normalize("[1]", &ctx()).rejected[0].error,
        RecordError::UnknownPayload
    );
}

proptest! {
    /// Whatever JSON arrives, normalization answers for it without panicking:
    /// each payload yields records, ignored entries or rejections.
    #[test]
    fn any_json_object_is_answered(keys in proptest::collection::vec("[a-zA-Z-]{1,12}", 0..6), vals in proptest::collection::vec(any::<i64>(), 6)) {
        let mut m = serde_json::Map::new();
        for (k, v) in keys.iter().zip(vals) {
            m.insert(k.clone(), json!(v));
        }
        let batch = normalize(&Value::Object(m).to_string(), &ctx());
        prop_assert_eq!(batch.records.len() + batch.ignored.len() + batch.rejected.len(), 1);
    }

    /// Record JSON round-trips: what is written reads back as the same record.
    #[test]
    fn written_records_read_back_equal(name in "[A-Z][a-zA-Z]{2,20}", extra in "[a-z]{1,10}", n in any::<i32>()) {
        let mut payload = load("eventbridge/api-call-write.json");
        payload["detail"]["eventName"] = json!(name);
        payload["detail"][format!("x{extra}")] = json!(n);
        let batch = normalize(&payload.to_string(), &ctx());
        let rec = &batch.records[0];
        let back: crate::model::Record = serde_json::from_str(&rec.json).unwrap();
        prop_assert_eq!(&back, &rec.record);
    }
}

/// A payload with CloudTrail's shape from `source`.
fn from_source(file: &str, source: &str) -> Batch {
    let mut payload = load(file);
    payload["source"] = json!(source);
    normalize(&payload.to_string(), &ctx())
}

#[test]
fn a_cloudtrail_record_from_a_non_aws_source_is_refused_as_forged() {
    for file in [
        "eventbridge/api-call-write.json",
        "eventbridge/console-signin-success.json",
        "eventbridge/service-event.json",
    ] {
        // GIVEN the genuine payload is accepted from its aws.* source
        assert_eq!(normalize(&load(file).to_string(), &ctx()).records.len(), 1);
        for forger in ["com.example.app", "com.example.aws", "iam.amazonaws.com"] {
            // WHEN the same payload comes from any other source
            let batch = from_source(file, forger);
            // THEN it is refused with the reason, and not kept as anything else
            assert!(batch.records.is_empty(), "{file} from {forger}");
            assert_eq!(batch.rejected.len(), 1, "{file} from {forger}");
            let why = batch.rejected[0].to_string();
            assert!(
                why.contains("field source is invalid") && why.contains("forged"),
                "{why}"
            );
        }
    }
    // The sample the local run shows refused: a "StopLogging" from com.example.forger.
    let sample = normalize(&load("malformed/forged-api-call.json").to_string(), &ctx());
    assert!(sample.records.is_empty());
    assert!(sample.rejected[0].to_string().contains("forged"));
}

#[test]
fn an_application_event_cannot_pass_for_an_aws_service() {
    for source in [
        "iam.amazonaws.com",
        "IAM.AmazonAWS.com",
        "s3.amazonaws.com.",
        "aws-iam",
        "AWS.iam",
        "iam.amazonaws.com.cn",
        "iam.amazonaws.com\u{200b}",
        "iam.amаzonaws.com",
    ] {
        let batch = from_source("eventbridge/custom-app-event.json", source);
        assert!(batch.records.is_empty(), "{source}");
        let why = batch.rejected[0].to_string();
        assert!(why.contains("names an AWS service"), "{source}: {why}");
    }
    // An application that claims an AWS eventType keeps the claim only as data.
    let mut payload = load("eventbridge/custom-app-event.json");
    payload["detail"]["eventType"] = json!("AwsApiCall");
    let n = normalize(&payload.to_string(), &ctx()).records.remove(0);
    let out = written(&n);
    assert_eq!(out["eventType"], "ApplicationEvent");
    assert_eq!(out["eventSource"], "com.example.billing");
    assert_eq!(out["additionalEventData"]["eventType"], "AwsApiCall");
}

#[test]
fn values_that_become_keys_are_checked_where_they_enter() {
    let with = |field: &str, value: Value| {
        let mut p = load("eventbridge/api-call-write.json");
        p["detail"][field] = value;
        normalize(&p.to_string(), &ctx())
    };
    let refused = |batch: Batch, field: &str| {
        assert!(batch.records.is_empty(), "{field} accepted");
        let why = batch.rejected[0].to_string();
        assert!(why.contains(&format!("field {field} is invalid")), "{why}");
        assert!(why.len() < 400, "the reason quotes at most a prefix: {why}");
    };
    // Regions: 300 characters, a path, a parent folder, a key separator.
    for region in [
        "a".repeat(300),
        "eu-west-1/../../x".into(),
        "..".into(),
        "eu/west-1".into(),
        "eu-west-1#EventName".into(),
        "EU-WEST-1".into(),
        "eu-west-".into(),
    ] {
        refused(with("awsRegion", json!(region)), "awsRegion");
    }
    for region in [
        "us-east-1",
        "us-gov-west-1",
        "ap-southeast-3",
        "il-central-1",
    ] {
        assert_eq!(
            with("awsRegion", json!(region)).records.len(),
            1,
            "{region}"
        );
    }
    // Event IDs: 5,000 characters, separators, control characters.
    for id in ["x".repeat(5000), "a#b".into(), "a/b".into(), "a\nb".into()] {
        refused(with("eventID", json!(id)), "eventID");
    }
    // The recipient account: 12 digits; and the envelope's account, when
    // the envelope names one (docs/organizations.md "Trust").
    for account in ["12345", "11112222333x", "111122223333#"] {
        refused(
            with("recipientAccountId", json!(account)),
            "detail.recipientAccountId",
        );
        let mut p = load("eventbridge/api-call-write.json");
        p.as_object_mut().unwrap().remove("account");
        p["detail"]["recipientAccountId"] = json!(account);
        refused(normalize(&p.to_string(), &ctx()), "recipientAccountId");
    }
}

proptest! {
    /// History keys cannot collide: region (checked: no `#`) and the
    /// attribute name (a fixed set) lead, the fixed-width day ends, so the
    /// value between them is recovered exactly, whatever `#` it holds.
    #[test]
    fn attribute_partition_keys_are_injective(
        a in "[a-z#]{0,6}", b in "[a-z#]{0,6}", day in 1u32..28, other in 1u32..28,
    ) {
        use crate::history::{attribute_pk, LookupAttribute::EventName};
        let (d1, d2) = (format!("2026-11-{day:02}"), format!("2026-11-{other:02}"));
        let k1 = attribute_pk("eu-west-1", EventName, &a, &d1);
        let k2 = attribute_pk("eu-west-1", EventName, &b, &d2);
        prop_assert_eq!(k1 == k2, a == b && d1 == d2);
    }
}
