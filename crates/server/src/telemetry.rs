//! Prometheus: the exporter (installed once per process), `GET /metrics` in the exposition
//! format, and the HTTP middleware that times every request. Names start with `langguard_`;
//! labels are bounded (routes are the router's patterns, not raw paths).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::Digest;
use tracing::Instrument;

use crate::error::ApiError;
use crate::{now_ms, AppState};

const HTTP_SECONDS: &str = "langguard_http_request_duration_seconds";

/// The process's Prometheus handle; installs the recorder on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(
            Matcher::Full(HTTP_SECONDS.to_owned()),
            &[
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        ) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe_metrics();
        langguard_sync::describe_metrics();
        langguard_policy::describe_metrics();
        langguard_ops::ingest::describe_metrics();
        handle
    })
}

/// The HELP text of the server's own metrics.
fn describe_metrics() {
    metrics::describe_histogram!(
        HTTP_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method, route pattern and status"
    );
    metrics::describe_counter!(
        "langguard_api_errors_total",
        "Error responses of the REST API and the web UI, by error code"
    );
    metrics::describe_counter!(
        "langguard_webhook_deliveries_total",
        "Webhook delivery attempts, by result (succeeded, retrying, failed)"
    );
    metrics::describe_gauge!(
        "langguard_integration_status",
        "1 for each integration's current status, 0 for the others"
    );
    metrics::describe_gauge!(
        "langguard_gateway_lag_seconds",
        "How far each gateway's import cursor is behind now"
    );
    metrics::describe_gauge!("langguard_syncs_running", "Syncs running in this process");
}

/// Times each request, labelled by method, route pattern and status, inside a `request` span
/// that every log line of the request carries.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        status = tracing::field::Empty
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    tracing::debug!(
        parent: &span,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    metrics::histogram!(
        HTTP_SECONDS,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`. Gauges that describe stored state (lag behind each gateway, integration
/// status) are refreshed from the database at scrape time. With `LANGGUARD_METRICS_TOKEN`
/// set, a scraper must send it as `Authorization: Bearer <token>`: the figures name
/// integrations, gateways, models and costs.
pub async fn render(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.config.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        // Compared as hashes: equal length, so the comparison's time says nothing.
        let same =
            sha2::Sha256::digest(given.as_bytes()) == sha2::Sha256::digest(expected.as_bytes());
        if !same {
            return Err(ApiError::Unauthorized);
        }
    }
    let now = now_ms();
    for integration in state.ops.store.list_integrations().await? {
        for status in ["pending", "connected", "warning", "failed", "disabled"] {
            metrics::gauge!(
                "langguard_integration_status",
                "integration" => integration.name.clone(),
                "status" => status
            )
            .set(f64::from(u8::from(integration.status.as_str() == status)));
        }
        for gateway in state.ops.store.list_gateways(integration.id).await? {
            if let Some(cursor) = gateway.cursor_ms {
                metrics::gauge!(
                    "langguard_gateway_lag_seconds",
                    "integration" => integration.name.clone(),
                    "gateway" => gateway.gateway_id.clone()
                )
                .set(((now - cursor).max(0) as f64) / 1000.0);
            }
        }
    }
    metrics::gauge!("langguard_syncs_running").set(state.ops.engine.running().len() as f64);
    let body = prometheus().render();
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response())
}
