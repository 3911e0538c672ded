//! Attribute macros for [house](https://docs.rs/house-sse) handlers: a handler declares its
//! parameters and their rules once, and the macro expands into the lookup, decoding and
//! checking code you would otherwise write by hand. Use them through `house`, which re-exports
//! them: `house::closing_handler`, `house::stream_handler`, `house::catcher`,
//! `house::FromParam` and `house::Validate` (the derives).
//!
//! House is published as the package `house-sse` whose library is named `house`; depend on it
//! (`cargo add house-sse`), not on this crate. The expanded code names `::house::…`, so keep
//! the dependency's name `house`: the default for `house-sse`, or `house = { package =
//! "house-sse", … }`, but not a rename to anything else.
//!
//! # Example
//! ```
//! use house::{closing_handler, routes, stream_handler, Ctx, Event, Handler, Hub, Method,
//!             PublishError, Request, Subscribe};
//!
//! #[stream_handler]
//! fn source(#[param(max = 16)] room: String) -> Subscribe {
//!     Subscribe::to(room)
//! }
//!
//! #[closing_handler(methods = [POST])]
//! fn send_message(
//!     #[param(max = 16)] room: String,
//!     #[param(min = 5, max = 256)] message: String,
//!     hub: &mut Hub,
//! ) -> Result<&'static str, PublishError> {
//!     hub.publish(&room, Event::new(message))?;
//!     Ok("sent")
//! }
//!
//! let routes = routes![source, send_message];
//! assert_eq!(routes[1].path(), "/send-message");
//!
//! // Without a server: call the route's handler on a hand-made request.
//! let Handler::Closing(send) = routes[1].handler() else { unreachable!() };
//! let request = Request::new(Method::Post, "/send-message")
//!     .with_param("room", "lobby")
//!     .with_param("message", "hi");
//! let response = send(&mut Ctx::new(&request, &mut Hub::default()));
//! assert_eq!(response.status().code(), 400);
//! # let mut body = Vec::new();
//! # response.write_to(&mut body, false);
//! # assert!(String::from_utf8(body).unwrap().ends_with(
//! #     "\r\n\r\n400 Bad Request: parameter `message` must be at least 5 characters (got 2)\n"));
//! ```
//! The 400's body reads ``400 Bad Request: parameter `message` must be at least 5 characters
//! (got 2)``.
//!
//! # Notes
//! - The macros only see tokens: `Option<…>` and `Vec<…>` are recognised by name (a type alias
//!   of them is an ordinary type), and so are `&Request`, `&Hub`/`&mut Hub` and
//!   `&Session`/`&mut Session`.
//! - Mistakes in a declaration are compile errors on the offending token, all reported in one
//!   compile; the fn is still emitted, so they do not cascade into unrelated errors.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use proc_macro::TokenStream;
use syn::parse_macro_input;

mod ast;
mod attr;
mod derive;
mod errors;
mod expand;
mod template;
mod valid;
mod validate;

