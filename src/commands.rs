//! Command handlers: each command is checked, decided by the domain and appended with its
//! projections in one transaction, then announced to the live feed.
//!
//! The steps are the same for every command: authorise; lock the stream; check the token is
//! still valid; claim the idempotency key; check the expected version; bring the stream's
//! state to its head (a cached state reads only what other processes appended since); look up
//! the streams the command refers to; decide; append; project; record the outcome; commit.
//! Committer tasks carry out whatever commands are waiting together, each step one statement
//! for all of them (see [`Commands`]).

use crate::auth::{Actor, Role};
use crate::domain::commitment::{
    AssessCommitment, CommitmentEvent, CommitmentState, DisputeAssessment, RegisterCommitment,
    ReviseCommitment, check_expected_version,
};
use crate::domain::evidence::{EvidenceEvent, EvidenceState, RetractEvidence, SubmitEvidence};
use crate::domain::{DomainError, DomainEvent, References, StreamType};
use crate::store::event_store::{self, Append, Metadata, StoredEvent, StreamHead};
use crate::store::feed::Feed;
use crate::store::idempotency::{self, Claim, KeyClaim};
use crate::store::read::AssessmentRow;
use crate::store::{StoreError, StoreResult, projections, read, tokens};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The actor's role is too low.
    #[error("this needs the {needed} role")]
    Forbidden {
        /// The least role that may run the command.
        needed: Role,
    },
    /// The actor's token was revoked or expired before the command could be recorded.
    #[error("the token is not valid (expired or revoked)")]
    Unauthenticated,
    /// The idempotency key was used before for a different command.
    #[error("idempotencyKey was already used for a different command")]
    KeyReused,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => CommandError::Domain(d),
            other => CommandError::Store(other),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Store(StoreError::Database(e))
    }
}

/// Who runs a command and how.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The authenticated caller.
    pub actor: Actor,
    /// The request id, for tracing and the event metadata.
    pub request_id: Option<String>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
}

/// The result of a command: the id of what it created or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The commitment, evidence, assessment or dispute id.
    pub id: Uuid,
    /// True when an idempotency key replayed an earlier run and nothing was written.
    pub replayed: bool,
    /// The verdict the command recorded, as the projections now hold it (none for a replay
    /// or another kind of command), so that the caller need not read it back.
    pub assessment: Option<AssessmentRow>,
}

/// The verdict among a command's stored events, as its projection row.
fn recorded_assessment(
    stored: &[StoredEvent],
    events: &[(DomainEvent, NaiveDate)],
) -> Option<AssessmentRow> {
    stored
        .iter()
        .zip(events)
        .find_map(|(stored, (event, _))| match event {
            DomainEvent::Commitment(CommitmentEvent::Assessed(e)) => {
                Some(AssessmentRow::recorded(&stored.envelope(), e))
            }
            _ => None,
        })
}

/// Which stream a command appends to.
struct Target {
    stream_id: Uuid,
    stream_type: StreamType,
    /// True for a command that creates the stream.
    creates: bool,
    expected_version: Option<i32>,
}

/// What a command refers to outside its own stream.
#[derive(Default)]
struct Refs {
    commitments: Vec<Uuid>,
    evidence: Vec<Uuid>,
}

/// Decides a command from the stream's state and the referenced streams' facts: the events
/// to append, each with its business date, and the outcome id.
type Decision = Result<(Vec<(DomainEvent, NaiveDate)>, Uuid), DomainError>;

/// The command handlers. Cheap to clone.
///
/// Commands go to committer tasks, which carry out whatever is waiting together: commands on
/// different streams share one transaction (group commit), so under load each costs a share
/// of one transaction's statements and flush instead of a whole one.
#[derive(Clone)]
pub struct Commands {
    core: Arc<Core>,
    queue: mpsc::Sender<Job>,
}

/// What committers share.
struct Core {
    pool: PgPool,
    feed: Feed,
    states: StateCache,
}

fn commitment_events(events: Vec<CommitmentEvent>) -> Vec<(DomainEvent, NaiveDate)> {
    events
        .into_iter()
        .map(|e| {
            let on = e.occurred_on();
            (DomainEvent::Commitment(e), on)
        })
        .collect()
}

fn evidence_events(events: Vec<EvidenceEvent>) -> Vec<(DomainEvent, NaiveDate)> {
    events
        .into_iter()
        .map(|e| {
            let on = e.occurred_on();
            (DomainEvent::Evidence(e), on)
        })
        .collect()
}

