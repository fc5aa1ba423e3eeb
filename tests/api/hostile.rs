//! A battery of hostile and malformed requests. Each one gets the status or error code it
//! should, no response holds internal text, nothing is written, and the server still answers.

use crate::helpers::{ASSESS, REGISTER, SUBMIT, TestApp, spawn_app};
use commitment_tracker::auth::Role;
use serde_json::{Value, json};

/// Text that must never reach a client: database, driver, panic and parser internals.
const INTERNAL: [&str; 14] = [
    " --> ",
    "^---",
    "sqlx",
    "postgres",
    "SQLSTATE",
    "relation \"",
    "syntax error at",
    "duplicate key",
    "violates",
    "panicked",
    "thread '",
    "pg_",
    "src/",
    "PgDatabaseError",
];

#[derive(Clone)]
enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Get(String),
}

struct Case {
    name: String,
    body: Body,
    token: Option<String>,
    /// Expected HTTP status.
    status: u16,
    /// Expected `errors[0].extensions.code`, if an error is expected.
    code: Option<&'static str>,
}

fn case(
    name: impl Into<String>,
    body: Body,
    token: Option<&str>,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case {
        name: name.into(),
        body,
        token: token.map(str::to_owned),
        status,
        code,
    }
}

fn gql(query: &str, variables: Value) -> Body {
    Body::Json(json!({ "query": query, "variables": variables }))
}

