//! Sessions: typed values kept on the server for a client, found again through a random token
//! in a cookie; the store that holds them, bounded in count, size and idle age.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Config;
use crate::limit::{AddrLimits, LimitScope, Limiter, Rate, RateLimited};
use crate::lru::Lru;
use crate::request::Request;
use crate::response::{IntoResponse, Response, Status};

/// Random bytes in a token: 128 bits.
pub(crate) const TOKEN_BYTES: usize = 16;

/// A session's key: random bytes from the operating system's CSPRNG, sent as lowercase hex.
///
/// The store looks tokens up in a `HashMap`, whose hashing is keyed randomly per process, so a
/// lookup's timing tells a client nothing about the tokens that exist; no comparison of a
/// client's token against a stored one happens byte by byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Token([u8; TOKEN_BYTES]);

impl Token {
    fn random() -> Result<Token, SessionError> {
        let mut bytes = [0; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| SessionError::Random)?;
        Ok(Token(bytes))
    }

    /// A token in its cookie form: exactly 32 lowercase hex digits.
    fn parse(text: &str) -> Option<Token> {
        let text = text.as_bytes();
        if text.len() != TOKEN_BYTES * 2 {
            return None;
        }
        let mut bytes = [0; TOKEN_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
        }
        Some(Token(bytes))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

// Never print a live token into logs.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The session settings of a [`Config`].
#[derive(Debug, Clone)]
struct Settings {
    cookie: Cow<'static, str>,
    secure: bool,
    idle_timeout: Duration,
    max_bytes: usize,
    addr_rate_multiple: u32,
    new_sessions_per_addr: u32,
    new_sessions_window: Duration,
}

/// One session on the server.
#[derive(Debug)]
struct Entry {
    /// Values as JSON text, by key.
    values: HashMap<String, String>,
    /// Bytes of keys and values, held under `Settings::max_bytes`.
    bytes: usize,
    limits: Limiter,
    last_used: Instant,
}

/// Every session of a server, and the rate limits of client addresses.
pub(crate) struct Sessions {
    entries: Lru<Token, Entry>,
    addr_limits: AddrLimits,
    settings: Settings,
    /// Refusals by rate limits, by [`LimitScope`] in the order of `LimitScope::ALL`.
    refused: [u64; 4],
}

// Values are private to their clients: show counts only.
impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("len", &self.entries.len())
            .field("limited_addrs", &self.addr_limits.len())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub(crate) fn new(config: &Config) -> Sessions {
        Sessions {
            entries: Lru::new(config.max_sessions()),
            addr_limits: AddrLimits::new(config.max_limited_addrs()),
            settings: Settings {
                cookie: Cow::Owned(config.session_cookie().to_owned()),
                secure: config.session_secure(),
                idle_timeout: config.session_idle_timeout(),
                max_bytes: config.session_bytes(),
                addr_rate_multiple: config.addr_rate_multiple(),
                new_sessions_per_addr: config.new_sessions_per_addr(),
                new_sessions_window: config.new_sessions_window(),
            },
            refused: [0; 4],
        }
    }

    /// Refusals by rate limits so far, by [`LimitScope`] in the order of `LimitScope::ALL`.
    pub(crate) fn refused(&self) -> [u64; 4] {
        self.refused
    }

    /// Counts one request against `rate` in session `token`'s bucket (without a live session,
    /// in the bucket of requests without one from `peer`) and in `peer`'s share.
    fn check_rate(
        &mut self,
        token: Option<Token>,
        peer: Option<IpAddr>,
        rate: Rate<'_>,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let shared = rate.limit.saturating_mul(self.settings.addr_rate_multiple);
        let session = token
            .and_then(|token| self.entries.get_mut(&token))
            .map(|entry| &mut entry.limits);
        let result = self
            .addr_limits
            .check_nested(peer, session, rate, shared, now);
        if let Err(refused) = &result {
            self.refused[refused.scope().index()] += 1;
        }
        result
    }

    /// Counts one new session from `peer` against the budget of new sessions per address.
    fn check_new_session(&mut self, peer: Option<IpAddr>, now: Instant) -> Result<(), RateLimited> {
        let rate = Rate {
            name: "new sessions",
            limit: self.settings.new_sessions_per_addr,
            window: self.settings.new_sessions_window,
        };
        let result = self
            .addr_limits
            .check(peer, LimitScope::NewSession, rate, now);
        if result.is_err() {
            self.refused[LimitScope::NewSession.index()] += 1;
        }
        result
    }

    /// Live sessions (expired ones count until the next sweep removes them).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes sessions idle for the timeout, least recently used first, and forgets the
    /// address limits whose windows have passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        let idle = self.settings.idle_timeout;
        while self
            .entries
            .pop_oldest_if(|entry| now.duration_since(entry.last_used) >= idle)
            .is_some()
        {}
        self.addr_limits.expire(now);
    }

