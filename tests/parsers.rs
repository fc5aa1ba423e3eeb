//! Property tests on every parser of client input: no input makes one panic, and what one
//! accepts it gives back unchanged.

use async_graphql::parser::parse_query;
use async_graphql::{ScalarType, Value};
use commitment_tracker::auth::bearer;
use commitment_tracker::domain::text::{Line, Slug, Text, WebUrl};
use commitment_tracker::graphql::limits::{self, Limits};
use commitment_tracker::graphql::order::FieldOrder;
use commitment_tracker::graphql::scalars::Date;
use commitment_tracker::graphql::{count_aliases, has_mutation};

const LIMITS: Limits = Limits {
    max_depth: 12,
    max_aliases: 30,
};
use commitment_tracker::store::cursor::{EventCursor, ListCursor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn text_parsers_never_panic_and_keep_what_they_accept(s in any::<String>()) {
        if let Ok(slug) = Slug::parse(&s) {
            prop_assert_eq!(slug.as_str(), s.as_str());
        }
        if let Ok(line) = Line::parse("title", &s) {
            prop_assert_eq!(line.as_str(), s.as_str());
            prop_assert!(!s.chars().any(char::is_control));
        }
        if let Ok(text) = Text::parse("summary", &s) {
            prop_assert_eq!(text.as_str(), s.as_str());
        }
        if let Ok(url) = WebUrl::parse("sourceUrl", &s) {
            prop_assert!(url.as_str().starts_with("http://") || url.as_str().starts_with("https://"));
        }
    }

    #[test]
    fn url_like_strings_never_panic(scheme in "(https?|ftp|javascript|data|)", rest in ".{0,60}") {
        let _ = WebUrl::parse("sourceUrl", &format!("{scheme}://{rest}"));
        let _ = WebUrl::parse("sourceUrl", &format!("{scheme}:{rest}"));
    }

    #[test]
    fn cursors_never_panic_and_round_trip(s in any::<String>(), t in 0i64..i64::MAX, p in any::<i64>()) {
        let _ = EventCursor::decode(&s);
        let _ = ListCursor::decode(&s);
        let _ = EventCursor::decode(&format!("e1.{s}"));
        let c = EventCursor { transaction_id: t, position: p };
        prop_assert_eq!(EventCursor::decode(&c.encode()), Ok(c));
        // List positions come from an identity column: never negative.
        let position = p.unsigned_abs().min(i64::MAX as u64) as i64;
        prop_assert_eq!(ListCursor::decode(&ListCursor(position).encode()), Ok(ListCursor(position)));
    }

    #[test]
    fn dates_never_panic(s in any::<String>(), y in -300000i32..300000, m in 0u32..14, d in 0u32..33) {
        let _ = Date::parse(Value::String(s));
        let _ = Date::parse(Value::String(format!("{y:04}-{m:02}-{d:02}")));
        let _ = Date::parse(Value::Number(y.into()));
    }

    #[test]
    fn authorization_headers_never_panic(s in any::<String>()) {
        if let Some(token) = bearer(&s) {
            prop_assert!(!token.is_empty());
        }
    }

    #[test]
    fn query_inspection_never_panics(s in any::<String>(), depth in 0usize..200) {
        if let Ok(doc) = parse_query(&s) {
            let _ = count_aliases(&doc);
            let _ = has_mutation(&doc);
            let _ = LIMITS.check(&doc);
            let mut data = Value::Null;
            FieldOrder::default().restore(&doc, None, &Default::default(), &mut data);
        }
        let nested = format!("{}{}", "{ a: f ".repeat(depth), "}".repeat(depth));
        if let Ok(doc) = parse_query(&nested) {
            prop_assert_eq!(count_aliases(&doc), depth);
            prop_assert!(!has_mutation(&doc));
        }
        // Any depth beyond the limit is refused, by the limits or by the parser.
        let fields = format!("{{ {}x{} }}", "f { ".repeat(depth), " }".repeat(depth));
        match limits::parse(&fields) {
            Ok(doc) => prop_assert_eq!(LIMITS.check(&doc).is_ok(), depth < 12),
            Err(_) => prop_assert!(depth >= 12),
        }
    }

    #[test]
    fn documents_built_of_fragments_are_walked_without_end(names in prop::collection::vec(0usize..6, 1..40)) {
        // Fragments spreading one another, cycles included: the walks end.
        let fragments: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("fragment F{i} on Q {{ a {{ ...F{n} }} b }} "))
            .collect();
        let text = format!("{{ ...F0 }} {fragments}");
        let doc = parse_query(&text).unwrap();
        let _ = LIMITS.check(&doc);
        let mut data = Value::from_json(serde_json::json!({ "a": { "a": { "b": 1 } }, "b": 2 })).unwrap();
        FieldOrder::default().restore(&doc, None, &Default::default(), &mut data);
    }
}
