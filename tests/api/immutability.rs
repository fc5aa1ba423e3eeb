//! The database itself refuses to change or remove an event: tried with psql, as an operator
//! with full rights would.

use crate::helpers::spawn_app;
use std::process::Command;

fn psql(url: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn psql_cannot_update_delete_or_truncate_events() {
    let app = spawn_app().await;
    let id = app.register("epr-90-percent-trusts").await;
    app.assess(&id, "GOOD", "2023-11-15").await;
    let url = app.db.url.clone();
    let before = app.event_count().await;
    for sql in [
        "update events set payload = '{}'::jsonb",
        "update events set recorded_at = now() where version = 1",
        "delete from events",
        "delete from events where version = 2",
        "truncate events",
    ] {
        let (ok, stderr) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || psql(&url, sql)
        })
        .await
        .unwrap();
        assert!(!ok, "{sql} succeeded");
        assert!(stderr.contains("events are immutable"), "{sql}: {stderr}");
    }
    assert_eq!(app.event_count().await, before);
    // Inserting directly is possible for the owner, but it cannot take a used version.
    let (ok, stderr) = tokio::task::spawn_blocking(move || {
        psql(
            &url,
            "insert into events (event_id, stream_id, stream_type, version, event_type, schema_version,
                                 payload, metadata, occurred_at, recorded_at, previous_hash, hash)
             select gen_random_uuid(), stream_id, stream_type, 2, event_type, schema_version, payload,
                    metadata, occurred_at, recorded_at, previous_hash, hash
             from events where version = 2",
        )
    })
    .await
    .unwrap();
    assert!(
        !ok && stderr.contains("events_stream_version_key"),
        "{stderr}"
    );
}