    /// The first token among `request`'s cookies that names a live session.
    fn find(&mut self, request: &Request, now: Instant) -> Option<Token> {
        let idle = self.settings.idle_timeout;
        let name = &*self.settings.cookie;
        let tokens = request
            .headers()
            .filter(|(header, _)| *header == "cookie")
            .filter_map(|(_, value)| std::str::from_utf8(value).ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(cookie, _)| *cookie == name)
            .filter_map(|(_, value)| Token::parse(value.trim_matches('"')));
        for token in tokens {
            match self.entries.get(&token) {
                Some(entry) if now.duration_since(entry.last_used) < idle => return Some(token),
                // Expired but not swept yet: it is gone all the same.
                Some(_) => {
                    self.entries.remove(&token);
                }
                None => {}
            }
        }
        None
    }

    fn cookie(&self, token: Token) -> String {
        let max_age = self.settings.idle_timeout.as_secs().max(1);
        self.cookie_with(&token.to_string(), max_age)
    }

    fn cookie_with(&self, value: &str, max_age: u64) -> String {
        let secure = if self.settings.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.settings.cookie
        )
    }
}

/// Where a [`Session`]'s store is.
#[derive(Debug)]
enum Store<'a> {
    Server(&'a mut Sessions),
    /// Made on first use, so a context built for a test costs nothing until it needs one.
    Detached(Option<Box<Sessions>>),
}

/// What a handler did to its session, for the cookie in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Created,
    Ended,
}

