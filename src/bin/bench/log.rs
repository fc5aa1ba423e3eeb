//! `log`: what the transparency log costs and how fast it answers.
//!
//! 1. **Appends with the log running.** `assessCommitment` at `--clients` for `--seconds`,
//!    after one unmeasured run, `--rounds` times each: a server whose sequencer sleeps for an
//!    hour after its first pass (the log idle: the append path without the log's work) and
//!    one that sequences every 100 ms, on the same database, in turn first. While the log runs, a watcher reads new
//!    leaves every few milliseconds and times each assessment from its mutation's answer
//!    (the commit) to its leaf: commit-to-leaf latency.
//! 2. **A large tree.** `--leaves` events written straight through the event store, then a
//!    server started on them: the sequencer's catch-up rate; inclusion and consistency proofs
//!    (`--proofs` of each, at random, each checked) against a primary-key lookup of one
//!    stored hash; `consistencyProof` over GraphQL against `{ __typename }`; `log audit` from
//!    nothing against fetching the same tiles without checking them; and `log audit` again
//!    after `--new-events` more. `--leaves 0` skips this part.

use crate::rebuild::write_commitment;
use crate::support::{
    BenchDatabase, Client, Latencies, LoopStep, Server, admin_token, assess_body, assessed_id,
    closed_loop, ratio, register_commitments, round2, share_of, with_database,
};
use anyhow::Context;
use commitment_tracker::store::tree;
use commitment_tracker::tlog::tiles::{TilePath, WIDTH, parse_entry_bundle};
use commitment_tracker::tlog::{audit, client, tree as merkle};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct LogArgs {
    pub clients: usize,
    pub seconds: f64,
    pub rounds: usize,
    pub leaves: usize,
    pub proofs: usize,
    pub new_events: usize,
}

/// The sequencer interval of the idle log: longer than any run.
const IDLE_MS: &str = "3600000";

pub async fn run(server_url: &str, args: &LogArgs) -> anyhow::Result<Value> {
    let appends = appends(server_url, args).await.context("appends")?;
    let large = if args.leaves == 0 {
        Value::Null
    } else {
        large_tree(server_url, args)
            .await
            .context("the large tree")?
    };
    Ok(json!({
        "scenario": "log",
        "appends": appends,
        "large_tree": large,
    }))
}

/// Answers of `assessCommitment`, each with the instant its answer arrived.
type Answered = Arc<Mutex<Vec<(String, Instant)>>>;

/// A client assessing its own share of the commitments, noting when each answer came.
struct Assessor {
    client: Client,
    commitments: Vec<String>,
    answered: Answered,
}

impl LoopStep for Assessor {
    async fn step(&mut self, n: usize) -> anyhow::Result<()> {
        let id = &self.commitments[n % self.commitments.len()];
        let data = self.client.post(assess_body(id, n)).await?;
        let assessment = assessed_id(&data)?.to_owned();
        let at = Instant::now();
        self.answered
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push((assessment, at));
        Ok(())
    }
}

async fn log_size(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("select size from log_state")
        .fetch_one(pool)
        .await?)
}

async fn event_count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?)
}

