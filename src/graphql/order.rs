//! Answers in the order of the selection set (GraphQL spec §7.2.2, "ordered maps").
//!
//! async-graphql 7 resolves an object's fields concurrently and writes each into the answer
//! when it finishes, so a field that waits for the database lands after one that does not,
//! and two identical requests can answer with their keys in different orders. Here the
//! answer is put back into the order the specification gives: the order of CollectFields
//! (§6.3.2), which walks the selection set in document order, expands the fragments whose
//! type condition applies, leaves out what `@skip`/`@include` leave out, and puts a key where
//! it first occurs. Objects already in order are left as they are, and every object of a
//! list shares one computed order.
//!
//! The same walk completes what async-graphql leaves out when a non-null field fails: it
//! drops the key, where the specification (§6.4.4, "Handling Field Errors") makes the
//! nearest nullable parent `null` (the whole `data` when there is none).

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, Directive, DocumentOperations, ExecutableDocument, OperationDefinition,
    OperationType, Selection, SelectionSet, Type, TypeCondition,
};
use async_graphql::{Name, Positioned, Value, Variables};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The schema's types, as far as ordering needs them.
#[derive(Debug, Default)]
pub struct FieldOrder {
    /// Each object's fields with the type they return.
    fields: HashMap<String, HashMap<String, Type>>,
    /// The object types that each interface or union stands for.
    possible: HashMap<String, HashSet<String>>,
}

/// One key of an object's answer, the type its field returns and the selections merged
/// under it.
struct Collected<'d> {
    key: &'d Name,
    ty: Option<&'d Type>,
    sets: Vec<&'d SelectionSet>,
}

/// The keys of an object of one type under one list of selection sets, computed once per walk
/// and shared by every object with the same selections.
type Keys<'d> = Rc<Vec<Collected<'d>>>;

/// Keys collected for one list of selection sets and one object type.
type Memo<'d> = (Vec<&'d SelectionSet>, Option<String>, Keys<'d>);

impl FieldOrder {
    /// Reads the types from the schema's SDL.
    pub fn from_sdl(sdl: &str) -> Self {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let mut order = FieldOrder::default();
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return order;
        };
        let mut implementers: Vec<(String, String)> = Vec::new();
        for definition in doc.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = ty.node;
            let name = ty.name.node.to_string();
            let fields = match ty.kind {
                TypeKind::Object(object) => {
                    for interface in &object.implements {
                        implementers.push((interface.node.to_string(), name.clone()));
                    }
                    object.fields
                }
                TypeKind::Interface(interface) => interface.fields,
                TypeKind::Union(union) => {
                    let members = union.members.iter().map(|m| m.node.to_string()).collect();
                    order.possible.insert(name, members);
                    continue;
                }
                _ => continue,
            };
            let fields = fields
                .into_iter()
                .map(|f| {
                    let f = f.node;
                    (f.name.node.to_string(), f.ty.node)
                })
                .collect();
            order.fields.insert(name, fields);
        }
        for (interface, object) in implementers {
            order.possible.entry(interface).or_default().insert(object);
        }
        order
    }

    /// Puts `data`, the answer to operation `operation_name` of `doc`, into selection order.
    pub fn restore(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        data: &mut Value,
    ) {
        let Some(operation) = operation(doc, operation_name) else {
            return;
        };
        let root = match operation.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        let walk = Walk {
            order: self,
            doc,
            variables,
            memo: RefCell::default(),
        };
        let root_type = Type {
            base: BaseType::Named(Name::new(root)),
            nullable: true,
        };
        if walk.value(Some(&root_type), &[&operation.selection_set.node], data) {
            *data = Value::Null;
        }
    }

    /// Whether a fragment on `condition` applies to an object of type `ty`.
    fn applies(&self, condition: &str, ty: Option<&str>) -> bool {
        match ty {
            // An object whose type is not known (an abstract type answered without
            // `__typename`): every fragment may have applied.
            None => true,
            Some(ty) => {
                condition == ty || self.possible.get(condition).is_some_and(|p| p.contains(ty))
            }
        }
    }

    /// The type a field of `ty` returns, if known (introspection's types are not in the SDL:
    /// their objects are ordered, without null propagation).
    fn field_type(&self, ty: Option<&str>, field: &str) -> Option<&Type> {
        self.fields.get(ty?)?.get(field)
    }
}

/// The operation `name` of `doc` (with no name, its only operation).
pub(crate) fn operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        _ => None,
    }
}

/// The name under a type's list and non-null wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

struct Walk<'a> {
    order: &'a FieldOrder,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Keys collected so far, by (selection sets, object type); a document has few such pairs,
    /// so a list searched in order serves.
    memo: RefCell<Vec<Memo<'a>>>,
}

