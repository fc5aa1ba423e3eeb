//! commitment-tracker: an event-sourced GraphQL API that keeps a complete, tamper-evident
//! record of how government commitments are delivered.
//!
//! # Layout
//!
//! ```text
//!  HTTP (http/) ──▶ gateway (graphql/gateway.rs): persisted queries, limits, codes, order
//!        │
//!  GraphQL (graphql/)  ──commands──▶  commands/ ──decide──▶ domain/ (pure rules)
//!        │                                 │
//!        │ reads                           │ append + inline projections, one transaction
//!        ▼                                 ▼
//!  store/read/   ◀──── projection tables ◀── store/event_store.rs ──▶ events table
//!                                                                       │
//!  subscriptions ◀── broadcast ◀── store/feed.rs (tails events in committed order)
//! ```
//!
//! Dependencies point inward: `domain` knows nothing of SQL or GraphQL, `store` owns every SQL
//! statement, `graphql` owns the resolvers.
#![forbid(unsafe_code)]

/// Authentication: tokens, roles and the actor of a request.
pub mod auth;
/// Command line: the subcommands of the `commitment-tracker` binary.
pub mod cli;
/// Command handlers: load a stream, decide with the domain, append, in one transaction.
pub mod commands;
/// Typed configuration read from flags and the environment.
pub mod config;
/// The domain: events, commands and rules, without I/O.
pub mod domain;
/// Zero configuration: a private PostgreSQL cluster from the machine's own binaries.
pub mod embedded;
/// The GraphQL schema: queries, mutations, subscriptions, errors, loaders, and the gateway
/// every operation passes (persisted queries, limits, codes, field order).
pub mod graphql;
/// The HTTP surface: GraphQL over HTTP, GraphiQL, WebSocket, health; one file per route family.
pub mod http;
/// Readiness and shutdown: where the process is in its life.
pub mod lifecycle;
/// The figures `GET /metrics` serves.
pub mod metrics;
/// Open data: CSV exports and the Atom feed, for people who do not write GraphQL.
pub mod opendata;
/// The pages: the scorecard and each commitment's verdict timeline, rendered on the server.
pub mod pages;
/// Progress displays of long commands on a terminal.
pub mod progress;
/// The seed data set and its import.
pub mod seed;
/// Shared execution of identical subscriptions.
pub mod shared;
/// Building and running the HTTP server.
pub mod startup;
/// The only place with SQL: event store, projections, the live feed, tokens.
pub mod store;
/// Logging.
pub mod telemetry;
/// The transparency log: Merkle tree, proofs and signed checkpoints, without I/O.
pub mod tlog;
/// Webhooks: signed deliveries of events to registered addresses, at least once, in order.
pub mod webhooks;
