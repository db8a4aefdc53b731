//! Decode the function URL request, call `shared`, encode the answer.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use lambda_runtime::LambdaEvent;
use trailkeep_shared::api::{Api, ApiSettings, Call, Caller};
use trailkeep_shared::delivery::StagingStore;
use trailkeep_shared::digest::registry::PublicKeys;
use trailkeep_shared::history::lookup::{HistoryReader, CONTENT_TYPE};
use trailkeep_shared::history::HistoryStore;
use trailkeep_shared::trail::{HealthStore, TrailStore};

pub(crate) struct Deps<T, H, S, K> {
    pub trails: T,
    pub history: H,
    pub staging: S,
    pub keys: K,
    pub settings: ApiSettings,
    /// The configured account, used when the function's ARN has none.
    pub account_id: Option<String>,
}

/// Every answer, errors included, is an HTTP response (the API's error
/// names and status codes): the function itself never fails.
/// "Now" is the request's time (function URL request context), so a
/// request replays exactly.
pub(crate) async fn handle<T, H, S, K>(
    deps: &Deps<T, H, S, K>,
    event: LambdaEvent<LambdaFunctionUrlRequest>,
) -> Result<LambdaFunctionUrlResponse, std::convert::Infallible>
where
    T: TrailStore,
    H: HistoryStore + HistoryReader,
    S: StagingStore + HealthStore,
    K: PublicKeys,
{
    let request = event.payload;
    let context = &request.request_context;
    let now = request_time(context.time_epoch);
    let method = context.http.method.clone().unwrap_or_default();
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
    let caller = caller(&request);
    let request_id = context
        .request_id
        .clone()
        .unwrap_or_else(|| event.context.request_id.clone());
    let account_id = account(
        &event.context.invoked_function_arn,
        [context.account_id.as_deref(), deps.account_id.as_deref()],
    );
    let api = Api {
        account_id,
        trails: &deps.trails,
        history: &deps.history,
        staging: &deps.staging,
        keys: &deps.keys,
        settings: &deps.settings,
    };
    let answer = api
        .http(&Call {
            method: &method,
            target,
            body: &body,
            caller: &caller,
            request_id: &request_id,
            now,
        })
        .await;
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

/// The caller the function URL's IAM authorization verified (absent only
/// on an unsigned local endpoint), with its address and agent.
fn caller(request: &LambdaFunctionUrlRequest) -> Caller {
    let context = &request.request_context;
    let iam = context.authorizer.as_ref().and_then(|a| a.iam.as_ref());
    Caller {
        arn: iam.and_then(|i| i.user_arn.clone()),
        principal_id: iam.and_then(|i| i.caller_id.clone()),
        account_id: iam.and_then(|i| i.account_id.clone()),
        access_key_id: iam.and_then(|i| i.access_key.clone()),
        source_ip: context.http.source_ip.clone(),
        user_agent: context.http.user_agent.clone(),
    }
}

/// The deployment's account: the one in the function's ARN
/// (`arn:aws:lambda:region:account:function:name`), else the first of
/// `fallbacks` that is one (a local emulator leaves the ARN without it).
fn account<'a>(function_arn: &'a str, fallbacks: [Option<&'a str>; 2]) -> &'a str {
    let is_account = |a: &&str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    std::iter::once(function_arn.split(':').nth(4))
        .chain(fallbacks)
        .flatten()
        .find(is_account)
        .unwrap_or_default()
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

    #[test]
    fn the_caller_is_the_one_the_function_url_authorized() {
        let request: LambdaFunctionUrlRequest = serde_json::from_value(serde_json::json!({
            "headers": {},
            "requestContext": {
                "accountId": "111122223333",
                "requestId": "r-1",
                "authorizer": {"iam": {
                    "accessKey": "AKIAEXAMPLE",
                    "accountId": "111122223333",
                    "callerId": "AIDABOB",
                    "userArn": "arn:aws:iam::111122223333:user/bob",
                    "userId": "AIDABOB"
                }},
                "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.7", "userAgent": "aws-cli/2"},
                "timeEpoch": 1795489200000i64
            },
            "isBase64Encoded": false
        }))
        .unwrap();
        let c = caller(&request);
        assert_eq!(c.arn.as_deref(), Some("arn:aws:iam::111122223333:user/bob"));
        assert_eq!(c.principal_id.as_deref(), Some("AIDABOB"));
        assert_eq!(c.access_key_id.as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(c.source_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(c.user_agent.as_deref(), Some("aws-cli/2"));
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:api";
        assert_eq!(account(arn, [Some("444455556666"), None]), "111122223333");
        assert_eq!(
            account("", [Some("x"), Some("444455556666")]),
            "444455556666"
        );
        assert_eq!(account("lookup", [Some("not-an-account"), None]), "");
    }
}
