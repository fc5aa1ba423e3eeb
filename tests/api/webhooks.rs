//! Webhooks (DESIGN §13) delivered to a receiver that verifies every delivery with the
//! `standardwebhooks` library: at least once, in committed order, through failures, a
//! `kill -9` of the server, pausing and resuming; and addresses inside the network refused.

use crate::helpers::{ASSESS, REGISTER, TestDatabase, eventually, spawn_app, spawn_app_with};
use crate::processes::{ServerProcess, free_port};
use crate::tools::{install, tests_dir};
use commitment_tracker::auth::Role;
use commitment_tracker::store::tokens;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

const CREATE: &str = "mutation($input: CreateWebhookInput!) {
    createWebhook(input: $input) { secret webhook { id url eventTypes state } }
}";

const WEBHOOK: &str = "query($id: ID!) { webhook(id: $id) {
    state failures pausedReason deliveredUpTo
    deliveries(first: 100) { eventId eventType attempt statusCode error delivered }
} }";

/// The Python receiver, and every line it has printed.
struct Receiver {
    lines: Arc<Mutex<Vec<Value>>>,
    changed: Arc<Notify>,
    _child: tokio::process::Child,
}

impl Receiver {
    async fn start(port: u16, secret: &str, fail_first: u32) -> Self {
        let mut child = tokio::process::Command::new(tests_dir("python").join(".venv/bin/python"))
            .arg(tests_dir("python").join("webhook_receiver.py"))
            .env("WEBHOOK_SECRET", secret)
            .env("FAIL_FIRST", fail_first.to_string())
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next_line().await.unwrap().expect("the receiver starts");
        assert!(first.contains("listening"), "{first}");
        let (lines, changed) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Notify::new()));
        let (kept, notify) = (lines.clone(), changed.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
                notify.notify_waiters();
            }
        });
        Self {
            lines,
            changed,
            _child: child,
        }
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (at most a minute) until `done` holds of the lines printed.
    async fn until(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let notified = self.changed.notified();
            if done(&self.lines()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}: {:#?}", self.lines());
            }
        }
    }
}

fn accepted(lines: &[Value]) -> Vec<String> {
    let mut seen = Vec::new();
    for l in lines {
        if let Some(id) = l["accepted"].as_str()
            && !seen.iter().any(|s| s == id)
        {
            seen.push(id.to_owned());
        }
    }
    seen
}

