//! `schema.graphql` at the repository root is exactly what the server serves.

use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn the_committed_schema_equals_the_served_one() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        committed == commitment_tracker::graphql::sdl(),
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
    // The running server's introspection names the same types and root fields.
    let app = spawn_app().await;
    let data = app
        .ok(
            "{ __schema { types { name } queryType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    for t in data["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let builtin = ["Boolean", "Int", "Float", "String", "ID"].contains(&name);
        if !name.starts_with("__") && !builtin {
            let declared = [
                format!("type {name} "),
                format!("enum {name} "),
                format!("input {name} "),
                format!("scalar {name}"),
            ];
            assert!(
                declared.iter().any(|d| committed.contains(d.as_str())),
                "{name} served but not in schema.graphql"
            );
        }
    }
    for f in data["__schema"]["subscriptionType"]["fields"]
        .as_array()
        .unwrap()
    {
        assert!(committed.contains(&format!("\t{}(", f["name"].as_str().unwrap())));
    }
}
