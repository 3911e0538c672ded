//! Many nodes behind one Redis (feature `redis`): publishing and history go through one Redis
//! Stream per channel, so every node hands out the same ids and replays the same history.
//!
//! Two background threads talk to Redis so the event loop never blocks on it:
//! - the writer `XADD`s published events (pipelined) and acknowledges each one, so the response
//!   of the request that published waits for Redis and a failure answers 503. A stream joining
//!   a channel takes the same queue: the writer reads where the channel's stream ends right
//!   after the publishes made before the join, so the join takes effect between them, and the
//!   response of the request that joined waits for it as for a publish;
//! - the reader `XREAD`s the channels that have local subscribers, keeping one cursor per
//!   channel, and answers replay requests for new streams and joins. Deliveries and replay
//!   answers travel to the loop through one ordered queue, so a stream attached (or a channel
//!   joined) after its replay answer sees every later event exactly once.
//!
//! Event ids are `EPOCH.REDIS_ID`. The epoch is a random value stored in Redis at
//! `house:epoch`; a Redis that lost its data (restarted without persistence) gets a new one, so
//! an id from before is recognised and the stream starts with the `reset` event.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::{Token, Waker};
use redis::Value;

use crate::sse::Frame;

/// How long one `XREAD` blocks before the reader looks at new requests from the loop.
const READ_BLOCK: Duration = Duration::from_millis(50);
/// How often an idle reader (no channels to read) checks that Redis answers.
const IDLE_PING: Duration = Duration::from_millis(200);
/// Longest wait between reconnection attempts (the wait doubles from 50 ms up to this).
const RECONNECT_BACKOFF_CAP: Duration = Duration::from_secs(1);
/// Connect, read and write timeout of each Redis round trip.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Most events taken from Redis, or published to it, per round trip.
const BATCH: usize = 512;
const EPOCH_KEY: &str = "house:epoch";
/// What a channel's Redis Stream key starts with.
const STREAM_PREFIX: &str = "house:stream:";

fn stream_key(channel: &str) -> String {
    format!("{STREAM_PREFIX}{channel}")
}

/// Why the broker did not take a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokerDown {
    /// Redis cannot be reached right now.
    Unreachable,
    /// The broker's writer thread has ended (the loop is shutting down).
    Stopped,
}

/// What the broker tells the loop.
#[derive(Debug)]
pub(crate) enum BrokerMsg {
    /// An event of `channel`, as its subscribers get it.
    Deliver { channel: String, frame: Frame },
    /// The replay a new stream asked for; attach it to its channels now.
    Attach {
        token: Token,
        reset: bool,
        frames: Vec<Frame>,
    },
    /// The replay of stream `token`'s join number `join`; subscribe it to `channel` now.
    Joined {
        token: Token,
        channel: String,
        join: u64,
        reset: bool,
        frames: Vec<Frame>,
    },
    /// Join number `join` did not take effect: Redis could not be reached.
    JoinFailed {
        token: Token,
        channel: String,
        join: u64,
    },
    /// Redis took (or refused) the publish with this ticket.
    Acked { ticket: u64, ok: bool },
    /// Events were lost for `channel` (or, for `None`, every channel: Redis lost its data).
    Reset(Option<String>),
}

/// Where a replay starts.
#[derive(Debug)]
enum Since {
    /// Nothing before: live events only (a new stream that names no id).
    Now,
    /// After the event id the client names (`Last-Event-ID`).
    Id(String),
    /// After this entry: where the channel's stream ended when a join took effect.
    Entry(StreamId),
}

enum ReaderCmd {
    /// A new stream's replay.
    Replay {
        token: Token,
        channels: Vec<String>,
        since: Since,
    },
    /// The replay of stream `token`'s join number `join` of `channel`.
    Join {
        token: Token,
        channel: String,
        join: u64,
        since: Since,
    },
    Forget(String),
}

enum WriterCmd {
    Publish {
        ticket: u64,
        channel: String,
        body: Vec<u8>,
    },
    /// Stream `token` joins `channel`: note where the channel ends, then ask for the replay.
    Join {
        ticket: u64,
        token: Token,
        channel: String,
        join: u64,
        last_event_id: Option<String>,
    },
}

