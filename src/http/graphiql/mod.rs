//! GraphiQL at `GET /graphql`, served entirely from this binary: no request goes to any other
//! host, so it works on a closed network (`docs/adr/0008-clients-and-tools.md`).
//!
//! The scripts and styles are pinned npm releases (GraphiQL 4.1.2, React 18.3.1), vendored
//! with their licences in `vendor/` by `vendor/update.sh` and built into the binary. Their
//! addresses carry their versions, so they are cached for a year; the page itself is not
//! cached, and a Content-Security-Policy keeps the browser to this origin.

use super::{AppState, immutable, static_header};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page; `{{config}}` becomes its settings (HTML-escaped JSON).
const PAGE: &str = include_str!("page.html");

/// What the editor holds the first time a browser opens the page.
const DEFAULT_QUERY: &str = r#"# commitment-tracker: how the UK Government's commitments to digitise the NHS are delivered.
#
# Press the run button (or Ctrl-Enter). Reads need no token; to write, add
# {"Authorization": "Bearer <token>"} under Headers below. Subscriptions run over
# WebSocket (/graphql/ws) with the same headers as connection_init.

{
  commitments(rating: INADEQUATE) {
    totalCount
    nodes { id slug title currentAssessment { overall assessedOn assessor disputes { disputedBy statement } } }
  }
  scorecard { total unrated byRating { rating count } }
}
"#;

/// A vendored file: its address under `/graphql/assets/`, media type and bytes.
struct Asset {
    name: &'static str,
    media: &'static str,
    bytes: &'static [u8],
}

/// A vendored file of `vendor/`, by name and media type.
macro_rules! vendored {
    ($name:literal, $media:literal) => {
        Asset {
            name: $name,
            media: $media,
            bytes: include_bytes!(concat!("vendor/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    vendored!("graphiql-4.1.2.min.js", "text/javascript; charset=utf-8"),
    vendored!("graphiql-4.1.2.css", "text/css; charset=utf-8"),
    vendored!(
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    vendored!(
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    // Ours; it changes with the server, so it is not cached for long.
    Asset {
        name: "setup.js",
        media: JS,
        bytes: include_bytes!("setup.js"),
    },
];

/// The policy of the page: scripts, styles, fonts and connections from this origin only
/// (GraphiQL's own fonts and images are `data:` URLs inside its stylesheet).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// `GET /graphql` from a browser.
pub async fn page(_state: &AppState) -> Response {
    let config = serde_json::json!({
        "endpoint": "/graphql",
        "subscriptions": "/graphql/ws",
        "defaultQuery": DEFAULT_QUERY,
    })
    .to_string();
    let html = PAGE.replace("{{config}}", &escape_attribute(&config));
    (
        [
            (
                header::CONTENT_TYPE,
                static_header("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, static_header("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff")),
        ],
        html,
    )
        .into_response()
}

/// `GET /graphql/assets/<file>`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let cache = if asset.name == "setup.js" {
        (header::CACHE_CONTROL, static_header("no-cache"))
    } else {
        immutable()
    };
    (
        [
            (header::CONTENT_TYPE, static_header(asset.media)),
            (header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff")),
            cache,
        ],
        asset.bytes,
    )
        .into_response()
}

/// Escapes text for a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_asks_only_for_files_this_server_has() {
        for src in PAGE
            .split(['"', '\''])
            .filter(|s| s.starts_with("/graphql/assets/"))
        {
            let name = src.trim_start_matches("/graphql/assets/");
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is not served"
            );
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
    }

    #[test]
    fn the_config_cannot_break_out_of_its_attribute() {
        let escaped = escape_attribute(r#"{"q":"</div><script>x</script> & \"#);
        assert!(!escaped.contains('"') && !escaped.contains('<'));
    }
}
