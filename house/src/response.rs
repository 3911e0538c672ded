//! Responses as values: a status, headers and a body, serialized separately so tests can check
//! the exact bytes.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;

use serde::Serialize;

/// The default `Content-Type` of text bodies, as in the original house.
pub(crate) const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of [`Json`] bodies.
pub(crate) const JSON: &str = "application/json";
/// The header every response carries unless it sets its own value of it.
const NOSNIFF: &str = "X-Content-Type-Options";

/// `Content-Type` of plain-text error bodies.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// An HTTP status code that knows its reason phrase.
///
/// Every code RFC 9110 defines has a constant (and `428`, `429`, `431` and `511` from RFC 6585);
/// [`Status::from_code`] makes any other three-digit code, whose status line then has an empty
/// reason phrase, as RFC 9112 allows.
///
/// # Examples
/// ```
/// use house::Status;
///
/// assert_eq!(Status::CREATED.to_string(), "201 Created");
/// assert_eq!(Status::from_code(422), Status::UNPROCESSABLE_CONTENT);
/// assert_eq!(Status::from_code(299).reason(), "");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(u16);

macro_rules! statuses {
    ($($name:ident = $code:literal $reason:literal;)*) => {
        impl Status {
            $(
                #[doc = concat!("`", stringify!($code), " ", $reason, "`")]
                pub const $name: Status = Status($code);
            )*

            /// The reason phrase of a status this crate knows, or `""`.
            pub fn reason(self) -> &'static str {
                match self.0 {
                    $($code => $reason,)*
                    _ => "",
                }
            }
        }
    };
}

statuses! {
    CONTINUE = 100 "Continue";
    SWITCHING_PROTOCOLS = 101 "Switching Protocols";
    OK = 200 "OK";
    CREATED = 201 "Created";
    ACCEPTED = 202 "Accepted";
    NON_AUTHORITATIVE_INFORMATION = 203 "Non-Authoritative Information";
    NO_CONTENT = 204 "No Content";
    RESET_CONTENT = 205 "Reset Content";
    PARTIAL_CONTENT = 206 "Partial Content";
    MULTIPLE_CHOICES = 300 "Multiple Choices";
    MOVED_PERMANENTLY = 301 "Moved Permanently";
    FOUND = 302 "Found";
    SEE_OTHER = 303 "See Other";
    NOT_MODIFIED = 304 "Not Modified";
    USE_PROXY = 305 "Use Proxy";
    TEMPORARY_REDIRECT = 307 "Temporary Redirect";
    PERMANENT_REDIRECT = 308 "Permanent Redirect";
    BAD_REQUEST = 400 "Bad Request";
    UNAUTHORIZED = 401 "Unauthorized";
    PAYMENT_REQUIRED = 402 "Payment Required";
    FORBIDDEN = 403 "Forbidden";
    NOT_FOUND = 404 "Not Found";
    METHOD_NOT_ALLOWED = 405 "Method Not Allowed";
    NOT_ACCEPTABLE = 406 "Not Acceptable";
    PROXY_AUTHENTICATION_REQUIRED = 407 "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408 "Request Timeout";
    CONFLICT = 409 "Conflict";
    GONE = 410 "Gone";
    LENGTH_REQUIRED = 411 "Length Required";
    PRECONDITION_FAILED = 412 "Precondition Failed";
    CONTENT_TOO_LARGE = 413 "Content Too Large";
    URI_TOO_LONG = 414 "URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415 "Unsupported Media Type";
    RANGE_NOT_SATISFIABLE = 416 "Range Not Satisfiable";
    EXPECTATION_FAILED = 417 "Expectation Failed";
    MISDIRECTED_REQUEST = 421 "Misdirected Request";
    UNPROCESSABLE_CONTENT = 422 "Unprocessable Content";
    UPGRADE_REQUIRED = 426 "Upgrade Required";
    PRECONDITION_REQUIRED = 428 "Precondition Required";
    TOO_MANY_REQUESTS = 429 "Too Many Requests";
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431 "Request Header Fields Too Large";
    INTERNAL_SERVER_ERROR = 500 "Internal Server Error";
    NOT_IMPLEMENTED = 501 "Not Implemented";
    BAD_GATEWAY = 502 "Bad Gateway";
    SERVICE_UNAVAILABLE = 503 "Service Unavailable";
    GATEWAY_TIMEOUT = 504 "Gateway Timeout";
    HTTP_VERSION_NOT_SUPPORTED = 505 "HTTP Version Not Supported";
    NETWORK_AUTHENTICATION_REQUIRED = 511 "Network Authentication Required";
}

