//! Compiled reads: a query the resolvers have answered once is written as one SQL statement
//! that builds the whole answer as JSON, and later requests with the same text are answered
//! by that statement.
//!
//! Field by field, a page of 50 commitments with their assessments and evidence is about 500
//! objects, each resolved through its own future into an ordered map, from rows decoded
//! whole: 1–3 ms of the server's CPU per answer, against a fraction of that for PostgreSQL to
//! build the same JSON. The compiled path covers the shapes clients ask most (the live
//! commitment list and one commitment, with their scalar fields, current and latest
//! assessments and evidence); anything else (time travel, history, the log, a field or
//! directive it does not know) is answered by the resolvers as before.
//!
//! Two rules keep the answers the same:
//! - A document is compiled only after the resolvers answered it without an error, so it is
//!   known to be valid (validation does not depend on variables) and within the limits.
//! - Each request's arguments are checked as the resolvers check them (`slots`); a value they
//!   would refuse sends the request to the resolvers, which refuse it with the usual error.
//!
//! `tests/api/compiled.rs` asks random documents of both paths and compares the bytes.

mod build;
pub mod flights;
pub mod slots;

use super::order::operation;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Variables};
use build::Statement;
use slots::Param;
use sqlx::PgPool;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most documents remembered; when full, the memory starts again empty.
const KEPT: usize = 512;

/// What is known of each document the resolvers answered, by its text and then operation
/// name: its statement, or `None` if it has none.
type Known = HashMap<String, Vec<(Option<String>, Option<Arc<Statement>>)>>;

/// The compiled statements.
pub struct Compiler {
    enabled: bool,
    max_page: i32,
    known: Mutex<Known>,
    flights: flights::Flights,
}

/// What the compiled path made of a request.
pub enum Outcome {
    /// Answered: the answer's `data`, as JSON text without insignificant whitespace.
    Answered(Arc<str>),
    /// The resolvers must answer; `learn` afterwards if the document is not yet known.
    Resolvers { unknown: bool },
}

impl Compiler {
    /// A compiler (`enabled: false`: every request goes to the resolvers); `max_page` is the
    /// largest page a list returns.
    pub fn new(enabled: bool, max_page: i32) -> Self {
        Self {
            enabled,
            max_page,
            known: Mutex::default(),
            flights: flights::Flights::default(),
        }
    }

    /// Answers `request` with its compiled statement, if it has one and its
    /// arguments are ones the statement answers exactly as the resolvers would.
    pub async fn answer(&self, request: &Request) -> Outcome {
        if !self.enabled {
            return Outcome::Resolvers { unknown: false };
        }
        let known = self.lock().get(request.query.as_str()).and_then(|ops| {
            ops.iter()
                .find(|(name, _)| *name == request.operation_name)
                .map(|(_, statement)| statement.clone())
        });
        let statement = match known {
            None => return Outcome::Resolvers { unknown: true },
            Some(None) => return Outcome::Resolvers { unknown: false },
            Some(Some(statement)) => statement,
        };
        // The pool the request reads from (HTTP reads carry one: primary or replica).
        let Some(pool) = request
            .data
            .get(&TypeId::of::<PgPool>())
            .and_then(|d| d.downcast_ref::<PgPool>())
        else {
            return Outcome::Resolvers { unknown: false };
        };
        let Some(params) = self.bind(&statement, request) else {
            return Outcome::Resolvers { unknown: false };
        };
        match self.flights.run(pool, &statement.sql, params).await {
            Ok(data) => {
                metrics::counter!("graphql_compiled_total", "outcome" => "answered").increment(1);
                Outcome::Answered(data)
            }
            Err(e) => {
                // The resolvers answer instead, with their own error if the database is down.
                tracing::warn!(error = %e, "a compiled read failed; the resolvers answer");
                metrics::counter!("graphql_compiled_total", "outcome" => "failed").increment(1);
                Outcome::Resolvers { unknown: false }
            }
        }
    }

    /// Compiles `operation_name` of `document` (text `query`), which the resolvers have just
    /// answered without an error.
    pub fn learn(&self, query: &str, operation_name: Option<&str>, document: &ExecutableDocument) {
        let statement = operation(document, operation_name)
            .and_then(|op| build::statement(document, op))
            .map(Arc::new);
        let mut known = self.lock();
        if known.len() >= KEPT {
            known.clear();
        }
        let ops = known.entry(query.to_owned()).or_default();
        ops.retain(|(name, _)| name.as_deref() != operation_name);
        ops.push((operation_name.map(str::to_owned), statement));
    }

    /// The parameters for `request`, or `None` if the resolvers must answer it.
    fn bind(&self, statement: &Statement, request: &Request) -> Option<Vec<Param>> {
        let variables = &request.variables;
        if !statement.must_be_null.iter().all(|m| m.holds(variables)) {
            return None;
        }
        statement
            .slots
            .iter()
            .map(|slot| slot.bind(variables, self.max_page))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The statement the compiled path runs for `query` (a document of one operation) with
/// `variables`, its parameters written in as SQL literals, for running it elsewhere (the
/// benchmark gives it to pgbench). `None` if the document has no statement or these
/// arguments go to the resolvers.
pub fn statement_text(query: &str, variables: &Variables, max_page: i32) -> Option<String> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    let statement = build::statement(&document, operation(&document, None)?)?;
    let compiler = Compiler::new(true, max_page);
    let request = Request::new(query).variables(variables.clone());
    let params = compiler.bind(&statement, &request)?;
    let mut sql = statement.sql.to_string();
    // From the last, so that `$1` is not taken for the start of `$10`.
    for (i, param) in params.iter().enumerate().rev() {
        let literal = match param {
            Param::Int(Some(n)) => n.to_string(),
            Param::Text(Some(text)) => build::literal(text),
            Param::Uuid(Some(id)) => format!("'{id}'"),
            Param::Int(None) | Param::Text(None) | Param::Uuid(None) => "null".into(),
        };
        sql = sql.replace(&format!("${}::", i + 1), &format!("{literal}::"));
    }
    Some(sql)
}
