//! The error bodies of every protocol tracekeeper speaks, written in one place: the
//! serving layer's refusals and the handlers' errors both come here, so a client reads
//! the same shape whichever of them answered.
//!
//! | where | shape |
//! |---|---|
//! | OTLP/HTTP | a `google.rpc.Status`, protobuf or JSON like the request |
//! | OTLP/gRPC | a trailers-only gRPC status (the layer writes it) |
//! | Jaeger's `/api/...` | `{"data":null,...,"errors":[{"code","msg"}]}` |
//! | Jaeger's `/api/v3/...` | `{"error":{"httpCode","message"}}` |
//! | Zipkin, Tempo, the admin endpoints, the web UI | the message as plain text |

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use prost::Message;

/// How an error is written on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    /// OTLP's `Status`; JSON when the request was JSON, else protobuf.
    Otlp {
        json: bool,
    },
    Jaeger,
    JaegerV3,
}

/// The `google.rpc.Status` message OTLP error bodies carry (opentelemetry-proto does
/// not ship it).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The shape of errors on `path` of `listener`, given the request's headers.
pub fn shape_for(listener: &str, path: &str, request: &HeaderMap) -> Shape {
    match listener {
        "otlp-http" => {
            let content_type = request.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            Shape::Otlp { json: content_type.contains("json") }
        }
        "query" => query_shape(path),
        _ => Shape::Text,
    }
}

/// The query listener serves four APIs side by side; each keeps its own error shape.
fn query_shape(path: &str) -> Shape {
    let Some(at) = path.find("/api/") else { return Shape::Text };
    let api = &path[at..];
    let tempo = ["/api/echo", "/api/search", "/api/v2/search", "/api/status/buildinfo", "/api/v2/traces/"];
    if api.starts_with("/api/v3/") {
        Shape::JaegerV3
    } else if api.starts_with("/api/v2/") || tempo.iter().any(|p| api.starts_with(p)) {
        Shape::Text
    } else {
        Shape::Jaeger
    }
}

/// The body and its content type for an error of `status` (gRPC code `grpc_code`).
pub fn body(shape: Shape, status: StatusCode, grpc_code: i32, message: &str) -> (HeaderValue, Vec<u8>) {
    match shape {
        Shape::Text => (HeaderValue::from_static("text/plain; charset=utf-8"), format!("{message}\n").into_bytes()),
        Shape::Otlp { json } => {
            let status = RpcStatus { code: grpc_code, message: message.to_string() };
            if json {
                let bytes = serde_json::to_vec(&status).unwrap_or_default();
                (HeaderValue::from_static("application/json"), bytes)
            } else {
                (HeaderValue::from_static("application/x-protobuf"), status.encode_to_vec())
            }
        }
        Shape::Jaeger => {
            let body = serde_json::json!({
                "data": null, "total": 0, "limit": 0, "offset": 0,
                "errors": [{"code": status.as_u16(), "msg": message}],
            });
            (HeaderValue::from_static("application/json"), body.to_string().into_bytes())
        }
        Shape::JaegerV3 => {
            let body = serde_json::json!({"error": {"httpCode": status.as_u16(), "message": message}});
            (HeaderValue::from_static("application/json"), body.to_string().into_bytes())
        }
    }
}

/// An axum response of `status` in `shape`.
pub fn response(shape: Shape, status: StatusCode, grpc_code: i32, message: &str) -> axum::response::Response {
    let (content_type, bytes) = body(shape, status, grpc_code, message);
    let mut response = axum::response::Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_api_on_the_query_listener_keeps_its_shape() {
        let none = HeaderMap::new();
        for (path, shape) in [
            ("/api/traces/abc", Shape::Jaeger),
            ("/api/services", Shape::Jaeger),
            ("/api/dependencies", Shape::Jaeger),
            ("/jaeger/api/traces", Shape::Jaeger),
            ("/api/v3/traces/abc", Shape::JaegerV3),
            ("/api/v2/trace/abc", Shape::Text),
            ("/api/v2/traces/abc", Shape::Text),
            ("/api/search", Shape::Text),
            ("/api/v2/search/tags", Shape::Text),
            ("/search", Shape::Text),
        ] {
            assert_eq!(shape_for("query", path, &none), shape, "{path}");
        }
    }

    #[test]
    fn otlp_errors_follow_the_request_encoding() {
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(shape_for("otlp-http", "/v1/traces", &json), Shape::Otlp { json: true });
        assert_eq!(shape_for("otlp-http", "/v1/traces", &HeaderMap::new()), Shape::Otlp { json: false });
        let (content_type, bytes) = body(Shape::Otlp { json: false }, StatusCode::UNAUTHORIZED, 16, "who are you");
        assert_eq!(content_type, "application/x-protobuf");
        let decoded = RpcStatus::decode(bytes.as_slice()).unwrap();
        assert_eq!((decoded.code, decoded.message.as_str()), (16, "who are you"));
        let (_, bytes) = body(Shape::Otlp { json: true }, StatusCode::UNAUTHORIZED, 16, "who are you");
        assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"code":16,"message":"who are you"}"#);
    }
}
