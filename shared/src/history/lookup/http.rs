//! The lookup endpoint over HTTP (a Lambda function URL speaking AWS JSON 1.1).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{lookup, parse_request, response_json, HistoryReader, LookupSettings};

/// CloudTrail's `X-Amz-Target` for LookupEvents (AWS JSON 1.1).
pub const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// The AWS JSON 1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An HTTP answer: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// One HTTP request to the lookup endpoint (a Lambda function URL):
/// `POST`, a LookupEvents body, and — when a CloudTrail client calls —
/// `X-Amz-Target: …LookupEvents`. Errors are AWS JSON protocol errors
/// (`{"__type": …, "message": …}`) with status 400, or 500 for the store's.
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
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(error = %e, "lookup failed");
            }
            error(e.status(), e.code(), e.to_string())
        }
    }
}