/// What a command on a stream decides from: the stream folded to its head.
#[derive(Debug, Clone, Default)]
struct StreamState {
    /// The fold of a commitment stream (default for an evidence stream).
    commitment: CommitmentState,
    /// The fold of an evidence stream (default for a commitment stream).
    evidence: EvidenceState,
}

impl StreamState {
    fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::Commitment(e) => self.commitment.apply(e),
            DomainEvent::Evidence(e) => self.evidence.apply(e),
        }
    }
}

/// Streams' states as of a version, kept after each command so that the next command on the
/// stream reads only the events appended since (by another process), usually none, instead
/// of folding the whole stream again. A state is only used at the version it was folded to:
/// the stream lock and the version check make a stale one impossible to use.
#[derive(Default)]
struct StateCache {
    states: std::sync::Mutex<HashMap<Uuid, (i32, StreamState)>>,
}

/// Most streams whose states are kept.
const CACHED_STREAMS: usize = 10_000;

impl StateCache {
    fn take(&self, stream: Uuid) -> Option<(i32, StreamState)> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stream)
    }

    fn put(&self, stream: Uuid, version: i32, state: StreamState) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if states.len() >= CACHED_STREAMS
            && let Some(evict) = states.keys().next().copied()
        {
            states.remove(&evict);
        }
        states.insert(stream, (version, state));
    }
}

fn command_json<T: serde::Serialize>(command: &T, expected_version: Option<i32>) -> Value {
    json!({ "command": command, "expectedVersion": expected_version })
}

