//! Apollo's automatic persisted queries, over POST and GET, known to every process that
//! serves the database; and trusted documents (`PERSISTED_QUERIES_ONLY`).

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::processes::ServerProcess;
use crate::subscriptions::Client;
use commitment_tracker::graphql::gateway::PersistedMode;
use commitment_tracker::store::persisted::sha256_hex;
use serde_json::{Value, json};

const QUERY: &str = "query Scores { scorecard { total byRating { rating count } } }";

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// POSTs `body` with an optional token; the status and body.
async fn post(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// `GET /graphql` with only a persisted query's hash (and variables).
async fn get_by_hash(address: &str, hash: &str, variables: Value) -> (u16, Value) {
    let extensions = persisted(hash).to_string();
    let response = reqwest::Client::new()
        .get(format!("{address}/graphql"))
        .query(&[
            ("extensions", extensions.as_str()),
            ("variables", &variables.to_string()),
        ])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_miss_then_the_document_with_its_hash_registers_it_for_every_process() {
    let app = spawn_app().await;
    let hash = sha256_hex(QUERY);

    let (status, body) = post(&app, json!({ "extensions": persisted(&hash) }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    let (status, body) = post(
        &app,
        json!({ "query": QUERY, "extensions": persisted(&hash) }),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let expected = body["data"].clone();
    assert!(expected["scorecard"]["total"].is_number(), "{body}");

    // The hash alone now answers, by POST and by GET, here and on another process.
    let (_, body) = post(&app, json!({ "extensions": persisted(&hash) }), None).await;
    assert_eq!(body["data"], expected, "{body}");
    let (status, body) = get_by_hash(&app.address, &hash, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], expected);
    let other = ServerProcess::start(&app.db.url).await;
    let (status, body) = get_by_hash(&other.address, &hash, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], expected);
}

#[tokio::test]
async fn a_hash_that_does_not_match_its_document_is_refused_and_registers_nothing() {
    let app = spawn_app().await;
    let wrong = sha256_hex("{ events { totalCount } }");
    let (_, body) = post(
        &app,
        json!({ "query": QUERY, "extensions": persisted(&wrong) }),
        None,
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none());
    let (_, body) = post(&app, json!({ "extensions": persisted(&wrong) }), None).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    for bad in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": wrong } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
        json!({ "persistedQuery": "x" }),
    ] {
        let (_, body) = post(&app, json!({ "extensions": bad }), None).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let registered: i64 = sqlx::query_scalar("select count(*) from persisted_queries")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(registered, 0);
}

#[tokio::test]
async fn a_persisted_mutation_runs_by_post_and_is_refused_by_get() {
    let app = spawn_app().await;
    let mutation =
        "mutation($input: RegisterCommitmentInput!) { registerCommitment(input: $input) { slug } }";
    let hash = sha256_hex(mutation);
    let input = json!({ "input": {
        "slug": "by-hash", "title": "t", "description": "d", "area": "a",
        "policySource": "p", "target": "t"
    }});
    let (_, body) = post(
        &app,
        json!({ "query": mutation, "variables": input, "extensions": persisted(&hash) }),
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(
        body["data"]["registerCommitment"]["slug"], "by-hash",
        "{body}"
    );
    let events = app.event_count().await;
    let (status, body) = get_by_hash(&app.address, &hash, input).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn with_trusted_documents_only_registered_documents_run_and_only_admins_register() {
    let app = spawn_app_with(|s| s.persisted_mode = PersistedMode::Only).await;
    let hash = sha256_hex(QUERY);

    // Anonymous: neither a plain document nor one sent with its hash runs or registers.
    let (_, body) = post(&app, json!({ "query": QUERY }), None).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    let (_, body) = post(
        &app,
        json!({ "query": QUERY, "extensions": persisted(&hash) }),
        None,
    )
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    let (_, body) = post(&app, json!({ "extensions": persisted(&hash) }), None).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    // A non-admin token registers nothing either.
    let assessor = app
        .token(commitment_tracker::auth::Role::Assessor, "an assessor")
        .await;
    let (_, body) = post(
        &app,
        json!({ "query": QUERY, "extensions": persisted(&hash) }),
        Some(&assessor),
    )
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    // An admin registers it; then anyone runs it by hash, or by its exact text.
    let (_, body) = post(
        &app,
        json!({ "query": QUERY, "extensions": persisted(&hash) }),
        Some(&app.admin_token),
    )
    .await;
    assert!(body["data"]["scorecard"].is_object(), "{body}");
    let (_, body) = post(&app, json!({ "extensions": persisted(&hash) }), None).await;
    assert!(body["data"]["scorecard"].is_object(), "{body}");
    let (_, body) = post(&app, json!({ "query": QUERY }), None).await;
    assert!(body["data"]["scorecard"].is_object(), "{body}");
    let (_, body) = post(&app, json!({ "query": "{ events { totalCount } }" }), None).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    // Subscriptions too.
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .subscribe("s", "subscription { ratingChanged { id } }", json!({}))
        .await;
    let (error, message) = client.first_error("s").await;
    assert_eq!(
        error["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{message}"
    );
}

#[tokio::test]
async fn a_registered_subscription_runs_by_its_hash_over_websocket() {
    let app = spawn_app().await;
    let subscription = "subscription($after: String) { ratingChanged(after: $after) { id } }";
    let hash = sha256_hex(subscription);
    let id = app.register("by-hash-live").await;
    let cursor = crate::subscriptions::cursor_of(&app, &id).await;

    // Registered by sending it with its hash over the WebSocket itself.
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client
        .send(json!({ "id": "a", "type": "subscribe", "payload": {
            "query": subscription, "variables": { "after": cursor },
            "extensions": persisted(&hash) } }))
        .await;
    let made = app.assess(&id, "GOOD", "2025-01-01").await;
    assert_eq!(
        client.next_data("a").await["ratingChanged"]["id"],
        made["id"]
    );

    // Then the hash alone, on a new connection.
    let mut other = Client::open(&app, json!({})).await.unwrap();
    other
        .send(json!({ "id": "b", "type": "subscribe", "payload": {
            "variables": { "after": cursor }, "extensions": persisted(&hash) } }))
        .await;
    assert_eq!(
        other.next_data("b").await["ratingChanged"]["id"],
        made["id"]
    );

    // An unknown hash is refused with its code.
    other
        .send(json!({ "id": "c", "type": "subscribe", "payload": {
            "extensions": persisted(&sha256_hex("subscription { nothing }")) } }))
        .await;
    let (error, message) = other.first_error("c").await;
    assert_eq!(
        error["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{message}"
    );
}
