//! Validated text: parsed once at the edge so that invalid data never reaches a command or SQL.

use super::DomainError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The longest single-line field (titles, names, slugs' sources), in characters.
pub const MAX_LINE: usize = 500;
/// The longest free-text field (descriptions, rationales, summaries), in characters.
pub const MAX_TEXT: usize = 20_000;
/// The longest slug, in characters.
pub const MAX_SLUG: usize = 100;
/// The longest URL, in characters.
pub const MAX_URL: usize = 2_000;
/// The most ids one command may cite.
pub const MAX_IDS: usize = 100;

/// Checks free text: not blank, not too long, no control characters other than line breaks
/// and tabs (Postgres cannot store NUL in jsonb, and the others are never meant).
fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    multiline: bool,
) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters (got {chars})"),
        ));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A non-empty single line of text (a title, a name, an area).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Line(String);

impl Line {
    /// Parses `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, DomainError> {
        check_text(field, value, MAX_LINE, false)?;
        Ok(Self(value.to_owned()))
    }
    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Non-empty free text that may span lines (a description, a rationale).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Parses `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, DomainError> {
        check_text(field, value, MAX_TEXT, true)?;
        Ok(Self(value.to_owned()))
    }
    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A commitment's stable, human-readable key: lower-case letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug such as `epr-all-trusts`.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let ok_chars = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if value.is_empty() || value.len() > MAX_SLUG {
            return Err(DomainError::invalid(
                "slug",
                format!("must be 1 to {MAX_SLUG} characters"),
            ));
        }
        if !ok_chars || value.starts_with('-') || value.ends_with('-') || value.contains("--") {
            return Err(DomainError::invalid(
                "slug",
                "must be lower-case letters and digits separated by single hyphens",
            ));
        }
        Ok(Self(value.to_owned()))
    }
    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebUrl(String);

impl WebUrl {
    /// Parses `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, DomainError> {
        if value.len() > MAX_URL {
            return Err(DomainError::invalid(
                field,
                format!("must be at most {MAX_URL} characters"),
            ));
        }
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or_else(|| DomainError::invalid(field, "must be an http or https URL"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit('@').next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(DomainError::invalid(field, "must name a valid host"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(
                field,
                "must not contain spaces or control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }
    /// The URL as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The earliest business date accepted (before any commitment this system tracks).
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date")
}

/// The latest business date accepted.
pub fn latest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2200, 12, 31).expect("valid date")
}

/// Checks a business date (a due date, a date of assessment) lies in a sane range.
pub fn check_date(field: &'static str, date: NaiveDate) -> Result<NaiveDate, DomainError> {
    if date < earliest_date() || date > latest_date() {
        return Err(DomainError::invalid(
            field,
            format!("must be between {} and {}", earliest_date(), latest_date()),
        ));
    }
    Ok(date)
}

/// Checks a list of cited ids: not too many, no repeats.
pub fn check_ids(field: &'static str, ids: &[uuid::Uuid]) -> Result<(), DomainError> {
    if ids.len() > MAX_IDS {
        return Err(DomainError::invalid(
            field,
            format!("must cite at most {MAX_IDS} ids"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(DomainError::invalid(
            field,
            format!("names {dup} more than once"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lower_case_words_joined_by_hyphens() {
        assert!(Slug::parse("epr-all-trusts").is_ok());
        assert!(Slug::parse("data-for-rd-2").is_ok());
        for bad in [
            "", "EPR", "epr--all", "-epr", "epr-", "epr all", "épr", "a/b",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn text_refuses_blank_overlong_and_control_characters() {
        assert!(Line::parse("title", "   ").is_err());
        assert!(Line::parse("title", "a\u{0}b").is_err());
        assert!(Line::parse("title", "two\nlines").is_err());
        assert!(Text::parse("rationale", "two\nlines").is_ok());
        assert!(Line::parse("title", &"x".repeat(MAX_LINE + 1)).is_err());
        let err = Line::parse("title", "").unwrap_err();
        assert!(err.to_string().starts_with("title:"));
    }

    #[test]
    fn text_keeps_markup_and_sql_like_text_exactly() {
        let s = "<script>alert(1)</script>'; drop table events; --";
        assert_eq!(Text::parse("summary", s).unwrap().as_str(), s);
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(
            WebUrl::parse(
                "sourceUrl",
                "https://committees.parliament.uk/writtenevidence/113526/html/"
            )
            .is_ok()
        );
        assert!(WebUrl::parse("sourceUrl", "http://example.org").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x.org",
            "https://",
            "https:///path",
            "https://a b.org",
            "example.org",
        ] {
            assert!(
                WebUrl::parse("sourceUrl", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn dates_outside_the_sane_range_are_refused() {
        assert!(check_date("dueDate", NaiveDate::from_ymd_opt(2025, 3, 31).unwrap()).is_ok());
        assert!(check_date("dueDate", NaiveDate::from_ymd_opt(1066, 10, 14).unwrap()).is_err());
        assert!(check_date("dueDate", NaiveDate::from_ymd_opt(9999, 1, 1).unwrap()).is_err());
    }

    #[test]
    fn repeated_ids_are_refused() {
        let id = uuid::Uuid::now_v7();
        assert!(check_ids("evidenceIds", &[id]).is_ok());
        assert!(check_ids("evidenceIds", &[id, id]).is_err());
    }
}
