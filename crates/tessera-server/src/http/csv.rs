//! CSV for the compliance reports (RFC 4180): CRLF line ends, every field quoted when it holds
//! a comma, a quote, CR or LF, quotes doubled.
//!
//! INVARIANT (formula injection, OWASP "CSV Injection"): a cell whose first character is `=`,
//! `+`, `-`, `@`, TAB or CR is prefixed with a single quote `'`, so a spreadsheet shows it as
//! text instead of evaluating it. Names, reasons and emails come from users: none reaches a
//! spreadsheet as a formula.

use crate::usecase::reports::CsvRow;

/// One field, neutralised and quoted as needed.
pub fn field(raw: &str) -> String {
    let guarded = match raw.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{raw}"),
        _ => raw.to_owned(),
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn line(out: &mut String, cells: impl IntoIterator<Item = impl AsRef<str>>) {
    let mut first = true;
    for c in cells {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&field(c.as_ref()));
    }
    out.push_str("\r\n");
}

/// The header and one line per row.
pub fn render<T: CsvRow>(rows: &[T]) -> String {
    let mut out = String::new();
    line(&mut out, T::header());
    for r in rows {
        line(&mut out, r.cells());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4180_quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tcmd"), "'\tcmd");
        // Only the first character matters.
        assert_eq!(field("a=b"), "a=b");
    }

    struct R(&'static str, &'static str);
    impl CsvRow for R {
        fn header() -> &'static [&'static str] {
            &["a", "b"]
        }
        fn cells(&self) -> Vec<String> {
            vec![self.0.into(), self.1.into()]
        }
    }

    #[test]
    fn lines_end_with_crlf() {
        assert_eq!(
            render(&[R("x", "=1"), R("y,z", "")]),
            "a,b\r\nx,'=1\r\n\"y,z\",\r\n"
        );
    }
}
