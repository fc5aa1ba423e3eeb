//! What every scenario shares: fresh databases, the server in a child process, a GraphQL
//! client over HTTP/1.1 that checks every answer, latency statistics and memory readings.

use anyhow::Context;
use bytes::Bytes;
use commitment_tracker::auth::Role;
use commitment_tracker::store::{self, tokens};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The hidden first argument that makes the bench binary run the server (see [`Server`]).
pub const SERVE_CHILD: &str = "__serve";

/// The argument that makes this binary the fan-out floor (`floor.rs`) instead.
pub const FLOOR_CHILD: &str = "__floor";

/// A database made for one scenario and dropped after it.
pub struct BenchDatabase {
    server: String,
    pub url: String,
    pub pool: PgPool,
}

impl BenchDatabase {
    /// Creates and migrates a database on `server` (a URL without a database name).
    pub async fn create(server: &str, max_connections: u32) -> anyhow::Result<Self> {
        let url = format!("{server}/bench_{}", Uuid::now_v7().simple());
        store::ensure_database(&url).await?;
        // A long acquire timeout: a strategy that serialises commits must be measured, not
        // aborted.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(300))
            .connect(&url)
            .await?;
        store::migrate(&pool).await?;
        Ok(Self {
            server: server.to_owned(),
            url,
            pool,
        })
    }

    /// A token with `role` for the server on this database.
    pub async fn token(&self, role: Role) -> anyhow::Result<String> {
        Ok(tokens::create(&self.pool, "bench", role, None).await?.1)
    }

    /// Closes the pool and drops the database (and any connection left to it).
    pub async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let name = self.url.rsplit('/').next().context("database name")?;
        let admin = store::connect(&format!("{}/postgres", self.server), 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {name} with (force)"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        Ok(())
    }
}

/// Runs `scenario` on a fresh database and drops the database whatever the outcome.
pub async fn with_database<T>(
    server: &str,
    max_connections: u32,
    scenario: impl AsyncFnOnce(&BenchDatabase) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let db = BenchDatabase::create(server, max_connections).await?;
    let result = scenario(&db).await;
    db.drop().await?;
    result
}

/// The server, in a child process of its own (this binary, re-run with [`SERVE_CHILD`]), so
/// that its memory is its own and the load generator shares only the CPU with it.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the server on `database_url` with the given extra environment (the server's
    /// documented variables) and waits until it listens.
    pub async fn start(database_url: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut all = vec![
            ("DATABASE_URL", database_url.to_owned()),
            (
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or("warn".into()),
            ),
        ];
        all.extend_from_slice(env);
        Self::spawn(SERVE_CHILD, &all).await
    }

    /// Starts the fan-out floor (`floor.rs`) in the server's place.
    pub async fn start_floor() -> anyhow::Result<Self> {
        Self::spawn(FLOOR_CHILD, &[]).await
    }

    /// Runs this binary again as `child`, with `env`, and waits until it prints the address
    /// it listens on.
    async fn spawn(child: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg(child)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().context("start the server process")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let addr = line
            .trim()
            .parse()
            .with_context(|| format!("the server printed {line:?}, not its address"))?;
        Ok(Self { child, addr })
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The CPU time the server process has used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = ProcStat::read(self.pid())?;
        Ok(stat.seconds(11)? + stat.seconds(12)?)
    }

    /// The server's resident memory now and at its peak, in MiB.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} in /proc/pid/status"))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("a number")?
                .parse()?;
            Ok((kib / 1024.0 * 10.0).round() / 10.0)
        };
        Ok(Memory {
            rss_mib: field("VmRSS:")?,
            peak_rss_mib: field("VmHWM:")?,
        })
    }

    /// Stops the server (closing its stdin asks it to shut down) and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

/// The child side of [`Server`]: serve until stdin closes, after printing the address.
pub async fn serve_child() -> anyhow::Result<()> {
    use commitment_tracker::config::Settings;
    use commitment_tracker::startup::Application;
    commitment_tracker::telemetry::init();
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let mut settings = Settings::new(url, "127.0.0.1:0".parse()?);
    // The benchmark's clients are one address by design: measure the server, not its limits.
    settings.rate_limit_per_ip = 0;
    settings.rate_limit_per_token = 0;
    let app = Application::build(settings).await?;
    println!("{}", app.local_addr());
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    };
    app.run_until_stopped(stdin_closed).await?;
    Ok(())
}

/// The fields of `/proc/<pid>/stat` after the command name (which is in parentheses and may
/// hold spaces): the parent's pid is field 1; utime, stime, cutime and cstime are fields 11
/// to 14, in clock ticks of 1/100 s (USER_HZ).
pub struct ProcStat(Vec<String>);

