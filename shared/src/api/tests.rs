//! The API on in-memory fakes (crate::testkit): CloudTrail's operations,
//! and every change recorded with its caller.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::*;
use crate::testkit::{MemoryHistory, MemoryKeys, MemoryState, MemoryTrails};

const HOME: &str = "eu-west-1";
const ACCOUNT: &str = "111122223333";

fn t(s: &str) -> DateTime<Utc> {
    crate::time::parse(s).unwrap()
}

fn settings() -> ApiSettings {
    ApiSettings {
        trail_admins: vec![format!("arn:aws:iam::{ACCOUNT}:user/*")],
        lookup: LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: HOME.into(),
            served_regions: vec![HOME.into()],
            retention_days: 90,
            token_key: b"0123456789abcdef0123456789abcdef".to_vec(),
            shards: 1,
        },
        history: HistorySettings {
            retention_days: 90,
            shards: 1,
        },
        log_encryption_keys: vec![LOG_KEY.into(), FAR_KEY.into()],
        notification_topics: vec![TOPIC.into()],
        log_groups: vec![LOG_GROUP.into()],
        organization_id: None,
    }
}

/// The one log group this stack lets deliver write to.
const LOG_GROUP: &str = "arn:aws:logs:eu-west-1:111122223333:log-group:trail-events:*";

/// The one topic this stack lets deliver notify.
const TOPIC: &str = "arn:aws:sns:eu-west-1:111122223333:trail-files";

/// A listed key of another region, which no trail may use.
const FAR_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/22222222-3333-4444-8555-666666666666";

/// The key this stack lets trails encrypt with, in its own region.
const LOG_KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f7";

fn caller(name: &str) -> Caller {
    Caller {
        arn: Some(format!("arn:aws:iam::{ACCOUNT}:user/{name}")),
        principal_id: Some(format!("AIDA{}", name.to_uppercase())),
        account_id: Some(ACCOUNT.into()),
        access_key_id: Some("AKIAEXAMPLE".into()),
        source_ip: Some("192.0.2.7".into()),
        user_agent: Some("aws-cli/2 test".into()),
    }
}

struct World {
    trails: MemoryTrails,
    history: MemoryHistory,
    state: MemoryState,
    keys: MemoryKeys,
    settings: ApiSettings,
    requests: std::sync::atomic::AtomicUsize,
}

impl World {
    fn new() -> Self {
        Self {
            trails: MemoryTrails::default(),
            history: MemoryHistory::default(),
            state: MemoryState::default(),
            keys: MemoryKeys::default(),
            settings: settings(),
            requests: Default::default(),
        }
    }

    /// One call by `who` at `at` with a fresh request ID (or `request_id`).
    async fn call_as(
        &self,
        who: &str,
        op: &str,
        body: Value,
        at: &str,
        request_id: Option<&str>,
    ) -> (u16, Value) {
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = request_id.map_or_else(|| format!("req-{n}"), str::to_owned);
        let target = format!("{TARGET_PREFIX}{op}");
        let body = body.to_string();
        let caller = caller(who);
        let call = Call {
            method: "POST",
            target: Some(&target),
            body: body.as_bytes(),
            caller: &caller,
            request_id: &id,
            now: t(at),
        };
        let api = Api {
            account_id: ACCOUNT,
            trails: &self.trails,
            history: &self.history,
            staging: &self.state,
            keys: &self.keys,
            settings: &self.settings,
        };
        let r = api.http(&call).await;
        (r.status, serde_json::from_str(&r.body).unwrap())
    }

    async fn call(&self, op: &str, body: Value, at: &str) -> (u16, Value) {
        self.call_as("alice", op, body, at, None).await
    }

    /// `ListTags` of one trail: its `TagsList`.
    async fn tags(&self, arn: &str) -> Value {
        let at = "2026-11-24T10:00:30Z";
        let (s, out) = self
            .call("ListTags", json!({"ResourceIdList": [arn]}), at)
            .await;
        assert_eq!(s, 200, "{out}");
        assert_eq!(out["ResourceTagList"][0]["ResourceId"], arn);
        out["ResourceTagList"][0]["TagsList"].clone()
    }

