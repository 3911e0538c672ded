//! The channel registry: which stream connections listen to which channel, each channel's
//! recent history, and event ids; with the `redis` feature, the broker that carries all of it
//! between nodes.
//!
//! The hub maps channels to connection [`Token`]s, never to sockets, so the event loop stays
//! the only owner of sockets. Publishing serializes an event once into a shared frame; the loop
//! then queues that same frame to every subscriber. Pattern subscriptions (`orders/*`) are kept
//! apart, by prefix: a publish and its fan-out look at them only while some exist.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Token, Waker};

#[cfg(feature = "redis")]
use crate::broker::{Broker, BrokerDown, BrokerMsg};
use crate::config::Config;
use crate::printable::Printable;
use crate::response::{IntoResponse, Response, Status};
use crate::session::TOKEN_BYTES;
use crate::sse::{Event, Frame};
use crate::stats::HistoryBudget;

/// What a channel's presence channel adds to its name (see [`Config::with_presence`]).
const PRESENCE_SUFFIX: &str = "/presence";

/// What a history event counts against the bytes budget beyond its frame: its slot in the
/// history (40 bytes) and the frame's allocation (a 16-byte header, and the allocator's).
const ENTRY_OVERHEAD: usize = 64;

/// What a channel with history counts against the bytes budget beyond its events and twice
/// its name (the map's key, and the eviction order's copy): its entry in the channel map, with
/// the map's spare room (about 250 bytes), its history's smallest buffer (4 slots, 160 bytes),
/// and its entry in the eviction order. An estimate on the high side: with 100,000 channels of
/// one 40-byte event (`tests/budgets.rs`), 665 bytes per channel were counted, and resident
/// memory grew by 592 per channel.
const CHANNEL_OVERHEAD: usize = 512;

/// History and id settings of a [`Hub`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryLimits {
    pub(crate) events: usize,
    pub(crate) bytes: usize,
    pub(crate) idle_ttl: Duration,
    /// The budget of all channels' history together, in bytes as [`Channel::held`] counts.
    pub(crate) budget_bytes: usize,
    /// The most channels with history.
    pub(crate) budget_channels: usize,
}

impl From<&Config> for HistoryLimits {
    fn from(config: &Config) -> HistoryLimits {
        HistoryLimits {
            events: config.history_events(),
            bytes: config.history_bytes(),
            idle_ttl: config.history_ttl(),
            budget_bytes: config.history_budget_bytes(),
            budget_channels: config.history_budget_channels(),
        }
    }
}

/// A publish the hub took: what a handler may tell its client about the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    id: Option<String>,
}

impl Published {
    /// The event's id: the one it was given, or the `RUN-SEQ` id the hub assigned. With the
    /// `redis` feature Redis assigns ids after the handler returns, so only an id the event
    /// was given is known here.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// Why a publish did not happen. As a response it is a 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The server is shutting down (or its loop has exited).
    Closed,
    /// The broker that carries events between nodes cannot be reached.
    Unavailable(String),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Closed => f.write_str("the server is shutting down"),
            PublishError::Unavailable(why) => {
                write!(f, "events cannot be published right now: {why}")
            }
        }
    }
}

impl std::error::Error for PublishError {}

impl IntoResponse for PublishError {
    fn into_response(self) -> Response {
        Response::error(Status::SERVICE_UNAVAILABLE, &self).with_header("Retry-After", "1")
    }
}

#[cfg(feature = "redis")]
impl From<BrokerDown> for PublishError {
    fn from(down: BrokerDown) -> PublishError {
        match down {
            BrokerDown::Unreachable => {
                PublishError::Unavailable("the Redis broker is unreachable".into())
            }
            BrokerDown::Stopped => PublishError::Closed,
        }
    }
}

/// Why [`Hub::join`] or [`Hub::leave`] (or their pattern forms) refused. As a response: 404,
/// 403, 503, or 501.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// No open stream has this id (it closed, or never existed).
    UnknownStream,
    /// The stream was opened with a session, and this request is not of that session.
    NotOwner,
    /// The broker that carries events between nodes cannot be reached, so the stream cannot
    /// join a channel right now (with the `redis` feature; the stream is unchanged).
    Unavailable,
    /// Channel patterns cannot be joined while events go through Redis, nor in the test
    /// client (not supported there yet).
    PatternsUnsupported,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinError::UnknownStream => "no open stream has this id",
            JoinError::NotOwner => "the stream belongs to another session",
            JoinError::Unavailable => "channels cannot be joined right now: Redis is unreachable",
            JoinError::PatternsUnsupported => {
                "channel patterns are not supported here yet (with the Redis broker, or in the test client)"
            }
        })
    }
}

impl std::error::Error for JoinError {}

impl IntoResponse for JoinError {
    fn into_response(self) -> Response {
        match self {
            JoinError::UnknownStream => Response::error(Status::NOT_FOUND, &self),
            JoinError::NotOwner => Response::error(Status::FORBIDDEN, &self),
            JoinError::Unavailable => {
                Response::error(Status::SERVICE_UNAVAILABLE, &self).with_header("Retry-After", "1")
            }
            JoinError::PatternsUnsupported => Response::error(Status::NOT_IMPLEMENTED, &self),
        }
    }
}

#[cfg(feature = "redis")]
impl From<BrokerDown> for JoinError {
    fn from(_: BrokerDown) -> JoinError {
        // A broker that stopped means the server is shutting down: also worth a retry.
        JoinError::Unavailable
    }
}

/// A change of an open stream's channels, made by a handler, for the loop to apply.
#[derive(Debug)]
pub(crate) enum Change {
    /// Subscribe `token` to `channel`, first replaying what it missed: after `last_event_id`
    /// when the joining request named one, else what was published after the join itself
    /// (after `after_seq`, or with a broker, after where Redis says join number `remote` took
    /// effect).
    Join {
        token: Token,
        channel: String,
        last_event_id: Option<String>,
        after_seq: u64,
        remote: Option<u64>,
    },
    Leave {
        token: Token,
        channel: String,
    },
    /// Subscribe `token` to `pattern`, with the replay rules of `Join` for each covered
    /// channel it does not get already.
    JoinPattern {
        token: Token,
        pattern: Pattern,
        last_event_id: Option<String>,
        after_seq: u64,
    },
    LeavePattern {
        token: Token,
        pattern: Pattern,
    },
}

/// A stream's id: 128 random bits, handed out as 32 lowercase hex digits. Kept as the bits,
/// once per map, where two hex `String`s took two 48-byte malloc chunks per joinable stream.
type StreamId = [u8; 16];

/// An open stream: its connection, and the session it was opened with.
struct OpenStream {
    token: Token,
    session: Option<[u8; TOKEN_BYTES]>,
}

/// The request a handler is running for, as far as joins need it.
#[derive(Debug, Default)]
struct Caller {
    session: Option<[u8; TOKEN_BYTES]>,
    last_event_id: Option<String>,
}

struct Entry {
    seq: u64,
    /// The id a handler chose, when it did not take the generated one.
    custom_id: Option<Box<str>>,
    frame: Frame,
}

#[derive(Default)]
struct Channel {
    subscribers: HashSet<Token>,
    history: VecDeque<Entry>,
    history_bytes: usize,
    /// Every event of this channel with `seq > floor` is still in `history`.
    floor: u64,
    last_publish: Option<Instant>,
    /// The seq of the last event published to it: its key in the hub's [`Order`] while it has
    /// history.
    last_seq: u64,
}

/// The channels with history, oldest last publish first, in two queues: the idle ones (with
/// no subscribers) are evicted before the busy ones, whose subscribers are live and need no
/// history unless they reconnect. Seqs are unique across channels, so each is one key.
#[derive(Debug, Default)]
struct Order {
    idle: BTreeMap<u64, String>,
    busy: BTreeMap<u64, String>,
}

impl Order {
    fn queue(&mut self, busy: bool) -> &mut BTreeMap<u64, String> {
        if busy {
            &mut self.busy
        } else {
            &mut self.idle
        }
    }

    fn len(&self) -> usize {
        self.idle.len() + self.busy.len()
    }

    /// The channel to evict from first: its key, whether it is busy, and its name.
    fn first(&self) -> Option<(u64, bool, &str)> {
        let (queue, busy) = match self.idle.is_empty() {
            true => (&self.busy, true),
            false => (&self.idle, false),
        };
        let (&seq, name) = queue.first_key_value()?;
        Some((seq, busy, name.as_str()))
    }

    #[cfg(debug_assertions)]
    fn queue_ref(&self, busy: bool) -> &BTreeMap<u64, String> {
        if busy {
            &self.busy
        } else {
            &self.idle
        }
    }

    /// A channel with history got subscribers, or lost its last.
    fn switch(&mut self, seq: u64, to_busy: bool) {
        if let Some(name) = self.queue(!to_busy).remove(&seq) {
            self.queue(to_busy).insert(seq, name);
        }
    }
}

/// What the broker answered that the loop must act on, in the order it answered. (Events it
/// delivered are queued for fan-out by the hub itself.)
#[derive(Debug)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Remote {
    /// A new stream's replay arrived: send it, then attach the stream to its channels.
    Attach {
        token: Token,
        reset: bool,
        frames: Vec<Frame>,
    },
    /// The replay of a stream's join arrived: send it, then subscribe the stream to `channel`.
    Joined {
        token: Token,
        channel: String,
        reset: bool,
        frames: Vec<Frame>,
    },
    /// A stream's join did not take effect (Redis was unreachable): it leaves `channel` again.
    JoinFailed { token: Token, channel: String },
    /// Redis took (or, unless `ok`, refused) one of the publishes `token`'s response waits for.
    Acked { token: Token, ok: bool },
    /// Events were lost for a channel (or, for `None`, every channel: Redis lost its data).
    Reset(Option<String>),
}

