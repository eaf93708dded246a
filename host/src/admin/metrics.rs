//! `GET /metrics`: the host's registry in the OpenMetrics text format, with the job and
//! store gauges read from storage first.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use crate::services::Services;
use crate::http_util::Body;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String)))]
pub async fn scrape(services: &Services) -> Response<Body> {
    let now = services.clock.now_millis();
    match services.storage.job_counts(now).await {
        Ok(counts) => services.metrics.set_jobs(&counts, now),
        // The other metrics are still worth a scrape; the job gauges keep their last values.
        Err(e) => tracing::warn!(error = %e, "job counts for the metrics could not be read"),
    }
    match services.storage.kv_usages().await {
        Ok(usages) => services.metrics.set_stores(&usages),
        Err(e) => tracing::warn!(error = %e, "store usage for the metrics could not be read"),
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", CONTENT_TYPE)
        .body(Full::new(Bytes::from(services.metrics.encode())))
        .expect("static response parts are valid")
}
