//! `tracekeeper loadgen --freshness-probes N`: how long after the acknowledgement a
//! trace becomes findable by search. Each probe is a one-span trace with a unique tag;
//! once a collector (or all-in-one) acknowledges it, the query API is polled for it
//! every 10 ms. Run it next to a steady load to measure freshness under load.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SERVICE: &str = "freshness-probe";

fn probe(run: u64, seq: u64) -> (Vec<u8>, String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as u64;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&run.to_be_bytes());
    trace_id[8..].copy_from_slice(&seq.to_be_bytes());
    let tag = format!("{run:x}-{seq}");
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    };
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: (seq | 1 << 63).to_be_bytes().to_vec(),
        name: "probe".into(),
        kind: 2,
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        attributes: vec![kv("probe.id", &tag)],
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", SERVICE)], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    };
    (request.encode_to_vec(), tag)
}

/// Sends `probes` probes, one every `interval`, and prints freshness percentiles.
pub async fn measure(endpoint: &str, query: &str, probes: usize, interval: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let mut lags = Vec::with_capacity(probes);
    let started = Instant::now();
    // (lag, seconds into the run): where the slowest probes fell.
    let mut when: Vec<(Duration, f64)> = Vec::with_capacity(probes);
    for seq in 0..probes as u64 {
        let next = Instant::now() + interval;
        let (body, tag) = probe(run, seq);
        let resp = client
            .post(endpoint)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .context("sending a probe")?;
        if !resp.status().is_success() {
            bail!("a probe was refused: {}", resp.status());
        }
        let acked = Instant::now();
        let tags = format!(r#"{{"probe.id":"{tag}"}}"#);
        let deadline = acked + Duration::from_secs(60);
        loop {
            let found: serde_json::Value = client
                .get(format!("{query}/api/traces"))
                .query(&[("service", SERVICE), ("tags", tags.as_str()), ("limit", "1")])
                .send()
                .await?
                .json()
                .await?;
            if found["data"].as_array().is_some_and(|d| !d.is_empty()) {
                lags.push(acked.elapsed());
                when.push((acked.elapsed(), acked.duration_since(started).as_secs_f64()));
                break;
            }
            if Instant::now() > deadline {
                bail!("probe {tag} was not searchable within 60 s of its acknowledgement");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep_until(next.into()).await;
    }
    lags.sort();
    when.sort_by_key(|w| std::cmp::Reverse(w.0));
    let slowest: Vec<String> =
        when.iter().take(5).map(|(lag, at)| format!("{:.0}ms@{at:.1}s", lag.as_secs_f64() * 1e3)).collect();
    println!("slowest probes (latency@seconds into the run): {}", slowest.join(" "));
    let at = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "probes={} freshness_p50_ms={:.0} freshness_p99_ms={:.0} freshness_max_ms={:.0}",
        lags.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