/// One channel as [`Hub::channels`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInfo<'a> {
    name: &'a str,
    subscribers: usize,
    history_len: usize,
}

impl<'a> ChannelInfo<'a> {
    /// The channel's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// How many connections of this server are subscribed to it.
    pub fn subscribers(&self) -> usize {
        self.subscribers
    }

    /// How many events this server keeps for replay. With the `redis` feature the history
    /// lives in Redis, and this is 0.
    pub fn history_len(&self) -> usize {
        self.history_len
    }
}

/// A channel pattern: `orders/*` covers every channel whose name starts with `orders/` and
/// goes on (`orders/1`, `orders/1/items`), and `*` alone covers every channel.
///
/// The `*` must be the whole last segment; it stands for one or more segments. A pattern is
/// never a channel name: [`Subscribe::to`](crate::Subscribe::to) takes any name literally, so
/// a name from a request cannot widen a subscription, and only
/// [`Subscribe::to_pattern`](crate::Subscribe::to_pattern) (or [`Hub::join_pattern`]) subscribes
/// to a pattern.
///
/// # Examples
/// ```
/// use house::Pattern;
///
/// let orders = Pattern::new("orders/*").unwrap();
/// assert!(orders.matches("orders/17"));
/// assert!(orders.matches("orders/17/items"));
/// assert!(!orders.matches("orders"));
/// assert!(!orders.matches("ordersheet/1"));
/// assert!(Pattern::new("orders*").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Box<str>,
}

impl Pattern {
    /// Checks `pattern`: it ends with a `/*` segment (or is `*`), and has no other `*`.
    pub fn new(pattern: impl Into<String>) -> Result<Pattern, PatternError> {
        let text = pattern.into();
        let Some(prefix) = text.strip_suffix('*') else {
            return Err(PatternError::NoWildcard(text));
        };
        // `orders*` or `or*ders/*`: a `*` that is not a whole segment, or not the last one.
        if !(prefix.is_empty() || prefix.ends_with('/')) || prefix.contains('*') {
            return Err(PatternError::MisplacedWildcard(text));
        }
        Ok(Pattern {
            text: text.into_boxed_str(),
        })
    }

    /// The pattern as written: `orders/*`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What every covered channel's name starts with: `orders/` (empty for `*`).
    pub fn prefix(&self) -> &str {
        &self.text[..self.text.len() - 1]
    }

    /// Whether `channel` is one of the channels this pattern covers.
    pub fn matches(&self, channel: &str) -> bool {
        let prefix = self.prefix();
        channel.len() > prefix.len() && channel.starts_with(prefix)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;

    fn from_str(pattern: &str) -> Result<Pattern, PatternError> {
        Pattern::new(pattern)
    }
}

/// Why a string is not a channel [`Pattern`]. As a response it is a 400: patterns are mostly
/// built from a request (`orders/{customer}/*`), so a bad one is the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern does not end with a `*` segment: it would name one channel.
    NoWildcard(String),
    /// A `*` that is not the whole last segment (`orders*`, `*/items`, `a/*/b/*`).
    MisplacedWildcard(String),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::NoWildcard(text) => write!(
                f,
                "`{text}` is not a channel pattern: it must end with a `*` segment, as in `orders/*`"
            ),
            PatternError::MisplacedWildcard(text) => write!(
                f,
                "`{text}` is not a channel pattern: `*` may only be its whole last segment"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

impl IntoResponse for PatternError {
    fn into_response(self) -> Response {
        Response::error(Status::BAD_REQUEST, &self)
    }
}

/// One pattern as [`Hub::patterns`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternInfo<'a> {
    pattern: &'a Pattern,
    subscribers: usize,
}

impl<'a> PatternInfo<'a> {
    /// The pattern.
    pub fn pattern(&self) -> &'a Pattern {
        self.pattern
    }

    /// How many connections of this server are subscribed to the pattern itself.
    pub fn subscribers(&self) -> usize {
        self.subscribers
    }
}

/// The streams subscribed to one pattern.
struct PatternSubscribers {
    pattern: Pattern,
    tokens: HashSet<Token>,
}

/// The prefixes of `channel` a pattern could have: `` (for `*`), then up to each `/` that is
/// not the last byte (`orders/` for `orders/1`, not `orders/` for `orders/`).
fn pattern_prefixes(channel: &str) -> impl Iterator<Item = &str> {
    let empty = (!channel.is_empty()).then_some("");
    empty.into_iter().chain(
        channel
            .match_indices('/')
            .map(|(at, _)| &channel[..=at])
            .filter(move |prefix| prefix.len() < channel.len()),
    )
}

/// What a new stream gets before live events.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// The client asked to resume from an id whose successors are not all known.
    pub(crate) reset: bool,
    pub(crate) frames: Vec<Frame>,
}

/// The channel registry that handlers publish through.
///
/// Channels are named by strings and exist while they have subscribers or history. Every
/// published event gets an id `RUN-SEQ` unless it already has one: `RUN` changes each time the
/// server starts, and `SEQ` increases across all channels, so ids increase within each channel
/// and an id from before a restart is recognised.
///
/// # Examples
/// ```
/// use house::{Event, Hub};
///
/// // A hub of its own, as in a handler's unit test; a server has one and lends it to handlers.
/// let mut hub = Hub::default();
/// let published = hub.publish("lobby", Event::new("hello")).unwrap();
/// assert!(published.id().unwrap().starts_with(hub.run_id()));
/// // Nobody listens yet, but the channel keeps the event for streams that resume.
/// assert_eq!(hub.subscribers("lobby"), 0);
/// assert_eq!((hub.channel_count(), hub.published()), (1, 1));
/// ```
pub struct Hub {
    channels: HashMap<String, Channel>,
    /// Pattern subscriptions by prefix (`orders/` for `orders/*`). Empty unless a stream
    /// subscribed to a pattern: only then do publishing and fan-out look past `channels`.
    patterns: HashMap<Box<str>, PatternSubscribers>,
    /// The patterns of each stream that has any, to leave them when it closes.
    stream_patterns: HashMap<Token, Vec<Pattern>>,
    /// Every event of a channel no longer in `channels` has `seq <= removed_floor`: what a
    /// resume must compare with for channels it cannot see (gone, or covered by a pattern).
    removed_floor: u64,
    run: String,
    seq: u64,
    limits: HistoryLimits,
    /// The channels with history, in eviction order.
    order: Order,
    /// What every channel's history holds, as [`Channel::held`] counts it.
    held: usize,
    /// Events evicted to keep within a budget, by [`HistoryBudget`].
    evictions: [u64; 2],
    /// Published but not yet queued to subscribers: (channel, frame).
    pending: Vec<(String, Frame)>,
    closed: bool,
    /// Events published since the start.
    published: u64,
    /// Subscriptions across all channels.
    subscriptions: usize,
    /// Publishes handed to the broker since the last [`Hub::await_acks`], awaiting Redis.
    tickets: Vec<u64>,
    /// Which connection's response waits for each outstanding publish.
    awaiting: HashMap<u64, Token>,
    /// Local streams attached or waiting to attach, per channel (with a broker), and joins on
    /// their way through the broker.
    interest: HashMap<String, usize>,
    /// Joins applied by the loop whose replay the broker has not sent yet: the number of the
    /// latest, per stream and channel; an answer to any other join of them is stale.
    joining: HashMap<(Token, String), u64>,
    /// The number of the last join handed to the broker.
    #[cfg(feature = "redis")]
    joins: u64,
    /// Every publish, for the test client; `None` in a server.
    record: Option<Vec<(String, Frame)>>,
    /// Whether joining and leaving a channel is published to its presence channel.
    presence: bool,
    /// Open streams by id (a capability: 128 random bits), and each stream's id by token.
    streams: HashMap<StreamId, OpenStream>,
    stream_ids: HashMap<Token, StreamId>,
    /// Joins and leaves made by handlers, for the loop to apply in order.
    changes: Vec<Change>,
    caller: Caller,
    #[cfg(feature = "redis")]
    broker: Option<Broker>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("run", &self.run)
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    /// A hub with the default history limits, detached from any server: for testing handlers
    /// by hand (see [`Ctx::new`](crate::Ctx::new)).
    fn default() -> Hub {
        Hub::new(HistoryLimits::from(&Config::default()))
    }
}

impl Hub {
    pub(crate) fn new(limits: HistoryLimits) -> Hub {
        Hub {
            channels: HashMap::new(),
            patterns: HashMap::new(),
            stream_patterns: HashMap::new(),
            removed_floor: 0,
            run: new_run_id(),
            seq: 0,
            limits,
            order: Order::default(),
            held: 0,
            evictions: [0; 2],
            pending: Vec::new(),
            closed: false,
            published: 0,
            subscriptions: 0,
            tickets: Vec::new(),
            awaiting: HashMap::new(),
            interest: HashMap::new(),
            joining: HashMap::new(),
            #[cfg(feature = "redis")]
            joins: 0,
            record: None,
            presence: false,
            streams: HashMap::new(),
            stream_ids: HashMap::new(),
            changes: Vec::new(),
            caller: Caller::default(),
            #[cfg(feature = "redis")]
            broker: None,
        }
    }

    /// Turns presence announcements on or off (see [`Config::with_presence`]).
    pub(crate) fn set_presence(&mut self, presence: bool) {
        self.presence = presence;
    }

    /// From now on keeps every published frame for [`take_recorded`](Self::take_recorded).
    pub(crate) fn record(&mut self) {
        self.record.get_or_insert_with(Vec::new);
    }

    /// The frames published since the last call, with their channels (when recording).
    pub(crate) fn take_recorded(&mut self) -> Vec<(String, Frame)> {
        self.record.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The hub of a server with `config`: with a Redis URL (feature `redis`), connected to its
    /// broker, whose threads wake the loop through `waker`. Only a malformed URL fails here.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub(crate) fn start(config: &Config, waker: &Arc<Waker>) -> std::io::Result<Hub> {
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut hub = Hub::new(HistoryLimits::from(config));
        hub.set_presence(config.presence());
        #[cfg(feature = "redis")]
        if let Some(url) = config.redis_url() {
            hub.broker = Some(Broker::start(url, config.history_events(), waker.clone())?);
        }
        Ok(hub)
    }

