//! Rate limits per client address and per token, over real HTTP and WebSocket: bursts are
//! answered 429 with `Retry-After` and `RATE_LIMITED`, change nothing, and pass again once
//! the wait is over; `X-Forwarded-For` counts only from a trusted proxy.

use crate::helpers::{REGISTER, TestApp, spawn_app_with};
use crate::subscriptions::Client;
use commitment_tracker::auth::Role;
use commitment_tracker::http::ratelimit::parse_trusted;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One GraphQL request from `forwarded_for` (as a proxy would say) with `token`: the status,
/// the `Retry-After` header and the body.
async fn request(
    app: &TestApp,
    query: &str,
    variables: Value,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    (
        status,
        retry_after,
        response.json().await.expect("JSON body"),
    )
}

async fn typename(app: &TestApp, token: Option<&str>, forwarded_for: Option<&str>) -> u16 {
    request(app, "{ __typename }", json!({}), token, forwarded_for)
        .await
        .0
}

/// Sends `n` requests one after another as fast as they are answered: how many were served,
/// and the longest time over which the served ones could have earned new allowance.
async fn burst(app: &TestApp, n: usize, token: Option<&str>, from: Option<&str>) -> (usize, f64) {
    let started = Instant::now();
    let mut served = 0;
    for _ in 0..n {
        let status = typename(app, token, from).await;
        assert!(status == 200 || status == 429, "status {status}");
        served += usize::from(status == 200);
    }
    (served, started.elapsed().as_secs_f64())
}

/// At most the burst plus what the rate earns over `elapsed` seconds.
fn allowed(rate: u32, elapsed: f64) -> usize {
    rate as usize + (f64::from(rate) * elapsed).ceil() as usize
}

