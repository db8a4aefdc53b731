//! forwarder.yaml, read back: its rules match what the stack's own rules
//! match and send it to the stack's default bus alone, through a role that
//! can put events there and nowhere else; in the stack's own region it
//! makes nothing that forwards (docs/operations.md "Add a region").

use iam_rs::Decision;
use serde_yaml_ng::Value;
use trailkeep_dev::provision::Template;

use crate::helpers::template;
use serde_json::json;

use crate::iam::{
    cfn, decide, policy, read_policy, resolve, statements, Bindings, Deployment, Request,
};

const ACCOUNT: &str = "123456789012";
const STACK_REGION: &str = "us-east-1";

fn forwarder() -> Template {
    Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../forwarder.yaml"))
        .expect("forwarder.yaml parses")
}

/// The forwarder deployed in eu-west-1 for a stack in us-east-1.
fn bindings() -> Bindings {
    [
        ("AWS::AccountId", ACCOUNT.to_owned()),
        ("AWS::Partition", "aws".to_owned()),
        ("AWS::Region", "eu-west-1".to_owned()),
        ("StackRegion", STACK_REGION.to_owned()),
        ("MonitoredBuckets", "uploads,invoices".to_owned()),
        (
            "ForwardRole",
            format!("arn:aws:iam::{ACCOUNT}:role/fwd-ForwardRole-1A"),
        ),
        (
            "ForwardDeadLetterQueue",
            format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:fwd-ForwardDeadLetterQueue-2B"),
        ),
        (
            "CloudTrailEventsForwardRule",
            format!("arn:aws:events:eu-west-1:{ACCOUNT}:rule/fwd-ct"),
        ),
        (
            "S3ObjectEventsForwardRule",
            format!("arn:aws:events:eu-west-1:{ACCOUNT}:rule/fwd-s3"),
        ),
    ]
    .into_iter()
    .collect()
}

fn stack_bus() -> String {
    format!("arn:aws:events:{STACK_REGION}:{ACCOUNT}:event-bus/default")
}

#[test]
fn the_forwarders_rules_match_what_the_stacks_rules_match_and_send_to_its_bus() {
    let (stack, fwd) = (template(), forwarder());
    let bind = bindings();
    let d = Deployment {
        bind: &bind,
        conditions: [("ForwardsBuckets", true)].into_iter().collect(),
    };
    for (ours, theirs) in [
        ("CloudTrailEventsForwardRule", "CloudTrailEventsRule"),
        ("S3ObjectEventsForwardRule", "S3ObjectEventsRule"),
    ] {
        let rule = fwd.properties(ours, "AWS::Events::Rule").unwrap();
        let original = stack.properties(theirs, "AWS::Events::Rule").unwrap();
        // The same events, of this account alone: pattern and state
        // (read-only management events need
        // ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS).
        assert_eq!(rule.get("State"), original.get("State"), "{ours}'s State");
        let mut pattern = rule["EventPattern"].clone();
        let account = pattern
            .as_mapping_mut()
            .unwrap()
            .remove("account")
            .expect("an account filter");
        assert_eq!(cfn(&account, &d), [ACCOUNT], "{ours}");
        assert_eq!(
            Some(&pattern),
            original.get("EventPattern"),
            "{ours}'s EventPattern"
        );
        // One target: the stack's default bus, through the forward role,
        // then the dead-letter queue (EventBridge retries a bus target for
        // 24 hours; it takes no RetryPolicy).
        let targets = rule["Targets"].as_sequence().unwrap();
        assert_eq!(targets.len(), 1, "{ours}");
        let target = resolve(&targets[0], &d).unwrap();
        assert_eq!(target["Arn"], stack_bus(), "{ours}");
        assert_eq!(target["RoleArn"], bind["ForwardRole"], "{ours}");
        assert_eq!(
            target["DeadLetterConfig"]["Arn"], bind["ForwardDeadLetterQueue"],
            "{ours}"
        );
        assert_eq!(target.get("RetryPolicy"), None, "{ours}");
    }
}

