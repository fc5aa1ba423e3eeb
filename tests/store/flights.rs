//! Identical compiled statements waiting for a connection run once
//! (`graphql::compiled::flights`).

use crate::common::TestDatabase;
use commitment_tracker::graphql::compiled::flights::Flights;
use commitment_tracker::graphql::compiled::slots::Param;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

/// Each run of this statement answers its own transaction's id, once `lock` is free.
const RUN: &str = "select pg_advisory_xact_lock_shared($1) :: text || txid_current()::text";

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn spawn_run(
    flights: &Flights,
    pool: &PgPool,
    lock: i64,
) -> tokio::task::JoinHandle<Result<Arc<str>, Arc<str>>> {
    let (flights, pool) = (flights.clone(), pool.clone());
    let sql: Arc<str> = RUN.into();
    tokio::spawn(async move { flights.run(&pool, &sql, vec![Param::Int(Some(lock))]).await })
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_statements_waiting_for_a_connection_run_once_and_later_ones_again() {
    let db = TestDatabase::create().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    let other = PgPool::connect(&db.url).await.unwrap();
    let flights = Flights::default();

    // The pool's one connection taken: five identical runs board one statement.
    let held = pool.acquire().await.unwrap();
    let runs: Vec<_> = (0..5).map(|_| spawn_run(&flights, &pool, 1)).collect();
    until("five requests wait", || flights.waiting() == 5).await;
    // A different argument is a different statement.
    let different = spawn_run(&flights, &pool, 2);
    until("six requests wait", || flights.waiting() == 6).await;
    drop(held);
    let mut answers = Vec::new();
    for run in runs {
        answers.push(run.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_ne!(different.await.unwrap().unwrap(), answers[0]);

    // A statement already sent takes no joiners: the next identical request runs again.
    let mut blocker = other.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock(1)")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let sent = spawn_run(&flights, &pool, 1);
    until("the first statement has its connection", || {
        flights.waiting() == 0 && pool.num_idle() == 0
    })
    .await;
    let later = spawn_run(&flights, &pool, 1);
    until("the later request waits on its own", || {
        flights.waiting() == 1
    })
    .await;
    blocker.commit().await.unwrap();
    let (sent, later) = (sent.await.unwrap().unwrap(), later.await.unwrap().unwrap());
    assert_ne!(sent, later);
    assert_ne!(sent, answers[0]);
    pool.close().await;
    other.close().await;
}
