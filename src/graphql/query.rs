//! Queries over current state and history.

use super::error::{ApiError, ApiResult, OrApi};
use super::inputs::parse_id;
use super::loaders::{AssessmentsOf, CommitmentById, EvidenceById, Loaders};
use super::types::{
    Assessment, Commitment, CommitmentConnection, DeliveryStatus, EventConnection, Evidence,
    Rating, RatingCount, Scorecard, StatusCount, TotalCount, commitment_connection,
    event_connection, page_size,
};
use crate::domain::rating as domain;
use crate::domain::scorecard::ScorecardRule;
use crate::store::cursor::{EventCursor, ListCursor};
use crate::store::read::{self, CommitmentFilter};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use sqlx::PgPool;

/// The root of reads.
pub struct Query;

#[Object]
impl Query {
    /// Commitments in registration order, filtered by area and by their current verdict.
    async fn commitments(
        &self,
        ctx: &Context<'_>,
        area: Option<String>,
        rating: Option<Rating>,
        delivery_status: Option<DeliveryStatus>,
        #[graphql(desc = "Page size (default 50, at most 500).")] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<CommitmentConnection> {
        let limit = page_size(first.unwrap_or(50))?;
        let after = after.as_deref().map(ListCursor::decode).transpose().api()?;
        let filter = CommitmentFilter {
            area,
            rating: rating.map(Into::into),
            delivery_status: delivery_status.map(Into::into),
        };
        let rows = read::list_commitments(
            ctx.data::<PgPool>()?,
            &filter,
            after.map(|c| c.0),
            limit + 1,
        )
        .await
        .api()?;
        Ok(commitment_connection(
            rows,
            limit,
            after.is_some(),
            TotalCount::Commitments(filter),
        ))
    }

    /// One commitment, by id or by slug (give exactly one).
    async fn commitment(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> ApiResult<Option<Commitment>> {
        let row = match (id, slug) {
            (Some(id), None) => {
                let id = parse_id("id", &id).api()?;
                ctx.data::<DataLoader<Loaders>>()?
                    .load_one(CommitmentById(id))
                    .await
                    .api()?
            }
            (None, Some(slug)) => read::commitment_by_slug(ctx.data::<PgPool>()?, &slug)
                .await
                .api()?,
            _ => return Err(ApiError::bad_input("id", "give exactly one of id and slug")).api(),
        };
        Ok(row.map(Commitment))
    }

    /// One piece of evidence.
    async fn evidence(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Evidence>> {
        let id = parse_id("id", &id).api()?;
        Ok(ctx
            .data::<DataLoader<Loaders>>()?
            .load_one(EvidenceById(id))
            .await
            .api()?
            .map(Evidence))
    }

    /// One assessment.
    async fn assessment(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Assessment>> {
        let id = parse_id("id", &id).api()?;
        let pool = ctx.data::<PgPool>()?;
        let Some(commitment) = read::assessment_commitment(pool, id).await.api()? else {
            return Ok(None);
        };
        let timeline = ctx
            .data::<DataLoader<Loaders>>()?
            .load_one(AssessmentsOf(commitment))
            .await
            .api()?
            .unwrap_or_default();
        Ok(timeline.iter().find(|a| a.row.id == id).cloned())
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
        let limit = page_size(first.unwrap_or(100))?;
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

    /// Counts of current verdicts, overall or in one area.
    async fn scorecard(&self, ctx: &Context<'_>, area: Option<String>) -> ApiResult<Scorecard> {
        let rule = ctx.data::<ScorecardRule>().copied().unwrap_or_default();
        let rows = read::scorecard_rows(ctx.data::<PgPool>()?, area.as_deref())
            .await
            .api()?;
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
        })
    }
}
