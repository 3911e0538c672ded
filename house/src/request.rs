//! A parsed request as handlers see it: method, path, headers, parameters and body.

use std::fmt;
use std::net::SocketAddr;
use std::ops::BitOr;

use serde::de::DeserializeOwned;

use crate::response::{IntoResponse, Response, Status};

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: answered like `GET` without the body.
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other token (`TRACE`, `CONNECT`, `BREW`, …); never routed.
    Other,
}

impl Method {
    /// The method named by `token` (case-sensitive, as HTTP methods are).
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Method::Get => 1,
            Method::Head => 2,
            Method::Post => 4,
            Method::Put => 8,
            Method::Delete => 16,
            Method::Patch => 32,
            Method::Options => 64,
            Method::Other => 0,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of methods a route accepts; others answer 405.
///
/// # Examples
/// ```
/// use house::{Method, Methods};
///
/// let methods = Methods::GET | Methods::POST;
/// assert!(methods.contains(Method::Post));
/// assert!(!methods.contains(Method::Delete));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    /// `GET` only.
    pub const GET: Methods = Methods(1);
    /// `HEAD` only.
    pub const HEAD: Methods = Methods(2);
    /// `POST` only.
    pub const POST: Methods = Methods(4);
    /// `PUT` only.
    pub const PUT: Methods = Methods(8);
    /// `DELETE` only.
    pub const DELETE: Methods = Methods(16);
    /// `PATCH` only.
    pub const PATCH: Methods = Methods(32);
    /// `OPTIONS` only.
    pub const OPTIONS: Methods = Methods(64);
    /// The default for handlers: `GET`, `HEAD` and `POST`.
    pub const DEFAULT: Methods = Methods(1 | 2 | 4);

    /// No method at all (the start of a union).
    pub(crate) const NONE: Methods = Methods(0);

    /// Whether `method` is in the set.
    pub fn contains(self, method: Method) -> bool {
        self.0 & method.bit() != 0
    }

    /// Whether the two sets share a method.
    pub(crate) fn overlaps(self, other: Methods) -> bool {
        self.0 & other.0 != 0
    }

    /// The set's methods, comma-separated, as an `Allow` header lists them.
    pub fn allow_header(self) -> String {
        let all = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Patch,
            Method::Options,
        ];
        all.iter()
            .filter(|m| self.contains(**m))
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl BitOr for Methods {
    type Output = Methods;
    fn bitor(self, rhs: Methods) -> Methods {
        Methods(self.0 | rhs.0)
    }
}

impl Default for Methods {
    fn default() -> Methods {
        Methods::DEFAULT
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after a response unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1: keep-alive unless the client sends `Connection: close`.
    Http11,
}

/// Request parameters: decoded `(name, value)` pairs in the order they arrived, the query
/// string's first and then the form body's. Repeated names are all kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// An empty set.
    pub fn new() -> Params {
        Params::default()
    }

    /// Appends a pair.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((name.into(), value.into()));
    }

    /// The first value of `name`: on a clash between the query string and a form body, the
    /// query string wins.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// A request's headers in one buffer, each as `name length (u32 LE) · value length (u32 LE) ·
/// lower-cased name · value`: one allocation per request whatever the header count, where a
/// `Vec<(String, Vec<u8>)>` took two per header and one more for the list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Headers {
    bytes: Vec<u8>,
}

/// The length prefixes before each header's name and value.
const HEADER_PREFIX: usize = 8;

impl Headers {
    /// Room for headers whose names and values total `text` bytes, `count` of them.
    pub(crate) fn with_capacity(count: usize, text: usize) -> Headers {
        Headers {
            bytes: Vec::with_capacity(count * HEADER_PREFIX + text),
        }
    }

    /// Appends a header; the name is stored lower-cased.
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        // A head is bounded by the request size limit, far below 4 GiB.
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        self.bytes.extend_from_slice(&len(name.len()));
        self.bytes.extend_from_slice(&len(value.len()));
        let at = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes[at..].make_ascii_lowercase();
        self.bytes.extend_from_slice(value);
    }

    /// Every `(name, value)`, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            let (prefix, tail) = rest.split_at_checked(HEADER_PREFIX)?;
            let len = |b: &[u8]| {
                b.try_into()
                    .map_or(0, |b: [u8; 4]| u32::from_le_bytes(b) as usize)
            };
            let (name_len, value_len) = (len(&prefix[..4]), len(&prefix[4..]));
            let (name, tail) = tail.split_at_checked(name_len)?;
            let (value, tail) = tail.split_at_checked(value_len)?;
            rest = tail;
            // Names come from `&str`s, and a whole ASCII-lower-cased `&str` stays UTF-8.
            Some((std::str::from_utf8(name).unwrap_or_default(), value))
        })
    }
}

