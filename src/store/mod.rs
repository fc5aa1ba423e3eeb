//! The only place with SQL. The event store appends; projections follow in the same
//! transaction; `read` answers queries; `feed` tails the log in committed order.

pub mod chain;
pub mod cursor;
pub mod erasure;
pub mod event_store;
pub mod feed;
pub mod idempotency;
pub mod persisted;
pub mod personal;
pub mod position;
pub mod projections;
pub mod read;
pub mod rebuild;
pub mod replay;
pub mod replicas;
pub mod tokens;
pub mod tree;
pub mod verify;
pub mod webhooks;

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

/// Whether an error means the connection was lost (the server closed it, restarted, or the
/// network failed), so that the same read on another connection may well succeed.
pub fn is_connection_lost(err: &StoreError) -> bool {
    let StoreError::Database(err) = err else {
        return false;
    };
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // 57P01..57P03: the server is shutting down or terminated the connection; class 08:
        // connection exceptions.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P0") || c.starts_with("08")),
        _ => false,
    }
}

/// Attempts at a read before its error is given up on.
const READ_ATTEMPTS: u32 = 3;

/// Runs a read, again on a fresh connection if the connection was lost under it (a read
/// changes nothing, so running it twice is safe). Other errors return at once.
pub async fn read_retrying<T, F, Fut>(mut read: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 1;
    loop {
        match read().await {
            Err(e) if attempt < READ_ATTEMPTS && is_connection_lost(&e) => {
                tracing::warn!(error = %e, attempt, "a read lost its connection; reading again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Why the database could not be opened, said once, naming the server it concerns and
/// without the driver's internals (DESIGN §12).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(String);

/// Checks that `url` names a PostgreSQL database: `postgres://` or `postgresql://`.
pub fn check_url(url: &str) -> Result<PgConnectOptions, OpenError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("postgres" | "postgresql")) {
        return Err(OpenError(format!(
            "DATABASE_URL must be a postgres:// or postgresql:// URL (this one starts {}); \
             only PostgreSQL is supported",
            scheme.map_or_else(|| "without a scheme".to_owned(), |s| format!("{s}://"))
        )));
    }
    PgConnectOptions::from_str(url).map_err(|e| OpenError(format!("DATABASE_URL: {e}")))
}

/// The error of opening the database at `url`, for a person to read.
pub fn open_error(url: &str, doing: &str, e: &sqlx::Error) -> OpenError {
    let server = PgConnectOptions::from_str(url)
        .map(|o| format!("{}:{}", o.get_host(), o.get_port()))
        .unwrap_or_else(|_| "the configured server".into());
    let database = PgConnectOptions::from_str(url)
        .ok()
        .and_then(|o| o.get_database().map(str::to_owned))
        .unwrap_or_default();
    let why = match e {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "nothing answers there (connection refused): is PostgreSQL running?".to_owned()
            }
            std::io::ErrorKind::NotFound => "no such host".to_owned(),
            _ => io.to_string(),
        },
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "no connection within the pool's timeout".to_owned(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        other => other.to_string(),
    };
    OpenError(format!(
        "cannot {doing} database {database:?} on PostgreSQL at {server}: {why}"
    ))
}

/// Creates (if missing) and connects to the database at `url`, with errors a person can act
/// on.
pub async fn open_pool(url: &str, max_connections: u32) -> Result<PgPool, OpenError> {
    check_url(url)?;
    ensure_database(url)
        .await
        .map_err(|e| open_error(url, "create", &e))?;
    connect(url, max_connections)
        .await
        .map_err(|e| open_error(url, "connect to", &e))
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
///
/// JIT compilation is off for the server's sessions: every statement it runs is a short
/// index-driven one, and when the planner's row estimates are stale (after a bulk import,
/// before autovacuum analyses) PostgreSQL starts compiling them, which cost 200 ms of a
/// 1.6 ms entry-tile query on a 1,000,000-event log.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .application_name("commitment-tracker")
        .options([("jit", "off")]);
    pool_options(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// The options every pool of the server's shares: acquisition timings reported. Each
/// connection is pinged when handed out (sqlx's default), so one cut while it sat in the pool
/// is replaced, not handed to a request.
pub(crate) fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        // Every acquisition reports its wait (as a trace event the metrics layer of
        // `telemetry` turns into `db_pool_acquire_wait_seconds`; it is not logged).
        .acquire_time_level(log::LevelFilter::Trace)
        .acquire_slow_level(log::LevelFilter::Warn)
}

/// The migrations in `migrations/`, built into the binary.
pub fn migrator() -> &'static sqlx::migrate::Migrator {
    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
    &MIGRATOR
}

/// Runs the migrations in `migrations/` that have not run yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn lost() -> StoreError {
        StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )))
    }

    #[tokio::test]
    async fn a_read_that_lost_its_connection_is_read_again_a_bounded_number_of_times() {
        let calls = Cell::new(0);
        let result = read_retrying(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n < 3 { Err(lost()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);

        calls.set(0);
        let result: StoreResult<()> = read_retrying(|| {
            calls.set(calls.get() + 1);
            async { Err(lost()) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), READ_ATTEMPTS);
    }

    #[tokio::test]
    async fn any_other_error_returns_at_once() {
        let calls = Cell::new(0);
        let result: StoreResult<()> = read_retrying(|| {
            calls.set(calls.get() + 1);
            async { Err(StoreError::Database(sqlx::Error::RowNotFound)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1);
        assert!(!is_connection_lost(&StoreError::Corrupt {
            position: 1,
            reason: "x".into()
        }));
    }
}
