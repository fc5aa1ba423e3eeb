//! The GraphQL schema (DESIGN §5): queries, mutations and subscriptions over current state
//! and history.

pub mod compiled;
pub mod documents;
pub mod error;
pub mod gateway;
pub mod inputs;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod order;
pub mod panics;
pub mod prefetch;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use crate::auth::Actor;
use crate::commands::Commands;
use crate::domain::scorecard::ScorecardRule;
use crate::store::feed::Feed;
use crate::store::replicas::{Reads, Target};
use crate::store::tokens::TokenCache;
use async_graphql::dataloader::DataLoader;
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
    /// Where the request's writes stand in the log, for its answer's `logPosition`.
    pub written: crate::commands::Written,
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
    /// Largest complexity a query may have.
    pub max_complexity: usize,
    /// Largest page a list returns.
    pub max_page: i32,
    /// Tokens recently checked (revoking one drops it).
    pub tokens: Arc<TokenCache>,
    /// The transparency log's key and quorum.
    pub log: Arc<crate::http::log::LogInfo>,
    /// How webhooks are checked and delivered.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// The primary and the read replicas.
    pub reads: Reads,
}

/// Where a request's reads go: the pool of the chosen database and the loader batching
/// over it, attached to the request so that its resolvers read there. Requests without them
/// (mutations, WebSocket operations) read from the primary, the schema's own data.
#[derive(Clone)]
pub struct Readers {
    reads: Reads,
    /// One loader per database: the primary's first, then each replica's.
    loaders: Arc<[Arc<DataLoader<Loaders>>]>,
}

impl Readers {
    /// The primary and replicas.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// `prepared`, reading from `target`.
    pub fn attach(&self, prepared: gateway::Prepared, target: Target) -> gateway::Prepared {
        let loader = match target {
            Target::Primary => &self.loaders[0],
            Target::Replica(i) => &self.loaders[i + 1],
        };
        prepared
            .with_data(self.reads.pool(target).clone())
            .with_data(loader.clone())
    }
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

/// The two schemas a server runs, over the same data and one loader.
pub struct Schemas {
    /// For HTTP: a panicking resolver fails its request, which the HTTP layer answers with a
    /// coded `500`. No per-field guard: wrapping each of a list's thousand fields in one cost
    /// a quarter of the list query's throughput.
    pub http: AppSchema,
    /// For WebSocket connections, where one execution can be shared by many subscribers and
    /// runs for hours: a panicking resolver fails only its field ([`panics`]).
    pub live: AppSchema,
    /// Where HTTP reads go.
    pub readers: Readers,
}

/// Builds the schemas with their data.
pub fn build_schemas(deps: SchemaDeps) -> Schemas {
    // One loader per database for the whole process, without a cache: it batches concurrent
    // loads (within a request and across requests, `loaders::gathering`) and never serves a
    // stale row.
    let loader_of = |pool: &PgPool| {
        let loader = DataLoader::new(Loaders::new(pool.clone()), loaders::gathering::spawn);
        Arc::new(loader.delay(std::time::Duration::ZERO))
    };
    let loader = loader_of(&deps.pool);
    let mut loaders = vec![loader.clone()];
    loaders.extend(
        (0..deps.reads.replica_count()).map(|i| loader_of(deps.reads.pool(Target::Replica(i)))),
    );
    let readers = Readers {
        reads: deps.reads.clone(),
        loaders: loaders.into(),
    };
    let recent = subscription::RecentAssessments::default();
    let build = |guarded: bool| {
        let mut b = builder()
            .data(deps.pool.clone())
            .data(deps.commands.clone())
            .data(deps.feed.clone())
            .data(deps.scorecard_rule)
            .data(deps.tokens.clone())
            .data(deps.log.clone())
            .data(deps.webhooks.clone())
            .data(loader.clone())
            .data(types::PageLimit(deps.max_page))
            .data(recent.clone());
        if guarded {
            b = b.extension(panics::CatchPanicsFactory);
        }
        // Depth is checked before execution (`limits`), where introspection is told apart;
        // the parser's own bound on nesting is the one that stops recursion.
        b.limit_complexity(deps.max_complexity)
            .limit_recursive_depth(64)
            .finish()
    };
    Schemas {
        http: build(false),
        live: build(true),
        readers,
    }
}

/// The schema's SDL, as served (and as committed in `schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}

pub use limits::{count_aliases, has_mutation};
