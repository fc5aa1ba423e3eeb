//! The server driven by the tools people point at a GraphQL API first, each installed by the
//! test itself: Apollo Client, graphql-http's GraphQL-over-HTTP audit, GraphiQL in headless
//! Chromium with every other host blocked, and Python's gql.

use crate::helpers::{TestApp, seed_file, spawn_app};
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub fn tests_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Runs `install.sh` of a tests folder (with `args`), waiting for a concurrent one.
pub async fn install(folder: &str, args: &[&str]) {
    let script = tests_dir(folder).join("install.sh");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(&script)
            .args(&args)
            .status()
            .expect("bash runs")
    })
    .await
    .unwrap();
    assert!(status.success(), "installing the {folder} clients failed");
}

/// Runs a Python script of tests/python in its virtual environment with `input` on standard
/// input, returning its standard output; fails the test with its errors when it fails.
pub async fn python_stdin(script: &str, input: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(tests_dir("python").join(".venv/bin/python"))
        .arg(tests_dir("python").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// An app with the NHS data loaded.
pub async fn seeded_app() -> TestApp {
    let app = spawn_app().await;
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    app
}

/// Runs a client program against `app`; returns the JSON lines it printed, failing the test
/// with its output when it fails.
pub async fn run_client(
    app: &TestApp,
    program: &Path,
    script: &Path,
    env: &[(&str, String)],
) -> Vec<serde_json::Value> {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .env("SERVER_URL", &app.address)
        .env("TOKEN", &app.admin_token)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the client finishes")
        .expect("the client starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect()
}

fn checks(reports: &[serde_json::Value]) -> Vec<&str> {
    reports.iter().filter_map(|r| r["check"].as_str()).collect()
}

#[tokio::test]
async fn apollo_client_queries_mutates_subscribes_and_uses_persisted_queries() {
    install("node", &[]).await;
    let app = seeded_app().await;
    let reports = run_client(
        &app,
        Path::new("node"),
        &tests_dir("node").join("apollo.mjs"),
        &[],
    )
    .await;
    assert_eq!(
        checks(&reports),
        [
            "query",
            "mutation with a token",
            "subscription receives it",
            "persisted query miss then hit over POST",
            "persisted query miss then hit over GET",
        ]
    );
}

#[tokio::test]
async fn the_graphql_over_http_audit_finds_no_error_and_no_warning() {
    install("node", &[]).await;
    let app = spawn_app().await;
    let reports = run_client(
        &app,
        Path::new("node"),
        &tests_dir("node").join("audit.mjs"),
        &[],
    )
    .await;
    let summary = &reports.last().unwrap()["summary"];
    assert_eq!(summary["error"], 0, "{reports:?}");
    assert_eq!(summary["warn"], 0, "{reports:?}");
    assert!(summary["ok"].as_u64().unwrap() >= 50, "{reports:?}");
}

/// The README's first GraphQL example.
fn readme_query() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```graphql\n").expect("a GraphQL example") + "```graphql\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_owned()
}

#[tokio::test]
async fn graphiql_runs_in_chromium_from_this_server_alone() {
    install("node", &["--browser"]).await;
    let app = seeded_app().await;
    let reports = run_client(
        &app,
        Path::new("node"),
        &tests_dir("node").join("graphiql.mjs"),
        &[("README_QUERY", readme_query())],
    )
    .await;
    assert_eq!(
        checks(&reports),
        [
            "page renders",
            "docs pane lists the root types",
            "the README's query answers",
            "a typed subscription shows an assessment made meanwhile",
            "no request left this server",
        ]
    );
}

#[tokio::test]
async fn python_gql_fetches_the_schema_queries_and_subscribes_in_both_protocols() {
    install("python", &[]).await;
    let app = seeded_app().await;
    let python = tests_dir("python").join(".venv/bin/python");
    let reports = run_client(
        &app,
        &python,
        &tests_dir("python").join("gql_client.py"),
        &[],
    )
    .await;
    assert_eq!(
        checks(&reports),
        [
            "schema fetched over HTTP",
            "query over HTTP",
            "subscription over WebsocketsTransport (graphql-transport-ws)",
            "subscription over WebsocketsTransport (graphql-ws)",
            "subscription over WebsocketsTransport (default)",
        ]
    );
}
