//! template.yaml's IAM policies, read back for the tests: each function's
//! role and the resource policies of the log bucket, the ingest queues and
//! the signing key, evaluated structurally (`crate::iam`: operators, keys,
//! values; Allow, Deny, NotAction, NotResource) for the requests a test
//! names and for every request the load test's functions made through the
//! fault proxy.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use iam_rs::{Decision, IAMPolicy};
use serde_json::{json, Value as Json};
use serde_yaml_ng::Value;

use crate::helpers::template;
use crate::iam::{
    allowed, cfn, decide, policy, read_policy, resolve, statements, Bindings, Deployment, Request,
};

/// The account every test deployment lives in.
const ACCOUNT: &str = "123456789012";

pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}")
}

/// The ARN of a function's role (`!GetAtt DigestFunctionRole.Arn`) in a
/// test deployment.
pub fn role_arn(function: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/trailkeep-{function}Role-1A2B3C")
}

/// The functions whose roles the template declares (through SAM).
pub const FUNCTIONS: [&str; 4] = [
    "IngestFunction",
    "DeliverFunction",
    "DigestFunction",
    "LookupFunction",
];

/// One Allow statement of a function's role: its actions, the item
/// partition-key patterns of its `ForAllValues:StringLike` condition on
/// `dynamodb:LeadingKeys` (if any), and the statement alone as IAM reads it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub sid: String,
    pub actions: Vec<String>,
    pub leading_keys: Option<Vec<String>>,
    policy: IAMPolicy,
}

impl Grant {
    fn allows(&self, r: &Request) -> bool {
        decide(&self.policy, r) == Decision::Allow
    }
}

/// The stack as one test deploys it: the values of the names its policies
/// use, and its conditions.
pub struct Stack {
    pub bind: Bindings,
    pub conditions: BTreeMap<&'static str, bool>,
    /// Documents already read, by name and deployment (the load test
    /// evaluates thousands of requests).
    cache: RefCell<BTreeMap<String, IAMPolicy>>,
}

impl Stack {
    /// The default deployment (no bucket admin, no monitored buckets) with
    /// tables and a bucket of these names.
    pub fn new(history: &str, state: &str, bucket: &str) -> Stack {
        let mut bind: Bindings = [
            ("AWS::AccountId", ACCOUNT.to_owned()),
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::Region", "us-east-1".to_owned()),
            ("AWS::URLSuffix", "amazonaws.com".to_owned()),
            ("HistoryTable", table_arn(history)),
            ("StateTable", table_arn(state)),
            ("LogBucket", format!("arn:aws:s3:::{bucket}")),
            (
                "IngestQueue",
                format!("arn:aws:sqs:us-east-1:{ACCOUNT}:trailkeep-IngestQueue-1A2B"),
            ),
            (
                "IngestDeadLetterQueue",
                format!("arn:aws:sqs:us-east-1:{ACCOUNT}:trailkeep-IngestDeadLetterQueue-9Z"),
            ),
            (
                "SigningKey",
                format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/signing"),
            ),
            ("BucketAdminRoleArn", String::new()),
            ("LogEncryptionKeyArns", String::new()),
            ("NotificationTopicArns", String::new()),
            ("LogGroupArns", String::new()),
            ("MonitoredBuckets", String::new()),
        ]
        .into_iter()
        .collect();
        for (rule, name) in [
            ("CloudTrailEventsRule", "ct"),
            ("AuditBusRule", "trailkeep-audit/app"),
            ("S3ObjectEventsRule", "s3"),
        ] {
            bind.insert(
                rule,
                format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/{name}"),
            );
        }
        for f in FUNCTIONS {
            bind.insert(role_key(f), role_arn(f));
            bind.insert(log_group_key(f), log_group_arn(f));
        }
        Stack {
            bind,
            conditions: BTreeMap::from([
                ("HasBucketAdmin", false),
                ("HasMonitoredBuckets", false),
                ("HasLogEncryptionKeys", false),
                ("HasNotificationTopics", false),
                ("HasLogGroups", false),
            ]),
            cache: RefCell::default(),
        }
    }

    /// The document `name` in this deployment, read once.
    fn cached(&self, name: &str, read: impl FnOnce() -> IAMPolicy) -> IAMPolicy {
        let key = format!("{name} {:?} {:?}", self.bind, self.conditions);
        if let Some(p) = self.cache.borrow().get(&key) {
            return p.clone();
        }
        let p = read();
        self.cache.borrow_mut().insert(key, p.clone());
        p
    }

