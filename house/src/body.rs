//! Request bodies as handler arguments: JSON of a type, text, or raw bytes, and the field rules
//! a JSON body's type can declare.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::param::ParamError;
use crate::request::{media_type, Request};
use crate::response::{IntoResponse, Json, Response, Status};

/// `Content-Type` of JSON bodies.
const JSON_TYPE: &str = "application/json";

/// A type a handler's body argument can have: built from the whole request body.
///
/// With the macros, the argument is marked `#[body]` (one per handler, closing handlers only).
/// The body is already complete and within the request size limit (`413` otherwise) when this
/// runs. House implements it for:
/// - [`Json<T>`] for `T: Deserialize`: `415` unless `Content-Type: application/json`, `400`
///   naming the field that failed (``invalid JSON body at `author.name`: invalid type: integer
///   `5`, expected a string``); then, if `T` implements [`Validate`], its field rules;
/// - `String`: any content type; `400` if the body is not UTF-8;
/// - `Vec<u8>`: the bytes as they came.
///
/// # Examples
/// ```
/// use house::{Body, FromBody, Json, Method, Request};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Author {
///     name: String,
/// }
///
/// #[derive(Deserialize)]
/// struct NewMessage {
///     text: String,
///     author: Author,
/// }
///
/// let request = Request::new(Method::Post, "/messages")
///     .with_header("Content-Type", "application/json")
///     .with_body(r#"{"text": "hi", "author": {"name": 5}}"#);
/// let refusal = Json::<NewMessage>::from_body(&request).err().unwrap();
/// assert_eq!(refusal.status().code(), 400);
/// let Body::Bytes(page) = refusal.body() else { panic!("an error page") };
/// assert_eq!(
///     String::from_utf8_lossy(page),
///     "400 Bad Request: invalid JSON body at `author.name`: invalid type: integer `5`, expected a string\n"
/// );
///
/// let request = request.with_body(r#"{"text": "hi", "author": {"name": "ann"}}"#);
/// let Json(message) = Json::<NewMessage>::from_body(&request).ok().unwrap();
/// assert_eq!((message.text.as_str(), message.author.name.as_str()), ("hi", "ann"));
///
/// let text = Request::new(Method::Post, "/messages").with_body("plain text");
/// assert_eq!(String::from_body(&text).ok().as_deref(), Some("plain text"));
/// assert_eq!(Json::<NewMessage>::from_body(&text).err().unwrap().status().code(), 415);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a request body",
    label = "not readable from a request body",
    note = "a `#[body]` argument is `house::Json<T>` (for `T: Deserialize`), `String`, `Vec<u8>`, or a type that implements `house::FromBody`"
)]
pub trait FromBody: Sized {
    /// The value, or the response that refuses the request (a `400`, a `415`).
    fn from_body(request: &Request) -> Result<Self, Response>;
}

impl<T: DeserializeOwned> FromBody for Json<T> {
    fn from_body(request: &Request) -> Result<Json<T>, Response> {
        expect_type(request, JSON_TYPE)?;
        let mut de = serde_json::Deserializer::from_slice(request.body());
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|err| invalid_json(err.path().to_string(), err.inner()))?;
        // Only whitespace may follow the value.
        de.end().map_err(|err| invalid_json(".".to_owned(), &err))?;
        Ok(Json(value))
    }
}

/// The 400 for a JSON body that failed at `path` (`.` is the whole body).
///
/// A value of the wrong shape is named by its path, and its position would only repeat it; a
/// syntax error is named by its position (the path there may end in `?`, a key not yet read).
fn invalid_json(path: String, err: &serde_json::Error) -> Response {
    let message = err.to_string();
    let detail = if err.is_data() && path != "." && !path.contains('?') {
        let position = format!(" at line {} column {}", err.line(), err.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        format!("invalid JSON body at `{path}`: {message}")
    } else {
        format!("invalid JSON body: {message}")
    };
    Response::error(Status::BAD_REQUEST, detail)
}

impl FromBody for String {
    fn from_body(request: &Request) -> Result<String, Response> {
        String::from_utf8(request.body().to_vec()).map_err(|err| {
            let at = err.utf8_error().valid_up_to();
            Response::error(
                Status::BAD_REQUEST,
                format!("the body is not UTF-8 text (invalid byte at offset {at})"),
            )
        })
    }
}

impl FromBody for Vec<u8> {
    fn from_body(request: &Request) -> Result<Vec<u8>, Response> {
        Ok(request.body().to_vec())
    }
}

/// `415` naming `expected` unless the request's `Content-Type` is it (parameters such as
/// `charset` allowed).
pub(crate) fn expect_type(request: &Request, expected: &str) -> Result<(), Response> {
    let got = request.header("content-type").map(media_type);
    if got.is_some_and(|got| got.eq_ignore_ascii_case(expected)) {
        return Ok(());
    }
    let got = match got {
        Some(got) => format!("`{got}`"),
        None => "none".to_owned(),
    };
    Err(Response::error(
        Status::UNSUPPORTED_MEDIA_TYPE,
        format!("expected a body with `Content-Type: {expected}` (got {got})"),
    ))
}

/// Field rules of a body type, checked after it is deserialized: `400` naming the field.
///
/// `#[derive(house::Validate)]` writes it from `#[param(min = .., max = .., one_of = [..])]` on
/// the fields, with the same rules and messages as handler parameters. A `#[body] Json<T>`
/// argument checks it when `T` implements it, and skips it when `T` does not.
///
/// # Examples
/// By hand, with the rule checks parameters use:
/// ```
/// use house::{BodyError, FromBody, Json, Method, ParamError, Request, Validate};
///
/// #[derive(serde::Deserialize)]
/// struct NewMessage {
///     text: String,
/// }
///
/// impl Validate for NewMessage {
///     fn validate(&self) -> Result<(), BodyError> {
///         let length = self.text.chars().count();
///         if length < 5 {
///             let detail = format!("must be at least 5 characters (got {length})");
///             return Err(BodyError::field("text", ParamError::new(detail)));
///         }
///         Ok(())
///     }
/// }
///
/// let request = Request::new(Method::Post, "/")
///     .with_header("Content-Type", "application/json")
///     .with_body(r#"{"text": "hi"}"#);
/// let Json(message) = Json::<NewMessage>::from_body(&request).ok().unwrap();
/// assert_eq!(
///     message.validate().unwrap_err().to_string(),
///     "body field `text` must be at least 5 characters (got 2)"
/// );
/// ```
pub trait Validate {
    /// `Ok`, or the first field that breaks its rule.
    fn validate(&self) -> Result<(), BodyError>;
}

/// A JSON body is valid when its value is.
impl<T: Validate> Validate for Json<T> {
    fn validate(&self) -> Result<(), BodyError> {
        self.0.validate()
    }
}

/// A body field that breaks its rule; as a response, `400` with
/// ``body field `text` must be at least 5 characters (got 2)``.
///
/// # Examples
/// ```
/// use house::{BodyError, ParamError};
///
/// let error = BodyError::field("name", ParamError::invalid("a short name", "Bartholomew"));
/// assert_eq!(error.to_string(), "body field `name` must be a short name (got `Bartholomew`)");
/// assert_eq!(error.within("author").field_name(), "author.name");
/// assert_eq!(BodyError::field("id", ParamError::missing()).to_string(), "missing body field `id`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    field: String,
    error: ParamError,
}

