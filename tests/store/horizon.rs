//! The append horizon (ADR 0013): only transactions that append events hold readers back, and
//! an append cannot slip past the gate that makes that so.

use crate::common::{TestDatabase, open_write_transaction};
use crate::{append_evidence, fresh, metadata, submitted};
use commitment_tracker::domain::StreamType;
use commitment_tracker::store::cursor::EventCursor;
use commitment_tracker::store::event_store;
use commitment_tracker::store::read::{self, Horizon};
use sqlx::PgPool;
use uuid::Uuid;

async fn visible(pool: &PgPool, horizon: Horizon) -> Vec<Uuid> {
    read::events_after(pool, EventCursor::START, horizon, 100, None, None)
        .await
        .unwrap()
        .iter()
        .map(|event| event.event_id)
        .collect()
}

/// What the append horizon shows once it has settled. A transaction elsewhere in the cluster
/// (another test's) that ends while a read is under way holds that one read back, as the
/// horizon errs towards waiting (ADR 0013); the next read no longer sees it running.
async fn settled(pool: &PgPool, expected: &[Uuid]) {
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = visible(pool, Horizon::Appends).await;
        let beyond = read::events_beyond_horizon(pool, EventCursor::START, Horizon::Appends)
            .await
            .unwrap();
        if seen == expected && !beyond {
            return;
        }
    }
    panic!("the append horizon never reached {expected:?}: it shows {seen:?}");
}

#[tokio::test]
async fn writers_in_another_database_and_another_table_do_not_hold_readers_back() {
    let (db, pool) = fresh().await;
    let elsewhere = TestDatabase::create().await;
    // Both take their transaction ids before the append, so both are below it.
    let mut other_database = open_write_transaction(&elsewhere.url, "batch_job").await;
    let mut other_table = open_write_transaction(&db.url, "unrelated_table").await;

    let appended = append_evidence(&pool, "after the bystanders")
        .await
        .event_id;

    settled(&pool, &[appended]).await;
    // The cluster-wide horizon this replaced waits for both.
    assert!(visible(&pool, Horizon::Cluster).await.is_empty());
    assert!(
        read::events_beyond_horizon(&pool, EventCursor::START, Horizon::Cluster)
            .await
            .unwrap()
    );

    sqlx::query("rollback")
        .execute(&mut other_database)
        .await
        .unwrap();
    sqlx::query("rollback")
        .execute(&mut other_table)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_open_append_still_holds_readers_back_whatever_else_is_running() {
    let (db, pool) = fresh().await;
    let mut bystander = open_write_transaction(&db.url, "unrelated_table").await;

    // A enters the gate and takes the lower position, then B commits first.
    let mut a = pool.begin().await.unwrap();
    let head_a = event_store::new_stream(&mut a, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    let stored_a = event_store::append(&mut a, &head_a, &[submitted("A")], &metadata())
        .await
        .unwrap();
    let b = append_evidence(&pool, "B").await.event_id;
    assert!(
        visible(&pool, Horizon::Appends).await.is_empty(),
        "B waits behind A"
    );

    a.commit().await.unwrap();
    settled(&pool, &[stored_a[0].event_id, b]).await;
    sqlx::query("rollback")
        .execute(&mut bystander)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_append_is_refused_in_a_transaction_that_wrote_before_entering_the_gate() {
    let (_db, pool) = fresh().await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("create table written_first (note text)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let error = event_store::new_stream(&mut tx, Uuid::now_v7(), StreamType::Evidence)
        .await
        .expect_err("a transaction id taken outside the gate is refused");
    assert!(
        error.to_string().contains("append gate"),
        "the refusal says why: {error}"
    );
    drop(tx);
    assert!(visible(&pool, Horizon::Cluster).await.is_empty());

    // Entering the gate first, then writing anything, then appending more is allowed.
    let mut tx = pool.begin().await.unwrap();
    let head = event_store::new_stream(&mut tx, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    sqlx::query("create table written_inside (note text)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let stored = event_store::append(&mut tx, &head, &[submitted("inside")], &metadata())
        .await
        .unwrap();
    event_store::lock_stream(&mut tx, head.stream_id, StreamType::Evidence)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    settled(&pool, &[stored[0].event_id]).await;
}

/// [`read::skippable`] after `after`, once it shows `expected` (a transaction elsewhere that
/// ends during a read can hold that one read back, as in [`settled`]).
async fn skippable_settles(pool: &PgPool, after: EventCursor, expected: read::Skippable) {
    let mut seen = None;
    for _ in 0..100 {
        let now = read::skippable(pool, after, Horizon::Appends)
            .await
            .unwrap();
        if now == expected {
            return;
        }
        seen = Some(now);
    }
    panic!("skippable never showed {expected:?}: it shows {seen:?}");
}

#[tokio::test]
async fn a_feed_nobody_listens_to_skips_what_is_below_the_horizon_and_waits_for_the_rest() {
    let (_db, pool) = fresh().await;
    let c = append_evidence(&pool, "C").await.cursor();
    // A enters the gate after C committed and before B: C is below the horizon, B beyond it.
    let mut a = pool.begin().await.unwrap();
    let head_a = event_store::new_stream(&mut a, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    event_store::append(&mut a, &head_a, &[submitted("A")], &metadata())
        .await
        .unwrap();
    let b = append_evidence(&pool, "B").await.cursor();
    let below_and_waiting = read::Skippable {
        last: Some(c),
        erasures: vec![],
        waiting: true,
    };
    skippable_settles(&pool, EventCursor::START, below_and_waiting).await;
    let only_waiting = read::Skippable {
        last: None,
        erasures: vec![],
        waiting: true,
    };
    skippable_settles(&pool, c, only_waiting).await;

    a.commit().await.unwrap();
    let through_b = read::Skippable {
        last: Some(b),
        erasures: vec![],
        waiting: false,
    };
    skippable_settles(&pool, c, through_b).await;
    let nothing = read::Skippable {
        last: None,
        erasures: vec![],
        waiting: false,
    };
    skippable_settles(&pool, b, nothing).await;
}
