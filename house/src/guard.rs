//! Request guards: checks that run before a handler and may refuse the request with any
//! response, and the two house ships (a bearer token and a signed-in session user).
//!
//! A guard is how a stream handler authorizes its subscriber. Browsers' `EventSource` cannot
//! send headers, so a page's streams are guarded by the session cookie ([`SessionUser`]),
//! which the browser sends by itself; [`Bearer`] is for API clients that set `Authorization`.

use std::fmt;

use crate::printable::Printable;
use crate::response::{Response, Status};
use crate::route::{Ctx, Route};
use crate::session::{Session, SessionError};

/// The session key [`SessionUser`] keeps the user's name under.
const USER_KEY: &str = "user";

/// A type that checks or extracts something from a request before the handler runs, and may
/// refuse it with any response (a `401` with `WWW-Authenticate`, a `403`, a redirect).
///
/// With the macros, a handler argument marked `#[guard]` is one; guards run in the order the
/// arguments are declared, before any parameter is decoded, and a refusal is answered as is
/// (for a stream handler, instead of the stream). `Option<G>` never refuses (`None` when `G`
/// would), and `Result<G, Response>` hands the refusal to the handler.
///
/// # Examples
/// A guard that only lets requests from loopback through:
/// ```
/// use house::{Ctx, FromRequest, Response, Status};
///
/// struct Local;
///
/// impl FromRequest for Local {
///     fn from_request(ctx: &mut Ctx<'_>) -> Result<Local, Response> {
///         match ctx.request.peer_addr() {
///             Some(addr) if addr.ip().is_loopback() => Ok(Local),
///             _ => Err(Response::error(Status::FORBIDDEN, "only from this machine")),
///         }
///     }
/// }
///
/// // By hand; the macros write this for `#[guard] _local: Local`.
/// let admin = house::Route::closing("/admin", |ctx| match Local::from_request(ctx) {
///     Ok(Local) => Response::text(Status::OK, "welcome"),
///     Err(refusal) => refusal,
/// });
/// # let _ = admin;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a request guard",
    label = "not a request guard",
    note = "a `#[guard]` argument's type implements `house::FromRequest`: `house::Bearer`, `house::SessionUser`, your own type, or `Option<G>` / `Result<G, house::Response>` of one"
)]
pub trait FromRequest: Sized {
    /// The guard's value, or the response that refuses the request.
    fn from_request(ctx: &mut Ctx<'_>) -> Result<Self, Response>;

    /// Declares on the guarded `route` the state the guard reads (with
    /// [`Route::needs_state`]), so a server without it refuses to start instead of failing
    /// every request. The default needs nothing; the macros call it for each `#[guard]`.
    fn needs(route: Route) -> Route {
        route
    }
}

/// An optional guard: `None` where `G` would refuse.
impl<G: FromRequest> FromRequest for Option<G> {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<Option<G>, Response> {
        Ok(G::from_request(ctx).ok())
    }

    fn needs(route: Route) -> Route {
        G::needs(route)
    }
}

/// The guard's refusal, for the handler to inspect or answer itself.
impl<G: FromRequest> FromRequest for Result<G, Response> {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<Result<G, Response>, Response> {
        Ok(G::from_request(ctx))
    }

    fn needs(route: Route) -> Route {
        G::needs(route)
    }
}

/// A guard for `Authorization: Bearer <token>` (RFC 6750), checked against the server's
/// [`BearerTokens`] state.
///
/// - no `Authorization` header, or another scheme: `401` with `WWW-Authenticate: Bearer`;
/// - `Bearer` with an empty or malformed token: `400` with
///   `WWW-Authenticate: Bearer error="invalid_request"`;
/// - a token [`BearerTokens`] does not accept: `401` with
///   `WWW-Authenticate: Bearer error="invalid_token"`;
/// - no [`BearerTokens`] state on the server: `500`, and an error in the log.
///
/// The scheme name is case-insensitive. Bearer tokens suit API clients; a browser's
/// `EventSource` cannot send an `Authorization` header, so guard a page's streams with the
/// session cookie ([`SessionUser`]) instead.
///
/// # Examples
/// With the macros, `#[guard] token: Bearer` on a handler argument; by hand:
/// ```no_run
/// use house::{Bearer, BearerTokens, Config, FromRequest, Methods, Route, Server};
///
/// let publish = Route::closing("/publish", |ctx| {
///     let token = Bearer::from_request(ctx)?;
///     Ok::<_, house::Response>(format!("sent with a token of {} bytes", token.token().len()))
/// })
/// .with_methods(Methods::POST);
///
/// Server::bind("127.0.0.1:8080", Config::default(), [publish])?
///     .with_state(BearerTokens::new(["s3cret-1", "s3cret-2"]))
///     .run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
/// Over a hand-built context:
/// ```
/// use house::{Bearer, BearerTokens, Ctx, FromRequest, Hub, Method, Request, States};
///
/// let mut states = States::new();
/// states.insert(BearerTokens::new(["s3cret"]));
/// let mut hub = Hub::default();
///
/// let good = Request::new(Method::Get, "/").with_header("Authorization", "bearer s3cret");
/// let mut ctx = Ctx::new(&good, &mut hub).with_state(&states);
/// assert_eq!(Bearer::from_request(&mut ctx).map(|b| b.into_token()).ok(), Some("s3cret".into()));
///
/// let bad = Request::new(Method::Get, "/").with_header("Authorization", "Bearer guess");
/// let mut ctx = Ctx::new(&bad, &mut hub).with_state(&states);
/// let refusal = Bearer::from_request(&mut ctx).err().unwrap();
/// assert_eq!(refusal.status().code(), 401);
/// assert_eq!(refusal.header("www-authenticate"), Some(r#"Bearer error="invalid_token""#));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer {
    token: String,
}

