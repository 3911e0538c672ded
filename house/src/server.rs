//! The event loop: one thread, one `mio::Poll`, the listener, and every connection.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::conn::{Conn, FileBody, Parked, Phase};
use crate::hub::{Frame, HistoryLimits, Replay};
use crate::parse::{parse_request, Parsed};
use crate::route::Lookup;
use crate::session::Sessions;
use crate::stats::{DropReason, Stats};
use crate::{
    Body, Config, Ctx, Error, Event, Handler, Hub, Method, PublishError, Request, Response, Route,
    Routes, Session, Status, Subscribe, Version, RESET_EVENT,
};

/// The listener's token.
const LISTENER: Token = Token(0);
/// The token of the waker other threads use to reach the loop.
const WAKER: Token = Token(1);
/// The first connection token; tokens only go up, so a stale one never names a new connection.
const FIRST_CONN: usize = 2;

/// Readiness events taken from the poll per turn.
const EVENTS_PER_TURN: usize = 1024;

/// Stream connections written per loop turn before the loop looks for new events again.
const FLUSH_BUDGET: usize = 512;

/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// Once this many response bytes wait for a client, its further pipelined requests wait too,
/// so a client cannot queue unbounded responses without reading them.
const PIPELINE_BACKLOG: usize = 256 * 1024;

/// How long a closed connection keeps draining the client's unread input (see
/// `Phase::Lingering`).
const LINGER: Duration = Duration::from_secs(1);

/// How long a response waits for the broker to acknowledge its handler's publishes before it
/// becomes a 503.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The head of every stream response.
const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

/// Sent to a connection refused because the server is at its connection cap.
const AT_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: 56\r\n\
Connection: close\r\n\r\n503 Service Unavailable: too many connections, retry soon\n";

/// What other threads ask of the loop.
#[derive(Debug)]
enum Command {
    Publish(String, Event),
    Shutdown,
}

/// A `Send + Clone` handle to a running [`Server`]: publish from other threads, read its
/// stats, or shut it down.
///
/// # Examples
/// ```no_run
/// use house::{Config, Event, Server};
///
/// let server = Server::bind("127.0.0.1:0", Config::default(), Vec::new())?;
/// let handle = server.handle();
/// std::thread::spawn(move || {
///     handle.publish("news", Event::new("hello from another thread")).ok();
///     handle.shutdown();
/// });
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Handle {
    sender: Sender<Command>,
    waker: Arc<Waker>,
    stats: Arc<Mutex<Stats>>,
    /// Whether the broker is reachable, when there is one.
    broker_up: Option<Arc<AtomicBool>>,
}

impl Handle {
    /// Publishes `event` to `channel` on the loop's next turn. With Redis, fails at once while
    /// Redis is unreachable.
    pub fn publish(&self, channel: impl Into<String>, event: Event) -> Result<(), PublishError> {
        if self
            .broker_up
            .as_ref()
            .is_some_and(|up| !up.load(Ordering::Relaxed))
        {
            return Err(PublishError::Unavailable(
                "the Redis broker is unreachable".into(),
            ));
        }
        self.send(Command::Publish(channel.into(), event))
    }

    /// Stops accepting, flushes what is queued (for at most the configured shutdown grace),
    /// closes every connection and makes [`Server::run`] return. Calling it again does nothing.
    pub fn shutdown(&self) {
        let _ = self.send(Command::Shutdown);
    }

    /// The server's counters and gauges as of the loop's last timer sweep (at most 250 ms old).
    pub fn stats(&self) -> Stats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn send(&self, command: Command) -> Result<(), PublishError> {
        self.sender
            .send(command)
            .map_err(|_| PublishError::Closed)?;
        self.waker.wake().map_err(|_| PublishError::Closed)
    }
}

/// What the log line and the response of one request need to know about it.
#[derive(Debug, Clone, Copy)]
struct Exchange<'a> {
    /// `None` when the request line could not be parsed.
    method: Option<Method>,
    version: Version,
    /// The decoded path, without the query string (parameter values may be private).
    path: &'a str,
    keep_alive: bool,
    started: Instant,
}

