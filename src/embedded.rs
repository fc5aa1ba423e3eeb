//! Zero configuration (DESIGN §12): a private PostgreSQL cluster run from the machine's own
//! server programs, with its data, socket and log under `DATA_DIR/postgres`.
//!
//! The cluster listens on a Unix socket in that folder only (no TCP port, so nothing can
//! clash with another server and nothing off the machine can reach it), with `trust`
//! authentication, which the folder's mode (0700) confines to its owner. Every command with
//! the same `DATA_DIR` uses the same cluster: the first one to need it starts it, and the one
//! that started it stops it when it exits; a command that finds it running leaves it so.
//!
//! PostgreSQL refuses to run as root; run as root, the cluster is created and run as the
//! `postgres` user (or `nobody` where there is none), through `runuser`.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database the server uses in the private cluster.
pub const DATABASE: &str = "commitment_tracker";

/// The port number of the cluster's socket (`.s.PGSQL.5432`); no TCP port is opened.
const SOCKET_PORT: u16 = 5432;

/// The longest path of a Unix socket (`sun_path` less its terminating zero).
const MAX_SOCKET_PATH: usize = 107;

/// A private cluster in use by this process.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin: PathBuf,
    folder: PathBuf,
    run_as: Option<String>,
    /// Whether this process started it (and so stops it).
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `data_dir` if it does not exist yet and starts it if it is
    /// not running.
    pub fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create DATA_DIR {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("DATA_DIR {}", data_dir.display()))?;
        let folder = data_dir.join("postgres");
        let socket = folder.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "DATA_DIR {} is too deep for PostgreSQL's socket ({} characters at most with \
                 /postgres/.s.PGSQL.{SOCKET_PORT}); choose a shorter DATA_DIR",
                data_dir.display(),
                MAX_SOCKET_PATH
            );
        }
        let run_as = is_root().then(unprivileged_user);
        let cluster = EmbeddedPostgres {
            bin,
            folder,
            run_as,
            started_here: false,
        };
        cluster.prepare_folder()?;
        if !cluster.data().join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        cluster.ensure_running()
    }

    /// The URL of `database` in the cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost/{database}?host={}&port={SOCKET_PORT}",
            percent_encode(&self.folder.to_string_lossy())
        )
    }

    /// Whether this process started the cluster (and will stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    fn data(&self) -> PathBuf {
        self.folder.join("data")
    }

    fn log(&self) -> PathBuf {
        self.folder.join("postgres.log")
    }

    /// The folder, owned by the user the cluster runs as, closed to everyone else.
    fn prepare_folder(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.folder)
            .with_context(|| format!("cannot create {}", self.folder.display()))?;
        if let Some(user) = &self.run_as {
            let folder = self.folder.to_string_lossy();
            run(
                "chown",
                Command::new("chown").args(["-R", &format!("{user}:"), &folder]),
            )?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.folder, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", self.folder.display()))?;
        Ok(())
    }

    /// A command running PostgreSQL's program `name`, as the cluster's user.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(folder = %self.folder.display(), "creating a private PostgreSQL cluster");
        let data = self.data();
        run(
            "initdb",
            self.tool("initdb")
                .args(["-D", &data.to_string_lossy()])
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--locale=C.UTF-8"]),
        )?;
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.tool("pg_ctl")
            .args(["status", "-D", &self.data().to_string_lossy()])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn ensure_running(mut self) -> anyhow::Result<Self> {
        if self.is_running() {
            tracing::info!(folder = %self.folder.display(), "using the private PostgreSQL cluster already running");
            return Ok(self);
        }
        let options = format!(
            "-c listen_addresses='' -k {} -p {SOCKET_PORT}",
            quote_option(&self.folder.to_string_lossy())
        );
        let started = run(
            "pg_ctl start",
            self.tool("pg_ctl")
                .args(["start", "-w", "-t", "120"])
                .args(["-D", &self.data().to_string_lossy()])
                .args(["-l", &self.log().to_string_lossy()])
                .args(["-o", &options]),
        );
        match started {
            Ok(_) => {
                tracing::info!(folder = %self.folder.display(), "started a private PostgreSQL cluster");
                self.started_here = true;
                Ok(self)
            }
            // Another command with the same DATA_DIR started it first.
            Err(_) if self.is_running() => Ok(self),
            Err(e) => Err(e.context(format!(
                "the private PostgreSQL cluster did not start; its log is {}",
                self.log().display()
            ))),
        }
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.started_here) {
            return;
        }
        let stopped = run(
            "pg_ctl stop",
            self.tool("pg_ctl")
                .args(["stop", "-w", "-m", "fast"])
                .args(["-D", &self.data().to_string_lossy()]),
        );
        match stopped {
            Ok(_) => tracing::info!("stopped the private PostgreSQL cluster"),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot stop the private PostgreSQL cluster")
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `command`, turning a failure into an error quoting its output.
fn run(what: &str, command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what} ({:?})", command.get_program()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let text = if text.trim().is_empty() {
            String::from_utf8_lossy(&output.stdout)
        } else {
            text
        };
        bail!("{what} failed ({}): {}", output.status, text.trim());
    }
    Ok(output)
}

