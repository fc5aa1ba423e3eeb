//! The scripted session of a user: register, submit evidence, assess twice, read it back.

use crate::helpers::{SUBMIT, spawn_app};
use serde_json::json;

const COMMITMENT: &str = "query($slug: String!) {
    commitment(slug: $slug) {
        id slug version dueDate
        currentAssessment { id overall assessedOn }
        assessments { id overall assessedOn direction previous { id overall } actor cursor }
        evidence { id title sourceUrl }
        revisions { version reason effectiveOn changes { field from to } }
        history(first: 50) {
            totalCount
            pageInfo { hasNextPage endCursor }
            edges { cursor node { type streamType version actor role occurredAt recordedAt hash previousHash } }
        }
    }
}";

#[tokio::test]
async fn a_session_records_each_change_and_reads_back_the_verdicts_oldest_first() {
    let app = spawn_app().await;
    let id = app.register("epr-all-trusts").await;
    let evidence = app
        .ok(
            SUBMIT,
            json!({ "input": {
                "commitmentIds": [id], "title": "Written evidence DHS0042",
                "summary": "The department's answers.", "submittedBy": "DHSC",
                "sourceUrl": "https://committees.parliament.uk/writtenevidence/113526/html/",
                "submittedOn": "2022-11-01", "kind": "WRITTEN_EVIDENCE"
            }}),
        )
        .await;
    let evidence_id = evidence["submitEvidence"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = app.assess(&id, "INADEQUATE", "2023-02-17").await;
    let second = app.assess(&id, "REQUIRES_IMPROVEMENT", "2024-02-17").await;
    assert_eq!(second["previous"]["id"], first["id"]);
    assert_eq!(second["previousOverall"], "INADEQUATE");
    assert_eq!(second["direction"], "IMPROVED");
    assert_eq!(first["direction"], "FIRST");

    let c = &app
        .ok(COMMITMENT, json!({ "slug": "epr-all-trusts" }))
        .await["commitment"];
    assert_eq!(c["version"], 3, "registered, assessed, assessed");
    let assessments = c["assessments"].as_array().unwrap();
    assert_eq!(assessments.len(), 2);
    assert_eq!(assessments[0]["id"], first["id"], "oldest first");
    assert_eq!(assessments[1]["id"], second["id"]);
    assert_eq!(
        assessments[1]["previous"]["overall"], "INADEQUATE",
        "the rating it replaced"
    );
    assert!(assessments[0]["previous"].is_null());
    assert_eq!(assessments[1]["actor"], "test-admin");
    assert_eq!(c["currentAssessment"]["id"], second["id"]);
    assert_eq!(c["currentAssessment"]["overall"], "REQUIRES_IMPROVEMENT");
    assert_eq!(c["evidence"][0]["id"], evidence_id.as_str());

    let history = c["history"]["edges"].as_array().unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CommitmentRegistered",
            "EvidenceSubmitted",
            "CommitmentAssessed",
            "CommitmentAssessed"
        ]
    );
    assert_eq!(c["history"]["totalCount"], 4);
    let cursors: Vec<&str> = history
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "cursors are distinct");
    for e in history {
        assert_eq!(e["node"]["actor"], "test-admin");
        assert_eq!(e["node"]["role"], "admin");
        assert_eq!(e["node"]["hash"].as_str().unwrap().len(), 64);
    }
    // The second assessment chains from the first in the commitment's stream.
    assert_eq!(
        history[3]["node"]["previousHash"],
        history[2]["node"]["hash"]
    );
    assert_eq!(
        history[0]["node"]["occurredAt"],
        "2022-06-29T00:00:00+00:00"
    );
    assert_eq!(
        history[2]["node"]["occurredAt"],
        "2023-02-17T00:00:00+00:00"
    );
}

#[tokio::test]
async fn a_back_dated_assessment_joins_the_timeline_in_date_order_without_becoming_current() {
    let app = spawn_app().await;
    let id = app.register("nhs-app-registration").await;
    let late = app.assess(&id, "GOOD", "2024-05-01").await;
    let early = app.assess(&id, "INADEQUATE", "2023-02-17").await;
    assert_eq!(early["direction"], "FIRST");
    let c = &app
        .ok(
            "query($id: ID!) { commitment(id: $id) { currentAssessment { id } assessments { id previous { id } } } }",
            json!({ "id": id }),
        )
        .await["commitment"];
    assert_eq!(c["currentAssessment"]["id"], late["id"]);
    assert_eq!(c["assessments"][0]["id"], early["id"]);
    assert_eq!(c["assessments"][1]["previous"]["id"], early["id"]);
}

