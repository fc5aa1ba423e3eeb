//! Scalars of the contract: `Date` (a calendar date, `YYYY-MM-DD`). `DateTime` and `JSON` are
//! async-graphql's own.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

/// A calendar date, written `YYYY-MM-DD` (business time: when something happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        // Exactly ten characters: no times, no week dates, no signs.
        if s.len() != 10 {
            return Err(InputValueError::custom(
                "expected a date written YYYY-MM-DD",
            ));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Date)
            .map_err(|_| InputValueError::custom("expected a valid date written YYYY-MM-DD"))
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// `YYYY-MM-DD` (years outside 0..=9999 as chrono writes them), without going through a
/// format string: a list answer writes hundreds of dates.
impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::Datelike;
        let d = self.0;
        match d.year() {
            y @ 0..=9999 => {
                let (m, day) = (d.month() as u8, d.day() as u8);
                let y = y as u16;
                let digits = [
                    b'0' + (y / 1000) as u8,
                    b'0' + (y / 100 % 10) as u8,
                    b'0' + (y / 10 % 10) as u8,
                    b'0' + (y % 10) as u8,
                    b'-',
                    b'0' + m / 10,
                    b'0' + m % 10,
                    b'-',
                    b'0' + day / 10,
                    b'0' + day % 10,
                ];
                f.write_str(std::str::from_utf8(&digits).map_err(|_| std::fmt::Error)?)
            }
            _ => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn dates_are_written_as_chrono_writes_them() {
        let days = [
            NaiveDate::from_ymd_opt(2023, 2, 17),
            NaiveDate::from_ymd_opt(1, 1, 1),
            NaiveDate::from_ymd_opt(999, 12, 31),
            NaiveDate::from_ymd_opt(9999, 12, 31),
            NaiveDate::from_ymd_opt(10000, 1, 1),
            NaiveDate::from_ymd_opt(-44, 3, 15),
            NaiveDate::from_ymd_opt(2024, 2, 29),
        ];
        for day in days.into_iter().map(|d| d.expect("a date")) {
            let written = Date(day).to_value();
            assert_eq!(written, Value::String(day.format("%Y-%m-%d").to_string()));
        }
        let mut day = NaiveDate::from_ymd_opt(1999, 12, 1).expect("a date");
        while day.year() < 2002 {
            assert_eq!(Date(day).to_string(), day.to_string());
            day = day.succ_opt().expect("a next day");
        }
    }
}
