//! The handler table: which handler answers which path, and what handlers see and return.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use percent_encoding::percent_decode_str;

use crate::error::{status_for, Error};
use crate::hub::{Hub, Pattern, PatternError};
use crate::request::{Method, Methods, Params, Request};
use crate::response::{
    check_header, check_unframed, IntoResponse, InvalidHeader, Response, Status,
};
use crate::session::Session;
use crate::sse::{Event, Frame};
use crate::state::{States, NO_STATES};
use crate::stats::{LagPolicy, Stats};

/// What a handler runs with: the request, the channel hub, the server's stats, the client's
/// session, and the application state.
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
    /// The application state given to [`Server::with_state`](crate::Server::with_state).
    pub state: &'a States,
    /// Whether a [`Deferred`](crate::Deferred) job returned now would find room.
    offload_room: bool,
}

/// Stats for contexts built outside a server.
static NO_STATS: Stats = Stats::EMPTY;

impl<'a> Ctx<'a> {
    /// A context for `request` and `hub` (with empty stats, a [detached](Session::detached)
    /// session and no state): for testing handlers by hand.
    pub fn new(request: &'a Request, hub: &'a mut Hub) -> Ctx<'a> {
        Ctx {
            request,
            hub,
            stats: &NO_STATS,
            session: Session::detached(),
            state: &NO_STATES,
            offload_room: true,
        }
    }

    /// Whether a [`Deferred`](crate::Deferred) job this handler returns would be taken: a
    /// worker or a queue slot is free (see [`OFFLOAD_QUEUE`](crate::limits::OFFLOAD_QUEUE)).
    /// When it is not, the job never runs and the request is answered `503` with
    /// `Retry-After`, so a handler that does something a retry would repeat (a publish)
    /// before returning its job checks this first and refuses before acting. The loop is one
    /// thread, so the answer holds until the handler returns. Always `true` in the
    /// [test client](crate::test::Client), which runs jobs inline.
    ///
    /// # Examples
    /// ```
    /// use house::{Deferred, Event, Response, Route, Status};
    ///
    /// let send = Route::closing("/send", |ctx| {
    ///     if !ctx.can_offload() {
    ///         // Nothing published yet: the client may simply retry.
    ///         return Response::error(Status::SERVICE_UNAVAILABLE, "busy, try again")
    ///             .with_header("Retry-After", "1");
    ///     }
    ///     let _ = ctx.hub.publish("lobby", Event::new("hi"));
    ///     Deferred::new(|| "sent and archived").into_response()
    /// });
    /// # use house::IntoResponse;
    /// # let _ = send;
    /// ```
    pub fn can_offload(&self) -> bool {
        self.offload_room
    }

    /// The same context, saying whether an offloaded job would find room.
    pub(crate) fn with_offload_room(self, offload_room: bool) -> Ctx<'a> {
        Ctx {
            offload_room,
            ..self
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

    /// The same context with the application `state`.
    ///
    /// # Examples
    /// ```
    /// use house::{Ctx, Hub, Method, Request, States};
    ///
    /// struct Motd(&'static str);
    ///
    /// let mut states = States::new();
    /// states.insert(Motd("hello"));
    /// let request = Request::new(Method::Get, "/motd");
    /// let mut hub = Hub::default();
    /// let ctx = Ctx::new(&request, &mut hub).with_state(&states);
    /// assert_eq!(ctx.state.get::<Motd>().map(|m| m.0), Some("hello"));
    /// ```
    pub fn with_state(self, state: &'a States) -> Ctx<'a> {
        Ctx { state, ..self }
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// What a stream handler subscribes its connection to: one or more channels or channel
/// [`Pattern`]s, any headers of its own for the stream's head, and the events this connection
/// alone gets first.
///
/// # Examples
/// ```
/// use house::{Event, Subscribe};
///
/// let subscribe = Subscribe::to("lobby").and("announcements").with_header("X-Room", "lobby");
/// assert_eq!(subscribe.channels(), ["lobby", "announcements"]);
/// assert_eq!(subscribe.headers().collect::<Vec<_>>(), [("X-Room", "lobby")]);
///
/// let subscribe = Subscribe::to_all(["a", "b", "a"]).with_initial(Event::new("snapshot"));
/// assert_eq!(subscribe.channels(), ["a", "b"]);
/// assert_eq!(subscribe.initial().len(), 1);
///
/// let subscribe = Subscribe::to_pattern("orders/*")?.and("announcements");
/// assert_eq!(subscribe.patterns()[0].as_str(), "orders/*");
/// # Ok::<(), house::PatternError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    channels: Vec<String>,
    patterns: Vec<Pattern>,
    headers: Vec<(Cow<'static, str>, String)>,
    initial: Vec<Event>,
    joinable: bool,
    lag_policy: LagPolicy,
}

impl Subscribe {
    /// Subscribe to `channel`. The name is taken literally, even one that ends with `/*`:
    /// only [`to_pattern`](Self::to_pattern) subscribes to a pattern.
    pub fn to(channel: impl Into<String>) -> Subscribe {
        Subscribe {
            channels: vec![channel.into()],
            patterns: Vec::new(),
            headers: Vec::new(),
            initial: Vec::new(),
            joinable: false,
            lag_policy: LagPolicy::Disconnect,
        }
    }

    /// Subscribe to every channel of `channels` (a repeated name counts once).
    ///
    /// A stream needs at least one channel: a handler that returns an empty set answers
    /// `400 Bad Request` instead of a stream.
    pub fn to_all<I>(channels: I) -> Subscribe
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let mut subscribe = Subscribe {
            channels: Vec::new(),
            patterns: Vec::new(),
            headers: Vec::new(),
            initial: Vec::new(),
            joinable: false,
            lag_policy: LagPolicy::Disconnect,
        };
        for channel in channels {
            subscribe = subscribe.and(channel);
        }
        subscribe
    }

    /// Adds a header to the stream's head, replacing an earlier one of the same name
    /// (case-insensitively), and the server's default of that name (`Cache-Control: no-cache,
    /// no-transform`, `X-Accel-Buffering: no`, even `Content-Type`).
    ///
    /// # Panics
    /// Like [`Response::with_header`], if the name is not an HTTP token or the value contains
    /// CR, LF or NUL; and for `Content-Length`, `Transfer-Encoding` and `Connection`, which are
    /// the server's (a stream has no length and ends with its connection). In a stream handler the panic becomes a 500, never a split head; use
    /// [`try_with_header`](Self::try_with_header) to handle it yourself.
    pub fn with_header(
        self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Subscribe {
        match self.try_with_header(name, value) {
            Ok(subscribe) => subscribe,
            Err(err) => panic!("{err}"),
        }
    }

    /// Adds a header like [`with_header`](Self::with_header), or refuses it.
    pub fn try_with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<Subscribe, InvalidHeader> {
        let name = name.into();
        let value = value.into();
        check_header(&name, &value)?;
        check_unframed(&name)?;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
        Ok(self)
    }

    /// The stream's own headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// Takes the stream's own headers (already checked) for its head.
    pub(crate) fn take_headers(&mut self) -> Vec<(Cow<'static, str>, String)> {
        std::mem::take(&mut self.headers)
    }

    /// Also subscribe to `channel`.
    pub fn and(mut self, channel: impl Into<String>) -> Subscribe {
        let channel = channel.into();
        if !self.channels.contains(&channel) {
            self.channels.push(channel);
        }
        self
    }

    /// Subscribe to every channel `pattern` covers (see [`Pattern`]): `orders/*` gets the
    /// events of `orders/1`, `orders/2/items`, and of every such channel published to later.
    ///
    /// A stream on a channel and on a pattern that covers it (or on two patterns that do)
    /// gets each event once. A `Last-Event-ID` resume replays the events after that id of
    /// every covered channel the server still knows, in publish order, after `event: reset`
    /// when some were lost, as for channels. Presence (see
    /// [`Config::with_presence`](crate::Config::with_presence)) is not announced for pattern
    /// subscribers, but a pattern covers presence channels (`orders/1/presence`) too.
    ///
    /// # Errors
    /// A pattern whose `*` is not its whole last segment ([`PatternError`], a 400 when a
    /// handler returns it with `?`).
    ///
    /// Not supported yet with the `redis` broker, nor by the in-process test client
    /// ([`crate::test::Client`]): there such a stream answers `501 Not Implemented`.
    ///
    /// # Examples
    /// ```
    /// use house::{Route, Subscribe};
    ///
    /// // Every order of one customer: `/customers/7/orders` streams `orders/7/*`.
    /// let route = Route::stream("/customers/{id}/orders", |ctx| {
    ///     let customer = ctx.request.path_param("id").unwrap_or("");
    ///     Subscribe::to_pattern(format!("orders/{customer}/*"))
    /// });
    /// # let _ = route;
    /// ```
    pub fn to_pattern(pattern: impl Into<String>) -> Result<Subscribe, PatternError> {
        Ok(Subscribe {
            channels: Vec::new(),
            patterns: vec![Pattern::new(pattern)?],
            headers: Vec::new(),
            initial: Vec::new(),
            joinable: false,
            lag_policy: LagPolicy::Disconnect,
        })
    }

    /// Also subscribe to every channel `pattern` covers (see [`to_pattern`](Self::to_pattern)).
    ///
    /// # Errors
    /// A malformed pattern ([`PatternError`]).
    pub fn and_pattern(mut self, pattern: impl Into<String>) -> Result<Subscribe, PatternError> {
        let pattern = Pattern::new(pattern)?;
        if !self.patterns.contains(&pattern) {
            self.patterns.push(pattern);
        }
        Ok(self)
    }

    /// Sends `event` to this connection only, before any live event and after any replay of
    /// what a resuming client missed (and after `event: reset`). Call it again for more.
    ///
    /// This is how a page gets "the current state, then what changes": build the snapshot in
    /// the handler, which runs on the event loop, so every event published after the snapshot
    /// reaches this connection live and none published before does. The event is not
    /// published: it gets no id unless it has one, it is kept in no history, and no other
    /// subscriber sees it. Give it no id unless it should be the client's resume point.
    ///
    /// With the `redis` feature the stream attaches when the broker's replay arrives; its
    /// initial events wait for that, and live events start where the replay ends, not when
    /// the handler ran: a snapshot of this node's own state is not ordered against events
    /// other nodes publish meanwhile.
    ///
    /// # Examples
    /// ```
    /// use house::{Event, Route, Subscribe};
    ///
    /// let route = Route::stream("/rooms/lobby", |ctx| {
    ///     // This connection is not subscribed yet: count it.
    ///     let online = ctx.hub.subscribers("lobby") + 1;
    ///     Subscribe::to("lobby").with_initial(Event::new(online.to_string()).event("snapshot"))
    /// });
    /// # let _ = route;
    /// ```
    pub fn with_initial(mut self, event: Event) -> Subscribe {
        self.initial.push(event);
        self
    }

    /// [`with_initial`](Self::with_initial) for each of `events`, in order.
    pub fn with_initial_events(mut self, events: impl IntoIterator<Item = Event>) -> Subscribe {
        self.initial.extend(events);
        self
    }

    /// The channels, in order (without the patterns).
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The events this connection gets before live ones, in order.
    pub fn initial(&self) -> &[Event] {
        &self.initial
    }

    /// Gives the stream an id, sent as its first event (`event: house-stream`, see
    /// [`STREAM_EVENT`](crate::STREAM_EVENT)), by which closing handlers change its channels
    /// while it is open ([`Hub::join`], [`Hub::leave`]). Opt-in: an id costs memory for as
    /// long as the stream lives, and most streams never change.
    pub fn joinable(mut self) -> Subscribe {
        self.joinable = true;
        self
    }

    /// What happens to this stream when its client falls behind (see [`LagPolicy`];
    /// [`LagPolicy::Disconnect`] unless set). The handler chooses, per stream: it knows what
    /// its channels carry (a log where every event counts, or a state where only the newest
    /// does) and what its client can do with a gap.
    ///
    /// ```
    /// use house::{LagPolicy, Subscribe};
    ///
    /// let subscribe = Subscribe::to("prices/EURUSD").with_lag_policy(LagPolicy::Latest);
    /// assert_eq!(subscribe.lag_policy(), LagPolicy::Latest);
    /// assert_eq!(Subscribe::to("chat").lag_policy(), LagPolicy::Disconnect);
    /// ```
    pub fn with_lag_policy(mut self, policy: LagPolicy) -> Subscribe {
        self.lag_policy = policy;
        self
    }

    /// The stream's slow-consumer policy.
    pub fn lag_policy(&self) -> LagPolicy {
        self.lag_policy
    }

    /// Whether the stream gets an id that [`Hub::join`] and [`Hub::leave`] accept.
    pub fn is_joinable(&self) -> bool {
        self.joinable
    }

    /// The initial events as wire frames, leaving none behind.
    pub(crate) fn take_initial(&mut self) -> Vec<Frame> {
        self.initial
            .drain(..)
            .map(|event| Frame::from(event.to_bytes()))
            .collect()
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

/// A catcher's body: an error the server made in, the response to send instead out.
pub type CatcherFn = dyn Fn(&Caught<'_>) -> Response + Send + Sync;

/// What kind of handler a route runs.
pub enum Handler {
    /// Answers once; the connection then closes or waits for the next request (keep-alive).
    Closing(Box<ClosingFn>),
    /// Answers `200` with `text/event-stream` and keeps the connection subscribed.
    Stream(Box<StreamFn>),
    /// Replaces the server's own answer with this status (see [`Route::catcher`]); never
    /// answers a path.
    Catcher(Status, Box<CatcherFn>),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handler::Closing(_) => f.write_str("Handler::Closing"),
            Handler::Stream(_) => f.write_str("Handler::Stream"),
            Handler::Catcher(status, _) => write!(f, "Handler::Catcher({})", status.code()),
        }
    }
}

/// An error response the server made, as a [catcher](Route::catcher) sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Caught<'a> {
    /// The status of the server's own answer (`404`, `405`, `500`, or the parser's `4xx`/`5xx`).
    pub status: Status,
    /// The request, or `None` when it could not be parsed (or did not arrive in time).
    pub request: Option<&'a Request>,
    /// What went wrong, as the default answer says it (`no handler for `/x``).
    pub detail: String,
}

impl<'a> Caught<'a> {
    /// A caught error: for calling catchers by hand in tests.
    pub fn new(
        status: Status,
        request: Option<&'a Request>,
        detail: impl Into<String>,
    ) -> Caught<'a> {
        Caught {
            status,
            request,
            detail: detail.into(),
        }
    }
}

/// One entry of the handler table: a handler at a path template, or a catcher.
///
/// # Path templates
/// A template is a path whose segments are literal text, `{name}` (any one non-empty
/// segment) or, last, `{*name}` (everything after the `/` before it, at least that `/`: so
/// `/files/{*path}` answers `/files/` with `path = ""` and `/files/a/b` with `path = "a/b"`,
/// but not `/files`). A parameter is a whole segment, its name a Rust identifier, no name
/// twice; only a trailing `/` may leave a segment empty. Handlers read the values with
/// [`Request::path_param`], percent-decoded a segment at a time, so `%2F` is part of a value
/// and never splits a segment.
///
/// Literal segments win over `{name}`, and `{name}` over `{*name}`; when a branch leads
/// nowhere the next one is tried, so with `/a/{x}/c` and `/a/b/d` both `/a/b/c` and `/a/b/d`
/// find their route. Lookup walks a segment trie, so it costs what the path is long, not how
/// many routes there are.
///
/// # Examples
/// ```
/// use house::{Route, Subscribe};
///
/// let room = Route::closing("/rooms/{room}", |ctx| {
///     format!("room {}", ctx.request.path_param("room").unwrap_or_default())
/// });
/// let source = Route::stream("/rooms/{room}/source", |ctx| {
///     Subscribe::to(ctx.request.path_param("room").unwrap_or("lobby"))
/// });
/// let files = Route::closing("/files/{*path}", |ctx| {
///     format!("file {}", ctx.request.path_param("path").unwrap_or_default())
/// });
/// # let _ = (room, source, files);
/// ```
#[derive(Debug)]
pub struct Route {
    name: Cow<'static, str>,
    path: Cow<'static, str>,
    prefix: bool,
    methods: Methods,
    handler: Handler,
    /// The state types the handler reads: `(type, type name)`.
    needs: Vec<(TypeId, &'static str)>,
}

impl Route {
    /// A closing handler at the template `path`.
    pub fn closing<R, F>(path: impl Into<Cow<'static, str>>, handler: F) -> Route
    where
        R: IntoResponse,
        F: Fn(&mut Ctx<'_>) -> R + Send + Sync + 'static,
    {
        let handler = move |ctx: &mut Ctx<'_>| handler(ctx).into_response();
        Route::new(path.into(), Handler::Closing(Box::new(handler)))
    }

    /// A stream handler at the template `path`.
    pub fn stream<R, F>(path: impl Into<Cow<'static, str>>, handler: F) -> Route
    where
        R: IntoSubscribe,
        F: Fn(&mut Ctx<'_>) -> R + Send + Sync + 'static,
    {
        let handler = move |ctx: &mut Ctx<'_>| handler(ctx).into_subscribe();
        Route::new(path.into(), Handler::Stream(Box::new(handler)))
    }

    /// A catcher: answers instead of the server whenever the server itself answers `status`,
    /// which it does for a path no route takes (`404`), a method the path's routes do not
    /// accept (`405`, the `Allow` header is kept), a panicking handler (`500`), and a request
    /// the parser refuses (`400`, `408`, `413`, `414`, `431`, `501`, `505`; with no
    /// [`Caught::request`]). Responses that handlers return are never caught.
    ///
    /// A catcher's `200 OK` goes out with the caught status, so `|_| "no such page"` answers
    /// `404`; any other status it sets is kept. A catcher that panics gets the default answer.
    /// At most one catcher per status.
    ///
    /// # Examples
    /// ```
    /// use house::{Response, Route, Status};
    ///
    /// let not_found = Route::catcher(Status::NOT_FOUND, |caught| {
    ///     let path = caught.request.map_or("?", |r| r.path());
    ///     Response::html(Status::NOT_FOUND, format!("<h1>No {path} here</h1>"))
    /// });
    /// let failed = Route::catcher(Status::INTERNAL_SERVER_ERROR, |_| "sorry");
    /// # let _ = (not_found, failed);
    /// ```
    pub fn catcher<R, F>(status: Status, catcher: F) -> Route
    where
        R: IntoResponse,
        F: Fn(&Caught<'_>) -> R + Send + Sync + 'static,
    {
        let catcher = move |caught: &Caught<'_>| catcher(caught).into_response();
        Route {
            name: Cow::Owned(format!("catcher({})", status.code())),
            path: Cow::Borrowed(""),
            prefix: false,
            methods: Methods::NONE,
            handler: Handler::Catcher(status, Box::new(catcher)),
            needs: Vec::new(),
        }
    }

    /// A route named after its path, accepting the default methods.
    fn new(path: Cow<'static, str>, handler: Handler) -> Route {
        Route {
            name: path.clone(),
            path,
            prefix: false,
            methods: Methods::DEFAULT,
            handler,
            needs: Vec::new(),
        }
    }

    /// Makes the route answer every path below its path, as if it ended in an unnamed
    /// `{*rest}`: `/static/` (or `/static`) answers `/static/` and `/static/css/app.css`, but
    /// neither `/static` nor `/staticky`. Matching is by whole segments like any template, so
    /// a deeper prefix wins over a shallower one and every literal or `{name}` route wins over
    /// a prefix. The handler sees the full path in [`Request::path`].
    pub fn with_prefix(mut self) -> Route {
        self.prefix = true;
        self
    }

    /// Sets the accepted methods (default `GET`, `HEAD`, `POST`). Several routes may share a
    /// template when their methods do not overlap; a method none of them accepts answers
    /// `405` with `Allow`. Without a `HEAD` route, `HEAD` runs the `GET` route and sends
    /// only its head; without an `OPTIONS` route, `OPTIONS` answers `204` with `Allow`.
    ///
    /// # Examples
    /// ```
    /// use house::{Methods, Route, Routes};
    ///
    /// let routes = Routes::new([
    ///     Route::closing("/things", |_| "the list").with_methods(Methods::GET),
    ///     Route::closing("/things", |_| "made").with_methods(Methods::POST),
    /// ])?;
    /// assert_eq!(routes.len(), 2);
    /// # Ok::<(), house::RouteError>(())
    /// ```
    pub fn with_methods(mut self, methods: Methods) -> Route {
        self.methods = methods;
        self
    }

    /// Names the route for error messages (default: its path). The macros use the function name.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Route {
        self.name = name.into();
        self
    }

    /// Records that the handler reads state of type `T`, so that [`Server::run`] refuses to
    /// start without it (the macros add this for each `&T` state argument).
    ///
    /// # Examples
    /// ```
    /// use house::{Route, Server, Config};
    ///
    /// struct Rooms(Vec<String>);
    ///
    /// let rooms = Route::closing("/rooms", |ctx| {
    ///     let count = ctx.state.get::<Rooms>().map_or(0, |rooms| rooms.0.len());
    ///     format!("{count} rooms")
    /// })
    /// .needs_state::<Rooms>();
    /// let server = Server::bind("127.0.0.1:0", Config::default(), [rooms])?;
    /// let err = server.run().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(err.to_string().ends_with("::Rooms`; add it with `Server::with_state`"), "{err}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`Server::run`]: crate::Server::run
    pub fn needs_state<T: 'static>(mut self) -> Route {
        let need = (TypeId::of::<T>(), std::any::type_name::<T>());
        if !self.needs.contains(&need) {
            self.needs.push(need);
        }
        self
    }

    /// The state types the handler reads, as recorded by [`needs_state`](Self::needs_state).
    pub(crate) fn needed_states(&self) -> &[(TypeId, &'static str)] {
        &self.needs
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route's path template (or prefix); empty for a catcher.
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

    /// Runs the handler with `ctx`; a panic is caught and reported as such, so it costs only
    /// its own request.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> Outcome {
        match &self.handler {
            Handler::Closing(handler) => match catch_unwind(AssertUnwindSafe(|| handler(ctx))) {
                Ok(response) => Outcome::Respond(response),
                Err(_) => Outcome::Panicked,
            },
            Handler::Stream(handler) => match catch_unwind(AssertUnwindSafe(|| handler(ctx))) {
                Ok(Ok(subscribe)) => Outcome::Stream(subscribe),
                Ok(Err(response)) => Outcome::Respond(response),
                Err(_) => Outcome::Panicked,
            },
            // The router never picks a catcher for a request.
            Handler::Catcher(..) => Outcome::Respond(Response::error(
                Status::INTERNAL_SERVER_ERROR,
                "a catcher is not a request handler",
            )),
        }
    }
}

/// What a handler produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A response to send.
    Respond(Response),
    /// A stream to start.
    Stream(Subscribe),
    /// The handler panicked: the request gets a `500`.
    Panicked,
}

/// A handler table that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// Two routes answer the same requests: the same template (parameter names aside) with
    /// overlapping methods, or two catchers for one status (`path` is then the status code).
    Duplicate {
        /// The contested template (the second route's spelling), or the status code.
        path: String,
        /// The route registered first.
        first: String,
        /// The route registered second.
        second: String,
    },
    /// A path template breaks a rule (see [`Route`]).
    Template {
        /// The template.
        path: String,
        /// The route's name.
        route: String,
        /// What is wrong, with how to fix it.
        reason: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Duplicate {
                path,
                first,
                second,
            } if !path.starts_with('/') => write!(
                f,
                "status {path} has two catchers: `{first}` and `{second}`"
            ),
            RouteError::Duplicate {
                path,
                first,
                second,
            } => write!(
                f,
                "path `{path}` is registered twice: by `{first}` and by `{second}`"
            ),
            RouteError::Template {
                path,
                route,
                reason,
            } => write!(f, "route `{route}` has a malformed path `{path}`: {reason}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Static(String),
    Param(String),
    /// `{*name}`, or unnamed for a prefix route.
    Rest(Option<String>),
}

/// Splits a template into segments, or says what is wrong with it. A `prefix` route gets an
/// unnamed `{*rest}` in place of its trailing `/` (or after its last segment).
fn parse_template(path: &str, prefix: bool) -> Result<Vec<Segment>, String> {
    let Some(body) = path.strip_prefix('/') else {
        return Err("a path must start with `/`".into());
    };
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len() + 1);
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(name) = angle_param(part) {
            return Err(format!(
                "`<{name}>` is not a parameter here: write `{{{name}}}`"
            ));
        }
        if part.is_empty() {
            if !last {
                return Err("empty segment (`//`): only a trailing `/` may be empty".into());
            }
            segments.push(Segment::Static(String::new()));
            continue;
        }
        if !part.contains(['{', '}']) {
            segments.push(Segment::Static((*part).to_owned()));
            continue;
        }
        let inner = part
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .filter(|inner| !inner.contains(['{', '}']));
        let Some(inner) = inner else {
            return Err(format!(
                "`{part}`: a parameter must be a whole segment, like `/{{name}}/`"
            ));
        };
        let (rest, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        if !is_identifier(name) {
            return Err(format!(
                "`{part}`: a parameter name must be a Rust identifier"
            ));
        }
        if names.contains(&name) {
            return Err(format!("parameter `{name}` appears twice"));
        }
        names.push(name);
        if rest {
            if !last {
                return Err(format!("`{part}` must be the last segment"));
            }
            segments.push(Segment::Rest(Some(name.to_owned())));
        } else {
            segments.push(Segment::Param(name.to_owned()));
        }
    }
    if prefix {
        match segments.last_mut() {
            Some(Segment::Rest(_)) => {}
            Some(last @ Segment::Static(_)) if *last == Segment::Static(String::new()) => {
                *last = Segment::Rest(None)
            }
            _ => segments.push(Segment::Rest(None)),
        }
    }
    Ok(segments)
}

/// The name in a `<name>` segment (another framework's syntax), to point at `{name}`.
fn angle_param(part: &str) -> Option<&str> {
    let open = part.find('<')?;
    let close = part[open..].find('>')? + open;
    Some(&part[open + 1..close])
}

/// An ASCII Rust identifier (not `_` alone).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
}

/// A node of the segment trie: where a path is after some of its segments.
#[derive(Debug, Default)]
struct Node {
    /// Literal next segments.
    statics: HashMap<String, Node>,
    /// A `{name}` next segment (names differ per route; they live in [`Entry`]).
    param: Option<Box<Node>>,
    /// Routes whose template ends here (indices into `Routes::entries`).
    end: Vec<usize>,
    /// Routes whose template ends here in `{*rest}`: they take all remaining segments.
    rest: Vec<usize>,
}

/// A handler route and the names of its parameters, in template order.
#[derive(Debug)]
struct Entry {
    route: Route,
    params: Vec<String>,
    rest: Option<String>,
}

/// The handler table, built once at start-up.
///
/// # Examples
/// ```
/// use house::{Route, RouteError, Routes};
///
/// let clash = Routes::new([
///     Route::closing("/rooms/{name}", |_| "a").with_name("a"),
///     Route::closing("/rooms/{id}", |_| "b").with_name("b"),
/// ]);
/// assert!(matches!(clash, Err(RouteError::Duplicate { .. })));
/// let bad = Routes::new([Route::closing("/rooms/<name>", |_| "")]).unwrap_err();
/// assert_eq!(
///     bad.to_string(),
///     "route `/rooms/<name>` has a malformed path `/rooms/<name>`: \
///      `<name>` is not a parameter here: write `{name}`"
/// );
/// ```
#[derive(Debug, Default)]
pub struct Routes {
    entries: Vec<Entry>,
    root: Node,
    /// Templates without parameters, by their full path, for requests whose path needs no
    /// decoding: one hash instead of a walk (which allocates its segments).
    exact: HashMap<String, Vec<usize>>,
    /// Catchers by status code.
    catchers: HashMap<u16, Route>,
}

/// Where the router sends a request.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    /// Run this route's handler (never a catcher); the request's path parameters are set.
    Handler(&'a Route),
    /// Send this: a 404 or 405 (through its catcher), or the answer to `OPTIONS`.
    Answer(Response),
}

impl Routes {
    /// A table of `routes` (see [`add`](Self::add)).
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Result<Routes, RouteError> {
        let mut table = Routes::default();
        for route in routes {
            table.add(route)?;
        }
        Ok(table)
    }

    /// Adds a route, refusing a malformed template, a template already taken for one of the
    /// same methods (parameter names do not count: `/a/{x}` and `/a/{y}` are one template),
    /// and a second catcher for a status.
    pub fn add(&mut self, route: Route) -> Result<(), RouteError> {
        if let Handler::Catcher(status, _) = route.handler {
            if let Some(first) = self.catchers.get(&status.code()) {
                return Err(RouteError::Duplicate {
                    path: status.code().to_string(),
                    first: first.name.to_string(),
                    second: route.name.to_string(),
                });
            }
            self.catchers.insert(status.code(), route);
            return Ok(());
        }
        let segments =
            parse_template(&route.path, route.prefix).map_err(|reason| RouteError::Template {
                path: route.path.to_string(),
                route: route.name.to_string(),
                reason,
            })?;
        let mut node = &mut self.root;
        let mut params = Vec::new();
        let mut rest = None;
        let mut is_rest = false;
        for segment in segments {
            match segment {
                Segment::Static(text) => node = node.statics.entry(text).or_default(),
                Segment::Param(name) => {
                    params.push(name);
                    node = node.param.get_or_insert_with(Box::default);
                }
                Segment::Rest(name) => {
                    rest = name;
                    is_rest = true;
                }
            }
        }
        let slot = if is_rest {
            &mut node.rest
        } else {
            &mut node.end
        };
        let taken = slot
            .iter()
            .map(|&id| &self.entries[id].route)
            .find(|first| first.methods.overlaps(route.methods));
        if let Some(first) = taken {
            return Err(RouteError::Duplicate {
                path: route.path.to_string(),
                first: first.name.to_string(),
                second: route.name.to_string(),
            });
        }
        slot.push(self.entries.len());
        if !is_rest && params.is_empty() {
            let exact = self.exact.entry(route.path.to_string()).or_default();
            exact.push(self.entries.len());
        }
        self.entries.push(Entry {
            route,
            params,
            rest,
        });
        Ok(())
    }

    /// How many routes there are (catchers included).
    pub fn len(&self) -> usize {
        self.entries.len() + self.catchers.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every route and catcher.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Route> {
        self.entries
            .iter()
            .map(|entry| &entry.route)
            .chain(self.catchers.values())
    }

    /// The state each route reads, as `(route name, type, type name)`: what the server (and
    /// the test client) check before the first request.
    pub(crate) fn state_needs(&self) -> Vec<(String, TypeId, &'static str)> {
        self.iter()
            .flat_map(|route| {
                let name = route.name();
                route
                    .needed_states()
                    .iter()
                    .map(move |&(id, ty)| (name.to_owned(), id, ty))
            })
            .collect()
    }

    /// Finds the route for `request` and fills its path parameters, or makes the answer
    /// when there is none (`404`, `405`, `OPTIONS`), through the catchers.
    pub(crate) fn resolve(&self, request: &mut Request) -> Resolved<'_> {
        let method = request.method();
        if method == Method::Options && request.path() == "*" {
            let all = self
                .entries
                .iter()
                .fold(Methods::NONE, |all, entry| all | entry.route.methods);
            return Resolved::Answer(allow(Response::new(Status::NO_CONTENT), all));
        }
        // A literal template wins over any `{name}`, so a path that is one needs no walk.
        if request.raw_path.is_none() {
            if let Some(ids) = self.exact.get(request.path()) {
                return match self.choose(request, ids) {
                    Ok(entry) => Resolved::Handler(&entry.route),
                    Err(answer) => Resolved::Answer(answer),
                };
            }
        }
        let segments = match split(request.raw_path(), request.raw_path.is_some()) {
            Ok(segments) => segments,
            Err(err) => return Resolved::Answer(self.refuse(&err, Some(request))),
        };
        let mut captures = Vec::new();
        let found = segments
            .as_ref()
            .and_then(|segments| walk(&self.root, segments, 0, &mut captures));
        let (Some(segments), Some((node, rest_at))) = (segments, found) else {
            let detail = format!("no handler for `{}`", request.path());
            let response = Response::error(Status::NOT_FOUND, &detail);
            return Resolved::Answer(self.catch(Some(request), detail, response));
        };
        let ids = if rest_at.is_some() {
            &node.rest
        } else {
            &node.end
        };
        let entry = match self.choose(request, ids) {
            Ok(entry) => entry,
            Err(answer) => return Resolved::Answer(answer),
        };
        let mut params = Params::new();
        for (name, &at) in entry.params.iter().zip(&captures) {
            params.push(name.as_str(), segments[at].as_ref());
        }
        if let (Some(name), Some(at)) = (&entry.rest, rest_at) {
            let rest: Vec<&str> = segments[at..].iter().map(AsRef::as_ref).collect();
            params.push(name.as_str(), rest.join("/"));
        }
        drop(segments);
        request.path_params = params;
        Resolved::Handler(&entry.route)
    }

    /// The methods the routes at `request`'s path take, or `None` when no route has its path
    /// (for a CORS preflight, which is answered before routing).
    pub(crate) fn methods_at(&self, request: &Request) -> Option<Methods> {
        let methods = |ids: &[usize]| {
            ids.iter().fold(Methods::NONE, |all, &id| {
                all | self.entries[id].route.methods
            })
        };
        if request.raw_path.is_none() {
            if let Some(ids) = self.exact.get(request.path()) {
                return Some(methods(ids));
            }
        }
        let segments = split(request.raw_path(), request.raw_path.is_some()).ok()??;
        let mut captures = Vec::new();
        let (node, rest_at) = walk(&self.root, &segments, 0, &mut captures)?;
        Some(methods(if rest_at.is_some() {
            &node.rest
        } else {
            &node.end
        }))
    }

    /// The route among `ids` for `method`: the one that accepts it, else for `HEAD` the `GET`
    /// route (RFC 9110 9.3.2: the same answer without the body).
    /// The route among `ids` (one template's) for the request's method, or the answer when
    /// there is none: `204` with `Allow` to `OPTIONS`, else `405` (through its catcher).
    fn choose(&self, request: &Request, ids: &[usize]) -> Result<&Entry, Response> {
        let method = request.method();
        if let Some(entry) = self.pick(ids, method) {
            return Ok(entry);
        }
        let allowed = ids.iter().fold(Methods::NONE, |all, &id| {
            all | self.entries[id].route.methods
        });
        if method == Method::Options {
            return Err(allow(Response::new(Status::NO_CONTENT), allowed));
        }
        let header = allow_header(allowed);
        let detail = format!("`{}` accepts {header}", request.path());
        let response = allow(
            Response::error(Status::METHOD_NOT_ALLOWED, &detail),
            allowed,
        );
        Err(self.catch(Some(request), detail, response))
    }

    fn pick(&self, ids: &[usize], method: Method) -> Option<&Entry> {
        let accepting = |method: Method| {
            ids.iter()
                .map(|&id| &self.entries[id])
                .find(|entry| entry.route.methods.contains(method))
        };
        accepting(method).or_else(|| match method {
            Method::Head => accepting(Method::Get),
            _ => None,
        })
    }

    /// The answer to a request refused before routing (by the parser, with no `request`),
    /// through its catcher.
    pub(crate) fn refuse(&self, err: &Error, request: Option<&Request>) -> Response {
        let detail = err.to_string();
        let response = Response::error(status_for(err), &detail);
        self.catch(request, detail, response)
    }

    /// The server's own error answer `default` (with `detail`, what went wrong), or what the
    /// catcher for its status makes of it. A catcher's `200` takes the caught status; a
    /// `405`'s `Allow` is kept; a panicking catcher leaves `default`.
    pub(crate) fn catch(
        &self,
        request: Option<&Request>,
        detail: String,
        default: Response,
    ) -> Response {
        let status = default.status();
        let Some(Handler::Catcher(_, catcher)) =
            self.catchers.get(&status.code()).map(Route::handler)
        else {
            return default;
        };
        let caught = Caught {
            status,
            request,
            detail,
        };
        let response = match catch_unwind(AssertUnwindSafe(|| catcher(&caught))) {
            Ok(response) => response,
            Err(_) => {
                log::warn!("the catcher for {} panicked", status.code());
                return default;
            }
        };
        let response = if response.status() == Status::OK {
            (status, response).into_response()
        } else {
            response
        };
        match default.header("allow") {
            Some(methods) if response.header("allow").is_none() => {
                response.append_header("Allow", methods.to_owned())
            }
            _ => response,
        }
    }
}

/// `allowed` as an `Allow` header lists it: `HEAD` comes with `GET`, and `OPTIONS` is
/// always answered.
fn allow_header(allowed: Methods) -> String {
    let mut allowed = allowed | Methods::OPTIONS;
    if allowed.contains(Method::Get) {
        allowed = allowed | Methods::HEAD;
    }
    allowed.allow_header()
}

fn allow(response: Response, allowed: Methods) -> Response {
    response.append_header("Allow", allow_header(allowed))
}

/// The path's segments, each percent-decoded on its own if `encoded` (so `%2F` stays inside
/// its segment); `None` for a path that does not start with `/`.
fn split(raw: &str, encoded: bool) -> Result<Option<Vec<Cow<'_, str>>>, Error> {
    let Some(body) = raw.strip_prefix('/') else {
        return Ok(None);
    };
    let mut segments = Vec::with_capacity(8);
    for part in body.split('/') {
        let text = if encoded && part.contains('%') {
            percent_decode_str(part)
                .decode_utf8()
                .map_err(|_| Error::InvalidUtf8)?
        } else {
            Cow::Borrowed(part)
        };
        segments.push(text);
    }
    Ok(Some(segments))
}

/// The trie node that `segments[at..]` lead to from `node`, and where a catch-all took the
/// rest (if one did); `captures` gets the index of each segment a `{name}` took. Literal
/// before `{name}` before `{*rest}`, backing out of dead ends. A node's depth is the number of
/// segments taken, so no node is visited twice.
fn walk<'n>(
    node: &'n Node,
    segments: &[Cow<'_, str>],
    at: usize,
    captures: &mut Vec<usize>,
) -> Option<(&'n Node, Option<usize>)> {
    let Some(segment) = segments.get(at) else {
        return (!node.end.is_empty()).then_some((node, None));
    };
    if let Some(child) = node.statics.get(segment.as_ref()) {
        if let Some(found) = walk(child, segments, at + 1, captures) {
            return Some(found);
        }
    }
    if let Some(child) = node.param.as_deref().filter(|_| !segment.is_empty()) {
        captures.push(at);
        if let Some(found) = walk(child, segments, at + 1, captures) {
            return Some(found);
        }
        captures.pop();
    }
    (!node.rest.is_empty()).then_some((node, Some(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: impl IntoIterator<Item = Route>) -> Routes {
        Routes::new(routes).unwrap()
    }

    /// A closing route named `name` at `path`.
    fn at(path: &'static str, name: &'static str) -> Route {
        Route::closing(path, |_| "").with_name(name)
    }

    /// The request as the parser would build it from the raw `target`.
    fn parsed(method: &str, target: &str) -> Request {
        let bytes = format!("{method} {target} HTTP/1.1\r\n\r\n");
        match crate::parse::parse_request(bytes.as_bytes(), 4096, 8) {
            Ok(crate::parse::Parsed::Complete { request, .. }) => *request,
            other => panic!("{target}: {other:?}"),
        }
    }

    /// Which route `GET target` runs, and its path parameters; or the answer's status.
    fn route_of(routes: &Routes, target: &str) -> Result<(String, Vec<(String, String)>), u16> {
        let mut request = parsed("GET", target);
        match routes.resolve(&mut request) {
            Resolved::Handler(route) => Ok((
                route.name().to_owned(),
                request
                    .path_params()
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            )),
            Resolved::Answer(response) => Err(response.status().code()),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn literal_paths_resolve_alike_with_and_without_encoding() {
        // `/h%65llo` takes the walk, `/hello` the table of literal templates: same answers.
        let routes = table([
            Route::closing("/hello", |_| "")
                .with_name("hello")
                .with_methods(Methods::GET),
            at("/{x}", "param"),
            at("/a/b", "ab"),
            at("/a/{x}", "a-param"),
        ]);
        for (plain, encoded) in [
            ("/hello", "/h%65llo"),
            ("/a/b", "/a/%62"),
            ("/a/c", "/a/%63"),
        ] {
            assert_eq!(
                route_of(&routes, plain),
                route_of(&routes, encoded),
                "{plain}"
            );
        }
        assert_eq!(route_of(&routes, "/hello").unwrap().0, "hello");
        let mut post = parsed("POST", "/hello");
        let Resolved::Answer(refused) = routes.resolve(&mut post) else {
            panic!("POST /hello is not routed to `{{x}}`");
        };
        assert_eq!(refused.status(), Status::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn static_beats_param_beats_catch_all() {
        let routes = table([
            at("/a/b", "static"),
            at("/a/{x}", "param"),
            at("/a/{*rest}", "rest"),
        ]);
        assert_eq!(route_of(&routes, "/a/b"), Ok(("static".into(), vec![])));
        assert_eq!(
            route_of(&routes, "/a/c"),
            Ok(("param".into(), params(&[("x", "c")])))
        );
        assert_eq!(
            route_of(&routes, "/a/c/d"),
            Ok(("rest".into(), params(&[("rest", "c/d")])))
        );
        // `{x}` takes no empty segment; `{*rest}` takes the bare trailing `/`.
        assert_eq!(
            route_of(&routes, "/a/"),
            Ok(("rest".into(), params(&[("rest", "")])))
        );
        assert_eq!(route_of(&routes, "/a"), Err(404));
    }

    #[test]
    fn backtracks_out_of_dead_ends() {
        let routes = table([
            at("/a/{x}/c", "param"),
            at("/a/b/d", "static"),
            at("/{*rest}", "fallback"),
        ]);
        assert_eq!(
            route_of(&routes, "/a/b/c"),
            Ok(("param".into(), params(&[("x", "b")])))
        );
        assert_eq!(route_of(&routes, "/a/b/d"), Ok(("static".into(), vec![])));
        assert_eq!(
            route_of(&routes, "/a/b/e"),
            Ok(("fallback".into(), params(&[("rest", "a/b/e")])))
        );
        // A `{x}` capture from a branch that was backed out of is not kept.
        let routes = table([at("/{x}/{y}/z", "deep"), at("/p/{y}", "shallow")]);
        assert_eq!(
            route_of(&routes, "/p/q"),
            Ok(("shallow".into(), params(&[("y", "q")])))
        );
        assert_eq!(
            route_of(&routes, "/p/q/z"),
            Ok(("deep".into(), params(&[("x", "p"), ("y", "q")])))
        );
    }

    #[test]
    fn segments_decoded_one_at_a_time() {
        let routes = table([
            at("/rooms/{room}/messages", "messages"),
            at("/files/{*path}", "files"),
            at("/a b/{x}", "spaced"),
        ]);
        // `%2F` stays inside its segment rather than making two.
        assert_eq!(
            route_of(&routes, "/rooms/a%2Fb/messages"),
            Ok(("messages".into(), params(&[("room", "a/b")])))
        );
        assert_eq!(
            route_of(&routes, "/rooms/%C3%A9t%C3%A9/messages"),
            Ok(("messages".into(), params(&[("room", "\u{e9}t\u{e9}")])))
        );
        assert_eq!(route_of(&routes, "/rooms/a/b/messages"), Err(404));
        // Literal segments are compared decoded.
        assert_eq!(
            route_of(&routes, "/a%20b/%7Bx%7D"),
            Ok(("spaced".into(), params(&[("x", "{x}")])))
        );
        assert_eq!(
            route_of(&routes, "/files/a%2Fb/c%20d"),
            Ok(("files".into(), params(&[("path", "a/b/c d")])))
        );
        assert_eq!(route_of(&routes, "/files"), Err(404));
        // A hand-built request's path is taken as already decoded.
        let mut request = Request::new(Method::Get, "/rooms/a%2Fb/messages");
        assert!(matches!(routes.resolve(&mut request), Resolved::Handler(_)));
        assert_eq!(request.path_param("room"), Some("a%2Fb"));
    }

    #[test]
    fn a_segment_that_is_not_utf8_is_a_400() {
        let routes = table([at("/{x}", "x")]);
        let mut request = Request::new(Method::Get, "/?");
        request.raw_path = Some("/%ff".into());
        match routes.resolve(&mut request) {
            Resolved::Answer(response) => assert_eq!(response.status(), Status::BAD_REQUEST),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefix_is_an_unnamed_catch_all() {
        let routes = table([
            at("/static/", "dir").with_prefix(),
            at("/static/img", "img").with_prefix(),
            at("/static/app.js", "exact"),
        ]);
        assert_eq!(
            route_of(&routes, "/static/app.js"),
            Ok(("exact".into(), vec![]))
        );
        assert_eq!(
            route_of(&routes, "/static/x.css"),
            Ok(("dir".into(), vec![]))
        );
        assert_eq!(route_of(&routes, "/static/"), Ok(("dir".into(), vec![])));
        assert_eq!(
            route_of(&routes, "/static/img/a.png"),
            Ok(("img".into(), vec![]))
        );
        assert_eq!(route_of(&routes, "/static/img"), Ok(("dir".into(), vec![])));
        assert_eq!(route_of(&routes, "/static"), Err(404));
        assert_eq!(route_of(&routes, "/staticky"), Err(404));
        let everything = table([at("/", "all").with_prefix()]);
        assert_eq!(route_of(&everything, "/"), Ok(("all".into(), vec![])));
        assert_eq!(route_of(&everything, "/x/y"), Ok(("all".into(), vec![])));
    }

    #[test]
    fn duplicates_name_both_routes() {
        let err = Routes::new([at("/a", "first"), at("/a", "second")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "path `/a` is registered twice: by `first` and by `second`"
        );
        // Parameter names do not tell templates apart.
        let err = Routes::new([at("/a/{x}", "first"), at("/a/{y}", "second")]).unwrap_err();
        assert_eq!(
            err,
            RouteError::Duplicate {
                path: "/a/{y}".into(),
                first: "first".into(),
                second: "second".into()
            }
        );
        let err = Routes::new([at("/f/{*a}", "first"), at("/f/", "second").with_prefix()]);
        assert!(matches!(err, Err(RouteError::Duplicate { .. })), "{err:?}");
        // Overlapping methods clash; disjoint ones share the template.
        let err = Routes::new([
            at("/a/{x}", "first").with_methods(Methods::GET | Methods::POST),
            at("/a/{y}", "second").with_methods(Methods::POST),
        ]);
        assert!(matches!(err, Err(RouteError::Duplicate { .. })), "{err:?}");
        let routes = table([
            at("/a/{x}", "get").with_methods(Methods::GET),
            at("/a/{y}", "post").with_methods(Methods::POST),
        ]);
        assert_eq!(
            route_of(&routes, "/a/1"),
            Ok(("get".into(), params(&[("x", "1")])))
        );
        // `/a/{x}` and `/a/{*x}` and `/a/b` are different shapes.
        table([at("/a/{x}", "p"), at("/a/{*x}", "r"), at("/a/b", "s")]);
        let err = Routes::new([
            Route::catcher(Status::NOT_FOUND, |_| "a").with_name("a"),
            Route::catcher(Status::NOT_FOUND, |_| "b").with_name("b"),
        ])
        .unwrap_err();
        assert_eq!(err.to_string(), "status 404 has two catchers: `a` and `b`");
    }

    #[test]
    fn malformed_templates() {
        for (path, reason) in [
            ("a/b", "a path must start with `/`"),
            ("", "a path must start with `/`"),
            (
                "/a//b",
                "empty segment (`//`): only a trailing `/` may be empty",
            ),
            (
                "//",
                "empty segment (`//`): only a trailing `/` may be empty",
            ),
            (
                "/a/<name>",
                "`<name>` is not a parameter here: write `{name}`",
            ),
            ("/a/x<id>", "`<id>` is not a parameter here: write `{id}`"),
            (
                "/a{b}",
                "`a{b}`: a parameter must be a whole segment, like `/{name}/`",
            ),
            (
                "/{a}b",
                "`{a}b`: a parameter must be a whole segment, like `/{name}/`",
            ),
            (
                "/{a",
                "`{a`: a parameter must be a whole segment, like `/{name}/`",
            ),
            (
                "/a}",
                "`a}`: a parameter must be a whole segment, like `/{name}/`",
            ),
            (
                "/{{a}}",
                "`{{a}}`: a parameter must be a whole segment, like `/{name}/`",
            ),
            ("/{}", "`{}`: a parameter name must be a Rust identifier"),
            ("/{*}", "`{*}`: a parameter name must be a Rust identifier"),
            (
                "/{1x}",
                "`{1x}`: a parameter name must be a Rust identifier",
            ),
            (
                "/{a-b}",
                "`{a-b}`: a parameter name must be a Rust identifier",
            ),
            ("/{_}", "`{_}`: a parameter name must be a Rust identifier"),
            (
                "/{ a }",
                "`{ a }`: a parameter name must be a Rust identifier",
            ),
            ("/{a}/{a}", "parameter `a` appears twice"),
            ("/{a}/{*a}", "parameter `a` appears twice"),
            ("/{*rest}/x", "`{*rest}` must be the last segment"),
            ("/{*rest}/", "`{*rest}` must be the last segment"),
        ] {
            let err = Routes::new([at(path, "r")]).unwrap_err();
            assert_eq!(
                err,
                RouteError::Template {
                    path: path.into(),
                    route: "r".into(),
                    reason: reason.into()
                },
                "{path}"
            );
        }
        for fine in ["/", "/a/", "/{_a}/{b2}/", "/{*rest}", "/a/{x}/{*rest}"] {
            table([at(fine, "r")]);
        }
    }

    /// The answer `method target` gets: status and `Allow`.
    fn answer(routes: &Routes, method: &str, target: &str) -> (u16, Option<String>) {
        let mut request = parsed(method, target);
        match routes.resolve(&mut request) {
            Resolved::Answer(response) => (
                response.status().code(),
                response.header("allow").map(str::to_owned),
            ),
            Resolved::Handler(route) => (0, Some(route.name().to_owned())),
        }
    }

    #[test]
    fn methods_405_head_and_options() {
        let routes = table([
            at("/things", "list").with_methods(Methods::GET),
            at("/things", "make").with_methods(Methods::POST),
            at("/put", "put").with_methods(Methods::PUT),
            at("/own-options", "opt").with_methods(Methods::OPTIONS | Methods::GET),
            at("/head", "head").with_methods(Methods::HEAD),
            at("/head", "get").with_methods(Methods::GET),
        ]);
        let run = |name: &str| (0, Some(name.to_owned()));
        assert_eq!(answer(&routes, "GET", "/things"), run("list"));
        assert_eq!(answer(&routes, "POST", "/things"), run("make"));
        // HEAD runs the GET route unless there is a HEAD route.
        assert_eq!(answer(&routes, "HEAD", "/things"), run("list"));
        assert_eq!(answer(&routes, "HEAD", "/head"), run("head"));
        let allow = Some("GET, HEAD, POST, OPTIONS".to_owned());
        assert_eq!(answer(&routes, "DELETE", "/things"), (405, allow.clone()));
        assert_eq!(answer(&routes, "BREW", "/things"), (405, allow.clone()));
        assert_eq!(answer(&routes, "OPTIONS", "/things"), (204, allow));
        // No GET, so no HEAD.
        let put = Some("PUT, OPTIONS".to_owned());
        assert_eq!(answer(&routes, "HEAD", "/put"), (405, put.clone()));
        assert_eq!(answer(&routes, "OPTIONS", "/put"), (204, put));
        assert_eq!(answer(&routes, "OPTIONS", "/own-options"), run("opt"));
        assert_eq!(answer(&routes, "OPTIONS", "/nope"), (404, None));
        assert_eq!(
            answer(&routes, "OPTIONS", "*"),
            (204, Some("GET, HEAD, POST, PUT, OPTIONS".to_owned()))
        );
        assert_eq!(
            answer(&table([]), "OPTIONS", "*"),
            (204, Some("OPTIONS".to_owned()))
        );
    }

    fn text(response: &Response) -> &str {
        match response.body() {
            crate::response::Body::Bytes(bytes) => std::str::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn catchers_replace_the_servers_answers() {
        let routes = table([
            at("/post", "post").with_methods(Methods::POST),
            Route::catcher(Status::NOT_FOUND, |caught| {
                let path = caught.request.map_or("-", Request::path).to_owned();
                format!("{} {path}: {}", caught.status.code(), caught.detail)
            }),
            Route::catcher(Status::METHOD_NOT_ALLOWED, |_| {
                (Status::SERVICE_UNAVAILABLE, "teapot")
            }),
            Route::catcher(Status::PAYLOAD_TOO_LARGE, |_| -> &str {
                panic!("catcher fails")
            }),
        ]);
        let mut request = parsed("GET", "/nope");
        let Resolved::Answer(response) = routes.resolve(&mut request) else {
            panic!("routed")
        };
        assert_eq!(response.status(), Status::NOT_FOUND);
        assert_eq!(text(&response), "404 /nope: no handler for `/nope`");
        // Another status is kept, and so is `Allow`.
        let mut request = parsed("GET", "/post");
        let Resolved::Answer(response) = routes.resolve(&mut request) else {
            panic!("routed")
        };
        assert_eq!(response.status(), Status::SERVICE_UNAVAILABLE);
        assert_eq!(response.header("allow"), Some("POST, OPTIONS"));
        // A panicking catcher leaves the default; a status without a catcher is as it was.
        let response = routes.refuse(&Error::TooLarge, None);
        assert_eq!(response.status(), Status::PAYLOAD_TOO_LARGE);
        assert_eq!(
            text(&response),
            "413 Content Too Large: request too large\n"
        );
        let response = routes.refuse(&Error::UriTooLong, None);
        assert_eq!(response.status(), Status::URI_TOO_LONG);
    }

    #[test]
    fn needs_state_records_each_type_once() {
        struct AppState;
        let route = at("/", "r")
            .needs_state::<AppState>()
            .needs_state::<String>()
            .needs_state::<AppState>();
        let names: Vec<&str> = route.needed_states().iter().map(|(_, n)| *n).collect();
        assert_eq!(names.len(), 2);
        assert!(names[0].ends_with("AppState"), "{names:?}");
        assert_eq!(route.needed_states()[1].0, TypeId::of::<String>());
        let routes = table([route, Route::catcher(Status::NOT_FOUND, |_| "")]);
        assert_eq!(routes.iter().count(), 2);
    }
}
