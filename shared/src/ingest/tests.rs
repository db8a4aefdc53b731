//! The ingest use case on in-memory fakes (crate::testkit).

use super::*;
use crate::testkit::{api_call, IngestFakes, ACCOUNT};

fn t(s: &str) -> DateTime<Utc> {
    crate::time::parse(s).unwrap()
}

/// The fakes, and one ingest call at a given time.
struct Fakes(IngestFakes);

impl std::ops::Deref for Fakes {
    type Target = IngestFakes;
    fn deref(&self) -> &IngestFakes {
        &self.0
    }
}

impl std::ops::DerefMut for Fakes {
    fn deref_mut(&mut self) -> &mut IngestFakes {
        &mut self.0
    }
}

impl Fakes {
    fn new() -> Self {
        Fakes(IngestFakes::default())
    }

    async fn ingest(&self, payload: &str, now: &str) -> Result<IngestReport, IngestError> {
        let ctx = Context {
            account_id: ACCOUNT.into(),
        };
        ingest(&self.targets(), &ctx, payload, &t(now)).await
    }
}

const ID: &str = "6f1b2b7e-6a5b-4f3d-9d43-5c1a9e2f1a02";

#[tokio::test]
async fn a_redelivered_event_is_stored_once_and_staged_per_delivery() {
    let f = Fakes::new();
    let payload = api_call(ID, &t("2026-11-24T01:04:10Z"));
    let first = f.ingest(&payload, "2026-11-24T01:04:11Z").await.unwrap();
    let items = f.history.keys();
    let again = f.ingest(&payload, "2026-11-24T01:09:30Z").await.unwrap();

    assert_eq!((first.stored, first.duplicates, first.staged), (1, 0, 1));
    assert_eq!((again.stored, again.duplicates, again.staged), (0, 1, 1));
    assert_eq!(f.history.keys(), items, "the history did not change");
    // The primary item of eu-west-1's history holds the record.
    let primary = f
        .history
        .record(&format!("eu-west-1#EventId#{ID}"), "event")
        .unwrap();
    assert!(
        primary.contains("\"eventName\":\"AuthorizeSecurityGroupIngress\""),
        "{primary}"
    );
    // Each delivery is staged in the window of its arrival, and the trail's
    // region is delivered from the first: 01:04:11 is epoch second
    // 1795482251, in 5-minute window 5984940 (deliver keeps one copy:
    // delivery::tests).
    assert_eq!(f.staging.cursor("audit", "eu-west-1"), Some(5_984_940));
    // The first-staging note rides on the primary item: no batch item was
    // written, and the re-delivered copy names the first window
    assert_eq!(f.staging.batch_writes(), 0);
    let later = f
        .staging
        .staged("audit", "eu-west-1", 5_984_941, None)
        .await
        .unwrap();
    assert_eq!(later.events.len(), 1);
    assert_eq!(later.events[0].first, Some(5_984_940));
}

