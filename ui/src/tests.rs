use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use super::*;

fn api_not_found(path: &str) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "errors": [{ "code": 404, "msg": path }] }))).into_response()
}

fn app(enabled: bool, base: &str) -> Router {
    let api = Group::new(Declared::open(Shape::Text)).get("/api/services", || async { "services" }).done();
    let config = UiConfig { enabled, base_path: base.to_string(), multi_tenancy: true, auth: false };
    mount(api, &config, api_not_found).into_router()
}

async fn get_path(app: &Router, path: &str, headers: &[(&str, &str)]) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, to_bytes(body, usize::MAX).await.unwrap().to_vec())
}

#[tokio::test]
async fn deep_links_get_the_app_with_its_settings() {
    let app = app(true, "");
    for path in ["/", "/search?service=a&tags=x%3D1", "/trace/0123456789abcdef", "/compare/a/b", "/dependencies"] {
        let (status, headers, body) = get_path(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(&format!("/assets/{}/app.js", build_id())), "{html}");
        assert!(html.contains("&quot;multiTenancy&quot;:true"), "{html}");
        assert!(!html.contains("%ASSETS%") && !html.contains("%SETTINGS%"));
    }
}

#[tokio::test]
async fn unknown_api_paths_stay_json_404s_and_known_ones_answer() {
    let app = app(true, "");
    let (status, headers, body) = get_path(&app, "/api/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["errors"][0]["msg"], "/api/nope");
    let (status, _, body) = get_path(&app, "/api/services", &[]).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"services"[..]));
}

#[tokio::test]
async fn assets_are_compressed_cached_and_revalidated() {
    let app = app(true, "");
    let path = format!("/assets/{}/app.js", build_id());
    let (status, headers, gz) = get_path(&app, &path, &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    let (_, plain_headers, plain) = get_path(&app, &path, &[]).await;
    assert!(plain_headers.get(header::CONTENT_ENCODING).is_none());
    assert!(gz.len() < plain.len(), "gzip {} vs plain {}", gz.len(), plain.len());
    assert_eq!(plain, assets::find("app.js").unwrap().bytes);

    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let (status, _, body) = get_path(&app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (status, headers, _) = get_path(&app, "/assets/0000000000000000/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK, "a page from before an upgrade still loads");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let (status, _, _) = get_path(&app, &format!("/assets/{}/../../etc/passwd", build_id()), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_base_path_moves_the_app_and_the_apis_under_it() {
    let app = app(true, "/tracing");
    let (status, _, body) = get_path(&app, "/tracing/trace/abc", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains(&format!("/tracing/assets/{}/app.js", build_id())));
    assert!(html.contains("&quot;base&quot;:&quot;/tracing&quot;"));
    assert_eq!(get_path(&app, "/tracing/api/services", &[]).await.0, StatusCode::OK);
    let (status, _, body) = get_path(&app, "/tracing/api/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["errors"][0]["msg"], "/tracing/api/nope");
    assert_eq!(get_path(&app, &format!("/tracing/assets/{}/style.css", build_id()), &[]).await.0, StatusCode::OK);
    assert_eq!(get_path(&app, "/trace/abc", &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ui_can_be_turned_off() {
    let app = app(false, "");
    let (status, _, body) = get_path(&app, "/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8(body).unwrap().contains("--ui=false"));
    assert_eq!(get_path(&app, &format!("/assets/{}/app.js", build_id()), &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_path(&app, "/api/services", &[]).await.0, StatusCode::OK);
    let (status, headers, _) = get_path(&app, "/api/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
}

#[test]
fn base_paths_are_normalised_or_refused_by_name() {
    assert_eq!(normalize_base_path(""), Ok(String::new()));
    assert_eq!(normalize_base_path("/"), Ok(String::new()));
    assert_eq!(normalize_base_path("/tracing/"), Ok("/tracing".into()));
    assert_eq!(normalize_base_path("/a/b"), Ok("/a/b".into()));
    assert_eq!(normalize_base_path("tracing"), Err(BasePathError::NotAbsolute("tracing".into())));
    assert!(matches!(normalize_base_path("/a\"><script>"), Err(BasePathError::BadCharacter(_))));
    assert!(matches!(normalize_base_path("/a//b"), Err(BasePathError::BadCharacter(_))));
}
