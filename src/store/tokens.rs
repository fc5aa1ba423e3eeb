//! API tokens: created with a role, looked up by hash, never stored in plain text.

use super::StoreResult;
use crate::auth::{Actor, Role, generate_token, hash_token};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
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
    // language=PostgreSQL
    let row: Option<(Uuid, String, String)> = sqlx::query_as(
        "select id, name, role from api_tokens
         where token_hash = $1 and revoked_at is null and (expires_at is null or expires_at > now())",
    )
    .bind(hash_token(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(token_id, name, role)| {
        Role::parse(&role).map(|role| Actor {
            token_id,
            name,
            role,
        })
    }))
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
