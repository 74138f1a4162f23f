//! The web UI, served by tracekeeper itself on the query listener.
//!
//! - `{base}/assets/{build}/{file}`: the embedded files, gzip when the client takes
//!   it, cached for a year (the build id in the path changes with the files).
//! - `{base}/api/...` that no API answers: a JSON 404, never the app.
//! - every other path under `{base}`: the app's `index.html`, so deep links such as
//!   `/trace/{id}` survive a reload. It is revalidated on every load (`no-cache`).
//!
//! With a base path (`--ui-base-path /tracing`) the APIs move under it too, as Jaeger's
//! `--query.base-path` does, so a reverse proxy forwards one prefix unchanged.

mod assets;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tracekeeper_serve::{Declared, Group, Routes, Shape};

pub use assets::build_id;

/// How the UI is served.
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    /// Serve the UI at all (`--ui`).
    pub enabled: bool,
    /// Prefix of every path, without a trailing slash; empty at the root.
    pub base_path: String,
    /// Whether the server keeps tenants apart, so the UI offers a tenant picker.
    pub multi_tenancy: bool,
    /// Whether the APIs need credentials, so the UI asks for a token.
    pub auth: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BasePathError {
    #[error("ui-base-path {0:?} must start with '/' (for example /tracing)")]
    NotAbsolute(String),
    #[error("ui-base-path {0:?} may hold only letters, digits and - . _ ~ /")]
    BadCharacter(String),
}

/// Normalises `--ui-base-path`: "" or "/" is the root; otherwise a leading slash and
/// no trailing one. Only URL-safe characters, since the path is written into HTML.
pub fn normalize_base_path(text: &str) -> Result<String, BasePathError> {
    let trimmed = text.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err(BasePathError::NotAbsolute(text.to_string()));
    }
    if !trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c)) || trimmed.contains("//") {
        return Err(BasePathError::BadCharacter(text.to_string()));
    }
    Ok(trimmed.to_string())
}

/// The UI's page and files: open to anyone, since they hold no data (the page asks
/// for a token before it calls an API).
const OPEN: Declared = Declared::open(Shape::Text);

/// `api` with the UI added (or not, per `config`) and mounted under the base path.
/// `api_not_found` answers unknown `/api/...` paths in the APIs' own error shape.
pub fn mount(api: Routes, config: &UiConfig, api_not_found: fn(&str) -> Response) -> Routes {
    // Built once; each page answer shares the bytes.
    let index = config.enabled.then(|| Bytes::from(index_html(config)));
    let api =
        if config.enabled { api.merge(Group::new(OPEN).get("/assets/{build}/{*file}", asset).done()) } else { api };
    let base = config.base_path.clone();
    let app = api.fallback(OPEN, move |request: Request| {
        let (index, base) = (index.clone(), base.clone());
        async move { fallback(request, &base, index, api_not_found) }
    });
    if config.base_path.is_empty() {
        app
    } else {
        app.nest(&config.base_path)
    }
}

/// Unknown `/api` paths in the APIs' shape; any other path gets the app's page, or a
/// plain 404 when the UI is turned off (`index` is `None`).
fn fallback(request: Request, base: &str, index: Option<Bytes>, api_not_found: fn(&str) -> Response) -> Response {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return api_not_found(&format!("{base}{path}"));
    }
    let Some(index) = index else {
        return (StatusCode::NOT_FOUND, "not found: the web UI is turned off (--ui=false)").into_response();
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "the web UI answers GET only")
            .into_response();
    }
    let mut response = Response::new(Body::from(index));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(headers);
    response
}

fn security_headers(headers: &mut HeaderMap) {
    // Everything the app loads is its own: scripts, styles, and the APIs it calls.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// `index.html` with the base path, the build id and the server's settings filled in.
fn index_html(config: &UiConfig) -> String {
    let template = std::str::from_utf8(assets::find("index.html").map_or(&b""[..], |a| a.bytes)).unwrap_or_default();
    let settings = serde_json::json!({
        "base": config.base_path,
        "build": build_id(),
        "multiTenancy": config.multi_tenancy,
        "auth": config.auth,
        "version": env!("CARGO_PKG_VERSION"),
    });
    // The settings sit in an attribute: escape what would end it or start markup.
    let settings = settings.to_string().replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    template
        .replace("%ASSETS%", &format!("{}/assets/{}", config.base_path, build_id()))
        .replace("%BASE%", &config.base_path)
        .replace("%SETTINGS%", &settings)
}

async fn asset(Path((build, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(index) = assets::FILES.iter().position(|a| a.name == file && a.name != "index.html") else {
        return (StatusCode::NOT_FOUND, format!("no UI asset named {file:?}")).into_response();
    };
    let asset = &assets::FILES[index];
    let etag = format!("\"{}-{}\"", build_id(), index);
    let current = build == build_id();
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = if gzip { Body::from(assets::gzipped(index)) } else { Body::from(asset.bytes) };
    let mut response = Response::new(body);
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // A stale build id (a page loaded before an upgrade) still gets the files, but
    // they must not be cached under the old id for a year.
    let cache = if current { "public, max-age=31536000, immutable" } else { "no-cache" };
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests;