    /// Publishes `event` to every subscriber of `channel`, and keeps it in the channel's history.
    ///
    /// The event gets the next id unless it has one. Subscribers receive it once the handler
    /// returns (or, from another thread's [`Handle`](crate::Handle), on the loop's next turn).
    /// When the histories of all channels then pass a budget
    /// ([`HISTORY_BUDGET_BYTES`](crate::limits::HISTORY_BUDGET_BYTES),
    /// [`HISTORY_BUDGET_CHANNELS`](crate::limits::HISTORY_BUDGET_CHANNELS)), the oldest events
    /// of the channels published to least recently go, those without subscribers first.
    ///
    /// # Examples
    /// ```
    /// use house::{Event, Route};
    ///
    /// let send = Route::closing("/send", |ctx| {
    ///     let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
    ///     ctx.hub.publish(&room, Event::new("hello")).map(|_| "sent")
    /// });
    /// # let _ = send;
    /// ```
    ///
    /// The returned [`Published`] names the event's id, so a handler can answer `201` with a
    /// `Location` that names the message:
    /// ```
    /// use house::{Event, Hub, Response};
    ///
    /// let mut hub = Hub::default();
    /// let published = hub.publish("lobby", Event::new("hi")).unwrap();
    /// let id = published.id().unwrap();
    /// let response = Response::created(format!("/rooms/lobby/messages/{id}"));
    /// assert!(response.header("location").unwrap().ends_with(id));
    /// ```
    pub fn publish(&mut self, channel: &str, event: Event) -> Result<Published, PublishError> {
        if self.closed {
            return Err(PublishError::Closed);
        }
        #[cfg(feature = "redis")]
        if let Some(broker) = &mut self.broker {
            // Redis assigns the id and keeps the history; the event comes back to every node.
            let mut body = Vec::with_capacity(event.get_data().len() + 16);
            event.write_body_to(&mut body);
            let id = event.get_id().map(str::to_owned);
            let ticket = broker.publish(channel, body)?;
            self.tickets.push(ticket);
            self.published += 1;
            return Ok(Published { id });
        }
        self.seq += 1;
        self.published += 1;
        let seq = self.seq;
        let (custom_id, event) = match event.get_id() {
            Some(id) => (Some(id.into()), event),
            None => (None, event.id(format!("{}-{seq}", self.run))),
        };
        let id = event.get_id().map(str::to_owned);
        let frame: Frame = event.to_bytes().into();
        let limits = self.limits;
        let removed_floor = self.removed_floor;
        let entry = self
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel {
                floor: removed_floor,
                ..Channel::default()
            });
        entry.last_publish = Some(Instant::now());
        let busy = !entry.subscribers.is_empty();
        let held = entry.held(channel);
        // Out of the order for now, keeping its copy of the name to put it back with.
        let name = match held {
            0 => None,
            _ => self.order.queue(busy).remove(&entry.last_seq),
        };
        entry.last_seq = seq;
        if limits.events > 0 && frame.len() <= limits.bytes {
            entry.history_bytes += frame.len();
            entry.history.push_back(Entry {
                seq,
                custom_id,
                frame: frame.clone(),
            });
            while entry.history.len() > limits.events || entry.history_bytes > limits.bytes {
                entry.evict_oldest();
            }
        } else {
            // Not kept: a client resuming from before it has missed it.
            entry.floor = seq;
        }
        self.held = self.held - held + entry.held(channel);
        if !entry.history.is_empty() {
            let name = name.unwrap_or_else(|| channel.to_owned());
            self.order.queue(busy).insert(seq, name);
        }
        self.keep_within_budget();
        if let Some(record) = &mut self.record {
            record.push((channel.to_owned(), frame.clone()));
        }
        // Without pattern subscriptions, `is_covered` is one branch.
        if busy || self.is_covered(channel) {
            self.pending.push((channel.to_owned(), frame));
        }
        Ok(Published { id })
    }

    /// Subscribes the open stream `stream_id` to `channel` as well, once the handler returns.
    ///
    /// The id is a joinable stream's first event (`event: house-stream`, see
    /// [`STREAM_EVENT`](crate::STREAM_EVENT)); knowing it is the right to change the stream. A
    /// stream opened with a session is also bound to it: only a request of that same session
    /// may change it ([`JoinError::NotOwner`] otherwise).
    ///
    /// What the stream gets from `channel` follows the rules of a new stream: if this request
    /// names a `last_event_id` parameter (or a `Last-Event-ID` header), the channel's events
    /// after that id come first (or `event: reset` when some are no longer known); otherwise
    /// every event published to `channel` after this call, and none before. Joining a channel
    /// the stream already has changes nothing.
    ///
    /// With the `redis` feature the stream gets the channel's events whichever node publishes
    /// them, and the response waits, as it does for a publish, until Redis has taken the join,
    /// so an event published anywhere after the response reaches the stream. The id is known
    /// only to the node that holds the stream (another node answers
    /// [`JoinError::UnknownStream`]). When Redis cannot be reached the join fails with
    /// [`JoinError::Unavailable`] (or, found out later, the response is a 503) and the stream
    /// is unchanged.
    ///
    /// # Examples
    /// ```
    /// use house::Route;
    ///
    /// let join = Route::closing("/join", |ctx| {
    ///     let stream = ctx.request.param("stream").unwrap_or("");
    ///     let room = ctx.request.param("room").unwrap_or("lobby");
    ///     ctx.hub.join(stream, room).map(|()| "joined")
    /// });
    /// # let _ = join;
    /// ```
    pub fn join(&mut self, stream_id: &str, channel: &str) -> Result<(), JoinError> {
        let token = self.owned_stream(stream_id)?;
        let last_event_id = self.caller.last_event_id.clone();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut remote = None;
        #[cfg(feature = "redis")]
        if let Some(broker) = &mut self.broker {
            // In order with this handler's publishes: the join takes effect between them.
            let join = self.joins + 1;
            let ticket = broker.join(token, channel, join, last_event_id.clone())?;
            self.joins = join;
            self.tickets.push(ticket);
            // The broker reads the channel for this join from now on: held until the loop
            // applies the join (then by the stream, until it leaves) or finds it stale.
            *self.interest.entry(channel.to_owned()).or_default() += 1;
            remote = Some(join);
        }
        self.changes.push(Change::Join {
            token,
            channel: channel.to_owned(),
            last_event_id,
            after_seq: self.seq,
            remote,
        });
        Ok(())
    }

    /// Unsubscribes the open stream `stream_id` from `channel`, once the handler returns; the
    /// same rights as [`join`](Self::join) apply. A stream that leaves its last channel stays
    /// open (with heartbeats) and can join again. Leaving a channel the stream does not have
    /// changes nothing. With the `redis` feature, a node stops reading a channel from Redis
    /// once no stream of its own wants it.
    pub fn leave(&mut self, stream_id: &str, channel: &str) -> Result<(), JoinError> {
        let token = self.owned_stream(stream_id)?;
        self.changes.push(Change::Leave {
            token,
            channel: channel.to_owned(),
        });
        Ok(())
    }

    /// Subscribes the open stream `stream_id` to every channel `pattern` covers as well, once
    /// the handler returns; the rights of [`join`](Self::join) apply.
    ///
    /// The replay rules of `join` apply to the covered channels the stream does not get
    /// already (by name or by another pattern): their events after the request's
    /// `last_event_id` (or `Last-Event-ID`), in publish order, or else those published after
    /// this call. Joining a pattern the stream has changes nothing.
    ///
    /// # Examples
    /// ```
    /// use house::{IntoResponse, Pattern, Response, Route};
    ///
    /// let follow = Route::closing("/follow", |ctx| {
    ///     let stream = ctx.request.param("stream").unwrap_or("");
    ///     let customer = ctx.request.param("customer").unwrap_or("");
    ///     // A malformed pattern (a `*` in `customer`) is a 400.
    ///     let pattern = Pattern::new(format!("orders/{customer}/*"))
    ///         .map_err(IntoResponse::into_response)?;
    ///     ctx.hub
    ///         .join_pattern(stream, &pattern)
    ///         .map_err(IntoResponse::into_response)?;
    ///     Ok::<_, Response>("following")
    /// });
    /// # let _ = follow;
    /// ```
    pub fn join_pattern(&mut self, stream_id: &str, pattern: &Pattern) -> Result<(), JoinError> {
        let token = self.owned_stream(stream_id)?;
        if self.pattern_refusal().is_some() {
            return Err(JoinError::PatternsUnsupported);
        }
        self.changes.push(Change::JoinPattern {
            token,
            pattern: pattern.clone(),
            last_event_id: self.caller.last_event_id.clone(),
            after_seq: self.seq,
        });
        Ok(())
    }

    /// Unsubscribes the open stream `stream_id` from `pattern`, once the handler returns, as
    /// [`leave`](Self::leave) does for a channel. The channels the stream has by name stay.
    pub fn leave_pattern(&mut self, stream_id: &str, pattern: &Pattern) -> Result<(), JoinError> {
        let token = self.owned_stream(stream_id)?;
        if self.pattern_refusal().is_some() {
            return Err(JoinError::PatternsUnsupported);
        }
        self.changes.push(Change::LeavePattern {
            token,
            pattern: pattern.clone(),
        });
        Ok(())
    }

    /// The connection of stream `stream_id`, if the running request may change it.
    fn owned_stream(&self, stream_id: &str) -> Result<Token, JoinError> {
        let stream = parse_stream_id(stream_id)
            .and_then(|id| self.streams.get(&id))
            .ok_or(JoinError::UnknownStream)?;
        match stream.session {
            Some(owner) if self.caller.session != Some(owner) => Err(JoinError::NotOwner),
            _ => Ok(stream.token),
        }
    }

    /// Names the request handlers run for until the next call: its session, and the id it
    /// resumes from (for joins).
    pub(crate) fn set_caller(
        &mut self,
        session: Option<[u8; TOKEN_BYTES]>,
        last_event_id: Option<&str>,
    ) {
        self.caller = Caller {
            session,
            last_event_id: last_event_id.map(str::to_owned),
        };
    }

    /// Gives stream `token` a new id, bound to the session of the request that opened it (the
    /// caller). Fails only if the system has no randomness.
    pub(crate) fn open_stream(&mut self, token: Token) -> Result<String, getrandom::Error> {
        let mut id = random_id()?;
        // A repeat of 128 random bits will not happen, but must not hand over a stream if it did.
        while self.streams.contains_key(&id) {
            id = random_id()?;
        }
        self.streams.insert(
            id,
            OpenStream {
                token,
                session: self.caller.session,
            },
        );
        self.stream_ids.insert(token, id);
        Ok(format_stream_id(&id))
    }

    /// Stream `token` closed: its id names nothing any more, and it leaves its patterns.
    pub(crate) fn close_stream(&mut self, token: Token) {
        if let Some(id) = self.stream_ids.remove(&token) {
            self.streams.remove(&id);
        }
        self.leave_patterns(token);
    }

    /// The joins and leaves handlers made since the last call, in order.
    pub(crate) fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The frames of `channel` published after `seq`; `reset` when some of them are no longer
    /// kept.
    pub(crate) fn replay_since(&self, channel: &str, seq: u64) -> Replay {
        let Some(entry) = self.channels.get(channel) else {
            // Gone: maybe with events after `seq` (a handler joined, published, then
            // published elsewhere past the budget, all before the loop applied the join).
            return Replay {
                reset: seq < self.removed_floor,
                frames: Vec::new(),
            };
        };
        Replay {
            reset: seq < entry.floor,
            frames: entry
                .history
                .iter()
                .filter(|e| e.seq > seq)
                .map(|e| e.frame.clone())
                .collect(),
        }
    }

    /// How many connections get the events published to `channel`: those subscribed to it,
    /// and those subscribed to a [`Pattern`] that covers it, each once.
    ///
    /// A stream handler does not count its own connection: it is not subscribed until the
    /// handler returns (and may yet be refused). A snapshot that names who is online adds one.
    pub fn subscribers(&self, channel: &str) -> usize {
        if self.patterns.is_empty() {
            return self
                .channels
                .get(channel)
                .map_or(0, |c| c.subscribers.len());
        }
        let mut count = 0;
        self.each_subscriber(channel, |_| count += 1);
        count
    }

    /// Every channel that exists (with subscribers or history), in no particular order. A
    /// pattern subscription makes no channel exist, but counts among the
    /// [`subscribers`](ChannelInfo::subscribers) of each listed channel it covers.
    ///
    /// # Examples
    /// ```
    /// use house::{Event, Hub};
    ///
    /// let mut hub = Hub::default();
    /// hub.publish("lobby", Event::new("hi")).unwrap();
    /// let listed: Vec<_> = hub
    ///     .channels()
    ///     .map(|c| (c.name().to_owned(), c.subscribers(), c.history_len()))
    ///     .collect();
    /// assert_eq!(listed, [("lobby".to_owned(), 0, 1)]);
    /// ```
    pub fn channels(&self) -> impl Iterator<Item = ChannelInfo<'_>> + '_ {
        self.channels.iter().map(|(name, channel)| ChannelInfo {
            name,
            subscribers: if self.patterns.is_empty() {
                channel.subscribers.len()
            } else {
                self.subscribers(name)
            },
            history_len: channel.history.len(),
        })
    }

    /// Every pattern some stream is subscribed to, with how many, in no particular order.
    ///
    /// # Examples
    /// ```
    /// use house::Hub;
    ///
    /// let hub = Hub::default();
    /// assert_eq!(hub.patterns().count(), 0);
    /// ```
    pub fn patterns(&self) -> impl Iterator<Item = PatternInfo<'_>> + '_ {
        self.patterns.values().map(|p| PatternInfo {
            pattern: &p.pattern,
            subscribers: p.tokens.len(),
        })
    }

    /// How many channels exist (with subscribers or history).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Subscriptions across all channels and patterns (a stream on two channels counts twice,
    /// one on a channel and a pattern too).
    pub fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    /// Events published since the server started.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// This run's id prefix: the `RUN` in generated event ids `RUN-SEQ`.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Whether publishing and history go through a broker (Redis) instead of this process.
    pub(crate) fn is_remote(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.broker.is_some() {
            return true;
        }
        false
    }

    /// Why this hub cannot serve pattern subscriptions (as a `501`), if it cannot: the broker
    /// carries channels by name, and the test client subscribes streams by channel name.
    pub(crate) fn pattern_refusal(&self) -> Option<&'static str> {
        if self.is_remote() {
            Some("channel patterns are not supported with the Redis broker yet")
        } else if self.record.is_some() {
            Some("channel patterns are not supported by the test client yet")
        } else {
            None
        }
    }

    /// Whether the broker is reachable, as a flag other threads can read; `None` without one.
    pub(crate) fn availability(&self) -> Option<Arc<AtomicBool>> {
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return Some(broker.up_flag());
        }
        None
    }

    /// Ties the publishes made since the last call to `token`'s response, which waits for the
    /// broker to acknowledge them (`None`: nobody waits); returns how many it waits for.
    pub(crate) fn await_acks(&mut self, token: Option<Token>) -> usize {
        let count = self.tickets.len();
        match token {
            Some(token) => self
                .awaiting
                .extend(self.tickets.drain(..).map(|t| (t, token))),
            None => self.tickets.clear(),
        }
        count
    }

    /// Forgets the publishes `token`'s response waited for, whose acknowledgements came too
    /// late: they must not count for a later response on the same connection.
    pub(crate) fn forget_acks(&mut self, token: Token) {
        self.awaiting.retain(|_, waiting| *waiting != token);
    }

    /// The broker's next answer, in order; `None` when there is none for now. Events it
    /// delivered are queued for fan-out on the way, so they reach the streams already attached
    /// before a stream attached by a later answer subscribes.
    pub(crate) fn next_remote(&mut self) -> Option<Remote> {
        #[cfg(feature = "redis")]
        while let Some(msg) = self.broker.as_ref().and_then(Broker::try_recv) {
            match msg {
                BrokerMsg::Deliver { channel, frame } => {
                    if self.subscribers(&channel) > 0 {
                        self.pending.push((channel, frame));
                    }
                }
                BrokerMsg::Attach {
                    token,
                    reset,
                    frames,
                } => {
                    return Some(Remote::Attach {
                        token,
                        reset,
                        frames,
                    })
                }
                BrokerMsg::Joined {
                    token,
                    channel,
                    join,
                    reset,
                    frames,
                } => {
                    let current = self.settle_join(token, &channel, join);
                    if current {
                        return Some(Remote::Joined {
                            token,
                            channel,
                            reset,
                            frames,
                        });
                    }
                }
                BrokerMsg::JoinFailed {
                    token,
                    channel,
                    join,
                } => {
                    if self.settle_join(token, &channel, join) {
                        return Some(Remote::JoinFailed { token, channel });
                    }
                }
                BrokerMsg::Acked { ticket, ok } => {
                    if let Some(token) = self.awaiting.remove(&ticket) {
                        return Some(Remote::Acked { token, ok });
                    }
                }
                BrokerMsg::Reset(channel) => return Some(Remote::Reset(channel)),
            }
        }
        None
    }

    /// Asks the broker for a new stream's replay, keeping its channels of interest meanwhile.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub(crate) fn request_replay(
        &mut self,
        token: Token,
        channels: &[String],
        last_event_id: Option<&str>,
    ) {
        for channel in channels {
            *self.interest.entry(channel.clone()).or_default() += 1;
        }
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            broker.replay(token, channels.to_vec(), last_event_id.map(str::to_owned));
        }
    }

    /// The loop applied join number `join` (`None`: without a broker) of `token` to `channel`,
    /// or, unless `applied`, found nothing to change (the stream closed, or has the channel).
    pub(crate) fn apply_join(
        &mut self,
        token: Token,
        channel: &str,
        join: Option<u64>,
        applied: bool,
    ) {
        let Some(join) = join else {
            return;
        };
        if applied {
            // The interest taken at the join call is the stream's now.
            self.joining.insert((token, channel.to_owned()), join);
        } else {
            self.drop_interest(channel);
        }
    }

    /// Stream `token` left `channel` (a join of it still on its way through the broker is
    /// stale now).
    pub(crate) fn leave_channel(&mut self, token: Token, channel: &str) {
        self.unsubscribe(token, channel);
        self.joining.remove(&(token, channel.to_owned()));
        self.drop_interest(channel);
    }

    /// The broker answered join number `join` of `token` to `channel`; whether it is the
    /// stream's current join of it (rather than one it left, or made again, meanwhile).
    #[cfg(feature = "redis")]
    fn settle_join(&mut self, token: Token, channel: &str, join: u64) -> bool {
        let key = (token, channel.to_owned());
        let current = self.joining.get(&key) == Some(&join);
        if current {
            self.joining.remove(&key);
        }
        // The broker reads a channel for each join it answers: it stops if no local stream
        // wants the channel by now (as when the stream left it while the join was under way).
        if !self.interest.contains_key(channel) {
            if let Some(broker) = &self.broker {
                broker.forget(channel);
            }
        }
        current
    }

    /// A remote stream left `channel`: when it was the last local one, the broker stops
    /// reading the channel.
    pub(crate) fn drop_interest(&mut self, channel: &str) {
        let Some(count) = self.interest.get_mut(channel) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.interest.remove(channel);
            #[cfg(feature = "redis")]
            if let Some(broker) = &self.broker {
                broker.forget(channel);
            }
        }
    }

    pub(crate) fn subscribe(&mut self, token: Token, channel: &str) {
        // A new channel had no events since one of its name was removed, if any was.
        let floor = self.removed_floor;
        let entry = self
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel {
                floor,
                ..Channel::default()
            });
        if entry.subscribers.insert(token) {
            if entry.subscribers.len() == 1 && !entry.history.is_empty() {
                self.order.switch(entry.last_seq, true);
            }
            self.subscriptions += 1;
            self.announce(channel, "join");
        }
    }

    pub(crate) fn unsubscribe(&mut self, token: Token, channel: &str) {
        if let Some(entry) = self.channels.get_mut(channel) {
            let left = entry.subscribers.remove(&token);
            if left {
                self.subscriptions -= 1;
                if entry.subscribers.is_empty() && !entry.history.is_empty() {
                    self.order.switch(entry.last_seq, false);
                }
            }
            if entry.subscribers.is_empty() && entry.history.is_empty() {
                self.removed_floor = self.removed_floor.max(entry.floor);
                self.channels.remove(channel);
            }
            if left {
                self.announce(channel, "leave");
            }
        }
    }

    /// With presence on, publishes that a stream joined or left `channel`, with the count now
    /// and the channel's name (a page that listens to several presence channels on one
    /// stream tells them apart by it): `{"channel":"lobby","count":2}`.
    fn announce(&mut self, channel: &str, change: &str) {
        if !self.presence || channel.ends_with(PRESENCE_SUFFIX) {
            return;
        }
        let count = self.subscribers(channel);
        let data = serde_json::json!({ "channel": channel, "count": count });
        let event = Event::new(data.to_string()).event(change);
        // Nobody's response waits for a presence event.
        let tickets = self.tickets.len();
        if let Err(err) = self.publish(&format!("{channel}{PRESENCE_SUFFIX}"), event) {
            log::debug!("presence of `{}` not published: {err}", Printable(channel));
        }
        self.tickets.truncate(tickets);
    }

    /// The published frames not yet queued to subscribers, oldest first.
    pub(crate) fn take_pending(&mut self) -> Vec<(String, Frame)> {
        std::mem::take(&mut self.pending)
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Every connection that gets an event of `channel`, once: its subscribers, and those of
    /// the patterns that cover it. (For the test client; fan-out uses `each_subscriber`.)
    pub(crate) fn subscribers_of(&self, channel: &str) -> std::vec::IntoIter<Token> {
        let mut tokens = Vec::new();
        self.each_subscriber(channel, |token| tokens.push(token));
        tokens.into_iter()
    }

    /// Calls `deliver` with every connection that gets an event of `channel`, once each: its
    /// subscribers, then those of the patterns that cover it.
    #[inline]
    pub(crate) fn each_subscriber(&self, channel: &str, mut deliver: impl FnMut(Token)) {
        let exact = self.channels.get(channel).map(|c| &c.subscribers);
        // Fan-out's loop per delivery: without patterns, nothing else happens.
        for &token in exact.into_iter().flatten() {
            deliver(token);
        }
        if !self.patterns.is_empty() {
            self.each_covered(channel, exact, &mut deliver);
        }
    }

    /// The pattern subscribers of `channel` that are not on `exact`, each once.
    fn each_covered(
        &self,
        channel: &str,
        exact: Option<&HashSet<Token>>,
        deliver: &mut dyn FnMut(Token),
    ) {
        let covering: Vec<&HashSet<Token>> = pattern_prefixes(channel)
            .filter_map(|prefix| self.patterns.get(prefix))
            .map(|p| &p.tokens)
            .collect();
        for (at, set) in covering.iter().enumerate() {
            for &token in *set {
                // A connection on the channel and on a pattern (or on two patterns) that cover
                // it gets the event once: from the first set that has it.
                let seen = exact.is_some_and(|e| e.contains(&token))
                    || covering[..at].iter().any(|s| s.contains(&token));
                if !seen {
                    deliver(token);
                }
            }
        }
    }

    /// Whether a pattern subscription covers `channel`.
    #[inline]
    fn is_covered(&self, channel: &str) -> bool {
        !self.patterns.is_empty()
            && pattern_prefixes(channel).any(|prefix| self.patterns.contains_key(prefix))
    }

    /// Subscribes `token` to `pattern`: it gets the events of every channel the pattern covers.
    pub(crate) fn subscribe_pattern(&mut self, token: Token, pattern: &Pattern) {
        let entry = self
            .patterns
            .entry(pattern.prefix().into())
            .or_insert_with(|| PatternSubscribers {
                pattern: pattern.clone(),
                tokens: HashSet::new(),
            });
        if entry.tokens.insert(token) {
            self.subscriptions += 1;
            self.stream_patterns
                .entry(token)
                .or_default()
                .push(pattern.clone());
        }
    }

    /// Unsubscribes `token` from `pattern`; whether it was subscribed.
    pub(crate) fn unsubscribe_pattern(&mut self, token: Token, pattern: &Pattern) -> bool {
        let Some(entry) = self.patterns.get_mut(pattern.prefix()) else {
            return false;
        };
        if !entry.tokens.remove(&token) {
            return false;
        }
        self.subscriptions -= 1;
        if entry.tokens.is_empty() {
            self.patterns.remove(pattern.prefix());
        }
        if let Some(list) = self.stream_patterns.get_mut(&token) {
            list.retain(|p| p != pattern);
            if list.is_empty() {
                self.stream_patterns.remove(&token);
            }
        }
        true
    }

    /// Stream `token` closed: it leaves every pattern it had.
    fn leave_patterns(&mut self, token: Token) {
        if self.stream_patterns.is_empty() {
            return;
        }
        for pattern in self.stream_patterns.remove(&token).unwrap_or_default() {
            if let Some(entry) = self.patterns.get_mut(pattern.prefix()) {
                if entry.tokens.remove(&token) {
                    self.subscriptions -= 1;
                }
                if entry.tokens.is_empty() {
                    self.patterns.remove(pattern.prefix());
                }
            }
        }
    }

    /// What a stream on `channels` resuming after `last_event_id` must get first.
    pub(crate) fn replay(&self, channels: &[String], last_event_id: &str) -> Replay {
        self.replay_matching(channels, &[], last_event_id)
    }

    /// What a stream on `channels` and `patterns` resuming after `last_event_id` must get
    /// first: the events after it of every channel it has or a pattern covers, in publish
    /// order; `reset` when one of those channels lost some (evicted, expired, or dropped).
    pub(crate) fn replay_matching(
        &self,
        channels: &[String],
        patterns: &[Pattern],
        last_event_id: &str,
    ) -> Replay {
        let mut sources: Vec<&Channel> = channels
            .iter()
            .filter_map(|name| self.channels.get(name))
            .collect();
        if !patterns.is_empty() {
            // A channel the stream names and a pattern covers too is replayed once.
            sources.extend(
                self.channels
                    .iter()
                    .filter(|(name, _)| {
                        patterns.iter().any(|p| p.matches(name)) && !channels.contains(name)
                    })
                    .map(|(_, c)| c),
            );
        }
        // A channel that is gone (or, for a pattern, any channel that is gone: it may have
        // matched) lost nothing after `removed_floor`.
        let some_gone =
            !patterns.is_empty() || channels.iter().any(|n| !self.channels.contains_key(n));
        self.replay_after(&sources, some_gone, last_event_id)
    }

    /// The events of `sources` after `last_event_id`, in publish order; `reset` when some are
    /// no longer kept, or, if `some_gone`, a channel that is gone may have had some.
    fn replay_after(&self, sources: &[&Channel], some_gone: bool, last_event_id: &str) -> Replay {
        let after = match self.parse_own_id(last_event_id) {
            Some(seq) if seq <= self.seq => Some(seq),
            Some(_) => None,
            // Another run's id, or a handler's own id: look it up in the history.
            None => sources
                .iter()
                .flat_map(|c| c.history.iter())
                .find(|e| e.custom_id.as_deref() == Some(last_event_id))
                .map(|e| e.seq),
        };
        let complete = after.is_some_and(|after| {
            sources.iter().all(|c| after >= c.floor) && (!some_gone || after >= self.removed_floor)
        });
        let after = if complete { after.unwrap_or(0) } else { 0 };
        Replay {
            reset: !complete,
            frames: frames_after(sources, after),
        }
    }

    /// What stream `token` (on `channels` and its patterns) joining `pattern` gets first: the
    /// events of the covered channels it does not get already, after the joining request's
    /// `last_event_id`, or else after `seq` (when the handler joined).
    pub(crate) fn replay_join_pattern(
        &self,
        token: Token,
        channels: &[Box<str>],
        pattern: &Pattern,
        last_event_id: Option<&str>,
        seq: u64,
    ) -> Replay {
        let sources: Vec<&Channel> = self
            .channels
            .iter()
            .filter(|(name, _)| {
                pattern.matches(name)
                    && !channels.iter().any(|c| **c == **name)
                    && !self.pattern_covers(token, name)
            })
            .map(|(_, c)| c)
            .collect();
        match last_event_id {
            Some(id) => self.replay_after(&sources, true, id),
            None => Replay {
                reset: seq < self.removed_floor || sources.iter().any(|c| seq < c.floor),
                frames: frames_after(&sources, seq),
            },
        }
    }

    /// Whether stream `token` gets `channel`'s events through one of its patterns.
    pub(crate) fn pattern_covers(&self, token: Token, channel: &str) -> bool {
        self.stream_patterns
            .get(&token)
            .is_some_and(|patterns| patterns.iter().any(|p| p.matches(channel)))
    }

    /// Whether stream `token` has `pattern`.
    pub(crate) fn has_pattern(&self, token: Token, pattern: &Pattern) -> bool {
        self.stream_patterns
            .get(&token)
            .is_some_and(|patterns| patterns.contains(pattern))
    }

    fn parse_own_id(&self, id: &str) -> Option<u64> {
        let (run, seq) = id.rsplit_once('-')?;
        if run != self.run {
            return None;
        }
        seq.parse().ok()
    }

    /// Drops the history of channels idle for longer than the history's time to live, and the
    /// channels left with neither history nor subscribers.
    pub(crate) fn expire(&mut self, now: Instant) {
        let ttl = self.limits.idle_ttl;
        let removed_floor = &mut self.removed_floor;
        let (order, held) = (&mut self.order, &mut self.held);
        self.channels.retain(|name, c| {
            if !c.history.is_empty()
                && c.last_publish
                    .is_some_and(|at| now.duration_since(at) >= ttl)
            {
                *held -= c.held(name);
                order.queue(!c.subscribers.is_empty()).remove(&c.last_seq);
                while !c.history.is_empty() {
                    c.evict_oldest();
                }
            }
            let keep = !(c.subscribers.is_empty() && c.history.is_empty());
            if !keep {
                // Gone, but a resume from before its last event must still hear of the gap.
                *removed_floor = (*removed_floor).max(c.floor);
            }
            keep
        });
        #[cfg(debug_assertions)]
        self.check_bookkeeping();
    }

    /// Evicts the oldest events of the channels published to least recently, idle ones first,
    /// while the histories pass a budget: a few events per publish, amortized, each looked up
    /// in `O(log n)`.
    fn keep_within_budget(&mut self) {
        loop {
            let over = if self.order.len() > self.limits.budget_channels {
                HistoryBudget::Channels
            } else if self.held > self.limits.budget_bytes {
                HistoryBudget::Bytes
            } else {
                return;
            };
            let Some((seq, busy, name)) = self.order.first() else {
                // Nothing is held, yet over a budget: only a budget of 0 bytes gets here.
                return;
            };
            let Some(channel) = self.channels.get_mut(name) else {
                debug_assert!(false, "channel `{name}` is in the order but not in the map");
                self.order.queue(busy).remove(&seq);
                continue;
            };
            let held = channel.held(name);
            channel.evict_oldest();
            self.held = self.held - held + channel.held(name);
            self.evictions[over.index()] += 1;
            if channel.history.is_empty() {
                let idle = channel.subscribers.is_empty();
                let floor = channel.floor;
                if let Some(name) = self.order.queue(busy).remove(&seq) {
                    if idle {
                        // Dropped, as the time to live drops it; a resume from before its
                        // last event still hears of the gap through `removed_floor`.
                        self.removed_floor = self.removed_floor.max(floor);
                        self.channels.remove(&name);
                    }
                }
            }
        }
    }

    /// What all channels' history holds, as counted against the bytes budget.
    pub(crate) fn history_bytes(&self) -> usize {
        self.held
    }

    /// Events evicted to keep within a budget, by [`HistoryBudget`] in the order of
    /// [`HistoryBudget::ALL`].
    pub(crate) fn history_evictions(&self) -> [u64; 2] {
        self.evictions
    }

    /// Checks the budget's bookkeeping against the channels: `O(n)`, so only where a scan
    /// happens anyway (the expiry sweep) and in tests.
    #[cfg(debug_assertions)]
    fn check_bookkeeping(&self) {
        let mut held = 0;
        let mut with_history = 0;
        for (name, c) in &self.channels {
            let bytes: usize = c.history.iter().map(|e| e.frame.len()).sum();
            assert_eq!(c.history_bytes, bytes, "history bytes of `{name}`");
            held += c.held(name);
            if !c.history.is_empty() {
                with_history += 1;
                let busy = !c.subscribers.is_empty();
                assert_eq!(
                    self.order
                        .queue_ref(busy)
                        .get(&c.last_seq)
                        .map(String::as_str),
                    Some(name.as_str()),
                    "`{name}` in the order, busy: {busy}"
                );
            }
        }
        assert_eq!(self.held, held, "bytes held");
        assert_eq!(self.order.len(), with_history, "channels in the order");
    }
}

