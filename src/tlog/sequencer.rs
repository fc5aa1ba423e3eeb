//! The one sequencer across every server process: it gives committed events their leaves and
//! signs checkpoints as the tree grows.
//!
//! Every `serve` runs [`run`]; the process whose connection holds the session advisory lock
//! [`SEQUENCER_LOCK`] leads, the others try again every [`TAKEOVER_INTERVAL`]. The leader
//! does all its work on the connection that holds the lock: if the process dies (even by
//! `kill -9`) PostgreSQL ends that connection, releases the lock, and another process takes
//! over within the interval. Sequencing itself is one transaction per batch (leaves, hashes
//! and the log's new size together, checked against the size read), so a crash at any point
//! neither skips nor repeats an index, and restarting simply carries on.

use super::signer::{SignError, Signer};
use super::witness;
use crate::config::WitnessConfig;
use crate::store::StoreResult;
use crate::store::tree::{self, SEQUENCER_LOCK};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a process that does not lead tries to.
pub const TAKEOVER_INTERVAL: Duration = Duration::from_secs(1);

/// Most events one sequencing transaction takes.
const BATCH: i64 = 5_000;

/// How the sequencer runs.
#[derive(Clone)]
pub struct SequencerSettings {
    /// How often the leader looks for new events.
    pub poll_interval: Duration,
    /// The least time between two checkpoints.
    pub checkpoint_interval: Duration,
    /// Signs the checkpoints.
    pub signer: Arc<Signer>,
    /// Asked to cosign each checkpoint (by the leader only).
    pub witnesses: Arc<[WitnessConfig]>,
}

/// Aborts a task when dropped: the witness task lives exactly as long as a term as leader.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What ended a term as leader.
enum Term {
    /// Another process leads.
    NotLeader,
    /// Asked to stop.
    Stopped,
}

/// Runs until `stop` turns true: leads when it can, waits its turn when it cannot.
pub async fn run(pool: PgPool, settings: SequencerSettings, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match lead(&pool, &settings, &mut stop).await {
            Ok(Term::Stopped) => return,
            Ok(Term::NotLeader) => {}
            Err(e) => tracing::warn!(error = %e, "the log's sequencer lost its connection"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TAKEOVER_INTERVAL) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// One term: takes the lock or returns, then sequences and signs until stopped or failed.
async fn lead(
    pool: &PgPool,
    settings: &SequencerSettings,
    stop: &mut watch::Receiver<bool>,
) -> StoreResult<Term> {
    // A connection of its own, outside the pool, so that the lock lives exactly as long as it.
    let mut conn = pool.acquire().await?.detach();
    let (led,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1)")
        .bind(SEQUENCER_LOCK)
        .fetch_one(&mut conn)
        .await?;
    if !led {
        let _ = conn.close().await;
        return Ok(Term::NotLeader);
    }
    // Operators (and tests) can see which process leads.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "set application_name = 'commitment-tracker sequencer {}'",
        std::process::id()
    )))
    .execute(&mut conn)
    .await?;
    tracing::info!(pid = std::process::id(), "this process sequences the log");
    let (signed, signed_rx) = watch::channel(0u64);
    let _witnessing = (!settings.witnesses.is_empty()).then(|| {
        AbortOnDrop(tokio::spawn(witness::run(
            pool.clone(),
            settings.witnesses.clone(),
            signed_rx,
        )))
    });
    let mut last_checkpoint: Option<Instant> = None;
    let mut refusal: Option<String> = None;
    loop {
        while let Some(size) = tree::sequence(&mut conn, BATCH).await? {
            tracing::debug!(size, "the log grew");
            metrics::gauge!("log_tree_size").set(size as f64);
        }
        if last_checkpoint.is_none_or(|t| t.elapsed() >= settings.checkpoint_interval) {
            match sign(&mut conn, &settings.signer).await {
                Ok(Some(size)) => {
                    last_checkpoint = Some(Instant::now());
                    refusal = None;
                    tracing::info!(size, "signed a checkpoint");
                    metrics::gauge!("log_checkpoint_size").set(size as f64);
                    signed.send_replace(size);
                }
                Ok(None) => {}
                Err(SignError::Store(e)) => return Err(e),
                Err(e) => {
                    // Said once per cause, not on every pass.
                    let text = e.to_string();
                    if refusal.as_deref() != Some(text.as_str()) {
                        tracing::error!(error = %text, "the log signs no checkpoint");
                        refusal = Some(text);
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = stop.changed() => {
                let _ = conn.close().await;
                return Ok(Term::Stopped);
            }
        }
    }
}

async fn sign(conn: &mut PgConnection, signer: &Signer) -> Result<Option<u64>, SignError> {
    Ok(signer.sign_if_grown(conn).await?.map(|c| c.size))
}
