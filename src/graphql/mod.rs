//! The GraphQL schema (DESIGN §5): queries, mutations and subscriptions over current state
//! and history.

pub mod error;
pub mod inputs;
pub mod loaders;
pub mod mutation;
pub mod panics;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use crate::auth::Actor;
use crate::commands::Commands;
use crate::domain::scorecard::ScorecardRule;
use crate::store::feed::Feed;
use crate::store::tokens::TokenCache;
use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Schema, SchemaBuilder};
use loaders::Loaders;
use sqlx::PgPool;
use std::sync::Arc;

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
    /// Deepest nesting a query may have.
    pub max_depth: usize,
    /// Largest complexity a query may have.
    pub max_complexity: usize,
    /// Largest page a list returns.
    pub max_page: i32,
    /// Tokens recently checked (revoking one drops it).
    pub tokens: Arc<TokenCache>,
}

/// Requires a token with the admin role on the request.
pub(crate) fn require_admin(ctx: &async_graphql::Context<'_>) -> async_graphql::Result<()> {
    use error::{ApiError, OrApi};
    let info = ctx.data::<RequestInfo>()?;
    match &info.actor {
        None => Err(ApiError::Unauthenticated(
            "this needs Authorization: Bearer <token>".into(),
        ))
        .api(),
        Some(a) if !a.can(crate::auth::Role::Admin) => Err(ApiError::Forbidden(
            "this needs a token with the admin role".into(),
        ))
        .api(),
        Some(_) => Ok(()),
    }
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
        .data(deps.tokens)
        .data(loader)
        .data(types::PageLimit(deps.max_page))
        .data(subscription::RecentAssessments::default())
        .extension(panics::CatchPanicsFactory)
        .limit_depth(deps.max_depth)
        .limit_complexity(deps.max_complexity)
        .finish()
}

/// The schema's SDL, as served (and as committed in `schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// How many aliased fields a parsed query document holds (in operations and fragments).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| walk(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// Whether a parsed query document holds a mutation (which must come by POST).
pub fn has_mutation(doc: &ExecutableDocument) -> bool {
    use async_graphql::parser::types::OperationType;
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation)
}
