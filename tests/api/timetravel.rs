//! Time travel on two axes: `asOf` (transaction time) reproduces exactly what the system
//! answered; `validOn` (business time) shows what was in force on a date.

use crate::helpers::{ASSESS, REGISTER, SUBMIT, TestApp, seed_file, spawn_app};
use commitment_tracker::seed;
use proptest::prelude::*;
use serde_json::json;

/// Everything a reader can see, in one query; `$asOf`/`$validOn` select the instant or date.
const EVERYTHING: &str = "query($asOf: DateTime, $validOn: Date) {
    commitments(first: 500, asOf: $asOf, validOn: $validOn) {
        totalCount
        edges { cursor node {
            id slug title target dueDate version cursor updatedAt
            currentAssessment { id overall deliveryStatus assessedOn }
            independent: currentAssessment(kind: INDEPENDENT) { id }
            assessments {
                id overall assessedOn direction previousOverall recordedAt actor cursor
                evidence { id title retracted }
                disputes { id statement disputedOn }
            }
            evidence { id title retracted retractionReason version commitments { slug } }
            revisions { version reason effectiveOn changes { field from to } }
            history(first: 500) { totalCount edges { cursor node { type version hash } } }
        } }
    }
    scorecard(asOf: $asOf, validOn: $validOn) {
        total unrated byRating { rating count } byDeliveryStatus { status count }
        commitments { slug }
    }
}";

#[derive(Debug, Clone)]
enum Step {
    Register,
    Assess {
        commitment: usize,
        rating: usize,
        day: i64,
    },
    Revise {
        commitment: usize,
        day: i64,
    },
    Submit {
        commitment: usize,
    },
    Retract {
        evidence: usize,
    },
    Dispute {
        assessment: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Register),
        4 => (any::<usize>(), 0..4usize, 0..1500i64).prop_map(|(commitment, rating, day)| Step::Assess { commitment, rating, day }),
        1 => (any::<usize>(), 0..1500i64).prop_map(|(commitment, day)| Step::Revise { commitment, day }),
        2 => any::<usize>().prop_map(|commitment| Step::Submit { commitment }),
        1 => any::<usize>().prop_map(|evidence| Step::Retract { evidence }),
        1 => any::<usize>().prop_map(|assessment| Step::Dispute { assessment }),
    ]
}

struct World {
    commitments: Vec<String>,
    evidence: Vec<(String, bool)>,
    assessments: Vec<String>,
    n: usize,
}

fn date(day: i64) -> String {
    (chrono::NaiveDate::from_ymd_opt(2022, 7, 1).unwrap() + chrono::Duration::days(day)).to_string()
}

