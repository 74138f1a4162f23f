//! Endpoints every HTTP listener serves: `GET /ready` and `GET /metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

/// Process-wide readiness: set once every listener accepts work.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

pub fn router(ready: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/ready",
            get(move || {
                let ready = ready.0.load(Ordering::SeqCst);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        )
        .route("/metrics", get(move || std::future::ready(metrics.render())))
}

/// The recorder all `metrics::` calls report to, installed once per process.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))
}
