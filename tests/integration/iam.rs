//! IAM policies evaluated structurally for the policy tests: the
//! template's documents with their CloudFormation intrinsics resolved for
//! one deployment, read and evaluated by `iam-rs` (pinned to one version in
//! Cargo.toml: the crate says it is not externally verified, so the tests
//! below check it on AWS's documented examples before any policy test
//! relies on it), and combined across a principal's identity policy and a
//! resource's policy as AWS does for a request within one account.

use std::collections::BTreeMap;

use iam_rs::{
    Arn, Context, ContextValue, Decision, IAMPolicy, IAMRequest, PolicyEvaluator, Principal,
    PrincipalId,
};
use serde_json::{json, Value as Json};
use serde_yaml_ng::Value;

/// Values of the template's names in one test deployment: resource ARNs
/// (`!GetAtt X.Arn`, `${X.Arn}`), parameters and pseudo parameters (`!Ref
/// P`; a list parameter as comma-separated text).
pub type Bindings = BTreeMap<&'static str, String>;

/// The parameters and conditions a test deploys the template with.
pub struct Deployment<'a> {
    pub bind: &'a Bindings,
    pub conditions: BTreeMap<&'a str, bool>,
}

/// A CloudFormation value as the strings it stands for, for the forms the
/// template's policies use: text, lists, `!Ref`, `!GetAtt`, `!Sub` (with or
/// without a variable map), `!Join`, `!Split`, `!If`.
pub fn cfn(v: &Value, d: &Deployment) -> Vec<String> {
    let one = |v: &Value| -> String {
        let mut all = cfn(v, d);
        assert_eq!(all.len(), 1, "one value expected from {v:?}");
        all.remove(0)
    };
    let bound = |name: &str| -> String {
        d.bind
            .get(name.trim_end_matches(".Arn"))
            .cloned()
            .unwrap_or_else(|| panic!("no binding for {name} in this test"))
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(|i| cfn(i, d)).collect(),
        Value::Tagged(t) => {
            let args = t.value.as_sequence();
            let arg = |i: usize| &args.expect("arguments")[i];
            match t.tag.to_string().trim_start_matches('!') {
                "Ref" if t.value.as_str() == Some("AWS::NoValue") => Vec::new(),
                "Ref" => bound(t.value.as_str().expect("!Ref name"))
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                "GetAtt" => vec![bound(t.value.as_str().expect("!GetAtt X.Arn"))],
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
                        out.push_str(&vars.get(name).cloned().unwrap_or_else(|| bound(name)));
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
                "If" => cfn(if_branch(t, d), d),
                other => panic!("unsupported !{other}"),
            }
        }
        other => panic!("unsupported value {other:?}"),
    }
}

/// The branch of `!If [condition, then, else]` this deployment takes.
fn if_branch<'v>(t: &'v serde_yaml_ng::value::TaggedValue, d: &Deployment) -> &'v Value {
    let branches = t.value.as_sequence().expect("!If [name, then, else]");
    let name = branches[0].as_str().expect("a condition name");
    let holds = *d
        .conditions
        .get(name)
        .unwrap_or_else(|| panic!("condition {name} is not set in this test"));
    &branches[if holds { 1 } else { 2 }]
}

/// A template value as the JSON CloudFormation would hand to IAM: every
/// intrinsic resolved, `!Ref AWS::NoValue` (directly or as the chosen
/// branch of an `!If`) dropped from its mapping or list.
pub fn resolve(v: &Value, d: &Deployment) -> Option<Json> {
    match v {
        Value::Mapping(m) => Some(Json::Object(
            m.iter()
                .filter_map(|(k, v)| {
                    let k = k.as_str().expect("text keys").to_owned();
                    Some((k, resolve(v, d)?))
                })
                .collect(),
        )),
        Value::Sequence(items) => Some(Json::Array(
            items
                .iter()
                .filter_map(|i| resolve(i, d))
                .flat_map(|j| match j {
                    Json::Array(a) => a,
                    other => vec![other],
                })
                .collect(),
        )),
        Value::Tagged(t) if t.tag == "!If" => resolve(if_branch(t, d), d),
        Value::Tagged(t) if t.value.as_str() == Some("AWS::NoValue") => None,
        Value::Bool(b) => Some(Json::String(b.to_string())),
        Value::Number(n) => Some(Json::String(n.to_string())),
        _ => {
            let mut all = cfn(v, d);
            Some(if all.len() == 1 {
                Json::String(all.remove(0))
            } else {
                Json::Array(all.into_iter().map(Json::String).collect())
            })
        }
    }
}

