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

/// A key one command of a batch claims.
#[derive(Debug, Clone, Copy)]
pub struct KeyClaim<'a> {
    /// Whose key.
    pub actor: &'a str,
    /// The key.
    pub key: &'a str,
    /// The command's hash (see [`command_hash`]).
    pub hash: &'a [u8],
}

/// Claims several keys at once, as [`claim`] does one: one answer per key, in order. The
/// keys must be distinct.
pub async fn claim_many(conn: &mut PgConnection, keys: &[KeyClaim<'_>]) -> StoreResult<Vec<Claim>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // language=PostgreSQL
    let inserted: Vec<(String, String)> = sqlx::query_as(
        "insert into idempotency_keys (actor, key, command_hash)
         select * from unnest($1::text[], $2::text[], $3::bytea[])
         on conflict (actor, key) do nothing
         returning actor, key",
    )
    .bind(keys.iter().map(|k| k.actor).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.key).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.hash).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let mut claims = Vec::with_capacity(keys.len());
    for k in keys {
        let fresh = inserted
            .iter()
            .any(|(actor, key)| actor == k.actor && key == k.key);
        // A key used before: its row committed before the insert went on (the insert waits
        // for a writer still holding it), so this later statement sees it.
        claims.push(if fresh {
            Claim::Fresh
        } else {
            claim(conn, k.actor, k.key, k.hash).await?
        });
    }
    Ok(claims)
}

/// Gives back keys claimed by commands of a batch that were refused, so that a corrected
/// retry with the same key runs (a refused command alone rolls its claim back).
pub async fn release_many(conn: &mut PgConnection, keys: &[(&str, &str)]) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    // language=PostgreSQL
    sqlx::query(
        "delete from idempotency_keys k
         using unnest($1::text[], $2::text[]) as u(actor, key)
         where k.actor = u.actor and k.key = u.key and k.outcome is null",
    )
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the outcomes of several commands that claimed keys, as [`complete`] does one.
pub async fn complete_many(
    conn: &mut PgConnection,
    outcomes: &[(&str, &str, Value)],
) -> StoreResult<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    // language=PostgreSQL
    sqlx::query(
        "update idempotency_keys k set outcome = u.outcome
         from unnest($1::text[], $2::text[], $3::jsonb[]) as u(actor, key, outcome)
         where k.actor = u.actor and k.key = u.key",
    )
    .bind(outcomes.iter().map(|o| o.0).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.1).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| &o.2).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
