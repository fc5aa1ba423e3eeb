//! `/`: the scorecard as a picture and a table, and every commitment with its current verdict,
//! filterable by area and rating, in the past too.

use super::model::ScorecardData;
use super::{Live, badge, date, layout, live_status, rating_label, time_form, words};
use crate::opendata::atom::url_encode;
use maud::{Markup, html};

/// The filters a scorecard page was asked for.
#[derive(Debug, Default)]
pub struct Filters<'a> {
    /// One area.
    pub area: Option<&'a str>,
    /// One current rating (enum name).
    pub rating: Option<&'a str>,
    /// As known at this instant.
    pub as_of: Option<&'a str>,
    /// As in force on this date.
    pub valid_on: Option<&'a str>,
    /// After this list cursor.
    pub after: Option<&'a str>,
}

impl Filters<'_> {
    /// The query string of these filters, with `after` replaced.
    fn query(&self, after: Option<&str>) -> String {
        query_string(&[
            ("area", self.area),
            ("rating", self.rating),
            ("asOf", self.as_of),
            ("validOn", self.valid_on),
            ("after", after),
        ])
    }
}

/// `?k=v&…` of the pairs that have a value (empty when none has).
pub fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", url_encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

const RATINGS: [&str; 4] = ["OUTSTANDING", "GOOD", "REQUIRES_IMPROVEMENT", "INADEQUATE"];

/// The page.
pub fn page(data: &ScorecardData, f: &Filters<'_>) -> Markup {
    let mut areas: Vec<&str> = data
        .everything
        .nodes
        .iter()
        .map(|n| n.area.as_str())
        .collect();
    areas.sort_unstable();
    areas.dedup();
    let live = f.as_of.is_none() && f.valid_on.is_none();
    let scope = f.area.unwrap_or("every area");
    let body = html! {
        h1 { "Commitments and their verdicts" }
        p class="lede" {
            "What was promised, and how independent assessors and the Government rated its delivery, "
            "on the Expert Panel's four-point scale. Each commitment links to the history of its verdicts."
        }
        (live_status(live))
        @if let Some(t) = f.as_of { p class="past" { "As this record stood at " strong { (t) } "." } }
        @if let Some(d) = f.valid_on { p class="past" { "As in force on " strong { (date(d)) } "." } }
        section aria-labelledby="scorecard-heading" {
            h2 id="scorecard-heading" { "Scorecard: " (scope) }
            (chart(data))
            table class="counts" {
                caption { "Current overall ratings of " (data.scorecard.total) " commitments (" (scope) ")" }
                thead { tr { th scope="col" { "Rating" } th scope="col" class="num" { "Commitments" } } }
                tbody {
                    @for r in &data.scorecard.by_rating {
                        tr { th scope="row" { (badge(Some(&r.rating))) } td class="num" { (r.count) } }
                    }
                    tr { th scope="row" { (badge(None)) } td class="num" { (data.scorecard.unrated) } }
                }
            }
        }
        section aria-labelledby="list-heading" {
            h2 id="list-heading" { "Commitments" }
            form class="filters" method="get" action="/" {
                label for="area" { "Area" }
                select id="area" name="area" {
                    option value="" selected[f.area.is_none()] { "Every area" }
                    @for a in &areas { option value=(a) selected[f.area == Some(*a)] { (a) } }
                }
                label for="rating" { "Current rating" }
                select id="rating" name="rating" {
                    option value="" selected[f.rating.is_none()] { "Any rating" }
                    @for r in RATINGS { option value=(r) selected[f.rating == Some(r)] { (rating_label(Some(r))) } }
                }
                @if let Some(t) = f.as_of { input type="hidden" name="asOf" value=(t); }
                @if let Some(d) = f.valid_on { input type="hidden" name="validOn" value=(d); }
                button type="submit" { "Filter" }
            }
            p { (data.commitments.total_count) " commitments match. "
                a href={"/export/commitments.csv" (f.query(None))} { "Download them as CSV" } "." }
            table class="commitments" {
                caption class="visually-hidden" { "Commitments with their current verdicts" }
                thead {
                    tr {
                        th scope="col" { "Commitment" }
                        th scope="col" { "Area" }
                        th scope="col" { "Current rating" }
                        th scope="col" { "Delivery" }
                        th scope="col" { "Assessed" }
                        th scope="col" { "Deadline" }
                    }
                }
                tbody {
                    @for c in &data.commitments.nodes {
                        tr data-slug=(c.slug) {
                            th scope="row" {
                                a href={"/commitments/" (url_encode(&c.slug)) (time_query(f))} { (c.title) }
                            }
                            td { (c.area) }
                            td { (badge(c.current_assessment.as_ref().and_then(|a| a.overall.as_deref()))) }
                            td { @match &c.current_assessment { Some(a) => (words(&a.delivery_status)), None => "Not assessed" } }
                            td { @if let Some(a) = &c.current_assessment { (date(&a.assessed_on)) br; span class="muted" { (a.assessor) } } }
                            td { @if let Some(d) = &c.due_date { (date(d)) } }
                        }
                    }
                }
            }
            @if data.commitments.page_info.has_next_page {
                p { a rel="next" href={"/" (f.query(data.commitments.page_info.end_cursor.as_deref()))} { "More commitments" } }
            }
        }
        (time_form("/", f.as_of, f.valid_on, &[("area", f.area.unwrap_or_default()), ("rating", f.rating.unwrap_or_default())]))
    };
    layout(
        "Commitments and their verdicts",
        Live {
            commitment_id: None,
            enabled: live,
        },
        body,
    )
}

/// The `asOf`/`validOn` of the page, for links to a commitment seen at the same time.
fn time_query(f: &Filters<'_>) -> String {
    query_string(&[("asOf", f.as_of), ("validOn", f.valid_on)])
}

/// The counts as horizontal bars, labelled in words; the table after it says the same.
fn chart(data: &ScorecardData) -> Markup {
    let rows: Vec<(Option<&str>, i64)> = data
        .scorecard
        .by_rating
        .iter()
        .map(|r| (Some(r.rating.as_str()), r.count))
        .chain(std::iter::once((None, data.scorecard.unrated)))
        .collect();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (190.0, 420.0, 34.0);
    let height = row_h * rows.len() as f64 + 10.0;
    let summary: Vec<String> = rows
        .iter()
        .map(|(r, n)| format!("{}: {n}", rating_label(*r)))
        .collect();
    html! {
        svg class="chart" role="img" aria-labelledby="chart-title chart-desc"
            viewBox={"0 0 " (label_w + bar_w + 60.0) " " (height)} width="100%" {
            title id="chart-title" { "Current overall ratings" }
            desc id="chart-desc" { (summary.join("; ")) }
            @for (i, (rating, count)) in rows.iter().enumerate() {
                @let y = 5.0 + row_h * i as f64;
                @let w = bar_w * (*count as f64) / (max as f64);
                text x=(label_w - 10.0) y=(y + row_h / 2.0 + 5.0) text-anchor="end" class="label" { (rating_label(*rating)) }
                rect x=(label_w) y=(y + 4.0) width=(w.max(1.0)) height=(row_h - 8.0) class={"bar " (super::rating_class(*rating))} {}
                text x=(label_w + w + 8.0) y=(y + row_h / 2.0 + 5.0) class="count" { (count) }
            }
        }
    }
}
