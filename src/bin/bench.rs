//! Benchmarks that print one JSON object per scenario, each with a baseline measured in the
//! same run so that ratios hold on a noisy machine.
//!
//! `cargo run --release --bin bench -- ordering [--writers 32] [--appends 200]`
//!
//! `cargo run --release --bin bench -- timetravel [--events 10000] [--queries 200]`
//!
//! `timetravel` builds one commitment with that many assessments and times the same GraphQL
//! query live (from the projections) and with `asOf` and `validOn` (folded from the log),
//! executed in-process against the real schema and database.
//!
//! `ordering` compares the two ways of giving readers committed order (DESIGN §4), with the
//! same append work: the transaction-id horizon (what the server does: a per-stream lock and
//! readers below `pg_snapshot_xmin`) and serialised appends (one global lock held to commit,
//! readers paging on position). It reports append throughput and latency, and the delay from
//! a writer's commit to a reader's receipt.
#![forbid(unsafe_code)]

use anyhow::Context;
use chrono::NaiveDate;
use commitment_tracker::domain::DomainEvent;
use commitment_tracker::domain::StreamType;
use commitment_tracker::domain::commitment::{
    CommitmentAssessed, CommitmentEvent, CommitmentRegistered,
};
use commitment_tracker::domain::rating::{Aspects, AssessorKind, DeliveryStatus, Rating};
use commitment_tracker::store::cursor::EventCursor;
use commitment_tracker::store::event_store::{self, Metadata};
use commitment_tracker::store::feed::{EventFilter, Feed, FeedSettings};
use commitment_tracker::store::{self};
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ordering {
    /// Per-stream lock, readers below the horizon, NOTIFY after commit (the server's way).
    Horizon,
    /// The same, but NOTIFY sent inside the appending transaction.
    HorizonNotifyInside,
    /// One global lock held to commit, readers paging on position.
    Serialised,
}

struct Args {
    scenario: String,
    writers: usize,
    appends: usize,
    events: usize,
    queries: usize,
    server: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let scenario = args
        .next()
        .context("usage: bench <ordering> [--writers N] [--appends N]")?;
    let mut parsed = Args {
        scenario,
        writers: 32,
        appends: 200,
        events: 10_000,
        queries: 200,
        server: std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--writers" => parsed.writers = value.parse()?,
            "--appends" => parsed.appends = value.parse()?,
            "--events" => parsed.events = value.parse()?,
            "--queries" => parsed.queries = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(parsed)
}

async fn fresh_database(server: &str) -> anyhow::Result<(String, PgPool)> {
    let url = format!("{server}/bench_{}", Uuid::now_v7().simple());
    store::ensure_database(&url).await?;
    // A long acquire timeout: a strategy that serialises commits must be measured, not aborted.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(48)
        .acquire_timeout(Duration::from_secs(300))
        .connect(&url)
        .await?;
    store::migrate(&pool).await?;
    Ok((url, pool))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 2, 17).unwrap()
}

fn assessed() -> DomainEvent {
    DomainEvent::Commitment(CommitmentEvent::Assessed(CommitmentAssessed {
        assessment_id: Uuid::now_v7(),
        assessor: "HSCC Expert Panel".into(),
        assessor_kind: AssessorKind::Independent,
        assessed_on: day(),
        overall: Some(Rating::Inadequate),
        aspects: Aspects::default(),
        delivery_status: DeliveryStatus::NotOnTrack,
        rationale: "Far from on track; weak common standards hold back interoperability.".into(),
        evidence_ids: vec![Uuid::now_v7(), Uuid::now_v7()],
        evaluation: Some("HC 780".into()),
    }))
}

fn metadata() -> Metadata {
    Metadata {
        actor: "bench".into(),
        role: "admin".into(),
        request_id: Some(Uuid::now_v7().to_string()),
        idempotency_key: None,
    }
}