impl Bearer {
    /// The accepted token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The accepted token, owned.
    pub fn into_token(self) -> String {
        self.token
    }
}

/// Tokens stay out of logs and panics.
impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(..)")
    }
}

impl FromRequest for Bearer {
    /// The accepted tokens: a server without [`BearerTokens`] state refuses to start.
    fn needs(route: Route) -> Route {
        route.needs_state::<BearerTokens>()
    }

    fn from_request(ctx: &mut Ctx<'_>) -> Result<Bearer, Response> {
        let Some(tokens) = ctx.state.get::<BearerTokens>() else {
            log::error!(
                "`{}`: the `Bearer` guard needs `house::BearerTokens` state; add it with `Server::with_state(BearerTokens::new([..]))`",
                Printable(ctx.request.path())
            );
            return Err(Response::error(
                Status::INTERNAL_SERVER_ERROR,
                "the server has no bearer tokens configured",
            ));
        };
        let token = match parse_bearer(ctx.request.header_bytes("authorization")) {
            Credentials::Absent => {
                return Err(challenge(
                    Status::UNAUTHORIZED,
                    "Bearer",
                    "this needs `Authorization: Bearer <token>`",
                ))
            }
            Credentials::Malformed => {
                return Err(challenge(
                    Status::BAD_REQUEST,
                    r#"Bearer error="invalid_request""#,
                    "the bearer token is malformed",
                ))
            }
            Credentials::Token(token) => token,
        };
        if !tokens.accepts(token) {
            return Err(challenge(
                Status::UNAUTHORIZED,
                r#"Bearer error="invalid_token""#,
                "the bearer token is not valid",
            ));
        }
        Ok(Bearer {
            token: token.to_owned(),
        })
    }
}

/// An error page with a `WWW-Authenticate` challenge.
fn challenge(status: Status, authenticate: &'static str, detail: &str) -> Response {
    Response::error(status, detail).with_header("WWW-Authenticate", authenticate)
}

/// What an `Authorization` header says about a bearer token.
#[derive(Debug, PartialEq, Eq)]
enum Credentials<'a> {
    /// No header, or another scheme: the client has not tried bearer authentication.
    Absent,
    /// `Bearer` without a token in RFC 6750's `b64token` syntax.
    Malformed,
    Token(&'a str),
}

/// `Bearer <b64token>` (RFC 6750 2.1), the scheme case-insensitive (RFC 9110 11.1).
fn parse_bearer(header: Option<&[u8]>) -> Credentials<'_> {
    let Some(value) = header.and_then(|v| std::str::from_utf8(v).ok()) else {
        return match header {
            None => Credentials::Absent,
            Some(_) => Credentials::Malformed,
        };
    };
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Absent;
    }
    let token = rest.trim_start_matches([' ', '\t']);
    let body = token.trim_end_matches('=');
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    if body.is_empty() || !body.bytes().all(b64) {
        return Credentials::Malformed;
    }
    Credentials::Token(token)
}

/// The bearer tokens [`Bearer`] accepts: server state, a fixed set or a function.
///
/// # Examples
/// ```
/// use house::BearerTokens;
///
/// let fixed = BearerTokens::new(["t1", "t2"]);
/// assert!(fixed.accepts("t2") && !fixed.accepts("t3"));
///
/// // Looked up elsewhere: an environment variable, a file, a database handle.
/// let admin = std::env::var("ADMIN_TOKEN").unwrap_or_default();
/// let by_fn = BearerTokens::from_fn(move |token| !admin.is_empty() && token == admin);
/// assert!(!by_fn.accepts(""));
/// ```
pub struct BearerTokens {
    check: Check,
}

enum Check {
    Set(Vec<String>),
    Fn(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

impl BearerTokens {
    /// Exactly `tokens`.
    pub fn new<I, S>(tokens: I) -> BearerTokens
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        BearerTokens {
            check: Check::Set(tokens.into_iter().map(Into::into).collect()),
        }
    }

    /// The tokens `accepts` says yes to.
    pub fn from_fn(accepts: impl Fn(&str) -> bool + Send + Sync + 'static) -> BearerTokens {
        BearerTokens {
            check: Check::Fn(Box::new(accepts)),
        }
    }

    /// Whether `token` is accepted.
    pub fn accepts(&self, token: &str) -> bool {
        match &self.check {
            // Every token is compared in full, so the time taken does not say how much of a
            // guess was right.
            Check::Set(tokens) => tokens
                .iter()
                .fold(false, |found, known| found | same(known, token)),
            Check::Fn(accepts) => accepts(token),
        }
    }
}

/// Byte equality whose time depends only on the lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.check {
            Check::Set(tokens) => write!(f, "BearerTokens({} tokens)", tokens.len()),
            Check::Fn(_) => f.write_str("BearerTokens(fn)"),
        }
    }
}

