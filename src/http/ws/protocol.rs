//! The WebSocket protocol loop for subscriptions: both protocols (`graphql-transport-ws` and the
//! legacy `graphql-ws`), server keep-alive pings, and a bound on subscriptions per connection.
//!
//! async-graphql's protocol engine does the GraphQL part; this loop sits between it and the
//! socket so that it can add keep-alives and refuse a subscription over the bound with a coded
//! error for that subscription alone.

use crate::http::ratelimit::{ConnectionLimit, retry_after_secs};
use crate::shared::{BACKLOG, Hub, Shared};
use async_graphql::Executor;
use async_graphql::http::{WebSocket as GraphQLWs, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;

/// Limits and timings of one connection.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Interval between keep-alive messages (`ping`, or `ka` in the legacy protocol).
    pub keepalive: Duration,
    /// Most subscriptions active at once on one connection.
    pub max_subscriptions: usize,
    /// Turns true when the server closes: every active subscription is completed and the
    /// connection closed with code 1001 (going away).
    pub closing: watch::Receiver<bool>,
    /// The rate limits the connection's messages count against.
    pub limit: Option<ConnectionLimit>,
}

/// A connection's active subscription ids, counted in `graphql_subscriptions` while active.
#[derive(Default)]
struct ActiveSet(HashSet<String>);

impl ActiveSet {
    fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn insert(&mut self, id: String) {
        if self.0.insert(id) {
            metrics::gauge!("graphql_subscriptions").increment(1.0);
        }
    }

    fn remove(&mut self, id: &str) {
        if self.0.remove(id) {
            metrics::gauge!("graphql_subscriptions").decrement(1.0);
        }
    }

    fn drain(&mut self) -> Vec<String> {
        let ids: Vec<String> = self.0.drain().collect();
        metrics::gauge!("graphql_subscriptions").decrement(ids.len() as f64);
        ids
    }
}

impl Drop for ActiveSet {
    fn drop(&mut self) {
        metrics::gauge!("graphql_subscriptions").decrement(self.0.len() as f64);
    }
}

/// The close code of a server going away (RFC 6455 §7.4.1).
pub const GOING_AWAY: u16 = 1001;

/// The protocol named by a `Sec-WebSocket-Protocol` header (first one we speak).
pub fn protocol_from_header(header: Option<&str>) -> Option<WebSocketProtocols> {
    header?
        .split(',')
        .map(str::trim)
        .find_map(|p| p.parse::<WebSocketProtocols>().ok())
}

fn is_legacy(protocol: WebSocketProtocols) -> bool {
    matches!(protocol, WebSocketProtocols::SubscriptionsTransportWS)
}

/// The message refusing subscription `id` with `message` and `code`.
fn refusal(protocol: WebSocketProtocols, id: &str, message: &str, code: &str) -> String {
    let error = json!({ "message": message, "extensions": { "code": code } });
    let payload = if is_legacy(protocol) {
        error
    } else {
        json!([error])
    };
    json!({ "id": id, "type": "error", "payload": payload }).to_string()
}

/// What the input side asks the output loop to do besides relaying the engine.
enum Control {
    /// Send this text.
    Send(String),
    /// Relay a shared stream's results as subscription `id`.
    Share {
        id: String,
        results: broadcast::Receiver<Shared>,
    },
    /// The client stopped shared subscription `id`.
    Unshare { id: String },
}

/// The input side's requests to the output loop. A queue and a wake-up rather than a channel:
/// a channel allocates a block of 32 slots up front, about 1.6 KiB on every connection, where
/// a connection sends a handful of these in its life.
#[derive(Default)]
struct Controls {
    queue: Mutex<VecDeque<Control>>,
    ready: Notify,
}

impl Controls {
    fn send(&self, control: Control) {
        self.queue.lock().expect("controls lock").push_back(control);
        self.ready.notify_one();
    }

    /// The next request; cancel-safe (a request is taken only when it is returned).
    async fn recv(&self) -> Control {
        loop {
            if let Some(control) = self.queue.lock().expect("controls lock").pop_front() {
                return control;
            }
            self.ready.notified().await;
        }
    }
}

