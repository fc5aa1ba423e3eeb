//! Delivery: every matching event to every active webhook, at least once, in committed
//! order per webhook.
//!
//! Each webhook has a cursor in the database; an event is delivered, and the cursor moved
//! past it, only when the receiver answered 2xx. So a crash (even `kill -9`) between the two
//! delivers that event again after the restart, with the same `webhook-id` (the event id),
//! which is how the receiver drops the repeat. A failure holds the webhook's later events
//! back (order before throughput) and is retried after an exponential backoff with a cap;
//! after `pause_after` failures in a row the webhook is paused, logged and counted, and an
//! admin resumes it.
//!
//! One process at a time delivers to a webhook: it holds a session advisory lock on the
//! webhook on a connection of its own, which PostgreSQL releases if the process dies, so
//! several servers share the webhooks without delivering in parallel to one receiver.

use super::WebhookSettings;
use super::signing::sign;
use super::target::GuardedResolver;
use crate::store::event_store::StoredEvent;
use crate::store::feed::Feed;
use crate::store::read;
use crate::store::webhooks::{self, DeliveryRow, WebhookRow};
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Events read per statement.
const BATCH: i64 = 100;
/// The advisory lock namespace of webhooks (the first key; the second is from the id).
const LOCK_SPACE: i32 = 0x5748_4b53; // "WHKS"
/// How often due webhooks are looked for when no event arrives (retries come due).
const TICK: Duration = Duration::from_millis(250);

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Builds the client deliveries go through: HTTP/1.1 or HTTPS (Mozilla's roots), the
/// guarded resolver, a connect timeout.
pub fn client(settings: &WebhookSettings) -> HttpClient {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        allow_private: settings.allow_private,
    });
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

/// Delivers until `stop` turns true.
pub async fn run(
    pool: PgPool,
    feed: Feed,
    settings: WebhookSettings,
    mut stop: watch::Receiver<bool>,
) {
    let client = client(&settings);
    // Every event this process learns of is a reason to look; the events themselves are read
    // per webhook from its cursor.
    let mut moves = feed.moves();
    let mut locks: Option<PgConnection> = None;
    let mut running: HashSet<Uuid> = HashSet::new();
    let mut tasks: JoinSet<Uuid> = JoinSet::new();
    // Whether only new events woke the loop, and when the last look was and whether it found
    // a webhook due: with none due, an event is no reason to look again before the next tick.
    let mut only_moved = false;
    let mut last_look: Option<(Instant, bool)> = None;
    loop {
        let look = !only_moved || last_look.is_none_or(|(at, found)| found || at.elapsed() >= TICK);
        if locks.is_none() {
            // A connection of its own, outside the pool: its locks live as long as it.
            match pool.acquire().await {
                Ok(c) => locks = Some(c.detach()),
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot open the lock connection"),
            }
        }
        if let Some(conn) = locks.as_mut() {
            // Finished deliveries give their webhooks back.
            while let Some(done) = tasks.try_join_next() {
                if let Ok(id) = done {
                    running.remove(&id);
                    if unlock(conn, id).await.is_err() {
                        locks = None;
                        break;
                    }
                }
            }
        }
        if let Some(conn) = locks.as_mut()
            && look
        {
            match webhooks::due(&pool).await {
                Ok(due) => {
                    last_look = Some((Instant::now(), !due.is_empty()));
                    for w in due {
                        if running.len() >= settings.concurrency || running.contains(&w.id) {
                            continue;
                        }
                        match try_lock(conn, w.id).await {
                            Ok(true) => {
                                running.insert(w.id);
                                let (pool, client, settings) =
                                    (pool.clone(), client.clone(), settings.clone());
                                tasks.spawn(async move {
                                    let id = w.id;
                                    deliver(&pool, &client, &settings, w).await;
                                    id
                                });
                            }
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "webhooks: the lock connection failed");
                                // Its locks are gone with it: stop what runs under them.
                                tasks.abort_all();
                                running.clear();
                                locks = None;
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot read the due webhooks"),
            }
        }
        only_moved = false;
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            // One look serves a burst of events: the receiver sees only the latest head.
            Ok(()) = moves.changed() => only_moved = true,
            () = settings.changes.told() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    running.remove(&id);
                    if let Some(conn) = locks.as_mut() && unlock(conn, id).await.is_err() {
                        locks = None;
                    }
                }
            }
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if let Some(conn) = locks {
        let _ = conn.close().await;
    }
}

fn lock_key(id: Uuid) -> i32 {
    let b = id.as_bytes();
    i32::from_be_bytes([b[12], b[13], b[14], b[15]])
}

async fn try_lock(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(lock_key(id))
        .fetch_one(conn)
        .await
}

async fn unlock(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_unlock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(lock_key(id))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Delivers a webhook's events until it has none left, one fails, or it is paused or
/// deleted meanwhile.
async fn deliver(
    pool: &PgPool,
    client: &HttpClient,
    settings: &WebhookSettings,
    mut w: WebhookRow,
) {
    // The row was read before the lock was taken: read it again under the lock, so a
    // cursor moved by another process in between is seen.
    match webhooks::get(pool, w.id).await {
        Ok(Some(fresh)) if !fresh.paused => w = fresh,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(webhook = %w.id, error = %e, "webhooks: cannot read the webhook");
            return;
        }
    }
    let types = (!w.event_types.is_empty()).then_some(w.event_types.as_slice());
    loop {
        let batch =
            match read::events_after(pool, w.cursor, read::Horizon::Appends, BATCH, None, types)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(webhook = %w.id, error = %e, "webhooks: cannot read events");
                    return;
                }
            };
        if batch.is_empty() {
            return;
        }
        for event in &batch {
            match attempt(pool, client, settings, &w, event).await {
                Outcome::Delivered => {
                    match webhooks::advance(pool, w.id, event.cursor(), true).await {
                        Ok(true) => {
                            w.cursor = event.cursor();
                            w.failures = 0;
                        }
                        // Deleted or paused meanwhile.
                        Ok(false) => return,
                        Err(e) => {
                            tracing::warn!(webhook = %w.id, error = %e, "webhooks: cannot move the cursor");
                            return;
                        }
                    }
                }
                Outcome::Failed => return,
            }
        }
    }
}

