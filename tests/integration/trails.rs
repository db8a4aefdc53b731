//! Trail administration through DynamoDB on moto.

use futures::future::join_all;
use trailkeep_shared::trail::{admin, AdminError, NewTrail, TrailUpdate};
use trailkeep_shared::trail::{DataResource, EventSelector, ReadWriteType, S3_OBJECT};

use crate::helpers::{parse_time, TestTable};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "eu-west-1";

fn new_trail(name: &str) -> NewTrail {
    NewTrail {
        name: name.into(),
        s3_bucket_name: "audit-logs".into(),
        is_multi_region_trail: true,
        organization_id: None,
        include_global_service_events: true,
        log_file_validation_enabled: true,
        ..NewTrail::default()
    }
}

#[tokio::test]
async fn a_trail_goes_through_its_whole_life() {
    let table = TestTable::state().await;
    let store = table.trails();

    let created = admin::create(&store, ACCOUNT, REGION, new_trail("audit"))
        .await
        .unwrap();
    assert_eq!(
        created.arn(),
        "arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit"
    );
    assert!(
        !created.is_logging,
        "a new trail does not log until start-logging"
    );

    let by_arn = admin::get(&store, &created.arn()).await.unwrap();
    assert_eq!(by_arn, created);

    let updated = admin::update(
        &store,
        "audit",
        TrailUpdate {
            s3_key_prefix: Some("org".into()),
            is_multi_region_trail: Some(false),
            organization_id: None,
            ..TrailUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(updated.s3_key_prefix.as_deref(), Some("org"));
    assert!(!updated.is_multi_region_trail);
    assert!(
        updated.log_file_validation_enabled,
        "untouched settings stay"
    );

    let selectors = vec![EventSelector {
        read_write_type: ReadWriteType::WriteOnly,
        include_management_events: true,
        data_resources: vec![DataResource {
            resource_type: S3_OBJECT.into(),
            values: vec!["arn:aws:s3:::data/".into()],
        }],
        exclude_management_event_sources: Vec::new(),
    }];
    admin::put_event_selectors(&store, "audit", selectors.clone())
        .await
        .unwrap();
    let started = parse_time("2026-11-24T03:20:00Z");
    let stopped = parse_time("2026-11-24T05:40:00Z");
    assert!(
        admin::set_logging(&store, "audit", true, started)
            .await
            .unwrap()
            .is_logging
    );
    // Starting a logging trail again is no transition: the start time stays.
    admin::set_logging(&store, "audit", true, stopped)
        .await
        .unwrap();
    let now = admin::get(&store, "audit").await.unwrap();
    assert_eq!(now.event_selectors, selectors);
    assert!(now.is_logging);
    assert_eq!(now.start_logging_time, Some(started));
    assert_eq!(now.stop_logging_time, None);
    let off = admin::set_logging(&store, "audit", false, stopped)
        .await
        .unwrap();
    assert!(!off.is_logging);
    assert_eq!(
        (off.start_logging_time, off.stop_logging_time),
        (Some(started), Some(stopped))
    );

    assert_eq!(admin::describe(&store, &[]).await.unwrap().len(), 1);
    admin::delete(&store, "audit").await.unwrap();
    assert!(matches!(
        admin::get(&store, "audit").await,
        Err(AdminError::TrailNotFound(_))
    ));
    assert!(admin::describe(&store, &[]).await.unwrap().is_empty());
    table.delete().await;
}

#[tokio::test]
async fn bad_requests_get_cloudtrails_errors() {
    let table = TestTable::state().await;
    let store = table.trails();
    admin::create(&store, ACCOUNT, REGION, new_trail("audit"))
        .await
        .unwrap();

    let cases: Vec<(&str, Result<_, AdminError>)> = vec![
        (
            "TrailAlreadyExistsException",
            admin::create(&store, ACCOUNT, REGION, new_trail("audit")).await,
        ),
        (
            "InvalidTrailNameException",
            admin::create(&store, ACCOUNT, REGION, new_trail("-bad-")).await,
        ),
        (
            "TrailNotFoundException",
            admin::set_logging(&store, "missing", true, parse_time("2026-11-24T03:20:00Z")).await,
        ),
        (
            "InvalidS3BucketNameException",
            admin::update(
                &store,
                "audit",
                TrailUpdate {
                    s3_bucket_name: Some("Not_A_Bucket".into()),
                    ..TrailUpdate::default()
                },
            )
            .await,
        ),
        (
            "InvalidEventSelectorsException",
            admin::put_event_selectors(
                &store,
                "audit",
                vec![EventSelector {
                    read_write_type: ReadWriteType::All,
                    include_management_events: true,
                    data_resources: vec![DataResource {
                        resource_type: S3_OBJECT.into(),
                        values: vec!["arn:aws:s3:::nobucketslash".into()],
                    }],
                    exclude_management_event_sources: Vec::new(),
                }],
            )
            .await,
        ),
    ];
    for (code, result) in cases {
        let err = result.expect_err(code);
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().starts_with(code), "{err}");
    }
    assert!(matches!(
        admin::delete(&store, "missing").await,
        Err(AdminError::TrailNotFound(_))
    ));
    // A refused change left the stored trail as it was.
    assert_eq!(
        admin::get(&store, "audit").await.unwrap().s3_bucket_name,
        "audit-logs"
    );
    table.delete().await;
}

#[tokio::test]
async fn concurrent_creates_never_exceed_five_trails() {
    let table = TestTable::state().await;
    let store = table.trails();

    let results = join_all(
        (0..12)
            .map(|i| admin::create(&store, ACCOUNT, REGION, new_trail(&format!("trail-{i:02}")))),
    )
    .await;

    let created = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(AdminError::MaximumNumberOfTrailsExceeded)))
        .count();
    assert_eq!((created, refused), (5, 7), "{results:?}");
    assert_eq!(admin::describe(&store, &[]).await.unwrap().len(), 5);

    // Deleting one makes room for exactly one more.
    let first = admin::describe(&store, &[]).await.unwrap().remove(0);
    admin::delete(&store, &first.name).await.unwrap();
    admin::create(&store, ACCOUNT, REGION, new_trail("late-one"))
        .await
        .unwrap();
    assert!(matches!(
        admin::create(&store, ACCOUNT, REGION, new_trail("late-two")).await,
        Err(AdminError::MaximumNumberOfTrailsExceeded)
    ));
    table.delete().await;
}

