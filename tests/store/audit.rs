//! `verify` catches tampering; `rebuild-projections` under concurrent writes loses nothing.

use super::common::tamper;
use super::{fresh, import_seed, seeded};
use commitment_tracker::auth::{Actor, Role};
use commitment_tracker::commands::CommandContext;
use commitment_tracker::domain::commitment::AssessCommitment;
use commitment_tracker::domain::rating::{Aspects, AssessorKind, DeliveryStatus, Rating};
use commitment_tracker::domain::text::{Line, Text};
use commitment_tracker::store::replay::{TimeFilter, View};
use commitment_tracker::store::{rebuild, verify};
use sqlx::PgPool;
use uuid::Uuid;

async fn assessed_stream(pool: &PgPool) -> Uuid {
    sqlx::query_scalar("select stream_id from events where event_type = 'CommitmentAssessed' group by stream_id having count(*) >= 2 limit 1")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn verify_passes_on_the_untouched_seed() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let report = verify::verify(&pool).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.events, report.streams), (49, 28));
    assert!(report.projection_rows > 49);
}

#[tokio::test]
async fn verify_names_the_stream_and_version_of_a_changed_byte() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let stream = assessed_stream(&pool).await;
    tamper(&pool, &format!(
        "update events set payload = jsonb_set(payload, '{{rationale}}', '\"Met in full.\"') where stream_id = '{stream}' and version = 2"
    ))
    .await;
    let report = verify::verify(&pool).await.unwrap();
    assert!(!report.ok());
    let p = report
        .problems
        .iter()
        .find(|p| p.message.contains("hash"))
        .expect("a hash problem");
    assert_eq!((p.stream_id, p.version), (Some(stream), Some(2)), "{p}");
}

#[tokio::test]
async fn verify_detects_a_deleted_event() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let stream = assessed_stream(&pool).await;
    tamper(
        &pool,
        &format!("delete from events where stream_id = '{stream}' and version = 2"),
    )
    .await;
    let report = verify::verify(&pool).await.unwrap();
    let p = report
        .problems
        .iter()
        .find(|p| p.stream_id == Some(stream))
        .expect("the stream is named");
    assert_eq!(p.version, Some(2), "{p}");
    assert!(p.message.contains("missing"), "{p}");
}

#[tokio::test]
async fn verify_detects_a_reordered_chain() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let stream = assessed_stream(&pool).await;
    // Swap two events' places: the versions are renumbered so no gap shows.
    tamper(
        &pool,
        &format!(
            "update events set version = 1000 where stream_id = '{stream}' and version = 2;
             update events set version = 2 where stream_id = '{stream}' and version = 3;
             update events set version = 3 where stream_id = '{stream}' and version = 1000"
        ),
    )
    .await;
    let report = verify::verify(&pool).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.stream_id == Some(stream) && p.version == Some(2)),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn verify_detects_a_projection_that_differs_from_the_replay() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    sqlx::query("update assessments set overall = 'OUTSTANDING' where overall = 'INADEQUATE'")
        .execute(&pool)
        .await
        .unwrap();
    let report = verify::verify(&pool).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("assessments")),
        "{:?}",
        report.problems
    );
}

fn ctx(key: String) -> CommandContext {
    CommandContext {
        actor: Actor {
            token_id: Uuid::nil(),
            name: "writer".into(),
            role: Role::Admin,
        },
        request_id: None,
        idempotency_key: Some(key),
        written: Default::default(),
    }
}

fn verdict(commitment_id: Uuid, assessed_on: chrono::NaiveDate) -> AssessCommitment {
    AssessCommitment {
        commitment_id,
        assessment_id: Uuid::nil(),
        assessor: Line::parse("assessor", "Panel").unwrap(),
        assessor_kind: AssessorKind::Independent,
        assessed_on,
        overall: Some(Rating::Good),
        aspects: Aspects::default(),
        delivery_status: DeliveryStatus::OnTrack,
        rationale: Text::parse("rationale", "r").unwrap(),
        evidence_ids: vec![],
        evaluation: None,
    }
}

#[tokio::test]
async fn a_verdict_committed_after_the_fold_is_caught_up_beside_the_assessments_already_written() {
    let (_db, pool, commands) = seeded().await;
    let commitment = assessed_stream(&pool).await;
    let before: i64 = sqlx::query_scalar("select count(*) from assessments")
        .fetch_one(&pool)
        .await
        .unwrap();

    // A reader holding one of the tables keeps the rebuild from swapping its tables in once
    // it has folded the log and written its rows.
    let mut reader = pool.begin().await.unwrap();
    sqlx::query("lock table revisions in access share mode")
        .execute(&mut *reader)
        .await
        .unwrap();
    let rebuilding = tokio::spawn({
        let pool = pool.clone();
        async move { rebuild::rebuild(&pool).await }
    });
    loop {
        let waiting: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_locks where relation = 'revisions'::regclass and not granted)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            !rebuilding.is_finished(),
            "the rebuild waits for the reader"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    // Past the fold: this verdict reaches the new tables only by the catch-up under the lock.
    let late = commands
        .assess_commitment(
            &ctx("late".into()),
            verdict(
                commitment,
                chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            ),
            None,
        )
        .await
        .unwrap();
    reader.commit().await.unwrap();
    let report = rebuilding.await.unwrap().unwrap();
    assert_eq!(report.caught_up, 1, "{report:?}");

    let after: i64 = sqlx::query_scalar("select count(*) from assessments")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        after,
        before + 1,
        "the folded timeline is kept, the late verdict added"
    );
    let current: Option<Uuid> =
        sqlx::query_scalar("select current_assessment_id from commitments where id = $1")
            .bind(commitment)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(current, Some(late.id));
    let check = verify::verify(&pool).await.unwrap();
    assert!(check.ok(), "{:?}", check.problems);
}

