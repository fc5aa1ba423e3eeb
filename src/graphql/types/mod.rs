//! The object types of the schema and the enums mirrored from the domain, one file per kind
//! of object; this file holds the enums and what every object uses.

mod assessment;
mod commitment;
mod evidence;
mod history;
mod log;
mod scorecard;
mod token;
mod webhook;

pub use assessment::*;
pub use commitment::*;
pub use evidence::*;
pub use history::*;
pub use log::{Checkpoint, InclusionProof};
pub(crate) use log::{checkpoint, consistency_proof, event_at};
pub use scorecard::*;
pub use token::*;
pub use webhook::*;

use super::error::{ApiResult, OrApi};
use super::loaders::{
    AssessmentsOf, CommitmentById, DisputesOf, EventAt, EvidenceById, EvidenceOf,
    LatestAssessmentsOf, LeafOf, Loaders, PreviousOf, RevisionsOf,
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
