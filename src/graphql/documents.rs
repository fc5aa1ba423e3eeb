//! Parsed query documents, kept by their text.
//!
//! Clients send the same few documents over and over with different variables; parsing one
//! (async-graphql's PEG parser) was about 8% of the server's time per mutation. A document
//! that parsed is kept, and a request with the same text gets a copy instead of a new parse.
//! Documents that do not parse are not kept, nor very long ones.

use super::limits::{ParseFailure, parse};
use async_graphql::parser::types::ExecutableDocument;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most documents kept; when full, the cache starts again empty.
const KEPT: usize = 512;

/// Longest document text kept, in bytes.
const LONGEST: usize = 16 * 1024;

/// Parsed documents by their text.
#[derive(Default)]
pub struct Documents {
    parsed: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// The parsed document of `text`: the one kept for it, or a fresh parse (kept if it
    /// succeeds and is not too long).
    pub fn parse(&self, text: &str) -> Result<Arc<ExecutableDocument>, ParseFailure> {
        let kept = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(text)
            .cloned();
        if let Some(doc) = kept {
            return Ok(doc);
        }
        let doc = Arc::new(parse(text)?);
        if text.len() <= LONGEST {
            let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
            if parsed.len() >= KEPT {
                parsed.clear();
            }
            parsed.insert(text.to_owned(), doc.clone());
        }
        Ok(doc)
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
            request.set_parsed_query((*documents.parse(query).unwrap()).clone());
            let data = schema.execute(request).await.data.into_json().unwrap();
            assert_eq!(data["echo"], n);
        }
        assert_eq!(documents.len(), 1);

        // Text that does not parse is not kept.
        assert!(documents.parse("{ echo(n: ").is_err());
        assert_eq!(documents.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let documents = Documents::default();
        for i in 0..(KEPT + 10) {
            documents.parse(&format!("{{ echo(n: {i}) }}")).unwrap();
        }
        assert!(documents.len() <= KEPT);
        let fresh = Documents::default();
        let long = format!("{{ echo(n: 1) {} }}", " ".repeat(LONGEST));
        assert!(fresh.parse(&long).is_ok());
        assert!(fresh.is_empty());
    }
}
