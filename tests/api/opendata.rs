//! Open data (DESIGN §13) read by the parsers people use: every CSV export read back by
//! Python's `csv` module to the values the GraphQL API answers, with the same filters and
//! time travel; the Atom feed read by `feedparser` across its pages.

use crate::helpers::{ASSESS, REGISTER, SUBMIT, TestApp, spawn_app};
use crate::tools::{install, python_stdin, seeded_app, tests_dir};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// A title a spreadsheet would run as a formula, with a comma and quotes in it.
const HOSTILE_TITLE: &str = "=HYPERLINK(\"http://evil.example\",\"click\"), a \"joined-up\" record";

/// GETs `path`, returning status, content type and body.
async fn get(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.text().await.unwrap())
}

/// An export read back by Python's csv module: (header, rows as maps, raw cells).
async fn read_csv(app: &TestApp, path: &str) -> (Vec<String>, Vec<Map<String, Value>>, Value) {
    let (status, media, body) = get(app, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(media.starts_with("text/csv"), "{media}");
    let stdout = python_stdin("read_csv.py", body.as_bytes()).await;
    let parsed: Value = serde_json::from_slice(&stdout).unwrap();
    let header = parsed["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    let rows = parsed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect();
    (header, rows, parsed["raw"].clone())
}

/// A GraphQL value as the CSV spells it: null is empty, strings as they are, numbers and
/// booleans as JSON writes them.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ids(v: &Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

const COMMITMENTS: &str = "query($asOf: DateTime, $validOn: Date, $rating: Rating) {
  commitments(first: 500, asOf: $asOf, validOn: $validOn, rating: $rating) { nodes {
    id slug title description area policySource target dueDate owner announcedOn version
    registeredAt updatedAt
    currentAssessment { id overall deliveryStatus assessedOn assessor }
    assessments {
      id commitmentId assessor assessorKind assessedOn overall
      aspects { met funding impact appropriateness }
      deliveryStatus rationale evaluation evidence { id } disputes { id } recordedAt actor cursor
    }
    evidence {
      id title summary kind sourceUrl submittedBy organisation submittedOn retracted
      retractionReason retractedOn version recordedAt commitments { id slug }
    }
  } } }";

/// What commitments.csv should hold for a GraphQL commitment.
fn commitment_row(c: &Value) -> Vec<(&'static str, String)> {
    let cur = &c["currentAssessment"];
    vec![
        ("id", cell(&c["id"])),
        ("slug", cell(&c["slug"])),
        ("title", cell(&c["title"])),
        ("description", cell(&c["description"])),
        ("area", cell(&c["area"])),
        ("policySource", cell(&c["policySource"])),
        ("target", cell(&c["target"])),
        ("dueDate", cell(&c["dueDate"])),
        ("owner", cell(&c["owner"])),
        ("announcedOn", cell(&c["announcedOn"])),
        ("version", cell(&c["version"])),
        ("currentRating", cell(&cur["overall"])),
        ("currentDeliveryStatus", cell(&cur["deliveryStatus"])),
        ("currentAssessedOn", cell(&cur["assessedOn"])),
        ("currentAssessor", cell(&cur["assessor"])),
        ("currentAssessmentId", cell(&cur["id"])),
        ("registeredAt", cell(&c["registeredAt"])),
        ("updatedAt", cell(&c["updatedAt"])),
    ]
}

fn assessment_row(c: &Value, a: &Value) -> Vec<(&'static str, String)> {
    let mut evidence: Vec<String> = ids(&a["evidence"])
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    evidence.sort();
    vec![
        ("id", cell(&a["id"])),
        ("commitmentId", cell(&a["commitmentId"])),
        ("commitmentSlug", cell(&c["slug"])),
        ("commitmentTitle", cell(&c["title"])),
        ("assessor", cell(&a["assessor"])),
        ("assessorKind", cell(&a["assessorKind"])),
        ("assessedOn", cell(&a["assessedOn"])),
        ("overall", cell(&a["overall"])),
        ("met", cell(&a["aspects"]["met"])),
        ("funding", cell(&a["aspects"]["funding"])),
        ("impact", cell(&a["aspects"]["impact"])),
        ("appropriateness", cell(&a["aspects"]["appropriateness"])),
        ("deliveryStatus", cell(&a["deliveryStatus"])),
        ("rationale", cell(&a["rationale"])),
        ("evaluation", cell(&a["evaluation"])),
        ("evidenceIds", evidence.join(" ")),
        (
            "disputes",
            a["disputes"].as_array().unwrap().len().to_string(),
        ),
        ("recordedAt", cell(&a["recordedAt"])),
        ("actor", cell(&a["actor"])),
        ("cursor", cell(&a["cursor"])),
    ]
}

fn evidence_row(e: &Value) -> Vec<(&'static str, String)> {
    let commitments = e["commitments"].as_array().unwrap();
    let ids: Vec<&str> = commitments
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let slugs: Vec<&str> = commitments
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    vec![
        ("id", cell(&e["id"])),
        ("title", cell(&e["title"])),
        ("summary", cell(&e["summary"])),
        ("kind", cell(&e["kind"])),
        ("sourceUrl", cell(&e["sourceUrl"])),
        ("submittedBy", cell(&e["submittedBy"])),
        ("organisation", cell(&e["organisation"])),
        ("submittedOn", cell(&e["submittedOn"])),
        ("retracted", cell(&e["retracted"])),
        ("retractionReason", cell(&e["retractionReason"])),
        ("retractedOn", cell(&e["retractedOn"])),
        ("commitmentIds", ids.join(" ")),
        ("commitmentSlugs", slugs.join(" ")),
        ("version", cell(&e["version"])),
        ("recordedAt", cell(&e["recordedAt"])),
    ]
}

/// Asserts that a CSV row holds `expected`, naming the row and column that differ.
fn assert_row(what: &str, row: &Map<String, Value>, expected: &[(&str, String)]) {
    for (column, value) in expected {
        let mut got = row[*column].as_str().unwrap().to_owned();
        if *column == "evidenceIds" {
            let mut parts: Vec<&str> = got.split(' ').filter(|s| !s.is_empty()).collect();
            parts.sort_unstable();
            got = parts.join(" ");
        }
        assert_eq!(&got, value, "{what}: column {column}");
    }
}

fn headers_of(expected: &[(&str, String)]) -> Vec<String> {
    expected.iter().map(|(k, _)| k.to_string()).collect()
}

/// Adds what the seed lacks: a hostile title, line breaks, commas and quotes in every free
/// text, a back-dated and a disputed verdict, and evidence concerning two commitments.
async fn add_awkward_data(app: &TestApp) -> (String, String) {
    let data = app
        .ok(
            REGISTER,
            json!({ "input": {
                "slug": "awkward-record", "title": HOSTILE_TITLE,
                "description": "Line one,\nline two with \"quotes\"\r\nand a third.",
                "area": "Digital foundations, \"joined up\"",
                "policySource": "-A plan for digital health and social care (2022)",
                "target": "@every trust", "dueDate": "2025-03-31", "announcedOn": "2022-06-29"
            }}),
        )
        .await;
    let id = data["registerCommitment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.register("other-record").await;
    let evidence = app
        .ok(
            SUBMIT,
            json!({ "input": {
                "commitmentIds": [id, other], "title": "Report, \"part 2\"",
                "summary": "+1 finding\nsecond line, with a comma", "submittedBy": "A. Researcher",
                "organisation": "University of Edinburgh", "submittedOn": "2023-01-10",
                "kind": "EVALUATION", "sourceUrl": "https://example.org/report?a=1,b=2"
            }}),
        )
        .await["submitEvidence"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let assessed = app
        .ok(
            ASSESS,
            json!({ "input": {
                "commitmentId": id, "assessor": "HSCC Expert Panel, \"2023\"",
                "assessorKind": "INDEPENDENT", "assessedOn": "2023-02-01", "overall": "INADEQUATE",
                "aspects": { "met": "INADEQUATE", "funding": "REQUIRES_IMPROVEMENT" },
                "deliveryStatus": "NOT_ON_TRACK",
                "rationale": "- far from on track,\n- \"very significant\" steps needed",
                "evidenceIds": [evidence], "evaluation": "HC 780"
            }}),
        )
        .await["assessCommitment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        "mutation($input: DisputeAssessmentInput!) { disputeAssessment(input: $input) { id } }",
        json!({ "input": {
            "assessmentId": assessed, "disputedBy": "DHSC",
            "statement": "We disagree,\nstrongly.", "disputedOn": "2023-03-01"
        }}),
    )
    .await;
    app.assess(&id, "REQUIRES_IMPROVEMENT", "2024-06-01").await;
    // Back-dated: history, not the current verdict.
    app.assess(&id, "GOOD", "2022-12-01").await;
    (id, evidence)
}

#[tokio::test]
async fn every_csv_export_reads_back_to_the_graphql_answer() {
    install("python", &[]).await;
    let app = seeded_app().await;
    add_awkward_data(&app).await;
    let data = app.ok(COMMITMENTS, json!({})).await;
    let commitments = data["commitments"]["nodes"].as_array().unwrap();
    assert!(commitments.len() > 5);

    // commitments.csv: one row per commitment, in list order.
    let (header, rows, raw) = read_csv(&app, "/export/commitments.csv").await;
    assert_eq!(header, headers_of(&commitment_row(&commitments[0])));
    assert_eq!(rows.len(), commitments.len());
    for (row, c) in rows.iter().zip(commitments) {
        assert_row(c["slug"].as_str().unwrap(), row, &commitment_row(c));
    }
    // The hostile cells reached the file neutralised, and read back whole.
    let hostile = raw
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[1] == "awkward-record")
        .unwrap();
    assert_eq!(hostile[2], format!("'{HOSTILE_TITLE}"));
    assert!(hostile[5].as_str().unwrap().starts_with("'-A plan"));
    assert_eq!(hostile[6], "'@every trust");

    // assessments.csv: every commitment's timeline, in list order.
    let (header, rows, _) = read_csv(&app, "/export/assessments.csv").await;
    let expected: Vec<_> = commitments
        .iter()
        .flat_map(|c| {
            c["assessments"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| assessment_row(c, a))
        })
        .collect();
    assert_eq!(header, headers_of(&expected[0]));
    assert_eq!(rows.len(), expected.len());
    for (row, e) in rows.iter().zip(&expected) {
        assert_row("assessment", row, e);
    }
    assert!(rows.iter().any(|r| r["disputes"] == "1"));

    // evidence.csv: every piece once, in submission order.
    let (header, rows, _) = read_csv(&app, "/export/evidence.csv").await;
    let mut evidence: HashMap<String, &Value> = HashMap::new();
    for c in commitments {
        for e in c["evidence"].as_array().unwrap() {
            evidence.insert(e["id"].as_str().unwrap().to_owned(), e);
        }
    }
    assert_eq!(rows.len(), evidence.len());
    assert_eq!(
        header,
        headers_of(&evidence_row(evidence.values().next().unwrap()))
    );
    for row in &rows {
        let e = evidence[row["id"].as_str().unwrap()];
        assert_row("evidence", row, &evidence_row(e));
    }
    assert!(
        rows.iter()
            .any(|r| r["commitmentSlugs"] == "awkward-record other-record")
    );

    // events.csv: the log as `events` pages it.
    let mut events = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .ok(
                "query($after: String) { events(first: 500, after: $after) {
                    nodes { position cursor id streamId streamType version type schemaVersion
                            occurredAt recordedAt actor role requestId erasedFields payload
                            hash previousHash }
                    pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        events.extend(page["events"]["nodes"].as_array().unwrap().clone());
        if page["events"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["events"]["pageInfo"]["endCursor"].clone();
    }
    let (_, rows, _) = read_csv(&app, "/export/events.csv").await;
    assert_eq!(rows.len(), events.len());
    assert_eq!(rows.len() as i64, app.event_count().await);
    for (row, e) in rows.iter().zip(&events) {
        for column in [
            "position",
            "cursor",
            "id",
            "streamId",
            "streamType",
            "version",
            "type",
            "schemaVersion",
            "occurredAt",
            "recordedAt",
            "actor",
            "role",
            "requestId",
            "hash",
            "previousHash",
        ] {
            assert_eq!(
                row[column].as_str().unwrap(),
                cell(&e[column]),
                "event column {column}"
            );
        }
        let erased: Vec<&str> = e["erasedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(row["erasedFields"], erased.join(" "));
        let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, e["payload"]);
    }
}

#[tokio::test]
async fn csv_exports_take_the_graphql_filters_and_time_travel() {
    install("python", &[]).await;
    let app = spawn_app().await;
    let id = app.register("moved-deadline").await;
    app.register("never-assessed").await;
    app.assess(&id, "INADEQUATE", "2023-02-01").await;
    let between = chrono::Utc::now().to_rfc3339();
    app.assess(&id, "REQUIRES_IMPROVEMENT", "2024-06-01").await;

    let current = |rows: &[Map<String, Value>], slug: &str| {
        rows.iter()
            .find(|r| r["slug"] == slug)
            .map(|r| r["currentRating"].as_str().unwrap().to_owned())
    };
    for (query, variables, expected) in [
        ("", json!({}), "REQUIRES_IMPROVEMENT"),
        ("?asOf=BETWEEN", json!({ "asOf": between }), "INADEQUATE"),
        (
            "?validOn=2023-06-01",
            json!({ "validOn": "2023-06-01" }),
            "INADEQUATE",
        ),
    ] {
        let path = format!(
            "/export/commitments.csv{}",
            query.replace("BETWEEN", &between.replace('+', "%2B"))
        );
        let (_, rows, _) = read_csv(&app, &path).await;
        assert_eq!(
            current(&rows, "moved-deadline").as_deref(),
            Some(expected),
            "{path}"
        );
        let graphql = app.ok(COMMITMENTS, variables).await;
        let nodes = graphql["commitments"]["nodes"].as_array().unwrap();
        assert_eq!(rows.len(), nodes.len());
        for (row, c) in rows.iter().zip(nodes) {
            assert_row(&path, row, &commitment_row(c));
        }
    }
    // Before the first verdict was in force: registered, unrated.
    let (_, rows, _) = read_csv(&app, "/export/commitments.csv?validOn=2023-01-01").await;
    assert_eq!(current(&rows, "moved-deadline").as_deref(), Some(""));

    let (_, rows, _) = read_csv(&app, "/export/commitments.csv?rating=INADEQUATE").await;
    assert!(rows.is_empty());
    let (_, rows, _) = read_csv(&app, "/export/commitments.csv?rating=REQUIRES_IMPROVEMENT").await;
    assert_eq!(rows.len(), 1);

    let path = format!(
        "/export/assessments.csv?commitment=moved-deadline&asOf={}",
        between.replace('+', "%2B")
    );
    let (_, rows, _) = read_csv(&app, &path).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["overall"], "INADEQUATE");
    let (_, rows, _) = read_csv(&app, "/export/assessments.csv?commitment=moved-deadline").await;
    assert_eq!(rows.len(), 2);

    // Bad input: a clear error with a code, and no file.
    let before = app.event_count().await;
    for (path, status, code) in [
        (
            "/export/commitments.csv?rating=SPLENDID",
            400,
            "BAD_USER_INPUT",
        ),
        (
            "/export/commitments.csv?asof=2024-01-01T00:00:00Z",
            400,
            "BAD_USER_INPUT",
        ),
        (
            "/export/commitments.csv?asOf=yesterday",
            400,
            "BAD_USER_INPUT",
        ),
        (
            "/export/commitments.csv?validOn=1066-10-14",
            400,
            "BAD_USER_INPUT",
        ),
        ("/export/events.csv?after=nonsense", 400, "BAD_USER_INPUT"),
        ("/export/events.csv?streamId=42", 400, "BAD_USER_INPUT"),
        ("/export/ratings.xlsx", 404, "NOT_FOUND"),
    ] {
        let (got, media, body) = get(&app, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(media.starts_with("application/json"), "{path}: {media}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], code,
            "{path}: {body}"
        );
    }
    assert_eq!(app.event_count().await, before);

    // `download=true` asks the browser to save the file.
    let response = app
        .client
        .get(format!("{}/export/events.csv?download=true", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"events.csv\""
    );
}

/// The feed at `path` read by feedparser, following `next` links.
async fn read_feed(app: &TestApp, path: &str) -> Value {
    let python = tests_dir("python").join(".venv/bin/python");
    let output = tokio::process::Command::new(python)
        .arg(tests_dir("python").join("read_feed.py"))
        .env("FEED_URL", format!("{}{path}", app.address))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "feedparser failed on {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let feed: Value = serde_json::from_slice(&output.stdout).unwrap();
    for page in feed["pages"].as_array().unwrap() {
        assert_eq!(page["bozo"], false, "{page}");
        assert_eq!(page["version"], "atom10", "{page}");
        assert!(
            page["content_type"]
                .as_str()
                .unwrap()
                .starts_with("application/atom+xml")
        );
    }
    feed
}

#[tokio::test]
async fn feedparser_reads_every_page_of_the_feed_newest_first() {
    install("python", &[]).await;
    let app = seeded_app().await;
    let (id, _) = add_awkward_data(&app).await;
    // Enough verdicts on one commitment for two pages.
    let ratings = ["INADEQUATE", "REQUIRES_IMPROVEMENT", "GOOD", "GOOD"];
    for i in 0..57 {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap() + chrono::Days::new(i);
        app.assess(&id, ratings[i as usize % 4], &day.to_string())
            .await;
    }
    let recorded: Vec<Value> = sqlx::query_scalar::<_, uuid::Uuid>(
        "select a.id from assessments a join commitments c on c.id = a.commitment_id
         where c.slug = 'awkward-record' order by a.transaction_id desc, a.position desc",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|id| json!(id.to_string()))
    .collect();
    assert_eq!(recorded.len(), 60);

    let feed = read_feed(&app, "/feeds/assessments.atom?commitment=awkward-record").await;
    assert_eq!(feed["pages"].as_array().unwrap().len(), 2);
    let entries = feed["entries"].as_array().unwrap();
    // Every assessment once, newest recorded first, each id a tag: URI ending in its id.
    let got: Vec<Value> = entries
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap();
            assert!(id.starts_with("tag:"), "{id}");
            json!(id.rsplit('/').next().unwrap())
        })
        .collect();
    assert_eq!(got, recorded);
    // The titles say what each verdict did to the rating, in the commitment's timeline.
    let titles: HashSet<&str> = entries
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    let prefix = HOSTILE_TITLE;
    assert!(
        titles.contains(format!("{prefix}: rated Good").as_str()),
        "{titles:?}"
    );
    assert!(
        titles.contains(format!("{prefix}: Good → Inadequate").as_str()),
        "{titles:?}"
    );
    assert!(
        titles.contains(format!("{prefix}: Inadequate → Requires improvement").as_str()),
        "{titles:?}"
    );
    let first = &entries[0];
    assert!(
        first["link"]
            .as_str()
            .unwrap()
            .contains("/commitments/awkward-record#assessment-")
    );
    assert_eq!(first["author"], "HSCC Expert Panel");
    // Ids are stable: the same on a second read.
    let again = read_feed(&app, "/feeds/assessments.atom?commitment=awkward-record").await;
    assert_eq!(again["entries"][0]["id"], first["id"]);

    // The whole feed and an area's parse too, and hold every assessment.
    let all = read_feed(&app, "/feeds/assessments.atom").await;
    let total: i64 = sqlx::query_scalar("select count(*) from assessments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(all["entries"].as_array().unwrap().len() as i64, total);
    let area = read_feed(&app, "/feeds/assessments.atom?area=Digital%20foundations").await;
    assert!(!area["entries"].as_array().unwrap().is_empty());

    let (status, _, body) = get(&app, "/feeds/assessments.atom?commitment=no-such-thing").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = get(&app, "/feeds/assessments.atom?before=x").await;
    assert_eq!(status, 400, "{body}");
}

/// With every place for an export taken (a quarter of the pool: one with four connections),
/// another export is answered 429 with `Retry-After` and a coded body at once, not queued;
/// the place comes back when the export holding it ends, which then reads back whole.
#[tokio::test]
async fn an_export_over_the_cap_is_refused_with_429_until_the_one_holding_its_place_ends() {
    use sqlx::Connection;
    let app = crate::helpers::spawn_app_with(|s| s.db_max_connections = 4).await;
    app.register("export-cap").await;
    let events = app.event_count().await;
    let url = format!("{}/export/events.csv", app.address);

    // The log locked from outside the server: an export's statement waits for it, holding
    // its place all the while.
    let mut outside = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::raw_sql("begin; lock table events in access exclusive mode")
        .execute(&mut outside)
        .await
        .unwrap();
    // A live export answers its headers before its statement runs: once they are here, its
    // place is taken.
    let holding = app.client.get(&url).send().await.unwrap();
    assert_eq!(holding.status().as_u16(), 200);

    let refused = app.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );

    sqlx::raw_sql("rollback")
        .execute(&mut outside)
        .await
        .unwrap();
    let csv = holding.text().await.unwrap();
    assert_eq!(
        csv.lines().count() as i64,
        events + 1,
        "a header and one line per event: {csv}"
    );

    let (status, _, again) = get(&app, "/export/events.csv").await;
    assert_eq!(status, 200, "the place came back: {again}");
}
