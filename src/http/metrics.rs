//! `GET /metrics`: the process's figures in the Prometheus text format (DESIGN §12; the list
//! is in [`crate::metrics`]). The database pool's gauges are sampled at each scrape.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("db_pool_connections").set(f64::from(state.pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(state.pool.num_idle() as f64);
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::metrics::handle().render(),
    )
        .into_response()
}
