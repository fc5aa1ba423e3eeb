//! The shape limits a document must pass before it runs: depth, aliases, and the nesting of
//! introspection (`docs/adr/0008-clients-and-tools.md`).
//!
//! Depth counts fields from the operation's root down, through fragments. Inside an
//! introspection field (`__schema`, `__type`) two things differ, so that graphql-js's standard
//! introspection query (every option of `getIntrospectionQuery`) runs under the default limit
//! while a hostile one does not:
//! - `ofType` adds no depth: a type reference is a chain of single objects (`[Rating!]!` is
//!   three links), cheap however long, and the standard query asks for nine links. A chain is
//!   still bounded, by [`MAX_TYPE_REF_DEPTH`].
//! - The lists that fan out over the schema (`fields`, `inputFields`, `interfaces`,
//!   `possibleTypes`) may nest at most twice on one path, as graphql-js's own
//!   `MaxIntrospectionDepthRule` allows; `fields { type { fields { type { … } } } }` is how an
//!   introspection query grows exponentially, and is refused.
//!
//! Each rule gives `QUERY_TOO_COMPLEX`, as does a document nested beyond what the parser
//! accepts.

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use std::collections::HashMap;

/// Longest `ofType` chain an introspection query may ask for (a type reference in any schema
/// is far shorter; the standard query asks for nine).
pub const MAX_TYPE_REF_DEPTH: usize = 16;

/// How many introspection lists may nest on one path (graphql-js: fewer than three).
pub const MAX_INTROSPECTION_LISTS: usize = 2;

/// Most selections a document may expand to, fragments spread where they are used. Spreads
/// add no depth, so fragments that each spread the next twice expand exponentially within
/// the depth limit; this bounds the walk (and refuses such a document).
pub const MAX_SELECTIONS: usize = 20_000;

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of fields.
    pub max_depth: usize,
    /// Most aliased fields in one document.
    pub max_aliases: usize,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    /// Nested deeper than the depth limit.
    #[error("the query is nested deeper than {0} levels")]
    TooDeep(usize),
    /// Too many aliases.
    #[error("at most {0} aliased fields are allowed in one request")]
    TooManyAliases(usize),
    /// Introspection lists nested too often.
    #[error(
        "introspection may nest fields, inputFields, interfaces and possibleTypes at most {MAX_INTROSPECTION_LISTS} times"
    )]
    IntrospectionTooDeep,
    /// An `ofType` chain longer than any type reference.
    #[error("introspection may follow ofType at most {MAX_TYPE_REF_DEPTH} times")]
    TypeRefTooDeep,
    /// Expands to more selections than any real query needs.
    #[error("the query expands to more than {MAX_SELECTIONS} selections")]
    TooLarge,
}

impl Limits {
    /// Checks every operation and fragment of `doc`.
    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), TooComplex> {
        if count_aliases(doc) > self.max_aliases {
            return Err(TooComplex::TooManyAliases(self.max_aliases));
        }
        let walker = Walker {
            fragments: &doc.fragments,
            max_depth: self.max_depth,
            steps: std::cell::Cell::new(0),
        };
        for (_, operation) in doc.operations.iter() {
            let mut visiting = Vec::new();
            walker.set(
                &operation.node.selection_set.node,
                Path::default(),
                &mut visiting,
            )?;
        }
        Ok(())
    }
}

/// Where a selection set sits.
#[derive(Debug, Clone, Copy, Default)]
struct Path {
    /// Fields above, not counting `ofType` within introspection.
    depth: usize,
    /// Inside `__schema` or `__type`.
    introspection: bool,
    /// Introspection lists above.
    lists: usize,
    /// `ofType` links directly above.
    type_refs: usize,
}

struct Walker<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    max_depth: usize,
    /// Selections visited so far.
    steps: std::cell::Cell<usize>,
}

impl Walker<'_> {
    /// Walks a selection set; `visiting` holds the fragments being expanded on this path, so
    /// that a cycle (refused later by validation) cannot loop here.
    fn set<'s>(
        &'s self,
        set: &'s SelectionSet,
        path: Path,
        visiting: &mut Vec<&'s Name>,
    ) -> Result<(), TooComplex> {
        for item in &set.items {
            self.steps.set(self.steps.get() + 1);
            if self.steps.get() > MAX_SELECTIONS {
                return Err(TooComplex::TooLarge);
            }
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.selection_set.node.items.is_empty() {
                        // A leaf still counts as a level.
                        if path.depth + 1 > self.max_depth {
                            return Err(TooComplex::TooDeep(self.max_depth));
                        }
                        continue;
                    }
                    let name = field.name.node.as_str();
                    let mut next = path;
                    next.introspection |= name == "__schema" || name == "__type";
                    if path.introspection && name == "ofType" {
                        next.type_refs += 1;
                        if next.type_refs > MAX_TYPE_REF_DEPTH {
                            return Err(TooComplex::TypeRefTooDeep);
                        }
                    } else {
                        next.type_refs = 0;
                        next.depth += 1;
                        if next.depth > self.max_depth {
                            return Err(TooComplex::TooDeep(self.max_depth));
                        }
                    }
                    if path.introspection
                        && matches!(
                            name,
                            "fields" | "inputFields" | "interfaces" | "possibleTypes"
                        )
                    {
                        next.lists += 1;
                        if next.lists > MAX_INTROSPECTION_LISTS {
                            return Err(TooComplex::IntrospectionTooDeep);
                        }
                    }
                    self.set(&field.selection_set.node, next, visiting)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.set(&fragment.node.selection_set.node, path, visiting)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if visiting.contains(&name) {
                        continue;
                    }
                    let Some(fragment) = self.fragments.get(name) else {
                        continue; // validation names it
                    };
                    visiting.push(name);
                    let result = self.set(&fragment.node.selection_set.node, path, visiting);
                    visiting.pop();
                    result?;
                }
            }
        }
        Ok(())
    }
}