    fn deployment(&self) -> Deployment<'_> {
        Deployment {
            bind: &self.bind,
            conditions: self.conditions.clone(),
        }
    }

    /// A resource's policy document (its `PolicyDocument` or `KeyPolicy`).
    fn resource_document(&self, id: &str, kind: &str) -> IAMPolicy {
        self.cached(id, || self.read_resource_document(id, kind))
    }

    fn read_resource_document(&self, id: &str, kind: &str) -> IAMPolicy {
        let t = template();
        let props = t
            .properties(id, kind)
            .unwrap_or_else(|e| panic!("{id} in template.yaml: {e}"));
        let doc = props
            .get("PolicyDocument")
            .or_else(|| props.get("KeyPolicy"))
            .expect("a policy document");
        policy(statements(doc), &self.deployment())
    }

    /// The policy of the resource `arn` names, if the template gives it one.
    pub fn resource_policy(&self, arn: &str) -> Option<IAMPolicy> {
        let bucket = &self.bind["LogBucket"];
        if arn == bucket || arn.starts_with(&format!("{bucket}/")) {
            Some(self.resource_document("LogBucketPolicy", "AWS::S3::BucketPolicy"))
        } else if arn == self.bind["SigningKey"] {
            Some(self.resource_document("SigningKey", "AWS::KMS::Key"))
        } else if arn.starts_with("arn:aws:kms:") {
            // A key made outside the stack, with KMS's default key policy:
            // the account's IAM policies decide.
            let root = format!("arn:aws:iam::{}:root", self.bind["AWS::AccountId"]);
            Some(read_policy(vec![json!({
                "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"
            })]))
        } else if arn == self.bind["IngestQueue"] {
            Some(self.resource_document("IngestQueuePolicy", "AWS::SQS::QueuePolicy"))
        } else if arn == self.bind["IngestDeadLetterQueue"] {
            Some(self.resource_document("IngestDeadLetterQueuePolicy", "AWS::SQS::QueuePolicy"))
        } else {
            None
        }
    }

    /// The statements of `function`'s inline `Policies` documents (the
    /// only form allowed: every_functions_permissions_are_inline_documents_the_tests_read).
    fn role_statements(function: &str) -> Vec<Value> {
        let t = template();
        let props = t
            .properties(function, "AWS::Serverless::Function")
            .expect("the function is in template.yaml");
        props
            .get("Policies")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .flat_map(|p| statements(p).to_vec())
            .collect()
    }

    /// `function`'s role's identity policy: its inline statements and the
    /// managed policy SAM attaches to every function's role
    /// (AWSLambdaBasicExecutionRole: any log group, any stream).
    pub fn identity(&self, function: &str) -> IAMPolicy {
        self.cached(function, || {
            let mut statements: Vec<Json> = Self::role_statements(function)
                .iter()
                .filter_map(|s| resolve(s, &self.deployment()))
                .collect();
            statements.push(json!({
                "Sid": "AWSLambdaBasicExecutionRole",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*"
            }));
            read_policy(statements)
        })
    }

    /// `function`'s role's Allow statements in this deployment, one by one.
    pub fn grants(&self, function: &str) -> Vec<Grant> {
        let d = self.deployment();
        let texts = |v: Option<&Json>| -> Vec<String> {
            match v {
                Some(Json::String(s)) => vec![s.clone()],
                Some(Json::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            }
        };
        Self::role_statements(function)
            .iter()
            .filter_map(|s| resolve(s, &d))
            .filter(|s| s["Effect"] == "Allow")
            .map(|s| Grant {
                sid: s["Sid"].as_str().unwrap_or("?").to_owned(),
                actions: texts(s.get("Action")),
                leading_keys: s
                    .pointer("/Condition/ForAllValues:StringLike/dynamodb:LeadingKeys")
                    .map(|v| texts(Some(v))),
                policy: read_policy(vec![s]),
            })
            .collect()
    }

    /// May `function`'s role make `r` (whose principal is set to the
    /// role), its identity policy and the resource's policy together?
    pub fn allows(&self, function: &str, r: Request) -> bool {
        let role = role_arn(function);
        let r = Request {
            principal: &role,
            ..r
        };
        allowed(
            Some(&self.identity(function)),
            self.resource_policy(r.arn).as_ref(),
            &r,
            ACCOUNT,
        )
    }

    /// Does the resource's own policy explicitly deny `r`?
    pub fn resource_denies(&self, r: &Request) -> bool {
        self.resource_policy(r.arn)
            .is_some_and(|p| decide(&p, r) == Decision::Deny)
    }
}

/// `DigestFunction` → `DigestLogGroup`, the function's own log group.
fn log_group_key(function: &str) -> &'static str {
    match function {
        "IngestFunction" => "IngestLogGroup",
        "DeliverFunction" => "DeliverLogGroup",
        "DigestFunction" => "DigestLogGroup",
        "LookupFunction" => "LookupLogGroup",
        other => panic!("no log group for {other}"),
    }
}

/// The ARN CloudFormation gives `function`'s log group (`Fn::GetAtt …Arn`
/// ends in `:*`).
pub fn log_group_arn(function: &str) -> String {
    let name = function.trim_end_matches("Function").to_lowercase();
    format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/trailkeep-{name}:*")
}

/// `DigestFunction` → `DigestFunctionRole`, the name SAM gives its role.
fn role_key(function: &str) -> &'static str {
    match function {
        "IngestFunction" => "IngestFunctionRole",
        "DeliverFunction" => "DeliverFunctionRole",
        "DigestFunction" => "DigestFunctionRole",
        "LookupFunction" => "LookupFunctionRole",
        other => panic!("no role for {other}"),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(seq)) => seq
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Does a `StringLike` pattern (`*` wildcards) match `text`?
fn like(pattern: &str, text: &str) -> bool {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&re).expect("pattern").is_match(text)
}