/// A policy document of the template, from its statements (a
/// `PolicyDocument`'s, a `KeyPolicy`'s, or one function's `Policies`
/// entries'), as IAM reads it in this deployment.
pub fn policy<'v>(statements: impl IntoIterator<Item = &'v Value>, d: &Deployment) -> IAMPolicy {
    let statements: Vec<Json> = statements
        .into_iter()
        .filter_map(|s| resolve(s, d))
        .collect();
    read_policy(statements)
}

/// Resolved JSON statements as iam-rs reads them.
pub fn read_policy(statements: Vec<Json>) -> IAMPolicy {
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("iam-rs reads {doc}: {e}"))
}

/// A document's statements (`PolicyDocument`/`KeyPolicy` value, or a list).
pub fn statements(document: &Value) -> &[Value] {
    document
        .get("Statement")
        .unwrap_or(document)
        .as_sequence()
        .map(Vec::as_slice)
        .expect("a Statement list")
}

/// One request: who (a role or user ARN, or a service principal such as
/// `events.amazonaws.com`), what, on which resource, and the request
/// context the template's conditions read.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub principal: &'a str,
    pub action: &'a str,
    pub arn: &'a str,
    /// `aws:SourceArn`: the resource a service acts for.
    pub source_arn: Option<&'a str>,
    /// `aws:SourceAccount`: the account that resource belongs to.
    pub source_account: Option<&'a str>,
    /// `aws:PrincipalOrgID`: the organization of the principal's account.
    pub principal_org: Option<&'a str>,
    /// `aws:SecureTransport`.
    pub tls: bool,
    /// `dynamodb:LeadingKeys`: the partition key of the item written.
    pub leading_key: Option<&'a str>,
    /// `kms:ViaService`: the service that called KMS for the principal
    /// (`s3.us-east-1.amazonaws.com` for SSE-KMS); `None` for a direct call.
    pub via_service: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request over TLS with no more context.
    pub fn new(principal: &'a str, action: &'a str, arn: &'a str) -> Self {
        Request {
            principal,
            action,
            arn,
            source_arn: None,
            source_account: None,
            principal_org: None,
            tls: true,
            leading_key: None,
            via_service: None,
        }
    }

    fn is_service(&self) -> bool {
        !self.principal.starts_with("arn:")
    }

    /// The account a role or user belongs to (`None` for a service).
    fn account(&self) -> Option<&str> {
        (!self.is_service())
            .then(|| self.principal.split(':').nth(4))
            .flatten()
    }

    /// That account's root ARN, which a policy names to mean the account.
    fn account_root(&self) -> Option<String> {
        Some(format!("arn:aws:iam::{}:root", self.account()?))
    }

    /// The request as iam-rs takes it, made by `principal`.
    fn iam(&self, principal: &str) -> IAMRequest {
        let id = PrincipalId::String(principal.to_owned());
        let who = if self.is_service() {
            Principal::Service(id)
        } else {
            Principal::Aws(id)
        };
        let mut context = Context::new();
        context.insert(
            "aws:SecureTransport".to_owned(),
            ContextValue::Boolean(self.tls),
        );
        // Service principals carry no aws:PrincipalArn.
        let principal_arn = (!self.is_service()).then_some(self.principal);
        for (key, value) in [
            ("aws:PrincipalArn", principal_arn),
            ("aws:SourceArn", self.source_arn),
            ("aws:SourceAccount", self.source_account),
            ("aws:PrincipalOrgID", self.principal_org),
            ("kms:ViaService", self.via_service),
        ] {
            if let Some(value) = value {
                context.insert(key.to_owned(), ContextValue::String(value.to_owned()));
            }
        }
        if let Some(pk) = self.leading_key {
            context.insert(
                "dynamodb:LeadingKeys".to_owned(),
                ContextValue::StringList(vec![pk.to_owned()]),
            );
        }
        let arn = Arn::parse(self.arn).unwrap_or_else(|e| panic!("{}: {e}", self.arn));
        IAMRequest::new_with_context(who, self.action, arn, context)
    }
}

