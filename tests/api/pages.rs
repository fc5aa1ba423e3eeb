//! The pages (DESIGN §13): in headless Chromium with every other host blocked (screenshots
//! kept in `target/test-artefacts/pages/`), and over plain HTTP for what a browser hides:
//! status codes, headers, bad input, and views of the past.

use crate::helpers::TestApp;
use crate::tools::{install, run_client, seeded_app, tests_dir};
use serde_json::json;
use std::path::Path;

/// The seed's commitment with a revised deadline, given a disputed verdict too.
const SLUG: &str = "epr-all-trusts";

async fn dispute_one(app: &TestApp) {
    let data = app
        .ok(
            "query($slug: String!) { commitment(slug: $slug) { assessments { id } } }",
            json!({ "slug": SLUG }),
        )
        .await;
    let first = data["commitment"]["assessments"][0]["id"].clone();
    app.ok(
        "mutation($input: DisputeAssessmentInput!) { disputeAssessment(input: $input) { id } }",
        json!({ "input": {
            "assessmentId": first, "disputedBy": "Department of Health and Social Care",
            "statement": "We do not accept this rating.", "disputedOn": "2024-01-10"
        }}),
    )
    .await;
}

#[tokio::test]
async fn the_pages_work_in_chromium_without_javascript_from_the_keyboard_and_live() {
    install("node", &["--browser"]).await;
    let app = seeded_app().await;
    dispute_one(&app).await;
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/pages");
    let reports = run_client(
        &app,
        Path::new("node"),
        &tests_dir("node").join("pages.mjs"),
        &[
            ("SLUG", SLUG.to_owned()),
            ("SCREENSHOTS", screenshots.display().to_string()),
        ],
    )
    .await;
    let checks: Vec<&str> = reports.iter().filter_map(|r| r["check"].as_str()).collect();
    assert_eq!(
        checks,
        [
            "the scorecard renders",
            "the filter narrows the list",
            "axe-core: the scorecard",
            "the timeline's marks match the assessments",
            "the keyboard reaches a mark and follows it",
            "axe-core: the timeline",
            "the pages read without JavaScript",
            "a new verdict shows on the open page within 2 s",
            "no request left this server",
        ]
    );
    for file in [
        "scorecard.png",
        "timeline.png",
        "timeline-without-javascript.png",
    ] {
        let bytes = std::fs::read(screenshots.join(file)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{file} is not a PNG");
    }
}

#[tokio::test]
async fn pages_answer_with_codes_headers_and_views_of_the_past() {
    let app = seeded_app().await;
    let get = |path: &str| {
        let url = format!("{}{path}", app.address);
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.text().await.unwrap())
        }
    };
    let (status, headers, body) = get("/").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(body.contains("data-live=\"true\""));
    // Nothing is fetched from anywhere else.
    for outside in ["http://", "https://"] {
        for attr in ["src=\"", "href=\""] {
            assert!(
                !body.contains(&format!("{attr}{outside}")),
                "{attr}{outside} in the page"
            );
        }
    }

    let (status, _, body) = get("/commitments/epr-all-trusts").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("data-revision=\"2023-07-31\""),
        "the revision is marked"
    );
    assert!(
        body.contains("data-old-deadline=\"2025-03-31\""),
        "the old deadline is drawn"
    );

    // In force on a date before the revision: the old deadline, no revision yet, not live.
    let (status, _, body) = get("/commitments/epr-all-trusts?validOn=2023-06-30").await;
    assert_eq!(status, 200);
    assert!(
        !body.contains("data-revision="),
        "no revision was in force yet"
    );
    assert!(body.contains("data-deadline=\"2025-03-31\""));
    assert!(body.contains("data-live=\"false\""));
    // Known at an instant before anything was recorded: there was no such commitment.
    let (status, _, _) = get("/commitments/epr-all-trusts?asOf=2001-01-01T00:00:00Z").await;
    assert_eq!(status, 404);

    for (path, status, code) in [
        ("/?rating=SPLENDID", 400, "BAD_USER_INPUT"),
        ("/?asof=2024-01-01T00:00:00Z", 400, "BAD_USER_INPUT"),
        (
            "/commitments/epr-all-trusts?validOn=someday",
            400,
            "BAD_USER_INPUT",
        ),
        ("/commitments/no-such-thing", 404, "NOT_FOUND"),
    ] {
        let (got, headers, body) = get(path).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert!(
            body.contains(&format!("<code>{code}</code>")),
            "{path}: {body}"
        );
    }
    let (status, headers, body) = get("/assets/live.js").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(body.contains("ratingChanged"));
    assert_eq!(get("/assets/nothing.js").await.0, 404);
}
