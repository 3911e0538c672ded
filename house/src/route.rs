//! The handler table: which handler answers which path, and what handlers see and return.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::hub::Hub;
use crate::request::{Method, Methods, Request};
use crate::response::{IntoResponse, Response};
use crate::session::Session;
use crate::stats::Stats;

/// What a handler runs with: the request, the channel hub, the server's stats, and the
/// client's session.
///
/// The fields are public so generated code can borrow them separately.
#[non_exhaustive]
pub struct Ctx<'a> {
    /// The request being answered.
    pub request: &'a Request,
    /// The channel hub, to publish events and ask about subscribers.
    pub hub: &'a mut Hub,
    /// The server's counters and gauges.
    pub stats: &'a Stats,
    /// The client's session (created only when a handler writes to it).
    pub session: Session<'a>,
}

/// Stats for contexts built outside a server.
static NO_STATS: Stats = Stats::EMPTY;

impl<'a> Ctx<'a> {
    /// A context for `request` and `hub` (with empty stats and a
    /// [detached](Session::detached) session): for testing handlers by hand.
    pub fn new(request: &'a Request, hub: &'a mut Hub) -> Ctx<'a> {
        Ctx {
            request,
            hub,
            stats: &NO_STATS,
            session: Session::detached(),
        }
    }

    /// The same context with `session`.
    pub fn with_session(self, session: Session<'a>) -> Ctx<'a> {
        Ctx { session, ..self }
    }

    /// The same context with `stats`.
    pub fn with_stats(self, stats: &'a Stats) -> Ctx<'a> {
        Ctx { stats, ..self }
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// What a stream handler subscribes its connection to: one or more channels.
///
/// # Examples
/// ```
/// use house::Subscribe;
///
/// let subscribe = Subscribe::to("lobby").and("announcements");
/// assert_eq!(subscribe.channels(), ["lobby", "announcements"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    channels: Vec<String>,
}

impl Subscribe {
    /// Subscribe to `channel`.
    pub fn to(channel: impl Into<String>) -> Subscribe {
        Subscribe {
            channels: vec![channel.into()],
        }
    }

    /// Also subscribe to `channel`.
    pub fn and(mut self, channel: impl Into<String>) -> Subscribe {
        let channel = channel.into();
        if !self.channels.contains(&channel) {
            self.channels.push(channel);
        }
        self
    }

    /// The channels, in order.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }
}

/// Anything a stream handler may return: what to subscribe to, or an error response.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a stream handler",
    label = "not a subscription",
    note = "a stream handler returns `house::Subscribe` or `Result<house::Subscribe, E>` where `E: house::IntoResponse`"
)]
pub trait IntoSubscribe {
    /// The subscription, or the response to send instead of a stream.
    fn into_subscribe(self) -> Result<Subscribe, Response>;
}

impl IntoSubscribe for Subscribe {
    fn into_subscribe(self) -> Result<Subscribe, Response> {
        Ok(self)
    }
}

impl<E: IntoResponse> IntoSubscribe for Result<Subscribe, E> {
    fn into_subscribe(self) -> Result<Subscribe, Response> {
        self.map_err(IntoResponse::into_response)
    }
}

/// A closing handler's body: one request in, one response out.
pub type ClosingFn = dyn Fn(&mut Ctx<'_>) -> Response + Send + Sync;
/// A stream handler's body: one request in, a subscription (or an error response) out.
pub type StreamFn = dyn Fn(&mut Ctx<'_>) -> Result<Subscribe, Response> + Send + Sync;

/// What kind of handler a route runs.
pub enum Handler {
    /// Answers once; the connection then closes or waits for the next request (keep-alive).
    Closing(Box<ClosingFn>),
    /// Answers `200` with `text/event-stream` and keeps the connection subscribed.
    Stream(Box<StreamFn>),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handler::Closing(_) => "Handler::Closing",
            Handler::Stream(_) => "Handler::Stream",
        })
    }
}

/// One entry of the handler table.
///
/// # Examples
/// ```
/// use house::{Route, Subscribe};
///
/// let hello = Route::closing("/hello", |_ctx| "hi");
/// let source = Route::stream("/source", |ctx| {
///     Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
/// });
/// # let _ = (hello, source);
/// ```
#[derive(Debug)]
pub struct Route {
    name: Cow<'static, str>,
    path: Cow<'static, str>,
    prefix: bool,
    methods: Methods,
    handler: Handler,
}

