//! Table-driven tests of trail selection and routing.

use super::*;
use crate::model::Resource;
use proptest::prelude::*;

pub(super) fn trail(selectors: Vec<EventSelector>) -> Trail {
    Trail {
        name: "audit".into(),
        home_region: "eu-west-1".into(),
        account_id: "111122223333".into(),
        s3_bucket_name: "audit-logs".into(),
        s3_key_prefix: None,
        kms_key_id: None,
        sns_topic_name: None,
        cloud_watch_logs: None,
        is_multi_region_trail: true,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        is_logging: true,
        start_logging_time: None,
        stop_logging_time: None,
        event_selectors: selectors,
        advanced_event_selectors: Vec::new(),
        tags: Vec::new(),
    }
}

pub(super) fn mgmt(rw: ReadWriteType, include: bool) -> EventSelector {
    EventSelector {
        read_write_type: rw,
        include_management_events: include,
        data_resources: vec![],
        exclude_management_event_sources: Vec::new(),
    }
}

pub(super) fn data(rw: ReadWriteType, resource_type: &str, values: &[&str]) -> EventSelector {
    EventSelector {
        read_write_type: rw,
        include_management_events: false,
        data_resources: vec![DataResource {
            resource_type: resource_type.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
        exclude_management_event_sources: Vec::new(),
    }
}

pub(super) fn event(
    source: &str,
    name: &str,
    region: &str,
    read_only: bool,
    category: EventCategory,
) -> Record {
    Record {
        event_source: source.into(),
        event_name: name.into(),
        aws_region: region.into(),
        read_only: Some(read_only),
        event_category: Some(category),
        ..Record::default()
    }
}

pub(super) fn ec2_read() -> Record {
    event(
        "ec2.amazonaws.com",
        "DescribeInstances",
        "eu-west-1",
        true,
        EventCategory::Management,
    )
}
pub(super) fn ec2_write() -> Record {
    event(
        "ec2.amazonaws.com",
        "RunInstances",
        "eu-west-1",
        false,
        EventCategory::Management,
    )
}
pub(super) fn s3_object(bucket: &str, key: &str, read_only: bool) -> Record {
    let mut r = event(
        "s3.amazonaws.com",
        if read_only { "GetObject" } else { "PutObject" },
        "eu-west-1",
        read_only,
        EventCategory::Data,
    );
    r.resources = Some(vec![
        Resource {
            arn: Some(format!("arn:aws:s3:::{bucket}/{key}")),
            resource_type: Some(S3_OBJECT.into()),
            ..Resource::default()
        },
        Resource {
            arn: Some(format!("arn:aws:s3:::{bucket}")),
            resource_type: Some("AWS::S3::Bucket".into()),
            ..Resource::default()
        },
    ]);
    r
}
pub(super) fn invoke(function: &str) -> Record {
    let mut r = event(
        "lambda.amazonaws.com",
        "Invoke",
        "eu-west-1",
        false,
        EventCategory::Data,
    );
    r.resources = Some(vec![Resource {
        arn: Some(format!(
            "arn:aws:lambda:eu-west-1:111122223333:function:{function}"
        )),
        resource_type: Some(LAMBDA_FUNCTION.into()),
        ..Resource::default()
    }]);
    r
}

#[test]
fn management_selectors() {
    use ReadWriteType::*;
    // (selectors, read event logged, write event logged)
    let cases: Vec<(&str, Vec<EventSelector>, bool, bool)> = vec![
        ("no selectors: all management", vec![], true, true),
        ("All", vec![mgmt(All, true)], true, true),
        ("ReadOnly", vec![mgmt(ReadOnly, true)], true, false),
        ("WriteOnly", vec![mgmt(WriteOnly, true)], false, true),
        (
            "none (management excluded)",
            vec![mgmt(All, false)],
            false,
            false,
        ),
        (
            "ReadOnly + WriteOnly",
            vec![mgmt(ReadOnly, true), mgmt(WriteOnly, true)],
            true,
            true,
        ),
        (
            "data only",
            vec![data(All, S3_OBJECT, &["arn:aws:s3"])],
            false,
            false,
        ),
    ];
    for (what, selectors, read, write) in cases {
        let t = trail(selectors);
        assert_eq!(t.selects(&ec2_read()), read, "{what}: read event");
        assert_eq!(t.selects(&ec2_write()), write, "{what}: write event");
    }
}

#[test]
fn s3_data_selectors() {
    use ReadWriteType::*;
    let put_a = s3_object("bucket-a", "logs/x.txt", false);
    let get_a = s3_object("bucket-a", "logs/x.txt", true);
    let put_a_other = s3_object("bucket-a", "tmp/y.txt", false);
    let put_b = s3_object("bucket-ab", "logs/x.txt", false);
    // (what, selector, [put_a, get_a, put_a_other, put_b])
    let cases = [
        (
            "all buckets",
            data(All, S3_OBJECT, &["arn:aws:s3"]),
            [true, true, true, true],
        ),
        (
            "one bucket",
            data(All, S3_OBJECT, &["arn:aws:s3:::bucket-a/"]),
            [true, true, true, false],
        ),
        (
            "bucket prefix",
            data(All, S3_OBJECT, &["arn:aws:s3:::bucket-a/logs/"]),
            [true, true, false, false],
        ),
        (
            "write only",
            data(WriteOnly, S3_OBJECT, &["arn:aws:s3:::bucket-a/"]),
            [true, false, true, false],
        ),
        (
            "read only",
            data(ReadOnly, S3_OBJECT, &["arn:aws:s3"]),
            [false, true, false, false],
        ),
        (
            "lambda selector ignores S3",
            data(All, LAMBDA_FUNCTION, &["arn:aws:lambda"]),
            [false; 4],
        ),
        ("no selectors: no data events", mgmt(All, true), [false; 4]),
    ];
    for (what, selector, expected) in cases {
        let t = trail(vec![selector]);
        let got = [&put_a, &get_a, &put_a_other, &put_b].map(|r| t.selects(r));
        assert_eq!(got, expected, "{what}");
    }
    assert!(
        !trail(vec![]).selects(&put_a),
        "a trail without selectors logs no data events"
    );
}

#[test]
fn lambda_data_selectors() {
    let exact = "arn:aws:lambda:eu-west-1:111122223333:function:charge-card";
    let cases = [
        (
            "all functions",
            data(ReadWriteType::All, LAMBDA_FUNCTION, &["arn:aws:lambda"]),
            [true, true],
        ),
        (
            "one function",
            data(ReadWriteType::All, LAMBDA_FUNCTION, &[exact]),
            [true, false],
        ),
        (
            "read only: Invoke is a write",
            data(
                ReadWriteType::ReadOnly,
                LAMBDA_FUNCTION,
                &["arn:aws:lambda"],
            ),
            [false, false],
        ),
        (
            "S3 selector ignores Lambda",
            data(ReadWriteType::All, S3_OBJECT, &["arn:aws:s3"]),
            [false, false],
        ),
    ];
    for (what, selector, expected) in cases {
        let t = trail(vec![selector]);
        assert_eq!(
            [
                t.selects(&invoke("charge-card")),
                t.selects(&invoke("charge-card-v2"))
            ],
            expected,
            "{what}"
        );
    }
}

#[test]
fn regions_global_events_and_logging_state() {
    let mut iam = event(
        "iam.amazonaws.com",
        "CreateUser",
        "us-east-1",
        false,
        EventCategory::Management,
    );
    iam.aws_region = GLOBAL_REGION.into();
    let mut ec2_elsewhere = ec2_write();
    ec2_elsewhere.aws_region = "ap-south-1".into();
    let home = ec2_write();

    // (what, multi-region, include global, logging, [home, elsewhere, global])
    let cases = [
        (
            "multi-region",
            true,
            true,
            true,
            [Some("eu-west-1"), Some("ap-south-1"), Some("us-east-1")],
        ),
        (
            "single-region",
            false,
            true,
            true,
            [Some("eu-west-1"), None, Some("eu-west-1")],
        ),
        (
            "multi-region without global",
            true,
            false,
            true,
            [Some("eu-west-1"), Some("ap-south-1"), None],
        ),
        (
            "single-region without global",
            false,
            false,
            true,
            [Some("eu-west-1"), None, None],
        ),
        ("stopped", true, true, false, [None, None, None]),
    ];
    for (what, multi, global, logging, expected) in cases {
        let mut t = trail(vec![]);
        t.is_multi_region_trail = multi;
        t.include_global_service_events = global;
        t.is_logging = logging;
        let got = [&home, &ec2_elsewhere, &iam].map(|r| t.log_region(r));
        assert_eq!(got, expected, "{what}");
    }
    // A selector that does not match routes nowhere, whatever the region.
    let t = trail(vec![mgmt(ReadWriteType::ReadOnly, true)]);
    assert_eq!(t.log_region(&home), None);
}

#[test]
fn an_organization_trail_logs_every_account_a_trail_of_one_account_its_own() {
    let own = ec2_write();
    let mut member = ec2_write();
    member.recipient_account_id = "222233334444".into();
    let mut unsaid = ec2_write();
    unsaid.recipient_account_id.clear();
    let one = trail(vec![]);
    let mut org = trail(vec![]);
    org.organization_id = Some("o-a1b2c3d4e5".into());
    let chains =
        |t: &Trail| [&own, &member, &unsaid].map(|r| t.log_chain(r).map(|c| c.into_owned()));
    assert_eq!(
        chains(&one),
        [Some("eu-west-1".into()), None, Some("eu-west-1".into())]
    );
    assert_eq!(
        chains(&org),
        [
            Some("o-a1b2c3d4e5/111122223333/eu-west-1".into()),
            Some("o-a1b2c3d4e5/222233334444/eu-west-1".into()),
            Some("o-a1b2c3d4e5/111122223333/eu-west-1".into()),
        ]
    );
    // The rules that pick events and regions hold for every account.
    org.is_logging = false;
    assert_eq!(chains(&org), [None, None, None]);
    assert_eq!(
        org.to_cloudtrail_json()["IsOrganizationTrail"],
        serde_json::json!(true)
    );
    assert_eq!(
        one.to_cloudtrail_json()["IsOrganizationTrail"],
        serde_json::json!(false)
    );
}

#[test]
fn chains_read_back_as_written_and_nothing_else_passes_for_one() {
    let t = trail(vec![]);
    for (chain, org, account, region) in [
        ("eu-west-1", None, "111122223333", "eu-west-1"),
        (
            "o-a1b2c3d4e5/222233334444/us-east-2",
            Some("o-a1b2c3d4e5"),
            "222233334444",
            "us-east-2",
        ),
    ] {
        let place = Place::parse(chain, &t).unwrap();
        assert_eq!(
            (place.org, place.account, place.region),
            (org, account, region)
        );
        assert_eq!(place.chain(), chain);
    }
    for bad in [
        "",
        "../eu-west-1",
        "o-a1b2c3d4e5/22223333444/eu-west-1",
        "o-a1b2c3d4e5/222233334444/../../x",
        "o-short/222233334444/eu-west-1",
        "222233334444/eu-west-1",
        "o-a1b2c3d4e5/222233334444/eu-west-1/x",
        "o-a1b2c3d4e5/222233334444/",
        "EU-WEST-1",
    ] {
        assert_eq!(Place::parse(bad, &t), None, "{bad:?}");
    }
    assert_eq!(
        log_stream_name(&Place::parse("o-a1b2c3d4e5/222233334444/us-east-2", &t).unwrap()),
        "o-a1b2c3d4e5_222233334444_CloudTrail_us-east-2"
    );
    assert_eq!(
        log_stream_name(&Place::parse("us-east-2", &t).unwrap()),
        "111122223333_CloudTrail_us-east-2"
    );
}

#[test]
fn trail_arn() {
    assert_eq!(
        trail(vec![]).arn(),
        "arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit"
    );
}

#[test]
fn trail_names() {
    for ok in ["abc", "my-trail", "My_Trail.2026", &"a".repeat(128)] {
        assert_eq!(validate_name(ok), Ok(()), "{ok}");
    }
    for bad in [
        "ab",
        "-abc",
        "abc-",
        "a--b",
        "a._b",
        "has space",
        "trail/1",
        "192.168.1.1",
        &"a".repeat(129),
    ] {
        let err = validate_name(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("InvalidTrailNameException"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn selector_values_are_checked() {
    let ok = [
        data(
            ReadWriteType::All,
            S3_OBJECT,
            &[
                "arn:aws:s3",
                "arn:aws:s3:::bucket/",
                "arn:aws:s3:::bucket/prefix",
            ],
        ),
        data(
            ReadWriteType::All,
            LAMBDA_FUNCTION,
            &[
                "arn:aws:lambda",
                "arn:aws:lambda:eu-west-1:111122223333:function:f",
            ],
        ),
    ];
    assert_eq!(validate_selectors(&ok), Ok(()));
    let bad = [
        data(ReadWriteType::All, S3_OBJECT, &["arn:aws:s3:::bucket"]),
        data(ReadWriteType::All, S3_OBJECT, &["s3://bucket/"]),
        data(
            ReadWriteType::All,
            LAMBDA_FUNCTION,
            &["arn:aws:lambda:eu-west-1:1:function:f"],
        ),
        data(
            ReadWriteType::All,
            "AWS::DynamoDB::Table",
            &["arn:aws:dynamodb"],
        ),
        data(ReadWriteType::All, S3_OBJECT, &[]),
    ];
    for selector in bad {
        let err = validate_selectors(std::slice::from_ref(&selector)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("InvalidEventSelectorsException"),
            "{selector:?}: {err}"
        );
    }
    let six = vec![mgmt(ReadWriteType::All, true); 6];
    assert!(validate_selectors(&six).is_err());
}

#[test]
fn selectors_use_cloudtrails_json_shape() {
    let json = r#"[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::b/"]}]}]"#;
    let selectors: Vec<EventSelector> = serde_json::from_str(json).unwrap();
    assert_eq!(selectors[0].read_write_type, ReadWriteType::WriteOnly);
    assert_eq!(selectors[0].data_resources[0].values, ["arn:aws:s3:::b/"]);
    let minimal: Vec<EventSelector> = serde_json::from_str(r#"[{}]"#).unwrap();
    assert_eq!(
        minimal[0],
        mgmt(ReadWriteType::All, true),
        "CloudTrail's defaults"
    );
}

proptest! {
    /// A single-region trail never routes an event anywhere but its home region.
    #[test]
    fn single_region_trails_only_write_home(region in "(eu|us|ap)-(west|east|south)-[1-3]", read_only: bool, global: bool) {
        let mut t = trail(vec![]);
        t.is_multi_region_trail = false;
        let source = if global { "iam.amazonaws.com" } else { "ec2.amazonaws.com" };
        let r = event(source, "X", &region, read_only, EventCategory::Management);
        let routed = t.log_region(&r);
        prop_assert!(routed.is_none() || routed == Some("eu-west-1"));
    }

    /// Every valid name matches the documented character rules.
    #[test]
    fn valid_names_follow_the_rules(name in "[A-Za-z0-9._-]{1,130}") {
        if validate_name(&name).is_ok() {
            prop_assert!((3..=128).contains(&name.len()));
            prop_assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(name.ends_with(|c: char| c.is_ascii_alphanumeric()));
        }
    }
}

mod advanced;
