//! The object types of the schema and the enums mirrored from the domain.

use super::error::{ApiResult, OrApi};
use super::loaders::{
    AssessmentsOf, CommitmentById, DisputesOf, EvidenceById, EvidenceOf, LatestAssessmentsOf,
    Loaders, PreviousOf, RevisionsOf,
};
use super::prefetch::Prefetched;
use super::scalars::Date;
use crate::domain::rating as domain;
use crate::store::cursor::{EventCursor, ListCursor};
use crate::store::event_store::StoredEvent;
use crate::store::read::{
    self, AssessmentRow, CommitmentRow, DisputeRow, EvidenceRow, RevisionRow,
};
use crate::store::replay::{TimeFilter, View};
use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

/// The Expert Panel's four-point scale, best first.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::rating::Rating")]
pub enum Rating {
    /// Fully met, fully funded, positive impact, appropriate.
    Outstanding,
    /// Met with minor gaps.
    Good,
    /// Not met; substantive extra steps needed.
    RequiresImprovement,
    /// Not met; very significant extra steps needed.
    Inadequate,
}

/// How far a commitment has been delivered.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::rating::DeliveryStatus")]
pub enum DeliveryStatus {
    /// Delivered.
    Met,
    /// Part delivered.
    PartiallyMet,
    /// Expected to be met.
    OnTrack,
    /// Not expected to be met as things stand.
    NotOnTrack,
    /// Due and not delivered.
    NotMet,
    /// No view given on delivery.
    NotAssessed,
}

/// What kind of body gave a verdict.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::rating::AssessorKind")]
pub enum AssessorKind {
    /// An expert panel, an evaluator, an auditor.
    Independent,
    /// The government assessing itself.
    Government,
    /// Anyone else.
    Other,
}

/// What kind of submission a piece of evidence is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::rating::EvidenceKind")]
pub enum EvidenceKind {
    /// Written evidence to a committee or panel.
    WrittenEvidence,
    /// Figures or a data release.
    Data,
    /// An evaluation report.
    Evaluation,
    /// A formal government response or statement.
    GovernmentResponse,
    /// An answer to a parliamentary question.
    ParliamentaryAnswer,
    /// A public announcement.
    Announcement,
    /// A report in the press.
    PressReport,
    /// Anything else.
    Other,
}

/// How a verdict moved against the one it replaced.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::rating::Direction")]
pub enum Direction {
    /// The first verdict on the commitment.
    First,
    /// A better overall rating.
    Improved,
    /// A worse overall rating.
    Declined,
    /// The same overall rating, or no overall rating on either side.
    Unchanged,
    /// An overall rating where the verdict it replaced gave none.
    Rated,
    /// No overall rating where the verdict it replaced gave one.
    Unrated,
}

/// The process's loader, shared by both schemas.
pub(crate) fn loader<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DataLoader<Loaders>> {
    Ok(ctx.data::<std::sync::Arc<DataLoader<Loaders>>>()?.as_ref())
}

fn pool<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a PgPool> {
    ctx.data::<PgPool>()
}

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

/// A list the batch loaders hold per key (a commitment's evidence, an assessment's disputes…),
/// empty when the key has none.
async fn live_list<K, T>(ctx: &Context<'_>, key: K) -> ApiResult<Vec<T>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    T: Clone + Send + Sync + 'static,
    Loaders: async_graphql::dataloader::Loader<K, Value = Arc<Vec<T>>, Error = super::loaders::LoadError>,
{
    Ok(loader(ctx)?
        .load_one(key)
        .await
        .api()?
        .map(|r| r.as_ref().clone())
        .unwrap_or_default())
}

/// The largest page any list returns, unless the operator sets another.
pub const MAX_PAGE: i32 = 500;

/// The configured largest page (schema data).
#[derive(Debug, Clone, Copy)]
pub struct PageLimit(pub i32);

/// Checks a `first` argument against the configured largest page.
pub fn page_size(ctx: &Context<'_>, first: i32) -> ApiResult<i64> {
    count_argument(ctx, "first", first)
}

/// A count argument (`first`, `last`) checked against the configured largest page.
fn count_argument(ctx: &Context<'_>, name: &str, n: i32) -> ApiResult<i64> {
    let max = ctx.data_opt::<PageLimit>().map(|p| p.0).unwrap_or(MAX_PAGE);
    if !(0..=max).contains(&n) {
        return Err(super::error::ApiError::bad_input(
            name,
            format!("must be between 0 and {max}"),
        ))
        .api();
    }
    Ok(i64::from(n))
}

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
        Ok(read::assessment_by_id(pool, id)
            .await
            .api()?
            .map(Assessment::live))
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
}

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
    /// The submission's place in the event log.
    async fn cursor(&self) -> String {
        self.row.cursor.encode()
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
}