impl WriterCmd {
    fn ticket(&self) -> u64 {
        match self {
            WriterCmd::Publish { ticket, .. } | WriterCmd::Join { ticket, .. } => *ticket,
        }
    }
}

/// The loop's side of the broker.
pub(crate) struct Broker {
    reader: Sender<ReaderCmd>,
    writer: Sender<WriterCmd>,
    up: Arc<AtomicBool>,
    inbox: Receiver<BrokerMsg>,
    next_ticket: u64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// Where the broker's threads send messages, waking the loop.
#[derive(Clone)]
struct LoopLink {
    sender: Sender<BrokerMsg>,
    waker: Arc<Waker>,
}

impl LoopLink {
    /// Queues a message; `false` once the loop has gone (the thread should end).
    fn send(&self, msg: BrokerMsg) -> bool {
        self.sender.send(msg).is_ok()
    }

    fn wake(&self) {
        let _ = self.waker.wake();
    }
}

impl Broker {
    /// Starts the broker's threads for Redis at `url`. Only a malformed URL fails here; an
    /// unreachable Redis is retried in the background while publishes answer 503.
    pub(crate) fn start(url: &str, history: usize, waker: Arc<Waker>) -> std::io::Result<Broker> {
        let client = redis::Client::open(url)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
        let (to_loop, inbox) = mpsc::channel();
        let link = LoopLink {
            sender: to_loop,
            waker,
        };
        let up = Arc::new(AtomicBool::new(false));
        let (reader, reader_rx) = mpsc::channel();
        let (writer, writer_rx) = mpsc::channel();
        let reader_state = Reader {
            client: client.clone(),
            link: link.clone(),
            up: up.clone(),
            requests: reader_rx,
            con: None,
            epoch: None,
            cursors: HashMap::new(),
            waiting: Vec::new(),
        };
        thread::Builder::new()
            .name("house-redis-reader".into())
            .spawn(move || reader_state.run())?;
        let writer_state = Writer {
            client,
            history,
            requests: writer_rx,
            reader: reader.clone(),
            link,
            up: up.clone(),
        };
        thread::Builder::new()
            .name("house-redis-writer".into())
            .spawn(move || writer_state.run())?;
        Ok(Broker {
            reader,
            writer,
            up,
            inbox,
            next_ticket: 0,
        })
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn up_flag(&self) -> Arc<AtomicBool> {
        self.up.clone()
    }

    /// Hands an event (serialized without its id) to the writer; the ticket comes back acked.
    pub(crate) fn publish(&mut self, channel: &str, body: Vec<u8>) -> Result<u64, BrokerDown> {
        if !self.is_up() {
            return Err(BrokerDown::Unreachable);
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.writer
            .send(WriterCmd::Publish {
                ticket,
                channel: channel.to_owned(),
                body,
            })
            .map_err(|_| BrokerDown::Stopped)?;
        Ok(ticket)
    }

    /// Hands stream `token`'s join number `join` of `channel` to the writer, in order with the
    /// publishes; the ticket comes back acked once the join has taken effect, and its replay
    /// (after `last_event_id`, or what was published after the join) follows as
    /// [`BrokerMsg::Joined`] (or [`BrokerMsg::JoinFailed`]).
    pub(crate) fn join(
        &mut self,
        token: Token,
        channel: &str,
        join: u64,
        last_event_id: Option<String>,
    ) -> Result<u64, BrokerDown> {
        if !self.is_up() {
            return Err(BrokerDown::Unreachable);
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.writer
            .send(WriterCmd::Join {
                ticket,
                token,
                channel: channel.to_owned(),
                join,
                last_event_id,
            })
            .map_err(|_| BrokerDown::Stopped)?;
        Ok(ticket)
    }

    pub(crate) fn replay(
        &self,
        token: Token,
        channels: Vec<String>,
        last_event_id: Option<String>,
    ) {
        let _ = self.reader.send(ReaderCmd::Replay {
            token,
            channels,
            since: last_event_id.map_or(Since::Now, Since::Id),
        });
    }

    pub(crate) fn forget(&self, channel: &str) {
        let _ = self.reader.send(ReaderCmd::Forget(channel.to_owned()));
    }

    pub(crate) fn try_recv(&self) -> Option<BrokerMsg> {
        self.inbox.try_recv().ok()
    }
}

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// The writer thread: publishes and joins, in the order the loop made them.
struct Writer {
    client: redis::Client,
    history: usize,
    requests: Receiver<WriterCmd>,
    /// Where a join's replay request goes once the join has taken effect.
    reader: Sender<ReaderCmd>,
    link: LoopLink,
    up: Arc<AtomicBool>,
}

impl Writer {
    fn run(self) {
        let mut con: Option<redis::Connection> = None;
        while let Ok(first) = self.requests.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match self.requests.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if con.is_none() {
                con = connect(&self.client).ok();
            }
            let replies = match &mut con {
                Some(redis) => self.pipeline(&batch).query::<Vec<Value>>(redis).ok(),
                None => None,
            };
            let ok = replies.as_ref().is_some_and(|r| r.len() == batch.len());
            if !ok {
                log::warn!("redis: publishing failed; answering 503 until it is back");
                con = None;
                self.up.store(false, Ordering::Relaxed);
            }
            let replies = replies.unwrap_or_default();
            for (i, cmd) in batch.iter().enumerate() {
                // A join is settled before its ticket is acked: the response that waits for
                // it tells the client the join took effect (or, as a 503, that it did not).
                if let WriterCmd::Join {
                    token,
                    channel,
                    join,
                    last_event_id,
                    ..
                } = cmd
                {
                    let settled = match replies.get(i).filter(|_| ok) {
                        Some(reply) => {
                            // Where the channel ended: the join took effect after that entry.
                            let end = entries_of(reply).first().map_or(StreamId::ZERO, |e| e.0);
                            let since = last_event_id.clone().map_or(Since::Entry(end), Since::Id);
                            let _ = self.reader.send(ReaderCmd::Join {
                                token: *token,
                                channel: channel.clone(),
                                join: *join,
                                since,
                            });
                            true
                        }
                        None => self.link.send(BrokerMsg::JoinFailed {
                            token: *token,
                            channel: channel.clone(),
                            join: *join,
                        }),
                    };
                    if !settled {
                        return;
                    }
                }
            }
            for cmd in &batch {
                if !self.link.send(BrokerMsg::Acked {
                    ticket: cmd.ticket(),
                    ok,
                }) {
                    return;
                }
            }
            self.link.wake();
        }
    }

    /// One round trip for the batch: an `XADD` per publish, and per join an `XREVRANGE`
    /// that finds the channel's newest entry right after the publishes queued before it.
    fn pipeline(&self, batch: &[WriterCmd]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for cmd in batch {
            match cmd {
                WriterCmd::Publish { channel, body, .. } => {
                    pipe.cmd("XADD")
                        .arg(stream_key(channel))
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(self.history.max(1))
                        .arg("*")
                        .arg("d")
                        .arg(body);
                }
                WriterCmd::Join { channel, .. } => {
                    pipe.cmd("XREVRANGE")
                        .arg(stream_key(channel))
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1);
                }
            }
        }
        pipe
    }
}

struct Reader {
    client: redis::Client,
    link: LoopLink,
    up: Arc<AtomicBool>,
    requests: Receiver<ReaderCmd>,
    con: Option<redis::Connection>,
    epoch: Option<String>,
    /// The last id delivered to the loop, per channel with local interest.
    cursors: HashMap<String, StreamId>,
    /// Replay requests that arrived while Redis was unreachable.
    waiting: Vec<ReaderCmd>,
}

impl Reader {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if self.con.is_none() {
                match self.reconnect() {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(err) => {
                        log::debug!("redis: cannot connect: {err}");
                        self.up.store(false, Ordering::Relaxed);
                        // Keep taking requests while waiting; they are served once connected.
                        match self.requests.recv_timeout(backoff) {
                            Ok(cmd) => self.waiting.push(cmd),
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                        backoff = (backoff * 2).min(RECONNECT_BACKOFF_CAP);
                        continue;
                    }
                }
            }
            let mut pending = std::mem::take(&mut self.waiting);
            loop {
                match self.requests.try_recv() {
                    Ok(cmd) => pending.push(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if let Err(err) = self.serve(pending) {
                self.lost(err);
                continue;
            }
            if self.cursors.is_empty() {
                // Nothing to read, but keep checking Redis, so an outage and the recovery are
                // noticed even by a node without subscribers.
                match self.requests.recv_timeout(IDLE_PING) {
                    Ok(cmd) => self.waiting.push(cmd),
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(err) = self.ping() {
                            self.lost(err);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                continue;
            }
            match self.read() {
                Ok(true) => self.link.wake(),
                Ok(false) => {}
                Err(err) => self.lost(err),
            }
        }
    }

    fn ping(&mut self) -> redis::RedisResult<()> {
        if let Some(con) = &mut self.con {
            redis::cmd("PING").query::<Value>(con)?;
            self.up.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lost(&mut self, err: redis::RedisError) {
        log::warn!("redis: connection lost: {err}");
        self.con = None;
        self.up.store(false, Ordering::Relaxed);
    }

    /// Connects, learns the epoch, and checks every channel's cursor for lost events.
    fn reconnect(&mut self) -> redis::RedisResult<()> {
        let mut con = connect(&self.client)?;
        let candidate = format!(
            "{:016x}",
            std::collections::hash_map::RandomState::new().hash_one(0u8)
        );
        redis::cmd("SET")
            .arg(EPOCH_KEY)
            .arg(&candidate)
            .arg("NX")
            .query::<Value>(&mut con)?;
        let epoch: String = redis::cmd("GET").arg(EPOCH_KEY).query(&mut con)?;
        match &self.epoch {
            Some(old) if *old != epoch => {
                // Redis lost everything: every stream missed what was in it.
                log::warn!(
                    "redis: its data was lost (epoch changed); streams get the reset signal"
                );
                for cursor in self.cursors.values_mut() {
                    *cursor = StreamId::ZERO;
                }
                self.link.send(BrokerMsg::Reset(None));
            }
            Some(_) => {
                for (channel, cursor) in &self.cursors {
                    if missed_after(&mut con, channel, *cursor)? {
                        self.link.send(BrokerMsg::Reset(Some(channel.clone())));
                    }
                }
            }
            None => {}
        }
        log::info!("redis: connected (epoch {epoch})");
        self.epoch = Some(epoch);
        self.con = Some(con);
        self.up.store(true, Ordering::Relaxed);
        self.link.wake();
        Ok(())
    }

    fn serve(&mut self, requests: Vec<ReaderCmd>) -> redis::RedisResult<()> {
        let mut served = false;
        let mut requests = requests.into_iter();
        while let Some(request) = requests.next() {
            let result = match &request {
                ReaderCmd::Forget(channel) => {
                    self.cursors.remove(channel);
                    Ok(())
                }
                ReaderCmd::Replay {
                    token,
                    channels,
                    since,
                } => self.replay(channels, since).map(|(reset, frames)| {
                    served = true;
                    self.link.send(BrokerMsg::Attach {
                        token: *token,
                        reset,
                        frames,
                    });
                }),
                ReaderCmd::Join {
                    token,
                    channel,
                    join,
                    since,
                } => self
                    .replay(std::slice::from_ref(channel), since)
                    .map(|(reset, frames)| {
                        served = true;
                        self.link.send(BrokerMsg::Joined {
                            token: *token,
                            channel: channel.clone(),
                            join: *join,
                            reset,
                            frames,
                        });
                    }),
            };
            if let Err(err) = result {
                // This request and the rest are served after reconnecting.
                self.waiting.push(request);
                self.waiting.extend(requests);
                return Err(err);
            }
        }
        if served {
            self.link.wake();
        }
        Ok(())
    }

    /// What a new stream, or a stream joining a channel, gets first: whether it missed events,
    /// and the events after `since` up to each channel's cursor (the events after those reach
    /// it as deliveries).
    fn replay(
        &mut self,
        channels: &[String],
        since: &Since,
    ) -> redis::RedisResult<(bool, Vec<Frame>)> {
        let Some(con) = &mut self.con else {
            return Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::NotConnected,
            )));
        };
        let epoch = self.epoch.clone().unwrap_or_default();
        let (mut reset, after) = match since {
            Since::Now => (false, None),
            Since::Entry(entry) => (false, Some(*entry)),
            Since::Id(id) => match parse_event_id(id, &epoch) {
                Some(entry) => (false, Some(entry)),
                None => (true, None),
            },
        };
        let mut entries: Vec<(StreamId, Frame)> = Vec::new();
        for channel in channels {
            let cursor = match self.cursors.get(channel) {
                Some(cursor) => *cursor,
                None => {
                    let newest = newest_id(con, channel)?;
                    self.cursors.insert(channel.clone(), newest);
                    newest
                }
            };
            let from = match after {
                _ if matches!(since, Since::Now) => continue,
                Some(after) if !missed_after(con, channel, after)? => Some(after),
                _ => {
                    reset = true;
                    None
                }
            };
            if let Some(from) = from.filter(|from| *from > cursor) {
                // The stream already has (or joined after) events this node has not read
                // yet: read them now, for the streams already there, so the stream's live
                // events start after them.
                let reply: Value = redis::cmd("XRANGE")
                    .arg(stream_key(channel))
                    .arg(format!("({cursor}"))
                    .arg(from.to_string())
                    .query(con)?;
                for (id, body) in entries_of(&reply) {
                    self.cursors.insert(channel.clone(), id);
                    self.link.send(BrokerMsg::Deliver {
                        channel: channel.clone(),
                        frame: frame(&epoch, id, &body),
                    });
                }
                continue;
            }
            let start = from.map_or_else(|| "-".to_owned(), |from| format!("({from}"));
            let reply: Value = redis::cmd("XRANGE")
                .arg(stream_key(channel))
                .arg(start)
                .arg(cursor.to_string())
                .query(con)?;
            for (id, body) in entries_of(&reply) {
                entries.push((id, frame(&epoch, id, &body)));
            }
        }
        entries.sort_by_key(|(id, _)| *id);
        Ok((reset, entries.into_iter().map(|(_, frame)| frame).collect()))
    }

    /// One `XREAD` over every channel with local interest; `true` when events were delivered.
    fn read(&mut self) -> redis::RedisResult<bool> {
        let Some(con) = &mut self.con else {
            return Ok(false);
        };
        let epoch = self.epoch.clone().unwrap_or_default();
        let channels: Vec<String> = self.cursors.keys().cloned().collect();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS");
        for channel in &channels {
            cmd.arg(stream_key(channel));
        }
        for channel in &channels {
            cmd.arg(self.cursors[channel].to_string());
        }
        let reply: Value = cmd.query(con)?;
        self.up.store(true, Ordering::Relaxed);
        let mut delivered = false;
        for (key, entries) in streams_of(&reply) {
            let Some(channel) = key.strip_prefix(STREAM_PREFIX) else {
                continue;
            };
            for (id, body) in entries_of(entries) {
                let Some(cursor) = self.cursors.get_mut(channel) else {
                    break;
                };
                if id <= *cursor {
                    continue;
                }
                *cursor = id;
                delivered = true;
                if !self.link.send(BrokerMsg::Deliver {
                    channel: channel.to_owned(),
                    frame: frame(&epoch, id, &body),
                }) {
                    return Ok(delivered);
                }
            }
        }
        Ok(delivered)
    }
}

/// The SSE bytes of a stored event: its id line, then the stored fields.
fn frame(epoch: &str, id: StreamId, body: &[u8]) -> Frame {
    let mut out = format!("id: {epoch}.{id}\n").into_bytes();
    out.extend_from_slice(body);
    out.into()
}

/// `EPOCH.MS-SEQ` of this epoch → the stream id; `Some(None)` for anything else.
fn parse_event_id(id: &str, epoch: &str) -> Option<StreamId> {
    let (their_epoch, stream_id) = id.trim().split_once('.')?;
    if their_epoch != epoch {
        return None;
    }
    StreamId::parse(stream_id)
}

fn newest_id(con: &mut redis::Connection, channel: &str) -> redis::RedisResult<StreamId> {
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(stream_key(channel))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(con)?;
    Ok(entries_of(&reply)
        .first()
        .map_or(StreamId::ZERO, |(id, _)| *id))
}

/// Whether events of `channel` that came after `id` are gone from its stream: deleted
/// (`max-deleted-entry-id`), or trimmed from the front while `id` is older than what is left.
/// The second test is conservative: when only events up to `id` were trimmed it still says yes,
/// so a client may get a `reset` it did not need, but never a silent gap.
fn missed_after(
    con: &mut redis::Connection,
    channel: &str,
    id: StreamId,
) -> redis::RedisResult<bool> {
    let reply: redis::RedisResult<Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream_key(channel))
        .query(con);
    let reply = match reply {
        Ok(reply) => reply,
        // No such stream: nothing was ever removed from it.
        Err(err) if matches!(err.kind(), redis::ErrorKind::Server(_)) => return Ok(false),
        Err(err) => return Err(err),
    };
    let info = pairs_of(&reply);
    let field = |name: &str| {
        info.iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .and_then(|(_, v)| text(v))
    };
    let max_deleted = field("max-deleted-entry-id")
        .and_then(|v| StreamId::parse(&v))
        .unwrap_or(StreamId::ZERO);
    let first = field("recorded-first-entry-id")
        .and_then(|v| StreamId::parse(&v))
        .unwrap_or(StreamId::ZERO);
    let added: u64 = field("entries-added")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let length: u64 = field("length").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(id < max_deleted || (added > length && id < first))
}

/// A Redis Stream entry id `MS-SEQ`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    const ZERO: StreamId = StreamId(0, 0);

    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flat `[k, v, k, v, …]` array or a map, as key-value pairs.
fn pairs_of(value: &Value) -> Vec<(Value, Value)> {
    match value {
        Value::Map(pairs) => pairs.clone(),
        Value::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// `XREAD`'s reply as (stream key, entries).
fn streams_of(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|stream| match stream {
                Value::Array(pair) if pair.len() == 2 => Some((text(&pair[0])?, &pair[1])),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Stream entries `[[id, [field, value, …]], …]` as (id, the `d` field).
fn entries_of(value: &Value) -> Vec<(StreamId, Vec<u8>)> {
    let Value::Array(entries) = value else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let id = StreamId::parse(&text(parts.first()?)?)?;
            let body = pairs_of(parts.get(1)?)
                .into_iter()
                .find(|(k, _)| text(k).as_deref() == Some("d"))
                .and_then(|(_, v)| match v {
                    Value::BulkString(bytes) => Some(bytes),
                    _ => None,
                })?;
            Some((id, body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert!(StreamId::parse("10-0").unwrap() > StreamId::parse("9-5").unwrap());
        assert!(StreamId::parse("9-10").unwrap() > StreamId::parse("9-9").unwrap());
        assert_eq!(StreamId::parse("5-1").unwrap().to_string(), "5-1");
        assert!(StreamId::parse("x").is_none());
    }

    #[test]
    fn event_ids_carry_the_epoch() {
        assert_eq!(parse_event_id("ab.5-1", "ab"), Some(StreamId(5, 1)));
        assert_eq!(parse_event_id("cd.5-1", "ab"), None);
        assert_eq!(parse_event_id("run-5", "ab"), None);
        assert_eq!(
            &*frame("ab", StreamId(5, 1), b"data: x\n\n"),
            b"id: ab.5-1\ndata: x\n\n"
        );
    }

    #[test]
    fn replies_are_read_from_resp_arrays() {
        let entry = |id: &str, d: &str| {
            Value::Array(vec![
                Value::BulkString(id.into()),
                Value::Array(vec![
                    Value::BulkString(b"d".to_vec()),
                    Value::BulkString(d.into()),
                ]),
            ])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"house:stream:x".to_vec()),
            Value::Array(vec![entry("1-0", "a"), entry("2-0", "b")]),
        ])]);
        let streams = streams_of(&reply);
        assert_eq!(streams[0].0, "house:stream:x");
        assert_eq!(
            entries_of(streams[0].1),
            vec![
                (StreamId(1, 0), b"a".to_vec()),
                (StreamId(2, 0), b"b".to_vec())
            ]
        );
    }
}
