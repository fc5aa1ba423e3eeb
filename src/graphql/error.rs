//! API errors: every error a client sees carries `extensions.code`, and none carries text
//! from the database or from a panic.

use crate::commands::CommandError;
use crate::domain::DomainError;
use crate::store::StoreError;
use crate::store::cursor::BadCursor;
use async_graphql::{ErrorExtensions, Value};

/// An error for a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The input is invalid; `field` names the offending input field when one does.
    #[error("{message}")]
    BadUserInput {
        /// The input field, as the client spells it.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The stream was not at the expected version.
    #[error("expected version {expected} but the commitment or evidence is at version {actual}")]
    Conflict {
        /// What the client expected.
        expected: i32,
        /// What it is.
        actual: i32,
    },
    /// No valid token.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token whose role is too low.
    #[error("{0}")]
    Forbidden(String),
    /// The query is too deep, too complex or has too many aliases.
    #[error("{0}")]
    TooComplex(String),
    /// A persisted query's hash that this server does not know (the client sends the
    /// document with its hash next), or, with trusted documents only, a document that is not
    /// registered.
    #[error("{0}")]
    PersistedQueryNotFound(String),
    /// The client (its address or its token) is over its rate limit.
    #[error("too many requests: retry after {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds until a request would be allowed.
        retry_after_secs: u64,
    },
    /// Something failed inside; the details are in the server log under the request id.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The `extensions.code` of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict { .. } => "CONFLICT",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::TooComplex(_) => "QUERY_TOO_COMPLEX",
            ApiError::PersistedQueryNotFound(_) => "PERSISTED_QUERY_NOT_FOUND",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    /// A bad-input error naming `field`.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: Some(field.to_owned()),
            message: format!("{field}: {}", message.into()),
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            match self {
                ApiError::BadUserInput { field: Some(f), .. } => e.set("field", f.as_str()),
                ApiError::Conflict { expected, actual } => {
                    e.set("expectedVersion", *expected);
                    e.set("actualVersion", *actual);
                }
                ApiError::RateLimited { retry_after_secs } => {
                    e.set("retryAfter", *retry_after_secs)
                }
                _ => {}
            }
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => ApiError::bad_input(field, message),
            DomainError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} {id} does not exist"))
            }
            DomainError::Conflict { expected, actual } => ApiError::Conflict { expected, actual },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::Internal
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::Forbidden { needed } => {
                ApiError::Forbidden(format!("this needs a token with the {needed} role"))
            }
            CommandError::Unauthenticated => {
                ApiError::Unauthenticated("the token is not valid (expired or revoked)".into())
            }
            CommandError::KeyReused => ApiError::bad_input(
                "idempotencyKey",
                "already used for a different command; use a new key",
            ),
            CommandError::Store(s) => s.into(),
        }
    }
}

impl From<BadCursor> for ApiError {
    fn from(_: BadCursor) -> Self {
        ApiError::bad_input("after", "not a cursor this server issued")
    }
}

impl From<std::sync::Arc<StoreError>> for ApiError {
    fn from(e: std::sync::Arc<StoreError>) -> Self {
        match &*e {
            StoreError::Domain(d) => d.clone().into(),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::Internal
            }
        }
    }
}

/// Results of resolvers.
pub type ApiResult<T> = Result<T, async_graphql::Error>;

/// Converts any error of ours into a client error with a code. Resolvers use `.api()?`
/// rather than `?` on a store error, which async-graphql would show verbatim.
pub trait OrApi<T> {
    /// Maps the error into an [`ApiError`] and then into a GraphQL error.
    fn api(self) -> ApiResult<T>;
}

impl<T, E: Into<ApiError>> OrApi<T> for Result<T, E> {
    fn api(self) -> ApiResult<T> {
        self.map_err(|e| e.into().extend())
    }
}

/// Gives every error in a response a code and strips internal text from any that lack one.
///
/// Our resolvers always set a code. Errors without one come from async-graphql itself: request
/// parsing and validation (the client's fault: `BAD_USER_INPUT`, message kept) or, at a field,
/// input coercion (also the client's). Anything else without a code is not trusted.
pub fn normalise(errors: &mut [async_graphql::ServerError]) {
    for err in errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        // async-graphql's complexity limit (depth is checked earlier, in `limits`).
        if err.message == "Query is too complex." {
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", Value::from("QUERY_TOO_COMPLEX"));
            continue;
        }
        // The parser's own report (a pest trace with arrows and carets) is replaced by a plain
        // message; `locations` still says where.
        if err.message.contains(" --> ") || err.message.contains("^---") {
            err.message = "syntax error in the GraphQL document".to_owned();
        }
        let client_fault = err.path.is_empty()
            || err.message.starts_with("Failed to parse")
            || err.message.starts_with("Invalid value")
            || err.message.starts_with("Expected input type")
            || err.message.contains("argument");
        let code = if client_fault {
            "BAD_USER_INPUT"
        } else {
            tracing::error!(message = %err.message, "uncoded resolver error hidden from client");
            err.message = "internal error".to_owned();
            "INTERNAL_SERVER_ERROR"
        };
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn conflicts_carry_both_versions() {
        let e = ApiError::from(DomainError::Conflict {
            expected: 2,
            actual: 5,
        })
        .extend();
        let ext = e.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&Value::from("CONFLICT")));
        assert_eq!(ext.get("expectedVersion"), Some(&Value::from(2)));
        assert_eq!(ext.get("actualVersion"), Some(&Value::from(5)));
    }

    #[test]
    fn database_errors_become_internal_without_their_text() {
        let e = ApiError::from(StoreError::Database(sqlx::Error::Protocol(
            "relation \"events\" does not exist".into(),
        )));
        assert_eq!(e, ApiError::Internal);
        assert_eq!(e.extend().message, "internal error");
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = ApiError::from(DomainError::invalid(
            "sourceUrl",
            "must be an http or https URL",
        ));
        assert_eq!(e.to_string(), "sourceUrl: must be an http or https URL");
        let not_found = ApiError::from(DomainError::NotFound {
            what: "commitment",
            id: Uuid::nil(),
        });
        assert_eq!(not_found.code(), "NOT_FOUND");
    }
}
