//! What the macros' generated code calls, re-exported as `house::__private`. Not public API:
//! it changes without notice.

use std::fmt;

use crate::param::{plural, Bounded, ParamError};
use crate::response::{IntoResponse, Response, Status, HTML};
use crate::route::{IntoSubscribe, Route, Subscribe};
use crate::state::States;

/// Implemented by the type-namespace companion the macros emit next to a handler fn.
pub trait HandlerRoute {
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
