//! Subscriptions over a real WebSocket (`graphql-transport-ws`), served from the live feed.

use crate::helpers::{SUBMIT, TestApp, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message before failing (never a synchronisation sleep).
const PATIENCE: Duration = Duration::from_secs(20);

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
}

impl Client {
    /// Opens a `graphql-transport-ws` connection, sending `payload` in `connection_init`.
    pub async fn open(app: &TestApp, payload: Value) -> Result<Self, Value> {
        Self::open_url(&app.ws_url(), "graphql-transport-ws", payload).await
    }

    /// Opens a connection to `url` with `protocol`, sending `payload` in `connection_init`.
    pub async fn open_url(url: &str, protocol: &str, payload: Value) -> Result<Self, Value> {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket upgrade");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            protocol
        );
        let mut client = Self {
            ws,
            legacy: protocol == "graphql-ws",
        };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.receive().await;
        if ack["type"] == "connection_ack" {
            Ok(client)
        } else {
            Err(ack)
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The next protocol message as sent, keep-alives included.
    pub async fn receive_raw(&mut self) -> Value {
        let message = tokio::time::timeout(PATIENCE, self.ws.next())
            .await
            .expect("a message within the patience window");
        match message {
            Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).unwrap(),
            other => json!({ "type": "closed", "reason": format!("{other:?}") }),
        }
    }

    /// The text of the next message that is not a keep-alive, as the server wrote it (pings
    /// are answered).
    pub async fn receive_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message within the patience window");
            let Some(Ok(Message::Text(text))) = message else {
                panic!("expected a text message, got {message:?}");
            };
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            match value["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("ka") | Some("pong") => {}
                _ => return text.as_str().to_owned(),
            }
        }
    }

    /// The next protocol message (pings are answered and keep-alives skipped). A closed socket
    /// yields `{"type": "closed", ...}`.
    pub async fn receive(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message within the patience window");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap();
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    if value["type"] == "ka" {
                        continue;
                    }
                    return value;
                }
                Some(Ok(Message::Close(frame))) => {
                    return json!({ "type": "closed", "reason": frame.map(|f| f.reason.to_string()) });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return json!({ "type": "closed", "reason": e.to_string() }),
                None => return json!({ "type": "closed" }),
            }
        }
    }

    /// The first error of operation `id`, with the message that carried it: the operation's
    /// first message that is not its completion, an `error` (a list of errors in
    /// graphql-transport-ws, one error in the legacy protocol) or a result with `errors`.
    pub async fn first_error(&mut self, id: &str) -> (Value, Value) {
        let message = loop {
            let message = self.receive().await;
            if message["id"] == id && message["type"] != "complete" {
                break message;
            }
        };
        let errors = if message["type"] == "error" {
            &message["payload"]
        } else {
            &message["payload"]["errors"]
        };
        let error = if errors.is_array() {
            errors[0].clone()
        } else {
            errors.clone()
        };
        (error, message)
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The data of the next `next` message for subscription `id`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.receive().await;
        assert_eq!(
            message["type"],
            if self.legacy { "data" } else { "next" },
            "{message}"
        );
        assert_eq!(message["id"], id);
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"].clone()
    }
}

pub const RATING_CHANGED: &str = "subscription($c: ID, $after: String) {
    ratingChanged(commitmentId: $c, after: $after) {
        id overall assessedOn cursor actor previous { id overall } commitment { slug }
    }
}";

/// The cursor of a commitment's latest event: subscribing after it delivers only what comes
/// next.
pub async fn cursor_of(app: &TestApp, commitment_id: &str) -> String {
    let data = app
        .ok(
            "query($id: ID!) { commitment(id: $id) { cursor } }",
            json!({ "id": commitment_id }),
        )
        .await;
    data["commitment"]["cursor"].as_str().unwrap().to_owned()
}

pub fn bearer(app: &TestApp) -> Value {
    json!({ "Authorization": format!("Bearer {}", app.admin_token) })
}

