//! Group commit: commands that wait together share one transaction, and each still gets the
//! answer it would have got alone.
//!
//! To make a batch deterministic the tests hold the append gate (as a projection rebuild
//! does), send two commands that take both committers and block on it, queue the commands
//! under test in order behind them, and only then let go.

use super::seeded;
use chrono::NaiveDate;
use commitment_tracker::auth::{Actor, Role};
use commitment_tracker::commands::{CommandContext, CommandError, Commands, Outcome};
use commitment_tracker::domain::DomainError;
use commitment_tracker::domain::commitment::{AssessCommitment, RegisterCommitment};
use commitment_tracker::domain::evidence::{RetractEvidence, SubmitEvidence};
use commitment_tracker::domain::rating::{
    Aspects, AssessorKind, DeliveryStatus, EvidenceKind, Rating,
};
use commitment_tracker::domain::text::{Line, Slug, Text};
use commitment_tracker::store::event_store::APPEND_GATE;
use commitment_tracker::store::{position, read, tokens, verify};
use sqlx::PgPool;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use uuid::Uuid;

type Answer = Result<Outcome, CommandError>;

fn ctx(key: Option<&str>) -> CommandContext {
    CommandContext {
        actor: Actor {
            token_id: Uuid::nil(),
            name: "batch-test".into(),
            role: Role::Admin,
        },
        request_id: None,
        idempotency_key: key.map(str::to_owned),
        written: Default::default(),
    }
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
}

fn verdict(commitment: Uuid, evidence: Vec<Uuid>, rationale: &str) -> AssessCommitment {
    AssessCommitment {
        commitment_id: commitment,
        assessment_id: Uuid::nil(),
        assessor: Line::parse("assessor", "HSCC Expert Panel").unwrap(),
        assessor_kind: AssessorKind::Independent,
        assessed_on: day(),
        overall: Some(Rating::RequiresImprovement),
        aspects: Aspects {
            met: Some(Rating::Inadequate),
            ..Aspects::default()
        },
        delivery_status: DeliveryStatus::NotOnTrack,
        rationale: Text::parse("rationale", rationale).unwrap(),
        evidence_ids: evidence,
        evaluation: None,
    }
}

fn assess(
    c: &Commands,
    key: Option<&str>,
    cmd: AssessCommitment,
    expected: Option<i32>,
) -> impl Future<Output = Answer> + Send + 'static {
    let (c, ctx) = (c.clone(), ctx(key));
    async move { c.assess_commitment(&ctx, cmd, expected).await }
}

fn retract(
    c: &Commands,
    key: Option<&str>,
    cmd: RetractEvidence,
    expected: Option<i32>,
) -> impl Future<Output = Answer> + Send + 'static {
    let (c, ctx) = (c.clone(), ctx(key));
    async move { c.retract_evidence(&ctx, cmd, expected).await }
}

fn submit(
    c: &Commands,
    key: Option<&str>,
    cmd: SubmitEvidence,
) -> impl Future<Output = Answer> + Send + 'static {
    let (c, ctx) = (c.clone(), ctx(key));
    async move { c.submit_evidence(&ctx, cmd).await }
}

fn register(
    c: &Commands,
    cmd: RegisterCommitment,
) -> impl Future<Output = Answer> + Send + 'static {
    let (c, ctx) = (c.clone(), ctx(None));
    async move { c.register_commitment(&ctx, cmd).await }
}

fn registration(slug: &str) -> RegisterCommitment {
    RegisterCommitment {
        slug: Slug::parse(slug).unwrap(),
        title: Line::parse("title", "A new commitment").unwrap(),
        description: Text::parse("description", "Registered in a batch.").unwrap(),
        area: Line::parse("area", "Testing").unwrap(),
        policy_source: Line::parse("policySource", "A plan for digital health").unwrap(),
        target: Text::parse("target", "Done").unwrap(),
        due_date: None,
        owner: None,
        announced_on: day(),
    }
}

