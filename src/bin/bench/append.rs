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

/// The server's own append transaction as a pgbench script, for the ceiling of what
/// PostgreSQL itself does with it: `open_append` (the gate, the stream's lock, its head, the
/// token) and the server's append statement (`event_store::append_statement` with the
/// verdicts' expressions: the event, its personal field, the stream's head, the assessment row
/// and the commitment row), then `COMMIT`, on commitments of the client's own (`per` each, in
/// `ceiling_streams`). The version and the hashes are read from the stream's head inside the
/// statement, where the server computes them between its round trips, so `pipelined` can
/// send all four statements in one message as a client with pipelining could.
fn pgbench_own_transaction(per: usize, token: Uuid, pipelined: bool) -> anyhow::Result<String> {
    use commitment_tracker::store::{event_store, projections};
    anyhow::ensure!(
        per > 0,
        "fewer commitments than clients: each needs one of its own"
    );
    let (payload, metadata) = equivalent_event();
    let text = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let json = |v: &Value| format!("{}::jsonb", text(&v.to_string()));
    let uuid = |var: &str| {
        format!(
            "(lpad(to_hex(:{var}::int), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(:b::int), 12, '0'))::uuid"
        )
    };
    let stream = "(select id from ceiling_streams where n = :n)".to_owned();
    let head = |column: &str| format!("(select {column} from streams where stream_id = {stream})");
    let (event, assessment) = (uuid("a"), uuid("c"));
    let version = head("version + 1");
    let hash = format!("sha256({} || {event}::text::bytea)", head("last_hash"));
    // Each parameter of the statement, in the order `write_sealed` and `Verdicts` bind them.
    let values: Vec<String> = vec![
        event.clone(),                                           // $1 event ids
        stream.clone(),                                          // $2 streams
        text("commitment"),                                      // $3 stream types
        version.clone(),                                         // $4 versions
        text("CommitmentAssessed"),                              // $5 event types
        "2".into(),                                              // $6 schema versions
        json(&payload),                                          // $7 payloads
        json(&metadata),                                         // $8 metadata
        "'2023-02-17'::timestamptz".into(),                      // $9 occurred at
        "clock_timestamp()".into(),                              // $10 recorded at
        head("last_hash"),                                       // $11 previous hashes
        hash.clone(),                                            // $12 hashes
        stream.clone(),                                          // $13 heads: streams
        text("commitment"),                                      // $14 heads: types
        version.clone(),                                         // $15 heads: versions
        hash,                                                    // $16 heads: hashes
        event.clone(),                                           // $17 personal fields: events
        text("actor"),                                           // $18 fields
        "sha256(:a::text::bytea)".into(),                        // $19 openings
        text("bench"),                                           // $20 values
        event,                                                   // $21 verdicts: events
        assessment,                                              // $22 assessment ids
        stream.clone(),                                          // $23 commitments
        text("HSCC Expert Panel"),                               // $24 assessors
        text("INDEPENDENT"),                                     // $25 assessor kinds
        "'2023-02-17'::date".into(),                             // $26 assessed on
        text("INADEQUATE"),                                      // $27 overall
        text("INADEQUATE"),                                      // $28 met
        text("REQUIRES_IMPROVEMENT"),                            // $29 funding
        text("INADEQUATE"),                                      // $30 impact
        text("GOOD"),                                            // $31 appropriateness
        text("NOT_ON_TRACK"),                                    // $32 delivery status
        text(payload["rationale"].as_str().unwrap_or_default()), // $33 rationale
        text("{}"),                                              // $34 evidence ids
        text("HC 780"),                                          // $35 evaluation
        "clock_timestamp()".into(),                              // $36 recorded at
        text("bench"),                                           // $37 actors
        version,                                                 // $38 versions
    ];
    let mut append = event_store::append_statement(Some(&projections::verdict_ctes(21)));
    for (i, value) in values.iter().enumerate().rev() {
        append = append.replace(&format!("${}::", i + 1), &format!("array[{value}]::"));
    }
    anyhow::ensure!(
        !append.contains('$'),
        "a parameter of the append statement has no value: {append}"
    );
    let append = append.split_whitespace().collect::<Vec<_>>().join(" ");
    let gate = event_store::APPEND_GATE;
    let open = format!(
        "select count(*) from open_append({gate}, array[hashtextextended({stream}::text, 0)], \
         array[{stream}], array['{token}'::uuid], '{{}}'::uuid[], '{{}}'::uuid[])"
    );
    let (start, end) = if pipelined {
        ("\\startpipeline\n", "\\endpipeline\n")
    } else {
        ("", "")
    };
    Ok(format!(
        "\\set n {per} * :client_id + random(0, {last})\n\
         \\set a random(1, 2000000000)\n\\set b random(1, 2000000000)\n\\set c random(1, 2000000000)\n\
         {start}BEGIN;\n{open};\n{append};\nCOMMIT;\n{end}",
        last = per - 1,
    ))
}

