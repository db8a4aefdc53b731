//! Decode the schedule, call `shared`, map errors.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use trailkeep_shared::digest::{
    DigestBucket, DigestReport, DigestSettings, DigestState, Digester, Signer,
};
use trailkeep_shared::store::{Incomplete, StoreError};
use trailkeep_shared::trail::{HealthStore, TrailStore};

pub(crate) struct Deps<S, T, K, B> {
    pub state: S,
    pub trails: T,
    pub signer: K,
    pub bucket: B,
    pub settings: DigestSettings,
}

/// Why a run failed; its `errorType` says whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DigestError {
    /// Permanent: the trigger is not a scheduled event.
    #[error("the scheduled event has no time: digest takes \"now\" from it")]
    NoTime,
    /// Transient: the next run catches up every hour still due.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some trails/regions failed; the others went on. Retried next run.
    #[error(transparent)]
    Incomplete(#[from] Incomplete),
}

impl From<DigestError> for Diagnostic {
    fn from(e: DigestError) -> Self {
        let error_type = match e {
            DigestError::NoTime => "BadTrigger",
            DigestError::Store(_) => "StoreUnavailable",
            DigestError::Incomplete(_) => "PartialFailure",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// "Now" is the scheduled event's time, so a run replays exactly.
pub(crate) async fn handle<
    S: DigestState + HealthStore,
    T: TrailStore,
    K: Signer,
    B: DigestBucket,
>(
    deps: &Deps<S, T, K, B>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<DigestReport, DigestError> {
    let now = event.payload.time.ok_or(DigestError::NoTime)?;
    let trails = deps.trails.load().await?.trails;
    let digester = Digester {
        state: &deps.state,
        signer: &deps.signer,
        bucket: &deps.bucket,
        settings: &deps.settings,
    };
    let report = digester.run(&trails, &now).await;
    tracing::info!(
        now = %now,
        digests = report.digests,
        log_files = report.log_files,
        tampered = report.tampered,
        waiting = report.waiting,
        raced = report.raced,
        failed = report.failed.len(),
        "digested"
    );
    Ok(report.into_result()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailkeep_shared::testkit::{MemoryBucket, MemoryState, MemoryTrails, TestSigner};

    fn scheduled(time: Option<&str>) -> LambdaEvent<EventBridgeEvent<Value>> {
        let mut v: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/scheduled/digest.json"
        )))
        .unwrap();
        match time {
            Some(t) => v["time"] = t.into(),
            None => drop(v.as_object_mut().unwrap().remove("time")),
        }
        LambdaEvent::new(serde_json::from_value(v).unwrap(), Default::default())
    }

    fn deps() -> Deps<MemoryState, MemoryTrails, TestSigner, MemoryBucket> {
        let since = trailkeep_shared::time::parse("2026-11-24T00:20:00Z").unwrap();
        let mut trail = trailkeep_shared::testkit::trail("audit", since);
        trail.is_multi_region_trail = false;
        Deps {
            state: MemoryState::default(),
            trails: MemoryTrails::with(vec![trail]),
            signer: TestSigner::new(),
            bucket: MemoryBucket::default(),
            settings: DigestSettings::default(),
        }
    }

    #[tokio::test]
    async fn an_hourly_run_signs_an_empty_hour_of_a_logging_trail() {
        let deps = deps();
        let report = handle(&deps, scheduled(Some("2026-11-24T01:10:00Z")))
            .await
            .unwrap();
        assert_eq!((report.digests, report.log_files), (1, 0));
        let keys = deps.bucket.keys("logs", "");
        assert_eq!(
            keys,
            ["AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T010000Z.json.gz"]
        );
        let object = deps.bucket.object("logs", &keys[0]).unwrap();
        assert_eq!(object.signature_algorithm.as_deref(), Some("SHA256withRSA"));
        assert_eq!(
            object.signature.map(|s| s.len()),
            Some(512),
            "RSA-2048, hex"
        );
    }

    #[tokio::test]
    async fn a_trigger_without_time_is_a_bad_trigger_and_a_failed_write_a_partial_failure() {
        let deps = deps();
        let no_time = handle(&deps, scheduled(None)).await.unwrap_err();
        assert_eq!(Diagnostic::from(no_time).error_type, "BadTrigger");
        deps.bucket.fail_writes_after(Some(0));
        let failed = handle(&deps, scheduled(Some("2026-11-24T01:10:00Z")))
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(failed).error_type, "PartialFailure");
        assert_eq!(deps.state.chain_head("audit", "eu-west-1"), None);
    }
}