impl Commands {
    /// Handlers over `pool`, announcing commits on `feed`.
    pub fn new(pool: PgPool, feed: Feed) -> Self {
        let core = Arc::new(Core {
            pool,
            feed,
            states: StateCache::default(),
        });
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_loop(core.clone(), waiting.clone()));
        }
        Self { core, queue }
    }

    /// Commands waiting for a committer: a gauge of write pressure (a batch takes whatever is
    /// waiting when its committer comes free).
    pub fn waiting(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Registers a commitment; the outcome is its id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name, slug = cmd.slug.as_str()))]
    pub async fn register_commitment(
        &self,
        ctx: &CommandContext,
        cmd: RegisterCommitment,
    ) -> Result<Outcome, CommandError> {
        let id = Uuid::now_v7();
        let target = Target {
            stream_id: id,
            stream_type: StreamType::Commitment,
            creates: true,
            expected_version: None,
        };
        let body = command_json(&cmd, None);
        self.execute(
            ctx,
            "registerCommitment",
            body,
            Role::Admin,
            target,
            Refs::default(),
            move |state, _| {
                Ok((
                    commitment_events(cmd.clone().decide(&state.commitment)?),
                    id,
                ))
            },
        )
        .await
    }

    /// Revises a commitment; the outcome is its id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name, commitment = %cmd.commitment_id))]
    pub async fn revise_commitment(
        &self,
        ctx: &CommandContext,
        cmd: ReviseCommitment,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        let id = cmd.commitment_id;
        let target = Target {
            stream_id: id,
            stream_type: StreamType::Commitment,
            creates: false,
            expected_version,
        };
        let body = command_json(&cmd, expected_version);
        self.execute(
            ctx,
            "reviseCommitment",
            body,
            Role::Admin,
            target,
            Refs::default(),
            move |state, _| {
                Ok((
                    commitment_events(cmd.clone().decide(&state.commitment)?),
                    id,
                ))
            },
        )
        .await
    }

    /// Records a verdict; the outcome is the assessment's id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name, commitment = %cmd.commitment_id))]
    pub async fn assess_commitment(
        &self,
        ctx: &CommandContext,
        mut cmd: AssessCommitment,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        cmd.assessment_id = Uuid::now_v7();
        let id = cmd.assessment_id;
        let target = Target {
            stream_id: cmd.commitment_id,
            stream_type: StreamType::Commitment,
            creates: false,
            expected_version,
        };
        let refs = Refs {
            evidence: cmd.evidence_ids.clone(),
            ..Refs::default()
        };
        let body = command_json(&cmd, expected_version);
        self.execute(
            ctx,
            "assessCommitment",
            body,
            Role::Assessor,
            target,
            refs,
            move |state, refs| {
                Ok((
                    commitment_events(cmd.clone().decide(&state.commitment, refs)?),
                    id,
                ))
            },
        )
        .await
    }

    /// Records a dispute of an assessment; the outcome is the dispute's id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name, assessment = %cmd.assessment_id))]
    pub async fn dispute_assessment(
        &self,
        ctx: &CommandContext,
        mut cmd: DisputeAssessment,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        require(ctx, Role::Assessor)?;
        cmd.commitment_id = read::assessment_commitment(&self.core.pool, cmd.assessment_id)
            .await?
            .ok_or(DomainError::NotFound {
                what: "assessment",
                id: cmd.assessment_id,
            })?;
        cmd.dispute_id = Uuid::now_v7();
        let id = cmd.dispute_id;
        let target = Target {
            stream_id: cmd.commitment_id,
            stream_type: StreamType::Commitment,
            creates: false,
            expected_version,
        };
        let refs = Refs {
            evidence: cmd.evidence_ids.clone(),
            ..Refs::default()
        };
        let body = command_json(&cmd, expected_version);
        self.execute(
            ctx,
            "disputeAssessment",
            body,
            Role::Assessor,
            target,
            refs,
            move |state, refs| {
                Ok((
                    commitment_events(cmd.clone().decide(&state.commitment, refs)?),
                    id,
                ))
            },
        )
        .await
    }

    /// Records evidence; the outcome is its id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name))]
    pub async fn submit_evidence(
        &self,
        ctx: &CommandContext,
        cmd: SubmitEvidence,
    ) -> Result<Outcome, CommandError> {
        let id = Uuid::now_v7();
        let target = Target {
            stream_id: id,
            stream_type: StreamType::Evidence,
            creates: true,
            expected_version: None,
        };
        let refs = Refs {
            commitments: cmd.commitment_ids.clone(),
            ..Refs::default()
        };
        let body = command_json(&cmd, None);
        self.execute(
            ctx,
            "submitEvidence",
            body,
            Role::Contributor,
            target,
            refs,
            move |state, refs| {
                Ok((
                    evidence_events(cmd.clone().decide(&state.evidence, refs)?),
                    id,
                ))
            },
        )
        .await
    }

    /// Retracts evidence; the outcome is its id.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.name, evidence = %cmd.evidence_id))]
    pub async fn retract_evidence(
        &self,
        ctx: &CommandContext,
        cmd: RetractEvidence,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        let id = cmd.evidence_id;
        let target = Target {
            stream_id: id,
            stream_type: StreamType::Evidence,
            creates: false,
            expected_version,
        };
        let body = command_json(&cmd, expected_version);
        self.execute(
            ctx,
            "retractEvidence",
            body,
            Role::Admin,
            target,
            Refs::default(),
            move |state, _| Ok((evidence_events(cmd.clone().decide(&state.evidence)?), id)),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        ctx: &CommandContext,
        kind: &'static str,
        body: Value,
        needed: Role,
        target: Target,
        refs: Refs,
        decide: impl Fn(&StreamState, &References) -> Decision + Send + Sync + 'static,
    ) -> Result<Outcome, CommandError> {
        require(ctx, needed)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ctx: ctx.clone(),
            kind,
            body,
            target,
            refs,
            decide: Box::new(decide),
            reply,
        };
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The error for a command whose committer is gone (the server is stopping) or failed.
fn stopped() -> CommandError {
    CommandError::Store(StoreError::Database(sqlx::Error::Protocol(
        "the command was not carried out: its committer stopped".into(),
    )))
}

/// A command's decision, run by its committer (again, if its batch fails before commit).
type Decide = dyn Fn(&StreamState, &References) -> Decision + Send + Sync;

/// A command waiting for a committer.
struct Job {
    ctx: CommandContext,
    kind: &'static str,
    body: Value,
    target: Target,
    refs: Refs,
    decide: Box<Decide>,
    reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

impl Job {
    fn answer(self, result: Result<Outcome, CommandError>) {
        // The caller may have gone away; what was committed stays committed.
        let _ = self.reply.send(result);
    }

    /// The token to check in the writing transaction (none for an actor without one, such
    /// as the importer).
    fn token(&self) -> Option<Uuid> {
        Some(self.ctx.actor.token_id).filter(|id| !id.is_nil())
    }

    fn key(&self) -> Option<(&str, &str)> {
        self.ctx
            .idempotency_key
            .as_deref()
            .map(|key| (self.ctx.actor.name.as_str(), key))
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            actor: self.ctx.actor.name.clone(),
            role: self.ctx.actor.role.as_str().to_owned(),
            request_id: self.ctx.request_id.clone(),
            idempotency_key: self.ctx.idempotency_key.clone(),
        }
    }
}

/// Most commands one transaction carries.
const MAX_BATCH: usize = 64;

/// Commands waiting for a committer before senders wait too.
const QUEUE: usize = 1024;

/// Committer tasks: while one batch waits for its commit to be flushed, the next is prepared.
const COMMITTERS: usize = 2;

/// Takes whatever commands are waiting (at least one) and carries them out, until every
/// sender is gone.
async fn commit_loop(core: Arc<Core>, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH
                && let Ok(job) = queue.try_recv()
            {
                batch.push(job);
            }
            batch
        };
        // A panic fails this batch's commands (their callers see the committer stopped),
        // not the committer.
        if let Err(e) = tokio::spawn(core.clone().run(batch)).await {
            tracing::error!(error = %e, "a batch of commands panicked");
        }
    }
}

