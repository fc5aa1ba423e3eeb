//! `/commitments/<slug>`: the verdict timeline. Each assessment is a mark on a business-time
//! axis (when it was made) against the rating scale, shaped and coloured by the kind of
//! assessor; deadlines and their revisions are lines, disputes a ring around the verdict
//! disputed; every mark links to its row in the table below, which holds the same data with
//! the rationale, evidence and disputes.
//!
//! SVG inside HTML is parsed as foreign content, where `<line>` is not a void element: every
//! SVG element here is written with an explicit end tag (`{}`), or the ones after it would be
//! parsed as its children and not drawn.

use super::model::{Assessment, Commitment};
use super::{Live, badge, date, layout, live_status, rating_label, time_form, words};
use crate::opendata::atom::url_encode;
use chrono::NaiveDate;
use maud::{Markup, html};

/// The rows of the scale, top to bottom.
const SCALE: [Option<&str>; 5] = [
    Some("OUTSTANDING"),
    Some("GOOD"),
    Some("REQUIRES_IMPROVEMENT"),
    Some("INADEQUATE"),
    None,
];

const WIDTH: f64 = 960.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const ROW: f64 = 46.0;

/// The time axis: dates to x.
struct Axis {
    start: NaiveDate,
    days: f64,
}

impl Axis {
    fn x(&self, d: NaiveDate) -> f64 {
        let offset = (d - self.start).num_days() as f64;
        LEFT + (WIDTH - LEFT - RIGHT) * offset / self.days
    }
}

fn parse(iso: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(iso.get(..10)?, "%Y-%m-%d").ok()
}

/// Deadlines a revision replaced: (effective on, from, to, reason).
fn deadline_moves(c: &Commitment) -> Vec<(NaiveDate, Option<NaiveDate>, Option<NaiveDate>, &str)> {
    c.revisions
        .iter()
        .flat_map(|r| {
            r.changes
                .iter()
                .filter(|ch| ch.field == "dueDate")
                .filter_map(move |ch| {
                    Some((
                        parse(&r.effective_on)?,
                        ch.from.as_deref().and_then(parse),
                        ch.to.as_deref().and_then(parse),
                        r.reason.as_str(),
                    ))
                })
        })
        .collect()
}

fn row_of(rating: Option<&str>) -> usize {
    SCALE
        .iter()
        .position(|r| *r == rating)
        .unwrap_or(SCALE.len() - 1)
}

/// The name of a mark: what a screen reader says and a pointer shows.
fn mark_name(a: &Assessment) -> String {
    let mut name = format!(
        "{}, {} ({}): {}; delivery {}",
        date(&a.assessed_on),
        a.assessor,
        words(&a.assessor_kind).to_lowercase(),
        rating_label(a.overall.as_deref()),
        words(&a.delivery_status).to_lowercase()
    );
    for d in &a.disputes {
        name.push_str(&format!(
            "; disputed by {} on {}",
            d.disputed_by,
            date(&d.disputed_on)
        ));
    }
    name
}