async fn post(base: &str, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_event_arrives_signed_once_deduplicated_and_in_order_across_failures_and_a_kill() {
    install("python", &[]).await;
    let db = TestDatabase::create().await;
    let env = [
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_RETRY_BASE_MS", "20"),
        ("WEBHOOK_RETRY_MAX_SECS", "1"),
    ];
    let server = ServerProcess::start_with(&db.url, "info,sqlx=warn", &env).await;
    let pool = commitment_tracker::store::connect(&db.url, 2)
        .await
        .unwrap();
    let (_, admin) = tokens::create(&pool, "admin", Role::Admin, None)
        .await
        .unwrap();
    let port = free_port();
    let created = post(
        &server.address,
        &admin,
        CREATE,
        json!({ "input": { "url": format!("http://127.0.0.1:{port}/hook"), "description": "newsroom" } }),
    )
    .await;
    let secret = created["data"]["createWebhook"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let webhook_id = created["data"]["createWebhook"]["webhook"]["id"].clone();
    // Fails every event twice, then accepts it.
    let receiver = Receiver::start(port, &secret, 2).await;

    let registered = post(
        &server.address,
        &admin,
        REGISTER,
        json!({ "input": {
            "slug": "hooked", "title": "Hooked", "description": "A promise.",
            "area": "Records", "policySource": "A plan (2022)", "target": "All trusts",
            "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
        }}),
    )
    .await;
    let id = registered["data"]["registerCommitment"]["id"].clone();
    let ratings = ["INADEQUATE", "REQUIRES_IMPROVEMENT", "GOOD"];
    for i in 0..15 {
        let answer = post(
            &server.address,
            &admin,
            ASSESS,
            json!({ "input": {
                "commitmentId": id, "assessor": "Panel", "assessorKind": "INDEPENDENT",
                "assessedOn": format!("2024-01-{:02}", i + 1), "overall": ratings[i % 3],
                "deliveryStatus": "NOT_ON_TRACK", "rationale": "Because."
            }}),
        )
        .await;
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    let expected: Vec<String> = sqlx::query_scalar::<_, uuid::Uuid>(
        "select event_id from events order by transaction_id, position",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|u| u.to_string())
    .collect();
    assert_eq!(expected.len(), 16);

    // Mid-delivery, the server dies without a chance to tidy up, and comes back.
    receiver
        .until("five accepted deliveries", |l| accepted(l).len() >= 5)
        .await;
    server.kill().await;
    let at_kill = accepted(&receiver.lines()).len();
    assert!(
        at_kill < expected.len(),
        "the kill came after the last delivery"
    );
    let server = ServerProcess::start_with(&db.url, "info,sqlx=warn", &env).await;
    receiver
        .until("every event accepted", |l| {
            accepted(l).len() >= expected.len()
        })
        .await;

    let lines = receiver.lines();
    assert!(
        lines.iter().all(|l| l.get("invalid").is_none()),
        "a delivery did not verify: {lines:#?}"
    );
    // Deduplicated by webhook-id, exactly the log in committed order.
    assert_eq!(accepted(&lines), expected);
    // In order: no event was attempted before every earlier one had been accepted.
    let mut done = 0;
    for l in &lines {
        let id = l["id"].as_str().unwrap();
        let index = expected.iter().position(|e| e == id).unwrap();
        assert!(
            index <= done,
            "event {index} attempted before event {done} was accepted"
        );
        assert_eq!(l["eventId"], id, "webhook-id is the event id");
        if l.get("accepted").is_some() && index == done {
            done += 1;
        }
    }
    // Every event was refused twice before it was accepted.
    for id in &expected {
        let refused = lines.iter().filter(|l| l["refused"] == id.as_str()).count();
        assert_eq!(refused, 2, "{id}");
    }

    // The delivery log shows the failures and the successes; the cursor is at the end.
    // The receiver logs its 204 before the server has read it and moved the cursor.
    let last: (i64, i64) = sqlx::query_as(
        "select transaction_id, position from events order by transaction_id desc, position desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let cursor = commitment_tracker::store::cursor::EventCursor {
        transaction_id: last.0,
        position: last.1,
    }
    .encode();
    let status = std::cell::RefCell::new(Value::Null);
    eventually("the server records the last acceptance", || async {
        let answer = post(
            &server.address,
            &admin,
            WEBHOOK,
            json!({ "id": webhook_id }),
        )
        .await;
        let done = answer["data"]["webhook"]["deliveredUpTo"] == cursor.as_str();
        *status.borrow_mut() = answer;
        done
    })
    .await;
    let status = status.into_inner();
    let w = &status["data"]["webhook"];
    assert_eq!(w["state"], "ACTIVE", "{status}");
    assert_eq!(w["failures"], 0);
    let deliveries = w["deliveries"].as_array().unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d["statusCode"] == 500 && d["delivered"] == false)
    );
    assert!(
        deliveries
            .iter()
            .any(|d| d["statusCode"] == 204 && d["delivered"] == true)
    );
    assert!(deliveries.iter().any(|d| d["attempt"] == 3));
    server.kill().await;
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_paused_reported_and_resumed() {
    install("python", &[]).await;
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.retry_base = Duration::from_millis(10);
        s.webhooks.pause_after = 3;
    })
    .await;
    let port = free_port();
    let created = app
        .ok(
            CREATE,
            json!({ "input": {
                "url": format!("http://localhost:{port}/down"),
                "eventTypes": ["CommitmentAssessed"]
            }}),
        )
        .await;
    let secret = created["createWebhook"]["secret"].as_str().unwrap();
    let webhook_id = created["createWebhook"]["webhook"]["id"].clone();
    assert_eq!(
        created["createWebhook"]["webhook"]["eventTypes"],
        json!(["CommitmentAssessed"])
    );
    let receiver = Receiver::start(port, secret, 1000).await;
    let id = app.register("failing").await;
    app.assess(&id, "INADEQUATE", "2023-02-01").await;
    receiver
        .until("three refusals", |l| {
            l.iter().filter(|x| x.get("refused").is_some()).count() >= 3
        })
        .await;
    // Only the type asked for was delivered.
    assert!(
        receiver
            .lines()
            .iter()
            .all(|l| l["type"] == "CommitmentAssessed")
    );
    // The third failure is recorded just after the receiver answers.
    let paused = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let data = app.ok(WEBHOOK, json!({ "id": webhook_id })).await;
            if data["webhook"]["state"] == "PAUSED" {
                break data;
            }
        }
    })
    .await
    .expect("the webhook is paused");
    let w = &paused["webhook"];
    assert_eq!(w["failures"], 3);
    assert!(
        w["pausedReason"]
            .as_str()
            .unwrap()
            .contains("3 failed attempts"),
        "{w}"
    );
    assert_eq!(w["deliveries"].as_array().unwrap().len(), 3);
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("webhooks_paused_total"), "{metrics}");
    assert!(metrics.contains("webhook_deliveries_total{outcome=\"failed\"}"));
    // Nothing more is tried while paused; resuming tries again from the same event.
    let refusals = receiver.lines().len();
    let resumed = app
        .ok(
            "mutation($id: ID!) { resumeWebhook(id: $id) { state failures } }",
            json!({ "id": webhook_id }),
        )
        .await;
    assert_eq!(resumed["resumeWebhook"]["state"], "ACTIVE");
    receiver
        .until("an attempt after resuming", |l| l.len() > refusals)
        .await;
    let again = &receiver.lines()[refusals];
    assert_eq!(again["attempt"], 4, "{again}");

    // Deleting stops it.
    let deleted = app
        .ok(
            "mutation($id: ID!) { deleteWebhook(id: $id) }",
            json!({ "id": webhook_id }),
        )
        .await;
    assert_eq!(deleted["deleteWebhook"], true);
    let deleted = app
        .ok(
            "mutation($id: ID!) { deleteWebhook(id: $id) }",
            json!({ "id": webhook_id }),
        )
        .await;
    assert_eq!(deleted["deleteWebhook"], false);
}

