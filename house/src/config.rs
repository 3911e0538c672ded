//! Server limits and timings, each a named default that a [`Config`] can override.

use std::borrow::Cow;
use std::time::Duration;

use crate::cors::Cors;
use crate::response::is_token_byte;

/// Largest request, head and body together. A longer head → 414 (request line) or 431
/// (headers); a `Content-Length` that would exceed it → 413 from the head alone, before any of
/// the body is read. The connection closes after either.
pub const MAX_REQUEST_SIZE: usize = 64 * 1024;

/// Longest time from a request's first byte to its last (for a new connection, from the
/// accept). Exceeded → 408 and close, even if the client sends nothing more.
pub const MAX_REQUEST_AGE: Duration = Duration::from_secs(10);

/// Most headers a request may have. More → 431 and close.
pub const MAX_HEADERS: usize = 64;

/// How long a keep-alive connection may wait, idle, for its next request. Exceeded → closed
/// quietly.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes queued for one stream subscriber. A subscriber that falls further behind is
/// disconnected and pruned, so one slow reader never grows the server without bound.
pub const SUBSCRIBER_QUEUE_CAP: usize = 1024 * 1024;

/// Queued bytes past which a stream under [`LagPolicy::DropOldest`](crate::LagPolicy::DropOldest)
/// is lagging: reached → its queued events not yet started are dropped and it gets the `reset`
/// gap signal (a quarter of [`SUBSCRIBER_QUEUE_CAP`]; the kernel's send buffer, see
/// [`STREAM_SEND_BUFFER`], is full long before). Other policies ignore it; a threshold above
/// the cap counts as the cap.
pub const LAG_THRESHOLD: usize = SUBSCRIBER_QUEUE_CAP / 4;

/// The kernel send buffer each stream socket asks for (`SO_SNDBUF`; Linux doubles it for its
/// bookkeeping, and `ss -tm` shows that doubled size as `tb`). Left to itself the kernel grows a
/// stalled subscriber's buffer up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default, before
/// [`SUBSCRIBER_QUEUE_CAP`] even starts to fill); with this, a stalled subscriber pins about
/// 1.5 MiB in all, user space and kernel. 0 leaves the kernel's autotuning on.
pub const STREAM_SEND_BUFFER: usize = 256 * 1024;

/// How long a connection with bytes queued may go without the client reading any of them.
/// Exceeded → closed (the peer is gone or stalled).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle stream gets a comment line, so proxies keep it open and dead peers are
/// found by the failed write.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// The `retry:` hint sent at the start of each stream: how long a client waits to reconnect
/// (at least; see [`RETRY_SPREAD`]).
pub const RETRY_HINT: Duration = Duration::from_secs(2);

/// How far each stream's `retry:` is spread above [`RETRY_HINT`], as a fraction of it: every
/// stream is told a time picked evenly from `hint` to `hint × (1 + spread)` (2–3 s by default),
/// so clients dropped together (a restart, a network blip) do not all come back in the same
/// instant. 0 tells every stream the hint exactly.
pub const RETRY_SPREAD: f64 = 0.5;

/// Events each channel keeps for `Last-Event-ID` replay.
pub const HISTORY_EVENTS: usize = 256;

/// Bytes of serialized events each channel keeps for replay.
pub const HISTORY_BYTES: usize = 256 * 1024;

/// How long a channel with no new events keeps its history.
pub const HISTORY_TTL: Duration = Duration::from_secs(300);

/// Bytes the histories of all channels may hold together. A publish that passes it evicts the
/// oldest events of the channel published to least recently, among the channels nobody on
/// this server is subscribed to first, then among the others, until the histories fit again;
/// a channel left with neither history nor subscribers is dropped. Resuming from before an
/// evicted event starts with `event: reset`. Counted in
/// `house_history_evictions_total{budget="bytes"}`.
///
/// What counts is an estimate of the memory history takes: each event's serialized bytes (as
/// for [`HISTORY_BYTES`]) plus 64 for its slot and allocation, and for each channel with
/// history, 512 plus twice its name's length for the channel's entry, its history's buffer
/// and the eviction order. With the `redis` feature history lives in Redis, and this budget
/// (like [`HISTORY_BUDGET_CHANNELS`]) does not apply.
pub const HISTORY_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Channels that may hold history at once. A publish that makes one more evicts the history
/// of the channel published to least recently, as for [`HISTORY_BUDGET_BYTES`] (idle channels
/// first, then the others). Counted in `house_history_evictions_total{budget="channels"}`.
pub const HISTORY_BUDGET_CHANNELS: usize = 100_000;