async fn send(app: &TestApp, c: &Case) -> (u16, String) {
    let url = format!("{}/graphql", app.address);
    let mut request = match &c.body {
        Body::Json(v) => app.client.post(&url).json(v),
        Body::Raw(content_type, bytes) => app
            .client
            .post(&url)
            .header("content-type", *content_type)
            .body(bytes.clone()),
        Body::Get(query) => app.client.get(format!("{url}?{query}")),
    };
    if let Some(t) = &c.token {
        request = request.header("authorization", t.clone());
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn register_input(overrides: Value) -> Value {
    let mut input = json!({
        "slug": "hostile-new", "title": "t", "description": "d", "area": "a",
        "policySource": "p", "target": "t", "announcedOn": "2022-06-29"
    });
    for (k, v) in overrides.as_object().unwrap() {
        input[k] = v.clone();
    }
    json!({ "input": input })
}

fn assess_input(commitment: &str, overrides: Value) -> Value {
    let mut input = json!({
        "commitmentId": commitment, "assessor": "Panel", "assessorKind": "INDEPENDENT",
        "assessedOn": "2023-02-17", "overall": "INADEQUATE", "deliveryStatus": "NOT_ON_TRACK",
        "rationale": "r"
    });
    for (k, v) in overrides.as_object().unwrap() {
        input[k] = v.clone();
    }
    json!({ "input": input })
}

fn submit_input(commitment: &str, overrides: Value) -> Value {
    let mut input =
        json!({ "commitmentIds": [commitment], "title": "t", "summary": "s", "submittedBy": "x" });
    for (k, v) in overrides.as_object().unwrap() {
        input[k] = v.clone();
    }
    json!({ "input": input })
}

fn cases(
    commitment: &str,
    admin: &str,
    contributor: &str,
    assessor: &str,
    expired: &str,
    revoked: &str,
) -> Vec<Case> {
    let bearer = |t: &str| format!("Bearer {t}");
    let (admin, contributor, assessor) = (bearer(admin), bearer(contributor), bearer(assessor));
    let admin = Some(admin.as_str());
    let mut v = Vec::new();

    // Malformed bodies and transport.
    for (i, raw) in [
        "{",
        "[",
        "null",
        "42",
        "\"query\"",
        "{\"query\": 5}",
        "{\"query\": null}",
        "{\"variables\": {}}",
        "not json",
        "{\"query\":\"{\"}",
    ]
    .into_iter()
    .enumerate()
    {
        // A body without a query is not a GraphQL request (400); a broken query is a
        // GraphQL syntax error, answered 200 under application/json.
        let (status, code) = match i {
            9 => (200, Some("BAD_USER_INPUT")),
            7 => (400, Some("BAD_USER_INPUT")),
            _ => (400, None),
        };
        v.push(case(
            format!("bad json {raw}"),
            Body::Raw("application/json", raw.as_bytes().to_vec()),
            admin,
            status,
            code,
        ));
    }
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/html",
    ] {
        let body = json!({ "query": "mutation { registerCommitment(input: {slug: \"csrf\", title: \"t\", description: \"d\", area: \"a\", policySource: \"p\", target: \"t\"}) { id } }" });
        v.push(case(
            format!("content type {ct}"),
            Body::Raw(ct, body.to_string().into_bytes()),
            admin,
            415,
            Some("BAD_USER_INPUT"),
        ));
    }
    v.push(case(
        "huge body",
        Body::Raw("application/json", vec![b' '; 2 << 20]),
        admin,
        413,
        None,
    ));
    v.push(case(
        "batch array",
        Body::Raw(
            "application/json",
            br#"[{"query":"{ events { totalCount } }"},{"query":"{ events { totalCount } }"}]"#
                .to_vec(),
        ),
        admin,
        400,
        None,
    ));

    // Query shape limits.
    let mut deep = String::from("commitments { nodes { ");
    for _ in 0..10 {
        deep.push_str("assessments { commitment { ");
    }
    deep.push_str("slug");
    for _ in 0..10 {
        deep.push_str(" } }");
    }
    deep.push_str(" } }");
    v.push(case(
        "deep nesting",
        gql(&format!("{{ {deep} }}"), json!({})),
        None,
        200,
        Some("QUERY_TOO_COMPLEX"),
    ));
    for n in [31, 100, 1000] {
        let aliases: String = (0..n)
            .map(|i| format!("a{i}: events(first: 1) {{ totalCount }} "))
            .collect();
        v.push(case(
            format!("{n} aliases"),
            gql(&format!("{{ {aliases} }}"), json!({})),
            None,
            200,
            Some("QUERY_TOO_COMPLEX"),
        ));
    }
    let wide: String = (0..40).map(|i| format!("f{i}: commitments(first: 500) {{ nodes {{ assessments {{ evidence {{ commitments {{ slug }} }} }} }} }} ")).collect();
    v.push(case(
        "complexity flood",
        gql(&format!("{{ {wide} }}"), json!({})),
        None,
        200,
        Some("QUERY_TOO_COMPLEX"),
    ));
    for q in [
        "{",
        "{ nope }",
        "query { events { totalCount } } query { events { totalCount } }",
        "subscription { ratingChanged { id } }",
        "{ commitment(slug: 5) { id } }",
        "fragment f on Nope { x } { events { totalCount } }",
        "{ events(first: \"x\") { totalCount } }",
        "{ __type(name: 1) { name } }",
    ] {
        v.push(case(
            format!("invalid document {q}"),
            gql(q, json!({})),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for first in [-1, 501, 100000, i32::MAX as i64] {
        v.push(case(
            format!("first {first}"),
            gql(
                "query($f: Int) { events(first: $f) { totalCount } }",
                json!({ "f": first }),
            ),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("list first {first}"),
            gql(
                "query($f: Int) { commitments(first: $f) { totalCount } }",
                json!({ "f": first }),
            ),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for after in [
        "x",
        "e1.zz",
        "l1.00",
        "' or 1=1 --",
        "e1.0000000000000000000000000000000g",
    ] {
        v.push(case(
            format!("cursor {after}"),
            gql(
                "query($a: String) { events(after: $a) { totalCount } }",
                json!({ "a": after }),
            ),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("list cursor {after}"),
            gql(
                "query($a: String) { commitments(after: $a) { totalCount } }",
                json!({ "a": after }),
            ),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }

    // Invalid values in mutations, each refused before any SQL.
    for e in ["SPLENDID", "good", "", "1", "INADEQUATE ", "null"] {
        v.push(case(
            format!("rating {e:?}"),
            gql(ASSESS, assess_input(commitment, json!({ "overall": e }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("status {e:?}"),
            gql(
                ASSESS,
                assess_input(commitment, json!({ "deliveryStatus": e })),
            ),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("kind {e:?}"),
            gql(
                ASSESS,
                assess_input(commitment, json!({ "assessorKind": e })),
            ),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for d in [
        "2023-02-30",
        "17/02/2023",
        "2023-2-17",
        "20230217",
        "2023-02-17T00:00:00Z",
        "",
        "1800-01-01",
        "9999-12-31",
        "0000-01-01",
        "+2023-02-17",
    ] {
        v.push(case(
            format!("date {d:?}"),
            gql(ASSESS, assess_input(commitment, json!({ "assessedOn": d }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for id in [
        "",
        "not-a-uuid",
        "1",
        "' or 1=1 --",
        "00000000-0000-0000-0000-00000000000g",
        "{}",
        "../../etc/passwd",
    ] {
        v.push(case(
            format!("uuid {id:?}"),
            gql(ASSESS, assess_input(id, json!({}))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("read uuid {id:?}"),
            gql(
                "query($id: ID!) { evidence(id: $id) { id } }",
                json!({ "id": id }),
            ),
            None,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    v.push(case(
        "unknown commitment",
        gql(
            ASSESS,
            assess_input(&uuid::Uuid::now_v7().to_string(), json!({})),
        ),
        admin,
        200,
        Some("NOT_FOUND"),
    ));
    for u in [
        "javascript:alert(1)",
        "ftp://x.org/a",
        "file:///etc/passwd",
        "http://",
        "https:// space.org",
        "data:text/html,<b>x</b>",
        "//evil.org",
        "mailto:a@b.c",
    ] {
        v.push(case(
            format!("url {u:?}"),
            gql(SUBMIT, submit_input(commitment, json!({ "sourceUrl": u }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for field in ["title", "summary", "submittedBy", "organisation"] {
        let long = "x".repeat(20_001);
        v.push(case(
            format!("overlong {field}"),
            gql(SUBMIT, submit_input(commitment, json!({ field: long }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        for ctl in ["a\u{0}b", "a\u{7}b", "a\u{1b}[31mb", "a\u{8}b"] {
            v.push(case(
                format!("control {field} {ctl:?}"),
                gql(SUBMIT, submit_input(commitment, json!({ field: ctl }))),
                admin,
                200,
                Some("BAD_USER_INPUT"),
            ));
        }
        if field != "organisation" {
            v.push(case(
                format!("blank {field}"),
                gql(SUBMIT, submit_input(commitment, json!({ field: "   " }))),
                admin,
                200,
                Some("BAD_USER_INPUT"),
            ));
        }
    }
    for field in [
        "slug",
        "title",
        "description",
        "area",
        "policySource",
        "target",
        "owner",
    ] {
        v.push(case(
            format!("overlong {field}"),
            gql(
                REGISTER,
                register_input(json!({ field: "x".repeat(20_001) })),
            ),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("nul in {field}"),
            gql(REGISTER, register_input(json!({ field: "a\u{0}b" }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
        v.push(case(
            format!("empty {field}"),
            gql(REGISTER, register_input(json!({ field: "" }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for slug in [
        "UPPER",
        "has space",
        "semi;colon",
        "<script>",
        "a--b",
        "-a",
        "ünï",
        "a/b",
        "x'; drop table events; --",
    ] {
        v.push(case(
            format!("slug {slug:?}"),
            gql(REGISTER, register_input(json!({ "slug": slug }))),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    for key in ["", "\u{0}", &"k".repeat(201)] {
        v.push(case(
            format!("idempotency key {key:?}"),
            gql(
                ASSESS,
                assess_input(commitment, json!({ "idempotencyKey": key })),
            ),
            admin,
            200,
            Some("BAD_USER_INPUT"),
        ));
    }
    v.push(case(
        "evidence about nothing",
        gql(
            SUBMIT,
            submit_input(commitment, json!({ "commitmentIds": [] })),
        ),
        admin,
        200,
        Some("BAD_USER_INPUT"),
    ));
    v.push(case(
        "repeated evidence ids",
        gql(
            ASSESS,
            assess_input(
                commitment,
                json!({ "evidenceIds": [commitment, commitment] }),
            ),
        ),
        admin,
        200,
        Some("BAD_USER_INPUT"),
    ));
    v.push(case(
        "stale version",
        gql(
            ASSESS,
            assess_input(commitment, json!({ "expectedVersion": 99 })),
        ),
        admin,
        200,
        Some("CONFLICT"),
    ));
    v.push(case(
        "taken slug",
        gql(
            REGISTER,
            register_input(json!({ "slug": "hostile-target" })),
        ),
        admin,
        200,
        Some("BAD_USER_INPUT"),
    ));

    // SQL- and script-like text in reads is data, never code.
    for text in [
        "' or 1=1 --",
        "x'; drop table events; --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "\\\\x00",
        "%00",
        "Robert'); DROP TABLE commitments;--",
    ] {
        v.push(case(
            format!("read slug {text:?}"),
            gql(
                "query($s: String) { commitment(slug: $s) { id } }",
                json!({ "s": text }),
            ),
            None,
            200,
            None,
        ));
        v.push(case(
            format!("read area {text:?}"),
            gql(
                "query($s: String) { commitments(area: $s) { totalCount } }",
                json!({ "s": text }),
            ),
            None,
            200,
            None,
        ));
        v.push(case(
            format!("read types {text:?}"),
            gql(
                "query($s: String!) { events(types: [$s]) { totalCount } }",
                json!({ "s": text }),
            ),
            None,
            200,
            None,
        ));
    }

    // Tokens and roles.
    let mutations = [
        ("register", gql(REGISTER, register_input(json!({})))),
        ("assess", gql(ASSESS, assess_input(commitment, json!({})))),
        ("submit", gql(SUBMIT, submit_input(commitment, json!({})))),
        (
            "revise",
            gql(
                "mutation($i: ReviseCommitmentInput!) { reviseCommitment(input: $i) { id } }",
                json!({ "i": { "commitmentId": commitment, "dueDate": "2030-01-01", "reason": "r" } }),
            ),
        ),
        (
            "retract",
            gql(
                "mutation($i: RetractEvidenceInput!) { retractEvidence(input: $i) { id } }",
                json!({ "i": { "evidenceId": commitment, "reason": "r" } }),
            ),
        ),
        (
            "token",
            gql(
                "mutation { createToken(name: \"x\", role: ADMIN) { token } }",
                json!({}),
            ),
        ),
    ];
    for (name, body) in &mutations {
        v.push(case(
            format!("{name} without a token"),
            body.clone(),
            None,
            200,
            Some("UNAUTHENTICATED"),
        ));
        v.push(case(
            format!("{name} with an unknown token"),
            body.clone(),
            Some("Bearer ct_0000"),
            401,
            Some("UNAUTHENTICATED"),
        ));
        v.push(case(
            format!("{name} with an expired token"),
            body.clone(),
            Some(&format!("Bearer {expired}")),
            401,
            Some("UNAUTHENTICATED"),
        ));
        v.push(case(
            format!("{name} with a revoked token"),
            body.clone(),
            Some(&format!("Bearer {revoked}")),
            401,
            Some("UNAUTHENTICATED"),
        ));
        v.push(case(
            format!("{name} with Basic auth"),
            body.clone(),
            Some("Basic YWRtaW46YWRtaW4="),
            401,
            Some("UNAUTHENTICATED"),
        ));
        if *name != "submit" {
            v.push(case(
                format!("{name} as a contributor"),
                body.clone(),
                Some(&contributor),
                200,
                Some("FORBIDDEN"),
            ));
        }
        if ["register", "revise", "retract", "token"].contains(name) {
            v.push(case(
                format!("{name} as an assessor"),
                body.clone(),
                Some(&assessor),
                200,
                Some("FORBIDDEN"),
            ));
        }
        let query = match body {
            Body::Json(b) => b["query"].as_str().unwrap().to_owned(),
            _ => unreachable!(),
        };
        let encoded: String = query.bytes().map(|b| format!("%{b:02X}")).collect();
        v.push(case(
            format!("{name} over GET"),
            Body::Get(format!("query={encoded}")),
            admin,
            405,
            Some("BAD_USER_INPUT"),
        ));
    }
    for q in ["{ tokens { id } }", "{ verify { ok } }"] {
        v.push(case(
            format!("{q} anonymously"),
            gql(q, json!({})),
            None,
            200,
            Some("UNAUTHENTICATED"),
        ));
        v.push(case(
            format!("{q} as a contributor"),
            gql(q, json!({})),
            Some(&contributor),
            200,
            Some("FORBIDDEN"),
        ));
        v.push(case(
            format!("{q} as an assessor"),
            gql(q, json!({})),
            Some(&assessor),
            200,
            Some("FORBIDDEN"),
        ));
    }
    v
}

#[tokio::test]
async fn a_battery_of_hostile_requests_is_refused_cleanly_and_changes_nothing() {
    let app = spawn_app().await;
    let commitment = app.register("hostile-target").await;
    let contributor = app.token(Role::Contributor, "contributor").await;
    let assessor = app.token(Role::Assessor, "assessor").await;
    let expired = {
        let (_, t) = commitment_tracker::store::tokens::create(
            &app.pool,
            "old",
            Role::Admin,
            Some(chrono::Utc::now() - chrono::Duration::days(1)),
        )
        .await
        .unwrap();
        t
    };
    let revoked = {
        let (id, t) =
            commitment_tracker::store::tokens::create(&app.pool, "gone", Role::Admin, None)
                .await
                .unwrap();
        assert!(
            commitment_tracker::store::tokens::revoke(&app.pool, id)
                .await
                .unwrap()
        );
        t
    };
    let before = app.event_count().await;
    let battery = cases(
        &commitment,
        &app.admin_token,
        &contributor,
        &assessor,
        &expired,
        &revoked,
    );
    assert!(battery.len() >= 200, "only {} cases", battery.len());
    let mut failures = Vec::new();
    for c in &battery {
        let (status, text) = send(&app, c).await;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["errors"][0]["extensions"]["code"].as_str();
        if status != c.status {
            failures.push(format!(
                "{}: status {status}, expected {} ({text:.200})",
                c.name, c.status
            ));
        } else if let Some(expected) = c.code {
            if code != Some(expected) {
                failures.push(format!(
                    "{}: code {code:?}, expected {expected} ({text:.200})",
                    c.name
                ));
            }
        } else if status == 200 && code.is_some() {
            failures.push(format!("{}: unexpected error ({text:.200})", c.name));
        }
        if let Some(leak) = INTERNAL.iter().find(|i| text.contains(*i)) {
            failures.push(format!(
                "{}: response holds internal text {leak:?}: {text:.300}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        battery.len(),
        failures.join("\n")
    );
    assert_eq!(app.event_count().await, before, "the battery wrote nothing");
    // The server still answers, correctly.
    let data = app
        .ok("{ commitments { totalCount nodes { slug } } }", json!({}))
        .await;
    assert_eq!(data["commitments"]["nodes"][0]["slug"], "hostile-target");
    println!("{} hostile requests refused", battery.len());
}

#[tokio::test]
async fn markup_and_sql_like_text_is_stored_and_returned_exactly() {
    let app = spawn_app().await;
    let id = app.register("text-as-data").await;
    let text =
        "<script>alert('x')</script> '; drop table events; -- {{7*7}} ${jndi:ldap://x} ünïcödé ✓";
    let data = app
        .ok(SUBMIT, submit_input(&id, json!({ "title": text, "summary": format!("{text}\nline two"), "submittedBy": text })))
        .await;
    let eid = data["submitEvidence"]["id"].clone();
    let back = app
        .ok(
            "query($id: ID!) { evidence(id: $id) { title summary submittedBy } }",
            json!({ "id": eid }),
        )
        .await;
    assert_eq!(back["evidence"]["title"], text);
    assert_eq!(back["evidence"]["summary"], format!("{text}\nline two"));
    assert_eq!(back["evidence"]["submittedBy"], text);
}

#[tokio::test]
async fn the_database_never_holds_a_token_in_plain_text() {
    let app = spawn_app().await;
    let data = app
        .ok(
            "mutation { createToken(name: \"via api\", role: ASSESSOR) { id token } }",
            json!({}),
        )
        .await;
    let created = data["createToken"]["token"].as_str().unwrap().to_owned();
    let tokens = [app.admin_token.clone(), created.clone()];
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("select id::text, name, token_hash from api_tokens")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let dump: String = sqlx::query_scalar("select string_agg(t::text, ' ') from api_tokens t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for t in &tokens {
        assert!(
            !dump.contains(t.as_str()),
            "a token is stored in plain text"
        );
        assert!(
            !dump.contains(&t[3..]),
            "a token's secret part is stored in plain text"
        );
        for (_, _, hash) in &rows {
            assert_ne!(hash.as_slice(), t.as_bytes());
        }
    }
    // The created token works, is listed without its secret, and stops working once revoked.
    let (status, _) = app
        .post("{ events { totalCount } }", json!({}), Some(&created))
        .await;
    assert_eq!(status, 200);
    let listed = app
        .ok("{ tokens { id name role revokedAt } }", json!({}))
        .await;
    assert!(!listed.to_string().contains(&created));
    let id = data["createToken"]["id"].clone();
    let revoked = app
        .ok(
            "mutation($id: ID!) { revokeToken(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(revoked["revokeToken"], true);
    let (status, body) = app
        .post("{ events { totalCount } }", json!({}), Some(&created))
        .await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
}

#[tokio::test]
async fn an_operator_can_require_a_token_for_reads() {
    let app = crate::helpers::spawn_app_with(|s| s.require_token_for_reads = true).await;
    let (status, body) = app.post("{ events { totalCount } }", json!({}), None).await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, _) = app
        .post(
            "{ events { totalCount } }",
            json!({}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_largest_page_is_configurable() {
    let app = crate::helpers::spawn_app_with(|s| s.max_page_size = 10).await;
    let q = "query($f: Int) { commitments(first: $f) { totalCount } }";
    assert!(
        app.post(q, json!({ "f": 10 }), None)
            .await
            .1
            .get("errors")
            .is_none()
    );
    let (code, error) = app.error_code(q, json!({ "f": 11 }), None).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "first");
}
