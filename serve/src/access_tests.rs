//! Declared access over real sockets: each group's scope and error shape, the grant
//! handlers read their tenant from, and a route that fails closed outside the layer.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tower::ServiceExt;

use super::*;
use crate::auth::{sha256, Authenticator, Scope};
use crate::layer::Limits;
use crate::ServingConfig;

fn tokens_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (name, secret, tenants, scopes) in [
        ("reader", "r-secret", r#"["acme", "globex"]"#, r#"["read"]"#),
        ("writer", "w-secret", r#"["acme"]"#, r#"["write"]"#),
        ("ops", "o-secret", r#"["*"]"#, r#"["admin"]"#),
    ] {
        writeln!(
            file,
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\ntenants = {tenants}\nscopes = {scopes}\n",
            hex::encode(sha256(secret.as_bytes()))
        )
        .unwrap();
    }
    file
}

/// The tenant a handler sees, or "-" for none.
async fn tenant(request: axum::extract::Request) -> String {
    requested_tenant(request.extensions(), request.headers())
        .map_or("-".to_string(), |t| String::from_utf8_lossy(t).into_owned())
}

fn routes() -> Routes {
    Group::new(Declared::read(Shape::Jaeger))
        .get("/api/traces", tenant)
        .done()
        .merge(Group::new(Declared::write(Shape::OTLP)).post("/v1/traces", tenant).done())
        .merge(Group::new(Declared::admin(Shape::Text)).get("/metrics", || async { "metrics" }).done())
        .merge(
            Group::new(Declared::read(Shape::JaegerV3))
                .get("/api/v3/slow", || async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                })
                .done(),
        )
        .merge(Group::new(Declared::open(Shape::Text)).get("/ready", || async { "ready" }).done())
        .fallback(Declared::open(Shape::Text), || async { "the page" })
}

async fn serve(multi_tenant: bool) -> (std::net::SocketAddr, tempfile::NamedTempFile) {
    let file = tokens_file();
    let config = ServingConfig {
        tls: None,
        auth: Some(Arc::new(Authenticator::load(file.path(), multi_tenant).unwrap())),
        limits: Limits {
            request_timeout: Duration::from_millis(300),
            max_concurrent_requests: 16,
            header_read_timeout: Duration::from_secs(5),
        },
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let prepared = config.http(listener, "declared").unwrap();
    tokio::spawn(prepared.serve_http(routes(), std::future::pending()));
    (addr, file)
}

async fn call(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn each_group_needs_its_scope_and_refuses_in_its_shape() {
    let (addr, _file) = serve(true).await;
    let bearer = |secret: &str| format!("Bearer {secret}");
    let (reader, writer, ops) = (bearer("r-secret"), bearer("w-secret"), bearer("o-secret"));

    let (status, body) = call(addr, "GET", "/api/traces", &[]).await;
    let jaeger: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &jaeger["errors"][0]["code"]), (401, &serde_json::json!(401)), "{body}");
    let (status, body) = call(addr, "GET", "/api/traces", &[("authorization", &writer)]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("lack the read scope"), "{body}");
    let (status, body) =
        call(addr, "GET", "/api/traces", &[("authorization", &reader), ("x-scope-orgid", "globex")]).await;
    assert_eq!((status, body.as_str()), (200, "globex"));

    let (status, body) = call(addr, "POST", "/v1/traces", &[("content-type", "application/json")]).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"code":16,"message":"credentials required: send Authorization: Bearer <token>"}"#)
    );
    let (status, body) = call(addr, "POST", "/v1/traces", &[("authorization", &writer)]).await;
    assert_eq!((status, body.as_str()), (200, "acme"), "the only tenant of the credentials is granted");

    assert_eq!(call(addr, "GET", "/metrics", &[("authorization", &reader)]).await.0, 403);
    assert_eq!(call(addr, "GET", "/metrics", &[("authorization", &ops)]).await, (200, "metrics".to_string()));

    assert_eq!(call(addr, "GET", "/ready", &[]).await, (200, "ready".to_string()));
    assert_eq!(call(addr, "GET", "/any/page/ready", &[]).await, (200, "the page".to_string()));
    assert_eq!(call(addr, "GET", "/api/traces/ready", &[]).await.0, 200, "the fallback is open, and holds no data");

    let (status, body) =
        call(addr, "GET", "/api/v3/slow", &[("authorization", &reader), ("x-scope-orgid", "acme")]).await;
    let v3: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &v3["error"]["httpCode"]), (503, &serde_json::json!(503)), "a timeout in the route's shape");
}

#[tokio::test]
async fn a_claimed_tenant_header_is_not_what_handlers_see_unless_granted() {
    let (addr, _file) = serve(true).await;
    let writer = "Bearer w-secret";
    let (status, body) =
        call(addr, "POST", "/v1/traces", &[("authorization", writer), ("x-scope-orgid", "globex")]).await;
    assert_eq!(status, 403, "{body}");
    let (addr, _file) = serve(false).await;
    let (status, body) =
        call(addr, "POST", "/v1/traces", &[("authorization", writer), ("x-scope-orgid", "globex")]).await;
    assert_eq!((status, body.as_str()), (200, "globex"), "without multi-tenancy the header passes, unused by Tenancy");
}

#[tokio::test]
async fn a_route_that_needs_a_scope_fails_closed_outside_the_serving_layer() {
    let router = routes().into_router();
    let request = |path: &str| axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
    let response = router.clone().oneshot(request("/api/traces")).await.unwrap();
    assert_eq!(response.status(), 500);
    let response = router.oneshot(request("/ready")).await.unwrap();
    assert_eq!(response.status(), 200, "an open route needs nothing");
}

#[test]
fn the_table_names_every_route_with_its_declaration() {
    let table = routes().nest("/base").table().to_vec();
    let rows: Vec<(String, String, Declared)> =
        table.iter().map(|e| (e.method.to_string(), e.path.clone(), e.declared)).collect();
    assert_eq!(
        rows,
        vec![
            ("GET".into(), "/base/api/traces".into(), Declared::read(Shape::Jaeger)),
            ("POST".into(), "/base/v1/traces".into(), Declared::write(Shape::OTLP)),
            ("GET".into(), "/base/metrics".into(), Declared::admin(Shape::Text)),
            ("GET".into(), "/base/api/v3/slow".into(), Declared::read(Shape::JaegerV3)),
            ("GET".into(), "/base/ready".into(), Declared::open(Shape::Text)),
            ("GET".into(), "/base/*".into(), Declared::open(Shape::Text)),
        ]
    );
    assert_eq!(Declared::admin(Shape::Text).access, Access::Needs(Scope::Admin));
}