/// Pending listen connections the kernel may hold; large, so a burst of connects is not dropped.
pub const LISTEN_BACKLOG: i32 = 4096;

/// How long accepting pauses after the process runs out of file descriptors (`EMFILE`),
/// instead of spinning on a listener that stays readable.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long shutdown waits for queued bytes to reach clients before closing anyway, counted
/// from the last wave of [`SHUTDOWN_WINDOW`]: shutdown takes at most the two together.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The window over which shutdown closes the open streams, in waves: with `n` streams, the
/// `k`-th closes `k / n` of the way through it, after what is queued for it is written, so
/// thousands of clients do not reconnect (to the next server) in the same instant. Responses
/// in progress and idle keep-alive connections finish or close at once, as without it; new
/// connections are no longer accepted. 0 closes every stream at once.
///
/// The [`SHUTDOWN_GRACE`] counts from the last wave, so each stream gets the whole grace to
/// flush and a shutdown takes at most window + grace (3 s by default).
pub const SHUTDOWN_WINDOW: Duration = Duration::from_secs(1);

/// The longest a stream stays open: `None` (the default) keeps it as long as its client does.
/// Past it (plus up to a tenth more, picked per stream, so streams opened together do not
/// close together) the stream takes no more events, writes what is queued, and closes at an
/// event boundary; its `EventSource` reconnects with `Last-Event-ID` and resumes where it
/// left off, on whichever server the load balancer picks, through a handler that checks the
/// credentials again. Counted as [`DropReason::Lifetime`](crate::DropReason::Lifetime).
pub const MAX_STREAM_LIFETIME: Option<Duration> = None;

/// File descriptors kept free below the process limit when the connection cap is derived from it.
pub const FD_MARGIN: usize = 32;

/// Connections past the connection cap whose request head is still read, to tell an
/// `EventSource` from other clients (see [`CAP_RETRY`]). Half of [`FD_MARGIN`], so they fit in
/// it. More at once → the plain 503 at once.
pub const REFUSAL_SLOTS: usize = FD_MARGIN / 2;

/// How long a connection past the cap may take to send its request head. Exceeded → the
/// plain 503 and close.
pub const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// What an `EventSource` refused at the connection cap is told: a `200 text/event-stream`
/// carrying only `retry:` between this and twice this (spread per connection, so a crowd does
/// not come back at once), then the end of the stream, after which it reconnects by itself. A
/// 503 would make it give up for good (WHATWG HTML, "fail the connection"). Other requests get
/// `503` with `Retry-After: 1`.
pub const CAP_RETRY: Duration = Duration::from_secs(10);

/// How long a session lives after the last request whose handler used it. Past it the session
/// is gone (the sweep frees it), its cookie names nothing, and the next write starts a new one.
/// The cookie's `Max-Age` says the same.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Most sessions kept. Starting one more evicts the least recently used session.
pub const MAX_SESSIONS: usize = 100_000;

/// Most bytes of keys and JSON values one session holds. An insert past it fails with
/// `SessionError::TooLarge` and changes nothing.
pub const SESSION_BYTES: usize = 16 * 1024;

/// Most client addresses whose rate limits are remembered (their share of every limit, the
/// budget of their requests without a session, and of their new sessions). Past it the least
/// recently limited address is forgotten, and its limits start afresh.
pub const MAX_LIMITED_ADDRS: usize = 100_000;

