//! Rows in PostgreSQL's binary COPY format, for the rebuild's bulk writes.
//!
//! Binary rather than text: PostgreSQL then reads each value as it is stored (sixteen bytes of
//! uuid, eight of bigint) instead of parsing numbers, ids, dates and arrays out of text, which
//! took it about as long as reading the log itself.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// Bytes sent per COPY message.
pub(super) const COPY_CHUNK: usize = 1 << 20;

/// The signature, flags and header extension length that open a binary COPY.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// `uuid`'s type oid, which an array names its elements by.
const UUID_OID: u32 = 2950;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows in the binary format: each a field count, then each field's length and bytes.
pub(super) struct CopyRows(Vec<u8>);

impl Default for CopyRows {
    fn default() -> Self {
        Self(HEADER.to_vec())
    }
}

impl CopyRows {
    /// Bytes buffered.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes what is buffered, to send as one COPY message; the rows go on after it.
    pub(super) fn take(&mut self) -> Vec<u8> {
        // Room for a whole chunk and the row that passes it, so the buffer never regrows.
        std::mem::replace(&mut self.0, Vec::with_capacity(COPY_CHUNK + (64 << 10)))
    }

    /// Takes what is left, with the trailer that ends the data.
    pub(super) fn end(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }

    /// Opens a row of `fields` fields.
    pub(super) fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn value(&mut self, bytes: &[u8]) {
        let len = i32::try_from(bytes.len()).expect("a field under 2 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn text(&mut self, value: &str) {
        self.value(value.as_bytes());
    }

    pub(super) fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.text(v),
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    pub(super) fn uuid(&mut self, id: Uuid) {
        self.value(id.as_bytes());
    }

    pub(super) fn bigint(&mut self, n: i64) {
        self.value(&n.to_be_bytes());
    }

    /// Days since 2000-01-01.
    pub(super) fn date(&mut self, day: NaiveDate) {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");
        let days = i32::try_from((day - epoch).num_days()).expect("a date PostgreSQL holds");
        self.value(&days.to_be_bytes());
    }

    /// Microseconds since 2000-01-01T00:00:00Z.
    pub(super) fn timestamptz(&mut self, at: DateTime<Utc>) {
        self.value(&(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    }

    /// A one-dimensional `uuid[]` without nulls (no dimension when empty).
    pub(super) fn uuid_array(&mut self, ids: &[Uuid]) {
        let count = i32::try_from(ids.len()).expect("an array under 2^31 elements");
        let dims: i32 = if ids.is_empty() { 0 } else { 1 };
        let len = 12 + if ids.is_empty() { 0 } else { 8 } + 20 * count;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(&dims.to_be_bytes());
        self.0.extend_from_slice(&0i32.to_be_bytes()); // no nulls
        self.0.extend_from_slice(&UUID_OID.to_be_bytes());
        if !ids.is_empty() {
            self.0.extend_from_slice(&count.to_be_bytes());
            self.0.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
        for id in ids {
            self.value(id.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CopyRows;
    use chrono::{DateTime, NaiveDate};
    use uuid::Uuid;

    #[test]
    fn binary_rows_hold_what_postgres_reads() {
        let mut rows = CopyRows::default();
        let header = rows.take();
        assert_eq!(&header[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(header.len(), 19, "signature, flags, no extension");

        rows.row(2);
        rows.text("ab");
        rows.optional_text(None);
        assert_eq!(
            rows.take(),
            [&[0, 2][..], &[0, 0, 0, 2], b"ab", &[0xff; 4]].concat()
        );

        rows.date(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap());
        rows.date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap());
        rows.timestamptz(DateTime::from_timestamp(946_684_801, 5_000).unwrap());
        rows.bigint(-2);
        assert_eq!(
            rows.take(),
            [
                &[0, 0, 0, 4, 0, 0, 0, 1][..],
                &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
                &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x45], // 1,000,005 µs
                &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
            ]
            .concat()
        );

        let id = Uuid::from_u128(0x0102);
        rows.uuid_array(&[]);
        rows.uuid_array(&[id]);
        assert_eq!(
            rows.take(),
            [
                &[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x86][..],
                &[0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x0b, 0x86],
                &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 16],
                id.as_bytes(),
            ]
            .concat()
        );
        assert_eq!(rows.end(), [0xff, 0xff], "the trailer");
    }
}