#[tokio::test]
async fn concurrent_changes_to_one_trail_are_all_kept() {
    let table = TestTable::state().await;
    let store = table.trails();
    admin::create(&store, ACCOUNT, REGION, new_trail("audit"))
        .await
        .unwrap();

    let prefix = admin::update(
        &store,
        "audit",
        TrailUpdate {
            s3_key_prefix: Some("p".into()),
            ..TrailUpdate::default()
        },
    );
    let global = admin::update(
        &store,
        "audit",
        TrailUpdate {
            include_global_service_events: Some(false),
            ..TrailUpdate::default()
        },
    );
    let validation = admin::update(
        &store,
        "audit",
        TrailUpdate {
            log_file_validation_enabled: Some(false),
            ..TrailUpdate::default()
        },
    );
    let logging = admin::set_logging(&store, "audit", true, parse_time("2026-11-24T03:20:00Z"));
    let selectors = admin::put_event_selectors(
        &store,
        "audit",
        vec![EventSelector {
            read_write_type: ReadWriteType::ReadOnly,
            include_management_events: true,
            data_resources: vec![],
            exclude_management_event_sources: Vec::new(),
        }],
    );
    let (a, b, c, d, e) = futures::join!(prefix, global, validation, logging, selectors);
    for r in [a, b, c, d, e] {
        r.expect("every change lands");
    }

    let t = admin::get(&store, "audit").await.unwrap();
    assert_eq!(t.s3_key_prefix.as_deref(), Some("p"));
    assert!(!t.include_global_service_events);
    assert!(!t.log_file_validation_enabled);
    assert!(t.is_logging);
    assert_eq!(
        t.event_selectors[0].read_write_type,
        ReadWriteType::ReadOnly
    );
    table.delete().await;
}
