//! `read`: the list query (50 commitments, each with its current assessment, its 5 latest
//! assessments and the titles of its evidence) over HTTP at 1 and 32 connections, against
//! the hand-written SQL that answers the same question through sqlx and from pgbench. Every
//! connection asks for the same page; then, over `--pages-over` commitments, each asks for a
//! different page at every request, so that no two concurrent requests are alike.

use crate::support::{
    Client, Latencies, LoopStep, Server, admin_token, assess_body, assessed_id, closed_loop,
    pgbench, ratio, register_commitments, with_database,
};
mod pages;

use anyhow::Context;
use bytes::Bytes;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

pub struct ReadArgs {
    pub connections: Vec<usize>,
    pub seconds: f64,
    pub commitments: usize,
    pub assessments_each: usize,
    /// How many commitments the distinct-page scenario pages over (0: not run).
    pub pages_over: usize,
}

/// What the list asks of each commitment.
macro_rules! list_nodes {
    () => {
        "nodes {
            id slug title dueDate
            currentAssessment { overall deliveryStatus assessedOn }
            assessments(last: 5) { overall assessedOn }
            evidence { title }
        }"
    };
}

/// The question, as a client asks it.
pub const LIST: &str = concat!("query { commitments(first: 50) { ", list_nodes!(), " } }");

/// The same question for the page after a cursor.
pub(super) const PAGE: &str = concat!(
    "query($after: String) { commitments(first: 50, after: $after) { ",
    list_nodes!(),
    " } }"
);

/// The same question in one hand-written statement, for the commitments the condition keeps.
macro_rules! list_sql {
    ($condition:literal) => {
        concat!(
            "
select c.id, c.slug, c.title, c.due_date,
       cur.overall, cur.delivery_status, cur.assessed_on,
       (select coalesce(json_agg(json_build_object('overall', l.overall, 'assessedOn', l.assessed_on)
                                 order by l.assessed_on, l.position), '[]')
          from (select a.overall, a.assessed_on, a.position from assessments a
                 where a.commitment_id = c.id
                 order by a.assessed_on desc, a.position desc limit 5) l) as latest,
       (select coalesce(json_agg(e.title order by e.submitted_on, e.position), '[]')
          from evidence_commitments ec join evidence e on e.id = ec.evidence_id
         where ec.commitment_id = c.id) as evidence
from commitments c left join assessments cur on cur.id = c.current_assessment_id
",
            $condition,
            "
order by c.registered_position
limit 50"
        )
    };
}

// language=PostgreSQL
const LIST_SQL: &str = list_sql!("");
// language=PostgreSQL
pub(super) const PAGE_SQL: &str = list_sql!("where c.registered_position > $1");
/// [`PAGE_SQL`] as a pgbench script line, its cursor a pgbench variable.
pub(super) const PAGE_PGBENCH: &str = list_sql!("where c.registered_position > :after");

/// One row of the hand-written answer, decoded as a client would.
#[derive(sqlx::FromRow)]
pub(super) struct ListRow {
    id: Uuid,
    slug: String,
    title: String,
    due_date: Option<chrono::NaiveDate>,
    overall: Option<String>,
    delivery_status: Option<String>,
    assessed_on: Option<chrono::NaiveDate>,
    latest: Value,
    evidence: Value,
}

impl ListRow {
    /// The node the API answers for this row.
    fn node(self) -> Value {
        let titles: Vec<Value> = self
            .evidence
            .as_array()
            .map(|t| t.iter().map(|t| json!({ "title": t })).collect())
            .unwrap_or_default();
        json!({
            "id": self.id.to_string(),
            "slug": self.slug,
            "title": self.title,
            "dueDate": self.due_date.map(|d| d.to_string()),
            "currentAssessment": self.assessed_on.map(|on| json!({
                "overall": self.overall,
                "deliveryStatus": self.delivery_status,
                "assessedOn": on.to_string(),
            })),
            "assessments": self.latest,
            "evidence": titles,
        })
    }
}

