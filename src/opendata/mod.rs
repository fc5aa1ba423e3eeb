//! Open data (DESIGN §13): the record for people who do not write GraphQL. CSV exports
//! streamed from one statement each, and the assessments feed in Atom. Only formats live
//! here; the routes are in `http/export.rs` and `http/feeds.rs`, the statements in
//! `store/read/export.rs`.

pub mod atom;
pub mod csv;
pub mod export;