/// A guard for a session with a signed-in user: the name [`SessionUser::log_in`] stored.
///
/// Without one the request is answered `401` with a body that says to log in (and no
/// `WWW-Authenticate: Bearer`: the way in is the login page, not a header).
///
/// This is the guard for a page's event streams: a browser's `EventSource` cannot send
/// headers, but it does send the session cookie, so a stream handler with
/// `#[guard] user: SessionUser` only serves signed-in users. (A stream handler cannot start a
/// session; log in with a closing handler.)
///
/// # Examples
/// With the macros, `#[guard] user: SessionUser` on a handler argument; by hand:
/// ```no_run
/// use house::{Config, FromRequest, Methods, Response, Route, Server, SessionUser, Subscribe};
///
/// let login = Route::closing("/login", |ctx| {
///     let name = ctx.request.param("name").unwrap_or("").to_owned();
///     // Check a password here.
///     SessionUser::log_in(&mut ctx.session, &name).map(|()| format!("welcome, {name}"))
/// })
/// .with_methods(Methods::POST);
///
/// // `new EventSource("/inbox")` in the page: the cookie goes with it.
/// let inbox = Route::stream("/inbox", |ctx| {
///     let user = SessionUser::from_request(ctx)?;
///     Ok::<_, Response>(Subscribe::to(format!("inbox/{}", user.name())))
/// });
///
/// let logout = Route::closing("/logout", |ctx| {
///     SessionUser::log_out(&mut ctx.session);
///     "bye"
/// })
/// .with_methods(Methods::POST);
///
/// Server::bind("127.0.0.1:8080", Config::default(), [login, inbox, logout])?.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
/// Over a hand-built context, with a detached session:
/// ```
/// use house::{Ctx, FromRequest, Hub, Method, Request, SessionUser};
///
/// let request = Request::new(Method::Get, "/inbox");
/// let mut hub = Hub::default();
/// let mut ctx = Ctx::new(&request, &mut hub);
/// assert_eq!(SessionUser::from_request(&mut ctx).unwrap_err().status().code(), 401);
/// SessionUser::log_in(&mut ctx.session, "ann")?;
/// assert_eq!(SessionUser::from_request(&mut ctx).unwrap().name(), "ann");
/// # Ok::<(), house::SessionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    name: String,
}

impl SessionUser {
    /// The signed-in user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, owned.
    pub fn into_name(self) -> String {
        self.name
    }

    /// Signs `name` in: stores it in the session (under the key `user`), starting the session
    /// if needed. Call it from a closing handler once the credentials are checked.
    ///
    /// # Errors
    /// As [`Session::insert`]: in a stream handler without a session, or when the session is
    /// full.
    pub fn log_in(session: &mut Session<'_>, name: impl AsRef<str>) -> Result<(), SessionError> {
        session.insert(USER_KEY, name.as_ref())
    }

    /// Signs the user out by ending the whole session ([`Session::end`]): its token stops
    /// working, so a copied cookie is useless afterwards.
    pub fn log_out(session: &mut Session<'_>) {
        session.end();
    }
}

impl FromRequest for SessionUser {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<SessionUser, Response> {
        match ctx.session.get::<String>(USER_KEY) {
            Some(name) => Ok(SessionUser { name }),
            None => Err(Response::error(
                Status::UNAUTHORIZED,
                "log in first: this needs a signed-in session",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_syntax() {
        let parse = |v: &'static str| parse_bearer(Some(v.as_bytes()));
        assert_eq!(parse_bearer(None), Credentials::Absent);
        assert_eq!(parse("Basic dXNlcjpwdw=="), Credentials::Absent);
        assert_eq!(parse("Bearer"), Credentials::Malformed);
        assert_eq!(parse("Bearer "), Credentials::Malformed);
        assert_eq!(parse("Bearer a b"), Credentials::Malformed);
        assert_eq!(parse("Bearer ==="), Credentials::Malformed);
        assert_eq!(parse("Bearer a=b"), Credentials::Malformed);
        assert_eq!(
            parse("bEaReR  abc-._~+/=="),
            Credentials::Token("abc-._~+/==")
        );
        assert_eq!(parse_bearer(Some(b"Bearer \xff")), Credentials::Malformed);
    }

    #[test]
    fn token_set_compares_whole_tokens() {
        let tokens = BearerTokens::new(["abc", "abd"]);
        assert!(tokens.accepts("abc") && tokens.accepts("abd"));
        assert!(!tokens.accepts("ab") && !tokens.accepts("abcd") && !tokens.accepts(""));
        assert_eq!(format!("{tokens:?}"), "BearerTokens(2 tokens)");
        let bearer = Bearer {
            token: "secret".into(),
        };
        assert!(!format!("{bearer:?}").contains("secret"));
    }
}
