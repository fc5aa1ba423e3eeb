//! The only place with SQL. The event store appends; projections follow in the same
//! transaction; `read` answers queries; `feed` tails the log in committed order.

pub mod chain;
pub mod cursor;
pub mod event_store;
pub mod feed;
pub mod idempotency;
pub mod persisted;
pub mod projections;
pub mod read;
pub mod rebuild;
pub mod replay;
pub mod tokens;
pub mod verify;

use crate::domain::DomainError;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong below the API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command broke a rule that only the database could see (a taken slug, a version
    /// another writer took first).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed. Its text is logged, never shown to a client.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be decoded: the log holds something this build cannot read.
    #[error("stored event {position} is unreadable: {reason}")]
    Corrupt {
        /// The event's global position.
        position: i64,
        /// What was wrong.
        reason: String,
    },
}

/// Shorthand for results of this layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// The SQLSTATE of a unique violation, and the constraint it names, if that is the error.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// Creates the database named in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<(), sqlx::Error> {
    if !Postgres::database_exists(url).await? {
        match Postgres::create_database(url).await {
            Ok(()) => {}
            // Another process created it between the check and the create.
            Err(e) if unique_violation(&e).is_some() => {}
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens a pool on `url` with at most `max_connections` connections.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("commitment-tracker");
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Runs the migrations in `migrations/` that have not run yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}
