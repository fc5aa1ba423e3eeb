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
use uuid::Uuid;

// language=PostgreSQL
const COPY_ASSESSMENTS: &str = "copy assessments_rebuild (id, commitment_id, assessor,
    assessor_kind, assessed_on, overall, met, funding, impact, appropriateness, delivery_status,
    rationale, evidence_ids, evaluation, position, transaction_id, recorded_at, actor) from stdin";

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
        if self.rows.0.len() >= COPY_CHUNK {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> StoreResult<()> {
        let chunk = std::mem::take(&mut self.rows.0);
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
        if !self.rows.0.is_empty() {
            self.send().await?;
        }
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
        if buffer.0.len() >= COPY_CHUNK {
            copy.send(std::mem::take(&mut buffer.0)).await?;
        }
    }
    if !buffer.0.is_empty() {
        copy.send(buffer.0).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// One row in the column order of [`COPY_ASSESSMENTS`].
fn write_row(rows: &mut CopyRows, a: &AssessmentRow) {
    let r = |x: Option<Rating>| x.map(Rating::as_str);
    rows.plain(a.id);
    rows.plain(a.commitment_id);
    rows.field(&a.assessor);
    rows.field(a.assessor_kind.as_str());
    rows.plain(a.assessed_on);
    for rating in [
        a.overall,
        a.aspects.met,
        a.aspects.funding,
        a.aspects.impact,
        a.aspects.appropriateness,
    ] {
        rows.optional(r(rating));
    }
    rows.field(a.delivery_status.as_str());
    rows.field(&a.rationale);
    rows.plain(UuidArray(&a.evidence_ids));
    rows.optional(a.evaluation.as_deref());
    rows.plain(a.cursor.position);
    rows.plain(a.cursor.transaction_id);
    rows.plain(a.recorded_at.format("%Y-%m-%d %H:%M:%S%.f%:z"));
    rows.field(&a.actor);
    rows.end_row();
}

/// A uuid array in PostgreSQL's text form, `{a,b}`.
struct UuidArray<'a>(&'a [Uuid]);

impl std::fmt::Display for UuidArray<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::UuidArray;
    use uuid::Uuid;

    #[test]
    fn uuid_arrays_are_written_in_postgres_text_form() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(UuidArray(&[]).to_string(), "{}");
        assert_eq!(
            UuidArray(&[a, b]).to_string(),
            format!("{{{a},{b}}}"),
            "comma-separated, no spaces, in braces"
        );
    }
}
