//! Queries over current state and history.

use super::error::{ApiError, ApiResult, OrApi};
use super::inputs::parse_id;
use super::loaders::{CommitmentById, EvidenceById};
use super::prefetch::Plan;
use super::scalars::Date;
use super::types::{
    Assessment, Commitment, CommitmentConnection, DeliveryStatus, EventConnection, Evidence,
    Rating, RatingCount, Scorecard, Source, StatusCount, TotalCount, commitment_connection,
    event_connection, page_size,
};
use crate::domain::rating as domain;
use crate::domain::scorecard::ScorecardRule;
use crate::store::cursor::{EventCursor, ListCursor};
use crate::store::read::{self, AssessmentRow, CommitmentFilter, CommitmentRow};
use crate::store::replay::{TimeFilter, View};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;

/// The root of reads.
pub struct Query;

#[Object]
impl Query {
    /// Commitments in registration order, filtered by area and by their current verdict.
    /// With `asOf` (transaction time) and/or `validOn` (business time), as they stood then.
    #[allow(clippy::too_many_arguments)]
    async fn commitments(
        &self,
        ctx: &Context<'_>,
        area: Option<String>,
        rating: Option<Rating>,
        delivery_status: Option<DeliveryStatus>,
        #[graphql(desc = "What this system would have answered at this instant.")] as_of: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "The state in force on this date, whenever it was recorded.")]
        valid_on: Option<Date>,
        #[graphql(desc = "Page size (default 50, at most 500).")] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<CommitmentConnection> {
        let limit = page_size(ctx, first.unwrap_or(50))?;
        let after = after.as_deref().map(ListCursor::decode).transpose().api()?;
        let filter = CommitmentFilter {
            area,
            rating: rating.map(Into::into),
            delivery_status: delivery_status.map(Into::into),
        };
        let time = time_filter(as_of, valid_on)?;
        if !time.is_live() {
            let view = Arc::new(View::load(ctx.data::<PgPool>()?, time).await.api()?);
            let matching: Vec<CommitmentRow> =
                view.matching(&filter).map(|(c, _)| c.clone()).collect();
            let total = matching.len() as i64;
            let rows: Vec<CommitmentRow> = matching
                .into_iter()
                .filter(|c| after.is_none_or(|a| c.registered_position > a.0))
                .take(limit as usize + 1)
                .collect();
            let source = Source::View(view);
            return Ok(commitment_connection(
                rows,
                limit,
                after.is_some(),
                TotalCount::Known(total),
                &source,
                None,
            ));
        }
        let rows = read::list_commitments(
            ctx.data::<PgPool>()?,
            &filter,
            after.map(|c| c.0),
            limit + 1,
        )
        .await
        .api()?;
        let page: Vec<_> = rows.iter().take(limit as usize).map(|r| r.id).collect();
        let prefetched = Plan::of(ctx)?.load(ctx, &page).await?;
        Ok(commitment_connection(
            rows,
            limit,
            after.is_some(),
            TotalCount::Commitments(filter),
            &Source::Live,
            prefetched,
        ))
    }

    /// One commitment, by id or by slug (give exactly one). With `asOf` and/or `validOn`, as it
    /// stood then (null if it did not exist yet).
    async fn commitment(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
        as_of: Option<DateTime<Utc>>,
        valid_on: Option<Date>,
    ) -> ApiResult<Option<Commitment>> {
        let id = match (id, slug) {
            (Some(id), None) => Ok(parse_id("id", &id).api()?),
            (None, Some(slug)) => Err(slug),
            _ => return Err(ApiError::bad_input("id", "give exactly one of id and slug")).api(),
        };
        let time = time_filter(as_of, valid_on)?;
        if !time.is_live() {
            let view = Arc::new(View::load(ctx.data::<PgPool>()?, time).await.api()?);
            let row = match &id {
                Ok(id) => view.commitment(*id).cloned(),
                Err(slug) => view.commitment_by_slug(slug).cloned(),
            };
            return Ok(row.map(|r| Source::View(view).commitment(r)));
        }
        let row = match id {
            Ok(id) => super::types::loader(ctx)?
                .load_one(CommitmentById(id))
                .await
                .api()?,
            Err(slug) => read::commitment_by_slug(ctx.data::<PgPool>()?, &slug)
                .await
                .api()?,
        };
        Ok(row.map(|r| Source::Live.commitment(r)))
    }

