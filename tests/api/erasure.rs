//! Erasure (DESIGN §11): a submitter's and a token holder's names erased on request are in no
//! answer, no replay and no table afterwards, while `verify`, every inclusion proof and an
//! audit saved before the erasure hold exactly as before.

use crate::helpers::{ASSESS, TestApp, seed_file, spawn_app_with};
use crate::subscriptions::Client as WsClient;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use commitment_tracker::auth::Role;
use commitment_tracker::store::tokens;
use commitment_tracker::tlog::{audit, checkpoint, tree};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A submitter in the NHS data set.
const SUBMITTER: &str = "Prof Robin Williams and Dr Kathrin Cresswell";
/// A token holder who writes through the API.
const HOLDER: &str = "Dr Erin Token-Holder";

const ERASE: &str = "mutation($input: ErasePersonalDataInput!) {
    erasePersonalData(input: $input) { erasedValues }
}";

/// Everything the API says about commitments, evidence, events and tokens, as text.
const EVERYTHING: &str = "query($asOf: DateTime, $validOn: Date = \"2025-06-01\") {
    commitments(first: 100) { nodes { slug
        assessments { actor evidence { submittedBy actor erasedFields } }
        evidence { id submittedBy actor erasedFields } } }
    past: commitments(first: 100, asOf: $asOf) { nodes { slug
        assessments { actor evidence { submittedBy actor } } evidence { submittedBy actor } } }
    then: commitments(first: 100, validOn: $validOn) { nodes { slug
        assessments { actor } evidence { submittedBy actor } } }
    events(first: 500) { nodes { id type actor payload erasedFields } }
    tokens { name }
}";

