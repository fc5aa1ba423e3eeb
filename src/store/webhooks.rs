//! Webhooks' rows (migration 0009): the webhooks, their delivery cursors and state, and the
//! log of attempts.

use super::StoreResult;
use super::cursor::EventCursor;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

/// Attempts kept per webhook in the delivery log; older ones are pruned.
pub const DELIVERIES_KEPT: i64 = 1000;

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRow {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The types delivered (empty: all).
    pub event_types: Vec<String>,
    /// What it is for.
    pub description: String,
    /// The signing key.
    pub secret: Vec<u8>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Delivered (or passed over) up to here.
    pub cursor: EventCursor,
    /// Paused after too many failures?
    pub paused: bool,
    /// Since when.
    pub paused_at: Option<DateTime<Utc>>,
    /// Why.
    pub paused_reason: Option<String>,
    /// Failed attempts in a row at the next event.
    pub failures: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last 2xx answer.
    pub last_success_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, url, event_types, description, secret, created_at, \
     cursor_transaction_id, cursor_position, state, paused_at, paused_reason, failures, \
     next_attempt_at, last_success_at";

fn webhook(row: &PgRow) -> Result<WebhookRow, sqlx::Error> {
    Ok(WebhookRow {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        event_types: row.try_get("event_types")?,
        description: row.try_get("description")?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
        cursor: EventCursor {
            transaction_id: row.try_get("cursor_transaction_id")?,
            position: row.try_get("cursor_position")?,
        },
        paused: row.try_get::<&str, _>("state")? == "paused",
        paused_at: row.try_get("paused_at")?,
        paused_reason: row.try_get("paused_reason")?,
        failures: row.try_get("failures")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_success_at: row.try_get("last_success_at")?,
    })
}

/// What creating a webhook needs.
pub struct NewWebhook<'a> {
    /// Where deliveries go.
    pub url: &'a str,
    /// The types delivered (empty: all).
    pub event_types: &'a [String],
    /// What it is for.
    pub description: &'a str,
    /// The signing key.
    pub secret: &'a [u8],
    /// The token that creates it.
    pub created_by: Option<Uuid>,
}

/// Creates a webhook whose deliveries start after the last committed event: it delivers
/// what happens from now on.
pub async fn create(pool: &PgPool, new: NewWebhook<'_>) -> StoreResult<WebhookRow> {
    // language=PostgreSQL
    let sql = format!(
        "insert into webhooks (id, url, event_types, description, secret, created_by, created_at,
                               cursor_transaction_id, cursor_position, state)
         select $1, $2, $3, $4, $5, $6, now(),
                coalesce(max(transaction_id), 0), coalesce(max(position), 0), 'active'
         from (select transaction_id, position from events
               order by transaction_id desc, position desc limit 1) head
         returning {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(new.url)
        .bind(new.event_types)
        .bind(new.description)
        .bind(new.secret)
        .bind(new.created_by)
        .fetch_one(pool)
        .await?;
    Ok(webhook(&row)?)
}

/// Every webhook, newest first.
pub async fn list(pool: &PgPool) -> StoreResult<Vec<WebhookRow>> {
    let sql = format!("select {COLUMNS} from webhooks order by created_at desc, id desc");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
}

/// One webhook.
pub async fn get(pool: &PgPool, id: Uuid) -> StoreResult<Option<WebhookRow>> {
    let sql = format!("select {COLUMNS} from webhooks where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(webhook).transpose()?)
}

/// Deletes a webhook and its delivery log; false if there was none.
pub async fn delete(pool: &PgPool, id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("delete from webhooks where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes a paused webhook active again, its next attempt due now; `None` if there is no such
/// webhook.
pub async fn resume(pool: &PgPool, id: Uuid) -> StoreResult<Option<WebhookRow>> {
    let sql = format!(
        "update webhooks set state = 'active', paused_at = null, paused_reason = null,
                failures = 0, next_attempt_at = null
         where id = $1 returning {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(webhook).transpose()?)
}

/// Active webhooks whose next attempt is due.
pub async fn due(pool: &PgPool) -> StoreResult<Vec<WebhookRow>> {
    let sql = format!(
        "select {COLUMNS} from webhooks
         where state = 'active' and (next_attempt_at is null or next_attempt_at <= now())
         order by id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
}

/// Moves a webhook's cursor forward (never back) after a delivery or past events it does not
/// take; `delivered` also clears its failures. False when the webhook is gone or paused.
pub async fn advance(
    pool: &PgPool,
    id: Uuid,
    to: EventCursor,
    delivered: bool,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update webhooks set cursor_transaction_id = $2, cursor_position = $3,
                failures = case when $4 then 0 else failures end,
                next_attempt_at = case when $4 then null else next_attempt_at end,
                last_success_at = case when $4 then now() else last_success_at end
         where id = $1 and state = 'active'
           and (cursor_transaction_id, cursor_position) < ($2, $3)",
    )
    .bind(id)
    .bind(to.transaction_id)
    .bind(to.position)
    .bind(delivered)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a failed attempt: the next one is due at `retry_at`, or the webhook is paused
/// with `pause_reason`.
pub async fn failed(
    pool: &PgPool,
    id: Uuid,
    retry_at: DateTime<Utc>,
    pause_reason: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "update webhooks set failures = failures + 1, next_attempt_at = $2,
                state = case when $3::text is null then state else 'paused' end,
                paused_at = case when $3::text is null then paused_at else now() end,
                paused_reason = coalesce($3, paused_reason)
         where id = $1",
    )
    .bind(id)
    .bind(retry_at)
    .bind(pause_reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// One attempt at delivering an event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    /// The event.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status, if it answered.
    pub status_code: Option<i32>,
    /// What went wrong.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
}

/// Logs an attempt, and prunes the log to about [`DELIVERIES_KEPT`] attempts of the
/// webhook (the newest).
pub async fn log_attempt(pool: &PgPool, webhook_id: Uuid, d: &DeliveryRow) -> StoreResult<()> {
    sqlx::query(
        "with added as (
             insert into webhook_deliveries
                 (webhook_id, event_id, event_type, attempt, attempted_at, status_code, error,
                  duration_ms)
             values ($1, $2, $3, $4, $5, $6, $7, $8) returning id
         )
         delete from webhook_deliveries
         where webhook_id = $1
           and id <= (select id from webhook_deliveries where webhook_id = $1
                      order by id desc offset $9 limit 1)",
    )
    .bind(webhook_id)
    .bind(d.event_id)
    .bind(&d.event_type)
    .bind(d.attempt)
    .bind(d.attempted_at)
    .bind(d.status_code)
    .bind(d.error.as_deref())
    .bind(d.duration_ms)
    .bind(DELIVERIES_KEPT)
    .execute(pool)
    .await?;
    Ok(())
}

/// The latest `limit` attempts of a webhook, newest first.
pub async fn deliveries(
    pool: &PgPool,
    webhook_id: Uuid,
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    let rows = sqlx::query(
        "select event_id, event_type, attempt, attempted_at, status_code, error, duration_ms
         from webhook_deliveries where webhook_id = $1 order by id desc limit $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryRow {
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                attempt: r.try_get("attempt")?,
                attempted_at: r.try_get("attempted_at")?,
                status_code: r.try_get("status_code")?,
                error: r.try_get("error")?,
                duration_ms: r.try_get("duration_ms")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
