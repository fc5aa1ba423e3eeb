//! The transparency log over real HTTP (DESIGN §10): checkpoints signed with the served key,
//! leaves and proofs through GraphQL, tiles that rebuild the tree, bad input refused.

use crate::helpers::{TestApp, eventually, seed_file, spawn_app_with};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use commitment_tracker::seed;
use commitment_tracker::tlog::checkpoint::{self, VerifiedCheckpoint};
use commitment_tracker::tlog::leaf::commitment_in;
use commitment_tracker::tlog::tiles::parse_entry_bundle;
use commitment_tracker::tlog::tree::{self, Hash, MemoryTree};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn seeded_log() -> TestApp {
    let app = spawn_app_with(|s| {
        s.log.checkpoint_interval = Duration::ZERO;
        s.log.sequence_interval = Duration::from_millis(20);
    })
    .await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    app
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

/// Waits (bounded) until the served checkpoint covers every event, and returns it verified.
async fn checkpoint_of_everything(app: &TestApp) -> (VerifiedCheckpoint, String, String) {
    let vkey = get(app, "/log/key").await.text().await.unwrap();
    let vkey = vkey.trim().to_owned();
    let events = app.event_count().await as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = get(app, "/log/checkpoint").await;
        if response.status() == 200 {
            assert_eq!(response.headers()["cache-control"], "no-cache");
            let note = response.text().await.unwrap();
            let verified = checkpoint::verify(note.as_bytes(), &vkey).expect("signed by the key");
            if verified.size == events {
                return (verified, note, vkey);
            }
            assert!(verified.size < events, "a checkpoint beyond the log");
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {events} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn hash(b64: &Value) -> Hash {
    Hash(
        STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

#[tokio::test]
async fn every_event_is_a_leaf_whose_inclusion_proof_verifies_against_the_signed_checkpoint() {
    let app = seeded_log().await;
    let (checkpoint, note, vkey) = checkpoint_of_everything(&app).await;
    assert!(
        vkey.starts_with(&format!("{}+", checkpoint.origin)),
        "{vkey}"
    );
    let data = app
        .ok(
            "{ checkpoint { origin size rootHash note }
               events(first: 500) { nodes { id type leafIndex leaf inclusionProof { leafIndex treeSize hashes } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["checkpoint"]["note"], note.as_str());
    assert_eq!(data["checkpoint"]["size"], checkpoint.size);
    assert_eq!(data["checkpoint"]["origin"], checkpoint.origin.as_str());
    assert_eq!(hash(&data["checkpoint"]["rootHash"]), checkpoint.root);
    let nodes = data["events"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len() as u64, checkpoint.size);
    for (i, node) in nodes.iter().enumerate() {
        // Committed order is leaf order, from 0 without gaps.
        assert_eq!(node["leafIndex"], i, "{node}");
        let leaf = STANDARD.decode(node["leaf"].as_str().unwrap()).unwrap();
        let parsed: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(parsed["id"], node["id"]);
        assert_eq!(parsed["type"], node["type"]);
        assert!(
            commitment_in(&parsed["metadata"]["actor"]).is_some(),
            "{parsed}"
        );
        if node["type"] == "EvidenceSubmitted" {
            assert!(commitment_in(&parsed["payload"]["submittedBy"]).is_some());
        }
        let proof = &node["inclusionProof"];
        assert_eq!(proof["treeSize"], checkpoint.size);
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        tree::check_inclusion(
            &hashes,
            checkpoint.size,
            checkpoint.root,
            i as u64,
            tree::leaf_hash(&leaf),
        )
        .unwrap_or_else(|e| panic!("leaf {i}: {e:?}"));
        // Any hash changed and the proof fails.
        if let Some(first) = hashes.first() {
            let mut bad = hashes.clone();
            bad[0] = Hash(first.0.map(|b| b ^ 1));
            assert!(
                tree::check_inclusion(
                    &bad,
                    checkpoint.size,
                    checkpoint.root,
                    i as u64,
                    tree::leaf_hash(&leaf)
                )
                .is_err()
            );
        }
    }
}

#[tokio::test]
async fn the_tiles_rebuild_the_tree_the_checkpoint_signs() {
    let app = seeded_log().await;
    let (checkpoint, _, _) = checkpoint_of_everything(&app).await;
    let size = checkpoint.size;
    assert!(size < 256, "the seed fits one partial tile");
    let entries = get(&app, &format!("/log/tile/entries/000.p/{size}")).await;
    assert_eq!(entries.status(), 200);
    assert_eq!(
        entries.headers()["cache-control"],
        "no-cache",
        "a partial tile changes"
    );
    let bundle = entries.bytes().await.unwrap();
    let leaves = parse_entry_bundle(&bundle).unwrap();
    assert_eq!(leaves.len() as u64, size);
    let mut rebuilt = MemoryTree::new();
    for leaf in &leaves {
        rebuilt.append(leaf);
    }
    assert_eq!(rebuilt.root_at(size), checkpoint.root);

    // The level-0 hash tile holds the leaf hashes in order.
    let tile = get(&app, &format!("/log/tile/0/000.p/{size}")).await;
    assert_eq!(tile.status(), 200);
    let tile = tile.bytes().await.unwrap();
    assert_eq!(tile.len() as u64, size * 32);
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(tile[i * 32..(i + 1) * 32], tree::leaf_hash(leaf).0);
    }

    // Tiles the tree does not hold yet, and paths that are not tiles.
    for path in [
        format!("/log/tile/entries/000.p/{}", size + 1),
        "/log/tile/entries/000".to_owned(),
        "/log/tile/1/000.p/1".to_owned(),
        "/log/tile/0/00".to_owned(),
        "/log/tile/entries/000.p/0".to_owned(),
    ] {
        assert_eq!(get(&app, &path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn consistency_proofs_verify_between_checkpoints_and_bad_sizes_are_refused() {
    let app = seeded_log().await;
    let (old, _, _) = checkpoint_of_everything(&app).await;
    let id = app.register("tlog-consistency").await;
    app.assess(&id, "GOOD", "2025-01-01").await;
    let (new, _, _) = checkpoint_of_everything(&app).await;
    assert!(new.size > old.size);
    let data = app
        .ok(
            "query($from: Int!, $to: Int!) { consistencyProof(fromSize: $from, toSize: $to) }",
            json!({"from": old.size, "to": new.size}),
        )
        .await;
    let proof: Vec<Hash> = data["consistencyProof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    tree::check_consistency(&proof, new.size, new.root, old.size, old.root).unwrap();
    let mut bad = proof.clone();
    bad[0] = Hash([0; 32]);
    assert!(tree::check_consistency(&bad, new.size, new.root, old.size, old.root).is_err());

    for (from, to, field) in [
        (0, new.size, "fromSize"),
        (new.size, old.size, "fromSize"),
        (1, new.size + 1, "toSize"),
    ] {
        let (code, error) = app
            .error_code(
                "query($from: Int!, $to: Int!) { consistencyProof(fromSize: $from, toSize: $to) }",
                json!({"from": from, "to": to}),
                None,
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], field, "{error}");
    }
    let (code, error) = app
        .error_code(
            "query($n: Int) { events(first: 1) { nodes { inclusionProof(treeSize: $n) { hashes } } } }",
            json!({"n": new.size + 5}),
            None,
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{error}");
}

#[tokio::test]
async fn assessments_evidence_and_disputes_reach_their_events_proofs() {
    let app = seeded_log().await;
    checkpoint_of_everything(&app).await;
    let data = app
        .ok(
            "{ commitments(first: 50) { nodes {
                 assessments { event { type leafIndex inclusionProof { treeSize } } disputes { event { type leafIndex } } }
                 evidence { events { type leafIndex inclusionProof { treeSize } } } } } }",
            json!({}),
        )
        .await;
    let text = data.to_string();
    let (mut assessed, mut disputed, mut evidence) = (0, 0, 0);
    for c in data["commitments"]["nodes"].as_array().unwrap() {
        for a in c["assessments"].as_array().unwrap() {
            assert_eq!(a["event"]["type"], "CommitmentAssessed");
            assert!(a["event"]["leafIndex"].is_u64() && a["event"]["inclusionProof"].is_object());
            assessed += 1;
            for d in a["disputes"].as_array().unwrap() {
                assert_eq!(d["event"]["type"], "AssessmentDisputed");
                assert!(d["event"]["leafIndex"].is_u64());
                disputed += 1;
            }
        }
        for e in c["evidence"].as_array().unwrap() {
            assert_eq!(e["events"][0]["type"], "EvidenceSubmitted");
            assert!(e["events"][0]["leafIndex"].is_u64());
            evidence += 1;
        }
    }
    assert!(assessed > 0 && disputed > 0 && evidence > 0, "{text}");
}

/// The size of the served checkpoint (0 before the first).
async fn tree_size(app: &TestApp) -> u64 {
    let note = get(app, "/log/checkpoint").await.text().await.unwrap();
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// Runs `commitment-tracker log audit --url base ARGS…` as an auditor would, returning
/// success and output.
pub(crate) async fn log_audit(base: &str, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(["log", "audit", "--url", base])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The audit with the log's key and a state file.
async fn audit_cli(app: &TestApp, vkey: &str, state: &std::path::Path) -> (bool, String) {
    log_audit(
        &app.address,
        &["--key", vkey, "--state", state.to_str().unwrap()],
    )
    .await
}

#[tokio::test]
async fn log_audit_checks_the_log_then_only_what_is_new_and_fails_on_a_changed_event() {
    use commitment_tracker::tlog::audit;
    let app = seeded_log().await;
    let (first, _, vkey) = checkpoint_of_everything(&app).await;
    let dir = std::env::temp_dir().join(format!("ct-audit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");

    let (ok, text) = audit_cli(&app, &vkey, &state).await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("{} new leaves", first.size)),
        "{text}"
    );

    // Incremental: the second run fetches only the new leaves' tile.
    let id = app.register("tlog-audit").await;
    app.assess(&id, "GOOD", "2025-01-01").await;
    let (second, _, _) = checkpoint_of_everything(&app).await;
    let report = audit::audit(&app.address, &vkey, Some(&state))
        .await
        .unwrap();
    assert_eq!(report.previous_size, first.size);
    assert_eq!(report.leaves_fetched, second.size - first.size);
    assert_eq!(report.tiles_fetched, 1);

    // The wrong key fails on the signature.
    let (_, other) =
        commitment_tracker::tlog::checkpoint::generate_key("other.example/log").unwrap();
    let err = audit::audit(&app.address, &other, None).await.unwrap_err();
    assert!(matches!(err, audit::AuditError::Signature(_)), "{err}");

    // One byte of a stored event changed, behind the server's back.
    let target: (uuid::Uuid, i32) = sqlx::query_as(
        "select stream_id, version from events where event_type = 'CommitmentRegistered'
          order by position limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    crate::helpers::tamper(
        &app.pool,
        &format!(
            "update events set payload = jsonb_set(payload, '{{title}}',
                 to_jsonb(overlay(payload ->> 'title' placing 'X' from 1 for 1)))
              where stream_id = '{}' and version = {}",
            target.0, target.1
        ),
    )
    .await;

    // verify names the event, in its chain and in the log.
    let report = commitment_tracker::store::verify::verify(&app.pool)
        .await
        .unwrap();
    let named: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.stream_id == Some(target.0) && p.version == Some(target.1))
        .map(|p| p.message.clone())
        .collect();
    assert!(named.iter().any(|m| m.contains("hash")), "{named:?}");
    assert!(named.iter().any(|m| m.contains("log leaf")), "{named:?}");

    // An auditor from scratch recomputes another root; the CLI exits non-zero and says so.
    let fresh_state = dir.join("fresh.json");
    let (ok, text) = audit_cli(&app, &vkey, &fresh_state).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("do not match its signed checkpoint"),
        "{text}"
    );
    assert!(!fresh_state.exists(), "a failed audit saves nothing");
    // The incremental auditor fetches only new tiles; once the log grows it re-reads the
    // partial tile, and sees an old leaf changed.
    app.assess(&id, "INADEQUATE", "2025-02-01").await;
    let events = app.event_count().await as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tree_size(&app).await < events {
        assert!(Instant::now() < deadline, "no checkpoint of {events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = audit::audit(&app.address, &vkey, Some(&state))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed since it was saved"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The OS process id of the server that sequences the log, if one does.
async fn sequencer_pid(pool: &sqlx::PgPool) -> Option<u32> {
    let name: Option<String> = sqlx::query_scalar(
        "select a.application_name from pg_locks l join pg_stat_activity a using (pid)
          where l.locktype = 'advisory' and l.granted and l.objid = $1::bigint::bit(32)::int::oid
            and a.datname = current_database()",
    )
    .bind(commitment_tracker::store::tree::SEQUENCER_LOCK & 0xffff_ffff)
    .fetch_optional(pool)
    .await
    .unwrap();
    name?.rsplit(' ').next()?.parse().ok()
}

async fn log_size(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select size from log_state")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn kill_9_of_the_sequencing_process_under_load_hands_over_without_a_skipped_or_repeated_index()
 {
    use crate::helpers::{ASSESS, REGISTER, TestDatabase};
    use crate::processes::ServerProcess;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let db = TestDatabase::create().await;
    let first = ServerProcess::start(&db.url).await;
    let second = ServerProcess::start(&db.url).await;
    let pool = commitment_tracker::store::connect(&db.url, 4)
        .await
        .unwrap();
    let (_, token) = commitment_tracker::store::tokens::create(
        &pool,
        "kill-test",
        commitment_tracker::auth::Role::Admin,
        None,
    )
    .await
    .unwrap();
    eventually("a sequencer leads", || async {
        sequencer_pid(&pool).await.is_some()
    })
    .await;
    let leader_pid = sequencer_pid(&pool).await.unwrap();
    let (leader, survivor) = if leader_pid == first.pid() {
        (first, second)
    } else {
        assert_eq!(leader_pid, second.pid(), "the leader is one of the two");
        (second, first)
    };

    let client = reqwest::Client::new();
    let post = {
        let (client, url, token) = (
            client.clone(),
            format!("{}/graphql", survivor.address),
            token.clone(),
        );
        move |query: &'static str, variables: Value| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let body: Value = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"query": query, "variables": variables}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(body.get("errors").is_none(), "{body}");
                body
            }
        }
    };
    let registered = post(
        REGISTER,
        json!({"input": {"slug": "kill-9", "title": "Commitment kill-9", "description": "A promise.",
            "area": "Digital foundations", "policySource": "A plan for digital health and social care (2022)",
            "target": "Every trust with an EPR", "dueDate": "2025-03-31", "announcedOn": "2022-06-29"}}),
    )
    .await;
    let id = registered["data"]["registerCommitment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Four writers append to the survivor throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (post, id, stop, written) = (post.clone(), id.clone(), stop.clone(), written.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let overall = ["GOOD", "INADEQUATE"][(w + n) % 2];
                post(ASSESS, json!({"input": {"commitmentId": id, "assessor": "HSCC Expert Panel",
                    "assessorKind": "INDEPENDENT", "assessedOn": "2024-01-01", "overall": overall,
                    "deliveryStatus": "NOT_ON_TRACK", "rationale": "Under load.", "evaluation": "HC 780"}}))
                .await;
                written.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    eventually("the leader sequences some of the load", || async {
        log_size(&pool).await > 20
    })
    .await;
    leader.kill().await;
    let at_kill = written.load(Ordering::Relaxed);
    eventually("the survivor takes over", || async {
        sequencer_pid(&pool).await == Some(survivor.pid())
    })
    .await;
    eventually(
        "more load is written and sequenced after the takeover",
        || async { written.load(Ordering::Relaxed) > at_kill + 40 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    eventually("every event has its leaf", || async {
        log_size(&pool).await == events
    })
    .await;
    let (count, distinct, max): (i64, i64, Option<i64>) = sqlx::query_as(
        "select count(*), count(distinct event_id), max(leaf_index) from log_leaves",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (count, distinct, max),
        (events, events, Some(events - 1)),
        "0…n-1, each event once"
    );
    let report = commitment_tracker::store::verify::verify(&pool)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.leaves as i64, events);
    drop(survivor);
}

#[tokio::test]
async fn an_event_too_long_for_an_entry_tile_is_refused_and_nothing_is_written() {
    use crate::helpers::REGISTER;
    let app = seeded_log().await;
    let before = app.event_count().await;
    // 20,000 characters pass the text rule, but at four bytes each the leaf would exceed the
    // 65,535 bytes an entry's two-byte length can say.
    let description = "\u{1F600}".repeat(20_000);
    let (code, error) = app
        .error_code(
            REGISTER,
            json!({ "input": {
                "slug": "too-long", "title": "Too long", "description": description,
                "area": "Digital foundations", "policySource": "A plan (2022)",
                "target": "Every trust", "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
            }}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("more than the 65535 one entry can hold"),
        "{error}"
    );
    assert_eq!(app.event_count().await, before);
    // The log's tiles still serve every leaf.
    let (checkpoint, _, _) = checkpoint_of_everything(&app).await;
    assert_eq!(checkpoint.size, before as u64);
}

#[tokio::test]
async fn the_servers_sessions_never_jit_compile_their_short_statements() {
    let app = spawn_app_with(|_| {}).await;
    // A stale estimate on a large log made PostgreSQL spend 200 ms compiling a 1.6 ms tile
    // query; the server's connections turn JIT off.
    let jit: String = sqlx::query_scalar("show jit")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jit, "off");
}
