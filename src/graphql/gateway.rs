//! What every operation goes through, over HTTP and WebSocket alike, around the schema:
//! persisted queries, one parse per document text, the shape limits, then execution, error
//! codes and selection order.
//!
//! ```text
//!  request ─▶ persisted query ─▶ parse (kept) ─▶ limits ─▶ schema ─▶ codes ─▶ field order
//!                                                         └▶ compiled statement ─┘
//! ```
//!
//! A query the schema has answered once without an error may be answered by one SQL
//! statement afterwards ([`super::compiled`]).
//!
//! [`Gateway`] is an [`Executor`], so the WebSocket engine and the shared subscriptions run
//! on it exactly as HTTP does, and a client sees the same codes and order on every transport.

use super::compiled::{Compiler, Outcome};
use super::documents::Documents;
use super::error::{ApiError, normalise};
use super::limits::{Limits, ParseFailure};
use super::order::FieldOrder;
use super::{AppSchema, RequestInfo};
use crate::auth::Role;
use crate::store::persisted::{PersistedQueries, is_sha256_hex, sha256_hex};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Data, ErrorExtensions, Executor, Request, Response, ServerError};
use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::any::TypeId;
use std::sync::Arc;

/// How persisted queries are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedMode {
    /// Apollo's automatic persisted queries: any client registers a document by sending it
    /// with its hash, and any document runs.
    Automatic,
    /// Trusted documents: only registered documents run, and only an admin registers one.
    Only,
}

/// The schema and everything in front of it.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    schema: AppSchema,
    documents: Documents,
    limits: Limits,
    order: FieldOrder,
    persisted: PersistedQueries,
    mode: PersistedMode,
    compiler: Compiler,
}

/// What running a request gives.
// Made once per request and moved a few times: not worth an allocation to shrink.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    /// The schema's response.
    Resolved(Response),
    /// A compiled statement's `data`, as JSON text (no errors, no extensions).
    Compiled(Arc<str>),
}

impl Answer {
    /// As the schema's response (a compiled answer's text read into values).
    pub fn into_response(self) -> Response {
        match self {
            Answer::Resolved(response) => response,
            Answer::Compiled(data) => match serde_json::from_str::<async_graphql::Value>(&data) {
                Ok(data) => Response::new(data),
                Err(e) => Response::from_errors(vec![ServerError::new(
                    format!("a compiled answer is not JSON: {e}"),
                    None,
                )]),
            },
        }
    }

    /// Its errors (none for a compiled answer).
    pub fn errors(&self) -> &[ServerError] {
        match self {
            Answer::Resolved(response) => &response.errors,
            Answer::Compiled(_) => &[],
        }
    }
}

/// A request that passed everything before execution, with its parsed document.
pub struct Prepared {
    request: Request,
    document: Arc<ExecutableDocument>,
}

impl Prepared {
    /// The parsed document.
    pub fn document(&self) -> &ExecutableDocument {
        &self.document
    }

    /// Attaches `data` for the resolvers.
    pub fn with_data<D: std::any::Any + Send + Sync>(mut self, data: D) -> Self {
        self.request = self.request.data(data);
        self
    }
}

impl Gateway {
    /// A gateway in front of `schema`.
    pub fn new(
        schema: AppSchema,
        limits: Limits,
        persisted: PersistedQueries,
        mode: PersistedMode,
        compiler: Compiler,
    ) -> Self {
        let order = FieldOrder::from_sdl(&schema.sdl());
        Self {
            inner: Arc::new(Inner {
                schema,
                documents: Documents::default(),
                limits,
                order,
                persisted,
                mode,
                compiler,
            }),
        }
    }

    /// How many parsed documents are kept.
    pub fn kept_documents(&self) -> usize {
        self.inner.documents.len()
    }

    /// Resolves a persisted query, parses the document (or takes the one kept for its text)
    /// and checks its shape. `info` is who asks (for trusted documents).
    pub async fn prepare(
        &self,
        mut request: Request,
        info: Option<&RequestInfo>,
    ) -> Result<Prepared, Response> {
        let inner = &self.inner;
        let admin = info
            .and_then(|i| i.actor.as_ref())
            .is_some_and(|a| a.can(Role::Admin));
        self.resolve_persisted(&mut request, admin)
            .await
            .map_err(refusal)
            .map_err(counted)?;
        let document = match inner.documents.parse(&request.query) {
            Ok(document) => document,
            Err(ParseFailure::TooDeep) => {
                let limit = inner.limits.max_depth;
                return Err(counted(refusal(ApiError::TooComplex(format!(
                    "the query is nested deeper than {limit} levels"
                )))));
            }
            Err(ParseFailure::Syntax(e)) => {
                let mut errors = vec![ServerError::from(e)];
                normalise(&mut errors);
                return Err(counted(Response::from_errors(errors)));
            }
        };
        inner
            .limits
            .check(&document)
            .map_err(|e| counted(refusal(ApiError::TooComplex(e.to_string()))))?;
        Ok(Prepared { request, document })
    }

    /// Executes a prepared request: codes on every error, fields in selection order.
    pub async fn run(&self, prepared: Prepared) -> Answer {
        let Prepared { request, document } = prepared;
        let operation_name = request.operation_name.clone();
        let started = std::time::Instant::now();
        let answer = match self.inner.compiler.answer(&request).await {
            Outcome::Answered(data) => Answer::Compiled(data),
            Outcome::Resolvers { unknown } => {
                let variables = request.variables.clone();
                let learn = unknown.then(|| request.query.clone());
                // The schema takes the parsed copy (a compiled answer needs none).
                let mut request = request;
                request.set_parsed_query((*document).clone());
                let execution = Box::pin(self.inner.schema.execute(request));
                let mut response = super::loaders::gathering::GatherLoads::new(execution).await;
                if let Some(query) = learn
                    && response.errors.is_empty()
                {
                    let name = operation_name.as_deref();
                    self.inner.compiler.learn(&query, name, &document);
                }
                self.finish(
                    &document,
                    operation_name.as_deref(),
                    &variables,
                    &mut response,
                );
                Answer::Resolved(response)
            }
        };
        crate::metrics::graphql_request(
            operation_type(&document, operation_name.as_deref()),
            match &answer {
                Answer::Resolved(response) => outcome(response),
                Answer::Compiled(_) => "ok".into(),
            },
            Some(started.elapsed().as_secs_f64()),
        );
        answer
    }

