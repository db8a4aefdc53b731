//! The Trails page: each trail's settings and GetTrailStatus, and "Validate
//! now", which runs validate-logs in the background (this process, the
//! caller's credentials) and shows its progress and report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::App;
use crate::progress::Watch;

/// Validations kept for their pages: the latest [`KEPT`] finished ones and
/// every running one, of which there are at most [`RUNNING`].
#[derive(Default)]
pub(crate) struct Validations {
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

const KEPT: usize = 20;

/// Validations that may run at once: each reads S3 32 files at a time.
const RUNNING: usize = 2;

struct Job {
    trail: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    watch: Arc<Watch>,
    /// Whether every file checked out, and the report; or why it could not
    /// run.
    outcome: Mutex<Outcome>,
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An epoch-seconds member of an API answer, as ISO 8601.
fn time_of(v: &Value) -> Option<String> {
    v.as_f64()
        .and_then(|s| DateTime::from_timestamp(s as i64, 0))
        .map(iso)
}

#[derive(Debug, Serialize)]
struct TrailRow {
    name: String,
    arn: String,
    home_region: String,
    bucket: String,
    prefix: String,
    multi_region: bool,
    organization: bool,
    validation: bool,
    logging: Option<bool>,
    latest_delivery: Option<String>,
    delivery_error: String,
    latest_digest: Option<String>,
    digest_error: String,
    status_error: Option<String>,
}

/// `GET /trails`.
pub(super) async fn page(State(app): State<Arc<App>>) -> Response {
    let trails = match app.call("DescribeTrails", &json!({})).await {
        Ok(v) => v["trailList"].as_array().cloned().unwrap_or_default(),
        Err(e) => return trails_page(&app, Vec::new(), Some(e)),
    };
    let statuses = futures::future::join_all(trails.iter().map(|t| {
        let app = &app;
        async move {
            app.call("GetTrailStatus", &json!({ "Name": t["TrailARN"] }))
                .await
        }
    }))
    .await;
    let rows = trails
        .iter()
        .zip(statuses)
        .map(|(t, status)| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let (s, status_error) = match status {
                Ok(s) => (s, None),
                Err(e) => (Value::Null, Some(e)),
            };
            TrailRow {
                name: text(&t["Name"]),
                arn: text(&t["TrailARN"]),
                home_region: text(&t["HomeRegion"]),
                bucket: text(&t["S3BucketName"]),
                prefix: text(&t["S3KeyPrefix"]),
                multi_region: t["IsMultiRegionTrail"].as_bool().unwrap_or(false),
                organization: t["IsOrganizationTrail"].as_bool().unwrap_or(false),
                validation: t["LogFileValidationEnabled"].as_bool().unwrap_or(false),
                logging: s["IsLogging"].as_bool(),
                latest_delivery: time_of(&s["LatestDeliveryTime"]),
                delivery_error: text(&s["LatestDeliveryError"]),
                latest_digest: time_of(&s["LatestDigestDeliveryTime"]),
                digest_error: text(&s["LatestDigestDeliveryError"]),
                status_error,
            }
        })
        .collect();
    trails_page(&app, rows, None)
}

fn trails_page(app: &App, trails: Vec<TrailRow>, error: Option<String>) -> Response {
    let now = Utc::now();
    let status = if error.is_some() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    let body = app.render(
        "trails.html",
        minijinja::context! {
            title => "Trails",
            trails => trails,
            error => error,
            // The default range of "Validate now": the last day.
            default_start => iso(now - Duration::days(1)),
            default_end => iso(now),
            validations => app.validations.list(),
        },
    );
    (status, body).into_response()
}

#[derive(Deserialize)]
pub(super) struct ValidateForm {
    trail: String,
    start: String,
    end: String,
}

/// `POST /trails/validate`: starts a validation; its page.
pub(super) async fn validate(
    State(app): State<Arc<App>>,
    Form(form): Form<ValidateForm>,
) -> Response {
    let parse = |s: &str| crate::validate::parse_time(s.trim()).map_err(|e| e.to_string());
    let range = match (parse(&form.start), parse(&form.end)) {
        (Ok(s), Ok(e)) if s <= e => Ok((s, e)),
        (Ok(_), Ok(_)) => Err("the start must be before the end".to_owned()),
        (Err(e), _) => Err(format!("start: {e}")),
        (_, Err(e)) => Err(format!("end: {e}")),
    };
    let (start, end) = match range {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let job = Arc::new(Job {
        trail: form.trail,
        start,
        end,
        watch: Arc::new(Watch::default()),
        outcome: Mutex::new(None),
    });
    let Some(id) = app.validations.add(job.clone()) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("{RUNNING} validations are running: start another when one has finished"),
        )
            .into_response();
    };
    let app = app.clone();
    // validate-logs' future is not `Send` (its streams borrow across
    // awaits): it runs on a thread of its own, on this runtime.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let outcome = handle.block_on(run(&app, &job));
        if let Ok(mut o) = job.outcome.lock() {
            *o = Some(outcome);
        }
    });
    Redirect::to(&format!("/validations/{id}")).into_response()
}

/// validate-logs over the trail's bucket (DescribeTrails names it).
async fn run(app: &App, job: &Job) -> Result<(bool, Value), String> {
    let trails = app
        .call("DescribeTrails", &json!({ "trailNameList": [job.trail] }))
        .await?;
    let trail = trails["trailList"]
        .as_array()
        .and_then(|l| l.first())
        .ok_or_else(|| format!("TrailNotFoundException: {}", job.trail))?;
    let arn = trail["TrailARN"].as_str().unwrap_or_default();
    crate::validate::validate_for_console(
        &app.state_table,
        arn,
        trail["S3BucketName"].as_str(),
        trail["S3KeyPrefix"].as_str(),
        (job.start, job.end),
        app.signing.clone(),
        job.watch.clone(),
    )
    .await
    .map_err(|e| e.to_string())
}

