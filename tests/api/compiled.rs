//! Compiled reads (`src/graphql/compiled`): a document the resolvers answered once is answered
//! afterwards by one SQL statement, and the two answers must be the same bytes.
//!
//! Each document is sent twice to one server: the first time the resolvers answer it (and the
//! server compiles it), the second time the statement does, which `/metrics` counts. Random
//! documents cover the fields, arguments, aliases, merged keys and fragments the compiled path
//! knows; the rest of the file covers what it must leave to the resolvers.

use crate::helpers::{TestApp, seed_file, spawn_app, spawn_app_with};
use commitment_tracker::seed;
use commitment_tracker::store::cursor::{EventCursor, ListCursor};
use proptest::prelude::*;
use serde_json::{Value, json};

/// How many answers compiled statements gave, from `/metrics`.
async fn compiled_answers(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("graphql_compiled_total{") && l.contains("outcome=\"answered\""))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// The raw body of a POST.
async fn body(app: &TestApp, query: &str, variables: &Value) -> String {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The NHS data, longer timelines on two commitments, one commitment never assessed, and a
/// submitter's name erased.
async fn seeded() -> TestApp {
    let app = spawn_app().await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let page = app
        .ok("{ commitments(first: 2) { nodes { id } } }", json!({}))
        .await;
    for node in page["commitments"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        for (overall, on) in [
            ("GOOD", "2024-05-01"),
            ("INADEQUATE", "2023-11-30"),
            ("REQUIRES_IMPROVEMENT", "2025-01-15"),
            ("OUTSTANDING", "2024-05-01"),
        ] {
            app.assess(id, overall, on).await;
        }
    }
    app.register("never-assessed").await;
    app.ok(
        "mutation($input: ErasePersonalDataInput!) { erasePersonalData(input: $input) { erasedValues } }",
        json!({ "input": { "name": "Prof Robin Williams and Dr Kathrin Cresswell",
                           "reason": "a request to erase" } }),
    )
    .await;
    app
}

/// Random choices read off a tape of numbers (which proptest draws and shrinks).
struct Tape<'a>(std::slice::Iter<'a, u32>);

impl Tape<'_> {
    fn pick(&mut self, n: usize) -> usize {
        self.0.next().map_or(0, |v| *v as usize % n)
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.pick(n) == 0
    }
}

const COMMITMENT: &[&str] = &[
    "id",
    "slug",
    "title",
    "description",
    "area",
    "policySource",
    "target",
    "dueDate",
    "owner",
    "announcedOn",
    "version",
    "registeredAt",
    "updatedAt",
    "cursor",
    "__typename",
];
const ASSESSMENT: &[&str] = &[
    "id",
    "commitmentId",
    "assessor",
    "assessorKind",
    "assessedOn",
    "overall",
    "deliveryStatus",
    "rationale",
    "evaluation",
    "recordedAt",
    "actor",
    "cursor",
    "__typename",
];
const ASPECTS: &[&str] = &["met", "funding", "impact", "appropriateness", "__typename"];
const EVIDENCE: &[&str] = &[
    "id",
    "title",
    "summary",
    "sourceUrl",
    "submittedBy",
    "organisation",
    "submittedOn",
    "kind",
    "retracted",
    "retractionReason",
    "retractedOn",
    "version",
    "recordedAt",
    "actor",
    "erasedFields",
    "cursor",
    "__typename",
];

/// A document being written: its variables and fragments as they are declared.
#[derive(Default)]
struct Doc {
    variables: Vec<(String, &'static str, Value)>,
    fragments: Vec<String>,
    aliases: usize,
}

impl Doc {
    /// An argument as a literal or a variable of `ty`.
    fn argument(&mut self, t: &mut Tape, name: &str, ty: &'static str, value: Value) -> String {
        if t.one_in(2) {
            let var = format!("v{}", self.variables.len());
            self.variables.push((var.clone(), ty, value));
            format!("{name}: ${var}")
        } else {
            let literal = match (&value, ty) {
                (Value::String(s), "Rating" | "DeliveryStatus" | "AssessorKind") => s.clone(),
                _ => value.to_string(),
            };
            format!("{name}: {literal}")
        }
    }

