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
    allowed, cfn, decide, policy, read_policy, resolve, statements, Bindings, Deployment, Request,
};

const ACCOUNT: &str = "123456789012";
const STACK_REGION: &str = "us-east-1";

fn forwarder() -> Template {
    Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../forwarder.yaml"))
        .expect("forwarder.yaml parses")
}

/// The stack's account, when a member account forwards to it.
const CENTRAL: &str = "999988887777";

/// The forwarder deployed in eu-west-1 for a stack in us-east-1, of this
/// account (`StackAccountId` empty).
fn bindings() -> Bindings {
    bindings_for("")
}

/// The forwarder deployed in eu-west-1 of account `ACCOUNT`, with the
/// parameter `StackAccountId` given.
fn bindings_for(stack_account: &str) -> Bindings {
    [
        ("AWS::AccountId", ACCOUNT.to_owned()),
        ("AWS::Partition", "aws".to_owned()),
        ("AWS::Region", "eu-west-1".to_owned()),
        ("StackRegion", STACK_REGION.to_owned()),
        ("StackAccountId", stack_account.to_owned()),
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
    bus_of(ACCOUNT)
}

fn bus_of(account: &str) -> String {
    format!("arn:aws:events:{STACK_REGION}:{account}:event-bus/default")
}

/// Both ways to deploy the forwarder, with the stack's bus each sends to:
/// for a stack of this account, and (a member account) for the
/// organization's central stack.
fn deployments() -> [(Bindings, bool, String); 2] {
    [
        (bindings(), false, stack_bus()),
        (bindings_for(CENTRAL), true, bus_of(CENTRAL)),
    ]
}

/// A template condition's value in a deployment: `!Equals`, `!Not`,
/// `!And`, `!Or`, `!Condition`.
fn holds(conditions: &Value, v: &Value, d: &Deployment) -> bool {
    let Value::Tagged(t) = v else {
        panic!("a condition function: {v:?}")
    };
    let args = || t.value.as_sequence().expect("arguments");
    match t.tag.to_string().trim_start_matches('!') {
        "Equals" => cfn(&args()[0], d) == cfn(&args()[1], d),
        "Not" => !holds(conditions, &args()[0], d),
        "And" => args().iter().all(|c| holds(conditions, c, d)),
        "Or" => args().iter().any(|c| holds(conditions, c, d)),
        "Condition" => holds(conditions, &conditions[t.value.as_str().unwrap()], d),
        other => panic!("unsupported !{other}"),
    }
}

#[test]
fn the_forwarders_rules_match_what_the_stacks_rules_match_and_send_to_its_bus() {
    let (stack, fwd) = (template(), forwarder());
    for (bind, other, bus) in deployments() {
        let d = Deployment {
            bind: &bind,
            conditions: [("ForwardsBuckets", true), ("OtherAccount", other)]
                .into_iter()
                .collect(),
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
            assert_eq!(target["Arn"], bus, "{ours}");
            assert_eq!(target["RoleArn"], bind["ForwardRole"], "{ours}");
            assert_eq!(
                target["DeadLetterConfig"]["Arn"], bind["ForwardDeadLetterQueue"],
                "{ours}"
            );
            assert_eq!(target.get("RetryPolicy"), None, "{ours}");
        }
    }
}

#[test]
fn the_forward_role_puts_events_on_the_stacks_default_bus_and_nowhere_else() {
    let fwd = forwarder();
    for (bind, other, bus) in deployments() {
        let d = Deployment {
            bind: &bind,
            conditions: [("OtherAccount", other)].into_iter().collect(),
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
        assert!(may("events:PutEvents", &bus));
        for elsewhere in [
            format!("arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/default"),
            format!("arn:aws:events:{STACK_REGION}:{ACCOUNT}:event-bus/trailkeep-audit"),
            format!("arn:aws:events:{STACK_REGION}:444455556666:event-bus/default"),
            format!(
                "arn:aws:events:{STACK_REGION}:{}:event-bus/default",
                if other { ACCOUNT } else { CENTRAL }
            ),
        ] {
            assert!(!may("events:PutEvents", &elsewhere), "{elsewhere}");
        }
        for action in [
            "events:PutRule",
            "events:PutTargets",
            "events:PutPermission",
        ] {
            assert!(!may(action, &bus), "{action}");
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
    // Forwards: another region, or another account (a member's forwarder
    // in the stack's own region).
    let conditions = &doc["Conditions"];
    for (region, stack_account, forwards) in [
        ("eu-west-1", "", true),
        (STACK_REGION, "", false),
        (STACK_REGION, ACCOUNT, false),
        ("eu-west-1", ACCOUNT, true),
        (STACK_REGION, CENTRAL, true),
        ("eu-west-1", CENTRAL, true),
    ] {
        let mut bind = bindings_for(stack_account);
        bind.insert("AWS::Region", region.to_owned());
        let d = Deployment {
            bind: &bind,
            conditions: Default::default(),
        };
        assert_eq!(
            holds(conditions, &conditions["Forwards"], &d),
            forwards,
            "in {region}, stack account {stack_account:?}"
        );
    }
    // ForwardsBuckets implies Forwards.
    let and = format!("{:?}", conditions["ForwardsBuckets"]);
    assert!(and.contains("And") && and.contains("Forwards"), "{and}");
}

#[test]
fn the_stacks_bus_policy_admits_its_organization_and_nobody_else() {
    const ORG: &str = "o-a1b2c3d4e5";
    let stack = template();
    let props = stack
        .properties("OrganizationBusPolicy", "AWS::Events::EventBusPolicy")
        .unwrap();
    assert_eq!(props["EventBusName"].as_str(), Some("default"));
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        doc["Resources"]["OrganizationBusPolicy"]["Condition"].as_str(),
        Some("ServesOrganization"),
        "no policy without an organization"
    );
    // The forward role of each account may put events anywhere: the bus
    // policy alone decides.
    let identity = read_policy(vec![
        json!({"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}),
    ]);
    let bus = bus_of(CENTRAL);
    for members in ["", "222233334444,333344445555"] {
        let bind: Bindings = [
            ("AWS::AccountId", CENTRAL.to_owned()),
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::Region", STACK_REGION.to_owned()),
            ("OrganizationId", ORG.to_owned()),
            ("MemberAccountIds", members.to_owned()),
        ]
        .into_iter()
        .collect();
        let d = Deployment {
            bind: &bind,
            conditions: [("HasMemberAccounts", !members.is_empty())]
                .into_iter()
                .collect(),
        };
        let mut statement = resolve(&props["Statement"], &d).unwrap();
        // IAM reads a bare account ID as that account's root ARN, which
        // iam-rs does not: written out here.
        let named = statement["Principal"].get_mut("AWS");
        if let Some(accounts) = named.and_then(|a| a.as_array_mut()) {
            for a in accounts {
                *a = json!(format!("arn:aws:iam::{}:root", a.as_str().unwrap()));
            }
        }
        let bus_policy = read_policy(vec![statement]);
        let put = |account: &str, org: Option<&str>, action: &str, arn: &str| {
            let role = format!("arn:aws:iam::{account}:role/fwd-ForwardRole-1A");
            let r = Request {
                principal_org: org,
                ..Request::new(&role, action, arn)
            };
            allowed(Some(&identity), Some(&bus_policy), &r, CENTRAL)
        };
        let listed = !members.is_empty();
        assert!(put("222233334444", Some(ORG), "events:PutEvents", &bus));
        assert!(put("333344445555", Some(ORG), "events:PutEvents", &bus));
        assert_eq!(
            put("444455556666", Some(ORG), "events:PutEvents", &bus),
            !listed,
            "an account of the organization not listed in {members:?}"
        );
        // Outside the organization: refused, listed or not.
        assert!(!put(
            "222233334444",
            Some("o-zzzzzzzzzz"),
            "events:PutEvents",
            &bus
        ));
        assert!(!put("222233334444", None, "events:PutEvents", &bus));
        assert!(!put("555566667777", None, "events:PutEvents", &bus));
        // Only PutEvents, only on the default bus.
        assert!(!put("222233334444", Some(ORG), "events:PutRule", &bus));
        let audit = format!("arn:aws:events:{STACK_REGION}:{CENTRAL}:event-bus/trailkeep-audit");
        assert!(!put("222233334444", Some(ORG), "events:PutEvents", &audit));
    }
}