/// Parses a document, telling a document too deep for the parser from one that is malformed.
pub fn parse(text: &str) -> Result<ExecutableDocument, ParseFailure> {
    async_graphql::parser::parse_query(text).map_err(|e| match e {
        async_graphql::parser::Error::RecursionLimitExceeded => ParseFailure::TooDeep,
        other => ParseFailure::Syntax(other),
    })
}

/// Why a document did not parse.
#[derive(Debug)]
pub enum ParseFailure {
    /// Nested beyond the parser's own limit.
    TooDeep,
    /// Not GraphQL.
    Syntax(async_graphql::parser::Error),
}

/// How many aliased fields a parsed query document holds (in operations and fragments).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| walk(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// Whether a parsed query document holds a mutation (which must come by POST).
pub fn has_mutation(doc: &ExecutableDocument) -> bool {
    use async_graphql::parser::types::OperationType;
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 12,
        max_aliases: 30,
    };

    fn check(text: &str) -> Result<(), TooComplex> {
        LIMITS.check(&async_graphql::parser::parse_query(text).unwrap())
    }

    /// A selection `levels` deep, without the outer braces.
    fn inner(levels: usize) -> String {
        format!("{}id{}", "a { ".repeat(levels - 1), " }".repeat(levels - 1))
    }

    fn nested(levels: usize) -> String {
        format!("{{ {} }}", inner(levels))
    }

    #[test]
    fn depth_counts_every_level_down_to_the_leaf() {
        assert_eq!(check(&nested(12)), Ok(()));
        assert_eq!(check(&nested(13)), Err(TooComplex::TooDeep(12)));
    }

    #[test]
    fn fragments_count_where_they_are_spread_and_cycles_do_not_loop() {
        let spread = |levels| {
            format!(
                "{{ a {{ a {{ ...F }} }} }} fragment F on A {{ {} }}",
                inner(levels)
            )
        };
        assert_eq!(check(&spread(10)), Ok(()));
        assert_eq!(check(&spread(11)), Err(TooComplex::TooDeep(12)));
        assert_eq!(
            check("{ a { ...F } } fragment F on A { b { ...F } }"),
            Ok(())
        );
    }

    #[test]
    fn type_references_cost_no_depth_but_are_bounded() {
        let chain = |n: usize| {
            format!(
                "{{ __schema {{ types {{ fields {{ args {{ type {{ {}name{} }} }} }} }} }} }}",
                "ofType { ".repeat(n),
                " }".repeat(n)
            )
        };
        assert_eq!(check(&chain(9)), Ok(()));
        assert_eq!(check(&chain(MAX_TYPE_REF_DEPTH)), Ok(()));
        assert_eq!(
            check(&chain(MAX_TYPE_REF_DEPTH + 1)),
            Err(TooComplex::TypeRefTooDeep)
        );
        // Outside introspection an `ofType` field is an ordinary field.
        let plain = format!("{{ {}id{} }}", "ofType { ".repeat(12), " }".repeat(12));
        assert_eq!(check(&plain), Err(TooComplex::TooDeep(12)));
    }

    #[test]
    fn introspection_lists_nest_at_most_twice() {
        assert_eq!(
            check("{ __type(name: \"Query\") { fields { type { fields { name } } } } }"),
            Ok(())
        );
        assert_eq!(
            check(
                "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
            ),
            Err(TooComplex::IntrospectionTooDeep)
        );
    }

    #[test]
    fn fragments_that_expand_exponentially_are_refused() {
        let fragments: String = (0..40)
            .map(|i| format!("fragment F{i} on Q {{ ...F{n} ...F{n} }} ", n = i + 1))
            .collect();
        let text = format!("{{ ...F0 }} {fragments} fragment F40 on Q {{ x }}");
        assert_eq!(check(&text), Err(TooComplex::TooLarge));
    }

    #[test]
    fn too_many_aliases_are_refused() {
        let many: String = (0..31).map(|i| format!("a{i}: id ")).collect();
        assert_eq!(
            check(&format!("{{ {many} }}")),
            Err(TooComplex::TooManyAliases(30))
        );
    }

    #[test]
    fn a_document_deeper_than_the_parser_takes_is_told_apart() {
        assert!(matches!(parse(&nested(200)), Err(ParseFailure::TooDeep)));
        assert!(matches!(parse("{ a("), Err(ParseFailure::Syntax(_))));
    }
}
