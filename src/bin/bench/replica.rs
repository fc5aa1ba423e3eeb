//! `replica`: the read scenario's list at 1 and 32 connections from a server reading the
//! primary, against the same from a server reading a streaming replica (`DATABASE_READ_URL`),
//! both in one run on a private primary and replica built here (initdb, `pg_basebackup -R`).
//!
//! Both clusters share this machine's cores with the server and the load, so the figure
//! shows what splitting reads costs (a second PostgreSQL's memory and replay, the monitor),
//! not the capacity a replica on its own machine adds. Each cluster's CPU time is measured
//! (its postmaster, the backends it has reaped, and those alive) to show where the work went.

use crate::read::{LIST, Lister, seed};
use crate::support::{Client, ProcStat, Server, closed_loop, ratio};
use anyhow::Context;
use bytes::Bytes;
use commitment_tracker::auth::Role;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct ReplicaArgs {
    pub connections: Vec<usize>,
    pub seconds: f64,
    pub rounds: usize,
    pub commitments: usize,
    pub assessments_each: usize,
}

/// A cluster of the benchmark's own, on a free TCP port.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

impl Cluster {
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .tool(name)
            .args(args)
            .output()
            .with_context(|| format!("run {name}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn start(&self, settings: &str) -> anyhow::Result<()> {
        let folder = self.data.parent().context("a cluster folder")?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 {settings}",
            self.port,
            folder.display()
        );
        let log = folder.join(format!("{}.log", self.port));
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                &self.data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
            ],
        )
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// CPU seconds the cluster has used: the postmaster with the backends it has reaped,
    /// and every backend alive.
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid"))?;
        let postmaster: u32 = pid_file.lines().next().context("a pid")?.trim().parse()?;
        let own = ProcStat::read(postmaster)?;
        let mut total = (11..=14)
            .map(|i| own.seconds(i))
            .sum::<anyhow::Result<f64>>()?;
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may end between the listing and the read.
            let Ok(stat) = ProcStat::read(pid) else {
                continue;
            };
            if stat.field(1).ok() == Some(u64::from(postmaster)) {
                total += stat.seconds(11)? + stat.seconds(12)?;
            }
        }
        Ok(total)
    }
}

/// A primary and its streaming replica in a temporary folder, removed on drop.
struct Pair {
    folder: PathBuf,
    primary: Cluster,
    replica: Cluster,
}

