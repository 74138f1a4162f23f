//! Every way the query APIs can show a trace, its services or its operations: 27 probes
//! over Jaeger, Jaeger v3, Zipkin and Tempo.

use serde_json::Value;
use tracekeeper_model::{KeyValue, Span, TraceId};
use tracekeeper_storage::testing::span;

use super::Api;

/// One way to see a trace (and its service and operation) through the APIs.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    JaegerTrace,
    JaegerMultiGet,
    JaegerSearchByService,
    JaegerSearchByTag,
    JaegerServices,
    JaegerServiceOperations,
    JaegerOperations,
    JaegerDependencies,
    V3Trace,
    V3Search,
    V3Summaries,
    V3Services,
    V3Operations,
    ZipkinTrace,
    ZipkinTraceMany,
    ZipkinSearch,
    ZipkinServices,
    ZipkinSpanNames,
    ZipkinRemoteServices,
    ZipkinDependencies,
    ZipkinAutocomplete,
    TempoTrace,
    TempoTraceProtobuf,
    TempoSearchTraceql,
    TempoSearchTags,
    TempoTagValues,
    TempoTagValuesV2,
}

pub const PROBES: [Probe; 27] = [
    Probe::JaegerTrace,
    Probe::JaegerMultiGet,
    Probe::JaegerSearchByService,
    Probe::JaegerSearchByTag,
    Probe::JaegerServices,
    Probe::JaegerServiceOperations,
    Probe::JaegerOperations,
    Probe::JaegerDependencies,
    Probe::V3Trace,
    Probe::V3Search,
    Probe::V3Summaries,
    Probe::V3Services,
    Probe::V3Operations,
    Probe::ZipkinTrace,
    Probe::ZipkinTraceMany,
    Probe::ZipkinSearch,
    Probe::ZipkinServices,
    Probe::ZipkinSpanNames,
    Probe::ZipkinRemoteServices,
    Probe::ZipkinDependencies,
    Probe::ZipkinAutocomplete,
    Probe::TempoTrace,
    Probe::TempoTraceProtobuf,
    Probe::TempoSearchTraceql,
    Probe::TempoSearchTags,
    Probe::TempoTagValues,
    Probe::TempoTagValuesV2,
];

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn rfc3339(us: u64) -> String {
    let time = chrono::DateTime::from_timestamp_micros(us as i64).unwrap();
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn array_of_strings(body: &Value) -> Vec<String> {
    body.as_array().map_or(vec![], |a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map_or(vec![], |d| d.iter().filter_map(|t| t["traceID"].as_str().map(String::from)).collect())
}

fn strings(body: &Value, field: Option<&str>) -> Vec<String> {
    let items = body["data"].as_array().cloned().unwrap_or_default();
    items.iter().filter_map(|v| field.map_or(v, |f| &v[f]).as_str().map(String::from)).collect()
}

impl Probe {
    /// Does `api` show the trace `id` whose spans are `service`/`operation` calling
    /// `{service}-child`, with a search window from `start_us` to now (`end_us`)?
    pub async fn sees(
        self,
        api: &Api,
        id: TraceId,
        service: &str,
        operation: &str,
        (start_us, end_us): (u64, u64),
    ) -> bool {
        let hex = id.to_hex();
        let (end_ms, lookback_ms) = (end_us / 1000, (end_us - start_us) / 1000);
        let v3_window = format!("query.startTimeMin={}&query.startTimeMax={}", rfc3339(start_us), rfc3339(end_us));
        let zipkin_ids =
            |body: &Value| body.as_array().map_or(vec![], |t| t.iter().map(|t| t[0]["traceId"].clone()).collect());
        let v3_ids = |body: &Value| body.to_string().contains(&format!("\"traceId\":\"{hex}\""));
        let tempo_window = format!("start={}&end={}", start_us / 1_000_000, end_us / 1_000_000 + 1);
        let tempo_ids = |body: &Value| {
            body["traces"].as_array().map_or(vec![], |t| t.iter().map(|t| t["traceID"].clone()).collect())
        };
        match self {
            Probe::JaegerTrace => api.get(&format!("/api/traces/{hex}")).await.0 == 200,
            Probe::JaegerMultiGet => ids(&api.get(&format!("/api/traces?traceID={hex}")).await.1).contains(&hex),
            Probe::JaegerSearchByService => {
                let path = format!("/api/traces?service={service}&start={start_us}&limit=10");
                ids(&api.get(&path).await.1).contains(&hex)
            }
            Probe::JaegerSearchByTag => {
                let path = format!("/api/traces?tag=probe:{service}&start={start_us}&limit=10");
                ids(&api.get(&path).await.1).contains(&hex)
            }
            Probe::JaegerServices => strings(&api.get("/api/services").await.1, None).contains(&service.to_string()),
            Probe::JaegerServiceOperations => {
                let body = api.get(&format!("/api/services/{service}/operations")).await.1;
                strings(&body, None).contains(&operation.to_string())
            }
            Probe::JaegerOperations => {
                let body = api.get(&format!("/api/operations?service={service}")).await.1;
                strings(&body, Some("name")).contains(&operation.to_string())
            }
            Probe::JaegerDependencies => {
                let body = api.get(&format!("/api/dependencies?endTs={end_ms}&lookback={lookback_ms}")).await.1;
                strings(&body, Some("parent")).contains(&service.to_string())
            }
            Probe::V3Trace => api.get(&format!("/api/v3/traces/{hex}")).await.0 == 200,
            Probe::V3Search => {
                v3_ids(&api.get(&format!("/api/v3/traces?query.serviceName={service}&{v3_window}")).await.1)
            }
            Probe::V3Summaries => {
                let path = format!("/api/v3/trace-summaries?query.serviceName={service}&{v3_window}");
                v3_ids(&api.get(&path).await.1)
            }
            Probe::V3Services => {
                let body = api.get("/api/v3/services").await.1;
                array_of_strings(&body["services"]).contains(&service.to_string())
            }
            Probe::V3Operations => {
                let body = api.get(&format!("/api/v3/operations?service={service}")).await.1;
                body["operations"].to_string().contains(operation)
            }
            Probe::ZipkinTrace => api.get(&format!("/api/v2/trace/{hex}")).await.0 == 200,
            Probe::ZipkinTraceMany => {
                let body = api.get(&format!("/api/v2/traceMany?traceIds={hex},{}", "1".repeat(32))).await.1;
                zipkin_ids(&body).contains(&Value::String(id.to_jaeger_hex()))
            }
            Probe::ZipkinSearch => {
                let path = format!("/api/v2/traces?serviceName={service}&endTs={end_ms}&lookback={lookback_ms}");
                zipkin_ids(&api.get(&path).await.1).contains(&Value::String(id.to_jaeger_hex()))
            }
            Probe::ZipkinServices => {
                array_of_strings(&api.get("/api/v2/services").await.1).contains(&service.to_string())
            }
            Probe::ZipkinSpanNames => {
                array_of_strings(&api.get(&format!("/api/v2/spans?serviceName={service}")).await.1)
                    .contains(&operation.to_string())
            }
            Probe::ZipkinRemoteServices => {
                let path =
                    format!("/api/v2/remoteServices?serviceName={service}&endTs={end_ms}&lookback={lookback_ms}");
                array_of_strings(&api.get(&path).await.1).contains(&format!("{service}-peer"))
            }
            Probe::ZipkinDependencies => {
                let body = api.get(&format!("/api/v2/dependencies?endTs={end_ms}&lookback={lookback_ms}")).await.1;
                body.as_array().is_some_and(|links| links.iter().any(|l| l["parent"] == service))
            }
            Probe::ZipkinAutocomplete => {
                let body = api
                    .get(&format!("/api/v2/autocompleteValues?key=probe&endTs={end_ms}&lookback={lookback_ms}"))
                    .await
                    .1;
                array_of_strings(&body).contains(&service.to_string())
            }
            Probe::TempoTrace => api.get(&format!("/api/v2/traces/{hex}")).await.0 == 200,
            Probe::TempoTraceProtobuf => api.get_protobuf(&format!("/api/traces/{hex}")).await.0 == 200,
            Probe::TempoSearchTraceql => {
                let q = format!("{{ resource.service.name = \"{service}\" }} > {{ name = \"handle\" }}");
                let path = format!("/api/search?q={}&{tempo_window}", urlencode(&q));
                tempo_ids(&api.get(&path).await.1).contains(&Value::String(hex.clone()))
            }
            Probe::TempoSearchTags => {
                let path = format!("/api/search?tags={}&{tempo_window}", urlencode(&format!("probe={service}")));
                tempo_ids(&api.get(&path).await.1).contains(&Value::String(hex.clone()))
            }
            Probe::TempoTagValues => {
                let body = api.get(&format!("/api/search/tag/probe/values?{tempo_window}")).await.1;
                array_of_strings(&body["tagValues"]).contains(&service.to_string())
            }
            Probe::TempoTagValuesV2 => {
                let body = api.get(&format!("/api/v2/search/tag/resource.service.name/values?{tempo_window}")).await.1;
                body["tagValues"].as_array().is_some_and(|v| v.iter().any(|v| v["value"] == service))
            }
        }
    }
}

/// A trace every probe can see: a root span (tagged `probe`) calling a peer, and a child
/// in another service, an edge of the dependency graph.
pub fn trace(id: u8, service: &str, operation: &str, start: u64) -> Vec<Span> {
    let mut root = span(id, 1, service, operation, start);
    root.attributes.push(KeyValue::string("probe", service));
    root.attributes.push(KeyValue::string("peer.service", format!("{service}-peer")));
    let mut child = span(id, 2, &format!("{service}-child"), "handle", start);
    child.parent_span_id = Some(root.span_id);
    vec![root, child]
}