#[tokio::test]
async fn a_rating_changed_subscriber_receives_an_assessment_made_after_it_subscribed() {
    let app = spawn_app().await;
    let id = app.register("integrated-care-records").await;
    let mut client = Client::open(&app, bearer(&app)).await.unwrap();
    // Subscribing after the commitment's cursor makes the test independent of when the server
    // registers the subscription: nothing after it can be missed.
    let after = cursor_of(&app, &id).await;
    client
        .subscribe("1", RATING_CHANGED, json!({ "c": id, "after": after }))
        .await;

    let first = app.assess(&id, "INADEQUATE", "2023-02-17").await;
    let got = client.next_data("1").await;
    assert_eq!(got["ratingChanged"]["id"], first["id"]);
    assert_eq!(got["ratingChanged"]["overall"], "INADEQUATE");
    assert_eq!(got["ratingChanged"]["cursor"], first["cursor"]);
    assert_eq!(got["ratingChanged"]["actor"], "test-admin");
    assert_eq!(
        got["ratingChanged"]["commitment"]["slug"],
        "integrated-care-records"
    );
    assert!(got["ratingChanged"]["previous"].is_null());

    // An unchanged overall rating is still a new verdict, and is delivered.
    let second = app.assess(&id, "INADEQUATE", "2024-02-17").await;
    let got = client.next_data("1").await;
    assert_eq!(got["ratingChanged"]["id"], second["id"]);
    assert_eq!(got["ratingChanged"]["previous"]["id"], first["id"]);
}

#[tokio::test]
async fn a_live_subscriber_without_a_cursor_gets_every_assessment_from_the_first_it_sees() {
    let app = spawn_app().await;
    let id = app.register("nhs-app-registration").await;
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client.subscribe("live", RATING_CHANGED, json!({})).await;
    // Without a cursor the subscription starts whenever the server registers it. Keep making
    // assessments until one arrives; from then on none may be skipped.
    let mut made = Vec::new();
    let first_seen = loop {
        made.push(app.assess(&id, "GOOD", "2023-02-17").await["id"].clone());
        let next = tokio::time::timeout(Duration::from_millis(500), client.receive()).await;
        if let Ok(message) = next {
            break message["payload"]["data"]["ratingChanged"]["id"].clone();
        }
        assert!(made.len() < 40, "no assessment reached the subscriber");
    };
    // Everything made after the first one seen arrives next, in order; then each new one.
    let seen_at = made
        .iter()
        .position(|m| *m == first_seen)
        .expect("one of ours");
    for pending in &made[seen_at + 1..] {
        assert_eq!(
            &client.next_data("live").await["ratingChanged"]["id"],
            pending
        );
    }
    for _ in 0..3 {
        let next = app.assess(&id, "GOOD", "2023-02-17").await["id"].clone();
        assert_eq!(client.next_data("live").await["ratingChanged"]["id"], next);
    }
}

#[tokio::test]
async fn a_subscriber_with_an_old_cursor_gets_the_backlog_then_live_events_in_order_once_each() {
    let app = spawn_app().await;
    let id = app.register("epr-all-trusts").await;
    let after = cursor_of(&app, &id).await;
    let mut expected = Vec::new();
    for year in 2022..2025 {
        expected.push(
            app.assess(&id, "INADEQUATE", &format!("{year}-07-01"))
                .await["id"]
                .clone(),
        );
    }
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;
    for year in 2025..2027 {
        expected.push(app.assess(&id, "GOOD", &format!("{year}-07-01")).await["id"].clone());
    }
    let mut got = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..expected.len() {
        let data = client.next_data("s").await;
        got.push(data["ratingChanged"]["id"].clone());
        cursors.push(data["ratingChanged"]["cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, expected);
    let mut sorted = cursors.clone();
    sorted.sort();
    assert_eq!(cursors, sorted, "delivered in cursor order");
    // Nothing more is pending: the next message is for the next change.
    let last = app.assess(&id, "GOOD", "2027-07-01").await["id"].clone();
    assert_eq!(client.next_data("s").await["ratingChanged"]["id"], last);
}

#[tokio::test]
async fn evidence_and_raw_event_subscriptions_deliver_with_their_cursors() {
    let app = spawn_app().await;
    let a = app.register("data-for-rd").await;
    let b = app.register("gp-data-public-support").await;
    let after = cursor_of(&app, &b).await;
    let mut client = Client::open(&app, bearer(&app)).await.unwrap();
    client
        .subscribe(
            "ev",
            "subscription($c: ID, $after: String) { evidenceSubmitted(commitmentId: $c, after: $after) { id title cursor } }",
            json!({ "c": b, "after": after }),
        )
        .await;
    client
        .subscribe(
            "all",
            "subscription($after: String) { events(after: $after, types: [\"EvidenceSubmitted\", \"CommitmentAssessed\"]) { type streamId cursor actor } }",
            json!({ "after": after }),
        )
        .await;
    let submit = |c: &str, title: &str| json!({ "input": { "commitmentIds": [c], "title": title, "summary": "s", "submittedBy": "WEISS" } });
    app.ok(SUBMIT, submit(&a, "About A")).await;
    let about_b = app.ok(SUBMIT, submit(&b, "About B")).await;
    let assessed = app.assess(&b, "INADEQUATE", "2023-02-17").await;

    // The raw feed sees all three, in order; the evidence feed only B's.
    let mut raw = Vec::new();
    let mut evidence = Vec::new();
    while raw.len() < 3 || evidence.is_empty() {
        let m = client.receive().await;
        assert_eq!(m["type"], "next", "{m}");
        match m["id"].as_str().unwrap() {
            "all" => raw.push(m["payload"]["data"]["events"].clone()),
            "ev" => evidence.push(m["payload"]["data"]["evidenceSubmitted"].clone()),
            other => panic!("unexpected subscription {other}"),
        }
    }
    let types: Vec<&str> = raw.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "EvidenceSubmitted",
            "EvidenceSubmitted",
            "CommitmentAssessed"
        ]
    );
    assert_eq!(raw[2]["cursor"], assessed["cursor"]);
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["id"], about_b["submitEvidence"]["id"]);
    assert_eq!(evidence[0]["cursor"], about_b["submitEvidence"]["cursor"]);
}

