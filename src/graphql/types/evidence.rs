//! `Evidence`.

use super::*;

/// A submission about one or more commitments.
#[derive(Clone)]
pub struct Evidence {
    /// The evidence.
    pub row: Arc<EvidenceRow>,
    /// Where related records come from.
    pub source: Source,
}

#[Object]
impl Evidence {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// The commitments it concerns.
    async fn commitments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Commitment>> {
        self.source.commitments(ctx, &self.row.commitment_ids).await
    }
    async fn title(&self) -> &str {
        &self.row.title
    }
    async fn summary(&self) -> &str {
        &self.row.summary
    }
    /// Where it can be read.
    async fn source_url(&self) -> Option<&str> {
        self.row.source_url.as_deref()
    }
    async fn submitted_by(&self) -> &str {
        &self.row.submitted_by
    }
    async fn organisation(&self) -> Option<&str> {
        self.row.organisation.as_deref()
    }
    /// When it was submitted or published.
    async fn submitted_on(&self) -> Date {
        Date(self.row.submitted_on)
    }
    async fn kind(&self) -> EvidenceKind {
        self.row.kind.into()
    }
    /// Whether it was retracted.
    async fn retracted(&self) -> bool {
        self.row.retracted
    }
    async fn retraction_reason(&self) -> Option<&str> {
        self.row.retraction_reason.as_deref()
    }
    async fn retracted_on(&self) -> Option<Date> {
        self.row.retracted_on.map(Date)
    }
    /// The stream version: pass it as `expectedVersion` to guard a retraction.
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// When this system recorded the submission.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.row.recorded_at
    }
    /// Who recorded it.
    async fn actor(&self) -> &str {
        &self.row.actor
    }
    /// The personal fields whose values were erased (`actor`, `submittedBy`).
    async fn erased_fields(&self) -> Vec<&'static str> {
        let erased = crate::store::personal::ERASED;
        [
            ("actor", &self.row.actor),
            ("submittedBy", &self.row.submitted_by),
        ]
        .into_iter()
        .filter(|(_, value)| value.as_str() == erased)
        .map(|(field, _)| field)
        .collect()
    }
    /// The submission's place in the event log.
    async fn cursor(&self) -> String {
        self.row.cursor.encode()
    }
    /// The evidence's events (its submission, and its retraction if any), in version order,
    /// each with its leaf and inclusion proof.
    async fn events(&self, ctx: &Context<'_>) -> ApiResult<Vec<Event>> {
        let pool = pool(ctx)?;
        let id = self.row.id;
        let events = crate::store::read_retrying(|| async move {
            let mut conn = pool.acquire().await?;
            crate::store::event_store::load_stream(&mut conn, id).await
        })
        .await
        .api()?;
        Ok(events.into_iter().map(|e| Event(Arc::new(e))).collect())
    }
}
