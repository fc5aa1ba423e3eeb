//! Writes are guarded: optimistic concurrency, idempotency keys, tokens and roles, validation.
//! Every refused write leaves the log unchanged.

use crate::helpers::{ASSESS, REGISTER, SUBMIT, spawn_app};
use commitment_tracker::auth::Role;
use serde_json::json;

fn assessment_input(commitment_id: &str) -> serde_json::Value {
    json!({
        "commitmentId": commitment_id, "assessor": "HSCC Expert Panel", "assessorKind": "INDEPENDENT",
        "assessedOn": "2023-02-17", "overall": "INADEQUATE", "deliveryStatus": "NOT_ON_TRACK",
        "rationale": "Far from on track."
    })
}

#[tokio::test]
async fn assess_returns_conflict_naming_both_versions_when_expected_version_is_stale() {
    let app = spawn_app().await;
    let id = app.register("gp-data-public-support").await;
    app.assess(&id, "INADEQUATE", "2023-02-17").await; // now at version 2
    let before = app.event_count().await;
    let mut input = assessment_input(&id);
    input["expectedVersion"] = json!(1);
    let (code, error) = app
        .error_code(ASSESS, json!({ "input": input }), Some(&app.admin_token))
        .await;
    assert_eq!(code, "CONFLICT", "{error}");
    assert_eq!(error["extensions"]["expectedVersion"], 1);
    assert_eq!(error["extensions"]["actualVersion"], 2);
    assert_eq!(app.event_count().await, before, "a conflict writes nothing");

    input["expectedVersion"] = json!(2);
    app.ok(ASSESS, json!({ "input": input })).await;
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn concurrent_writers_with_the_same_expected_version_cannot_both_win() {
    let app = spawn_app().await;
    let id = app.register("ddat-workforce-growth").await;
    let mut input = assessment_input(&id);
    input["expectedVersion"] = json!(1);
    let attempts = (0..8).map(|_| {
        app.post(
            ASSESS,
            json!({ "input": input.clone() }),
            Some(&app.admin_token),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let won = results
        .iter()
        .filter(|(_, b)| b.get("errors").is_none())
        .count();
    let conflicts = results
        .iter()
        .filter(|(_, b)| b["errors"][0]["extensions"]["code"] == "CONFLICT")
        .count();
    assert_eq!((won, conflicts), (1, 7), "{results:?}");
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn a_repeated_idempotency_key_writes_one_event_and_returns_the_first_result() {
    let app = spawn_app().await;
    let id = app.register("remote-monitoring-ltc").await;
    let before = app.event_count().await;
    let mut input = assessment_input(&id);
    input["idempotencyKey"] = json!("panel-2023-remote-monitoring");
    let first = app.ok(ASSESS, json!({ "input": input.clone() })).await;
    let again = app.ok(ASSESS, json!({ "input": input.clone() })).await;
    let concurrent = futures_util::future::join_all((0..5).map(|_| {
        app.post(
            ASSESS,
            json!({ "input": input.clone() }),
            Some(&app.admin_token),
        )
    }))
    .await;
    assert_eq!(
        first["assessCommitment"]["id"],
        again["assessCommitment"]["id"]
    );
    for (_, body) in &concurrent {
        assert_eq!(
            body["data"]["assessCommitment"]["id"], first["assessCommitment"]["id"],
            "{body}"
        );
    }
    assert_eq!(app.event_count().await, before + 1, "one event for one key");

    // The same key with a different command is refused.
    input["overall"] = json!("GOOD");
    let (code, error) = app
        .error_code(ASSESS, json!({ "input": input }), Some(&app.admin_token))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "idempotencyKey");
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn a_mutation_without_a_token_is_unauthenticated_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let input = json!({ "input": {
        "slug": "x", "title": "t", "description": "d", "area": "a", "policySource": "p", "target": "t"
    }});
    let (code, _) = app.error_code(REGISTER, input.clone(), None).await;
    assert_eq!(code, "UNAUTHENTICATED");
    let (status, body) = app
        .post(REGISTER, input.clone(), Some("ct_not-a-real-token"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn roles_below_the_command_are_forbidden() {
    let app = spawn_app().await;
    let id = app.register("nhs-app-registration").await;
    let contributor = app.token(Role::Contributor, "a citizen").await;
    let assessor = app.token(Role::Assessor, "an evaluator").await;
    let before = app.event_count().await;
    let (code, _) = app
        .error_code(
            ASSESS,
            json!({ "input": assessment_input(&id) }),
            Some(&contributor),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app
        .error_code(
            REGISTER,
            json!({ "input": { "slug": "y", "title": "t", "description": "d", "area": "a", "policySource": "p", "target": "t" }}),
            Some(&assessor),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(app.event_count().await, before);

    // Each role can do its own work, and is recorded as the actor.
    let (_, body) = app
        .post(
            SUBMIT,
            json!({ "input": { "commitmentIds": [id], "title": "T", "summary": "S", "submittedBy": "Nuffield Trust" }}),
            Some(&contributor),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, body) = app
        .post(
            "mutation($input: AssessCommitmentInput!) { assessCommitment(input: $input) { actor } }",
            json!({ "input": assessment_input(&id) }),
            Some(&assessor),
        )
        .await;
    assert_eq!(body["data"]["assessCommitment"]["actor"], "an evaluator");
}

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.register("integrated-care-records").await;
    let before = app.event_count().await;
    let cases = [
        (
            SUBMIT,
            json!({ "commitmentIds": [id], "title": "T", "summary": "S", "submittedBy": "X", "sourceUrl": "javascript:alert(1)" }),
            "sourceUrl",
        ),
        (
            SUBMIT,
            json!({ "commitmentIds": [], "title": "T", "summary": "S", "submittedBy": "X" }),
            "commitmentIds",
        ),
        (
            SUBMIT,
            json!({ "commitmentIds": ["not-a-uuid"], "title": "T", "summary": "S", "submittedBy": "X" }),
            "commitmentIds",
        ),
        (
            SUBMIT,
            json!({ "commitmentIds": [id], "title": "  ", "summary": "S", "submittedBy": "X" }),
            "title",
        ),
        (
            REGISTER,
            json!({ "slug": "Bad Slug", "title": "t", "description": "d", "area": "a", "policySource": "p", "target": "t" }),
            "slug",
        ),
        (
            REGISTER,
            json!({ "slug": "integrated-care-records", "title": "t", "description": "d", "area": "a", "policySource": "p", "target": "t" }),
            "slug",
        ),
        (
            ASSESS,
            json!({ "commitmentId": id, "assessor": "P", "assessorKind": "OTHER", "deliveryStatus": "MET", "rationale": "", "assessedOn": "2023-01-01" }),
            "rationale",
        ),
        (
            ASSESS,
            json!({ "commitmentId": id, "assessor": "P", "assessorKind": "OTHER", "deliveryStatus": "MET", "rationale": "r", "assessedOn": "1800-01-01" }),
            "assessedOn",
        ),
    ];
    for (query, input, field) in cases {
        let (code, error) = app
            .error_code(query, json!({ "input": input }), Some(&app.admin_token))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{input}: {error}");
        assert_eq!(error["extensions"]["field"], field, "{input}: {error}");
        assert!(
            !error["message"].as_str().unwrap().contains("constraint"),
            "{error}"
        );
    }
    // Malformed values the schema itself refuses are BAD_USER_INPUT too.
    let mut bad_date = assessment_input(&id);
    bad_date["assessedOn"] = json!("17/02/2023");
    let (code, _) = app
        .error_code(ASSESS, json!({ "input": bad_date }), Some(&app.admin_token))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let mut bad_enum = assessment_input(&id);
    bad_enum["overall"] = json!("SPLENDID");
    let (code, _) = app
        .error_code(ASSESS, json!({ "input": bad_enum }), Some(&app.admin_token))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(
        app.event_count().await,
        before,
        "refused commands write nothing"
    );
}

#[tokio::test]
async fn commands_on_unknown_ids_are_not_found() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let (code, _) = app
        .error_code(
            ASSESS,
            json!({ "input": assessment_input(&unknown) }),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .error_code(
            SUBMIT,
            json!({ "input": { "commitmentIds": [unknown], "title": "T", "summary": "S", "submittedBy": "X" }}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .error_code(
            "mutation($input: DisputeAssessmentInput!) { disputeAssessment(input: $input) { id } }",
            json!({ "input": { "assessmentId": unknown, "disputedBy": "D", "statement": "S" }}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(app.event_count().await, 0);
    let data = app
        .ok(
            "query($id: ID!) { commitment(id: $id) { id } evidence(id: $id) { id } }",
            json!({ "id": unknown }),
        )
        .await;
    assert!(data["commitment"].is_null() && data["evidence"].is_null());
}

#[tokio::test]
async fn concurrent_writers_without_an_expected_version_all_succeed_in_sequence() {
    let app = spawn_app().await;
    let id = app.register("digital-social-care-records").await;
    let input = assessment_input(&id);
    let results = futures_util::future::join_all((0..8).map(|_| {
        app.post(
            ASSESS,
            json!({ "input": input.clone() }),
            Some(&app.admin_token),
        )
    }))
    .await;
    for (_, body) in &results {
        assert!(body.get("errors").is_none(), "{body}");
    }
    let versions: Vec<i64> = sqlx::query_scalar("select version::bigint from events where stream_id = $1::uuid order by transaction_id, position")
        .bind(&id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        versions,
        (1..=9).collect::<Vec<_>>(),
        "committed order is version order"
    );
}

#[tokio::test]
async fn a_token_revoked_elsewhere_writes_nothing_though_this_server_still_trusts_it() {
    // A long time to live, so that the server's cache certainly still holds the token.
    let app = crate::helpers::spawn_app_with(|s| {
        s.token_cache = std::time::Duration::from_secs(3600);
    })
    .await;
    let id = app.register("nhs-app-functionality").await;
    let (token_id, token) = commitment_tracker::store::tokens::create(
        &app.pool,
        "departing assessor",
        Role::Assessor,
        None,
    )
    .await
    .unwrap();
    let input = json!({ "input": assessment_input(&id) });
    let (status, body) = app.post(ASSESS, input.clone(), Some(&token)).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");

    // Revoked as the command line does it: straight in the database, not through this server.
    assert!(
        commitment_tracker::store::tokens::revoke(&app.pool, token_id)
            .await
            .unwrap()
    );
    let before = app.event_count().await;
    let (code, error) = app.error_code(ASSESS, input.clone(), Some(&token)).await;
    assert_eq!(code, "UNAUTHENTICATED", "{error}");
    assert_eq!(
        app.event_count().await,
        before,
        "a revoked token writes nothing"
    );

    // Revoked through this server: refused at the door at once, reads included.
    let (_, other) =
        commitment_tracker::store::tokens::create(&app.pool, "another", Role::Assessor, None)
            .await
            .unwrap();
    let (status, _) = app
        .post("{ events { totalCount } }", json!({}), Some(&other))
        .await;
    assert_eq!(status, 200);
    let listed = app.ok("{ tokens { id name } }", json!({})).await;
    let other_id = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "another")
        .map(|t| t["id"].clone())
        .unwrap();
    app.ok(
        "mutation($id: ID!) { revokeToken(id: $id) }",
        json!({ "id": other_id }),
    )
    .await;
    let (status, body) = app
        .post("{ events { totalCount } }", json!({}), Some(&other))
        .await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
}
