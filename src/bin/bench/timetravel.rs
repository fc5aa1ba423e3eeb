//! `timetravel`: one commitment with a long history, the same query over HTTP live (from the
//! projections) and with `asOf` and `validOn` (folded from the log), once before the planner
//! has statistics for the loaded log and then after `analyze`.

use crate::ordering::{assessed, day, metadata, streams};
use crate::support::{Client, Latencies, Server, ratio, with_database};
use anyhow::Context;
use bytes::Bytes;
use chrono::NaiveDate;
use commitment_tracker::domain::commitment::CommitmentEvent;
use commitment_tracker::domain::{DomainEvent, StreamType};
use commitment_tracker::store::event_store;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Instant;
use uuid::Uuid;

pub struct TimeTravelArgs {
    pub events: usize,
    pub queries: usize,
}

const QUERY: &str = "query($id: ID!, $asOf: DateTime, $validOn: Date) {
    commitment(id: $id, asOf: $asOf, validOn: $validOn) {
        version dueDate
        currentAssessment { overall assessedOn previous { overall } }
        assessments(last: 5) { overall assessedOn }
    }
}";

/// One commitment with `events` assessments, appended 100 to a transaction with projections.
pub async fn long_stream(pool: &PgPool, events: usize) -> anyhow::Result<Uuid> {
    let id = streams(pool, 1).await?[0];
    // The registration's projection row.
    let mut conn = pool.acquire().await?;
    let first = event_store::load_stream(&mut conn, id).await?;
    drop(conn);
    let mut tx = pool.begin().await?;
    commitment_tracker::store::projections::apply(&mut tx, &first[0], &first[0].decode()?).await?;
    tx.commit().await?;
    let mut left = events;
    let mut offset = 0i64;
    while left > 0 {
        let n = left.min(100);
        let batch: Vec<(DomainEvent, NaiveDate)> = (0..n)
            .map(|_| {
                offset += 1;
                let on = day() + chrono::Duration::days(offset % 3000);
                let mut e = assessed();
                if let DomainEvent::Commitment(CommitmentEvent::Assessed(a)) = &mut e {
                    a.assessed_on = on;
                }
                (e, on)
            })
            .collect();
        let mut tx = pool.begin().await?;
        let head = event_store::lock_stream(&mut tx, id, StreamType::Commitment)
            .await?
            .context("stream exists")?;
        let stored = event_store::append(&mut tx, &head, &batch, &metadata()).await?;
        for (s, (e, _)) in stored.iter().zip(&batch) {
            commitment_tracker::store::projections::apply(&mut tx, s, e).await?;
        }
        tx.commit().await?;
        left -= n;
    }
    Ok(id)
}

async fn timed(client: &mut Client, variables: Value, n: usize) -> anyhow::Result<Latencies> {
    let body: Bytes =
        serde_json::to_vec(&json!({ "query": QUERY, "variables": variables }))?.into();
    let mut latencies = Latencies::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let data = client.post(body.clone()).await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(
            data["commitment"]["assessments"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "no assessments in {data}"
        );
    }
    Ok(latencies)
}

pub async fn run(server_url: &str, args: &TimeTravelArgs) -> anyhow::Result<Value> {
    with_database(server_url, 4, async |db| {
        let id = long_stream(&db.pool, args.events).await?;
        let server = Server::start(&db.url, &[]).await?;
        let mut client = Client::connect(server.addr, None).await?;
        let now = chrono::Utc::now().to_rfc3339();
        // Warm the connection pool and caches alike for every variant.
        for v in [json!({ "id": id }), json!({ "id": id, "asOf": now }), json!({ "id": id, "validOn": "2026-01-01" })] {
            timed(&mut client, v, 3).await?;
        }
        // Right after the load the planner has no statistics for it (autovacuum analyses a
        // table a minute or so after it grew), and plans the view's fold of the log as a
        // sequential scan; timed first, then as a database that has been running plans it.
        let before_statistics = timed(&mut client, json!({ "id": id, "asOf": now }), args.queries)
            .await?
            .summary();
        sqlx::query("analyze").execute(&db.pool).await?;
        for v in [json!({ "id": id, "asOf": now }), json!({ "id": id, "validOn": "2026-01-01" })] {
            timed(&mut client, v, 3).await?;
        }
        let live = timed(&mut client, json!({ "id": id }), args.queries).await?.summary();
        let as_of = timed(&mut client, json!({ "id": id, "asOf": now }), args.queries).await?.summary();
        let valid_on = timed(&mut client, json!({ "id": id, "validOn": "2026-01-01" }), args.queries)
            .await?
            .summary();
        server.stop().await?;
        let p99 = |v: &Value| v["p99_ms"].as_f64().unwrap_or(f64::NAN);
        Ok(json!({
            "scenario": "timetravel",
            "events_in_stream": args.events,
            "queries": args.queries,
            "live": live,
            "as_of": as_of,
            "valid_on": valid_on,
            "as_of_before_statistics": before_statistics,
            "p99_over_live": { "as_of": ratio(p99(&as_of), p99(&live)), "valid_on": ratio(p99(&valid_on), p99(&live)) },
        }))
    })
    .await
}