impl Route {
    /// A closing handler at exactly `path`.
    pub fn closing<R, F>(path: impl Into<Cow<'static, str>>, handler: F) -> Route
    where
        R: IntoResponse,
        F: Fn(&mut Ctx<'_>) -> R + Send + Sync + 'static,
    {
        let handler = move |ctx: &mut Ctx<'_>| handler(ctx).into_response();
        Route::new(path.into(), Handler::Closing(Box::new(handler)))
    }

    /// A stream handler at exactly `path`.
    pub fn stream<R, F>(path: impl Into<Cow<'static, str>>, handler: F) -> Route
    where
        R: IntoSubscribe,
        F: Fn(&mut Ctx<'_>) -> R + Send + Sync + 'static,
    {
        let handler = move |ctx: &mut Ctx<'_>| handler(ctx).into_subscribe();
        Route::new(path.into(), Handler::Stream(Box::new(handler)))
    }

    /// A route named after its path, accepting the default methods.
    fn new(path: Cow<'static, str>, handler: Handler) -> Route {
        Route {
            name: path.clone(),
            path,
            prefix: false,
            methods: Methods::DEFAULT,
            handler,
        }
    }

    /// Makes the route answer every path that starts with its path (which should end in `/`);
    /// the longest matching prefix wins, and exact routes win over prefixes.
    pub fn with_prefix(mut self) -> Route {
        self.prefix = true;
        self
    }

    /// Sets the accepted methods (default `GET`, `HEAD`, `POST`); others answer 405.
    pub fn with_methods(mut self, methods: Methods) -> Route {
        self.methods = methods;
        self
    }

    /// Names the route for error messages (default: its path). The macros use the function name.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Route {
        self.name = name.into();
        self
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route's path (or prefix).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The accepted methods.
    pub fn methods(&self) -> Methods {
        self.methods
    }

    /// The handler.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }
}

/// Two routes claim the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The contested path.
    pub path: String,
    /// The route registered first.
    pub first: String,
    /// The route registered second.
    pub second: String,
}

impl fmt::Display for DuplicateRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "path `{}` is registered twice: by `{}` and by `{}`",
            self.path, self.first, self.second
        )
    }
}

impl std::error::Error for DuplicateRoute {}

/// The handler table, built once at start-up.
#[derive(Debug, Default)]
pub struct Routes {
    exact: HashMap<String, Route>,
    /// Prefix routes, longest prefix first.
    prefixes: Vec<Route>,
}

/// Where a request's path and method lead.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a Route),
    WrongMethod(Methods),
    NotFound,
}

impl Routes {
    /// A table of `routes`, refusing two routes with the same path (or the same prefix).
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Result<Routes, DuplicateRoute> {
        let mut table = Routes::default();
        for route in routes {
            table.add(route)?;
        }
        Ok(table)
    }

    /// Adds a route, refusing a path that is already taken.
    pub fn add(&mut self, route: Route) -> Result<(), DuplicateRoute> {
        let taken = if route.prefix {
            self.prefixes.iter().find(|r| r.path == route.path)
        } else {
            self.exact.get(route.path.as_ref())
        };
        if let Some(first) = taken {
            return Err(DuplicateRoute {
                path: route.path.to_string(),
                first: first.name.to_string(),
                second: route.name.to_string(),
            });
        }
        if route.prefix {
            self.prefixes.push(route);
            self.prefixes
                .sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        } else {
            self.exact.insert(route.path.to_string(), route);
        }
        Ok(())
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn lookup(&self, path: &str, method: Method) -> Lookup<'_> {
        let route = self.exact.get(path).or_else(|| {
            self.prefixes
                .iter()
                .find(|r| path.starts_with(r.path.as_ref()))
        });
        match route {
            None => Lookup::NotFound,
            Some(route) if route.methods.contains(method) => Lookup::Found(route),
            Some(route) => Lookup::WrongMethod(route.methods),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_both_routes() {
        let err = Routes::new([
            Route::closing("/a", |_| "1").with_name("first"),
            Route::closing("/a", |_| "2").with_name("second"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "path `/a` is registered twice: by `first` and by `second`"
        );
    }

    #[test]
    fn lookup_exact_prefix_and_method() {
        let routes = Routes::new([
            Route::closing("/static/", |_| "dir").with_prefix(),
            Route::closing("/static/app.js", |_| "exact"),
            Route::closing("/post-only", |_| "p").with_methods(Methods::POST),
        ])
        .unwrap();
        assert!(
            matches!(routes.lookup("/static/app.js", Method::Get), Lookup::Found(r) if r.path() == "/static/app.js")
        );
        assert!(
            matches!(routes.lookup("/static/x.css", Method::Get), Lookup::Found(r) if r.path() == "/static/")
        );
        assert!(matches!(
            routes.lookup("/post-only", Method::Get),
            Lookup::WrongMethod(_)
        ));
        assert!(matches!(
            routes.lookup("/nope", Method::Get),
            Lookup::NotFound
        ));
    }
}
