//! The resources of an event as LookupEvents shows them and finds them
//! (docs/lookup.md "Resources").
//!
//! - An event's resources are its record's `resources` list; a record that
//!   arrives without one (most management events do: EventBridge carries
//!   none) gets the resources its `requestParameters` (or, for
//!   `RunInstances`, its `responseElements`) name unambiguously, by the
//!   per-service table in [`derived`]. The record itself is never changed:
//!   what is derived lives in the history's index and in the answer only.
//! - For the known types ([`KINDS`]) a resource has a name, the ARN's
//!   resource part (`i-0abc…`, a bucket name, a role name, a key ID), and
//!   `ResourceName` finds it by its ARN and by its name. The answer shows
//!   the form CloudTrail's console shows: the name, or the ARN for KMS keys
//!   and IAM policies. Other types are shown and found by their ARN.
//! - Index values: a resource whose name is unique on its own (a bucket
//!   name, an instance ID, a key ID: [`Kind::unique`]) is indexed under the
//!   name alone, and an ARN lookup reads the name's partition and keeps the
//!   events one of whose resources is that ARN ([`matches`]); any other
//!   named resource is indexed under its ARN and its name (two items).
//!   Items written before this layout (under the ARN only) are read too,
//!   until they expire.

use serde_json::Value;

use crate::model::Record;

/// At most this many resources are derived from one record's parameters
/// (a `RunInstances` call starts at most tens of instances at a time; a
/// hostile record could name thousands, each an index item).
pub const MAX_DERIVED: usize = 20;

/// At most this many of a record's listed `resources` are indexed and
/// shown (a 256 KB record can list thousands, each up to three index
/// items; an application's events on the audit bus bring their own list).
/// The record itself keeps them all.
pub const MAX_LISTED: usize = 100;

/// A resource type whose name is the ARN's resource part after a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// CloudTrail's type name (`AWS::S3::Bucket`).
    pub resource_type: &'static str,
    /// The ARN's service.
    service: &'static str,
    /// What the ARN's resource part starts with (`instance/`, `role/` …).
    prefix: &'static str,
    /// The name identifies the resource on its own (globally unique, or
    /// unique in the partition: bucket names, instance and key IDs), so it
    /// is indexed under the name alone.
    pub unique: bool,
    /// The answer shows the name (else the ARN).
    shows_name: bool,
}

const fn kind(
    resource_type: &'static str,
    service: &'static str,
    prefix: &'static str,
    unique: bool,
    shows_name: bool,
) -> Kind {
    Kind {
        resource_type,
        service,
        prefix,
        unique,
        shows_name,
    }
}

/// The types with a name (docs/lookup.md has the table).
pub const KINDS: [Kind; 9] = [
    kind("AWS::S3::Bucket", "s3", "", true, true),
    kind("AWS::EC2::Instance", "ec2", "instance/", true, true),
    kind(
        "AWS::EC2::SecurityGroup",
        "ec2",
        "security-group/",
        true,
        true,
    ),
    kind("AWS::KMS::Key", "kms", "key/", true, false),
    kind("AWS::IAM::User", "iam", "user/", false, true),
    kind("AWS::IAM::Role", "iam", "role/", false, true),
    kind("AWS::IAM::Group", "iam", "group/", false, true),
    kind("AWS::IAM::Policy", "iam", "policy/", false, false),
    kind("AWS::Lambda::Function", "lambda", "function:", false, true),
];

const S3_BUCKET: &Kind = &KINDS[0];
const EC2_INSTANCE: &Kind = &KINDS[1];
const EC2_SECURITY_GROUP: &Kind = &KINDS[2];
const IAM_USER: &Kind = &KINDS[4];
const IAM_ROLE: &Kind = &KINDS[5];
const IAM_GROUP: &Kind = &KINDS[6];
const IAM_POLICY: &Kind = &KINDS[7];
const LAMBDA_FUNCTION: &Kind = &KINDS[8];

/// The kind and name an ARN names, if it is one of [`KINDS`] and its name
/// has that kind's shape.
pub fn parse_arn(arn: &str) -> Option<(&'static Kind, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(_region), Some(_account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if partition.is_empty() {
        return None;
    }
    KINDS
        .iter()
        .filter(|k| k.service == service)
        .find_map(|k| Some((k, name_in(k, rest.strip_prefix(k.prefix)?)?)))
}

