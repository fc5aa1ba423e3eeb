//! The distinct-page part of `read`: the database grown to `--pages-over` commitments, and
//! each connection asking for a different page at every request, so that no two concurrent
//! requests are alike; beside the hand-written statement through sqlx and from pgbench.

use super::{
    Level, ListRow, Lister, PAGE, PAGE_PGBENCH, PAGE_SQL, ReadArgs, analyze, compiled_statement,
    same_answer, seed_one, sql_pool,
};
use crate::support::{Client, LoopStep, Server, closed_loop, register_commitments};
use anyhow::Context;
use bytes::Bytes;
use commitment_tracker::store::cursor::ListCursor;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// Grows the database to `args.pages_over` commitments, checks one page against the
/// hand-written statement, and times distinct pages at each connection count.
pub async fn run(
    server: &Server,
    token: &str,
    db_url: &str,
    args: &ReadArgs,
) -> anyhow::Result<Value> {
    seed_more(
        server.addr,
        token,
        args.pages_over - args.commitments,
        args.assessments_each,
        16,
    )
    .await?;
    // Statistics as autovacuum would have them by now, not as they were with 50.
    analyze(db_url).await?;
    let pages = Arc::new(Pages::read(db_url).await?);
    let middle = pages.after[pages.after.len() / 2];
    let mut check = Client::connect(server.addr, Some(token)).await?;
    let body = pages.body(0, 1, pages.after.len() / 2)?;
    same_answer(&mut check, body, db_url, Some(middle)).await?;
    distinct_pages(server, token, db_url, pages, args).await
}

/// `commitments` more commitments shaped as [`seed`]'s, their assessments and evidence sent
/// by `clients` clients at once.
async fn seed_more(
    addr: std::net::SocketAddr,
    token: &str,
    commitments: usize,
    assessments_each: usize,
    clients: usize,
) -> anyhow::Result<()> {
    let mut setup = Client::connect(addr, Some(token)).await?;
    let ids = Arc::new(register_commitments(&mut setup, "page", commitments).await?);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ids, token) = (ids.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, Some(&token)).await?;
            for i in (c..ids.len()).step_by(clients) {
                seed_one(&mut client, &ids, i, assessments_each).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The cursors of the distinct-page scenario: after each, a full page of 50 follows. The
/// `n`th request of client `i` of `clients` takes the one at `(i + clients * n)` modulo a
/// multiple of `clients`, so no two clients ever ask for the same page at once.
struct Pages {
    after: Vec<i64>,
}

impl Pages {
    async fn read(db_url: &str) -> anyhow::Result<Self> {
        let pool = PgPool::connect(db_url).await?;
        let positions: Vec<i64> =
            sqlx::query_scalar("select registered_position from commitments order by 1")
                .fetch_all(&pool)
                .await?;
        pool.close().await;
        anyhow::ensure!(positions.len() > 50, "too few commitments to page over");
        Ok(Self {
            after: positions[..positions.len() - 50].to_vec(),
        })
    }

    fn pick(&self, client: usize, clients: usize, n: usize) -> i64 {
        let span = self.after.len() - self.after.len() % clients;
        self.after[(client + clients * n) % span]
    }

    /// The pgbench script: a random cursor in the same range, then the statement.
    fn pgbench_script(&self) -> String {
        format!("{}{};\n", self.random_cursor(), PAGE_PGBENCH.trim())
    }

    /// The same for the statement the server's compiled path runs for a page.
    fn compiled_script(&self) -> anyhow::Result<String> {
        // A cursor no page has, to find where the statement takes it.
        const MARK: i64 = 987_654_321_012;
        let after = ListCursor(MARK).encode();
        let sql = compiled_statement(PAGE, json!({ "after": after }))?;
        anyhow::ensure!(
            sql.contains(&MARK.to_string()),
            "the page's cursor in its statement"
        );
        Ok(format!(
            "{}{}",
            self.random_cursor(),
            sql.replace(&MARK.to_string(), ":after")
        ))
    }

    fn random_cursor(&self) -> String {
        format!(
            "\\set after random({}, {})\n",
            self.after[0],
            self.after[self.after.len() - 1]
        )
    }

    fn body(&self, client: usize, clients: usize, n: usize) -> anyhow::Result<Bytes> {
        let after = ListCursor(self.pick(client, clients, n)).encode();
        Ok(serde_json::to_vec(&json!({ "query": PAGE, "variables": { "after": after } }))?.into())
    }
}

/// A client asking for a different page at each request.
struct PageLister {
    lister: Lister,
    pages: Arc<Pages>,
    client: usize,
    clients: usize,
}

impl LoopStep for PageLister {
    async fn step(&mut self, n: usize) -> anyhow::Result<()> {
        self.lister.body = self.pages.body(self.client, self.clients, n)?;
        self.lister.step(n).await
    }
}

struct SqlPageLister {
    pool: PgPool,
    pages: Arc<Pages>,
    client: usize,
    clients: usize,
}

impl LoopStep for SqlPageLister {
    async fn step(&mut self, n: usize) -> anyhow::Result<()> {
        let rows: Vec<ListRow> = sqlx::query_as(PAGE_SQL)
            .bind(self.pages.pick(self.client, self.clients, n))
            .fetch_all(&self.pool)
            .await?;
        anyhow::ensure!(rows.len() == 50, "{} rows", rows.len());
        Ok(())
    }
}

/// Each connection asks for a different page of the list over `pages.after.len() + 50`
/// commitments: the API, the hand-written statement through sqlx, and the statement from
/// pgbench, at each connection count.
async fn distinct_pages(
    server: &Server,
    token: &str,
    db_url: &str,
    pages: Arc<Pages>,
    args: &ReadArgs,
) -> anyhow::Result<Value> {
    let duration = Duration::from_secs_f64(args.seconds);
    let mut levels = Vec::new();
    for &connections in &args.connections {
        let (api_rate, api_latency) = closed_loop(connections, duration, |client| {
            let (pages, token, addr) = (pages.clone(), token.to_owned(), server.addr);
            async move {
                Ok(PageLister {
                    lister: Lister {
                        client: Client::connect(addr, Some(&token)).await?,
                        body: Bytes::new(),
                        expect: 50,
                    },
                    pages,
                    client,
                    clients: connections,
                })
            }
        })
        .await
        .context("distinct pages through the API")?;
        let pool = sql_pool(db_url, connections).await?;
        let sql = closed_loop(connections, duration, |client| {
            let (pool, pages) = (pool.clone(), pages.clone());
            async move {
                Ok(SqlPageLister {
                    pool,
                    pages,
                    client,
                    clients: connections,
                })
            }
        })
        .await
        .context("distinct pages by hand-written SQL")?;
        pool.close().await;
        let api = json!({
            "requests": api_latency.len(),
            "requests_per_sec": api_rate.round(),
            "latency": api_latency.summary(),
        });
        let level = Level {
            connections,
            seconds: args.seconds,
            api_rate,
            api,
            sql,
        };
        let (script, compiled) = (pages.pgbench_script(), pages.compiled_script()?);
        levels.push(level.beside_pgbench(db_url, script, compiled).await?);
    }
    Ok(json!({
        "commitments": pages.after.len() + 50,
        "pages": "each connection a different page of 50 (by cursor) at every request; pgbench a random one",
        "levels": levels,
    }))
}