    /// A key: the field's own name, or now and then an alias.
    fn key(&mut self, t: &mut Tape, field: &str) -> String {
        // Within the server's limit on aliases (30), with room for the forced ones.
        if t.one_in(4) && self.aliases < 12 {
            self.alias(field)
        } else {
            field.to_owned()
        }
    }

    /// `field` under a key of its own (a field with arguments: two of them under one key
    /// with different arguments would not be a valid document).
    fn alias(&mut self, field: &str) -> String {
        self.aliases += 1;
        format!("k{}: {field}", self.aliases)
    }

    /// Some of `fields` in a random order, a field now and then twice (merged).
    fn leaves(&mut self, t: &mut Tape, fields: &[&str]) -> Vec<String> {
        let n = 1 + t.pick(5);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let field = fields[t.pick(fields.len())];
            out.push(self.key(t, field));
        }
        out
    }

    /// Wraps some of `items` in an inline fragment or a named one on `ty`.
    fn fragmented(&mut self, t: &mut Tape, ty: &str, mut items: Vec<String>) -> String {
        if items.len() > 1 && t.one_in(3) {
            let inner: Vec<String> = items.split_off(items.len() / 2);
            if t.one_in(2) {
                items.push(format!("... on {ty} {{ {} }}", inner.join(" ")));
            } else {
                let name = format!("f{}", self.fragments.len());
                self.fragments
                    .push(format!("fragment {name} on {ty} {{ {} }}", inner.join(" ")));
                items.push(format!("...{name}"));
            }
        }
        items.join(" ")
    }

    fn assessment(&mut self, t: &mut Tape) -> String {
        let mut items = self.leaves(t, ASSESSMENT);
        if t.one_in(3) {
            let aspects = self.leaves(t, ASPECTS).join(" ");
            items.push(format!("{} {{ {aspects} }}", self.key(t, "aspects")));
        }
        self.fragmented(t, "Assessment", items)
    }

    fn evidence(&mut self, t: &mut Tape) -> String {
        let items = self.leaves(t, EVIDENCE);
        self.fragmented(t, "Evidence", items)
    }

    fn commitment(&mut self, t: &mut Tape) -> String {
        let mut items = self.leaves(t, COMMITMENT);
        if t.one_in(2) {
            let (key, args) = if t.one_in(3) {
                let kind = ["INDEPENDENT", "GOVERNMENT", "OTHER"][t.pick(3)];
                let args = format!(
                    "({})",
                    self.argument(t, "kind", "AssessorKind", json!(kind))
                );
                (self.alias("currentAssessment"), args)
            } else {
                (self.key(t, "currentAssessment"), String::new())
            };
            let sel = self.assessment(t);
            items.push(format!("{key}{args} {{ {sel} }}"));
        }
        if t.one_in(2) {
            let (key, args) = if t.one_in(3) {
                (self.key(t, "assessments"), String::new())
            } else {
                let last = t.pick(7);
                let args = format!("({})", self.argument(t, "last", "Int", json!(last)));
                (self.alias("assessments"), args)
            };
            let sel = self.assessment(t);
            items.push(format!("{key}{args} {{ {sel} }}"));
        }
        if t.one_in(2) {
            let key = self.key(t, "evidence");
            let sel = self.evidence(t);
            items.push(format!("{key} {{ {sel} }}"));
        }
        self.fragmented(t, "Commitment", items)
    }