#[tokio::test]
async fn a_connection_with_an_invalid_token_is_refused() {
    let app = spawn_app().await;
    let refused = Client::open(&app, json!({ "Authorization": "Bearer ct_forged" })).await;
    let Err(message) = refused else {
        panic!("a forged token was accepted")
    };
    assert_ne!(message["type"], "connection_ack", "{message}");
    assert!(
        Client::open(&app, json!({ "token": app.admin_token }))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_malformed_cursor_is_bad_user_input() {
    let app = spawn_app().await;
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("x", RATING_CHANGED, json!({ "after": "not-a-cursor" }))
        .await;
    // The subscription fails at once with a coded error (as an `error`, or a `next` with errors).
    let message = client.receive().await;
    let errors = if message["type"] == "error" {
        &message["payload"]
    } else {
        &message["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
    assert_eq!(errors[0]["extensions"]["field"], "after", "{message}");
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_delivers_the_same_subscriptions() {
    let app = spawn_app().await;
    let id = app.register("remote-monitoring-ltc").await;
    let after = cursor_of(&app, &id).await;
    let mut client = Client::open_url(&app.ws_url(), "graphql-ws", bearer(&app))
        .await
        .unwrap();
    client
        .subscribe("1", RATING_CHANGED, json!({ "c": id, "after": after }))
        .await;
    let made = app.assess(&id, "REQUIRES_IMPROVEMENT", "2023-02-17").await;
    assert_eq!(
        client.next_data("1").await["ratingChanged"]["id"],
        made["id"]
    );
}

#[tokio::test]
async fn idle_connections_get_keep_alives_in_either_protocol() {
    let app = crate::helpers::spawn_app_with(|s| s.ws_keepalive = Duration::from_millis(200)).await;
    for (protocol, keepalive) in [("graphql-transport-ws", "ping"), ("graphql-ws", "ka")] {
        let mut client = Client::open_url(&app.ws_url(), protocol, json!({}))
            .await
            .unwrap();
        let message = client.receive_raw().await;
        assert_eq!(message["type"], keepalive, "{protocol}: {message}");
    }
}

#[tokio::test]
async fn a_connection_may_hold_only_so_many_subscriptions() {
    let app = crate::helpers::spawn_app_with(|s| s.ws_max_subscriptions = 2).await;
    let id = app.register("digital-workforce-strategy").await;
    let after = cursor_of(&app, &id).await;
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("a", RATING_CHANGED, json!({ "after": after }))
        .await;
    client
        .subscribe("b", RATING_CHANGED, json!({ "after": after }))
        .await;
    client
        .subscribe("c", RATING_CHANGED, json!({ "after": after }))
        .await;
    let refused = client.receive().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "c");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    // Ending one makes room for another; the others keep working.
    client.send(json!({ "id": "a", "type": "complete" })).await;
    client
        .subscribe("d", RATING_CHANGED, json!({ "after": after }))
        .await;
    let made = app.assess(&id, "INADEQUATE", "2023-02-17").await;
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 2 {
        let m = client.receive().await;
        if m["type"] == "complete" && m["id"] == "a" {
            continue; // the server confirms the end of "a"
        }
        assert_eq!(m["type"], "next", "{m}");
        got.insert(
            m["id"].as_str().unwrap().to_owned(),
            m["payload"]["data"]["ratingChanged"]["id"].clone(),
        );
    }
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), ["b", "d"]);
    assert!(got.values().all(|v| *v == made["id"]));
}