/// The folder of PostgreSQL's server programs: `PG_BIN_DIR` if set, else `pg_config
/// --bindir`, else the newest `/usr/lib/postgresql/*/bin`, else the `PATH`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN_DIR is {} but initdb and pg_ctl are not there",
            dir.display()
        );
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    first_with_tools(
        from_pg_config
            .into_iter()
            .chain(versions.into_iter().rev().map(|(_, dir)| dir))
            .chain(on_path),
    )
}

fn has_tools(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The first of `candidates` holding initdb and pg_ctl, or the error saying none does.
fn first_with_tools(mut candidates: impl Iterator<Item = PathBuf>) -> anyhow::Result<PathBuf> {
    candidates.find(|dir| has_tools(dir)).ok_or_else(|| {
        anyhow::anyhow!(
            "DATABASE_URL=embedded needs PostgreSQL's server programs (initdb and pg_ctl), \
                 and none were found (by `pg_config --bindir`, under /usr/lib/postgresql/*/bin \
                 or on PATH). Install them (Debian, Ubuntu: apt-get install postgresql), set \
                 PG_BIN_DIR to their folder, or set DATABASE_URL to a running server"
        )
    })
}

/// Whether this process runs as root (PostgreSQL's programs refuse to).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The user a root process runs the cluster as.
fn unprivileged_user() -> String {
    let exists = |user: &str| {
        Command::new("id")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if exists("postgres") {
        "postgres".into()
    } else {
        "nobody".into()
    }
}

/// `s` safe in a URL's query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `s` as one word of a postgres command line (`pg_ctl -o`).
fn quote_option(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn socket_folders_are_encoded_into_the_url() {
        let cluster = EmbeddedPostgres {
            bin: PathBuf::new(),
            folder: PathBuf::from("/tmp/a b/postgres"),
            run_as: None,
            started_here: false,
        };
        let options = sqlx::postgres::PgConnectOptions::from_str(&cluster.url(DATABASE)).unwrap();
        assert_eq!(
            options.get_socket().map(|p| p.to_path_buf()),
            Some(PathBuf::from("/tmp/a b/postgres"))
        );
        assert_eq!(options.get_database(), Some(DATABASE));
        assert_eq!(options.get_port(), SOCKET_PORT);
    }

    #[test]
    fn no_postgresql_programs_is_an_error_saying_what_to_install() {
        let err =
            first_with_tools([PathBuf::from("/nonexistent"), PathBuf::from("/tmp")].into_iter())
                .unwrap_err()
                .to_string();
        assert!(err.contains("initdb and pg_ctl"), "{err}");
        assert!(err.contains("apt-get install postgresql"), "{err}");
        assert!(err.contains("PG_BIN_DIR"), "{err}");
        let found = find_bin_dir().expect("this machine has PostgreSQL's programs");
        assert!(has_tools(&found), "{}", found.display());
    }

    #[test]
    fn options_are_quoted_for_the_postgres_command_line() {
        assert_eq!(quote_option("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
