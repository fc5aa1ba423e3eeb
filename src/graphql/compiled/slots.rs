//! The arguments of a compiled document: where each value comes from (the document's text
//! or a variable), how it is checked, and what it becomes as a statement parameter.
//!
//! A value the field's resolver would refuse (a page too large, a cursor that does not
//! decode, a variable of the wrong type, a `null` where the variable is declared non-null)
//! makes the request take the resolvers' path, which answers it with the usual error: the
//! compiled path answers only what it answers exactly as they would.

use crate::domain::rating::{AssessorKind, DeliveryStatus, Rating};
use crate::store::cursor::ListCursor;
use async_graphql::parser::types::VariableDefinition;
use async_graphql::{Name, Positioned, Value, Variables};
use async_graphql_value::Value as GqlValue;
use uuid::Uuid;

/// What an argument is, and so how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count (`first`, `last`): between 0 and the largest page; absent, `default`
    /// (`None`: no limit).
    Count { default: Option<i64> },
    /// `after` on the commitment list: a list cursor, as its position.
    ListCursor,
    /// Free text (`area`, `slug`).
    Text,
    /// A `Rating` name.
    RatingName,
    /// A `DeliveryStatus` name.
    StatusName,
    /// An `AssessorKind` name.
    AssessorName,
    /// An `ID` naming a record: a UUID.
    Id,
}

/// One statement parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Param {
    /// `bigint`.
    Int(Option<i64>),
    /// `text`.
    Text(Option<String>),
    /// `uuid`.
    Uuid(Option<Uuid>),
}

/// Where an argument's value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Written in the document (absent arguments are `null`).
    Literal(Value),
    /// A variable, with what its definition says.
    Variable {
        name: Name,
        default: Option<Value>,
        nullable: bool,
    },
}

impl Source {
    /// The source of an argument written as `value` (`None`: not given), or `None` if it is
    /// neither a literal nor a declared variable (a list or object holding variables).
    pub fn of(
        value: Option<&Positioned<GqlValue>>,
        definitions: &[Positioned<VariableDefinition>],
    ) -> Option<Source> {
        let Some(value) = value else {
            return Some(Source::Literal(Value::Null));
        };
        if let GqlValue::Variable(name) = &value.node {
            let definition = &definitions.iter().find(|d| d.node.name.node == *name)?.node;
            return Some(Source::Variable {
                name: name.clone(),
                default: definition.default_value.as_ref().map(|d| d.node.clone()),
                nullable: definition.var_type.node.nullable,
            });
        }
        // Lists and objects that hold variables are not arguments of the compiled fields.
        value.node.clone().into_const().map(Source::Literal)
    }

    /// The value for this request, or `None` when the resolvers must answer (a `null` for a
    /// variable declared non-null).
    fn value<'v>(&'v self, variables: &'v Variables) -> Option<&'v Value> {
        match self {
            Source::Literal(v) => Some(v),
            Source::Variable {
                name,
                default,
                nullable,
            } => {
                let value = variables
                    .get(name)
                    .or(default.as_ref())
                    .unwrap_or(&Value::Null);
                (*nullable || *value != Value::Null).then_some(value)
            }
        }
    }
}

/// One argument of the compiled statement.
#[derive(Debug, Clone)]
pub struct Slot {
    pub source: Source,
    pub kind: Kind,
}

impl Slot {
    /// The parameter for this request, or `None` when the resolvers must answer.
    pub fn bind(&self, variables: &Variables, max_page: i32) -> Option<Param> {
        let value = self.source.value(variables)?;
        check(value, self.kind, max_page)
    }
}

/// A value of an argument that must be `null` or absent for the compiled statement to
/// answer (`asOf`, `validOn`: time travel takes the resolvers' path).
#[derive(Debug, Clone)]
pub struct MustBeNull(pub Source);

impl MustBeNull {
    /// Whether it is `null` in this request.
    pub fn holds(&self, variables: &Variables) -> bool {
        self.0.value(variables) == Some(&Value::Null)
    }
}