impl Pair {
    fn create() -> anyhow::Result<Self> {
        let bin = commitment_tracker::embedded::find_bin_dir()?;
        let folder = std::env::temp_dir().join(format!(
            "ct-bench-replica-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&folder)?;
        let root = commitment_tracker::embedded::is_root();
        if root {
            let ok = Command::new("chown")
                .args(["postgres:postgres", &folder.to_string_lossy()])
                .status()?
                .success();
            anyhow::ensure!(ok, "chown the cluster folder to postgres");
        }
        let cluster = |name: &str| Cluster {
            bin: bin.clone(),
            data: folder.join(name),
            port: free_port(),
            run_as_postgres: root,
        };
        let pair = Self {
            primary: cluster("primary"),
            replica: cluster("replica"),
            folder,
        };
        let primary = &pair.primary;
        primary.run(
            "initdb",
            &[
                "-D",
                &primary.data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        primary.start("")?;
        let replica = &pair.replica;
        let port = primary.port.to_string();
        replica.run(
            "pg_basebackup",
            &[
                "-D",
                &replica.data.to_string_lossy(),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
            ],
        )?;
        replica.start("-c hot_standby_feedback=on")?;
        Ok(pair)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for cluster in [&self.replica, &self.primary] {
            let _ = cluster
                .tool("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&cluster.data)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The sum of a metric's samples on the server's `/metrics` whose line holds `labels`.
async fn metric(server: &Server, name: &str, labels: &str) -> anyhow::Result<f64> {
    let mut client = Client::connect(server.addr, None).await?;
    let (status, text) = client.get_text("/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// One timed run of the list at `connections` against `server`: rate, p50 and p99 (ms), and
/// the CPU seconds each cluster used per 1,000 answers.
async fn measure(
    server: &Server,
    pair: &Pair,
    token: &str,
    connections: usize,
    duration: Duration,
    expect: usize,
) -> anyhow::Result<Value> {
    let body: Bytes = serde_json::to_vec(&json!({ "query": LIST }))?.into();
    let before = (pair.primary.cpu_seconds()?, pair.replica.cpu_seconds()?);
    let server_before = server.cpu_seconds()?;
    let (rate, latency) = closed_loop(connections, duration, |_| {
        let (body, token, addr) = (body.clone(), token.to_owned(), server.addr);
        async move {
            Ok(Lister {
                client: Client::connect(addr, Some(&token)).await?,
                body,
                expect,
            })
        }
    })
    .await?;
    let answers = latency.len().max(1) as f64;
    let per_thousand = |seconds: f64| (seconds * 1000.0 / answers * 1000.0).round() / 1000.0;
    let primary = per_thousand(pair.primary.cpu_seconds()? - before.0);
    let replica = per_thousand(pair.replica.cpu_seconds()? - before.1);
    let server_cpu = per_thousand(server.cpu_seconds()? - server_before);
    Ok(json!({
        "requests_per_sec": rate.round(),
        "latency": latency.summary(),
        "cpu_seconds_per_1000_answers": {
            "primary": primary, "replica": replica, "server": server_cpu,
        },
    }))
}

pub async fn run(args: &ReplicaArgs) -> anyhow::Result<Value> {
    let pair = tokio::task::spawn_blocking(Pair::create).await??;
    let admin = sqlx::PgPool::connect(&pair.primary.url("postgres")).await?;
    sqlx::query("create database bench").execute(&admin).await?;
    admin.close().await;
    let url = pair.primary.url("bench");

    // One server on the primary alone: it migrates, and the data goes in through it.
    let alone = Server::start(&url, &[]).await?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let (_, token) =
        commitment_tracker::store::tokens::create(&pool, "bench", Role::Admin, None).await?;
    let mut setup = Client::connect(alone.addr, Some(&token)).await?;
    seed(&mut setup, args.commitments, args.assessments_each).await?;

    // One server reading the replica, once it is in use.
    let read_url = pair.replica.url("bench");
    let split = Server::start(&url, &[("DATABASE_READ_URL", read_url)]).await?;
    let label = format!("replica=\"127.0.0.1:{}/bench\"", pair.replica.port);
    let mut usable = false;
    for _ in 0..600 {
        if metric(&split, "db_replica_usable", &label).await? == 1.0 {
            usable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(usable, "the replica never came into use");

    let expect = args.commitments.min(50);
    let duration = Duration::from_secs_f64(args.seconds);
    let mut levels = Vec::new();
    for &connections in &args.connections {
        // Alternating, so that drift on a noisy machine falls on both alike.
        let mut rounds = Vec::new();
        for _ in 0..args.rounds.max(1) {
            let on_replica = metric(&split, "db_reads_total", "target=\"replica\"").await?;
            let primary_only = measure(&alone, &pair, &token, connections, duration, expect)
                .await
                .context("reads on the primary")?;
            let with_replica = measure(&split, &pair, &token, connections, duration, expect)
                .await
                .context("reads on the replica")?;
            let sent = metric(&split, "db_reads_total", "target=\"replica\"").await? - on_replica;
            let rate = |v: &Value| v["requests_per_sec"].as_f64().unwrap_or(0.0);
            rounds.push(json!({
                "primary_only": primary_only,
                "with_replica": with_replica,
                "reads_sent_to_the_replica": sent,
                "ratio": ratio(rate(&with_replica), rate(&primary_only)),
            }));
        }
        let mut ratios: Vec<f64> = rounds.iter().filter_map(|r| r["ratio"].as_f64()).collect();
        ratios.sort_by(f64::total_cmp);
        levels.push(json!({
            "connections": connections,
            "rounds": rounds,
            "median_ratio": crate::support::percentile(&ratios, 0.5),
        }));
    }
    split.stop().await?;
    alone.stop().await?;
    pool.close().await;
    drop(pair);
    Ok(json!({
        "scenario": "replica",
        "commitments": args.commitments,
        "assessments_per_commitment": args.assessments_each,
        "seconds_per_run": args.seconds,
        "baseline": "the same list from a server reading the primary only, same clusters, same run",
        "note": "primary, replica, server and load share one machine: the ratio shows the cost of splitting reads, not a replica's added capacity",
        "levels": levels,
    }))
}
