//! Text made safe for a log line: whatever a client sent cannot forge a line of its own.

use std::fmt;

/// Shows text with every control character escaped, so logging what a client sent (a path, a
/// channel name) cannot start a new line or rewrite the terminal.
///
/// Escaped as `\u{XX}`: the C0 controls (including CR and LF), DEL, the C1 controls, and the
/// Unicode line and paragraph separators (U+2028, U+2029), which some log viewers break lines
/// on; a backslash becomes `\\`, so an escape in the output always means one was made.
///
/// # Examples
/// ```
/// use house::Printable;
///
/// let forged = "/x\r\nINFO  GET /admin 200";
/// assert_eq!(Printable(forged).to_string(), r"/x\u{d}\u{a}INFO  GET /admin 200");
/// assert_eq!(Printable("/café").to_string(), "/café");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let mut start = 0;
        for (at, c) in text.char_indices() {
            if needs_escape(c) {
                f.write_str(&text[start..at])?;
                if c == '\\' {
                    f.write_str("\\\\")?;
                } else {
                    write!(f, "\\u{{{:x}}}", u32::from(c))?;
                }
                start = at + c.len_utf8();
            }
        }
        f.write_str(&text[start..])
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\\' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_breaker_and_control_is_escaped() {
        let cases = [
            ("a\nb", r"a\u{a}b"),
            ("a\rb", r"a\u{d}b"),
            ("\0\t\x1b[31m", r"\u{0}\u{9}\u{1b}[31m"),
            ("\x7f", r"\u{7f}"),
            ("\u{85}\u{9b}", r"\u{85}\u{9b}"),
            ("a\u{2028}b\u{2029}", r"a\u{2028}b\u{2029}"),
            (r"\u{a}", r"\\u{a}"),
            ("plain /path?x=1 é ✓", "plain /path?x=1 é ✓"),
        ];
        for (text, shown) in cases {
            assert_eq!(Printable(text).to_string(), shown, "{text:?}");
        }
    }
}
