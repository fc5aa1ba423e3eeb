//! The process's figures for Prometheus (DESIGN §12), through the `metrics` facade and its
//! Prometheus exporter, rendered by `GET /metrics`.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `graphql_requests_total` | counter | `operation_type` (`query`, `mutation`, `subscription`, `unknown` when refused before it was known), `outcome` (`ok` or the first error's code) |
//! | `graphql_request_duration_seconds` | histogram | `operation_type` |
//! | `graphql_ws_connections` | gauge | |
//! | `graphql_subscriptions` | gauge | |
//! | `event_log_appends_total` | counter | events committed by this process |
//! | `event_log_append_batch_commands` | histogram | commands per append transaction |
//! | `live_feed_lag_seconds` | gauge | from an event's commit to its publication here |
//! | `log_tree_size`, `log_checkpoint_size` | gauge | the transparency log, as last seen by the sequencer |
//! | `db_pool_connections`, `db_pool_idle_connections`, `db_pool_max_connections` | gauge | sampled when scraped |
//! | `db_pool_acquire_wait_seconds` | histogram | each connection taken from the pool: how long it was waited for (installed by `telemetry::init`) |
//! | `log_integration_lag_seconds` | gauge | since the oldest committed event without a leaf in the transparency log was recorded (0: none); sampled when scraped |
//! | `http_rate_limited_total` | counter | `scope` (`address`, `token`): requests and WebSocket messages refused by a rate limit |
//! | `db_reads_total` | counter | `target` (`primary`, `replica`): where reads (HTTP queries, exports, feeds, pages) were sent |
//! | `db_read_position_waits_total` | counter | `outcome` (`reached`, `primary`): reads with `X-Min-Log-Position` that waited for a replica, and whether it got there in `REPLICA_WAIT_MS` |
//! | `db_replica_lag_seconds` | gauge | `replica` (`host:port/database`): how long the replica has been behind the primary (0: it has replayed everything) |
//! | `db_replica_usable` | gauge | `replica`: 1 while it serves reads, 0 while it is skipped (down, promoted, or lagging) |
//!
//! Operation names are never labels: their number is unbounded.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process-wide recorder's handle (installed once, whatever number of servers a process
/// builds, as tests do).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("graphql_request_duration_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("event_log_append_batch_commands".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("db_pool_acquire_wait_seconds".into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ],
                )
            })
            .expect("buckets are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (an embedding program's): render ours alone.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        describe();
        // Shown from the first scrape, at zero, rather than only once something happened.
        metrics::counter!("event_log_appends_total").increment(0);
        metrics::gauge!("graphql_ws_connections").increment(0.0);
        metrics::gauge!("graphql_subscriptions").increment(0.0);
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "graphql_requests_total",
        "GraphQL operations, by operation type and outcome (ok or the first error's code)"
    );
    describe_histogram!(
        "graphql_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a GraphQL query or mutation, by operation type"
    );
    describe_counter!(
        "graphql_compiled_total",
        "Queries a compiled statement took, by outcome (answered, or failed and left to the resolvers)"
    );
    describe_counter!(
        "graphql_compiled_shared_total",
        "Queries that took the answer of an identical compiled statement still waiting for a connection"
    );
    describe_gauge!("graphql_ws_connections", "Open WebSocket connections");
    describe_gauge!(
        "graphql_subscriptions",
        "Active subscriptions on WebSocket connections"
    );
    describe_counter!("event_log_appends_total", "Events this process committed");
    describe_histogram!(
        "event_log_append_batch_commands",
        "Commands carried out together in one append transaction"
    );
    describe_gauge!(
        "live_feed_lag_seconds",
        Unit::Seconds,
        "From the last published event's commit to its publication by this process"
    );
    describe_gauge!("log_tree_size", "Leaves in the transparency log's tree");
    describe_gauge!(
        "log_checkpoint_size",
        "Leaves in the last checkpoint signed"
    );
    describe_gauge!("db_pool_connections", "Connections in the database pool");
    describe_gauge!(
        "db_pool_idle_connections",
        "Idle connections in the database pool"
    );
    describe_gauge!(
        "db_pool_max_connections",
        "The database pool's size limit (DATABASE_MAX_CONNECTIONS)"
    );
    describe_histogram!(
        "db_pool_acquire_wait_seconds",
        Unit::Seconds,
        "Time each connection taken from the database pool was waited for"
    );
    describe_gauge!(
        "log_integration_lag_seconds",
        Unit::Seconds,
        "Since the oldest committed event not yet in the transparency log was recorded (0: none)"
    );
    describe_counter!(
        "http_rate_limited_total",
        "Requests and WebSocket messages refused by a rate limit, by scope (address, token)"
    );
    describe_counter!(
        "db_reads_total",
        "Reads sent to the primary or a replica, by target"
    );
    describe_counter!(
        "db_read_position_waits_total",
        "Reads that waited for a replica to reach X-Min-Log-Position, by outcome (reached, primary)"
    );
    describe_gauge!(
        "db_replica_lag_seconds",
        Unit::Seconds,
        "How long a replica has been behind the primary's write-ahead log (0: caught up)"
    );
    describe_gauge!(
        "db_replica_usable",
        "1 while a replica serves reads, 0 while it is skipped"
    );
    describe_counter!(
        "webhook_deliveries_total",
        "Webhook delivery attempts, by outcome (delivered: a 2xx answer; failed)"
    );
    describe_counter!(
        "webhooks_paused_total",
        "Webhooks paused after too many failed deliveries in a row"
    );
}

/// One webhook delivery attempt.
pub fn webhook_delivery(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
}

/// A webhook paused.
pub fn webhook_paused() {
    metrics::counter!("webhooks_paused_total").increment(1);
}

/// One GraphQL operation answered.
pub fn graphql_request(operation_type: &'static str, outcome: String, seconds: Option<f64>) {
    metrics::counter!("graphql_requests_total", "operation_type" => operation_type, "outcome" => outcome)
        .increment(1);
    if let Some(seconds) = seconds {
        metrics::histogram!("graphql_request_duration_seconds", "operation_type" => operation_type)
            .record(seconds);
    }
}
