//! Group commit: committer tasks take the commands waiting together and carry them out in one
//! transaction, one statement per step for all of them; a batch the database refuses runs
//! again one command at a time.

use super::*;
use sqlx::PgConnection;

/// The error for a command whose committer is gone (the server is stopping) or failed.
pub(super) fn stopped() -> CommandError {
    CommandError::Store(StoreError::Database(sqlx::Error::Protocol(
        "the command was not carried out: its committer stopped".into(),
    )))
}

/// A command's decision, run by its committer (again, if its batch fails before commit).
pub(super) type Decide = dyn Fn(&StreamState, &References) -> Decision + Send + Sync;

/// A command waiting for a committer.
pub(super) struct Job {
    pub(super) ctx: CommandContext,
    /// Whose idempotency keys the command's key is among: its token's id, never the holder's
    /// name (DESIGN §11).
    pub(super) scope: String,
    pub(super) kind: &'static str,
    pub(super) body: Value,
    pub(super) target: Target,
    pub(super) refs: Refs,
    pub(super) decide: Box<Decide>,
    pub(super) reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

impl Job {
    fn answer(self, result: Result<Outcome, CommandError>) {
        // The caller may have gone away; what was committed stays committed.
        let _ = self.reply.send(result);
    }

    /// The token to check in the writing transaction (none for an actor without one, such
    /// as the importer).
    fn token(&self) -> Option<Uuid> {
        token_of(&self.ctx.actor)
    }

    pub(super) fn key(&self) -> Option<(&str, &str)> {
        self.ctx
            .idempotency_key
            .as_deref()
            .map(|key| (self.scope.as_str(), key))
    }

    pub(super) fn metadata(&self) -> Metadata {
        Metadata {
            actor: self.ctx.actor.name.clone(),
            role: self.ctx.actor.role.as_str().to_owned(),
            request_id: self.ctx.request_id.clone(),
            idempotency_key: self.ctx.idempotency_key.clone(),
        }
    }
}

/// Most commands one transaction carries.
pub(super) const MAX_BATCH: usize = 64;

/// Commands waiting for a committer before senders wait too.
pub(super) const QUEUE: usize = 1024;

/// Committer tasks: while one batch waits for its commit to be flushed, the next is prepared.
pub(super) const COMMITTERS: usize = 2;

/// Takes whatever commands are waiting (at least one) and carries them out, until every
/// sender is gone.
pub(super) async fn commit_loop(
    core: Arc<Core>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    // The committer's own connection, outside the pool: no ping when it is taken up or put
    // back, and the transaction's BEGIN and COMMIT travel with its first and last statements.
    let mut conn: Option<PgConnection> = None;
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
        // not the committer; its connection goes with it (closing it rolls back whatever was
        // open on it).
        match tokio::spawn(core.clone().run(batch, conn.take())).await {
            Ok(kept) => conn = kept,
            Err(e) => tracing::error!(error = %e, "a batch of commands panicked"),
        }
    }
}