/// Compares what a function did with what its role allows, for the
/// services trailkeep's code calls (DynamoDB, S3, KMS): every request is
/// allowed (the role's policy and the resource's, evaluated as IAM does),
/// every DynamoDB write with the item's partition key as
/// `dynamodb:LeadingKeys`, and every statement's every action (and every
/// leading-key pattern) was needed. Returns the problems found.
pub fn compare(
    function: &str,
    stack: &Stack,
    seen: &BTreeSet<(String, String)>,
    writes: &BTreeSet<(String, String, String)>,
    to_arn: impl Fn(&str, &str) -> String,
) -> Vec<String> {
    let ours = |a: &str| {
        ["dynamodb:", "s3:", "kms:", "sns:", "logs:"]
            .iter()
            .any(|p| a.starts_with(p))
    };
    let role = role_arn(function);
    // A KMS action S3 took for the function (SSE-KMS) is evaluated with
    // kms:ViaService set to the stack region's S3.
    let via_s3 = format!("s3.{}.amazonaws.com", stack.bind["AWS::Region"]);
    let seen: Vec<(String, String, Option<&str>)> = seen
        .iter()
        .map(|(a, r)| match a.strip_suffix(crate::faults::VIA_S3) {
            Some(a) => (a.to_owned(), to_arn(a, r), Some(via_s3.as_str())),
            None => (a.clone(), to_arn(a, r), None),
        })
        .collect();
    let writes: Vec<(String, String, String)> = writes
        .iter()
        .map(|(a, table, pk)| (a.clone(), to_arn(a, table), pk.clone()))
        .collect();
    // The principal is set by Stack::allows (or below) to the role.
    let request = |action, arn| Request::new("", action, arn);
    let via = |action, arn, via_service| Request {
        via_service,
        ..request(action, arn)
    };
    let mut problems = Vec::new();
    for (action, arn, via_service) in &seen {
        if !stack.allows(function, via(action, arn, *via_service)) {
            problems.push(format!(
                "{function} called {action} on {arn}, which its role or the resource's policy does not allow"
            ));
        }
    }
    for (action, arn, pk) in &writes {
        let r = Request {
            leading_key: Some(pk),
            ..request(action, arn)
        };
        if !stack.allows(function, r) {
            problems.push(format!(
                "{function} called {action} on items {pk:?} of {arn}, which no statement's dynamodb:LeadingKeys admit"
            ));
        }
    }
    for g in stack.grants(function) {
        for action in g.actions.iter().filter(|a| ours(a)) {
            let used = seen.iter().any(|(a, arn, via_service)| {
                a == action
                    && g.allows(&Request {
                        principal: &role,
                        ..via(a, arn, *via_service)
                    })
            });
            if !used {
                problems.push(format!(
                    "{function}'s statement {} allows {action}, which its code never called",
                    g.sid
                ));
            }
        }
        for pattern in g.leading_keys.iter().flatten() {
            let used = writes.iter().any(|(a, arn, pk)| {
                like(pattern, pk)
                    && g.allows(&Request {
                        principal: &role,
                        leading_key: Some(pk),
                        ..request(a, arn)
                    })
            });
            if !used {
                problems.push(format!(
                    "{function}'s statement {} admits items {pattern:?}, which its code never read or wrote",
                    g.sid
                ));
            }
        }
    }
    problems
}

/// template.yaml's security posture, statement by statement.
#[test]
fn each_role_can_do_only_its_part() {
    let stack = Stack::new("history", "state", "logs");
    let digest_key =
        "arn:aws:s3:::logs/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2026/11/24/x.json.gz";
    let log_key =
        "arn:aws:s3:::logs/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/24/x.json.gz";
    let signing_key = stack.bind["SigningKey"].clone();
    let can = |function: &str, action: &str, arn: &str| {
        stack.allows(function, Request::new("", action, arn))
    };
    for f in FUNCTIONS {
        for g in stack.grants(f) {
            for a in &g.actions {
                assert!(!a.contains('*'), "{f}: wildcard action {a} in {}", g.sid);
                assert!(
                    !a.starts_with("s3:Delete") && !a.starts_with("dynamodb:Delete"),
                    "{f}: {a} in {} (nothing deletes)",
                    g.sid
                );
            }
        }
        assert_eq!(
            can(f, "kms:Sign", &signing_key),
            f == "DigestFunction",
            "{f}: only digest signs"
        );
        assert_eq!(
            can(f, "s3:PutObject", digest_key),
            f == "DigestFunction",
            "{f}: only digest writes digests"
        );
        assert_eq!(
            can(f, "s3:PutObject", log_key),
            f == "DeliverFunction",
            "{f}: only deliver writes log files"
        );
        for key in [digest_key, log_key] {
            assert!(!can(f, "s3:DeleteObject", key), "{f} deletes {key}");
        }
    }
    assert!(
        !can("DeliverFunction", "s3:GetObject", log_key),
        "deliver never reads"
    );
    assert!(
        can("DigestFunction", "s3:GetObject", log_key),
        "digest hashes log files"
    );
    // The API reads the history and the trails, and writes the trails and
    // its own records (which items: each_function_writes_only_its_own_state_items);
    // for ListPublicKeys it reads the signing key's public half, and no
    // other key.
    for g in stack.grants("LookupFunction") {
        if g.actions == ["kms:GetPublicKey"] {
            assert_eq!(g.sid, "ReadSigningPublicKey");
            continue;
        }
        for a in &g.actions {
            assert!(
                [
                    "dynamodb:Query",
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:UpdateItem"
                ]
                .contains(&a.as_str()),
                "the API only reads and records: {a}"
            );
            assert!(
                !can("LookupFunction", a, &table_arn("some-other-table")),
                "{a} on another table"
            );
        }
    }
    assert!(can("LookupFunction", "kms:GetPublicKey", &signing_key));
    assert!(!can(
        "LookupFunction",
        "kms:GetPublicKey",
        "arn:aws:kms:us-east-1:123456789012:key/another"
    ));

    // The key policy: administrators manage the key but may not sign (so
    // no IAM policy can grant signing to anyone else).
    let t = template();
    let key = t.properties("SigningKey", "AWS::KMS::Key").unwrap();
    only_the_digest_role_signs_with(statements(&key["KeyPolicy"]), &stack);

    // The bucket policy, evaluated for requests of principals whose own
    // policies allow everything: only the bucket policy stands between
    // them and the files.
    let bucket = stack.resource_policy("arn:aws:s3:::logs").unwrap();
    let denied = |principal: &str, action: &str, arn: &str, tls: bool| {
        let r = Request {
            tls,
            ..Request::new(principal, action, arn)
        };
        decide(&bucket, &r) == Decision::Deny
    };
    let (digest_role, deliver_role) = (role_arn("DigestFunction"), role_arn("DeliverFunction"));
    let everyone = [
        digest_role.as_str(),
        deliver_role.as_str(),
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::123456789012:role/Admin",
    ];
    for who in everyone {
        // Nobody deletes a digest or a log file, not even their writers.
        for key in [digest_key, log_key] {
            assert!(denied(who, "s3:DeleteObject", key, true), "{who}");
            assert!(denied(who, "s3:DeleteObjectVersion", key, true), "{who}");
        }
        // Only the digest role puts a digest, only the deliver role a log file.
        assert_eq!(
            denied(who, "s3:PutObject", digest_key, true),
            who != digest_role,
            "{who} puts a digest"
        );
        assert_eq!(
            denied(who, "s3:PutObject", log_key, true),
            who != deliver_role,
            "{who} puts a log file"
        );
        // TLS only.
        assert!(denied(who, "s3:GetObject", log_key, false), "{who}");
        assert!(!denied(who, "s3:GetObject", log_key, true), "{who}");
    }
}