impl Exchange<'_> {
    /// A request that failed before its head could be read.
    fn unparsed(started: Instant) -> Exchange<'static> {
        Exchange {
            method: None,
            version: Version::Http11,
            path: "-",
            keep_alive: false,
            started,
        }
    }
}

/// A house server: the listener, the handler table, the channel hub and every connection, all
/// driven by [`run`](Server::run) on the calling thread.
pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    sender: Sender<Command>,
    commands: Receiver<Command>,
    routes: Routes,
    hub: Hub,
    sessions: Sessions,
    config: Config,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    /// Connections with output queued this turn, flushed once at the end of the turn.
    dirty: Dirty,
    scratch: Vec<u8>,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    stats: Stats,
    /// The copy of `stats` that [`Handle::stats`] reads, refreshed by each sweep.
    shared_stats: Arc<Mutex<Stats>>,
    /// Which connection's parked response each outstanding publish ticket belongs to.
    awaiting: HashMap<u64, Token>,
    /// The time at the start of this loop turn: one clock read serves the whole turn.
    now: Instant,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` and builds the handler table. A path registered twice is an
    /// [`io::ErrorKind::InvalidInput`] error naming both routes.
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: Config,
        routes: impl IntoIterator<Item = Route>,
    ) -> io::Result<Server> {
        let routes =
            Routes::new(routes).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let mut listener = listen(addr, config.listen_backlog())?;
        let local_addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (sender, commands) = mpsc::channel();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut hub = Hub::new(HistoryLimits {
            events: config.history_events(),
            bytes: config.history_bytes(),
            idle_ttl: config.history_ttl(),
        });
        #[cfg(feature = "redis")]
        if let Some(url) = config.redis_url() {
            let broker = crate::broker::Broker::start(url, config.history_events(), waker.clone())?;
            hub.connect(broker);
        }
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            waker,
            sender,
            commands,
            routes,
            hub,
            sessions: Sessions::new(&config),
            config,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            dirty: Dirty::default(),
            scratch: vec![0; READ_CHUNK],
            accept_paused_until: None,
            shutdown_deadline: None,
            stats: Stats::default(),
            shared_stats: Arc::default(),
            awaiting: HashMap::new(),
            now: Instant::now(),
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            sender: self.sender.clone(),
            waker: self.waker.clone(),
            stats: self.shared_stats.clone(),
            broker_up: self.broker_up(),
        }
    }

    #[cfg(feature = "redis")]
    fn broker_up(&self) -> Option<Arc<AtomicBool>> {
        self.hub.broker().map(crate::broker::Broker::up_flag)
    }

    #[cfg(not(feature = "redis"))]
    fn broker_up(&self) -> Option<Arc<AtomicBool>> {
        None
    }

    /// Runs the loop on this thread until [`Handle::shutdown`] is called.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_TURN);
        let tick = self.config.tick();
        let mut next_sweep = Instant::now() + tick;
        log::debug!("listening on {}", self.local_addr);
        let mut busy = false;
        loop {
            // With stream writes still queued from a long sweep, only look for new events.
            let timeout = if busy {
                Duration::ZERO
            } else {
                next_sweep.saturating_duration_since(Instant::now())
            };
            if let Err(err) = self.poll.poll(&mut events, Some(timeout)) {
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.drain_commands(),
                    token => self.conn_event(token, event),
                }
            }
            busy = self.flush_dirty();
            let now = self.now;
            if now >= next_sweep {
                self.sweep(now);
                busy = self.flush_dirty();
                next_sweep = now + tick;
            }
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || now >= deadline {
                    self.refresh_gauges();
                    self.publish_stats();
                    return Ok(());
                }
            }
        }
    }

    /// Accepts until `WouldBlock`, or until out of file descriptors.
    fn accept(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(err) if would_block(&err) => return,
                Err(err) if interrupted(&err) => {}
                Err(err) if out_of_fds(&err) => {
                    // The listener stays readable while connections wait; with no fds to take
                    // them, retrying now would spin. Resume from the timer sweep.
                    log::warn!("out of file descriptors ({err}); pausing accepts");
                    self.stats.accept_backoffs += 1;
                    self.accept_paused_until = Some(Instant::now() + crate::config::ACCEPT_BACKOFF);
                    return;
                }
                // A connection that failed between SYN and accept (ECONNABORTED, …) affects
                // only itself.
                Err(err) => log::debug!("accept failed: {err}"),
            }
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.config.max_connections() || self.shutdown_deadline.is_some() {
            // Best effort: the socket is new, so this small write fits its send buffer.
            let _ = socket.write(AT_CAPACITY);
            self.stats.connections_refused += 1;
            log::debug!("{peer}: refused at the connection cap");
            return;
        }
        // Events are written whole as soon as they are published; Nagle would hold them back.
        let _ = socket.set_nodelay(true);
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            log::warn!("{peer}: could not register the connection: {err}");
            return;
        }
        self.stats.connections_accepted += 1;
        self.conns.insert(token, Conn::new(socket, peer, self.now));
    }

    fn drain_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Publish(channel, event)) => {
                    if let Err(err) = self.hub.publish(&channel, event) {
                        log::warn!("publish to `{channel}` from another thread failed: {err}");
                    }
                    // Nobody waits for these publishes' acknowledgements.
                    self.hub.take_tickets();
                    self.fan_out();
                }
                Ok(Command::Shutdown) => self.begin_shutdown(),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.drain_broker();
    }

    /// Acts on what the broker sent, in order.
    #[cfg(feature = "redis")]
    fn drain_broker(&mut self) {
        use crate::broker::BrokerMsg;
        while let Some(msg) = self.hub.broker().and_then(crate::broker::Broker::try_recv) {
            match msg {
                BrokerMsg::Deliver { channel, frame } => self.hub.deliver(channel, frame),
                BrokerMsg::Attach {
                    token,
                    reset,
                    frames,
                } => {
                    // Deliveries before this answer were in the replay: send them on first.
                    self.fan_out();
                    self.attach(token, reset, frames);
                }
                BrokerMsg::Acked { ticket, ok } => {
                    if let Some(token) = self.awaiting.remove(&ticket) {
                        self.acknowledge(token, ok);
                    }
                }
                BrokerMsg::Reset(channel) => {
                    self.fan_out();
                    self.signal_gap(channel.as_deref());
                }
            }
        }
        self.fan_out();
    }

    #[cfg(not(feature = "redis"))]
    fn drain_broker(&mut self) {}

    fn conn_event(&mut self, token: Token, event: &mio::event::Event) {
        // Errors and hang-ups surface through the next read or write, which closes the
        // connection.
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.flush(token);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_some(token, event.is_read_closed() || event.is_error());
        }
        // A connection with output queued this turn is flushed, and its interest updated, at
        // the end of the turn: registering WRITABLE now would only be undone then.
        if self.conns.get(&token).is_some_and(|conn| !conn.dirty) {
            self.update_interest(token);
        }
    }

    /// Reads until `WouldBlock` (or the end), then acts on it; for calls not prompted by a
    /// readiness event, where a hang-up may be waiting unannounced.
    fn read(&mut self, token: Token) {
        self.read_some(token, true);
    }

    /// Reads what the socket has and acts on it according to the connection's phase. Unless
    /// `to_the_end`, a short read counts as drained: with edge-triggered readiness any later
    /// bytes bring a new event, so the read that would only say `WouldBlock` is skipped.
    fn read_some(&mut self, token: Token, to_the_end: bool) {
        let max_size = self.config.max_request_size();
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut hung_up = false;
        conn.read_paused = false;
        loop {
            let wants_requests = matches!(conn.phase, Phase::Requests);
            let room = if wants_requests {
                max_size.saturating_sub(conn.input.len())
            } else {
                self.scratch.len()
            };
            if wants_requests && (room == 0 || conn.out.len() >= PIPELINE_BACKLOG) {
                conn.read_paused = true;
                break;
            }
            let want = room.min(self.scratch.len());
            match conn.socket.read(&mut self.scratch[..want]) {
                Ok(0) => {
                    hung_up = true;
                    break;
                }
                Ok(n) => {
                    if wants_requests {
                        if conn.input.is_empty() && conn.request_started.is_none() {
                            conn.request_started = Some(now);
                        }
                        conn.input.extend_from_slice(&self.scratch[..n]);
                    }
                    // Other phases discard input: a stream's client has nothing more to say.
                    if n < want && !to_the_end {
                        break;
                    }
                }
                Err(err) if would_block(&err) => break,
                Err(err) if interrupted(&err) => {}
                Err(err) => {
                    log::debug!("{}: read failed: {err}", conn.peer);
                    self.close(token, DropReason::HangUp);
                    return;
                }
            }
        }
        self.process_requests(token);
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if hung_up {
            match conn.phase {
                // Finish answering what arrived before the hang-up, then close.
                Phase::Requests if conn.has_output() => conn.close_after_flush(),
                Phase::Closing if conn.has_output() => {}
                _ => self.close(token, DropReason::HangUp),
            }
        }
    }

    /// Answers every complete request in the connection's input, in order.
    fn process_requests(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            // A file body still streaming must finish before the next response starts.
            if !matches!(conn.phase, Phase::Requests)
                || conn.parked.is_some()
                || conn.file.is_some()
                || conn.input.is_empty()
                || conn.out.len() >= PIPELINE_BACKLOG
            {
                return;
            }
            let now = self.now;
            let started = conn.request_started.unwrap_or(now);
            let parsed = parse_request(
                &conn.input,
                self.config.max_request_size(),
                self.config.max_headers(),
            );
            match parsed {
                Ok(Parsed::Partial) => return,
                Err(err) => {
                    log::debug!("{}: bad request: {err}", conn.peer);
                    self.respond(token, Response::from(err), Exchange::unparsed(started));
                    return;
                }
                Ok(Parsed::Complete {
                    mut request,
                    len,
                    keep_alive,
                }) => {
                    conn.input.drain(..len);
                    if conn.input.is_empty() {
                        conn.request_started = None;
                        if conn.input.capacity() > READ_CHUNK {
                            conn.input = Vec::new();
                        }
                    } else {
                        conn.request_started = Some(now);
                    }
                    conn.idle_since = now;
                    request.peer = Some(conn.peer);
                    let keep_alive = keep_alive && self.shutdown_deadline.is_none();
                    self.dispatch(token, &request, keep_alive, started);
                }
            }
        }
    }

    /// Runs the request's handler and queues its answer.
    fn dispatch(&mut self, token: Token, request: &Request, keep_alive: bool, started: Instant) {
        let exchange = Exchange {
            method: Some(request.method()),
            version: request.version(),
            path: request.path(),
            keep_alive,
            started,
        };
        self.refresh_gauges();
        let handler = match self.routes.lookup(request.path(), request.method()) {
            Lookup::NotFound => {
                let detail = format!("no handler for `{}`", request.path());
                let response = Response::error(Status::NOT_FOUND, detail);
                return self.respond(token, response, exchange);
            }
            Lookup::WrongMethod(allowed) => {
                let detail = format!("`{}` accepts {}", request.path(), allowed.allow_header());
                let response = Response::error(Status::METHOD_NOT_ALLOWED, detail)
                    .with_header("Allow", allowed.allow_header());
                return self.respond(token, response, exchange);
            }
            Lookup::Found(route) => route.handler(),
        };
        // Only a closing handler's response can carry a new session's cookie.
        let may_create = matches!(handler, Handler::Closing(_));
        let session = Session::open(&mut self.sessions, request, may_create, self.now);
        let mut ctx = Ctx::new(request, &mut self.hub)
            .with_stats(&self.stats)
            .with_session(session);
        // A panicking handler answers 500 to its own request; everyone else is served on.
        let outcome = match handler {
            Handler::Closing(handler) => {
                match catch_unwind(AssertUnwindSafe(|| handler(&mut ctx))) {
                    Ok(response) => Outcome::Respond(response),
                    Err(_) => Outcome::Panicked,
                }
            }
            Handler::Stream(handler) => {
                match catch_unwind(AssertUnwindSafe(|| handler(&mut ctx))) {
                    Ok(Ok(subscribe)) => Outcome::Stream(subscribe),
                    Ok(Err(response)) => Outcome::Respond(response),
                    Err(_) => Outcome::Panicked,
                }
            }
        };
        let cookie = ctx.session.close(!matches!(outcome, Outcome::Panicked));
        // Events the handler published go out before a new stream subscribes, so its replay
        // and the live events neither overlap nor leave a gap.
        self.fan_out();
        let tickets = self.hub.take_tickets();
        match outcome {
            Outcome::Respond(response) => {
                let response = match cookie {
                    Some(cookie) => response.append_header("Set-Cookie", cookie),
                    None => response,
                };
                if tickets.is_empty() {
                    self.respond(token, response, exchange);
                } else {
                    self.park(token, response, exchange, tickets);
                }
            }
            Outcome::Stream(subscribe) => self.start_stream(token, request, subscribe, exchange),
            Outcome::Panicked => {
                log::warn!("{}: the handler panicked", exchange.path);
                let response = Response::error(Status::INTERNAL_SERVER_ERROR, "the handler failed");
                self.respond(token, response, exchange);
            }
        }
    }

    /// Queues a response; unless the exchange keeps the connection alive, the connection
    /// closes once it is written.
    fn respond(&mut self, token: Token, response: Response, exchange: Exchange<'_>) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let close = !exchange.keep_alive || !matches!(conn.phase, Phase::Requests);
        let response = if !close && exchange.version == Version::Http10 {
            response.with_header("Connection", "keep-alive")
        } else {
            response
        };
        let status = response.status();
        let mut head = Vec::with_capacity(256);
        response.write_head(&mut head, close);
        let send_body = exchange.method != Some(Method::Head) && status.allows_body();
        let mut bytes = head.len() as u64;
        match response.into_body() {
            Body::Bytes(body) if send_body => {
                bytes += body.len() as u64;
                head.extend_from_slice(&body);
                conn.queue(head, now);
            }
            Body::File { file, len } if send_body => {
                bytes += len;
                conn.queue(head, now);
                conn.file = Some(FileBody {
                    file,
                    remaining: len,
                });
            }
            _ => conn.queue(head, now),
        }
        if close {
            conn.close_after_flush();
        }
        mark_dirty(&mut self.dirty, token, conn);
        self.stats.count_response(status);
        if log::log_enabled!(log::Level::Info) {
            log::info!(
                "{} {} {} {}B {:?}",
                exchange.method.map_or("-", Method::as_str),
                exchange.path,
                status.code(),
                bytes,
                exchange.started.elapsed()
            );
        }
    }

    /// Answers `200 text/event-stream`, replays missed events, and subscribes the connection.
    fn start_stream(
        &mut self,
        token: Token,
        request: &Request,
        subscribe: Subscribe,
        exchange: Exchange<'_>,
    ) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        self.stats.count_response(Status::OK);
        log::info!(
            "{} {} 200 stream {:?}",
            exchange.method.map_or("-", Method::as_str),
            exchange.path,
            exchange.started.elapsed()
        );
        if request.method() == Method::Head {
            conn.queue(STREAM_HEAD.to_vec(), now);
            conn.close_after_flush();
            mark_dirty(&mut self.dirty, token, conn);
            return;
        }
        // The head goes out when the stream attaches (at once here, or when a broker's replay
        // arrives), so a client that has it is subscribed.
        conn.phase = Phase::Streaming {
            channels: subscribe.channels().into(),
            attached: false,
        };
        // A stream holds no request state: free the read buffer.
        conn.input = Vec::new();
        conn.request_started = None;
        self.stats.connections_streaming += 1;
        let last_event_id = request
            .header("last-event-id")
            .or_else(|| request.param("last_event_id"))
            .map(str::trim);
        if last_event_id.is_some() {
            self.stats.replays += 1;
        }
        if self.hub.is_remote() {
            // The broker answers with the replay; the stream attaches then.
            self.hub
                .request_replay(token, subscribe.channels(), last_event_id);
            return;
        }
        let replay = match last_event_id {
            Some(id) => self.hub.replay(subscribe.channels(), id),
            None => Replay::default(),
        };
        self.attach(token, replay.reset, replay.frames);
    }

    /// Sends a new stream its head and what it missed, then subscribes it to its channels.
    fn attach(&mut self, token: Token, reset: bool, frames: Vec<Frame>) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match &mut conn.phase {
            Phase::Streaming { attached, .. } if !*attached => *attached = true,
            _ => return,
        }
        let mut head = STREAM_HEAD.to_vec();
        if let Some(retry) = self.config.retry_hint() {
            head.extend_from_slice(format!("retry: {}\n\n", retry.as_millis()).as_bytes());
        }
        conn.queue(head, now);
        if reset {
            self.stats.gap_signals += 1;
            conn.queue(reset_event(), now);
        }
        self.stats.events_delivered += frames.len() as u64;
        for frame in frames {
            conn.queue_frame(frame, now);
        }
        if let Phase::Streaming { channels, .. } = &conn.phase {
            for channel in channels.iter() {
                self.hub.subscribe(token, channel);
            }
        }
        mark_dirty(&mut self.dirty, token, conn);
    }

    /// Tells attached streams (of `channel`, or all) that they missed events.
    #[cfg(feature = "redis")]
    fn signal_gap(&mut self, channel: Option<&str>) {
        let now = self.now;
        for (&token, conn) in self.conns.iter_mut() {
            let Phase::Streaming {
                channels,
                attached: true,
            } = &conn.phase
            else {
                continue;
            };
            if channel.is_some_and(|gap| !channels.iter().any(|c| c == gap)) {
                continue;
            }
            self.stats.gap_signals += 1;
            conn.queue(reset_event(), now);
            mark_dirty(&mut self.dirty, token, conn);
        }
    }

    /// Holds a response until the broker acknowledges every publish its handler made.
    fn park(
        &mut self,
        token: Token,
        response: Response,
        exchange: Exchange<'_>,
        tickets: Vec<u64>,
    ) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        for &ticket in &tickets {
            self.awaiting.insert(ticket, token);
        }
        conn.parked = Some(Box::new(Parked {
            response,
            method: exchange.method,
            version: exchange.version,
            path: exchange.path.to_owned(),
            keep_alive: exchange.keep_alive,
            started: exchange.started,
            since: Instant::now(),
            awaiting: tickets.len(),
            failed: false,
        }));
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn acknowledge(&mut self, token: Token, ok: bool) {
        let Some(parked) = self.conns.get_mut(&token).and_then(|c| c.parked.as_mut()) else {
            return;
        };
        parked.failed |= !ok;
        parked.awaiting = parked.awaiting.saturating_sub(1);
        if parked.awaiting == 0 {
            self.release(token);
        }
    }

    /// Sends a parked response (a 503 if a publish failed) and goes on with pipelined requests.
    fn release(&mut self, token: Token) {
        let Some(parked) = self.conns.get_mut(&token).and_then(|c| c.parked.take()) else {
            return;
        };
        let Parked {
            response,
            method,
            version,
            path,
            keep_alive,
            started,
            failed,
            ..
        } = *parked;
        let response = if failed {
            crate::IntoResponse::into_response(PublishError::Unavailable(
                "Redis did not take the event".into(),
            ))
        } else {
            response
        };
        let exchange = Exchange {
            method,
            version,
            path: &path,
            keep_alive,
            started,
        };
        self.respond(token, response, exchange);
        self.process_requests(token);
    }

    /// Queues every newly published event to its channel's subscribers. A subscriber whose
    /// queue would pass the cap is a slow consumer: it is disconnected, nobody else waits.
    fn fan_out(&mut self) {
        if !self.hub.has_pending() {
            return;
        }
        let now = self.now;
        let cap = self.config.subscriber_queue_cap();
        let mut dropped = Vec::new();
        for (channel, frame) in self.hub.take_pending() {
            for token in self.hub.subscribers_of(&channel) {
                let Some(conn) = self.conns.get_mut(&token) else {
                    continue;
                };
                if conn.out.len() + frame.len() > cap {
                    // The cap counts only what the client has not taken: write before judging.
                    match conn.write_pending(now) {
                        Err(_) => {
                            dropped.push((token, DropReason::WriteError));
                            continue;
                        }
                        Ok(written) => self.stats.bytes_written += written as u64,
                    }
                    if conn.out.len() + frame.len() > cap {
                        dropped.push((token, DropReason::SlowConsumer));
                        continue;
                    }
                }
                conn.queue_frame(frame.clone(), now);
                self.stats.events_delivered += 1;
                mark_dirty(&mut self.dirty, token, conn);
            }
        }
        for (token, reason) in dropped {
            self.close(token, reason);
        }
    }

    /// Writes what this turn queued: every response first, then at most [`FLUSH_BUDGET`]
    /// streams. Returns whether streams are still waiting.
    ///
    /// Responses go first so a publisher hears back, and sends its next event, while the
    /// sweep of its last one is still under way; the budget lets the loop take that next event
    /// in, so the streams not yet written get both events in one write. Saturated, events
    /// share writes; otherwise every turn ends with everything written, so nothing waits.
    fn flush_dirty(&mut self) -> bool {
        loop {
            let requests = std::mem::take(&mut self.dirty.requests);
            if requests.is_empty() {
                break;
            }
            for token in requests {
                self.flush_one(token);
            }
        }
        for _ in 0..FLUSH_BUDGET {
            let Some(token) = self.dirty.streams.pop_front() else {
                break;
            };
            self.flush_one(token);
        }
        !self.dirty.streams.is_empty() || !self.dirty.requests.is_empty()
    }

    fn flush_one(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.dirty = false;
        }
        self.flush(token);
        self.update_interest(token);
    }

    /// Writes queued bytes until the queue is empty or the socket is full, then moves the
    /// connection on: close it, or resume reading pipelined requests that waited for output.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match conn.write_pending(self.now) {
            Ok(written) => self.stats.bytes_written += written as u64,
            // The peer is gone: a failed write prunes the connection.
            Err(err) => {
                log::debug!("{}: write failed: {err}", conn.peer);
                self.close(token, DropReason::WriteError);
                return;
            }
        }
        if conn.has_output() {
            return;
        }
        match conn.phase {
            Phase::Closing => {
                let _ = conn.socket.shutdown(std::net::Shutdown::Write);
                conn.phase = Phase::Lingering {
                    until: Instant::now() + LINGER,
                };
                // Drain what the client already sent; if it has hung up, close now.
                self.read(token);
            }
            // Resume pipelined requests that waited for this output.
            Phase::Requests if conn.read_paused => self.read(token),
            Phase::Requests if !conn.input.is_empty() => self.process_requests(token),
            _ => {}
        }
    }

    fn update_interest(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let interest = conn.interest();
        if interest != conn.registered {
            let registry = self.poll.registry();
            if registry
                .reregister(&mut conn.socket, token, interest)
                .is_err()
            {
                self.close(token, DropReason::WriteError);
                return;
            }
            conn.registered = interest;
        }
    }

    /// Closes a connection: out of the poll, out of every channel, socket dropped. `reason`
    /// is counted when the connection was a stream.
    fn close(&mut self, token: Token, reason: DropReason) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        if let Phase::Streaming { channels, .. } = &conn.phase {
            self.unsubscribe(token, channels, reason);
            log::debug!("{}: stream closed ({})", conn.peer, reason.label());
        }
    }

    fn unsubscribe(&mut self, token: Token, channels: &[String], reason: DropReason) {
        for channel in channels {
            self.hub.unsubscribe(token, channel);
            self.hub.drop_interest(channel);
        }
        self.stats.connections_streaming -= 1;
        self.stats.count_drop(reason);
    }

    /// The timers: request age, keep-alive idleness, stalled writes, lingering, heartbeats,
    /// history expiry, resuming accepts after running out of file descriptors, and the stats
    /// snapshot.
    fn sweep(&mut self, now: Instant) {
        let config = &self.config;
        let heartbeat = crate::sse::comment("heartbeat");
        let mut expired = Vec::new();
        let mut timed_out = Vec::new();
        let mut idle = 0;
        let mut unacknowledged = Vec::new();
        for (&token, conn) in self.conns.iter_mut() {
            if let Some(parked) = &mut conn.parked {
                if now.duration_since(parked.since) >= PUBLISH_ACK_TIMEOUT {
                    parked.failed = true;
                    unacknowledged.push(token);
                }
                continue;
            }
            if conn.has_output() && now.duration_since(conn.last_progress) >= config.write_timeout()
            {
                expired.push((token, DropReason::Stalled));
                continue;
            }
            match &conn.phase {
                Phase::Requests => match conn.request_started {
                    Some(at) if now.duration_since(at) >= config.max_request_age() => {
                        timed_out.push((token, at));
                    }
                    Some(_) => {}
                    None if conn.has_output() => {}
                    None if now.duration_since(conn.idle_since) >= config.keep_alive_timeout() => {
                        expired.push((token, DropReason::HangUp));
                    }
                    None => idle += 1,
                },
                Phase::Streaming { attached, .. } => {
                    // A stream waiting for its replay has not even had its head yet.
                    if *attached
                        && now.duration_since(conn.last_queued) >= config.heartbeat_interval()
                    {
                        conn.queue(heartbeat.clone(), now);
                        self.stats.heartbeats += 1;
                        mark_dirty(&mut self.dirty, token, conn);
                    }
                }
                Phase::Closing => {}
                Phase::Lingering { until } => {
                    if now >= *until {
                        expired.push((token, DropReason::HangUp));
                    }
                }
            }
        }
        self.stats.connections_idle = idle;
        for token in unacknowledged {
            self.release(token);
        }
        for (token, reason) in expired {
            self.close(token, reason);
        }
        for (token, started) in timed_out {
            self.respond(
                token,
                Response::from(Error::Timeout),
                Exchange::unparsed(started),
            );
        }
        self.hub.expire(now);
        self.sessions.expire(now);
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
            self.accept();
        }
        self.refresh_gauges();
        self.publish_stats();
    }

    /// Copies the gauges that are cheap to read into the stats.
    fn refresh_gauges(&mut self) {
        self.stats.connections = self.conns.len() as u64;
        self.stats.channels = self.hub.channels() as u64;
        self.stats.subscribers = self.hub.subscriptions() as u64;
        self.stats.events_published = self.hub.published();
        self.stats.sessions = self.sessions.len() as u64;
    }

    fn publish_stats(&self) {
        let mut shared = self
            .shared_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shared.clone_from(&self.stats);
    }

    /// Stops accepting and lets every connection finish what is queued, then close.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!("shutting down");
        self.shutdown_deadline = Some(Instant::now() + self.config.shutdown_grace());
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.hub.close();
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            if matches!(conn.phase, Phase::Lingering { .. }) {
                continue;
            }
            if !conn.has_output() {
                self.close(token, DropReason::Shutdown);
                continue;
            }
            let phase = std::mem::replace(&mut conn.phase, Phase::Closing);
            conn.close_after_flush();
            if let Phase::Streaming { channels, .. } = phase {
                self.unsubscribe(token, &channels, DropReason::Shutdown);
            }
        }
    }
}

fn reset_event() -> Vec<u8> {
    Event::new("events were missed")
        .event(RESET_EVENT)
        .to_bytes()
}

/// What a handler produced.
enum Outcome {
    Respond(Response),
    Stream(Subscribe),
    Panicked,
}

/// Connections with output queued, to write at the end of the loop's turn.
#[derive(Debug, Default)]
struct Dirty {
    requests: Vec<Token>,
    streams: VecDeque<Token>,
}

fn mark_dirty(dirty: &mut Dirty, token: Token, conn: &mut Conn) {
    if !conn.dirty {
        conn.dirty = true;
        if matches!(conn.phase, Phase::Streaming { .. }) {
            dirty.streams.push_back(token);
        } else {
            dirty.requests.push(token);
        }
    }
}

fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

/// `EMFILE` (24) or `ENFILE` (23): the process or the system is out of file descriptors.
fn out_of_fds(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(23 | 24))
}
