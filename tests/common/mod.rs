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
