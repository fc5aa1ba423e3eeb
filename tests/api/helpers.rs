//! `spawn_app`: a real server on a free port over a fresh database, and a small GraphQL client.

#[path = "../common/mod.rs"]
mod common;

use commitment_tracker::auth::Role;
use commitment_tracker::config::Settings;
use commitment_tracker::startup::Application;
use commitment_tracker::store::tokens;
pub use common::{TestDatabase, open_write_transaction, server_url, tamper};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub admin_token: String,
    pub client: reqwest::Client,
    // Dropped last: the database outlives the pool that uses it.
    pub db: TestDatabase,
}

/// Starts the server on 127.0.0.1:0 over a new database, with an admin token.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    crate::statements::install();
    let db = TestDatabase::create().await;
    let mut settings = Settings::new(db.url.clone(), "127.0.0.1:0".parse().unwrap());
    // The feed must not rely on its timer in tests: a long poll proves the wake-ups work.
    settings.feed_poll_interval = Duration::from_secs(30);
    // Every test's client is one address driving the server hard; the limits have tests of
    // their own (tests/api/ratelimit.rs).
    settings.rate_limit_per_ip = 0;
    settings.rate_limit_per_token = 0;
    adjust(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("build the application");
    let address = format!("http://{}", app.local_addr());
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let (_, admin_token) = tokens::create(&pool, "test-admin", Role::Admin, None)
        .await
        .unwrap();
    TestApp {
        address,
        pool,
        admin_token,
        client: reqwest::Client::new(),
        db,
    }
}

/// The project's seed file.
pub fn seed_file() -> commitment_tracker::seed::SeedFile {
    commitment_tracker::seed::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/nhs-digitisation.json"
    )))
    .expect("the seed file loads")
}

impl TestApp {
    /// Command handlers on this app's database (as `import` uses them).
    pub async fn commands(&self) -> commitment_tracker::commands::Commands {
        let feed =
            commitment_tracker::store::feed::Feed::new(self.pool.clone(), Default::default())
                .await
                .unwrap();
        commitment_tracker::commands::Commands::new(self.pool.clone(), feed)
    }

    /// The WebSocket address of the subscriptions endpoint.
    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.address.replace("http://", "ws://"))
    }

    /// A token with `role`.
    pub async fn token(&self, role: Role, name: &str) -> String {
        tokens::create(&self.pool, name, role, None)
            .await
            .unwrap()
            .1
    }

    /// POSTs a GraphQL request, returning the HTTP status and the JSON body.
    pub async fn post(&self, query: &str, variables: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Runs a request as admin and returns `data`, failing the test on any error.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(query, variables, Some(&self.admin_token)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs a request as admin and returns its first error's code, asserting there is one.
    pub async fn error_code(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> (String, Value) {
        let (_, body) = self.post(query, variables, token).await;
        let error = body["errors"][0].clone();
        assert!(!error.is_null(), "expected an error: {body}");
        let code = error["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (code, error)
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Registers a commitment and returns its id.
    pub async fn register(&self, slug: &str) -> String {
        let data = self
            .ok(
                REGISTER,
                json!({ "input": {
                    "slug": slug, "title": format!("Commitment {slug}"),
                    "description": "A promise.", "area": "Digital foundations",
                    "policySource": "A plan for digital health and social care (2022)",
                    "target": "Every trust with an EPR", "dueDate": "2025-03-31",
                    "announcedOn": "2022-06-29"
                }}),
            )
            .await;
        data["registerCommitment"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Records an assessment and returns the response's `assessCommitment`.
    pub async fn assess(&self, commitment_id: &str, overall: &str, on: &str) -> Value {
        self.ok(
            ASSESS,
            json!({ "input": {
                "commitmentId": commitment_id, "assessor": "HSCC Expert Panel",
                "assessorKind": "INDEPENDENT", "assessedOn": on, "overall": overall,
                "deliveryStatus": "NOT_ON_TRACK", "rationale": "Far from on track.",
                "evaluation": "HC 780"
            }}),
        )
        .await["assessCommitment"]
            .clone()
    }
}

pub const REGISTER: &str = "mutation($input: RegisterCommitmentInput!) {
    registerCommitment(input: $input) { id slug version dueDate }
}";

pub const ASSESS: &str = "mutation($input: AssessCommitmentInput!) {
    assessCommitment(input: $input) {
        id overall assessedOn cursor actor direction
        previous { id overall }
        previousOverall
    }
}";

pub const SUBMIT: &str = "mutation($input: SubmitEvidenceInput!) {
    submitEvidence(input: $input) { id title cursor commitments { id } }
}";

/// Polls `condition` until it holds, failing after 60 s.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