/// Declares a closing handler: one request in, one response out.
///
/// The fn stays as written (callable and testable on its own). Next to it the macro emits a
/// hidden companion type of the same name (in the type namespace, so it does not clash with the
/// fn) that [`house::routes!`](https://docs.rs/house-sse/latest/house/macro.routes.html) turns
/// into a `house::Route`.
///
/// # Arguments of the attribute
/// - `"/path"` or `path = "/path"`: the route's path template. Default: `/` and the fn's name
///   with `_` turned into `-` (`send_message` → `/send-message`). A segment `{name}` is a path
///   parameter and a last segment `{*rest}` takes the rest of the path (see below).
/// - `methods = [GET, POST]`: the accepted methods (any of `GET`, `HEAD`, `POST`, `PUT`,
///   `DELETE`, `PATCH`, `OPTIONS`); others answer 405. Default: `GET`, `HEAD` and `POST`.
/// - `content_type = "text/plain; charset=utf-8"`: the type of string bodies, which are
///   otherwise `text/html; charset=utf-8`. Responses that set their own type (JSON, error pages,
///   a `Response` with a `Content-Type`) keep it.
///
/// The route is named after the fn, so a clash is reported naming both handlers; two
/// templates that can never be told apart in one `routes![..]` are a compile error there.
///
/// # Arguments of the fn
/// Context arguments are recognised by their type and may come in any position:
/// `&Request` (the request), `&Hub` / `&mut Hub` (the channel hub) and `&Session` /
/// `&mut Session` (the client's session, created when a handler first writes to it). Any
/// other `&T` is **state**: the value of type `T` given to `Server::with_state` (a server
/// missing it refuses to start, naming the type). State is shared: mutate it through a
/// `Mutex` or an atomic, not `&mut T`.
///
/// `#[guard] user: User` runs `<User as house::FromRequest>::from_request` (and
/// `#[guard] user: Option<User>` never refuses). Guards run in declaration order before
/// anything else is read, so a request they refuse gets their answer (a 401, a redirect), not
/// a 400 about a parameter; a stream handler's guard refuses instead of the stream.
///
/// `#[body] msg: Json<T>` (415 unless `Content-Type: application/json`, 400 naming the field
/// of malformed JSON, then the field rules of `#[derive(house::Validate)]`), `#[body] text:
/// String` or `#[body] raw: Vec<u8>` is the request body, through `house::FromBody`; closing
/// handlers only, once. A handler with query/form parameters and no `#[body]` answers 415 to
/// a non-empty body that is not a form, rather than "missing parameter".
///
/// Every other argument is an HTTP parameter named after its binding (or `#[param(name =
/// "…")]`): from the path when the template has a `{name}` of that name, else from the query
/// string or a form body; decoded through `house::FromParam`. Guards run first, then state
/// and the body, then parameters in declaration order, and their rules in the order written;
/// the first failure answers `400 Bad Request` with a plain-text body naming the parameter
/// and the rule: ``parameter `message` must be at least 5 characters (got 3)``,
/// ``missing parameter `room` ``. A path parameter is always there exactly once, so it is
/// neither `Option`, `Vec` nor `default`ed; its rules are those of any parameter.
///
/// Types: `String`, every integer type, `f32`/`f64` (finite), `bool` (`true`/`on`/`1`,
/// `false`/`off`/`0`), `char`, `house::JsonParam<T>` for `T: Deserialize` (the value's text is JSON),
/// enums with `#[derive(house::FromParam)]`, and any type implementing `house::FromParam`.
/// Numbers are strict: `12abc`, ` 12` and out-of-range values answer 400. A present but
/// empty parameter (`?room=`) is the empty string, which a `String` accepts and a number
/// refuses. `Option<T>` is `None` when absent; `Vec<T>` collects every value of a repeated
/// name (`?tag=a&tag=b`) and is empty when absent. `Vec<Option<T>>`, `Option<Option<T>>`,
/// `Option<Vec<T>>` and `Vec<Vec<T>>` are compile errors: the inner wrapper could never do
/// what it says.
///
/// Rules go in `#[param(...)]`, with literals:
/// - `name = "room"`: the HTTP name, when it differs from the binding's.
/// - `min = 1`, `max = 16`: a `String`'s length in characters (not bytes: 16 × `é` is 16), or
///   a number's value; both bounds pass. Other types join through `house::Bounded`. On `Option`
///   and `Vec` they apply to each value.
/// - `min_count = 1`, `max_count = 3`: how many values a `Vec` parameter may have.
/// - `one_of = ["red", "green"]`: the allowed values.
/// - `default = expr`: the value when the parameter is absent (a string literal for a `String`
///   is converted). The rules check clients' values, not the default.
///
/// # Return type
/// Anything implementing `house::IntoResponse`: `&str`/`String` (HTML), `house::Json<T>`,
/// `house::Response`, `house::Status`, `()` (204), `(Status, T)`, or `Result<T, E>` of those.
///
/// # Examples
/// ```
/// use house::{closing_handler, routes, Json, Request};
///
/// #[derive(house::FromParam)]
/// enum Unit {
///     Celsius,
///     Fahrenheit,
/// }
///
/// #[closing_handler("/convert", methods = [GET], content_type = "text/plain")]
/// fn convert(
///     #[param(min = -273.15, max = 1e6)] degrees: f64,
///     #[param(name = "to")] unit: Unit,
///     #[param(default = 1)] digits: u8,
///     request: &Request,
/// ) -> String {
///     let value = match unit {
///         Unit::Celsius => (degrees - 32.0) / 1.8,
///         Unit::Fahrenheit => degrees * 1.8 + 32.0,
///     };
///     format!("{value:.*} (for {})", usize::from(digits), request.path())
/// }
///
/// #[closing_handler]
/// fn tags(#[param(name = "tag", min_count = 1, max = 10)] tags: Vec<String>) -> Json<Vec<String>> {
///     Json(tags)
/// }
///
/// assert_eq!(convert(100.0, Unit::Celsius, 1, &Request::new(house::Method::Get, "/")), "37.8 (for /)");
/// let routes = routes![convert, tags];
/// assert_eq!(routes[1].path(), "/tags");
/// ```
///
/// A path parameter, a guard, state and a JSON body:
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use house::{closing_handler, routes, Ctx, FromRequest, Handler, Hub, IntoResponse, Json,
///             Method, Request, Response, States, Status};
///
/// /// Who is asking, from a header the proxy sets.
/// struct User(String);
///
/// impl FromRequest for User {
///     fn from_request(ctx: &mut Ctx<'_>) -> Result<User, Response> {
///         match ctx.request.header("x-user") {
///             Some(name) => Ok(User(name.to_owned())),
///             None => Err(Status::UNAUTHORIZED.into_response()),
///         }
///     }
/// }
///
/// /// Shared state: how many messages were posted.
/// struct Posted(AtomicU64);
///
/// #[derive(serde::Deserialize, house::Validate)]
/// struct NewMessage {
///     #[param(min = 1, max = 256)]
///     text: String,
/// }
///
/// #[closing_handler("/api/rooms/{name}/messages", methods = [POST])]
/// fn post_message(
///     #[guard] user: User,
///     #[param(max = 16)] name: String,
///     #[body] message: Json<NewMessage>,
///     posted: &Posted,
/// ) -> String {
///     posted.0.fetch_add(1, Ordering::Relaxed);
///     format!("{} in {name}: {}", user.0, message.0.text)
/// }
///
/// let routes = routes![post_message];
/// assert_eq!(routes[0].path(), "/api/rooms/{name}/messages");
///
/// // The router fills the path parameters; by hand, `with_path_param` does.
/// let Handler::Closing(post) = routes[0].handler() else { unreachable!() };
/// let mut states = States::new();
/// states.insert(Posted(AtomicU64::new(0)));
/// let status = |request: Request| {
///     let mut hub = Hub::default();
///     post(&mut Ctx::new(&request, &mut hub).with_state(&states)).status().code()
/// };
/// let long = "x".repeat(17);
/// // No user: the guard answers before the too-long room name is looked at.
/// assert_eq!(status(Request::new(Method::Post, "/").with_path_param("name", &long)), 401);
/// let request = |name: &str| {
///     Request::new(Method::Post, "/")
///         .with_header("x-user", "ann")
///         .with_header("content-type", "application/json")
///         .with_body(r#"{"text": "hi"}"#)
///         .with_path_param("name", name)
/// };
/// assert_eq!(status(request(&long)), 400); // parameter `name` must be at most 16 characters (got 17)
/// assert_eq!(status(request("lobby")), 200);
/// assert_eq!(states.get::<Posted>().unwrap().0.load(Ordering::Relaxed), 1);
/// ```
///
/// A rule that does not fit the parameter's type is a compile error:
/// ```compile_fail
/// #[house::closing_handler]
/// fn toggle(#[param(min = 1)] on: bool) -> &'static str {
///     //            ^^^ `min` does not apply to `bool`
///     if on { "on" } else { "off" }
/// }
/// ```
#[proc_macro_attribute]
pub fn closing_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::Item);
    expand::handler(ast::Kind::Closing, args.into(), item).into()
}

