//! Listing commitments with their assessments and evidence costs a bounded number of SQL
//! statements, however many commitments there are.
//!
//! sqlx reports every statement it runs as a `tracing` event (target `sqlx::query`). A layer
//! counts them per thread: each test runs its server on its own single-threaded runtime, so
//! the count is the test's own even when tests share a process. The feed's own reads are
//! left out (they run under the `feed_reader` / `feed_listener` spans), as are the log
//! sequencer's (under `log_sequencer`) and the webhook dispatcher's (under `webhooks`).

use crate::helpers::spawn_app;
use serde_json::json;
use std::cell::Cell;
use std::sync::Once;
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

thread_local! {
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

struct CountStatements;

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let in_feed = ctx.event_scope(event).is_some_and(|mut scope| {
            scope.any(|span| {
                let name = span.name();
                name.starts_with("feed_") || name.starts_with("log_") || name == "webhooks"
            })
        });
        if !in_feed {
            STATEMENTS.with(|c| c.set(c.get() + 1));
        }
    }
}

/// Installs the counting subscriber once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(CountStatements),
        );
    });
}

pub fn statements() -> u64 {
    STATEMENTS.with(Cell::get)
}

pub const LIST: &str = "{
    commitments(first: 100) {
        totalCount
        nodes {
            slug
            currentAssessment { overall previous { overall } disputes { statement } evidence { title } }
            assessments { overall evidence { title } commitment { slug } }
            evidence { title commitments { slug } }
            revisions { reason }
        }
    }
}";

async fn statements_to_list(commitments: usize) -> (u64, usize) {
    let app = spawn_app().await;
    for i in 0..commitments {
        let id = app.register(&format!("c-{i}")).await;
        app.assess(&id, "INADEQUATE", "2023-02-17").await;
        app.assess(&id, "GOOD", "2024-02-17").await;
        app.ok(
            crate::helpers::SUBMIT,
            json!({ "input": {
                "commitmentIds": [id], "title": format!("Evidence {i}"), "summary": "s",
                "submittedBy": "Panel", "submittedOn": "2023-01-01"
            }}),
        )
        .await;
    }
    let before = statements();
    let data = app.ok(LIST, json!({})).await;
    let used = statements() - before;
    (used, data["commitments"]["nodes"].as_array().unwrap().len())
}

#[tokio::test]
async fn listing_commitments_with_assessments_and_evidence_costs_the_same_statements_for_3_or_40() {
    let (few, n_few) = statements_to_list(3).await;
    let (many, n_many) = statements_to_list(40).await;
    assert_eq!((n_few, n_many), (3, 40));
    assert!(few > 0, "the counter must see the list's statements");
    // list + count + one batch per kind of related record (latest assessments, predecessors,
    // whole timelines, evidence, revisions, disputes, evidence by id, commitments by id), a
    // kind asked for at two depths taking at most two batches: about 11. The bound allows
    // for a few splits. One statement per commitment would be 40 or more. (The same on the
    // server process's own runtime: `replicas::on_the_server_process_a_list_costs…`.)
    const BOUND: u64 = 16;
    println!("statements: {few} for 3 commitments, {many} for 40");
    assert!(
        few <= BOUND && many <= BOUND,
        "{few} and {many} statements; bound {BOUND}"
    );
}
