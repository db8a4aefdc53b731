//! template.yaml's IAM grants, read back for the tests: what each function's
//! role may do, on which resources, compared with what its code was seen
//! doing through the fault proxy.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use crate::helpers::template;

/// One Allow statement: its actions and resource patterns (ARNs with `*`),
/// and the item partition keys it is limited to
/// (`ForAllValues:StringLike` on `dynamodb:LeadingKeys`), if any.
#[derive(Clone, Debug)]
pub struct Grant {
    pub sid: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub leading_keys: Option<Vec<String>>,
}

impl Grant {
    /// Does this statement allow `action` on `arn` (for an item with
    /// partition key `pk`, when the request names one)?
    fn allows(&self, action: &str, arn: &str, pk: Option<&str>) -> bool {
        self.actions.iter().any(|a| a == action)
            && self.resources.iter().any(|p| matches(p, arn))
            && match (&self.leading_keys, pk) {
                (Some(patterns), Some(pk)) => patterns.iter().any(|p| matches(p, pk)),
                _ => true,
            }
    }
}

/// ARNs of the template's resources in this test (`HistoryTable` → the
/// test table's ARN …), for `!GetAtt X.Arn` and `${X.Arn}`.
pub type Bindings = BTreeMap<&'static str, String>;

pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}")
}