/// One field a revision changed.
#[derive(SimpleObject, Clone)]
pub struct FieldChange {
    /// `title`, `description`, `target` or `dueDate`.
    pub field: String,
    /// The value before.
    pub from: Option<String>,
    /// The value after.
    pub to: Option<String>,
}

/// A change to a commitment's terms.
#[derive(Clone)]
pub struct Revision(pub RevisionRow);

#[Object]
impl Revision {
    /// The commitment version this revision created.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// What changed, field by field.
    async fn changes(&self) -> Vec<FieldChange> {
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        self.0
            .changes
            .as_array()
            .map(|changes| {
                changes
                    .iter()
                    .map(|c| FieldChange {
                        field: text(c.get("field")).unwrap_or_default(),
                        from: text(c.get("from")),
                        to: text(c.get("to")),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// When the change took effect.
    async fn effective_on(&self) -> Date {
        Date(self.0.effective_on)
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn cursor(&self) -> String {
        self.0.cursor.encode()
    }
}

/// An immutable event with its envelope.
#[derive(Clone)]
pub struct Event(pub Arc<StoredEvent>);

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// Its place in committed order: pass as `after` to read or subscribe from here.
    async fn cursor(&self) -> String {
        self.0.cursor().encode()
    }
    async fn stream_id(&self) -> ID {
        ID(self.0.stream_id.to_string())
    }
    /// `commitment` or `evidence`.
    async fn stream_type(&self) -> &str {
        &self.0.stream_type
    }
    /// 1, 2, 3… within the stream.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The global position (a tie-breaker; committed order is given by `cursor`).
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    /// The event type, e.g. `CommitmentAssessed`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn schema_version(&self) -> i32 {
        self.0.schema_version
    }
    /// The payload as stored.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    /// Who wrote it.
    async fn actor(&self) -> &str {
        self.0.actor()
    }
    /// The role they held.
    async fn role(&self) -> Option<&str> {
        self.0.metadata.get("role").and_then(|v| v.as_str())
    }
    /// The request that carried it.
    async fn request_id(&self) -> Option<&str> {
        self.0.metadata.get("requestId").and_then(|v| v.as_str())
    }
    /// Business time: when it happened in the world.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// Transaction time: when this system stored it.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// SHA-256 chain hash, hex.
    async fn hash(&self) -> String {
        hex::encode(&self.0.hash)
    }
    /// The previous event's hash in the stream, hex (null for version 1).
    async fn previous_hash(&self) -> Option<String> {
        self.0.previous_hash.as_ref().map(hex::encode)
    }
}

/// What `totalCount` counts, evaluated only when asked for.
#[derive(Clone)]
pub enum TotalCount {
    /// Commitments matching a filter.
    Commitments(read::CommitmentFilter),
    /// A commitment's history.
    History(Uuid),
    /// A commitment's history as a time-travel view holds it.
    HistoryAt(Box<read::HistoryAt>),
    /// Events matching filters.
    Events(Option<Uuid>, Option<Vec<String>>),
    /// Already known (a time-travel view counts in memory).
    Known(i64),
}

/// Extra fields of every connection.
pub struct ConnectionFields(pub TotalCount);

#[Object]
impl ConnectionFields {
    /// How many items the whole list holds.
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let pool = pool(ctx)?;
        match &self.0 {
            TotalCount::Commitments(f) => read::count_commitments(pool, f).await.api(),
            TotalCount::History(id) => read::history_count(pool, *id).await.api(),
            TotalCount::HistoryAt(h) => read::history_at_count(pool, h).await.api(),
            TotalCount::Known(n) => Ok(*n),
            TotalCount::Events(stream, types) => {
                read::events_count(pool, *stream, types.as_deref())
                    .await
                    .api()
            }
        }
    }
}

/// A page of events.
pub type EventConnection = Connection<String, Event, ConnectionFields>;
/// A page of commitments.
pub type CommitmentConnection = Connection<String, Commitment, ConnectionFields>;

/// Builds an event page from `limit + 1` rows.
pub fn event_connection(
    mut rows: Vec<StoredEvent>,
    limit: i64,
    has_previous: bool,
    total: TotalCount,
) -> EventConnection {
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut conn =
        Connection::with_additional_fields(has_previous, has_next, ConnectionFields(total));
    conn.edges.extend(rows.into_iter().map(|e| {
        let e = Arc::new(e);
        Edge::new(e.cursor().encode(), Event(e))
    }));
    conn
}

/// Builds a commitment page from `limit + 1` rows.
pub fn commitment_connection(
    mut rows: Vec<CommitmentRow>,
    limit: i64,
    has_previous: bool,
    total: TotalCount,
    source: &Source,
    prefetched: Option<Arc<Prefetched>>,
) -> CommitmentConnection {
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut conn =
        Connection::with_additional_fields(has_previous, has_next, ConnectionFields(total));
    conn.edges.extend(rows.into_iter().map(|c| {
        Edge::new(
            ListCursor(c.registered_position).encode(),
            Commitment {
                prefetched: prefetched.clone(),
                ..source.commitment(c)
            },
        )
    }));
    conn
}

/// How many commitments have one rating.
#[derive(SimpleObject, Clone)]
pub struct RatingCount {
    /// The rating.
    pub rating: Rating,
    /// How many commitments currently hold it.
    pub count: i32,
}

/// How many commitments have one delivery status.
#[derive(SimpleObject, Clone)]
pub struct StatusCount {
    /// The status.
    pub status: DeliveryStatus,
    /// How many commitments currently hold it.
    pub count: i32,
}

/// Counts over the current verdicts of a set of commitments.
pub struct Scorecard {
    /// The area, if restricted to one.
    pub area: Option<String>,
    /// Commitment ids in registration order.
    pub ids: Vec<Uuid>,
    /// Count per rating, best first.
    pub by_rating: Vec<RatingCount>,
    /// Count per delivery status.
    pub by_delivery_status: Vec<StatusCount>,
    /// Commitments with no current overall rating.
    pub unrated: i32,
    /// The overall rating by the configured rule.
    pub overall: Option<Rating>,
    /// The configured rule's name.
    pub rule: &'static str,
    /// Where the commitments come from.
    pub source: Source,
}

#[Object]
impl Scorecard {
    /// The area counted, or null for all.
    async fn area(&self) -> Option<&str> {
        self.area.as_deref()
    }
    /// How many commitments are counted.
    async fn total(&self) -> i32 {
        self.ids.len() as i32
    }
    /// Commitments per current overall rating, best first.
    async fn by_rating(&self) -> &[RatingCount] {
        &self.by_rating
    }
    /// Commitments per current delivery status.
    async fn by_delivery_status(&self) -> &[StatusCount] {
        &self.by_delivery_status
    }
    /// Commitments without a current overall rating.
    async fn unrated(&self) -> i32 {
        self.unrated
    }
    /// An overall rating by the rule the operator configured (null when none is).
    async fn overall(&self) -> Option<Rating> {
        self.overall
    }
    /// The rule behind `overall`: `none`, `worst` or `median`.
    async fn rule(&self) -> &str {
        self.rule
    }
    /// The commitments counted.
    async fn commitments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Commitment>> {
        self.source.commitments(ctx, &self.ids).await
    }
}

/// What a token may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TokenRole {
    /// Submits evidence.
    Contributor,
    /// Also assesses and disputes.
    Assessor,
    /// Also registers and revises commitments, retracts evidence, manages tokens.
    Admin,
}

impl From<TokenRole> for crate::auth::Role {
    fn from(r: TokenRole) -> Self {
        match r {
            TokenRole::Contributor => crate::auth::Role::Contributor,
            TokenRole::Assessor => crate::auth::Role::Assessor,
            TokenRole::Admin => crate::auth::Role::Admin,
        }
    }
}

/// A token as listed (never the token itself).
#[derive(SimpleObject, Clone)]
pub struct Token {
    /// Id.
    pub id: ID,
    /// Holder: the actor of the events written with it.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires, if set.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked, if so.
    pub revoked_at: Option<DateTime<Utc>>,
}