/// The name in an ARN's resource part after the kind's prefix.
fn name_in<'a>(kind: &Kind, rest: &'a str) -> Option<&'a str> {
    let name = match kind.service {
        // `user/path/to/name`: the last segment.
        "iam" => rest.rsplit('/').next()?,
        // `function:name` or `function:name:qualifier`.
        "lambda" => rest.split(':').next()?,
        _ => rest,
    };
    valid_name(kind, name).then_some(name)
}

/// Whether `name` has the shape of a name of `kind` (hostile parameters
/// and ARNs give no resource rather than a wrong one).
fn valid_name(kind: &Kind, name: &str) -> bool {
    let chars = |extra: &str, max: usize| {
        !name.is_empty()
            && name.len() <= max
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    match kind.resource_type {
        // Bucket names, also the legacy us-east-1 ones (upper case, `_`).
        "AWS::S3::Bucket" => name.len() >= 3 && chars(".-_", 255),
        // `i-` or `sg-` and 8 or 17 hex digits.
        "AWS::EC2::Instance" => ec2_id(name, "i-"),
        "AWS::EC2::SecurityGroup" => ec2_id(name, "sg-"),
        // A key ID is a UUID (or `mrk-` and 32 hex digits).
        "AWS::KMS::Key" => chars("-", 64),
        // IAM names: alphanumerics and `+=,.@_-`.
        "AWS::IAM::User" | "AWS::IAM::Role" | "AWS::IAM::Group" | "AWS::IAM::Policy" => {
            chars("+=,.@_-", 128)
        }
        "AWS::Lambda::Function" => chars("-_", 64),
        _ => false,
    }
}

fn ec2_id(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// One resource of an event as the history sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupResource {
    pub resource_type: Option<String>,
    /// The ARN, when the record gives one, or the parameter was one.
    pub arn: Option<String>,
    /// The name, for the known types ([`KINDS`]).
    pub name: Option<String>,
    kind: Option<&'static Kind>,
}

impl LookupResource {
    /// The `ResourceName` the answer shows.
    pub fn shown(&self) -> Option<&str> {
        match (self.kind, &self.name, &self.arn) {
            (Some(k), Some(name), _) if k.shows_name => Some(name),
            (_, _, Some(arn)) => Some(arn),
            (_, name, None) => name.as_deref(),
        }
    }

    /// The `ResourceName` index values it is written under.
    pub fn index_values(&self) -> Vec<&str> {
        let unique = self.kind.is_some_and(|k| k.unique) && self.name.is_some();
        let arn = self.arn.as_deref().filter(|_| !unique);
        let mut values: Vec<&str> = arn.into_iter().chain(self.name.as_deref()).collect();
        values.dedup();
        values
    }
}

/// An entry of the record's `resources`: its kind is the one its ARN
/// names, if the record's type (when it has one) agrees.
fn listed(resource: &crate::model::Resource) -> LookupResource {
    let parsed = resource
        .arn
        .as_deref()
        .and_then(parse_arn)
        .filter(|(k, _)| {
            resource
                .resource_type
                .as_deref()
                .is_none_or(|t| t == k.resource_type)
        });
    LookupResource {
        resource_type: resource
            .resource_type
            .clone()
            .or_else(|| parsed.map(|(k, _)| k.resource_type.to_owned())),
        arn: resource.arn.clone(),
        name: parsed.map(|(_, name)| name.to_owned()),
        kind: parsed.map(|(k, _)| k),
    }
}

fn named(kind: &'static Kind, name: &str) -> Option<LookupResource> {
    valid_name(kind, name).then(|| LookupResource {
        resource_type: Some(kind.resource_type.to_owned()),
        arn: None,
        name: Some(name.to_owned()),
        kind: Some(kind),
    })
}

fn by_arn(kind: &'static Kind, arn: &str) -> Option<LookupResource> {
    let (k, name) = parse_arn(arn).filter(|(k, _)| *k == kind)?;
    Some(LookupResource {
        resource_type: Some(k.resource_type.to_owned()),
        arn: Some(arn.to_owned()),
        name: Some(name.to_owned()),
        kind: Some(k),
    })
}

/// The resources a record without a `resources` list names in its
/// parameters, where the mapping is unambiguous (docs/lookup.md):
///
/// | eventSource | from | type |
/// |---|---|---|
/// | ec2 | `requestParameters.instanceId`, `requestParameters.instancesSet.items[].instanceId`, `responseElements.instancesSet.items[].instanceId` | `AWS::EC2::Instance` |
/// | ec2 | `requestParameters.groupId` (`sg-…`) | `AWS::EC2::SecurityGroup` |
/// | s3 | `requestParameters.bucketName` | `AWS::S3::Bucket` |
/// | iam | `requestParameters.userName` / `roleName` / `groupName` | `AWS::IAM::User` / `Role` / `Group` |
/// | iam | `requestParameters.policyArn` | `AWS::IAM::Policy` |
/// | lambda | `requestParameters.functionName` (a name or a function ARN) | `AWS::Lambda::Function` |
///
/// A value of another shape (a partial ARN, an access point, a wildcard)
/// gives no resource.
pub fn derived(record: &Record) -> Vec<LookupResource> {
    let params = record.request_parameters.as_ref();
    let param = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_str);
    let mut out = Vec::new();
    match record.event_source.as_str() {
        "ec2.amazonaws.com" => {
            let set = |v: Option<&Value>| -> Vec<String> {
                v.and_then(|v| v.pointer("/instancesSet/items"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.get("instanceId").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            };
            let ids = param("instanceId")
                .map(str::to_owned)
                .into_iter()
                .chain(set(params))
                .chain(set(record.response_elements.as_ref()));
            out.extend(ids.filter_map(|id| named(EC2_INSTANCE, &id)));
            out.extend(param("groupId").and_then(|g| named(EC2_SECURITY_GROUP, g)));
        }
        "s3.amazonaws.com" => out.extend(param("bucketName").and_then(|b| named(S3_BUCKET, b))),
        "iam.amazonaws.com" => {
            for (key, kind) in [
                ("userName", IAM_USER),
                ("roleName", IAM_ROLE),
                ("groupName", IAM_GROUP),
            ] {
                out.extend(param(key).and_then(|n| named(kind, n)));
            }
            out.extend(param("policyArn").and_then(|a| by_arn(IAM_POLICY, a)));
        }
        "lambda.amazonaws.com" => out.extend(param("functionName").and_then(|f| {
            if f.starts_with("arn:") {
                by_arn(LAMBDA_FUNCTION, f)
            } else {
                named(LAMBDA_FUNCTION, f)
            }
        })),
        _ => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    out.into_iter()
        .filter(|r| seen.insert((r.resource_type.clone(), r.name.clone())))
        .take(MAX_DERIVED)
        .collect()
}

/// The resources of an event: its record's list, else the ones its
/// parameters name ([`derived`]).
pub fn lookup_resources(record: &Record) -> Vec<LookupResource> {
    match record.resources.as_deref() {
        Some(list) if !list.is_empty() => list.iter().take(MAX_LISTED).map(listed).collect(),
        _ => derived(record),
    }
}

/// The `ResourceName` index values a lookup of `value` reads: the value,
/// and for the ARN of a resource indexed under its name alone, that name.
pub fn lookup_values(value: &str) -> Vec<&str> {
    match parse_arn(value) {
        Some((k, name)) if k.unique => vec![value, name],
        _ => vec![value],
    }
}

/// Whether the event is found by a `ResourceName` lookup of `value`: one of
/// its resources has that ARN or that name (for the ARN of a
/// [`Kind::unique`] type: a resource of that type with the ARN's name,
/// also one derived without an ARN). Only an ARN lookup of a
/// [`Kind::unique`] type needs the check (its name's partition holds also
/// other types' resources of that name); every other partition holds
/// exactly the matches.
pub fn matches(record: &Record, value: &str) -> bool {
    let unique = parse_arn(value).filter(|(k, _)| k.unique);
    lookup_resources(record).iter().any(|r| {
        r.arn.as_deref() == Some(value)
            || r.name.as_deref() == Some(value)
            || unique.is_some_and(|(k, name)| r.kind == Some(k) && r.name.as_deref() == Some(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ACCOUNT: &str = "111122223333";

    fn record(source: &str, body: Value) -> Record {
        let mut r = json!({
            "eventSource": source,
            "eventName": "Call",
            "eventTime": "2026-11-24T01:00:00Z",
            "eventID": "e1",
        });
        r.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        serde_json::from_value(r).unwrap()
    }

    /// (type, shown, index values) of each resource of a record.
    fn seen(r: &Record) -> Vec<(String, String, Vec<String>)> {
        lookup_resources(r)
            .iter()
            .map(|x| {
                (
                    x.resource_type.clone().unwrap_or_default(),
                    x.shown().unwrap_or_default().to_owned(),
                    x.index_values().into_iter().map(str::to_owned).collect(),
                )
            })
            .collect()
    }

    fn one(ty: &str, shown: &str, values: &[&str]) -> (String, String, Vec<String>) {
        let values = values.iter().map(|v| v.to_string()).collect();
        (ty.to_owned(), shown.to_owned(), values)
    }

    #[test]
    fn listed_resources_show_the_name_cloudtrail_shows_and_are_indexed_by_arn_and_name() {
        let key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let r = record(
            "iam.amazonaws.com",
            json!({"resources": [
                {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::logs-bucket"},
                {"type": "AWS::EC2::Instance", "ARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc1234def567890"},
                {"type": "AWS::KMS::Key", "ARN": key},
                {"type": "AWS::IAM::Role", "ARN": "arn:aws:iam::111122223333:role/service-role/deploy"},
                {"type": "AWS::IAM::Policy", "ARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                {"type": "AWS::Lambda::Function", "ARN": "arn:aws:lambda:eu-west-1:111122223333:function:charge-card:prod"},
                {"type": "AWS::DynamoDB::Table", "ARN": "arn:aws:dynamodb:eu-west-1:111122223333:table/orders"},
                {"ARN": "arn:aws:iam::111122223333:user/ops/alice"},
                // A type the ARN contradicts: shown and found by the ARN only.
                {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::logs-bucket"},
            ]}),
        );
        let role = "arn:aws:iam::111122223333:role/service-role/deploy";
        let policy = "arn:aws:iam::aws:policy/ReadOnlyAccess";
        let function = "arn:aws:lambda:eu-west-1:111122223333:function:charge-card:prod";
        let table = "arn:aws:dynamodb:eu-west-1:111122223333:table/orders";
        let alice = "arn:aws:iam::111122223333:user/ops/alice";
        assert_eq!(
            seen(&r),
            [
                one("AWS::S3::Bucket", "logs-bucket", &["logs-bucket"]),
                one(
                    "AWS::EC2::Instance",
                    "i-0abc1234def567890",
                    &["i-0abc1234def567890"]
                ),
                one(
                    "AWS::KMS::Key",
                    key,
                    &["1234abcd-12ab-34cd-56ef-1234567890ab"]
                ),
                one("AWS::IAM::Role", "deploy", &[role, "deploy"]),
                one("AWS::IAM::Policy", policy, &[policy, "ReadOnlyAccess"]),
                one(
                    "AWS::Lambda::Function",
                    "charge-card",
                    &[function, "charge-card"]
                ),
                one("AWS::DynamoDB::Table", table, &[table]),
                one("AWS::IAM::User", "alice", &[alice, "alice"]),
                one(
                    "AWS::S3::Object",
                    "arn:aws:s3:::logs-bucket",
                    &["arn:aws:s3:::logs-bucket"]
                ),
            ]
        );
    }

    #[test]
    fn records_without_resources_get_the_ones_their_parameters_name() {
        let cases = [
            (
                "ec2.amazonaws.com",
                json!({"requestParameters": {"instancesSet": {"items": [
                    {"instanceId": "i-0abc1234def567890"}, {"instanceId": "i-12345678"}]}}}),
                vec![
                    one(
                        "AWS::EC2::Instance",
                        "i-0abc1234def567890",
                        &["i-0abc1234def567890"],
                    ),
                    one("AWS::EC2::Instance", "i-12345678", &["i-12345678"]),
                ],
            ),
            (
                // RunInstances: the instances are in the answer.
                "ec2.amazonaws.com",
                json!({"requestParameters": {"instancesSet": {"items": [{"imageId": "ami-0abc"}]}},
                       "responseElements": {"instancesSet": {"items": [{"instanceId": "i-0fedcba9876543210"}]}}}),
                vec![one(
                    "AWS::EC2::Instance",
                    "i-0fedcba9876543210",
                    &["i-0fedcba9876543210"],
                )],
            ),
            (
                "ec2.amazonaws.com",
                json!({"requestParameters": {"groupId": "sg-0123456789abcdef0"}}),
                vec![one(
                    "AWS::EC2::SecurityGroup",
                    "sg-0123456789abcdef0",
                    &["sg-0123456789abcdef0"],
                )],
            ),
            (
                "s3.amazonaws.com",
                json!({"requestParameters": {"bucketName": "logs-bucket", "Host": "x"}}),
                vec![one("AWS::S3::Bucket", "logs-bucket", &["logs-bucket"])],
            ),
            (
                "iam.amazonaws.com",
                json!({"requestParameters": {"roleName": "deploy",
                       "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}}),
                vec![
                    one("AWS::IAM::Role", "deploy", &["deploy"]),
                    one(
                        "AWS::IAM::Policy",
                        "arn:aws:iam::aws:policy/AdministratorAccess",
                        &[
                            "arn:aws:iam::aws:policy/AdministratorAccess",
                            "AdministratorAccess",
                        ],
                    ),
                ],
            ),
            (
                "iam.amazonaws.com",
                json!({"requestParameters": {"userName": "alice", "groupName": "admins"}}),
                vec![
                    one("AWS::IAM::User", "alice", &["alice"]),
                    one("AWS::IAM::Group", "admins", &["admins"]),
                ],
            ),
            (
                "lambda.amazonaws.com",
                json!({"requestParameters": {"functionName": "charge-card"}}),
                vec![one(
                    "AWS::Lambda::Function",
                    "charge-card",
                    &["charge-card"],
                )],
            ),
            (
                "lambda.amazonaws.com",
                json!({"requestParameters": {"functionName":
                    "arn:aws:lambda:eu-west-1:111122223333:function:charge-card"}}),
                vec![one(
                    "AWS::Lambda::Function",
                    "charge-card",
                    &[
                        "arn:aws:lambda:eu-west-1:111122223333:function:charge-card",
                        "charge-card",
                    ],
                )],
            ),
        ];
        for (source, body, want) in cases {
            assert_eq!(seen(&record(source, body.clone())), want, "{source} {body}");
        }
    }

    #[test]
    fn parameters_of_another_shape_or_service_give_no_resource() {
        let none = [
            // Not the service the parameter belongs to.
            (
                "sts.amazonaws.com",
                json!({"requestParameters": {"roleName": "deploy"}}),
            ),
            (
                "dynamodb.amazonaws.com",
                json!({"requestParameters": {"bucketName": "b-1"}}),
            ),
            // Shapes no such resource has.
            (
                "s3.amazonaws.com",
                json!({"requestParameters": {"bucketName": "../../x"}}),
            ),
            (
                "s3.amazonaws.com",
                json!({"requestParameters": {"bucketName":
                "arn:aws:s3:eu-west-1:111122223333:accesspoint/ap"}}),
            ),
            (
                "s3.amazonaws.com",
                json!({"requestParameters": {"bucketName": ["b-1"]}}),
            ),
            (
                "ec2.amazonaws.com",
                json!({"requestParameters": {"instanceId": "i-xyz"}}),
            ),
            (
                "ec2.amazonaws.com",
                json!({"requestParameters": {"groupId": "sg-0123"}}),
            ),
            (
                "ec2.amazonaws.com",
                json!({"requestParameters": {"instancesSet": {"items": "i-12345678"}}}),
            ),
            (
                "iam.amazonaws.com",
                json!({"requestParameters": {"userName": "a b"}}),
            ),
            (
                "iam.amazonaws.com",
                json!({"requestParameters": {"policyArn": "arn:aws:iam::aws:role/x"}}),
            ),
            (
                "lambda.amazonaws.com",
                json!({"requestParameters": {"functionName": "111122223333:function:f"}}),
            ),
            (
                "lambda.amazonaws.com",
                json!({"requestParameters": {"functionName":
                "arn:aws:iam::111122223333:role/f"}}),
            ),
            ("iam.amazonaws.com", json!({"requestParameters": null})),
        ];
        for (source, body) in none {
            assert_eq!(seen(&record(source, body.clone())), [], "{source} {body}");
        }
    }

    #[test]
    fn a_resources_list_wins_and_hostile_lists_are_cut_short() {
        let listed = record(
            "iam.amazonaws.com",
            json!({"requestParameters": {"userName": "alice"},
                   "resources": [{"type": "AWS::IAM::Role", "ARN": "arn:aws:iam::111122223333:role/r"}]}),
        );
        assert_eq!(seen(&listed).len(), 1);
        assert_eq!(seen(&listed)[0].1, "r");
        let items: Vec<Value> = (0..1000)
            .map(|i| json!({"instanceId": format!("i-{i:08x}")}))
            .collect();
        let many = record(
            "ec2.amazonaws.com",
            json!({"requestParameters": {"instancesSet": {"items": items}}}),
        );
        assert_eq!(lookup_resources(&many).len(), MAX_DERIVED);
        let arns: Vec<Value> = (0..1000)
            .map(|i| json!({"ARN": format!("arn:aws:iam::111122223333:user/u{i}")}))
            .collect();
        let listed_many = record("iam.amazonaws.com", json!({ "resources": arns }));
        assert_eq!(lookup_resources(&listed_many).len(), MAX_LISTED);
        // The same instance named twice is one resource.
        let twice = record(
            "ec2.amazonaws.com",
            json!({"requestParameters": {"instanceId": "i-12345678",
                   "instancesSet": {"items": [{"instanceId": "i-12345678"}]}}}),
        );
        assert_eq!(seen(&twice).len(), 1);
    }

    #[test]
    fn an_arn_lookup_of_a_bucket_finds_the_bucket_and_not_a_role_of_that_name() {
        let bucket = record(
            "s3.amazonaws.com",
            json!({"requestParameters": {"bucketName": "deploy"}}),
        );
        let role = record(
            "iam.amazonaws.com",
            json!({"requestParameters": {"roleName": "deploy"}}),
        );
        assert_eq!(
            lookup_values("arn:aws:s3:::deploy"),
            ["arn:aws:s3:::deploy", "deploy"]
        );
        assert!(matches(&bucket, "arn:aws:s3:::deploy"));
        assert!(!matches(&role, "arn:aws:s3:::deploy"));
        // A name lookup finds every resource of that name.
        assert_eq!(lookup_values("deploy"), ["deploy"]);
        assert!(matches(&bucket, "deploy") && matches(&role, "deploy"));
        // A role's ARN is a partition of its own.
        let arn = "arn:aws:iam::111122223333:role/deploy";
        assert_eq!(lookup_values(arn), [arn]);
    }

    /// A resource of a random kind (or an unnamed type) with its ARN, or
    /// derived from a parameter without one.
    fn resource() -> impl Strategy<Value = (Value, Vec<String>)> {
        // Few names, so that kinds and accounts share them.
        let name = "(deploy|logs|app)";
        let hex = "(0123456789abcdef0|fedcba9876543210f)";
        let account = prop_oneof![Just(ACCOUNT), Just("444455556666")];
        (0..8usize, name, hex, account, any::<bool>()).prop_map(|(k, name, hex, account, arn)| {
            let (ty, arn_text, plain) = match k {
                0 => (
                    "AWS::S3::Bucket",
                    format!("arn:aws:s3:::{name}"),
                    name.clone(),
                ),
                1 => (
                    "AWS::EC2::Instance",
                    format!("arn:aws:ec2:eu-west-1:{account}:instance/i-{hex}"),
                    format!("i-{hex}"),
                ),
                2 => (
                    "AWS::KMS::Key",
                    format!("arn:aws:kms:eu-west-1:{account}:key/{hex}"),
                    hex.clone(),
                ),
                3 => (
                    "AWS::IAM::Role",
                    format!("arn:aws:iam::{account}:role/p/{name}"),
                    name.clone(),
                ),
                4 => (
                    "AWS::IAM::User",
                    format!("arn:aws:iam::{account}:user/{name}"),
                    name.clone(),
                ),
                5 => (
                    "AWS::Lambda::Function",
                    format!("arn:aws:lambda:eu-west-1:{account}:function:{name}"),
                    name.clone(),
                ),
                6 => (
                    "AWS::IAM::Policy",
                    format!("arn:aws:iam::{account}:policy/{name}"),
                    name.clone(),
                ),
                _ => (
                    "AWS::SQS::Queue",
                    format!("arn:aws:sqs:eu-west-1:{account}:{name}"),
                    String::new(),
                ),
            };
            let forms = vec![arn_text.clone(), plain];
            // Key IDs and policy names are no parameter that maps.
            let value = if arn || matches!(k, 2 | 6 | 7) {
                json!({"type": ty, "ARN": arn_text})
            } else {
                json!({"type": ty, "name": forms[1]})
            };
            (value, forms)
        })
    }

    /// A record with these resources: listed, or (those without an ARN)
    /// as the parameters of the service they belong to.
    fn record_of(resources: &[Value]) -> Record {
        let listed: Vec<&Value> = resources
            .iter()
            .filter(|r| r.get("ARN").is_some())
            .collect();
        if !listed.is_empty() {
            return record("iam.amazonaws.com", json!({ "resources": listed }));
        }
        let Some(r) = resources.first() else {
            return record("iam.amazonaws.com", json!({}));
        };
        let name = r["name"].clone();
        let (source, params) = match r["type"].as_str().unwrap() {
            "AWS::S3::Bucket" => ("s3.amazonaws.com", json!({"bucketName": name})),
            "AWS::EC2::Instance" => ("ec2.amazonaws.com", json!({"instanceId": name})),
            "AWS::IAM::Role" => ("iam.amazonaws.com", json!({"roleName": name})),
            "AWS::IAM::User" => ("iam.amazonaws.com", json!({"userName": name})),
            "AWS::Lambda::Function" => ("lambda.amazonaws.com", json!({"functionName": name})),
            other => unreachable!("{other} is always listed"),
        };
        record(source, json!({ "requestParameters": params }))
    }

    proptest! {
        /// Reading the index the way a lookup does (the partitions of
        /// `lookup_values`, then `matches` where it has more than one)
        /// finds exactly the events one of whose resources has the value
        /// as its ARN or its name (or, for a unique kind's ARN, is of that
        /// kind and has its name).
        #[test]
        fn a_resource_name_lookup_finds_exactly_the_events_named(
            events in proptest::collection::vec(proptest::collection::vec(resource(), 0..4), 1..6),
            probe in resource(),
        ) {
            let records: Vec<Record> = events
                .iter()
                .map(|rs| record_of(&rs.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>()))
                .collect();
            let mut probes: Vec<String> = probe.1.clone();
            probes.extend(events.iter().flatten().flat_map(|(_, forms)| forms.clone()));
            for value in probes.iter().filter(|v| !v.is_empty()) {
                let keys = lookup_values(value);
                for r in &records {
                    let indexed = lookup_resources(r)
                        .iter()
                        .any(|x| x.index_values().iter().any(|v| keys.contains(v)));
                    let found = indexed && (keys.len() == 1 || matches(r, value));
                    let unique = parse_arn(value).filter(|(k, _)| k.unique);
                    let named = lookup_resources(r).iter().any(|x| {
                        x.arn.as_deref() == Some(value.as_str())
                            || x.name.as_deref() == Some(value.as_str())
                            || unique.is_some_and(|(k, n)| {
                                x.resource_type.as_deref() == Some(k.resource_type)
                                    && x.name.as_deref() == Some(n)
                            })
                    });
                    // A derived IAM name or function name has no ARN to be found by.
                    prop_assert_eq!(found, named, "{} in {:?}", value, r.resources);
                }
            }
            // Every listed resource of a known kind is found by its ARN and by its name.
            for (v, forms) in events.iter().flatten() {
                let r = record_of(std::slice::from_ref(v));
                for form in forms.iter().filter(|f| !f.is_empty()) {
                    let derived_arn = v.get("ARN").is_none() && form.starts_with("arn:");
                    if derived_arn && !parse_arn(form).is_some_and(|(k, _)| k.unique) {
                        continue;
                    }
                    let keys = lookup_values(form);
                    let indexed = lookup_resources(&r)
                        .iter()
                        .any(|x| x.index_values().iter().any(|i| keys.contains(i)));
                    prop_assert!(indexed && matches(&r, form), "{} not found in {}", form, v);
                }
            }
        }
    }
}
