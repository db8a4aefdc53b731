//! Trail administration: create, update, delete, start/stop logging, event
//! selectors — the use cases behind the CLI's CloudTrail verbs, generic over
//! the [`TrailStore`] port. The rules a trail follows are in [`crate::trail`].
//!
//! All trails of a deployment are one document with a version; every call
//! reads it, changes it in memory and writes it back only if the version is
//! still the one it read (compare-and-set, retried on conflict). So the limit
//! of [`MAX_TRAILS_PER_REGION`] and name uniqueness hold under concurrent
//! calls, and no change is lost, with nothing but a single-item conditional
//! write. A deployment homes all its trails in its own region, so the
//! document's limit is the per-region limit. Readers (ingest's trail cache)
//! get every trail with one read.

use std::future::Future;

use crate::store::StoreError;
use crate::trail::{
    validate_name, validate_tags, AdvancedEventSelector, CloudWatchLogs, EventSelector, Tag, Trail,
    TrailError, MAX_TRAILS_PER_REGION,
};

/// How many times a change is retried when another writer changed the trail first.
const CAS_ATTEMPTS: u32 = 8;

/// Why an administration call failed, with CloudTrail's error names.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("TrailAlreadyExistsException: trail {0} already exists")]
    TrailAlreadyExists(String),
    #[error(
        "MaximumNumberOfTrailsExceededException: at most {MAX_TRAILS_PER_REGION} trails per region"
    )]
    MaximumNumberOfTrailsExceeded,
    #[error("TrailNotFoundException: unknown trail {0}")]
    TrailNotFound(String),
    #[error("{0}")]
    Invalid(#[from] TrailError),
    #[error("ConcurrentModificationException: trail {0} kept changing; try again")]
    ConcurrentModification(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    /// The message without the leading error code.
    pub fn detail(&self) -> String {
        let full = self.to_string();
        match full
            .strip_prefix(self.code())
            .and_then(|m| m.strip_prefix(": "))
        {
            Some(rest) => rest.to_owned(),
            None => full,
        }
    }

    /// The CloudTrail error code (the part before the colon of the message).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TrailAlreadyExists(_) => "TrailAlreadyExistsException",
            Self::MaximumNumberOfTrailsExceeded => "MaximumNumberOfTrailsExceededException",
            Self::TrailNotFound(_) => "TrailNotFoundException",
            Self::Invalid(TrailError::InvalidTrailName(_)) => "InvalidTrailNameException",
            Self::Invalid(TrailError::InvalidEventSelectors(_)) => "InvalidEventSelectorsException",
            Self::Invalid(TrailError::InvalidS3Prefix(_)) => "InvalidS3PrefixException",
            Self::Invalid(TrailError::InvalidS3BucketName(_)) => "InvalidS3BucketNameException",
            Self::Invalid(TrailError::InvalidTagParameter(_)) => "InvalidTagParameterException",
            Self::Invalid(TrailError::TagsLimitExceeded(_)) => "TagsLimitExceededException",
            Self::Invalid(TrailError::InvalidKmsKeyId(_)) => "InvalidKmsKeyIdException",
            Self::Invalid(TrailError::InvalidSnsTopicName(_)) => "InvalidSnsTopicNameException",
            Self::Invalid(TrailError::InvalidCloudWatchLogsLogGroupArn(_)) => {
                "InvalidCloudWatchLogsLogGroupArnException"
            }
            Self::Invalid(TrailError::InvalidCloudWatchLogsRoleArn(_)) => {
                "InvalidCloudWatchLogsRoleArnException"
            }
            Self::ConcurrentModification(_) => "ConcurrentModificationException",
            Self::Store(_) => "InternalFailure",
        }
    }
}

/// Every trail, and the version a write of them must match (0: never written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailSet {
    pub trails: Vec<Trail>,
    pub version: u64,
}

