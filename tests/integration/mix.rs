//! A realistic mix of management events for the cost test (issue 14, item
//! 6): CloudTrail records of 1.5–4 KB, most by assumed roles, many with
//! resources lists, from a skewed spread of services.
//!
//! Where the shape comes from (docs/cost.md "The realistic mix"): the
//! fields and their forms are those of the CloudTrail User Guide's
//! record reference and examples ("CloudTrail record contents", the
//! `userIdentity` element, the EC2/IAM/STS/KMS log examples) and of the
//! repository's samples (`events/eventbridge/`); the sizes are the 1.5–4 KB
//! that issue 14 gives for real records; the spread of services, users,
//! keys and resources is an assumption, stated below, of one busy account:
//! 8 roles assumed by 40 people and services, each session its own
//! temporary access key for an hour, 2,000 instances, 50 buckets, 30
//! functions, 20 KMS keys, 60 IAM roles.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::delivery::ACCOUNT;
use crate::load::SERVED;

/// A deterministic pseudo-random number for (event, what): splitmix64.
fn draw(i: usize, what: u64) -> u64 {
    let mut z = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(what.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// (service, weight, API calls: read-only ones start with a verb that says so).
const SERVICES: [(&str, u64, &[&str]); 14] = [
    (
        "ec2",
        26,
        &[
            "DescribeInstances",
            "DescribeSecurityGroups",
            "DescribeVolumes",
            "RunInstances",
            "CreateTags",
            "TerminateInstances",
        ],
    ),
    (
        "s3",
        12,
        &[
            "GetBucketAcl",
            "GetBucketLocation",
            "ListBuckets",
            "PutBucketPolicy",
        ],
    ),
    ("sts", 12, &["AssumeRole", "GetCallerIdentity"]),
    ("kms", 10, &["Decrypt", "GenerateDataKey", "DescribeKey"]),
    (
        "lambda",
        6,
        &[
            "GetFunction",
            "ListFunctions20150331",
            "UpdateFunctionCode20150331v2",
        ],
    ),
    ("logs", 6, &["DescribeLogGroups", "CreateLogStream"]),
    (
        "dynamodb",
        5,
        &["DescribeTable", "ListTables", "UpdateTable"],
    ),
    (
        "cloudformation",
        4,
        &["DescribeStacks", "DescribeStackEvents", "UpdateStack"],
    ),
    ("ssm", 4, &["GetParameter", "GetParameters", "PutParameter"]),
    ("monitoring", 4, &["GetMetricData", "PutMetricAlarm"]),
    ("secretsmanager", 2, &["GetSecretValue", "DescribeSecret"]),
    (
        "elasticloadbalancing",
        2,
        &["DescribeLoadBalancers", "DescribeTargetHealth"],
    ),
    // Global services: stored once, in every served region's history.
    (
        "iam",
        6,
        &["GetRole", "ListRoles", "AttachRolePolicy", "CreateRole"],
    ),
    ("signin", 1, &["ConsoleLogin"]),
];

fn read_only(name: &str) -> bool {
    ["Describe", "Get", "List"]
        .iter()
        .any(|v| name.starts_with(v))
}

/// Event `i` of the mix, happening at `time`: the EventBridge payload, the
/// region whose log files it goes to, and whether it is global (in every
/// served region's history) or in its own region's.
pub(crate) fn payload(i: usize, time: DateTime<Utc>) -> (String, &'static str, bool) {
    let total: u64 = SERVICES.iter().map(|s| s.1).sum();
    let mut pick = draw(i, 1) % total;
    let &(service, _, calls) = SERVICES
        .iter()
        .find(|s| {
            let hit = pick < s.1;
            pick = pick.saturating_sub(s.1);
            hit
        })
        .unwrap_or(&SERVICES[0]);
    let name = calls[(draw(i, 2) % calls.len() as u64) as usize];
    let global = matches!(service, "iam" | "signin");
    let region = if global {
        "us-east-1"
    } else {
        SERVED[(draw(i, 3) % 2) as usize]
    };
    // 8 roles, 40 sessions (people and services), one key per session and hour.
    let session = draw(i, 4) % 40;
    let role = format!(
        "{}-{}",
        ["deploy", "ops", "dev", "ci", "etl", "web", "audit", "admin"][(session % 8) as usize],
        session % 8
    );
    let user = format!("user{session:02}@example.com");
    let hour = time.timestamp() / 3600;
    let key = format!("ASIA{:016X}", draw(session as usize, hour as u64));
    let hex = |what: u64, len: usize| format!("{:032x}", draw(i, what))[..len].to_owned();
    let resource = |what: u64, pool: u64| draw(i, what) % pool;
    let resources: Vec<Value> = match service {
        "ec2" => (0..1 + draw(i, 5) % 2)
            .map(|k| {
                let id = format!("i-{:017x}", resource(10 + k, 2000));
                json!({"accountId": ACCOUNT, "type": "AWS::EC2::Instance", "ARN": format!("arn:aws:ec2:{region}:{ACCOUNT}:instance/{id}")})
            })
            .collect(),
        "s3" => vec![json!({"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::data-{}-{ACCOUNT}", resource(6, 50))})],
        "kms" => vec![json!({"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": format!("arn:aws:kms:{region}:{ACCOUNT}:key/{:08x}-1111-4222-8333-444455556666", resource(7, 20))})],
        "lambda" => vec![json!({"accountId": ACCOUNT, "type": "AWS::Lambda::Function", "ARN": format!("arn:aws:lambda:{region}:{ACCOUNT}:function:svc-{}", resource(8, 30))})],
        "iam" if !read_only(name) => vec![
            json!({"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": format!("arn:aws:iam::{ACCOUNT}:role/app-{}", resource(9, 60))}),
            json!({"accountId": ACCOUNT, "type": "AWS::IAM::Policy", "ARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ],
        _ => Vec::new(),
    };
    // The body that makes a record 1.5–4 KB: what EC2's DescribeInstances
    // answers, item by item (other services' answers are of the same kind).
    let target = 1_500 + (draw(i, 11) % 2_500) as usize;
    let az = format!("{region}{}", ["a", "b", "c"][(draw(i, 12) % 3) as usize]);
    let mut items = Vec::new();
    let mut record = Value::Null;
    for n in 0..40u64 {
        record = json!({
            "eventVersion": "1.10",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROA{}:{user}", hex(13, 17).to_uppercase()),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{user}"),
                "accountId": ACCOUNT,
                "accessKeyId": key,
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": format!("AROA{}", hex(14, 17).to_uppercase()), "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT, "userName": role},
                    "attributes": {"creationDate": trailkeep_shared::time::format(&(time - chrono::Duration::minutes(17))), "mfaAuthenticated": "false"}
                }
            },
            "eventTime": trailkeep_shared::time::format(&time),
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": format!("198.51.100.{}", draw(i, 15) % 30),
            "userAgent": format!("aws-sdk-go-v2/1.30.{} ua/2.1 os/linux lang/go#1.22.{} md/GOOS#linux md/GOARCH#amd64 api/{service}#1.{}.0 m/E,g", draw(i, 16) % 9, draw(i, 17) % 9, draw(i, 18) % 40),
            "requestParameters": {"maxResults": 1000, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": role}]}}]}},
            "responseElements": {"requestId": format!("{}-{}-4{}-8{}-{}", hex(19, 8), hex(20, 4), hex(21, 3), hex(22, 3), hex(23, 12)), "reservationSet": {"items": items}},
            "requestID": format!("{}-{}-4{}-8{}-{}", hex(19, 8), hex(20, 4), hex(21, 3), hex(22, 3), hex(23, 12)),
            "eventID": format!("{}-{}-4{}-8{}-{i:012}", hex(24, 8), hex(25, 4), hex(26, 3), hex(27, 3)),
            "readOnly": read_only(name),
            "resources": resources,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("{service}.{region}.amazonaws.com")}
        });
        if record.to_string().len() >= target {
            break;
        }
        let instance = format!("i-{:017x}", draw(i, 100 + n) % 2000);
        let size = ["m5.large", "t3.medium", "c6g.xlarge"][(draw(i, 400 + n) % 3) as usize];
        items.push(json!({
            "instanceId": instance,
            "imageId": format!("ami-{:017x}", draw(i, 200 + n) % 50),
            "instanceState": {"code": 16, "name": "running"},
            "privateDnsName": format!("ip-10-0-{}-{}.{region}.compute.internal", n, draw(i, 300 + n) % 250),
            "instanceType": size,
            "placement": {"availabilityZone": az, "tenancy": "default"},
            "subnetId": format!("subnet-{:017x}", draw(i, 500 + n) % 12),
            "vpcId": format!("vpc-{:017x}", draw(i, 600 + n) % 3),
        }));
    }
    let payload = json!({
        "version": "0",
        "id": format!("{:08x}-0000-4000-8000-{i:012}", draw(i, 28) as u32),
        "detail-type": if service == "signin" { "AWS Console Sign In via CloudTrail" } else { "AWS API Call via CloudTrail" },
        "source": format!("aws.{service}"),
        "account": ACCOUNT,
        "time": trailkeep_shared::time::format(&time),
        "region": region,
        "resources": [],
        "detail": record,
    });
    let logged_in = if global { "us-east-1" } else { region };
    (payload.to_string(), logged_in, global)
}

#[test]
fn records_are_1_5_to_4_kb_and_spread_over_services_users_and_keys() {
    let t = crate::helpers::parse_time("2026-11-24T08:00:00Z");
    let mut sizes = Vec::new();
    let (mut users, mut sources, mut global) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
        0,
    );
    for i in 0..500 {
        let (p, _, g) = payload(i, t);
        let v: Value = serde_json::from_str(&p).unwrap();
        sizes.push(v["detail"].to_string().len());
        users.insert(v["detail"]["userIdentity"]["arn"].to_string());
        sources.insert(v["detail"]["eventSource"].to_string());
        global += usize::from(g);
    }
    sizes.sort_unstable();
    assert!(
        sizes[0] >= 1_400 && sizes[499] <= 4_400,
        "{:?}..{:?}",
        &sizes[..3],
        &sizes[497..]
    );
    let median = sizes[250];
    assert!((2_300..=3_300).contains(&median), "{median}");
    assert!(
        users.len() >= 35 && sources.len() == SERVICES.len(),
        "{} {}",
        users.len(),
        sources.len()
    );
    assert!((20..=80).contains(&global), "{global}");
}