impl Status {
    /// `413 Content Too Large`, by its name before RFC 9110.
    pub const PAYLOAD_TOO_LARGE: Status = Status::CONTENT_TOO_LARGE;
    /// `422 Unprocessable Content`, by its name before RFC 9110.
    pub const UNPROCESSABLE_ENTITY: Status = Status::UNPROCESSABLE_CONTENT;
}

impl Status {
    /// A status from its code.
    ///
    /// # Panics
    /// If `code` is not in `100..=999`.
    pub const fn from_code(code: u16) -> Status {
        assert!(code >= 100 && code <= 999, "status codes have three digits");
        Status(code)
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        self.0
    }

    /// Whether a response with this status may carry a body (not 1xx, 204 or 304).
    pub fn allows_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// A header name or value that would break the response's framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader {
    name: String,
    /// The name is fine but frames the message, which is the server's to write.
    framing: bool,
}

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.framing {
            return write!(
                f,
                "invalid header `{}`: the server frames the message itself",
                self.name
            );
        }
        write!(
            f,
            "invalid header `{}`: names must be tokens and values must not contain CR, LF or NUL",
            self.name
        )
    }
}

impl std::error::Error for InvalidHeader {}

/// Which redirect [`Response::redirect`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// `303 See Other`: the client fetches the location with `GET` (after a form `POST`).
    SeeOther,
    /// `307 Temporary Redirect`: the client repeats the request, method and body, there.
    Temporary,
    /// `308 Permanent Redirect`: like `307`, and the client may remember it.
    Permanent,
}

/// What a response carries after its head.
#[derive(Debug, Default)]
pub enum Body {
    /// Nothing.
    #[default]
    Empty,
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A file of known length, read into the connection's write queue a chunk at a time as the
    /// client drains it, so a large file never sits whole in memory.
    File {
        /// The open file, positioned at its start.
        file: File,
        /// How many bytes to send.
        len: u64,
    },
}

impl Body {
    /// The body's length in bytes (what `Content-Length` says).
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete HTTP response: status, headers and body.
///
/// `Content-Length` is computed from the body when the response is written; handlers never set
/// it themselves.
///
/// # Examples
/// ```
/// use house::{Response, Status};
///
/// let response = Response::text(Status::NOT_FOUND, "no such room").with_header("X-Room", "lobby");
/// let mut bytes = Vec::new();
/// response.write_head(&mut bytes, false);
/// assert!(bytes.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
/// ```
#[derive(Debug)]
pub struct Response {
    status: Status,
    headers: Vec<(Cow<'static, str>, String)>,
    body: Body,
    /// A job whose result is the real response (see [`Deferred`](crate::Deferred)): this one
    /// only carries the headers added on the way out (a session's cookie).
    deferred: Option<Job>,
}

/// The work of a [`Deferred`](crate::Deferred), type-erased here so that a response can carry
/// it without this module depending on the offload stage that runs it.
pub(crate) struct Job(Box<dyn FnOnce() -> Response + Send>);

impl Job {
    pub(crate) fn new(job: Box<dyn FnOnce() -> Response + Send>) -> Job {
        Job(job)
    }

    /// Runs the job here; `None` if it panicked.
    pub(crate) fn run(self) -> Option<Response> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(self.0)).ok()
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Job")
    }
}