#[tokio::test]
async fn addresses_inside_the_network_and_bad_input_are_refused_and_create_nothing() {
    let app = spawn_app().await;
    for (url, code) in [
        ("http://127.0.0.1:8080/hook", "BAD_USER_INPUT"),
        ("http://localhost/hook", "BAD_USER_INPUT"),
        ("http://[::1]/hook", "BAD_USER_INPUT"),
        ("http://169.254.169.254/latest/meta-data", "BAD_USER_INPUT"),
        ("http://10.0.0.7/hook", "BAD_USER_INPUT"),
        ("http://[::ffff:192.168.0.1]/hook", "BAD_USER_INPUT"),
        ("ftp://example.org/hook", "BAD_USER_INPUT"),
        ("https://user:secret@example.org/hook", "BAD_USER_INPUT"),
        ("not a url", "BAD_USER_INPUT"),
    ] {
        let (got, error) = app
            .error_code(
                CREATE,
                json!({ "input": { "url": url } }),
                Some(&app.admin_token),
            )
            .await;
        assert_eq!(got, code, "{url}: {error}");
    }
    let (_, error) = app
        .error_code(
            CREATE,
            json!({ "input": { "url": "http://127.0.0.1/hook" } }),
            Some(&app.admin_token),
        )
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("WEBHOOK_ALLOW_PRIVATE"),
        "{error}"
    );
    let (code, _) = app
        .error_code(
            CREATE,
            json!({ "input": { "url": "https://1.1.1.1/hook", "eventTypes": ["RatingChanged"] } }),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let assessor = app.token(Role::Assessor, "assessor").await;
    let (code, _) = app
        .error_code(
            CREATE,
            json!({ "input": { "url": "https://1.1.1.1/hook" } }),
            Some(&assessor),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app.error_code("{ webhooks { id } }", json!({}), None).await;
    assert_eq!(code, "UNAUTHENTICATED");
    let listed = app.ok("{ webhooks { id } }", json!({})).await;
    assert_eq!(listed["webhooks"], json!([]));
    // A public address literal is accepted without any lookup; the secret is not listed.
    let created = app
        .ok(
            CREATE,
            json!({ "input": { "url": "https://1.1.1.1/hook" } }),
        )
        .await;
    assert_eq!(created["createWebhook"]["webhook"]["state"], "ACTIVE");
    let listed = app
        .ok("{ webhooks { id url eventTypes } }", json!({}))
        .await;
    assert_eq!(listed["webhooks"][0]["url"], "https://1.1.1.1/hook");
    assert_eq!(listed["webhooks"][0]["eventTypes"], json!([]));
}
