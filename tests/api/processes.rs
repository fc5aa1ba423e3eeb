//! Real server processes and a private PostgreSQL cluster, for the fault tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `commitment-tracker serve` process.
pub struct ServerProcess {
    child: Child,
    pub address: String,
    /// Every line the server has logged so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary on a free port against `database_url` and waits until it serves.
    pub async fn start(database_url: &str) -> Self {
        Self::start_logging(database_url, "info,sqlx=warn,tower_http=warn").await
    }

    /// Like [`ServerProcess::start`], with `RUST_LOG` set to `filter`.
    pub async fn start_logging(database_url: &str, filter: &str) -> Self {
        Self::start_with(database_url, filter, &[]).await
    }

    /// Like [`ServerProcess::start_logging`], with more environment variables.
    pub async fn start_with(database_url: &str, filter: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .env("FEED_POLL_INTERVAL_MS", "1000")
            // One log key per database, shared by the processes that serve it.
            .env(
                "LOG_SIGNING_KEY_FILE",
                std::env::temp_dir().join(format!(
                    "ct-log-{}.key",
                    database_url.rsplit('/').next().unwrap_or_default()
                )),
            )
            // Every test's client is one address driving the server hard; the limits have tests
            // of their own (tests/api/ratelimit.rs), which set them.
            .env("RATE_LIMIT_PER_IP", "0")
            .env("RATE_LIMIT_PER_TOKEN", "0")
            // The caller's settings last, so that they override the ones above.
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server binary");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let address = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("the server starts within a minute")
                .unwrap()
                .expect("the server exited before serving");
            log.lock().unwrap().push(line.clone());
            if let Some(at) = line.find("serving GraphQL at http://") {
                let rest = &line[at + "serving GraphQL at ".len()..];
                break rest[..rest.find("/graphql").unwrap()].to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            address,
            log,
        }
    }

    /// The WebSocket address of the subscriptions endpoint.
    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.address.replace("http://", "ws://"))
    }

    /// Every line the server has logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Sends SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
    }

    /// Waits (at most a minute) for the process to exit, and returns how it did.
    pub async fn wait(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("the server exits within a minute")
            .unwrap()
    }

    /// Kills the process at once (SIGKILL: no graceful shutdown) and waits for it to end.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up here), so that no
    // outgoing connection or `bind(:0)` of another test can take the port while the cluster
    // restarts on it; free when chosen.
    let range = 20_000..32_000u32;
    let seed = uuid::Uuid::now_v7().as_u128() as u32 ^ std::process::id();
    (0..range.len() as u32)
        .map(|i| {
            (range.start + (seed.wrapping_add(i.wrapping_mul(7919))) % range.len() as u32) as u16
        })
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| panic!("{name} not found"))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the server refuses root).
fn pg_tool(name: &str, args: &[&str]) -> std::process::Output {
    let bin = pg_bin(name);
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let out = cmd.args(args).output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A PostgreSQL cluster of the test's own, in a temporary folder on a free port, so that it
/// can be restarted without touching the server other tests use.
pub struct PrivateCluster {
    dir: PathBuf,
    pub port: u16,
    /// Settings given to the server at every start (`-c name=value …`).
    settings: String,
}

/// A folder for a cluster, owned by the user the server runs as.
fn cluster_folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ct-pg-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        let ok = std::process::Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown the cluster folder to postgres");
    }
    dir
}

impl PrivateCluster {
    /// Creates and starts the cluster.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Creates and starts a cluster with these server settings (`-c name=value …`).
    pub fn start_with(settings: &str) -> Self {
        let dir = cluster_folder();
        let data = dir.join("data");
        pg_tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let cluster = Self {
            dir,
            port: free_port(),
            settings: settings.to_owned(),
        };
        cluster.pg_ctl("start");
        cluster
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`: it follows the primary's
    /// write-ahead log and answers reads), started with these settings.
    pub fn replica_of(primary: &PrivateCluster, settings: &str) -> Self {
        let dir = cluster_folder();
        let data = dir.join("data");
        let port = primary.port.to_string();
        pg_tool(
            "pg_basebackup",
            &[
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "--no-sync",
                "--checkpoint=fast",
            ],
        );
        let cluster = Self {
            dir,
            port: free_port(),
            settings: settings.to_owned(),
        };
        cluster.pg_ctl("start");
        cluster
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.display(),
            self.settings
        );
        let mut args = vec![
            action,
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
        ];
        if action != "stop" {
            args.extend(["-o", &options]);
        }
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        pg_tool("pg_ctl", &args);
    }

    /// Stops the cluster (fast shutdown: every connection is cut).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts the stopped cluster again.
    pub fn start_again(&self) {
        self.pg_ctl("start");
    }

    /// Restarts the cluster (fast shutdown: every connection is cut).
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    /// A database URL on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn folder(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Never panic here: the test may already be failing.
        let data = self.dir.join("data");
        let bin = pg_bin("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let _ = cmd
            .args([
                "stop",
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
            ])
            .output();
        let _ = std::fs::remove_dir_all(self.folder());
    }
}
