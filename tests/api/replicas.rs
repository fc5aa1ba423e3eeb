//! Read replicas (DESIGN §12): a private primary and a streaming replica of it
//! (`pg_basebackup -R`) on this machine, with the server reading from the replica.
//!
//! Where a statement ran is counted by `pg_stat_statements` on each cluster, never inferred
//! from the server's own account.

use crate::helpers::{ASSESS, REGISTER, eventually};
use crate::processes::{PrivateCluster, ServerProcess};
use crate::subscriptions::{Client, RATING_CHANGED};
use commitment_tracker::auth::Role;
use commitment_tracker::store::tokens;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Both clusters count statements; the replica keeps the primary from removing rows its
/// queries still read.
const SETTINGS: &str = "-c shared_preload_libraries=pg_stat_statements -c hot_standby_feedback=on";

const DATABASE: &str = "tracker";

const LIST: &str = "{ commitments(first: 10) { nodes { slug currentAssessment { overall } } } }";

struct Pair {
    primary: PrivateCluster,
    replica: PrivateCluster,
    primary_pool: PgPool,
    replica_pool: PgPool,
}

/// A primary with the server's database (and the statistics extension, which the replica
/// copies), and a streaming replica of it.
async fn pair() -> Pair {
    let primary = PrivateCluster::start_with(SETTINGS);
    let admin = commitment_tracker::store::connect(&primary.url("postgres"), 1)
        .await
        .unwrap();
    sqlx::query("create database tracker")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let primary_pool = commitment_tracker::store::connect(&primary.url(DATABASE), 4)
        .await
        .unwrap();
    sqlx::query("create extension pg_stat_statements")
        .execute(&primary_pool)
        .await
        .unwrap();
    commitment_tracker::store::migrate(&primary_pool)
        .await
        .unwrap();
    let replica = PrivateCluster::replica_of(&primary, SETTINGS);
    let replica_pool = commitment_tracker::store::connect(&replica.url(DATABASE), 2)
        .await
        .unwrap();
    let recovering: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&replica_pool)
        .await
        .unwrap();
    assert!(recovering, "the copy is a replica");
    Pair {
        primary,
        replica,
        primary_pool,
        replica_pool,
    }
}

impl Pair {
    /// A server reading from the replica, once it serves reads, and an admin token.
    async fn server(&self, max_lag_ms: &str, wait_ms: &str) -> (ServerProcess, String) {
        let read_url = self.replica.url(DATABASE);
        let server = ServerProcess::start_with(
            &self.primary.url(DATABASE),
            "info,sqlx=warn,tower_http=warn",
            &[
                ("DATABASE_READ_URL", read_url.as_str()),
                ("REPLICA_MAX_LAG_MS", max_lag_ms),
                ("REPLICA_WAIT_MS", wait_ms),
            ],
        )
        .await;
        let (_, token) = tokens::create(&self.primary_pool, "admin", Role::Admin, None)
            .await
            .unwrap();
        self.until_usable(&server, true).await;
        (server, token)
    }

    /// Waits until the server uses the replica (or skips it).
    async fn until_usable(&self, server: &ServerProcess, usable: bool) {
        let what = if usable {
            "the replica serves reads"
        } else {
            "the replica is skipped"
        };
        let want = if usable { 1.0 } else { 0.0 };
        let label = self.label();
        eventually(what, || async {
            metric(server, "db_replica_usable", &label).await == want
        })
        .await;
    }

    /// The `db_replica_usable` gauge's label for the replica.
    fn label(&self) -> String {
        format!("replica=\"127.0.0.1:{}/{DATABASE}\"", self.replica.port)
    }

    async fn pause_replay(&self) {
        sqlx::query("select pg_wal_replay_pause()")
            .execute(&self.replica_pool)
            .await
            .unwrap();
        eventually("the replica's replay pauses", || async {
            let state: String = sqlx::query_scalar("select pg_get_wal_replay_pause_state()")
                .fetch_one(&self.replica_pool)
                .await
                .unwrap();
            state == "paused"
        })
        .await;
    }

    async fn still_paused(&self) -> bool {
        let state: String = sqlx::query_scalar("select pg_get_wal_replay_pause_state()")
            .fetch_one(&self.replica_pool)
            .await
            .unwrap();
        state == "paused"
    }

