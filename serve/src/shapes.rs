//! The error bodies of every protocol tracekeeper speaks, written in one place: the
//! serving layer's refusals and the handlers' errors both come here, so a client reads
//! the same shape whichever of them answered. Each group of routes declares its shape
//! ([`crate::access::Declared`]).
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

impl Shape {
    /// OTLP's status, as routes declare it: written in the request's encoding.
    pub const OTLP: Shape = Shape::Otlp { json: false };

    /// The declared shape as written for one request: OTLP answers JSON to a JSON
    /// request and protobuf otherwise.
    pub fn resolve(self, request: &HeaderMap) -> Shape {
        match self {
            Shape::Otlp { .. } => {
                let content_type = request.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
                Shape::Otlp { json: content_type.contains("json") }
            }
            other => other,
        }
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
    fn otlp_errors_follow_the_request_encoding() {
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(Shape::OTLP.resolve(&json), Shape::Otlp { json: true });
        assert_eq!(Shape::OTLP.resolve(&HeaderMap::new()), Shape::Otlp { json: false });
        assert_eq!(Shape::Jaeger.resolve(&json), Shape::Jaeger);
        let (content_type, bytes) = body(Shape::Otlp { json: false }, StatusCode::UNAUTHORIZED, 16, "who are you");
        assert_eq!(content_type, "application/x-protobuf");
        let decoded = RpcStatus::decode(bytes.as_slice()).unwrap();
        assert_eq!((decoded.code, decoded.message.as_str()), (16, "who are you"));
        let (_, bytes) = body(Shape::Otlp { json: true }, StatusCode::UNAUTHORIZED, 16, "who are you");
        assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"code":16,"message":"who are you"}"#);
    }
}
