//! A command carried out alone, in a transaction of its own: a second command on a stream
//! (or with an idempotency key) already in its batch, or every command of a batch the
//! database refused before its commit.

use super::*;
use sqlx::PgConnection;

impl Core {
    /// Carries out one command alone on `conn` (connecting first if there is none), and lets
    /// go of the connection if the store failed under the command.
    pub(super) async fn alone(
        &self,
        conn: &mut Option<PgConnection>,
        job: &Job,
    ) -> Result<Outcome, CommandError> {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(self.connect().await?),
        };
        let result = self.execute_alone(c, job).await;
        // After a failure of the store (the connection lost, or a commit refused, which may
        // leave a rollback queued on it) the next command starts on a fresh connection.
        if let Err(CommandError::Store(_)) = &result {
            *conn = None;
        }
        result
    }

    /// Carries out one command in a transaction of its own.
    async fn execute_alone(
        &self,
        conn: &mut PgConnection,
        job: &Job,
    ) -> Result<Outcome, CommandError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let written = match self.write_alone(&mut tx, job).await {
            Ok(Alone::Written(written)) => written,
            other => {
                // Nothing of it is kept. The rollback goes now: the connection is the
                // committer's own, and a rollback left for sqlx to send with its next
                // statement would travel ahead of the next batch's `begin_append`.
                if let Err(e) = tx.rollback().await {
                    tracing::warn!(error = %e, "a command's rollback failed");
                }
                return other.map(|alone| match alone {
                    Alone::Replayed(outcome) => outcome,
                    Alone::Written(_) => unreachable!("matched above"),
                });
            }
        };
        tx.commit().await?;
        let Pending {
            head,
            events,
            id,
            mut state,
            stored,
        } = written;
        let target = &job.target;
        let log_position = committed_at(conn).await;
        metrics::counter!("event_log_appends_total").increment(events.len() as u64);
        metrics::histogram!("event_log_append_batch_commands").record(1.0);
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
            log_position,
        })
    }

    /// Everything [`execute_alone`](Self::execute_alone) does before its commit, in `tx`.
    async fn write_alone(&self, tx: &mut PgConnection, job: &Job) -> Result<Alone, CommandError> {
        let target = &job.target;
        // The stream lock comes first: nothing before it may write (see `lock_stream`).
        let head = if target.creates {
            event_store::new_stream(tx, target.stream_id, target.stream_type).await?
        } else {
            event_store::lock_stream(tx, target.stream_id, target.stream_type)
                .await?
                .ok_or(DomainError::NotFound {
                    what: target.stream_type.as_str(),
                    id: target.stream_id,
                })?
        };
        check_token(tx, &job.ctx.actor).await?;
        if let Some((actor, key)) = job.key() {
            let hash = idempotency::command_hash(job.kind, &job.body);
            match idempotency::claim(tx, actor, key, &hash).await? {
                Claim::Fresh => {}
                Claim::Replay(outcome) => return Ok(Alone::Replayed(replayed(&outcome)?)),
                Claim::Mismatch => return Err(CommandError::KeyReused),
            }
        }

        check_expected_version(target.expected_version, head.version)?;
        let state = self.state_at(tx, target, head.version).await?;
        let references =
            read::existing_streams(tx, &job.refs.commitments, &job.refs.evidence).await?;
        let (events, id) = (job.decide)(&state, &references)?;

        let stored = event_store::append(tx, &head, &events, &job.metadata()).await?;
        for (stored, (event, _)) in stored.iter().zip(&events) {
            projections::apply(tx, stored, event).await?;
        }
        if let Some((actor, key)) = job.key() {
            idempotency::complete(tx, actor, key, &json!({ "id": id })).await?;
        }
        Ok(Alone::Written(Pending {
            head,
            events,
            id,
            state,
            stored,
        }))
    }
}

/// What a command carried out alone came to before its commit.
enum Alone {
    /// Its idempotency key's first outcome: nothing to write.
    Replayed(Outcome),
    /// Its events, written and waiting for the commit.
    Written(Pending),
}

/// A command's events, written in its transaction.
struct Pending {
    head: StreamHead,
    events: Vec<(DomainEvent, NaiveDate)>,
    id: Uuid,
    state: StreamState,
    stored: Vec<StoredEvent>,
}

/// The log position after a commit, read on the connection that made it (so at or after its
/// commit record), once for every command the commit carried. A failure here changes nothing
/// that was committed: the answer then asks the database itself.
async fn committed_at(conn: &mut PgConnection) -> Option<LogPosition> {
    position::current(conn)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "no log position after a commit"))
        .ok()
}
