//! `Assessment` with its aspects and the one it replaced, and `Dispute`.

use super::*;

/// The four aspect ratings.
#[derive(SimpleObject, Clone, Copy)]
pub struct Aspects {
    /// Met or on track.
    pub met: Option<Rating>,
    /// Funding.
    pub funding: Option<Rating>,
    /// Impact.
    pub impact: Option<Rating>,
    /// Appropriateness.
    pub appropriateness: Option<Rating>,
}

impl From<domain::Aspects> for Aspects {
    fn from(a: domain::Aspects) -> Self {
        Self {
            met: a.met.map(Into::into),
            funding: a.funding.map(Into::into),
            impact: a.impact.map(Into::into),
            appropriateness: a.appropriateness.map(Into::into),
        }
    }
}

/// A verdict on one commitment by an assessor at a date.
#[derive(Clone)]
pub struct Assessment {
    /// The stored assessment.
    pub row: Arc<AssessmentRow>,
    /// The assessment it replaced in the commitment's timeline.
    pub previous: Previous,
    /// Where related records come from.
    pub source: Source,
}

/// How an assessment finds the one it replaced.
#[derive(Clone)]
pub enum Previous {
    /// Known already: the assessment came with its whole timeline.
    Linked(Option<Arc<Assessment>>),
    /// Read from the timeline (through the source's filter) if a query asks for it (one
    /// index probe).
    Lookup,
}

impl Assessment {
    /// Links one commitment's assessments, already in timeline order, each to the one before.
    pub fn timeline(rows: &[Arc<AssessmentRow>], source: &Source) -> Vec<Assessment> {
        Assessment::window(rows, false, source)
    }

    /// Links a commitment's newest `n` assessments (given newest first, at most `n`) into
    /// the end of its timeline, oldest first.
    pub fn latest(newest_first: &[Arc<AssessmentRow>], n: u16, source: &Source) -> Vec<Assessment> {
        // A full window may have older assessments before it.
        let more = newest_first.len() == usize::from(n);
        Assessment::window(newest_first.iter().rev(), more, source)
    }

    /// Links the latest part of a timeline (oldest first), each to the one before; the
    /// first one's predecessor is looked up if asked for when `more` may precede it.
    pub fn window<'r>(
        rows: impl IntoIterator<Item = &'r Arc<AssessmentRow>>,
        more: bool,
        source: &Source,
    ) -> Vec<Assessment> {
        let rows = rows.into_iter();
        let mut out: Vec<Assessment> = Vec::with_capacity(rows.size_hint().0);
        for row in rows {
            let previous = match out.last() {
                Some(before) => Previous::Linked(Some(Arc::new(before.clone()))),
                None if more => Previous::Lookup,
                None => Previous::Linked(None),
            };
            out.push(Assessment {
                row: row.clone(),
                previous,
                source: source.clone(),
            });
        }
        out
    }

    /// A live assessment by id, without reading its timeline.
    pub async fn live_by_id(pool: &PgPool, id: Uuid) -> ApiResult<Option<Assessment>> {
        Ok(
            crate::store::read_retrying(|| read::assessment_by_id(pool, id))
                .await
                .api()?
                .map(Assessment::live),
        )
    }

    pub(crate) fn live(row: AssessmentRow) -> Assessment {
        Assessment {
            row: Arc::new(row),
            previous: Previous::Lookup,
            source: Source::Live,
        }
    }

    /// The assessment this one replaced.
    async fn replaced(&self, ctx: &Context<'_>) -> ApiResult<Option<Assessment>> {
        match &self.previous {
            Previous::Linked(p) => Ok(p.as_deref().cloned()),
            Previous::Lookup => Ok(loader(ctx)?
                .load_one(PreviousOf(self.row.id, self.source.filter()))
                .await
                .api()?
                .map(|row| Assessment {
                    row: Arc::new(row),
                    previous: Previous::Lookup,
                    source: self.source.clone(),
                })),
        }
    }
}

