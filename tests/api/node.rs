//! The delivery scenarios again, with the `graphql-ws` client library from npm, so that the
//! guarantees hold for a real-world client and not only for the Rust test client.

use crate::helpers::TestDatabase;
use crate::processes::ServerProcess;
use commitment_tracker::auth::Role;
use commitment_tracker::store::{self, tokens};
use std::path::Path;
use std::process::Command;

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
async fn the_graphql_ws_client_library_sees_every_change_once_across_processes_and_reconnects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let install_dir = dir.clone();
    tokio::task::spawn_blocking(move || install_node_dependencies(&install_dir))
        .await
        .unwrap();

    let db = TestDatabase::create().await;
    let writer = ServerProcess::start(&db.url).await;
    let reader = ServerProcess::start(&db.url).await;
    let pool = store::connect(&db.url, 2).await.unwrap();
    let (_, token) = tokens::create(&pool, "node-client", Role::Admin, None)
        .await
        .unwrap();

    let output = tokio::process::Command::new("node")
        .arg(dir.join("scenarios.mjs"))
        .env("WRITER_URL", &writer.address)
        .env("READER_WS_URL", reader.ws_url())
        .env("TOKEN", &token)
        .output()
        .await
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node scenarios failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        2,
        "both scenarios reported: {stdout}"
    );
    println!("{stdout}");
}