#[tokio::test]
async fn commitments_filter_by_area_rating_and_status_of_the_current_verdict() {
    let app = spawn_app().await;
    let a = app.register("a-one").await;
    let b = app.register("b-two").await;
    app.register("c-three").await;
    app.assess(&a, "INADEQUATE", "2023-02-17").await;
    app.assess(&a, "GOOD", "2024-02-17").await;
    app.assess(&b, "INADEQUATE", "2023-02-17").await;
    let slugs = |data: &serde_json::Value| -> Vec<String> {
        data["commitments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    let q = "query($r: Rating, $s: DeliveryStatus, $area: String, $first: Int, $after: String) {
        commitments(rating: $r, deliveryStatus: $s, area: $area, first: $first, after: $after) {
            totalCount nodes { slug } pageInfo { hasNextPage endCursor }
        }
    }";
    assert_eq!(
        slugs(&app.ok(q, json!({ "r": "INADEQUATE" })).await),
        ["b-two"]
    );
    assert_eq!(slugs(&app.ok(q, json!({ "r": "GOOD" })).await), ["a-one"]);
    assert_eq!(
        slugs(&app.ok(q, json!({ "s": "NOT_ON_TRACK" })).await),
        ["a-one", "b-two"]
    );
    assert_eq!(
        slugs(&app.ok(q, json!({ "area": "Elsewhere" })).await),
        Vec::<String>::new()
    );
    let page1 = app.ok(q, json!({ "first": 2 })).await;
    assert_eq!(slugs(&page1), ["a-one", "b-two"]);
    assert_eq!(page1["commitments"]["totalCount"], 3);
    assert_eq!(page1["commitments"]["pageInfo"]["hasNextPage"], true);
    let after = page1["commitments"]["pageInfo"]["endCursor"].clone();
    let page2 = app.ok(q, json!({ "first": 2, "after": after })).await;
    assert_eq!(slugs(&page2), ["c-three"]);
    assert_eq!(page2["commitments"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn a_revision_extends_the_deadline_and_a_dispute_attaches_to_its_assessment() {
    let app = spawn_app().await;
    let id = app.register("epr-all-trusts").await;
    let assessment = app.assess(&id, "INADEQUATE", "2023-02-17").await;
    let revised = app
        .ok(
            "mutation($input: ReviseCommitmentInput!) { reviseCommitment(input: $input) { dueDate version target } }",
            json!({ "input": {
                "commitmentId": id, "expectedVersion": 2, "dueDate": "2026-03-31",
                "target": "Every trust with an EPR by Mar 2026",
                "reason": "IPA judged Mar 2025 unachievable", "effectiveOn": "2023-07-31"
            }}),
        )
        .await;
    assert_eq!(revised["reviseCommitment"]["dueDate"], "2026-03-31");
    assert_eq!(revised["reviseCommitment"]["version"], 3);
    let dispute = app
        .ok(
            "mutation($input: DisputeAssessmentInput!) {
                disputeAssessment(input: $input) { id disputedBy disputedOn assessment { id } }
            }",
            json!({ "input": {
                "assessmentId": assessment["id"], "disputedBy": "Department of Health and Social Care",
                "statement": "We reject the overall rating.", "disputedOn": "2023-04-17"
            }}),
        )
        .await;
    assert_eq!(
        dispute["disputeAssessment"]["assessment"]["id"],
        assessment["id"]
    );
    let c = &app
        .ok(
            "query($id: ID!) { commitment(id: $id) {
                dueDate revisions { version reason effectiveOn changes { field from to } }
                assessments { disputes { statement disputedOn } }
            } }",
            json!({ "id": id }),
        )
        .await["commitment"];
    assert_eq!(c["dueDate"], "2026-03-31");
    let changes = &c["revisions"][0]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|ch| ch["field"] == "dueDate"
                && ch["from"] == "2025-03-31"
                && ch["to"] == "2026-03-31"),
        "{changes}"
    );
    assert_eq!(
        c["assessments"][0]["disputes"][0]["disputedOn"],
        "2023-04-17"
    );
}

#[tokio::test]
async fn retracted_evidence_shows_its_reason_and_cannot_be_retracted_again_or_cited() {
    let app = spawn_app().await;
    let id = app.register("data-for-rd").await;
    let e = app
        .ok(
            SUBMIT,
            json!({ "input": { "commitmentIds": [id], "title": "T", "summary": "S", "submittedBy": "WEISS" }}),
        )
        .await["submitEvidence"]["id"]
        .clone();
    let retract = "mutation($input: RetractEvidenceInput!) { retractEvidence(input: $input) { retracted retractionReason version } }";
    let r = app
        .ok(
            retract,
            json!({ "input": { "evidenceId": e, "reason": "Duplicate" }}),
        )
        .await;
    assert_eq!(r["retractEvidence"]["retracted"], true);
    assert_eq!(r["retractEvidence"]["retractionReason"], "Duplicate");
    let events = app.event_count().await;
    let (code, error) = app
        .error_code(
            retract,
            json!({ "input": { "evidenceId": e, "reason": "Again" }}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{error}");
    let (code, _) = app
        .error_code(
            crate::helpers::ASSESS,
            json!({ "input": {
                "commitmentId": id, "assessor": "P", "assessorKind": "OTHER",
                "deliveryStatus": "MET", "rationale": "r", "evidenceIds": [e]
            }}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(
        app.event_count().await,
        events,
        "refused commands write nothing"
    );
}