impl<'a> Walk<'a> {
    /// Orders `value`, of type `ty` (when known). Returns whether it had to become `null` at
    /// a position that may not be null, so that its parent becomes `null` in turn.
    fn value(&self, ty: Option<&Type>, sets: &[&'a SelectionSet], value: &mut Value) -> bool {
        let nulled = match value {
            Value::Object(map) => {
                let name = self.object_type(ty.map(named), map);
                let keys = self.keys(name.as_deref(), sets);
                self.object(&keys, map)
            }
            Value::List(items) => {
                let item_type = ty.and_then(|t| match &t.base {
                    BaseType::List(inner) => Some(&**inner),
                    BaseType::Named(_) => None,
                });
                // The objects of a list share their keys (unless their type is abstract and
                // differs from one to the next).
                let mut shared: Option<(Option<String>, Keys<'a>)> = None;
                let mut nulled = false;
                for item in items {
                    let item_nulled = match item {
                        Value::Object(map) => {
                            let name = self.object_type(item_type.map(named), map);
                            let name = name.as_deref();
                            let keys = match &shared {
                                Some((t, keys)) if t.as_deref() == name => keys.clone(),
                                _ => {
                                    let keys = self.keys(name, sets);
                                    shared = Some((name.map(str::to_owned), keys.clone()));
                                    keys
                                }
                            };
                            if self.object(&keys, map) {
                                *item = Value::Null;
                                item_type.is_some_and(|t| !t.nullable)
                            } else {
                                false
                            }
                        }
                        other => self.value(item_type, sets, other),
                    };
                    nulled |= item_nulled;
                }
                nulled
            }
            _ => false,
        };
        if nulled {
            *value = Value::Null;
            return ty.is_some_and(|t| !t.nullable);
        }
        false
    }

    /// The keys of an object of type `ty` under `sets`, collected once per walk.
    fn keys(&self, ty: Option<&str>, sets: &[&'a SelectionSet]) -> Keys<'a> {
        let same = |known: &[&SelectionSet]| {
            known.len() == sets.len() && known.iter().zip(sets).all(|(a, b)| std::ptr::eq(*a, *b))
        };
        let found = self
            .memo
            .borrow()
            .iter()
            .find(|(known, t, _)| t.as_deref() == ty && same(known))
            .map(|(_, _, keys)| keys.clone());
        if let Some(keys) = found {
            return keys;
        }
        let keys = Rc::new(self.collect(ty, sets));
        self.memo
            .borrow_mut()
            .push((sets.to_vec(), ty.map(str::to_owned), keys.clone()));
        keys
    }

    /// The concrete type of an object: the field's type, or `__typename` for an abstract one.
    fn object_type<'t>(
        &self,
        ty: Option<&'t str>,
        map: &IndexMap<Name, Value>,
    ) -> Option<Cow<'t, str>> {
        let ty = ty?;
        if !self.order.possible.contains_key(ty) {
            return Some(Cow::Borrowed(ty));
        }
        match map.get("__typename") {
            Some(Value::String(name)) => Some(Cow::Owned(name.clone())),
            _ => None,
        }
    }

    /// Orders one object; returns whether it must become `null` (a non-null field failed).
    fn object(&self, keys: &[Collected<'a>], map: &mut IndexMap<Name, Value>) -> bool {
        let in_order = map.len() == keys.len() && map.keys().zip(keys).all(|(k, c)| k == c.key);
        if !in_order {
            // A field that failed is missing: `null` where it may be, else the object is.
            for c in keys {
                if !map.contains_key(c.key) {
                    if c.ty.is_some_and(|t| !t.nullable) {
                        return true;
                    }
                    map.insert(c.key.clone(), Value::Null);
                }
            }
            // Anything not selected (there should be nothing) goes after the rest.
            map.sort_by_cached_key(|k, _| {
                keys.iter().position(|c| c.key == k).unwrap_or(usize::MAX)
            });
        }
        // Now the i-th entry is the i-th key.
        for (i, c) in keys.iter().enumerate() {
            if c.sets.is_empty() {
                continue;
            }
            if let Some((_, value)) = map.get_index_mut(i)
                && self.value(c.ty, &c.sets, value)
            {
                return true;
            }
        }
        false
    }

    /// CollectFields (§6.3.2) over the selection sets merged under one key.
    fn collect(&self, ty: Option<&str>, sets: &[&'a SelectionSet]) -> Vec<Collected<'a>> {
        let mut out: Vec<Collected<'a>> = Vec::new();
        let mut visited: HashSet<&'a Name> = HashSet::new();
        for set in sets {
            self.collect_set(ty, set, &mut out, &mut visited);
        }
        out
    }

    fn collect_set(
        &self,
        ty: Option<&str>,
        set: &'a SelectionSet,
        out: &mut Vec<Collected<'a>>,
        visited: &mut HashSet<&'a Name>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let key = &field.response_key().node;
                    let sub = &field.selection_set.node;
                    match out.iter_mut().find(|c| c.key == key) {
                        Some(existing) => {
                            if !sub.items.is_empty() {
                                existing.sets.push(sub);
                            }
                        }
                        None => out.push(Collected {
                            key,
                            ty: self.order.field_type(ty, field.name.node.as_str()),
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
                    if !self.included(&fragment.directives)
                        || !self.condition_applies(fragment.type_condition.as_ref(), ty)
                    {
                        continue;
                    }
                    self.collect_set(ty, &fragment.selection_set.node, out, visited);
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let name = &spread.fragment_name.node;
                    if !self.included(&spread.directives) || !visited.insert(name) {
                        continue;
                    }
                    let Some(fragment) = self.doc.fragments.get(name) else {
                        continue;
                    };
                    let fragment = &fragment.node;
                    if !self.condition_applies(Some(&fragment.type_condition), ty) {
                        continue;
                    }
                    self.collect_set(ty, &fragment.selection_set.node, out, visited);
                }
            }
        }
    }

    fn condition_applies(
        &self,
        condition: Option<&Positioned<TypeCondition>>,
        ty: Option<&str>,
    ) -> bool {
        condition.is_none_or(|c| self.order.applies(c.node.on.node.as_str(), ty))
    }

    /// `@skip(if:)` and `@include(if:)`, with the request's variables.
    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|d| {
            let d = &d.node;
            let condition = || {
                d.get_argument("if").and_then(|v| {
                    v.node
                        .clone()
                        .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                        .ok()
                })
            };
            match d.name.node.as_str() {
                "skip" => condition() != Some(Value::Boolean(true)),
                "include" => condition() != Some(Value::Boolean(false)),
                _ => true,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SDL: &str = "
        type Query { a: A list: [A!]! u: U i: I strict: A! }
        type A implements I { x: Int y: B z: Int n: Int! b: B! }
        type B implements I { x: Int w: Int }
        interface I { x: Int }
        union U = A | B
    ";

    fn restored(query: &str, variables: serde_json::Value, data: serde_json::Value) -> String {
        let order = FieldOrder::from_sdl(SDL);
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let mut data = Value::from_json(data).unwrap();
        order.restore(&doc, None, &Variables::from_json(variables), &mut data);
        serde_json::to_string(&data).unwrap()
    }

    #[test]
    fn keys_follow_the_selection_with_aliases_and_merged_fields() {
        let out = restored(
            "{ a { z first: x y { w x } } a { y { x } } }",
            json!({}),
            json!({ "a": { "y": { "x": 1, "w": 2 }, "first": 3, "z": 4 } }),
        );
        assert_eq!(out, r#"{"a":{"z":4,"first":3,"y":{"w":2,"x":1}}}"#);
    }

    #[test]
    fn a_key_goes_where_it_first_occurs_in_an_applying_fragment() {
        // On a B, the fragment on A does not apply: `w` comes first, then `x`.
        let out = restored(
            "{ u { __typename ... on A { x } w: __typename ... on B { x } } }",
            json!({}),
            json!({ "u": { "x": 1, "w": "B", "__typename": "B" } }),
        );
        assert_eq!(out, r#"{"u":{"__typename":"B","w":"B","x":1}}"#);
        let out = restored(
            "query { i { ...F z: x } } fragment F on I { x }",
            json!({}),
            json!({ "i": { "z": 1, "x": 2 } }),
        );
        assert_eq!(out, r#"{"i":{"x":2,"z":1}}"#);
    }

    #[test]
    fn skipped_fields_do_not_hold_a_place() {
        let out = restored(
            "query($s: Boolean!) { a { x @skip(if: $s) z @include(if: true) x } }",
            json!({ "s": true }),
            json!({ "a": { "x": 1, "z": 2 } }),
        );
        assert_eq!(out, r#"{"a":{"z":2,"x":1}}"#);
    }

    #[test]
    fn a_failed_non_null_field_nulls_its_nearest_nullable_parent() {
        // `n` failed (async-graphql left it out): `a` becomes null, the rest stays.
        let out = restored(
            "{ a { x n } list { x } }",
            json!({}),
            json!({ "list": [{ "x": 1 }], "a": { "x": 1 } }),
        );
        assert_eq!(out, r#"{"a":null,"list":[{"x":1}]}"#);
        // Through non-null parents up to `data` itself.
        let out = restored(
            "{ strict { n } a { x } }",
            json!({}),
            json!({ "strict": {}, "a": { "x": 1 } }),
        );
        assert_eq!(out, "null");
        // A list of non-null items becomes null as a whole; a nullable field is just null.
        let out = restored(
            "{ list { n } a { z } }",
            json!({}),
            json!({ "list": [{ "n": 1 }, {}], "a": {} }),
        );
        assert_eq!(out, "null");
        let out = restored("{ a { x z } }", json!({}), json!({ "a": { "z": 1 } }));
        assert_eq!(out, r#"{"a":{"x":null,"z":1}}"#);
    }

    #[test]
    fn every_object_of_a_list_is_ordered() {
        let out = restored(
            "{ list { z x } }",
            json!({}),
            json!({ "list": [{ "x": 1, "z": 2 }, { "z": 3, "x": 4 }] }),
        );
        assert_eq!(out, r#"{"list":[{"z":2,"x":1},{"z":3,"x":4}]}"#);
    }
}