/// Declares a stream handler: it answers `200 text/event-stream` and keeps the connection
/// subscribed to the channels it returns.
///
/// Arguments, parameters and rules are those of [`closing_handler`] (except `content_type`:
/// a stream is always `text/event-stream`). A stream handler may read and change an existing
/// session, but cannot start one: its response carries no cookie. The fn returns what implements
/// `house::IntoSubscribe`: a `house::Subscribe`, or `Result<Subscribe, E>` where `E` is a
/// response (`house::Status`, `house::Response`, …) sent instead of the stream.
///
/// # Examples
/// ```
/// use house::{routes, stream_handler, Status, Subscribe};
///
/// #[stream_handler]
/// fn source(#[param(max = 16)] room: String, history: Option<bool>) -> Result<Subscribe, Status> {
///     if room == "secret" {
///         return Err(Status::FORBIDDEN);
///     }
///     let subscribe = Subscribe::to(room);
///     Ok(if history == Some(true) { subscribe.and("history") } else { subscribe })
/// }
///
/// assert_eq!(routes![source][0].path(), "/source");
/// ```
///
/// A stream handler that returns a page instead of a subscription is a compile error:
/// ```compile_fail
/// #[house::stream_handler]
/// fn source() -> &'static str {
///     "not a stream"
/// }
/// ```
#[proc_macro_attribute]
pub fn stream_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::Item);
    expand::handler(ast::Kind::Stream, args.into(), item).into()
}

