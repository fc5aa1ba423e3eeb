//! Benchmarks of commitment-tracker. Each scenario creates a fresh database, starts the server
//! in a child process, drives it over real HTTP and WebSocket with a closed-loop load
//! generator that checks every answer, measures its own ceiling in the same run (so ratios
//! hold on a noisy machine), and prints one JSON object.
//!
//! ```text
//! cargo run --release --locked --bin bench -- <scenario> [flags]
//!
//! append      [--clients 1,8,32,64] [--seconds 5] [--commitments 256]
//! read        [--connections 1,32] [--seconds 5] [--commitments 50] [--assessments 20]
//!             [--pages-over 1000]
//! fanout      [--subscribers 1000,5000,10000] [--rounds 5]
//! rebuild     [--events 1000000]
//! timetravel  [--events 10000] [--queries 200]
//! ordering    [--writers 32] [--appends 200]
//! log         [--clients 32] [--seconds 10] [--rounds 2] [--leaves 1000000] [--proofs 2000]
//!             [--new-events 1000]
//! export      [--events 100000]
//! replica     [--connections 1,32] [--seconds 5] [--rounds 3] [--commitments 50]
//!             [--assessments 20]
//! all         every scenario but ordering, log, export and replica, with its defaults
//! ```
//!
//! `BENCH_DATABASE_URL` names the PostgreSQL server (no database name; default
//! `postgres://postgres@127.0.0.1:5432`). `BENCH_SERVER_LOG` sets the server's `RUST_LOG`
//! (default `warn`).
#![forbid(unsafe_code)]

mod append;
mod export;
mod fanout;
mod floor;
mod log;
mod ordering;
mod read;
mod rebuild;
mod replica;
mod support;
mod timetravel;

use anyhow::Context;

/// mimalloc: the server allocates many small, short-lived objects per request from several
/// threads, where it is measurably faster than the system allocator (see README,
/// Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::collections::HashMap;

/// `--name value` flags, each read once by the scenario that knows it.
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .with_context(|| format!("expected a --flag, got {flag}"))?;
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Self(map))
    }

    fn usize(&mut self, name: &str, default: usize) -> anyhow::Result<usize> {
        self.0.remove(name).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--{name} must be a whole number"))
        })
    }

    fn f64(&mut self, name: &str, default: f64) -> anyhow::Result<f64> {
        self.0.remove(name).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--{name} must be a number"))
        })
    }

    fn list(&mut self, name: &str, default: &[usize]) -> anyhow::Result<Vec<usize>> {
        self.0.remove(name).map_or(Ok(default.to_vec()), |v| {
            v.split(',')
                .map(|n| n.trim().parse())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--{name} must be a comma-separated list of numbers"))
        })
    }

    /// Fails on any flag no scenario read.
    fn finish(self) -> anyhow::Result<()> {
        if let Some(name) = self.0.keys().next() {
            anyhow::bail!("unknown flag --{name} for this scenario");
        }
        Ok(())
    }
}

fn append_args(f: &mut Flags) -> anyhow::Result<append::AppendArgs> {
    Ok(append::AppendArgs {
        clients: f.list("clients", &[1, 8, 32, 64])?,
        seconds: f.f64("seconds", 5.0)?,
        commitments: f.usize("commitments", 256)?,
    })
}

fn read_args(f: &mut Flags) -> anyhow::Result<read::ReadArgs> {
    Ok(read::ReadArgs {
        connections: f.list("connections", &[1, 32])?,
        seconds: f.f64("seconds", 5.0)?,
        commitments: f.usize("commitments", 50)?,
        assessments_each: f.usize("assessments", 20)?,
        pages_over: f.usize("pages-over", 1000)?,
    })
}

fn fanout_args(f: &mut Flags) -> anyhow::Result<fanout::FanoutArgs> {
    Ok(fanout::FanoutArgs {
        subscribers: f.list("subscribers", &[1000, 5000, 10000])?,
        rounds: f.usize("rounds", 5)?,
    })
}

