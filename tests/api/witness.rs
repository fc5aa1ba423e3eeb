//! Witnesses (DESIGN §10; C2SP tlog-witness, tlog-cosignature): the log asks the test suite's
//! own witness (`tests/node/witness.mjs`, written from the specifications in JavaScript, none
//! of the server's code) to cosign each checkpoint, serves a checkpoint only with its quorum,
//! follows a witness's 409 to the size it holds, and an auditor who trusts the witnesses
//! refuses a split view that the log's key alone would let through.

use crate::helpers::{TestApp, seed_file, spawn_app_with};
use crate::tlog::log_audit;
use commitment_tracker::config::{WitnessConfig, parse_witnesses};
use commitment_tracker::seed;
use commitment_tracker::tlog::checkpoint::{self, LogKey};
use commitment_tracker::tlog::cosignature::{CosignatureSigner, CosignatureVerifier, cosigners};
use commitment_tracker::tlog::tiles::{TilePath, entry_bundle, parse_entry_bundle};
use commitment_tracker::tlog::tree::MemoryTree;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `witness.mjs`.
struct TestWitness {
    _child: tokio::process::Child,
    vkey: String,
    url: String,
}

impl TestWitness {
    async fn start(name: &str, log_vkey: &str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/witness.mjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .env("WITNESS_NAME", name)
            .env("LOG_VKEY", log_vkey)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the witness starts")
            .unwrap()
            .expect("the witness printed its key");
        let hello: Value = serde_json::from_str(&line).unwrap();
        Self {
            _child: child,
            vkey: hello["vkey"].as_str().unwrap().to_owned(),
            url: hello["url"].as_str().unwrap().to_owned(),
        }
    }

    fn config(&self) -> WitnessConfig {
        parse_witnesses(&format!("{} {}", self.vkey, self.url), 1)
            .unwrap()
            .remove(0)
    }

    fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier::new(&self.vkey).unwrap()
    }

    async fn set_down(&self, down: bool) {
        let r = reqwest::Client::new()
            .post(format!("{}/control", self.url))
            .body(json!({ "down": down }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Submits a checkpoint as any client may (past the test's "down" switch).
    async fn add_checkpoint(&self, old: u64, proof: &[String], note: &str) -> (u16, String) {
        let mut body = format!("old {old}\n");
        for hash in proof {
            body.push_str(hash);
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        let r = reqwest::Client::new()
            .post(format!("{}/add-checkpoint", self.url))
            .header("x-witness-bypass", "1")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// A log key written to a file of its own, so witnesses can be told its vkey before the
/// server starts; the file goes when this does.
struct KeyFile {
    path: PathBuf,
    key: LogKey,
    vkey: String,
}

impl KeyFile {
    fn new() -> Self {
        let (skey, vkey) = checkpoint::generate_key("witnessed.example/log").unwrap();
        let path = std::env::temp_dir().join(format!("ct-witnessed-{}.key", uuid::Uuid::now_v7()));
        std::fs::write(&path, format!("{skey}\n")).unwrap();
        let key = LogKey::from_private(&skey).unwrap();
        Self { path, key, vkey }
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn witnessed_app(key_file: PathBuf, witnesses: Vec<WitnessConfig>, quorum: usize) -> TestApp {
    spawn_app_with(move |s| {
        s.log.signing_key_file = key_file;
        s.log.checkpoint_interval = Duration::ZERO;
        s.log.sequence_interval = Duration::from_millis(20);
        s.log.witnesses = witnesses;
        s.log.witness_quorum = quorum;
    })
    .await
}

async fn get_checkpoint(app: &TestApp) -> reqwest::Response {
    app.client
        .get(format!("{}/log/checkpoint", app.address))
        .send()
        .await
        .unwrap()
}

/// The served checkpoint's note, or None while none is served.
async fn served(app: &TestApp) -> Option<String> {
    let r = get_checkpoint(app).await;
    (r.status() == 200).then_some(r.text().await.unwrap())
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Polls `what` until it answers Some, failing after 60 s.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the served checkpoint covers every event, and returns its note.
async fn served_with_everything(app: &TestApp) -> String {
    let events = app.event_count().await as u64;
    until("a served checkpoint of every event", || async {
        served(app).await.filter(|n| size_of(n) == events)
    })
    .await
}

#[tokio::test]
async fn every_served_checkpoint_carries_its_witnesses_cosignatures_and_the_audit_checks_them() {
    let keys = KeyFile::new();
    let vkey = keys.vkey.clone();
    let one = TestWitness::start("witness.test/one", &vkey).await;
    let two = TestWitness::start("witness.test/two", &vkey).await;
    let app = witnessed_app(keys.path.clone(), vec![one.config(), two.config()], 2).await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let note = served_with_everything(&app).await;

    // The log's signature and both witnesses' cosignatures verify, by independent code.
    let checked = checkpoint::verify(note.as_bytes(), &vkey).unwrap();
    let found = cosigners(note.as_bytes(), &[one.verifier(), two.verifier()]).unwrap();
    let mut who: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    who.sort();
    assert_eq!(who, vec![0, 1], "{note}");
    for witness in [&one, &two] {
        let stats = witness.stats().await;
        assert!(stats["size"].as_u64().unwrap() >= checked.size, "{stats}");
    }
    // GraphQL serves the same note.
    let data = app.ok("{ checkpoint { size note } }", json!({})).await;
    let graphql_note = data["checkpoint"]["note"].as_str().unwrap();
    assert!(size_of(graphql_note) >= checked.size);
    assert_eq!(
        cosigners(graphql_note.as_bytes(), &[one.verifier(), two.verifier()])
            .unwrap()
            .len(),
        2
    );

    // The auditor who trusts both witnesses passes, and says who cosigned.
    let both = [
        "--key",
        &vkey,
        "--witness",
        &one.vkey,
        "--witness",
        &two.vkey,
    ];
    let (ok, text) = log_audit(&app.address, &both).await;
    assert!(ok, "{text}");
    assert!(text.contains(" and cosigned by "), "{text}");
    assert!(
        text.contains(&one.vkey) && text.contains(&two.vkey),
        "{text}"
    );
    // One who also requires a witness this log never asked fails, naming it.
    let stranger = CosignatureSigner::generate("witness.test/stranger").vkey();
    let three = [&both[..], &["--witness", &stranger]].concat();
    let (ok, text) = log_audit(&app.address, &three).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("cosigned by 2 of the 3 witnesses required"),
        "{text}"
    );
    assert!(text.contains(&stranger), "{text}");
    // …and passes when two of the three suffice.
    let two_of_three = [&three[..], &["--witness-quorum", "2"]].concat();
    let (ok, text) = log_audit(&app.address, &two_of_three).await;
    assert!(ok, "{text}");
}

#[tokio::test]
async fn a_checkpoint_short_of_the_quorum_is_not_served_until_the_missing_witness_cosigns() {
    let keys = KeyFile::new();
    let vkey = keys.vkey.clone();
    let up = TestWitness::start("witness.test/up", &vkey).await;
    let late = TestWitness::start("witness.test/late", &vkey).await;
    late.set_down(true).await;
    let app = witnessed_app(keys.path.clone(), vec![up.config(), late.config()], 2).await;
    let id = app.register("witnessed-quorum").await;
    app.assess(&id, "GOOD", "2025-01-01").await;
    let events = app.event_count().await;

    // Signed and cosigned by one witness: stored, but short of the quorum, so not served.
    until("the first witness's cosignature", || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from log_cosignatures s join log_checkpoints c using (size)
              where s.witness = $1 and c.size = $2",
        )
        .bind(&up.vkey)
        .bind(events)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (n == 1).then_some(())
    })
    .await;
    let r = get_checkpoint(&app).await;
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("cosigned by 2 of the log's witnesses"),
    );
    let (code, _) = app
        .error_code("{ checkpoint { size } }", json!({}), None)
        .await;
    assert_eq!(code, "NOT_FOUND");

    // The missing witness comes back; the log retries and the checkpoint is served.
    late.set_down(false).await;
    let note = served_with_everything(&app).await;
    assert_eq!(
        cosigners(note.as_bytes(), &[up.verifier(), late.verifier()])
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_witness_holding_a_later_size_answers_409_and_the_log_proves_consistency_from_it() {
    let keys = KeyFile::new();
    let vkey = keys.vkey.clone();
    let witness = TestWitness::start("witness.test/ahead", &vkey).await;
    witness.set_down(true).await;
    let app = witnessed_app(keys.path.clone(), vec![witness.config()], 1).await;
    let id = app.register("witnessed-conflict").await;
    app.assess(&id, "GOOD", "2025-01-01").await;
    let first_size = app.event_count().await;

    // Someone else hands the witness the log's first checkpoint: it now holds a size the
    // log has no record of.
    let first_note: String = until("the first checkpoint", || async {
        sqlx::query_scalar("select note from log_checkpoints where size = $1")
            .bind(first_size)
            .fetch_optional(&app.pool)
            .await
            .unwrap()
    })
    .await;
    let (status, body) = witness.add_checkpoint(0, &[], &first_note).await;
    assert_eq!(status, 200, "{body}");

    // The log grows and the witness comes back: the log sends `old 0`, is told 409 with the
    // size, and sends the consistency proof from there.
    app.assess(&id, "INADEQUATE", "2025-02-01").await;
    witness.set_down(false).await;
    let note = served_with_everything(&app).await;
    assert!(size_of(&note) > first_size as u64);
    assert_eq!(
        cosigners(note.as_bytes(), &[witness.verifier()])
            .unwrap()
            .len(),
        1
    );
    let stats = witness.stats().await;
    assert!(stats["conflicts"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["size"].as_u64().unwrap(), size_of(&note));
}

#[tokio::test]
async fn a_split_view_signed_with_the_logs_key_fails_the_audit_of_anyone_who_requires_a_witness() {
    let keys = KeyFile::new();
    let vkey = keys.vkey.clone();
    let witness = TestWitness::start("witness.test/honest", &vkey).await;
    let app = witnessed_app(keys.path.clone(), vec![witness.config()], 1).await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let note = served_with_everything(&app).await;
    let size = size_of(&note);

    // The operator forks the log: the same size, the last leaf changed, a new root, signed
    // with the log's own key.
    let bundle = reqwest::get(format!("{}/log/tile/{}", app.address, entries_tile(size)))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut leaves: Vec<Vec<u8>> = parse_entry_bundle(&bundle)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(leaves.len() as u64, size);
    let last = leaves.last_mut().unwrap();
    let at = last.iter().position(|b| b.is_ascii_digit()).unwrap();
    last[at] = if last[at] == b'9' { b'8' } else { last[at] + 1 };
    let mut forked = MemoryTree::new();
    for leaf in &leaves {
        forked.append(leaf);
    }
    let forged = keys.key.sign(size, forked.root_at(size)).unwrap();
    assert!(checkpoint::verify(forged.as_bytes(), &vkey).is_ok());

    // The honest witness refuses to cosign it: it holds another root at that size.
    let (status, body) = witness.add_checkpoint(size, &[], &forged).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body.trim(), size.to_string());

    // The forged view, served to one auditor as a log would serve it; the honest witness's
    // cosignature copied onto it does not verify.
    let honest_line = cosigners(note.as_bytes(), &[witness.verifier()])
        .unwrap()
        .remove(0)
        .1;
    let forged_bundle = entry_bundle(leaves.iter().map(Vec::as_slice)).unwrap();
    let fork = serve_fork(format!("{forged}{honest_line}\n"), size, forged_bundle).await;
    let stripped = serve_fork(
        forged.clone(),
        size,
        entry_bundle(leaves.iter().map(Vec::as_slice)).unwrap(),
    )
    .await;

    // With the log's key alone, the fork is self-consistent and passes: this is what
    // witnesses are for.
    let (ok, text) = log_audit(&stripped, &["--key", &vkey]).await;
    assert!(ok, "{text}");
    // Requiring the witness, both forms of the fork fail.
    for base in [&stripped, &fork] {
        let (ok, text) = log_audit(base, &["--key", &vkey, "--witness", &witness.vkey]).await;
        assert!(!ok, "{text}");
        assert!(text.contains("lacks its witnesses' quorum"), "{text}");
    }
    // An auditor who saw the real log first calls it a split view, witness or not.
    let state = std::env::temp_dir().join(format!("ct-split-{}.json", uuid::Uuid::now_v7()));
    let state_arg = state.to_str().unwrap();
    let (ok, text) = log_audit(
        &app.address,
        &[
            "--key",
            &vkey,
            "--witness",
            &witness.vkey,
            "--state",
            state_arg,
        ],
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) = log_audit(&stripped, &["--key", &vkey, "--state", state_arg]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("split view"), "{text}");
    let _ = std::fs::remove_file(&state);
}

/// The path of the first entry tile of a log of `size` (< 256) leaves.
fn entries_tile(size: u64) -> String {
    TilePath::Entries {
        index: 0,
        width: size as u16,
    }
    .to_path()
}

/// Serves a forked log: `note` as its checkpoint and `bundle` as its one partial entry tile.
async fn serve_fork(note: String, size: u64, bundle: Vec<u8>) -> String {
    use axum::routing::get;
    let tile = format!("/log/tile/{}", entries_tile(size));
    let router = axum::Router::new()
        .route("/log/checkpoint", get(move || async move { note }))
        .route(&tile, get(move || async move { bundle }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

#[test]
fn witness_settings_name_what_is_wrong() {
    let good = CosignatureSigner::generate("w.example/1").vkey();
    let other = CosignatureSigner::generate("w.example/2").vkey();
    let list = format!("{good} http://127.0.0.1:1/w ;\n{other} http://127.0.0.1:2");
    let parsed = parse_witnesses(&list, 2).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].url, "http://127.0.0.1:1/w");
    let err = |list: &str, quorum| parse_witnesses(list, quorum).unwrap_err().to_string();
    assert!(err(&list, 3).contains("LOG_WITNESS_QUORUM is 3"));
    assert!(err(&good, 1).contains("is not `<verifier key> <URL>`"));
    assert!(err(&format!("{good} https://w.example"), 1).contains("not http://"));
    assert!(err("w+00000000+AAAA http://x", 1).contains("cosignature/v1"));
    assert!(err(&format!("{good} http://a;{good} http://b"), 1).contains("listed twice"));
    assert!(parse_witnesses("", 0).unwrap().is_empty());
}