/// Issue 16: with `LogEncryptionKeyArns`, deliver may encrypt log files
/// and digest may encrypt digests and read log files with exactly those
/// keys; nobody else gains a KMS right; without it, no function may use
/// any such key.
#[test]
fn only_deliver_and_digest_use_the_listed_log_encryption_keys() {
    let listed = [
        "arn:aws:kms:us-east-1:123456789012:key/0b1d4e2f-8a6c-4d2e-9f1a-3b02a1c3e5f7",
        "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-8444-555555555555",
    ];
    let other = "arn:aws:kms:us-east-1:123456789012:key/99999999-2222-4333-8444-555555555555";
    for keys_listed in [false, true] {
        let mut stack = Stack::new("history", "state", "logs");
        stack.conditions.insert("HasLogEncryptionKeys", keys_listed);
        if keys_listed {
            stack.bind.insert("LogEncryptionKeyArns", listed.join(","));
        }
        // Through S3 (SSE-KMS), as deliver and digest use them; a direct
        // call is refused (kms:ViaService).
        let s3 = "s3.us-east-1.amazonaws.com";
        let may = |f: &str, action: &str, key: &str| {
            stack.allows(
                f,
                Request {
                    via_service: Some(s3),
                    ..Request::new("", action, key)
                },
            )
        };
        for key in listed {
            for f in ["DeliverFunction", "DigestFunction"] {
                assert!(
                    !stack.allows(f, Request::new("", "kms:GenerateDataKey", key)),
                    "{f} calls KMS directly"
                );
                let elsewhere = Request {
                    via_service: Some("s3.eu-west-1.amazonaws.com"),
                    ..Request::new("", "kms:GenerateDataKey", key)
                };
                assert!(
                    !stack.allows(f, elsewhere),
                    "{f} through another region's S3"
                );
            }
        }
        for f in FUNCTIONS {
            for action in [
                "kms:GenerateDataKey",
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:ReEncryptFrom",
            ] {
                for key in listed {
                    let expected = keys_listed
                        && matches!(
                            (f, action),
                            ("DeliverFunction", "kms:GenerateDataKey")
                                | ("DigestFunction", "kms:GenerateDataKey" | "kms:Decrypt")
                        );
                    assert_eq!(
                        may(f, action, key),
                        expected,
                        "{f} {action} {key} (listed: {keys_listed})"
                    );
                }
                assert!(!may(f, action, other), "{f} {action} on a key not listed");
            }
        }
    }
}

/// Issue 16: with `NotificationTopicArns`, deliver (and no other
/// function) may publish to exactly those topics.
#[test]
fn only_deliver_publishes_and_only_to_the_listed_topics() {
    let listed = "arn:aws:sns:us-east-1:123456789012:trail-files";
    let other = "arn:aws:sns:us-east-1:123456789012:someone-elses";
    for topics_listed in [false, true] {
        let mut stack = Stack::new("history", "state", "logs");
        stack
            .conditions
            .insert("HasNotificationTopics", topics_listed);
        if topics_listed {
            stack
                .bind
                .insert("NotificationTopicArns", listed.to_owned());
        }
        for f in FUNCTIONS {
            let may = |topic: &str| stack.allows(f, Request::new("", "sns:Publish", topic));
            assert_eq!(
                may(listed),
                topics_listed && f == "DeliverFunction",
                "{f} (listed: {topics_listed})"
            );
            assert!(!may(other), "{f} publishes to a topic not listed");
        }
    }
}

