//! Building and running the server: `Application::build(settings)` migrates, starts the live
//! feed and binds the listener (port 0 picks a free one, for tests); `run_until_stopped`
//! serves until the shutdown future resolves.

use crate::auth::{Actor, bearer};
use crate::commands::Commands;
use crate::config::Settings;
use crate::graphql::documents::Documents;
use crate::graphql::error::{ApiError, normalise};
use crate::graphql::{AppSchema, RequestInfo, SchemaDeps, Schemas, build_schemas};
use crate::shared::Hub;
use crate::store::tokens::TokenCache;
use crate::store::{self, feed::Feed, feed::FeedSettings};
use crate::ws::{self, WsSettings};
use async_graphql::ErrorExtensions;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Shared by every handler.
#[derive(Clone)]
struct AppState {
    /// The schema HTTP requests run on.
    schema: AppSchema,
    /// The schema WebSocket operations run on (its resolvers fail alone when they panic).
    live: AppSchema,
    pool: PgPool,
    settings: Settings,
    /// One permit per open WebSocket connection.
    ws_connections: Arc<Semaphore>,
    /// Subscriptions shared between connections.
    hub: Arc<Hub<AppSchema>>,
    /// Tokens recently checked.
    tokens: Arc<TokenCache>,
    /// Query documents already parsed.
    documents: Arc<Documents>,
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    feed: Feed,
    pool: PgPool,
}

impl Application {
    /// Creates the database if missing, migrates it, starts nothing yet, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        store::ensure_database(&settings.database_url).await?;
        let pool = store::connect(&settings.database_url, settings.db_max_connections).await?;
        store::migrate(&pool).await?;
        let feed = Feed::new(
            pool.clone(),
            FeedSettings {
                poll_interval: settings.feed_poll_interval,
                capacity: settings.feed_buffer,
            },
        )
        .await?;
        let commands = Commands::new(pool.clone(), feed.clone());
        let tokens = Arc::new(TokenCache::new(settings.token_cache));
        let Schemas { http, live } = build_schemas(SchemaDeps {
            pool: pool.clone(),
            commands,
            feed: feed.clone(),
            scorecard_rule: settings.scorecard_rule,
            max_depth: settings.max_query_depth,
            max_complexity: settings.max_query_complexity,
            max_page: settings.max_page_size,
            tokens: tokens.clone(),
        });
        let listener = TcpListener::bind(settings.listen).await?;
        let router = router(AppState {
            pool: pool.clone(),
            ws_connections: Arc::new(Semaphore::new(settings.ws_max_connections)),
            hub: Arc::new(Hub::new(live.clone())),
            tokens,
            documents: Arc::default(),
            schema: http,
            live,
            settings,
        });
        Ok(Self {
            listener,
            router,
            feed,
            pool,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and stops the feed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut feed_stop = stop_rx.clone();
        let feed = tokio::spawn(self.feed.clone().run(async move {
            let _ = feed_stop.wait_for(|s| *s).await;
        }));
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        drop(stop_rx);
        feed.abort();
        result
    }
}

fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    let body_limit = state.settings.max_body_bytes;
    Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql)
                .layer(axum::middleware::from_fn(require_json)),
        )
        .route("/graphql/ws", get(websocket))
        .route("/health", get(health))
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
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(error_body(ApiError::Internal)),
    )
        .into_response()
}

/// `GET /graphql`: GraphiQL in a browser; with `?query=`, a read executed like a POST.
/// Mutations are refused over GET (a link or an image tag must never write).
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let Some(raw) = raw.filter(|q| q.contains("query=")) else {
        return graphiql().await.into_response();
    };
    let mut request = match async_graphql::http::parse_query_string(&raw) {
        Ok(r) => r,
        Err(_) => {
            let err = ApiError::bad_input("query", "not a valid GraphQL GET request");
            return (StatusCode::BAD_REQUEST, Json(error_body(err))).into_response();
        }
    };
    // Parsed once (or taken from the documents already parsed): execution takes the document
    // from the request.
    state.documents.prepare(&mut request);
    if request
        .parsed_query()
        .is_ok_and(crate::graphql::has_mutation)
    {
        let err = ApiError::bad_input("query", "mutations must be sent with POST");
        return (StatusCode::METHOD_NOT_ALLOWED, Json(error_body(err))).into_response();
    }
    execute(state, headers, request).await
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("commitment-tracker")
            .finish(),
    )
}

