//! Rows in PostgreSQL's COPY text format, for the rebuild's bulk writes.

/// Bytes sent per COPY message.
pub(super) const COPY_CHUNK: usize = 1 << 20;

/// Rows in COPY's text format: tab-separated fields, `\N` for null, backslash escapes.
#[derive(Default)]
pub(super) struct CopyRows(pub(super) Vec<u8>, bool);

impl CopyRows {
    /// A tab before every field but a row's first (`.1`: the row has a field already).
    fn separate(&mut self) {
        if self.1 {
            self.0.push(b'\t');
        }
        self.1 = true;
    }

    pub(super) fn field(&mut self, value: &str) {
        self.separate();
        for b in value.bytes() {
            match b {
                b'\\' => self.0.extend_from_slice(b"\\\\"),
                b'\t' => self.0.extend_from_slice(b"\\t"),
                b'\n' => self.0.extend_from_slice(b"\\n"),
                b'\r' => self.0.extend_from_slice(b"\\r"),
                other => self.0.push(other),
            }
        }
    }

    /// A value whose text never holds a tab, a newline, a carriage return or a backslash
    /// (numbers, ids, dates), written straight into the buffer.
    pub(super) fn plain(&mut self, value: impl std::fmt::Display) {
        use std::io::Write;
        self.separate();
        // Writing into a Vec cannot fail.
        let _ = write!(self.0, "{value}");
    }

    pub(super) fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.field(v),
            None => {
                self.separate();
                self.0.extend_from_slice(b"\\N");
            }
        }
    }

    pub(super) fn end_row(&mut self) {
        self.0.push(b'\n');
        self.1 = false;
    }
}

#[cfg(test)]
mod tests {
    use super::CopyRows;

    #[test]
    fn copy_rows_escape_what_the_text_format_treats_specially() {
        let mut rows = CopyRows::default();
        rows.field("a\tb\\c\nd\re");
        rows.optional(None);
        rows.field("");
        rows.end_row();
        rows.field("");
        rows.field("x");
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.0).unwrap(),
            "a\\tb\\\\c\\nd\\re\t\\N\t\n\tx\n"
        );
    }
}
