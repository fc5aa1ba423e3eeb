//! The README's examples run as written, in order, on a fresh database with the NHS data
//! loaded; each `<…>` is replaced with what the example before it answered.

use crate::helpers::{seed_file, spawn_app_with};
use crate::subscriptions::Client;
use serde_json::json;

/// Every ```graphql block of the README, in order.
fn examples() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .split("```graphql\n")
        .skip(1)
        .map(|block| block[..block.find("```").unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn the_readme_examples_run_as_written_in_order() {
    // The webhook example's address stands for the reader's own: here, one on this machine.
    let app = spawn_app_with(|s| s.webhooks.allow_private = true).await;
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let examples = examples();
    assert_eq!(
        examples.len(),
        6,
        "query, mutation, subscription, time travel, erasure, webhook"
    );

    let data = app.ok(&examples[0], json!({})).await;
    assert!(data["commitments"]["totalCount"].as_i64().unwrap() > 0);
    let id = data["commitment"]["id"].as_str().unwrap();

    let mutation = examples[1].replace("<id of epr-all-trusts from the query above>", id);
    assert!(!mutation.contains('<'), "a placeholder is left: {mutation}");
    let made = app.ok(&mutation, json!({})).await["assessCommitment"].clone();
    // The idempotency key makes the same mutation again answer the same and write nothing.
    let events = app.event_count().await;
    let again = app.ok(&mutation, json!({})).await["assessCommitment"].clone();
    assert_eq!(again["id"], made["id"]);
    assert_eq!(app.event_count().await, events);

    let subscription = examples[2].replace(
        "<cursor from the mutation's answer>",
        made["cursor"].as_str().unwrap(),
    );
    let mut client = Client::open(&app, json!({})).await.unwrap();
    client.subscribe("s", &subscription, json!({})).await;
    let next = app.assess(id, "GOOD", "2025-09-01").await;
    let received = client.next_data("s").await;
    assert_eq!(received["ratingChanged"]["id"], next["id"]);

    let data = app.ok(&examples[3], json!({})).await;
    assert!(
        data["before"]["dueDate"] != data["after"]["dueDate"],
        "{data}"
    );

    // The erasure example erases the submitter it names, once.
    let data = app.ok(&examples[4], json!({})).await;
    assert_eq!(data["erasePersonalData"]["erasedValues"], 1, "{data}");
    let again = app.ok(&examples[4], json!({})).await;
    assert_eq!(again, data);

    let webhook = examples[5].replace(
        "https://newsroom.example.org/hooks/nhs",
        "http://127.0.0.1:9/hooks/nhs",
    );
    let data = app.ok(&webhook, json!({})).await;
    assert!(
        data["createWebhook"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(data["createWebhook"]["webhook"]["state"], "ACTIVE");
}