impl Response {
    /// A placeholder for the response `deferred` will make.
    pub(crate) fn from_deferred(deferred: Job) -> Response {
        Response {
            deferred: Some(deferred),
            ..Response::new(Status::OK)
        }
    }

    /// Takes the job this response stands for, if it is a placeholder.
    pub(crate) fn take_deferred(&mut self) -> Option<Job> {
        self.deferred.take()
    }

    /// `self` with the headers the placeholder `outer` gathered (a cookie) appended.
    pub(crate) fn with_headers_of(mut self, outer: Response) -> Response {
        self.headers.extend(outer.headers);
        self
    }

    /// An empty response with `status`.
    pub fn new(status: Status) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            deferred: None,
        }
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: Status, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", HTML)
            .with_body(body.into().into_bytes())
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: Status, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", TEXT)
            .with_body(body.into().into_bytes())
    }

    /// An `application/json` response of `value`.
    ///
    /// A value that cannot be serialized (a map with non-string keys, a failing `Serialize` impl)
    /// becomes a 500.
    pub fn json<T: Serialize + ?Sized>(status: Status, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(status)
                .with_header("Content-Type", JSON)
                .with_body(body),
            Err(_) => Response::error(
                Status::INTERNAL_SERVER_ERROR,
                "the response could not be serialized",
            ),
        }
    }

    /// `201 Created` with a `Location` naming what was created; add a body with
    /// [`with_json`](Self::with_json) or [`with_body`](Self::with_body).
    ///
    /// # Panics
    /// Like [`with_header`](Self::with_header), if `location` contains CR, LF or NUL (in a
    /// handler: a 500).
    ///
    /// # Examples
    /// ```
    /// use house::{Response, Status};
    ///
    /// let response = Response::created("/api/rooms/lobby/messages/7").with_json(&7);
    /// assert_eq!(response.status(), Status::CREATED);
    /// assert_eq!(response.header("location"), Some("/api/rooms/lobby/messages/7"));
    /// assert_eq!(response.header("content-type"), Some("application/json"));
    /// ```
    pub fn created(location: impl Into<String>) -> Response {
        Response::new(Status::CREATED).with_header("Location", location)
    }

    /// A redirect to `location`: `303 See Other` (go there with `GET`), `307 Temporary
    /// Redirect` or `308 Permanent Redirect` (repeat the request there, method and body kept).
    ///
    /// # Panics
    /// Like [`with_header`](Self::with_header), if `location` contains CR, LF or NUL.
    ///
    /// # Examples
    /// ```
    /// use house::{Redirect, Response, Status};
    ///
    /// let response = Response::redirect(Redirect::SeeOther, "/login");
    /// assert_eq!(response.status(), Status::SEE_OTHER);
    /// assert_eq!(response.header("location"), Some("/login"));
    /// ```
    pub fn redirect(kind: Redirect, location: impl Into<String>) -> Response {
        let status = match kind {
            Redirect::SeeOther => Status::SEE_OTHER,
            Redirect::Temporary => Status::TEMPORARY_REDIRECT,
            Redirect::Permanent => Status::PERMANENT_REDIRECT,
        };
        Response::new(status).with_header("Location", location)
    }

    /// A short plain-text error page a person can read: `"400 Bad Request: {detail}\n"`.
    pub fn error(status: Status, detail: impl fmt::Display) -> Response {
        let detail = detail.to_string();
        let body = if detail.is_empty() {
            format!("{status}\n")
        } else {
            format!("{status}: {detail}\n")
        };
        Response::text(status, body)
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Replaces the body with `value` as JSON and sets `Content-Type: application/json`; a
    /// value that cannot be serialized makes the response a 500, as [`Response::json`] does.
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => self.with_header("Content-Type", JSON).with_body(body),
            Err(_) => Response::error(
                Status::INTERNAL_SERVER_ERROR,
                "the response could not be serialized",
            ),
        }
    }

    /// Replaces the body with `len` bytes of `file`, streamed as the client reads.
    pub fn with_file(mut self, file: File, len: u64) -> Response {
        self.body = Body::File { file, len };
        self
    }

    /// Adds a header, replacing an earlier one with the same name (case-insensitively).
    ///
    /// # Panics
    /// If the name is not an HTTP token or the value contains CR, LF or NUL (which would let a
    /// value split the response). In a handler the panic becomes a 500; use
    /// [`try_with_header`](Self::try_with_header) to handle it yourself.
    pub fn with_header(
        self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Response {
        match self.try_with_header(name, value) {
            Ok(response) => response,
            Err(err) => panic!("{err}"),
        }
    }

    /// Adds a header like [`with_header`](Self::with_header), or refuses it.
    pub fn try_with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<Response, InvalidHeader> {
        let name = name.into();
        let value = value.into();
        check_header(&name, &value)?;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
        Ok(self)
    }

    /// Adds a header after the others, keeping any of the same name (a handler's own
    /// `Set-Cookie` beside the session's). The caller vouches for the name and value.
    pub(crate) fn append_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((Cow::Borrowed(name), value));
        self
    }

    /// Adds headers already checked (see [`check_header`]), each replacing any of its name.
    pub(crate) fn with_checked_headers(
        mut self,
        headers: Vec<(Cow<'static, str>, String)>,
    ) -> Response {
        for (name, value) in headers {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            self.headers.push((name, value));
        }
        self
    }

    /// Sets the `Content-Type` unless the response already has one.
    pub fn with_default_content_type(self, content_type: &'static str) -> Response {
        if self.header("content-type").is_some() {
            self
        } else {
            self.with_header("Content-Type", content_type)
        }
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in order (`Content-Length` and `Connection` are written with the head).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Splits the response so the connection can queue the head and then the body.
    pub(crate) fn into_body(self) -> Body {
        self.body
    }

    /// Writes the status line and headers, including `Content-Length` and, when `close` is set,
    /// `Connection: close`.
    pub fn write_head(&self, out: &mut Vec<u8>, close: bool) {
        let length = self.status.allows_body().then(|| self.body.len());
        self.write_head_framed(out, length, close);
    }

    /// Writes the head of a response whose body has no length and runs until the connection
    /// closes (an event stream): no `Content-Length`, and `Connection: close`.
    pub(crate) fn write_open_head(&self, out: &mut Vec<u8>) {
        self.write_head_framed(out, None, true);
    }

    fn write_head_framed(&self, out: &mut Vec<u8>, length: Option<u64>, close: bool) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            self.status.0,
            self.status.reason()
        );
        let mut nosniff = true;
        for (name, value) in &self.headers {
            nosniff &= !name.eq_ignore_ascii_case(NOSNIFF);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if nosniff {
            // Every body is what its `Content-Type` says: a browser must not guess that a
            // plain-text error echoing a parameter is HTML or script.
            out.extend_from_slice(b"X-Content-Type-Options: nosniff\r\n");
        }
        if let Some(length) = length {
            let _ = write!(out, "Content-Length: {length}\r\n");
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Writes the whole response, head and in-memory body (a file body is not read here).
    pub fn write_to(&self, out: &mut Vec<u8>, close: bool) {
        self.write_head(out, close);
        if let Body::Bytes(bytes) = &self.body {
            out.extend_from_slice(bytes);
        }
    }
}

/// Refuses a header name that is not an HTTP token, or a value with CR, LF or NUL (either
/// would let it split the head).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), InvalidHeader> {
    let token = !name.is_empty() && name.bytes().all(is_token_byte);
    if !token || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(InvalidHeader {
            name: name.to_owned(),
            framing: false,
        });
    }
    Ok(())
}