/// Commitments of the seed with their versions, in slug order.
async fn commitments(pool: &PgPool) -> Vec<(Uuid, i32)> {
    sqlx::query_as("select id, version from commitments order by slug")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Standing evidence of the seed, in title order.
async fn evidence(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("select id from evidence where not retracted order by title")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn transaction_of(pool: &PgPool, stream: Uuid, version: i32) -> i64 {
    sqlx::query_scalar("select transaction_id from events where stream_id = $1 and version = $2")
        .bind(stream)
        .bind(version)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Polls `condition` until it holds (panics after 30 s).
async fn until<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A batch being assembled behind the held append gate.
struct Gate {
    pool: PgPool,
    commands: Commands,
    held: sqlx::Transaction<'static, sqlx::Postgres>,
    plugs: Vec<JoinHandle<Answer>>,
    queued: Vec<JoinHandle<Answer>>,
}

impl Gate {
    /// Holds the gate, then sends `plugs` (two commands on streams of their own) and waits
    /// until both committers are blocked on the gate with them.
    async fn hold(pool: &PgPool, commands: &Commands, plugs: [AssessCommitment; 2]) -> Self {
        let mut held = pool.begin().await.unwrap();
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(APPEND_GATE)
            .execute(&mut *held)
            .await
            .unwrap();
        let mut gate = Self {
            pool: pool.clone(),
            commands: commands.clone(),
            held,
            plugs: Vec::new(),
            queued: Vec::new(),
        };
        // One at a time, so that each committer takes one.
        for (n, plug) in plugs.into_iter().enumerate() {
            gate.plugs
                .push(tokio::spawn(assess(commands, None, plug, None)));
            until("the committer waits at the gate", || async {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_locks l join pg_database d on d.oid = l.database
                     where d.datname = current_database() and l.locktype = 'advisory'
                       and not l.granted",
                )
                .fetch_one(&gate.pool)
                .await
                .unwrap();
                waiting == n as i64 + 1
            })
            .await;
        }
        gate
    }

    /// Queues a command behind the gate; it is in the queue when this returns.
    async fn queue<F>(&mut self, command: F)
    where
        F: Future<Output = Answer> + Send + 'static,
    {
        self.queued.push(tokio::spawn(command));
        let expected = self.queued.len();
        let commands = self.commands.clone();
        until("the command is queued", || {
            let waiting = commands.waiting();
            async move { waiting == expected }
        })
        .await;
    }

    /// Lets the plugs and then the queued batch through; the queued commands' answers, once
    /// the plugs have committed too (the batch may finish before the other plug does).
    async fn release(self) -> Vec<Answer> {
        self.held.rollback().await.unwrap();
        for plug in self.plugs {
            assert!(plug.await.unwrap().is_ok(), "a plug command failed");
        }
        let mut out = Vec::with_capacity(self.queued.len());
        for h in self.queued {
            out.push(h.await.unwrap());
        }
        out
    }
}

#[tokio::test]
async fn commands_that_wait_together_commit_together_and_each_gets_its_own_answer() {
    let (_db, pool, commands) = seeded().await;
    let cs = commitments(&pool).await;
    assert!(cs.len() >= 8, "the seed has {} commitments", cs.len());
    let ev = evidence(&pool).await;
    assert!(ev.len() >= 2);
    let (retracted, standing) = (ev[0], ev[1]);
    let before = event_count(&pool).await;

    let mut gate = Gate::hold(
        &pool,
        &commands,
        [
            verdict(cs[6].0, vec![], "plug"),
            verdict(cs[7].0, vec![], "plug"),
        ],
    )
    .await;
    // 0: a verdict with a key.
    gate.queue(assess(
        &commands,
        Some("k1"),
        verdict(cs[0].0, vec![], "first"),
        None,
    ))
    .await;
    // 1: a stale expected version.
    gate.queue(assess(
        &commands,
        None,
        verdict(cs[1].0, vec![], "stale"),
        Some(cs[1].1 - 1),
    ))
    .await;
    // 2: evidence that does not exist.
    gate.queue(assess(
        &commands,
        None,
        verdict(cs[2].0, vec![Uuid::now_v7()], "ghost"),
        None,
    ))
    .await;
    // 3: a retraction, then 4: a verdict citing what 3 retracted.
    let retraction = RetractEvidence {
        evidence_id: retracted,
        reason: Text::parse("reason", "Superseded").unwrap(),
        retracted_on: day(),
    };
    gate.queue(retract(&commands, None, retraction, None)).await;
    gate.queue(assess(
        &commands,
        None,
        verdict(cs[3].0, vec![retracted], "cites retracted"),
        None,
    ))
    .await;
    // 5: the key of 0 for another command; 6: 0 retried.
    gate.queue(assess(
        &commands,
        Some("k1"),
        verdict(cs[4].0, vec![], "other"),
        None,
    ))
    .await;
    gate.queue(assess(
        &commands,
        Some("k1"),
        verdict(cs[0].0, vec![], "first"),
        None,
    ))
    .await;
    // 7: the stream of 0 again.
    gate.queue(assess(
        &commands,
        None,
        verdict(cs[0].0, vec![], "second"),
        None,
    ))
    .await;
    // 8: new evidence; 9: a verdict with the right version citing standing evidence.
    let submission = SubmitEvidence {
        commitment_ids: vec![cs[5].0],
        title: Line::parse("title", "Batch evidence").unwrap(),
        summary: Text::parse("summary", "Submitted in a batch.").unwrap(),
        source_url: None,
        submitted_by: Line::parse("submittedBy", "Test").unwrap(),
        organisation: None,
        submitted_on: day(),
        kind: EvidenceKind::Other,
    };
    gate.queue(submit(&commands, None, submission)).await;
    gate.queue(assess(
        &commands,
        None,
        verdict(cs[5].0, vec![standing], "right"),
        Some(cs[5].1),
    ))
    .await;
    // 10: a verdict under a token revoked while it waited.
    let (revoked, _) = tokens::create(&pool, "departed", Role::Assessor, None)
        .await
        .unwrap();
    let revoked_ctx = CommandContext {
        actor: Actor {
            token_id: revoked,
            name: "departed".into(),
            role: Role::Assessor,
        },
        ..ctx(None)
    };
    let (c, v) = (commands.clone(), verdict(cs[2].0, vec![], "revoked"));
    gate.queue(async move { c.assess_commitment(&revoked_ctx, v, None).await })
        .await;
    assert!(tokens::revoke(&pool, revoked).await.unwrap());
    let a = gate.release().await;
    assert!(
        matches!(a[10], Err(CommandError::Unauthenticated)),
        "{:?}",
        a[10]
    );

    let first = a[0].as_ref().expect("0 is carried out");
    assert!(!first.replayed);
    assert!(
        matches!(a[1], Err(CommandError::Domain(DomainError::Conflict { expected, actual }))
            if expected == cs[1].1 - 1 && actual == cs[1].1),
        "{:?}",
        a[1]
    );
    assert!(
        matches!(
            a[2],
            Err(CommandError::Domain(DomainError::NotFound {
                what: "evidence",
                ..
            }))
        ),
        "{:?}",
        a[2]
    );
    assert!(a[3].is_ok(), "{:?}", a[3]);
    assert!(
        matches!(
            &a[4],
            Err(CommandError::Domain(DomainError::Invalid { .. }))
        ),
        "{:?}",
        a[4]
    );
    assert!(matches!(a[5], Err(CommandError::KeyReused)), "{:?}", a[5]);
    let retried = a[6].as_ref().expect("6 replays 0");
    assert!(retried.replayed && retried.id == first.id);
    let second = a[7].as_ref().expect("7 is carried out");
    let submitted = a[8].as_ref().expect("8 is carried out");
    let right = a[9].as_ref().expect("9 is carried out");

    // What was carried out together shares one transaction; 7 ran after it, alone.
    let together = [
        transaction_of(&pool, cs[0].0, cs[0].1 + 1).await,
        transaction_of(&pool, retracted, 2).await,
        transaction_of(&pool, submitted.id, 1).await,
        transaction_of(&pool, cs[5].0, cs[5].1 + 1).await,
    ];
    assert!(together.iter().all(|t| *t == together[0]), "{together:?}");
    assert_ne!(
        transaction_of(&pool, cs[0].0, cs[0].1 + 2).await,
        together[0]
    );
    // Two plugs, 0, 3, 7, 8, 9: nothing from the refused ones.
    assert_eq!(event_count(&pool).await, before + 7);

    // The projections are what a replay of the log gives, and the verdicts are current.
    let report = verify::verify(&pool).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let current: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "select id, current_assessment_id from commitments where id = any($1) order by id",
    )
    .bind(vec![cs[0].0, cs[5].0])
    .fetch_all(&pool)
    .await
    .unwrap();
    for (id, current) in current {
        let expected = if id == cs[0].0 { second.id } else { right.id };
        assert_eq!(current, Some(expected));
    }

    // The verdicts the commands answered with are the rows the projections hold, whether
    // written in the batch (0, 9) or alone (7); a replay answers with none.
    for outcome in [first, second, right] {
        let stored = read::assessment_by_id(&pool, outcome.id).await.unwrap();
        assert!(stored.is_some());
        assert_eq!(outcome.assessment, stored);
    }
    assert_eq!(retried.assessment, None);

    // Each answer carries the log position after its commit, read once for the batch; 7's
    // own commit came later; a replay wrote nothing and carries none.
    let positions: Vec<_> = [first, a[3].as_ref().unwrap(), submitted, right, second]
        .iter()
        .map(|o| o.log_position.expect("a position after the commit"))
        .collect();
    assert!(
        positions[..4].iter().all(|p| *p == positions[0]),
        "{positions:?}"
    );
    assert!(positions[4] > positions[0], "{positions:?}");
    assert!(positions[4] <= position::current(&pool).await.unwrap());
    assert_eq!(retried.log_position, None);

    // A corrected retry with a key the batch refused is carried out.
    let fixed = commands
        .assess_commitment(&ctx(Some("k2")), verdict(cs[1].0, vec![], "k2"), None)
        .await;
    assert!(fixed.is_ok(), "{fixed:?}");
}

#[tokio::test]
async fn a_batch_the_database_refuses_is_carried_out_one_command_at_a_time() {
    let (_db, pool, commands) = seeded().await;
    let cs = commitments(&pool).await;
    let before = event_count(&pool).await;

    let mut gate = Gate::hold(
        &pool,
        &commands,
        [
            verdict(cs[0].0, vec![], "plug"),
            verdict(cs[1].0, vec![], "plug"),
        ],
    )
    .await;
    // Only the database sees that two registrations take one slug: the batch fails at its
    // projections and each command runs again alone.
    for slug in ["batch-slug", "batch-slug"] {
        gate.queue(register(&commands, registration(slug))).await;
    }
    let beside = verdict(cs[2].0, vec![], "beside");
    gate.queue(assess(&commands, None, beside, None)).await;
    let a = gate.release().await;

    assert!(a[0].is_ok(), "{:?}", a[0]);
    assert!(
        matches!(&a[1], Err(CommandError::Domain(DomainError::Invalid { field, .. })) if *field == "slug"),
        "{:?}",
        a[1]
    );
    assert!(a[2].is_ok(), "{:?}", a[2]);
    assert_eq!(event_count(&pool).await, before + 4);
    let report = verify::verify(&pool).await.unwrap();
    assert!(report.ok(), "{report:?}");
}

#[tokio::test]
async fn another_process_hears_a_batch_from_the_notify_its_committer_sends() {
    let (_db, pool, _) = seeded().await;
    let (writer, mut heard, mut own) = super::two_processes(&pool).await;
    // The commands write through the writer's feed; nothing calls `announce`, so the reader
    // wakes only on the NOTIFY the committer sends on its own connection after the commit.
    let commands = Commands::new(pool.clone(), writer);
    let cs = commitments(&pool).await;
    let outcome = assess(&commands, None, verdict(cs[0].0, vec![], "heard"), None)
        .await
        .unwrap();
    let elsewhere = super::next_event(&mut heard).await;
    assert_eq!(elsewhere.stream_id, cs[0].0);
    assert_eq!(elsewhere.event_type, "CommitmentAssessed");
    assert_eq!(elsewhere.payload["rationale"], "heard");
    assert_eq!(
        super::next_event(&mut own).await.cursor(),
        elsewhere.cursor(),
        "the writer's own feed delivers the same event from its local wake"
    );
    assert!(outcome.log_position.is_some());
}
