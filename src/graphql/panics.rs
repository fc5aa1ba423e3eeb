//! On WebSocket operations, a panic in a resolver fails that field with
//! `INTERNAL_SERVER_ERROR`; the rest of the response, the subscription (which may be shared by
//! many subscribers) and the server go on. Over HTTP the schema runs without this guard, whose
//! per-field cost was a quarter of the list query's throughput: a panic there fails its
//! request, which the HTTP layer answers with a coded status 500, and the server goes on.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// Installs [`CatchPanics`] on a schema.
pub struct CatchPanicsFactory;

impl ExtensionFactory for CatchPanicsFactory {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CatchPanics)
    }
}

/// Turns a panicking resolver into a coded, text-free field error.
pub struct CatchPanics;

#[async_graphql::async_trait::async_trait]
impl Extension for CatchPanics {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // Copied references only: this runs for every field, so it must not allocate.
        let field: &str = info.name;
        let pos = info.field.name.pos;
        match AssertUnwindSafe(next.run(ctx, info)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                tracing::error!(field, panic = detail, "resolver panicked");
                let mut err = ServerError::new("internal error", Some(pos));
                err.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", Value::from("INTERNAL_SERVER_ERROR"));
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn fine(&self) -> i32 {
            1
        }
        async fn boom(&self) -> i32 {
            if std::hint::black_box(true) {
                panic!("relation \"events\" does not exist");
            }
            0
        }
    }

    #[tokio::test]
    async fn a_panicking_resolver_fails_alone_with_a_coded_error_and_no_internal_text() {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(CatchPanicsFactory)
            .finish();
        let response = schema.execute("{ fine boom }").await;
        assert_eq!(response.errors.len(), 1);
        let err = &response.errors[0];
        assert_eq!(err.message, "internal error");
        assert_eq!(
            err.extensions.as_ref().and_then(|e| e.get("code")),
            Some(&Value::from("INTERNAL_SERVER_ERROR"))
        );
        assert!(!format!("{err:?}").contains("relation"));
        // And the schema goes on serving.
        let again = schema.execute("{ fine }").await;
        assert!(again.errors.is_empty());
        assert_eq!(again.data.into_json().unwrap()["fine"], 1);
    }
}