/// The request's session: typed values the server keeps for one client between requests.
///
/// A handler takes it as a `&mut Session` argument (or `&Session` to only read), or through
/// [`Ctx::session`](crate::Ctx::session).
///
/// - **Created lazily.** A request without a (live) session cookie gets an empty session that
///   exists nowhere; only the first write ([`insert`](Self::insert)) creates it on the server
///   and makes the response set the cookie. Requests that only read create nothing, so
///   cookie-less traffic costs no memory. A stream handler may read and change an existing
///   session but cannot start one: its response carries no cookie.
/// - **Token.** 128 bits from the operating system's CSPRNG, as 32 hex digits, in a cookie
///   (named by [`Config::with_session_cookie`], default `house_session`) with
///   `Max-Age` = the idle timeout, `Path=/`, `HttpOnly`, `SameSite=Lax`, and `Secure` when
///   [`Config::with_session_secure`] is set. Only the server makes tokens: a forged, unknown or
///   expired one is ignored, and the next write starts a fresh session with a new token (never
///   an error page, and never adopting the client's value).
/// - **Idle timeout.** A session lives [`SESSION_IDLE_TIMEOUT`](crate::limits::SESSION_IDLE_TIMEOUT)
///   (30 minutes, [`Config::with_session_idle_timeout`]) after the last request whose handler
///   used it; each such response sends the cookie again, so its `Max-Age` keeps step. The event
///   loop's timer sweep removes expired sessions.
/// - **Bounded.** At most [`MAX_SESSIONS`](crate::limits::MAX_SESSIONS) sessions (100,000,
///   [`Config::with_max_sessions`]); starting one more evicts the least recently used. Each
///   holds at most [`SESSION_BYTES`](crate::limits::SESSION_BYTES) of keys and JSON values.
///   One client address starts at most
///   [`NEW_SESSIONS_PER_ADDR`](crate::limits::NEW_SESSIONS_PER_ADDR) (60) per
///   [`NEW_SESSIONS_WINDOW`](crate::limits::NEW_SESSIONS_WINDOW) (a minute), so a client
///   that keeps no cookies cannot fill the store by writing again and again.
/// - **In-process.** Sessions live in the server's memory, on its loop thread, and end with the
///   process. They are not shared between servers, also when events are relayed through Redis.
///
/// # Examples
/// ```
/// use house::{closing_handler, Ctx, Hub, Method, Request, Session};
///
/// #[closing_handler]
/// fn visit(session: &mut Session) -> String {
///     let visits = session.get::<u32>("visits").unwrap_or(0) + 1;
///     match session.insert("visits", &visits) {
///         Ok(()) => format!("visit number {visits}"),
///         Err(err) => err.to_string(),
///     }
/// }
///
/// // Outside a server the session is detached: it keeps its values only in the context.
/// let request = Request::new(Method::Get, "/visit");
/// let mut hub = Hub::default();
/// let mut ctx = Ctx::new(&request, &mut hub);
/// assert_eq!(visit(&mut ctx.session), "visit number 1");
/// assert_eq!(visit(&mut ctx.session), "visit number 2");
/// ```
pub struct Session<'a> {
    store: Store<'a>,
    /// The live session: found from the request's cookie, or created by a write.
    token: Option<Token>,
    peer: Option<IpAddr>,
    /// False in stream handlers, whose response cannot set a cookie.
    may_create: bool,
    used: Cell<bool>,
    change: Change,
    now: Instant,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("exists", &self.exists())
            .finish_non_exhaustive()
    }
}

impl Session<'static> {
    /// A session that belongs to no server, with default settings: what [`Ctx::new`] gives
    /// handlers under test. It keeps its values for as long as it lives.
    ///
    /// [`Ctx::new`]: crate::Ctx::new
    pub fn detached() -> Session<'static> {
        Session {
            store: Store::Detached(None),
            token: None,
            peer: None,
            may_create: true,
            used: Cell::new(false),
            change: Change::None,
            now: Instant::now(),
        }
    }
}

