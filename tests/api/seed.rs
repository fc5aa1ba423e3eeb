//! The NHS digitisation seed: imported with real dates, and importing twice adds nothing.

use crate::helpers::{seed_file, spawn_app};
use commitment_tracker::seed;
use serde_json::json;

#[tokio::test]
async fn importing_the_seed_twice_adds_nothing_and_keeps_real_dates() {
    let app = spawn_app().await;
    let file = seed_file();
    let commands = app.commands().await;
    let first = seed::import(&commands, &file).await.unwrap();
    let events = app.event_count().await;
    let expected = file.commitments.len()
        + file.evidence.len()
        + file.assessments.len()
        + file.revisions.len()
        + file.disputes.len();
    assert_eq!(first.written, expected);
    assert_eq!(events as usize, expected);
    let second = seed::import(&commands, &file).await.unwrap();
    assert_eq!((second.written, second.already_present), (0, expected));
    assert_eq!(
        app.event_count().await,
        events,
        "importing twice adds nothing"
    );

    let data = app
        .ok(
            r#"{
                epr: commitment(slug: "epr-all-trusts") {
                    dueDate target
                    revisions { effectiveOn changes { field from to } }
                    history(first: 1) { nodes { type occurredAt actor } }
                }
                panel: commitment(slug: "digital-workforce-strategy") {
                    currentAssessment {
                        assessor assessorKind assessedOn overall evaluation
                        aspects { met funding impact appropriateness }
                        disputes { disputedBy disputedOn }
                        evidence { sourceUrl }
                    }
                }
                scorecard { total byRating { rating count } }
                commitments(rating: INADEQUATE) { totalCount }
            }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["epr"]["dueDate"], "2026-03-31");
    assert_eq!(
        data["epr"]["revisions"][0]["changes"][1]["from"],
        "2025-03-31"
    );
    assert_eq!(
        data["epr"]["history"]["nodes"][0]["occurredAt"],
        "2022-06-29T00:00:00+00:00"
    );
    assert_eq!(data["epr"]["history"]["nodes"][0]["actor"], "seed-import");
    let panel = &data["panel"]["currentAssessment"];
    assert_eq!(panel["assessor"], "HSCC Expert Panel");
    assert_eq!(panel["assessorKind"], "INDEPENDENT");
    assert_eq!(panel["assessedOn"], "2023-02-17");
    assert_eq!(panel["overall"], "INADEQUATE");
    assert_eq!(panel["evaluation"], "HC 780");
    assert_eq!(panel["aspects"]["appropriateness"], "GOOD");
    assert_eq!(panel["disputes"][0]["disputedOn"], "2023-04-17");
    assert_eq!(
        panel["evidence"][0]["sourceUrl"],
        "https://committees.parliament.uk/writtenevidence/113526/html/"
    );
    assert_eq!(data["scorecard"]["total"], 11);
    assert_eq!(
        data["commitments"]["totalCount"], 4,
        "the Panel rated four commitments Inadequate"
    );
}