    /// The recorded events named `name`, newest first (LookupEvents).
    async fn recorded(&self, name: &str, at: &str) -> Vec<Value> {
        let (status, out) = self
            .call(
                "LookupEvents",
                json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}]}),
                at,
            )
            .await;
        assert_eq!(status, 200, "{out}");
        out["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_trails_life_through_the_api_is_answered_as_cloudtrail_and_every_change_recorded() {
    let w = World::new();
    // Create, start, status, describe, list
    let (s, created) = w
        .call(
            "CreateTrail",
            json!({"Name": "audit", "S3BucketName": "logs", "EnableLogFileValidation": true}),
            "2026-11-24T10:00:00Z",
        )
        .await;
    assert_eq!(s, 200, "{created}");
    assert_eq!(created["Name"], "audit");
    assert_eq!(
        created["TrailARN"],
        format!("arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit")
    );
    assert_eq!(
        created["IncludeGlobalServiceEvents"], true,
        "CloudTrail's default"
    );
    assert_eq!(created["LogFileValidationEnabled"], true);
    assert!(
        created.get("HomeRegion").is_none(),
        "not in CreateTrailResponse"
    );
    let (s, _) = w
        .call(
            "StartLogging",
            json!({"Name": "audit"}),
            "2026-11-24T10:01:00Z",
        )
        .await;
    assert_eq!(s, 200);
    let (_, status) = w
        .call(
            "GetTrailStatus",
            json!({"Name": "audit"}),
            "2026-11-24T10:02:00Z",
        )
        .await;
    assert_eq!(status["IsLogging"], true);
    assert_eq!(
        status["StartLoggingTime"],
        t("2026-11-24T10:01:00Z").timestamp(),
        "JSON 1.1 timestamps are epoch seconds"
    );
    let (_, listed) = w
        .call("ListTrails", json!({}), "2026-11-24T10:02:00Z")
        .await;
    assert_eq!(listed["Trails"][0]["Name"], "audit");
    assert_eq!(listed["Trails"][0]["HomeRegion"], HOME);
    let (_, described) = w
        .call(
            "DescribeTrails",
            json!({"trailNameList": ["audit"]}),
            "2026-11-24T10:02:00Z",
        )
        .await;
    assert_eq!(described["trailList"][0]["HomeRegion"], HOME);

    // WHEN bob stops logging
    let (s, _) = w
        .call_as(
            "bob",
            "StopLogging",
            json!({"Name": "audit"}),
            "2026-11-24T10:30:00Z",
            None,
        )
        .await;
    assert_eq!(s, 200);

    // THEN the history has the call, with bob as the caller
    let stops = w.recorded("StopLogging", "2026-11-24T10:31:00Z").await;
    assert_eq!(stops.len(), 1);
    let stop = &stops[0];
    assert_eq!(
        stop["userIdentity"]["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/bob")
    );
    assert_eq!(stop["userIdentity"]["type"], "IAMUser");
    assert_eq!(stop["eventSource"], EVENT_SOURCE);
    assert_eq!(stop["eventType"], "ApplicationEvent");
    assert_eq!(stop["sourceIPAddress"], "192.0.2.7");
    assert_eq!(stop["requestParameters"], json!({"Name": "audit"}));
    assert_eq!(stop["readOnly"], false);
    assert_eq!(stop["managementEvent"], true);
    // AND it was staged for the trail it stopped (recorded while it still
    // logged), so it is in the trail's own last log file
    let staged = w.state.staged_ids("audit", HOME);
    assert!(
        staged.contains(&stop["eventID"].as_str().unwrap().to_owned()),
        "{staged:?}"
    );
    // AND the start is in the trail's files too, the create is not (the
    // trail did not log yet)
    let start = &w.recorded("StartLogging", "2026-11-24T10:31:00Z").await[0];
    assert!(staged.contains(&start["eventID"].as_str().unwrap().to_owned()));
    assert_eq!(staged.len(), 2, "{staged:?}");
    // AND the status says when
    let (_, status) = w
        .call(
            "GetTrailStatus",
            json!({"Name": "audit"}),
            "2026-11-24T10:32:00Z",
        )
        .await;
    assert_eq!(status["IsLogging"], false);
    assert_eq!(
        status["StopLoggingTime"],
        t("2026-11-24T10:30:00Z").timestamp()
    );

    // WHEN the trail is deleted: recorded before it takes effect
    w.call(
        "StartLogging",
        json!({"Name": "audit"}),
        "2026-11-24T11:00:00Z",
    )
    .await;
    let (s, _) = w
        .call(
            "DeleteTrail",
            json!({"Name": "audit"}),
            "2026-11-24T11:10:00Z",
        )
        .await;
    assert_eq!(s, 200);
    let delete = &w.recorded("DeleteTrail", "2026-11-24T11:11:00Z").await[0];
    assert!(w
        .state
        .staged_ids("audit", HOME)
        .contains(&delete["eventID"].as_str().unwrap().to_owned()));
    let (s, gone) = w
        .call("GetTrail", json!({"Name": "audit"}), "2026-11-24T11:12:00Z")
        .await;
    assert_eq!(
        (s, gone["__type"].as_str()),
        (400, Some("TrailNotFoundException"))
    );
}

