//! Assessment rows, most of any long log, written with COPY: during the fold, as each verdict
//! is folded (an assessment row never changes once written), so that PostgreSQL stores them
//! while the rest of the log is still being read; and after it, for the few commitments a
//! rebuild catches up on.

use super::copy::{COPY_CHUNK, CopyRows};
use crate::domain::rating::Rating;
use crate::store::StoreResult;
use crate::store::read::AssessmentRow;
use sqlx::postgres::{PgCopyIn, PgPoolCopyExt};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// language=PostgreSQL
const COPY_ASSESSMENTS: &str = "copy assessments_rebuild (id, commitment_id, assessor,
    assessor_kind, assessed_on, overall, met, funding, impact, appropriateness, delivery_status,
    rationale, evidence_ids, evaluation, position, transaction_id, recorded_at, actor)
    from stdin with (format binary)";

/// Chunks in flight between the fold and the connection that copies them.
const IN_FLIGHT: usize = 4;

/// Writes assessment rows on a connection of its own while the caller goes on folding.
pub(super) struct Streamed {
    rows: CopyRows,
    chunks: Option<mpsc::Sender<Vec<u8>>>,
    copier: JoinHandle<StoreResult<u64>>,
}

impl Streamed {
    /// Starts a COPY into `assessments_rebuild` on a connection of `pool`.
    pub(super) async fn start(pool: &PgPool) -> StoreResult<Self> {
        let copy = pool.copy_in_raw(COPY_ASSESSMENTS).await?;
        let (chunks, received) = mpsc::channel(IN_FLIGHT);
        Ok(Self {
            rows: CopyRows::default(),
            chunks: Some(chunks),
            copier: tokio::spawn(copy_all(copy, received)),
        })
    }

    /// Queues one row; sends a chunk once enough rows are queued.
    pub(super) async fn push(&mut self, a: &AssessmentRow) -> StoreResult<()> {
        write_row(&mut self.rows, a);
        if self.rows.len() >= COPY_CHUNK {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> StoreResult<()> {
        let chunk = self.rows.take();
        self.send_chunk(chunk).await
    }

    async fn send_chunk(&mut self, chunk: Vec<u8>) -> StoreResult<()> {
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The copier stopped: its error says why.
        self.chunks = None;
        self.wait().await?;
        Err(sqlx::Error::Protocol("the assessments' COPY ended early".into()).into())
    }

    async fn wait(&mut self) -> StoreResult<u64> {
        (&mut self.copier)
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("the assessments' COPY failed: {e}")))?
    }

    /// Sends what is left and waits for the COPY to be stored; answers how many rows it holds.
    pub(super) async fn finish(mut self) -> StoreResult<u64> {
        let last = std::mem::take(&mut self.rows).end();
        self.send_chunk(last).await?;
        self.chunks = None;
        self.wait().await
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // A fold that failed leaves the COPY unfinished: abandoned, it stores nothing.
        self.copier.abort();
    }
}

async fn copy_all(
    mut copy: PgCopyIn<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    mut received: mpsc::Receiver<Vec<u8>>,
) -> StoreResult<u64> {
    while let Some(chunk) = received.recv().await {
        copy.send(chunk).await?;
    }
    Ok(copy.finish().await?)
}

/// Writes `rows` on `conn` in one COPY.
pub(super) async fn copy<'a>(
    conn: &mut PgConnection,
    rows: impl Iterator<Item = &'a AssessmentRow>,
) -> StoreResult<()> {
    let mut copy = conn.copy_in_raw(COPY_ASSESSMENTS).await?;
    let mut buffer = CopyRows::default();
    for a in rows {
        write_row(&mut buffer, a);
        if buffer.len() >= COPY_CHUNK {
            copy.send(buffer.take()).await?;
        }
    }
    copy.send(buffer.end()).await?;
    copy.finish().await?;
    Ok(())
}

/// One row in the column order of [`COPY_ASSESSMENTS`].
fn write_row(rows: &mut CopyRows, a: &AssessmentRow) {
    let r = |x: Option<Rating>| x.map(Rating::as_str);
    rows.row(18);
    rows.uuid(a.id);
    rows.uuid(a.commitment_id);
    rows.text(&a.assessor);
    rows.text(a.assessor_kind.as_str());
    rows.date(a.assessed_on);
    for rating in [
        a.overall,
        a.aspects.met,
        a.aspects.funding,
        a.aspects.impact,
        a.aspects.appropriateness,
    ] {
        rows.optional_text(r(rating));
    }
    rows.text(a.delivery_status.as_str());
    rows.text(&a.rationale);
    rows.uuid_array(&a.evidence_ids);
    rows.optional_text(a.evaluation.as_deref());
    rows.bigint(a.cursor.position);
    rows.bigint(a.cursor.transaction_id);
    rows.timestamptz(a.recorded_at);
    rows.text(&a.actor);
}