impl<'a> Session<'a> {
    /// The session named by `request`'s cookie, if it is live, or an empty one; only a
    /// closing handler's session (`may_create`) can be created.
    pub(crate) fn open(
        store: &'a mut Sessions,
        request: &Request,
        may_create: bool,
        now: Instant,
    ) -> Session<'a> {
        let token = store.find(request, now);
        Session {
            store: Store::Server(store),
            token,
            peer: request.peer_addr().map(|addr| addr.ip()),
            may_create,
            used: Cell::new(false),
            change: Change::None,
            now,
        }
    }

    /// Whether the client has a session on the server: it came with a live cookie, or a
    /// handler wrote to it during this request.
    pub fn exists(&self) -> bool {
        self.token.is_some()
    }

    /// The live session's token bytes, to bind a stream to its session (see `Hub::join`).
    pub(crate) fn key(&self) -> Option<[u8; TOKEN_BYTES]> {
        self.token.map(|token| token.0)
    }

    /// The value stored under `key`, or `None` if there is none, or it does not deserialize as
    /// a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let json = self.entry()?.values.get(key)?;
        match serde_json::from_str(json) {
            Ok(value) => Some(value),
            Err(err) => {
                log::debug!("session value `{key}` is not a {}: {err}", type_name::<T>());
                None
            }
        }
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.entry()
            .is_some_and(|entry| entry.values.contains_key(key))
    }

    /// Stores `value` (as JSON) under `key`, replacing what was there, and starts the session
    /// on the server if it did not exist yet.
    ///
    /// # Errors
    /// If `value` cannot be serialized, if the session would hold more than its byte limit, if
    /// a stream handler tries to start a session, if the client's address has started its
    /// budget of new sessions ([`SessionError::RateLimited`]), or if the operating system
    /// cannot supply random bytes for a new token. The session is unchanged then.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), SessionError> {
        let key = key.into();
        let json = serde_json::to_string(value).map_err(SessionError::Serialize)?;
        let max_bytes = self.sessions_mut().settings.max_bytes;
        let old = self
            .entry()
            .and_then(|entry| entry.values.get(&key))
            .map_or(0, |old| key.len() + old.len());
        let bytes = self.entry().map_or(0, |entry| entry.bytes) - old + key.len() + json.len();
        if bytes > max_bytes {
            return Err(SessionError::TooLarge { max_bytes });
        }
        let entry = match self.entry_mut() {
            Some(entry) => entry,
            None => self.create()?,
        };
        entry.bytes = bytes;
        entry.values.insert(key, json);
        Ok(())
    }

    /// Removes the value under `key`; whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(entry) = self.entry_mut() else {
            return false;
        };
        match entry.values.remove(key) {
            Some(old) => {
                entry.bytes -= key.len() + old.len();
                true
            }
            None => false,
        }
    }

    /// Ends the session: its values are dropped, its token stops working, and the response
    /// tells the browser to delete the cookie (in a closing handler). A later write starts a new
    /// session with a new token, as after logging out.
    pub fn end(&mut self) {
        if let Some(token) = self.token.take() {
            self.sessions_mut().entries.remove(&token);
            self.change = Change::Ended;
        }
    }

    /// Counts this request against the limit `name`: at most `limit` requests per `window`
    /// per session, and [`ADDR_RATE_MULTIPLE`](crate::limits::ADDR_RATE_MULTIPLE) (4) times
    /// that per client address, over all its sessions. Over either, `Err` with a
    /// [`RateLimited`], whose response is `429 Too Many Requests` with `Retry-After`; a refused
    /// request counts against neither.
    ///
    /// Each limit is a token bucket: a burst of `limit` requests passes, then one more every
    /// `window / limit`; its state is dropped once the bucket is full again, so it costs memory
    /// only while a client is being limited.
    ///
    /// - **Nested.** A session's bucket sits inside its address's, so a client that replays or
    ///   rotates session cookies gets no more than the address's budget, however many
    ///   sessions it holds. Clients behind one NAT or proxy share that budget: see
    ///   [`ADDR_RATE_MULTIPLE`](crate::limits::ADDR_RATE_MULTIPLE) for the trade-off and
    ///   [`Config::with_addr_rate_multiple`] to change it.
    /// - **Without a session** the request is charged to its address: all requests without a
    ///   session from one address share one session-sized bucket (inside the address's).
    ///   Rate limiting never creates a session.
    /// - **Addresses.** A client is known by its IP address (its /64 network for IPv6); at
    ///   most [`MAX_LIMITED_ADDRS`](crate::limits::MAX_LIMITED_ADDRS) addresses are
    ///   remembered, the least recently limited forgotten first.
    ///
    /// Refusals are counted by [`LimitScope`] in [`Stats::rate_limited`](crate::Stats::rate_limited).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use house::{closing_handler, routes, RateLimited, Session};
    ///
    /// #[closing_handler(methods = [POST])]
    /// fn send(message: String, session: &mut Session) -> Result<String, RateLimited> {
    ///     session.rate_limit("send", 5, Duration::from_secs(10))?;
    ///     Ok(format!("sent {message}"))
    /// }
    /// # let _ = routes![send];
    /// ```
    pub fn rate_limit(
        &mut self,
        name: &str,
        limit: u32,
        window: Duration,
    ) -> Result<(), RateLimited> {
        let rate = Rate {
            name,
            limit,
            window,
        };
        // A live session is used (its idle time restarts); a gone one counts as none.
        let live = self.entry_mut().is_some();
        let token = self.token.filter(|_| live);
        let (peer, now) = (self.peer, self.now);
        self.sessions_mut().check_rate(token, peer, rate, now)
    }

    /// Finishes the request's use of the session: its idle time restarts if the handler used
    /// it, and the `Set-Cookie` value the response needs, if any, comes back. `keep` is false
    /// when the handler failed, and drops a session it started.
    pub(crate) fn close(&mut self, keep: bool) -> Option<String> {
        if self.change == Change::Ended {
            let may_create = self.may_create;
            return may_create.then(|| self.sessions_mut().cookie_with("", 0));
        }
        let token = self.token?;
        if !keep && self.change == Change::Created {
            self.sessions_mut().entries.remove(&token);
            return None;
        }
        if !self.used.get() && self.change == Change::None {
            return None;
        }
        // Marks it the most recently used.
        self.entry_mut();
        let may_create = self.may_create;
        may_create.then(|| self.sessions_mut().cookie(token))
    }

    fn create(&mut self) -> Result<&mut Entry, SessionError> {
        if !self.may_create {
            return Err(SessionError::InStream);
        }
        let (peer, now) = (self.peer, self.now);
        let store = self.sessions_mut();
        store
            .check_new_session(peer, now)
            .map_err(SessionError::RateLimited)?;
        // A repeat of 128 random bits will not happen, but must not hand over a session if it did.
        let mut token = Token::random()?;
        while store.entries.get(&token).is_some() {
            token = Token::random()?;
        }
        store.entries.insert(
            token,
            Entry {
                values: HashMap::new(),
                bytes: 0,
                limits: Limiter::default(),
                last_used: now,
            },
        );
        self.token = Some(token);
        self.change = Change::Created;
        self.entry_mut().ok_or(SessionError::Random)
    }

    /// The session's entry, marked used (by a cell: reads take `&self`).
    fn entry(&self) -> Option<&Entry> {
        let token = self.token?;
        let store = match &self.store {
            Store::Server(store) => &**store,
            Store::Detached(store) => store.as_deref()?,
        };
        self.used.set(true);
        store.entries.get(&token)
    }

    /// The session's entry, marked used now.
    fn entry_mut(&mut self) -> Option<&mut Entry> {
        let token = self.token?;
        let now = self.now;
        self.used.set(true);
        let entry = self.sessions_mut().entries.get_mut(&token)?;
        entry.last_used = now;
        Some(entry)
    }

    fn sessions_mut(&mut self) -> &mut Sessions {
        match &mut self.store {
            Store::Server(store) => store,
            Store::Detached(store) => {
                store.get_or_insert_with(|| Box::new(Sessions::new(&Config::default())))
            }
        }
    }
}