#[tokio::test]
async fn another_accounts_event_is_staged_for_organization_trails_only_and_kept_in_its_accounts_history(
) {
    // GIVEN a stack of an organization, a trail of its own account and an
    // organization trail
    let mut f = Fakes::new();
    f.organization = true;
    let mut org = f.trails[0].clone();
    org.name = "org".into();
    org.organization_id = Some("o-a1b2c3d4e5".into());
    f.trails.push(org);
    // WHEN a member account's API call arrives (its own bus forwarded it)
    let mut v: serde_json::Value =
        serde_json::from_str(&api_call(ID, &t("2026-11-24T01:04:10Z"))).unwrap();
    v["account"] = "222233334444".into();
    v["detail"]["recipientAccountId"] = "222233334444".into();
    let report = f
        .ingest(&v.to_string(), "2026-11-24T01:04:11Z")
        .await
        .unwrap();
    // THEN it is staged once, for the organization trail, in the member's chain
    assert_eq!(
        (
            report.accepted,
            report.staged,
            report.other_accounts,
            report.stored
        ),
        (1, 1, 1, 1)
    );
    let chain = "o-a1b2c3d4e5/222233334444/eu-west-1";
    assert_eq!(f.staging.cursor("org", chain), Some(5_984_940));
    assert_eq!(f.staging.cursor("audit", "eu-west-1"), None);
    // AND it is in the member's own history partitions, none of the
    // stack's account (lookup::tests reads them by AccountId)
    let keys = f.history.keys();
    assert!(!keys.is_empty());
    for (pk, _) in &keys {
        assert!(pk.starts_with("222233334444/eu-west-1#"), "{pk}");
    }
    assert!(f
        .history
        .record(&format!("222233334444/eu-west-1#EventId#{ID}"), "event")
        .is_some());
    // AND its first staging rides on its primary item, as the stack's own
    // events' do: a copy of its own, no batch item
    assert_eq!(f.staging.batch_writes(), 0);

    // A stack that serves no organization refuses it (to the dead-letter
    // queue), and stores and stages nothing of it.
    let mut alone = Fakes::new();
    alone.trails = f.trails.clone();
    let err = alone
        .ingest(&v.to_string(), "2026-11-24T01:04:11Z")
        .await
        .unwrap_err();
    let IngestError::Rejected {
        rejected, accepted, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!((rejected.len(), accepted), (1, 0));
    assert!(
        rejected[0].to_string().contains("serves no organization"),
        "{}",
        rejected[0]
    );
    assert!(alone.history.keys().is_empty());
    assert_eq!(alone.staging.cursor("org", chain), None);
}

#[tokio::test]
async fn a_management_event_stored_without_a_note_has_its_copies_claimed() {
    // GIVEN an event the history holds from before notes moved to the
    // primary item (recorded with no window)
    let f = Fakes::new();
    let payload = api_call(ID, &t("2026-11-24T01:04:10Z"));
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let event = normalize::normalize(&payload, &ctx).records.remove(0);
    history::record(&f.history, &HistorySettings::default(), &event)
        .await
        .unwrap();
    // WHEN it is ingested (a re-delivery across the upgrade)
    let report = f.ingest(&payload, "2026-11-24T01:09:30Z").await.unwrap();
    // THEN its copy names no first window (deliver claims it, so a copy
    // the old code delivered keeps it out), and no note was made elsewhere
    assert_eq!((report.duplicates, report.staged), (1, 1));
    let page = f
        .staging
        .staged("audit", "eu-west-1", 5_984_941, None)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].first, None);
    assert_eq!(f.staging.batch_writes(), 0);
}

#[tokio::test]
async fn a_bad_record_is_refused_and_the_good_one_beside_it_is_kept() {
    // GIVEN a trail that logs every S3 object event
    let mut f = Fakes::new();
    f.trails[0].event_selectors = vec![crate::trail::EventSelector {
        read_write_type: crate::trail::ReadWriteType::All,
        include_management_events: false,
        data_resources: vec![crate::trail::DataResource {
            resource_type: crate::trail::S3_OBJECT.into(),
            values: vec!["arn:aws:s3".into()],
        }],
        exclude_management_event_sources: Vec::new(),
    }];
    let payload = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/s3/batch-with-bad-record.json"
    ));
    let err = f.ingest(payload, "2026-11-24T01:45:00Z").await.unwrap_err();
    let IngestError::Rejected {
        rejected,
        accepted,
        stored,
    } = err
    else {
        panic!("expected rejected records, got {err}");
    };
    // The file holds three S3 records; the second has "eventTime": "not a time".
    assert_eq!((rejected.len(), accepted, stored), (1, 2, 0));
    assert_eq!(rejected[0].index, 1);
    assert!(
        rejected[0]
            .to_string()
            .starts_with("record 1: field Records[] is invalid"),
        "{}",
        rejected[0]
    );
    // S3 object events are data events: never in the history, but the two
    // good ones are staged for the trail's log files.
    assert!(f.history.keys().is_empty());
    assert_eq!(f.staging.staged_ids("audit", "eu-west-1").len(), 2);
    // Both in one batch item of the ingest window (01:45:00: window
    // 5984949), with no note and no item each
    assert_eq!(f.staging.batch_items("audit", "eu-west-1"), [(5984949, 2)]);
    assert_eq!(f.staging.batch_writes(), 1);
}