impl ProcStat {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let rest = stat.rsplit_once(')').context("/proc/pid/stat")?.1;
        Ok(Self(rest.split_whitespace().map(str::to_owned).collect()))
    }

    pub fn field(&self, i: usize) -> anyhow::Result<u64> {
        Ok(self
            .0
            .get(i)
            .context("a field of /proc/pid/stat")?
            .parse()?)
    }

    /// A field of clock ticks, in seconds.
    pub fn seconds(&self, i: usize) -> anyhow::Result<f64> {
        Ok(self.field(i)? as f64 / 100.0)
    }
}

/// One HTTP/1.1 keep-alive connection posting GraphQL requests. Every answer is checked: a
/// status other than 200, or a 200 whose body carries `errors`, is a failure.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    authorization: Option<String>,
}

impl Client {
    /// Connects to `addr`, sending `token` (if any) as a bearer token.
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            authorization: token.map(|t| format!("Bearer {t}")),
        })
    }

    /// Posts a request body already encoded as JSON; returns `data`.
    pub async fn post(&mut self, body: Bytes) -> anyhow::Result<Value> {
        let bytes = self.post_bytes(body).await?;
        let mut answer: Value = serde_json::from_slice(&bytes)?;
        anyhow::ensure!(
            answer.get("errors").is_none(),
            "the answer carries errors: {answer}"
        );
        Ok(answer
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// POSTs a GraphQL request and returns the body of its `200 OK` answer, unread.
    pub async fn post_bytes(&mut self, body: Bytes) -> anyhow::Result<Bytes> {
        self.sender.ready().await.context("connection closed")?;
        let mut request = hyper::Request::post("/graphql")
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(a) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, a);
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status == hyper::StatusCode::OK,
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(bytes)
    }

    /// GETs `path` (anonymously, whatever token the client holds), optionally with
    /// `If-None-Match`; reads the body and returns the status and the `ETag`.
    pub async fn get(
        &mut self,
        path: &str,
        if_none_match: Option<&str>,
    ) -> anyhow::Result<(u16, Option<String>)> {
        self.sender.ready().await.context("connection closed")?;
        let mut request = hyper::Request::get(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(tag) = if_none_match {
            request = request.header(hyper::header::IF_NONE_MATCH, tag);
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(Bytes::new()))?)
            .await?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get(hyper::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        response.into_body().collect().await?;
        Ok((status, etag))
    }

    /// GETs `path`; returns the status and the body as text.
    pub async fn get_text(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        self.sender.ready().await.context("connection closed")?;
        let request = hyper::Request::get(path).header(hyper::header::HOST, "127.0.0.1");
        let response = self
            .sender
            .send_request(request.body(Full::new(Bytes::new()))?)
            .await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Executes `query` with `variables`; returns `data`.
    pub async fn execute(&mut self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))?;
        self.post(body.into()).await
    }
}

/// Latencies in milliseconds, summarised.
#[derive(Debug, Default)]
pub struct Latencies(Vec<f64>);

impl Latencies {
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// p50, p99 and max, rounded to 0.01 ms.
    pub fn summary(mut self) -> Value {
        self.0.sort_by(f64::total_cmp);
        json!({
            "p50_ms": round2(percentile(&self.0, 0.5)),
            "p99_ms": round2(percentile(&self.0, 0.99)),
            "max_ms": round2(self.0.last().copied().unwrap_or(f64::NAN)),
        })
    }
}

/// PostgreSQL's own benchmark client running `script` (a pgbench script: one transaction,
/// statements ending in `;`) with prepared statements (`-M prepared`) from `clients`
/// connections for `seconds`: the database's limit for that work, without any Rust client in
/// the way. Answers transactions per second and pgbench's average latency.
pub fn pgbench(db_url: &str, script: &str, clients: usize, seconds: f64) -> anyhow::Result<Value> {
    let file = std::env::temp_dir().join(format!("ct-pgbench-{}.sql", uuid::Uuid::now_v7()));
    std::fs::write(&file, script)?;
    let threads = clients.clamp(1, 2).to_string();
    let output = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", &threads])
        .args(["-c", &clients.to_string()])
        .args(["-T", &(seconds.ceil() as u64).max(1).to_string()])
        .arg("-f")
        .arg(&file)
        .arg(db_url)
        .output()
        .context("run pgbench (PostgreSQL's client programs)")?;
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let number_after = |prefix: &str| -> anyhow::Result<f64> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("pgbench printed no {prefix:?}: {stdout}"))?;
        Ok(line[prefix.len()..]
            .split_whitespace()
            .next()
            .context("a number")?
            .parse()?)
    };
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions:"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    anyhow::ensure!(failed == 0, "pgbench: {failed} transactions failed");
    Ok(json!({
        "client": "pgbench -M prepared",
        "tps": number_after("tps = ")?.round(),
        "latency_average_ms": number_after("latency average = ")?,
        "transactions": number_after("number of transactions actually processed: ")?,
    }))
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `a / b` rounded to 0.01.
pub fn ratio(a: f64, b: f64) -> f64 {
    round2(a / b)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// GraphQL to register a commitment (returns its id and version).
pub const REGISTER: &str = "mutation($input: RegisterCommitmentInput!) {
    registerCommitment(input: $input) { id version }
}";

