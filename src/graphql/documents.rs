//! Parsed query documents, kept by their text.
//!
//! Clients send the same few documents over and over with different variables; parsing one
//! (async-graphql's PEG parser) was about 8% of the server's time per mutation. A document
//! that parsed is kept, and a request with the same text gets a copy instead of a new parse.
//! Documents that do not parse are not kept (execution reports them), nor very long ones.

use async_graphql::parser::types::ExecutableDocument;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most documents kept; when full, the cache starts again empty.
const KEPT: usize = 512;

/// Longest document text kept, in bytes.
const LONGEST: usize = 16 * 1024;

/// Parsed documents by their text.
#[derive(Default)]
pub struct Documents {
    parsed: Mutex<HashMap<String, ExecutableDocument>>,
}

impl Documents {
    /// Gives `request` its parsed document: a copy of the one kept for its text, or a fresh
    /// parse (kept if it succeeds). A document that does not parse is left for execution to
    /// report.
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        let kept = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&request.query)
            .cloned();
        if let Some(doc) = kept {
            request.set_parsed_query(doc);
            return;
        }
        let text = (request.query.len() <= LONGEST).then(|| request.query.clone());
        let Ok(doc) = request.parsed_query() else {
            return;
        };
        if let Some(text) = text {
            let doc = doc.clone();
            let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
            if parsed.len() >= KEPT {
                parsed.clear();
            }
            parsed.insert(text, doc);
        }
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.parsed.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn echo(&self, n: i32) -> i32 {
            n
        }
    }

    #[tokio::test]
    async fn a_kept_document_answers_like_a_fresh_parse_with_each_requests_variables() {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let documents = Documents::default();
        let query = "query($n: Int!) { echo(n: $n) }";
        for n in [1, 2, 3] {
            let mut request = async_graphql::Request::new(query).variables(
                async_graphql::Variables::from_json(serde_json::json!({ "n": n })),
            );
            documents.prepare(&mut request);
            let data = schema.execute(request).await.data.into_json().unwrap();
            assert_eq!(data["echo"], n);
        }
        assert_eq!(documents.len(), 1);

        // Text that does not parse is not kept, and execution still reports it.
        let mut broken = async_graphql::Request::new("{ echo(n: ");
        documents.prepare(&mut broken);
        assert_eq!(documents.len(), 1);
        assert!(!schema.execute(broken).await.errors.is_empty());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let documents = Documents::default();
        for i in 0..(KEPT + 10) {
            let mut request = async_graphql::Request::new(format!("{{ echo(n: {i}) }}"));
            documents.prepare(&mut request);
        }
        assert!(documents.len() <= KEPT);
        let fresh = Documents::default();
        let mut long =
            async_graphql::Request::new(format!("{{ echo(n: 1) {} }}", " ".repeat(LONGEST)));
        fresh.prepare(&mut long);
        assert!(fresh.is_empty());
        assert!(long.parsed_query().is_ok());
    }
}