impl Validations {
    /// Its ID, or none if [`RUNNING`] validations are running. The oldest
    /// finished ones make room.
    fn add(&self, job: Arc<Job>) -> Option<u64> {
        let mut jobs = self.jobs.lock().ok()?;
        if jobs.values().filter(|j| j.status() == "running").count() >= RUNNING {
            return None;
        }
        let id = jobs.keys().next_back().map_or(1, |last| last + 1);
        jobs.insert(id, job);
        while jobs.len() > KEPT {
            let Some(oldest) = jobs
                .iter()
                .find(|(_, j)| j.status() != "running")
                .map(|(id, _)| *id)
            else {
                break;
            };
            jobs.remove(&oldest);
        }
        Some(id)
    }

    fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(&id).cloned()
    }

    /// (id, trail, status) of each kept validation, newest first.
    fn list(&self) -> Vec<(u64, String, &'static str)> {
        let Ok(jobs) = self.jobs.lock() else {
            return Vec::new();
        };
        jobs.iter()
            .rev()
            .map(|(id, j)| (*id, j.trail.clone(), j.status()))
            .collect()
    }
}

type Outcome = Option<Result<(bool, Value), String>>;

/// What a validation's outcome says, in one word.
fn status_of(outcome: &Outcome) -> &'static str {
    match outcome {
        None => "running",
        Some(Ok((true, _))) => "valid",
        Some(Ok((false, _))) => "INVALID",
        Some(Err(_)) => "failed",
    }
}

impl Job {
    fn status(&self) -> &'static str {
        self.outcome.lock().map_or("failed", |o| status_of(&o))
    }
}

#[derive(Serialize)]
struct FindingRow {
    kind: String,
    location: String,
    problem: Option<String>,
    account: String,
}

/// `GET /validations/{id}`: progress while it runs (the page reloads
/// itself), then the report.
pub(super) async fn validation(State(app): State<Arc<App>>, Path(id): Path<u64>) -> Response {
    let Some(job) = app.validations.get(id) else {
        return (
            StatusCode::NOT_FOUND,
            "no such validation (the console keeps the latest 20)",
        )
            .into_response();
    };
    let (checked, listed) = job.watch.counts();
    // One read of the outcome: the status and the report agree.
    let outcome = job
        .outcome
        .lock()
        .map(|o| o.clone())
        .unwrap_or_else(|_| Some(Err("the validation's state was lost".to_owned())));
    let status = status_of(&outcome);
    let (report, error) = match outcome {
        Some(Ok((_, report))) => (Some(report), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let findings: Vec<FindingRow> = report
        .as_ref()
        .and_then(|r| r["findings"].as_array())
        .into_iter()
        .flatten()
        .map(|f| FindingRow {
            kind: f["kind"].as_str().unwrap_or_default().to_owned(),
            location: f["location"].as_str().unwrap_or_default().to_owned(),
            problem: f["problem"].as_str().map(str::to_owned),
            account: f["account"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let summary = report.as_ref().map(|r| {
        let count = |k: &str| {
            (
                r[k]["valid"].as_u64().unwrap_or(0),
                r[k]["total"].as_u64().unwrap_or(0),
            )
        };
        let (dv, dt) = count("digestFiles");
        let (lv, lt) = count("logFiles");
        if dt == 0 {
            "No digests found: nothing is proven for this range.".to_owned()
        } else {
            format!("{dv}/{dt} digest files valid, {lv}/{lt} log files valid")
        }
    });
    app.render(
        "validation.html",
        minijinja::context! {
            title => "Validation",
            id => id,
            trail => &job.trail,
            start => iso(job.start),
            end => iso(job.end),
            status => status,
            with_account => findings.iter().any(|f| !f.account.is_empty()),
            checked => checked,
            listed => listed.max(checked),
            findings => findings,
            summary => summary,
            error => error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(outcome: Option<Result<(bool, Value), String>>) -> Arc<Job> {
        Arc::new(Job {
            trail: "t".into(),
            start: DateTime::UNIX_EPOCH,
            end: DateTime::UNIX_EPOCH,
            watch: Arc::new(Watch::default()),
            outcome: Mutex::new(outcome),
        })
    }

    #[test]
    fn the_latest_validations_are_kept_two_may_run_and_a_running_one_is_never_dropped() {
        let v = Validations::default();
        let done = || job(Some(Ok((true, Value::Null))));
        let first = v.add(done()).unwrap();
        v.add(job(Some(Ok((false, Value::Null))))).unwrap();
        v.add(job(Some(Err("no bucket".into())))).unwrap();
        let running = v.add(job(None)).unwrap();
        let statuses: Vec<_> = v.list().into_iter().map(|(_, _, s)| s).collect();
        assert_eq!(statuses, ["running", "failed", "INVALID", "valid"]);
        let second_job = job(None);
        let second = v.add(second_job.clone()).unwrap();
        assert_eq!(v.add(job(None)), None, "a third at once");
        *second_job.outcome.lock().unwrap() = Some(Ok((true, Value::Null)));
        for _ in 0..KEPT {
            v.add(done()).unwrap();
        }
        // The oldest finished ones went; the running one, older, stays.
        assert!(v.get(first).is_none() && v.get(second).is_none());
        assert!(v.get(running).is_some());
        assert_eq!(v.list().len(), KEPT);
    }
}
