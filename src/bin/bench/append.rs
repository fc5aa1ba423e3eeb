//! `append`: `assessCommitment` over HTTP at several client counts, against the ceiling of
//! the same number of clients each inserting one equivalent event row per transaction
//! straight into Postgres with sqlx.

use crate::support::{
    Client, LoopStep, Server, admin_token, assess_body, assessed_id, closed_loop, pgbench, ratio,
    register_commitments, share_of, with_database,
};
use anyhow::Context;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub struct AppendArgs {
    pub clients: Vec<usize>,
    pub seconds: f64,
    pub commitments: usize,
}

/// A client assessing its own share of the commitments in turn.
struct Assessor {
    client: Client,
    commitments: Vec<String>,
}

impl LoopStep for Assessor {
    async fn step(&mut self, n: usize) -> anyhow::Result<()> {
        let id = &self.commitments[n % self.commitments.len()];
        let data = self.client.post(assess_body(id, n)).await?;
        assessed_id(&data)?;
        Ok(())
    }
}

/// A client inserting one event row per transaction, as an append would store it.
struct Inserter {
    pool: PgPool,
    stream: Uuid,
    payload: Value,
    metadata: Value,
}

impl LoopStep for Inserter {
    async fn step(&mut self, n: usize) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        // language=PostgreSQL
        sqlx::query(
            "insert into ceiling_events (event_id, stream_id, stream_type, version, event_type,
                 schema_version, payload, metadata, occurred_at, recorded_at, previous_hash, hash)
             values ($1, $2, 'commitment', $3, 'CommitmentAssessed', 2, $4, $5, $6, now(), $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(self.stream)
        .bind(n as i32 + 2)
        .bind(&self.payload)
        .bind(&self.metadata)
        .bind(chrono::Utc::now())
        .bind([7u8; 32].as_slice())
        .bind([9u8; 32].as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The payload and metadata of an assessment as the server stores them.
fn equivalent_event() -> (Value, Value) {
    let payload = json!({
        "assessmentId": Uuid::now_v7(), "assessor": "HSCC Expert Panel",
        "assessorKind": "INDEPENDENT", "assessedOn": "2023-02-17", "overall": "INADEQUATE",
        "aspects": { "met": "INADEQUATE", "funding": "REQUIRES_IMPROVEMENT",
                     "impact": "INADEQUATE", "appropriateness": "GOOD" },
        "deliveryStatus": "NOT_ON_TRACK",
        "rationale": "Far from on track; weak common standards hold back interoperability.",
        "evidenceIds": [], "evaluation": "HC 780",
    });
    // The actor as a commitment, as events hold it (DESIGN §11).
    let actor = commitment_tracker::tlog::leaf::commitment_json(&[5; 32]);
    let metadata = json!({ "actor": actor, "role": "admin", "requestId": Uuid::now_v7() });
    (payload, metadata)
}

/// The sqlx ceiling's transaction as a pgbench script: one equivalent event row (same
/// payload, metadata and hashes) per transaction, with a time-ordered event id as the
/// server's version 7 UUIDs are, in a fresh stream.
fn pgbench_insert() -> anyhow::Result<String> {
    let (payload, metadata) = equivalent_event();
    let quote = |v: &Value| v.to_string().replace('\'', "''");
    let hash = |b: u8| format!("'\\x{}'::bytea", hex::encode([b; 32]));
    Ok(format!(
        "BEGIN;\n\
         insert into ceiling_events (event_id, stream_id, stream_type, version, event_type, \
         schema_version, payload, metadata, occurred_at, recorded_at, previous_hash, hash) \
         values ((lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') \
         || substr(md5(random()::text), 1, 20))::uuid, gen_random_uuid(), 'commitment', 2, \
         'CommitmentAssessed', 2, '{}'::jsonb, '{}'::jsonb, now(), now(), {}, {});\n\
         END;\n",
        quote(&payload),
        quote(&metadata),
        hash(7),
        hash(9),
    ))
}

pub async fn run(server_url: &str, args: &AppendArgs) -> anyhow::Result<Value> {
    let max_clients = args.clients.iter().copied().max().unwrap_or(1) as u32;
    with_database(server_url, max_clients + 2, async |db| {
        // The ceiling's table: the events table's columns, defaults, constraints and indexes,
        // without the immutability triggers.
        sqlx::query("create table ceiling_events (like events including all)")
            .execute(&db.pool)
            .await?;
        let token = admin_token(db).await?;
        let server = Server::start(&db.url, &[]).await?;
        let mut setup = Client::connect(server.addr, Some(&token)).await?;
        let ids = register_commitments(&mut setup, "append", args.commitments).await?;
        let ids = Arc::new(ids);
        let duration = Duration::from_secs_f64(args.seconds);
        let mut levels = Vec::new();
        for &clients in &args.clients {
            let (api_rate, api_latency) = {
                let ids = ids.clone();
                let addr = server.addr;
                let token = token.clone();
                closed_loop(clients, duration, move |i| {
                    let (ids, token) = (ids.clone(), token.clone());
                    async move {
                        Ok(Assessor {
                            client: Client::connect(addr, Some(&token)).await?,
                            commitments: share_of(&ids, i, clients)?,
                        })
                    }
                })
                .await
                .context("append through the API")?
            };
            let ceiling_pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(clients as u32)
                .min_connections(clients as u32)
                .connect(&db.url)
                .await?;
            let (ceiling_rate, ceiling_latency) = {
                let pool = ceiling_pool.clone();
                closed_loop(clients, duration, move |_| {
                    let pool = pool.clone();
                    async move {
                        let (payload, metadata) = equivalent_event();
                        Ok(Inserter {
                            pool,
                            stream: Uuid::now_v7(),
                            payload,
                            metadata,
                        })
                    }
                })
                .await
                .context("the ceiling")?
            };
            ceiling_pool.close().await;
            let script = pgbench_insert()?;
            let url = db.url.clone();
            let seconds = args.seconds;
            let pg = tokio::task::spawn_blocking(move || pgbench(&url, &script, clients, seconds))
                .await??;
            let pg_rate = pg["tps"].as_f64().unwrap_or(0.0);
            levels.push(json!({
                "clients": clients,
                "api": { "appends": api_latency.len(), "appends_per_sec": api_rate.round(), "latency": api_latency.summary() },
                "ceiling": { "inserts": ceiling_latency.len(), "inserts_per_sec": ceiling_rate.round(), "latency": ceiling_latency.summary() },
                "ratio": ratio(api_rate, ceiling_rate),
                "pgbench": pg,
                "ratio_to_pgbench": ratio(api_rate, pg_rate),
            }));
        }
        server.stop().await?;
        Ok(json!({
            "scenario": "append",
            "commitments": args.commitments,
            "seconds_per_run": args.seconds,
            "ceiling": "the same clients, each inserting one equivalent event row per transaction with sqlx",
            "pgbench": "the same transaction from pgbench -M prepared, same client count, on the same table",
            "levels": levels,
        }))
    })
    .await
}