#[tokio::test]
async fn get_trail_status_reports_what_deliver_and_digest_last_did() {
    use crate::trail::{HealthStore, RunOutcome};
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    w.call(
        "CreateTrail",
        json!({"Name": "audit", "S3BucketName": "logs"}),
        at,
    )
    .await;
    // GIVEN a deliver run that wrote at 10:05, one that failed at 10:10,
    // and a digest run that wrote at 11:10
    let ok = |t: &str| RunOutcome {
        at: crate::time::parse(t).unwrap(),
        complete: true,
        wrote: true,
        error: None,
        notified: false,
        notify_error: None,
        cwl_sent: false,
        cwl_error: None,
    };
    w.state
        .note_delivery("audit", &ok("2026-11-24T10:05:00Z"))
        .await
        .unwrap();
    let failed = RunOutcome {
        wrote: false,
        error: Some("PutObject on logs failed: AccessDenied".into()),
        ..ok("2026-11-24T10:10:00Z")
    };
    w.state.note_delivery("audit", &failed).await.unwrap();
    w.state
        .note_digest("audit", &ok("2026-11-24T11:10:00Z"))
        .await
        .unwrap();
    // THEN GetTrailStatus says it in CloudTrail's members
    let (_, status) = w
        .call(
            "GetTrailStatus",
            json!({"Name": "audit"}),
            "2026-11-24T11:11:00Z",
        )
        .await;
    assert_eq!(
        status["LatestDeliveryTime"],
        t("2026-11-24T10:05:00Z").timestamp()
    );
    assert_eq!(
        status["LatestDeliveryError"],
        "PutObject on logs failed: AccessDenied"
    );
    assert_eq!(status["LatestDeliveryAttemptTime"], "2026-11-24T10:10:00Z");
    assert_eq!(
        status["LatestDeliveryAttemptSucceeded"], "2026-11-24T10:05:00Z",
        "the last successful attempt, before the failed one"
    );
    assert_eq!(
        status["LatestDigestDeliveryTime"],
        t("2026-11-24T11:10:00Z").timestamp()
    );
    assert!(status.get("LatestDigestDeliveryError").is_none());
    assert!(status.get("LatestNotificationTime").is_none());
    // AND a run whose notification was refused, then one that published
    let refused = RunOutcome {
        notify_error: Some(
            "Publish on arn:aws:sns:eu-west-1:111122223333:t failed: AuthorizationError".into(),
        ),
        ..ok("2026-11-24T11:15:00Z")
    };
    w.state.note_delivery("audit", &refused).await.unwrap();
    let (_, status) = w
        .call(
            "GetTrailStatus",
            json!({"Name": "audit"}),
            "2026-11-24T11:16:00Z",
        )
        .await;
    assert!(status["LatestNotificationError"]
        .as_str()
        .is_some_and(|e| e.contains("AuthorizationError")));
    let published = RunOutcome {
        notified: true,
        ..ok("2026-11-24T11:20:00Z")
    };
    w.state.note_delivery("audit", &published).await.unwrap();
    let (_, status) = w
        .call(
            "GetTrailStatus",
            json!({"Name": "audit"}),
            "2026-11-24T11:21:00Z",
        )
        .await;
    assert_eq!(
        status["LatestNotificationTime"],
        t("2026-11-24T11:20:00Z").timestamp()
    );
    assert!(status.get("LatestNotificationError").is_none(), "{status}");
    // AND the same for CloudWatch Logs: a refused send, then one that sent
    let refused = RunOutcome {
        cwl_error: Some("PutLogEvents on trail-events failed: AccessDenied".into()),
        ..ok("2026-11-24T11:25:00Z")
    };
    w.state.note_delivery("audit", &refused).await.unwrap();
    let at = "2026-11-24T11:26:00Z";
    let (_, status) = w.call("GetTrailStatus", json!({"Name": "audit"}), at).await;
    assert!(status["LatestCloudWatchLogsDeliveryError"]
        .as_str()
        .is_some_and(|e| e.contains("AccessDenied")));
    assert!(status.get("LatestCloudWatchLogsDeliveryTime").is_none());
    let sent = RunOutcome {
        cwl_sent: true,
        ..ok("2026-11-24T11:30:00Z")
    };
    w.state.note_delivery("audit", &sent).await.unwrap();
    let at = "2026-11-24T11:31:00Z";
    let (_, status) = w.call("GetTrailStatus", json!({"Name": "audit"}), at).await;
    assert_eq!(
        status["LatestCloudWatchLogsDeliveryTime"],
        t("2026-11-24T11:30:00Z").timestamp()
    );
    assert!(
        status.get("LatestCloudWatchLogsDeliveryError").is_none(),
        "{status}"
    );
}

#[tokio::test]
async fn a_refused_change_is_recorded_with_its_error_and_changes_nothing() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let create = json!({"Name": "audit", "S3BucketName": "logs"});
    assert_eq!(w.call("CreateTrail", create.clone(), at).await.0, 200);

    // WHEN mallory creates it again, stops a trail that does not exist,
    // and asks for a KMS key the stack does not let its writers use
    let (s, again) = w.call_as("mallory", "CreateTrail", create, at, None).await;
    let (s2, missing) = w
        .call_as("mallory", "StopLogging", json!({"Name": "nope"}), at, None)
        .await;
    let (s3, kms) = w
        .call_as(
            "mallory",
            "UpdateTrail",
            json!({"Name": "audit", "KmsKeyId": "arn:aws:kms:eu-west-1:444455556666:key/0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f7"}),
            at,
            None,
        )
        .await;

    // THEN each is refused in CloudTrail's words
    assert_eq!(
        (s, again["__type"].as_str()),
        (400, Some("TrailAlreadyExistsException"))
    );
    assert_eq!(
        (s2, missing["__type"].as_str()),
        (400, Some("TrailNotFoundException"))
    );
    assert_eq!(
        (s3, kms["__type"].as_str()),
        (400, Some("InvalidKmsKeyIdException"))
    );
    assert!(kms["message"]
        .as_str()
        .unwrap()
        .contains("LogEncryptionKeyArns"));
    // AND each refusal is in the history with its error code and caller
    let later = "2026-11-24T10:05:00Z";
    for (name, code) in [
        ("CreateTrail", "TrailAlreadyExistsException"),
        ("StopLogging", "TrailNotFoundException"),
        ("UpdateTrail", "InvalidKmsKeyIdException"),
    ] {
        let refused: Vec<Value> = w
            .recorded(name, later)
            .await
            .into_iter()
            .filter(|r| r["errorCode"] == code)
            .collect();
        assert_eq!(refused.len(), 1, "{name}");
        assert!(refused[0]["userIdentity"]["arn"]
            .as_str()
            .unwrap()
            .ends_with("user/mallory"));
        assert!(refused[0]["errorMessage"].as_str().is_some());
    }
    // AND nothing changed
    let (_, t) = w.call("GetTrail", json!({"Name": "audit"}), later).await;
    assert!(t["Trail"].get("KmsKeyId").is_none());
    assert_eq!(w.trails.trails().len(), 1);
}