fn type_name<T>() -> &'static str {
    std::any::type_name::<T>()
}

/// Why [`Session::insert`] failed. As a response it is a 500, a fault of the server or of the
/// handler, except [`RateLimited`](Self::RateLimited), which is the client's: a 429.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The value could not be serialized as JSON.
    Serialize(serde_json::Error),
    /// The session would hold more than its limit of bytes of keys and JSON values.
    TooLarge {
        /// The limit ([`Config::with_session_bytes`]).
        max_bytes: usize,
    },
    /// A stream handler tried to start a session; a stream's response cannot set a cookie.
    InStream,
    /// The operating system's random number generator failed.
    Random,
    /// Starting a session was refused: the client's address has started
    /// [`NEW_SESSIONS_PER_ADDR`](crate::limits::NEW_SESSIONS_PER_ADDR) sessions within
    /// [`NEW_SESSIONS_WINDOW`](crate::limits::NEW_SESSIONS_WINDOW). As a response, `429 Too
    /// Many Requests` with `Retry-After`.
    RateLimited(RateLimited),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Serialize(err) => write!(f, "session value cannot be serialized: {err}"),
            SessionError::TooLarge { max_bytes } => {
                write!(f, "session would hold more than {max_bytes} bytes")
            }
            SessionError::InStream => f.write_str("a stream handler cannot start a session"),
            SessionError::Random => f.write_str("no random bytes for a session token"),
            SessionError::RateLimited(refused) => fmt::Display::fmt(refused, f),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Serialize(err) => Some(err),
            SessionError::RateLimited(refused) => Some(refused),
            _ => None,
        }
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        if let SessionError::RateLimited(refused) = self {
            return refused.into_response();
        }
        log::warn!("{self}");
        Response::error(
            Status::INTERNAL_SERVER_ERROR,
            "the session could not be saved",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn store(config: Config) -> Sessions {
        Sessions::new(&config)
    }

    fn with_cookie(value: &str) -> Request {
        Request::new(Method::Get, "/").with_header("Cookie", value)
    }

    /// Starts a session in `sessions` and returns its cookie's token.
    fn start(sessions: &mut Sessions, now: Instant) -> String {
        let request = Request::new(Method::Get, "/");
        let mut session = Session::open(sessions, &request, true, now);
        session.insert("n", &1).unwrap();
        let cookie = session.close(true).unwrap();
        cookie["house_session=".len()..][..32].to_owned()
    }

    #[test]
    fn token_round_trips_as_hex() {
        let token = Token::random().unwrap();
        let text = token.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(Token::parse(&text), Some(token));
        assert_eq!(Token::parse(&text.to_uppercase()), None);
        assert_eq!(Token::parse(&text[1..]), None);
        assert_eq!(format!("{token:?}"), "Token(..)");
    }

    #[test]
    fn reads_create_nothing() {
        let mut sessions = store(Config::default());
        let request = Request::new(Method::Get, "/");
        let mut session = Session::open(&mut sessions, &request, true, Instant::now());
        assert_eq!(session.get::<u32>("n"), None);
        assert!(!session.remove("n"));
        assert!(!session.exists());
        assert_eq!(session.close(true), None);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn cookie_finds_the_session_among_others() {
        let now = Instant::now();
        let mut sessions = store(Config::default());
        let token = start(&mut sessions, now);
        let request = with_cookie(&format!("a=b; house_session=nope; house_session={token}"));
        let session = Session::open(&mut sessions, &request, true, now);
        assert_eq!(session.get::<u32>("n"), Some(1));
    }

    #[test]
    fn expired_sessions_are_gone() {
        let now = Instant::now();
        let config = Config::default().with_session_idle_timeout(Duration::from_secs(60));
        let mut sessions = store(config);
        let token = start(&mut sessions, now);
        sessions.expire(now + Duration::from_secs(59));
        assert_eq!(sessions.len(), 1);
        let request = with_cookie(&format!("house_session={token}"));
        let later = now + Duration::from_secs(60);
        assert!(!Session::open(&mut sessions, &request, true, later).exists());
        assert_eq!(sessions.len(), 0);
        start(&mut sessions, now);
        sessions.expire(later);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn streams_cannot_start_sessions() {
        let mut sessions = store(Config::default());
        let request = Request::new(Method::Get, "/");
        let mut session = Session::open(&mut sessions, &request, false, Instant::now());
        assert!(matches!(
            session.insert("n", &1),
            Err(SessionError::InStream)
        ));
        assert_eq!(session.close(true), None);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn size_is_bounded() {
        let mut session = Session::detached();
        let max = Config::default().session_bytes();
        session.insert("k", &"x".repeat(max - 3)).unwrap();
        // Replacing counts the new value instead of the old one.
        session.insert("k", &"y".repeat(max - 3)).unwrap();
        assert!(matches!(
            session.insert("l", &0),
            Err(SessionError::TooLarge { .. })
        ));
        assert!(session.remove("k"));
        session.insert("l", &0).unwrap();
    }

    #[test]
    fn failed_handler_drops_a_new_session() {
        let mut sessions = store(Config::default());
        let request = Request::new(Method::Get, "/");
        let mut session = Session::open(&mut sessions, &request, true, Instant::now());
        session.insert("n", &1).unwrap();
        assert_eq!(session.close(false), None);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn end_deletes_the_cookie() {
        let now = Instant::now();
        let mut sessions = store(Config::default().with_session_secure(true));
        let token = start(&mut sessions, now);
        let request = with_cookie(&format!("house_session={token}"));
        let mut session = Session::open(&mut sessions, &request, true, now);
        session.end();
        assert_eq!(
            session.close(true).as_deref(),
            Some("house_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        assert_eq!(sessions.len(), 0);
    }
}
