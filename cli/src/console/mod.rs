//! `trailkeep console` (docs/console.md): CloudTrail's Event history and
//! Trails pages for a deployed stack, served on 127.0.0.1 by the caller's
//! own process. Every request to the API is signed here with the caller's
//! credentials (as `lookup-events` signs them): no credential reaches the
//! browser, and nothing new is exposed on AWS.
//!
//! Pages are rendered on the server from templates that escape HTML, so the
//! table, the filter, "load more" and the downloads work without
//! JavaScript; `console.js` only appends pages in place and shows local
//! times. A hostile web page open in the same browser must not read the
//! console: requests must name the console's own host (no DNS rebinding)
//! and a POST must come from its own pages (no cross-site requests).

mod events;
mod trails;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use serde_json::Value;

use crate::api_client::{ApiCallError, ApiClient};
use crate::validate::SigningKeys;

/// `trailkeep console`'s flags (the API's URL is the global --api-url).
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// The port on 127.0.0.1 (default: a free one; printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A local stack's API, instead of the global --api-url.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The regions the region selector offers, the first shown first: the
    /// stack's ServedRegions (default: the API's own region).
    #[arg(long, env = "TRAILKEEP_REGIONS", value_delimiter = ',')]
    regions: Vec<String>,
    /// The keys "Validate now" trusts (as validate-logs takes them).
    #[command(flatten)]
    signing: SigningKeys,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("pass --api-url (TRAILKEEP_API_URL, stack output ApiUrl) or --endpoint-url")]
    NoApi,
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
}

impl ConsoleError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoApi => 252,
            Self::Api(e) => e.exit_code(),
            Self::Listen { .. } => 255,
        }
    }
}

/// What every handler shares.
pub(crate) struct App {
    api: ApiClient,
    regions: Vec<String>,
    state_table: String,
    signing: SigningKeys,
    /// `127.0.0.1:PORT` and `localhost:PORT`: the only hosts answered.
    hosts: [String; 2],
    pages: minijinja::Environment<'static>,
    validations: trails::Validations,
}

const CSS: &str = include_str!("static/console.css");
const JS: &str = include_str!("static/console.js");

/// The templates, escaping HTML (by their `.html` names).
fn pages() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("events.html", include_str!("templates/events.html")),
        ("rows.html", include_str!("templates/rows.html")),
        ("more.html", include_str!("templates/more.html")),
        ("trails.html", include_str!("templates/trails.html")),
        ("validation.html", include_str!("templates/validation.html")),
    ] {
        // The templates are part of the binary: a syntax error fails its
        // tests (`every_page_renders`), never a user.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!("template {name}: {e}");
        }
    }
    env
}

impl App {
    /// A page, or the template's error as a 500 (never a user's fault).
    fn render(&self, name: &str, ctx: impl serde::Serialize) -> Response {
        match self.pages.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!("rendering {name}: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response()
            }
        }
    }

    async fn call(&self, operation: &str, body: &Value) -> Result<Value, String> {
        self.api.call(operation, body).await.map_err(api_message)
    }
}

/// An API error as the API names it: `Code: message`.
fn api_message(e: ApiCallError) -> String {
    match e {
        ApiCallError::Remote { code, message, .. } => format!("{code}: {message}"),
        ApiCallError::Http { .. } => format!("The API did not answer: {e}"),
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/events") }))
        .route("/events", get(events::page))
        .route("/events/rows", get(events::rows))
        .route("/download", get(events::download))
        .route("/trails", get(trails::page))
        .route("/trails/validate", post(trails::validate))
        .route("/validations/{id}", get(trails::validation))
        .route(
            "/static/console.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route(
            "/static/console.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, format!("{kind}; charset=utf-8"))],
        body,
    )
        .into_response()
}

/// Refuses what a hostile page in the same browser could send: a request
/// for another host name (DNS rebinding makes `evil.example` resolve to
/// 127.0.0.1 and read the answers as its own), and a POST from another
/// origin. Adds headers that keep the pages out of frames, scripts to the
/// console's own, and answers out of caches.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(refused) = refusal(&app, &req) {
        return (StatusCode::FORBIDDEN, refused).into_response();
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not no-referrer: with it, Chromium sends `Origin: null` on the
        // console's own form posts, which the guard refuses.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why `guard` refuses a request, if it does.
fn refusal(app: &App, req: &Request) -> Option<&'static str> {
    let header_of = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host = header_of("host").unwrap_or_default();
    if !app.hosts.iter().any(|h| h == host) {
        return Some("not this console's host name");
    }
    let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
    if !is_get
        && header_of("origin")
            .is_some_and(|o| !app.hosts.iter().any(|h| o == format!("http://{h}")))
    {
        return Some("a request from another site");
    }
    // What another site's page makes the browser send (an <img>, a fetch,
    // a form) is refused: each request costs API calls made with your
    // credentials. Only following a link to a page is let in.
    if matches!(
        header_of("sec-fetch-site"),
        Some("cross-site" | "same-site")
    ) {
        let navigation = is_get && header_of("sec-fetch-mode") == Some("navigate");
        let page = matches!(req.uri().path(), "/" | "/events" | "/trails");
        if !(navigation && page) {
            return Some("a request from another site");
        }
    }
    None
}