/// `KmsKeyId` (issue 16): the forms CloudTrail takes, naming a key the
/// stack's `LogEncryptionKeyArns` lists (an alias as given); shown by
/// GetTrail; `""` removes it.
#[tokio::test]
async fn a_trail_encrypts_only_with_a_key_the_stack_lets_its_writers_use() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let create =
        |name: &str, key: &str| json!({"Name": name, "S3BucketName": "logs", "KmsKeyId": key});
    let key_id = LOG_KEY.rsplit('/').next().unwrap();
    for (name, key) in [
        ("by-arn", LOG_KEY),
        ("by-id", key_id),
        ("by-alias", "alias/trail-logs"),
    ] {
        let (status, body) = w.call("CreateTrail", create(name, key), at).await;
        assert_eq!(status, 200, "{key}: {body}");
        assert_eq!(body["KmsKeyId"], key);
        let (_, got) = w.call("GetTrail", json!({"Name": name}), at).await;
        assert_eq!(got["Trail"]["KmsKeyId"], key, "{got}");
    }
    // Refused: another key, malformed forms, an AWS managed key.
    for key in [
        "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-4333-8444-555555555555",
        "0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f8",
        "alias/aws/s3",
        "arn:aws:kms:eu-west-1:111122223333:alias/aws/cloudtrail",
        "not-a-key",
        "arn:aws:s3:::logs",
        "key/0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f7",
        "alias/bad name",
        // A bare ID is looked up in the stack's region: not FAR_KEY.
        "22222222-3333-4444-8555-666666666666",
        // Listed, but S3 encrypts the stack's bucket only with a key of
        // the bucket's region; an alias there neither.
        FAR_KEY,
        "arn:aws:kms:us-east-1:111122223333:alias/trail-logs",
    ] {
        let (status, body) = w.call("CreateTrail", create("refused", key), at).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("InvalidKmsKeyIdException")),
            "{key}: {body}"
        );
    }
    assert_eq!(w.trails.trails().len(), 3, "nothing refused was made");
    // UpdateTrail changes the key and "" removes it.
    let (status, body) = w
        .call(
            "UpdateTrail",
            json!({"Name": "by-alias", "KmsKeyId": LOG_KEY}),
            at,
        )
        .await;
    assert_eq!((status, body["KmsKeyId"].as_str()), (200, Some(LOG_KEY)));
    let (status, body) = w
        .call(
            "UpdateTrail",
            json!({"Name": "by-alias", "KmsKeyId": ""}),
            at,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("KmsKeyId").is_none(), "{body}");
    let (_, got) = w.call("GetTrail", json!({"Name": "by-alias"}), at).await;
    assert!(got["Trail"].get("KmsKeyId").is_none(), "{got}");
}

/// `SnsTopicName` (issue 16): a name (the stack's region and account) or
/// an ARN of a topic the stack's `NotificationTopicArns` lists; GetTrail
/// shows the name and `SnsTopicARN`; `""` removes it.
#[tokio::test]
async fn a_trail_notifies_only_a_topic_the_stack_lets_deliver_publish_to() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let create = |name: &str, topic: &str| json!({"Name": name, "S3BucketName": "logs", "SnsTopicName": topic});
    for (name, topic) in [("by-name", "trail-files"), ("by-arn", TOPIC)] {
        let (status, body) = w.call("CreateTrail", create(name, topic), at).await;
        assert_eq!(status, 200, "{topic}: {body}");
        let (_, got) = w.call("GetTrail", json!({"Name": name}), at).await;
        assert_eq!(got["Trail"]["SnsTopicName"], topic, "{got}");
        assert_eq!(got["Trail"]["SnsTopicARN"], TOPIC, "{got}");
    }
    for (topic, code) in [
        ("other-topic", "InsufficientSnsTopicPolicyException"),
        (
            "arn:aws:sns:eu-west-1:444455556666:trail-files",
            "InsufficientSnsTopicPolicyException",
        ),
        // Another region's topic, even if listed: deliver publishes in its own.
        (
            "arn:aws:sns:us-east-1:111122223333:trail-files",
            "InvalidSnsTopicNameException",
        ),
        ("trail-files.fifo", "InvalidSnsTopicNameException"),
        ("bad name", "InvalidSnsTopicNameException"),
        (
            "arn:aws:sqs:eu-west-1:111122223333:trail-files",
            "InvalidSnsTopicNameException",
        ),
    ] {
        let (status, body) = w.call("CreateTrail", create("refused", topic), at).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some(code)),
            "{topic}: {body}"
        );
    }
    assert_eq!(w.trails.trails().len(), 2, "nothing refused was made");
    let (status, body) = w
        .call(
            "UpdateTrail",
            json!({"Name": "by-name", "SnsTopicName": ""}),
            at,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, got) = w.call("GetTrail", json!({"Name": "by-name"}), at).await;
    assert!(got["Trail"].get("SnsTopicName").is_none(), "{got}");
    assert!(got["Trail"].get("SnsTopicARN").is_none(), "{got}");
}