#[Object]
impl Assessment {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// The commitment assessed.
    async fn commitment(&self, ctx: &Context<'_>) -> ApiResult<Option<Commitment>> {
        Ok(self
            .source
            .commitments(ctx, &[self.row.commitment_id])
            .await?
            .pop())
    }
    /// The id of the commitment assessed.
    async fn commitment_id(&self) -> ID {
        ID(self.row.commitment_id.to_string())
    }
    /// Who gave the verdict.
    async fn assessor(&self) -> &str {
        &self.row.assessor
    }
    /// What kind of body the assessor is.
    async fn assessor_kind(&self) -> AssessorKind {
        self.row.assessor_kind.into()
    }
    /// The date of the verdict.
    async fn assessed_on(&self) -> Date {
        Date(self.row.assessed_on)
    }
    /// The overall rating, if one was given.
    async fn overall(&self) -> Option<Rating> {
        self.row.overall.map(Into::into)
    }
    /// The aspect ratings.
    async fn aspects(&self) -> Aspects {
        self.row.aspects.into()
    }
    async fn delivery_status(&self) -> DeliveryStatus {
        self.row.delivery_status.into()
    }
    async fn rationale(&self) -> &str {
        &self.row.rationale
    }
    /// The evaluation it belongs to (e.g. "HC 780").
    async fn evaluation(&self) -> Option<&str> {
        self.row.evaluation.as_deref()
    }
    /// The evidence the verdict relies on.
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Vec<Evidence>> {
        self.source
            .evidence_by_ids(ctx, &self.row.evidence_ids)
            .await
    }
    /// The assessment this one replaced (null for the first).
    async fn previous(&self, ctx: &Context<'_>) -> ApiResult<Option<Assessment>> {
        self.replaced(ctx).await
    }
    /// The overall rating this one replaced.
    async fn previous_overall(&self, ctx: &Context<'_>) -> ApiResult<Option<Rating>> {
        Ok(self
            .replaced(ctx)
            .await?
            .and_then(|p| p.row.overall)
            .map(Into::into))
    }
    /// How the overall rating moved against the previous verdict.
    async fn direction(&self, ctx: &Context<'_>) -> ApiResult<Direction> {
        let previous = self.replaced(ctx).await?.map(|p| p.row.overall);
        Ok(domain::Direction::between(previous, self.row.overall).into())
    }
    /// Formal disputes of this verdict, oldest first.
    async fn disputes(&self, ctx: &Context<'_>) -> ApiResult<Vec<Dispute>> {
        self.source.disputes_of(ctx, self.row.id).await
    }
    /// When this system recorded it.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.row.recorded_at
    }
    /// Who recorded it (the token's name).
    async fn actor(&self) -> &str {
        &self.row.actor
    }
    /// Its place in the event log: pass as `after` to resume a subscription.
    async fn cursor(&self) -> String {
        self.row.cursor.encode()
    }
    /// The `CommitmentAssessed` event that recorded it, with its leaf and inclusion proof.
    async fn event(&self, ctx: &Context<'_>) -> ApiResult<Event> {
        event_at(ctx, self.row.cursor.position).await
    }
}

/// A formal response contesting an assessment.
#[derive(Clone)]
pub struct Dispute {
    /// The dispute.
    pub row: DisputeRow,
    /// Where related records come from.
    pub source: Source,
}

#[Object]
impl Dispute {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// The assessment contested.
    async fn assessment(&self, ctx: &Context<'_>) -> ApiResult<Option<Assessment>> {
        let timeline = self.source.timeline(ctx, self.row.commitment_id).await?;
        Ok(timeline
            .iter()
            .find(|a| a.row.id == self.row.assessment_id)
            .cloned())
    }
    async fn disputed_by(&self) -> &str {
        &self.row.disputed_by
    }
    async fn statement(&self) -> &str {
        &self.row.statement
    }
    async fn disputed_on(&self) -> Date {
        Date(self.row.disputed_on)
    }
    /// Evidence the dispute relies on.
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Vec<Evidence>> {
        self.source
            .evidence_by_ids(ctx, &self.row.evidence_ids)
            .await
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.row.recorded_at
    }
    async fn actor(&self) -> &str {
        &self.row.actor
    }
    async fn cursor(&self) -> String {
        self.row.cursor.encode()
    }
    /// The `AssessmentDisputed` event that recorded it, with its leaf and inclusion proof.
    async fn event(&self, ctx: &Context<'_>) -> ApiResult<Event> {
        event_at(ctx, self.row.cursor.position).await
    }
}
