//! The fan-out floor: a process that does the least any server can do for the same
//! subscribers. It speaks just enough of `graphql-transport-ws` for the benchmark's
//! subscribers (an acknowledgement for `connection_init`, then every delivery once they have
//! subscribed), answers every `POST /graphql` with a new assessment id at once, and hands each
//! subscriber's connection one shared, ready-made `next` message of the server's shape and
//! size for it. No database, no GraphQL, no authorisation: what is left is the kernel's work
//! per socket and the runtime's wake-ups, on the same machine in the same run as the server.

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;
use uuid::Uuid;

/// What the floor's routes share: the deliveries, each sent to every subscriber.
#[derive(Clone)]
struct Floor {
    deliveries: broadcast::Sender<Utf8Bytes>,
}

/// The child side of [`crate::support::Server::start_floor`]: serve until stdin closes, after
/// printing the address.
pub async fn floor_child() -> anyhow::Result<()> {
    let (deliveries, _) = broadcast::channel(64);
    let app = Router::new()
        .route("/graphql/ws", get(upgrade))
        .route("/graphql", post(assess))
        .with_state(Floor { deliveries });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the floor's listener")?;
    println!("{}", listener.local_addr()?);
    // As the server does: every message sent at once (no Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    };
    tokio::select! {
        served = axum::serve(listener, app) => served.context("serve the floor")?,
        () = stdin_closed => {}
    }
    Ok(())
}

/// The server's `next` message for the benchmark's subscription, for assessment `id`.
fn next_message(id: Uuid) -> String {
    format!(
        r#"{{"id":"1","type":"next","payload":{{"data":{{"ratingChanged":{{"id":"{id}","overall":"INADEQUATE","commitment":{{"slug":"fanout-0"}}}}}}}}}}"#
    )
}

/// An assessment: its delivery goes to every subscriber, and its id back to the caller.
async fn assess(State(floor): State<Floor>) -> Response {
    let id = Uuid::now_v7();
    // No receivers yet (nobody has subscribed) is no error.
    let _ = floor.deliveries.send(next_message(id).into());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"data":{{"assessCommitment":{{"id":"{id}"}}}}}}"#),
    )
        .into_response()
}

async fn upgrade(State(floor): State<Floor>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["graphql-transport-ws"])
        // The server's buffer sizes (src/http/ws).
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| subscriber(socket, floor))
}

/// One subscriber's connection: acknowledges its `connection_init`, and once it has sent
/// `subscribe`, sends it every delivery.
async fn subscriber(mut socket: WebSocket, floor: Floor) {
    let mut deliveries: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        let delivery = async {
            match deliveries.as_mut() {
                Some(d) => d.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str().contains("\"connection_init\"") {
                        let ack = Message::text(r#"{"type":"connection_ack"}"#);
                        if socket.send(ack).await.is_err() {
                            return;
                        }
                    } else if text.as_str().contains("\"subscribe\"") && deliveries.is_none() {
                        deliveries = Some(floor.deliveries.subscribe());
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            delivery = delivery => match delivery {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