/// Registers `n` commitments through the API and returns their ids.
pub async fn register_commitments(
    client: &mut Client,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    const AREAS: [&str; 4] = ["Records", "Social care", "Diagnostics", "Workforce"];
    for i in 0..n {
        let data = client
            .execute(
                REGISTER,
                json!({ "input": {
                    "slug": format!("{prefix}-{i}"),
                    "title": format!("Commitment {i}: digitise a care setting"),
                    "description": "Every trust to have an electronic patient record.",
                    "area": AREAS[i % 4],
                    "policySource": "A plan for digital health and social care (2022)",
                    "target": "All trusts on an EPR",
                    "dueDate": "2025-03-31",
                    "owner": "NHS England",
                    "announcedOn": "2022-06-29",
                }}),
            )
            .await?;
        ids.push(
            data["registerCommitment"]["id"]
                .as_str()
                .context("a commitment id")?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// Client `i` of `clients` takes commitments i, i + clients, …: no two clients contend for
/// one stream.
pub fn share_of(ids: &[String], i: usize, clients: usize) -> anyhow::Result<Vec<String>> {
    let share: Vec<String> = ids.iter().skip(i).step_by(clients).cloned().collect();
    anyhow::ensure!(!share.is_empty(), "more clients than commitments");
    Ok(share)
}

/// The assessment mutation every scenario sends (the same work per request).
pub const ASSESS: &str = "mutation($input: AssessCommitmentInput!) {
    assessCommitment(input: $input) { id overall cursor }
}";

const RATINGS: [&str; 4] = ["OUTSTANDING", "GOOD", "REQUIRES_IMPROVEMENT", "INADEQUATE"];

/// The body of one `assessCommitment` request, already encoded.
pub fn assess_body(commitment_id: &str, n: usize) -> Bytes {
    let day = chrono::NaiveDate::from_ymd_opt(2023, 2, 17).expect("a date")
        + chrono::Duration::days((n % 1000) as i64);
    let body = json!({
        "query": ASSESS,
        "variables": { "input": {
            "commitmentId": commitment_id,
            "assessor": "HSCC Expert Panel",
            "assessorKind": "INDEPENDENT",
            "assessedOn": day.to_string(),
            "overall": RATINGS[n % 4],
            "aspects": { "met": RATINGS[(n + 1) % 4], "funding": RATINGS[(n + 2) % 4],
                         "impact": RATINGS[(n + 3) % 4], "appropriateness": "GOOD" },
            "deliveryStatus": "NOT_ON_TRACK",
            "rationale": "Far from on track; weak common standards hold back interoperability.",
            "evaluation": "HC 780",
        }},
    });
    serde_json::to_vec(&body).expect("JSON").into()
}

/// Checks an `assessCommitment` answer and returns the new assessment's id.
pub fn assessed_id(data: &Value) -> anyhow::Result<&str> {
    data["assessCommitment"]["id"]
        .as_str()
        .with_context(|| format!("no assessment in {data}"))
}

/// An administrator's token (every mutation is allowed).
pub async fn admin_token(db: &BenchDatabase) -> anyhow::Result<String> {
    db.token(Role::Admin).await
}

/// Runs `clients` closed loops for `duration`, each on the state `make(i)` returns, calling
/// its `step(n)` for its n-th request. Returns operations per second and the latencies.
pub async fn closed_loop<S, Fut>(
    clients: usize,
    duration: Duration,
    make: impl Fn(usize) -> Fut,
) -> anyhow::Result<(f64, Latencies)>
where
    Fut: Future<Output = anyhow::Result<S>>,
    S: LoopStep + Send + 'static,
{
    // Connect every client first so that connection setup is not measured.
    let mut states = Vec::with_capacity(clients);
    for i in 0..clients {
        states.push(make(i).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = states
        .into_iter()
        .map(|mut state| {
            tokio::spawn(async move {
                let mut latencies = Latencies::with_capacity(4096);
                // At least one request per client, however late it starts: every level
                // measures something.
                let mut n = 0;
                loop {
                    let t = Instant::now();
                    state.step(n).await?;
                    latencies.push(t.elapsed());
                    n += 1;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Latencies::default();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((all.len() as f64 / elapsed, all))
}

/// One closed loop's request.
pub trait LoopStep {
    fn step(&mut self, n: usize) -> impl Future<Output = anyhow::Result<()>> + Send;
}