/// The timeline picture.
fn chart(c: &Commitment) -> Markup {
    let moves = deadline_moves(c);
    let mut dates: Vec<NaiveDate> = c
        .assessments
        .iter()
        .filter_map(|a| parse(&a.assessed_on))
        .collect();
    dates.extend(parse(&c.announced_on));
    dates.extend(c.due_date.as_deref().and_then(parse));
    for (on, from, to, _) in &moves {
        dates.push(*on);
        dates.extend(*from);
        dates.extend(*to);
    }
    let first = dates
        .iter()
        .min()
        .copied()
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let last = dates.iter().max().copied().unwrap_or(first);
    let start = first - chrono::Days::new(45);
    let end = last + chrono::Days::new(45);
    let axis = Axis {
        start,
        days: (end - start).num_days().max(1) as f64,
    };
    let height = TOP + ROW * SCALE.len() as f64 + 40.0;
    let bottom = TOP + ROW * SCALE.len() as f64;
    let years: Vec<i32> = {
        use chrono::Datelike;
        (start.year() + 1..=end.year()).collect()
    };
    let description = format!(
        "{} assessments from {} to {}; {} deadline revisions; the table below lists the same data.",
        c.assessments.len(),
        c.assessments
            .first()
            .map(|a| date(&a.assessed_on))
            .unwrap_or_else(|| "—".into()),
        c.assessments
            .last()
            .map(|a| date(&a.assessed_on))
            .unwrap_or_else(|| "—".into()),
        moves.len()
    );
    html! {
        svg class="timeline" role="group" aria-labelledby="timeline-title timeline-desc"
            viewBox={"0 0 " (WIDTH) " " (height)} width="100%" {
            title id="timeline-title" { "Verdicts on " (c.title) " over time" }
            desc id="timeline-desc" { (description) }
            // The scale.
            @for (i, rating) in SCALE.iter().enumerate() {
                @let y = TOP + ROW * i as f64 + ROW / 2.0;
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) class="grid" {}
                text x=(LEFT - 12.0) y=(y + 5.0) text-anchor="end" class="label" { (rating_label(*rating)) }
            }
            // Years.
            @for year in &years {
                @if let Some(jan) = NaiveDate::from_ymd_opt(*year, 1, 1) {
                    @let x = axis.x(jan);
                    line x1=(x) x2=(x) y1=(TOP) y2=(bottom) class="year" {}
                    text x=(x) y=(bottom + 22.0) text-anchor="middle" class="label" { (year) }
                }
            }
            // The deadline in force, and those revised away.
            @if let Some(due) = c.due_date.as_deref().and_then(parse) {
                @let x = axis.x(due);
                g class="deadline" data-deadline=(due) {
                    title { "Deadline: " (date(&due.to_string())) }
                    line x1=(x) x2=(x) y1=(TOP - 14.0) y2=(bottom) {}
                    text x=(x) y=(TOP - 18.0) text-anchor="middle" class="label" { "Deadline" }
                }
            }
            @for (on, from, to, reason) in &moves {
                @if let Some(old) = from {
                    @let x = axis.x(*old);
                    g class="deadline old" data-old-deadline=(old) {
                        title { "Earlier deadline " (date(&old.to_string())) ", moved on " (date(&on.to_string()))
                            @if let Some(to) = to { " to " (date(&to.to_string())) } ": " (reason) }
                        line x1=(x) x2=(x) y1=(TOP) y2=(bottom) {}
                    }
                }
                @let x = axis.x(*on);
                g class="revision" data-revision=(on) tabindex="0" {
                    title { "Deadline revised on " (date(&on.to_string())) ": " (reason) }
                    path d={"M" (x - 7.0) " " (TOP - 30.0) " L" (x + 7.0) " " (TOP - 30.0) " L" (x) " " (TOP - 20.0) " Z"} {}
                }
            }
            // The verdicts.
            @for a in &c.assessments {
                @if let Some(on) = parse(&a.assessed_on) {
                    @let x = axis.x(on);
                    @let y = TOP + ROW * row_of(a.overall.as_deref()) as f64 + ROW / 2.0;
                    a href={"#assessment-" (a.id)} tabindex="0" class={"mark k-" (a.assessor_kind.to_lowercase())}
                        data-assessment=(a.id) data-rating=(a.overall.as_deref().unwrap_or("NONE"))
                        data-assessed-on=(a.assessed_on) data-kind=(a.assessor_kind)
                        data-disputed=(if a.disputes.is_empty() { "false" } else { "true" })
                        aria-label=(mark_name(a)) {
                        title { (mark_name(a)) }
                        @if !a.disputes.is_empty() {
                            circle cx=(x) cy=(y) r="13" class="dispute" {}
                        }
                        @match a.assessor_kind.as_str() {
                            "GOVERNMENT" => rect x=(x - 7.0) y=(y - 7.0) width="14" height="14" {},
                            "INDEPENDENT" => circle cx=(x) cy=(y) r="8" {},
                            _ => path d={"M" (x) " " (y - 9.0) " L" (x + 9.0) " " (y) " L" (x) " " (y + 9.0) " L" (x - 9.0) " " (y) " Z"} {},
                        }
                    }
                }
            }
        }
    }
}