    async fn resume_replay(&self) {
        sqlx::query("select pg_wal_replay_resume()")
            .execute(&self.replica_pool)
            .await
            .unwrap();
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    async fn replica_caught_up(&self) {
        // Where the primary has inserted WAL, not where it has written it: a transaction that
        // wrote nothing but its commit record does not wait for that record to be written.
        let target: String = sqlx::query_scalar("select pg_current_wal_insert_lsn()::text")
            .fetch_one(&self.primary_pool)
            .await
            .unwrap();
        eventually("the replica replays the primary's log", || async {
            sqlx::query_scalar::<_, bool>("select pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(&target)
                .fetch_one(&self.replica_pool)
                .await
                .unwrap()
        })
        .await;
    }
}

/// Calls of the server's statements that read commitments on one cluster (the projection
/// every list query reads first).
async fn commitment_reads(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(calls), 0)::bigint from pg_stat_statements s
         join pg_database d on d.oid = s.dbid
         where d.datname = current_database()
           and s.query ilike '%from commitments%'
           and s.query not ilike '%pg_stat_statements%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A figure of the server's `/metrics`: the sum of the samples whose line starts with
/// `series` (a name with some of its labels).
async fn metric(server: &ServerProcess, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && (labels.is_empty() || l.contains(labels)))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A POST with a token and optional `X-Min-Log-Position`.
async fn post(
    server: &ServerProcess,
    token: &str,
    query: &str,
    variables: Value,
    min: Option<&str>,
) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(min) = min {
        request = request.header("x-min-log-position", min);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    answer
}

/// An anonymous GET of `query`: (status, ETag, body).
async fn get(
    server: &ServerProcess,
    query: &str,
    if_none_match: Option<&str>,
    min: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut url = reqwest::Url::parse(&format!("{}/graphql", server.address)).unwrap();
    url.query_pairs_mut().append_pair("query", query);
    let mut request = reqwest::Client::new()
        .get(url)
        .header("accept", "application/json");
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    if let Some(min) = min {
        request = request.header("x-min-log-position", min);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, etag, body)
}

/// The overall rating the list gives the commitment `slug`.
fn rating_of(answer: &Value, slug: &str) -> Value {
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"]["commitments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["slug"] == slug)
        .map(|n| n["currentAssessment"]["overall"].clone())
        .unwrap_or(Value::Null)
}

async fn register(server: &ServerProcess, token: &str, slug: &str) -> (String, Value) {
    let answer = post(
        server,
        token,
        REGISTER,
        json!({ "input": {
            "slug": slug, "title": "Replicated", "description": "A promise.",
            "area": "Records", "policySource": "A plan (2022)", "target": "All trusts",
            "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
        }}),
        None,
    )
    .await;
    let id = answer["data"]["registerCommitment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, answer)
}

/// Assesses; answers the mutation's `extensions.logPosition`.
async fn assess(server: &ServerProcess, token: &str, id: &str, overall: &str, on: &str) -> String {
    let answer = post(
        server,
        token,
        ASSESS,
        json!({ "input": {
            "commitmentId": id, "assessor": "Panel", "assessorKind": "INDEPENDENT",
            "assessedOn": on, "overall": overall,
            "deliveryStatus": "NOT_ON_TRACK", "rationale": "Because."
        }}),
        None,
    )
    .await;
    answer["extensions"]["logPosition"]
        .as_str()
        .expect("a mutation answers its logPosition")
        .to_owned()
}

#[tokio::test]
async fn queries_read_the_replica_and_read_your_writes_hold_while_its_replay_is_paused() {
    let pair = pair().await;
    // A replica behind by a minute is still used: the test shows which database answered.
    let (server, token) = pair.server("60000", "300").await;

    let (id, _) = register(&server, &token, "replicated").await;
    let first = assess(&server, &token, &id, "INADEQUATE", "2024-01-01").await;
    // The write is read back at once through the replica, after waiting for it if need be.
    let (status, _, answer) = get(&server, LIST, None, Some(&first)).await;
    assert_eq!(status, 200);
    assert_eq!(rating_of(&answer, "replicated"), "INADEQUATE");
    pair.replica_caught_up().await;

    // Reads run on the replica: counted there, and not on the primary.
    let on_replica = commitment_reads(&pair.replica_pool).await;
    let on_primary = commitment_reads(&pair.primary_pool).await;
    for _ in 0..10 {
        let (status, _, answer) = get(&server, LIST, None, None).await;
        assert_eq!(status, 200);
        assert_eq!(rating_of(&answer, "replicated"), "INADEQUATE");
        let answer = post(&server, &token, LIST, json!({}), None).await;
        assert_eq!(rating_of(&answer, "replicated"), "INADEQUATE");
    }
    let replica_reads = commitment_reads(&pair.replica_pool).await - on_replica;
    assert!(
        replica_reads >= 20,
        "{replica_reads} list statements on the replica"
    );
    assert_eq!(commitment_reads(&pair.primary_pool).await, on_primary);
    // The replica's answers are tagged and revalidated like the primary's. A tag names the
    // log position the replica has replayed, so any write the primary still makes (the
    // transparency log integrating the last events, maintenance) replaced by a new tag is a
    // 200 with that new tag; once writes stop, the tag gets a 304.
    let (_, tag, _) = get(&server, LIST, None, None).await;
    let tag = std::sync::Mutex::new(tag.expect("an ETag from the replica"));
    eventually("the replica's tag answers 304", || async {
        let sent = tag.lock().unwrap().clone();
        let (status, new_tag, _) = get(&server, LIST, Some(&sent), None).await;
        if status == 304 {
            return true;
        }
        assert_eq!(status, 200);
        let new_tag = new_tag.expect("an ETag from the replica");
        assert_ne!(new_tag, sent, "a 200 for a tag that still matches");
        *tag.lock().unwrap() = new_tag;
        false
    })
    .await;

    // Two subscribers: one after the latest event, one catching up from the registration.
    let history = post(
        &server,
        &token,
        "query($id: ID!) { commitment(id: $id) { history { nodes { cursor } } } }",
        json!({ "id": id }),
        None,
    )
    .await;
    let cursors: Vec<String> = history["data"]["commitment"]["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["cursor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cursors.len(), 2, "{history}");
    let mut live = Client::open_url(&server.ws_url(), "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    live.subscribe(
        "live",
        RATING_CHANGED,
        json!({ "c": id, "after": cursors[1] }),
    )
    .await;
    let mut catching_up = Client::open_url(&server.ws_url(), "graphql-transport-ws", json!({}))
        .await
        .unwrap();
    catching_up
        .subscribe(
            "old",
            RATING_CHANGED,
            json!({ "c": id, "after": cursors[0] }),
        )
        .await;
    let delivered = catching_up.next_data("old").await;
    assert_eq!(
        delivered["ratingChanged"]["overall"], "INADEQUATE",
        "{delivered}"
    );

    // The replica stops replaying; a write goes to the primary.
    pair.pause_replay().await;
    let second = assess(&server, &token, &id, "GOOD", "2024-02-01").await;
    assert!(second > first, "positions grow: {first} then {second}");

    // Subscribers get it from the primary's log while the replica is still paused.
    let delivered = live.next_data("live").await;
    assert_eq!(delivered["ratingChanged"]["overall"], "GOOD", "{delivered}");
    let delivered = catching_up.next_data("old").await;
    assert_eq!(delivered["ratingChanged"]["overall"], "GOOD", "{delivered}");
    assert!(pair.still_paused().await);

    // A plain read is the replica's (still the old rating); one that names the write's
    // position gets it, from the primary once the replica has not reached it in time.
    let fell_back = metric(
        &server,
        "db_read_position_waits_total",
        "outcome=\"primary\"",
    )
    .await;
    let (_, stale_tag, stale) = get(&server, LIST, None, None).await;
    assert_eq!(rating_of(&stale, "replicated"), "INADEQUATE");
    let (status, fresh_tag, fresh) = get(&server, LIST, None, Some(&second)).await;
    assert_eq!(status, 200);
    assert_eq!(rating_of(&fresh, "replicated"), "GOOD");
    assert_ne!(fresh_tag, stale_tag, "the primary's answer has its own tag");
    let answer = post(&server, &token, LIST, json!({}), Some(&second)).await;
    assert_eq!(rating_of(&answer, "replicated"), "GOOD");
    assert_eq!(
        metric(
            &server,
            "db_read_position_waits_total",
            "outcome=\"primary\""
        )
        .await,
        fell_back + 2.0
    );
    assert!(pair.still_paused().await);

    // Replay resumes: the same read is the replica's again.
    pair.resume_replay().await;
    pair.replica_caught_up().await;
    let before = commitment_reads(&pair.replica_pool).await;
    let answer = post(&server, &token, LIST, json!({}), Some(&second)).await;
    assert_eq!(rating_of(&answer, "replicated"), "GOOD");
    assert!(commitment_reads(&pair.replica_pool).await > before);
    live.close().await;
    catching_up.close().await;
    server.kill().await;
}

#[tokio::test]
async fn a_lagging_replica_is_skipped_and_a_stopped_one_leaves_reads_to_the_primary() {
    let pair = pair().await;
    let (server, token) = pair.server("200", "0").await;
    let (id, _) = register(&server, &token, "lagging").await;

    // Behind by more than REPLICA_MAX_LAG_MS: skipped, and reads are fresh from the primary.
    pair.pause_replay().await;
    assess(&server, &token, &id, "GOOD", "2024-01-01").await;
    pair.until_usable(&server, false).await;
    let on_replica = commitment_reads(&pair.replica_pool).await;
    for _ in 0..5 {
        let (status, _, answer) = get(&server, LIST, None, None).await;
        assert_eq!(status, 200);
        assert_eq!(rating_of(&answer, "lagging"), "GOOD");
    }
    assert_eq!(commitment_reads(&pair.replica_pool).await, on_replica);

    // Caught up, it serves again.
    pair.resume_replay().await;
    pair.until_usable(&server, true).await;
    let (_, _, answer) = get(&server, LIST, None, None).await;
    assert_eq!(rating_of(&answer, "lagging"), "GOOD");
    assert!(commitment_reads(&pair.replica_pool).await > on_replica);

    // Stopped outright: every read is still answered, from the primary.
    pair.replica.stop();
    for overall in ["REQUIRES_IMPROVEMENT", "INADEQUATE"] {
        assess(&server, &token, &id, overall, "2024-02-01").await;
        let (status, _, answer) = get(&server, LIST, None, None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(rating_of(&answer, "lagging"), overall);
        let answer = post(&server, &token, LIST, json!({}), None).await;
        assert_eq!(rating_of(&answer, "lagging"), overall);
    }
    pair.until_usable(&server, false).await;
    let feed = reqwest::get(format!("{}/feeds/assessments.atom", server.address))
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let page = reqwest::get(format!("{}/commitments/lagging", server.address))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    server.kill().await;
}

/// On a replica, the horizon below which readers of committed order may pass must wait for a
/// transaction that is still appending on the primary: a replica's snapshot lists no
/// running transaction, so only its xmin can say.
#[tokio::test]
async fn on_a_replica_the_append_horizon_waits_for_a_transaction_still_appending() {
    let pair = pair().await;
    let gate = commitment_tracker::store::event_store::APPEND_GATE;
    let mut appending = pair.primary_pool.begin().await.unwrap();
    sqlx::query("select enter_append_gate($1)")
        .bind(gate)
        .execute(&mut *appending)
        .await
        .unwrap();
    let xid: i64 = sqlx::query_scalar("select pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *appending)
        .await
        .unwrap();
    // A later transaction commits (the replica learns of both from the log).
    sqlx::query("create table later (x int)")
        .execute(&pair.primary_pool)
        .await
        .unwrap();
    pair.replica_caught_up().await;
    let horizon = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("select append_horizon($1)")
            .bind(gate)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(horizon(pair.primary_pool.clone()).await, xid);
    let on_replica = horizon(pair.replica_pool.clone()).await;
    assert!(
        on_replica <= xid,
        "the replica's horizon {on_replica} passes the appending transaction {xid}"
    );
    appending.commit().await.unwrap();
    pair.replica_caught_up().await;
    assert!(horizon(pair.replica_pool.clone()).await > xid);
}

/// Calls of every statement the server ran on the replica but the monitor's.
async fn replica_statements(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(calls), 0)::bigint from pg_stat_statements s
         join pg_database d on d.oid = s.dbid
         where d.datname = current_database()
           and s.query not ilike '%pg_stat_statements%'
           and s.query not ilike '%pg_is_in_recovery%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The batching of related records holds in the server process itself, on its
/// multi-threaded runtime: with nothing but the list's reads on the replica, its statistics
/// count exactly what one list costs, and it costs no more for 40 commitments than for 3.
#[tokio::test]
async fn on_the_server_process_a_list_costs_the_same_few_statements_for_3_or_40() {
    let pair = pair().await;
    let (server, token) = pair.server("60000", "0").await;
    let mut costs = Vec::new();
    let mut registered = 0;
    for wanted in [3, 40] {
        while registered < wanted {
            let (id, _) = register(&server, &token, &format!("c-{registered}")).await;
            assess(&server, &token, &id, "INADEQUATE", "2023-02-17").await;
            assess(&server, &token, &id, "GOOD", "2024-02-17").await;
            post(
                &server,
                &token,
                crate::helpers::SUBMIT,
                json!({ "input": {
                    "commitmentIds": [id], "title": format!("Evidence {registered}"),
                    "summary": "s", "submittedBy": "Panel", "submittedOn": "2023-01-01"
                }}),
                None,
            )
            .await;
            registered += 1;
        }
        pair.replica_caught_up().await;
        let before = replica_statements(&pair.replica_pool).await;
        let answer = post(&server, &token, crate::statements::LIST, json!({}), None).await;
        let cost = replica_statements(&pair.replica_pool).await - before;
        let nodes = answer["data"]["commitments"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), wanted);
        costs.push(cost);
    }
    println!("statements on the replica: {costs:?} for 3 and 40 commitments");
    // As in `statements`: about 11; one per commitment would be 40 or more. Before batches
    // were gathered per request (a fixed 1 ms window), this took 15 to 23 for 40.
    assert!(costs.iter().all(|&c| (1..=12).contains(&c)), "{costs:?}");
    server.kill().await;
}