/// A message of subscription `id` in the connection's protocol, around a payload already
/// serialised.
fn message(protocol: WebSocketProtocols, kind: &str, id: &str, payload: Option<&str>) -> String {
    let kind = match (kind, is_legacy(protocol)) {
        ("next", true) => "data",
        (k, _) => k,
    };
    let id = Value::from(id);
    match payload {
        Some(p) => format!(r#"{{"type":"{kind}","id":{id},"payload":{p}}}"#),
        None => format!(r#"{{"type":"{kind}","id":{id}}}"#),
    }
}

/// Counts the connection out of `graphql_ws_connections` however `serve` ends.
fn scopeguard_ws() -> impl Drop {
    struct Open;
    impl Drop for Open {
        fn drop(&mut self) {
            metrics::gauge!("graphql_ws_connections").decrement(1.0);
        }
    }
    Open
}

/// Serves one connection until either side closes it. Subscriptions that `hub` can share
/// run there; the rest run on the engine, per connection.
pub async fn serve<E, F, Fut>(
    socket: WebSocket,
    executor: E,
    protocol: WebSocketProtocols,
    on_init: F,
    settings: WsSettings,
    hub: Option<Arc<Hub<E>>>,
) where
    E: Executor,
    F: FnOnce(Value) -> Fut + Send + 'static,
    Fut: Future<Output = async_graphql::Result<async_graphql::Data>> + Send + 'static,
{
    let (mut sink, stream) = socket.split();
    metrics::gauge!("graphql_ws_connections").increment(1.0);
    let _connection = scopeguard_ws();
    let active: Arc<Mutex<ActiveSet>> = Arc::default();
    let shared_ids: Arc<Mutex<HashSet<String>>> = Arc::default();
    let acknowledged = Arc::new(AtomicBool::new(false));
    let controls = Arc::new(Controls::default());
    let control_tx = controls.clone();
    let (start, stop) = if is_legacy(protocol) {
        ("start", "stop")
    } else {
        ("subscribe", "complete")
    };

    let input_active = active.clone();
    let input_shared = shared_ids.clone();
    let input_acknowledged = acknowledged.clone();
    let input = stream
        .take_while(|m| std::future::ready(m.is_ok()))
        .filter_map(move |m| {
            let bytes = match m {
                Ok(Message::Text(t)) => Some(t.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            };
            let bytes = bytes.and_then(|bytes| {
                let Ok(msg) = serde_json::from_slice::<Value>(&bytes) else {
                    return Some(bytes); // the engine answers malformed messages itself
                };
                let id = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let kind = msg.get("type").and_then(Value::as_str).unwrap_or_default();
                // Every message counts. Over the limit, a subscription is refused for its id
                // alone; a ping or an unknown message is dropped; what ends work or is needed
                // to speak the protocol at all (init, pong, complete) still passes.
                let over = settings.limit.as_ref().and_then(|l| l.admit().err());
                if let Some(wait) = over {
                    if kind == start {
                        let text = format!(
                            "too many messages: retry after {} s",
                            retry_after_secs(wait)
                        );
                        control_tx.send(Control::Send(refusal(
                            protocol,
                            &id,
                            &text,
                            "RATE_LIMITED",
                        )));
                        return None;
                    }
                    if !matches!(
                        kind,
                        "connection_init" | "connection_terminate" | "pong" | "complete" | "stop"
                    ) {
                        return None;
                    }
                }
                let mut active = input_active.lock().expect("subscriptions lock");
                if kind == start && !active.contains(&id) {
                    if active.len() >= settings.max_subscriptions {
                        let text = format!(
                            "at most {} subscriptions may be active on one connection",
                            settings.max_subscriptions
                        );
                        control_tx.send(Control::Send(refusal(
                            protocol,
                            &id,
                            &text,
                            "BAD_USER_INPUT",
                        )));
                        return None;
                    }
                    active.insert(id.clone());
                    // Only once the connection is acknowledged (authorised): before that the
                    // engine answers as the protocol requires.
                    let shared = hub
                        .as_ref()
                        .filter(|_| input_acknowledged.load(Ordering::Acquire))
                        .and_then(|hub| hub.join(msg.get("payload")?));
                    if let Some(results) = shared {
                        input_shared.lock().expect("shared lock").insert(id.clone());
                        control_tx.send(Control::Share { id, results });
                        return None;
                    }
                } else if kind == stop {
                    active.remove(&id);
                    if input_shared.lock().expect("shared lock").remove(&id) {
                        control_tx.send(Control::Unshare { id });
                        return None;
                    }
                }
                Some(bytes)
            });
            std::future::ready(bytes)
        });

    let output = GraphQLWs::new(executor, input, protocol).on_connection_init(on_init);
    futures_util::pin_mut!(output);
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.keepalive,
        settings.keepalive,
    );
    let ping = if is_legacy(protocol) {
        r#"{"type":"ka"}"#
    } else {
        r#"{"type":"ping"}"#
    };
    let mut relayed: StreamMap<String, BroadcastStream<Shared>> = StreamMap::new();
    let mut closing = settings.closing.clone();
    let mut going_away = false;
    loop {
        let outgoing = tokio::select! {
            _ = async { let _ = closing.wait_for(|c| *c).await; } => {
                going_away = true;
                break;
            }
            message = output.next() => match message {
                // Results (most messages) need no look inside.
                Some(WsMessage::Text(text)) if text.starts_with(r#"{"type":"next""#)
                    || text.starts_with(r#"{"type":"data""#) => Message::Text(text.into()),
                Some(WsMessage::Text(text)) => {
                    if let Ok(msg) = serde_json::from_str::<Value>(&text) {
                        match msg.get("type").and_then(Value::as_str) {
                            Some("connection_ack") => acknowledged.store(true, Ordering::Release),
                            Some("complete") | Some("error") => {
                                if let Some(id) = msg.get("id").and_then(Value::as_str) {
                                    active.lock().expect("subscriptions lock").remove(id);
                                }
                            }
                            _ => {}
                        }
                    }
                    Message::Text(text.into())
                }
                Some(WsMessage::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    break;
                }
                None => break,
            },
            c = controls.recv() => match c {
                Control::Send(text) => Message::Text(text.into()),
                Control::Share { id, results } => {
                    relayed.insert(id, BroadcastStream::new(results));
                    continue;
                }
                Control::Unshare { id } => {
                    if relayed.remove(&id).is_none() {
                        continue;
                    }
                    Message::Text(message(protocol, "complete", &id, None).into())
                }
            },
            Some((id, result)) = relayed.next(), if !relayed.is_empty() => match result {
                Ok(Shared::Next(payload)) => {
                    Message::Text(message(protocol, "next", &id, Some(&payload)).into())
                }
                Ok(Shared::End) => {
                    relayed.remove(&id);
                    shared_ids.lock().expect("shared lock").remove(&id);
                    active.lock().expect("subscriptions lock").remove(&id);
                    Message::Text(message(protocol, "complete", &id, None).into())
                }
                Err(_lagged) => {
                    relayed.remove(&id);
                    shared_ids.lock().expect("shared lock").remove(&id);
                    active.lock().expect("subscriptions lock").remove(&id);
                    let text = format!(
                        "this subscriber fell more than {BACKLOG} results behind; resubscribe with `after` its last cursor"
                    );
                    Message::Text(refusal(protocol, &id, &text, "SUBSCRIBER_TOO_SLOW").into())
                }
            },
            _ = keepalive.tick() => {
                if !acknowledged.load(Ordering::Acquire) {
                    continue;
                }
                Message::Text(ping.into())
            }
        };
        if sink.send(outgoing).await.is_err() {
            break;
        }
    }
    if going_away {
        // The server is going away: each subscription ends properly, then the socket.
        let ids = active.lock().expect("subscriptions lock").drain();
        for id in ids {
            let complete = message(protocol, "complete", &id, None);
            if sink.send(Message::Text(complete.into())).await.is_err() {
                return;
            }
        }
        let frame = CloseFrame {
            code: GOING_AWAY,
            reason: "the server is shutting down".into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_picks_a_protocol_we_speak() {
        assert!(matches!(
            protocol_from_header(Some("graphql-transport-ws")),
            Some(WebSocketProtocols::GraphQLWS)
        ));
        assert!(matches!(
            protocol_from_header(Some("foo, graphql-ws")),
            Some(WebSocketProtocols::SubscriptionsTransportWS)
        ));
        assert!(protocol_from_header(Some("mqtt")).is_none());
        assert!(protocol_from_header(None).is_none());
    }

    #[test]
    fn refusals_follow_each_protocol() {
        let modern: Value =
            serde_json::from_str(&refusal(WebSocketProtocols::GraphQLWS, "7", "no", "X")).unwrap();
        assert_eq!(modern["payload"][0]["extensions"]["code"], "X");
        let legacy: Value = serde_json::from_str(&refusal(
            WebSocketProtocols::SubscriptionsTransportWS,
            "7",
            "no",
            "X",
        ))
        .unwrap();
        assert_eq!(legacy["payload"]["extensions"]["code"], "X");
        assert_eq!(legacy["id"], "7");
    }
}