/// The events and assessments on the commitments of pgbench's runs of the server's
/// transaction, to check that each transaction it counts wrote one of each.
async fn own_rows(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    // language=PostgreSQL
    Ok(sqlx::query_as(
        "select (select count(*) from events e join ceiling_streams c on e.stream_id = c.id),
                (select count(*) from assessments a join ceiling_streams c on a.commitment_id = c.id)",
    )
    .fetch_one(pool)
    .await?)
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
        // Commitments of their own for pgbench's runs of the server's transaction, which
        // append to their streams.
        let own = register_commitments(&mut setup, "ceiling", args.commitments).await?;
        // language=PostgreSQL
        sqlx::query("create table ceiling_streams (n int primary key, id uuid not null)")
            .execute(&db.pool)
            .await?;
        // language=PostgreSQL
        sqlx::query(
            "insert into ceiling_streams select n - 1, id::uuid
             from unnest($1::text[]) with ordinality as s(id, n)",
        )
        .bind(&own)
        .execute(&db.pool)
        .await?;
        // language=PostgreSQL
        let token_id: Uuid = sqlx::query_scalar("select id from api_tokens limit 1")
            .fetch_one(&db.pool)
            .await?;
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
            let mut own_runs = Vec::new();
            for pipelined in [false, true] {
                let script =
                    pgbench_own_transaction(args.commitments / clients, token_id, pipelined)?;
                let url = db.url.clone();
                let seconds = args.seconds;
                let before = own_rows(&db.pool).await?;
                let run =
                    tokio::task::spawn_blocking(move || pgbench(&url, &script, clients, seconds))
                        .await??;
                let after = own_rows(&db.pool).await?;
                let transactions = run["transactions"].as_f64().unwrap_or(0.0) as i64;
                anyhow::ensure!(
                    after.0 - before.0 == transactions && after.1 - before.1 == transactions,
                    "pgbench's {transactions} runs of the server's transaction wrote {} events \
                     and {} assessments",
                    after.0 - before.0,
                    after.1 - before.1
                );
                own_runs.push(run);
            }
            let own_pipelined = own_runs.pop().context("a pipelined run")?;
            let own = own_runs.pop().context("a run")?;
            let own_rate = own["tps"].as_f64().unwrap_or(0.0);
            let own_pipelined_rate = own_pipelined["tps"].as_f64().unwrap_or(0.0);
            levels.push(json!({
                "clients": clients,
                "api": { "appends": api_latency.len(), "appends_per_sec": api_rate.round(), "latency": api_latency.summary() },
                "ceiling": { "inserts": ceiling_latency.len(), "inserts_per_sec": ceiling_rate.round(), "latency": ceiling_latency.summary() },
                "ratio": ratio(api_rate, ceiling_rate),
                "pgbench": pg,
                "ratio_to_pgbench": ratio(api_rate, pg_rate),
                "pgbench_own_transaction": {
                    "one_statement_at_a_time": own,
                    "pipelined": own_pipelined,
                    "to_pgbench": ratio(own_rate, pg_rate),
                    "pipelined_to_pgbench": ratio(own_pipelined_rate, pg_rate),
                },
                "ratio_to_own_transaction": ratio(api_rate, own_rate),
            }));
        }
        server.stop().await?;
        Ok(json!({
            "scenario": "append",
            "commitments": args.commitments,
            "seconds_per_run": args.seconds,
            "ceiling": "the same clients, each inserting one equivalent event row per transaction with sqlx",
            "pgbench": "the same transaction from pgbench -M prepared, same client count, on the same table",
            "pgbench_own_transaction": "the server's own append transaction (open_append, its append statement, COMMIT) from pgbench -M prepared on commitments of each client's own: one statement at a time, and all four in one pipeline",
            "levels": levels,
        }))
    })
    .await
}