/// How many sessions' worth of each rate limit one client address may use in all.
///
/// [`Session::rate_limit`](crate::Session::rate_limit)`("send", 5, 10 s)` lets each session
/// send 5 per 10 s, and an address 4 × 5 = 20 per 10 s together, whatever sessions it presents
/// (requests without a session from that address count too, and share one session-sized
/// budget among themselves). Past it → 429 with `Retry-After` for every client at that address
/// until its bucket refills. So replaying or rotating session cookies gains nothing beyond this
/// multiple.
///
/// The trade-off: clients behind one NAT (an office, a mobile carrier) or one reverse proxy
/// share an address, so up to this many of them get their full rate and more share it. Raise it
/// where many users come from one address; behind a proxy every client has the proxy's address.
pub const ADDR_RATE_MULTIPLE: u32 = 4;

/// Most sessions one client address may start per [`NEW_SESSIONS_WINDOW`]: a burst of this
/// many, then one more every window / this. Past it, the handler's `Session::insert` that would
/// start one fails with `SessionError::RateLimited` (a 429 with `Retry-After` if the handler
/// returns it) and nothing is stored; sessions that exist are not affected. A client that keeps
/// no cookie jar (curl, a cron job) would otherwise start a session with every write. Clients
/// behind one NAT share it, as for [`ADDR_RATE_MULTIPLE`].
pub const NEW_SESSIONS_PER_ADDR: u32 = 60;

/// The window of [`NEW_SESSIONS_PER_ADDR`].
pub const NEW_SESSIONS_WINDOW: Duration = Duration::from_secs(60);

/// Worker threads that run offloaded jobs (see [`Deferred`](crate::Deferred)); started on
/// the first job, so a server that never offloads has none.
pub const OFFLOAD_WORKERS: usize = 4;

/// Offloaded jobs that may wait for a worker; one more → `503 Service Unavailable` with
/// `Retry-After`, and the job never runs.
pub const OFFLOAD_QUEUE: usize = 64;

/// How long a request waits for its offloaded job → `504 Gateway Timeout`; the job runs on,
/// and its late result is dropped.
pub const OFFLOAD_DEADLINE: Duration = Duration::from_secs(10);

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "house_session";

