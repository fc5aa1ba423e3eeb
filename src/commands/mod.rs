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
use crate::store::position::{self, LogPosition};
use crate::store::read::AssessmentRow;
use crate::store::{StoreError, StoreResult, projections, read, tokens};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

mod alone;
mod batch;
mod erasure;
mod written;

use batch::*;
pub use erasure::ErasureOutcome;
pub use written::Written;

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
    /// Where the request's writes stand, noted as its commands commit.
    pub written: Written,
}

/// The result of a command: the id of what it created or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The commitment, evidence, assessment or dispute id.
    pub id: Uuid,
    /// True when an idempotency key replayed an earlier run and nothing was written.
    pub replayed: bool,
    /// The primary's log position after the commit (none for a replay, or when it could not
    /// be read).
    pub log_position: Option<LogPosition>,
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

impl Target {
    /// A stream the command creates.
    fn new_stream(stream_id: Uuid, stream_type: StreamType) -> Self {
        Target {
            stream_id,
            stream_type,
            creates: true,
            expected_version: None,
        }
    }

    /// A stream that exists, at `expected_version` if the caller guards the change with one.
    fn existing(stream_id: Uuid, stream_type: StreamType, expected_version: Option<i32>) -> Self {
        Target {
            stream_id,
            stream_type,
            creates: false,
            expected_version,
        }
    }
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
            DomainEvent::Erasure(_) => {}
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id, slug = cmd.slug.as_str()))]
    pub async fn register_commitment(
        &self,
        ctx: &CommandContext,
        cmd: RegisterCommitment,
    ) -> Result<Outcome, CommandError> {
        let id = Uuid::now_v7();
        let target = Target::new_stream(id, StreamType::Commitment);
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id, commitment = %cmd.commitment_id))]
    pub async fn revise_commitment(
        &self,
        ctx: &CommandContext,
        cmd: ReviseCommitment,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        let id = cmd.commitment_id;
        let target = Target::existing(id, StreamType::Commitment, expected_version);
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id, commitment = %cmd.commitment_id))]
    pub async fn assess_commitment(
        &self,
        ctx: &CommandContext,
        mut cmd: AssessCommitment,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        cmd.assessment_id = Uuid::now_v7();
        let id = cmd.assessment_id;
        let target = Target::existing(cmd.commitment_id, StreamType::Commitment, expected_version);
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id, assessment = %cmd.assessment_id))]
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
        let target = Target::existing(cmd.commitment_id, StreamType::Commitment, expected_version);
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id))]
    pub async fn submit_evidence(
        &self,
        ctx: &CommandContext,
        cmd: SubmitEvidence,
    ) -> Result<Outcome, CommandError> {
        let id = Uuid::now_v7();
        let target = Target::new_stream(id, StreamType::Evidence);
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
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id, evidence = %cmd.evidence_id))]
    pub async fn retract_evidence(
        &self,
        ctx: &CommandContext,
        cmd: RetractEvidence,
        expected_version: Option<i32>,
    ) -> Result<Outcome, CommandError> {
        let id = cmd.evidence_id;
        let target = Target::existing(id, StreamType::Evidence, expected_version);
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
            scope: ctx.actor.token_id.to_string(),
            ctx: ctx.clone(),
            kind,
            body,
            target,
            refs,
            decide: Box::new(decide),
            reply,
        };
        self.queue.send(job).await.map_err(|_| stopped())?;
        let outcome = answer.await.map_err(|_| stopped())??;
        ctx.written.note(outcome.log_position);
        Ok(outcome)
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
        log_position: None,
    })
}

/// The token whose validity a write re-checks: none for an actor without one, such as the
/// importer or the command line.
fn token_of(actor: &Actor) -> Option<Uuid> {
    Some(actor.token_id).filter(|id| !id.is_nil())
}

/// Refuses a lone command whose token is no longer valid as its writing transaction sees it,
/// whatever a cache said (a batch checks all of its tokens in `open_append`).
async fn check_token(conn: &mut sqlx::PgConnection, actor: &Actor) -> Result<(), CommandError> {
    match token_of(actor) {
        Some(token) if !tokens::still_valid(conn, &[token]).await?.contains(&token) => {
            Err(CommandError::Unauthenticated)
        }
        _ => Ok(()),
    }
}

fn require(ctx: &CommandContext, needed: Role) -> Result<(), CommandError> {
    if ctx.actor.can(needed) {
        Ok(())
    } else {
        Err(CommandError::Forbidden { needed })
    }
}