    /// One piece of evidence.
    async fn evidence(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Evidence>> {
        let id = parse_id("id", &id).api()?;
        Ok(super::types::loader(ctx)?
            .load_one(EvidenceById(id))
            .await
            .api()?
            .map(|r| Source::Live.evidence(r)))
    }

    /// One assessment.
    async fn assessment(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Assessment>> {
        let id = parse_id("id", &id).api()?;
        Assessment::live_by_id(ctx.data::<PgPool>()?, id).await
    }

    /// The transparency log's latest checkpoint (with its witnesses' quorum): sign-verifiable
    /// against `GET /log/key`. NOT_FOUND until the first is signed.
    async fn checkpoint(&self, ctx: &Context<'_>) -> ApiResult<super::types::Checkpoint> {
        super::types::checkpoint(ctx).await
    }

    /// The RFC 9162 §2.1.4 consistency proof (base64 hashes) that the tree of `fromSize`
    /// leaves is a prefix of the tree of `toSize`, up to the latest checkpoint's size.
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from_size: i32,
        to_size: i32,
    ) -> ApiResult<Vec<String>> {
        super::types::consistency_proof(ctx, from_size, to_size).await
    }

    /// The raw event log in committed order, optionally of one stream and some types.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(desc = "Page size (default 100, at most 500).")] first: Option<i32>,
        stream_id: Option<ID>,
        types: Option<Vec<String>>,
    ) -> ApiResult<EventConnection> {
        let limit = page_size(ctx, first.unwrap_or(100))?;
        let after = after
            .as_deref()
            .map(EventCursor::decode)
            .transpose()
            .api()?;
        let stream_id = stream_id
            .as_ref()
            .map(|s| parse_id("streamId", s))
            .transpose()
            .api()?;
        let rows = read::events_after(
            ctx.data::<PgPool>()?,
            after.unwrap_or(EventCursor::START),
            read::Horizon::Appends,
            limit + 1,
            stream_id,
            types.as_deref(),
        )
        .await
        .api()?;
        Ok(event_connection(
            rows,
            limit,
            after.is_some(),
            TotalCount::Events(stream_id, types),
        ))
    }