/// Waits until the log holds every event and a checkpoint of them is signed.
async fn until_checkpointed(pool: &PgPool, limit: Duration) -> anyhow::Result<i64> {
    let deadline = Instant::now() + limit;
    loop {
        let events = event_count(pool).await?;
        let signed: Option<i64> = sqlx::query_scalar("select max(size) from log_checkpoints")
            .fetch_one(pool)
            .await?;
        if log_size(pool).await? == events && signed == Some(events) {
            return Ok(events);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the log did not reach {events} leaves"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Notes when each new leaf appears, by its event, until `stop` says how many leaves to
/// wait for. One light query every few milliseconds (an index range of `log_leaves`), run
/// alike whether the log runs or idles, so that watching costs both sides the same.
async fn watch_leaves(
    pool: PgPool,
    from: i64,
    mut stop: tokio::sync::watch::Receiver<Option<i64>>,
) -> anyhow::Result<HashMap<Uuid, Instant>> {
    let mut seen = HashMap::new();
    let mut next = from;
    let mut give_up = None;
    loop {
        // language=PostgreSQL
        let rows: Vec<(i64, Uuid)> = sqlx::query_as(
            "select leaf_index, event_id from log_leaves where leaf_index >= $1
              order by leaf_index",
        )
        .bind(next)
        .fetch_all(&pool)
        .await?;
        let now = Instant::now();
        for (index, event) in rows {
            next = index + 1;
            seen.insert(event, now);
        }
        if let Some(target) = *stop.borrow_and_update() {
            if next >= target {
                return Ok(seen);
            }
            let limit = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
            anyhow::ensure!(
                Instant::now() < limit,
                "leaves stopped at {next} of {target}"
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One measured run: appends per second and, when the log runs, commit-to-leaf latencies.
async fn append_run(
    db: &BenchDatabase,
    token: &str,
    ids: &Arc<Vec<String>>,
    args: &LogArgs,
    running: bool,
) -> anyhow::Result<(f64, Option<Latencies>)> {
    let env: Vec<(&str, String)> = if running {
        vec![]
    } else {
        vec![("LOG_SEQUENCE_INTERVAL_MS", IDLE_MS.into())]
    };
    let server = Server::start(&db.url, &env).await?;
    // The backlog left by an idle run is sequenced before anything is measured.
    until_checkpointed(&db.pool, Duration::from_secs(300)).await?;
    let (stop, stop_rx) = tokio::sync::watch::channel(None);
    let watcher = {
        let pool = db.pool.clone();
        let from = log_size(&pool).await?;
        tokio::spawn(watch_leaves(pool, from, stop_rx))
    };
    let answered: Answered = Arc::default();
    let (rate, _) = {
        let (ids, token, answered) = (ids.clone(), token.to_owned(), answered.clone());
        let clients = args.clients;
        closed_loop(clients, Duration::from_secs_f64(args.seconds), move |i| {
            let (ids, token, answered) = (ids.clone(), token.clone(), answered.clone());
            let addr = server.addr;
            async move {
                Ok(Assessor {
                    client: Client::connect(addr, Some(&token)).await?,
                    commitments: share_of(&ids, i, clients)?,
                    answered,
                })
            }
        })
        .await?
    };
    let latencies = if running {
        stop.send_replace(Some(event_count(&db.pool).await?));
        let seen = watcher.await??;
        // Which event recorded which assessment, read once the run is over.
        let events: Vec<Uuid> = seen.keys().copied().collect();
        // language=PostgreSQL
        let recorded: Vec<(Uuid, Option<String>)> = sqlx::query_as(
            "select event_id, payload ->> 'assessmentId' from events where event_id = any($1)",
        )
        .bind(&events)
        .fetch_all(&db.pool)
        .await?;
        let leaf_of: HashMap<String, Instant> = recorded
            .into_iter()
            .filter_map(|(event, assessment)| Some((assessment?, seen[&event])))
            .collect();
        let answered = answered.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut latencies = Latencies::with_capacity(answered.len());
        for (assessment, at) in answered.iter() {
            let leaf = leaf_of
                .get(assessment)
                .with_context(|| format!("assessment {assessment} got no leaf"))?;
            latencies.push(leaf.saturating_duration_since(*at));
        }
        Some(latencies)
    } else {
        watcher.abort();
        None
    };
    server.stop().await?;
    Ok((rate, latencies))
}

async fn appends(server_url: &str, args: &LogArgs) -> anyhow::Result<Value> {
    with_database(server_url, args.clients as u32 + 4, async |db| {
        let token = admin_token(db).await?;
        let ids = {
            let server = Server::start(&db.url, &[]).await?;
            let mut setup = Client::connect(server.addr, Some(&token)).await?;
            let ids = register_commitments(&mut setup, "log", 256).await?;
            server.stop().await?;
            Arc::new(ids)
        };
        // One unmeasured run first: the first run on a new database is faster than any
        // later one, whichever side it falls on. Then each round runs both, in turn first
        // (idle, running; running, idle; …) so that the database's growth favours neither.
        append_run(db, &token, &ids, args, true).await?;
        let (mut idle, mut running) = (Vec::new(), Vec::new());
        let mut to_leaf = Latencies::default();
        for round in 0..args.rounds.max(1) {
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for log_runs in order {
                let (rate, latencies) = append_run(db, &token, &ids, args, log_runs).await?;
                if log_runs {
                    running.push(rate);
                    to_leaf.extend(latencies.context("latencies of the running log")?);
                } else {
                    idle.push(rate);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        Ok(json!({
            "clients": args.clients,
            "seconds_per_run": args.seconds,
            "rounds": args.rounds.max(1),
            "log_idle_appends_per_sec": idle.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "log_running_appends_per_sec": running.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "ratio_running_to_idle": ratio(mean(&running), mean(&idle)),
            "commit_to_leaf": { "events": to_leaf.len(), "latency": to_leaf.summary() },
        }))
    })
    .await
}

fn p99(latencies: &Value) -> f64 {
    latencies["p99_ms"].as_f64().unwrap_or(f64::NAN)
}

async fn large_tree(server_url: &str, args: &LogArgs) -> anyhow::Result<Value> {
    with_database(server_url, 4, async |db| {
        // The log, written as the rebuild scenario writes it.
        let t = Instant::now();
        let per = 200usize;
        let commitments = args.leaves.div_ceil(per).max(1);
        let mut written = 0;
        for i in 0..commitments {
            written += write_commitment(db, i, per.min(args.leaves - written).max(3)).await?;
        }
        let written_secs = t.elapsed().as_secs_f64();

        // The sequencer catches up with all of it.
        let t = Instant::now();
        let server = Server::start(&db.url, &[]).await?;
        let size = until_checkpointed(&db.pool, Duration::from_secs(3600)).await? as u64;
        let catch_up_secs = t.elapsed().as_secs_f64();

        // Proofs, through the store functions the GraphQL fields call, each checked.
        let mut conn = db.pool.acquire().await?;
        let root = tree::root(&mut conn, size).await?;
        let mut inclusion = Latencies::with_capacity(args.proofs);
        let mut consistency = Latencies::with_capacity(args.proofs);
        let mut lookup = Latencies::with_capacity(args.proofs);
        for n in 0..args.proofs {
            let index = rand::random_range(0..size);
            let t = Instant::now();
            let proof = tree::inclusion_proof(&mut conn, index, size).await?;
            inclusion.push(t.elapsed());
            let leaf: Vec<u8> =
                sqlx::query_scalar("select leaf from log_leaves where leaf_index = $1")
                    .bind(index as i64)
                    .fetch_one(&mut *conn)
                    .await?;
            merkle::check_inclusion(&proof, size, root, index, merkle::leaf_hash(&leaf))
                .map_err(|e| anyhow::anyhow!("inclusion proof of {index}: {e:?}"))?;

            let old = rand::random_range(1..size.max(2));
            let t = Instant::now();
            let proof = tree::consistency_proof(&mut conn, old, size).await?;
            consistency.push(t.elapsed());
            // Checking needs the old root, a proof's worth of work again: a sample suffices.
            if n % 10 == 0 {
                let old_root = tree::root(&mut conn, old).await?;
                merkle::check_consistency(&proof, size, root, old, old_root)
                    .map_err(|e| anyhow::anyhow!("consistency proof from {old}: {e:?}"))?;
            }

            let leaf_hash = merkle::stored_hash_index(0, rand::random_range(0..size));
            let t = Instant::now();
            let hash: Vec<u8> =
                sqlx::query_scalar("select hash from log_hashes where hash_index = $1")
                    .bind(leaf_hash as i64)
                    .fetch_one(&mut *conn)
                    .await?;
            lookup.push(t.elapsed());
            anyhow::ensure!(hash.len() == 32, "a stored hash");
        }
        drop(conn);

        // consistencyProof over GraphQL, against the least GraphQL request.
        let mut http = Client::connect(server.addr, None).await?;
        let mut graphql_consistency = Latencies::with_capacity(args.proofs);
        let mut graphql_least = Latencies::with_capacity(args.proofs);
        for _ in 0..args.proofs {
            let body = json!({
                "query": "query($from: Int!, $to: Int!) { consistencyProof(fromSize: $from, toSize: $to) }",
                "variables": { "from": rand::random_range(1..size.max(2)), "to": size },
            });
            let body = serde_json::to_vec(&body)?.into();
            let t = Instant::now();
            let data = http.post(body).await?;
            graphql_consistency.push(t.elapsed());
            anyhow::ensure!(data["consistencyProof"].is_array(), "a proof");
            let t = Instant::now();
            http.post(r#"{"query":"{ __typename }"}"#.into()).await?;
            graphql_least.push(t.elapsed());
        }

        // log audit from nothing, against fetching the same tiles unchecked.
        let base = format!("http://{}", server.addr);
        let vkey_bytes = client::get_ok(&format!("{base}/log/key"), Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let vkey = String::from_utf8(vkey_bytes.to_vec())?;
        let state = std::env::temp_dir().join(format!("bench-audit-{}.json", uuid::Uuid::now_v7()));
        let t = Instant::now();
        let first = audit::audit(&base, &vkey, Some(&state)).await?;
        let audit_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(first.checkpoint.size == size, "the audit saw {}", first.checkpoint.size);
        let t = Instant::now();
        let mut fetched = 0usize;
        for index in 0..size.div_ceil(WIDTH) {
            let width = (size - index * WIDTH).min(WIDTH) as u16;
            let path = TilePath::Entries { index, width }.to_path();
            let bundle = client::get_ok(&format!("{base}/log/tile/{path}"), Duration::from_secs(60))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            fetched += parse_entry_bundle(&bundle)
                .map_err(|e| anyhow::anyhow!("tile {path}: {e:?}"))?
                .len();
        }
        let fetch_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(fetched as u64 == size, "fetched {fetched} leaves");

        // More events, then the incremental audit.
        write_commitment(db, commitments, args.new_events.max(3)).await?;
        let grown = until_checkpointed(&db.pool, Duration::from_secs(300)).await? as u64;
        let t = Instant::now();
        let second = audit::audit(&base, &vkey, Some(&state)).await?;
        let incremental_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(second.checkpoint.size == grown, "the second audit saw {}", second.checkpoint.size);
        let _ = std::fs::remove_file(&state);
        server.stop().await?;

        let inclusion = inclusion.summary();
        let consistency = consistency.summary();
        let lookup = lookup.summary();
        let graphql_consistency = graphql_consistency.summary();
        let graphql_least = graphql_least.summary();
        Ok(json!({
            "leaves": size,
            "log_written_in_secs": round2(written_secs),
            "sequencer_catch_up": { "secs": round2(catch_up_secs), "leaves_per_sec": (size as f64 / catch_up_secs).round() },
            "proofs": {
                "count_each": args.proofs,
                "inclusion": inclusion,
                "consistency": consistency,
                "baseline": { "what": "one stored hash by primary key", "latency": lookup },
                "inclusion_p99_over_baseline": ratio(p99(&inclusion), p99(&lookup)),
                "consistency_p99_over_baseline": ratio(p99(&consistency), p99(&lookup)),
            },
            "graphql_consistency_proof": {
                "latency": graphql_consistency,
                "baseline": { "what": "{ __typename } over the same connection", "latency": graphql_least },
                "p99_over_baseline": ratio(p99(&graphql_consistency), p99(&graphql_least)),
            },
            "audit_from_nothing": {
                "secs": round2(audit_secs),
                "tiles": first.tiles_fetched,
                "leaves_per_sec": (size as f64 / audit_secs).round(),
                "baseline": { "what": "fetching the same entry tiles without checking them", "secs": round2(fetch_secs) },
                "ratio": ratio(audit_secs, fetch_secs),
            },
            "audit_incremental": {
                "new_leaves": second.leaves_fetched,
                "tiles": second.tiles_fetched,
                "secs": round2(incremental_secs),
            },
        }))
    })
    .await
}
