//! Test support shared by the test binaries: a fresh database per test, dropped afterwards.
#![allow(dead_code)]

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The server that test databases are created on (`TEST_DATABASE_URL`, without a database
/// name; default the local PostgreSQL as user postgres).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database that exists for one test and is dropped (with its connections) when dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> Self {
        let name = format!("ct_test_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        Self {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }
}

impl TestDatabase {
    /// A copy of this database as it is now (as a backup restored later would be). Nothing
    /// may be connected to this one meanwhile.
    pub async fn copy(&self) -> Self {
        let name = format!("ct_test_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create database {name} template {}",
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("copy the test database");
        Self {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mut admin =
                    PgConnection::connect(&format!("{}/postgres", server_url())).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "drop database if exists {name} with (force)"
                )))
                .execute(&mut admin)
                .await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
}

/// Runs `sql` (statements separated by `;`) with the events' immutability trigger disabled,
/// as only a superuser could: tampering, for the tests that must catch it.
pub async fn tamper(pool: &sqlx::PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table events disable trigger events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    for statement in sql.split(';') {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("alter table events enable trigger events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A transaction on `url` that has written a row to `table` (created first, outside it) and
/// stays open until the connection rolls it back or closes: another application's long batch
/// job.
pub async fn open_write_transaction(url: &str, table: &str) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "create table if not exists {table} (note text)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into {table} values ('a batch job that takes its time')"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}
