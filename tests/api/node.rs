//! The delivery scenarios again, with the `graphql-ws` client library from npm, so that the
//! guarantees hold for a real-world client and not only for the Rust test client. The script
//! asks for each fault on standard output and this test injects it.

use crate::helpers::{TestDatabase, server_url};
use crate::processes::ServerProcess;
use commitment_tracker::auth::Role;
use commitment_tracker::store::{self, tokens};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Installs the script's locked dependencies once (npm ci), if they are not there yet.
fn install_node_dependencies(dir: &Path) {
    if dir.join("node_modules/graphql-ws").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is installed");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test]
async fn the_graphql_ws_client_library_sees_every_change_once_across_processes_and_faults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let install_dir = dir.clone();
    tokio::task::spawn_blocking(move || install_node_dependencies(&install_dir))
        .await
        .unwrap();

    let db = TestDatabase::create().await;
    let writer = ServerProcess::start(&db.url).await;
    let mut reader = Some(ServerProcess::start(&db.url).await);
    let pool = store::connect(&db.url, 2).await.unwrap();
    let (_, token) = tokens::create(&pool, "node-client", Role::Admin, None)
        .await
        .unwrap();
    let admin = store::connect(&format!("{}/postgres", server_url()), 1)
        .await
        .unwrap();

    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("scenarios.mjs"))
        .env("WRITER_URL", &writer.address)
        .env("READER_WS_URL", reader.as_ref().unwrap().ws_url())
        .env("TOKEN", &token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is installed");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut reports = Vec::new();
    while let Some(line) =
        tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
            .await
            .expect("the script makes progress")
            .unwrap()
    {
        let message: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let answer = match message["await"].as_str() {
            None => {
                reports.push(message);
                continue;
            }
            Some("terminate-backends") => {
                let cut: Vec<bool> = sqlx::query_scalar(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
                )
                .bind(&db.name)
                .fetch_all(&admin)
                .await
                .unwrap();
                assert!(!cut.is_empty());
                "done".to_owned()
            }
            Some("restart-reader") => {
                reader.take().unwrap().kill().await;
                let reborn = ServerProcess::start(&db.url).await;
                let url = reborn.ws_url();
                reader = Some(reborn);
                url
            }
            Some(other) => panic!("unknown fault {other}"),
        };
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .unwrap();
    }
    let output = node.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "node scenarios failed: {reports:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "every scenario reported: {reports:?}");
    println!("{reports:?}");
}