/// The Allow statements that apply to `function`'s role: its `Policies`,
/// and the statements of the signing key's policy naming that role.
pub fn grants(function: &str, bind: &Bindings) -> Vec<Grant> {
    let t = template();
    let props = t
        .properties(function, "AWS::Serverless::Function")
        .expect("the function is in template.yaml");
    let mut statements: Vec<&Value> = props
        .get("Policies")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("Statement").and_then(Value::as_sequence))
        .flatten()
        .collect();
    let key = t
        .properties("SigningKey", "AWS::KMS::Key")
        .expect("SigningKey in template.yaml");
    let role = format!("{function}Role");
    statements.extend(
        key.get("KeyPolicy")
            .and_then(|p| p.get("Statement"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter(|s| format!("{:?}", s.get("Principal")).contains(&role)),
    );
    statements
        .into_iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .map(|s| Grant {
            sid: s
                .get("Sid")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
            actions: strings(s.get("Action")),
            resources: resolve_all(s.get("Resource"), bind),
            leading_keys: s
                .get("Condition")
                .and_then(|c| c.get("ForAllValues:StringLike"))
                .and_then(|c| c.get("dynamodb:LeadingKeys"))
                .map(|v| strings(Some(v))),
        })
        .collect()
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

fn resolve_all(v: Option<&Value>, bind: &Bindings) -> Vec<String> {
    match v {
        Some(Value::Sequence(seq)) => seq.iter().map(|v| resolve(v, bind)).collect(),
        Some(v) => vec![resolve(v, bind)],
        None => Vec::new(),
    }
}

/// `"*"`, `!GetAtt X.Arn` or `!Sub "${X.Arn}/…"` with the test's ARNs.
fn resolve(v: &Value, bind: &Bindings) -> String {
    let lookup = |name: &str| -> String {
        let id = name.trim_end_matches(".Arn");
        bind.get(id)
            .cloned()
            .unwrap_or_else(|| panic!("no binding for {name} in this test"))
    };
    match v {
        Value::String(s) => s.clone(),
        Value::Tagged(t) => {
            let text = t.value.as_str().unwrap_or_default();
            match t.tag.to_string().trim_start_matches('!') {
                "GetAtt" => lookup(text),
                "Sub" => {
                    let mut out = String::new();
                    let mut rest = text;
                    while let Some(start) = rest.find("${") {
                        out.push_str(&rest[..start]);
                        let end = rest[start..].find('}').expect("closed ${…}") + start;
                        out.push_str(&lookup(&rest[start + 2..end]));
                        rest = &rest[end + 1..];
                    }
                    out.push_str(rest);
                    out
                }
                other => panic!("unsupported resource form !{other}"),
            }
        }
        other => panic!("unsupported resource {other:?}"),
    }
}

/// Does an IAM resource pattern (`*` wildcards) match `arn`?
pub fn matches(pattern: &str, arn: &str) -> bool {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&re).expect("pattern").is_match(arn)
}

/// Compares what a function did with what its role allows, for the
/// services trailkeep's code calls (DynamoDB, S3, KMS): every request is
/// allowed by some statement, every DynamoDB write by a statement whose
/// `dynamodb:LeadingKeys` admit the item's partition key, and every
/// statement's every action (and every leading-key pattern) was needed.
/// Returns the problems found.
pub fn compare(
    function: &str,
    grants: &[Grant],
    seen: &BTreeSet<(String, String)>,
    writes: &BTreeSet<(String, String, String)>,
    to_arn: impl Fn(&str, &str) -> String,
) -> Vec<String> {
    let ours = |a: &str| {
        ["dynamodb:", "s3:", "kms:"]
            .iter()
            .any(|p| a.starts_with(p))
    };
    let seen: Vec<(String, String)> = seen
        .iter()
        .map(|(a, r)| (a.clone(), to_arn(a, r)))
        .collect();
    let writes: Vec<(String, String, String)> = writes
        .iter()
        .map(|(a, table, pk)| (a.clone(), to_arn(a, table), pk.clone()))
        .collect();
    let mut problems = Vec::new();
    for (action, arn) in &seen {
        if !grants.iter().any(|g| g.allows(action, arn, None)) {
            problems.push(format!(
                "{function} called {action} on {arn}, which its role does not allow"
            ));
        }
    }
    for (action, arn, pk) in &writes {
        if !grants.iter().any(|g| g.allows(action, arn, Some(pk))) {
            problems.push(format!(
                "{function} called {action} on items {pk:?} of {arn}, which no statement's dynamodb:LeadingKeys admit"
            ));
        }
    }
    for g in grants {
        for action in g.actions.iter().filter(|a| ours(a)) {
            let used = seen
                .iter()
                .any(|(a, arn)| a == action && g.resources.iter().any(|p| matches(p, arn)));
            if !used {
                problems.push(format!(
                    "{function}'s statement {} allows {action} on {:?}, which its code never called",
                    g.sid, g.resources
                ));
            }
        }
        for pattern in g.leading_keys.iter().flatten() {
            let used = writes
                .iter()
                .any(|(a, arn, pk)| g.allows(a, arn, Some(pk)) && matches(pattern, pk));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_iam_does() {
        assert!(matches(
            "arn:aws:s3:::b/*AWSLogs/*/CloudTrail/*",
            "arn:aws:s3:::b/p/AWSLogs/1/CloudTrail/eu-west-1/x.json.gz"
        ));
        assert!(!matches(
            "arn:aws:s3:::b/*AWSLogs/*/CloudTrail/*",
            "arn:aws:s3:::b/AWSLogs/1/CloudTrail-Digest/eu-west-1/x.json.gz"
        ));
        assert!(matches("*", "anything"));
        assert!(!matches(
            "arn:aws:dynamodb:r:a:table/T",
            "arn:aws:dynamodb:r:a:table/T2"
        ));
    }
}

/// The resources the functions' policies name, for tables and a bucket of
/// these names.
pub fn function_bindings(history: &str, state: &str, bucket: &str) -> Bindings {
    [
        ("HistoryTable", table_arn(history)),
        ("StateTable", table_arn(state)),
        ("LogBucket", format!("arn:aws:s3:::{bucket}")),
        (
            "IngestQueue",
            "arn:aws:sqs:us-east-1:123456789012:ingest".to_owned(),
        ),
        (
            "SigningKey",
            "arn:aws:kms:us-east-1:123456789012:key/signing".to_owned(),
        ),
    ]
    .into_iter()
    .collect()
}

/// template.yaml's security posture, statement by statement.
#[test]
fn each_role_can_do_only_its_part() {
    let bind = function_bindings("history", "state", "logs");
    let functions = [
        "IngestFunction",
        "DeliverFunction",
        "DigestFunction",
        "LookupFunction",
    ];
    let digest_key =
        "arn:aws:s3:::logs/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/x.json.gz";
    let log_key =
        "arn:aws:s3:::logs/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/x.json.gz";
    let can = |function: &str, action: &str, arn: &str| {
        grants(function, &bind).iter().any(|g| {
            g.actions.iter().any(|a| matches(a, action))
                && g.resources.iter().any(|r| matches(r, arn))
        })
    };
    for f in functions {
        for g in grants(f, &bind) {
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
            can(f, "kms:Sign", "*"),
            f == "DigestFunction",
            "{f}: only digest signs"
        );
        assert_eq!(
            can(f, "s3:PutObject", digest_key),
            f == "DigestFunction",
            "{f}: only digest writes digests"
        );
    }
    assert!(can("DeliverFunction", "s3:PutObject", log_key));
    assert!(
        !can("DeliverFunction", "s3:GetObject", log_key),
        "deliver never reads"
    );
    assert!(!can("IngestFunction", "s3:PutObject", log_key));
    // The API reads the history and the trails, and writes the trails and
    // its own records (which items: each_function_writes_only_its_own_state_items);
    // for ListPublicKeys it reads the signing key's public half, and no
    // other key.
    for g in grants("LookupFunction", &bind) {
        if g.actions == ["kms:GetPublicKey"] {
            assert_eq!(g.resources, [bind["SigningKey"].as_str()], "{g:?}");
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
        }
        assert!(g.resources.iter().all(|r| r.contains(":table/")), "{g:?}");
    }
    assert!(can(
        "LookupFunction",
        "kms:GetPublicKey",
        &bind["SigningKey"]
    ));

    // The key policy: administrators manage the key but may not sign (so
    // no IAM policy can grant signing to anyone else).
    let t = template();
    let key = t.properties("SigningKey", "AWS::KMS::Key").unwrap();
    only_the_digest_role_signs_with(key["KeyPolicy"]["Statement"].as_sequence().unwrap());

    // The bucket policy, its Deny statements evaluated for requests of
    // given principals (as IAM does: actions, resources, conditions).
    let policy = t
        .properties("LogBucketPolicy", "AWS::S3::BucketPolicy")
        .unwrap();
    let (digest_role, deliver_role) = (
        "arn:aws:iam::111122223333:role/trailkeep-DigestFunctionRole-1A2B3C",
        "arn:aws:iam::111122223333:role/trailkeep-DeliverFunctionRole-9Z8Y",
    );
    let mut roles = bind.clone();
    roles.insert("DigestFunctionRole", digest_role.to_owned());
    roles.insert("DeliverFunctionRole", deliver_role.to_owned());
    let d = Deployment {
        bind: &roles,
        conditions: BTreeMap::from([("HasBucketAdmin", false)]),
    };
    let denied = |principal: &str, action: &str, arn: &str, tls: bool| {
        let r = Request {
            principal,
            action,
            arn,
            source_arn: None,
            tls,
        };
        denies(policy).iter().any(|s| deny_applies(s, &r, &d))
    };
    let everyone = [
        digest_role,
        deliver_role,
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:role/Admin",
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

/// A signing key's policy (template.yaml's `SigningKey`, signing-key.yaml's):
/// administrators manage the key but may not sign, so no IAM policy can
/// grant signing to anyone else; only the digest role signs or grants.
fn only_the_digest_role_signs_with(statements: &[Value]) {
    for s in statements {
        let principal = format!("{:?}", s.get("Principal"));
        let signs = strings(s.get("Action"))
            .iter()
            .any(|a| a == "kms:Sign" || a == "kms:*");
        let allows = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        if signs && allows {
            assert!(principal.contains("DigestFunctionRole"), "{s:?}");
        }
        if principal.contains(":root") {
            assert_eq!(strings(s.get("NotAction")), ["kms:Sign"], "{s:?}");
            assert!(s.get("Action").is_none());
        }
    }
    // The explicit Deny, evaluated as KMS does for one statement: it
    // applies to a principal (every principal: "*") and an action it
    // lists, when its one condition, ArnNotEquals on aws:PrincipalArn,
    // holds. The digest role is the only principal it spares.
    let digest_role = "arn:aws:iam::111122223333:role/trailkeep-DigestFunctionRole-1A2B3C";
    let deny = statements
        .iter()
        .find(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .expect("the key policy has an explicit Deny");
    assert_eq!(
        format!("{:?}", deny.get("Principal")),
        format!("{:?}", Some(&Value::from("*")))
    );
    let denied = |principal: &str, action: &str| {
        let acts = strings(deny.get("Action"))
            .iter()
            .any(|a| matches(a, action));
        let conditions = deny["Condition"].as_mapping().expect("a Condition");
        let holds = conditions.iter().all(|(operator, block)| {
            let block = block.as_mapping().expect("a condition block");
            block.iter().all(|(key, value)| {
                assert_eq!(
                    operator.as_str(),
                    Some("ArnNotEquals"),
                    "only ArnNotEquals is evaluated here"
                );
                assert_eq!(key.as_str(), Some("aws:PrincipalArn"));
                // The value is !GetAtt DigestFunctionRole.Arn: bound to the role's ARN.
                assert!(
                    format!("{value:?}").contains("DigestFunctionRole"),
                    "{value:?}"
                );
                principal != digest_role
            })
        });
        acts && holds
    };
    for principal in [
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:role/Admin",
        "arn:aws:iam::111122223333:role/trailkeep-DeliverFunctionRole-9Z8Y",
        "arn:aws:iam::444455556666:user/mallory",
    ] {
        assert!(denied(principal, "kms:Sign"), "{principal} may sign");
        assert!(
            denied(principal, "kms:CreateGrant"),
            "{principal} may grant"
        );
        assert!(
            !denied(principal, "kms:GetPublicKey"),
            "public keys stay readable"
        );
    }
    assert!(!denied(digest_role, "kms:Sign"), "the digest role signs");
}

/// The parameters and conditions a test deploys the template with.
struct Deployment<'a> {
    /// ARNs of resources (`!GetAtt X.Arn`) and parameter values (`!Ref P`;
    /// a list parameter as comma-separated text).
    bind: &'a Bindings,
    conditions: BTreeMap<&'a str, bool>,
}

/// A CloudFormation value as the strings it stands for, for the forms the
/// template's policies use: text, lists, `!Ref`, `!GetAtt`, `!Sub` (with or
/// without a variable map), `!Join`, `!Split`, `!If`.
fn cfn(v: &Value, d: &Deployment) -> Vec<String> {
    let one = |v: &Value| -> String {
        let mut all = cfn(v, d);
        assert_eq!(all.len(), 1, "one value expected from {v:?}");
        all.remove(0)
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(|i| cfn(i, d)).collect(),
        Value::Tagged(t) => {
            let args = t.value.as_sequence();
            let arg = |i: usize| &args.expect("arguments")[i];
            match t.tag.to_string().trim_start_matches('!') {
                "Ref" if t.value.as_str() == Some("AWS::NoValue") => Vec::new(),
                "Ref" => {
                    let name = t.value.as_str().expect("!Ref name");
                    let value = d.bind.get(name).unwrap_or_else(|| panic!("bind {name}"));
                    value.split(',').map(str::to_owned).collect()
                }
                "GetAtt" => vec![resolve(v, d.bind)],
                "Sub" => {
                    let (text, vars) = match &t.value {
                        Value::String(s) => (s.clone(), BTreeMap::new()),
                        _ => {
                            let vars = arg(1)
                                .as_mapping()
                                .expect("!Sub variables")
                                .iter()
                                .map(|(k, v)| (k.as_str().unwrap().to_owned(), one(v)))
                                .collect::<BTreeMap<_, _>>();
                            (arg(0).as_str().expect("!Sub text").to_owned(), vars)
                        }
                    };
                    let mut out = String::new();
                    let mut rest = text.as_str();
                    while let Some(start) = rest.find("${") {
                        out.push_str(&rest[..start]);
                        let end = rest[start..].find('}').expect("closed ${…}") + start;
                        let name = &rest[start + 2..end];
                        let value = vars.get(name).cloned().unwrap_or_else(|| {
                            d.bind
                                .get(name.trim_end_matches(".Arn"))
                                .cloned()
                                .unwrap_or_else(|| panic!("bind {name}"))
                        });
                        out.push_str(&value);
                        rest = &rest[end + 1..];
                    }
                    out.push_str(rest);
                    vec![out]
                }
                "Join" => vec![cfn(arg(1), d).join(arg(0).as_str().expect("separator"))],
                "Split" => one(arg(1))
                    .split(arg(0).as_str().expect("separator"))
                    .map(str::to_owned)
                    .collect(),
                "If" => {
                    let name = arg(0).as_str().expect("condition name");
                    cfn(arg(if d.conditions[name] { 1 } else { 2 }), d)
                }
                other => panic!("unsupported !{other}"),
            }
        }
        other => panic!("unsupported value {other:?}"),
    }
}

/// One request to a resource: who, what, on which ARN, and (for a
/// service acting for a resource) the `aws:SourceArn` it carries.
struct Request<'a> {
    principal: &'a str,
    action: &'a str,
    arn: &'a str,
    source_arn: Option<&'a str>,
    /// `aws:SecureTransport`: sent over TLS.
    tls: bool,
}

/// Does the Deny statement `s` of a resource policy refuse `r`? Evaluated
/// as IAM does for what template.yaml uses: Principal `*`, Action/Resource
/// patterns, and a Condition (itself perhaps under `!If`) of `ArnEquals` /
/// `ArnNotEquals` on `aws:PrincipalArn` or `aws:SourceArn`, or `Bool` on
/// `aws:SecureTransport`. A key the
/// request lacks makes `ArnNotEquals` hold and `ArnEquals` fail, as in IAM.
fn deny_applies(s: &Value, r: &Request, d: &Deployment) -> bool {
    assert_eq!(s.get("Effect").and_then(Value::as_str), Some("Deny"));
    assert_eq!(s.get("Principal").and_then(Value::as_str), Some("*"));
    let acts = strings(s.get("Action"))
        .iter()
        .any(|a| matches(a, r.action));
    let on = s
        .get("Resource")
        .map(|v| cfn(v, d))
        .unwrap_or_default()
        .iter()
        .any(|p| matches(p, r.arn));
    let mut condition = s.get("Condition").cloned();
    if let Some(Value::Tagged(t)) = &condition {
        assert_eq!(t.tag.to_string(), "!If");
        let branches = t.value.as_sequence().expect("!If [name, then, else]");
        let name = branches[0].as_str().expect("a condition name");
        let chosen = &branches[if d.conditions[name] { 1 } else { 2 }];
        let no_value =
            matches!(chosen, Value::Tagged(t) if t.value.as_str() == Some("AWS::NoValue"));
        condition = (!no_value).then(|| chosen.clone());
    }
    let holds = condition.is_none_or(|c| {
        c.as_mapping()
            .expect("a Condition")
            .iter()
            .all(|(operator, block)| {
                let negated = match operator.as_str() {
                    Some("ArnNotEquals") => true,
                    Some("ArnEquals") | Some("Bool") => false,
                    other => panic!("operator {other:?} is not evaluated here"),
                };
                block.as_mapping().unwrap().iter().all(|(key, values)| {
                    if operator.as_str() == Some("Bool") {
                        assert_eq!(key.as_str(), Some("aws:SecureTransport"));
                        let tls = if r.tls { "true" } else { "false" };
                        return cfn(values, d).iter().any(|v| v == tls);
                    }
                    let actual = match key.as_str() {
                        Some("aws:PrincipalArn") => Some(r.principal),
                        Some("aws:SourceArn") => r.source_arn,
                        other => panic!("key {other:?} is not evaluated here"),
                    };
                    let listed = cfn(values, d);
                    match actual {
                        None => negated,
                        Some(a) => listed.iter().any(|v| matches(v, a)) != negated,
                    }
                })
            })
    });
    acts && on && holds
}

/// The Deny statements of resource `policy`'s document, but TLS-only
/// (every request here is over TLS).
fn denies(policy: &Value) -> Vec<&Value> {
    policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .collect()
}

/// Item 8 of issue 21: nobody but the bucket admin role (and nobody at all
/// when the parameter is empty) may add a lifecycle rule, suspend
/// versioning, shorten Object Lock or bypass GOVERNANCE on the log bucket.
#[test]
fn nobody_but_the_bucket_admin_changes_retention() {
    let t = template();
    let admin = "arn:aws:iam::111122223333:role/TrailkeepBucketAdmin";
    let policy = t
        .properties("LogBucketPolicy", "AWS::S3::BucketPolicy")
        .unwrap();
    let bucket = "arn:aws:s3:::logs";
    let object =
        "arn:aws:s3:::logs/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/x.json.gz";
    let changes = [
        ("s3:PutLifecycleConfiguration", bucket),
        ("s3:PutBucketVersioning", bucket),
        ("s3:PutBucketObjectLockConfiguration", bucket),
        ("s3:BypassGovernanceRetention", object),
        ("s3:PutObjectRetention", object),
    ];
    let others = [
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:role/Admin",
        "arn:aws:iam::111122223333:role/trailkeep-DigestFunctionRole-1A2B3C",
        "arn:aws:iam::444455556666:user/mallory",
    ];
    for admin_set in [false, true] {
        let bind: Bindings = [
            ("LogBucket", bucket.to_owned()),
            (
                "DeliverFunctionRole",
                "arn:aws:iam::111122223333:role/d".to_owned(),
            ),
            (
                "DigestFunctionRole",
                "arn:aws:iam::111122223333:role/g".to_owned(),
            ),
            (
                "BucketAdminRoleArn",
                if admin_set { admin } else { "" }.to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let d = Deployment {
            bind: &bind,
            conditions: BTreeMap::from([("HasBucketAdmin", admin_set)]),
        };
        let denied = |action: &str, arn: &str, principal: &str| {
            let r = Request {
                principal,
                action,
                arn,
                source_arn: None,
                tls: true,
            };
            denies(policy).iter().any(|s| deny_applies(s, &r, &d))
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
        assert!(!denied(
            "s3:PutObject",
            object,
            "arn:aws:iam::111122223333:role/g"
        ));
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
    let policy = t
        .properties("IngestQueuePolicy", "AWS::SQS::QueuePolicy")
        .unwrap();
    let queue = "arn:aws:sqs:eu-west-1:111122223333:trailkeep-IngestQueue-1A2B";
    let rule = |name: &str| format!("arn:aws:events:eu-west-1:111122223333:rule/{name}");
    let ingest_role = "arn:aws:iam::111122223333:role/trailkeep-IngestFunctionRole-1A2B";
    for monitored in [false, true] {
        let bind: Bindings = [
            ("IngestQueue", queue.to_owned()),
            ("IngestFunctionRole", ingest_role.to_owned()),
            ("CloudTrailEventsRule", rule("ct")),
            ("AuditBusRule", rule("trailkeep-audit/app")),
            ("S3ObjectEventsRule", rule("s3")),
            ("MonitoredBuckets", "uploads,invoices".to_owned()),
            ("AWS::AccountId", "111122223333".to_owned()),
        ]
        .into_iter()
        .collect();
        let d = Deployment {
            bind: &bind,
            conditions: BTreeMap::from([("HasMonitoredBuckets", monitored)]),
        };
        let denied = |principal: &str, action: &str, source_arn: Option<&str>| {
            let r = Request {
                principal,
                action,
                arn: queue,
                source_arn,
                tls: true,
            };
            denies(policy).iter().any(|s| deny_applies(s, &r, &d))
        };
        // The stack's own senders.
        assert!(!denied(
            "events.amazonaws.com",
            "sqs:SendMessage",
            Some(&rule("ct"))
        ));
        assert!(!denied(
            "events.amazonaws.com",
            "sqs:SendMessage",
            Some(&rule("trailkeep-audit/app"))
        ));
        assert_eq!(
            denied(
                "s3.amazonaws.com",
                "sqs:SendMessage",
                Some("arn:aws:s3:::uploads")
            ),
            !monitored,
            "a monitored bucket's notification (monitoring: {monitored})"
        );
        // The attacks: a principal of the account with sqs:SendMessage in
        // its identity policy; the root user; a rule or bucket not the
        // stack's.
        for principal in [
            "arn:aws:iam::111122223333:role/Admin",
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::444455556666:user/mallory",
        ] {
            assert!(
                denied(principal, "sqs:SendMessage", None),
                "{principal} sends"
            );
            assert!(
                denied(principal, "sqs:ReceiveMessage", None),
                "{principal} receives"
            );
            assert!(
                denied(principal, "sqs:ChangeMessageVisibility", None),
                "{principal} holds a handle"
            );
            assert!(
                denied(principal, "sqs:PurgeQueue", None),
                "{principal} purges"
            );
        }
        assert!(denied(
            "events.amazonaws.com",
            "sqs:SendMessage",
            Some(&rule("someone-elses-rule"))
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
            assert!(!denied(ingest_role, action, None), "ingest may {action}");
        }
    }
    // The dead-letter queue: only the stack's rules and the ingest queue's
    // redrive put messages there, so nothing planted is re-ingested when an
    // operator drains it.
    let dlq = "arn:aws:sqs:eu-west-1:111122223333:trailkeep-IngestDeadLetterQueue-9Z";
    let dlq_policy = t
        .properties("IngestDeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")
        .unwrap();
    let bind: Bindings = [
        ("IngestDeadLetterQueue", dlq.to_owned()),
        ("IngestQueue", queue.to_owned()),
        ("CloudTrailEventsRule", rule("ct")),
        ("AuditBusRule", rule("trailkeep-audit/app")),
        ("S3ObjectEventsRule", rule("s3")),
    ]
    .into_iter()
    .collect();
    let d = Deployment {
        bind: &bind,
        conditions: BTreeMap::from([("HasMonitoredBuckets", true)]),
    };
    let dlq_denies = |principal: &str, source_arn: Option<&str>| {
        let r = Request {
            principal,
            action: "sqs:SendMessage",
            arn: dlq,
            source_arn,
            tls: true,
        };
        denies(dlq_policy).iter().any(|s| deny_applies(s, &r, &d))
    };
    assert!(dlq_denies("arn:aws:iam::111122223333:role/Admin", None));
    assert!(!dlq_denies("sqs.amazonaws.com", Some(queue)));
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
/// another's: ingest no delivery cursors, claims, manifests, chain heads,
/// keys or trails;
/// deliver no chain heads, keys, trails or staged events; digest nothing but
/// chain heads, chain segment marks and the keys-used registry; and no
/// function but the API (LookupFunction) writes the trails (issue 13). The
/// load test checks the other direction: every write each function made is
/// admitted.
#[test]
fn each_function_writes_only_its_own_state_items() {
    let state = table_arn("state");
    let bind = function_bindings("history", "state", "logs");
    // One item of each kind: staged event, region registration, delivery cursor, claim,
    // manifest, chain head, key registry, trails.
    let items = [
        ("STG#audit#eu-west-1#5984940", "staged event"),
        ("REG#audit", "region registration"),
        ("DLV#audit", "delivery cursor"),
        ("OWN#audit#eu-west-1#6f1b2b7e", "delivery claim"),
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
        let grants = grants(function, &bind);
        for (pk, kind) in items {
            for action in [put, update] {
                let allowed = grants.iter().any(|g| g.allows(action, &state, Some(pk)));
                assert_eq!(
                    allowed,
                    owns.contains(&(action, kind)),
                    "{function} {action} on a {kind} item ({pk})"
                );
            }
        }
        // No write to the state table without a LeadingKeys condition.
        for g in &grants {
            let writes = g
                .actions
                .iter()
                .any(|a| a == "dynamodb:PutItem" || a == "dynamodb:UpdateItem");
            if writes && g.resources.iter().any(|r| r == &state) {
                assert!(
                    g.leading_keys.is_some(),
                    "{function}: {} writes any item",
                    g.sid
                );
            }
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
    let made = made["KeyPolicy"]["Statement"].as_sequence().unwrap();
    only_the_digest_role_signs_with(made);

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
    let lookup = made
        .iter()
        .find(|s| s["Sid"].as_str() == Some("LookupFunctionReadsPublicKey"))
        .unwrap();
    assert!(format!("{:?}", lookup["Principal"]).contains("LookupFunctionRoleArn"));
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
        let mut bind = function_bindings("h", "s", "b");
        bind.insert("SigningKey", stack.to_owned());
        bind.insert("SigningKeyArns", signing.to_owned());
        bind.insert("RetiredSigningKeyArns", retired.to_owned());
        let d = Deployment {
            bind: &bind,
            conditions: BTreeMap::new(),
        };
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
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