/// The port trail administration needs.
pub trait TrailStore: Send + Sync {
    /// Every trail, with the document's version.
    fn load(&self) -> impl Future<Output = Result<TrailSet, StoreError>> + Send;
    /// Writes `trails` as version `expected + 1` if the stored version is
    /// still `expected`; `false` if another writer came first.
    fn save(
        &self,
        trails: &[Trail],
        expected: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What `create-trail` takes.
#[derive(Clone, Debug, Default)]
pub struct NewTrail {
    pub name: String,
    pub s3_bucket_name: String,
    pub s3_key_prefix: Option<String>,
    pub kms_key_id: Option<String>,
    pub sns_topic_name: Option<String>,
    pub cloud_watch_logs: Option<CloudWatchLogs>,
    pub is_multi_region_trail: bool,
    /// Some: an organization trail of this organization.
    pub organization_id: Option<String>,
    pub include_global_service_events: bool,
    pub log_file_validation_enabled: bool,
    pub tags: Vec<Tag>,
}

/// What `update-trail` may change; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct TrailUpdate {
    pub s3_bucket_name: Option<String>,
    /// `Some("")` removes the prefix.
    pub s3_key_prefix: Option<String>,
    /// `Some("")` removes the key: files are written without SSE-KMS.
    pub kms_key_id: Option<String>,
    /// `Some("")` removes the topic: no more notifications.
    pub sns_topic_name: Option<String>,
    /// `Some(None)` removes the log group: no more CloudWatch Logs delivery.
    pub cloud_watch_logs: Option<Option<CloudWatchLogs>>,
    pub is_multi_region_trail: Option<bool>,
    /// `Some(None)` makes it a trail of the stack's own account again.
    pub organization_id: Option<Option<String>>,
    pub include_global_service_events: Option<bool>,
    pub log_file_validation_enabled: Option<bool>,
}

/// Is this the trail `name_or_arn` names? An ARN must be the trail's own:
/// another account's or region's trail of the same name is not this one.
fn names(trail: &Trail, name_or_arn: &str) -> bool {
    trail.name == trail_name(name_or_arn)
        && (!name_or_arn.starts_with("arn:") || trail.arn() == name_or_arn)
}

/// A trail is named by its name or its ARN (`…:trail/NAME`), as in CloudTrail.
pub fn trail_name(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(rest) if rest.contains(":cloudtrail:") => {
            rest.rsplit("trail/").next().unwrap_or(name_or_arn)
        }
        _ => name_or_arn,
    }
}

/// Applies `change` to the trails with compare-and-set, retrying when
/// another writer got there first. `change` sees the current trails each time.
async fn change<S, T, F>(store: &S, what: &str, change: F) -> Result<T, AdminError>
where
    S: TrailStore,
    F: Fn(&mut Vec<Trail>) -> Result<T, AdminError>,
{
    for _ in 0..CAS_ATTEMPTS {
        let TrailSet {
            mut trails,
            version,
        } = store.load().await?;
        let out = change(&mut trails)?;
        if store.save(&trails, version).await? {
            return Ok(out);
        }
    }
    Err(AdminError::ConcurrentModification(what.to_owned()))
}

/// Applies `edit` to one trail (by name or ARN) and validates the result.
async fn modify<S, F>(store: &S, name_or_arn: &str, edit: F) -> Result<Trail, AdminError>
where
    S: TrailStore,
    F: Fn(&mut Trail),
{
    let name = trail_name(name_or_arn);
    validate_name(name)?;
    change(store, name, |trails| {
        let trail = trails
            .iter_mut()
            .find(|t| names(t, name_or_arn))
            .ok_or_else(|| AdminError::TrailNotFound(name.to_owned()))?;
        edit(trail);
        trail.validate()?;
        Ok(trail.clone())
    })
    .await
}

/// `create-trail`: a new trail of this account, homed in `region`. Like
/// CloudTrail, a new trail does not log until `start-logging`.
pub async fn create<S: TrailStore>(
    store: &S,
    account_id: &str,
    region: &str,
    new: NewTrail,
) -> Result<Trail, AdminError> {
    let trail = Trail {
        name: new.name,
        home_region: region.to_owned(),
        account_id: account_id.to_owned(),
        s3_bucket_name: new.s3_bucket_name,
        s3_key_prefix: new.s3_key_prefix.filter(|p| !p.is_empty()),
        kms_key_id: new.kms_key_id.filter(|k| !k.is_empty()),
        sns_topic_name: new.sns_topic_name.filter(|t| !t.is_empty()),
        cloud_watch_logs: new.cloud_watch_logs,
        is_multi_region_trail: new.is_multi_region_trail,
        organization_id: new.organization_id,
        include_global_service_events: new.include_global_service_events,
        log_file_validation_enabled: new.log_file_validation_enabled,
        is_logging: false,
        start_logging_time: None,
        stop_logging_time: None,
        event_selectors: Vec::new(),
        advanced_event_selectors: Vec::new(),
        tags: new.tags,
    };
    trail.validate()?;
    change(store, &trail.name, |trails| {
        if trails.iter().any(|t| t.name == trail.name) {
            return Err(AdminError::TrailAlreadyExists(trail.name.clone()));
        }
        if trails.len() >= MAX_TRAILS_PER_REGION {
            return Err(AdminError::MaximumNumberOfTrailsExceeded);
        }
        trails.push(trail.clone());
        trails.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    })
    .await?;
    Ok(trail)
}