#[tokio::test]
async fn a_record_the_store_refuses_is_rejected_not_retried() {
    // GIVEN a history that refuses long keys (as DynamoDB refuses keys over
    // 2,048 bytes), and an event whose keys exceed that
    let f = Fakes::new();
    f.history.refuse_keys_over(40);
    let payload = api_call(ID, &t("2026-11-24T01:04:10Z"));
    let err = f
        .ingest(&payload, "2026-11-24T01:04:11Z")
        .await
        .unwrap_err();
    // THEN it is a rejected record (permanent), not a store failure that
    // Lambda would retry and dead-letter as a fault
    let IngestError::Rejected {
        rejected,
        accepted,
        stored,
    } = err
    else {
        panic!("expected a rejected record, got {err}");
    };
    assert_eq!((rejected.len(), accepted, stored), (1, 0, 0));
    let why = rejected[0].to_string();
    assert!(
        why.contains("field record is invalid") && why.contains("refused"),
        "{why}"
    );
    assert!(f.history.keys().is_empty());
    // AND a rejected record is not staged for any trail either
    assert!(f.staging.staged_ids("audit", "eu-west-1").is_empty());
}

#[tokio::test]
async fn an_event_time_outside_the_retention_or_in_the_future_is_refused() {
    // Issue 21, item 2: a year-9999 record would never expire (TTL =
    // eventTime + retention); one older than the retention would be stored
    // already expired. Each is refused with the field and the reason; the
    // edges are accepted.
    let f = Fakes::new();
    let now = "2026-11-24T12:00:00Z";
    for (n, (time, accepted)) in [
        ("9999-12-31T23:59:59Z", false),
        ("2026-11-24T12:05:01Z", false),
        ("2026-11-24T12:05:00Z", true),
        ("2026-08-26T12:00:00Z", true),
        ("2026-08-26T11:59:59Z", false),
        ("1970-01-01T00:00:00Z", false),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("7e000000-0000-4000-8000-00000000000{n}");
        let result = f.ingest(&api_call(&id, &t(time)), now).await;
        let stored = f
            .history
            .record(&format!("eu-west-1#EventId#{id}"), "event");
        if accepted {
            assert_eq!(result.unwrap().stored, 1, "{time}");
            assert!(stored.is_some(), "{time}");
        } else {
            let Err(IngestError::Rejected { rejected, .. }) = result else {
                panic!("{time} was not refused");
            };
            let message = rejected[0].to_string();
            assert!(message.contains("field eventTime is invalid"), "{message}");
            assert!(stored.is_none(), "{time} was stored");
        }
    }
    assert_eq!(f.staging.staged_ids("audit", "eu-west-1").len(), 2);
}

#[tokio::test]
async fn a_batchs_events_share_index_items_and_one_refused_key_fails_only_its_own_event() {
    // GIVEN a history that refuses keys over 120 bytes, and a batch of ten
    // messages of one second: nine alike, one by a user whose name makes
    // its Username partition key too long
    let f = Fakes::new();
    f.history.refuse_keys_over(120);
    let at = t("2026-11-24T01:04:10Z");
    let mut payloads: Vec<String> = (0..10)
        .map(|n| api_call(&format!("7e000000-0000-4000-8000-0000000000{n:02}"), &at))
        .collect();
    let mut long: serde_json::Value = serde_json::from_str(&payloads[4]).unwrap();
    long["detail"]["userIdentity"]["userName"] = "u".repeat(100).into();
    payloads[4] = long.to_string();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let bodies: Vec<(&str, &str)> = payloads.iter().map(|p| ("m", p.as_str())).collect();
    let outcomes = ingest_many(&f.targets(), &ctx, &bodies, &t("2026-11-24T01:04:11Z")).await;

    // THEN the refused event alone is rejected, and is not staged
    assert_eq!(outcomes.len(), 10);
    for (n, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Err(IngestError::Rejected { rejected, .. }) if n == 4 => {
                assert!(
                    rejected[0].to_string().contains("refused"),
                    "{}",
                    rejected[0]
                );
            }
            Ok(report) if n != 4 => assert_eq!((report.stored, report.staged), (1, 1), "{n}"),
            other => panic!("message {n}: {other:?}"),
        }
    }
    assert_eq!(f.staging.staged_ids("audit", "eu-west-1").len(), 9);
    // AND, the batch's index write having failed, each of the nine
    // others' index was written on its own (nine time items)
    let keys = f.history.keys();
    let primary = keys.iter().filter(|(_, sk)| sk == "event").count();
    assert_eq!(primary, 10, "the refused event's primary item was written");
    let time: Vec<_> = keys
        .iter()
        .filter(|(pk, _)| pk.contains("#Time#"))
        .collect();
    assert_eq!(time.len(), 9, "{time:?}");

    // WHEN the same ten arrive again, now under DynamoDB's own key limit
    let g = Fakes::new();
    let outcomes = ingest_many(&g.targets(), &ctx, &bodies, &t("2026-11-24T01:04:11Z")).await;
    assert!(outcomes.iter().all(Result::is_ok));
    // THEN each index partition of the ten gets one shared item
    let keys = g.history.keys();
    let time: Vec<_> = keys
        .iter()
        .filter(|(pk, _)| pk.contains("#Time#"))
        .collect();
    assert_eq!(time.len(), 1, "{time:?}");
    assert!(crate::history::is_shared(&time[0].1));
    let index = keys.iter().filter(|(_, sk)| sk != "event").count();
    // Time, EventName, EventSource, AccessKeyId, ResourceName,
    // ResourceType shared by all ten; Username: bob's nine, and one own.
    assert_eq!(index, 8, "{keys:?}");
}

