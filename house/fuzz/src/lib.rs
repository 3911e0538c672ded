//! Helpers shared by the fuzz targets in `fuzz_targets/`.
#![forbid(unsafe_code)]

use house::parse::Parsed;
use house::Error;

/// Limits for one run, taken from the input's first two bytes, followed by the rest of it.
///
/// Small size limits are the common case so the fuzzer reaches every limit branch; a quarter of
/// runs use the server's default. Header counts straddle the parser's 32-slot stack array.
pub fn limits(data: &[u8]) -> Option<(usize, usize, &[u8])> {
    let [size, headers, rest @ ..] = data else {
        return None;
    };
    let max_size = match size {
        0..=191 => usize::from(*size) * 4,
        _ => house::limits::MAX_REQUEST_SIZE,
    };
    Some((max_size, usize::from(headers % 40), rest))
}

/// A comparable description of a parse result (`Request` has no `PartialEq`; its `Debug` shows
/// every field).
pub fn describe(result: &Result<Parsed, Error>) -> String {
    format!("{result:?}")
}

/// Encodes pairs as `application/x-www-form-urlencoded`: unreserved bytes stay, a space is `+`
/// (or `%20` when `plus` is false), every other byte is `%XX` (upper or lower case hex).
pub fn encode_form<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    plus: bool,
    lower: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        encode_into(name, plus, lower, &mut out);
        out.push(b'=');
        encode_into(value, plus, lower, &mut out);
    }
    out
}

fn encode_into(text: &str, plus: bool, lower: bool, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' if plus => out.push(b'+'),
            _ if lower => out.extend_from_slice(format!("%{b:02x}").as_bytes()),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}