/// Issue 16: with `LogGroupArns`, deliver (and no other function) may
/// create streams in and put events into exactly those groups, and do
/// nothing else there (no reading, no deleting, no other group), though
/// SAM's AWSLambdaBasicExecutionRole allows every log group; each
/// function still writes its own logs.
#[test]
fn only_deliver_sends_events_and_only_to_the_listed_log_groups() {
    let listed = "arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/events:*";
    let stream = "arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/events:log-stream:123456789012_CloudTrail_us-east-1";
    let other = "arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/other:log-stream:s";
    // A group whose name merely begins like the listed one.
    let longer = "arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/events-2:log-stream:s";
    for groups_listed in [false, true] {
        let mut stack = Stack::new("history", "state", "logs");
        stack.conditions.insert("HasLogGroups", groups_listed);
        if groups_listed {
            stack.bind.insert("LogGroupArns", listed.to_owned());
        }
        for f in FUNCTIONS {
            let may = |action: &str, arn: &str| stack.allows(f, Request::new("", action, arn));
            for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
                assert_eq!(
                    may(action, stream),
                    groups_listed && f == "DeliverFunction",
                    "{f} {action} (listed: {groups_listed})"
                );
                assert!(!may(action, other), "{f} {action} on a group not listed");
                assert!(!may(action, longer), "{f} {action} on a group not listed");
            }
            for action in [
                "logs:GetLogEvents",
                "logs:DeleteLogStream",
                "logs:PutRetentionPolicy",
            ] {
                assert!(!may(action, stream), "{f} {action}");
            }
            // Its own logs, as Lambda writes them with its role.
            let own = log_group_arn(f);
            let own_stream = format!(
                "{}:log-stream:2026/11/24/[$LATEST]0123456789abcdef",
                own.trim_end_matches(":*")
            );
            assert!(may("logs:PutLogEvents", &own_stream), "{f} own logs");
            assert!(may("logs:CreateLogStream", &own_stream), "{f} own logs");
            let other = if f == "IngestFunction" {
                "DigestFunction"
            } else {
                "IngestFunction"
            };
            let theirs = format!(
                "{}:log-stream:s",
                log_group_arn(other).trim_end_matches(":*")
            );
            assert!(
                !may("logs:PutLogEvents", &theirs),
                "{f} writes {other}'s logs"
            );
            let made_up = format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:made-up:*");
            assert!(
                !may("logs:CreateLogGroup", &made_up),
                "{f} makes log groups"
            );
        }
    }
}

/// A signing key's policy (template.yaml's `SigningKey`, signing-key.yaml's),
/// evaluated for principals whose identity policies allow every KMS
/// action: administrators of the account manage the key and read its
/// public half but may not sign or grant (an explicit Deny, so no IAM
/// policy or grant can give signing to anyone else); the digest role signs
/// on the key policy alone; no other account reaches the key.
fn only_the_digest_role_signs_with(key_policy: &[Value], stack: &Stack) {
    let key_arn = &stack.bind["SigningKey"];
    let key = policy(key_policy, &stack.deployment());
    let everything = policy(
        &[serde_yaml_ng::from_str("{Effect: Allow, Action: 'kms:*', Resource: '*'}").unwrap()],
        &stack.deployment(),
    );
    let r = |who, action| Request::new(who, action, key_arn);
    let digest_role = role_arn("DigestFunction");
    let admins = [
        "arn:aws:iam::123456789012:root".to_owned(),
        "arn:aws:iam::123456789012:role/Admin".to_owned(),
        role_arn("DeliverFunction"),
    ];
    for who in &admins {
        for action in ["kms:Sign", "kms:CreateGrant"] {
            assert_eq!(
                decide(&key, &r(who, action)),
                Decision::Deny,
                "{who} {action}: an explicit Deny"
            );
            assert!(!allowed(
                Some(&everything),
                Some(&key),
                &r(who, action),
                ACCOUNT
            ));
        }
        for action in ["kms:GetPublicKey", "kms:DescribeKey", "kms:PutKeyPolicy"] {
            assert!(
                allowed(Some(&everything), Some(&key), &r(who, action), ACCOUNT),
                "{who} may {action}"
            );
        }
    }
    let mallory = "arn:aws:iam::444455556666:user/mallory";
    for action in ["kms:Sign", "kms:GetPublicKey", "kms:CreateGrant"] {
        assert!(
            !allowed(Some(&everything), Some(&key), &r(mallory, action), ACCOUNT),
            "another account's {action}"
        );
    }
    assert!(
        allowed(None, Some(&key), &r(&digest_role, "kms:Sign"), ACCOUNT),
        "the digest role signs"
    );
    assert_eq!(
        decide(&key, &r(&digest_role, "kms:CreateGrant")),
        Decision::NotApplicable,
        "the digest role grants nothing"
    );
}