/// `get-trail`.
pub async fn get<S: TrailStore>(store: &S, name_or_arn: &str) -> Result<Trail, AdminError> {
    validate_name(trail_name(name_or_arn))?;
    find(&store.load().await?.trails, name_or_arn).cloned()
}

/// The trail `name_or_arn` names among `trails`.
pub fn find<'a>(trails: &'a [Trail], name_or_arn: &str) -> Result<&'a Trail, AdminError> {
    let name = trail_name(name_or_arn);
    validate_name(name)?;
    trails
        .iter()
        .find(|t| names(t, name_or_arn))
        .ok_or_else(|| AdminError::TrailNotFound(name.to_owned()))
}

/// `describe-trails`: the named trails (all when `names` is empty).
pub async fn describe<S: TrailStore>(
    store: &S,
    names: &[String],
) -> Result<Vec<Trail>, AdminError> {
    let all = store.load().await?.trails;
    if names.is_empty() {
        return Ok(all);
    }
    Ok(all
        .into_iter()
        .filter(|t| names.iter().any(|n| self::names(t, n)))
        .collect())
}

/// `update-trail`.
pub async fn update<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    u: TrailUpdate,
) -> Result<Trail, AdminError> {
    modify(store, name_or_arn, |t| {
        if let Some(b) = &u.s3_bucket_name {
            t.s3_bucket_name = b.clone();
        }
        if let Some(p) = &u.s3_key_prefix {
            t.s3_key_prefix = Some(p.clone()).filter(|p| !p.is_empty());
        }
        if let Some(k) = &u.kms_key_id {
            t.kms_key_id = Some(k.clone()).filter(|k| !k.is_empty());
        }
        if let Some(topic) = &u.sns_topic_name {
            t.sns_topic_name = Some(topic.clone()).filter(|t| !t.is_empty());
        }
        if let Some(logs) = &u.cloud_watch_logs {
            t.cloud_watch_logs = logs.clone();
        }
        if let Some(v) = u.is_multi_region_trail {
            t.is_multi_region_trail = v;
        }
        // `IsOrganizationTrail: true` on an organization trail keeps its
        // organization (a tool re-sending the flag moves no chain); false
        // then true moves it to the stack's current one.
        match (&u.organization_id, &t.organization_id) {
            (Some(Some(_)), Some(_)) | (None, _) => {}
            (Some(org), _) => t.organization_id = org.clone(),
        }
        if let Some(v) = u.include_global_service_events {
            t.include_global_service_events = v;
        }
        if let Some(v) = u.log_file_validation_enabled {
            t.log_file_validation_enabled = v;
        }
    })
    .await
}

/// `start-logging` / `stop-logging` at `now`. Starting a logging trail or
/// stopping a stopped one changes nothing (as in CloudTrail), so the
/// recorded start and stop times stay those of the real transitions.
pub async fn set_logging<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    on: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Trail, AdminError> {
    modify(store, name_or_arn, |t| {
        if t.is_logging != on {
            t.is_logging = on;
            if on {
                t.start_logging_time = Some(now);
            } else {
                t.stop_logging_time = Some(now);
            }
        }
    })
    .await
}

/// `put-event-selectors`.
pub async fn put_event_selectors<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    selectors: Vec<EventSelector>,
) -> Result<Trail, AdminError> {
    modify(store, name_or_arn, |t| {
        t.event_selectors = selectors.clone();
        t.advanced_event_selectors.clear();
    })
    .await
}

/// `put-event-selectors --advanced-event-selectors`: replaces the basic
/// selectors too, as in CloudTrail.
pub async fn put_advanced_event_selectors<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    selectors: Vec<AdvancedEventSelector>,
) -> Result<Trail, AdminError> {
    modify(store, name_or_arn, |t| {
        t.advanced_event_selectors = selectors.clone();
        t.event_selectors.clear();
    })
    .await
}