/// [`EVERYTHING`] once `events` lists every committed event (reads stay below the oldest
/// transaction still running anywhere on the server, another test's included).
async fn everything(app: &TestApp, as_of: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data = app.ok(EVERYTHING, json!({ "asOf": as_of })).await;
        let listed = data["events"]["nodes"].as_array().unwrap().len() as i64;
        if listed == app.event_count().await {
            return data;
        }
        assert!(Instant::now() < deadline, "events lists {listed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn seeded() -> TestApp {
    let app = spawn_app_with(|s| {
        s.log.checkpoint_interval = Duration::ZERO;
        s.log.sequence_interval = Duration::from_millis(20);
        // Long enough that a token revoked elsewhere is still trusted at the door.
        s.token_cache = Duration::from_secs(3600);
    })
    .await;
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    app
}

/// The served checkpoint once it covers every event: its note and verified contents.
async fn checkpoint_of_everything(app: &TestApp) -> (checkpoint::VerifiedCheckpoint, String) {
    let get = |path: &'static str| {
        let url = format!("{}{path}", app.address);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let vkey = get("/log/key").await.trim().to_owned();
    let events = app.event_count().await as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let note = get("/log/checkpoint").await;
        if let Ok(c) = checkpoint::verify(note.as_bytes(), &vkey)
            && c.size == events
        {
            return (c, vkey);
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {events} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `pg_dump --data-only` of the test database, as text.
async fn dump(app: &TestApp) -> String {
    let output = tokio::process::Command::new("pg_dump")
        .args(["--data-only", &app.db.url])
        .output()
        .await
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many stored personal values are erased.
async fn erased_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from personal_data where value is null")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn erase(app: &TestApp, name: &str, key: Option<&str>) -> (u16, Value) {
    app.post(
        ERASE,
        json!({ "input": { "name": name, "reason": "UK GDPR art. 17 request 2026-114",
                            "idempotencyKey": key } }),
        Some(&app.admin_token),
    )
    .await
}

/// Asks, with `token`, to erase the submitter; checks the refusal's code and that nothing
/// was erased or recorded.
async fn refused_erasure(app: &TestApp, token: &str, code: &str, events: i64) {
    let (status, body) = app
        .post(
            ERASE,
            json!({ "input": { "name": SUBMITTER, "reason": "r" } }),
            Some(token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    assert_eq!(erased_rows(app).await, 0);
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn erased_names_are_in_no_answer_replay_or_table_and_every_proof_still_holds() {
    let app = seeded().await;
    // The holder writes a verdict and a piece of evidence under their token.
    let (_, holder_token) = tokens::create(&app.pool, HOLDER, Role::Assessor, None)
        .await
        .unwrap();
    let id = app.register("erasure-target").await;
    let (status, body) = app
        .post(
            ASSESS,
            json!({ "input": {
                "commitmentId": id, "assessor": "HSCC Expert Panel",
                "assessorKind": "INDEPENDENT", "assessedOn": "2025-01-01", "overall": "GOOD",
                "deliveryStatus": "ON_TRACK", "rationale": "Progress.", "idempotencyKey": "h-1"
            }}),
            Some(&holder_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let before_answer = app.ok(EVERYTHING, json!({})).await.to_string();
    assert!(before_answer.contains(SUBMITTER) && before_answer.contains(HOLDER));
    let dumped = dump(&app).await;
    assert!(
        dumped.contains(SUBMITTER) && dumped.contains(HOLDER),
        "the dump finds names"
    );

    // What an outsider holds before the erasure: an audited checkpoint.
    let (before, vkey) = checkpoint_of_everything(&app).await;
    let state = std::env::temp_dir().join(format!("ct-erasure-{}.json", uuid::Uuid::now_v7()));
    audit::audit(&app.address, &vkey, Some(&state))
        .await
        .unwrap();
    let as_of = chrono::Utc::now().to_rfc3339();
    let events_before = app.event_count().await;

    // A role below admin is refused, and nothing changes.
    refused_erasure(&app, &holder_token, "FORBIDDEN", events_before).await;

    // An admin token revoked straight in the database, while this server's cache still
    // trusts it (it answered a read): the erasure's own transaction refuses it.
    let (departed_id, departed) = tokens::create(&app.pool, "departed admin", Role::Admin, None)
        .await
        .unwrap();
    let (status, _) = app
        .post("{ events { totalCount } }", json!({}), Some(&departed))
        .await;
    assert_eq!(status, 200);
    assert!(tokens::revoke(&app.pool, departed_id).await.unwrap());
    refused_erasure(&app, &departed, "UNAUTHENTICATED", events_before).await;

    // The submitter: one evidence value. The holder: their events' actors and their token.
    let (_, body) = erase(&app, SUBMITTER, Some("erase-submitter")).await;
    assert_eq!(
        body["data"]["erasePersonalData"]["erasedValues"], 1,
        "{body}"
    );
    let (_, body) = erase(&app, HOLDER, None).await;
    // registerCommitment was the admin's; the holder wrote one verdict, and holds one token.
    assert_eq!(
        body["data"]["erasePersonalData"]["erasedValues"], 2,
        "{body}"
    );
    let events_after = app.event_count().await;
    assert_eq!(
        events_after,
        events_before + 2,
        "one PersonalDataErased each"
    );

    // Retrying with the same key changes nothing more; an unknown name erases nothing.
    let (_, body) = erase(&app, SUBMITTER, Some("erase-submitter")).await;
    assert_eq!(
        body["data"]["erasePersonalData"]["erasedValues"], 1,
        "{body}"
    );
    let (_, body) = erase(&app, "Nobody Of That Name", None).await;
    assert_eq!(
        body["data"]["erasePersonalData"]["erasedValues"], 0,
        "{body}"
    );
    assert_eq!(app.event_count().await, events_after);

    // Bad input is refused with its field named.
    let (status, body) = erase(&app, " ", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "name", "{body}");

    // The holder's token no longer works.
    let (status, _) = app
        .post("{ __typename }", json!({}), Some(&holder_token))
        .await;
    assert_eq!(status, 401);

    // No answer names them, live or as of before the erasure; erased fields say so.
    let data = everything(&app, &as_of).await;
    let text = data.to_string();
    assert!(
        !text.contains(SUBMITTER) && !text.contains(HOLDER),
        "{text}"
    );
    for view in ["past", "then"] {
        assert!(
            data[view].to_string().contains("[erased]"),
            "{view} shows no erased value"
        );
    }
    let evidence: Vec<&Value> = data["commitments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["evidence"].as_array().unwrap())
        .filter(|e| e["submittedBy"] == "[erased]")
        .collect();
    assert!(!evidence.is_empty(), "{text}");
    assert!(
        evidence
            .iter()
            .all(|e| e["erasedFields"] == json!(["submittedBy"]))
    );
    let events = data["events"]["nodes"].as_array().unwrap();
    let by_holder: Vec<&Value> = events.iter().filter(|e| e["actor"] == "[erased]").collect();
    assert_eq!(by_holder.len(), 1, "{text}");
    assert_eq!(by_holder[0]["erasedFields"], json!(["actor"]));
    let erasures: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "PersonalDataErased")
        .collect();
    assert_eq!(erasures.len(), 2);
    assert!(erasures.iter().all(|e| {
        e["payload"]["reason"] == "UK GDPR art. 17 request 2026-114"
            && e["payload"]["commitments"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
    }));
    assert!(
        data["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "[erased]")
    );

    // A replay over WebSocket from the first event: every event, the erasures included,
    // without the names.
    let first: String = app
        .ok("{ events(first: 1) { nodes { cursor } } }", json!({}))
        .await["events"]["nodes"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = WsClient::open(&app, json!({})).await.unwrap();
    ws.subscribe(
        "replay",
        "subscription($after: String) { events(after: $after) { type actor payload erasedFields } }",
        json!({ "after": first }),
    )
    .await;
    let (mut replayed, mut erasures_seen) = (1, 0);
    while erasures_seen < 2 {
        let event = ws.next_data("replay").await["events"].clone();
        let text = event.to_string();
        assert!(
            !text.contains(SUBMITTER) && !text.contains(HOLDER),
            "{text}"
        );
        erasures_seen += usize::from(event["type"] == "PersonalDataErased");
        replayed += 1;
    }
    assert_eq!(replayed, events_after);
    ws.close().await;

    // No table holds them.
    let dumped = dump(&app).await;
    assert!(!dumped.contains(SUBMITTER), "the submitter is in the dump");
    assert!(!dumped.contains(HOLDER), "the holder is in the dump");

    // verify holds, every event's inclusion proof verifies against the signed checkpoint, and
    // the audit saved before the erasure passes.
    let report = commitment_tracker::store::verify::verify(&app.pool)
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let (after, _) = checkpoint_of_everything(&app).await;
    assert!(after.size > before.size);
    let data = app
        .ok(
            "{ events(first: 500) { nodes { leafIndex leaf inclusionProof { hashes } } } }",
            json!({}),
        )
        .await;
    for node in data["events"]["nodes"].as_array().unwrap() {
        let leaf = STANDARD.decode(node["leaf"].as_str().unwrap()).unwrap();
        let leaf_text = String::from_utf8_lossy(&leaf);
        assert!(!leaf_text.contains(SUBMITTER) && !leaf_text.contains(HOLDER));
        let hashes: Vec<tree::Hash> = node["inclusionProof"]["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                tree::Hash(
                    STANDARD
                        .decode(h.as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap(),
                )
            })
            .collect();
        tree::check_inclusion(
            &hashes,
            after.size,
            after.root,
            node["leafIndex"].as_u64().unwrap(),
            tree::leaf_hash(&leaf),
        )
        .unwrap();
    }
    let report = audit::audit(&app.address, &vkey, Some(&state))
        .await
        .unwrap();
    assert_eq!(report.previous_size, before.size);

    // Rebuilding the projections and importing the data again bring nothing back.
    commitment_tracker::store::rebuild::rebuild(&app.pool)
        .await
        .unwrap();
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let text = everything(&app, &as_of).await.to_string();
    assert!(
        !text.contains(SUBMITTER) && !text.contains(HOLDER),
        "{text}"
    );
    let dumped = dump(&app).await;
    assert!(!dumped.contains(SUBMITTER) && !dumped.contains(HOLDER));

    // A rebuild that read the values before an erasure committed scrubs its new tables
    // before swapping them in: here, copies put back by hand are found from personal_data.
    sqlx::query("update evidence set submitted_by = $1 where submitted_by = '[erased]'")
        .bind(SUBMITTER)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update assessments set actor = $1 where actor = '[erased]'")
        .bind(HOLDER)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let scrubbed = commitment_tracker::store::erasure::scrub_projections(&mut conn, "")
        .await
        .unwrap();
    assert_eq!(scrubbed, 2);
    drop(conn);
    let dumped = dump(&app).await;
    assert!(!dumped.contains(SUBMITTER) && !dumped.contains(HOLDER));
    let _ = std::fs::remove_file(&state);
}

#[tokio::test]
async fn the_servers_log_never_holds_a_personal_value() {
    use crate::helpers::{SUBMIT, TestDatabase};
    use crate::processes::ServerProcess;
    let db = TestDatabase::create().await;
    let server =
        ServerProcess::start_logging(&db.url, "debug,sqlx=warn,hyper=warn,hyper_util=warn").await;
    let pool = commitment_tracker::store::connect(&db.url, 2)
        .await
        .unwrap();
    let (_, admin) = tokens::create(&pool, "Dr Admin Person", Role::Admin, None)
        .await
        .unwrap();
    let (_, holder) = tokens::create(&pool, HOLDER, Role::Contributor, None)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let post = |query: &'static str, variables: Value, token: String| {
        let request = client
            .post(format!("{}/graphql", server.address))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let registered = post(
        crate::helpers::REGISTER,
        json!({ "input": {
            "slug": "logged", "title": "Logged", "description": "A promise.",
            "area": "Records", "policySource": "A plan (2022)", "target": "All trusts",
            "dueDate": "2025-03-31", "announcedOn": "2022-06-29", "idempotencyKey": "r-1"
        }}),
        admin.clone(),
    )
    .await;
    let id = registered["data"]["registerCommitment"]["id"].clone();
    let submitted = post(
        SUBMIT,
        json!({ "input": {
            "commitmentIds": [id], "title": "An evaluation", "summary": "Findings.",
            "submittedBy": SUBMITTER, "idempotencyKey": "s-1"
        }}),
        holder.clone(),
    )
    .await;
    assert!(submitted.get("errors").is_none(), "{submitted}");
    for name in [SUBMITTER, HOLDER] {
        let erased = post(
            ERASE,
            json!({ "input": { "name": name, "reason": "request 7", "idempotencyKey": name } }),
            admin.clone(),
        )
        .await;
        assert!(
            erased["data"]["erasePersonalData"]["erasedValues"].as_i64() >= Some(1),
            "{erased}"
        );
    }
    // The server logged the requests, commands and the erasures, by token id only.
    let log = server.log_text();
    assert!(log.contains("erased personal data on request"), "{log}");
    for name in [SUBMITTER, HOLDER, "Dr Admin Person"] {
        assert!(!log.contains(name), "the log holds {name}:\n{log}");
    }
    pool.close().await;
    server.kill().await;
}

#[tokio::test]
async fn the_erase_command_erases_and_says_how_many_values() {
    let app = seeded().await;
    let run = |name: &'static str| {
        let url = app.db.url.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
                .args(["erase", "--name", name, "--reason", "request 9"])
                .env("DATABASE_URL", url)
                .output()
                .await
                .unwrap()
        }
    };
    let output = run(SUBMITTER).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
    let output = run(SUBMITTER).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "0");
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing was erased"));
    assert!(!dump(&app).await.contains(SUBMITTER));
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'PersonalDataErased'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 1);
}
