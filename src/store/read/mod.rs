//! Queries over the projections and the log. Every list query takes a whole batch of keys so
//! that the GraphQL loaders issue one statement per kind of thing, however many parents. The
//! rows and their decoding are in `rows`, the queries over the projections in `state`, those
//! over the log in `log`.

mod export;
mod log;
mod rows;
mod state;

pub use export::*;
pub use log::*;
pub use rows::*;
pub use state::*;

use super::cursor::EventCursor;
use super::event_store::{EVENT_COLUMNS, Envelope, StoredEvent};
use super::replay::TimeFilter;
use super::{StoreError, StoreResult};
use crate::domain::commitment::CommitmentAssessed;
use crate::domain::rating::{Aspects, AssessorKind, DeliveryStatus, EvidenceKind, Rating};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Row};
use uuid::Uuid;