/// Server settings. Every field starts at the constant of the same name in this module.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use house::Config;
///
/// let config = Config::default().with_max_request_age(Duration::from_secs(5)).with_max_connections(500);
/// assert_eq!(config.max_connections(), 500);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_request_size: usize,
    pub(crate) max_request_age: Duration,
    pub(crate) max_headers: usize,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) subscriber_queue_cap: usize,
    pub(crate) stream_send_buffer: usize,
    pub(crate) lag_threshold: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) retry_hint: Option<Duration>,
    pub(crate) retry_spread: f64,
    pub(crate) history_events: usize,
    pub(crate) history_bytes: usize,
    pub(crate) history_ttl: Duration,
    pub(crate) history_budget_bytes: usize,
    pub(crate) history_budget_channels: usize,
    pub(crate) listen_backlog: i32,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) shutdown_window: Duration,
    pub(crate) max_stream_lifetime: Option<Duration>,
    pub(crate) refusal_slots: usize,
    pub(crate) refusal_wait: Duration,
    pub(crate) cap_retry: Duration,
    #[cfg(feature = "redis")]
    pub(crate) redis_url: Option<String>,
    pub(crate) session_idle_timeout: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) session_bytes: usize,
    pub(crate) max_limited_addrs: usize,
    pub(crate) addr_rate_multiple: u32,
    pub(crate) new_sessions_per_addr: u32,
    pub(crate) new_sessions_window: Duration,
    pub(crate) session_secure: bool,
    pub(crate) session_cookie: Cow<'static, str>,
    pub(crate) cors: Option<Cors>,
    pub(crate) presence: bool,
    pub(crate) compression: bool,
    pub(crate) offload_workers: usize,
    pub(crate) offload_queue: usize,
    pub(crate) offload_deadline: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_request_size: MAX_REQUEST_SIZE,
            max_request_age: MAX_REQUEST_AGE,
            max_headers: MAX_HEADERS,
            keep_alive_timeout: KEEP_ALIVE_TIMEOUT,
            subscriber_queue_cap: SUBSCRIBER_QUEUE_CAP,
            stream_send_buffer: STREAM_SEND_BUFFER,
            lag_threshold: LAG_THRESHOLD,
            write_timeout: WRITE_TIMEOUT,
            heartbeat_interval: HEARTBEAT_INTERVAL,
            retry_hint: Some(RETRY_HINT),
            retry_spread: RETRY_SPREAD,
            history_events: HISTORY_EVENTS,
            history_bytes: HISTORY_BYTES,
            history_ttl: HISTORY_TTL,
            history_budget_bytes: HISTORY_BUDGET_BYTES,
            history_budget_channels: HISTORY_BUDGET_CHANNELS,
            listen_backlog: LISTEN_BACKLOG,
            max_connections: fd_limit().saturating_sub(FD_MARGIN).max(1),
            shutdown_grace: SHUTDOWN_GRACE,
            shutdown_window: SHUTDOWN_WINDOW,
            max_stream_lifetime: MAX_STREAM_LIFETIME,
            refusal_slots: REFUSAL_SLOTS,
            refusal_wait: REFUSAL_WAIT,
            cap_retry: CAP_RETRY,
            #[cfg(feature = "redis")]
            redis_url: None,
            session_idle_timeout: SESSION_IDLE_TIMEOUT,
            max_sessions: MAX_SESSIONS,
            session_bytes: SESSION_BYTES,
            max_limited_addrs: MAX_LIMITED_ADDRS,
            addr_rate_multiple: ADDR_RATE_MULTIPLE,
            new_sessions_per_addr: NEW_SESSIONS_PER_ADDR,
            new_sessions_window: NEW_SESSIONS_WINDOW,
            session_secure: false,
            session_cookie: Cow::Borrowed(SESSION_COOKIE),
            cors: None,
            presence: false,
            compression: false,
            offload_workers: OFFLOAD_WORKERS,
            offload_queue: OFFLOAD_QUEUE,
            offload_deadline: OFFLOAD_DEADLINE,
        }
    }
}

macro_rules! settings {
    ($($field:ident: $ty:ty, $with:ident, $doc:literal;)*) => {
        impl Config {
            $(
                #[doc = concat!("Sets ", $doc, ".")]
                pub fn $with(mut self, value: $ty) -> Config {
                    self.$field = value;
                    self
                }

                #[doc = concat!("The current setting of ", $doc, ".")]
                pub fn $field(&self) -> $ty {
                    self.$field
                }
            )*
        }
    };
}