/// Item 8 of issue 21: nobody but the bucket admin role (and nobody at all
/// when the parameter is empty) may add a lifecycle rule, suspend
/// versioning, shorten Object Lock or bypass GOVERNANCE on the log bucket.
#[test]
fn nobody_but_the_bucket_admin_changes_retention() {
    let t = template();
    let admin = "arn:aws:iam::123456789012:role/TrailkeepBucketAdmin";
    let bucket = "arn:aws:s3:::logs";
    let object =
        "arn:aws:s3:::logs/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2026/11/24/x.json.gz";
    let changes = [
        ("s3:PutLifecycleConfiguration", bucket),
        ("s3:PutBucketVersioning", bucket),
        ("s3:PutBucketObjectLockConfiguration", bucket),
        ("s3:BypassGovernanceRetention", object),
        ("s3:PutObjectRetention", object),
    ];
    let digest_role = role_arn("DigestFunction");
    let others = [
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::123456789012:role/Admin",
        digest_role.as_str(),
        "arn:aws:iam::444455556666:user/mallory",
    ];
    for admin_set in [false, true] {
        let mut stack = Stack::new("history", "state", "logs");
        stack.conditions.insert("HasBucketAdmin", admin_set);
        stack.bind.insert(
            "BucketAdminRoleArn",
            if admin_set { admin } else { "" }.to_owned(),
        );
        let denied = |action: &str, arn: &str, principal: &str| {
            stack.resource_denies(&Request::new(principal, action, arn))
        };
        for (action, arn) in changes {
            for principal in others {
                assert!(denied(action, arn, principal), "{principal} may {action}");
            }
            assert_eq!(
                denied(action, arn, admin),
                !admin_set,
                "the admin role and {action}, admin parameter set: {admin_set}"
            );
        }
        // Reading and delivering are untouched.
        assert!(!denied("s3:GetObject", object, others[1]));
        assert!(!denied("s3:PutObject", object, &digest_role));
    }
    // The default deployment locks every version (GOVERNANCE): the Deny on
    // the bypass is what makes it hold.
    let bucket = t.bucket("LogBucket").unwrap();
    assert_eq!(
        bucket.object_lock.map(|(mode, _)| mode).as_deref(),
        Some("GOVERNANCE")
    );
}

/// Issue 21, item 1: only the stack's rules and monitored buckets can send
/// to the ingest queue, whatever identity policies say, and only the ingest
/// function's role can take messages out (so nobody else holds a receipt
/// handle ingest would accept).
#[test]
fn only_the_stacks_rules_and_buckets_send_to_the_ingest_queue() {
    let t = template();
    let rule = |name: &str| format!("arn:aws:events:us-east-1:123456789012:rule/{name}");
    let ingest_role = role_arn("IngestFunction");
    for monitored in [false, true] {
        let mut stack = Stack::new("history", "state", "logs");
        stack.conditions.insert("HasMonitoredBuckets", monitored);
        stack
            .bind
            .insert("MonitoredBuckets", "uploads,invoices".to_owned());
        let queue = stack.bind["IngestQueue"].clone();
        let queue_policy = stack.resource_policy(&queue).unwrap();
        let denied = |principal: &str, action: &str, source_arn: Option<&str>| {
            let r = Request {
                source_arn,
                ..Request::new(principal, action, &queue)
            };
            decide(&queue_policy, &r) == Decision::Deny
        };
        // A service's request is allowed by the queue policy alone.
        let service_from = |principal: &str, source_arn: &str, account: &str| {
            let r = Request {
                source_arn: Some(source_arn),
                source_account: Some(account),
                ..Request::new(principal, "sqs:SendMessage", &queue)
            };
            allowed(None, Some(&queue_policy), &r, ACCOUNT)
        };
        let service_may =
            |principal: &str, source_arn: &str| service_from(principal, source_arn, "123456789012");
        // The stack's own senders.
        assert!(service_may("events.amazonaws.com", &rule("ct")));
        assert!(service_may(
            "events.amazonaws.com",
            &rule("trailkeep-audit/app")
        ));
        assert_eq!(
            service_may("events.amazonaws.com", &rule("s3")),
            monitored,
            "the S3 object events rule (monitoring: {monitored})"
        );
        assert_eq!(
            service_may("s3.amazonaws.com", "arn:aws:s3:::uploads"),
            monitored,
            "a monitored bucket's notification (monitoring: {monitored})"
        );
        // A bucket of that name in another account (deleted and re-created
        // there) does not send.
        assert!(!service_from(
            "s3.amazonaws.com",
            "arn:aws:s3:::uploads",
            "444455556666"
        ));
        // The attacks: a principal of the account with sqs:SendMessage in
        // its identity policy; the root user; a rule or bucket not the
        // stack's.
        for principal in [
            "arn:aws:iam::123456789012:role/Admin",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::444455556666:user/mallory",
        ] {
            for action in [
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:PurgeQueue",
            ] {
                assert!(denied(principal, action, None), "{principal} {action}");
            }
        }
        assert!(denied(
            "events.amazonaws.com",
            "sqs:SendMessage",
            Some(&rule("someone-elses-rule"))
        ));
        assert!(!service_may(
            "events.amazonaws.com",
            &rule("someone-elses-rule")
        ));
        assert!(denied(
            "s3.amazonaws.com",
            "sqs:SendMessage",
            Some("arn:aws:s3:::not-monitored")
        ));
        // Lambda's poller, with the ingest role, takes messages out.
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        ] {
            assert!(!denied(&ingest_role, action, None), "ingest may {action}");
        }
        // Receiving and deleting come with SAM's SQS event source
        // (AWSLambdaSQSQueueExecutionRole); the template's own statement
        // lets ingest confirm a receipt handle.
        assert!(stack.allows(
            "IngestFunction",
            Request::new("", "sqs:ChangeMessageVisibility", &queue)
        ));
    }
    // The dead-letter queue: only the stack's rules and the ingest queue's
    // redrive put messages there, so nothing planted is re-ingested when an
    // operator drains it.
    let mut stack = Stack::new("history", "state", "logs");
    stack.conditions.insert("HasMonitoredBuckets", true);
    let (queue, dlq) = (
        stack.bind["IngestQueue"].clone(),
        stack.bind["IngestDeadLetterQueue"].clone(),
    );
    let dlq_denies = |principal: &str, source_arn: Option<&str>| {
        stack.resource_denies(&Request {
            source_arn,
            ..Request::new(principal, "sqs:SendMessage", &dlq)
        })
    };
    assert!(dlq_denies("arn:aws:iam::123456789012:role/Admin", None));
    assert!(!dlq_denies("sqs.amazonaws.com", Some(&queue)));
    assert!(!dlq_denies("events.amazonaws.com", Some(&rule("ct"))));
    assert!(dlq_denies(
        "events.amazonaws.com",
        Some(&rule("someone-elses-rule"))
    ));

    // Nothing else can invoke ingest: no Lambda permission in the template
    // names it (EventBridge and S3 reach it only through the queue).
    for (id, resource) in t.resources_of_type("AWS::Lambda::Permission") {
        assert!(
            !format!("{:?}", resource.get("Properties")).contains("IngestFunction"),
            "{id} lets someone invoke ingest"
        );
    }
}

