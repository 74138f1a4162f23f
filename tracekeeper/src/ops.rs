//! Endpoints every HTTP listener serves: `GET /ready` and `GET /metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

use crate::telemetry::{self, Role};

/// A check of something the process cannot work without; `Err` says what is wrong.
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Process-wide readiness: set once every listener accepts work, and withdrawn while
/// the health check (if any) fails.
#[derive(Clone, Default)]
pub struct Readiness {
    listening: Arc<AtomicBool>,
    health: Option<HealthCheck>,
}

impl Readiness {
    pub fn set_ready(&self) {
        self.listening.store(true, Ordering::SeqCst);
    }

    /// Makes `/ready` answer 503, with the check's message, while `check` fails.
    pub fn with_health(mut self, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.health = Some(Arc::new(check));
        self
    }

    /// The answer of `/ready`, also kept in the `tracekeeper_ready` gauge.
    fn status(&self) -> (StatusCode, String) {
        let answer = if !self.listening.load(Ordering::SeqCst) {
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
        } else {
            match self.health.as_ref().map_or(Ok(()), |check| check()) {
                Ok(()) => (StatusCode::OK, "ready\n".into()),
                Err(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {problem}\n")),
            }
        };
        metrics::gauge!(telemetry::READY).set(if answer.0 == StatusCode::OK { 1.0 } else { 0.0 });
        answer
    }
}

/// `/ready` is open, for probes that carry no credentials; `/metrics` needs `admin`.
pub fn router(ready: Readiness, metrics: PrometheusHandle) -> Routes {
    let probe = ready.clone();
    Group::new(Declared::open(Shape::Text)).get("/ready", move || std::future::ready(probe.status())).done().merge(
        Group::new(Declared::admin(Shape::Text))
            .get("/metrics", move || {
                // A scrape sees readiness as of now, not as of the last probe.
                ready.status();
                std::future::ready(metrics.render())
            })
            .done(),
    )
}

/// The recorder all `metrics::` calls report to, installed by the first role that
/// runs in the process (a test may run several), with `role`'s metrics described and
/// created at zero ([`telemetry::register`]).
/// Every histogram tracekeeper records is a duration in seconds, exported with buckets
/// (never as a summary), so that it aggregates across replicas; the span metrics'
/// duration is in milliseconds, with the spanmetrics connector's buckets.
pub fn metrics_for(role: Role) -> anyhow::Result<PrometheusHandle> {
    use metrics_exporter_prometheus::Matcher;
    use tracekeeper_indexer::red;
    static INSTALLED: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handle = match INSTALLED.get() {
        Some(handle) => handle.clone(),
        None => {
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(tracekeeper_serve::DURATION_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(red::DURATION.into()), red::DURATION_BUCKETS_MS))
                .map_err(|e| anyhow::anyhow!("configuring the histogram buckets: {e}"))?
                .install_recorder()
                .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
            tokio::spawn(keep_metrics_up(handle.clone(), METRICS_UPKEEP_EVERY));
            INSTALLED.get_or_init(|| handle).clone()
        }
    };
    telemetry::register(role);
    Ok(handle)
}

/// How often the recorder folds recorded histogram samples into their buckets.
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample until a scrape or an upkeep folds it into
/// the buckets; `install_recorder` runs no upkeep of its own. A process nobody scraped
/// kept every span's duration sample: 124 MB after 8M spans (heaptrack), and 2.5 GiB
/// peak RSS after loading 100M spans into all-in-one.
async fn keep_metrics_up(handle: PrometheusHandle, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Samples folded in by the upkeep are all still counted by the next scrape.
    #[tokio::test(start_paused = true)]
    async fn metrics_upkeep_keeps_every_sample() {
        let recorder =
            metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&[0.5, 1.0]).unwrap().build_recorder();
        let handle = recorder.handle();
        let record = |n: usize| {
            metrics::with_local_recorder(&recorder, || {
                for _ in 0..n {
                    metrics::histogram!("upkeep_test_seconds").record(0.25);
                }
            })
        };
        record(1_000);
        let upkeep = tokio::spawn(keep_metrics_up(handle.clone(), METRICS_UPKEEP_EVERY));
        tokio::time::sleep(METRICS_UPKEEP_EVERY * 2).await;
        record(500);
        tokio::time::sleep(METRICS_UPKEEP_EVERY * 2).await;
        upkeep.abort();
        let text = handle.render();
        assert!(text.contains("upkeep_test_seconds_count 1500"), "{text}");
        assert!(text.contains("upkeep_test_seconds_bucket{le=\"0.5\"} 1500"), "{text}");
    }

    async fn ready_answer(ready: Readiness) -> (u16, String) {
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let prepared = tracekeeper_serve::ServingConfig::default().http(listener, "ops").unwrap();
        let server = tokio::spawn(prepared.serve_http(router(ready, metrics), std::future::pending()));
        let response = reqwest::get(format!("http://{addr}/ready")).await.unwrap();
        let answer = (response.status().as_u16(), response.text().await.unwrap());
        server.abort();
        answer
    }

    #[tokio::test]
    async fn ready_follows_listeners_then_health() {
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&healthy);
        let ready = Readiness::default().with_health(move || {
            if flag.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("the disk is full".into())
            }
        });
        assert_eq!(ready_answer(ready.clone()).await, (503, "starting\n".into()));
        ready.set_ready();
        assert_eq!(ready_answer(ready.clone()).await, (200, "ready\n".into()));
        healthy.store(false, Ordering::SeqCst);
        assert_eq!(ready_answer(ready.clone()).await, (503, "not ready: the disk is full\n".into()));
        healthy.store(true, Ordering::SeqCst);
        assert_eq!(ready_answer(ready).await, (200, "ready\n".into()));
    }
}
