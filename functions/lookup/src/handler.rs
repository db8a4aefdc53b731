//! Decode the function URL request, call `shared`, encode the answer.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use lambda_runtime::LambdaEvent;
use trailkeep_shared::history::lookup::{self, HistoryReader, LookupSettings, CONTENT_TYPE};

pub(crate) struct Deps<R> {
    pub reader: R,
    pub settings: LookupSettings,
}

/// Every answer, errors included, is an HTTP response (the API's error
/// names and status codes): the function itself never fails.
/// "Now" is the request's time (function URL request context), so a
/// request replays exactly.
pub(crate) async fn handle<R: HistoryReader>(
    deps: &Deps<R>,
    event: LambdaEvent<LambdaFunctionUrlRequest>,
) -> Result<LambdaFunctionUrlResponse, std::convert::Infallible> {
    let request = event.payload;
    let now = request_time(request.request_context.time_epoch);
    let method = request
        .request_context
        .http
        .method
        .as_ref()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let target = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let body = match (request.body.as_deref(), request.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.as_bytes().to_vec(),
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_else(|_| b"not base64".to_vec()),
    };
    let answer = lookup::http(&deps.reader, &deps.settings, &method, target, &body, &now).await;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    // As AWS's JSON protocol does: clients report it (botocore's
    // ResponseMetadata.RequestId), and it finds the log line of a 500.
    if let Ok(id) = HeaderValue::from_str(&event.context.request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(answer.status);
    response.headers = headers;
    response.body = Some(answer.body);
    Ok(response)
}

/// The request time: `timeEpoch` is milliseconds on AWS; cargo-lambda's
/// emulator sends seconds (any value below 10^11 — before 1973 in ms — is
/// read as seconds), and an unset one means the clock.
fn request_time(epoch: i64) -> chrono::DateTime<chrono::Utc> {
    match epoch {
        e if e <= 0 => None,
        e if e < 100_000_000_000 => chrono::DateTime::from_timestamp(e, 0),
        e => chrono::DateTime::from_timestamp_millis(e),
    }
    .unwrap_or_else(chrono::Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_time_is_read_in_milliseconds_or_seconds() {
        let t = chrono::DateTime::from_timestamp(1_795_489_200, 0).unwrap();
        assert_eq!(request_time(1_795_489_200_000), t);
        assert_eq!(request_time(1_795_489_200), t);
        assert!(request_time(0) > t - chrono::Duration::days(3650));
    }
}
