//! Advanced event selectors: what they select, what they refuse, and that
//! each basic selector has an advanced twin selecting the same events.

use super::*;

fn field(name: &str, op: &str, values: &[&str]) -> FieldSelector {
    let values = Some(values.iter().map(|v| v.to_string()).collect());
    let mut f = FieldSelector {
        field: name.into(),
        ..FieldSelector::default()
    };
    match op {
        "Equals" => f.equals = values,
        "StartsWith" => f.starts_with = values,
        "EndsWith" => f.ends_with = values,
        "NotEquals" => f.not_equals = values,
        "NotStartsWith" => f.not_starts_with = values,
        "NotEndsWith" => f.not_ends_with = values,
        other => panic!("no operator {other}"),
    }
    f
}

fn selector(fields: Vec<FieldSelector>) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: None,
        field_selectors: fields,
    }
}

fn advanced(selectors: Vec<AdvancedEventSelector>) -> Trail {
    let mut t = trail(vec![]);
    t.advanced_event_selectors = selectors;
    t
}

fn category(c: &str) -> FieldSelector {
    field("eventCategory", "Equals", &[c])
}

fn kms_decrypt() -> Record {
    event(
        "kms.amazonaws.com",
        "Decrypt",
        "eu-west-1",
        true,
        EventCategory::Management,
    )
}

#[test]
fn management_selectors_filter_by_read_only_and_excluded_sources() {
    let writes = advanced(vec![selector(vec![
        category("Management"),
        field("readOnly", "Equals", &["false"]),
    ])]);
    assert!(writes.validate().is_ok());
    assert!(writes.selects(&ec2_write()));
    assert!(!writes.selects(&ec2_read()));
    assert!(
        !writes.selects(&s3_object("b", "k", false)),
        "data events need a Data selector"
    );

    let no_kms = advanced(vec![selector(vec![
        category("Management"),
        field("eventSource", "NotEquals", &["kms.amazonaws.com"]),
    ])]);
    assert!(no_kms.validate().is_ok());
    assert!(no_kms.selects(&ec2_read()) && no_kms.selects(&ec2_write()));
    assert!(!no_kms.selects(&kms_decrypt()));
}

#[test]
fn a_basic_selector_excludes_management_sources_like_advanced_not_equals() {
    let mut basic = mgmt(ReadWriteType::All, true);
    basic.exclude_management_event_sources = vec!["kms.amazonaws.com".into()];
    let t = trail(vec![basic]);
    assert!(t.selects(&ec2_read()) && t.selects(&ec2_write()));
    assert!(!t.selects(&kms_decrypt()));
    let json: EventSelector = serde_json::from_value(serde_json::json!(
        {"ReadWriteType": "All", "ExcludeManagementEventSources": ["kms.amazonaws.com"]}
    ))
    .unwrap();
    assert_eq!(json, t.event_selectors[0]);
}

#[test]
fn data_selectors_filter_by_type_name_and_arn() {
    let bucket_but_tmp = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        field(
            "resources.ARN",
            "StartsWith",
            &["arn:aws:s3:::audit/", "arn:aws:s3:::ops/"],
        ),
        field("resources.ARN", "NotEndsWith", &[".tmp"]),
    ])]);
    // A field twice is refused (CloudTrail's rule), so the same conditions
    // go into one field selector:
    assert!(bucket_but_tmp.validate().is_err());
    let mut arn = field(
        "resources.ARN",
        "StartsWith",
        &["arn:aws:s3:::audit/", "arn:aws:s3:::ops/"],
    );
    arn.not_ends_with = Some(vec![".tmp".into()]);
    let t = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        arn,
    ])]);
    assert!(t.validate().is_ok());
    assert!(t.selects(&s3_object("audit", "2026/a.json", true)));
    assert!(
        t.selects(&s3_object("ops", "b", false)),
        "positive values are ORed"
    );
    assert!(
        !t.selects(&s3_object("audit", "scratch.tmp", false)),
        "a negative condition excludes"
    );
    assert!(!t.selects(&s3_object("other", "a.json", false)));
    assert!(!t.selects(&invoke("audit")), "another resource type");
    assert!(!t.selects(&ec2_write()), "a management event");

    let only_puts = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        field("eventName", "Equals", &["PutObject"]),
    ])]);
    assert!(only_puts.selects(&s3_object("any", "k", false)));
    assert!(!only_puts.selects(&s3_object("any", "k", true)));

    let invokes = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[LAMBDA_FUNCTION]),
        field("resources.ARN", "EndsWith", &[":function:billing"]),
    ])]);
    assert!(invokes.selects(&invoke("billing")));
    assert!(!invokes.selects(&invoke("payroll")));
    assert!(!invokes.selects(&s3_object("billing", "k", false)));
}