/// Splits a batch into the commands that can share one transaction (one per stream and per
/// idempotency key) and the rest, which run alone after it, in order.
fn split(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut streams = HashSet::with_capacity(batch.len());
    let mut keys = HashSet::new();
    let (mut together, mut after) = (Vec::with_capacity(batch.len()), Vec::new());
    for job in batch {
        let key = job.key().map(|(a, k)| (a.to_owned(), k.to_owned()));
        let free = !streams.contains(&job.target.stream_id)
            && key.as_ref().is_none_or(|k| !keys.contains(k));
        if free {
            streams.insert(job.target.stream_id);
            keys.extend(key);
            together.push(job);
        } else {
            after.push(job);
        }
    }
    (together, after)
}

/// Why a batch's transaction did not commit.
enum BatchFailure {
    /// Before the commit: nothing was written, and each command can run alone.
    BeforeCommit(StoreError),
    /// The commit itself: whether it took effect is unknown, so nothing is retried.
    AtCommit(sqlx::Error),
}

impl From<StoreError> for BatchFailure {
    fn from(e: StoreError) -> Self {
        BatchFailure::BeforeCommit(e)
    }
}

impl From<sqlx::Error> for BatchFailure {
    fn from(e: sqlx::Error) -> Self {
        BatchFailure::BeforeCommit(StoreError::Database(e))
    }
}

/// A command of a batch, decided and waiting to be appended.
struct Planned {
    index: usize,
    head: StreamHead,
    events: Vec<(DomainEvent, NaiveDate)>,
    metadata: Metadata,
    id: Uuid,
    state: StreamState,
}

impl Core {
    /// Carries out a batch: the commands that can share a transaction in one, the rest (or
    /// all, if the shared transaction fails before its commit) one by one.
    async fn run(self: Arc<Self>, batch: Vec<Job>) {
        let (together, after) = split(batch);
        if together.len() == 1 {
            for job in together {
                let result = self.execute_alone(&job).await;
                job.answer(result);
            }
        } else {
            match self.execute_batch(&together).await {
                Ok(results) => {
                    for (job, result) in together.into_iter().zip(results) {
                        job.answer(result);
                    }
                }
                Err(BatchFailure::BeforeCommit(e)) => {
                    tracing::warn!(error = %e, commands = together.len(),
                        "a batch failed before its commit; running its commands one by one");
                    for job in together {
                        let result = self.execute_alone(&job).await;
                        job.answer(result);
                    }
                }
                Err(BatchFailure::AtCommit(e)) => {
                    tracing::error!(error = %e, commands = together.len(), "a batch's commit failed");
                    for job in together {
                        job.answer(Err(CommandError::Store(StoreError::Database(
                            sqlx::Error::Protocol(format!("the commit failed: {e}")),
                        ))));
                    }
                }
            }
        }
        for job in after {
            let result = self.execute_alone(&job).await;
            job.answer(result);
        }
    }

    /// The state of the stream `target` at `version` (the locked head), from the cache and
    /// whatever other processes appended since.
    async fn state_at(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        version: i32,
    ) -> StoreResult<StreamState> {
        if target.creates {
            return Ok(StreamState::default());
        }
        let (cached, mut state) = self
            .states
            .take(target.stream_id)
            .filter(|(v, _)| *v <= version)
            .unwrap_or_default();
        // Usually the kept state is at the head already and there is nothing to read.
        if cached < version {
            for e in event_store::load_stream_after(conn, target.stream_id, cached).await? {
                state.apply(&e.decode()?);
            }
        }
        Ok(state)
    }