    /// Every token (admin), newest first; never the tokens themselves.
    async fn tokens(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::types::Token>> {
        crate::graphql::require_admin(ctx)?;
        let list = crate::store::tokens::list(ctx.data::<PgPool>()?)
            .await
            .api()?;
        Ok(list
            .into_iter()
            .map(|t| super::types::Token {
                id: ID(t.id.to_string()),
                name: t.name,
                role: t.role,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
            })
            .collect())
    }

    /// Every webhook (admin), newest first.
    async fn webhooks(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::types::Webhook>> {
        crate::graphql::require_admin(ctx)?;
        let list = crate::store::webhooks::list(ctx.data::<PgPool>()?)
            .await
            .api()?;
        Ok(list.into_iter().map(super::types::Webhook).collect())
    }

    /// One webhook (admin), with its latest deliveries.
    async fn webhook(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<super::types::Webhook>> {
        crate::graphql::require_admin(ctx)?;
        let id = parse_id("id", &id).api()?;
        Ok(crate::store::webhooks::get(ctx.data::<PgPool>()?, id)
            .await
            .api()?
            .map(super::types::Webhook))
    }

    /// Tamper evidence (admin): recomputes every stream's hash chain and compares the
    /// projections with a fresh replay of the log.
    async fn verify(&self, ctx: &Context<'_>) -> ApiResult<VerifyReport> {
        crate::graphql::require_admin(ctx)?;
        let report = crate::store::verify::verify(ctx.data::<PgPool>()?)
            .await
            .api()?;
        Ok(VerifyReport {
            ok: report.ok(),
            streams: report.streams as i32,
            events: report.events as i32,
            projection_rows: report.projection_rows as i32,
            problems: report
                .problems
                .into_iter()
                .map(|p| VerifyProblem {
                    stream_id: p.stream_id.map(|s| ID(s.to_string())),
                    version: p.version,
                    message: p.message,
                })
                .collect(),
        })
    }

    /// Counts of current verdicts, overall or in one area; with `asOf` and/or `validOn`, as
    /// they stood then.
    async fn scorecard(
        &self,
        ctx: &Context<'_>,
        area: Option<String>,
        as_of: Option<DateTime<Utc>>,
        valid_on: Option<Date>,
    ) -> ApiResult<Scorecard> {
        let rule = ctx.data::<ScorecardRule>().copied().unwrap_or_default();
        let time = time_filter(as_of, valid_on)?;
        let (rows, source) = if time.is_live() {
            (
                read::scorecard_rows(ctx.data::<PgPool>()?, area.as_deref())
                    .await
                    .api()?,
                Source::Live,
            )
        } else {
            let view = Arc::new(View::load(ctx.data::<PgPool>()?, time).await.api()?);
            let rows = view
                .commitments
                .iter()
                .filter(|c| area.as_ref().is_none_or(|a| *a == c.area))
                .map(|c| {
                    let current = current_of(&view, c);
                    (
                        c.id,
                        current.and_then(|a| a.overall),
                        current.map(|a| a.delivery_status),
                    )
                })
                .collect();
            (rows, Source::View(view))
        };
        let ratings: Vec<domain::Rating> = rows.iter().filter_map(|r| r.1).collect();
        let by_rating = domain::Rating::ALL
            .iter()
            .map(|r| RatingCount {
                rating: (*r).into(),
                count: ratings.iter().filter(|x| *x == r).count() as i32,
            })
            .collect();
        let by_delivery_status = domain::DeliveryStatus::ALL
            .iter()
            .map(|s| StatusCount {
                status: (*s).into(),
                count: rows.iter().filter(|r| r.2 == Some(*s)).count() as i32,
            })
            .collect();
        Ok(Scorecard {
            area,
            unrated: (rows.len() - ratings.len()) as i32,
            ids: rows.iter().map(|r| r.0).collect(),
            by_rating,
            by_delivery_status,
            overall: rule.overall(&ratings).map(Into::into),
            rule: rule.as_str(),
            source,
        })
    }
}

/// Checks the time-travel arguments.
fn time_filter(as_of: Option<DateTime<Utc>>, valid_on: Option<Date>) -> ApiResult<TimeFilter> {
    if let Some(d) = valid_on {
        crate::domain::text::check_date("validOn", d.0)
            .map_err(ApiError::from)
            .api()?;
    }
    Ok(TimeFilter {
        as_of,
        valid_on: valid_on.map(|d| d.0),
    })
}

/// The current assessment of a commitment in a view.
fn current_of<'a>(view: &'a View, c: &CommitmentRow) -> Option<&'a AssessmentRow> {
    view.current.get(&c.id)
}

/// What `verify` checked and found.
#[derive(async_graphql::SimpleObject)]
pub struct VerifyReport {
    /// True when every chain holds and the projections equal the replay.
    pub ok: bool,
    /// Streams whose chains were recomputed.
    pub streams: i32,
    /// Events whose hashes were recomputed.
    pub events: i32,
    /// Projection rows compared with the replay.
    pub projection_rows: i32,
    /// What does not hold.
    pub problems: Vec<VerifyProblem>,
}

/// One thing `verify` found wrong.
#[derive(async_graphql::SimpleObject)]
pub struct VerifyProblem {
    /// The stream concerned.
    pub stream_id: Option<ID>,
    /// The version concerned.
    pub version: Option<i32>,
    /// What differs.
    pub message: String,
}