/// `CloudWatchLogsLogGroupArn` with `CloudWatchLogsRoleArn` (issue 16):
/// together, naming a group of the stack's `LogGroupArns` (with or
/// without CloudTrail's `:*`); GetTrail shows both; `""` for both removes.
#[tokio::test]
async fn a_trail_sends_events_only_to_a_log_group_the_stack_lets_deliver_write() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let role = "arn:aws:iam::111122223333:role/CloudTrail_CloudWatchLogs";
    let create = |name: &str, group: &str, role: &str| {
        json!({"Name": name, "S3BucketName": "logs",
               "CloudWatchLogsLogGroupArn": group, "CloudWatchLogsRoleArn": role})
    };
    let bare = LOG_GROUP.trim_end_matches(":*");
    let pathed = "arn:aws:iam::111122223333:role/service-role/CloudTrail+Logs@2026";
    for (name, group, role) in [("star", LOG_GROUP, role), ("bare", bare, pathed)] {
        let (status, body) = w.call("CreateTrail", create(name, group, role), at).await;
        assert_eq!(status, 200, "{group}: {body}");
        let (_, got) = w.call("GetTrail", json!({"Name": name}), at).await;
        assert_eq!(got["Trail"]["CloudWatchLogsLogGroupArn"], group, "{got}");
        assert_eq!(got["Trail"]["CloudWatchLogsRoleArn"], role, "{got}");
    }
    let group_code = "InvalidCloudWatchLogsLogGroupArnException";
    let role_code = "InvalidCloudWatchLogsRoleArnException";
    for (group, role_given, code) in [
        // Not listed, another account, another region.
        (
            "arn:aws:logs:eu-west-1:111122223333:log-group:other:*",
            role,
            group_code,
        ),
        (
            "arn:aws:logs:eu-west-1:444455556666:log-group:trail-events:*",
            role,
            group_code,
        ),
        (
            "arn:aws:logs:us-east-1:111122223333:log-group:trail-events:*",
            role,
            group_code,
        ),
        // Not a log group ARN; a stream's; a bad name.
        ("trail-events", role, group_code),
        (
            "arn:aws:logs:eu-west-1:111122223333:log-group:trail-events:log-stream:s",
            role,
            group_code,
        ),
        (
            "arn:aws:logs:eu-west-1:111122223333:log-group:bad name:*",
            role,
            group_code,
        ),
        // One without the other.
        (LOG_GROUP, "", role_code),
        ("", role, group_code),
        // Not a role.
        (LOG_GROUP, "arn:aws:iam::111122223333:user/alice", role_code),
        (LOG_GROUP, "arn:aws:iam::1111:role/short-account", role_code),
        (
            LOG_GROUP,
            "arn:aws:iam::111122223333:role/has space",
            role_code,
        ),
        (LOG_GROUP, "arn:aws:iam::111122223333:role/wild*", role_code),
        (LOG_GROUP, "arn:aws:iam::111122223333:role/path/", role_code),
        (
            LOG_GROUP,
            "arn:aws:iam::111122223333:role/p\u{7}th/name",
            role_code,
        ),
    ] {
        let (status, body) = w
            .call("CreateTrail", create("refused", group, role_given), at)
            .await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some(code)),
            "{group} {role_given}: {body}"
        );
    }
    assert_eq!(w.trails.trails().len(), 2, "nothing refused was made");
    // An update naming neither leaves it; "" for both removes it.
    let (status, _) = w
        .call(
            "UpdateTrail",
            json!({"Name": "star", "S3KeyPrefix": "p"}),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (_, got) = w.call("GetTrail", json!({"Name": "star"}), at).await;
    assert_eq!(
        got["Trail"]["CloudWatchLogsLogGroupArn"], LOG_GROUP,
        "{got}"
    );
    let (status, body) = w.call("UpdateTrail", create("star", "", ""), at).await;
    assert_eq!(status, 200, "{body}");
    let (_, got) = w.call("GetTrail", json!({"Name": "star"}), at).await;
    assert!(
        got["Trail"].get("CloudWatchLogsLogGroupArn").is_none(),
        "{got}"
    );
    assert!(got["Trail"].get("CloudWatchLogsRoleArn").is_none(), "{got}");
}

#[tokio::test]
async fn only_the_trail_admins_change_trails_and_a_refused_caller_is_recorded() {
    let mut w = World::new();
    let at = "2026-11-24T10:00:00Z";
    w.call(
        "CreateTrail",
        json!({"Name": "audit", "S3BucketName": "logs"}),
        at,
    )
    .await;
    w.call("StartLogging", json!({"Name": "audit"}), at).await;
    // WHEN only alice's role may change trails, and bob (a reader) stops
    // the trail
    w.settings.trail_admins = vec![format!("arn:aws:iam::{ACCOUNT}:user/alice")];
    let (s, out) = w
        .call_as("bob", "StopLogging", json!({"Name": "audit"}), at, None)
        .await;
    // THEN he is refused, the trail logs on, and the attempt is recorded
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("AccessDeniedException"))
    );
    assert!(w.trails.trails()[0].is_logging);
    let later = "2026-11-24T10:05:00Z";
    let stops = w.recorded("StopLogging", later).await;
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["errorCode"], "AccessDeniedException");
    assert!(stops[0]["userIdentity"]["arn"]
        .as_str()
        .unwrap()
        .ends_with("user/bob"));
    // AND he may still read
    let (s, _) = w
        .call_as("bob", "GetTrail", json!({"Name": "audit"}), later, None)
        .await;
    assert_eq!(s, 200);
    // AND nobody changes trails when no admin is named
    w.settings.trail_admins.clear();
    let (s, _) = w
        .call_as(
            "alice",
            "StopLogging",
            json!({"Name": "audit"}),
            later,
            None,
        )
        .await;
    assert_eq!(s, 400);
}

#[test]
fn admin_patterns_match_as_written_with_star_for_any_run() {
    let s = |admins: &[&str]| ApiSettings {
        trail_admins: admins.iter().map(|a| a.to_string()).collect(),
        ..settings()
    };
    let role = "arn:aws:sts::111122223333:assumed-role/Admin/alice";
    assert!(s(&["arn:aws:sts::111122223333:assumed-role/Admin/*"]).may_change(Some(role)));
    assert!(s(&["*"]).may_change(Some(role)));
    assert!(s(&["*:assumed-role/Admin/*"]).may_change(Some(role)));
    assert!(s(&[role]).may_change(Some(role)));
    assert!(!s(&["arn:aws:sts::111122223333:assumed-role/Admin"]).may_change(Some(role)));
    assert!(!s(&["arn:aws:sts::111122223333:assumed-role/Admin/*x"]).may_change(Some(role)));
    assert!(!s(&["arn:aws:sts::444455556666:assumed-role/Admin/*"]).may_change(Some(role)));
    assert!(!s(&[]).may_change(Some(role)));
    assert!(!s(&["arn:*"]).may_change(None), "an unauthenticated caller");
    assert!(s(&["*"]).may_change(None), "a local run's `*`");
}