/// Before anything is timed: the API answers exactly what the hand-written statement does,
/// node by node (the timed loops then check each answer's shape). `after` is the page's
/// cursor (a registration position), if any.
pub(super) async fn same_answer(
    client: &mut Client,
    body: Bytes,
    db_url: &str,
    after: Option<i64>,
) -> anyhow::Result<()> {
    let data = client.post(body).await?;
    let pool = PgPool::connect(db_url).await?;
    let rows: Vec<ListRow> = match after {
        None => sqlx::query_as(LIST_SQL).fetch_all(&pool).await?,
        Some(after) => {
            sqlx::query_as(PAGE_SQL)
                .bind(after)
                .fetch_all(&pool)
                .await?
        }
    };
    pool.close().await;
    let expected = Value::Array(rows.into_iter().map(ListRow::node).collect());
    anyhow::ensure!(
        data["commitments"]["nodes"] == expected,
        "the API's list differs from the hand-written statement's:\n{}\n{expected}",
        data["commitments"]["nodes"]
    );
    Ok(())
}

/// What putting one answer of the list back into selection order costs, in the worst case:
/// every object of the answer with its keys reversed, so that each is rebuilt. Timed in this
/// process on the answer the server gave, with the server's own code.
async fn field_order_cost(client: &mut Client) -> anyhow::Result<Value> {
    use commitment_tracker::graphql::order::FieldOrder;
    let order = FieldOrder::from_sdl(&commitment_tracker::graphql::sdl());
    let doc = async_graphql::parser::parse_query(LIST)?;
    let answer = client
        .post(serde_json::to_vec(&json!({ "query": LIST }))?.into())
        .await?;
    fn reversed(value: async_graphql::Value) -> async_graphql::Value {
        match value {
            async_graphql::Value::Object(map) => async_graphql::Value::Object(
                map.into_iter()
                    .rev()
                    .map(|(k, v)| (k, reversed(v)))
                    .collect(),
            ),
            async_graphql::Value::List(items) => {
                async_graphql::Value::List(items.into_iter().map(reversed).collect())
            }
            other => other,
        }
    }
    let scrambled = reversed(async_graphql::Value::from_json(answer)?);
    let variables = async_graphql::Variables::default();
    const ROUNDS: u32 = 2_000;
    // The copies are made outside the timed part.
    let mut copies: Vec<_> = (0..ROUNDS).map(|_| scrambled.clone()).collect();
    let started = std::time::Instant::now();
    for copy in &mut copies {
        order.restore(&doc, None, &variables, copy);
    }
    let scrambled_time = started.elapsed();
    // The same answers again, now in order: what an answer costs when nothing has to move.
    let started = std::time::Instant::now();
    for copy in &mut copies {
        order.restore(&doc, None, &variables, copy);
    }
    let in_order_time = started.elapsed();
    let us =
        |d: std::time::Duration| (d.as_secs_f64() * 1e6 / f64::from(ROUNDS) * 10.0).round() / 10.0;
    Ok(json!({
        "objects_per_answer": count_objects(&scrambled),
        "us_per_answer": us(scrambled_time),
        "case": "every object's keys reversed",
        "in_order_us_per_answer": us(in_order_time),
    }))
}

fn count_objects(value: &async_graphql::Value) -> usize {
    match value {
        async_graphql::Value::Object(map) => 1 + map.values().map(count_objects).sum::<usize>(),
        async_graphql::Value::List(items) => items.iter().map(count_objects).sum(),
        _ => 0,
    }
}

/// The list's data: `commitments` commitments, each with `assessments_each` assessments and
/// two pieces of evidence, one shared with the next commitment.
pub async fn seed(
    setup: &mut Client,
    commitments: usize,
    assessments_each: usize,
) -> anyhow::Result<()> {
    let ids = register_commitments(setup, "read", commitments).await?;
    for i in 0..ids.len() {
        seed_one(setup, &ids, i, assessments_each).await?;
    }
    Ok(())
}

