//! The GraphQL schema (DESIGN §5): queries, mutations and subscriptions over current state
//! and history.

pub mod error;
pub mod inputs;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use crate::auth::Actor;
use crate::commands::Commands;
use crate::domain::scorecard::ScorecardRule;
use crate::store::feed::Feed;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Schema, SchemaBuilder};
use loaders::Loaders;
use sqlx::PgPool;

/// The schema served at `/graphql`.
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Who is asking, attached to each request (or WebSocket connection).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The authenticated caller, if a valid token was sent.
    pub actor: Option<Actor>,
    /// The request id, echoed in `x-request-id` and stored in event metadata.
    pub request_id: Option<String>,
}

/// What the schema needs from the rest of the application.
pub struct SchemaDeps {
    /// The database.
    pub pool: PgPool,
    /// Command handlers.
    pub commands: Commands,
    /// The live feed.
    pub feed: Feed,
    /// The scorecard's overall-rating rule.
    pub scorecard_rule: ScorecardRule,
}

fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
}

/// Builds the schema with its data.
pub fn build_schema(deps: SchemaDeps) -> AppSchema {
    // One loader for the whole process, without a cache: it batches concurrent loads (within a
    // request and across requests) and never serves a stale row.
    let loader = DataLoader::new(Loaders::new(deps.pool.clone()), tokio::spawn);
    builder()
        .data(deps.pool)
        .data(deps.commands)
        .data(deps.feed)
        .data(deps.scorecard_rule)
        .data(loader)
        .finish()
}

/// The schema's SDL, as served (and as committed in `schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}
