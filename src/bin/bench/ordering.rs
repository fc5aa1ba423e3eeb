//! `ordering`: the ways of giving readers committed order (DESIGN §4), with the same append
//! work: the append horizon (what the server does: a per-stream lock, readers below the
//! lowest transaction that may still append, ADR 0013), the cluster horizon it replaced
//! (readers below `pg_snapshot_xmin`, ADR 0002), and serialised appends (one global lock held
//! to commit, readers paging on position). Each horizon runs twice: alone, and with a
//! bystander, a transaction in another database of the cluster that has a transaction id and
//! stays open for the whole run (another application's batch job). It reports append
//! throughput and latency, and the delay from a writer's commit to a reader's receipt.
//! Store-level: no HTTP, so that only the ordering differs.

use crate::support::{ms, percentile, ratio, with_database};
use anyhow::Context;
use chrono::NaiveDate;
use commitment_tracker::domain::DomainEvent;
use commitment_tracker::domain::StreamType;
use commitment_tracker::domain::commitment::{
    CommitmentAssessed, CommitmentEvent, CommitmentRegistered,
};
use commitment_tracker::domain::rating::{Aspects, AssessorKind, DeliveryStatus, Rating};
use commitment_tracker::store::event_store::{self, Metadata};
use commitment_tracker::store::feed::{EventFilter, Feed, FeedSettings};
use commitment_tracker::store::read::Horizon;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ordering {
    /// Per-stream lock, readers below the given horizon, NOTIFY after commit (the server's
    /// way, with [`Horizon::Appends`]).
    Horizon(Horizon),
    /// The same with the append horizon, but NOTIFY sent inside the appending transaction.
    HorizonNotifyInside,
    /// One global lock held to commit, readers paging on position.
    Serialised,
}

pub fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 2, 17).unwrap()
}

pub fn assessed() -> DomainEvent {
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

pub fn metadata() -> Metadata {
    Metadata {
        actor: "bench".into(),
        role: "admin".into(),
        request_id: Some(Uuid::now_v7().to_string()),
        idempotency_key: None,
    }
}

/// Creates one commitment stream per writer.
pub async fn streams(pool: &PgPool, n: usize) -> anyhow::Result<Vec<Uuid>> {
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
                        schema_version, payload, metadata, occurred_at, recorded_at, previous_hash, hash,
                        (select jsonb_object_agg(p.field, p.value) from personal_data p
                          where p.event_id = events.event_id) as personal
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
    bystander: bool,
    writers: usize,
    appends: usize,
) -> anyhow::Result<Value> {
    with_database(server, 48, async |db| {
        // The bystander: a transaction id taken in another database (`postgres`), held open
        // until the writers are done.
        let bystander = match bystander {
            true => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&format!(
                    "{server}/postgres"
                ))
                .await?;
                sqlx::query("begin").execute(&mut conn).await?;
                sqlx::query("select pg_current_xact_id()")
                    .execute(&mut conn)
                    .await?;
                Some(conn)
            }
            false => None,
        };
        ordering_measure(&db.pool, ordering, bystander, writers, appends).await
    })
    .await
}

async fn ordering_measure(
    pool: &PgPool,
    ordering: Ordering,
    bystander: Option<sqlx::PgConnection>,
    writers: usize,
    appends: usize,
) -> anyhow::Result<Value> {
    let pool = pool.clone();
    let run_bystander = bystander.is_some();
    let ids = streams(&pool, writers).await?;
    let receipts: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let expected = writers * appends;

    // The reader under test.
    let reader = match ordering {
        Ordering::Horizon(_) | Ordering::HorizonNotifyInside => {
            let horizon = match ordering {
                Ordering::Horizon(horizon) => horizon,
                _ => Horizon::Appends,
            };
            let settings = FeedSettings {
                horizon,
                ..FeedSettings::default()
            };
            let feed = Feed::new(pool.clone(), settings).await?;
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
    if let Some(mut conn) = bystander {
        sqlx::query("rollback").execute(&mut conn).await?;
    }
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
    Ok(json!({
        "ordering": match ordering {
            Ordering::Horizon(Horizon::Appends) => "append_horizon",
            Ordering::Horizon(Horizon::Cluster) => "cluster_horizon",
            Ordering::HorizonNotifyInside => "horizon_notify_inside",
            Ordering::Serialised => "serialised",
        },
        "bystander": run_bystander,
        "writers": writers,
        "appends": expected,
        "delivered": delivery_ms.len(),
        "appends_per_sec": (expected as f64 / elapsed.as_secs_f64()).round(),
        "append_ms": { "p50": percentile(&append_ms, 0.5), "p99": percentile(&append_ms, 0.99) },
        "delivery_ms": { "p50": percentile(&delivery_ms, 0.5), "p99": percentile(&delivery_ms, 0.99) },
    }))
}

/// Runs the strategies with the same work and reports them side by side.
pub async fn run(server: &str, writers: usize, appends: usize) -> anyhow::Result<Value> {
    let (w, a) = (writers, appends);
    let appends_alone = ordering_run(server, Ordering::Horizon(Horizon::Appends), false, w, a);
    let appends_alone = appends_alone.await?;
    let cluster_alone = ordering_run(server, Ordering::Horizon(Horizon::Cluster), false, w, a);
    let cluster_alone = cluster_alone.await?;
    let appends_by = ordering_run(server, Ordering::Horizon(Horizon::Appends), true, w, a);
    let appends_by = appends_by.await?;
    let cluster_by = ordering_run(server, Ordering::Horizon(Horizon::Cluster), true, w, a);
    let cluster_by = cluster_by.await?;
    let inside = ordering_run(server, Ordering::HorizonNotifyInside, false, w, a).await?;
    let serialised = ordering_run(server, Ordering::Serialised, false, w, a).await?;
    let rate = |v: &Value| v["appends_per_sec"].as_f64().unwrap_or(f64::NAN);
    let p99 = |v: &Value| v["delivery_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "scenario": "ordering",
        "append_horizon": appends_alone,
        "cluster_horizon": cluster_alone,
        "append_horizon_with_bystander": appends_by,
        "cluster_horizon_with_bystander": cluster_by,
        "append_horizon_notify_inside": inside,
        "serialised": serialised,
        "throughput_over_append_horizon": {
            "cluster_horizon": ratio(rate(&cluster_alone), rate(&appends_alone)),
            "append_horizon_with_bystander": ratio(rate(&appends_by), rate(&appends_alone)),
            "append_horizon_notify_inside": ratio(rate(&inside), rate(&appends_alone)),
            "serialised": ratio(rate(&serialised), rate(&appends_alone)),
        },
        "delivery_p99_over_append_horizon": {
            "cluster_horizon": ratio(p99(&cluster_alone), p99(&appends_alone)),
            "append_horizon_with_bystander": ratio(p99(&appends_by), p99(&appends_alone)),
            "cluster_horizon_with_bystander": ratio(p99(&cluster_by), p99(&appends_alone)),
        },
    }))
}
