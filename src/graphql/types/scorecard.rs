//! `Scorecard` and its counts.

use super::*;

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