    /// `key: commitments(...) { ... }` with random arguments over `cursors` (valid `after`s).
    fn list(&mut self, t: &mut Tape, key: &str, cursors: &[String], areas: &[String]) -> String {
        let mut args = Vec::new();
        if t.one_in(2) {
            let first = t.pick(14);
            args.push(self.argument(t, "first", "Int", json!(first)));
        }
        if t.one_in(3) {
            let after = cursors[t.pick(cursors.len())].clone();
            args.push(self.argument(t, "after", "String", json!(after)));
        }
        if t.one_in(4) {
            let area = areas[t.pick(areas.len())].clone();
            args.push(self.argument(t, "area", "String", json!(area)));
        }
        if t.one_in(4) {
            let rating = ["OUTSTANDING", "GOOD", "REQUIRES_IMPROVEMENT", "INADEQUATE"][t.pick(4)];
            args.push(self.argument(t, "rating", "Rating", json!(rating)));
        }
        if t.one_in(5) {
            let status = ["MET", "NOT_MET", "NOT_ON_TRACK", "ON_TRACK"][t.pick(4)];
            args.push(self.argument(t, "deliveryStatus", "DeliveryStatus", json!(status)));
        }
        let mut items = Vec::new();
        for _ in 0..1 + t.pick(3) {
            let item = match t.pick(5) {
                0 => {
                    let key = self.key(t, "nodes");
                    format!("{key} {{ {} }}", self.commitment(t))
                }
                1 => {
                    let key = self.key(t, "edges");
                    let node = self.commitment(t);
                    let cursor = if t.one_in(2) { "cursor" } else { "" };
                    format!("{key} {{ {cursor} node {{ {node} }} }}")
                }
                2 => {
                    let key = self.key(t, "pageInfo");
                    let fields = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"];
                    format!("{key} {{ {} }}", self.leaves(t, &fields).join(" "))
                }
                3 => self.key(t, "totalCount"),
                _ => "__typename".into(),
            };
            items.push(item);
        }
        let args = if args.is_empty() {
            String::new()
        } else {
            format!("({})", args.join(", "))
        };
        format!("{key}: commitments{args} {{ {} }}", items.join(" "))
    }

    /// `key: commitment(id:)` or `key: commitment(slug:)`, of one that exists or not.
    fn one(&mut self, t: &mut Tape, key: &str, ids: &[(String, String)]) -> String {
        let (id, slug) = &ids[t.pick(ids.len())];
        let arg = match t.pick(3) {
            0 => self.argument(t, "id", "ID", json!(id)),
            1 => self.argument(t, "slug", "String", json!(slug)),
            _ => self.argument(t, "slug", "String", json!("no-such-commitment")),
        };
        format!("{key}: commitment({arg}) {{ {} }}", self.commitment(t))
    }

    /// The whole text, `case` in a comment so that every case is a new document.
    fn text(&self, case: usize, roots: &str) -> (String, Value) {
        let declared: Vec<String> = self
            .variables
            .iter()
            .map(|(n, ty, _)| format!("${n}: {ty}"))
            .collect();
        let header = if declared.is_empty() {
            String::new()
        } else {
            format!("({})", declared.join(", "))
        };
        let variables: serde_json::Map<String, Value> = self
            .variables
            .iter()
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect();
        (
            format!(
                "# case {case}\nquery{header} {{ {roots} }}\n{}",
                self.fragments.join("\n")
            ),
            Value::Object(variables),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_documents_answer_the_same_bytes_compiled_as_resolved() {
    let app = seeded().await;
    let all = app
        .ok(
            "{ commitments(first: 500) { edges { cursor node { id slug area } } } }",
            json!({}),
        )
        .await;
    let edges = all["commitments"]["edges"].as_array().unwrap();
    let cursors: Vec<String> = edges
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_owned())
        .collect();
    let ids: Vec<(String, String)> = edges
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["id"].as_str().unwrap().into(),
                n["slug"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut areas: Vec<String> = edges
        .iter()
        .map(|e| e["node"]["area"].as_str().unwrap().to_owned())
        .collect();
    areas.sort();
    areas.dedup();

    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let handle = tokio::runtime::Handle::current();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let tape = proptest::collection::vec(any::<u32>(), 200);
    let result = runner.run(&tape, |numbers| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut t = Tape(numbers.iter());
        let mut doc = Doc::default();
        let mut roots = Vec::new();
        for i in 0..1 + t.pick(2) {
            let key = format!("r{i}");
            roots.push(if t.one_in(3) {
                doc.one(&mut t, &key, &ids)
            } else {
                doc.list(&mut t, &key, &cursors, &areas)
            });
        }
        if t.one_in(6) {
            roots.push("__typename".into());
        }
        let (text, variables) = doc.text(case, &roots.join(" "));
        let (resolved, compiled, counted) = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let resolved = body(&app, &text, &variables).await;
                let before = compiled_answers(&app).await;
                let compiled = body(&app, &text, &variables).await;
                (resolved, compiled, compiled_answers(&app).await - before)
            })
        });
        prop_assert!(
            !resolved.contains("\"errors\""),
            "{text}\n{variables}\n{resolved}"
        );
        prop_assert_eq!(counted, 1, "not compiled: {}\n{}", text, variables);
        prop_assert_eq!(&compiled, &resolved, "{}\n{}", text, variables);
        Ok(())
    });
    result.unwrap();
}