fn rebuild_args(f: &mut Flags) -> anyhow::Result<rebuild::RebuildArgs> {
    Ok(rebuild::RebuildArgs {
        events: f.usize("events", 1_000_000)?,
    })
}

fn timetravel_args(f: &mut Flags) -> anyhow::Result<timetravel::TimeTravelArgs> {
    Ok(timetravel::TimeTravelArgs {
        events: f.usize("events", 10_000)?,
        queries: f.usize("queries", 200)?,
    })
}

fn log_args(f: &mut Flags) -> anyhow::Result<log::LogArgs> {
    Ok(log::LogArgs {
        clients: f.usize("clients", 32)?,
        seconds: f.f64("seconds", 10.0)?,
        rounds: f.usize("rounds", 2)?,
        leaves: f.usize("leaves", 1_000_000)?,
        proofs: f.usize("proofs", 2000)?,
        new_events: f.usize("new-events", 1000)?,
    })
}

const USAGE: &str = "usage: bench <append|read|fanout|rebuild|timetravel|ordering|log|export|replica|all> [--flag value ...]";

async fn run(scenario: &str, mut flags: Flags, server: &str) -> anyhow::Result<()> {
    let print = |v: serde_json::Value| println!("{v}");
    match scenario {
        "append" => {
            let a = append_args(&mut flags)?;
            flags.finish()?;
            print(append::run(server, &a).await?);
        }
        "read" => {
            let a = read_args(&mut flags)?;
            flags.finish()?;
            print(read::run(server, &a).await?);
        }
        "fanout" => {
            let a = fanout_args(&mut flags)?;
            flags.finish()?;
            print(fanout::run(server, &a).await?);
        }
        "rebuild" => {
            let a = rebuild_args(&mut flags)?;
            flags.finish()?;
            print(rebuild::run(server, &a).await?);
        }
        "timetravel" => {
            let a = timetravel_args(&mut flags)?;
            flags.finish()?;
            print(timetravel::run(server, &a).await?);
        }
        "ordering" => {
            let writers = flags.usize("writers", 32)?;
            let appends = flags.usize("appends", 200)?;
            flags.finish()?;
            print(ordering::run(server, writers, appends).await?);
        }
        "export" => {
            let events = flags.usize("events", 100_000)?;
            flags.finish()?;
            print(export::run(server, &export::ExportArgs { events }).await?);
        }
        "replica" => {
            let a = replica::ReplicaArgs {
                connections: flags.list("connections", &[1, 32])?,
                seconds: flags.f64("seconds", 5.0)?,
                rounds: flags.usize("rounds", 3)?,
                commitments: flags.usize("commitments", 50)?,
                assessments_each: flags.usize("assessments", 20)?,
            };
            flags.finish()?;
            print(replica::run(&a).await?);
        }
        "log" => {
            let a = log_args(&mut flags)?;
            flags.finish()?;
            print(log::run(server, &a).await?);
        }
        "all" => {
            flags.finish()?;
            let mut none = Flags(HashMap::new());
            print(append::run(server, &append_args(&mut none)?).await?);
            print(read::run(server, &read_args(&mut none)?).await?);
            print(fanout::run(server, &fanout_args(&mut none)?).await?);
            print(rebuild::run(server, &rebuild_args(&mut none)?).await?);
            print(timetravel::run(server, &timetravel_args(&mut none)?).await?);
        }
        other => anyhow::bail!("unknown scenario {other}; {USAGE}"),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().context(USAGE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if scenario == support::SERVE_CHILD {
        return runtime.block_on(support::serve_child());
    }
    if scenario == support::FLOOR_CHILD {
        return runtime.block_on(floor::floor_child());
    }
    let flags = Flags::parse(args)?;
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    runtime.block_on(run(&scenario, flags, &server))
}