impl Channel {
    /// What this channel's history counts against the bytes budget: nothing without events,
    /// else its events' bytes with [`ENTRY_OVERHEAD`] each, [`CHANNEL_OVERHEAD`] and twice its
    /// name (a handler's own event ids, kept apart too, are not counted: they are in the
    /// frames already, and usually short).
    fn held(&self, name: &str) -> usize {
        if self.history.is_empty() {
            return 0;
        }
        self.history_bytes + self.history.len() * ENTRY_OVERHEAD + CHANNEL_OVERHEAD + 2 * name.len()
    }

    fn evict_oldest(&mut self) {
        if let Some(old) = self.history.pop_front() {
            self.history_bytes -= old.frame.len();
            self.floor = old.seq;
        }
    }
}

/// The frames of `sources` with `seq > after`, in publish order.
fn frames_after(sources: &[&Channel], after: u64) -> Vec<Frame> {
    let mut entries: Vec<&Entry> = sources
        .iter()
        .flat_map(|c| c.history.iter().filter(|e| e.seq > after))
        .collect();
    entries.sort_by_key(|e| e.seq);
    entries.into_iter().map(|e| e.frame.clone()).collect()
}

/// 128 random bits from the operating system.
fn random_id() -> Result<StreamId, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// A stream id as handed out: 32 lowercase hex digits.
fn format_stream_id(id: &StreamId) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The stream id `text` spells, if it is one as handed out (32 lowercase hex digits, nothing
/// else: `+`, capitals or spaces name no stream, as when ids were compared as text).
fn parse_stream_id(text: &str) -> Option<StreamId> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(id)
}

