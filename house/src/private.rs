//! What the macros' generated code calls, re-exported as `house::__private`. Not public API:
//! it changes without notice.

use std::fmt;

use crate::body::{expect_type, FromBody, Validate};
use crate::param::{plural, Bounded, ParamError};
use crate::request::Request;
use crate::response::{IntoResponse, Response, Status, HTML};
use crate::route::{IntoSubscribe, Route, Subscribe};
use crate::state::States;

/// Implemented by the type-namespace companion the macros emit next to a handler fn.
pub trait HandlerRoute {
    /// `(template, methods)` for `routes!`'s compile-time clash check: the path template
    /// with parameter names removed (`/rooms/{}/files/{*}`) and one bit per method (`GET`,
    /// `HEAD`, `POST`, `PUT`, `DELETE`, `PATCH`, `OPTIONS`). A catcher's is its status code
    /// with no method bits.
    const SHAPE: (&'static str, u8);

    /// The handler's route, with its path, methods and name.
    fn route() -> Route;
}

/// A `&T` state argument: the server's value of type `T`. `Server::run` already refused to
/// start without it, so the 500 is for hand-built contexts that forgot it, never a panic.
pub fn state<T: 'static>(states: &States) -> Result<&T, Response> {
    states.get::<T>().ok_or_else(|| {
        let name = std::any::type_name::<T>();
        log::error!("a handler needs state `{name}`, which the server was not given");
        Response::error(
            Status::INTERNAL_SERVER_ERROR,
            "the server is missing state this handler needs",
        )
    })
}

/// A `#[body]` argument: the value, or the `400`/`415` that refuses the request.
pub fn body<T: FromBody>(request: &Request) -> Result<T, Response> {
    T::from_body(request)
}

/// A handler that reads parameters and no `#[body]`: a non-empty body must be a form, since
/// that is the only body its parameters come from (a JSON or multipart body would otherwise
/// answer a misleading "missing parameter").
pub fn expect_form(request: &Request) -> Result<(), Response> {
    if request.body().is_empty() {
        return Ok(());
    }
    expect_type(request, "application/x-www-form-urlencoded")
}

/// Autoref specialisation for [`validate_body!`]: a body value, borrowed.
#[derive(Debug)]
pub struct Wrap<'a, T>(pub &'a T);

/// Chosen by method lookup when `T: Validate` (the receiver `&Wrap` matches without autoref).
pub trait ValidateBody {
    /// `T`'s field rules, as a `400` naming the field.
    fn validate_body(&self) -> Result<(), Response>;
}

impl<T: Validate> ValidateBody for Wrap<'_, T> {
    fn validate_body(&self) -> Result<(), Response> {
        self.0.validate().map_err(IntoResponse::into_response)
    }
}

/// The fallback for types without rules (reached only by autoref): nothing to check.
pub trait SkipValidate {
    /// `Ok`.
    fn validate_body(&self) -> Result<(), Response>;
}

impl<T> SkipValidate for &Wrap<'_, T> {
    fn validate_body(&self) -> Result<(), Response> {
        Ok(())
    }
}

/// `validate_body!(&value)`: `value`'s [`Validate`] rules if its type has them, else `Ok(())`;
/// a `Result<(), Response>`. A macro because the choice is made by method lookup on the
/// concrete type at the call site, which a generic fn would not see.
#[doc(hidden)]
#[macro_export]
macro_rules! __house_validate_body {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{SkipValidate as _, ValidateBody as _};
        (&$crate::__private::Wrap($value)).validate_body()
    }};
}

pub use crate::__house_validate_body as validate_body;

/// How long a clash message may be; longer names are cut (the message stays readable).
const CLASH_MESSAGE: usize = 512;

