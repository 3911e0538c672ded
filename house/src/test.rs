//! An in-process client for tests of handler logic: a request goes through the same parser,
//! routing, catchers, guards, extraction and handler as one from a socket, without a socket.
//!
//! Keep socket tests for what the connection does (keep-alive, limits, slow readers); use
//! this for what handlers answer.
//!
//! # Examples
//! ```
//! use house::test::Client;
//! use house::{closing_handler, routes, stream_handler, Event, Hub, PublishError, Subscribe};
//!
//! #[closing_handler("/rooms/{room}/messages", methods = [POST])]
//! fn post(#[param(max = 16)] room: String, #[param(min = 1)] text: String, hub: &mut Hub)
//!     -> Result<&'static str, PublishError> {
//!     hub.publish(&room, Event::new(text))?;
//!     Ok("sent")
//! }
//!
//! #[stream_handler("/rooms/{room}/events")]
//! fn events(#[param(max = 16)] room: String) -> Subscribe {
//!     Subscribe::to(room)
//! }
//!
//! let client = Client::new(routes![post, events]).unwrap();
//! let mut stream = client.stream("/rooms/lobby/events").unwrap();
//!
//! let response = client.post("/rooms/lobby/messages").form(&[("text", "hi")]).send();
//! assert_eq!((response.status().code(), response.text().as_str()), (200, "sent"));
//! assert_eq!(stream.next_event().unwrap().data, "hi");
//!
//! let refused = client.post("/rooms/lobby/messages").send();
//! assert_eq!(refused.status().code(), 400);
//! assert_eq!(refused.text(), "400 Bad Request: missing parameter `text`\n");
//! assert_eq!(client.get("/nowhere").send().status().code(), 404);
//! ```

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use mio::Token;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::answer::{Answer, App};
use crate::config::Config;
use crate::cors::is_preflight;
use crate::hub::{Change, HistoryLimits, Hub};
use crate::parse::{parse_request, Parsed};
use crate::request::Method;
use crate::response::{Body, Response, Status};
use crate::route::{Route, Routes};
use crate::session::Sessions;
use crate::sse::{reset_event, stream_id_event, stream_response, Event, RESET_EVENT};
use crate::state::States;
use crate::stats::Stats;

/// How long [`TestStream::next_event`] waits for an event published from another thread.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);

/// An in-process client of one app: its routes, its state, a hub and a session store, and a
/// cookie jar, so a session started by one request is seen by the next.
///
/// A client and its streams live on one thread; to publish from another thread, as a
/// background job would through a [`Handle`](crate::Handle), use a [`Publisher`].
pub struct Client {
    app: Rc<RefCell<Shared>>,
}

/// What a client shares with its streams.
struct Shared {
    routes: Routes,
    /// What each route needs from the state: `(route name, type, type name)`.
    needs: Vec<(String, TypeId, &'static str)>,
    states: States,
    hub: Hub,
    sessions: Sessions,
    stats: Stats,
    config: Config,
    /// Cookies set by responses: name → value.
    cookies: Vec<(String, String)>,
    /// Each open stream's channels, and its events in order.
    streams: HashMap<Token, Open>,
    next_token: usize,
    /// Every event published, in order.
    published: Vec<(String, TestEvent)>,
    outside: Receiver<(String, Event)>,
    publisher: Sender<(String, Event)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `routes` with the default [`Config`]. Fails like `Server::bind` on a route
    /// table that cannot be built.
    pub fn new(routes: impl IntoIterator<Item = Route>) -> io::Result<Client> {
        Client::with_config(Config::default(), routes)
    }

    /// A client of `routes` with `config` (its limits, history and session settings).
    pub fn with_config(
        config: Config,
        routes: impl IntoIterator<Item = Route>,
    ) -> io::Result<Client> {
        let routes =
            Routes::new(routes).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let needs = routes.state_needs();
        let mut hub = Hub::new(HistoryLimits::from(&config));
        hub.set_presence(config.presence());
        hub.record();
        let (publisher, outside) = mpsc::channel();
        let app = Shared {
            routes,
            needs,
            states: States::default(),
            hub,
            sessions: Sessions::new(&config),
            stats: Stats::default(),
            config,
            cookies: Vec::new(),
            streams: HashMap::new(),
            next_token: 0,
            published: Vec::new(),
            outside,
            publisher,
        };
        Ok(Client {
            app: Rc::new(RefCell::new(app)),
        })
    }

    /// Adds state for handlers that take `&T`, as `Server::with_state` does.
    pub fn with_state<T: Send + Sync + 'static>(self, value: T) -> Client {
        self.app.borrow_mut().states.insert(value);
        self
    }