/// The `i`th commitment's assessments and evidence.
pub(super) async fn seed_one(
    setup: &mut Client,
    ids: &[String],
    i: usize,
    assessments_each: usize,
) -> anyhow::Result<()> {
    let id = &ids[i];
    for n in 0..assessments_each {
        assessed_id(&setup.post(assess_body(id, n)).await?)?;
    }
    for (j, title) in ["Trust survey", "Programme evaluation"].iter().enumerate() {
        let mut concerns = vec![id.clone()];
        if j == 1 {
            concerns.push(ids[(i + 1) % ids.len()].clone());
        }
        setup
            .execute(
                "mutation($input: SubmitEvidenceInput!) { submitEvidence(input: $input) { id } }",
                json!({ "input": {
                    "commitmentIds": concerns,
                    "title": format!("{title} {i}"),
                    "summary": "Findings on progress.",
                    "sourceUrl": "https://www.ed.ac.uk/usher/digital-innovation/evaluation",
                    "submittedBy": "University of Edinburgh",
                    "submittedOn": "2023-01-10",
                    "kind": "EVALUATION",
                }}),
            )
            .await?;
    }
    Ok(())
}

/// A client asking for the list, checking each answer's shape.
pub struct Lister {
    pub client: Client,
    pub body: Bytes,
    pub expect: usize,
}

