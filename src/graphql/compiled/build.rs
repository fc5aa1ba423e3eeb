//! A query document written as one SQL statement that builds the whole answer as JSON.
//!
//! Each object type the compiled path knows is a function from a table alias and the
//! selection sets merged under a key to a text expression that writes the object's JSON, its
//! keys in the order CollectFields (GraphQL §6.3.2) gives them. A field, argument, directive
//! or fragment it does not know makes the whole document `None`: the resolvers answer it.
//!
//! The JSON is written as text: each scalar by `to_json` (the spelling `json_build_object`
//! gives it, and PostgreSQL escapes strings as `serde_json` does), each object by joining
//! its keys and values, each list by `string_agg`. Building `json` values instead
//! (`json_build_object`, `json_agg`) cost PostgreSQL about a fifth more for a page of 50
//! commitments, and its spaces between tokens had to be taken out again.

use super::slots::{Kind, MustBeNull, Slot, Source};
use async_graphql::Name;
use async_graphql::Positioned;
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
    VariableDefinition,
};
use async_graphql_value::Value as GqlValue;

/// Most keys one object may have; an object with more goes to the resolvers, which keeps
/// statements to a bounded size.
const MOST_KEYS: usize = 50;

/// The statement and its arguments.
#[derive(Debug)]
pub struct Statement {
    /// One row, one column: the answer's `data`, as JSON text without insignificant
    /// whitespace.
    pub sql: std::sync::Arc<str>,
    /// Parameter `$n` is `slots[n - 1]`.
    pub slots: Vec<Slot>,
    /// Arguments that must be `null` for the statement to answer.
    pub must_be_null: Vec<MustBeNull>,
}

/// Writes `operation` of `doc` as a statement, if every part of it is known.
pub fn statement(doc: &ExecutableDocument, operation: &OperationDefinition) -> Option<Statement> {
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let mut b = Builder {
        doc,
        definitions: &operation.variable_definitions,
        slots: Vec::new(),
        must_be_null: Vec::new(),
        aliases: 0,
    };
    let root = b.object_of(&[&operation.selection_set.node], "Query", |b, f| b.root(f))?;
    Some(Statement {
        sql: format!("select {root}").into(),
        slots: b.slots,
        must_be_null: b.must_be_null,
    })
}

/// One key of an object's answer and what was selected under it.
struct Collected<'d> {
    key: &'d Name,
    field: &'d Field,
    sets: Vec<&'d SelectionSet>,
}

impl Collected<'_> {
    fn name(&self) -> &str {
        self.field.name.node.as_str()
    }

    /// A leaf: no arguments, nothing selected under it.
    fn is_plain(&self) -> bool {
        self.field.arguments.is_empty() && self.sets.is_empty()
    }

    fn argument(&self, name: &str) -> Option<&Positioned<GqlValue>> {
        self.field.get_argument(name)
    }

    /// Whether every argument is one of `known`.
    fn arguments_among(&self, known: &[&str]) -> bool {
        self.field
            .arguments
            .iter()
            .all(|(n, _)| known.contains(&n.node.as_str()))
    }
}

struct Builder<'d> {
    doc: &'d ExecutableDocument,
    definitions: &'d [Positioned<VariableDefinition>],
    slots: Vec<Slot>,
    must_be_null: Vec<MustBeNull>,
    aliases: u32,
}

