//! The assessments feed in Atom (RFC 4287), paged as RFC 5005 §3 says: each document holds
//! one page, newest recorded first, and links to the next (older) one, so a reader polls the
//! first page and follows `next` only as far as it has not read.
//!
//! An entry's id is a `tag:` URI (RFC 4151) minted from the log's name and the day the
//! assessment was recorded: it never changes, whichever address the server answers at.

use crate::store::read::FeedAssessment;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write;

/// One page of the feed and what its links need.
pub struct Page<'a> {
    /// The `tag:` authority (a domain name this record's operator holds).
    pub authority: &'a str,
    /// The address people reach the server at, without a trailing `/`.
    pub base: &'a str,
    /// The feed's own path and query without paging (e.g. `/feeds/assessments.atom?area=…`).
    pub feed_path: &'a str,
    /// What the feed covers, for its title: a commitment's title, an area, or nothing.
    pub scope: Option<&'a str>,
    /// The page a person reads the same thing on (path under `base`).
    pub alternate_path: &'a str,
    /// The entries, newest first.
    pub entries: &'a [FeedAssessment],
    /// The `before` cursor of this page (none on the first).
    pub before: Option<&'a str>,
    /// The `before` cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// The page as an Atom document.
pub fn render(page: &Page<'_>) -> String {
    let mut out = String::with_capacity(2048 + page.entries.len() * 1024);
    let feed_url = format!("{}{}", page.base, page.feed_path);
    let with = |cursor: &str| {
        let sep = if page.feed_path.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{feed_url}{sep}before={}", url_encode(cursor))
    };
    let title = match page.scope {
        Some(scope) => format!("Assessments: {scope}"),
        None => "Assessments of every commitment".to_owned(),
    };
    // The feed changes when an entry is added: its newest entry's time, or the epoch while
    // it has none (a fixed value, so an empty feed does not look new at every poll).
    let updated = page
        .entries
        .iter()
        .map(|e| e.assessment.recorded_at)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    let _ = writeln!(out, "  <id>{}</id>", escape(&feed_url));
    let _ = writeln!(out, "  <title>{}</title>", escape(&title));
    let _ = writeln!(out, "  <updated>{}</updated>", time(updated));
    let _ = writeln!(
        out,
        "  <author><name>commitment-tracker</name></author>\n  <generator>commitment-tracker</generator>"
    );
    let self_url = match page.before {
        Some(b) => with(b),
        None => feed_url.clone(),
    };
    link(&mut out, "self", "application/atom+xml", &self_url);
    link(&mut out, "first", "application/atom+xml", &feed_url);
    if let Some(next) = &page.next {
        link(&mut out, "next", "application/atom+xml", &with(next));
    }
    link(
        &mut out,
        "alternate",
        "text/html",
        &format!("{}{}", page.base, page.alternate_path),
    );
    for e in page.entries {
        entry(&mut out, page, e);
    }
    out.push_str("</feed>\n");
    out
}

fn link(out: &mut String, rel: &str, media: &str, href: &str) {
    let _ = writeln!(
        out,
        "  <link rel=\"{rel}\" type=\"{media}\" href=\"{}\"/>",
        escape(href)
    );
}

/// The entry's title: the commitment and what the verdict did to its rating.
pub fn entry_title(e: &FeedAssessment) -> String {
    let label = |r: Option<crate::domain::rating::Rating>| match r {
        Some(r) => r.label(),
        None => "Not rated".to_owned(),
    };
    let change = match e.previous_overall {
        None => format!("rated {}", label(e.assessment.overall)),
        Some(before) if before == e.assessment.overall => {
            format!("{} (unchanged)", label(before))
        }
        Some(before) => format!("{} → {}", label(before), label(e.assessment.overall)),
    };
    format!("{}: {change}", e.commitment_title)
}

fn entry(out: &mut String, page: &Page<'_>, e: &FeedAssessment) {
    let a = &e.assessment;
    let id = format!(
        "tag:{},{}:assessment/{}",
        page.authority,
        a.recorded_at.date_naive(),
        a.id
    );
    let href = format!(
        "{}/commitments/{}#assessment-{}",
        page.base,
        url_encode(&e.commitment_slug),
        a.id
    );
    let rating = |r: Option<crate::domain::rating::Rating>| {
        r.map_or_else(|| "not rated".to_owned(), |r| r.label())
    };
    let mut content = format!(
        "Assessed on {} by {} ({}).\nOverall: {}. Delivery: {}.\nMet: {}. Funding: {}. Impact: {}. Appropriateness: {}.\n",
        a.assessed_on,
        a.assessor,
        a.assessor_kind.label().to_lowercase(),
        rating(a.overall),
        a.delivery_status.label(),
        rating(a.aspects.met),
        rating(a.aspects.funding),
        rating(a.aspects.impact),
        rating(a.aspects.appropriateness),
    );
    if let Some(evaluation) = &a.evaluation {
        let _ = writeln!(content, "Evaluation: {evaluation}.");
    }
    let _ = write!(content, "\n{}", a.rationale);
    out.push_str("  <entry>\n");
    let _ = writeln!(out, "    <id>{}</id>", escape(&id));
    let _ = writeln!(out, "    <title>{}</title>", escape(&entry_title(e)));
    let _ = writeln!(out, "    <updated>{}</updated>", time(a.recorded_at));
    let _ = writeln!(
        out,
        "    <author><name>{}</name></author>",
        escape(&a.assessor)
    );
    let _ = writeln!(
        out,
        "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
        escape(&href)
    );
    if let Some(r) = a.overall {
        let _ = writeln!(
            out,
            "    <category term=\"{}\" label=\"{}\"/>",
            r.as_str(),
            escape(&r.label())
        );
    }
    let _ = writeln!(
        out,
        "    <category term=\"{}\" label=\"{}\"/>",
        escape(&e.area),
        escape(&e.area)
    );
    let _ = writeln!(out, "    <summary>{}</summary>", escape(&a.rationale));
    let _ = writeln!(
        out,
        "    <content type=\"text\">{}</content>",
        escape(&content)
    );
    out.push_str("  </entry>\n");
}

/// RFC 3339 to the second, in UTC, as Atom dates are usually written.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Text and attribute values for XML 1.0: the five markup characters escaped and characters
/// XML cannot hold at all dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query or path value (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_forbidden_characters_dropped() {
        assert_eq!(escape("a<b>&\"c'\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&apos;\n");
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(
            url_encode("Digital foundations/é"),
            "Digital%20foundations%2F%C3%A9"
        );
    }
}