/// A request as handlers see it.
///
/// # Examples
/// ```
/// use house::{Method, Request};
///
/// // Built by hand, as for a handler's unit test; the server builds them from the socket.
/// let request = Request::new(Method::Post, "/send-message")
///     .with_param("room", "lobby")
///     .with_header("X-Request-Id", "7");
/// assert_eq!((request.method(), request.path()), (Method::Post, "/send-message"));
/// assert_eq!(request.param("room"), Some("lobby"));
/// assert_eq!(request.header("x-request-id"), Some("7")); // names are case-insensitive
/// assert_eq!(request.param("name"), None);
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    /// The method as sent, kept only for a method [`Method`] does not name (empty otherwise,
    /// so the common request allocates nothing for it).
    pub(crate) method_token: String,
    pub(crate) path: String,
    /// The path as sent, still percent-encoded; `None` when it equals `path` (no `%` in it),
    /// so the common case allocates nothing more. The router splits this one into segments.
    pub(crate) raw_path: Option<String>,
    pub(crate) query: String,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) params: Params,
    /// The path's `{name}` and `{*rest}` parameters, filled by the router.
    pub(crate) path_params: Params,
    pub(crate) body: Vec<u8>,
    pub(crate) peer: Option<SocketAddr>,
}

impl Request {
    /// A request built by hand, for tests of handlers without a socket.
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            method_token: String::new(),
            path: path.into(),
            raw_path: None,
            query: String::new(),
            version: Version::Http11,
            headers: Headers::default(),
            params: Params::new(),
            path_params: Params::new(),
            body: Vec::new(),
            peer: None,
        }
    }

    /// Adds a parameter (for requests built by hand).
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.params.push(name, value);
        self
    }

    /// Adds a path parameter (for requests built by hand; the router fills them from the
    /// route's template, see [`Route`](crate::Route)).
    pub fn with_path_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.path_params.push(name, value);
        self
    }

    /// Adds a header (for requests built by hand).
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push(name, &value.into());
        self
    }

    /// Replaces the body (for requests built by hand).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method exactly as the client sent it.
    pub fn method_token(&self) -> &str {
        if self.method_token.is_empty() {
            self.method.as_str()
        } else {
            &self.method_token
        }
    }

    /// The percent-decoded path, without the query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path as the client sent it, still percent-encoded (the router matches on this,
    /// a segment at a time, so an encoded `/` never splits a segment).
    pub(crate) fn raw_path(&self) -> &str {
        self.raw_path.as_deref().unwrap_or(&self.path)
    }

    /// The value of path parameter `name` (`{name}` or `{*name}` in the route's template),
    /// percent-decoded.
    ///
    /// # Examples
    /// ```
    /// use house::{Method, Request};
    ///
    /// let request = Request::new(Method::Get, "/rooms/lobby").with_path_param("room", "lobby");
    /// assert_eq!(request.path_param("room"), Some("lobby"));
    /// assert_eq!(request.path_param("other"), None);
    /// ```
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.get(name)
    }

    /// All path parameters, in template order.
    pub fn path_params(&self) -> &Params {
        &self.path_params
    }

    /// The raw query string (without `?`), still encoded.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The first value of header `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of header `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All headers, names lower-cased, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter()
    }

    /// The decoded parameters from the query string and form body.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The first value of parameter `name` (see [`Params::get`]).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether the body is declared as JSON (`application/json`, any parameters such as
    /// `charset` allowed).
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| media_type(ct).eq_ignore_ascii_case("application/json"))
    }

    /// The body deserialized from JSON, if the request declared `Content-Type: application/json`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonBodyError> {
        if !self.is_json() {
            return Err(JsonBodyError::NotJson);
        }
        serde_json::from_slice(&self.body).map_err(JsonBodyError::Invalid)
    }

    /// The client's address, when the request came over a socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// Why [`Request::json`] failed. As a response it is a 415 or a 400.
#[derive(Debug)]
pub enum JsonBodyError {
    /// The request's `Content-Type` is not `application/json`.
    NotJson,
    /// The body is not valid JSON of the expected shape.
    Invalid(serde_json::Error),
}

impl fmt::Display for JsonBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonBodyError::NotJson => {
                f.write_str("expected a body with `Content-Type: application/json`")
            }
            JsonBodyError::Invalid(err) => write!(f, "invalid JSON body: {err}"),
        }
    }
}

impl std::error::Error for JsonBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonBodyError::NotJson => None,
            JsonBodyError::Invalid(err) => Some(err),
        }
    }
}

impl IntoResponse for JsonBodyError {
    fn into_response(self) -> Response {
        let status = match self {
            JsonBodyError::NotJson => Status::UNSUPPORTED_MEDIA_TYPE,
            JsonBodyError::Invalid(_) => Status::BAD_REQUEST,
        };
        Response::error(status, self)
    }
}

/// `"text/html; charset=utf-8"` → `"text/html"`.
pub(crate) fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_order_and_first_wins() {
        let mut params = Params::new();
        params.push("a", "1");
        params.push("b", "2");
        params.push("a", "3");
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(params.get("c"), None);
    }

    #[test]
    fn json_body_with_charset() {
        let request = Request::new(Method::Post, "/")
            .with_header("Content-Type", "application/json; charset=utf-8")
            .with_body(r#"{"x": 5}"#);
        let value: serde_json::Value = request.json().unwrap();
        assert_eq!(value["x"], 5);
        let plain = Request::new(Method::Post, "/").with_body("{}");
        assert!(matches!(
            plain.json::<serde_json::Value>(),
            Err(JsonBodyError::NotJson)
        ));
    }

    #[test]
    fn allow_header_lists_methods() {
        assert_eq!(Methods::DEFAULT.allow_header(), "GET, HEAD, POST");
    }
}