#[tokio::test]
async fn a_stop_whose_record_cannot_be_written_is_not_made() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    w.call(
        "CreateTrail",
        json!({"Name": "audit", "S3BucketName": "logs"}),
        at,
    )
    .await;
    w.call("StartLogging", json!({"Name": "audit"}), at).await;
    // WHEN the history refuses every write
    w.history.refuse_keys_over(1);
    let (s, out) = w
        .call(
            "StopLogging",
            json!({"Name": "audit"}),
            "2026-11-24T10:10:00Z",
        )
        .await;
    // THEN the call fails, says nothing of the store, and the trail logs on
    assert_eq!(s, 500, "{out}");
    assert_eq!(out["message"], INTERNAL_ERROR);
    assert!(
        w.trails.trails()[0].is_logging,
        "an unrecorded stop must not happen"
    );
}

#[tokio::test]
async fn a_retried_request_is_recorded_once() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    w.call(
        "CreateTrail",
        json!({"Name": "audit", "S3BucketName": "logs"}),
        at,
    )
    .await;
    // The same function URL request delivered twice (a Lambda retry)
    for _ in 0..2 {
        w.call_as(
            "alice",
            "StartLogging",
            json!({"Name": "audit"}),
            at,
            Some("same"),
        )
        .await;
    }
    let later = (t(at) + Duration::minutes(1)).to_rfc3339();
    assert_eq!(w.recorded("StartLogging", &later).await.len(), 1);
}

#[tokio::test]
async fn organization_trails_need_a_stack_that_serves_an_organization() {
    let at = "2026-11-24T10:00:00Z";
    let create = json!({"Name": "org", "S3BucketName": "logs", "IsOrganizationTrail": true});
    // A stack deployed without OrganizationId refuses, as CloudTrail does
    // outside an organization, and no trail is made.
    let w = World::new();
    let (s, out) = w.call("CreateTrail", create.clone(), at).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("OrganizationsNotInUseException")),
        "{out}"
    );
    let (_, listed) = w.call("DescribeTrails", json!({}), at).await;
    assert_eq!(listed["trailList"], json!([]));
    // A stack of an organization makes an organization trail of it, and
    // UpdateTrail turns it into a trail of the stack's own account and back.
    let mut w = World::new();
    w.settings.organization_id = Some("o-a1b2c3d4e5".into());
    let (s, out) = w.call("CreateTrail", create, at).await;
    assert_eq!(
        (s, &out["IsOrganizationTrail"]),
        (200, &json!(true)),
        "{out}"
    );
    async fn stored(w: &World) -> Option<String> {
        w.trails.load().await.unwrap().trails[0]
            .organization_id
            .clone()
    }
    assert_eq!(stored(&w).await.as_deref(), Some("o-a1b2c3d4e5"));
    let update = |on: bool| json!({"Name": "org", "IsOrganizationTrail": on});
    let (s, out) = w.call("UpdateTrail", update(false), at).await;
    assert_eq!(
        (s, &out["IsOrganizationTrail"]),
        (200, &json!(false)),
        "{out}"
    );
    assert_eq!(stored(&w).await, None);
    let (s, out) = w.call("UpdateTrail", update(true), at).await;
    assert_eq!(
        (s, &out["IsOrganizationTrail"]),
        (200, &json!(true)),
        "{out}"
    );
    // The stack redeployed with another organization: the flag sent again
    // keeps the trail's (its chains stay where they are) …
    w.settings.organization_id = Some("o-zzzzzzzzzz".into());
    assert_eq!(w.call("UpdateTrail", update(true), at).await.0, 200);
    assert_eq!(stored(&w).await.as_deref(), Some("o-a1b2c3d4e5"));
    // … off and on again moves it to the new one.
    assert_eq!(w.call("UpdateTrail", update(false), at).await.0, 200);
    assert_eq!(w.call("UpdateTrail", update(true), at).await.0, 200);
    assert_eq!(stored(&w).await.as_deref(), Some("o-zzzzzzzzzz"));
    // Not a boolean: refused by name.
    let (s, out) = w
        .call(
            "UpdateTrail",
            json!({"Name": "org", "IsOrganizationTrail": "yes"}),
            at,
        )
        .await;
    assert_eq!(s, 400, "{out}");
}

#[tokio::test]
async fn operations_and_requests_the_api_does_not_answer_are_refused_by_name() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let (s, out) = w.call("CreateEventDataStore", json!({}), at).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("UnsupportedOperationException"))
    );
    let (s, out) = w.call("NoSuchThing", json!({}), at).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("UnsupportedOperationException"))
    );
    // Not CloudTrail's target at all
    let api = Api {
        account_id: ACCOUNT,
        trails: &w.trails,
        history: &w.history,
        staging: &w.state,
        keys: &w.keys,
        settings: &w.settings,
    };
    let caller = caller("eve");
    let mut call = Call {
        method: "POST",
        target: Some("com.example.Other.Thing"),
        body: b"{}",
        caller: &caller,
        request_id: "r",
        now: t(at),
    };
    let r = api.http(&call).await;
    assert!(r.body.contains("UnknownOperationException"), "{}", r.body);
    call.target = Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail");
    call.body = b"[1, 2]";
    let r = api.http(&call).await;
    assert!(r.body.contains("SerializationException"), "{}", r.body);
    call.method = "GET";
    assert_eq!(api.http(&call).await.status, 405);
    // A missing name
    let (s, out) = w.call("StartLogging", json!({}), at).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("TrailNotProvidedException"))
    );
    // No target: LookupEvents, as the lookup URL always answered
    call.method = "POST";
    call.target = None;
    call.body = b"{}";
    let r = api.http(&call).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"Events\""));
}