/// One policy's answer to one request.
pub fn decide(policy: &IAMPolicy, r: &Request) -> Decision {
    decide_as(policy, r, r.principal)
}

fn decide_as(policy: &IAMPolicy, r: &Request, principal: &str) -> Decision {
    PolicyEvaluator::with_policies(vec![policy.clone()])
        .evaluate(&r.iam(principal))
        .unwrap_or_else(|e| panic!("evaluating {r:?}: {e}"))
        .decision
}

/// AWS's decision for a request to a resource of account `owner`, from the
/// principal's identity policy (`None` for a service principal) and the
/// resource's policy (`None` when the resource has none). An explicit Deny
/// in either refuses. Within the owner's account an Allow in either allows
/// (a resource policy's Allow counts when it names the principal itself),
/// except on a KMS key, whose key policy must allow: naming the principal,
/// or naming the account (its root), which lets the identity policy
/// decide. From another account both must allow: the resource policy
/// naming the principal or its account, and the identity policy.
pub fn allowed(
    identity: Option<&IAMPolicy>,
    resource: Option<&IAMPolicy>,
    r: &Request,
    owner: &str,
) -> bool {
    let id = identity.map(|p| decide(p, r));
    let res = resource.map(|p| decide(p, r));
    if id == Some(Decision::Deny) || res == Some(Decision::Deny) {
        return false;
    }
    let identity_allows = id == Some(Decision::Allow);
    let resource_allows = res == Some(Decision::Allow);
    let account_allowed = resource
        .zip(r.account_root())
        .is_some_and(|(p, root)| decide_as(p, r, &root) == Decision::Allow);
    let cross_account = r.account().is_some_and(|a| a != owner);
    if cross_account {
        (resource_allows || account_allowed) && identity_allows
    } else if r.arn.starts_with("arn:aws:kms:") {
        resource_allows || (account_allowed && identity_allows)
    } else {
        identity_allows || resource_allows
    }
}

