//! Asking the log's witnesses to cosign its checkpoints (C2SP tlog-witness).
//!
//! While a process leads the log, [`run`] sends each witness the newest signed checkpoint it
//! has not cosigned: `POST <url>/add-checkpoint` with `old <size>`, the consistency proof from
//! the size the witness last cosigned, an empty line and the note. The witness answers with
//! its cosignature lines, which are checked against its key and stored with the checkpoint
//! ([`crate::store::tree::add_cosignature`]); a checkpoint is served once `LOG_WITNESS_QUORUM`
//! witnesses have cosigned it.
//!
//! A witness that answers 409 with `text/x.tlog.size` knows a size other than the one
//! assumed (it cosigned through another process, or its state was kept while ours was not):
//! the request is made again at once from that size. A 409 when the witness was sent the size
//! it holds and that is the checkpoint's own (another root at the same size), or a size beyond
//! the log's, is a split view or a rolled-back log and is reported as such. Anything else failing is retried with exponential back-off, up to a
//! minute between attempts, each witness on its own.

use super::client;
use super::cosignature::cosigners;
use crate::config::WitnessConfig;
use crate::store::StoreError;
use crate::store::tree::{self, StoredCheckpoint};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Bytes;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a witness may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failure; doubled after each further one.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const LONGEST_RETRY: Duration = Duration::from_secs(60);
/// The most 409 answers followed in one attempt.
const MOST_CONFLICTS: usize = 3;

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The witness could not be reached, or answered with an unexpected status.
    #[error("{0}")]
    Unreachable(String),
    /// The witness holds another checkpoint of the same size: a split view.
    #[error(
        "the witness holds another checkpoint of {0} leaves than the one the log signed (a split view)"
    )]
    SplitView(u64),
    /// The witness has cosigned a larger checkpoint than the log's latest.
    #[error(
        "the witness has cosigned a checkpoint of {witness} leaves, more than the {log} of the \
         log's latest: the log was restored from an older backup, or another log uses its key"
    )]
    Ahead {
        /// The witness's size.
        witness: u64,
        /// The log's.
        log: u64,
    },
    /// The witness answered 200 without a valid cosignature by its key.
    #[error("the witness answered without a valid cosignature: {0}")]
    BadCosignature(String),
    /// The witness refused the checkpoint.
    #[error("the witness refused the checkpoint: {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The witness's explanation.
        body: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One witness's progress, kept while this process leads.
struct Progress {
    witness: WitnessConfig,
    /// The largest checkpoint it is known to have cosigned.
    size: Option<u64>,
    failures: u32,
    next_attempt: Instant,
    /// The last failure reported, so that a repeated one is not logged again.
    last_error: Option<String>,
}

impl Progress {
    fn failed(&mut self, error: &WitnessError) {
        self.failures += 1;
        let wait = FIRST_RETRY
            .saturating_mul(1 << self.failures.min(16))
            .min(LONGEST_RETRY);
        self.next_attempt = Instant::now() + wait;
        let text = error.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(
                witness = self.witness.verifier.vkey(),
                error = %text,
                retry_in_ms = wait.as_millis() as u64,
                "a witness did not cosign the log's checkpoint"
            );
            self.last_error = Some(text);
        }
    }

    fn succeeded(&mut self, size: u64) {
        if self.last_error.take().is_some() {
            tracing::info!(
                witness = self.witness.verifier.vkey(),
                size,
                "the witness cosigns again"
            );
        }
        self.size = Some(size);
        self.failures = 0;
        self.next_attempt = Instant::now();
    }
}

