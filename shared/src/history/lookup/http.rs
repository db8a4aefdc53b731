//! The lookup endpoint over HTTP (a Lambda function URL speaking AWS JSON 1.1).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{lookup, parse_request, response_json, HistoryReader, LookupSettings};

/// CloudTrail's `X-Amz-Target` for LookupEvents (AWS JSON 1.1).
pub const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// The AWS JSON 1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What a 500 answer says.
pub const INTERNAL_ERROR: &str = "internal error";

/// An HTTP answer: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// One HTTP request to the lookup endpoint (a Lambda function URL):
/// `POST`, a LookupEvents body, and — when a CloudTrail client calls —
/// `X-Amz-Target: …LookupEvents`. Errors are AWS JSON protocol errors
/// (`{"__type": …, "message": …}`) with status 400, or 500 for the store's:
/// a 500 says only "internal error" (the caller finds the request by the
/// `x-amzn-RequestId` header the function sets); the detail, which names
/// tables and the store's words, goes to the log only.
pub async fn http<R: HistoryReader>(
    reader: &R,
    settings: &LookupSettings,
    method: &str,
    target: Option<&str>,
    body: &[u8],
    now: &DateTime<Utc>,
) -> HttpResponse {
    let error = |status: u16, code: &str, message: String| HttpResponse {
        status,
        body: json!({ "__type": code, "message": message }).to_string(),
    };
    if !method.eq_ignore_ascii_case("POST") {
        return error(
            405,
            "MethodNotAllowedException",
            format!("{method} is not allowed: POST a LookupEvents request"),
        );
    }
    if let Some(t) = target.filter(|t| *t != TARGET) {
        return error(
            400,
            "UnknownOperationException",
            format!("{t} is not supported: this endpoint answers {TARGET} only"),
        );
    }
    let result = match parse_request(body, settings, now) {
        Ok(request) => lookup(reader, &request, settings, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(page) => HttpResponse {
            status: 200,
            body: response_json(&page).to_string(),
        },
        Err(e) if e.status() >= 500 => {
            tracing::error!(error = %e, "lookup failed");
            error(e.status(), e.code(), INTERNAL_ERROR.into())
        }
        Err(e) => error(e.status(), e.code(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemoryHistory;

    #[tokio::test]
    async fn a_store_failure_answers_500_internal_error_and_nothing_more() {
        let settings = LookupSettings {
            account_id: String::new(),
            organization: false,
            home_region: "eu-west-1".into(),
            served_regions: vec!["eu-west-1".into()],
            retention_days: 90,
            token_key: b"0123456789abcdef0123456789abcdef".to_vec(),
            shards: 1,
        };
        let now = crate::time::parse("2026-11-24T12:00:00Z").unwrap();
        let history = MemoryHistory::default();
        let ok = http(&history, &settings, "POST", Some(TARGET), b"{}", &now).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        history.fail_reads(true);
        let failed = http(&history, &settings, "POST", Some(TARGET), b"{}", &now).await;
        assert_eq!(failed.status, 500);
        let body: serde_json::Value = serde_json::from_str(&failed.body).unwrap();
        assert_eq!(
            body,
            json!({"__type": "InternalFailure", "message": "internal error"})
        );
        assert!(!failed.body.contains("HistoryTable"), "{}", failed.body);
    }
}