impl<'d> Builder<'d> {
    /// CollectFields over `sets` for an object of type `ty`: `None` for directives, fragments
    /// on other types, and one key given two different fields.
    fn collect(&self, ty: &str, sets: &[&'d SelectionSet]) -> Option<Vec<Collected<'d>>> {
        let mut out: Vec<Collected<'d>> = Vec::new();
        let mut visited: Vec<&'d Name> = Vec::new();
        for set in sets {
            self.collect_set(ty, set, &mut out, &mut visited)?;
        }
        Some(out)
    }

    fn collect_set(
        &self,
        ty: &str,
        set: &'d SelectionSet,
        out: &mut Vec<Collected<'d>>,
        visited: &mut Vec<&'d Name>,
    ) -> Option<()> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !field.directives.is_empty() {
                        return None;
                    }
                    let key = &field.response_key().node;
                    let sub = &field.selection_set.node;
                    match out.iter_mut().find(|c| c.key == key) {
                        Some(existing) => {
                            let same = existing.field.name.node == field.name.node
                                && existing.field.arguments.len() == field.arguments.len()
                                && existing
                                    .field
                                    .arguments
                                    .iter()
                                    .zip(&field.arguments)
                                    .all(|(a, b)| a.0.node == b.0.node && a.1.node == b.1.node);
                            if !same {
                                return None;
                            }
                            if !sub.items.is_empty() {
                                existing.sets.push(sub);
                            }
                        }
                        None => out.push(Collected {
                            key,
                            field,
                            sets: if sub.items.is_empty() {
                                Vec::new()
                            } else {
                                vec![sub]
                            },
                        }),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let on = fragment.type_condition.as_ref().map(|c| &c.node.on.node);
                    if !fragment.directives.is_empty() || on.is_some_and(|on| on != ty) {
                        return None;
                    }
                    self.collect_set(ty, &fragment.selection_set.node, out, visited)?;
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let name = &spread.fragment_name.node;
                    if !spread.directives.is_empty() {
                        return None;
                    }
                    if visited.contains(&name) {
                        continue;
                    }
                    visited.push(name);
                    let fragment = &self.doc.fragments.get(name)?.node;
                    if fragment.type_condition.node.on.node != ty || !fragment.directives.is_empty()
                    {
                        return None;
                    }
                    self.collect_set(ty, &fragment.selection_set.node, out, visited)?;
                }
            }
        }
        Some(())
    }

    /// The JSON text of the object with the keys collected from `sets` for type `ty`, each
    /// key's value (an expression giving JSON text, never null) written by `value`.
    fn object_of(
        &mut self,
        sets: &[&'d SelectionSet],
        ty: &str,
        mut value: impl FnMut(&mut Self, &Collected<'d>) -> Option<String>,
    ) -> Option<String> {
        let fields = self.collect(ty, sets)?;
        if fields.is_empty() || fields.len() > MOST_KEYS {
            return None;
        }
        let mut text = Concat::default();
        for (i, field) in fields.iter().enumerate() {
            // A response key is a GraphQL name: letters, digits and underscores.
            let open = if i == 0 { "{" } else { "," };
            text.literal(&format!("{open}\"{}\":", field.key));
            if field.name() == "__typename" && field.is_plain() {
                text.literal(&format!("\"{ty}\""));
            } else {
                text.expression(value(self, field)?);
            }
        }
        text.literal("}");
        Some(text.finish())
    }

    /// A fresh table alias.
    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// `$n::ty` for an argument of `field`, checked as `kind`.
    fn param(&mut self, field: &Collected<'d>, name: &str, kind: Kind, ty: &str) -> Option<String> {
        let source = Source::of(field.argument(name), self.definitions)?;
        self.slots.push(Slot { source, kind });
        Some(format!("${}::{ty}", self.slots.len()))
    }

    /// Requires argument `name` of `field` to be absent or `null` in each request.
    fn null_only(&mut self, field: &Collected<'d>, name: &str) -> Option<()> {
        let source = Source::of(field.argument(name), self.definitions)?;
        self.must_be_null.push(MustBeNull(source));
        Some(())
    }

    fn root(&mut self, field: &Collected<'d>) -> Option<String> {
        match field.name() {
            "commitments" => self.commitment_list(field),
            "commitment" => self.one_commitment(field),
            _ => None,
        }
    }

    /// `commitment(id:, slug:)`, live.
    fn one_commitment(&mut self, field: &Collected<'d>) -> Option<String> {
        if !field.arguments_among(&["id", "slug", "asOf", "validOn"]) {
            return None;
        }
        self.null_only(field, "asOf")?;
        self.null_only(field, "validOn")?;
        let id = self.param(field, "id", Kind::Id, "uuid")?;
        let slug = self.param(field, "slug", Kind::Text, "text")?;
        let c = self.alias("c");
        let node = self.object_of(&field.sets, "Commitment", |b, f| b.commitment(&c, f))?;
        Some(format!(
            "coalesce((select {node} from commitments {c} where {c}.id = {id} or {c}.slug = {slug}), 'null')"
        ))
    }

    /// `commitments(...)`, live: a page in registration order.
    fn commitment_list(&mut self, field: &Collected<'d>) -> Option<String> {
        let known = [
            "area",
            "rating",
            "deliveryStatus",
            "asOf",
            "validOn",
            "first",
            "after",
        ];
        if !field.arguments_among(&known) {
            return None;
        }
        self.null_only(field, "asOf")?;
        self.null_only(field, "validOn")?;
        let area = self.param(field, "area", Kind::Text, "text")?;
        let rating = self.param(field, "rating", Kind::RatingName, "text")?;
        let status = self.param(field, "deliveryStatus", Kind::StatusName, "text")?;
        let first = self.param(field, "first", Kind::Count { default: Some(50) }, "bigint")?;
        let after = self.param(field, "after", Kind::ListCursor, "bigint")?;
        let filter = format!(
            "({area} is null or c.area = {area})
               and ({rating} is null or cur.overall = {rating})
               and ({status} is null or cur.delivery_status = {status})"
        );
        let page = self.alias("page");
        let shown = format!("(select * from {page} order by registered_position limit {first})");
        let connection =
            self.object_of(&field.sets, "CommitmentConnection", |b, f| match f.name() {
                "nodes" if f.field.arguments.is_empty() => {
                    let c = b.alias("c");
                    let node = b.object_of(&f.sets, "Commitment", |b, f| b.commitment(&c, f))?;
                    Some(format!(
                        "(select {} from {shown} {c})",
                        list(&node, &format!("{c}.registered_position"))
                    ))
                }
                "edges" if f.field.arguments.is_empty() => {
                    let c = b.alias("c");
                    let edge = b.object_of(&f.sets, "CommitmentEdge", |b, f| match f.name() {
                        "cursor" if f.is_plain() => {
                            Some(scalar(&format!("api_list_cursor({c}.registered_position)")))
                        }
                        "node" if f.field.arguments.is_empty() => {
                            b.object_of(&f.sets, "Commitment", |b, f| b.commitment(&c, f))
                        }
                        _ => None,
                    })?;
                    Some(format!(
                        "(select {} from {shown} {c})",
                        list(&edge, &format!("{c}.registered_position"))
                    ))
                }
                "pageInfo" if f.field.arguments.is_empty() => {
                    b.object_of(&f.sets, "PageInfo", |_, f| {
                        if !f.is_plain() {
                            return None;
                        }
                        let value = match f.name() {
                            "hasPreviousPage" => format!("{after} is not null"),
                            "hasNextPage" => format!("(select count(*) from {page}) > {first}"),
                            "startCursor" => format!(
                                "(select api_list_cursor(min(registered_position)) from {shown} s)"
                            ),
                            "endCursor" => format!(
                                "(select api_list_cursor(max(registered_position)) from {shown} s)"
                            ),
                            _ => return None,
                        };
                        Some(scalar(&value))
                    })
                }
                "totalCount" if f.is_plain() => Some(scalar(&format!(
                    "(select count(*) from commitments c
                       left join assessments cur on cur.id = c.current_assessment_id
                      where {filter})"
                ))),
                _ => None,
            })?;
        Some(format!(
            "(with {page} as materialized (
                select c.* from commitments c
                  left join assessments cur on cur.id = c.current_assessment_id
                 where {filter} and c.registered_position > coalesce({after}, 0)
                 order by c.registered_position limit {first} + 1)
              select {connection})"
        ))
    }

    /// A `Commitment` field of the row aliased `c`.
    fn commitment(&mut self, c: &str, f: &Collected<'d>) -> Option<String> {
        let column = |name: &str| Some(format!("{c}.{name}"));
        if f.is_plain() {
            let value = match f.name() {
                "id" | "slug" | "title" | "description" | "area" | "target" | "owner"
                | "version" => column(f.name()),
                "policySource" => column("policy_source"),
                "dueDate" => column("due_date"),
                "announcedOn" => column("announced_on"),
                "registeredAt" => Some(format!("api_timestamp({c}.registered_at)")),
                "updatedAt" => Some(format!("api_timestamp({c}.updated_at)")),
                "cursor" => Some(format!(
                    "api_event_cursor({c}.last_transaction_id, {c}.last_position)"
                )),
                _ => None,
            };
            return value.map(|v| scalar(&v));
        }
        match f.name() {
            "currentAssessment" if f.arguments_among(&["kind"]) => {
                let kind = self.param(f, "kind", Kind::AssessorName, "text")?;
                let a = self.alias("a");
                let node = self.object_of(&f.sets, "Assessment", |b, f| b.assessment(&a, f))?;
                Some(format!(
                    "coalesce((select {node} from (select * from assessments x
                        where x.commitment_id = {c}.id
                          and ({kind} is null or x.assessor_kind = {kind})
                        order by x.assessed_on desc, x.position desc limit 1) {a}), 'null')"
                ))
            }
            "assessments" if f.arguments_among(&["last"]) => {
                let last = self.param(f, "last", Kind::Count { default: None }, "bigint")?;
                let a = self.alias("a");
                let node = self.object_of(&f.sets, "Assessment", |b, f| b.assessment(&a, f))?;
                Some(format!(
                    "(select {} from (select * from assessments x where x.commitment_id = {c}.id
                              order by x.assessed_on desc, x.position desc limit {last}) {a})",
                    list(&node, &format!("{a}.assessed_on, {a}.position"))
                ))
            }
            "evidence" if f.field.arguments.is_empty() => {
                let e = self.alias("e");
                let node = self.object_of(&f.sets, "Evidence", |b, f| b.evidence(&e, f))?;
                Some(format!(
                    "(select {} from evidence_commitments ec join evidence {e} on {e}.id = ec.evidence_id
                       where ec.commitment_id = {c}.id)",
                    list(&node, &format!("{e}.submitted_on, {e}.position"))
                ))
            }
            _ => None,
        }
    }

    /// An `Assessment` field of the row aliased `a`.
    fn assessment(&mut self, a: &str, f: &Collected<'d>) -> Option<String> {
        if f.name() == "aspects" && f.field.arguments.is_empty() {
            return self.object_of(&f.sets, "Aspects", |_, f| match f.name() {
                "met" | "funding" | "impact" | "appropriateness" if f.is_plain() => {
                    Some(scalar(&format!("{a}.{}", f.name())))
                }
                _ => None,
            });
        }
        if !f.is_plain() {
            return None;
        }
        let column = |name: &str| Some(scalar(&format!("{a}.{name}")));
        match f.name() {
            "id" | "assessor" | "overall" | "rationale" | "evaluation" | "actor" => {
                column(f.name())
            }
            "commitmentId" => column("commitment_id"),
            "assessorKind" => column("assessor_kind"),
            "assessedOn" => column("assessed_on"),
            "deliveryStatus" => column("delivery_status"),
            "recordedAt" => Some(scalar(&format!("api_timestamp({a}.recorded_at)"))),
            "cursor" => Some(scalar(&format!(
                "api_event_cursor({a}.transaction_id, {a}.position)"
            ))),
            _ => None,
        }
    }

    /// An `Evidence` field of the row aliased `e`.
    fn evidence(&mut self, e: &str, f: &Collected<'d>) -> Option<String> {
        if !f.is_plain() {
            return None;
        }
        let column = |name: &str| Some(scalar(&format!("{e}.{name}")));
        match f.name() {
            "id" | "title" | "summary" | "organisation" | "kind" | "retracted" | "version"
            | "actor" => column(f.name()),
            "sourceUrl" => column("source_url"),
            "submittedBy" => column("submitted_by"),
            "submittedOn" => column("submitted_on"),
            "retractionReason" => column("retraction_reason"),
            "retractedOn" => column("retracted_on"),
            "recordedAt" => Some(scalar(&format!("api_timestamp({e}.recorded_at)"))),
            "cursor" => Some(scalar(&format!(
                "api_event_cursor({e}.transaction_id, {e}.position)"
            ))),
            "erasedFields" => {
                let erased = literal(crate::store::personal::ERASED);
                Some(format!(
                    "array_to_json(array_remove(array[
                        case when {e}.actor = {erased} then 'actor' end,
                        case when {e}.submitted_by = {erased} then 'submittedBy' end], null))::text"
                ))
            }
            _ => None,
        }
    }
}