/// Checks of iam-rs on the examples of AWS's IAM User Guide ("Policy
/// evaluation logic", "Condition operators", "Multivalued context keys",
/// "NotAction", "NotResource"), so a wrong answer from the crate fails
/// here before it could make a policy test pass.
#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statements: Json) -> IAMPolicy {
        serde_json::from_value(json!({"Version": "2012-10-17", "Statement": statements})).unwrap()
    }

    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    /// The account the resources of these examples belong to.
    const OWNER: &str = "123456789012";

    fn eval(p: &IAMPolicy, r: &Request, context: &[(&str, ContextValue)]) -> Decision {
        let mut req = r.iam(r.principal);
        for (k, v) in context {
            req.context.insert((*k).to_owned(), v.clone());
        }
        PolicyEvaluator::with_policies(vec![p.clone()])
            .evaluate(&req)
            .unwrap()
            .decision
    }

    #[test]
    fn an_explicit_deny_wins_and_nothing_allowed_is_an_implicit_deny() {
        let p = doc(json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
        ]));
        let r = |action| Request::new(ALICE, action, "arn:aws:s3:::b/k");
        assert_eq!(decide(&p, &r("s3:GetObject")), Decision::Allow);
        assert_eq!(decide(&p, &r("s3:DeleteObject")), Decision::Deny);
        assert_eq!(decide(&p, &r("sqs:SendMessage")), Decision::NotApplicable);
    }

    /// "NotAction": `"Effect": "Allow", "NotAction": "iam:*", "Resource":
    /// "*"` allows everything but IAM; "NotResource": allow everything in
    /// the bucket but the payroll objects.
    #[test]
    fn not_action_and_not_resource_exclude() {
        let p = doc(json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]));
        let r = |action, arn| Request::new(ALICE, action, arn);
        let user = "arn:aws:iam::123456789012:user/bob";
        assert_eq!(
            decide(&p, &r("s3:GetObject", "arn:aws:s3:::b/k")),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, &r("iam:CreateUser", user)),
            Decision::NotApplicable
        );
        let p = doc(json!([{
            "Effect": "Allow", "Action": "s3:*",
            "NotResource": "arn:aws:s3:::HRBucket/Payroll*"
        }]));
        assert_eq!(
            decide(&p, &r("s3:GetObject", "arn:aws:s3:::HRBucket/Staff")),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, &r("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/2026")),
            Decision::NotApplicable
        );
    }

    /// "If the key that you specify in a policy condition is not present in
    /// the request context, the values do not match and the condition is
    /// false. If the policy condition requires that the key is not matched,
    /// such as StringNotLike or ArnNotLike, and the right key is not
    /// present, the condition is true." Several values of one key are ORed;
    /// a negated operator holds when none matches.
    #[test]
    fn a_missing_key_fails_a_condition_unless_it_is_negated() {
        let allow = |op: &str, values: Json| {
            doc(json!([{
                "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
                "Condition": {op: {"aws:SourceArn": values}}
            }]))
        };
        let queue = "arn:aws:sqs:us-east-1:123456789012:q";
        let (rule, other) = (
            "arn:aws:events:us-east-1:123456789012:rule/a",
            "arn:aws:events:us-east-1:123456789012:rule/z",
        );
        let r = |source| Request {
            source_arn: source,
            ..Request::new("events.amazonaws.com", "sqs:SendMessage", queue)
        };
        let two = json!([rule, "arn:aws:events:us-east-1:123456789012:rule/b"]);
        let eq = allow("ArnEquals", two.clone());
        let ne = allow("ArnNotEquals", two);
        assert_eq!(decide(&eq, &r(Some(rule))), Decision::Allow);
        assert_eq!(decide(&eq, &r(Some(other))), Decision::NotApplicable);
        assert_eq!(decide(&eq, &r(None)), Decision::NotApplicable);
        assert_eq!(decide(&ne, &r(Some(rule))), Decision::NotApplicable);
        assert_eq!(decide(&ne, &r(Some(other))), Decision::Allow);
        assert_eq!(decide(&ne, &r(None)), Decision::Allow);
        // ...IfExists: true when the key is absent.
        let like = allow(
            "ArnLikeIfExists",
            json!("arn:aws:events:*:123456789012:rule/a"),
        );
        assert_eq!(decide(&like, &r(None)), Decision::Allow);
        assert_eq!(decide(&like, &r(Some(rule))), Decision::Allow);
        assert_eq!(decide(&like, &r(Some(other))), Decision::NotApplicable);
    }

    /// The TLS-only bucket policy of S3's user guide: Deny when
    /// `aws:SecureTransport` is `"false"` (a string, as templates write it).
    #[test]
    fn bool_secure_transport_as_the_s3_guide_writes_it() {
        let p = doc(json!([{
            "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]));
        let r = Request::new(ALICE, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(decide(&p, &r), Decision::NotApplicable);
        assert_eq!(decide(&p, &Request { tls: false, ..r }), Decision::Deny);
    }

    /// "Multivalued context keys": `ForAllValues` holds when every value of
    /// the request is among the policy's, and when the request has no
    /// value at all (the guide's warning); `ForAnyValue` needs one match.
    /// The DynamoDB guide's `dynamodb:LeadingKeys` example is a
    /// `ForAllValues:StringEquals`.
    #[test]
    fn set_operators_on_multivalued_keys() {
        let p = |op: &str| {
            doc(json!([{
                "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*",
                "Condition": {op: {"aws:TagKeys": ["environment", "cost-center"]}}
            }]))
        };
        let r = Request::new(
            ALICE,
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:123456789012:table/t",
        );
        let keys = |k: &[&str]| {
            vec![(
                "aws:TagKeys",
                ContextValue::StringList(k.iter().map(|s| (*s).to_owned()).collect()),
            )]
        };
        let all = p("ForAllValues:StringEquals");
        let any = p("ForAnyValue:StringEquals");
        assert_eq!(eval(&all, &r, &keys(&["environment"])), Decision::Allow);
        assert_eq!(
            eval(&all, &r, &keys(&["environment", "cost-center"])),
            Decision::Allow
        );
        assert_eq!(
            eval(&all, &r, &keys(&["environment", "dept"])),
            Decision::NotApplicable
        );
        assert_eq!(eval(&all, &r, &[]), Decision::Allow, "no value: true");
        assert_eq!(
            eval(&any, &r, &keys(&["environment", "dept"])),
            Decision::Allow
        );
        assert_eq!(eval(&any, &r, &keys(&["dept"])), Decision::NotApplicable);
        assert_eq!(eval(&any, &r, &[]), Decision::NotApplicable);
        // StringLike patterns, as the template's LeadingKeys conditions use.
        let like = doc(json!([{
            "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["STG#*"]}}
        }]));
        let put = |pk| Request {
            leading_key: Some(pk),
            ..r
        };
        assert_eq!(
            decide(&like, &put("STG#audit#eu-west-1#1")),
            Decision::Allow
        );
        assert_eq!(decide(&like, &put("DIG#audit")), Decision::NotApplicable);
    }

    /// A key policy naming the account lets IAM policies decide; one
    /// naming a role allows it alone; without either, no identity policy
    /// can reach the key ("Key policies in AWS KMS").
    #[test]
    fn a_key_policy_decides_who_may_use_the_key() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/k";
        let signer = "arn:aws:iam::123456789012:role/signer";
        let key_policy = doc(json!([
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "NotAction": "kms:Sign", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": signer},
             "Action": "kms:Sign", "Resource": "*"}
        ]));
        let may_all = doc(json!([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]));
        let r = |who, action| Request::new(who, action, key);
        assert!(allowed(
            None,
            Some(&key_policy),
            &r(signer, "kms:Sign"),
            OWNER
        ));
        assert!(!allowed(
            Some(&may_all),
            Some(&key_policy),
            &r(ALICE, "kms:Sign"),
            OWNER
        ));
        assert!(allowed(
            Some(&may_all),
            Some(&key_policy),
            &r(ALICE, "kms:GetPublicKey"),
            OWNER
        ));
        assert!(!allowed(
            None,
            Some(&key_policy),
            &r(ALICE, "kms:GetPublicKey"),
            OWNER
        ));
        let outsider = "arn:aws:iam::444455556666:user/mallory";
        assert!(!allowed(
            Some(&may_all),
            Some(&key_policy),
            &r(outsider, "kms:GetPublicKey"),
            OWNER
        ));
        // S3 within an account: the identity policy alone suffices.
        let b = Request::new(ALICE, "s3:GetObject", "arn:aws:s3:::b/k");
        assert!(allowed(Some(&may_all_s3()), None, &b, OWNER));
        assert!(!allowed(Some(&may_all), None, &b, OWNER));
        // From another account the bucket policy must let the principal
        // (or its account) in as well.
        let mallory = Request::new(outsider, "s3:GetObject", "arn:aws:s3:::b/k");
        assert!(!allowed(Some(&may_all_s3()), None, &mallory, OWNER));
        let shared = doc(json!([{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
        }]));
        assert!(allowed(Some(&may_all_s3()), Some(&shared), &mallory, OWNER));
        assert!(
            !allowed(None, Some(&shared), &mallory, OWNER),
            "its own account must allow too"
        );
    }

    fn may_all_s3() -> IAMPolicy {
        doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
    }
}
