//! `GET /health`: whether this process can reach its database.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// 200 when the database answers, 503 when it does not.
pub async fn health(State(state): State<AppState>) -> Response {
    // language=PostgreSQL
    match sqlx::query("select 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}