/// Refuses a header that frames the message (`Content-Length`, `Transfer-Encoding`,
/// `Connection`): on a stream, whose body runs until the close, one would cut it short.
pub(crate) fn check_unframed(name: &str) -> Result<(), InvalidHeader> {
    let framing = ["content-length", "transfer-encoding", "connection"];
    if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
        return Err(InvalidHeader {
            name: name.to_owned(),
            framing: true,
        });
    }
    Ok(())
}

/// RFC 9110 `tchar`: a byte of a header name or a cookie name.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Anything a closing handler may return.
///
/// Strings are HTML (`text/html; charset=utf-8`), like the original house; [`Json`] is
/// `application/json`; `Result<T, E>` answers with whichever side it holds.
///
/// # Examples
/// An error type of the app's own, answered as a 404:
/// ```
/// use house::{closing_handler, IntoResponse, Response, Status};
///
/// /// A room that does not exist.
/// struct NoSuchRoom(String);
///
/// impl IntoResponse for NoSuchRoom {
///     fn into_response(self) -> Response {
///         Response::error(Status::NOT_FOUND, format!("no room `{}`", self.0))
///     }
/// }
///
/// #[closing_handler]
/// fn room(#[param(max = 16)] name: String) -> Result<String, NoSuchRoom> {
///     if name == "lobby" { Ok(format!("welcome to {name}")) } else { Err(NoSuchRoom(name)) }
/// }
///
/// assert_eq!(room("attic".to_owned()).into_response().status().code(), 404);
/// let welcome = room("lobby".to_owned()).into_response();
/// assert_eq!(welcome.header("content-type"), Some("text/html; charset=utf-8"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a closing handler",
    label = "not a response",
    note = "return a `&str`, `String`, `house::Json<T>`, `house::Response`, `house::Status`, or a `Result` of those; or implement `house::IntoResponse`"
)]
pub trait IntoResponse {
    /// Turns `self` into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Status {
    /// The status with its standard text page.
    fn into_response(self) -> Response {
        Response::error(self, "")
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Response {
        Response::html(Status::OK, self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::html(Status::OK, self)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Status::NO_CONTENT)
    }
}

impl<T: IntoResponse> IntoResponse for (Status, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        response.status = self.0;
        response
    }
}