#[test]
fn an_arn_of_another_resource_type_or_service_does_not_select() {
    // Hostile records: the selected ARN appears, but not on an object of the
    // selected type, or in an event of another service.
    let t = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        field("resources.ARN", "StartsWith", &["arn:aws:s3:::audit"]),
    ])]);
    let mut bucket_only = s3_object("x", "k", false);
    bucket_only.resources = Some(vec![crate::model::Resource {
        arn: Some("arn:aws:s3:::audit".into()),
        resource_type: Some("AWS::S3::Bucket".into()),
        ..crate::model::Resource::default()
    }]);
    assert!(!t.selects(&bucket_only));
    let mut spoofed = s3_object("audit", "k", false);
    spoofed.event_source = "lambda.amazonaws.com".into();
    assert!(!t.selects(&spoofed));
    let mut no_resources = s3_object("audit", "k", false);
    no_resources.resources = None;
    assert!(!t.selects(&no_resources));
}

#[test]
fn selectors_cloudtrail_refuses_are_refused() {
    let refused = |selectors: Vec<AdvancedEventSelector>, why: &str| {
        let e = advanced(selectors).validate().expect_err(why);
        assert!(
            matches!(e, TrailError::InvalidEventSelectors(_)),
            "{why}: {e}"
        );
    };
    refused(
        vec![selector(vec![field("readOnly", "Equals", &["true"])])],
        "no eventCategory",
    );
    refused(
        vec![selector(vec![category("Insight")])],
        "unknown category",
    );
    refused(
        vec![selector(vec![field(
            "eventCategory",
            "StartsWith",
            &["Man"],
        )])],
        "eventCategory takes Equals only",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            field("readOnly", "Equals", &["yes"]),
        ])],
        "readOnly is true or false",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            field("eventName", "Equals", &["RunInstances"]),
        ])],
        "eventName is for data events",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            field("eventSource", "Equals", &["ec2.amazonaws.com"]),
        ])],
        "management eventSource takes NotEquals only",
    );
    refused(
        vec![selector(vec![category("Data")])],
        "data needs resources.type",
    );
    refused(
        vec![selector(vec![
            category("Data"),
            field("resources.type", "Equals", &["AWS::DynamoDB::Table"]),
        ])],
        "unsupported resource type",
    );
    refused(
        vec![selector(vec![
            category("Data"),
            field("resources.type", "Equals", &[S3_OBJECT, LAMBDA_FUNCTION]),
        ])],
        "one resource type per selector",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            field("readOnly", "Equals", &[]),
        ])],
        "an empty condition list",
    );
    refused(
        vec![selector(vec![
            category("Data"),
            field("resources.type", "Equals", &[S3_OBJECT]),
            field("resources.ARN", "StartsWith", &[""]),
        ])],
        "an empty value",
    );
    refused(
        vec![selector(vec![
            category("Data"),
            field("resources.type", "Equals", &[S3_OBJECT]),
            field("resources.ARN", "StartsWith", &[&"a".repeat(2049)]),
        ])],
        "a value over 2048 characters",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            FieldSelector {
                field: "readOnly".into(),
                ..FieldSelector::default()
            },
        ])],
        "a field without conditions",
    );
    let many: Vec<String> = (0..499).map(|i| format!("Name{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let at_limit = vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        field("eventName", "NotEquals", &many[..498]),
    ])];
    assert!(
        advanced(at_limit).validate().is_ok(),
        "500 conditions are allowed"
    );
    refused(
        vec![selector(vec![
            category("Data"),
            field("resources.type", "Equals", &[S3_OBJECT]),
            field("eventName", "NotEquals", &many),
        ])],
        "501 conditions",
    );
    refused(
        vec![selector(vec![
            category("Management"),
            field("eventSource", "NotEquals", &["ec2.amazonaws.com"]),
        ])],
        "only the high-volume sources CloudTrail names may be excluded",
    );
    // Within CloudTrail's limits (500 values of up to 2048 characters) but
    // more than one trail may take of the trails' shared item.
    let long: Vec<String> = (0..100).map(|i| format!("{i:0>2048}")).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let e = advanced(vec![selector(vec![
        category("Data"),
        field("resources.type", "Equals", &[S3_OBJECT]),
        field("resources.ARN", "NotStartsWith", &long),
    ])])
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    let mut basic = mgmt(ReadWriteType::All, true);
    basic.exclude_management_event_sources = vec!["ec2.amazonaws.com".into()];
    assert!(
        trail(vec![basic]).validate().is_err(),
        "basic exclusions too"
    );
    let mut both = advanced(vec![selector(vec![category("Management")])]);
    both.event_selectors = vec![mgmt(ReadWriteType::All, true)];
    assert!(both.validate().is_err(), "basic and advanced together");
}

#[test]
fn advanced_selectors_use_cloudtrails_json_shape() {
    let json = serde_json::json!([{
        "Name": "writes to the audit bucket",
        "FieldSelectors": [
            { "Field": "eventCategory", "Equals": ["Data"] },
            { "Field": "resources.type", "Equals": ["AWS::S3::Object"] },
            { "Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::audit/"], "NotEndsWith": [".tmp"] },
            { "Field": "readOnly", "Equals": ["false"] }
        ]
    }]);
    let parsed: Vec<AdvancedEventSelector> = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(
        parsed[0].field_selectors[2].not_ends_with,
        Some(vec![".tmp".to_string()])
    );
    assert_eq!(serde_json::to_value(&parsed).unwrap(), json);
    let typo = serde_json::json!([{ "FieldSelectors": [{ "Field": "eventCategory", "Equal": ["Data"] }] }]);
    assert!(
        serde_json::from_value::<Vec<AdvancedEventSelector>>(typo).is_err(),
        "an unknown operator is refused, not ignored"
    );
}

