//! Zero configuration: `DATABASE_URL=embedded` runs a private PostgreSQL cluster in
//! `DATA_DIR`, shared by every command with the same `DATA_DIR`, stopped on exit, and keeping
//! its data across restarts.

use crate::processes::ServerProcess;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A short folder of the test's own (a Unix socket's path is at most 107 bytes).
fn data_dir() -> PathBuf {
    let dir = PathBuf::from(format!(
        "/tmp/ct-emb-{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether a postmaster runs for the cluster in `data_dir` (PostgreSQL removes its pid file
/// when it stops).
fn cluster_running(data_dir: &Path) -> bool {
    data_dir.join("postgres/data/postmaster.pid").exists()
}

/// Runs the binary with `args` on the private cluster in `data_dir`: success, stdout, stderr.
async fn command(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(args)
        .env("DATABASE_URL", "embedded")
        .env("DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn graphql(server: &ServerProcess, query: &str, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

const SLUGS: &str = "{ commitments(first: 500) { totalCount nodes { slug } } }";

async fn start(data_dir: &Path, key: &Path, import: bool) -> ServerProcess {
    let data_dir = data_dir.to_str().unwrap();
    let key = key.to_str().unwrap();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/data/nhs-digitisation.json");
    let mut env = vec![("DATA_DIR", data_dir), ("LOG_SIGNING_KEY_FILE", key)];
    if import {
        env.push(("IMPORT_FILE", seed));
    }
    ServerProcess::start_with("embedded", "info,sqlx=warn,tower_http=warn", &env).await
}

#[tokio::test]
async fn an_embedded_cluster_serves_keeps_its_data_across_restarts_and_is_shared_by_commands() {
    let dir = data_dir();
    let key = dir.join("log-signing.key");

    // First start: the cluster is created, the seed imported, and it all served.
    let server = start(&dir, &key, true).await;
    assert!(cluster_running(&dir));
    let first = graphql(&server, SLUGS, None).await;
    let count = first["commitments"]["totalCount"].as_i64().unwrap();
    assert!(count > 0, "{first}");
    server.terminate();
    let log = server.log_text();
    assert!(
        log.contains("creating a private PostgreSQL cluster"),
        "{log}"
    );
    assert!(server.wait().await.success(), "exit 0 after SIGTERM");
    assert!(
        !cluster_running(&dir),
        "the cluster is stopped with the server"
    );

    // Another command with the same DATA_DIR uses the same cluster (starting and stopping it).
    let (ok, token, err) = command(
        &dir,
        &["token", "create", "--role", "admin", "--name", "ops"],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("ct_"), "{token}");
    assert!(!cluster_running(&dir), "{err}");

    // Second start without importing: the same data, and the token made in between works.
    let server = start(&dir, &key, false).await;
    let again = graphql(&server, SLUGS, None).await;
    assert_eq!(again, first);
    let tokens = graphql(&server, "{ tokens { name } }", Some(&token)).await;
    assert!(
        tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "ops"),
        "{tokens}"
    );
    // A command run while the server runs joins the cluster and leaves it running.
    let (ok, list, err) = command(&dir, &["token", "list"], &[]).await;
    assert!(ok, "{err}");
    assert!(list.contains("ops"), "{list}");
    assert!(cluster_running(&dir));
    assert_eq!(graphql(&server, SLUGS, None).await, first, "still served");
    server.terminate();
    assert!(server.wait().await.success());
    assert!(!cluster_running(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_postgresql_binaries_the_error_names_what_is_missing() {
    let dir = data_dir();
    let (ok, _, err) = command(&dir, &["migrate"], &[("PG_BIN_DIR", "/nonexistent/bin")]).await;
    assert!(!ok);
    assert!(
        err.contains("PG_BIN_DIR is /nonexistent/bin but initdb and pg_ctl are not there"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