/// Derives `house::FromParam` for an enum of unit variants: the parameter must name a variant.
///
/// A variant's name is its identifier in kebab-case (`DarkBlue` → `dark-blue`), or
/// `#[param(name = "…")]`. Any other value answers 400:
/// ``parameter `colour` must be one of `red`, `dark-blue` (got `pink`)``.
///
/// # Examples
/// ```
/// use house::FromParam;
///
/// #[derive(FromParam, Debug, PartialEq)]
/// enum Colour {
///     Red,
///     DarkBlue,
///     #[param(name = "gr")]
///     Green,
/// }
///
/// assert_eq!(Colour::from_param("dark-blue"), Ok(Colour::DarkBlue));
/// assert_eq!(Colour::from_param("gr"), Ok(Colour::Green));
/// assert_eq!(
///     Colour::from_param("pink").unwrap_err().message("colour"),
///     "parameter `colour` must be one of `red`, `dark-blue`, `gr` (got `pink`)"
/// );
/// ```
#[proc_macro_derive(FromParam, attributes(param))]
pub fn derive_from_param(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    derive::from_param(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a catcher: the response for an error the server answers itself.
///
/// `#[catcher(404)]` (any status from 400 to 599) on a fn taking `caught: &house::Caught` (the
/// status, the request when there is one, and a detail) or nothing, and returning anything
/// that implements `house::IntoResponse`. List it in `routes![..]` with the handlers; it
/// answers the server's own responses of that status: routing's 404 and 405, a panicking
/// handler's 500, and the parser's 4xx/5xx. Responses that handlers return are left as they
/// are. Two catchers of one status in one `routes![..]` are a compile error.
///
/// # Examples
/// ```
/// use house::{catcher, closing_handler, routes, Caught, Status};
///
/// #[catcher(404)]
/// fn not_found(caught: &Caught) -> (Status, String) {
///     let path = caught.request.map_or("that page", |request| request.path());
///     (Status::NOT_FOUND, format!("<h1>Nothing at {path}</h1>"))
/// }
///
/// #[closing_handler("/")]
/// fn index() -> &'static str {
///     "home"
/// }
///
/// let routes = routes![index, not_found];
/// assert_eq!(routes[1].name(), "not_found");
/// ```
///
/// A status that is not an error is a compile error:
/// ```compile_fail
/// #[house::catcher(302)]
/// fn found() -> &'static str {
///     "elsewhere"
/// }
/// ```
#[proc_macro_attribute]
pub fn catcher(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::Item);
    expand::catcher(args.into(), item).into()
}

/// Derives `house::Validate` for a struct with named fields: `#[param(min = .., max = ..,
/// one_of = [..])]` on its fields, with the same meaning, checks and messages as on handler
/// parameters, naming ``body field `text` ``. A `#[body] msg: Json<T>` argument checks them
/// after decoding and answers 400 on the first broken rule; rules of an `Option` or `Vec`
/// field apply to each value. `name` and `default` are serde's business
/// (`#[serde(rename)]`, `#[serde(default)]`), and `min_count`/`max_count` are for repeated
/// query parameters, so they are compile errors here.
///
/// # Examples
/// ```
/// use house::Validate;
///
/// #[derive(serde::Deserialize, Validate)]
/// struct NewMessage {
///     #[param(min = 1, max = 256)]
///     text: String,
///     #[param(one_of = ["info", "warn"])]
///     level: Option<String>,
/// }
///
/// let message = NewMessage { text: String::new(), level: Some("warn".to_owned()) };
/// assert!(message.validate().is_err());
/// let message = NewMessage { text: "hi".to_owned(), level: None };
/// assert!(message.validate().is_ok());
/// ```
///
/// Only structs with named fields:
/// ```compile_fail
/// #[derive(house::Validate)]
/// struct Text(#[param(max = 3)] String);
/// ```
#[proc_macro_derive(Validate, attributes(param))]
pub fn derive_validate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    validate::validate(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