/// The advanced selector CloudTrail documents as equal to a basic one.
fn twin(basic: &EventSelector) -> Vec<AdvancedEventSelector> {
    let read_only: Option<FieldSelector> = match basic.read_write_type {
        ReadWriteType::All => None,
        ReadWriteType::ReadOnly => Some(field("readOnly", "Equals", &["true"])),
        ReadWriteType::WriteOnly => Some(field("readOnly", "Equals", &["false"])),
    };
    let mut out = Vec::new();
    if basic.include_management_events {
        let sources: Vec<&str> = basic
            .exclude_management_event_sources
            .iter()
            .map(String::as_str)
            .collect();
        let excluded = (!sources.is_empty()).then(|| field("eventSource", "NotEquals", &sources));
        out.push(selector(
            [Some(category("Management")), read_only.clone(), excluded]
                .into_iter()
                .flatten()
                .collect(),
        ));
    }
    for d in &basic.data_resources {
        let everything = d
            .values
            .iter()
            .any(|v| v == "arn:aws:s3" || v == "arn:aws:lambda");
        let values: Vec<&str> = d.values.iter().map(String::as_str).collect();
        let arn = (!everything).then(|| {
            field(
                "resources.ARN",
                if d.resource_type == S3_OBJECT {
                    "StartsWith"
                } else {
                    "Equals"
                },
                &values,
            )
        });
        out.push(selector(
            [
                Some(category("Data")),
                Some(field("resources.type", "Equals", &[&d.resource_type])),
                read_only.clone(),
                arn,
            ]
            .into_iter()
            .flatten()
            .collect(),
        ));
    }
    out
}

fn any_record() -> impl Strategy<Value = Record> {
    let bucket = prop::sample::select(vec!["audit", "ops", "other"]);
    let key = prop::sample::select(vec!["a.json", "logs/b", "c.tmp"]);
    let function = prop::sample::select(vec!["billing", "payroll"]);
    prop_oneof![
        any::<bool>().prop_map(|r| if r { ec2_read() } else { ec2_write() }),
        Just(kms_decrypt()),
        (bucket, key, any::<bool>(), any::<bool>()).prop_map(|(b, k, r, listed)| {
            let mut e = s3_object(b, k, r);
            if !listed {
                e.resources = None; // a data event naming no resource
            }
            e
        }),
        function.prop_map(invoke),
    ]
}

fn any_basic() -> impl Strategy<Value = EventSelector> {
    let rw = prop::sample::select(vec![
        ReadWriteType::All,
        ReadWriteType::ReadOnly,
        ReadWriteType::WriteOnly,
    ]);
    let s3 = prop::sample::subsequence(
        vec![
            "arn:aws:s3",
            "arn:aws:s3:::audit/",
            "arn:aws:s3:::ops/logs/",
        ],
        1..=2,
    );
    let lambda = prop::sample::subsequence(
        vec![
            "arn:aws:lambda",
            "arn:aws:lambda:eu-west-1:111122223333:function:billing",
        ],
        1..=2,
    );
    (
        rw,
        any::<bool>(),
        prop::option::of(s3),
        prop::option::of(lambda),
        any::<bool>(),
    )
        .prop_map(|(rw, mgmt, s3, lambda, no_kms)| {
            let resource = |t: &str, v: Vec<&str>| DataResource {
                resource_type: t.into(),
                values: v.into_iter().map(String::from).collect(),
            };
            EventSelector {
                read_write_type: rw,
                include_management_events: mgmt,
                data_resources: s3
                    .map(|v| resource(S3_OBJECT, v))
                    .into_iter()
                    .chain(lambda.map(|v| resource(LAMBDA_FUNCTION, v)))
                    .collect(),
                exclude_management_event_sources: if no_kms {
                    vec!["kms.amazonaws.com".into()]
                } else {
                    Vec::new()
                },
            }
        })
}

proptest! {
    /// Two independent implementations agree: a basic selector and its
    /// advanced twin select the same events.
    #[test]
    fn a_basic_selector_and_its_advanced_twin_select_the_same(
        basic in any_basic(),
        records in prop::collection::vec(any_record(), 1..8),
    ) {
        let b = trail(vec![basic.clone()]);
        let a = advanced(twin(&basic));
        prop_assume!(!a.advanced_event_selectors.is_empty());
        prop_assert!(a.validate().is_ok(), "{:?}", a.validate());
        for r in &records {
            prop_assert_eq!(b.selects(r), a.selects(r), "{} {}", r.event_source, r.event_name);
        }
    }
}