/// The page; `None` data means the commitment did not exist then.
pub fn page(c: &Commitment, as_of: Option<&str>, valid_on: Option<&str>) -> Markup {
    let live = as_of.is_none() && valid_on.is_none();
    let slug = url_encode(&c.slug);
    let current = c
        .assessments
        .iter()
        .max_by(|a, b| a.assessed_on.cmp(&b.assessed_on));
    let body = html! {
        p class="crumbs" { a href="/" { "All commitments" } " › " (c.area) }
        h1 { (c.title) }
        (live_status(live))
        @if let Some(t) = as_of { p class="past" { "As this record stood at " strong { (t) } "." } }
        @if let Some(d) = valid_on { p class="past" { "As in force on " strong { (date(d)) } "." } }
        dl class="terms" {
            dt { "Current verdict" } dd { (badge(current.and_then(|a| a.overall.as_deref())))
                @if let Some(a) = current { " " span class="muted" { (a.assessor) ", " (date(&a.assessed_on)) } } }
            dt { "Promise" } dd { (c.description) }
            dt { "Target" } dd { (c.target) }
            dt { "Deadline" } dd { @match &c.due_date { Some(d) => (date(d)), None => "None set" } }
            @if let Some(o) = &c.owner { dt { "Responsible" } dd { (o) } }
            dt { "Announced" } dd { (date(&c.announced_on)) " in " (c.policy_source) }
        }
        section aria-labelledby="timeline-heading" {
            h2 id="timeline-heading" { "How the verdict evolved" }
            (chart(c))
            ul class="legend" aria-label="Key" {
                li { span class="key k-independent" aria-hidden="true" { "●" } " Independent assessor" }
                li { span class="key k-government" aria-hidden="true" { "■" } " Government" }
                li { span class="key k-other" aria-hidden="true" { "◆" } " Other" }
                li { span class="key dispute-key" aria-hidden="true" { "◯" } " Disputed" }
                li { span class="key deadline-key" aria-hidden="true" { "│" } " Deadline (dashed: an earlier one); ▼ a revision" }
            }
        }
        section aria-labelledby="assessments-heading" {
            h2 id="assessments-heading" { "Assessments" }
            p { a href={"/export/assessments.csv?commitment=" (slug)} { "CSV" } " · "
                a href={"/feeds/assessments.atom?commitment=" (slug)} { "Atom feed" } }
            table class="assessments" {
                caption class="visually-hidden" { "Every assessment, oldest first" }
                thead { tr {
                    th scope="col" { "Assessed" } th scope="col" { "Assessor" } th scope="col" { "Overall" }
                    th scope="col" { "Aspects" } th scope="col" { "Delivery" } th scope="col" { "Rationale, evidence, disputes" }
                } }
                tbody {
                    @for a in &c.assessments {
                        tr id={"assessment-" (a.id)} data-assessment=(a.id) {
                            td { (date(&a.assessed_on)) }
                            th scope="row" { (a.assessor) br; span class="muted" { (words(&a.assessor_kind)) } }
                            td { (badge(a.overall.as_deref())) }
                            td { ul class="aspects" {
                                li { "Met: " (rating_label(a.aspects.met.as_deref())) }
                                li { "Funding: " (rating_label(a.aspects.funding.as_deref())) }
                                li { "Impact: " (rating_label(a.aspects.impact.as_deref())) }
                                li { "Appropriateness: " (rating_label(a.aspects.appropriateness.as_deref())) }
                            } }
                            td { (words(&a.delivery_status)) }
                            td {
                                p class="rationale" { (a.rationale) }
                                @if let Some(e) = &a.evaluation { p class="muted" { "Evaluation: " (e) } }
                                @if !a.evidence.is_empty() {
                                    p { "Evidence: " @for (i, e) in a.evidence.iter().enumerate() {
                                        @if i > 0 { "; " }
                                        @match &e.source_url { Some(u) => a href=(u) rel="noopener" { (e.title) }, None => (e.title) }
                                    } }
                                }
                                @for d in &a.disputes {
                                    p class="disputed" { strong { "Disputed" } " by " (d.disputed_by) " on " (date(&d.disputed_on)) ": " (d.statement) }
                                }
                            }
                        }
                    }
                }
            }
            @if c.assessments.is_empty() { p { "No assessment yet." } }
        }
        @if !c.revisions.is_empty() {
            section aria-labelledby="revisions-heading" {
                h2 id="revisions-heading" { "Changes to its terms" }
                table class="revisions" {
                    thead { tr { th scope="col" { "In force from" } th scope="col" { "What changed" } th scope="col" { "Why" } } }
                    tbody { @for r in &c.revisions { tr data-version=(r.version) {
                        td { (date(&r.effective_on)) }
                        td { ul { @for ch in &r.changes { li { (ch.field) ": " (ch.from.as_deref().unwrap_or("—")) " → " (ch.to.as_deref().unwrap_or("—")) } } } }
                        td { (r.reason) }
                    } } }
                }
            }
        }
        @if !c.evidence.is_empty() {
            section aria-labelledby="evidence-heading" {
                h2 id="evidence-heading" { "Evidence" }
                ul class="evidence" {
                    @for e in &c.evidence {
                        li id={"evidence-" (e.id)} {
                            @match &e.source_url { Some(u) => a href=(u) rel="noopener" { (e.title) }, None => strong { (e.title) } }
                            " " span class="muted" { (words(&e.kind)) ", " (date(&e.submitted_on))
                                @if let Some(o) = &e.organisation { ", " (o) } }
                            @if e.retracted { " " strong { "(retracted)" } }
                            p { (e.summary) }
                        }
                    }
                }
            }
        }
        (time_form(&format!("/commitments/{slug}"), as_of, valid_on, &[]))
    };
    layout(
        &c.title,
        Live {
            commitment_id: Some(&c.id),
            enabled: live,
        },
        body,
    )
}
