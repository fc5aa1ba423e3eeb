//! Health, readiness and clean shutdown (DESIGN §12), on real server processes where a
//! signal or a database outage is involved.

use crate::helpers::{TestDatabase, spawn_app};
use crate::processes::{PrivateCluster, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Polls `GET {base}{path}` until its status is `want`, failing after 60 s; returns the body.
async fn until_status(base: &str, path: &str, want: u16) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}{path}")).send().await
            && r.status().as_u16() == want
        {
            return r.json().await.unwrap_or(Value::Null);
        }
        assert!(Instant::now() < deadline, "{path} never answered {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn healthz_answers_while_the_process_runs_and_readyz_names_its_checks() {
    let app = spawn_app().await;
    let r = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let body = until_status(&app.address, "/readyz", 200).await;
    assert_eq!(
        body,
        json!({ "status": "ready", "checks": { "database": "ok", "databaseDetail": null,
                "liveFeed": "ok", "logSequencer": "ok" } })
    );
}

#[tokio::test]
async fn readiness_fails_while_the_database_is_unreachable_and_returns_with_it() {
    let cluster = PrivateCluster::start();
    let server = ServerProcess::start(&cluster.url("commitment_tracker")).await;
    until_status(&server.address, "/readyz", 200).await;
    cluster.stop();
    let body = until_status(&server.address, "/readyz", 503).await;
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(body["checks"]["database"], "unavailable", "{body}");
    // The process itself is alive.
    let r = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cluster.start_again();
    until_status(&server.address, "/readyz", 200).await;
    server.kill().await;
}

