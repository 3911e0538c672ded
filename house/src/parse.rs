//! Request parsing: a pure function of the bytes received so far. Incomplete input is
//! [`Parsed::Partial`], never an error; no I/O happens here.

use percent_encoding::percent_decode;

use crate::error::Error;
use crate::request::{media_type, Headers, Method, Params, Request, Version};

/// The outcome of parsing the bytes received so far.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole request, which took the first `len` bytes.
    Complete {
        /// The request.
        request: Box<Request>,
        /// How many bytes it took (head and body).
        len: usize,
        /// Whether the connection may carry another request after this one.
        keep_alive: bool,
    },
}

/// Parses the request at the start of `buf`.
///
/// `max_size` bounds head and body together; `max_headers` bounds the header count. A request
/// whose `Content-Length` exceeds the size limit fails as soon as its head is complete.
///
/// # Examples
/// ```
/// use house::parse::{parse_request, Parsed};
///
/// let parsed = parse_request(b"GET /a?x=1+2 HTTP/1.1\r\n\r\n", 1024, 16).unwrap();
/// let Parsed::Complete { request, len, keep_alive } = parsed else { panic!() };
/// assert_eq!((request.path(), request.param("x"), len, keep_alive), ("/a", Some("1 2"), 25, true));
/// assert!(matches!(parse_request(b"GET / HTTP/1.1\r\n", 1024, 16), Ok(Parsed::Partial)));
/// ```
pub fn parse_request(buf: &[u8], max_size: usize, max_headers: usize) -> Result<Parsed, Error> {
    let mut stack = [httparse::EMPTY_HEADER; 32];
    let mut heap;
    let headers = if max_headers <= stack.len() {
        &mut stack[..max_headers]
    } else {
        heap = vec![httparse::EMPTY_HEADER; max_headers];
        &mut heap[..]
    };
    // Only the first `max_size` bytes can belong to an acceptable request. Looking past them
    // would make the outcome depend on how the bytes arrived: all at once, a bad byte beyond
    // the limit gave `Malformed`; in small reads the limit was hit first.
    let window = &buf[..buf.len().min(max_size)];
    let mut head = httparse::Request::new(headers);
    let head_len = match head.parse(window)? {
        httparse::Status::Partial if window.len() == max_size => {
            return Err(if window.contains(&b'\n') {
                Error::HeadTooLarge
            } else {
                Error::UriTooLong
            });
        }
        httparse::Status::Partial => return Ok(Parsed::Partial),
        httparse::Status::Complete(len) => len,
    };

    let version = match head.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Error::UnsupportedVersion),
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut connection_close = version == Version::Http10;
    for header in head.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = parse_content_length(header.value)?;
            if content_length.is_some_and(|earlier| earlier != value) {
                return Err(Error::AmbiguousLength);
            }
            content_length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            for option in header.value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                if option.eq_ignore_ascii_case(b"close") {
                    connection_close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && version == Version::Http10 {
                    connection_close = false;
                }
            }
        }
    }
    if chunked {
        return Err(if content_length.is_some() {
            Error::AmbiguousLength
        } else {
            Error::TransferEncoding
        });
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > max_size - head_len {
        return Err(Error::TooLarge);
    }
    let len = head_len + body_len;
    if buf.len() < len {
        return Ok(Parsed::Partial);
    }

    let target = head.path.unwrap_or("");
    let method_token = head.method.unwrap_or("");
    // `*` names the server as a whole, and only for `OPTIONS` (RFC 9110 7.1).
    let asterisk = target == "*" && method_token == "OPTIONS";
    let (authority, raw_path, query) = match origin_form(target) {
        Some(parts) => parts,
        None if asterisk => (None, target, ""),
        None => return Err(Error::InvalidTarget),
    };
    let path = decode(raw_path.as_bytes(), false)?;
    let raw_path = (path != raw_path).then(|| raw_path.to_owned());
    let mut params = Params::new();
    decode_form_into(query.as_bytes(), &mut params)?;
    let body = &buf[head_len..len];
    // An absolute target's authority replaces any `Host` header (RFC 9112 3.2.2).
    let kept =
        |h: &&httparse::Header<'_>| authority.is_none() || !h.name.eq_ignore_ascii_case("host");
    let text: usize = head
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    let extra = authority.map_or(0, |a| "host".len() + a.len());
    let mut headers = Headers::with_capacity(head.headers.len() + 1, text + extra);
    for header in head.headers.iter().filter(kept) {
        headers.push(header.name, header.value);
    }
    if let Some(authority) = authority {
        headers.push("host", authority.as_bytes());
    }
    let is_form = head.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-type")
            && std::str::from_utf8(h.value).is_ok_and(|ct| {
                media_type(ct).eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
    });
    if is_form {
        decode_form_into(body, &mut params)?;
    }
    let method = Method::from_token(method_token);
    let request = Request {
        method,
        // Only a method `Method` does not name is kept as sent (see `Request::method_token`).
        method_token: if method == Method::Other {
            method_token.to_owned()
        } else {
            String::new()
        },
        path,
        raw_path,
        query: query.to_owned(),
        version,
        headers,
        params,
        path_params: Params::new(),
        body: body.to_vec(),
        peer: None,
    };
    Ok(Parsed::Complete {
        request: Box::new(request),
        len,
        keep_alive: !connection_close,
    })
}

