//! The dashboard: the static files of `web-ui/`, embedded in the binary and served at `/`.
//!
//! Any path that is not a file and does not look like one gets `index.html`, so the
//! dashboard's own routes (`/targets/{ns}/{kind}/{name}`) survive a reload or a shared link.
//! Files are embedded in debug builds too (`debug-embed`), so tests serve exactly what ships.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::{EmbeddedFile, RustEmbed};

/// The files of `web-ui/`, without the developer fixtures, tests, notes and node metadata.
#[derive(RustEmbed)]
#[folder = "web-ui/"]
#[exclude = "dev/*"]
#[exclude = "tests/*"]
#[exclude = "*.md"]
#[exclude = "package.json"]
struct Assets;

/// Content-Security-Policy of every dashboard response: same-origin only, no inline scripts.
/// Inline styles stay allowed because the charting library positions its elements with them.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Vendored files live under a versioned directory, so their URL changes whenever their content does.
const IMMUTABLE_PREFIX: &str = "vendor/";

/// The dashboard router; mount it as the fallback of the hub's router.
pub fn router() -> Router {
    Router::new().fallback(serve)
}

/// Whether a file with this path is embedded (used by tests and the demo's start-up check).
pub fn has_asset(path: &str) -> bool {
    Assets::get(path).is_some()
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        // An unknown API path must answer like the API (JSON), never with the dashboard's HTML.
        let body = r#"{"error":"no such API endpoint","code":404}"#;
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response().with_status(StatusCode::NOT_FOUND);
    }
    let (name, file) = match lookup(path) {
        Some(found) => found,
        None => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if name.starts_with(IMMUTABLE_PREFIX) {
        "public, max-age=31536000, immutable"
    } else {
        // Unversioned names: revalidate every time; the ETag makes that a cheap 304.
        "no-cache"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CONTENT_SECURITY_POLICY, CSP);
    if not_modified {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder.body(Body::empty()).unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    builder = builder.header(header::CONTENT_TYPE, content_type(&name, &file));
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(file.data.into_owned()) };
    builder.body(body).unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

/// The embedded file for a request path: the file itself, or `index.html` for app routes.
fn lookup(path: &str) -> Option<(String, EmbeddedFile)> {
    if path.is_empty() || path.ends_with('/') {
        return Assets::get("index.html").map(|f| ("index.html".to_owned(), f));
    }
    if let Some(file) = Assets::get(path) {
        return Some((path.to_owned(), file));
    }
    // A missing `/app.js` or `/vendor/x.css` is a 404, not the HTML page (which browsers would
    // then fail to parse as a script); only extension-less paths are app routes.
    let last = path.rsplit('/').next().unwrap_or(path);
    if last.contains('.') && !path.starts_with("targets/") {
        return None;
    }
    Assets::get("index.html").map(|f| ("index.html".to_owned(), f))
}

fn content_type(name: &str, file: &EmbeddedFile) -> String {
    let mime = file.metadata.mimetype();
    // Text types get an explicit charset so no browser sniffs one.
    if (mime.starts_with("text/") || mime == "application/javascript" || mime == "application/json")
        && !mime.contains("charset")
    {
        return format!("{mime}; charset=utf-8");
    }
    if mime == "application/octet-stream" && name.ends_with(".mjs") {
        return "text/javascript; charset=utf-8".to_owned();
    }
    mime.to_owned()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response().with_status(status)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `with_status` on a response, for readable one-liners above.
trait WithStatus {
    fn with_status(self, status: StatusCode) -> Self;
}

impl WithStatus for Response {
    fn with_status(mut self, status: StatusCode) -> Self {
        *self.status_mut() = status;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn text(res: Response) -> String {
        let body = axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn root_serves_the_dashboard_page() {
        let res = get("/", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(text(res).await.contains("<title>scalehub</title>"));
    }

    #[tokio::test]
    async fn target_routes_fall_back_to_the_page() {
        let res = get("/targets/shop/Deployment/web", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(text(res).await.contains("<title>scalehub</title>"));
        // Names with dots are valid Kubernetes names, and still app routes.
        let res = get("/targets/shop/Deployment/web.v2", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn scripts_and_styles_have_their_content_types() {
        let res = get("/js/main.js", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        let res = get("/app.css", &[]).await;
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
    }

    #[tokio::test]
    async fn vendored_files_are_cached_for_good() {
        let res = get("/vendor/uplot-1.6.32/uPlot.esm.js", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    }

    #[tokio::test]
    async fn a_matching_etag_is_answered_with_304() {
        let res = get("/js/main.js", &[]).await;
        let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
        let res = get("/js/main.js", &[("if-none-match", &etag)]).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(text(res).await, "");
    }

    #[tokio::test]
    async fn missing_files_are_404_not_the_page() {
        let res = get("/js/nope.js", &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = get("/api/v1/nope", &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn developer_fixtures_are_not_embedded() {
        assert!(has_asset("index.html"));
        assert!(!has_asset("README.md"));
        assert!(!has_asset("package.json"));
        assert!(!Assets::iter().any(|p| p.starts_with("dev/") || p.starts_with("tests/")));
    }

    #[tokio::test]
    async fn writes_are_refused_with_405() {
        let req = Request::post("/").body(Body::empty()).unwrap();
        let res = router().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn responses_carry_a_strict_content_security_policy() {
        let res = get("/", &[]).await;
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