#[tokio::test]
async fn a_rebuild_under_concurrent_writes_loses_nothing_and_leaves_the_same_answers() {
    let (_db, pool, commands) = seeded().await;
    let commitments: Vec<Uuid> = sqlx::query_scalar("select id from commitments")
        .fetch_all(&pool)
        .await
        .unwrap();

    // Writers and readers run throughout the rebuild.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (commands, stop, commitments) = (commands.clone(), stop.clone(), commitments.clone());
        tokio::spawn(async move {
            let mut written = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || written < 20 {
                let cmd = verdict(
                    commitments[written % commitments.len()],
                    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                );
                commands
                    .assess_commitment(&ctx(format!("w{written}")), cmd, None)
                    .await
                    .expect("no write fails");
                written += 1;
            }
            written
        })
    };
    let reader = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                commitment_tracker::store::read::list_commitments(
                    &pool,
                    &Default::default(),
                    None,
                    100,
                )
                .await
                .expect("no read fails");
                commitment_tracker::store::read::assessments_for(&pool, &[], Default::default())
                    .await
                    .expect("no read fails");
                reads += 1;
            }
            reads
        })
    };
    let report = rebuild::rebuild(&pool).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 0 && written >= 20);
    println!(
        "rebuild replayed {} events, {} during the rebuild; {written} writes, {reads} reads alongside",
        report.events, report.caught_up
    );

    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events as usize, 49 + written, "every write is in the log");
    let assessments: i64 = sqlx::query_scalar("select count(*) from assessments")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        assessments as usize,
        15 + written,
        "every write is in the rebuilt projections"
    );
    let check = verify::verify(&pool).await.unwrap();
    assert!(
        check.ok(),
        "the rebuilt projections equal a replay: {:?}",
        check.problems
    );
    // The rebuilt tables keep the names the store relies on.
    let slug_key: i64 = sqlx::query_scalar(
        "select count(*) from pg_constraint where conname = 'commitments_slug_key'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(slug_key, 1);
    let _ = View::load(&pool, TimeFilter::default()).await.unwrap();
}

#[tokio::test]
async fn verdicts_written_together_leave_the_projections_a_replay_gives() {
    let (_db, pool, commands) = seeded().await;
    let commitments: Vec<(Uuid, chrono::NaiveDate)> =
        sqlx::query_as("select id, announced_on from commitments order by slug")
            .fetch_all(&pool)
            .await
            .unwrap();
    let before: i64 = sqlx::query_scalar("select max(position) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Every commitment gets a verdict at once: half dated after every verdict the seed holds
    // (each becomes current), half dated the day it was announced (history, where the
    // commitment has a verdict already).
    let writes = commitments.iter().enumerate().map(|(i, (id, announced))| {
        let cmd = verdict(
            *id,
            if i % 2 == 0 {
                chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap()
            } else {
                *announced
            },
        );
        let commands = commands.clone();
        async move {
            commands
                .assess_commitment(&ctx(format!("v{i}")), cmd, None)
                .await
                .expect("no write fails")
        }
    });
    futures_util::future::join_all(writes).await;

    let (events, transactions): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct transaction_id) from events where position > $1",
    )
    .bind(before)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(events as usize, commitments.len());
    assert!(
        transactions < events,
        "the verdicts shared transactions ({transactions} for {events})"
    );
    let check = verify::verify(&pool).await.unwrap();
    assert!(check.ok(), "{:?}", check.problems);
    // The current verdict of each is the latest by (assessed_on, position).
    let wrong: Vec<(Uuid,)> = sqlx::query_as(
        "select c.id from commitments c
         where c.current_assessment_id is distinct from (
             select a.id from assessments a where a.commitment_id = c.id
             order by a.assessed_on desc, a.position desc limit 1)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(wrong.is_empty(), "{wrong:?}");
    let current_2030: i64 = sqlx::query_scalar(
        "select count(*) from commitments c join assessments a on a.id = c.current_assessment_id
         where a.assessed_on = '2030-01-01'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(current_2030 as usize, commitments.len().div_ceil(2));
}