/// An argument the resolvers refuse goes to them, and they refuse it as before; time travel
/// is theirs too.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_statement_does_not_answer_goes_to_the_resolvers() {
    let app = seeded().await;
    let query = "query($n: Int, $after: String, $asOf: DateTime, $r: Rating) {
        commitments(first: $n, after: $after, asOf: $asOf, rating: $r) { nodes { slug } }
    }";
    // Learned from a good request, then answered compiled.
    app.ok(query, json!({ "n": 3 })).await;
    let before = compiled_answers(&app).await;
    let live = app.ok(query, json!({ "n": 3 })).await;
    assert_eq!(compiled_answers(&app).await, before + 1);
    assert_eq!(live["commitments"]["nodes"].as_array().unwrap().len(), 3);

    for (variables, code) in [
        (json!({ "n": 501 }), "BAD_USER_INPUT"),
        (json!({ "n": -1 }), "BAD_USER_INPUT"),
        (json!({ "n": "3" }), ""),
        (json!({ "after": "l1.not-a-cursor" }), "BAD_USER_INPUT"),
        (json!({ "r": "EXCELLENT" }), ""),
    ] {
        let before = compiled_answers(&app).await;
        let (_, error) = app.error_code(query, variables.clone(), None).await;
        assert_eq!(compiled_answers(&app).await, before, "{variables}");
        if !code.is_empty() {
            assert_eq!(error["extensions"]["code"], code, "{variables}: {error}");
        }
    }

    // Before anything was recorded, there was nothing.
    let before = compiled_answers(&app).await;
    let past = app
        .ok(query, json!({ "n": 3, "asOf": "2000-01-01T00:00:00Z" }))
        .await;
    assert_eq!(compiled_answers(&app).await, before);
    assert_eq!(past["commitments"]["nodes"], json!([]));

    // A field the compiled path does not know: never compiled.
    let history = "{ commitments(first: 2) { nodes { slug revisions { version } } } }";
    app.ok(history, json!({})).await;
    let before = compiled_answers(&app).await;
    app.ok(history, json!({})).await;
    assert_eq!(compiled_answers(&app).await, before);
}