/// The JSON text of a scalar value: `null` for SQL's null.
fn scalar(value: &str) -> String {
    format!("coalesce(to_json({value})::text, 'null')")
}

/// The JSON text of the list of the objects `item` of the rows in `order` (an aggregate).
fn list(item: &str, order: &str) -> String {
    format!("coalesce('[' || string_agg({item}, ',' order by {order}) || ']', '[]')")
}

/// An expression that joins pieces of text, adjacent literals written as one.
#[derive(Default)]
struct Concat {
    parts: Vec<String>,
    literal: String,
}

impl Concat {
    fn literal(&mut self, text: &str) {
        self.literal.push_str(text);
    }

    /// An expression of type text, never null.
    fn expression(&mut self, sql: String) {
        self.flush();
        self.parts.push(format!("({sql})"));
    }

    fn flush(&mut self) {
        if !self.literal.is_empty() {
            self.parts.push(literal(&std::mem::take(&mut self.literal)));
        }
    }

    /// `(a || b || ...)`; a lone literal is cast, so that the expression is text either way.
    fn finish(mut self) -> String {
        self.flush();
        if let [only] = self.parts.as_slice() {
            return format!("{only}::text");
        }
        format!("({})", self.parts.join(" || "))
    }
}

/// `text` as an SQL string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