/// Splits a batch into the commands that can share one transaction (one per stream and per
/// idempotency key) and the rest, which run alone after it, in order.
pub(super) fn split(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
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
pub(super) enum BatchFailure {
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
pub(super) struct Planned {
    index: usize,
    head: StreamHead,
    events: Vec<(DomainEvent, NaiveDate)>,
    metadata: Metadata,
    id: Uuid,
    state: StreamState,
}

impl Core {
    /// A connection of the committer's own, taken from the pool and detached from it.
    pub(super) async fn connect(&self) -> Result<PgConnection, CommandError> {
        Ok(self
            .pool
            .acquire()
            .await
            .map_err(StoreError::from)?
            .detach())
    }

    /// Carries out a batch on the committer's connection `conn` (a new one if it has none):
    /// the commands that can share a transaction in one, the rest (or all, if the shared
    /// transaction fails before its commit) one by one. Returns the connection, unless it
    /// was lost or left in an unknown state.
    async fn run(
        self: Arc<Self>,
        batch: Vec<Job>,
        conn: Option<PgConnection>,
    ) -> Option<PgConnection> {
        let (together, after) = split(batch);
        let mut conn = match conn {
            Some(conn) => Some(conn),
            None => match self.connect().await {
                Ok(conn) => Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "a committer could not connect");
                    None
                }
            },
        };
        if let Some(c) = conn.as_mut() {
            match self.execute_batch(c, &together).await {
                Ok(results) => {
                    let appended = results
                        .iter()
                        .any(|r| r.as_ref().is_ok_and(|o| !o.replayed));
                    for (job, result) in together.into_iter().zip(results) {
                        job.answer(result);
                    }
                    // Other processes hear of the commit once its callers have their answers,
                    // while the other committer takes up the next batch.
                    if appended {
                        // language=PostgreSQL
                        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(self.feed.notice()))
                            .execute(&mut *c)
                            .await
                        {
                            tracing::debug!(error = %e, "could not notify other processes; their poll will cover it");
                            conn = None;
                        }
                    }
                }
                Err(BatchFailure::BeforeCommit(e)) => {
                    // A lone command's refusal found by the database (a slug taken) is no
                    // news; a batch's failure is.
                    if together.len() > 1 || !matches!(e, StoreError::Domain(_)) {
                        tracing::warn!(error = %e, commands = together.len(),
                            "a batch failed before its commit; running its commands one by one");
                    }
                    // The transaction `begin_append` opened is sqlx's to know nothing of.
                    // language=PostgreSQL
                    if sqlx::raw_sql("rollback").execute(&mut *c).await.is_err() {
                        conn = None;
                    }
                    for job in together {
                        let result = self.alone(&mut conn, &job).await;
                        job.answer(result);
                    }
                }
                Err(BatchFailure::AtCommit(e)) => {
                    tracing::error!(error = %e, commands = together.len(), "a batch's commit failed");
                    conn = None;
                    for job in together {
                        job.answer(Err(CommandError::Store(StoreError::Database(
                            sqlx::Error::Protocol(format!("the commit failed: {e}")),
                        ))));
                    }
                }
            }
        } else {
            for job in together {
                let result = self.alone(&mut conn, &job).await;
                job.answer(result);
            }
        }
        for job in after {
            let result = self.alone(&mut conn, &job).await;
            job.answer(result);
        }
        conn
    }

    /// The state of the stream `target` at `version` (the locked head), from the cache and
    /// whatever other processes appended since.
    pub(super) async fn state_at(
        &self,
        conn: &mut PgConnection,
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
        tx: &mut PgConnection,
        jobs: &[Job],
    ) -> Result<Vec<Result<Outcome, CommandError>>, BatchFailure> {
        let existing: Vec<(Uuid, StreamType)> = jobs
            .iter()
            .filter(|j| !j.target.creates)
            .map(|j| (j.target.stream_id, j.target.stream_type))
            .collect();
        let tokens: Vec<Uuid> = jobs
            .iter()
            .filter_map(|j| j.token())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let commitments: Vec<Uuid> = jobs
            .iter()
            .flat_map(|j| j.refs.commitments.iter().copied())
            .collect();
        let evidence: Vec<Uuid> = jobs
            .iter()
            .flat_map(|j| j.refs.evidence.iter().copied())
            .collect();
        // One round trip: the transaction's start, the gate, the locks, and what the commands
        // decide against.
        let opened =
            event_store::begin_append(tx, &existing, &tokens, &commitments, &evidence).await?;
        let (heads, now, valid) = (opened.heads, opened.now, opened.valid_tokens);
        let mut references = opened.references;
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
            idempotency::claim_many(tx, &keyed.iter().map(|(_, k)| *k).collect::<Vec<_>>()).await?;
        let mut claim_of: Vec<Option<Claim>> = (0..jobs.len()).map(|_| None).collect();
        for ((i, _), claim) in keyed.iter().zip(claims) {
            claim_of[*i] = Some(claim);
        }

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
                        let state = self.state_at(tx, target, head.version).await?;
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
        idempotency::release_many(tx, &released).await?;

        let appends: Vec<Append<'_>> = planned
            .iter()
            .map(|p| Append {
                head: &p.head,
                events: &p.events,
                metadata: &p.metadata,
            })
            .collect();
        let mut sealed = event_store::seal_many(&appends)?;
        // A batch of verdicts (the usual busy batch) writes its projections in the append's
        // own statement; any other applies them after it.
        let verdicts = {
            let events: Vec<(&StoredEvent, &DomainEvent)> = sealed
                .events
                .iter()
                .zip(&planned)
                .flat_map(|(stored, p)| stored.iter().zip(p.events.iter().map(|(e, _)| e)))
                .collect();
            projections::Verdicts::of(&events)
        };
        event_store::write_sealed(tx, &mut sealed, verdicts.as_ref().map(|v| v as _)).await?;
        let stored = sealed.events;
        let applied: Vec<(&StoredEvent, &DomainEvent)> = stored
            .iter()
            .zip(&planned)
            .flat_map(|(stored, p)| stored.iter().zip(p.events.iter().map(|(e, _)| e)))
            .collect();
        if verdicts.is_none() {
            projections::apply_many(tx, &applied).await?;
        }
        let outcomes: Vec<(&str, &str, Value)> = planned
            .iter()
            .filter_map(|p| {
                let (actor, key) = jobs[p.index].key()?;
                Some((actor, key, json!({ "id": p.id })))
            })
            .collect();
        idempotency::complete_many(tx, &outcomes).await?;
        let appended = applied.len() as u64;
        let log_position = event_store::commit_append(tx)
            .await
            .map_err(BatchFailure::AtCommit)?;
        metrics::counter!("event_log_appends_total").increment(appended);
        metrics::histogram!("event_log_append_batch_commands").record(jobs.len() as f64);

        if !planned.is_empty() {
            self.feed.wake();
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
                log_position,
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(stopped())))
            .collect())
    }
}