/// Creates one commitment stream per writer.
async fn streams(pool: &PgPool, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::now_v7();
        let mut tx = pool.begin().await?;
        let head = event_store::new_stream(&mut tx, id, StreamType::Commitment).await?;
        let registered =
            DomainEvent::Commitment(CommitmentEvent::Registered(CommitmentRegistered {
                slug: format!("bench-{i}"),
                title: "t".into(),
                description: "d".into(),
                area: "a".into(),
                policy_source: "p".into(),
                target: "t".into(),
                due_date: None,
                owner: None,
                announced_on: day(),
            }));
        event_store::append(&mut tx, &head, &[(registered, day())], &metadata()).await?;
        tx.commit().await?;
        ids.push(id);
    }
    Ok(ids)
}

/// One append the way the server does it, optionally behind one global lock.
async fn append_one(pool: &PgPool, stream: Uuid, ordering: Ordering) -> anyhow::Result<i64> {
    let mut tx = pool.begin().await?;
    if ordering == Ordering::Serialised {
        sqlx::query("select pg_advisory_xact_lock(0)")
            .execute(&mut *tx)
            .await?;
    }
    let head = event_store::lock_stream(&mut tx, stream, StreamType::Commitment)
        .await?
        .context("stream exists")?;
    let stored = event_store::append(&mut tx, &head, &[(assessed(), day())], &metadata()).await?;
    if ordering == Ordering::HorizonNotifyInside {
        sqlx::query("select pg_notify('bench', '')")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(stored[0].position)
}

/// Serialised appends' reader: position order is commit order, so it pages on position.
async fn position_reader(
    pool: PgPool,
    wake: Arc<Notify>,
    expected: usize,
    receipts: Arc<Mutex<HashMap<i64, Instant>>>,
) -> anyhow::Result<()> {
    // A fresh database: every assessment in it is a writer's.
    let mut last: i64 = 0;
    let mut seen = 0;
    while seen < expected {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        loop {
            // The same columns the feed reads, so both readers do the same work per event.
            let rows: Vec<i64> = sqlx::query(
                "select position, transaction_id, event_id, stream_id, stream_type, version, event_type,
                        schema_version, payload, metadata, occurred_at, recorded_at, previous_hash, hash
                 from events where position > $1 and event_type = 'CommitmentAssessed'
                 order by position limit 1000",
            )
            .bind(last)
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|row| event_store::StoredEvent::from_row(row).map(|e| e.position))
            .collect::<Result<_, _>>()?;
            let now = Instant::now();
            let mut r = receipts.lock().unwrap();
            for p in &rows {
                r.insert(*p, now);
            }
            drop(r);
            seen += rows.len();
            if let Some(p) = rows.last() {
                last = *p;
            }
            if rows.len() < 1000 {
                break;
            }
        }
    }
    Ok(())
}

async fn ordering_run(
    server: &str,
    ordering: Ordering,
    writers: usize,
    appends: usize,
) -> anyhow::Result<serde_json::Value> {
    let (url, pool) = fresh_database(server).await?;
    let result = ordering_measure(&pool, ordering, writers, appends).await;
    pool.close().await;
    drop_database(server, &url).await?;
    result
}

/// Drops a benchmark's database (and any connection left to it).
async fn drop_database(server: &str, url: &str) -> anyhow::Result<()> {
    let name = url.rsplit('/').next().context("database name")?;
    let admin = store::connect(&format!("{server}/postgres"), 1).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&admin)
    .await?;
    admin.close().await;
    Ok(())
}