/// `routes![..]`'s compile-time check: panics (a compile error on the `routes!` call) when two
/// handlers' templates can never be told apart, that is the same shape with overlapping
/// methods, or when two catchers answer the same status. `routes` pairs each handler's name
/// as written with its [`HandlerRoute::SHAPE`].
pub const fn check_clashes(routes: &[(&str, (&str, u8))]) {
    let mut i = 0;
    while i < routes.len() {
        let mut j = i + 1;
        while j < routes.len() {
            let (first, (shape, methods)) = routes[i];
            let (second, (other, other_methods)) = routes[j];
            let catchers = methods == 0 && other_methods == 0;
            if same(shape.as_bytes(), other.as_bytes())
                && (catchers || methods & other_methods != 0)
            {
                let mut message = Message::new();
                if catchers {
                    message.push("`routes![..]`: `");
                    message.push(first);
                    message.push("` and `");
                    message.push(second);
                    message.push("` are both catchers for status ");
                    message.push(shape);
                    message.push("; keep one");
                } else {
                    message.push("`routes![..]`: `");
                    message.push(first);
                    message.push("` and `");
                    message.push(second);
                    message.push("` can never be told apart: both match `");
                    message.push(shape);
                    message.push("` (parameter names do not count) with overlapping methods; change one's path or give them disjoint `methods = [..]`");
                }
                panic!("{}", message.as_str());
            }
            j += 1;
        }
        i += 1;
    }
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A message built in a `const fn`, where there is no `format!`.
struct Message {
    bytes: [u8; CLASH_MESSAGE],
    len: usize,
}

impl Message {
    const fn new() -> Message {
        Message {
            bytes: [0; CLASH_MESSAGE],
            len: 0,
        }
    }

    /// Appends `text`, whole characters only, as far as it fits.
    const fn push(&mut self, text: &str) {
        let text = text.as_bytes();
        let mut i = 0;
        while i < text.len() && self.len < CLASH_MESSAGE {
            self.bytes[self.len] = text[i];
            self.len += 1;
            i += 1;
        }
    }

    const fn as_str(&self) -> &str {
        let (head, _) = self.bytes.split_at(self.len);
        match std::str::from_utf8(head) {
            Ok(text) => text,
            // Cut inside a character: the part that is valid.
            Err(error) => match std::str::from_utf8(head.split_at(error.valid_up_to()).0) {
                Ok(text) => text,
                Err(_) => "`routes![..]`: two routes can never be told apart",
            },
        }
    }
}

/// The 400 answered for a refused parameter.
pub fn reject(name: &str, error: ParamError) -> Response {
    Response::error(Status::BAD_REQUEST, error.message(name))
}

/// `min = 5`: `"abcd"` fails with "must be at least 5 characters (got 4)".
pub fn check_min<T: Bounded>(value: &T, min: T::Bound) -> Result<(), ParamError> {
    let got = value.measure();
    if got < min {
        return Err(ParamError::new(format!(
            "must be at least {} (got {got})",
            T::describe(&min)
        )));
    }
    Ok(())
}

/// `max = 16`: 17 × `é` fails with "must be at most 16 characters (got 17)".
pub fn check_max<T: Bounded>(value: &T, max: T::Bound) -> Result<(), ParamError> {
    let got = value.measure();
    if got > max {
        return Err(ParamError::new(format!(
            "must be at most {} (got {got})",
            T::describe(&max)
        )));
    }
    Ok(())
}

/// `min_count = 2`: `?tag=a` fails with "must be given at least 2 times (got 1)".
pub fn check_min_count<T>(values: &[T], min: usize) -> Result<(), ParamError> {
    if values.len() < min {
        return Err(ParamError::new(format!(
            "must be given at least {} (got {})",
            plural(min, "time", "times"),
            values.len()
        )));
    }
    Ok(())
}

/// `max_count = 3`: four values fail with "must be given at most 3 times (got 4)".
pub fn check_max_count<T>(values: &[T], max: usize) -> Result<(), ParamError> {
    if values.len() > max {
        return Err(ParamError::new(format!(
            "must be given at most {} (got {})",
            plural(max, "time", "times"),
            values.len()
        )));
    }
    Ok(())
}

/// `one_of = ["red", "green"]`: `pink` fails with "must be one of `red`, `green` (got `pink`)".
pub fn check_one_of<T, L>(value: &T, allowed: &[L]) -> Result<(), ParamError>
where
    T: PartialEq<L> + fmt::Display,
    L: fmt::Display,
{
    if allowed.iter().any(|a| value == a) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    Err(ParamError::invalid(
        format!("one of {}", list.join(", ")),
        &value.to_string(),
    ))
}

/// A closing handler's return value as a response; the bound is spanned at the user's
/// return type.
pub fn respond<R: IntoResponse>(value: R) -> Response {
    value.into_response()
}

/// A stream handler's return value as a subscription or a refusal.
pub fn subscribe<R: IntoSubscribe>(value: R) -> Result<Subscribe, Response> {
    value.into_subscribe()
}

/// `content_type = "…"`: replaces the HTML type strings get by default; a response that
/// chose its own type (JSON, an error page) keeps it.
pub fn with_content_type(response: Response, content_type: &'static str) -> Response {
    if response.header("content-type") == Some(HTML) {
        response.with_header("Content-Type", content_type)
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::BodyError;
    use crate::request::Method;
    use crate::response::Json;

    struct Checked(u8);

    impl Validate for Checked {
        fn validate(&self) -> Result<(), BodyError> {
            check_max(&self.0, 3).map_err(|err| BodyError::field("n", err))
        }
    }

    struct Unchecked(#[allow(dead_code)] u8);

    #[test]
    fn validate_body_runs_rules_only_where_there_are_some() {
        assert!(validate_body!(&Checked(3)).is_ok());
        let refusal = validate_body!(&Checked(4)).unwrap_err();
        assert_eq!(refusal.status(), Status::BAD_REQUEST);
        assert!(validate_body!(&Json(Checked(4))).is_err());
        assert!(validate_body!(&Unchecked(4)).is_ok());
        assert!(validate_body!(&Json(Unchecked(4))).is_ok());
    }

    #[test]
    fn expect_form_takes_forms_and_empty_bodies() {
        let form = |ct: &str| {
            Request::new(Method::Post, "/")
                .with_header("Content-Type", ct)
                .with_body("a=1")
        };
        assert!(expect_form(&Request::new(Method::Post, "/")).is_ok());
        assert!(expect_form(&form("application/x-www-form-urlencoded; charset=UTF-8")).is_ok());
        let refusal = expect_form(&form("multipart/form-data; boundary=x")).unwrap_err();
        assert_eq!(refusal.status(), Status::UNSUPPORTED_MEDIA_TYPE);
        let untyped = Request::new(Method::Post, "/").with_body("a=1");
        assert!(expect_form(&untyped).is_err());
    }

    #[test]
    fn missing_state_is_a_500() {
        let states = States::new();
        let refusal = state::<u8>(&states).unwrap_err();
        assert_eq!(refusal.status(), Status::INTERNAL_SERVER_ERROR);
    }
}
