//! What can go wrong with a request before a handler sees it, and the one place that maps each
//! failure to a status.

use std::fmt;

use crate::response::{Response, Status};

/// A request the server refuses before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The head is not HTTP/1.x syntax (bad token, NUL or bare CR, missing colon, …).
    Malformed(&'static str),
    /// The request line names a version other than HTTP/1.0 or HTTP/1.1.
    UnsupportedVersion,
    /// More headers than the configured maximum.
    TooManyHeaders,
    /// The request line alone is longer than the request size limit.
    UriTooLong,
    /// The header block is longer than the request size limit.
    HeadTooLarge,
    /// Head and declared body exceed the request size limit.
    TooLarge,
    /// The request did not arrive within the request age limit.
    Timeout,
    /// `Content-Length` is not a plain decimal number.
    InvalidContentLength,
    /// Two different `Content-Length`s, or one with `Transfer-Encoding`: a smuggling shape.
    AmbiguousLength,
    /// `Transfer-Encoding` (chunked bodies) is not supported.
    TransferEncoding,
    /// The target is neither a path (`/…`) nor an `http(s)://` URL (nor `*`, for `OPTIONS`).
    InvalidTarget,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A decoded path, name or value is not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(what) => write!(f, "malformed request: {what}"),
            Error::UnsupportedVersion => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
            Error::TooManyHeaders => f.write_str("too many headers"),
            Error::UriTooLong => f.write_str("request line too long"),
            Error::HeadTooLarge => f.write_str("request headers too large"),
            Error::TooLarge => f.write_str("request too large"),
            Error::Timeout => f.write_str("request not received in time"),
            Error::InvalidContentLength => f.write_str("invalid content-length"),
            Error::AmbiguousLength => {
                f.write_str("conflicting content-length or transfer-encoding")
            }
            Error::TransferEncoding => {
                f.write_str("transfer-encoding is not supported; send content-length")
            }
            Error::InvalidTarget => {
                f.write_str("request target must be a path starting with `/` or an `http://` URL")
            }
            Error::BadEscape => f.write_str("invalid percent-escape"),
            Error::InvalidUtf8 => f.write_str("decoded text is not valid UTF-8"),
        }
    }
}

impl std::error::Error for Error {}

impl From<httparse::Error> for Error {
    fn from(err: httparse::Error) -> Error {
        match err {
            httparse::Error::Version => Error::UnsupportedVersion,
            httparse::Error::TooManyHeaders => Error::TooManyHeaders,
            httparse::Error::HeaderName => Error::Malformed("invalid header name"),
            httparse::Error::HeaderValue => Error::Malformed("invalid header value"),
            httparse::Error::NewLine => Error::Malformed("invalid line ending"),
            httparse::Error::Token => Error::Malformed("invalid token"),
            httparse::Error::Status => Error::Malformed("invalid status"),
        }
    }
}

/// The status each failure answers with.
///
/// # Examples
/// ```
/// use house::{status_for, Error};
///
/// assert_eq!(status_for(&Error::TooManyHeaders).code(), 431);
/// assert_eq!(status_for(&Error::TransferEncoding).code(), 501);
/// assert_eq!(status_for(&Error::Timeout).code(), 408);
/// ```
pub fn status_for(err: &Error) -> Status {
    match err {
        Error::Malformed(_)
        | Error::InvalidContentLength
        | Error::AmbiguousLength
        | Error::InvalidTarget
        | Error::BadEscape
        | Error::InvalidUtf8 => Status::BAD_REQUEST,
        Error::UnsupportedVersion => Status::HTTP_VERSION_NOT_SUPPORTED,
        Error::TooManyHeaders | Error::HeadTooLarge => Status::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Error::UriTooLong => Status::URI_TOO_LONG,
        Error::TooLarge => Status::PAYLOAD_TOO_LARGE,
        Error::Timeout => Status::REQUEST_TIMEOUT,
        Error::TransferEncoding => Status::NOT_IMPLEMENTED,
    }
}

impl From<Error> for Response {
    fn from(err: Error) -> Response {
        Response::error(status_for(&err), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status_for(&Error::TooLarge).code(), 413);
        assert_eq!(status_for(&Error::Timeout).code(), 408);
        assert_eq!(status_for(&Error::TooManyHeaders).code(), 431);
        assert_eq!(status_for(&Error::UriTooLong).code(), 414);
        assert_eq!(status_for(&Error::UnsupportedVersion).code(), 505);
        assert_eq!(status_for(&Error::TransferEncoding).code(), 501);
        assert_eq!(status_for(&Error::AmbiguousLength).code(), 400);
    }
}