    fn finish(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &async_graphql::Variables,
        response: &mut Response,
    ) {
        normalise(&mut response.errors);
        self.inner
            .order
            .restore(document, operation_name, variables, &mut response.data);
    }

    /// Apollo's automatic persisted queries (`extensions.persistedQuery`), and trusted
    /// documents. On success `request.query` holds the text to run.
    async fn resolve_persisted(&self, request: &mut Request, admin: bool) -> Result<(), ApiError> {
        let inner = &self.inner;
        let field = "extensions.persistedQuery";
        let hash = match request.extensions.get("persistedQuery") {
            None => None,
            Some(value) => {
                let value = value.clone().into_json().unwrap_or_default();
                if value.get("version").and_then(|v| v.as_i64()) != Some(1) {
                    return Err(ApiError::bad_input(field, "only version 1 is supported"));
                }
                let Some(hash) = value
                    .get("sha256Hash")
                    .and_then(|h| h.as_str())
                    .filter(|h| is_sha256_hex(h))
                else {
                    return Err(ApiError::bad_input(
                        field,
                        "sha256Hash must be the SHA-256 of the document in hex",
                    ));
                };
                Some(hash.to_ascii_lowercase())
            }
        };
        let not_registered = || {
            ApiError::PersistedQueryNotFound(
                "this server runs only registered documents (PersistedQueryNotFound)".into(),
            )
        };
        match hash {
            // A hash alone: the registered text, or a miss the client answers by sending both.
            Some(hash) if request.query.is_empty() => {
                let text = inner.persisted.lookup(&hash).await?;
                let Some(text) = text else {
                    return Err(ApiError::PersistedQueryNotFound(
                        "PersistedQueryNotFound".into(),
                    ));
                };
                request.query = text.to_string();
                Ok(())
            }
            // The text with its hash: checked, then registered.
            Some(hash) => {
                if sha256_hex(&request.query) != hash {
                    return Err(ApiError::bad_input(
                        "extensions.persistedQuery.sha256Hash",
                        "provided sha does not match query",
                    ));
                }
                match inner.mode {
                    PersistedMode::Automatic => {
                        inner.persisted.register(&request.query).await?;
                    }
                    PersistedMode::Only if admin => {
                        inner.persisted.register(&request.query).await?;
                    }
                    PersistedMode::Only => {
                        if inner.persisted.lookup(&hash).await?.is_none() {
                            return Err(not_registered());
                        }
                    }
                }
                Ok(())
            }
            None if inner.mode == PersistedMode::Only && !admin => {
                // A registered text may still be sent in full.
                let hash = sha256_hex(&request.query);
                match inner.persisted.lookup(&hash).await? {
                    Some(_) => Ok(()),
                    None => Err(not_registered()),
                }
            }
            None => Ok(()),
        }
    }
}

/// An answer refusing a request before execution.
/// Counts an operation refused before it ran.
fn counted(response: Response) -> Response {
    crate::metrics::graphql_request("unknown", outcome(&response), None);
    response
}

/// `ok`, or the code of the answer's first error.
fn outcome(response: &Response) -> String {
    let Some(error) = response.errors.first() else {
        return "ok".into();
    };
    match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => "INTERNAL_SERVER_ERROR".into(),
    }
}

/// The type of the operation a request runs: `query`, `mutation` or `subscription`.
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> &'static str {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => ops.values().next(),
    };
    match operation.map(|op| op.node.ty) {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

fn refusal(err: ApiError) -> Response {
    let e = err.extend();
    Response::from_errors(vec![ServerError {
        message: e.message,
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: e.extensions,
    }])
}

/// Who asks, from a WebSocket connection's session data.
fn session_info(data: Option<&Arc<Data>>) -> Option<RequestInfo> {
    data?
        .get(&TypeId::of::<RequestInfo>())
        .and_then(|d| d.downcast_ref::<RequestInfo>())
        .cloned()
}

impl Executor for Gateway {
    async fn execute(&self, request: Request) -> Response {
        match self.prepare(request, None).await {
            Ok(prepared) => self.run(prepared).await.into_response(),
            Err(refused) => refused,
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let gateway = self.clone();
        async move {
            let info = session_info(session_data.as_ref());
            let prepared = match gateway.prepare(request, info.as_ref()).await {
                Ok(prepared) => prepared,
                Err(refused) => return stream::once(async { refused }).boxed(),
            };
            let Prepared {
                mut request,
                document,
            } = prepared;
            request.set_parsed_query((*document).clone());
            let operation_name = request.operation_name.clone();
            let variables = request.variables.clone();
            crate::metrics::graphql_request(
                operation_type(&document, operation_name.as_deref()),
                "ok".into(),
                None,
            );
            let finisher = gateway.clone();
            let results = gateway
                .inner
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default());
            super::loaders::gathering::GatherStream::new(Box::pin(results))
                .map(move |mut response| {
                    finisher.finish(
                        &document,
                        operation_name.as_deref(),
                        &variables,
                        &mut response,
                    );
                    response
                })
                .boxed()
        }
        .flatten_stream()
        .boxed()
    }
}