/// Serves until the process is stopped.
pub async fn run(
    api_url: String,
    state_table: String,
    args: ConsoleArgs,
) -> Result<(), ConsoleError> {
    let url = args.endpoint_url.unwrap_or(api_url);
    if url.is_empty() {
        return Err(ConsoleError::NoApi);
    }
    let api = ApiClient::new(&url).await?;
    let regions = if args.regions.is_empty() {
        vec![api.region()]
    } else {
        args.regions
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|source| ConsoleError::Listen {
            port: args.port,
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| ConsoleError::Listen {
            port: args.port,
            source,
        })?
        .port();
    let app = Arc::new(App {
        api,
        regions,
        state_table,
        signing: args.signing,
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        pages: pages(),
        validations: trails::Validations::default(),
    });
    println!("trailkeep console: http://127.0.0.1:{port}/ (API {url}; Ctrl-C stops it)");
    axum::serve(listener, router(app))
        .await
        .map_err(|source| ConsoleError::Listen { port, source })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// An app whose API is nowhere (pages that need no call, and guards).
    pub(crate) async fn app() -> Arc<App> {
        Arc::new(App {
            api: ApiClient::new("http://127.0.0.1:9/").await.unwrap(),
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            state_table: String::new(),
            signing: SigningKeys::default(),
            hosts: ["127.0.0.1:8800".into(), "localhost:8800".into()],
            pages: pages(),
            validations: trails::Validations::default(),
        })
    }

    async fn send(req: axum::http::Request<axum::body::Body>) -> Response {
        router(app().await).oneshot(req).await.unwrap()
    }

    fn request(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> axum::http::Request<axum::body::Body> {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn another_host_name_is_refused_whatever_it_asks_for() {
        for host in ["evil.example", "evil.example:8800", "127.0.0.1:8801", ""] {
            for path in ["/events", "/static/console.js", "/trails"] {
                let r = send(request("GET", path, &[("host", host)])).await;
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{host} {path}");
            }
        }
        let r = send(request(
            "GET",
            "/static/console.css",
            &[("host", "localhost:8800")],
        ))
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    }

    #[tokio::test]
    async fn a_post_from_another_site_is_refused() {
        let host = ("host", "127.0.0.1:8800");
        for extra in [
            ("origin", "http://evil.example"),
            ("origin", "http://127.0.0.1:8801"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let r = send(request("POST", "/trails/validate", &[host, extra])).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{extra:?}");
        }
        // Its own origin gets past the guard, to the form's own answer.
        let mut own = request(
            "POST",
            "/trails/validate",
            &[
                host,
                ("origin", "http://127.0.0.1:8800"),
                ("sec-fetch-site", "same-origin"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
        );
        *own.body_mut() = axum::body::Body::from("trail=t&start=yesterday&end=now");
        let r = send(own).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn another_site_may_link_to_a_page_but_not_make_the_browser_fetch_one() {
        let host = ("host", "127.0.0.1:8800");
        for (path, site, mode) in [
            ("/download?format=csv", "cross-site", "no-cors"),
            ("/download?format=csv", "cross-site", "navigate"),
            ("/events/rows", "same-site", "cors"),
            ("/events", "cross-site", "no-cors"),
        ] {
            let r = send(request(
                "GET",
                path,
                &[host, ("sec-fetch-site", site), ("sec-fetch-mode", mode)],
            ))
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {site} {mode}");
        }
        // A link followed to a page: served (here the API is nowhere, so
        // the page says so, but it is the page, not the guard).
        let r = send(request(
            "GET",
            "/trails",
            &[
                host,
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
            ],
        ))
        .await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn every_page_renders_and_escapes() {
        let app = app().await;
        let evil = "<b>x</b>";
        let finding =
            serde_json::json!({"kind": "Log", "location": evil, "problem": evil, "account": ""});
        for (name, ctx) in [
            (
                "trails.html",
                minijinja::context! {
                    title => "Trails", error => Some(evil), default_start => "s", default_end => "e",
                    validations => vec![(1, evil, "running")],
                    trails => vec![serde_json::json!({
                        "name": evil, "arn": evil, "home_region": evil, "bucket": evil, "prefix": evil,
                        "multi_region": true, "organization": false, "validation": true, "logging": true,
                        "latest_delivery": evil, "delivery_error": evil, "latest_digest": null,
                        "digest_error": "", "status_error": evil,
                    })],
                },
            ),
            (
                "validation.html",
                minijinja::context! {
                    title => "Validation", id => 1, trail => evil, start => "s", end => "e",
                    status => "INVALID", checked => 1, listed => 2, with_account => false,
                    findings => vec![finding], summary => Some(evil), error => Some(evil),
                },
            ),
        ] {
            let html = app.pages.get_template(name).unwrap().render(ctx).unwrap();
            assert!(!html.contains(evil), "{name}: {html}");
            assert!(html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"), "{name}");
        }
    }
}