/// `(Status::CREATED, [("Location", "/x/1")], body)`: a status, headers and a body.
impl<K, V, T, const N: usize> IntoResponse for (Status, [(K, V); N], T)
where
    K: Into<Cow<'static, str>>,
    V: Into<String>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        let (status, headers, body) = self;
        (status, (headers, body)).into_response()
    }
}

/// `([("Cache-Control", "no-store")], body)`: headers added to a body's response. A header that
/// would split the response (see [`Response::try_with_header`]) makes it a 500.
impl<K, V, T, const N: usize> IntoResponse for ([(K, V); N], T)
where
    K: Into<Cow<'static, str>>,
    V: Into<String>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        let (headers, body) = self;
        let mut response = body.into_response();
        for (name, value) in headers {
            response = match response.try_with_header(name, value) {
                Ok(response) => response,
                Err(err) => {
                    log::error!("a handler's response is refused: {err}");
                    return Response::error(Status::INTERNAL_SERVER_ERROR, "the handler failed");
                }
            };
        }
        response
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(err) => err.into_response(),
        }
    }
}

/// A JSON value: as a return value it is serialized as an `application/json` response; as a
/// `#[body]` argument of a handler it is the request body, deserialized (see the macros).
///
/// # Examples
/// ```
/// use house::{closing_handler, IntoResponse, Json};
///
/// #[derive(serde::Serialize)]
/// struct Room {
///     name: &'static str,
///     online: usize,
/// }
///
/// #[closing_handler(methods = [GET])]
/// fn lobby() -> Json<Room> {
///     Json(Room { name: "lobby", online: 3 })
/// }
///
/// let response = lobby().into_response();
/// assert_eq!(response.header("content-type"), Some("application/json"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(Status::OK, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(response: &Response, close: bool) -> String {
        let mut out = Vec::new();
        response.write_to(&mut out, close);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn html_by_default_with_byte_length() {
        let response = "é".into_response();
        assert_eq!(
            bytes(&response, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 2\r\n\r\né"
        );
    }

    #[test]
    fn close_adds_connection_header() {
        let response = Response::new(Status::NO_CONTENT);
        assert_eq!(
            bytes(&response, true),
            "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn json_response() {
        let response = Json(serde_json::json!({"a": 1})).into_response();
        assert_eq!(
            bytes(&response, false),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[test]
    fn error_page() {
        let response = Response::error(Status::BAD_REQUEST, "missing parameter `room`");
        assert_eq!(response.status(), Status::BAD_REQUEST);
        assert!(
            bytes(&response, true).ends_with("\r\n\r\n400 Bad Request: missing parameter `room`\n")
        );
    }

    #[test]
    fn nosniff_unless_the_response_sets_its_own() {
        let own = Response::new(Status::OK).with_header("x-content-type-options", "other");
        assert_eq!(
            bytes(&own, false),
            "HTTP/1.1 200 OK\r\nx-content-type-options: other\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn header_splitting_is_refused() {
        for (name, value) in [
            ("X-A", "a\r\nSet-Cookie: x"),
            ("X-A", "a\nb"),
            ("X-A", "a\rb"),
            ("X A", "v"),
            ("", "v"),
            ("X-A\r\n", "v"),
        ] {
            assert!(
                Response::new(Status::OK)
                    .try_with_header(name, value)
                    .is_err(),
                "{name:?}: {value:?}"
            );
        }
    }

    #[test]
    fn with_header_replaces_case_insensitively() {
        let response = Response::new(Status::OK)
            .with_header("content-type", "a")
            .with_header("Content-Type", "b");
        assert_eq!(
            bytes(&response, false),
            "HTTP/1.1 200 OK\r\nContent-Type: b\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn created_redirects_and_header_tuples() {
        assert_eq!(
            bytes(&Response::created("/m/1"), false),
            "HTTP/1.1 201 Created\r\nLocation: /m/1\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n"
        );
        for (kind, line) in [
            (Redirect::SeeOther, "303 See Other"),
            (Redirect::Temporary, "307 Temporary Redirect"),
            (Redirect::Permanent, "308 Permanent Redirect"),
        ] {
            let head = bytes(&Response::redirect(kind, "/to"), false);
            assert!(head.starts_with(&format!("HTTP/1.1 {line}\r\nLocation: /to\r\n")));
        }
        let response = (Status::CREATED, [("Location", "/m/2")], "made").into_response();
        assert_eq!(response.status(), Status::CREATED);
        assert_eq!(response.header("location"), Some("/m/2"));
        let split = ([("X-A", "a\r\nSet-Cookie: x")], "body").into_response();
        assert_eq!(split.status(), Status::INTERNAL_SERVER_ERROR);
        assert_eq!(split.header("x-a"), None);
    }

    #[test]
    fn every_status_constant_has_its_reason() {
        for status in [
            Status::CREATED,
            Status::GONE,
            Status::BAD_GATEWAY,
            Status::NETWORK_AUTHENTICATION_REQUIRED,
        ] {
            assert!(!status.reason().is_empty(), "{status:?}");
        }
        assert_eq!(
            Status::PAYLOAD_TOO_LARGE.to_string(),
            "413 Content Too Large"
        );
    }

    #[test]
    fn result_and_status_tuple() {
        let ok: Result<&str, Status> = Ok("fine");
        assert_eq!(ok.into_response().status(), Status::OK);
        let err: Result<&str, Status> = Err(Status::SERVICE_UNAVAILABLE);
        assert_eq!(err.into_response().status(), Status::SERVICE_UNAVAILABLE);
        assert_eq!(
            (Status::CONFLICT, "x").into_response().status(),
            Status::CONFLICT
        );
    }
}