/// Applies one step through the API; steps that do not apply yet (nothing to assess) are skipped.
async fn apply(app: &TestApp, world: &mut World, step: &Step) {
    world.n += 1;
    let n = world.n;
    match step {
        Step::Register => {
            let data = app
                .ok(
                    REGISTER,
                    json!({ "input": {
                        "slug": format!("c-{n}"), "title": format!("Commitment {n}"), "description": "d",
                        "area": if n.is_multiple_of(2) { "Even" } else { "Odd" }, "policySource": "p",
                        "target": "t", "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
                    }}),
                )
                .await;
            world.commitments.push(
                data["registerCommitment"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        Step::Assess {
            commitment,
            rating,
            day,
        } if !world.commitments.is_empty() => {
            let id = &world.commitments[commitment % world.commitments.len()];
            let ratings = ["OUTSTANDING", "GOOD", "REQUIRES_IMPROVEMENT", "INADEQUATE"];
            let data = app
                .ok(
                    ASSESS,
                    json!({ "input": {
                        "commitmentId": id, "assessor": "Panel", "assessorKind": if n.is_multiple_of(3) { "GOVERNMENT" } else { "INDEPENDENT" },
                        "assessedOn": date(*day), "overall": ratings[*rating], "deliveryStatus": "NOT_ON_TRACK",
                        "rationale": format!("verdict {n}"),
                        "evidenceIds": world.evidence.iter().filter(|e| !e.1).take(1).map(|e| e.0.clone()).collect::<Vec<_>>()
                    }}),
                )
                .await;
            world
                .assessments
                .push(data["assessCommitment"]["id"].as_str().unwrap().to_owned());
        }
        Step::Revise { commitment, day } if !world.commitments.is_empty() => {
            let id = &world.commitments[commitment % world.commitments.len()];
            app.ok(
                "mutation($input: ReviseCommitmentInput!) { reviseCommitment(input: $input) { id } }",
                json!({ "input": { "commitmentId": id, "dueDate": date(*day + 600), "target": format!("target {n}"),
                                   "reason": format!("reason {n}"), "effectiveOn": date(*day) }}),
            )
            .await;
        }
        Step::Submit { commitment } if !world.commitments.is_empty() => {
            let id = &world.commitments[commitment % world.commitments.len()];
            let data = app
                .ok(
                    SUBMIT,
                    json!({ "input": { "commitmentIds": [id], "title": format!("evidence {n}"), "summary": "s",
                                       "submittedBy": "x", "submittedOn": date(n as i64 % 900) }}),
                )
                .await;
            world.evidence.push((
                data["submitEvidence"]["id"].as_str().unwrap().to_owned(),
                false,
            ));
        }
        Step::Retract { evidence } if world.evidence.iter().any(|e| !e.1) => {
            let open: Vec<usize> = (0..world.evidence.len())
                .filter(|i| !world.evidence[*i].1)
                .collect();
            let i = open[evidence % open.len()];
            app.ok(
                "mutation($input: RetractEvidenceInput!) { retractEvidence(input: $input) { id } }",
                json!({ "input": { "evidenceId": world.evidence[i].0, "reason": format!("withdrawn {n}"), "retractedOn": "2026-01-01" }}),
            )
            .await;
            world.evidence[i].1 = true;
        }
        Step::Dispute { assessment } if !world.assessments.is_empty() => {
            let id = &world.assessments[assessment % world.assessments.len()];
            app.ok(
                "mutation($input: DisputeAssessmentInput!) { disputeAssessment(input: $input) { id } }",
                json!({ "input": { "assessmentId": id, "disputedBy": "DHSC", "statement": format!("disputed {n}"), "disputedOn": "2027-01-01" }}),
            )
            .await;
        }
        _ => {}
    }
}

async fn now(app: &TestApp) -> String {
    let t: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[test]
fn as_of_any_past_instant_answers_exactly_what_the_system_answered_then() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let cases: u32 = std::env::var("TIME_TRAVEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let world = tokio::sync::Mutex::new(World {
        commitments: Vec::new(),
        evidence: Vec::new(),
        assessments: Vec::new(),
        n: 0,
    });
    let result = runner.run(&proptest::collection::vec(step(), 1..6), |steps| {
        rt.block_on(async {
            // The same database for every sequence: each one extends a longer history, and
            // every recorded instant must still answer as it did.
            let mut seen = Vec::new();
            let mut world = world.lock().await;
            for step in &steps {
                apply(&app, &mut world, step).await;
                let live = app.ok(EVERYTHING, json!({})).await;
                seen.push((now(&app).await, live));
            }
            for (at, live) in &seen {
                let then = app.ok(EVERYTHING, json!({ "asOf": at })).await;
                prop_assert_eq!(&then, live, "asOf {} differs from the live answer then", at);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn seeded() -> TestApp {
    let app = spawn_app().await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    app
}

#[tokio::test]
async fn valid_on_shows_the_deadline_before_and_after_its_extension() {
    let app = seeded().await;
    let q = "query($d: Date) { commitment(slug: \"epr-all-trusts\", validOn: $d) {
        dueDate target revisions { effectiveOn } currentAssessment { assessedOn deliveryStatus }
    } }";
    let before = app.ok(q, json!({ "d": "2023-06-01" })).await;
    assert_eq!(before["commitment"]["dueDate"], "2025-03-31");
    assert_eq!(
        before["commitment"]["target"],
        "Every NHS trust with an EPR by Mar 2025"
    );
    assert_eq!(before["commitment"]["revisions"], json!([]));
    assert!(before["commitment"]["currentAssessment"].is_null());
    let after = app.ok(q, json!({ "d": "2024-01-01" })).await;
    assert_eq!(after["commitment"]["dueDate"], "2026-03-31");
    assert_eq!(
        after["commitment"]["currentAssessment"]["assessedOn"],
        "2023-11-20"
    );
    let today = app.ok(q, json!({})).await;
    assert_eq!(
        today["commitment"]["currentAssessment"]["assessedOn"],
        "2025-02-11"
    );
    // Before it was announced it did not exist.
    let earlier = app.ok(q, json!({ "d": "2020-01-01" })).await;
    assert!(earlier["commitment"].is_null());
}

#[tokio::test]
async fn the_panels_feb_2023_ratings_are_in_force_on_2023_06_01_though_recorded_today() {
    let app = seeded().await;
    let q = "query($d: Date) {
        commitments(validOn: $d, rating: INADEQUATE) { totalCount nodes { slug currentAssessment { assessedOn evaluation recordedAt } } }
        scorecard(validOn: $d) { byRating { rating count } }
    }";
    let june = app.ok(q, json!({ "d": "2023-06-01" })).await;
    assert_eq!(june["commitments"]["totalCount"], 4);
    for node in june["commitments"]["nodes"].as_array().unwrap() {
        assert_eq!(node["currentAssessment"]["assessedOn"], "2023-02-17");
        assert_eq!(node["currentAssessment"]["evaluation"], "HC 780");
        let recorded: chrono::DateTime<chrono::Utc> = node["currentAssessment"]["recordedAt"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            recorded > chrono::Utc::now() - chrono::Duration::hours(1),
            "recorded today"
        );
    }
    let january = app.ok(q, json!({ "d": "2023-01-01" })).await;
    assert_eq!(
        january["commitments"]["totalCount"], 0,
        "before the Panel reported"
    );
}

#[tokio::test]
async fn both_axes_combine_and_a_commitment_not_yet_recorded_answers_null() {
    let app = spawn_app().await;
    let before_anything = now(&app).await;
    let id = app.register("epr-all-trusts").await;
    app.assess(&id, "INADEQUATE", "2023-02-17").await;
    let after_first = now(&app).await;
    app.assess(&id, "GOOD", "2024-02-17").await;
    let q = "query($asOf: DateTime, $d: Date) { commitment(slug: \"epr-all-trusts\", asOf: $asOf, validOn: $d) {
        currentAssessment { overall } assessments { overall }
    } }";
    let none = app.ok(q, json!({ "asOf": before_anything })).await;
    assert!(none["commitment"].is_null(), "not yet recorded then");
    let then = app.ok(q, json!({ "asOf": after_first })).await;
    assert_eq!(
        then["commitment"]["currentAssessment"]["overall"],
        "INADEQUATE"
    );
    let now_2023 = app.ok(q, json!({ "d": "2023-12-31" })).await;
    assert_eq!(
        now_2023["commitment"]["assessments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let both = app
        .ok(q, json!({ "asOf": after_first, "d": "2022-12-31" }))
        .await;
    assert_eq!(both["commitment"]["assessments"], json!([]));
    let live = app.ok(q, json!({})).await;
    assert_eq!(live["commitment"]["currentAssessment"]["overall"], "GOOD");
}