    /// A `GET` request to `target` (a path with an optional `?query`).
    pub fn get(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::Get, target)
    }

    /// A `POST` request.
    pub fn post(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::Post, target)
    }

    /// A `PUT` request.
    pub fn put(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::Put, target)
    }

    /// A `DELETE` request.
    pub fn delete(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::Delete, target)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, target: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method: method.as_str().to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Opens a stream at `target` with `GET`: the handler's subscription, or its refusal.
    pub fn stream(&self, target: &str) -> Result<TestStream, TestResponse> {
        self.get(target).open()
    }

    /// A handle that publishes from any thread; the events reach streams when they next wait.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            sender: self.app.borrow().publisher.clone(),
        }
    }

    /// Every event published so far (by handlers and publishers), with its channel.
    pub fn published(&self) -> Vec<(String, TestEvent)> {
        let mut app = self.app.borrow_mut();
        app.deliver();
        app.published.clone()
    }

    /// The cookie `name` the client holds, as a response set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let app = self.app.borrow();
        app.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// A request being built; [`send`](Self::send) it, or [`open`](Self::open) a stream with it.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct TestRequest<'c> {
    client: &'c Client,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestRequest<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (with no `Content-Type` unless a header gives one).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A form body, `application/x-www-form-urlencoded`.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let mut body = String::new();
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                body.push('&');
            }
            body.extend(percent_encoding::utf8_percent_encode(name, FORM));
            body.push('=');
            body.extend(percent_encoding::utf8_percent_encode(value, FORM));
        }
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// A JSON body, `application/json`.
    ///
    /// # Panics
    /// If `value` cannot be serialized.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("a JSON body that serializes");
        self.header("Content-Type", "application/json").body(body)
    }

    /// A bearer token, `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        let value = format!("Bearer {token}");
        self.header("Authorization", &value)
    }

    /// Sends the request and returns the response (a stream handler's refusal, or for a
    /// stream, its head only: use [`open`](Self::open) to read events).
    pub fn send(self) -> TestResponse {
        match self.exchange() {
            Exchanged::Response(response) => response,
            Exchanged::Stream(stream) => {
                let response = stream.head.clone();
                drop(stream);
                response
            }
        }
    }

    /// Sends the request to a stream handler and returns the open stream, or the response
    /// that refused it.
    pub fn open(self) -> Result<TestStream, TestResponse> {
        match self.exchange() {
            Exchanged::Stream(stream) => Ok(stream),
            Exchanged::Response(response) => Err(response),
        }
    }

    fn exchange(self) -> Exchanged {
        let client = self.client;
        let mut wire = format!("{} {} HTTP/1.1\r\nHost: test\r\n", self.method, self.target);
        let cookies = {
            let app = client.app.borrow();
            app.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookies.is_empty() {
            wire.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        for (name, value) in &self.headers {
            wire.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() {
            wire.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        wire.push_str("\r\n");
        let mut bytes = wire.into_bytes();
        bytes.extend_from_slice(&self.body);
        let mut app = client.app.borrow_mut();
        app.exchange(&bytes, client)
    }
}

/// Characters a form field must escape.
const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

enum Exchanged {
    Response(TestResponse),
    Stream(TestStream),
}

/// An open stream, as the client keeps it.
#[derive(Default)]
struct Open {
    channels: Vec<String>,
    events: VecDeque<TestEvent>,
}

impl Shared {
    /// `response` with the CORS headers the server would add (see [`Cors`](crate::cors::Cors)).
    fn cors(&self, response: Response, origin: Option<&str>) -> Response {
        match self.config.cors() {
            Some(cors) => cors.apply(response, origin),
            None => response,
        }
    }

    fn exchange(&mut self, bytes: &[u8], client: &Client) -> Exchanged {
        // As `Server::run` refuses to start; in a test, the panic is the report.
        let needs = self
            .needs
            .iter()
            .map(|(route, id, ty)| (route.as_str(), *id, *ty));
        if let Err(err) = self.states.check(needs) {
            panic!("{err} (on the test client: `Client::with_state`)");
        }
        self.deliver();
        let max_size = self.config.max_request_size();
        let max_headers = self.config.max_headers();
        let request = match parse_request(bytes, max_size, max_headers) {
            Ok(Parsed::Complete { request, .. }) => request,
            Ok(Parsed::Partial) => {
                let response = Response::error(Status::BAD_REQUEST, "incomplete request");
                return Exchanged::Response(TestResponse::from_response(response, false));
            }
            Err(err) => {
                let response = self.cors(self.routes.refuse(&err, None), None);
                return Exchanged::Response(TestResponse::from_response(response, false));
            }
        };
        let mut request = request;
        let head = request.method() == Method::Head;
        // As the server does: a preflight is answered before any handler.
        if let Some(cors) = self.config.cors().filter(|_| is_preflight(&request)) {
            if let Some(methods) = self.routes.methods_at(&request) {
                let response = cors.preflight(&request, methods);
                let response = self.cors(response, request.header("origin"));
                return Exchanged::Response(TestResponse::from_response(response, false));
            }
        }
        let app = App {
            routes: &self.routes,
            hub: &mut self.hub,
            sessions: &mut self.sessions,
            states: &self.states,
            stats: &self.stats,
            // Jobs run inline here: there is always room.
            offload_room: true,
            now: Instant::now(),
        };
        let answer = app.answer(&mut request);
        self.hub.await_acks(None);
        // As on a server: the handler's joins and leaves take effect before its answer.
        self.apply_changes();
        let exchanged = match answer {
            Answer::Respond { mut response, .. } => {
                // An offloaded job runs inline: the test waits for it, as the client would.
                if let Some(deferred) = response.take_deferred() {
                    response = match deferred.run() {
                        Some(result) => result.with_headers_of(response),
                        None => Response::error(Status::INTERNAL_SERVER_ERROR, "the job failed"),
                    };
                }
                let response = self.cors(response, request.header("origin"));
                self.keep_cookies(&response);
                Exchanged::Response(TestResponse::from_response(response, head))
            }
            Answer::Stream(mut subscribe) => {
                let token = Token(self.next_token);
                self.next_token += 1;
                let mut events = VecDeque::new();
                // What happened before this stream subscribed goes to the streams already there.
                self.deliver();
                // A joinable stream's first event names its id, as on a socket.
                let id = if subscribe.is_joinable() {
                    match self.hub.open_stream(token) {
                        Ok(id) => Some(id),
                        Err(err) => panic!("no id for a joinable test stream: {err}"),
                    }
                } else {
                    None
                };
                if let Some(id) = &id {
                    events.push_back(TestEvent::parse(&stream_id_event(id)));
                }
                if let Some(id) = request
                    .header("last-event-id")
                    .or_else(|| request.param("last_event_id"))
                {
                    let replay = self.hub.replay(subscribe.channels(), id.trim());
                    if replay.reset {
                        events.push_back(TestEvent::reset());
                    }
                    events.extend(replay.frames.iter().map(|f| TestEvent::parse(f)));
                }
                let initial = subscribe.take_initial();
                events.extend(initial.iter().map(|f| TestEvent::parse(f)));
                for channel in subscribe.channels() {
                    self.hub.subscribe(token, channel);
                }
                let channels = subscribe.channels().to_vec();
                self.streams.insert(token, Open { channels, events });
                let head = stream_response().with_checked_headers(subscribe.take_headers());
                let head = self.cors(head, request.header("origin"));
                let head = TestResponse::from_response(head, true);
                Exchanged::Stream(TestStream {
                    app: Rc::clone(&client.app),
                    token,
                    id,
                    head,
                })
            }
        };
        self.deliver();
        exchanged
    }

    /// Applies the joins and leaves handlers made, in order, as `Server::apply_changes` does:
    /// what was published before a join goes to the streams already there, then the joining
    /// stream gets its replay, then live events.
    fn apply_changes(&mut self) {
        let changes = self.hub.take_changes();
        if changes.is_empty() {
            return;
        }
        self.deliver();
        for change in changes {
            match change {
                Change::Join {
                    token,
                    channel,
                    last_event_id,
                    after_seq,
                    ..
                } => {
                    let Some(open) = self.streams.get_mut(&token) else {
                        continue;
                    };
                    if open.channels.contains(&channel) {
                        continue;
                    }
                    let replay = match &last_event_id {
                        Some(id) => self.hub.replay(std::slice::from_ref(&channel), id),
                        None => self.hub.replay_since(&channel, after_seq),
                    };
                    if replay.reset {
                        open.events.push_back(TestEvent::reset());
                    }
                    open.events
                        .extend(replay.frames.iter().map(|f| TestEvent::parse(f)));
                    self.hub.subscribe(token, &channel);
                    open.channels.push(channel);
                }
                Change::Leave { token, channel } => {
                    let Some(open) = self.streams.get_mut(&token) else {
                        continue;
                    };
                    if let Some(at) = open.channels.iter().position(|c| *c == channel) {
                        open.channels.remove(at);
                        self.hub.leave_channel(token, &channel);
                    }
                }
                // The hub refuses pattern joins in the test client (`PatternsUnsupported`).
                Change::JoinPattern { .. } | Change::LeavePattern { .. } => {}
            }
        }
    }

    /// Remembers the cookies a response sets (and forgets those it expires).
    fn keep_cookies(&mut self, response: &Response) {
        for (name, value) in response.headers() {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            // A session that ended is cleared with an empty value.
            let expired = value.trim().is_empty();
            self.cookies.retain(|(n, _)| n != name.trim());
            if !expired {
                self.cookies
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }

    /// Takes events published from other threads, then hands every newly published event
    /// to the streams subscribed to its channel.
    fn deliver(&mut self) {
        while let Ok((channel, event)) = self.outside.try_recv() {
            // A closed hub refuses it, as the server's would.
            let _ = self.hub.publish(&channel, event);
        }
        for (channel, frame) in self.hub.take_recorded() {
            self.published.push((channel, TestEvent::parse(&frame)));
        }
        for (channel, frame) in self.hub.take_pending() {
            let event = TestEvent::parse(&frame);
            for token in self.hub.subscribers_of(&channel).collect::<Vec<_>>() {
                if let Some(open) = self.streams.get_mut(&token) {
                    open.events.push_back(event.clone());
                }
            }
        }
    }
}

/// A response as a test sees it: the status, the headers and the whole body.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: Status,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestResponse {
    fn from_response(response: Response, head: bool) -> TestResponse {
        let status = response.status();
        let headers = response
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let body = match response.into_body() {
            _ if head || !status.allows_body() => Vec::new(),
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes,
            Body::File { mut file, len } => {
                let mut bytes = Vec::new();
                // A file that cannot be read shows as a short body, as on a socket.
                let _ = (&mut file).take(len).read_to_end(&mut bytes);
                bytes
            }
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body deserialized from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

/// An open stream: the events published to its channels since it opened (after any replay).
/// Dropping it unsubscribes it, as a client hanging up does.
///
/// A joinable stream ([`Subscribe::joinable`](crate::Subscribe::joinable)) has an
/// [`id`](Self::id), and its first event names it, as on a socket; the app's handlers can then
/// join and leave channels of it with [`Hub::join`] and [`Hub::leave`].
pub struct TestStream {
    app: Rc<RefCell<Shared>>,
    token: Token,
    id: Option<String>,
    head: TestResponse,
}

impl fmt::Debug for TestStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStream")
            .field("id", &self.id)
            .field("channels", &self.channels())
            .finish_non_exhaustive()
    }
}

impl TestStream {
    /// The stream's response head (`200`, `text/event-stream`).
    pub fn head(&self) -> &TestResponse {
        &self.head
    }

    /// The channels it is subscribed to now (its handler's, changed by any joins and leaves).
    pub fn channels(&self) -> Vec<String> {
        self.app
            .borrow()
            .streams
            .get(&self.token)
            .map(|open| open.channels.clone())
            .unwrap_or_default()
    }

    /// The stream's id, if its handler made it joinable: what a page reads from the first
    /// event (`event: house-stream`, see [`STREAM_EVENT`](crate::STREAM_EVENT)) and sends to
    /// the app's join and leave endpoints.
    ///
    /// # Examples
    /// ```
    /// use house::test::Client;
    /// use house::{Event, Route, Subscribe, STREAM_EVENT};
    ///
    /// let client = Client::new([
    ///     Route::stream("/events", |_| Subscribe::to("lobby").joinable()),
    ///     Route::closing("/join", |ctx| {
    ///         let stream = ctx.request.param("stream").unwrap_or("");
    ///         let room = ctx.request.param("room").unwrap_or("");
    ///         ctx.hub.join(stream, room).map(|()| "joined")
    ///     }),
    ///     Route::closing("/send", |ctx| {
    ///         let room = ctx.request.param("room").unwrap_or("").to_owned();
    ///         ctx.hub.publish(&room, Event::new("hi")).map(|_| "sent")
    ///     }),
    /// ])
    /// .unwrap();
    ///
    /// let mut stream = client.stream("/events").unwrap();
    /// let id = stream.id().unwrap().to_owned();
    /// // The first event names the id, as on a socket.
    /// let first = stream.next_event().unwrap();
    /// assert_eq!((first.event.as_deref(), first.data.as_str()), (Some(STREAM_EVENT), id.as_str()));
    ///
    /// let joined = client.post("/join").form(&[("stream", &id), ("room", "kitchen")]).send();
    /// assert_eq!(joined.text(), "joined");
    /// client.post("/send").form(&[("room", "kitchen")]).send();
    /// assert_eq!(stream.next_event().unwrap().data, "hi");
    /// assert_eq!(stream.channels(), ["lobby", "kitchen"]);
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The next event, waiting up to [`EVENT_WAIT`] for one published by a [`Publisher`].
    pub fn next_event(&mut self) -> Option<TestEvent> {
        self.next_event_within(EVENT_WAIT)
    }

    /// The next event, waiting up to `timeout` for a [`Publisher`]'s.
    pub fn next_event_within(&mut self, timeout: Duration) -> Option<TestEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut app = self.app.borrow_mut();
            app.deliver();
            if let Some(event) = app
                .streams
                .get_mut(&self.token)
                .and_then(|open| open.events.pop_front())
            {
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match app.outside.recv_timeout(left) {
                Ok((channel, event)) => {
                    let _ = app.hub.publish(&channel, event);
                }
                Err(_) => return None,
            }
        }
    }

    /// The events already delivered, without waiting.
    pub fn events_now(&mut self) -> Vec<TestEvent> {
        let mut app = self.app.borrow_mut();
        app.deliver();
        app.streams
            .get_mut(&self.token)
            .map(|open| open.events.drain(..).collect())
            .unwrap_or_default()
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        if let Ok(mut app) = self.app.try_borrow_mut() {
            if let Some(open) = app.streams.remove(&self.token) {
                for channel in &open.channels {
                    app.hub.unsubscribe(self.token, channel);
                }
            }
            // Its id names nothing any more: joins answer 404.
            app.hub.close_stream(self.token);
        }
    }
}

/// Publishes to a [`Client`]'s hub from any thread.
#[derive(Debug, Clone)]
pub struct Publisher {
    sender: Sender<(String, Event)>,
}

impl Publisher {
    /// Publishes `event` to `channel`; `false` once the client is gone.
    pub fn publish(&self, channel: &str, event: Event) -> bool {
        self.sender.send((channel.to_owned(), event)).is_ok()
    }
}

/// One event as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestEvent {
    /// `id:`, if the event has one.
    pub id: Option<String>,
    /// `event:`, if the event is named.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

impl TestEvent {
    fn reset() -> TestEvent {
        TestEvent::parse(&reset_event())
    }

    fn parse(frame: &[u8]) -> TestEvent {
        let text = String::from_utf8_lossy(frame);
        let mut event = TestEvent::default();
        let mut data: Vec<&str> = Vec::new();
        for line in text.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        event.data = data.join("\n");
        event
    }

    /// Whether it is the `reset` event of a stream that missed events.
    pub fn is_reset(&self) -> bool {
        self.event.as_deref() == Some(RESET_EVENT)
    }
}
