//! The event loop: one thread, one `mio::Poll`, the listener and every connection.
//!
//! This file holds the loop's turn. Each stage of a request's way through the server lives in
//! a file of its own under `server/`, and a stage only calls stages after it:
//!
//! ```text
//! accept ─▶ exchange ─▶ streams ─▶ flush        timers
//!           read, parse,  start, attach,  write, linger,  request age, idle,
//!           route, handle, fan out        close           stalls, heartbeats
//!           respond, park
//! ```
//!
//! What comes next after a stage is done (read again once a flush drains the output, answer
//! pipelined requests, close what a sweep found expired, answer a response the broker has
//! acknowledged) comes back to the turn as a value, and the turn decides.

mod accept;
mod exchange;
mod flush;
mod streams;
mod timers;

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::Config;
use crate::conn::{AfterFlush, Conn, Exchange};
use crate::error::Error;
use crate::hub::{Hub, PublishError, Remote};
use crate::jitter::Jitter;
use crate::offload::Pool;
use crate::printable::Printable;
use crate::route::{Route, Routes};
use crate::session::Sessions;
use crate::sse::{stream_head, stream_response, Event};
use crate::state::States;
use crate::stats::{DropReason, Stats};

use flush::Dirty;
use timers::{Waves, WAVE_GAP};

/// The listener's token.
const LISTENER: Token = Token(0);
/// The token of the waker other threads use to reach the loop.
const WAKER: Token = Token(1);
/// The first connection token; tokens only go up, so a stale one never names a new connection.
const FIRST_CONN: usize = 2;
/// The first token of connections held past the cap (see `accept.rs`): a range of its own, so
/// one comparison tells them from connections.
const FIRST_REFUSAL: usize = 1 << (usize::BITS - 1);

/// What stands for "never" where the clock cannot count as far as asked (a century).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Readiness events taken from the poll per turn.
const EVENTS_PER_TURN: usize = 1024;

/// Stream connections written per loop turn before the loop looks for new events again.
const FLUSH_BUDGET: usize = 512;

/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;

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

    /// Stops accepting, finishes the responses under way, closes the streams in waves over the
    /// shutdown window (see [`SHUTDOWN_WINDOW`](crate::limits::SHUTDOWN_WINDOW)), each once
    /// what is queued for it is written (for at most the shutdown grace after the last wave),
    /// and makes [`Server::run`] return. Calling it again does nothing.
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
    /// The application state handlers borrow by type.
    states: States,
    /// The head of a stream without headers of its own or CORS, built once: most streams'.
    /// Each stream appends its own `retry:`.
    default_stream_head: Vec<u8>,
    /// The range each stream's `retry:` is picked from, if streams get one.
    retry_range: Option<(Duration, Duration)>,
    /// The state each route needs: `(route name, type, type name)`, checked by `run`.
    needs: Vec<(String, TypeId, &'static str)>,
    hub: Hub,
    sessions: Sessions,
    /// The workers that run offloaded jobs.
    offload: Pool,
    config: Config,
    /// Boxed: a table entry is then a pointer, not a whole `Conn`. Under churn a hash table
    /// doubles once, at a random moment, to twice its peak (its deleted slots run out); with
    /// `Conn`s inline that step was 0.5 MB at 1,000 connections (see README "Soak").
    conns: HashMap<Token, Box<Conn>, TokenHash>,
    next_token: usize,
    /// Connections past the cap, held until their request head says how to refuse them.
    refusals: HashMap<Token, accept::Refusal, TokenHash>,
    next_refusal: usize,
    /// Spreads the `retry:` times told to streams (and to those refused), and their lifetimes.
    jitter: Jitter,
    /// Connections with output queued this turn, flushed once at the end of the turn.
    dirty: Dirty,
    scratch: Vec<u8>,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    /// The streams shutdown is still to close, once it has begun.
    waves: Option<Waves>,
    stats: Stats,
    /// The copy of `stats` that [`Handle::stats`] reads, refreshed by each sweep.
    shared_stats: Arc<Mutex<Stats>>,
    /// The time at the start of this loop turn: one clock read serves the whole turn.
    now: Instant,
}

/// The connection maps' hasher: see [`TokenHasher`].
type TokenHash = BuildHasherDefault<TokenHasher>;