/// `value` checked as an argument of `kind`.
fn check(value: &Value, kind: Kind, max_page: i32) -> Option<Param> {
    let name = |value: &Value| match value {
        Value::Enum(n) => Some(n.as_str().to_owned()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    match (kind, value) {
        (Kind::Count { default }, Value::Null) => Some(Param::Int(default)),
        (Kind::Count { .. }, Value::Number(n)) => {
            let n = n
                .as_i64()
                .filter(|n| (0..=i64::from(max_page)).contains(n))?;
            Some(Param::Int(Some(n)))
        }
        (Kind::ListCursor, Value::Null) => Some(Param::Int(None)),
        (Kind::ListCursor, Value::String(s)) => {
            ListCursor::decode(s).ok().map(|c| Param::Int(Some(c.0)))
        }
        (Kind::Text | Kind::RatingName | Kind::StatusName | Kind::AssessorName, Value::Null) => {
            Some(Param::Text(None))
        }
        (Kind::Text, Value::String(s)) => Some(Param::Text(Some(s.clone()))),
        (Kind::RatingName, v) => {
            Rating::parse(&name(v)?).map(|r| Param::Text(Some(r.as_str().into())))
        }
        (Kind::StatusName, v) => {
            DeliveryStatus::parse(&name(v)?).map(|r| Param::Text(Some(r.as_str().into())))
        }
        (Kind::AssessorName, v) => {
            AssessorKind::parse(&name(v)?).map(|r| Param::Text(Some(r.as_str().into())))
        }
        (Kind::Id, Value::Null) => Some(Param::Uuid(None)),
        (Kind::Id, Value::String(s)) => Uuid::parse_str(s).ok().map(|u| Param::Uuid(Some(u))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(v: Value) -> Slot {
        Slot {
            source: Source::Literal(v),
            kind: Kind::Count { default: Some(50) },
        }
    }

    #[test]
    fn counts_outside_the_page_limit_go_to_the_resolvers() {
        let vars = Variables::default();
        assert_eq!(
            literal(Value::Null).bind(&vars, 500),
            Some(Param::Int(Some(50)))
        );
        assert_eq!(
            literal(Value::from(500)).bind(&vars, 500),
            Some(Param::Int(Some(500)))
        );
        assert_eq!(literal(Value::from(501)).bind(&vars, 500), None);
        assert_eq!(literal(Value::from(-1)).bind(&vars, 500), None);
        assert_eq!(literal(Value::from(2.5)).bind(&vars, 500), None);
        assert_eq!(literal(Value::from("5")).bind(&vars, 500), None);
    }

    #[test]
    fn a_null_for_a_non_null_variable_goes_to_the_resolvers() {
        let slot = |nullable| Slot {
            source: Source::Variable {
                name: Name::new("n"),
                default: None,
                nullable,
            },
            kind: Kind::Count { default: Some(50) },
        };
        let none = Variables::default();
        assert_eq!(slot(true).bind(&none, 500), Some(Param::Int(Some(50))));
        assert_eq!(slot(false).bind(&none, 500), None);
        let five = Variables::from_json(serde_json::json!({ "n": 5 }));
        assert_eq!(slot(false).bind(&five, 500), Some(Param::Int(Some(5))));
    }

    #[test]
    fn enum_names_are_checked_and_cursors_decoded() {
        let vars = Variables::default();
        let slot = |kind, v| Slot {
            source: Source::Literal(v),
            kind,
        };
        assert_eq!(
            slot(Kind::RatingName, Value::Enum(Name::new("GOOD"))).bind(&vars, 500),
            Some(Param::Text(Some("GOOD".into())))
        );
        assert_eq!(
            slot(Kind::RatingName, Value::from("BAD")).bind(&vars, 500),
            None
        );
        let cursor = ListCursor(42).encode();
        assert_eq!(
            slot(Kind::ListCursor, Value::from(cursor)).bind(&vars, 500),
            Some(Param::Int(Some(42)))
        );
        assert_eq!(
            slot(Kind::ListCursor, Value::from("l1.nonsense")).bind(&vars, 500),
            None
        );
        assert_eq!(
            slot(Kind::Id, Value::from("not-a-uuid")).bind(&vars, 500),
            None
        );
    }
}