async fn health(State(state): State<AppState>) -> Response {
    // language=PostgreSQL
    match sqlx::query("select 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

fn error_body(err: ApiError) -> serde_json::Value {
    let e = err.extend();
    serde_json::json!({ "errors": [{ "message": e.message, "extensions": e.extensions }] })
}

/// Resolves a presented token. `Ok(None)`: no token; `Err`: a token that is not valid.
async fn authenticate(
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

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    execute(state, headers, request.into_inner()).await
}

/// Refuses a POST that is not JSON: a form or `text/plain` body is what a cross-site page can
/// send without asking, so it must never reach a mutation.
async fn require_json(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_post = request.method() == axum::http::Method::POST;
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| v == "application/json" || v == "application/graphql-response+json");
    if is_post && !json {
        let err = ApiError::bad_input("content-type", "POST /graphql takes application/json");
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(error_body(err))).into_response();
    }
    next.run(request).await
}

async fn execute(state: AppState, headers: HeaderMap, request: async_graphql::Request) -> Response {
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = match headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(bearer))
    {
        None => None,
        Some(Some(token)) => Some(token),
        Some(None) => {
            let err = ApiError::Unauthenticated("Authorization must be `Bearer <token>`".into());
            return (StatusCode::UNAUTHORIZED, Json(error_body(err))).into_response();
        }
    };
    let actor = match authenticate(&state.tokens, &state.pool, token).await {
        Ok(actor) => actor,
        Err(err @ ApiError::Unauthenticated(_)) => {
            return (StatusCode::UNAUTHORIZED, Json(error_body(err))).into_response();
        }
        Err(err) => {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(error_body(err))).into_response();
        }
    };
    if actor.is_none() && state.settings.require_token_for_reads {
        let err = ApiError::Unauthenticated("this server requires a token for reads too".into());
        return (StatusCode::UNAUTHORIZED, Json(error_body(err))).into_response();
    }
    // Parsed once (or taken from the documents already parsed): execution takes the document
    // from the request (a document that does not parse is left for execution to report).
    let mut request = request;
    state.documents.prepare(&mut request);
    if request
        .parsed_query()
        .is_ok_and(|doc| crate::graphql::count_aliases(doc) > state.settings.max_aliases)
    {
        let err = ApiError::TooComplex(format!(
            "at most {} aliased fields are allowed in one request",
            state.settings.max_aliases
        ));
        return (StatusCode::OK, Json(error_body(err))).into_response();
    }
    let request = request.data(RequestInfo { actor, request_id });
    let mut response = state.schema.execute(request).await;
    normalise(&mut response.errors);
    GraphQLResponse::from(response).into_response()
}

/// The token of a `connection_init` payload: `{"Authorization": "Bearer …"}`, the same under
/// `headers`, or `{"token": "…"}`.
fn token_from_payload(payload: &serde_json::Value) -> Option<String> {
    let auth = |v: &serde_json::Value| {
        ["Authorization", "authorization"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|a| a.as_str()))
            .and_then(bearer)
            .map(str::to_owned)
    };
    auth(payload)
        .or_else(|| payload.get("headers").and_then(auth))
        .or_else(|| {
            payload
                .get("token")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
}

/// Each WebSocket connection's read buffer.
const WS_BUFFER_BYTES: usize = 4096;

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let Some(protocol) = ws::protocol_from_header(offered) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must be graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    let Ok(permit) = state.ws_connections.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections; retry later",
        )
            .into_response();
    };
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(str::to_owned);
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let require_token = state.settings.require_token_for_reads;
    let settings = WsSettings {
        keepalive: state.settings.ws_keepalive,
        max_subscriptions: state.settings.ws_max_subscriptions,
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Clients send little (init, subscribe, pong): small buffers keep an idle subscriber
        // at a few KiB instead of the default 128 KiB each way.
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let pool = state.pool.clone();
            let tokens = state.tokens.clone();
            let on_init = move |payload: serde_json::Value| async move {
                let token = token_from_payload(&payload).or(header_token);
                let actor = authenticate(&tokens, &pool, token.as_deref())
                    .await
                    .map_err(|e| e.extend())?;
                if actor.is_none() && require_token {
                    let err = ApiError::Unauthenticated(
                        "this server requires a token for reads too".into(),
                    );
                    return Err(err.extend());
                }
                let mut data = async_graphql::Data::default();
                data.insert(RequestInfo { actor, request_id });
                Ok(data)
            };
            ws::serve(
                socket,
                state.live.clone(),
                protocol,
                on_init,
                settings,
                Some(state.hub.clone()),
            )
            .await;
            drop(permit);
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn connection_init_payloads_carry_tokens_in_the_usual_places() {
        assert_eq!(
            token_from_payload(&json!({"Authorization": "Bearer ct_a"})).as_deref(),
            Some("ct_a")
        );
        assert_eq!(
            token_from_payload(&json!({"headers": {"authorization": "Bearer ct_b"}})).as_deref(),
            Some("ct_b")
        );
        assert_eq!(
            token_from_payload(&json!({"token": "ct_c"})).as_deref(),
            Some("ct_c")
        );
        assert_eq!(token_from_payload(&json!({})), None);
    }
}