async fn ordering_measure(
    pool: &PgPool,
    ordering: Ordering,
    writers: usize,
    appends: usize,
) -> anyhow::Result<serde_json::Value> {
    let pool = pool.clone();
    let ids = streams(&pool, writers).await?;
    let receipts: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let expected = writers * appends;

    // The reader under test.
    let reader = match ordering {
        Ordering::Horizon | Ordering::HorizonNotifyInside => {
            let feed = Feed::new(pool.clone(), FeedSettings::default()).await?;
            let feed_task = tokio::spawn(feed.clone().run(std::future::pending()));
            // Only the writers' events: the streams' registrations may still be behind the head.
            let only_appends = EventFilter {
                stream_id: None,
                types: Some(vec!["CommitmentAssessed".into()]),
            };
            let mut events = feed.subscribe(Some(feed.head()), only_appends);
            let receipts = receipts.clone();
            let wake = wake.clone();
            let feed2 = feed.clone();
            tokio::spawn(async move {
                // Forward writer wake-ups to the feed (in the server, the commit path does this).
                let forward = tokio::spawn(async move {
                    loop {
                        wake.notified().await;
                        feed2.wake();
                    }
                });
                let mut seen = 0;
                while seen < expected {
                    let Some(e) = events.next().await else { break };
                    receipts.lock().unwrap().insert(e.position, Instant::now());
                    seen += 1;
                }
                forward.abort();
                feed_task.abort();
                Ok::<_, anyhow::Error>(())
            })
        }
        Ordering::Serialised => tokio::spawn(position_reader(
            pool.clone(),
            wake.clone(),
            expected,
            receipts.clone(),
        )),
    };

    let commits: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for stream in ids {
        let (pool, commits, wake) = (pool.clone(), commits.clone(), wake.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(appends);
            for _ in 0..appends {
                let t = Instant::now();
                let position = append_one(&pool, stream, ordering).await?;
                let done = Instant::now();
                commits.lock().unwrap().insert(position, done);
                wake.notify_one();
                latencies.push(ms(done - t));
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut append_ms = Vec::new();
    for t in tasks {
        append_ms.extend(t.await??);
    }
    let elapsed = started.elapsed();
    tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .context("reader finished")???;

    append_ms.sort_by(f64::total_cmp);
    let commits = commits.lock().unwrap();
    let receipts = receipts.lock().unwrap();
    let mut delivery_ms: Vec<f64> = commits
        .iter()
        .filter_map(|(p, c)| receipts.get(p).map(|r| ms(r.saturating_duration_since(*c))))
        .collect();
    delivery_ms.sort_by(f64::total_cmp);
    let _ = EventCursor::START;
    Ok(json!({
        "ordering": match ordering {
            Ordering::Horizon => "horizon",
            Ordering::HorizonNotifyInside => "horizon_notify_inside",
            Ordering::Serialised => "serialised",
        },
        "writers": writers,
        "appends": expected,
        "delivered": delivery_ms.len(),
        "appends_per_sec": (expected as f64 / elapsed.as_secs_f64()).round(),
        "append_ms": { "p50": percentile(&append_ms, 0.5), "p99": percentile(&append_ms, 0.99) },
        "delivery_ms": { "p50": percentile(&delivery_ms, 0.5), "p99": percentile(&delivery_ms, 0.99) },
    }))
}

async fn ordering(args: &Args) -> anyhow::Result<()> {
    let horizon = ordering_run(&args.server, Ordering::Horizon, args.writers, args.appends).await?;
    let inside = ordering_run(
        &args.server,
        Ordering::HorizonNotifyInside,
        args.writers,
        args.appends,
    )
    .await?;
    let serialised = ordering_run(
        &args.server,
        Ordering::Serialised,
        args.writers,
        args.appends,
    )
    .await?;
    let rate = |v: &serde_json::Value| v["appends_per_sec"].as_f64().unwrap_or(f64::NAN);
    let ratio = |v: &serde_json::Value| (rate(v) / rate(&horizon) * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "scenario": "ordering",
            "horizon": horizon,
            "horizon_notify_inside": inside,
            "serialised": serialised,
            "throughput_over_horizon": {
                "horizon_notify_inside": ratio(&inside),
                "serialised": ratio(&serialised),
            },
        })
    );
    Ok(())
}

/// One commitment with `events` assessments, appended 100 to a transaction with projections.
async fn long_stream(pool: &PgPool, events: usize) -> anyhow::Result<Uuid> {
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

async fn timed_queries(
    schema: &commitment_tracker::graphql::AppSchema,
    query: &str,
    variables: serde_json::Value,
    n: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut ms_taken = Vec::with_capacity(n);
    for _ in 0..n {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables.clone()))
            .data(commitment_tracker::graphql::RequestInfo::default());
        let t = Instant::now();
        let response = schema.execute(request).await;
        ms_taken.push(ms(t.elapsed()));
        anyhow::ensure!(
            response.errors.is_empty(),
            "query failed: {:?}",
            response.errors
        );
    }
    ms_taken.sort_by(f64::total_cmp);
    Ok(json!({ "p50_ms": percentile(&ms_taken, 0.5), "p99_ms": percentile(&ms_taken, 0.99) }))
}

