//! The pages (DESIGN §13): the scorecard at `/` and each commitment's verdict timeline at
//! `/commitments/<slug>`, rendered on the server from the same GraphQL queries clients send
//! ([`model`]), with no external resources and nothing needing JavaScript. A small script
//! ([`LIVE_JS`]) keeps a page current through the `ratingChanged` subscription when it can.
//!
//! Accessibility: every picture has a text equivalent (a table of the same data next to it,
//! and a title and description on the picture); every mark is a link reachable from the
//! keyboard with an accessible name; ratings are told by words and shapes, not colour alone;
//! text colours meet WCAG AA contrast.

pub mod model;
pub mod scorecard;
pub mod timeline;

pub use crate::domain::rating::words;
use maud::{DOCTYPE, Markup, html};

/// The style sheet, served at `/assets/site.css`.
pub const SITE_CSS: &str = include_str!("assets/site.css");
/// The live-update script, served at `/assets/live.js`.
pub const LIVE_JS: &str = include_str!("assets/live.js");

/// The policy the pages are served with: only this server's own styles, script and
/// WebSocket; no frames, no forms posting elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// How a page may be kept current.
pub struct Live<'a> {
    /// The commitment whose verdicts update the page (none: any commitment's).
    pub commitment_id: Option<&'a str>,
    /// False for a page of the past (`asOf`, `validOn`): it never changes.
    pub enabled: bool,
}

/// The frame every page shares.
pub fn layout(title: &str, live: Live<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · commitment-tracker" }
                link rel="stylesheet" href="/assets/site.css";
                // No icon to fetch: a browser would otherwise ask for /favicon.ico.
                link rel="icon" href="data:,";
                link rel="alternate" type="application/atom+xml" title="Assessments (Atom)" href="/feeds/assessments.atom";
                script src="/assets/live.js" defer {}
            }
            body {
                a class="skip" href="#content" { "Skip to content" }
                header class="site" {
                    a href="/" { "commitment-tracker" }
                    span { " · a tamper-evident record of how commitments are delivered" }
                }
                main id="content" tabindex="-1"
                    data-live=(if live.enabled { "true" } else { "false" })
                    data-commitment-id=[live.commitment_id] {
                    (body)
                }
                footer class="site" {
                    p {
                        "Every verdict is an event in an append-only, hash-chained log. "
                        a href="/graphql" { "GraphQL API" } " · "
                        a href="/export/commitments.csv" { "CSV" } " · "
                        a href="/feeds/assessments.atom" { "Atom feed" } " · "
                        a href="/log/checkpoint" { "Signed checkpoint" }
                    }
                }
            }
        }
    }
}

/// The live status line: announced politely to screen readers when the page updates.
pub fn live_status(enabled: bool) -> Markup {
    html! {
        p id="live-status" class="live" role="status" aria-live="polite" {
            @if enabled {
                "Shown as recorded now."
            } @else {
                "A view of the past: it does not update."
            }
        }
    }
}

/// A rating's words (`REQUIRES_IMPROVEMENT`: "Requires improvement"; none: "Not rated").
pub fn rating_label(rating: Option<&str>) -> String {
    match rating {
        Some(r) => words(r),
        None => "Not rated".to_owned(),
    }
}

/// The CSS class of a rating's badge.
pub fn rating_class(rating: Option<&str>) -> &'static str {
    match rating {
        Some("OUTSTANDING") => "r-outstanding",
        Some("GOOD") => "r-good",
        Some("REQUIRES_IMPROVEMENT") => "r-requires-improvement",
        Some("INADEQUATE") => "r-inadequate",
        _ => "r-none",
    }
}

/// A rating as a badge: words on a tinted ground.
pub fn badge(rating: Option<&str>) -> Markup {
    html! { span class={"badge " (rating_class(rating))} { (rating_label(rating)) } }
}

/// An ISO date as people write it in the UK: `2023-02-01` is "1 Feb 2023".
pub fn date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso.get(..10).unwrap_or(iso), "%Y-%m-%d")
        .map(|d| d.format("%-d %b %Y").to_string())
        .unwrap_or_else(|_| iso.to_owned())
}

/// The time-travel form: "as known on" (`asOf`) and "in force on" (`validOn`), keeping the
/// other parameters of the page.
pub fn time_form(
    action: &str,
    as_of: Option<&str>,
    valid_on: Option<&str>,
    hidden: &[(&str, &str)],
) -> Markup {
    html! {
        form class="time" method="get" action=(action) {
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            fieldset {
                legend { "Look back" }
                label for="asOf" { "As known on (instant, RFC 3339)" }
                input id="asOf" name="asOf" type="text" inputmode="text" placeholder="2024-01-31T12:00:00Z" value=[as_of];
                label for="validOn" { "In force on (date)" }
                input id="validOn" name="validOn" type="date" value=[valid_on];
                button type="submit" { "Show" }
                @if as_of.is_some() || valid_on.is_some() {
                    " " a href=(action) { "Back to now" }
                }
            }
        }
    }
}

/// A page saying what went wrong, with the code clients see in `extensions.code`.
pub fn problem(title: &str, code: &str, message: &str) -> Markup {
    layout(
        title,
        Live {
            commitment_id: None,
            enabled: false,
        },
        html! {
            h1 { (title) }
            p { (message) }
            p { "Code: " code { (code) } }
            p { a href="/" { "Back to the scorecard" } }
        },
    )
}
