//! Isolation (ADR 0013): a long write transaction that does not append events, in another
//! database of the cluster or in another table of this one, holds no subscriber back.

use crate::helpers::{TestDatabase, open_write_transaction, spawn_app};
use crate::subscriptions::{Client, RATING_CHANGED, bearer, cursor_of};
use serde_json::json;
use sqlx::PgConnection;
use std::time::{Duration, Instant};

/// How long the bystanders stay open, and the longest a subscriber may wait for an assessment
/// once the mutation has answered.
const HELD_OPEN: Duration = Duration::from_secs(10);
const PROMPT: Duration = Duration::from_secs(1);
const SUBSCRIBERS: usize = 3;

/// Whether the transaction on `conn` is still open and has its transaction id.
async fn still_open(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar::<_, Option<String>>("select pg_current_xact_id_if_assigned()::text")
        .fetch_one(conn)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn long_writers_elsewhere_do_not_delay_any_subscriber() {
    let app = spawn_app().await;
    let id = app.register("shared-care-records").await;
    let after = cursor_of(&app, &id).await;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut client = Client::open(&app, bearer(&app)).await.unwrap();
        client
            .subscribe("r", RATING_CHANGED, json!({ "c": id, "after": after }))
            .await;
        subscribers.push(client);
    }

    let elsewhere = TestDatabase::create().await;
    let mut other_database = open_write_transaction(&elsewhere.url, "nightly_batch").await;
    let mut other_table = open_write_transaction(&app.db.url, "unrelated_table").await;
    let opened = Instant::now();

    // One assessment a second while both stay open.
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut made = 0;
    let mut slowest = Duration::ZERO;
    while opened.elapsed() < HELD_OPEN - PROMPT {
        ticks.tick().await;
        let overall = ["INADEQUATE", "REQUIRES_IMPROVEMENT"][made % 2];
        let assessment = app.assess(&id, overall, "2024-02-17").await;
        let answered = Instant::now();
        for (n, subscriber) in subscribers.iter_mut().enumerate() {
            let got = tokio::time::timeout(PROMPT, subscriber.next_data("r"))
                .await
                .unwrap_or_else(|_| {
                    panic!("subscriber {n} did not get assessment {made} within {PROMPT:?}")
                });
            assert_eq!(got["ratingChanged"]["id"], assessment["id"]);
            assert_eq!(got["ratingChanged"]["overall"], overall);
        }
        slowest = slowest.max(answered.elapsed());
        made += 1;
    }
    assert!(made >= 8, "assessments were made throughout: {made}");
    assert!(slowest < PROMPT, "{slowest:?}");

    // The bystanders were open (and had written) the whole time.
    assert!(still_open(&mut other_database).await);
    assert!(still_open(&mut other_table).await);
    assert!(opened.elapsed() >= HELD_OPEN - PROMPT);
    sqlx::query("rollback")
        .execute(&mut other_database)
        .await
        .unwrap();
    sqlx::query("rollback")
        .execute(&mut other_table)
        .await
        .unwrap();
}
