//! The HTTP surface: one file per family of routes, each only translating between HTTP and
//! the layers below.
//!
//! | route | file |
//! |---|---|
//! | `POST /graphql`, `GET /graphql?query=…` | [`graphql`] (GraphQL over HTTP) |
//! | `GET /graphql` from a browser, `/graphql/assets/…` | [`graphiql`] |
//! | `GET /graphql/ws` | [`ws`] (both WebSocket protocols) |
//! | `GET /healthz`, `GET /readyz` (and `/health`, the same as `/readyz`) | [`health`] |
//! | `GET /metrics` | [`metrics`] (Prometheus) |
//! | `GET /log/checkpoint`, `/log/key`, `/log/tile/…` | [`log`] (the transparency log) |
//! | `GET /export/{commitments,assessments,evidence,events}.csv` | [`export`] (CSV) |
//! | `GET /feeds/assessments.atom` | [`feeds`] (Atom) |
//! | `GET /`, `GET /commitments/<slug>`, `/assets/…` | [`pages`] (HTML) |
//!
//! Every route but health and metrics is rate limited ([`ratelimit`]).

pub mod caching;
pub mod export;
pub mod feeds;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod log;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod ratelimit;
pub mod ws;

use crate::auth::Actor;
use crate::config::Settings;
use crate::graphql::error::ApiError;
use crate::graphql::gateway::Gateway;
use crate::shared::Hub;
use crate::store::tokens::TokenCache;
use async_graphql::ErrorExtensions;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The request id header: generated when absent, echoed back, stored in event metadata.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Everything HTTP operations run through.
    pub gateway: Gateway,
    /// The same for WebSocket operations, on a schema whose resolvers fail alone when they
    /// panic.
    pub live: Gateway,
    /// The primary database: writes, token checks, the transparency log.
    pub pool: PgPool,
    /// Where reads go (the primary or a replica), and the loaders over each.
    pub readers: crate::graphql::Readers,
    /// The server's settings.
    pub settings: Settings,
    /// One permit per open WebSocket connection.
    pub ws_connections: Arc<Semaphore>,
    /// One permit per CSV export in progress: each holds a database connection while it
    /// streams, so they may take only part of the pool.
    pub exports: Arc<Semaphore>,
    /// Subscriptions shared between connections.
    pub hub: Arc<Hub<Gateway>>,
    /// Tokens recently checked.
    pub tokens: Arc<TokenCache>,
    /// The transparency log's key and quorum.
    pub log: Arc<log::LogInfo>,
    /// Readiness and shutdown.
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// Rate limits per client address and per token.
    pub limiter: Arc<ratelimit::RateLimiter>,
}

impl AppState {
    /// Where a read that needs no particular log position goes: a usable replica, else the
    /// primary.
    pub async fn read_pool(&self) -> &PgPool {
        let reads = self.readers.reads();
        reads.pool(reads.choose(None).await)
    }
}

/// Every route, with the limits that apply to all of them.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    let body_limit = state.settings.max_body_bytes;
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/health", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/log/key", get(log::key))
        .route("/log/tile/{*path}", get(log::tile))
        .route("/export/{file}", get(export::csv))
        .route("/feeds/assessments.atom", get(feeds::assessments))
        .route("/", get(pages::home))
        .route("/commitments/{slug}", get(pages::commitment))
        .route("/assets/{file}", get(pages::asset))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// A panic in a handler or resolver: logged, answered as an internal error, and the server
/// keeps serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "request handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, ApiError::Internal)
}

/// The body of an answer that is one error: `{"errors":[{message, extensions}]}`.
pub fn error_body(err: ApiError) -> serde_json::Value {
    let e = err.extend();
    serde_json::json!({ "errors": [{ "message": e.message, "extensions": e.extensions }] })
}

/// An answer that is one error, as JSON with `status`.
pub fn error_response(status: StatusCode, err: ApiError) -> Response {
    (status, axum::Json(error_body(err))).into_response()
}

/// The request id of a request, if it carries one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Who reads: the bearer token's actor, or nobody. Refused (as the answer to send) when the
/// header is malformed, the token is not valid, or the server wants a token for reads and
/// none came.
pub async fn reader(state: &AppState, headers: &HeaderMap) -> Result<Option<Actor>, Response> {
    let token = match headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(crate::auth::bearer))
    {
        None => None,
        Some(Some(token)) => Some(token),
        Some(None) => {
            let err = ApiError::Unauthenticated("Authorization must be `Bearer <token>`".into());
            return Err(error_response(StatusCode::UNAUTHORIZED, err));
        }
    };
    let actor = match authenticate(&state.tokens, &state.pool, token).await {
        Ok(actor) => actor,
        Err(err @ ApiError::Unauthenticated(_)) => {
            return Err(error_response(StatusCode::UNAUTHORIZED, err));
        }
        Err(err) => return Err(error_response(StatusCode::SERVICE_UNAVAILABLE, err)),
    };
    if actor.is_none() && state.settings.require_token_for_reads {
        let err = ApiError::Unauthenticated("this server requires a token for reads too".into());
        return Err(error_response(StatusCode::UNAUTHORIZED, err));
    }
    Ok(actor)
}

/// The address people reach the server at, without a trailing `/`: `PUBLIC_URL`, or
/// `http://` and the request's `Host` when that is a plain host name (and port), or the
/// listening address.
pub fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{}", state.settings.listen),
    }
}

/// Resolves a presented token. `Ok(None)`: no token; `Err`: a token that is not valid.
pub async fn authenticate(
    tokens: &TokenCache,
    pool: &PgPool,
    token: Option<&str>,
) -> Result<Option<Actor>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    match tokens.authenticate(pool, token).await {
        Ok(Some(actor)) => Ok(Some(actor)),
        Ok(None) => Err(ApiError::Unauthenticated(
            "the token is not valid (unknown, expired or revoked)".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A header value known to be valid.
fn static_header(value: &'static str) -> HeaderValue {
    HeaderValue::from_static(value)
}

/// Long-lived caching for content that never changes under its address.
fn immutable() -> (HeaderName, HeaderValue) {
    (
        header::CACHE_CONTROL,
        static_header("public, max-age=31536000, immutable"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_answered_as_a_coded_internal_error_without_its_text() {
        let response = panic_response(Box::new(String::from("relation \"events\" does not exist")));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "INTERNAL_SERVER_ERROR"
        );
        assert!(!body.to_string().contains("relation"), "{body}");
    }
}