#[tokio::test]
async fn sigterm_drains_then_completes_subscriptions_closes_with_1001_and_exits_0() {
    let db = TestDatabase::create().await;
    let server = ServerProcess::start_with(
        &db.url,
        "info,sqlx=warn",
        &[("SHUTDOWN_DRAIN_SECS", "3"), ("SHUTDOWN_GRACE_SECS", "10")],
    )
    .await;
    until_status(&server.address, "/readyz", 200).await;

    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "type": "connection_init", "payload": {} })))
        .await
        .unwrap();
    ws.send(send(json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription { ratingChanged { id } }" } })))
        .await
        .unwrap();

    server.terminate();
    // Draining: not ready, while still serving.
    let body = until_status(&server.address, "/readyz", 503).await;
    assert_eq!(body["status"], "stopping", "{body}");
    let r = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Then the subscription completes and the socket closes as going away.
    let (mut completed, mut close) = (false, None);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("the server closes within the drain and grace")
    {
        match message {
            Ok(Message::Text(text)) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                if v["type"] == "complete" && v["id"] == "s" {
                    completed = true;
                }
            }
            Ok(Message::Close(frame)) => {
                close = frame;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("the socket failed instead of closing: {e}"),
        }
    }
    assert!(completed, "the subscription was not completed");
    let frame = close.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
    let status = server.wait().await;
    assert!(status.success(), "exit status {status:?}");
}

/// Runs the binary with `args` and `env`; returns its exit success and standard error.
async fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn start_up_errors_are_said_once_with_the_address_they_concern() {
    let (ok, err) = run_binary(
        &["migrate"],
        &[("DATABASE_URL", "mysql://root@127.0.0.1/x")],
    )
    .await;
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("must be a postgres:// or postgresql:// URL"),
        "{err}"
    );

    let port = crate::processes::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let (ok, err) = run_binary(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("os error"), "{err}");

    let url =
        format!("{}/ct_nobody", crate::helpers::server_url()).replace("postgres@", "no_such_role@");
    let (ok, err) = run_binary(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(!ok);
    assert!(
        err.contains("role \"no_such_role\" does not exist"),
        "{err}"
    );
    assert!(!err.contains("line"), "{err}");

    // The listening address is named when it is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = TestDatabase::create().await;
    let (ok, err) = run_binary(
        &["serve", "--listen", &addr],
        &[
            ("DATABASE_URL", &db.url),
            (
                "LOG_SIGNING_KEY_FILE",
                std::env::temp_dir()
                    .join(format!("ct-taken-{}.key", db.name))
                    .to_str()
                    .unwrap(),
            ),
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test]
async fn a_host_name_listens_and_json_logs_are_one_object_per_line_without_colour() {
    let db = TestDatabase::create().await;
    let server = ServerProcess::start_with(&db.url, "info", &[("LOG_FORMAT", "json")]).await;
    until_status(&server.address, "/readyz", 200).await;
    let log = server.log_text();
    assert!(!log.contains('\u{1b}'), "colour codes in {log}");
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    server.kill().await;

    let (ok, err) = run_binary(&["serve", "--listen", "no.such.host.invalid:1"], &[]).await;
    assert!(!ok);
    assert!(
        err.contains("is not host:port with a host that resolves"),
        "{err}"
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(["serve", "--listen", "localhost:0"])
        .env("DATABASE_URL", &db.url)
        .env(
            "LOG_SIGNING_KEY_FILE",
            std::env::temp_dir().join(format!("ct-localhost-{}.key", db.name)),
        )
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stderr.take().unwrap()));
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("the server serves on localhost");
        // localhost is the loopback address, of either family.
        if line.contains("serving GraphQL at http://127.0.0.1:")
            || line.contains("serving GraphQL at http://[::1]:")
        {
            break;
        }
    }
    child.kill().await.unwrap();
}

/// `/metrics` parsed by Prometheus's reference parser (Python's `prometheus_client`).
async fn scrape(base: &str) -> Value {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stdout = crate::tools::python_stdin("parse_metrics.py", text.as_bytes()).await;
    serde_json::from_slice(&stdout).unwrap()
}

/// The value of the sample `name` with `labels` (0 when absent).
fn sample(families: &Value, family: &str, name: &str, labels: Value) -> f64 {
    families[family]["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s[0] == name
                && labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &s[1][k] == v)
        })
        .map_or(0.0, |s| s[2].as_f64().unwrap())
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_requests() {
    crate::tools::install("python", &[]).await;
    // As `serve` does: the pool's waits reach /metrics through the subscriber.
    commitment_tracker::telemetry::init();
    let app = spawn_app().await;
    // Labelled series exist once something was counted under their labels.
    app.ok("{ __typename }", json!({})).await;
    let before = scrape(&app.address).await;
    for family in [
        "graphql_requests",
        "graphql_request_duration_seconds",
        "event_log_appends",
        "graphql_ws_connections",
        "graphql_subscriptions",
        "db_pool_connections",
        "db_pool_max_connections",
        "db_pool_acquire_wait_seconds",
        "log_integration_lag_seconds",
    ] {
        assert!(before.get(family).is_some(), "no {family} in {before}");
    }
    assert_eq!(before["graphql_requests"]["type"], "counter");
    assert_eq!(
        before["graphql_request_duration_seconds"]["type"],
        "histogram"
    );
    let query = json!({ "operation_type": "query", "outcome": "ok" });
    let mutation = json!({ "operation_type": "mutation", "outcome": "ok" });
    let refused = json!({ "operation_type": "unknown", "outcome": "QUERY_TOO_COMPLEX" });
    let count = |f: &Value, labels: &Value| {
        sample(
            f,
            "graphql_requests",
            "graphql_requests_total",
            labels.clone(),
        )
    };

    app.ok("{ commitments(first: 1) { totalCount } }", json!({}))
        .await;
    app.register("metered").await;
    let deep = format!(
        "{{ {}__typename{} }}",
        "a: commitments { nodes { ".repeat(20),
        " } }".repeat(20)
    );
    let _ = app.post(&deep, json!({}), None).await;

    let after = scrape(&app.address).await;
    assert!(
        count(&after, &query) >= count(&before, &query) + 1.0,
        "{after}"
    );
    assert!(
        count(&after, &mutation) >= count(&before, &mutation) + 1.0,
        "{after}"
    );
    assert!(
        count(&after, &refused) >= count(&before, &refused) + 1.0,
        "{after}"
    );
    let appends = |f: &Value| sample(f, "event_log_appends", "event_log_appends_total", json!({}));
    assert!(appends(&after) >= appends(&before) + 1.0, "{after}");
    let durations = |f: &Value| {
        sample(
            f,
            "graphql_request_duration_seconds",
            "graphql_request_duration_seconds_count",
            json!({ "operation_type": "query" }),
        )
    };
    assert!(durations(&after) >= durations(&before) + 1.0, "{after}");
    let waits = |f: &Value| {
        sample(
            f,
            "db_pool_acquire_wait_seconds",
            "db_pool_acquire_wait_seconds_count",
            json!({}),
        )
    };
    assert!(waits(&after) >= waits(&before) + 1.0, "{after}");
    let lag = sample(
        &after,
        "log_integration_lag_seconds",
        "log_integration_lag_seconds",
        json!({}),
    );
    assert!(lag.is_finite() && lag >= 0.0, "{after}");
    assert_eq!(before["db_pool_acquire_wait_seconds"]["type"], "histogram");
    assert!(
        sample(
            &after,
            "db_pool_connections",
            "db_pool_connections",
            json!({})
        ) >= 1.0
    );
}