#[tokio::test]
async fn advanced_selectors_replace_basic_ones_and_choose_what_a_trail_logs() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let (s, out) = w
        .call(
            "CreateTrail",
            json!({"Name": "audit", "S3BucketName": "logs"}),
            at,
        )
        .await;
    assert_eq!(s, 200, "{out}");
    let writes_only = json!([{
        "Name": "management writes",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": ["false"]}
        ]
    }]);
    let (s, out) = w
        .call(
            "PutEventSelectors",
            json!({"TrailName": "audit", "AdvancedEventSelectors": writes_only}),
            at,
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["AdvancedEventSelectors"], writes_only);
    assert!(out.get("EventSelectors").is_none(), "{out}");
    let (_, got) = w
        .call("GetEventSelectors", json!({"TrailName": "audit"}), at)
        .await;
    assert_eq!(got["AdvancedEventSelectors"], writes_only);
    let (_, trail) = w.call("GetTrail", json!({"Name": "audit"}), at).await;
    assert_eq!(trail["Trail"]["HasCustomEventSelectors"], true);
    // What the trail now logs
    let stored = crate::trail::admin::get(&w.trails, "audit").await.unwrap();
    let mut write = crate::model::Record {
        event_source: "ec2.amazonaws.com".into(),
        event_name: "RunInstances".into(),
        read_only: Some(false),
        event_category: Some(crate::model::EventCategory::Management),
        ..Default::default()
    };
    assert!(stored.selects(&write));
    write.read_only = Some(true);
    assert!(!stored.selects(&write));

    // Basic selectors replace advanced ones; both at once is refused.
    let (s, out) = w
        .call(
            "PutEventSelectors",
            json!({"TrailName": "audit", "EventSelectors": [{"ReadWriteType": "All"}],
                   "AdvancedEventSelectors": writes_only}),
            at,
        )
        .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("InvalidParameterCombinationException"))
    );
    let (s, out) = w
        .call(
            "PutEventSelectors",
            json!({"TrailName": "audit", "EventSelectors": [{"ReadWriteType": "ReadOnly"}]}),
            at,
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert!(out.get("AdvancedEventSelectors").is_none(), "{out}");
    let stored = crate::trail::admin::get(&w.trails, "audit").await.unwrap();
    assert!(stored.advanced_event_selectors.is_empty());

    // A selector CloudTrail refuses is refused, recorded, and changes nothing.
    let (s, out) = w
        .call(
            "PutEventSelectors",
            json!({"TrailName": "audit", "AdvancedEventSelectors": [{
                "FieldSelectors": [{"Field": "eventName", "Equals": ["StopLogging"]}]
            }]}),
            at,
        )
        .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("InvalidEventSelectorsException")),
        "{out}"
    );
    assert_eq!(
        crate::trail::admin::get(&w.trails, "audit").await.unwrap(),
        stored
    );
    let later = "2026-11-24T10:01:00Z";
    let recorded = w.recorded("PutEventSelectors", later).await;
    assert_eq!(recorded.len(), 4, "two changes and two refusals");
    assert!(recorded
        .iter()
        .any(|r| r["errorCode"] == "InvalidEventSelectorsException"));
}

#[tokio::test]
async fn tags_are_added_replaced_listed_and_removed_and_each_change_recorded() {
    let w = World::new();
    let at = "2026-11-24T10:00:00Z";
    let arn = format!("arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit");
    let (s, out) = w
        .call(
            "CreateTrail",
            json!({"Name": "audit", "S3BucketName": "logs",
                   "TagsList": [{"Key": "team", "Value": "security"}]}),
            at,
        )
        .await;
    assert_eq!(s, 200, "{out}");
    let (s, out) = w
        .call(
            "AddTags",
            json!({"ResourceId": arn, "TagsList": [
                {"Key": "team", "Value": "audit"}, {"Key": "cost-centre", "Value": "42"}, {"Key": "flag"}
            ]}),
            at,
        )
        .await;
    assert_eq!((s, &out), (200, &json!({})));
    assert_eq!(
        w.tags(&arn).await,
        json!([{"Key": "team", "Value": "audit"}, {"Key": "cost-centre", "Value": "42"}, {"Key": "flag"}])
    );
    let (s, _) = w
        .call(
            "RemoveTags",
            json!({"ResourceId": arn, "TagsList": [{"Key": "team"}, {"Key": "absent"}]}),
            at,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        w.tags(&arn).await,
        json!([{"Key": "cost-centre", "Value": "42"}, {"Key": "flag"}])
    );
    // Refused: reserved keys, too many tags, and another account's trail of
    // the same name (an ARN must be the trail's own).
    for (body, code) in [
        (
            json!({"ResourceId": arn, "TagsList": [{"Key": "aws:createdBy", "Value": "x"}]}),
            "InvalidTagParameterException",
        ),
        (
            json!({"ResourceId": arn, "TagsList": (0..50).map(|i| json!({"Key": format!("k{i}")})).collect::<Vec<_>>()}),
            "TagsLimitExceededException",
        ),
        (
            json!({"ResourceId": "arn:aws:cloudtrail:eu-west-1:999999999999:trail/audit",
                   "TagsList": [{"Key": "owner", "Value": "mallory"}]}),
            "TrailNotFoundException",
        ),
        (json!({"ResourceId": arn}), "InvalidTagParameterException"),
        (
            json!({"ResourceId": arn, "TagsList": [{"Key": "AWS:owner", "Value": "x"}]}),
            "InvalidTagParameterException",
        ),
        (
            json!({"ResourceId": arn, "TagsList": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}),
            "InvalidTagParameterException",
        ),
    ] {
        let (s, out) = w.call("AddTags", body, at).await;
        assert_eq!((s, out["__type"].as_str()), (400, Some(code)), "{out}");
    }
    assert_eq!(
        w.tags(&arn).await,
        json!([{"Key": "cost-centre", "Value": "42"}, {"Key": "flag"}])
    );
    let (s, out) = w
        .call(
            "ListTags",
            json!({"ResourceIdList": ["arn:aws:cloudtrail:us-east-1:111122223333:trail/audit"]}),
            at,
        )
        .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("TrailNotFoundException"))
    );
    // A reader may list tags but not change them, and is recorded trying.
    let (s, _) = w
        .call_as(
            "bob",
            "ListTags",
            json!({"ResourceIdList": [arn]}),
            at,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let later = "2026-11-24T10:01:00Z";
    let added = w.recorded("AddTags", later).await;
    assert_eq!(added.len(), 7, "one change and six refusals");
    assert_eq!(w.recorded("RemoveTags", later).await.len(), 1);
    assert!(
        w.recorded("ListTags", later).await.is_empty(),
        "reads are not recorded"
    );
}