/// A short id that differs between runs: random bits from the standard library's randomly
/// seeded hasher, so no extra dependency is needed.
fn new_run_id() -> String {
    let bits = RandomState::new().hash_one(std::process::id());
    let mut n = bits;
    let mut out = String::new();
    for _ in 0..10 {
        let digit = (n % 36) as u8;
        out.push(char::from(if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        }));
        n /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(events: usize) -> Hub {
        Hub::new(HistoryLimits {
            events,
            bytes: 1 << 20,
            idle_ttl: Duration::from_secs(60),
            budget_bytes: usize::MAX,
            budget_channels: usize::MAX,
        })
    }

    /// A hub whose channels keep 10 events each, under budgets of all history.
    fn budgeted(bytes: usize, channels: usize) -> Hub {
        Hub::new(HistoryLimits {
            budget_bytes: bytes,
            budget_channels: channels,
            ..hub(10).limits
        })
    }

    fn text(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8(f.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn stream_ids_are_kept_as_bits_and_found_by_their_text_only() {
        let mut hub = hub(2);
        let id = hub.open_stream(Token(7)).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(hub.owned_stream(&id), Ok(Token(7)));
        assert_eq!(format_stream_id(&parse_stream_id(&id).unwrap()), id);
        // What compared unequal as text still names no stream.
        for other in [
            id.to_uppercase(),
            format!("+{}", &id[1..]),
            format!(" {}", &id[1..]),
            id[..31].to_owned(),
            format!("{id}0"),
        ] {
            if other != id {
                assert_eq!(hub.owned_stream(&other), Err(JoinError::UnknownStream));
            }
        }
        hub.close_stream(Token(7));
        assert_eq!(hub.owned_stream(&id), Err(JoinError::UnknownStream));
        assert!(hub.streams.is_empty() && hub.stream_ids.is_empty());
    }

    #[test]
    fn ids_increase_and_pending_only_with_subscribers() {
        let mut hub = hub(10);
        hub.publish("a", Event::new("x")).unwrap();
        assert!(!hub.has_pending());
        hub.subscribe(Token(1), "a");
        hub.publish("a", Event::new("y")).unwrap();
        let pending = hub.take_pending();
        assert_eq!(
            text(&[pending[0].1.clone()]),
            [format!("id: {}-2\ndata: y\n\n", hub.run_id())]
        );
    }

    #[test]
    fn replay_after_id_then_reset_when_evicted() {
        let mut hub = hub(3);
        for i in 1..=5 {
            hub.publish("a", Event::new(i.to_string())).unwrap();
        }
        let run = hub.run_id().to_owned();
        let channels = ["a".to_owned()];
        let replay = hub.replay(&channels, &format!("{run}-3"));
        assert!(!replay.reset);
        assert_eq!(
            text(&replay.frames),
            [
                format!("id: {run}-4\ndata: 4\n\n"),
                format!("id: {run}-5\ndata: 5\n\n")
            ]
        );
        // Event 2 was evicted: resuming after 1 misses it.
        let replay = hub.replay(&channels, &format!("{run}-1"));
        assert!(replay.reset);
        assert_eq!(replay.frames.len(), 3);
        // Another run's id, and an id from the future.
        assert!(hub.replay(&channels, "otherrun-4").reset);
        assert!(hub.replay(&channels, &format!("{run}-99")).reset);
        // Up to date: nothing to send, no reset.
        let replay = hub.replay(&channels, &format!("{run}-5"));
        assert!(!replay.reset && replay.frames.is_empty());
    }

    #[test]
    fn replay_merges_channels_in_publish_order() {
        let mut hub = hub(10);
        hub.publish("a", Event::new("a1")).unwrap();
        hub.publish("b", Event::new("b2")).unwrap();
        hub.publish("a", Event::new("a3")).unwrap();
        let run = hub.run_id().to_owned();
        let replay = hub.replay(&["a".to_owned(), "b".to_owned()], &format!("{run}-1"));
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 2);
        assert!(text(&replay.frames)[0].contains("b2"));
    }

    #[test]
    fn custom_ids_are_found_in_history() {
        let mut hub = hub(10);
        hub.publish("a", Event::new("1").id("one")).unwrap();
        hub.publish("a", Event::new("2").id("two")).unwrap();
        let replay = hub.replay(&["a".to_owned()], "one");
        assert!(!replay.reset);
        assert_eq!(text(&replay.frames), ["id: two\ndata: 2\n\n"]);
        assert!(hub.replay(&["a".to_owned()], "unknown").reset);
    }

    #[test]
    fn empty_channels_are_dropped_and_idle_history_expires() {
        let mut hub = hub(10);
        hub.subscribe(Token(1), "a");
        hub.unsubscribe(Token(1), "a");
        assert_eq!(hub.channel_count(), 0);
        hub.publish("b", Event::new("x")).unwrap();
        assert_eq!(hub.channel_count(), 1);
        hub.expire(Instant::now());
        assert_eq!(hub.channel_count(), 1);
        hub.expire(Instant::now() + Duration::from_secs(61));
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn channels_are_listed_with_subscribers_and_history() {
        let mut hub = hub(2);
        hub.subscribe(Token(1), "a");
        hub.subscribe(Token(2), "a");
        for text in ["1", "2", "3"] {
            hub.publish("b", Event::new(text)).unwrap();
        }
        let mut listed: Vec<_> = hub
            .channels()
            .map(|c| (c.name(), c.subscribers(), c.history_len()))
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, [("a", 2, 0), ("b", 0, 2)]);
        assert_eq!(hub.channel_count(), 2);
    }

    #[test]
    fn presence_is_published_only_when_on_and_never_about_itself() {
        let mut hub = hub(10);
        hub.subscribe(Token(1), "a");
        assert_eq!(hub.channel_count(), 1, "off by default");
        hub.set_presence(true);
        hub.subscribe(Token(2), "a");
        hub.subscribe(Token(2), "a");
        hub.subscribe(Token(3), "a/presence");
        hub.unsubscribe(Token(1), "a");
        hub.unsubscribe(Token(1), "a");
        let replay = hub.replay(&["a/presence".to_owned()], "none");
        let text: Vec<String> = text(&replay.frames)
            .iter()
            .map(|t| t.split_once('\n').map_or("", |(_, rest)| rest).to_owned())
            .collect();
        assert_eq!(
            text,
            [
                "event: join\ndata: {\"channel\":\"a\",\"count\":2}\n\n",
                "event: leave\ndata: {\"channel\":\"a\",\"count\":1}\n\n"
            ]
        );
        assert_eq!(hub.channel_count(), 2, "no a/presence/presence");
    }

    #[test]
    fn history_bounded_in_bytes() {
        let mut hub = Hub::new(HistoryLimits {
            events: 100,
            bytes: 100,
            ..hub(1).limits
        });
        for _ in 0..10 {
            hub.publish("a", Event::new("x".repeat(30))).unwrap();
        }
        let replay = hub.replay(&["a".to_owned()], "nope");
        assert!(replay.frames.len() < 3);
        assert!(replay.frames.iter().map(|f| f.len()).sum::<usize>() <= 100);
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::new(text).unwrap()
    }

    fn sorted(tokens: impl Iterator<Item = Token>) -> Vec<usize> {
        let mut tokens: Vec<usize> = tokens.map(|t| t.0).collect();
        tokens.sort_unstable();
        tokens
    }

    #[test]
    fn patterns_are_checked() {
        for good in ["*", "orders/*", "a/b/*", "a//*"] {
            assert_eq!(Pattern::new(good).unwrap().as_str(), good);
        }
        assert_eq!(pattern("orders/*").prefix(), "orders/");
        assert_eq!(pattern("*").prefix(), "");
        for (bad, why) in [
            ("", PatternError::NoWildcard(String::new())),
            ("orders", PatternError::NoWildcard("orders".into())),
            ("orders/*/x", PatternError::NoWildcard("orders/*/x".into())),
            ("orders*", PatternError::MisplacedWildcard("orders*".into())),
            (
                "orders/**",
                PatternError::MisplacedWildcard("orders/**".into()),
            ),
            ("a*/b/*", PatternError::MisplacedWildcard("a*/b/*".into())),
            ("*/*", PatternError::MisplacedWildcard("*/*".into())),
        ] {
            assert_eq!(Pattern::new(bad), Err(why), "{bad}");
        }
        assert_eq!(
            PatternError::MisplacedWildcard("o*".into()).to_string(),
            "`o*` is not a channel pattern: `*` may only be its whole last segment"
        );
        assert_eq!(
            PatternError::NoWildcard("o".into())
                .into_response()
                .status()
                .code(),
            400
        );
    }

    #[test]
    fn patterns_match_longer_names_under_their_prefix() {
        let orders = pattern("orders/*");
        for (channel, covered) in [
            ("orders/1", true),
            ("orders/1/items", true),
            ("orders//", true),
            ("orders/", false),
            ("orders", false),
            ("ordersx/1", false),
            ("x/orders/1", false),
        ] {
            assert_eq!(orders.matches(channel), covered, "{channel}");
        }
        assert!(pattern("*").matches("a") && !pattern("*").matches(""));
        assert_eq!(
            pattern_prefixes("a/b/c").collect::<Vec<_>>(),
            ["", "a/", "a/b/"]
        );
        assert_eq!(pattern_prefixes("a/").collect::<Vec<_>>(), [""]);
        assert_eq!(pattern_prefixes("").count(), 0);
    }

    #[test]
    fn publish_queues_for_pattern_subscribers_only_when_covered() {
        let mut hub = hub(10);
        hub.subscribe_pattern(Token(1), &pattern("orders/*"));
        hub.publish("orders", Event::new("not covered")).unwrap();
        hub.publish("invoices/1", Event::new("not covered"))
            .unwrap();
        assert!(!hub.has_pending());
        hub.publish("orders/1/items", Event::new("covered"))
            .unwrap();
        let pending = hub.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(sorted(hub.subscribers_of(&pending[0].0)), [1]);
    }

    #[test]
    fn overlapping_subscriptions_get_each_event_once() {
        let mut hub = hub(10);
        // 1: the channel and two patterns; 2: one pattern; 3: the channel; 4: another pattern.
        hub.subscribe(Token(1), "a/b/c");
        hub.subscribe_pattern(Token(1), &pattern("a/*"));
        hub.subscribe_pattern(Token(1), &pattern("a/b/*"));
        hub.subscribe_pattern(Token(2), &pattern("*"));
        hub.subscribe(Token(3), "a/b/c");
        hub.subscribe_pattern(Token(4), &pattern("a/b/*"));
        hub.subscribe_pattern(Token(4), &pattern("a/b/*"));
        assert_eq!(sorted(hub.subscribers_of("a/b/c")), [1, 2, 3, 4]);
        assert_eq!(sorted(hub.subscribers_of("a/x")), [1, 2]);
        assert_eq!(sorted(hub.subscribers_of("b")), [2]);
        assert_eq!(hub.subscribers("a/b/c"), 4);
        assert_eq!(hub.subscribers("zzz"), 1);
        assert_eq!(hub.subscriptions(), 6);
        assert_eq!(hub.channel_count(), 1, "patterns make no channels");
        let listed: Vec<_> = hub
            .channels()
            .map(|c| (c.name(), c.subscribers()))
            .collect();
        assert_eq!(listed, [("a/b/c", 4)]);
        let mut patterns: Vec<_> = hub
            .patterns()
            .map(|p| (p.pattern().as_str(), p.subscribers()))
            .collect();
        patterns.sort_unstable();
        assert_eq!(patterns, [("*", 1), ("a/*", 1), ("a/b/*", 2)]);
    }

    #[test]
    fn closing_a_stream_leaves_its_patterns() {
        let mut hub = hub(10);
        hub.subscribe_pattern(Token(1), &pattern("a/*"));
        hub.subscribe_pattern(Token(1), &pattern("b/*"));
        hub.subscribe_pattern(Token(2), &pattern("a/*"));
        assert!(hub.unsubscribe_pattern(Token(2), &pattern("a/*")));
        assert!(!hub.unsubscribe_pattern(Token(2), &pattern("a/*")));
        hub.close_stream(Token(1));
        assert_eq!(hub.subscriptions(), 0);
        assert_eq!(hub.patterns().count(), 0);
        assert!(hub.stream_patterns.is_empty());
        hub.publish("a/1", Event::new("x")).unwrap();
        assert!(!hub.has_pending());
    }

    #[test]
    fn pattern_replay_merges_covered_channels_once_in_publish_order() {
        let mut hub = hub(10);
        hub.publish("o/1", Event::new("1")).unwrap();
        hub.publish("o/2", Event::new("2")).unwrap();
        hub.publish("x", Event::new("3")).unwrap();
        hub.publish("o/1", Event::new("4")).unwrap();
        hub.publish("o/2/i", Event::new("5")).unwrap();
        let run = hub.run_id().to_owned();
        let replay =
            hub.replay_matching(&["o/1".to_owned()], &[pattern("o/*")], &format!("{run}-1"));
        assert!(!replay.reset);
        let data: Vec<String> = text(&replay.frames)
            .iter()
            .map(|t| t.lines().nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(data, ["data: 2", "data: 4", "data: 5"]);
        // A custom id is looked up in the covered channels too.
        hub.publish("o/3", Event::new("6").id("mine")).unwrap();
        hub.publish("o/3", Event::new("7")).unwrap();
        let replay = hub.replay_matching(&[], &[pattern("o/*")], "mine");
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 1);
    }

    #[test]
    fn pattern_replay_resets_when_a_covered_channel_lost_events() {
        let mut hub = hub(2);
        for i in 1..=3 {
            hub.publish("o/1", Event::new(i.to_string())).unwrap();
        }
        hub.publish("o/2", Event::new("4")).unwrap();
        let run = hub.run_id().to_owned();
        let patterns = [pattern("o/*")];
        // Event 1 of o/1 was evicted.
        assert!(
            hub.replay_matching(&[], &patterns, &format!("{run}-0"))
                .reset
        );
        let replay = hub.replay_matching(&[], &patterns, &format!("{run}-1"));
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 3);
        // An uncovered channel's evictions do not matter.
        for _ in 0..3 {
            hub.publish("x", Event::new("x")).unwrap();
        }
        assert!(
            !hub.replay_matching(&[], &patterns, &format!("{run}-1"))
                .reset
        );
        assert!(hub.replay_matching(&[], &patterns, "unknown").reset);
    }

    #[test]
    fn a_dropped_channel_still_signals_its_gap() {
        let mut hub = hub(10);
        hub.publish("o/1", Event::new("1")).unwrap();
        hub.publish("o/2", Event::new("2")).unwrap();
        let run = hub.run_id().to_owned();
        let patterns = [pattern("o/*")];
        hub.expire(Instant::now() + Duration::from_secs(61));
        assert_eq!(hub.channel_count(), 0);
        // o/1 and o/2 are gone with their events: a resume from before them is told so...
        assert!(
            hub.replay_matching(&[], &patterns, &format!("{run}-1"))
                .reset
        );
        assert!(hub.replay(&["o/2".to_owned()], &format!("{run}-1")).reset);
        // ...one from after them is not, and neither is one on a channel created since.
        assert!(
            !hub.replay_matching(&[], &patterns, &format!("{run}-2"))
                .reset
        );
        hub.subscribe(Token(1), "o/3");
        hub.publish("o/4", Event::new("3")).unwrap();
        let replay = hub.replay_matching(&["o/3".to_owned()], &patterns, &format!("{run}-2"));
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 1);
    }

    #[test]
    fn joining_a_pattern_replays_only_what_the_stream_lacks() {
        let mut hub = hub(2);
        hub.publish("o/1", Event::new("1")).unwrap();
        hub.publish("o/2", Event::new("2")).unwrap();
        hub.publish("o/3/x", Event::new("3")).unwrap();
        hub.subscribe_pattern(Token(1), &pattern("o/3/*"));
        let own: [Box<str>; 1] = ["o/2".into()];
        let run = hub.run_id().to_owned();
        // After event 1: o/1 has nothing newer, o/2 is the stream's, o/3/x its other pattern's.
        let replay = hub.replay_join_pattern(
            Token(1),
            &own,
            &pattern("o/*"),
            Some(&format!("{run}-0")),
            0,
        );
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 1);
        // Without an id: what was published since the join, `reset` if some was evicted.
        let joined = hub.seq;
        for i in 4..=6 {
            hub.publish("o/1", Event::new(i.to_string())).unwrap();
        }
        let replay = hub.replay_join_pattern(Token(1), &own, &pattern("o/*"), None, joined);
        assert!(replay.reset);
        assert_eq!(text(&replay.frames).len(), 2);
        assert!(hub.has_pattern(Token(1), &pattern("o/3/*")));
        assert!(hub.pattern_covers(Token(1), "o/3/x") && !hub.pattern_covers(Token(1), "o/1"));
    }

    #[test]
    fn only_a_local_server_hub_serves_patterns() {
        let mut hub = hub(10);
        assert_eq!(hub.pattern_refusal(), None);
        hub.record();
        assert!(hub.pattern_refusal().unwrap().contains("test client"));
    }

    /// The channels that exist, sorted.
    fn names(hub: &Hub) -> Vec<&str> {
        let mut names: Vec<&str> = hub.channels.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Publishes `data` to `channel`, then checks the budget's bookkeeping.
    fn publish(hub: &mut Hub, channel: &str, data: &str) {
        hub.publish(channel, Event::new(data)).unwrap();
        hub.check_bookkeeping();
    }

    #[test]
    fn held_bytes_count_frames_overheads_and_names() {
        let mut hub = hub(10);
        publish(&mut hub, "ab", "x");
        publish(&mut hub, "ab", "y");
        publish(&mut hub, "c", "z");
        let frames: usize = ["ab", "c"]
            .iter()
            .map(|name| hub.channels[*name].history_bytes)
            .sum();
        assert_eq!(
            hub.history_bytes(),
            frames + 3 * ENTRY_OVERHEAD + 2 * CHANNEL_OVERHEAD + 2 * (2 + 1)
        );
        hub.expire(Instant::now() + Duration::from_secs(61));
        assert_eq!((hub.history_bytes(), hub.order.len()), (0, 0));
        assert_eq!(hub.history_evictions(), [0, 0], "expiry is not counted");
    }

    #[test]
    fn channel_budget_evicts_least_recently_published_idle_channel_first() {
        let mut hub = budgeted(usize::MAX, 3);
        for name in ["a", "b", "c"] {
            publish(&mut hub, name, name);
        }
        hub.subscribe(Token(1), "a");
        hub.check_bookkeeping();
        // `a` is the oldest, but busy: the oldest idle channel goes, and is dropped.
        publish(&mut hub, "d", "d");
        assert_eq!(names(&hub), ["a", "c", "d"]);
        // Publishing to `c` makes it the newest: `d` is the oldest idle one now.
        publish(&mut hub, "c", "c2");
        publish(&mut hub, "e", "e");
        assert_eq!(names(&hub), ["a", "c", "e"]);
        assert_eq!(hub.history_evictions(), [0, 2]);
        // `a` goes idle: as the least recently published, it is next.
        hub.unsubscribe(Token(1), "a");
        hub.check_bookkeeping();
        publish(&mut hub, "f", "f");
        assert_eq!(names(&hub), ["c", "e", "f"]);
        // `c` lost both its events to the one budget: each event counts.
        publish(&mut hub, "g", "g");
        assert_eq!(names(&hub), ["e", "f", "g"]);
        assert_eq!(hub.history_evictions(), [0, 5]);
    }

    #[test]
    fn busy_channels_lose_their_oldest_events_once_no_idle_one_is_left() {
        // What one event of a one-letter channel (with its id and data as long as below)
        // costs, and what such a channel costs beyond its events.
        let mut probe = hub(10);
        publish(&mut probe, "a", "0");
        let one = probe.history_bytes();
        publish(&mut probe, "a", "0");
        let event = probe.history_bytes() - one;
        let channel = one - event;
        // Room for two channels with three events between them, and half an event.
        let budget = 2 * channel + 3 * event + event / 2;
        let mut hub = budgeted(budget, usize::MAX);
        hub.subscribe(Token(1), "a");
        hub.subscribe(Token(2), "b");
        for data in ["1", "2", "3"] {
            publish(&mut hub, "a", data);
        }
        publish(&mut hub, "idle", "i");
        publish(&mut hub, "b", "4");
        // The idle channel went first, whole; then the oldest event of `a`, the busy channel
        // published to least recently.
        assert_eq!(names(&hub), ["a", "b"]);
        assert_eq!(hub.history_evictions(), [2, 0]);
        let run = hub.run_id().to_owned();
        let channels = ["a".to_owned()];
        assert!(hub.replay(&channels, &format!("{run}-0")).reset);
        let replay = hub.replay(&channels, &format!("{run}-1"));
        assert!(!replay.reset);
        assert_eq!(replay.frames.len(), 2);
        assert_eq!(hub.subscribers("a"), 1);
        assert_eq!(hub.history_bytes(), 2 * channel + 3 * event);
    }

    #[test]
    fn resuming_into_an_evicted_history_resets() {
        let mut hub = budgeted(usize::MAX, 1);
        publish(&mut hub, "old", "1");
        publish(&mut hub, "new", "2");
        let run = hub.run_id().to_owned();
        assert_eq!(names(&hub), ["new"]);
        let replay = hub.replay(&["old".to_owned()], &format!("{run}-0"));
        assert!(replay.reset && replay.frames.is_empty());
        // Resumed after the evicted event: nothing was missed.
        assert!(!hub.replay(&["old".to_owned()], &format!("{run}-1")).reset);
        let replay = hub.replay(&["new".to_owned()], &format!("{run}-1"));
        assert!(!replay.reset);
        assert_eq!(text(&replay.frames), [format!("id: {run}-2\ndata: 2\n\n")]);
        // A join applied after its channel went tells its stream too.
        assert!(hub.replay_since("old", 0).reset);
        assert!(!hub.replay_since("old", 1).reset);
    }

    #[test]
    fn zero_budgets_keep_no_history_and_drop_idle_channels() {
        for mut hub in [budgeted(0, usize::MAX), budgeted(usize::MAX, 0)] {
            hub.subscribe(Token(1), "busy");
            publish(&mut hub, "busy", "1");
            publish(&mut hub, "idle", "2");
            assert_eq!(names(&hub), ["busy"]);
            assert_eq!(hub.history_bytes(), 0);
            // The live subscriber still gets the event it cannot replay.
            assert_eq!(hub.take_pending().len(), 1);
        }
    }

    #[test]
    fn subscribing_moves_a_channel_between_idle_and_busy() {
        let mut hub = budgeted(usize::MAX, usize::MAX);
        publish(&mut hub, "a", "1");
        assert_eq!((hub.order.idle.len(), hub.order.busy.len()), (1, 0));
        hub.subscribe(Token(1), "a");
        hub.subscribe(Token(2), "a");
        hub.unsubscribe(Token(1), "a");
        assert_eq!((hub.order.idle.len(), hub.order.busy.len()), (0, 1));
        hub.check_bookkeeping();
        hub.unsubscribe(Token(2), "a");
        assert_eq!((hub.order.idle.len(), hub.order.busy.len()), (1, 0));
        hub.check_bookkeeping();
        // A publish too large to keep moves the channel to the back of the order all the same.
        publish(&mut hub, "b", "1");
        hub.publish("a", Event::new("x".repeat(2 << 20))).unwrap();
        hub.check_bookkeeping();
        assert_eq!(hub.order.first().map(|(_, _, name)| name), Some("b"));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
