//! The parameters of a GraphQL request, from a JSON body or a query string.

use crate::graphql::error::ApiError;
use async_graphql::Value as GqlValue;
use serde_json::Value;

/// The parameters of a GraphQL request, as the specification names them.
pub(super) struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Map<String, Value>>,
    extensions: Option<serde_json::Map<String, Value>>,
}

impl Params {
    /// Reads the parameters from a JSON object, refusing any of the wrong type.
    pub(super) fn from_json(body: Value) -> Result<Self, ApiError> {
        let Value::Object(mut body) = body else {
            return Err(ApiError::bad_input(
                "body",
                "must be a JSON object (batches are not accepted)",
            ));
        };
        let mut text = |name: &str| match body.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_input(name, "must be a string")),
        };
        let query = text("query")?;
        let operation_name = text("operationName")?;
        let mut map = |name: &str| match body.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ApiError::bad_input(name, "must be an object")),
        };
        let variables = map("variables")?;
        let extensions = map("extensions")?;
        Ok(Self {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    /// Reads the parameters of `GET /graphql?…`; `variables` and `extensions` are JSON text.
    pub(super) fn from_query_string(raw: &str) -> Result<Self, ApiError> {
        let mut query = None;
        let mut operation_name = None;
        let mut variables = None;
        let mut extensions = None;
        let object = |name: &str, text: &str| match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(Value::Null) => Ok(None),
            _ => Err(ApiError::bad_input(name, "must be a JSON object")),
        };
        for (key, value) in form_pairs(raw) {
            match key.as_str() {
                "query" => query = Some(value),
                "operationName" => operation_name = Some(value).filter(|v| !v.is_empty()),
                "variables" => variables = object("variables", &value)?,
                "extensions" => extensions = object("extensions", &value)?,
                _ => {}
            }
        }
        Ok(Self {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    /// The request for execution; a request needs a document or a persisted query's hash.
    pub(super) fn into_request(self) -> Result<async_graphql::Request, ApiError> {
        let persisted = self
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("persistedQuery"));
        let query = match self.query {
            Some(q) => q,
            None if persisted => String::new(),
            None => {
                return Err(ApiError::bad_input(
                    "query",
                    "a GraphQL request needs a query",
                ));
            }
        };
        let mut request = async_graphql::Request::new(query);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = async_graphql::Variables::from_json(Value::Object(variables));
        }
        if let Some(extensions) = self.extensions {
            for (key, value) in extensions {
                if let Ok(value) = GqlValue::from_json(value) {
                    request.extensions.insert(key, value);
                }
            }
        }
        Ok(request)
    }
}

/// The pairs of an `application/x-www-form-urlencoded` string, decoded.
pub(crate) fn form_pairs(raw: &str) -> impl Iterator<Item = (String, String)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (a space); invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_as_forms_do() {
        let pairs: Vec<_> = form_pairs("query=%7B%20a%20%7D&operationName=A+B&x=%zz&y").collect();
        assert_eq!(
            pairs,
            [
                ("query".into(), "{ a }".into()),
                ("operationName".into(), "A B".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), String::new()),
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn parameters_of_the_wrong_type_are_refused() {
        use serde_json::json;
        assert!(Params::from_json(json!({ "query": 5 })).is_err());
        assert!(Params::from_json(json!({ "query": "{a}", "variables": "x" })).is_err());
        assert!(Params::from_json(json!({ "query": "{a}", "operationName": [] })).is_err());
        assert!(Params::from_json(json!([{ "query": "{a}" }])).is_err());
        let missing = Params::from_json(json!({ "variables": {} })).unwrap();
        assert!(missing.into_request().is_err());
        let hash_only = Params::from_json(
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "ab" } } }),
        )
        .unwrap();
        assert_eq!(hash_only.into_request().unwrap().query, "");
    }
}
