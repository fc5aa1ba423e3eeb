//! `GET /graphql/ws`: subscriptions (and queries and mutations) over WebSocket, in either
//! protocol, authenticated by the `connection_init` payload or the upgrade's `Authorization`.

pub mod protocol;

use super::ratelimit::{ClientAddress, ConnectionLimit};
use super::{AppState, authenticate, request_id};
use crate::auth::bearer;
use crate::graphql::RequestInfo;
use crate::graphql::error::ApiError;
use async_graphql::ErrorExtensions;
use axum::Extension;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::WsSettings;

/// Each WebSocket connection's read buffer.
const WS_BUFFER_BYTES: usize = 4096;

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

/// Upgrades to a WebSocket speaking the protocol the client offers.
pub async fn upgrade(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let Some(protocol) = protocol::protocol_from_header(offered) else {
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
    let request_id = request_id(&headers);
    let require_token = state.settings.require_token_for_reads;
    let limit = ConnectionLimit::new(
        state.limiter.clone(),
        client.map(|c| c.0.0),
        header_token.clone(),
    );
    let settings = WsSettings {
        keepalive: state.settings.ws_keepalive,
        max_subscriptions: state.settings.ws_max_subscriptions,
        closing: state.lifecycle.closing(),
        limit: Some(limit.clone()),
    };
    upgrade
        // The protocol named in the answer is the one the connection speaks: the client's
        // first choice among those served (axum alone would pick in the server's order).
        .protocols([protocol.sec_websocket_protocol()])
        // Clients send little (init, subscribe, pong): small buffers keep an idle subscriber
        // at a few KiB instead of the default 128 KiB each way.
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let pool = state.pool.clone();
            let tokens = state.tokens.clone();
            let on_init = move |payload: serde_json::Value| async move {
                let token = token_from_payload(&payload).or(header_token);
                limit.set_token(token.clone());
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
                data.insert(RequestInfo {
                    actor,
                    request_id,
                    written: Default::default(),
                });
                Ok(data)
            };
            protocol::serve(
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
