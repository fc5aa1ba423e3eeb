//! What GraphQL tools rely on, over real HTTP and WebSocket: the standard introspection query
//! under the default limits, one code for every over-deep query, answers in selection order,
//! coded errors on both WebSocket protocols, GraphQL-over-HTTP media types and statuses.

use crate::helpers::{TestApp, seed_file, spawn_app};
use crate::subscriptions::Client;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

const INTROSPECTION: &str = include_str!("fixtures/introspection.graphql");

/// A JSON value that keeps its objects' keys in the order they were written.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Scalar,
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    out.push((k, v));
                }
                Ok(Ordered::Object(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Ordered>()? {
                    out.push(v);
                }
                Ok(Ordered::List(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or(&Ordered::Scalar),
            _ => &Ordered::Scalar,
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// POSTs a request with extra headers; the status, the raw body and its headers.
async fn post_raw(
    app: &TestApp,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_standard_introspection_query_is_answered_under_the_default_limits() {
    let app = spawn_app().await;
    let data = app.ok(INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    for name in [
        "Query",
        "Mutation",
        "Subscription",
        "Commitment",
        "Assessment",
    ] {
        assert!(types.iter().any(|t| t["name"] == name), "{name} missing");
    }
    assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription");
}

#[tokio::test]
async fn over_deep_queries_get_one_code_however_deep_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let nested = |levels: usize| {
        format!(
            "{{ commitments {{ nodes {{ {}slug{} }} }} }}",
            "assessments { commitment { ".repeat(levels),
            " } }".repeat(levels)
        )
    };
    let hostile_introspection = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "fields { type { ".repeat(30),
        " } }".repeat(30)
    );
    let type_refs = format!(
        "{{ __type(name: \"Query\") {{ fields {{ type {{ {}name{} }} }} }} }}",
        "ofType { ".repeat(40),
        " }".repeat(40)
    );
    for (name, query) in [
        ("13 levels", nested(6)),
        ("40 levels", nested(20)),
        ("200 levels", nested(100)),
        ("2000 levels", nested(1000)),
        ("hostile introspection", hostile_introspection),
        ("40 ofType links", type_refs),
    ] {
        let (status, body) = app.post(&query, json!({}), None).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{name}: {body}");
        assert!(body.get("data").is_none(), "{name}: {body}");
    }
    let (status, _) = app.post("{ scorecard { total } }", json!({}), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_errors_follow_the_media_type_the_client_accepts() {
    let app = spawn_app().await;
    let modern = [("accept", "application/graphql-response+json")];
    let legacy = [("accept", "application/json")];

    // Parse and validation failures: 400 without `data` under the new media type, 200 with
    // the old one; the media type is the one asked for.
    for query in ["{", "{ nosuchfield }"] {
        let (status, body, headers) = post_raw(&app, json!({ "query": query }), &modern).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/graphql-response+json")
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(first_code(&body), "BAD_USER_INPUT");

        let (status, body, headers) = post_raw(&app, json!({ "query": query }), &legacy).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    // A field error is a GraphQL answer with data: 200 under both.
    let (status, body, _) = post_raw(
        &app,
        json!({ "query": "{ evidence(id: \"00000000-0000-0000-0000-000000000000\") { id } events(first: -1) { totalCount } }" }),
        &modern,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Nothing this server writes.
    let (status, _, _) = post_raw(
        &app,
        json!({ "query": "{ scorecard { total } }" }),
        &[("accept", "text/html")],
    )
    .await;
    assert_eq!(status, 406);
    // `operationName` selects the operation over GET too.
    let url = format!(
        "{}/graphql?query={}&operationName=B",
        app.address,
        "query%20A%20%7B%20scorecard%20%7B%20total%20%7D%20%7D%20query%20B%20%7B%20events%20%7B%20totalCount%20%7D%20%7D"
    );
    let body: Value = app
        .client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["data"]["events"]["totalCount"].is_number(), "{body}");
}

#[tokio::test]
async fn errors_over_either_websocket_protocol_carry_their_code() {
    let app = spawn_app().await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut client = Client::open_url(&app.ws_url(), protocol, json!({}))
            .await
            .unwrap();
        let deep = format!(
            "subscription {{ ratingChanged {{ {}id{} }} }}",
            "commitment { assessments { ".repeat(10),
            " } }".repeat(10)
        );
        for (i, (query, code)) in [
            ("{ nosuchfield }", "BAD_USER_INPUT"),
            ("subscription { nosuchfield }", "BAD_USER_INPUT"),
            ("subscription {", "BAD_USER_INPUT"),
            (deep.as_str(), "QUERY_TOO_COMPLEX"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = format!("e{i}");
            client.subscribe(&id, query, json!({})).await;
            let (error, message) = client.first_error(&id).await;
            assert_eq!(
                error["extensions"]["code"], code,
                "{protocol} {query}: {message}"
            );
        }
        client.close().await;
    }
}

/// One item of a random selection on `Commitment`.
#[derive(Debug, Clone)]
enum Item {
    /// A field: its response key, text, and the keys of its sub-selection in order.
    Field {
        key: String,
        text: String,
        sub: Vec<&'static str>,
    },
    /// An inline fragment on `Commitment`.
    Inline(Vec<Item>),
    /// A spread of a fragment holding these items.
    Spread(Vec<Item>),
    /// A field left out by `@include(if: false)`.
    Skipped(String),
}

/// The fields a selection draws from: name, arguments, sub-selection keys and its text.
const FIELDS: &[(&str, &str, &[&str], &str)] = &[
    ("id", "", &[], ""),
    ("slug", "", &[], ""),
    ("title", "", &[], ""),
    ("area", "", &[], ""),
    ("version", "", &[], ""),
    ("dueDate", "", &[], ""),
    ("target", "", &[], ""),
    (
        "currentAssessment",
        "",
        &["overall", "assessedOn"],
        "{ overall assessedOn }",
    ),
    (
        "currentAssessment",
        "",
        &["assessedOn", "commitment", "overall"],
        "{ assessedOn commitment { slug } overall }",
    ),
    (
        "assessments",
        "",
        &["overall", "previous", "assessor"],
        "{ overall previous { id } assessor }",
    ),
    (
        "evidence",
        "",
        &["title", "submittedOn"],
        "{ title submittedOn }",
    ),
    ("revisions", "", &["reason"], "{ reason }"),
    (
        "history",
        "(first: 3)",
        &["totalCount", "nodes"],
        "{ totalCount nodes { type version } }",
    ),
];

fn field() -> impl Strategy<Value = Item> {
    (0..FIELDS.len(), prop::option::of(0u8..3)).prop_map(|(i, alias)| {
        let (name, args, sub, selection) = FIELDS[i];
        let key = match alias {
            Some(n) => format!("{name}{n}"),
            None => name.to_owned(),
        };
        let prefix = if alias.is_some() {
            format!("{key}: ")
        } else {
            String::new()
        };
        Item::Field {
            text: format!("{prefix}{name}{args} {selection}"),
            sub: sub.to_vec(),
            key,
        }
    })
}

fn skipped() -> impl Strategy<Value = Item> {
    (0..FIELDS.len()).prop_map(|i| {
        let (name, args, _, selection) = FIELDS[i];
        Item::Skipped(format!("{name}{args} @include(if: false) {selection}"))
    })
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    let item = field().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            4 => field(),
            1 => prop::collection::vec(inner.clone(), 1..4).prop_map(Item::Inline),
            1 => prop::collection::vec(inner, 1..4).prop_map(Item::Spread),
            1 => skipped(),
        ]
    });
    prop::collection::vec(item, 1..8)
}

/// The selection text, adding the fragments it spreads to `fragments`.
fn render(items: &[Item], fragments: &mut Vec<String>) -> String {
    items
        .iter()
        .map(|item| match item {
            Item::Field { text, .. } | Item::Skipped(text) => text.clone(),
            Item::Inline(inner) => format!("... on Commitment {{ {} }}", render(inner, fragments)),
            Item::Spread(inner) => {
                let body = render(inner, fragments);
                let name = format!("F{}", fragments.len());
                fragments.push(format!("fragment {name} on Commitment {{ {body} }}"));
                format!("...{name}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys CollectFields gives, in order, each with its merged sub-selection's keys.
fn expected_keys(items: &[Item], out: &mut Vec<(String, Vec<&'static str>)>) {
    for item in items {
        match item {
            Item::Field { key, sub, .. } => {
                let entry = match out.iter().position(|(k, _)| k == key) {
                    Some(i) => &mut out[i].1,
                    None => {
                        out.push((key.clone(), Vec::new()));
                        &mut out.last_mut().unwrap().1
                    }
                };
                for k in sub {
                    if !entry.contains(k) {
                        entry.push(k);
                    }
                }
            }
            Item::Inline(inner) | Item::Spread(inner) => expected_keys(inner, out),
            Item::Skipped(_) => {}
        }
    }
}

/// Whether every object under `value` has exactly `keys`, in order.
fn objects_have(value: &Ordered, keys: &[&str]) -> bool {
    match value {
        Ordered::Object(_) => value.keys() == keys,
        Ordered::List(items) => items.iter().all(|i| objects_have(i, keys)),
        Ordered::Scalar => true,
    }
}

#[tokio::test]
async fn answers_keep_the_selection_order_over_random_selections() {
    let app = spawn_app().await;
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = items();
    for _ in 0..48 {
        let items = strategy.new_tree(&mut runner).unwrap().current();
        let mut fragments = Vec::new();
        let selection = render(&items, &mut fragments);
        let query = format!(
            "{{ scorecard {{ total }} missing: evidence(id: \"00000000-0000-0000-0000-000000000000\") {{ id }} commitments(first: 4) {{ nodes {{ {selection} }} totalCount }} }} {}",
            fragments.join(" ")
        );
        let mut expected = Vec::new();
        expected_keys(&items, &mut expected);
        // Twice: identical requests answer identically, byte for byte.
        let (status, first, _) = post_raw(&app, json!({ "query": query }), &[]).await;
        assert_eq!(status, 200, "{query}: {first}");
        let (_, second, _) = post_raw(&app, json!({ "query": query }), &[]).await;
        assert_eq!(first, second, "{query}");
        assert!(!first.contains("\"errors\""), "{query}: {first}");
        let answer: Ordered = serde_json::from_str(&first).unwrap();
        let data = answer.get("data");
        assert_eq!(
            data.keys(),
            ["scorecard", "missing", "commitments"],
            "{query}"
        );
        let commitments = data.get("commitments");
        assert_eq!(commitments.keys(), ["nodes", "totalCount"], "{query}");
        let Ordered::List(nodes) = commitments.get("nodes") else {
            panic!("no nodes: {first}");
        };
        assert!(!nodes.is_empty());
        let keys: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        for node in nodes {
            assert_eq!(node.keys(), keys, "{query}: {first}");
            for (key, sub) in &expected {
                assert!(
                    objects_have(node.get(key), sub),
                    "{key} should have {sub:?}: {query}: {first}"
                );
            }
        }
    }
}

#[tokio::test]
async fn nested_objects_errors_and_subscriptions_keep_the_selection_order() {
    let app = spawn_app().await;
    commitment_tracker::seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    let query = "{ commitment(slug: \"epr-all-trusts\") { assessments { previous { id } commitment { slug } overall id disputes { statement } assessor } title } bad: evidence(id: \"not-an-id\") { id } scorecard { total } }";
    let (_, text, _) = post_raw(&app, json!({ "query": query }), &[]).await;
    let answer: Ordered = serde_json::from_str(&text).unwrap();
    assert_eq!(answer.keys(), ["errors", "data"], "{text}");
    let data = answer.get("data");
    assert_eq!(data.keys(), ["commitment", "bad", "scorecard"], "{text}");
    // A non-null field that fails makes its nearest nullable parent null: here `data`.
    let (_, body) = app
        .post(
            "{ scorecard { total } bad: events(first: -1) { totalCount } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let commitment = data.get("commitment");
    assert_eq!(commitment.keys(), ["assessments", "title"]);
    assert!(
        objects_have(
            commitment.get("assessments"),
            &[
                "previous",
                "commitment",
                "overall",
                "id",
                "disputes",
                "assessor"
            ]
        ),
        "{text}"
    );

    let id = app
        .ok("{ commitment(slug: \"epr-all-trusts\") { id } }", json!({}))
        .await["commitment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (n, protocol) in ["graphql-transport-ws", "graphql-ws"]
        .into_iter()
        .enumerate()
    {
        let mut client = Client::open_url(&app.ws_url(), protocol, json!({}))
            .await
            .unwrap();
        let cursor = crate::subscriptions::cursor_of(&app, &id).await;
        client
            .subscribe(
                "s",
                "subscription($c: ID, $after: String) { ratingChanged(commitmentId: $c, after: $after) { previous { overall } commitment { title slug } overall cursor } }",
                json!({ "c": id, "after": cursor }),
            )
            .await;
        app.assess(&id, "GOOD", &format!("2025-01-0{}", n + 1))
            .await;
        let text = client.receive_text().await;
        let message: Ordered = serde_json::from_str(&text).unwrap();
        let rating = message.get("payload").get("data").get("ratingChanged");
        assert_eq!(
            rating.keys(),
            ["previous", "commitment", "overall", "cursor"],
            "{protocol}: {text}"
        );
        assert_eq!(rating.get("commitment").keys(), ["title", "slug"]);
        client.close().await;
    }
}

#[tokio::test]
async fn the_protocol_answered_is_the_clients_first_choice_and_the_one_spoken() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    for (offered, chosen) in [
        ("graphql-ws, graphql-transport-ws", "graphql-ws"),
        ("graphql-transport-ws, graphql-ws", "graphql-transport-ws"),
        ("mqtt, graphql-transport-ws", "graphql-transport-ws"),
    ] {
        let mut request = app.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offered.parse().unwrap());
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], chosen);
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        ws.send(Message::text(
            json!({ "type": "connection_init" }).to_string(),
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Text(ack))) = ws.next().await else {
            panic!("no acknowledgement for {offered}")
        };
        assert!(ack.as_str().contains("connection_ack"), "{offered}: {ack}");
        // The protocols name their messages differently: the answer shows which one is spoken.
        let start = if chosen == "graphql-ws" {
            "start"
        } else {
            "subscribe"
        };
        ws.send(Message::text(
            json!({ "id": "1", "type": start, "payload": { "query": "{ scorecard { total } }" } })
                .to_string(),
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Text(answer))) = ws.next().await else {
            panic!("no answer for {offered}")
        };
        let answer: Value = serde_json::from_str(answer.as_str()).unwrap();
        let expected = if chosen == "graphql-ws" {
            "data"
        } else {
            "next"
        };
        assert_eq!(answer["type"], expected, "{offered}: {answer}");
    }
}