async fn timetravel(args: &Args) -> anyhow::Result<()> {
    let (url, pool) = fresh_database(&args.server).await?;
    let result = async {
        let id = long_stream(&pool, args.events).await?;
        let feed = Feed::new(pool.clone(), FeedSettings::default()).await?;
        let schema =
            commitment_tracker::graphql::build_schema(commitment_tracker::graphql::SchemaDeps {
                pool: pool.clone(),
                commands: commitment_tracker::commands::Commands::new(pool.clone(), feed.clone()),
                feed,
                scorecard_rule: Default::default(),
                max_depth: 64,
                max_complexity: 100_000,
                max_page: 500,
            });
        let query = "query($id: ID!, $asOf: DateTime, $validOn: Date) {
            commitment(id: $id, asOf: $asOf, validOn: $validOn) {
                version dueDate currentAssessment { overall assessedOn previous { overall } }
            }
        }";
        let now = chrono::Utc::now().to_rfc3339();
        let live = timed_queries(&schema, query, json!({ "id": id }), args.queries).await?;
        let as_of = timed_queries(
            &schema,
            query,
            json!({ "id": id, "asOf": now }),
            args.queries,
        )
        .await?;
        let valid_on = timed_queries(
            &schema,
            query,
            json!({ "id": id, "validOn": "2026-01-01" }),
            args.queries,
        )
        .await?;
        // The fold alone (read the log, decode, apply), without GraphQL.
        let mut fold_ms = Vec::new();
        let mut read_ms = Vec::new();
        for _ in 0..args.queries.min(50) {
            let t = Instant::now();
            let filter = commitment_tracker::store::replay::TimeFilter { as_of: Some(chrono::Utc::now()), valid_on: None };
            let _ = commitment_tracker::store::replay::View::load(&pool, filter).await?;
            fold_ms.push(ms(t.elapsed()));
            let t = Instant::now();
            let _: Vec<(i64,)> = sqlx::query_as("select position from events where recorded_at <= now() order by transaction_id, position")
                .fetch_all(&pool)
                .await?;
            read_ms.push(ms(t.elapsed()));
        }
        fold_ms.sort_by(f64::total_cmp);
        read_ms.sort_by(f64::total_cmp);
        let ratio = |v: &serde_json::Value| {
            (v["p50_ms"].as_f64().unwrap_or(f64::NAN) / live["p50_ms"].as_f64().unwrap_or(f64::NAN)
                * 10.0)
                .round()
                / 10.0
        };
        Ok::<_, anyhow::Error>(json!({
            "scenario": "timetravel",
            "events_in_stream": args.events,
            "queries": args.queries,
            "live": live,
            "as_of": as_of,
            "valid_on": valid_on,
            "p50_over_live": { "as_of": ratio(&as_of), "valid_on": ratio(&valid_on) },
            "fold_p50_ms": percentile(&fold_ms, 0.5),
            "ordered_position_scan_p50_ms": percentile(&read_ms, 0.5),
        }))
    }
    .await;
    pool.close().await;
    drop_database(&args.server, &url).await?;
    println!("{}", result?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match args.scenario.as_str() {
        "ordering" => ordering(&args).await,
        "timetravel" => timetravel(&args).await,
        other => anyhow::bail!("unknown scenario {other}; scenarios: ordering, timetravel"),
    }
}