/// Text that JSON must escape, and text it need not, is written by the database exactly as
/// the resolvers write it.
#[tokio::test(flavor = "multi_thread")]
async fn strings_are_escaped_as_the_resolvers_escape_them() {
    let app = spawn_app().await;
    let title = "A \"quoted\" back\\slash / é ✓ 😀 \u{2028} </script> 'single'";
    let description = "line one\nline two\r\n\ttabbed \\ \"end\"";
    app.ok(
        crate::helpers::REGISTER,
        json!({ "input": {
            "slug": "awkward-text", "title": title, "description": description,
            "area": "Ärea \"x\"", "policySource": "p", "target": "t",
            "announcedOn": "2022-06-29"
        }}),
    )
    .await;
    let query = r#"{ commitment(slug: "awkward-text") { title description area }
                     commitments { nodes { slug title description } } }"#;
    let resolved = body(&app, query, &json!({})).await;
    let before = compiled_answers(&app).await;
    let compiled = body(&app, query, &json!({})).await;
    assert_eq!(compiled_answers(&app).await, before + 1);
    assert_eq!(compiled, resolved);
    let value: Value = serde_json::from_str(&compiled).unwrap();
    assert_eq!(value["data"]["commitment"]["title"], title);
    assert_eq!(value["data"]["commitment"]["description"], description);
}

/// Connections cut while idle in the pool: reads are answered the same and compiled as before
/// (a connection is pinged when taken, and a statement that failed would leave the request to
/// the resolvers).
#[tokio::test(flavor = "multi_thread")]
async fn a_read_on_a_cut_connection_is_answered_by_the_resolvers() {
    let app = seeded().await;
    let query = "{ commitments(first: 3) { nodes { slug title currentAssessment { overall } } } }";
    let resolved = body(&app, query, &json!({})).await;
    assert_eq!(body(&app, query, &json!({})).await, resolved);
    let admin = commitment_tracker::store::connect(
        &format!("{}/postgres", crate::helpers::server_url()),
        1,
    )
    .await
    .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
    )
    .bind(&app.db.name)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "the server had connections to cut");
    assert_eq!(body(&app, query, &json!({})).await, resolved);
    // The cut connections leave the pool; reads are compiled again.
    let mut answered = compiled_answers(&app).await;
    for _ in 0..20 {
        assert_eq!(body(&app, query, &json!({})).await, resolved);
        let now = compiled_answers(&app).await;
        if now > answered {
            return;
        }
        answered = now;
    }
    panic!("no read was compiled again after the cut");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_compiled_reads_off_the_resolvers_answer_everything() {
    let app = spawn_app_with(|s| s.compiled_reads = false).await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let query = "{ commitments { nodes { slug currentAssessment { overall } } } }";
    let first = body(&app, query, &json!({})).await;
    let second = body(&app, query, &json!({})).await;
    assert_eq!(first, second);
    assert_eq!(compiled_answers(&app).await, 0);
}

/// The database's spellings of times and cursors are the API's, for every kind of value.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_writes_times_and_cursors_as_the_api_does() {
    let app = spawn_app().await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let handle = tokio::runtime::Handle::current();
    let micros = prop_oneof![
        Just(0i64),
        (0i64..1000).prop_map(|ms| ms * 1000),
        0i64..1_000_000,
    ];
    let seconds = 0i64..(200 * 365 * 86_400);
    let positions = prop_oneof![Just(0i64), Just(i64::MAX), 0i64..i64::MAX, 0i64..1000];
    let values = (seconds, micros, positions.clone(), positions);
    let result = runner.run(&values, |(s, us, a, b)| {
        let at = chrono::DateTime::from_timestamp(946_684_800 + s, (us * 1000) as u32).unwrap();
        let (time, event, list): (String, String, String) = tokio::task::block_in_place(|| {
            handle.block_on(async {
                sqlx::query_as(
                    "select api_timestamp($1), api_event_cursor($2, $3), api_list_cursor($2)",
                )
                .bind(at)
                .bind(a)
                .bind(b)
                .fetch_one(&app.pool)
                .await
                .unwrap()
            })
        });
        prop_assert_eq!(time, at.to_rfc3339());
        let cursor = EventCursor {
            transaction_id: a,
            position: b,
        };
        prop_assert_eq!(event, cursor.encode());
        prop_assert_eq!(list, ListCursor(a).encode());
        Ok(())
    });
    result.unwrap();
}