/// Hashes a [`Token`] with one multiplication (Fibonacci hashing) instead of SipHash, which
/// costs several times more on every lookup of every event. SipHash's keyed randomness
/// guards against clients choosing colliding keys; tokens come from the server's own counter
/// that only goes up, so no client chooses them. The multiplication spreads the counter's low
/// bits into the high ones, which the table's probe groups use.
#[derive(Debug, Default, Clone, Copy)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Token` (a `usize`); kept correct for any key all the same.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
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
    /// Binds `addr` and builds the handler table. A table that cannot be built (a
    /// [`RouteError`](crate::RouteError): a template taken twice for one method, two catchers
    /// for a status, a malformed template) is an [`io::ErrorKind::InvalidInput`] error that
    /// says which routes.
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: Config,
        routes: impl IntoIterator<Item = Route>,
    ) -> io::Result<Server> {
        let routes =
            Routes::new(routes).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let needs = routes.state_needs();
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let mut listener = accept::listen(addr, config.listen_backlog())?;
        let local_addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (sender, commands) = mpsc::channel();
        let hub = Hub::start(&config, &waker)?;
        let offload = Pool::new(&config, waker.clone());
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            waker,
            sender,
            commands,
            routes,
            states: States::new(),
            default_stream_head: stream_head(&stream_response(), None),
            retry_range: config.retry_range(),
            needs,
            hub,
            sessions: Sessions::new(&config),
            offload,
            config,
            conns: HashMap::default(),
            next_token: FIRST_CONN,
            refusals: HashMap::default(),
            next_refusal: FIRST_REFUSAL,
            jitter: Jitter::new(),
            dirty: Dirty::default(),
            scratch: vec![0; READ_CHUNK],
            accept_paused_until: None,
            shutdown_deadline: None,
            waves: None,
            stats: Stats::default(),
            shared_stats: Arc::default(),
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
            broker_up: self.hub.availability(),
        }
    }

    /// Adds application state: a value handlers borrow by its type (a `&T` argument with the
    /// macros, [`Ctx::state`] by hand). Call it once per type; a second value of a type
    /// replaces the first.
    ///
    /// # Examples
    /// ```no_run
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use house::{Config, Route, Server, Status};
    ///
    /// /// Shared by every request; state is `Sync`, so counters are atomics (or behind a lock).
    /// struct Visits(AtomicU64);
    ///
    /// // With the macros, `fn visit(visits: &Visits) -> String`; by hand:
    /// let visit = Route::closing("/visit", |ctx| {
    ///     let visits = ctx.state.get::<Visits>().ok_or(Status::INTERNAL_SERVER_ERROR)?;
    ///     let n = visits.0.fetch_add(1, Ordering::Relaxed) + 1;
    ///     Ok::<_, Status>(format!("visit number {n}"))
    /// })
    /// .needs_state::<Visits>();
    ///
    /// Server::bind("127.0.0.1:8080", Config::default(), [visit])?
    ///     .with_state(Visits(AtomicU64::new(0)))
    ///     .with_state(String::from("another type, another value"))
    ///     .run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`Ctx::state`]: crate::Ctx::state
    pub fn with_state<T: Send + Sync + 'static>(mut self, value: T) -> Server {
        self.states.insert(value);
        self
    }

    /// Runs the loop on this thread until [`Handle::shutdown`] is called.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] at once if a route needs a state type (see
    /// [`Route::needs_state`]) that was not given to [`with_state`](Self::with_state); the
    /// message names the handler and the type. Otherwise the poll's own errors.
    pub fn run(mut self) -> io::Result<()> {
        self.states.check(
            self.needs
                .iter()
                .map(|(route, id, ty)| (route.as_str(), *id, *ty)),
        )?;
        let mut events = Events::with_capacity(EVENTS_PER_TURN);
        let tick = self.config.tick();
        let mut next_sweep = self.now + tick;
        log::debug!("listening on {}", self.local_addr);
        let mut busy = false;
        loop {
            // With stream writes still queued from a long sweep, only look for new events.
            let timeout = if busy {
                Duration::ZERO
            } else {
                let mut wake = next_sweep;
                if let Some(at) = self.waves.as_ref().and_then(Waves::next_at) {
                    wake = wake.min(at.max(self.now + WAVE_GAP));
                }
                wake.saturating_duration_since(Instant::now())
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
                    token if token.0 >= FIRST_REFUSAL => self.refusal_event(token),
                    token => self.conn_event(token, event),
                }
            }
            self.close_wave();
            busy = self.flush_dirty();
            let now = self.now;
            if now >= next_sweep {
                self.tick(now);
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

    fn conn_event(&mut self, token: Token, event: &mio::event::Event) {
        // Errors and hang-ups surface through the next read or write, which closes the
        // connection.
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            let next = self.flush(token);
            self.after_flush(token, next);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_some(token, event.is_read_closed() || event.is_error());
        }
        // A connection with output queued this turn is flushed, and its interest updated, at
        // the end of the turn: registering WRITABLE now would only be undone then.
        if self.conns.get(&token).is_some_and(|conn| !conn.is_dirty()) {
            self.update_interest(token);
        }
    }

    /// Acts on what other threads and the broker sent, in order.
    fn drain_commands(&mut self) {
        // A job's publishes were sent before its result: taking the results first, and
        // answering them after the commands, puts its events before its response.
        let mut finished = Vec::new();
        while let Some(done) = self.offload.try_recv() {
            finished.push(done);
        }
        loop {
            match self.commands.try_recv() {
                Ok(Command::Publish(channel, event)) => {
                    if let Err(err) = self.hub.publish(&channel, event) {
                        log::warn!(
                            "publish to `{}` from another thread failed: {err}",
                            Printable(&channel)
                        );
                    }
                    // Nobody waits for these publishes' acknowledgements.
                    self.hub.await_acks(None);
                }
                Ok(Command::Shutdown) => self.begin_shutdown(),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        for done in finished {
            self.finish_job(done);
        }
        while let Some(remote) = self.hub.next_remote() {
            match remote {
                Remote::Attach {
                    token,
                    reset,
                    frames,
                } => self.attach(token, reset, frames),
                Remote::Joined {
                    token,
                    channel,
                    reset,
                    frames,
                } => self.attach_joined(token, channel, reset, frames),
                Remote::JoinFailed { token, channel } => self.leave(token, &channel),
                Remote::Acked { token, ok } => self.acknowledge(token, ok),
                Remote::Reset(channel) => self.signal_gap(channel.as_deref()),
            }
        }
    }

    /// Delivers what this turn published, then writes what it queued: every response first,
    /// then at most [`FLUSH_BUDGET`] streams. Returns whether work is still waiting.
    ///
    /// Responses go first so a publisher hears back, and sends its next event, while the
    /// sweep of its last one is still under way; the budget lets the loop take that next event
    /// in, so the streams not yet written get both events in one write. Saturated, events
    /// share writes; otherwise every turn ends with everything written, so nothing waits.
    fn flush_dirty(&mut self) -> bool {
        loop {
            // Answering a pipelined request below may publish: deliver before writing.
            self.fan_out();
            let requests = self.dirty.take_requests();
            if requests.is_empty() {
                break;
            }
            for token in requests {
                self.flush_one(token);
            }
        }
        for _ in 0..FLUSH_BUDGET {
            let Some(token) = self.dirty.next_stream() else {
                break;
            };
            self.flush_one(token);
        }
        !self.dirty.is_empty() || self.hub.has_pending()
    }

    fn flush_one(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.clear_dirty();
        }
        let next = self.flush(token);
        self.after_flush(token, next);
        self.update_interest(token);
    }

    /// Moves a connection on once its output is written.
    fn after_flush(&mut self, token: Token, next: AfterFlush) {
        match next {
            AfterFlush::Wait => {}
            // Drain what the client already sent; if it has hung up, this closes it now.
            AfterFlush::Drain | AfterFlush::Read => self.read(token),
            AfterFlush::Answer => self.process_requests(token),
        }
    }

    /// The timers: what the sweep finds due is acted on here, then the stats are refreshed.
    fn tick(&mut self, now: Instant) {
        let due = self.sweep(now);
        for token in due.unacknowledged {
            self.release(token, true);
        }
        for (token, reason) in due.expired {
            self.close(token, reason);
        }
        for token in due.retired {
            self.retire(token, DropReason::Lifetime);
        }
        for (token, started) in due.timed_out {
            let response = self.routes.refuse(&Error::Timeout, None);
            self.respond(token, response, Exchange::unparsed(started));
        }
        for token in self.overdue_refusals(now) {
            self.refuse(token);
        }
        if due.resume_accepts {
            self.accept();
        }
        self.refresh_gauges();
        self.publish_stats();
    }

    /// Stops accepting and lets every connection finish what it owes, then close: streams in
    /// waves over the shutdown window, the others at once.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!("shutting down");
        let window = self.config.shutdown_window();
        // The grace counts from the last wave, so the streams closed last get all of it. A
        // window or grace too long for the clock waits for every connection instead.
        let wait = window.saturating_add(self.config.shutdown_grace());
        self.shutdown_deadline = Some(self.now.checked_add(wait).unwrap_or(self.now + FOREVER));
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let refusals: Vec<Token> = self.refusals.keys().copied().collect();
        for token in refusals {
            self.refuse(token);
        }
        // What was published before the shutdown still goes out.
        self.fan_out();
        self.hub.close();
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        let mut streams = Vec::new();
        for token in tokens {
            if self
                .conns
                .get(&token)
                .is_some_and(|conn| conn.is_streaming())
            {
                streams.push(token);
            } else {
                self.retire(token, DropReason::Shutdown);
            }
        }
        // The map's order is as good as random: which client goes first says nothing about it.
        self.waves = Some(Waves::new(streams, self.now, window));
        self.close_wave();
    }

    /// Closes the streams whose wave has come (see [`Waves`]).
    fn close_wave(&mut self) {
        let Some(waves) = &mut self.waves else {
            return;
        };
        for token in waves.due(self.now) {
            self.retire(token, DropReason::Shutdown);
        }
    }

    /// Ends a connection cleanly: what is queued (and parked) is written, then it closes. A
    /// stream leaves its channels at once, counted for `reason`, so it takes no more events.
    fn retire(&mut self, token: Token, reason: DropReason) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.is_lingering() {
            return;
        }
        if !conn.owes_output() {
            self.close(token, reason);
            return;
        }
        if let Some(channels) = conn.shut_down() {
            self.unsubscribe(token, &channels, reason);
        }
    }
}
