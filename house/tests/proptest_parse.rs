//! Properties of the request parser and form decoding, checked on generated input. The
//! cargo-fuzz targets in `house/fuzz/` check the same properties for much longer.

use house::parse::{decode_form, parse_request, Parsed};
use proptest::collection::vec;
use proptest::prelude::*;

/// Limits large enough for every generated request.
const MAX_SIZE: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// One generated request: what it should parse to, and its bytes.
#[derive(Debug, Clone)]
struct Generated {
    path: String,
    params: Vec<(String, String)>,
    body: Vec<u8>,
    bytes: Vec<u8>,
}

/// Text with the characters that matter to form encoding, plus any Unicode.
fn text() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec!['+', '%', '&', '=', ' ', '?', '#', '/', 'a', 'é', '😀']);
    vec(prop_oneof![tricky, any::<char>()], 0..12).prop_map(String::from_iter)
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((text(), text()), 0..6)
}

/// Percent-encodes everything but unreserved bytes; a space is `+` when `plus` is set.
fn encode(text: &str, plus: bool) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn encode_form(pairs: &[(String, String)], plus: bool) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name, plus), encode(value, plus)))
        .collect();
    encoded.join("&")
}

/// A valid request: a query string, some headers, and either no body, an opaque body or a form.
fn request() -> impl Strategy<Value = Generated> {
    let segments = vec(text(), 1..4);
    let headers = vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[ -~]{0,16}"), 0..4);
    let body = prop_oneof![
        Just(None),
        vec(any::<u8>(), 0..64).prop_map(|b| Some((b, false))),
        pairs().prop_map(|p| Some((encode_form(&p, true).into_bytes(), true))),
    ];
    (segments, pairs(), headers, body, any::<bool>()).prop_map(
        |(segments, query, headers, body, http10)| {
            let raw_path: Vec<String> = segments.iter().map(|s| encode(s, false)).collect();
            let mut bytes = format!(
                "{} /{}?{} HTTP/1.{}\r\n",
                if body.is_some() { "POST" } else { "GET" },
                raw_path.join("/"),
                encode_form(&query, true),
                if http10 { 0 } else { 1 }
            )
            .into_bytes();
            for (name, value) in headers {
                // Generated names must not collide with the headers that change parsing.
                bytes.extend_from_slice(format!("X-{name}: {}\r\n", value.trim()).as_bytes());
            }
            let mut params = query;
            let body = match body {
                None => Vec::new(),
                Some((body, is_form)) => {
                    if is_form {
                        bytes.extend_from_slice(
                            b"Content-Type: application/x-www-form-urlencoded\r\n",
                        );
                        let form = decode_form(&body).expect("an encoded form decodes");
                        params.extend(form.iter().map(|(n, v)| (n.to_owned(), v.to_owned())));
                    }
                    bytes.extend_from_slice(
                        format!("Content-Length: {}\r\n", body.len()).as_bytes(),
                    );
                    body
                }
            };
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&body);
            Generated {
                path: format!("/{}", segments.join("/")),
                params,
                body,
                bytes,
            }
        },
    )
}

/// Feeds `chunks` the way a connection does: append, parse, consume each complete request.
fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<String>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parse_request(&buf, MAX_SIZE, MAX_HEADERS) {
                Ok(Parsed::Partial) => break,
                Ok(Parsed::Complete { request, len, .. }) => {
                    seen.push(format!("{request:?}"));
                    buf.drain(..len);
                }
                Err(err) => panic!("a valid request failed: {err}"),
            }
        }
    }
    (seen, buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_requests_parse_as_built(req in request()) {
        let Ok(Parsed::Complete { request, len, .. }) = parse_request(&req.bytes, MAX_SIZE, MAX_HEADERS) else {
            panic!("not complete: {:?}", String::from_utf8_lossy(&req.bytes));
        };
        prop_assert_eq!(len, req.bytes.len());
        prop_assert_eq!(request.path(), req.path.as_str());
        let params: Vec<(&str, &str)> = request.params().iter().collect();
        let expected: Vec<(&str, &str)> = req.params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        prop_assert_eq!(params, expected);
        prop_assert_eq!(request.body(), &req.body[..]);
    }

    #[test]
    fn any_split_parses_the_same(reqs in vec(request(), 1..4), cuts in vec(any::<prop::sample::Index>(), 0..4)) {
        let stream: Vec<u8> = reqs.iter().flat_map(|r| r.bytes.iter().copied()).collect();
        let (whole, rest) = feed([&stream[..]]);
        prop_assert_eq!(whole.len(), reqs.len());
        prop_assert!(rest.is_empty());

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let chunks = [0].into_iter().chain(cuts.iter().copied()).zip(cuts.iter().copied().chain([stream.len()]));
        let (split, rest) = feed(chunks.map(|(from, to)| &stream[from..to]));
        prop_assert_eq!(split, whole);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn form_round_trips(pairs in pairs(), plus in any::<bool>()) {
        let decoded = decode_form(encode_form(&pairs, plus).as_bytes()).expect("an encoded form decodes");
        let decoded: Vec<(&str, &str)> = decoded.iter().collect();
        let expected: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..512),
        valid_start in any::<bool>(),
        max_size in 0..2048usize,
        max_headers in 0..40usize,
    ) {
        // Starting with a valid request line takes the bytes past the first checks.
        let buf = if valid_start { [b"POST /a?b=c HTTP/1.1\r\n".as_slice(), &bytes].concat() } else { bytes };
        if let Ok(Parsed::Complete { len, .. }) = parse_request(&buf, max_size, max_headers) {
            prop_assert!(len <= buf.len() && len <= max_size);
        }
        let _ = decode_form(&buf);
    }
}