#[tokio::test]
async fn list_public_keys_lists_the_deployments_keys_with_their_spans_and_never_a_registry_stranger(
) {
    use base64::Engine as _;
    let mut w = World::new();
    let ours = w.keys.trusted.add_pkcs1(vec![0x30, 1, 2, 3]);
    let key_use = |fingerprint: &str, first: &str, last: &str| crate::digest::registry::KeyUse {
        key_id: "arn:aws:kms:eu-west-1:111122223333:key/k".into(),
        regions: vec![HOME.into()],
        fingerprint: fingerprint.into(),
        first_used: first.into(),
        last_used: last.into(),
    };
    w.keys.used = vec![
        key_use(&ours, "2026-11-01T01:00:00Z", "2026-11-24T09:00:00Z"),
        // Written into the registry by someone else: not a key we sign with.
        key_use(
            "ffffffffffffffffffffffffffffffff",
            "2026-11-01T01:00:00Z",
            "2026-11-24T09:00:00Z",
        ),
    ];
    let at = "2026-11-24T10:00:00Z";
    let (s, out) = w.call("ListPublicKeys", json!({}), at).await;
    assert_eq!(s, 200, "{out}");
    let list = out["PublicKeyList"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["Fingerprint"], ours);
    assert_eq!(
        list[0]["Value"],
        base64::engine::general_purpose::STANDARD.encode([0x30, 1, 2, 3])
    );
    assert_eq!(
        list[0]["ValidityStartTime"],
        t("2026-11-01T00:00:00Z").timestamp()
    );
    assert_eq!(
        list[0]["ValidityEndTime"],
        t("2026-11-24T09:00:00Z").timestamp()
    );
    // A range after the key's last use lists nothing; a reversed one is refused.
    let after = t("2026-11-24T09:30:00Z").timestamp();
    let (_, out) = w
        .call("ListPublicKeys", json!({"StartTime": after}), at)
        .await;
    assert_eq!(out["PublicKeyList"], json!([]));
    let (s, out) = w
        .call(
            "ListPublicKeys",
            json!({"StartTime": after, "EndTime": after - 3600}),
            at,
        )
        .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("InvalidTimeRangeException"))
    );
    let (s, out) = w
        .call("ListPublicKeys", json!({"StartTime": "yesterday"}), at)
        .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("InvalidTimeRangeException"))
    );
}

/// LookupEvents through the API reads the account the API serves by
/// default and when named; `AccountId` of a member reads that member's.
#[tokio::test]
async fn lookup_events_takes_the_stacks_own_account_by_name_and_a_members_apart() {
    let mut w = World::new();
    w.settings.organization_id = Some("o-a1b2c3d4e5".into());
    w.settings.lookup.organization = true;
    let body = json!({"Name": "audit", "S3BucketName": "logs"});
    assert_eq!(
        w.call("CreateTrail", body, "2026-11-24T10:00:00Z").await.0,
        200
    );
    let at = "2026-11-24T10:00:30Z";
    let lookup = |account: Option<&str>| {
        let mut body = json!({"LookupAttributes": [
            {"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}]});
        if let Some(a) = account {
            body["AccountId"] = json!(a);
        }
        body
    };
    let events = |out: &Value| out["Events"].as_array().map_or(0, Vec::len);
    // The API's own record of the change is the stack account's: found by
    // default and with the stack's account named (the API knows its
    // account from the invocation, not from the lookup settings)
    for account in [None, Some(ACCOUNT)] {
        let (s, out) = w.call("LookupEvents", lookup(account), at).await;
        assert_eq!((s, events(&out)), (200, 1), "{account:?}: {out}");
    }
    // AND a member's history does not hold it
    let (s, out) = w
        .call("LookupEvents", lookup(Some("222233334444")), at)
        .await;
    assert_eq!((s, events(&out)), (200, 0), "{out}");
    // AND a stack without an organization refuses another account
    w.settings.lookup.organization = false;
    let (s, out) = w
        .call("LookupEvents", lookup(Some("222233334444")), at)
        .await;
    assert_eq!(s, 400);
    assert_eq!(out["__type"], "OrganizationsNotInUseException", "{out}");
}