/// Issue 21, item 6: each function may write only the state-table items it
/// owns (`dynamodb:LeadingKeys`), so a compromised function cannot forge
/// another's: ingest no delivery cursors, claims, manifests, records of
/// delivered batch copies, chain heads, keys or trails; deliver no chain
/// heads, keys, trails or staged events; digest nothing but
/// chain heads, chain segment marks and the keys-used registry; and no
/// function but the API (LookupFunction) writes the trails (issue 13). The
/// load test checks the other direction: every write each function made is
/// admitted.
#[test]
fn each_function_writes_only_its_own_state_items() {
    let stack = Stack::new("history", "state", "logs");
    let state = table_arn("state");
    // One item of each kind: staged event (or batch item), region
    // registration, a data event's first staging (written until
    // 2026-12-04, by no function since), delivery cursor, claim, batch
    // copies delivered, manifest, chain head, key registry, trails.
    let items = [
        ("STG#audit#eu-west-1#5984940", "staged event"),
        ("REG#audit", "region registration"),
        ("SEEN#6f1b2b7e", "first staging"),
        ("DLV#audit", "delivery cursor"),
        ("OWN#audit#eu-west-1#6f1b2b7e", "delivery claim"),
        ("SUM#audit#eu-west-1#5984940", "batch copies delivered"),
        ("MAN#audit#eu-west-1#2026-11-24T01", "manifest"),
        ("DIG#audit", "chain head"),
        ("SEG#audit", "chain segment mark"),
        ("DLH#audit", "delivery health"),
        ("DGH#audit", "digest health"),
        ("KEY", "key registry"),
        ("TRAIL", "trails"),
    ];
    let (put, update) = ("dynamodb:PutItem", "dynamodb:UpdateItem");
    for (function, owns) in [
        (
            "IngestFunction",
            &[(put, "staged event"), (update, "region registration")][..],
        ),
        (
            "DeliverFunction",
            &[
                (put, "delivery claim"),
                (put, "batch copies delivered"),
                (put, "manifest"),
                (update, "delivery cursor"),
                (update, "delivery health"),
            ][..],
        ),
        (
            "DigestFunction",
            &[
                (put, "chain head"),
                (put, "chain segment mark"),
                (update, "key registry"),
                (update, "digest health"),
            ][..],
        ),
        (
            "LookupFunction",
            &[
                (put, "trails"),
                (put, "staged event"),
                (update, "region registration"),
            ][..],
        ),
    ] {
        for (pk, kind) in items {
            for action in [put, update] {
                let allowed = stack.allows(
                    function,
                    Request {
                        leading_key: Some(pk),
                        ..Request::new("", action, &state)
                    },
                );
                assert_eq!(
                    allowed,
                    owns.contains(&(action, kind)),
                    "{function} {action} on a {kind} item ({pk})"
                );
            }
        }
        // No statement writes an item of a kind nobody owns.
        for action in [put, update] {
            let forged = Request {
                leading_key: Some("FORGED#audit"),
                ..Request::new("", action, &state)
            };
            assert!(
                !stack.allows(function, forged),
                "{function}: {action} on any item"
            );
        }
    }
}

/// signing-key.yaml, the key a rotation moves to: the policy of the stack's
/// own key statement by statement, and one more that only lets the API
/// role read the public half.
#[test]
fn a_key_made_with_signing_key_yaml_has_the_stacks_key_policy() {
    let made = trailkeep_dev::provision::Template::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../signing-key.yaml"
    ))
    .expect("signing-key.yaml parses");
    let made = made.properties("SigningKey", "AWS::KMS::Key").unwrap();
    assert_eq!(made["KeySpec"].as_str(), Some("RSA_2048"));
    assert_eq!(made["KeyUsage"].as_str(), Some("SIGN_VERIFY"));
    let made = statements(&made["KeyPolicy"]);
    // signing-key.yaml takes the roles as parameters.
    let mut deployed = Stack::new("history", "state", "logs");
    deployed
        .bind
        .insert("DigestFunctionRoleArn", role_arn("DigestFunction"));
    deployed
        .bind
        .insert("LookupFunctionRoleArn", role_arn("LookupFunction"));
    only_the_digest_role_signs_with(made, &deployed);

    let t = template();
    let stack = t.properties("SigningKey", "AWS::KMS::Key").unwrap();
    let stack = stack["KeyPolicy"]["Statement"].as_sequence().unwrap();
    // (Sid, Effect, Action, NotAction) of each statement.
    let shape = |s: &Value| {
        (
            s["Sid"].as_str().unwrap_or_default().to_owned(),
            s["Effect"].as_str().unwrap_or_default().to_owned(),
            strings(s.get("Action")),
            strings(s.get("NotAction")),
        )
    };
    let mut extra: Vec<_> = made.iter().map(shape).collect();
    for s in stack {
        let i = extra
            .iter()
            .position(|m| *m == shape(s))
            .unwrap_or_else(|| panic!("signing-key.yaml lacks {:?}", shape(s)));
        extra.remove(i);
    }
    assert_eq!(
        extra,
        [(
            "LookupFunctionReadsPublicKey".to_owned(),
            "Allow".to_owned(),
            vec!["kms:GetPublicKey".to_owned()],
            vec![]
        )]
    );
    // That statement lets the API's role read the public half on the key
    // policy alone (its own policy names only the stack's key), and no
    // other role.
    let key = policy(made, &deployed.deployment());
    let read = |who: &str| {
        allowed(
            None,
            Some(&key),
            &Request::new(who, "kms:GetPublicKey", &deployed.bind["SigningKey"]),
            ACCOUNT,
        )
    };
    assert!(read(&role_arn("LookupFunction")));
    assert!(!read(&role_arn("DeliverFunction")));
}