enum Outcome {
    Delivered,
    Failed,
}

/// The body of a delivery: Standard Webhooks' `{type, timestamp, data}`, `data` the event
/// as GraphQL's `Event` gives it, without the actor (personal data stays where it can be
/// erased).
pub fn body(event: &StoredEvent) -> Vec<u8> {
    let meta = |key: &str| event.metadata.get(key).cloned().unwrap_or_default();
    serde_json::to_vec(&json!({
        "type": event.event_type,
        "timestamp": event.recorded_at.to_rfc3339(),
        "data": {
            "id": event.event_id,
            "cursor": event.cursor().encode(),
            "streamId": event.stream_id,
            "streamType": event.stream_type,
            "version": event.version,
            "position": event.position.to_string(),
            "type": event.event_type,
            "schemaVersion": event.schema_version,
            "occurredAt": event.occurred_at.to_rfc3339(),
            "recordedAt": event.recorded_at.to_rfc3339(),
            "role": meta("role"),
            "payload": event.opened_payload(),
            "erasedFields": event.erased_fields(),
            "hash": hex::encode(&event.hash),
        }
    }))
    .expect("JSON of JSON values")
}

async fn attempt(
    pool: &PgPool,
    client: &HttpClient,
    settings: &WebhookSettings,
    w: &WebhookRow,
    event: &StoredEvent,
) -> Outcome {
    let id = event.event_id.to_string();
    let body = body(event);
    let timestamp = Utc::now().timestamp();
    let signature = sign(&w.secret, &id, timestamp, &body);
    let started = Instant::now();
    let attempted_at = Utc::now();
    let result = send(client, settings, &w.url, &id, timestamp, &signature, body).await;
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let (status_code, error) = match &result {
        Ok(status) if (200..300).contains(status) => (Some(*status as i32), None),
        Ok(status) => (
            Some(*status as i32),
            Some(format!("the receiver answered {status}")),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    let delivered = error.is_none();
    let row = DeliveryRow {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        attempt: w.failures + 1,
        attempted_at,
        status_code,
        error: error.clone(),
        duration_ms,
    };
    if let Err(e) = webhooks::log_attempt(pool, w.id, &row).await {
        tracing::warn!(webhook = %w.id, error = %e, "webhooks: cannot log an attempt");
    }
    crate::metrics::webhook_delivery(delivered);
    if delivered {
        return Outcome::Delivered;
    }
    let failures = w.failures + 1;
    let pause = (failures as u32 >= settings.pause_after).then(|| {
        format!(
            "{failures} failed attempts in a row at event {id}; the last: {}",
            error.as_deref().unwrap_or_default()
        )
    });
    let retry_at = Utc::now()
        + chrono::Duration::from_std(settings.backoff(failures as u32)).unwrap_or_default();
    match &pause {
        Some(reason) => {
            tracing::warn!(webhook = %w.id, url = %w.url, reason = %reason, "webhook paused");
            crate::metrics::webhook_paused();
        }
        None => tracing::info!(
            webhook = %w.id, event = %id, attempt = failures,
            error = error.as_deref().unwrap_or_default(), "webhook delivery failed; retrying later"
        ),
    }
    if let Err(e) = webhooks::failed(pool, w.id, retry_at, pause.as_deref()).await {
        tracing::warn!(webhook = %w.id, error = %e, "webhooks: cannot record a failure");
    }
    Outcome::Failed
}

/// POSTs one delivery; the receiver's status, or what prevented an answer.
async fn send(
    client: &HttpClient,
    settings: &WebhookSettings,
    url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: Vec<u8>,
) -> Result<u16, String> {
    let target = super::target::parse(url).map_err(|e| e.to_string())?;
    // An address literal is not resolved, so the resolver cannot check it: check it here.
    if let Ok(ip) = super::target::host_of(&target.uri).parse() {
        super::target::permit(ip, settings.allow_private).map_err(|e| e.to_string())?;
    }
    let request = axum::http::Request::post(target.uri)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("commitment-tracker/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        // Read (and drop) the answer so the connection can be reused; at most 64 KiB.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        Ok(status)
    };
    match tokio::time::timeout(settings.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {} s",
            settings.timeout.as_secs_f64()
        )),
    }
}

/// A client error in a sentence, with its cause (the resolver's refusal, a refused
/// connection, a TLS failure).
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
