//! trailkeep's API over HTTP (stack output `ApiUrl`): CloudTrail's JSON 1.1
//! requests, SigV4-signed for service `lambda` with the caller's
//! credentials, as the function URL's IAM authorization checks them.

use serde_json::Value;
use trailkeep_shared::api::TARGET_PREFIX;
use trailkeep_shared::history::lookup::CONTENT_TYPE;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// A call that did not get a 200 answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// The API's error answer, in CloudTrail's words.
    #[error("An error occurred ({code}) when calling the {operation} operation: {message}")]
    Remote {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("calling {url} failed: {message}")]
    Http { url: String, message: String },
}

impl ApiCallError {
    /// The AWS CLI's exit code for a request made that failed: 254.
    pub fn exit_code(&self) -> u8 {
        254
    }
}

/// A client of one API URL.
pub struct ApiClient {
    url: String,
    aws: aws_config::SdkConfig,
    client: HttpClient,
}

impl ApiClient {
    pub async fn new(url: &str) -> Result<Self, ApiCallError> {
        let aws = trailkeep_shared::aws::sdk_config().await;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ApiCallError::Http {
                url: url.to_owned(),
                message: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self {
            url: url.to_owned(),
            aws,
            client,
        })
    }

    /// The region requests are signed for: the function URL's, else the
    /// profile's.
    pub fn region(&self) -> String {
        url_region(&self.url)
            .map(str::to_owned)
            .or_else(|| self.aws.region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// One operation: its response JSON, or its error.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, ApiCallError> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use http_body_util::BodyExt;
        let url = &self.url;
        let fail = |message: String| ApiCallError::Http {
            url: url.clone(),
            message,
        };
        let payload = body.to_string();
        let identity = identity(&self.aws).await.map_err(fail)?;
        let region = self.region();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("lambda")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(e.to_string()))?
            .into();
        let target = format!("{TARGET_PREFIX}{operation}");
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", &target)];
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .map_err(|e| fail(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| fail(e.to_string()))?
            .into_parts();
        let mut request = http::Request::builder().method("POST").uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(payload)))
            .map_err(|e| fail(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            fail(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ))
        })?;
        if status != 200 {
            return Err(ApiCallError::Remote {
                operation: operation.to_owned(),
                status,
                code: v["__type"].as_str().unwrap_or("UnknownError").to_owned(),
                message: v["message"]
                    .as_str()
                    .or_else(|| v["Message"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(v)
    }
}

/// The region of a function URL (`https://ID.lambda-url.REGION.on.aws/`),
/// which its signature must name, whatever the profile's region.
fn url_region(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let rest = host.split_once(".lambda-url.")?.1;
    rest.strip_suffix(".on.aws")
        .filter(|r| !r.is_empty() && !r.contains('.'))
}

/// The caller's credentials, as SigV4 signs with them.
async fn identity(
    aws: &aws_config::SdkConfig,
) -> Result<aws_smithy_runtime_api::client::identity::Identity, String> {
    let provider = aws
        .credentials_provider()
        .ok_or_else(|| "no AWS credentials configured".to_owned())?;
    let credentials =
        aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider)
            .await
            .map_err(|e| format!("no AWS credentials: {e}"))?;
    Ok(credentials.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_urls_region_is_read_from_its_host() {
        assert_eq!(
            url_region("https://abcdefghij.lambda-url.eu-west-1.on.aws/"),
            Some("eu-west-1")
        );
        assert_eq!(
            url_region("https://abcdefghij.lambda-url.us-gov-west-1.on.aws"),
            Some("us-gov-west-1")
        );
        assert_eq!(url_region("http://127.0.0.1:9000/lambda-url/lookup"), None);
        assert_eq!(url_region("https://example.com/"), None);
    }
}
