//! `tracekeeper loadgen --query-bench N`: latency of the query paths people use most,
//! against data `loadgen` stored (services `service-0..9`, 1 span in 50 with
//! `http.status_code=500` and an error status, user ids `u0..u99999`). Stores one
//! 1,000-span trace first, then times each query N times in turn (searches, TraceQL
//! metrics, the tag APIs) and prints p50 and p99 per query. A benchmark: it asserts
//! nothing beyond the answers being well-formed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// (name, path) of each timed query; `{trace}` is the stored 1,000-span trace.
const QUERIES: [(&str, &str); 13] = [
    ("trace_by_id_1000_spans", "/api/traces/{trace}"),
    ("search_by_service", "/api/traces?service=service-3&limit=20"),
    ("search_by_tag", "/api/traces?tag=http.status_code:500&limit=20"),
    ("search_by_duration", "/api/traces?minDuration=5ms&limit=20"),
    ("search_service_and_duration", "/api/traces?service=service-7&minDuration=4ms&limit=20"),
    // Spans last 20 µs to 5.02 ms: about 1 in 40 of a service's spans pass, so most
    // candidate traces fail.
    ("search_service_and_rare_duration", "/api/traces?service=service-7&minDuration=4900us&limit=20"),
    (
        "traceql_two_conditions",
        "/api/search?q=%7B%20resource.service.name%20%3D%20%22service-2%22%20%26%26%20span.http.status_code%20%3D%20500%20%7D&limit=20",
    ),
    // TraceQL metrics over the last hour at a 60 s step, and the editors' tag APIs.
    ("traceql_rate_by_service_1h", "/api/metrics/query_range?q=%7B%20%7D%20%7C%20rate%28%29%20by%20%28resource.service.name%29&since=1h&step=60s"),
    ("traceql_error_p99_by_name_1h", "/api/metrics/query_range?q=%7B%20status%20%3D%20error%20%7D%20%7C%20quantile_over_time%28duration%2C%20.99%29%20by%20%28name%29&since=1h&step=60s"),
    // A filter the per-minute cells do not keep: the spans of the ~100 traces with
    // that user are read.
    ("traceql_rate_rare_attribute_1h", "/api/metrics/query_range?q=%7B%20span.user.id%20%3D%20%22u4242%22%20%7D%20%7C%20rate%28%29%20by%20%28resource.service.name%29&since=1h&step=60s"),
    // Drilldown's default chart, at its step for an hour on a 64-point panel: past
    // 50,000 traces, answered from the cells at whole minutes.
    ("traceql_drilldown_roots_rate_1h", "/api/metrics/query_range?q=%7BnestedSetParent%3C0%20%26%26%20true%7D%20%7C%20rate%28%29%20%20with%28sample%3Dtrue%29&since=1h&step=56s"),
    ("tag_names_v2", "/api/v2/search/tags"),
    ("tag_values_filtered", "/api/v2/search/tag/span.http.route/values?q=%7B%20resource.service.name%20%3D%20%22service-2%22%20%26%26%20span.http.status_code%20%3D%20500%20%7D"),
];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

pub async fn measure(query: &str, trace_id: &str, iterations: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); QUERIES.len()];
    let mut results: Vec<usize> = vec![0; QUERIES.len()];
    for _ in 0..iterations {
        for (i, (name, path)) in QUERIES.iter().enumerate() {
            let url = format!("{query}{}", path.replace("{trace}", trace_id));
            let t = Instant::now();
            let response = client.get(&url).send().await.with_context(|| format!("{name}: GET {url}"))?;
            let status = response.status();
            // Latency is to the last byte; parsing is the client's business.
            let bytes = response.bytes().await.with_context(|| format!("{name}: reading"))?;
            latencies[i].push(t.elapsed());
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{name}: the answer is not JSON"))?;
            if !status.is_success() {
                bail!("{name}: {status}: {body}");
            }
            let found = ["data", "traces", "series", "scopes", "tagValues"]
                .iter()
                .find_map(|key| body[*key].as_array())
                .map_or(0, Vec::len);
            results[i] = found;
        }
    }
    for (i, (name, _)) in QUERIES.iter().enumerate() {
        latencies[i].sort();
        println!(
            "query={name} iterations={iterations} results={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            results[i],
            percentile(&latencies[i], 0.5),
            percentile(&latencies[i], 0.99),
            latencies[i].last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
    }
    Ok(())
}