/// `add-tags`: sets each tag, replacing the value of a key the trail has.
pub async fn add_tags<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    tags: &[Tag],
) -> Result<Trail, AdminError> {
    // The request's own keys unique and valid, before merging.
    validate_tags(tags)?;
    modify(store, name_or_arn, |t| {
        for tag in tags {
            match t.tags.iter_mut().find(|have| have.key == tag.key) {
                Some(have) => have.value = tag.value.clone(),
                None => t.tags.push(tag.clone()),
            }
        }
    })
    .await
}

/// `remove-tags`: removes the tags with these keys (their values are not
/// compared); a key the trail does not have is no error.
pub async fn remove_tags<S: TrailStore>(
    store: &S,
    name_or_arn: &str,
    tags: &[Tag],
) -> Result<Trail, AdminError> {
    modify(store, name_or_arn, |t| {
        t.tags
            .retain(|have| tags.iter().all(|gone| gone.key != have.key))
    })
    .await
}

/// `delete-trail`.
pub async fn delete<S: TrailStore>(store: &S, name_or_arn: &str) -> Result<(), AdminError> {
    let name = trail_name(name_or_arn);
    validate_name(name)?;
    change(store, name, |trails| {
        let before = trails.len();
        trails.retain(|t| !names(t, name_or_arn));
        if trails.len() == before {
            return Err(AdminError::TrailNotFound(name.to_owned()));
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trail_is_named_by_name_or_arn() {
        assert_eq!(trail_name("audit"), "audit");
        assert_eq!(
            trail_name("arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit"),
            "audit"
        );
        assert_eq!(trail_name("arn:aws:s3:::bucket"), "arn:aws:s3:::bucket");
    }

    #[test]
    fn error_codes_are_cloudtrails() {
        let e = AdminError::Invalid(TrailError::InvalidEventSelectors("x".into()));
        assert_eq!(e.code(), "InvalidEventSelectorsException");
        assert!(AdminError::MaximumNumberOfTrailsExceeded
            .to_string()
            .starts_with(AdminError::MaximumNumberOfTrailsExceeded.code()));
    }

    fn new_trail(name: &str) -> NewTrail {
        NewTrail {
            name: name.into(),
            s3_bucket_name: "logs".into(),
            ..NewTrail::default()
        }
    }

    #[tokio::test]
    async fn a_lost_compare_and_set_is_retried_on_the_winners_document() {
        use crate::testkit::MemoryTrails;
        // GIVEN a document another writer changes three times under us
        let store = MemoryTrails::with(vec![]);
        create(&store, "111122223333", "eu-west-1", new_trail("first"))
            .await
            .unwrap();
        store.conflict_next_saves(3);
        // WHEN a trail is created
        let made = create(&store, "111122223333", "eu-west-1", new_trail("second")).await;
        // THEN the fourth attempt lands, and nothing the others wrote is lost
        assert_eq!(made.unwrap().name, "second");
        assert_eq!(store.saves(), 1 + 4);
        let trails = store.trails();
        let names: Vec<&str> = trails.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        // The other writer's last change (version 1 + 3 lost saves = 4) is kept.
        assert_eq!(trails[0].s3_key_prefix.as_deref(), Some("other-writer-4"));
    }

    #[tokio::test]
    async fn a_document_that_never_settles_is_refused_not_overwritten() {
        use crate::testkit::MemoryTrails;
        let store = MemoryTrails::with(vec![]);
        store.conflict_next_saves(1000);
        let made = create(&store, "111122223333", "eu-west-1", new_trail("audit")).await;
        assert!(
            matches!(made, Err(AdminError::ConcurrentModification(ref n)) if n == "audit"),
            "{made:?}"
        );
        assert_eq!(store.saves(), CAS_ATTEMPTS as usize);
        assert!(store.trails().is_empty());
    }

    #[tokio::test]
    async fn the_sixth_trail_of_a_region_is_refused() {
        use crate::testkit::MemoryTrails;
        let store = MemoryTrails::with(vec![]);
        for n in 0..5 {
            create(
                &store,
                "111122223333",
                "eu-west-1",
                new_trail(&format!("trail-{n}")),
            )
            .await
            .unwrap();
        }
        let sixth = create(&store, "111122223333", "eu-west-1", new_trail("trail-5")).await;
        assert!(matches!(
            sixth,
            Err(AdminError::MaximumNumberOfTrailsExceeded)
        ));
        assert_eq!(store.trails().len(), 5);
    }
}
