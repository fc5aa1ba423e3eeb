//! A page of commitments loads its commitments' assessments and evidence for the whole page at
//! once: what it answers must be exactly what each commitment answers asked on its own.

use crate::helpers::{seed_file, spawn_app};
use commitment_tracker::seed;
use serde_json::{Value, json};

/// The fields a page and a lone commitment are both asked for: every way of asking for the
/// latest assessments and the evidence, through a fragment, aliases and a variable.
const FIELDS: &str = "
    id slug
    current: currentAssessment { id overall assessedOn previous { id } direction }
    independent: currentAssessment(kind: INDEPENDENT) { id }
    one: assessments(last: 1) { id previousOverall }
    some: assessments(last: $n) { id overall assessedOn previous { id } direction }
    all: assessments { id }
    evidence { id title retracted commitments { id } }
";

#[tokio::test]
async fn a_page_answers_what_each_of_its_commitments_answers_alone() {
    let app = spawn_app().await;
    seed::import(&app.commands().await, &seed_file())
        .await
        .unwrap();
    // Timelines longer than any window, recorded out of business-date order, and one
    // commitment with none at all.
    let page = app
        .ok("{ commitments(first: 3) { nodes { id } } }", json!({}))
        .await;
    let ids: Vec<String> = page["commitments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    for (i, id) in ids.iter().enumerate().take(2) {
        for (overall, on) in [
            ("GOOD", "2024-05-01"),
            ("INADEQUATE", "2023-11-30"),
            ("REQUIRES_IMPROVEMENT", "2025-01-15"),
            ("OUTSTANDING", "2024-05-01"),
        ]
        .iter()
        .skip(i)
        {
            app.assess(id, overall, on).await;
        }
    }
    app.register("never-assessed").await;

    let page_query = format!(
        "query($n: Int!) {{
            commitments(first: 500) {{
                nodes {{ ...fields }}
                edges {{ node {{ id again: assessments(last: 2) {{ id }} evidence {{ id }} }} }}
            }}
        }}
        fragment fields on Commitment {{ {FIELDS} }}"
    );
    let lone_query = format!(
        "query($id: ID!, $n: Int!) {{
            commitment(id: $id) {{ ...fields again: assessments(last: 2) {{ id }} }}
        }}
        fragment fields on Commitment {{ {FIELDS} }}"
    );
    for n in [0, 1, 3, 7] {
        let page = app.ok(&page_query, json!({ "n": n })).await;
        let nodes = page["commitments"]["nodes"].as_array().unwrap();
        let edges = page["commitments"]["edges"].as_array().unwrap();
        assert!(
            nodes.len() > 3,
            "the seed and the new commitment are listed"
        );
        let mut windows = 0;
        for (node, edge) in nodes.iter().zip(edges) {
            let lone = app
                .ok(&lone_query, json!({ "id": node["id"], "n": n }))
                .await;
            let lone = &lone["commitment"];
            let mut expected = lone.clone();
            let again = expected.as_object_mut().unwrap().remove("again").unwrap();
            assert_eq!(node, &expected, "last: {n}, commitment {}", node["slug"]);
            assert_eq!(edge["node"]["again"], again);
            assert_eq!(edge["node"]["evidence"], ids_of(&lone["evidence"]));
            let some = node["some"].as_array().unwrap();
            let all = node["all"].as_array().unwrap();
            assert_eq!(some.len(), all.len().min(n));
            windows += usize::from(!some.is_empty() && some.len() < all.len());
        }
        if (1..=3).contains(&n) {
            assert!(windows > 0, "some windows start inside their timeline");
        }
    }
}

fn ids_of(list: &Value) -> Value {
    Value::Array(
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| json!({ "id": e["id"] }))
            .collect(),
    )
}
