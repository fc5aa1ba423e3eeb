//! Health (DESIGN §12). `GET /healthz`: 200 while the process runs. `GET /readyz`: 200 when
//! the database answers, every migration this build knows is applied, and the live feed and
//! the log's sequencer run; 503 otherwise, and from the moment shutdown begins. The body
//! names each check and its state. `GET /health` is the same as `/readyz`.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// How long the database may take to answer a readiness check.
const DATABASE_PATIENCE: Duration = Duration::from_secs(2);

/// `GET /healthz`.
pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        "ok\n",
    )
        .into_response()
}

/// The database's answer: `ok`, or why not.
async fn database(state: &AppState) -> (&'static str, Option<String>) {
    // language=PostgreSQL
    let applied =
        sqlx::query_scalar::<_, i64>("select count(*) from _sqlx_migrations where success")
            .fetch_one(&state.pool);
    match tokio::time::timeout(DATABASE_PATIENCE, applied).await {
        Err(_) => ("unavailable", Some("no answer within 2 s".into())),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database failed");
            ("unavailable", None)
        }
        Ok(Ok(applied)) => {
            let known = crate::store::migrator().migrations.len() as i64;
            if applied < known {
                (
                    "migrating",
                    Some(format!("{applied} of {known} migrations applied")),
                )
            } else {
                ("ok", None)
            }
        }
    }
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let stopping = state.lifecycle.is_stopping();
    let (feed, sequencer) = state.lifecycle.tasks();
    let (db, detail) = if stopping {
        ("not checked", None)
    } else {
        database(&state).await
    };
    let ready = !stopping && db == "ok" && feed && sequencer;
    let state_of = |running: bool| if running { "ok" } else { "stopped" };
    let body = json!({
        "status": if ready { "ready" } else if stopping { "stopping" } else { "not ready" },
        "checks": {
            "database": db,
            "databaseDetail": detail,
            "liveFeed": state_of(feed),
            "logSequencer": state_of(sequencer),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{body}\n"),
    )
        .into_response()
}