#[tokio::test]
async fn a_batch_whose_index_write_fails_is_retried_whole_and_nothing_is_staged() {
    // GIVEN a history whose index writes fail (throttled past the retries)
    let f = Fakes::new();
    f.history.fail_index_writes(true);
    let at = t("2026-11-24T01:04:10Z");
    let payloads: Vec<String> = (0..3)
        .map(|n| api_call(&format!("7e000000-0000-4000-8000-0000000000{n:02}"), &at))
        .collect();
    let bodies: Vec<(&str, &str)> = payloads.iter().map(|p| ("m", p.as_str())).collect();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let now = t("2026-11-24T01:04:11Z");
    // WHEN a batch of three is ingested
    let outcomes = ingest_many(&f.targets(), &ctx, &bodies, &now).await;
    // THEN each message fails as a store failure (retried, not rejected),
    // none is staged, and no event's index was written on its own
    for o in &outcomes {
        assert!(matches!(o, Err(IngestError::Store { .. })), "{o:?}");
    }
    assert!(f.staging.staged_ids("audit", "eu-west-1").is_empty());
    assert!(f.history.keys().iter().all(|(_, sk)| sk == "event"));
    // AND when the queue hands them over again, the history heals: each is
    // a duplicate, indexed from its stored record, and staged once
    f.history.fail_index_writes(false);
    let again = ingest_many(&f.targets(), &ctx, &bodies, &now).await;
    for o in &again {
        let r = o.as_ref().unwrap();
        assert_eq!((r.duplicates, r.staged), (1, 1));
    }
    assert_eq!(f.staging.staged_ids("audit", "eu-west-1").len(), 3);
    assert!(f.history.keys().iter().any(|(pk, _)| pk.contains("#Time#")));
}

#[tokio::test]
async fn a_batch_whose_data_events_cannot_be_staged_hands_back_their_messages_alone() {
    // GIVEN a trail logging management events and S3 object events, and a
    // batch of an API call and two S3 notifications (data events)
    let mut f = Fakes::new();
    f.trails[0]
        .event_selectors
        .push(crate::trail::EventSelector {
            read_write_type: crate::trail::ReadWriteType::All,
            include_management_events: true,
            data_resources: vec![crate::trail::DataResource {
                resource_type: crate::trail::S3_OBJECT.into(),
                values: vec!["arn:aws:s3".into()],
            }],
            exclude_management_event_sources: Vec::new(),
        });
    let api = api_call(ID, &t("2026-11-24T01:40:00Z"));
    let (put, delete) = (
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/s3/put.json"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/s3/delete.json"
        )),
    );
    let bodies = [("api", api.as_str()), ("put", put), ("delete", delete)];
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let now = t("2026-11-24T01:45:00Z");

    // WHEN the batch item cannot be written (throttled past the retries)
    f.staging.fail_batches_after(Some(0));
    let outcomes = ingest_many(&f.targets(), &ctx, &bodies, &now).await;

    // THEN the data events' messages fail, to be retried; the API call's
    // is done
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    for outcome in &outcomes[1..] {
        assert!(
            matches!(outcome, Err(IngestError::Store { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(f.staging.staged_ids("audit", "eu-west-1"), [ID]);

    // AND retried once the store heals, both are staged in one item
    f.staging.fail_batches_after(None);
    let again = ingest_many(&f.targets(), &ctx, &bodies[1..], &now).await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    assert_eq!(
        f.staging
            .batch_items("audit", "eu-west-1")
            .iter()
            .map(|(_, n)| n)
            .sum::<usize>(),
        2
    );
    assert_eq!(f.staging.batch_writes(), 1);
}
