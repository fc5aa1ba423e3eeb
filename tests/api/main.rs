//! API tests: a real server over real HTTP and WebSocket, a fresh database per test.

mod bench;
mod clients;
mod erasure;
mod helpers;
mod hostile;
mod immutability;
mod isolation;
mod lifecycle;
mod lists;
mod live;
mod log;
mod node;
mod persisted;
mod processes;
mod ratelimit;
mod readme;
mod schema;
mod seed;
mod session;
mod statements;
mod subscriptions;
mod timetravel;
mod tlog;
mod tools;
mod witness;
mod writes;