#[test]
fn the_forward_role_puts_events_on_the_stacks_default_bus_and_nowhere_else() {
    let fwd = forwarder();
    let bind = bindings();
    let d = Deployment {
        bind: &bind,
        conditions: Default::default(),
    };
    let role = fwd.properties("ForwardRole", "AWS::IAM::Role").unwrap();
    let documents = role["Policies"].as_sequence().unwrap();
    let identity = policy(
        documents
            .iter()
            .flat_map(|p| statements(&p["PolicyDocument"]).to_vec())
            .collect::<Vec<Value>>()
            .iter(),
        &d,
    );
    let role_arn = bind["ForwardRole"].as_str();
    let may = |action: &str, arn: &str| {
        decide(&identity, &Request::new(role_arn, action, arn)) == Decision::Allow
    };
    assert!(may("events:PutEvents", &stack_bus()));
    for elsewhere in [
        format!("arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/default"),
        format!("arn:aws:events:{STACK_REGION}:{ACCOUNT}:event-bus/trailkeep-audit"),
        format!("arn:aws:events:{STACK_REGION}:444455556666:event-bus/default"),
    ] {
        assert!(!may("events:PutEvents", &elsewhere), "{elsewhere}");
    }
    for action in [
        "events:PutRule",
        "events:PutTargets",
        "events:PutPermission",
    ] {
        assert!(!may(action, &stack_bus()), "{action}");
    }
    // Only EventBridge acting for this account assumes it.
    // A trust policy names no resource: it is the role's own.
    let trust = read_policy(
        statements(&role["AssumeRolePolicyDocument"])
            .iter()
            .filter_map(|s| resolve(s, &d))
            .map(|mut s| {
                s["Resource"] = json!(role_arn);
                s
            })
            .collect(),
    );
    let assume = |account: &str| {
        let r = Request {
            source_account: Some(account),
            ..Request::new("events.amazonaws.com", "sts:AssumeRole", role_arn)
        };
        decide(&trust, &r) == Decision::Allow
    };
    assert!(assume(ACCOUNT));
    assert!(!assume("444455556666"));
    assert_ne!(
        decide(
            &trust,
            &Request {
                source_account: Some(ACCOUNT),
                ..Request::new("lambda.amazonaws.com", "sts:AssumeRole", role_arn)
            }
        ),
        Decision::Allow
    );
}

#[test]
fn only_the_forward_rules_send_to_the_forwarders_dead_letter_queue() {
    let fwd = forwarder();
    let bind = bindings();
    let queue = bind["ForwardDeadLetterQueue"].clone();
    for buckets in [false, true] {
        let d = Deployment {
            bind: &bind,
            conditions: [("ForwardsBuckets", buckets)].into_iter().collect(),
        };
        let props = fwd
            .properties("ForwardDeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")
            .unwrap();
        let queue_policy = policy(statements(&props["PolicyDocument"]), &d);
        let from = |rule: &str, tls: bool| {
            let r = Request {
                source_arn: Some(rule),
                tls,
                ..Request::new("events.amazonaws.com", "sqs:SendMessage", &queue)
            };
            decide(&queue_policy, &r) == Decision::Allow
        };
        assert!(from(&bind["CloudTrailEventsForwardRule"], true));
        assert_eq!(from(&bind["S3ObjectEventsForwardRule"], true), buckets);
        assert!(!from(
            &format!("arn:aws:events:eu-west-1:{ACCOUNT}:rule/other"),
            true
        ));
        assert!(
            !from(&bind["CloudTrailEventsForwardRule"], false),
            "TLS only"
        );
    }
}

#[test]
fn in_the_stacks_own_region_the_forwarder_makes_nothing_that_forwards() {
    // Every resource but the placeholder exists only where the forwarder
    // forwards: `Forwards` (the region is not the stack's), or
    // `ForwardsBuckets` (that and monitored buckets).
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../forwarder.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    for (id, resource) in resources {
        let id = id.as_str().unwrap();
        let condition = resource.get("Condition").and_then(Value::as_str);
        match id {
            "Placeholder" => assert_eq!(condition, None),
            _ => assert!(
                matches!(condition, Some("Forwards" | "ForwardsBuckets")),
                "{id}: {condition:?}"
            ),
        }
    }
    let conditions = &doc["Conditions"];
    let bind = bindings();
    let d = Deployment {
        bind: &bind,
        conditions: Default::default(),
    };
    // Forwards: the region is not StackRegion.
    let forwards = &conditions["Forwards"];
    let Value::Tagged(not) = forwards else {
        panic!("Forwards is !Not [...]: {forwards:?}")
    };
    assert_eq!(not.tag, "!Not");
    let Value::Tagged(equals) = &not.value[0] else {
        panic!("Forwards is !Not [!Equals [...]]")
    };
    assert_eq!(equals.tag, "!Equals");
    let mut compared: Vec<String> = equals
        .value
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|v| cfn(v, &d))
        .collect();
    compared.sort();
    assert_eq!(compared, ["eu-west-1", STACK_REGION]);
    // ForwardsBuckets implies Forwards.
    let and = format!("{:?}", conditions["ForwardsBuckets"]);
    assert!(and.contains("And") && and.contains("Forwards"), "{and}");
}