impl BodyError {
    /// Field `name` broke a rule; `error` says how, as for a parameter.
    pub fn field(name: impl Into<String>, error: ParamError) -> BodyError {
        BodyError {
            field: name.into(),
            error,
        }
    }

    /// The same error for a field of a nested value found at field `outer`: `name` becomes
    /// `outer.name`.
    pub fn within(self, outer: &str) -> BodyError {
        BodyError {
            field: format!("{outer}.{}", self.field),
            error: self.error,
        }
    }

    /// The field's path, `.`-separated.
    pub fn field_name(&self) -> &str {
        &self.field
    }

    /// How the field broke its rule.
    pub fn error(&self) -> &ParamError {
        &self.error
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error.is_missing() {
            write!(f, "missing body field `{}`", self.field)
        } else {
            write!(f, "body field `{}` {}", self.field, self.error)
        }
    }
}

impl std::error::Error for BodyError {}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        Response::error(Status::BAD_REQUEST, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Method;
    use crate::response::Body;

    fn json(content_type: &str, body: &str) -> Request {
        Request::new(Method::Post, "/")
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    fn detail(response: Response) -> String {
        match response.body() {
            Body::Bytes(body) => String::from_utf8_lossy(body).into_owned(),
            other => panic!("not an error page: {other:?}"),
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Point {
        x: i32,
        tags: Vec<String>,
    }

    #[test]
    fn json_body_errors_name_the_path() {
        let ok = Json::<Point>::from_body(&json(
            "application/json; charset=utf-8",
            r#" {"x": 1, "tags": []} "#,
        ));
        assert_eq!(ok.ok().map(|j| j.0.x), Some(1));
        let rows = [
            (
                r#"{"x": 1, "tags": ["a", 2]}"#,
                "invalid JSON body at `tags[1]`: invalid type: integer `2`, expected a string",
            ),
            (
                r#"{"x": "1", "tags": []}"#,
                "invalid JSON body at `x`: invalid type: string \"1\", expected i32",
            ),
            (
                r#"{"tags": []}"#,
                "invalid JSON body: missing field `x` at line 1 column 12",
            ),
            (
                r#"{"x": 1, "tags": [}"#,
                "invalid JSON body: expected value at line 1 column 19",
            ),
            (
                r#"{"x": 1, "tags": []} x"#,
                "invalid JSON body: trailing characters at line 1 column 22",
            ),
            (
                "",
                "invalid JSON body: EOF while parsing a value at line 1 column 0",
            ),
        ];
        for (body, message) in rows {
            let response = Json::<Point>::from_body(&json("application/json", body)).unwrap_err();
            assert_eq!(response.status(), Status::BAD_REQUEST, "{body}");
            assert_eq!(
                detail(response),
                format!("400 Bad Request: {message}\n"),
                "{body}"
            );
        }
    }

    #[test]
    fn json_needs_its_content_type() {
        let response = Json::<Point>::from_body(&json("text/json", "{}")).unwrap_err();
        assert_eq!(response.status(), Status::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            detail(response),
            "415 Unsupported Media Type: expected a body with `Content-Type: application/json` (got `text/json`)\n"
        );
        let untyped = Request::new(Method::Post, "/").with_body("{}");
        assert!(detail(Json::<Point>::from_body(&untyped).unwrap_err()).ends_with("(got none)\n"));
    }

    #[test]
    fn text_and_bytes() {
        let bytes = Request::new(Method::Post, "/").with_body(b"ok\xffno".to_vec());
        assert_eq!(
            Vec::<u8>::from_body(&bytes).ok(),
            Some(b"ok\xffno".to_vec())
        );
        let response = String::from_body(&bytes).unwrap_err();
        assert_eq!(
            detail(response),
            "400 Bad Request: the body is not UTF-8 text (invalid byte at offset 2)\n"
        );
    }
}