#[tokio::test]
async fn a_burst_is_refused_with_retry_after_changes_nothing_and_passes_after_the_wait() {
    let app = spawn_app_with(|s| s.rate_limit_per_ip = 5).await;
    let events = app.event_count().await;

    let (served, elapsed) = burst(&app, 30, None, None).await;
    assert!(served >= 5, "the whole burst of 5 is served: {served}");
    assert!(
        served <= allowed(5, elapsed),
        "{served} served in {elapsed:.2} s at 5/s"
    );

    // Over the limit: 429, Retry-After, a coded GraphQL error, and the mutation is not run.
    // (A mutation sent just as the rate earns a request is served, and counted as such.)
    let register = |n: usize| {
        json!({ "input": {
            "slug": format!("limited-{n}"), "title": "Limited", "description": "A promise.",
            "area": "Digital foundations",
            "policySource": "A plan for digital health and social care (2022)",
            "target": "Every trust", "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
        }})
    };
    let mut registered = 0;
    let (status, retry_after, body) = loop {
        let answer = request(
            &app,
            REGISTER,
            register(registered),
            Some(&app.admin_token),
            None,
        )
        .await;
        if answer.0 != 200 || registered == 5 {
            break answer;
        }
        registered += 1;
    };
    assert_eq!(status, 429, "{body}");
    let retry_after = retry_after.expect("Retry-After");
    assert_eq!(
        retry_after, 1,
        "a wait of one interval (0.2 s) rounds up to 1 s"
    );
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(error["extensions"]["retryAfter"], retry_after);
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        app.event_count().await,
        events + registered as i64,
        "a refused mutation appended"
    );

    // Probes and scrapers are never turned away, and the refusals are counted.
    let health = app.client.get(format!("{}/readyz", app.address));
    assert_eq!(health.send().await.unwrap().status(), 200);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_rate_limited_total{scope=\"address\"}")),
        "{metrics}"
    );

    // Waiting as told is enough: a whole burst again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) =
        request(&app, REGISTER, register(99), Some(&app.admin_token), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(app.event_count().await, events + registered as i64 + 1);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Behind a trusted proxy (here the test itself, on 127.0.0.1), each client has its own
    // budget: one spent leaves the next untouched.
    let behind = spawn_app_with(|s| {
        s.rate_limit_per_ip = 1;
        s.trusted_proxies = parse_trusted("127.0.0.1").unwrap();
    })
    .await;
    let (served, elapsed) = burst(&behind, 12, None, Some("198.51.100.7")).await;
    assert!((1..=allowed(1, elapsed)).contains(&served), "{served}");
    assert_eq!(
        typename(&behind, None, Some("198.51.100.7")).await,
        429,
        "the first client is spent"
    );
    assert_eq!(
        typename(&behind, None, Some("198.51.100.8, 203.0.113.9")).await,
        200,
        "the right-most untrusted hop is another client"
    );
    // A client cannot escape by naming someone else to the left of its own address.
    assert_eq!(
        typename(&behind, None, Some("192.0.2.1, 198.51.100.7")).await,
        429
    );

    // Not behind one: the header is the client's own claim and changes nothing.
    let direct = spawn_app_with(|s| s.rate_limit_per_ip = 3).await;
    let mut served = 0;
    let started = Instant::now();
    for i in 0..12 {
        let claimed = format!("198.51.100.{i}");
        served += usize::from(typename(&direct, None, Some(&claimed)).await == 200);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!((3..=allowed(3, elapsed)).contains(&served), "{served}");
}

#[tokio::test]
async fn a_token_is_limited_across_every_address_it_is_used_from() {
    let app = spawn_app_with(|s| {
        s.rate_limit_per_ip = 1000;
        s.rate_limit_per_token = 1;
        s.trusted_proxies = parse_trusted("127.0.0.0/8").unwrap();
    })
    .await;
    let shared = app.token(Role::Contributor, "shared").await;
    let other = app.token(Role::Contributor, "other").await;
    let started = Instant::now();
    let mut served = 0;
    for i in 0..12 {
        let from = format!("203.0.113.{i}");
        served += usize::from(typename(&app, Some(&shared), Some(&from)).await == 200);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!((1..=allowed(1, elapsed)).contains(&served), "{served}");
    assert_eq!(
        typename(&app, Some(&shared), Some("203.0.113.99")).await,
        429
    );
    assert_eq!(
        typename(&app, Some(&other), Some("203.0.113.99")).await,
        200
    );
    assert_eq!(typename(&app, None, Some("203.0.113.99")).await, 200);
}

#[tokio::test]
async fn websocket_messages_over_the_limit_are_refused_per_subscription() {
    let app = spawn_app_with(|s| s.rate_limit_per_ip = 4).await;
    let mut client = Client::open(&app, json!({})).await.expect("acknowledged");
    // The upgrade and the init spent two; of ten subscriptions at once most are refused,
    // each with its own id and the code, and the connection stays open.
    for i in 0..10 {
        client
            .subscribe(
                &format!("s{i}"),
                "subscription { ratingChanged { id } }",
                json!({}),
            )
            .await;
    }
    let (error, message) = loop {
        let message = client.receive().await;
        assert_ne!(message["type"], "closed", "{message}");
        if message["type"] == "error" {
            break (message["payload"][0].clone(), message);
        }
    };
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{message}");
    assert!(
        message["id"].as_str().unwrap().starts_with('s'),
        "{message}"
    );
    let retry = error["message"].as_str().unwrap().to_owned();
    assert!(retry.contains("retry after"), "{retry}");

    // After waiting, the same connection is served again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    client.subscribe("q", "{ __typename }", json!({})).await;
    let next = loop {
        let message = client.receive().await;
        if message["id"] == "q" {
            break message;
        }
    };
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["__typename"], "Query");
}

/// `GET path`, waiting out each 429 as its `Retry-After` says.
async fn get_patiently(app: &TestApp, path: &str) -> reqwest::Response {
    loop {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        if response.status() != 429 {
            return response;
        }
        let secs: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
}

/// The server's count of refusals so far.
async fn refusals(app: &TestApp) -> f64 {
    let text = get_patiently(app, "/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_rate_limited_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn log_audit_waits_out_the_limit_and_completes() {
    use commitment_tracker::tlog::{audit, checkpoint};
    let app = spawn_app_with(|s| {
        s.rate_limit_per_ip = 1;
        s.log.checkpoint_interval = Duration::ZERO;
        s.log.sequence_interval = Duration::from_millis(20);
    })
    .await;
    commitment_tracker::seed::import(&app.commands().await, &crate::helpers::seed_file())
        .await
        .unwrap();
    let events = app.event_count().await as u64;
    let vkey = get_patiently(&app, "/log/key").await.text().await.unwrap();
    let vkey = vkey.trim();
    // Each round waits out the limit.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {events} events"
        );
        let response = get_patiently(&app, "/log/checkpoint").await;
        if response.status() == 200 {
            let note = response.text().await.unwrap();
            if checkpoint::verify(note.as_bytes(), vkey).unwrap().size == events {
                break;
            }
        }
    }

    // A checkpoint and at least two tiles at one request a second: refused on the way,
    // and done all the same.
    let before = refusals(&app).await;
    let report = audit::audit(&app.address, vkey, None)
        .await
        .expect("the audit completes");
    assert_eq!(report.checkpoint.size, events);
    assert_eq!(report.leaves_fetched, events);
    assert!(report.tiles_fetched >= 1);
    assert!(
        refusals(&app).await > before,
        "the audit was never refused, so this test shows nothing"
    );
}