/// What a timed loop checks of each answer: every byte is parsed as JSON, but only the
/// counts are kept, as pgbench keeps rows without making anything of them. (Building the
/// whole answer as a `serde_json::Value` tree costs the bench's client about as much CPU as
/// the server spends answering, on the same two cores; `parse_cost` in the output.)
#[derive(serde::Deserialize)]
struct ListAnswer {
    data: ListData,
    errors: Option<IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct ListData {
    commitments: ListPage,
}

#[derive(serde::Deserialize)]
struct ListPage {
    nodes: Vec<NodeShape>,
}

#[derive(serde::Deserialize)]
struct NodeShape {
    assessments: Vec<IgnoredAny>,
}

/// Checks a list answer: no errors, `expect` commitments, 5 latest assessments each.
fn check_list(body: &[u8], expect: usize) -> anyhow::Result<()> {
    let answer: ListAnswer = serde_json::from_slice(body).context("a list answer")?;
    anyhow::ensure!(answer.errors.is_none(), "the answer carries errors");
    let nodes = answer.data.commitments.nodes;
    anyhow::ensure!(nodes.len() == expect, "{} commitments", nodes.len());
    for node in &nodes {
        let latest = node.assessments.len();
        anyhow::ensure!(latest == 5, "{latest} latest assessments");
    }
    Ok(())
}

impl LoopStep for Lister {
    async fn step(&mut self, _: usize) -> anyhow::Result<()> {
        let body = self.client.post_bytes(self.body.clone()).await?;
        check_list(&body, self.expect)
    }
}

/// The client's CPU per answer for reading `body` as the timed loops do, and as a whole
/// `serde_json::Value` tree, in µs (best of 200 each).
fn parse_cost(body: &[u8], expect: usize) -> anyhow::Result<Value> {
    fn best(mut run: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
        let mut best = f64::MAX;
        for _ in 0..200 {
            let start = std::time::Instant::now();
            run()?;
            best = best.min(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok((best * 10.0).round() / 10.0)
    }
    let checked = best(|| check_list(body, expect))?;
    let tree = best(|| {
        std::hint::black_box(serde_json::from_slice::<Value>(body)?);
        Ok(())
    })?;
    Ok(json!({
        "answer_bytes": body.len(),
        "checked_us": checked,
        "value_tree_us": tree,
    }))
}

/// Anonymous `GET /graphql?query=…` of the list: with a tag, conditional (304, or 200 with a
/// new tag when the log position moved: maintenance such as autovacuum writes too); without,
/// the full answer every time.
struct Getter {
    client: Client,
    path: String,
    etag: Option<String>,
    refetched: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LoopStep for Getter {
    async fn step(&mut self, _: usize) -> anyhow::Result<()> {
        let (status, etag) = self.client.get(&self.path, self.etag.as_deref()).await?;
        match (status, &self.etag) {
            (304, Some(_)) | (200, None) => Ok(()),
            (200, Some(_)) => {
                self.refetched
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.etag = Some(etag.context("an ETag")?);
                Ok(())
            }
            _ => anyhow::bail!("HTTP {status}"),
        }
    }
}

/// Full anonymous GETs of the list against conditional ones that get 304, at `connections`.
async fn conditional_gets(
    addr: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Value> {
    let path = format!(
        "/graphql?query={}",
        commitment_tracker::opendata::atom::url_encode(LIST)
    );
    // The tag once the server has stopped writing (the log's sequencer integrates the
    // setup's events after they are committed, which moves the log position once more).
    let mut client = Client::connect(addr, None).await?;
    let (status, mut etag) = client.get(&path, None).await?;
    anyhow::ensure!(status == 200, "HTTP {status}");
    let mut settled = false;
    for _ in 0..1000 {
        let (status, new) = client.get(&path, etag.as_deref()).await?;
        if status == 304 {
            settled = true;
            break;
        }
        etag = new;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::ensure!(settled, "the log position never settled");
    let etag = etag.context("an ETag on an anonymous GET")?;
    let refetched = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run = |etag: Option<String>| {
        let (path, refetched) = (path.clone(), refetched.clone());
        closed_loop(connections, duration, move |_| {
            let (path, etag, refetched) = (path.clone(), etag.clone(), refetched.clone());
            async move {
                Ok(Getter {
                    client: Client::connect(addr, None).await?,
                    path,
                    etag,
                    refetched,
                })
            }
        })
    };
    let (full_rate, full_latency) = run(None).await.context("full GETs")?;
    let (cond_rate, cond_latency) = run(Some(etag)).await.context("conditional GETs")?;
    Ok(json!({
        "connections": connections,
        "full": { "requests_per_sec": full_rate.round(), "latency": full_latency.summary() },
        "not_modified": {
            "requests_per_sec": cond_rate.round(),
            "latency": cond_latency.summary(),
            "answered_200_after_the_position_moved": refetched.load(std::sync::atomic::Ordering::Relaxed),
        },
        "ratio": ratio(cond_rate, full_rate),
    }))
}

struct SqlLister {
    pool: PgPool,
    expect: usize,
}

impl LoopStep for SqlLister {
    async fn step(&mut self, _: usize) -> anyhow::Result<()> {
        let rows: Vec<ListRow> = sqlx::query_as(LIST_SQL).fetch_all(&self.pool).await?;
        anyhow::ensure!(rows.len() == self.expect, "{} rows", rows.len());
        Ok(())
    }
}

/// A pool of `connections` connections, all opened before anything is timed.
pub(super) async fn sql_pool(db_url: &str, connections: usize) -> anyhow::Result<PgPool> {
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections as u32)
        .min_connections(connections as u32)
        .connect(db_url)
        .await?)
}

/// One connection count's figures: the API's, and the hand-written statement's through sqlx.
pub(super) struct Level {
    connections: usize,
    seconds: f64,
    api_rate: f64,
    api: Value,
    sql: (f64, Latencies),
}

impl Level {
    /// The level with pgbench running `script` (the hand-written statement) and `compiled`
    /// (the statement the server's compiled path runs for the same request) at the same
    /// connection count, as ratios.
    pub(super) async fn beside_pgbench(
        self,
        db_url: &str,
        script: String,
        compiled: String,
    ) -> anyhow::Result<Value> {
        let (url, connections, seconds) = (db_url.to_owned(), self.connections, self.seconds);
        let run = |script: String| {
            let url = url.clone();
            tokio::task::spawn_blocking(move || pgbench(&url, &script, connections, seconds))
        };
        let pg = run(script).await??;
        let pg_compiled = run(compiled).await??;
        let pg_rate = pg["tps"].as_f64().unwrap_or(0.0);
        let compiled_rate = pg_compiled["tps"].as_f64().unwrap_or(0.0);
        let (sql_rate, sql_latency) = self.sql;
        Ok(json!({
            "connections": connections,
            "api": self.api,
            "ceiling": { "requests_per_sec": sql_rate.round(), "latency": sql_latency.summary() },
            "ratio": ratio(self.api_rate, sql_rate),
            "pgbench": pg,
            "ratio_to_pgbench": ratio(self.api_rate, pg_rate),
            "pgbench_compiled_statement": pg_compiled,
            "ratio_to_compiled_statement": ratio(self.api_rate, compiled_rate),
        }))
    }
}

/// The statement the server's compiled path runs for `query` with `variables`, as a pgbench
/// script line.
pub(super) fn compiled_statement(
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<String> {
    let variables = async_graphql::Variables::from_json(variables);
    let sql = commitment_tracker::graphql::compiled::statement_text(query, &variables, 500)
        .context("the list has a compiled statement")?;
    Ok(format!("{};\n", sql.trim()))
}

/// Brings the planner's statistics up to date after seeding, as autovacuum does in time on a
/// database that grew: both sides are then planned from the same, true statistics.
pub(super) async fn analyze(db_url: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(db_url).await?;
    sqlx::query("analyze").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

pub async fn run(server_url: &str, args: &ReadArgs) -> anyhow::Result<Value> {
    let max = args.connections.iter().copied().max().unwrap_or(1) as u32;
    with_database(server_url, max + 2, async |db| {
        let token = admin_token(db).await?;
        let server = Server::start(&db.url, &[]).await?;
        let mut setup = Client::connect(server.addr, Some(&token)).await?;
        seed(&mut setup, args.commitments, args.assessments_each).await?;
        analyze(&db.url).await?;
        let expect = args.commitments.min(50);
        let body: Bytes = serde_json::to_vec(&json!({ "query": LIST }))?.into();
        same_answer(&mut setup, body.clone(), &db.url, None).await?;
        let duration = Duration::from_secs_f64(args.seconds);
        let mut levels = Vec::new();
        let field_order = field_order_cost(&mut setup).await?;
        let parse = parse_cost(&setup.post_bytes(body.clone()).await?, expect)?;
        for &connections in &args.connections {
            let cpu_before = server.cpu_seconds()?;
            let (api_rate, api_latency) = closed_loop(connections, duration, |_| {
                let body = body.clone();
                let token = token.clone();
                let addr = server.addr;
                async move {
                    Ok(Lister {
                        client: Client::connect(addr, Some(&token)).await?,
                        body,
                        expect,
                    })
                }
            })
            .await
            .context("the list through the API")?;
            let cpu_per_answer_us =
                (server.cpu_seconds()? - cpu_before) * 1e6 / api_latency.len().max(1) as f64;
            let pool = sql_pool(&db.url, connections).await?;
            let sql = closed_loop(connections, duration, |_| {
                let pool = pool.clone();
                async move { Ok(SqlLister { pool, expect }) }
            })
            .await
            .context("the hand-written SQL")?;
            pool.close().await;
            let api = json!({
                "requests": api_latency.len(),
                "requests_per_sec": api_rate.round(),
                "latency": api_latency.summary(),
                "server_cpu_us_per_answer": cpu_per_answer_us.round(),
            });
            let script = format!("{};\n", LIST_SQL.trim());
            let level = Level { connections, seconds: args.seconds, api_rate, api, sql };
            let compiled = compiled_statement(LIST, json!({}))?;
            levels.push(level.beside_pgbench(&db.url, script, compiled).await?);
        }
        let mut caching = Vec::new();
        for &connections in &args.connections {
            caching.push(conditional_gets(server.addr, connections, duration).await?);
        }
        let distinct = if args.pages_over > args.commitments {
            pages::run(&server, &token, &db.url, args).await?
        } else {
            Value::Null
        };
        server.stop().await?;
        Ok(json!({
            "scenario": "read",
            "distinct_pages": distinct,
            "conditional_gets": caching,
            "commitments": args.commitments,
            "assessments_per_commitment": args.assessments_each,
            "seconds_per_run": args.seconds,
            "ceiling": "one hand-written SQL statement answering the same question, rows decoded, through sqlx",
            "pgbench": "the same statement from pgbench -M prepared, same connection count",
            "pgbench_compiled_statement": "the statement the server's compiled path runs for the same request, from pgbench -M prepared, same connection count",
            "field_order": field_order,
            "client_parse": parse,
            "levels": levels,
        }))
    })
    .await
}
