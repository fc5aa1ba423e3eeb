//! `Commitment`, and `Source`: where its related records come from (the live projections or
//! a time-travel view).

use super::*;

/// A promise with a target and usually a deadline.
#[derive(Clone)]
pub struct Commitment {
    /// The commitment as it stands (or stood, in a view).
    pub row: CommitmentRow,
    /// Where related records come from.
    pub source: Source,
    /// What its page loaded for all its commitments at once, if anything.
    pub prefetched: Option<Arc<Prefetched>>,
}

#[Object]
impl Commitment {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Unique human-readable key, e.g. `epr-all-trusts`.
    async fn slug(&self) -> &str {
        &self.row.slug
    }
    async fn title(&self) -> &str {
        &self.row.title
    }
    async fn description(&self) -> &str {
        &self.row.description
    }
    /// The policy area it belongs to.
    async fn area(&self) -> &str {
        &self.row.area
    }
    /// The document or speech that made the promise.
    async fn policy_source(&self) -> &str {
        &self.row.policy_source
    }
    /// The measurable target, as currently worded.
    async fn target(&self) -> &str {
        &self.row.target
    }
    /// The current deadline.
    async fn due_date(&self) -> Option<Date> {
        self.row.due_date.map(Date)
    }
    /// Who is responsible for delivery.
    async fn owner(&self) -> Option<&str> {
        self.row.owner.as_deref()
    }
    /// When the promise was made.
    async fn announced_on(&self) -> Date {
        Date(self.row.announced_on)
    }
    /// The stream version: pass it as `expectedVersion` to guard a change.
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// When this system registered it.
    async fn registered_at(&self) -> DateTime<Utc> {
        self.row.registered_at
    }
    /// When this system last recorded a change to it.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
    /// The place of its latest event in the log: subscribe `after` it to miss nothing since.
    async fn cursor(&self) -> String {
        self.row.cursor.encode()
    }
    /// The verdict in force: the latest by `assessedOn` (ties: the later recorded), optionally
    /// only among assessors of one kind.
    async fn current_assessment(
        &self,
        ctx: &Context<'_>,
        kind: Option<AssessorKind>,
    ) -> ApiResult<Option<Assessment>> {
        if kind.is_none() {
            return Ok(self.latest(ctx, 1).await?.pop());
        }
        let all = self.timeline(ctx).await?;
        let kind = kind.map(domain::AssessorKind::from);
        Ok(all
            .iter()
            .rev()
            .find(|a| kind.is_none_or(|k| a.row.assessor_kind == k))
            .cloned())
    }
    /// Every assessment, oldest first: how the verdict evolved. With `last`, only the latest
    /// `last` of them (still oldest first).
    async fn assessments(
        &self,
        ctx: &Context<'_>,
        last: Option<i32>,
    ) -> ApiResult<Vec<Assessment>> {
        match last {
            Some(n) => {
                let n = count_argument(ctx, "last", n)? as u16;
                self.latest(ctx, n).await
            }
            None => Ok(self.timeline(ctx).await?.as_ref().clone()),
        }
    }
    /// The evidence that concerns it, oldest first.
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Vec<Evidence>> {
        if let Some(rows) = self
            .prefetched
            .as_ref()
            .and_then(|p| p.evidence(self.row.id))
        {
            return Ok(rows
                .iter()
                .map(|r| self.source.evidence(r.clone()))
                .collect());
        }
        self.source.evidence_of(ctx, self.row.id).await
    }
    /// Changes to its terms (deadline extensions, restated targets), oldest first.
    async fn revisions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Revision>> {
        self.source.revisions_of(ctx, self.row.id).await
    }
    /// Every event of the commitment and of the evidence that concerns it, oldest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        after: Option<String>,
    ) -> ApiResult<EventConnection> {
        let after = after
            .as_deref()
            .map(EventCursor::decode)
            .transpose()
            .api()?;
        let limit = page_size(ctx, first)?;
        let id = self.row.id;
        if let Source::View(view) = &self.source {
            let history = view.history(id);
            let rows = read::history_at(
                pool(ctx)?,
                &history,
                after.unwrap_or(EventCursor::START),
                limit + 1,
            )
            .await
            .api()?;
            return Ok(event_connection(
                rows,
                limit,
                after.is_some(),
                TotalCount::HistoryAt(Box::new(history)),
            ));
        }
        let rows = read::history_after(
            pool(ctx)?,
            id,
            after.unwrap_or(EventCursor::START),
            limit + 1,
        )
        .await
        .api()?;
        Ok(event_connection(
            rows,
            limit,
            after.is_some(),
            TotalCount::History(id),
        ))
    }
}

impl Commitment {
    /// Its latest `n` assessments, oldest first: from what its page loaded if that covers
    /// them, else through the loader.
    async fn latest(&self, ctx: &Context<'_>, n: u16) -> ApiResult<Vec<Assessment>> {
        match self
            .prefetched
            .as_ref()
            .and_then(|p| p.latest(self.row.id, n))
        {
            Some(newest_first) => Ok(Assessment::latest(newest_first, n, &self.source)),
            None => self.source.latest(ctx, self.row.id, n).await,
        }
    }

    async fn timeline(&self, ctx: &Context<'_>) -> ApiResult<Arc<Vec<Assessment>>> {
        self.source.timeline(ctx, self.row.id).await
    }
}

