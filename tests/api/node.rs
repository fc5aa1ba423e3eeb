//! The delivery scenarios again, with the `graphql-ws` client library from npm, so that the
//! guarantees hold for a real-world client and not only for the Rust test client. The script
//! asks for each fault on standard output and this test injects it.

use crate::processes::{PrivateCluster, ServerProcess};
use commitment_tracker::auth::Role;
use commitment_tracker::store::{self, tokens};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test]
async fn the_graphql_ws_client_library_sees_every_change_once_across_processes_and_faults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    crate::tools::install("node", &[]).await;

    // A cluster of the test's own, so that one scenario can restart it.
    let cluster = std::sync::Arc::new(PrivateCluster::start());
    let url = cluster.url("commitment_tracker");
    let writer = ServerProcess::start(&url).await;
    let mut reader = Some(ServerProcess::start(&url).await);
    let pool = store::connect(&url, 2).await.unwrap();
    let (_, token) = tokens::create(&pool, "node-client", Role::Admin, None)
        .await
        .unwrap();
    pool.close().await;
    let admin_url = cluster.url("postgres");

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
    let mut held: Option<sqlx::Transaction<'static, sqlx::Postgres>> = None;
    let held_pool = store::connect(&url, 2).await.unwrap();
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
                let admin = store::connect(&admin_url, 1).await.unwrap();
                let cut: Vec<bool> = sqlx::query_scalar(
                    "select pg_terminate_backend(pid) from pg_stat_activity
                     where datname = 'commitment_tracker'",
                )
                .fetch_all(&admin)
                .await
                .unwrap();
                admin.close().await;
                assert!(!cut.is_empty());
                "done".to_owned()
            }
            Some(hold) if hold.starts_with("hold-transaction ") => {
                // Append an assessment of A and keep the transaction open.
                let stream: uuid::Uuid = hold["hold-transaction ".len()..].parse().unwrap();
                let mut tx = held_pool.begin().await.unwrap();
                let head = commitment_tracker::store::event_store::lock_stream(
                    &mut tx,
                    stream,
                    commitment_tracker::domain::StreamType::Commitment,
                )
                .await
                .unwrap()
                .unwrap();
                let on = chrono::NaiveDate::from_ymd_opt(2023, 2, 17).unwrap();
                let event = commitment_tracker::domain::DomainEvent::Commitment(
                    commitment_tracker::domain::commitment::CommitmentEvent::Assessed(
                        commitment_tracker::domain::commitment::CommitmentAssessed {
                            assessment_id: uuid::Uuid::now_v7(),
                            assessor: "Held".into(),
                            assessor_kind: commitment_tracker::domain::rating::AssessorKind::Other,
                            assessed_on: on,
                            overall: None,
                            aspects: Default::default(),
                            delivery_status:
                                commitment_tracker::domain::rating::DeliveryStatus::NotAssessed,
                            rationale: "held".into(),
                            evidence_ids: vec![],
                            evaluation: None,
                        },
                    ),
                );
                let meta = commitment_tracker::store::event_store::Metadata {
                    actor: "held".into(),
                    role: "admin".into(),
                    request_id: None,
                    idempotency_key: None,
                };
                let stored = commitment_tracker::store::event_store::append(
                    &mut tx,
                    &head,
                    &[(event.clone(), on)],
                    &meta,
                )
                .await
                .unwrap();
                commitment_tracker::store::projections::apply(&mut tx, &stored[0], &event)
                    .await
                    .unwrap();
                held = Some(tx);
                "held".to_owned()
            }
            Some("commit-held") => {
                held.take()
                    .expect("a held transaction")
                    .commit()
                    .await
                    .unwrap();
                "done".to_owned()
            }
            Some("restart-postgres") => {
                // No connection of ours may hold the restart up.
                held_pool.close().await;
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.restart())
                    .await
                    .unwrap();
                "done".to_owned()
            }
            Some("restart-reader") => {
                reader.take().unwrap().kill().await;
                let reborn = ServerProcess::start(&url).await;
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
    assert_eq!(names.len(), 6, "every scenario reported: {reports:?}");
    println!("{reports:?}");
}