settings! {
    max_request_size: usize, with_max_request_size, "[`MAX_REQUEST_SIZE`]";
    max_request_age: Duration, with_max_request_age, "[`MAX_REQUEST_AGE`]";
    max_headers: usize, with_max_headers, "[`MAX_HEADERS`]";
    keep_alive_timeout: Duration, with_keep_alive_timeout, "[`KEEP_ALIVE_TIMEOUT`]";
    subscriber_queue_cap: usize, with_subscriber_queue_cap, "[`SUBSCRIBER_QUEUE_CAP`]";
    lag_threshold: usize, with_lag_threshold, "[`LAG_THRESHOLD`]";
    stream_send_buffer: usize, with_stream_send_buffer, "[`STREAM_SEND_BUFFER`] (0 leaves the kernel's autotuning on)";
    write_timeout: Duration, with_write_timeout, "[`WRITE_TIMEOUT`]";
    heartbeat_interval: Duration, with_heartbeat_interval, "[`HEARTBEAT_INTERVAL`]";
    retry_hint: Option<Duration>, with_retry_hint, "[`RETRY_HINT`] (`None` sends no hint)";
    history_events: usize, with_history_events, "[`HISTORY_EVENTS`] (0 keeps no history)";
    history_bytes: usize, with_history_bytes, "[`HISTORY_BYTES`]";
    history_ttl: Duration, with_history_ttl, "[`HISTORY_TTL`]";
    history_budget_bytes: usize, with_history_budget_bytes, "[`HISTORY_BUDGET_BYTES`] (0 keeps no history)";
    history_budget_channels: usize, with_history_budget_channels, "[`HISTORY_BUDGET_CHANNELS`] (0 keeps no history)";
    listen_backlog: i32, with_listen_backlog, "[`LISTEN_BACKLOG`]";
    max_connections: usize, with_max_connections, "the connection cap (default: the open-file limit less [`FD_MARGIN`]); beyond it, new connections get 503 with `Retry-After` and are closed";
    shutdown_grace: Duration, with_shutdown_grace, "[`SHUTDOWN_GRACE`]";
    shutdown_window: Duration, with_shutdown_window, "[`SHUTDOWN_WINDOW`] (0 closes every stream at once)";
    max_stream_lifetime: Option<Duration>, with_max_stream_lifetime, "[`MAX_STREAM_LIFETIME`] (`None` keeps streams open as long as their clients do)";
    refusal_slots: usize, with_refusal_slots, "[`REFUSAL_SLOTS`] (0 refuses every connection past the cap with 503 at once)";
    refusal_wait: Duration, with_refusal_wait, "[`REFUSAL_WAIT`]";
    cap_retry: Duration, with_cap_retry, "[`CAP_RETRY`]";
    session_idle_timeout: Duration, with_session_idle_timeout, "[`SESSION_IDLE_TIMEOUT`]";
    max_sessions: usize, with_max_sessions, "[`MAX_SESSIONS`]";
    session_bytes: usize, with_session_bytes, "[`SESSION_BYTES`]";
    max_limited_addrs: usize, with_max_limited_addrs, "[`MAX_LIMITED_ADDRS`]";
    addr_rate_multiple: u32, with_addr_rate_multiple, "[`ADDR_RATE_MULTIPLE`] (saturating; `u32::MAX` in effect lifts the address budget, 0 refuses every rate-limited request)";
    new_sessions_per_addr: u32, with_new_sessions_per_addr, "[`NEW_SESSIONS_PER_ADDR`] (0 lets no client start a session)";
    new_sessions_window: Duration, with_new_sessions_window, "[`NEW_SESSIONS_WINDOW`]";
    session_secure: bool, with_session_secure, "whether the session cookie is `Secure` (default `false`; set it when clients reach the server over HTTPS, through a TLS proxy)";
    presence: bool, with_presence, "whether streams announce themselves (default `false`): when a stream joins or leaves channel `room`, an event `join` or `leave` with data `{\"channel\":\"room\",\"count\":N}` (the channel's subscribers on this server, after the change) is published to `room/presence`; channels whose names end in `/presence` announce nothing";
    compression: bool, with_compression, "whether streams are compressed for clients that take gzip (default `false`): a stream whose request's `Accept-Encoding` takes `gzip` (weights honoured: `gzip;q=0` refuses) is sent with `Content-Encoding: gzip` (unless its handler set a `Content-Encoding` of its own), and each published event is compressed once, into a chunk shared by every such subscriber of its channel, as it is shared uncompressed by the others (see *Compression* in the crate docs). Stream heads then also say `Vary: Accept-Encoding`; other clients get the same bytes as with it off";
    offload_workers: usize, with_offload_workers, "[`OFFLOAD_WORKERS`] (at least 1 is started)";
    offload_queue: usize, with_offload_queue, "[`OFFLOAD_QUEUE`] (0: a job runs only when a worker is free)";
    offload_deadline: Duration, with_offload_deadline, "[`OFFLOAD_DEADLINE`]";
}