/// The authority, path and query of a request target: of an origin-form target
/// (`/path?query`, no authority), or of an absolute-form one (`http://host/path?query`, which
/// RFC 9112 3.2.2 says a server must accept, and proxies send). `None` for anything else,
/// including an authority with userinfo (`http://user@host/`, an error by RFC 9110 4.2.4).
fn origin_form(target: &str) -> Option<(Option<&str>, &str, &str)> {
    let (authority, path_and_query) = if target.starts_with('/') {
        (None, target)
    } else {
        let (scheme, rest) = target.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        (Some(authority), &rest[end..])
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    // An absolute target's empty path is the root (RFC 9112 3.2.1): `http://host?q` is `/?q`.
    Some((authority, if path.is_empty() { "/" } else { path }, query))
}

/// Decodes an `application/x-www-form-urlencoded` string (a query string or a form body):
/// pairs split on `&`, names from values on the first `=`, `+` is a space, `%XX` a byte.
///
/// # Examples
/// ```
/// use house::parse::decode_form;
///
/// let params = decode_form(b"name=ann&message=hello+there%21&flag").unwrap();
/// assert_eq!(params.get("message"), Some("hello there!"));
/// assert_eq!(params.get("flag"), Some(""));
/// assert!(decode_form(b"x=%zz").is_err());
/// assert!(decode_form(b"x=%ff").is_err());
/// ```
pub fn decode_form(input: &[u8]) -> Result<Params, Error> {
    let mut params = Params::new();
    decode_form_into(input, &mut params)?;
    Ok(params)
}

fn decode_form_into(input: &[u8], params: &mut Params) -> Result<(), Error> {
    for pair in input.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        params.push(decode(name, true)?, decode(value, true)?);
    }
    Ok(())
}

