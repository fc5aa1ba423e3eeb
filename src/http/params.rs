//! Query-string parameters of the open-data routes (exports, feeds, pages): each route names
//! the ones it takes, a name it does not take is refused rather than ignored (a misspelt
//! `asof` would otherwise export today's state as if it were the past), and every value is
//! checked as the GraphQL argument of the same name is.

use crate::domain::rating::{DeliveryStatus, Rating};
use crate::graphql::error::ApiError;
use crate::store::cursor::EventCursor;
use crate::store::replay::TimeFilter;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `raw` (the query string), allowing only `allowed` names, each once.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (name, value) in super::graphql::form_pairs(raw.unwrap_or("")) {
            if !allowed.contains(&name.as_str()) {
                let known = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::bad_input(
                    &name,
                    format!("unknown parameter (this address takes: {known})"),
                ));
            }
            if map.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_input(&name, "given more than once"));
            }
        }
        Ok(Self(map))
    }

    /// A text value; empty counts as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `true`/`1` or `false`/`0`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(_) => Err(ApiError::bad_input(name, "must be true or false")),
        }
    }

    /// A rating by its enum name.
    pub fn rating(&self, name: &str) -> Result<Option<Rating>, ApiError> {
        self.text(name)
            .map(|v| {
                Rating::parse(v).ok_or_else(|| {
                    ApiError::bad_input(name, enum_message(Rating::ALL.iter().map(|r| r.as_str())))
                })
            })
            .transpose()
    }

    /// A delivery status by its enum name.
    pub fn delivery_status(&self, name: &str) -> Result<Option<DeliveryStatus>, ApiError> {
        self.text(name)
            .map(|v| {
                DeliveryStatus::parse(v).ok_or_else(|| {
                    ApiError::bad_input(
                        name,
                        enum_message(DeliveryStatus::ALL.iter().map(|s| s.as_str())),
                    )
                })
            })
            .transpose()
    }

    /// `asOf` and `validOn`, checked as the GraphQL arguments are.
    pub fn time(&self) -> Result<TimeFilter, ApiError> {
        let as_of = self
            .text("asOf")
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_input(
                            "asOf",
                            "must be an RFC 3339 instant, e.g. 2024-01-31T12:00:00Z",
                        )
                    })
            })
            .transpose()?;
        let valid_on = self
            .text("validOn")
            .map(|v| {
                let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_input("validOn", "must be a date, e.g. 2024-01-31")
                })?;
                crate::domain::text::check_date("validOn", date).map_err(ApiError::from)?;
                Ok::<_, ApiError>(date)
            })
            .transpose()?;
        Ok(TimeFilter { as_of, valid_on })
    }

    /// A log cursor, as `events(after:)` takes it.
    pub fn cursor(&self, name: &str) -> Result<Option<EventCursor>, ApiError> {
        self.text(name)
            .map(|v| {
                EventCursor::decode(v)
                    .map_err(|_| ApiError::bad_input(name, "is not a cursor this server gave"))
            })
            .transpose()
    }

    /// A uuid.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.text(name)
            .map(|v| Uuid::parse_str(v).map_err(|_| ApiError::bad_input(name, "must be a UUID")))
            .transpose()
    }

    /// A comma-separated list.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.text(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }
}

fn enum_message<'a>(values: impl Iterator<Item = &'a str>) -> String {
    format!("must be one of {}", values.collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_names_are_refused() {
        let err = Params::parse(Some("asof=2024-01-01T00:00:00Z"), &["asOf"]).unwrap_err();
        assert!(err.to_string().contains("unknown parameter"), "{err}");
        assert!(Params::parse(Some("area=a&area=b"), &["area"]).is_err());
        assert!(
            Params::parse(Some("area=a%20b"), &["area"])
                .unwrap()
                .text("area")
                == Some("a b")
        );
    }

    #[test]
    fn values_are_checked_as_graphql_checks_them() {
        let p = Params::parse(
            Some("rating=BAD&asOf=yesterday&validOn=2024-13-01"),
            &["rating", "asOf", "validOn"],
        )
        .unwrap();
        assert!(p.rating("rating").is_err());
        assert!(p.time().is_err());
        let p = Params::parse(
            Some("rating=GOOD&asOf=2024-01-01T10:00:00%2B01:00"),
            &["rating", "asOf"],
        )
        .unwrap();
        assert_eq!(p.rating("rating").unwrap(), Some(Rating::Good));
        assert_eq!(
            p.time().unwrap().as_of.unwrap().to_rfc3339(),
            "2024-01-01T09:00:00+00:00"
        );
    }
}
