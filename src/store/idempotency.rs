//! Idempotency keys: a retried command returns its first outcome and writes nothing.
//!
//! The key is claimed with `insert ... on conflict do nothing` inside the command's
//! transaction. A concurrent retry blocks on the unique index until the first commits (then
//! it sees the stored outcome) or aborts (then it claims the key itself), so two requests with
//! one key can never both write.

use super::StoreResult;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is new: run the command, then [`complete`] it.
    Fresh,
    /// The same command ran before with this key: here is its outcome.
    Replay(Value),
    /// The key was used for a different command.
    Mismatch,
}

/// The hash that identifies a command under a key.
pub fn command_hash(kind: &str, command: &Value) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(command.to_string().as_bytes());
    h.finalize().to_vec()
}

/// Claims `key` for `actor` and the command hashed as `hash`.
pub async fn claim(
    conn: &mut PgConnection,
    actor: &str,
    key: &str,
    hash: &[u8],
) -> StoreResult<Claim> {
    // language=PostgreSQL
    let inserted = sqlx::query(
        "insert into idempotency_keys (actor, key, command_hash) values ($1, $2, $3)
         on conflict (actor, key) do nothing",
    )
    .bind(actor)
    .bind(key)
    .bind(hash)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    // language=PostgreSQL
    let (stored_hash, outcome): (Vec<u8>, Option<Value>) = sqlx::query_as(
        "select command_hash, outcome from idempotency_keys where actor = $1 and key = $2",
    )
    .bind(actor)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(match outcome {
        Some(outcome) if stored_hash == hash => Claim::Replay(outcome),
        _ => Claim::Mismatch,
    })
}

/// Records the outcome of the command that claimed `key`.
pub async fn complete(
    conn: &mut PgConnection,
    actor: &str,
    key: &str,
    outcome: &Value,
) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query("update idempotency_keys set outcome = $3 where actor = $1 and key = $2")
        .bind(actor)
        .bind(key)
        .bind(outcome)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