/// Where related records come from: the live projections, through the batch loaders, or a
/// view folded from a prefix of the log (time travel), so that every field of a time-travel
/// answer is of the same instant.
#[derive(Clone, Default)]
pub enum Source {
    /// The live projection tables.
    #[default]
    Live,
    /// A view of the log up to an instant or a date.
    View(Arc<View>),
}

impl Source {
    /// Wraps a commitment row.
    pub fn commitment(&self, row: CommitmentRow) -> Commitment {
        Commitment {
            row,
            source: self.clone(),
            prefetched: None,
        }
    }
    /// Wraps an evidence row.
    pub fn evidence(&self, row: impl Into<Arc<EvidenceRow>>) -> Evidence {
        Evidence {
            row: row.into(),
            source: self.clone(),
        }
    }
    /// Wraps a dispute row.
    pub fn dispute(&self, row: DisputeRow) -> Dispute {
        Dispute {
            row,
            source: self.clone(),
        }
    }

    /// Commitments by id, in the order given; unknown ids are left out.
    pub async fn commitments(&self, ctx: &Context<'_>, ids: &[Uuid]) -> ApiResult<Vec<Commitment>> {
        Ok(match self {
            Source::View(view) => ids
                .iter()
                .filter_map(|id| view.commitment(*id).cloned())
                .map(|r| self.commitment(r))
                .collect(),
            Source::Live => {
                let found = loader(ctx)?
                    .load_many(ids.iter().map(|id| CommitmentById(*id)))
                    .await
                    .api()?;
                ids.iter()
                    .filter_map(|id| found.get(&CommitmentById(*id)).cloned())
                    .map(|r| self.commitment(r))
                    .collect()
            }
        })
    }

    /// Evidence by id, in the order given; unknown ids are left out.
    pub async fn evidence_by_ids(
        &self,
        ctx: &Context<'_>,
        ids: &[Uuid],
    ) -> ApiResult<Vec<Evidence>> {
        Ok(match self {
            Source::View(view) => ids
                .iter()
                .filter_map(|id| view.evidence.get(id).cloned())
                .map(|r| self.evidence(r))
                .collect(),
            Source::Live => {
                let found = loader(ctx)?
                    .load_many(ids.iter().map(|id| EvidenceById(*id)))
                    .await
                    .api()?;
                ids.iter()
                    .filter_map(|id| found.get(&EvidenceById(*id)).cloned())
                    .map(|r| self.evidence(r))
                    .collect()
            }
        })
    }

    /// The part of the log this source answers from (the default filter: all of it).
    pub fn filter(&self) -> TimeFilter {
        match self {
            Source::View(view) => view.filter,
            Source::Live => TimeFilter::default(),
        }
    }

    /// A commitment's assessments, oldest first, linked to the ones they replaced. A view
    /// reads them from the store through its filter, like the live timeline.
    pub async fn timeline(
        &self,
        ctx: &Context<'_>,
        commitment: Uuid,
    ) -> ApiResult<Arc<Vec<Assessment>>> {
        let rows = loader(ctx)?
            .load_one(AssessmentsOf(commitment, self.filter()))
            .await
            .api()?
            .unwrap_or_default();
        Ok(Arc::new(Assessment::timeline(&rows, self)))
    }

    /// A commitment's latest `n` assessments, oldest first, without reading the whole
    /// timeline.
    pub async fn latest(
        &self,
        ctx: &Context<'_>,
        commitment: Uuid,
        n: u16,
    ) -> ApiResult<Vec<Assessment>> {
        let rows = loader(ctx)?
            .load_one(LatestAssessmentsOf(commitment, n, self.filter()))
            .await
            .api()?
            .unwrap_or_default();
        Ok(Assessment::latest(&rows, n, self))
    }

    /// The evidence concerning a commitment, oldest first.
    pub async fn evidence_of(
        &self,
        ctx: &Context<'_>,
        commitment: Uuid,
    ) -> ApiResult<Vec<Evidence>> {
        let rows = match self {
            Source::View(view) => view
                .evidence_for(commitment)
                .into_iter()
                .map(Arc::new)
                .collect(),
            Source::Live => live_list(ctx, EvidenceOf(commitment)).await?,
        };
        Ok(rows.into_iter().map(|r| self.evidence(r)).collect())
    }

    /// An assessment's disputes, oldest first.
    pub async fn disputes_of(
        &self,
        ctx: &Context<'_>,
        assessment: Uuid,
    ) -> ApiResult<Vec<Dispute>> {
        let rows = match self {
            Source::View(view) => view.disputes.get(&assessment).cloned().unwrap_or_default(),
            Source::Live => live_list(ctx, DisputesOf(assessment)).await?,
        };
        Ok(rows.into_iter().map(|r| self.dispute(r)).collect())
    }

    /// A commitment's revisions, oldest first.
    pub async fn revisions_of(
        &self,
        ctx: &Context<'_>,
        commitment: Uuid,
    ) -> ApiResult<Vec<Revision>> {
        let rows = match self {
            Source::View(view) => view.revisions.get(&commitment).cloned().unwrap_or_default(),
            Source::Live => live_list(ctx, RevisionsOf(commitment)).await?,
        };
        Ok(rows.into_iter().map(Revision).collect())
    }
}