/// Sends checkpoints to `witnesses` until dropped: each time `signed` changes, and after
/// failures as each witness's back-off allows.
pub async fn run(pool: PgPool, witnesses: Arc<[WitnessConfig]>, mut signed: watch::Receiver<u64>) {
    let mut progress: Vec<Progress> = witnesses
        .iter()
        .map(|w| Progress {
            witness: w.clone(),
            size: None,
            failures: 0,
            next_attempt: Instant::now(),
            last_error: None,
        })
        .collect();
    loop {
        let latest = {
            let mut conn = match pool.acquire().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "the witness task cannot reach the database");
                    tokio::time::sleep(LONGEST_RETRY.min(Duration::from_secs(1))).await;
                    continue;
                }
            };
            tree::last_signed(&mut conn).await
        };
        let latest = match latest {
            Ok(latest) => latest,
            Err(e) => {
                tracing::warn!(error = %e, "the witness task cannot read the latest checkpoint");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Some(checkpoint) = &latest {
            let now = Instant::now();
            let due = progress
                .iter_mut()
                .filter(|p| p.next_attempt <= now && p.size.is_none_or(|s| s < checkpoint.size));
            futures_util::future::join_all(due.map(|p| async {
                match submit(&pool, p, checkpoint).await {
                    Ok(()) => p.succeeded(checkpoint.size),
                    Err(e) => p.failed(&e),
                }
            }))
            .await;
        }
        // Wait for a new checkpoint, or for the next retry of a witness behind.
        let behind = |p: &&Progress| {
            latest
                .as_ref()
                .is_some_and(|c| p.size.is_none_or(|s| s < c.size))
        };
        let retry = progress.iter().filter(behind).map(|p| p.next_attempt).min();
        tokio::select! {
            changed = signed.changed() => if changed.is_err() { return },
            _ = sleep_until(retry) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Asks one witness to cosign `checkpoint`, following its 409 answers, and stores the
/// cosignature.
async fn submit(
    pool: &PgPool,
    progress: &mut Progress,
    checkpoint: &StoredCheckpoint,
) -> Result<(), WitnessError> {
    let witness = progress.witness.clone();
    let mut old = match progress.size {
        Some(size) => size,
        None => tree::witness_size(pool, witness.verifier.vkey()).await?,
    };
    for _ in 0..=MOST_CONFLICTS {
        if old > checkpoint.size {
            return Err(WitnessError::Ahead {
                witness: old,
                log: checkpoint.size,
            });
        }
        let proof = if old == 0 {
            Vec::new()
        } else {
            let mut conn = pool.acquire().await.map_err(StoreError::from)?;
            tree::consistency_proof(&mut conn, old, checkpoint.size).await?
        };
        let mut body = format!("old {old}\n");
        for hash in &proof {
            body.push_str(&STANDARD.encode(hash.0));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&checkpoint.note);
        let url = format!("{}/add-checkpoint", witness.url);
        let answer = client::request(&url, Some(Bytes::from(body)), REQUEST_TIMEOUT)
            .await
            .map_err(|e| WitnessError::Unreachable(e.to_string()))?;
        let text = String::from_utf8_lossy(&answer.body);
        match answer.status.as_u16() {
            200 => {
                let cosigned = format!("{}{}", checkpoint.note, text);
                let found = cosigners(cosigned.as_bytes(), std::slice::from_ref(&witness.verifier))
                    .map_err(WitnessError::BadCosignature)?;
                let Some((_, line)) = found.into_iter().next() else {
                    return Err(WitnessError::BadCosignature(format!(
                        "no line by {} in {:?}",
                        witness.verifier.vkey(),
                        text.trim()
                    )));
                };
                tree::add_cosignature(pool, checkpoint.size, witness.verifier.vkey(), &line)
                    .await?;
                return Ok(());
            }
            409 => {
                let size = answer
                    .content_type
                    .as_deref()
                    .filter(|t| t.starts_with("text/x.tlog.size"))
                    .and_then(|_| text.trim().parse::<u64>().ok());
                match size {
                    // Told the size it holds and still in conflict: at the checkpoint's own
                    // size that means another root.
                    Some(size) if size == old && size == checkpoint.size => {
                        return Err(WitnessError::SplitView(size));
                    }
                    Some(size) if size == old => {
                        return Err(WitnessError::Refused {
                            status: 409,
                            body: format!("it says it holds {size} leaves, as it was told"),
                        });
                    }
                    Some(size) => {
                        tracing::info!(
                            witness = witness.verifier.vkey(),
                            assumed = old,
                            size,
                            "the witness holds another size; sending the proof from it"
                        );
                        old = size;
                        progress.size = Some(size.min(checkpoint.size));
                    }
                    None => {
                        return Err(WitnessError::Refused {
                            status: 409,
                            body: format!("without its size as text/x.tlog.size: {}", text.trim()),
                        });
                    }
                }
            }
            status => {
                return Err(WitnessError::Refused {
                    status,
                    body: text.trim().chars().take(300).collect(),
                });
            }
        }
    }
    Err(WitnessError::Unreachable(format!(
        "{MOST_CONFLICTS} answers of 409 in a row"
    )))
}
