//! The log's sequencing and signing against PostgreSQL: indexes in committed order without
//! gaps, the stored tree against an in-memory one, and no checkpoint signed that contradicts
//! one signed before (a database restored from an older backup, a rewritten tree).

use super::*;
use commitment_tracker::store::tree;
use commitment_tracker::tlog::checkpoint::{LogKey, generate_key, verify};
use commitment_tracker::tlog::leaf::leaf_bytes;
use commitment_tracker::tlog::signer::{SignError, Signer};
use commitment_tracker::tlog::tree::MemoryTree;

async fn append_evidence(pool: &PgPool, n: usize) {
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        let head = event_store::new_stream(&mut tx, Uuid::now_v7(), StreamType::Evidence)
            .await
            .unwrap();
        event_store::append(&mut tx, &head, &[submitted(&format!("e{i}"))], &metadata())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

/// Sequences until the log holds every event. An event above the visibility horizon (any
/// transaction older than its own still running, in any database of the cluster) waits its
/// turn, so this polls the condition, bounded.
async fn sequence_all(pool: &PgPool) -> u64 {
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        while tree::sequence(&mut conn, 3).await.unwrap().is_some() {}
        let size = tree::state(&mut conn, false).await.unwrap().size;
        if size == events as u64 {
            return size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{size} of {events} sequenced"
        );
        tokio::task::yield_now().await;
    }
}

fn signer(dir: &tempfile_dir::Dir) -> (Signer, String) {
    let (skey, vkey) = generate_key("test.example/log").unwrap();
    let key = LogKey::from_private(&skey).unwrap();
    (Signer::new(key, dir.path().join("key.checkpoint")), vkey)
}

/// A directory removed when dropped.
mod tempfile_dir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("ct-log-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn sequencing_gives_every_event_its_leaf_in_committed_order_and_the_tree_matches_memory() {
    let (_db, pool) = fresh().await;
    append_evidence(&pool, 11).await;
    // Batches of three: the tree grows over several transactions.
    assert_eq!(sequence_all(&pool).await, 11);
    let events = read::events_after(
        &pool,
        EventCursor::START,
        read::Horizon::Appends,
        100,
        None,
        None,
    )
    .await
    .unwrap();
    let mut memory = MemoryTree::new();
    let mut conn = pool.acquire().await.unwrap();
    let leaves = tree::leaves(&pool, 0, 100).await.unwrap();
    assert_eq!(leaves.len(), events.len());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            leaves[i],
            leaf_bytes(&e.chain_input()),
            "leaf {i} is event {i}"
        );
        memory.append(&leaves[i]);
        let size = i as u64 + 1;
        assert_eq!(
            tree::root(&mut conn, size).await.unwrap(),
            memory.root_at(size)
        );
    }
    // (These events were appended without projections: only the log's checks are asked.)
    let report = store::verify::verify(&pool).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.message.starts_with("projection")),
        "{:?}",
        report.problems
    );
    assert_eq!(report.leaves, 11);
    // Idempotent: nothing more to do, and a second pass gives nothing new.
    assert!(tree::sequence(&mut conn, 100).await.unwrap().is_none());
}

#[tokio::test]
async fn a_signed_checkpoint_verifies_and_is_not_signed_again_until_the_tree_grows() {
    let (_db, pool) = fresh().await;
    let dir = tempfile_dir::Dir::new();
    let (signer, vkey) = signer(&dir);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        signer.sign_if_grown(&mut conn).await.unwrap().is_none(),
        "empty"
    );
    append_evidence(&pool, 4).await;
    sequence_all(&pool).await;
    let c = signer.sign_if_grown(&mut conn).await.unwrap().unwrap();
    let verified = verify(c.note.as_bytes(), &vkey).unwrap();
    assert_eq!((verified.size, verified.root), (4, c.root));
    assert!(signer.sign_if_grown(&mut conn).await.unwrap().is_none());
    append_evidence(&pool, 1).await;
    sequence_all(&pool).await;
    assert_eq!(
        signer.sign_if_grown(&mut conn).await.unwrap().unwrap().size,
        5
    );
}

#[tokio::test]
async fn a_database_restored_from_an_older_backup_gets_no_checkpoint_and_the_log_says_why() {
    let (db, pool) = fresh().await;
    let dir = tempfile_dir::Dir::new();
    let (signer, _) = signer(&dir);
    append_evidence(&pool, 3).await;
    sequence_all(&pool).await;
    {
        let mut conn = pool.acquire().await.unwrap();
        signer.sign_if_grown(&mut conn).await.unwrap().unwrap();
    }
    // The backup: the database at 3 leaves, 1 checkpoint.
    pool.close().await;
    let backup = db.copy().await;
    let pool = store::connect(&db.url, 4).await.unwrap();
    append_evidence(&pool, 3).await;
    sequence_all(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        signer.sign_if_grown(&mut conn).await.unwrap().unwrap().size,
        6
    );

    // Restored: the database is back at 3 leaves; the log has signed 6.
    let restored = store::connect(&backup.url, 4).await.unwrap();
    let mut conn = restored.acquire().await.unwrap();
    let err = signer.sign_if_grown(&mut conn).await.unwrap_err();
    assert!(matches!(err, SignError::Inconsistent(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("signed a checkpoint of 6 leaves") && text.contains("holds 3"),
        "{text}"
    );
    assert!(text.contains("older backup"), "{text}");
    // New events on the restored database make it larger, but not the tree that was signed.
    append_evidence(&restored, 4).await;
    sequence_all(&restored).await;
    let err = signer
        .sign_if_grown(&mut conn)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("stored tree of 6 leaves has root"), "{err}");
    let signed: i64 = sqlx::query_scalar("select count(*) from log_checkpoints where size > 3")
        .fetch_one(&restored)
        .await
        .unwrap();
    assert_eq!(signed, 0, "nothing was signed on the restored database");
}

#[tokio::test]
async fn the_integration_lag_is_the_age_of_the_oldest_event_without_a_leaf() {
    let (_db, pool) = fresh().await;
    assert_eq!(tree::integration_lag(&pool).await.unwrap(), 0.0, "empty");
    append_evidence(&pool, 2).await;
    let recorded: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select min(recorded_at) from events")
            .fetch_one(&pool)
            .await
            .unwrap();
    let lag = tree::integration_lag(&pool).await.unwrap();
    let age = (chrono::Utc::now() - recorded).num_microseconds().unwrap() as f64 / 1e6;
    assert!(lag > 0.0, "{lag}");
    assert!(
        lag <= age + 0.5,
        "lag {lag} s, but the oldest event is {age} s old"
    );
    sequence_all(&pool).await;
    assert_eq!(tree::integration_lag(&pool).await.unwrap(), 0.0);
}