/// `SigningKeyArns` and `RetiredSigningKeyArns` as the functions read them:
/// the digest function signs each region with the key the parameter names
/// for it (the stack's key otherwise), and ListPublicKeys lists every key
/// that signs now or signed before.
#[test]
fn the_signing_keys_follow_signing_key_arns_and_retired_keys_stay_listed() {
    use trailkeep_shared::aws::kms::KeyMap;
    let (stack, new, old) = (
        "arn:aws:kms:us-east-1:123456789012:key/stack",
        "arn:aws:kms:us-east-1:123456789012:key/new",
        "arn:aws:kms:eu-west-1:123456789012:key/old",
    );
    let t = template();
    let env = |function: &str, signing: &str, retired: &str| -> String {
        let mut deployed = Stack::new("h", "s", "b");
        deployed.bind.insert("SigningKey", stack.to_owned());
        deployed.bind.insert("SigningKeyArns", signing.to_owned());
        deployed
            .bind
            .insert("RetiredSigningKeyArns", retired.to_owned());
        let d = deployed.deployment();
        let props = t.properties(function, "AWS::Serverless::Function").unwrap();
        let mut v = cfn(&props["Environment"]["Variables"]["SIGNING_KEYS"], &d);
        assert_eq!(v.len(), 1);
        v.remove(0)
    };
    let signer = |signing: &str| KeyMap::parse(&env("DigestFunction", signing, "")).unwrap();
    // (SigningKeyArns, region) → the key that signs its digests.
    for (signing, region, key) in [
        ("", "us-east-1", stack),
        ("", "ap-south-1", stack),
        (
            "*=arn:aws:kms:us-east-1:123456789012:key/new",
            "eu-west-1",
            new,
        ),
        (
            "eu-west-1=arn:aws:kms:us-east-1:123456789012:key/new",
            "eu-west-1",
            new,
        ),
        (
            "eu-west-1=arn:aws:kms:us-east-1:123456789012:key/new",
            "us-east-1",
            stack,
        ),
    ] {
        assert_eq!(signer(signing).key(region), Some(key), "{signing} {region}");
    }
    let listed = |signing: &str, retired: &str| {
        KeyMap::every_key(&env("LookupFunction", signing, retired)).unwrap()
    };
    assert_eq!(listed("", ""), [stack]);
    assert_eq!(
        listed(&format!("*={new}"), old),
        [stack, new, old],
        "after a rotation the old keys stay listed"
    );
    assert_eq!(
        listed(&format!("eu-west-1={new},*={new}"), ""),
        [stack, new]
    );
}

/// The grants above are read from each function's inline `Policies`
/// documents. A SAM policy template (`DynamoDBCrudPolicy: …`), a managed
/// policy name or ARN, or a `Role` of the function's own would grant
/// what these tests never see: each is refused here. (SAM itself adds
/// only what every function needs: AWSLambdaBasicExecutionRole for its
/// logs, X-Ray writes for `Tracing: Active`, and `sqs:SendMessage` on its
/// own `DeadLetterQueue`.)
#[test]
fn every_functions_permissions_are_inline_documents_the_tests_read() {
    let t = template();
    let functions = t.resources_of_type("AWS::Serverless::Function");
    assert!(functions.len() >= 4, "{functions:?}");
    let mut wrong = Vec::new();
    for (id, f) in functions {
        let props = &f["Properties"];
        if props.get("Role").is_some() {
            wrong.push(format!("{id}: a Role of its own"));
        }
        let policies = props.get("Policies").and_then(Value::as_sequence);
        for p in policies.into_iter().flatten() {
            let inline = p.get("Version").is_some()
                && p.get("Statement").and_then(Value::as_sequence).is_some()
                && p.as_mapping().is_some_and(|m| m.len() == 2);
            if !inline {
                wrong.push(format!(
                    "{id}: a Policies entry that is not an inline document: {p:?}"
                ));
            }
        }
    }
    // Nor may a policy reach a role from outside its function: a
    // standalone policy naming `DigestFunctionRole`, or a role, user or
    // group the template makes, would grant what the tests above never
    // evaluate; nor may Globals give every function more.
    let doc: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    for (id, r) in doc["Resources"].as_mapping().unwrap() {
        let kind = r["Type"].as_str().unwrap_or_default();
        if kind.starts_with("AWS::IAM::") {
            wrong.push(format!("{id:?}: a {kind} outside the functions' Policies"));
        }
    }
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    for key in ["Policies", "Role"] {
        if globals.is_some_and(|g| g.get(key).is_some()) {
            wrong.push(format!("Globals.Function.{key}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
