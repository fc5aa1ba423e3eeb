//! API tokens: created with a role, looked up by hash, never stored in plain text.

use super::StoreResult;
use crate::auth::{Actor, Role, generate_token, hash_token};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Creates a token and returns it with its id. The plain token exists only in the result.
pub async fn create(
    pool: &PgPool,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> StoreResult<(Uuid, String)> {
    let token = generate_token();
    let id = Uuid::now_v7();
    // language=PostgreSQL
    sqlx::query("insert into api_tokens (id, name, role, token_hash, expires_at) values ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(name)
        .bind(role.as_str())
        .bind(hash_token(&token))
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok((id, token))
}

/// The actor a token stands for, if it exists, is not revoked and has not expired.
pub async fn authenticate(pool: &PgPool, token: &str) -> StoreResult<Option<Actor>> {
    Ok(lookup(pool, &hash_token(token))
        .await?
        .map(|(actor, _)| actor))
}

/// The actor of the token hashed as `hash` and when it expires, if it is valid now.
async fn lookup(pool: &PgPool, hash: &[u8]) -> StoreResult<Option<(Actor, Option<DateTime<Utc>>)>> {
    // language=PostgreSQL
    let row: Option<(Uuid, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select id, name, role, expires_at from api_tokens
         where token_hash = $1 and revoked_at is null and (expires_at is null or expires_at > now())",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(token_id, name, role, expires_at)| {
        Role::parse(&role).map(|role| {
            let actor = Actor {
                token_id,
                name,
                role,
            };
            (actor, expires_at)
        })
    }))
}

/// Which of the tokens `ids` are valid now, as seen by the transaction on `conn`: a write
/// checks its token here, in the transaction that records it, so that no event is written
/// under a token revoked or expired before the commit, whatever a cache said.
pub async fn still_valid(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    // language=PostgreSQL
    let valid: Vec<Uuid> = sqlx::query_scalar(
        "select id from api_tokens
         where id = any($1) and revoked_at is null and (expires_at is null or expires_at > now())",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(valid.into_iter().collect())
}

/// Tokens this process found valid recently, so that a busy client's requests do not each
/// look theirs up.
///
/// An entry is trusted for the cache's time to live (and never past the token's expiry);
/// revoking through this process drops it at once, and a revocation elsewhere (another
/// server, the command line) reaches this one's reads within the time to live. Writes do
/// not rely on it: each re-checks its token in its own transaction ([`still_valid`]).
/// Unknown tokens are never cached.
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<Vec<u8>, Cached>>,
}

struct Cached {
    actor: Actor,
    expires_at: Option<DateTime<Utc>>,
    checked: Instant,
}

/// Most tokens a cache keeps.
const CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    /// A cache trusting what it found for `ttl` (zero: look up every time).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The actor `token` stands for, if it is valid: from the cache while the entry is
    /// fresh, else from the database.
    pub async fn authenticate(&self, pool: &PgPool, token: &str) -> StoreResult<Option<Actor>> {
        let hash = hash_token(token);
        if let Some(c) = self.entries().get(&hash)
            && c.checked.elapsed() < self.ttl
            && c.expires_at.is_none_or(|t| t > Utc::now())
        {
            return Ok(Some(c.actor.clone()));
        }
        let found = lookup(pool, &hash).await?;
        let mut entries = self.entries();
        match &found {
            Some((actor, expires_at)) if !self.ttl.is_zero() => {
                if entries.len() >= CACHED_TOKENS {
                    let ttl = self.ttl;
                    entries.retain(|_, c| c.checked.elapsed() < ttl);
                    if entries.len() >= CACHED_TOKENS {
                        entries.clear();
                    }
                }
                entries.insert(
                    hash,
                    Cached {
                        actor: actor.clone(),
                        expires_at: *expires_at,
                        checked: Instant::now(),
                    },
                );
            }
            _ => {
                entries.remove(&hash);
            }
        }
        Ok(found.map(|(actor, _)| actor))
    }

    /// Drops the token `id` (just revoked).
    pub fn forget(&self, id: Uuid) {
        self.entries().retain(|_, c| c.actor.token_id != id);
    }
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TokenInfo {
    /// Id.
    pub id: Uuid,
    /// Holder.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires, if set.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked, if so.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Every token, newest first.
pub async fn list(pool: &PgPool) -> StoreResult<Vec<TokenInfo>> {
    // language=PostgreSQL
    Ok(sqlx::query_as::<_, TokenInfo>(
        "select id, name, role, created_at, expires_at, revoked_at from api_tokens order by created_at desc",
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes a token; false if there is no such token or it was revoked already.
pub async fn revoke(pool: &PgPool, id: Uuid) -> StoreResult<bool> {
    // language=PostgreSQL
    let done = sqlx::query(
        "update api_tokens set revoked_at = now() where id = $1 and revoked_at is null",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(done == 1)
}