    /// Carries out commands on distinct streams with distinct keys in one transaction: one
    /// statement each for the locks, the heads, the keys, the references, the append and the
    /// verdicts' projections, whatever the number of commands. A command the domain refuses
    /// is answered with its error and writes nothing; the others go on.
    async fn execute_batch(
        &self,
        jobs: &[Job],
    ) -> Result<Vec<Result<Outcome, CommandError>>, BatchFailure> {
        let mut tx = self.pool.begin().await?;
        let existing: Vec<(Uuid, StreamType)> = jobs
            .iter()
            .filter(|j| !j.target.creates)
            .map(|j| (j.target.stream_id, j.target.stream_type))
            .collect();
        let (heads, now) = event_store::lock_streams(&mut tx, &existing).await?;
        let tokens: HashSet<Uuid> = jobs.iter().filter_map(|j| j.token()).collect();
        let valid = tokens::still_valid(&mut tx, &tokens.into_iter().collect::<Vec<_>>()).await?;
        let refused: Vec<bool> = jobs
            .iter()
            .map(|j| j.token().is_some_and(|t| !valid.contains(&t)))
            .collect();

        let hashes: Vec<Option<Vec<u8>>> = jobs
            .iter()
            .map(|j| j.key().map(|_| idempotency::command_hash(j.kind, &j.body)))
            .collect();
        let keyed: Vec<(usize, KeyClaim<'_>)> = jobs
            .iter()
            .zip(&hashes)
            .enumerate()
            .filter(|(i, _)| !refused[*i])
            .filter_map(|(i, (job, hash))| {
                let (actor, key) = job.key()?;
                Some((
                    i,
                    KeyClaim {
                        actor,
                        key,
                        hash: hash.as_deref()?,
                    },
                ))
            })
            .collect();
        let claims =
            idempotency::claim_many(&mut tx, &keyed.iter().map(|(_, k)| *k).collect::<Vec<_>>())
                .await?;
        let mut claim_of: Vec<Option<Claim>> = (0..jobs.len()).map(|_| None).collect();
        for ((i, _), claim) in keyed.iter().zip(claims) {
            claim_of[*i] = Some(claim);
        }

        let commitments: Vec<Uuid> = jobs
            .iter()
            .flat_map(|j| j.refs.commitments.iter().copied())
            .collect();
        let evidence: Vec<Uuid> = jobs
            .iter()
            .flat_map(|j| j.refs.evidence.iter().copied())
            .collect();
        let mut references = read::existing_streams(&mut tx, &commitments, &evidence).await?;

        let mut results: Vec<Option<Result<Outcome, CommandError>>> =
            (0..jobs.len()).map(|_| None).collect();
        let mut planned: Vec<Planned> = Vec::with_capacity(jobs.len());
        let mut released = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            if refused[index] {
                results[index] = Some(Err(CommandError::Unauthenticated));
                continue;
            }
            match claim_of[index].take() {
                Some(Claim::Replay(outcome)) => {
                    results[index] = Some(replayed(&outcome).map_err(CommandError::from));
                    continue;
                }
                Some(Claim::Mismatch) => {
                    results[index] = Some(Err(CommandError::KeyReused));
                    continue;
                }
                Some(Claim::Fresh) | None => {}
            }
            let target = &job.target;
            let head = if target.creates {
                Some(StreamHead {
                    stream_id: target.stream_id,
                    stream_type: target.stream_type,
                    version: 0,
                    last_hash: None,
                    now,
                })
            } else {
                heads.get(&target.stream_id).cloned()
            };
            let decided = match head {
                None => Err(CommandError::Domain(DomainError::NotFound {
                    what: target.stream_type.as_str(),
                    id: target.stream_id,
                })),
                Some(head) => match check_expected_version(target.expected_version, head.version) {
                    Err(e) => Err(e.into()),
                    Ok(()) => {
                        let state = self.state_at(&mut tx, target, head.version).await?;
                        (job.decide)(&state, &references)
                            .map(|(events, id)| (head, events, id, state))
                            .map_err(CommandError::from)
                    }
                },
            };
            match decided {
                Ok((head, events, id, state)) => {
                    // What this command changes is what the next one in the batch sees.
                    for (event, _) in &events {
                        references.note(head.stream_id, event);
                    }
                    planned.push(Planned {
                        index,
                        head,
                        events,
                        metadata: job.metadata(),
                        id,
                        state,
                    });
                }
                Err(e) => {
                    released.extend(job.key());
                    results[index] = Some(Err(e));
                }
            }
        }
        idempotency::release_many(&mut tx, &released).await?;

        let appends: Vec<Append<'_>> = planned
            .iter()
            .map(|p| Append {
                head: &p.head,
                events: &p.events,
                metadata: &p.metadata,
            })
            .collect();
        let stored = event_store::append_many(&mut tx, &appends).await?;
        let applied: Vec<(&StoredEvent, &DomainEvent)> = stored
            .iter()
            .zip(&planned)
            .flat_map(|(stored, p)| stored.iter().zip(p.events.iter().map(|(e, _)| e)))
            .collect();
        projections::apply_many(&mut tx, &applied).await?;
        let outcomes: Vec<(&str, &str, Value)> = planned
            .iter()
            .filter_map(|p| {
                let (actor, key) = jobs[p.index].key()?;
                Some((actor, key, json!({ "id": p.id })))
            })
            .collect();
        idempotency::complete_many(&mut tx, &outcomes).await?;
        tx.commit().await.map_err(BatchFailure::AtCommit)?;

        if !planned.is_empty() {
            self.feed.announce();
        }
        for (mut p, stored) in planned.into_iter().zip(&stored) {
            let assessment = recorded_assessment(stored, &p.events);
            for (event, _) in &p.events {
                p.state.apply(event);
            }
            self.states.put(
                p.head.stream_id,
                p.head.version + p.events.len() as i32,
                p.state,
            );
            results[p.index] = Some(Ok(Outcome {
                id: p.id,
                replayed: false,
                assessment,
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(stopped())))
            .collect())
    }

    /// Carries out one command in a transaction of its own.
    async fn execute_alone(&self, job: &Job) -> Result<Outcome, CommandError> {
        let target = &job.target;
        let mut tx = self.pool.begin().await?;

        // The stream lock comes first: nothing before it may write (see `lock_stream`).
        let head = if target.creates {
            event_store::new_stream(&mut tx, target.stream_id, target.stream_type).await?
        } else {
            event_store::lock_stream(&mut tx, target.stream_id, target.stream_type)
                .await?
                .ok_or(DomainError::NotFound {
                    what: target.stream_type.as_str(),
                    id: target.stream_id,
                })?
        };
        if let Some(token) = job.token()
            && !tokens::still_valid(&mut tx, &[token])
                .await?
                .contains(&token)
        {
            return Err(CommandError::Unauthenticated);
        }
        if let Some((actor, key)) = job.key() {
            let hash = idempotency::command_hash(job.kind, &job.body);
            match idempotency::claim(&mut tx, actor, key, &hash).await? {
                Claim::Fresh => {}
                Claim::Replay(outcome) => return Ok(replayed(&outcome)?),
                Claim::Mismatch => return Err(CommandError::KeyReused),
            }
        }

        check_expected_version(target.expected_version, head.version)?;
        let mut state = self.state_at(&mut tx, target, head.version).await?;
        let references =
            read::existing_streams(&mut tx, &job.refs.commitments, &job.refs.evidence).await?;
        let (events, id) = (job.decide)(&state, &references)?;

        let stored = event_store::append(&mut tx, &head, &events, &job.metadata()).await?;
        for (stored, (event, _)) in stored.iter().zip(&events) {
            projections::apply(&mut tx, stored, event).await?;
        }
        if let Some((actor, key)) = job.key() {
            idempotency::complete(&mut tx, actor, key, &json!({ "id": id })).await?;
        }
        tx.commit().await?;
        for (event, _) in &events {
            state.apply(event);
        }
        self.states
            .put(target.stream_id, head.version + events.len() as i32, state);
        self.feed.announce();
        Ok(Outcome {
            id,
            replayed: false,
            assessment: recorded_assessment(&stored, &events),
        })
    }
}

/// The outcome an idempotency key recorded.
fn replayed(outcome: &Value) -> Result<Outcome, StoreError> {
    let id = outcome
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("idempotency outcome {outcome}"),
        })?;
    Ok(Outcome {
        id,
        replayed: true,
        assessment: None,
    })
}

fn require(ctx: &CommandContext, needed: Role) -> Result<(), CommandError> {
    if ctx.actor.can(needed) {
        Ok(())
    } else {
        Err(CommandError::Forbidden { needed })
    }
}
