//! Live delivery you can trust: several processes, dropped connections, restarted servers and
//! a restarted database all end with every change delivered exactly once, in cursor order.

use crate::helpers::{ASSESS, REGISTER, TestApp, TestDatabase, spawn_app};
use crate::processes::{PrivateCluster, ServerProcess};
use crate::subscriptions::{Client, RATING_CHANGED, cursor_of};
use commitment_tracker::auth::Role;
use commitment_tracker::config::Settings;
use commitment_tracker::startup::Application;
use commitment_tracker::store::{self, tokens};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// A writer that retries with the same idempotency key until the server answers: each
/// assessment is recorded exactly once even when a response is lost to a fault.
async fn assess_until_recorded(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    commitment: &str,
    key: &str,
) -> Value {
    let body = json!({ "query": ASSESS, "variables": { "input": {
        "commitmentId": commitment, "assessor": "HSCC Expert Panel", "assessorKind": "INDEPENDENT",
        "assessedOn": "2023-02-17", "overall": "INADEQUATE", "deliveryStatus": "NOT_ON_TRACK",
        "rationale": "Far from on track.", "idempotencyKey": key
    }}});
    for attempt in 0..400 {
        let sent = client
            .post(format!("{address}/graphql"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await;
        if let Ok(response) = sent
            && let Ok(value) = response.json::<Value>().await
            && value.get("errors").is_none()
        {
            return value["data"]["assessCommitment"].clone();
        }
        // Back off while the fault lasts (a retry policy, not a synchronisation point).
        tokio::time::sleep(Duration::from_millis(25 + attempt.min(20) * 10)).await;
    }
    panic!("assessment {key} was never recorded");
}

async fn register_via(client: &reqwest::Client, address: &str, token: &str, slug: &str) -> String {
    let body = json!({ "query": REGISTER, "variables": { "input": {
        "slug": slug, "title": slug, "description": "d", "area": "Digital foundations",
        "policySource": "p", "target": "t", "announcedOn": "2022-06-29"
    }}});
    let value: Value = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    value["data"]["registerCommitment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{value}"))
        .to_owned()
}

async fn cursor_via(client: &reqwest::Client, address: &str, commitment: &str) -> String {
    let value: Value = client
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "query($id: ID!) { commitment(id: $id) { cursor } }", "variables": { "id": commitment } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    value["data"]["commitment"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Receives `n` ratingChanged items on subscription `id`, returning (assessment ids, cursors).
async fn receive_n(client: &mut Client, id: &str, n: usize) -> (Vec<Value>, Vec<String>) {
    let mut ids = Vec::with_capacity(n);
    let mut cursors = Vec::with_capacity(n);
    while ids.len() < n {
        let data = client.next_data(id).await;
        ids.push(data["ratingChanged"]["id"].clone());
        cursors.push(data["ratingChanged"]["cursor"].as_str().unwrap().to_owned());
    }
    (ids, cursors)
}

fn assert_once_in_order(received: &[Value], cursors: &[String], expected: &HashSet<Value>) {
    let unique: HashSet<&Value> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "a change was delivered twice");
    assert_eq!(
        unique,
        expected.iter().collect(),
        "delivered set differs from the recorded set"
    );
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "not in cursor order"
    );
}

#[tokio::test]
async fn a_change_through_one_process_reaches_a_subscriber_of_another_exactly_once() {
    let db = TestDatabase::create().await;
    let a = ServerProcess::start(&db.url).await;
    let b = ServerProcess::start(&db.url).await;
    let pool = store::connect(&db.url, 2).await.unwrap();
    let (_, token) = tokens::create(&pool, "writer", Role::Admin, None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut commitments = Vec::new();
    for i in 0..10 {
        commitments.push(register_via(&http, &a.address, &token, &format!("c-{i}")).await);
    }
    let after = cursor_via(&http, &a.address, commitments.last().unwrap()).await;
    let mut subscriber = Client::open_url(&b.ws_url(), "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    subscriber
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;

    // 200 assessments sent concurrently through process A.
    let made: Vec<Value> = futures_util::stream::iter(0..200)
        .map(|i| {
            let (http, address, token) = (http.clone(), a.address.clone(), token.clone());
            let commitment = commitments[i % commitments.len()].clone();
            async move {
                assess_until_recorded(&http, &address, &token, &commitment, &format!("k-{i}")).await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let expected: HashSet<Value> = made.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(expected.len(), 200);

    let (received, cursors) = receive_n(&mut subscriber, "s", 200).await;
    assert_once_in_order(&received, &cursors, &expected);
    // Nothing more is pending: the next item is the next change.
    let last = assess_until_recorded(&http, &a.address, &token, &commitments[0], "last").await;
    assert_eq!(
        subscriber.next_data("s").await["ratingChanged"]["id"],
        last["id"]
    );
}

#[tokio::test]
async fn a_client_that_reconnects_with_its_cursor_gets_exactly_the_20_changes_it_missed() {
    let app = spawn_app().await;
    let id = app.register("nhs-app-registration").await;
    let after = cursor_of(&app, &id).await;
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;
    for _ in 0..3 {
        app.assess(&id, "GOOD", "2023-02-17").await;
    }
    let (_, seen) = receive_n(&mut client, "s", 3).await;
    client.close().await;

    let mut missed = Vec::new();
    for _ in 0..20 {
        missed.push(app.assess(&id, "GOOD", "2023-02-17").await["id"].clone());
    }
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe(
            "s",
            RATING_CHANGED,
            json!({ "after": seen.last().unwrap() }),
        )
        .await;
    let (received, _) = receive_n(&mut client, "s", 20).await;
    assert_eq!(received, missed, "exactly the missed 20, in order");
    let next = app.assess(&id, "GOOD", "2023-02-17").await;
    assert_eq!(
        client.next_data("s").await["ratingChanged"]["id"],
        next["id"]
    );
}

#[tokio::test]
async fn after_a_server_is_killed_its_clients_resume_on_a_new_one_without_loss_or_repeats() {
    let db = TestDatabase::create().await;
    let writer = ServerProcess::start(&db.url).await;
    let doomed = ServerProcess::start(&db.url).await;
    let pool = store::connect(&db.url, 2).await.unwrap();
    let (_, token) = tokens::create(&pool, "writer", Role::Admin, None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let commitment = register_via(&http, &writer.address, &token, "epr-all-trusts").await;
    let after = cursor_via(&http, &writer.address, &commitment).await;
    let mut client = Client::open_url(&doomed.ws_url(), "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    client
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;

    let mut expected = HashSet::new();
    for i in 0..10 {
        expected.insert(
            assess_until_recorded(
                &http,
                &writer.address,
                &token,
                &commitment,
                &format!("a{i}"),
            )
            .await["id"]
                .clone(),
        );
    }
    let (mut received, mut cursors) = receive_n(&mut client, "s", 5).await;
    doomed.kill().await;
    // Whatever the server sent before it died still counts; then the socket closes.
    loop {
        let m = client.receive().await;
        if m["type"] == "closed" {
            break;
        }
        assert_eq!(m["type"], "next", "{m}");
        received.push(m["payload"]["data"]["ratingChanged"]["id"].clone());
        cursors.push(
            m["payload"]["data"]["ratingChanged"]["cursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for i in 10..25 {
        expected.insert(
            assess_until_recorded(
                &http,
                &writer.address,
                &token,
                &commitment,
                &format!("a{i}"),
            )
            .await["id"]
                .clone(),
        );
    }
    let reborn = ServerProcess::start(&db.url).await;
    let mut client = Client::open_url(&reborn.ws_url(), "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    client
        .subscribe(
            "s",
            RATING_CHANGED,
            json!({ "after": cursors.last().unwrap() }),
        )
        .await;
    let missing = 25 - received.len();
    let (rest, rest_cursors) = receive_n(&mut client, "s", missing).await;
    received.extend(rest);
    cursors.extend(rest_cursors);
    assert_once_in_order(&received, &cursors, &expected);
}

/// Streams assessments through `app` while `fault` runs once midway; returns what was recorded.
async fn stream_through_fault(
    app_address: &str,
    token: &str,
    commitment: &str,
    fault: impl AsyncFnOnce(),
) -> HashSet<Value> {
    let http = reqwest::Client::new();
    let mut expected = HashSet::new();
    for i in 0..10 {
        expected.insert(
            assess_until_recorded(
                &http,
                app_address,
                token,
                commitment,
                &format!("before-{i}"),
            )
            .await["id"]
                .clone(),
        );
    }
    fault().await;
    for i in 0..10 {
        expected.insert(
            assess_until_recorded(&http, app_address, token, commitment, &format!("after-{i}"))
                .await["id"]
                .clone(),
        );
    }
    expected
}

#[tokio::test]
async fn cutting_the_servers_database_connections_loses_and_repeats_nothing() {
    let app = spawn_app().await;
    let id = app.register("data-for-rd").await;
    let after = cursor_of(&app, &id).await;
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;
    let db_name = app.db.name.clone();
    let admin = store::connect(&format!("{}/postgres", crate::helpers::server_url()), 1)
        .await
        .unwrap();
    let expected = stream_through_fault(&app.address, &app.admin_token, &id, async || {
        let cut: Vec<bool> = sqlx::query_scalar(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
        )
        .bind(&db_name)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(!cut.is_empty(), "the server had connections to cut");
    })
    .await;
    let (received, cursors) = receive_n(&mut client, "s", 20).await;
    assert_once_in_order(&received, &cursors, &expected);
    check_still_live(&app, &mut client, &id).await;
}

async fn check_still_live(app: &TestApp, client: &mut Client, commitment: &str) {
    let next = app.assess(commitment, "GOOD", "2024-01-01").await;
    assert_eq!(
        client.next_data("s").await["ratingChanged"]["id"],
        next["id"]
    );
}

#[tokio::test]
async fn a_restarted_postgres_loses_and_repeats_nothing_and_clients_resume_from_their_cursor() {
    let cluster = std::sync::Arc::new(PrivateCluster::start());
    let url = cluster.url("commitment_tracker");
    let mut settings = Settings::new(url.clone(), "127.0.0.1:0".parse().unwrap());
    settings.feed_poll_interval = Duration::from_millis(200);
    let app = Application::build(settings)
        .await
        .expect("build against the private cluster");
    let address = format!("http://{}", app.local_addr());
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let (_, token) = tokens::create(&pool, "writer", Role::Admin, None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let commitment = register_via(&http, &address, &token, "epr-90-percent-trusts").await;
    let after = cursor_via(&http, &address, &commitment).await;
    let ws_url = format!("{}/graphql/ws", address.replace("http://", "ws://"));
    let mut client = Client::open_url(&ws_url, "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    client
        .subscribe("s", RATING_CHANGED, json!({ "after": after }))
        .await;

    let expected = stream_through_fault(&address, &token, &commitment, async || {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .unwrap();
    })
    .await;
    let (received, cursors) = receive_n(&mut client, "s", 20).await;
    assert_once_in_order(&received, &cursors, &expected);

    // And a client that reconnects from a cursor in the middle gets exactly the rest.
    client.close().await;
    let mut again = Client::open_url(&ws_url, "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    again
        .subscribe("s", RATING_CHANGED, json!({ "after": cursors[9] }))
        .await;
    let (rest, _) = receive_n(&mut again, "s", 10).await;
    assert_eq!(rest, received[10..].to_vec());
}
