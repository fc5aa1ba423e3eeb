//! Persisted query documents, by the SHA-256 of their text.
//!
//! A hash names one text forever, so what a process has read it may keep: [`PersistedQueries`]
//! remembers the documents it has seen and asks the database only for hashes it has not. A
//! miss is never remembered, because another process may register the hash a moment later.

use super::StoreResult;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most documents a process keeps in memory; when full, it starts again empty.
const KEPT: usize = 4096;

/// The lower-case hex SHA-256 of a document's text, as clients compute it.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether `hash` is spelt as a SHA-256 in hex (64 digits, either case).
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The registered documents, read through a cache of the ones this process has seen.
#[derive(Clone)]
pub struct PersistedQueries {
    pool: PgPool,
    seen: Arc<Mutex<HashMap<String, Arc<str>>>>,
}

impl PersistedQueries {
    /// The documents registered in `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            seen: Arc::default(),
        }
    }

    /// The document registered under `hash` (lower-case hex), if any.
    pub async fn lookup(&self, hash: &str) -> StoreResult<Option<Arc<str>>> {
        if let Some(text) = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
        {
            return Ok(Some(text.clone()));
        }
        // language=PostgreSQL
        let text: Option<String> =
            sqlx::query_scalar("select document from persisted_queries where sha256 = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(text.map(|text| self.remember(hash, text.into())))
    }

    /// Registers `text` under its hash (idempotent) and returns the hash.
    pub async fn register(&self, text: &str) -> StoreResult<String> {
        let hash = sha256_hex(text);
        // language=PostgreSQL
        sqlx::query(
            "insert into persisted_queries (sha256, document) values ($1, $2)
             on conflict (sha256) do nothing",
        )
        .bind(&hash)
        .bind(text)
        .execute(&self.pool)
        .await?;
        self.remember(&hash, text.into());
        Ok(hash)
    }

    fn remember(&self, hash: &str, text: Arc<str>) -> Arc<str> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= KEPT {
            seen.clear();
        }
        seen.insert(hash.to_owned(), text.clone());
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lower_case_hex_of_the_text() {
        // SHA-256 of "{ __typename }", as `printf '{ __typename }' | sha256sum` gives it.
        let hash = sha256_hex("{ __typename }");
        assert!(is_sha256_hex(&hash));
        assert_eq!(hash, hash.to_ascii_lowercase());
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(!is_sha256_hex("abc"));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }
}