/// Percent-decodes `input` strictly: every `%` must start a two-hex-digit escape, and the
/// result must be UTF-8. With `plus_is_space`, `+` decodes to a space (form encoding).
fn decode(input: &[u8], plus_is_space: bool) -> Result<String, Error> {
    let mut at = 0;
    while let Some(offset) = input[at..].iter().position(|&b| b == b'%') {
        let escape = at + offset;
        let valid = input
            .get(escape + 1..escape + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        if !valid {
            return Err(Error::BadEscape);
        }
        at = escape + 3;
    }
    let bytes: Vec<u8> = if plus_is_space && input.contains(&b'+') {
        let spaced: Vec<u8> = input
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_decode(&spaced).collect()
    } else {
        percent_decode(input).collect()
    };
    String::from_utf8(bytes).map_err(|_| Error::InvalidUtf8)
}

/// `Content-Length` must be one or more ASCII digits (no sign, no spaces inside) that fit.
fn parse_content_length(value: &[u8]) -> Result<usize, Error> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidContentLength);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(Error::InvalidContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn complete(buf: &[u8]) -> (Box<Request>, usize, bool) {
        match parse_request(buf, MAX, 16) {
            Ok(Parsed::Complete {
                request,
                len,
                keep_alive,
            }) => (request, len, keep_alive),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn error(buf: &[u8]) -> Error {
        match parse_request(buf, MAX, 16) {
            Err(err) => err,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    macro_rules! req {
        ($($name:ident, $buf:expr, |$req:ident, $len:ident, $keep:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                #[allow(unused_variables)]
                let ($req, $len, $keep) = complete($buf);
                $body
            }
        )*};
    }

    macro_rules! fails {
        ($($name:ident, $buf:expr, $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(error($buf), $err);
            }
        )*};
    }

    req! {
        simple_get, b"GET / HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.method(), req.path(), len, keep), (Method::Get, "/", 18, true));
        }
        query_params_decoded, b"GET /send-message?room=x&name=ann&message=hello+there%21 HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!(req.param("room"), Some("x"));
            assert_eq!(req.param("message"), Some("hello there!"));
        }
        unicode_param, b"GET /a?r=%C3%A9t%C3%A9 HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!(req.param("r"), Some("\u{e9}t\u{e9}"));
        }
        path_decoded_plus_kept, b"GET /a%20b+c HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!(req.path(), "/a b+c");
        }
        form_body_after_query, b"POST /s?a=1 HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: 7\r\n\r\na=2&b=3", |req, len, keep| {
            assert_eq!(req.params().get_all("a").collect::<Vec<_>>(), ["1", "2"]);
            assert_eq!(req.param("b"), Some("3"));
            assert_eq!(req.body(), b"a=2&b=3");
        }
        json_body_not_params, b"POST /s HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}", |req, len, keep| {
            assert!(req.params().is_empty());
            assert!(req.is_json());
        }
        http10_closes, b"GET / HTTP/1.0\r\n\r\n", |req, len, keep| {
            assert!(!keep);
            assert_eq!(req.version(), Version::Http10);
        }
        http10_keep_alive, b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", |req, len, keep| {
            assert!(keep);
        }
        http11_close, b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", |req, len, keep| {
            assert!(!keep);
        }
        pipelined_takes_first, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.path(), len), ("/a", 19));
        }
        same_content_length_twice, b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", |req, len, keep| {
            assert_eq!(req.body(), b"x");
        }
        raw_path_kept_when_encoded, b"GET /a%2Fb/c HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.path(), req.raw_path()), ("/a/b/c", "/a%2Fb/c"));
        }
        raw_path_not_kept_when_plain, b"GET /a/b?x=%20 HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!(req.raw_path, None);
            assert_eq!(req.raw_path(), "/a/b");
        }
        absolute_target_routes_its_path, b"GET http://Example.com:80/a%20b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", |req, len, keep| {
            assert_eq!((req.path(), req.param("x")), ("/a b", Some("1")));
            assert_eq!(req.header("host"), Some("Example.com:80"));
        }
        absolute_target_empty_path_is_root, b"GET HTTPS://h?x=1 HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.path(), req.param("x")), ("/", Some("1")));
        }
        options_asterisk, b"OPTIONS * HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.method(), req.path()), (Method::Options, "*"));
        }
        headers_all_kept_in_order, b"GET / HTTP/1.1\r\nA: 1\r\nEmpty:\r\nB-Long-Name: x y\r\na: 2\r\n\r\n", |req, len, keep| {
            let all: Vec<(&str, &[u8])> = req.headers().collect();
            assert_eq!(all, [("a", &b"1"[..]), ("empty", b""), ("b-long-name", b"x y"), ("a", b"2")]);
            assert_eq!((req.header("A"), req.header("empty")), (Some("1"), Some("")));
            assert_eq!(req.header("missing"), None);
        }
        absolute_target_drops_every_host_header, b"GET http://h/ HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: b\r\n\r\n", |req, len, keep| {
            let all: Vec<(&str, &[u8])> = req.headers().collect();
            assert_eq!(all, [("x", &b"1"[..]), ("host", b"h")]);
        }
        method_token_known_and_other, b"PATCH / HTTP/1.1\r\n\r\n", |req, len, keep| {
            assert_eq!((req.method(), req.method_token()), (Method::Patch, "PATCH"));
            let (other, _, _) = complete(b"BREW / HTTP/1.1\r\n\r\n");
            assert_eq!((other.method(), other.method_token()), (Method::Other, "BREW"));
        }
        headers_lowercased, b"GET / HTTP/1.1\r\nX-Thing: V\r\n\r\n", |req, len, keep| {
            assert_eq!(req.header("x-thing"), Some("V"));
            assert_eq!(req.headers().next().unwrap().0, "x-thing");
        }
    }

    fails! {
        garbage, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", Error::Malformed("invalid token");
        http2, b"GET / HTTP/2.0\r\n\r\n", Error::UnsupportedVersion;
        http09ish, b"GET / HTTP/1.2\r\n\r\n", Error::UnsupportedVersion;
        nul_in_header, b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", Error::Malformed("invalid header value");
        bare_cr_in_header, b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", Error::Malformed("invalid header value");
        cl_and_te, b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Error::AmbiguousLength;
        te_alone, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", Error::TransferEncoding;
        two_lengths, b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", Error::AmbiguousLength;
        negative_length, b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", Error::InvalidContentLength;
        plus_length, b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", Error::InvalidContentLength;
        word_length, b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", Error::InvalidContentLength;
        huge_length, b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", Error::InvalidContentLength;
        declared_too_large, b"POST / HTTP/1.1\r\nContent-Length: 67108864\r\n\r\n", Error::TooLarge;
        absolute_target_other_scheme, b"GET ftp://example.com/ HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        absolute_target_userinfo, b"GET http://u:p@example.com/ HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        absolute_target_no_authority, b"GET http:///x HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        relative_target, b"GET example.com/x HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        asterisk_only_for_options, b"GET * HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        asterisk_not_a_prefix, b"OPTIONS *x HTTP/1.1\r\n\r\n", Error::InvalidTarget;
        bad_escape, b"GET /?a=%zz HTTP/1.1\r\n\r\n", Error::BadEscape;
        truncated_escape, b"GET /?a=%4 HTTP/1.1\r\n\r\n", Error::BadEscape;
        invalid_utf8, b"GET /?a=%ff%fe HTTP/1.1\r\n\r\n", Error::InvalidUtf8;
        invalid_utf8_path, b"GET /%c3 HTTP/1.1\r\n\r\n", Error::InvalidUtf8;
    }

    #[test]
    fn partial_until_complete() {
        let full = b"POST /s HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..full.len() {
            assert!(
                matches!(parse_request(&full[..cut], MAX, 16), Ok(Parsed::Partial)),
                "cut at {cut}"
            );
        }
        assert_eq!(complete(full).1, full.len());
    }

    #[test]
    fn too_many_headers() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..17 {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(error(&buf), Error::TooManyHeaders);
    }

    #[test]
    fn bytes_past_the_limit_never_decide() {
        // Found by the `request_buffer` fuzz target: a bad byte past the limit used to turn the
        // size error into `Malformed`, but only when it arrived in the same read.
        let long_header = [
            b"GET / HTTP/1.1\r\nX: ".as_slice(),
            &[b'a'; MAX],
            b"\r\n\0: x\r\n\r\n",
        ]
        .concat();
        assert_eq!(error(&long_header), Error::HeadTooLarge);
        assert_eq!(error(&long_header[..MAX]), Error::HeadTooLarge);
        let long_line = [
            b"GET /".as_slice(),
            &[b'a'; MAX],
            b" HTTP/1.1\r\n\0: x\r\n\r\n",
        ]
        .concat();
        assert_eq!(error(&long_line), Error::UriTooLong);
        assert_eq!(error(&long_line[..MAX]), Error::UriTooLong);
    }

    #[test]
    fn oversized_heads() {
        let long_line = [b"GET /".as_slice(), &[b'a'; MAX]].concat();
        assert_eq!(error(&long_line), Error::UriTooLong);
        let long_headers = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX]].concat();
        assert_eq!(error(&long_headers), Error::HeadTooLarge);
    }
}