impl Config {
    /// Puts publishing and history behind the Redis at `url` (e.g. `redis://127.0.0.1:6379`),
    /// so that several nodes share channels. Feature `redis`.
    ///
    /// Events are kept in one Redis Stream per channel (`house:stream:CHANNEL`, trimmed to
    /// about [`HISTORY_EVENTS`]), and ids are Redis's, prefixed with an epoch that changes if
    /// Redis loses its data. A handler's own event id is replaced by that id. While Redis is
    /// unreachable, publishes answer 503 and streams stay open; once it is back they catch up,
    /// or get the `reset` event if what they missed is gone. Sessions stay in each process.
    /// The budgets of all channels' history ([`HISTORY_BUDGET_BYTES`],
    /// [`HISTORY_BUDGET_CHANNELS`]) bound this process's history only, which Redis replaces:
    /// bound Redis's memory with its own `maxmemory`.
    #[cfg(feature = "redis")]
    pub fn with_redis(mut self, url: impl Into<String>) -> Config {
        self.redis_url = Some(url.into());
        self
    }

    /// The Redis URL, when publishing goes through Redis.
    #[cfg(feature = "redis")]
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// Sets the session cookie's name (default [`SESSION_COOKIE`]).
    ///
    /// # Panics
    /// If `name` is empty or not an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``).
    pub fn with_session_cookie(mut self, name: impl Into<Cow<'static, str>>) -> Config {
        let name = name.into();
        assert!(
            !name.is_empty() && name.bytes().all(is_token_byte),
            "invalid session cookie name {name:?}"
        );
        self.session_cookie = name;
        self
    }

    /// Sets [`RETRY_SPREAD`]; a negative or NaN spread counts as 0 (the hint exactly).
    ///
    /// # Examples
    /// ```
    /// use house::Config;
    ///
    /// // Every stream is told `retry: 2000`, as before the spread.
    /// let exact = Config::default().with_retry_spread(0.0);
    /// assert_eq!(exact.retry_spread(), 0.0);
    /// assert_eq!(Config::default().with_retry_spread(-1.0).retry_spread(), 0.0);
    /// ```
    pub fn with_retry_spread(mut self, spread: f64) -> Config {
        // `max` keeps the non-NaN side: NaN becomes 0.
        self.retry_spread = spread.max(0.0);
        self
    }

    /// The current setting of [`RETRY_SPREAD`].
    pub fn retry_spread(&self) -> f64 {
        self.retry_spread
    }

    /// The range each stream's `retry:` is picked from (`low..high`, to the millisecond), if
    /// streams get a hint.
    pub(crate) fn retry_range(&self) -> Option<(Duration, Duration)> {
        let hint = self.retry_hint?;
        // Float to integer casts saturate, so a huge spread cannot overflow.
        let extra = (hint.as_millis() as f64 * self.retry_spread) as u64;
        Some((hint, hint.saturating_add(Duration::from_millis(extra))))
    }

    /// The session cookie's name.
    pub fn session_cookie(&self) -> &str {
        &self.session_cookie
    }

    /// Lets pages on other origins use the server (see [`Cors`] for every rule); without it
    /// (the default) no response has `Access-Control-*` headers, so browsers keep other
    /// origins' pages from reading them.
    pub fn with_cors(mut self, cors: Cors) -> Config {
        self.cors = Some(cors);
        self
    }

    /// The CORS settings, if any.
    pub fn cors(&self) -> Option<&Cors> {
        self.cors.as_ref()
    }

    /// How often the loop sweeps its timers: a fraction of the shortest timeout, so each fires
    /// within about a quarter of its length.
    pub(crate) fn tick(&self) -> Duration {
        let shortest = [
            self.max_request_age,
            self.keep_alive_timeout,
            self.heartbeat_interval,
            self.write_timeout,
        ]
        .into_iter()
        .chain(self.max_stream_lifetime)
        .min()
        .unwrap_or(MAX_REQUEST_AGE);
        (shortest / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
    }
}

/// The soft open-file limit, read from `/proc` (no `unsafe` needed); 1024 when unknown.
fn fd_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_limit_is_read() {
        assert!(fd_limit() >= 64);
        assert!(Config::default().max_connections() < fd_limit());
    }

    #[test]
    fn tick_follows_shortest_timeout() {
        let config = Config::default().with_max_request_age(Duration::from_millis(200));
        assert_eq!(config.tick(), Duration::from_millis(50));
        assert_eq!(Config::default().tick(), Duration::from_millis(250));
    }
}
