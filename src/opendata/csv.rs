//! RFC 4180 CSV, written a row at a time into a buffer the caller drains: UTF-8, CRLF line
//! ends, a field quoted when it holds a comma, a quote, a CR or an LF, quotes doubled.
//!
//! Every text cell is neutralised against formula injection (OWASP, "CSV Injection"): a cell
//! that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading
//! apostrophe, so a spreadsheet shows it as text instead of running it. A cell that itself
//! begins with an apostrophe gets one more, so the rule is reversible: to recover the exact
//! value, drop one leading apostrophe from any cell that begins with one
//! ([`unneutralise`] does, and the README says so).

/// Characters a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV document being written: rows go into [`CsvWriter::buffer`], which the caller
/// takes whenever it has grown enough to send.
#[derive(Debug, Default)]
pub struct CsvWriter {
    buffer: Vec<u8>,
    fields_in_row: usize,
}

impl CsvWriter {
    /// A writer with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buffer: Vec::with_capacity(capacity),
            fields_in_row: 0,
        }
    }

    /// Writes a header row.
    pub fn header(&mut self, names: &[&str]) {
        for name in names {
            self.text(name);
        }
        self.end_row();
    }

    /// A text cell, neutralised against formula injection.
    pub fn text(&mut self, value: &str) {
        self.separate();
        let apostrophe = value.starts_with(FORMULA_STARTS) || value.starts_with('\'');
        let quote = value.contains([',', '"', '\r', '\n']);
        if quote {
            self.buffer.push(b'"');
        }
        if apostrophe {
            self.buffer.push(b'\'');
        }
        if quote {
            for part in value.split_inclusive('"') {
                self.buffer.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    self.buffer.push(b'"');
                }
            }
            self.buffer.push(b'"');
        } else {
            self.buffer.extend_from_slice(value.as_bytes());
        }
    }

    /// A cell that may be empty.
    pub fn opt(&mut self, value: Option<&str>) {
        self.text(value.unwrap_or(""));
    }

    /// A cell of something displayed (a date, a number, a uuid).
    pub fn display(&mut self, value: impl std::fmt::Display) {
        self.text(&value.to_string());
    }

    /// A cell of something displayed, or empty.
    pub fn opt_display(&mut self, value: Option<impl std::fmt::Display>) {
        match value {
            Some(v) => self.display(v),
            None => self.text(""),
        }
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.buffer.extend_from_slice(b"\r\n");
        self.fields_in_row = 0;
    }

    /// How many bytes are waiting.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Takes what has been written so far, leaving the writer empty (and mid-row state as it
    /// was).
    pub fn take(&mut self) -> Vec<u8> {
        let capacity = self.buffer.capacity();
        std::mem::replace(&mut self.buffer, Vec::with_capacity(capacity))
    }

    fn separate(&mut self) {
        if self.fields_in_row > 0 {
            self.buffer.push(b',');
        }
        self.fields_in_row += 1;
    }
}

/// The exact value of a cell written by [`CsvWriter::text`], once a CSV reader has unquoted
/// it: one leading apostrophe dropped.
pub fn unneutralise(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> String {
        let mut w = CsvWriter::default();
        for c in cells {
            w.text(c);
        }
        w.end_row();
        String::from_utf8(w.take()).unwrap()
    }

    #[test]
    fn plain_cells_are_written_as_they_are() {
        assert_eq!(row(&["a", "b c", ""]), "a,b c,\r\n");
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted_and_quotes_doubled() {
        assert_eq!(
            row(&["a,b", "say \"hi\"", "one\ntwo", "cr\rx"]),
            "\"a,b\",\"say \"\"hi\"\"\",\"one\ntwo\",\"cr\rx\"\r\n"
        );
    }

    #[test]
    fn formula_starts_get_an_apostrophe_and_apostrophes_another() {
        assert_eq!(
            row(&["=1+1", "+44", "-3", "@SUM(A1)", "\tx", "'quoted", "a=b"]),
            "'=1+1,'+44,'-3,'@SUM(A1),'\tx,''quoted,a=b\r\n"
        );
        assert_eq!(
            row(&["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
    }

    #[test]
    fn neutralising_is_reversible() {
        for value in ["=1", "'=1", "''", "'", "plain", "-", "@", ""] {
            let written = row(&[value]);
            let cell = written.trim_end_matches("\r\n").trim_matches('"');
            assert_eq!(unneutralise(cell), value, "{written:?}");
        }
    }

    #[test]
    fn multibyte_text_is_kept_whole() {
        assert_eq!(
            row(&["Inadequate → Good", "£1bn, “smart”"]),
            "Inadequate → Good,\"£1bn, “smart”\"\r\n"
        );
    }
}
