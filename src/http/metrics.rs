//! `GET /metrics`: the process's figures in the Prometheus text format (DESIGN §12; the list
//! is in [`crate::metrics`]). The database pool's gauges and the log's integration lag are
//! sampled at each scrape; a database that does not answer within a second leaves the lag at
//! its last value rather than failing the scrape.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// How long a scrape waits for the lag's query.
const LAG_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("db_pool_connections").set(f64::from(state.pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(state.pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(state.settings.db_max_connections));
    let lag = tokio::time::timeout(
        LAG_QUERY_TIMEOUT,
        crate::store::tree::integration_lag(&state.pool),
    )
    .await;
    match lag {
        Ok(Ok(seconds)) => metrics::gauge!("log_integration_lag_seconds").set(seconds),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot sample the log's integration lag"),
        Err(_) => tracing::warn!("the log's integration lag was not read within a second"),
    }
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
