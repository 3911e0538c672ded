//! Per-connection state: the phase, the bytes read so far, the write queue, and the
//! transitions between phases, each a method named after the event that causes it.
//!
//! The phases and what holds in each:
//! - `Requests`: `input` holds bytes of requests not yet answered; while a request is
//!   `arriving`, `since` is when it began (its first byte, or the accept), and between requests
//!   it is when the last request was taken. At most one response is `parked`.
//! - `Streaming`: subscribed to channels (or, with a broker, waiting to be `attached`); input
//!   is read only to notice a hang-up, and no request state is kept.
//! - `Closing`: no more requests are taken; what is queued (and a parked response, once
//!   released) is written, then the connection lingers.
//! - `Lingering`: the write side is shut and nothing is owed; input is read and discarded
//!   until the client closes or the linger ends.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::config::Config;
use crate::error::Error;
use crate::parse::{parse_request, Parsed};
use crate::request::{Method, Request, Version};
use crate::response::Response;
use crate::sse::Frame;
use crate::stats::{DropReason, LagPolicy};

/// Most slices handed to one `writev`: enough to coalesce a burst of queued events into one
/// syscall, few enough to build on the stack.
const MAX_SLICES: usize = 64;

/// Bytes of a file body read into the queue at a time.
const FILE_CHUNK: usize = 64 * 1024;

/// A read buffer larger than this is freed once it empties, so a burst of pipelined requests
/// does not pin memory on an idle keep-alive connection.
const KEEP_INPUT: usize = 16 * 1024;

/// Once this many response bytes wait for a client, its further pipelined requests wait too,
/// so a client cannot queue unbounded responses without reading them.
const PIPELINE_BACKLOG: usize = 256 * 1024;

/// How long a response waits for the broker to acknowledge its handler's publishes before it
/// becomes a 503.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a stream sends first, when it attaches to its channels.
#[derive(Debug)]
pub(crate) struct Opening {
    /// The stream's response head.
    pub(crate) head: Vec<u8>,
    /// Events for this stream alone, sent after its replay.
    pub(crate) initial: Vec<Frame>,
}

/// A stream's channels. Most streams have one, kept without a list around it: one allocation
/// (its name) where a list took two, for 32 bytes less per idle stream. The list of several is
/// boxed once more, so that the whole fits the name's two words and `Phase` does not grow.
#[derive(Debug)]
pub(crate) enum Channels {
    One(Box<str>),
    Many(Box<Box<[Box<str>]>>),
}

impl Channels {
    pub(crate) fn from_names(names: &[String]) -> Channels {
        match names {
            [one] => Channels::One(one.as_str().into()),
            _ => Channels::many(names.iter().map(|name| name.as_str().into()).collect()),
        }
    }

    fn from_list(mut list: Vec<Box<str>>) -> Channels {
        match list.pop() {
            Some(one) if list.is_empty() => Channels::One(one),
            Some(last) => {
                list.push(last);
                Channels::many(list)
            }
            None => Channels::default(),
        }
    }

    fn many(list: Vec<Box<str>>) -> Channels {
        Channels::Many(Box::new(list.into_boxed_slice()))
    }

    fn has(&self, channel: &str) -> bool {
        self.iter().any(|c| **c == *channel)
    }
}

impl Default for Channels {
    fn default() -> Channels {
        Channels::many(Vec::new())
    }
}

impl std::ops::Deref for Channels {
    type Target = [Box<str>];

    fn deref(&self) -> &[Box<str>] {
        match self {
            Channels::One(one) => std::slice::from_ref(one),
            Channels::Many(many) => many,
        }
    }
}

/// What a connection is doing.
#[derive(Debug)]
enum Phase {
    /// Receiving requests and answering them in order (one, or several with keep-alive).
    /// What only this phase needs lives here, so a stream does not carry it.
    Requests {
        /// Bytes of requests not yet answered.
        input: Vec<u8>,
        /// When the request now arriving began, while `arriving`; otherwise when the last
        /// request was taken, since when the connection is idle.
        since: Instant,
        arriving: bool,
    },
    /// Subscribed to channels; input is read only to notice a hang-up. With a broker, a new
    /// stream is not `attached` to its channels until its replay arrives.
    Streaming {
        channels: Channels,
        /// What it sends when it attaches; `None` once attached. Boxed: every connection is as
        /// large as its largest phase, and an idle stream should not pay for its opening.
        opening: Option<Box<Opening>>,
        /// When it has lived long enough (see `MAX_STREAM_LIFETIME`), if ever.
        expires: Option<Instant>,
        /// Sent with `Content-Encoding: gzip`: everything queued after its head is deflate
        /// chunks (see [`crate::gzip`]). Here, in the phase's padding, not in the `Conn`, whose
        /// flags fill their word.
        compressed: bool,
    },
    /// Writing what is queued, then shutting down the write side.
    Closing,
    /// Write side shut; reading and discarding until the peer closes or `until`, so unread input
    /// does not make the kernel reset the connection before the client reads our last response.
    Lingering { until: Instant },
}

/// The `reset` gap signal's bytes, as [`reset_event`](crate::sse::reset_event) builds them (a
/// test keeps the two equal): what a stream under [`LagPolicy::DropOldest`] gets in place of
/// the events it skipped.
const GAP: &[u8] = b"event: reset\ndata: events were missed\n\n";

/// A published event with its channel, for streams under [`LagPolicy::Latest`], which replace
/// an event by the next one of the same channel. Built once per event and shared by every such
/// subscriber, so their queues hold one pointer per event, as others do.
#[derive(Debug)]
pub(crate) struct LatestFrame {
    channel: Box<str>,
    frame: Frame,
}

impl LatestFrame {
    pub(crate) fn new(channel: &str, frame: Frame) -> LatestFrame {
        LatestFrame {
            channel: channel.into(),
            frame,
        }
    }
}

/// One queued piece of output. Kept at three words: every connection holds one inline (see
/// [`Chunks`]), so a wider variant would cost every stream.
#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Frame),
    /// An event that the next one of its channel replaces (see [`LagPolicy::Latest`]).
    Latest(Arc<LatestFrame>),
    /// The gap signal, where skipped events were (see [`LagPolicy::DropOldest`]).
    Gap,
    /// The gap signal of a compressed stream, as a chunk (see [`crate::gzip`]).
    DeflatedGap,
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(frame) => frame,
            Chunk::Latest(latest) => &latest.frame,
            Chunk::Gap => GAP,
            Chunk::DeflatedGap => crate::gzip::reset_chunk(),
        }
    }

    /// Whether this is a published event (heads, heartbeats and gap signals are not).
    fn is_event(&self) -> bool {
        matches!(self, Chunk::Shared(_) | Chunk::Latest(_))
    }
}

/// What a lagging stream's policy did while an event was queued to it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lagged {
    /// Bytes written on the way.
    pub(crate) written: usize,
    /// Queued events dropped: skipped (`DropOldest`) or replaced (`Latest`).
    pub(crate) dropped: usize,
    /// Whether a gap signal was queued.
    pub(crate) gap: bool,
}

/// The chunks of an [`OutQueue`], front first. One chunk, what a stream that keeps up has
/// (each event is written in the turn it is published), is held inline; more take a
/// `VecDeque`, given back once the queue empties, so an idle stream holds no spare capacity
/// (a kept deque cost each idle stream a 112-byte malloc chunk).
#[derive(Debug, Default)]
enum Chunks {
    #[default]
    Empty,
    One(Chunk),
    Many(VecDeque<Chunk>),
}

impl Chunks {
    fn push_back(&mut self, chunk: Chunk) {
        if let Chunks::Many(many) = self {
            many.push_back(chunk);
            return;
        }
        *self = match std::mem::take(self) {
            Chunks::One(first) => {
                // Four, as a deque's first growth gives: a queue that backs up once usually
                // holds a few.
                let mut many = VecDeque::with_capacity(4);
                many.push_back(first);
                many.push_back(chunk);
                Chunks::Many(many)
            }
            _ => Chunks::One(chunk),
        };
    }

    fn front(&self) -> Option<&Chunk> {
        match self {
            Chunks::Empty => None,
            Chunks::One(chunk) => Some(chunk),
            Chunks::Many(many) => many.front(),
        }
    }

    fn pop_front(&mut self) {
        match self {
            Chunks::Empty => {}
            Chunks::One(_) => *self = Chunks::Empty,
            Chunks::Many(many) => {
                many.pop_front();
                // Kept while anything is queued, so a backlog that drains and refills between
                // one and a few chunks does not allocate each time.
                if many.is_empty() {
                    *self = Chunks::Empty;
                }
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Chunk> {
        let (one, many) = match self {
            Chunks::Empty => (None, None),
            Chunks::One(chunk) => (Some(chunk), None),
            Chunks::Many(many) => (None, Some(many)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    fn len(&self) -> usize {
        match self {
            Chunks::Empty => 0,
            Chunks::One(_) => 1,
            Chunks::Many(many) => many.len(),
        }
    }

    /// Keeps the chunks `keep` says to, in order (each is shown once, front first).
    fn retain(&mut self, mut keep: impl FnMut(&Chunk) -> bool) {
        match self {
            Chunks::Empty => {}
            Chunks::One(chunk) => {
                if !keep(chunk) {
                    *self = Chunks::Empty;
                }
            }
            Chunks::Many(many) => {
                many.retain(|chunk| keep(chunk));
                if many.is_empty() {
                    *self = Chunks::Empty;
                }
            }
        }
    }
}

/// Bytes waiting to be written, in order. Events are queued as shared frames, so fanning an
/// event out to many subscribers never copies its payload.
#[derive(Debug, Default)]
struct OutQueue {
    chunks: Chunks,
    /// Bytes of the front chunk already written.
    offset: usize,
    len: usize,
}

impl OutQueue {
    fn push_owned(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Owned(bytes));
    }

    fn push_shared(&mut self, frame: Frame) {
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    fn push_latest(&mut self, latest: Arc<LatestFrame>) {
        self.len += latest.frame.len();
        self.chunks.push_back(Chunk::Latest(latest));
    }

    /// The index of the first chunk not yet started.
    fn unstarted(&self) -> usize {
        usize::from(self.offset > 0)
    }

    /// Drops every queued event not yet started (a partly written one is finished, so no
    /// frame is cut) and queues the gap signal after what remains (`deflated` for a compressed
    /// stream), unless one not yet started is there already. Returns how many events were
    /// dropped, and whether a gap was queued.
    fn skip_events(&mut self, deflated: bool) -> (usize, bool) {
        let first = self.unstarted();
        let mut gap_waiting = false;
        let (mut dropped, mut dropped_bytes) = (0, 0);
        for chunk in self.chunks.iter().skip(first) {
            if chunk.is_event() {
                dropped += 1;
                dropped_bytes += chunk.bytes().len();
            }
            gap_waiting |= matches!(chunk, Chunk::Gap | Chunk::DeflatedGap);
        }
        if dropped == 0 {
            return (0, false);
        }
        let mut at = 0;
        self.chunks.retain(|chunk| {
            at += 1;
            at <= first || !chunk.is_event()
        });
        self.len -= dropped_bytes;
        if !gap_waiting {
            let gap = if deflated {
                Chunk::DeflatedGap
            } else {
                Chunk::Gap
            };
            self.len += gap.bytes().len();
            self.chunks.push_back(gap);
        }
        (dropped, !gap_waiting)
    }

    /// Drops the queued events of `channel` kept as [`Chunk::Latest`] that are not yet
    /// started (at most one, since each push under `Latest` drops its predecessor); returns
    /// how many.
    fn drop_latest(&mut self, channel: &str) -> usize {
        let first = self.unstarted();
        let before = self.chunks.len();
        let mut dropped_bytes = 0;
        let mut at = 0;
        self.chunks.retain(|chunk| {
            at += 1;
            let drop =
                at > first && matches!(chunk, Chunk::Latest(latest) if *latest.channel == *channel);
            if drop {
                dropped_bytes += chunk.bytes().len();
            }
            !drop
        });
        self.len -= dropped_bytes;
        before - self.chunks.len()
    }

    /// Bytes still to write.
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One vectored write of as much of the queue as fits in [`MAX_SLICES`] slices.
    fn write_to(&mut self, writer: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(MAX_SLICES).enumerate() {
            let bytes = chunk.bytes();
            slices[i] = IoSlice::new(if i == 0 { &bytes[self.offset..] } else { bytes });
            count += 1;
        }
        // One slice (an event to a stream that keeps up) goes out with `send`: `writev` takes
        // the file's position lock and the VFS path on top, ~5% of the kernel's time per
        // delivery in a profile of 1,000 subscribers.
        let written = match &slices[..count] {
            [one] => writer.write(one)?,
            all => writer.write_vectored(all)?,
        };
        self.advance(written);
        Ok(written)
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            self.chunks.pop_front();
        }
    }
}

/// What the log line and the response of one request need to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Exchange<'a> {
    /// `None` when the request line could not be parsed.
    pub(crate) method: Option<Method>,
    pub(crate) version: Version,
    /// The decoded path, without the query string (parameter values may be private).
    pub(crate) path: Cow<'a, str>,
    pub(crate) keep_alive: bool,
    pub(crate) started: Instant,
    /// The request's `Origin`, for CORS (`None` without one, or before the head was read).
    pub(crate) origin: Option<Cow<'a, str>>,
}

impl<'a> Exchange<'a> {
    /// The exchange of a parsed request.
    pub(crate) fn of(request: &'a Request, keep_alive: bool, started: Instant) -> Exchange<'a> {
        Exchange {
            method: Some(request.method()),
            version: request.version(),
            path: Cow::Borrowed(request.path()),
            keep_alive,
            started,
            origin: request.header("origin").map(Cow::Borrowed),
        }
    }

    /// A request that failed before its head could be read.
    pub(crate) fn unparsed(started: Instant) -> Exchange<'static> {
        Exchange {
            method: None,
            version: Version::Http11,
            path: Cow::Borrowed("-"),
            keep_alive: false,
            started,
            origin: None,
        }
    }

    /// The same exchange, owning its path, to outlive the request.
    pub(crate) fn into_owned(self) -> Exchange<'static> {
        Exchange {
            path: Cow::Owned(self.path.into_owned()),
            origin: self.origin.map(|origin| Cow::Owned(origin.into_owned())),
            method: self.method,
            version: self.version,
            keep_alive: self.keep_alive,
            started: self.started,
        }
    }
}

/// A response held back until the broker acknowledges the events its handler published, so
/// that "sent" is never said of an event Redis did not take.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) response: Response,
    pub(crate) exchange: Exchange<'static>,
    pub(crate) since: Instant,
    /// Acknowledgements still to come.
    pub(crate) awaiting: usize,
    /// Whether any publish failed (or the acknowledgements took too long).
    pub(crate) failed: bool,
    /// The offloaded job whose result `response` still waits for (its ticket); `response` is
    /// meanwhile the placeholder that carries the headers to add to it.
    pub(crate) job: Option<u64>,
}

/// The rest of a file response, read into the queue as the client drains it.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: File,
    remaining: u64,
}

impl FileBody {
    pub(crate) fn new(file: File, len: u64) -> FileBody {
        FileBody {
            file,
            remaining: len,
        }
    }

    /// The next chunk, or `None` at the end. A file that shrank under us ends the body early;
    /// the client sees a short response and the connection closes.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = self.remaining.min(FILE_CHUNK as u64) as usize;
        let mut chunk = vec![0; want];
        let n = self.file.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            ));
        }
        chunk.truncate(n);
        self.remaining -= n as u64;
        Ok(Some(chunk))
    }
}

/// A request taken from a connection's input.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) request: Box<Request>,
    pub(crate) keep_alive: bool,
    /// When its first byte arrived (or the connection was accepted).
    pub(crate) started: Instant,
}

/// What a connection's timers call for (see [`Conn::due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Its parked response waited too long for the broker (or its offloaded job): answer it
    /// as failed.
    Unacknowledged,
    /// Close it, for this reason.
    Close(DropReason),
    /// The request now arriving, which began at this instant, took too long: answer 408.
    RequestTimeout(Instant),
    /// A stream quiet for the heartbeat interval.
    Heartbeat,
    /// A stream past its lifetime: write what is queued, then close.
    Expired,
    /// Nothing; it waits, idle, for its next request.
    Idle,
}

/// What a connection needs once everything queued has been written (see [`Conn::flushed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFlush {
    /// Nothing yet.
    Wait,
    /// It stopped reading while output backed up (or its buffer was full): read again.
    Read,
    /// Pipelined requests wait in its buffer: answer them.
    Answer,
    /// Its last response is out and the write side is shut: drain what the client sent.
    Drain,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    socket: TcpStream,
    peer: SocketAddr,
    phase: Phase,
    out: OutQueue,
    /// Boxed: a file body is rare, and inline its 16 bytes took every stream past a malloc size.
    file: Option<Box<FileBody>>,
    parked: Option<Box<Parked>>,
    /// When bytes were last queued (heartbeats go to streams quiet since long enough).
    last_queued: Instant,
    /// When the client last took bytes from a non-empty queue.
    last_progress: Instant,
    /// Reading stopped before `WouldBlock` (buffer full or output backed up): with edge-triggered
    /// readiness no new event will come, so the loop must read again itself.
    read_paused: bool,
    /// Queued on the loop's list of connections to flush this turn.
    dirty: bool,
    /// The interest currently registered with the poll.
    registered: Interest,
    /// What happens when a stream falls behind (one byte, in what was padding).
    lag_policy: LagPolicy,
}

impl Conn {
    /// A connection just accepted, registered for `READABLE`.
    pub(crate) fn new(socket: TcpStream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            socket,
            peer,
            phase: Phase::Requests {
                input: Vec::new(),
                since: now,
                arriving: true,
            },
            out: OutQueue::default(),
            file: None,
            parked: None,
            last_queued: now,
            last_progress: now,
            read_paused: false,
            dirty: false,
            registered: Interest::READABLE,
            lag_policy: LagPolicy::Disconnect,
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    // ---- Registration -----------------------------------------------------------------------

    /// The readiness this connection needs: always readable (to notice a hang-up), writable
    /// only while bytes are pending.
    fn interest(&self) -> Interest {
        if self.has_output() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Reregisters the connection when the interest it needs changed.
    pub(crate) fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        if interest != self.registered {
            registry.reregister(&mut self.socket, token, interest)?;
            self.registered = interest;
        }
        Ok(())
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }

    /// Puts the connection on the turn's flush list; `false` when it already is.
    pub(crate) fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    // ---- Reading ----------------------------------------------------------------------------

    /// Reads what the socket has through `scratch`: in `Requests`, into the input buffer (at
    /// most `max_size` bytes of it); in other phases the bytes are discarded. Returns whether
    /// the client hung up. Unless `to_the_end`, a short read counts as drained: with
    /// edge-triggered readiness any later bytes bring a new event, so the read that would only
    /// say `WouldBlock` is skipped. An error means the connection is broken.
    pub(crate) fn receive(
        &mut self,
        scratch: &mut [u8],
        max_size: usize,
        to_the_end: bool,
        now: Instant,
    ) -> io::Result<bool> {
        self.read_paused = false;
        loop {
            let room = match &self.phase {
                Phase::Requests { input, .. } => Some(max_size.saturating_sub(input.len())),
                _ => None,
            };
            if room.is_some_and(|room| room == 0 || self.out.len() >= PIPELINE_BACKLOG) {
                self.pause_reading();
                return Ok(false);
            }
            let want = room.unwrap_or(scratch.len()).min(scratch.len());
            match self.socket.read(&mut scratch[..want]) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if let Phase::Requests {
                        input,
                        since,
                        arriving,
                    } = &mut self.phase
                    {
                        // Input waiting means a request is arriving already.
                        if !*arriving {
                            *arriving = true;
                            *since = now;
                        }
                        input.extend_from_slice(&scratch[..n]);
                    }
                    if n < want && !to_the_end {
                        return Ok(false);
                    }
                }
                Err(err) if would_block(&err) => return Ok(false),
                Err(err) if interrupted(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Stops reading before `WouldBlock`: the loop reads again once the output drains.
    fn pause_reading(&mut self) {
        debug_assert!(
            matches!(self.phase, Phase::Requests { .. }),
            "only requests pause"
        );
        self.read_paused = true;
    }

    /// The next complete request in the input, if the connection is ready to answer one: it
    /// takes requests, no response is parked or still streaming a file, and fewer than
    /// [`PIPELINE_BACKLOG`] bytes of responses wait. `Err` is a request that cannot be parsed,
    /// with when it began.
    pub(crate) fn take_request(
        &mut self,
        max_size: usize,
        max_headers: usize,
        now: Instant,
    ) -> Option<Result<Taken, (Error, Instant)>> {
        // A file body still streaming must finish before the next response starts.
        if self.parked.is_some() || self.file.is_some() || self.out.len() >= PIPELINE_BACKLOG {
            return None;
        }
        let Phase::Requests {
            input,
            since,
            arriving,
        } = &mut self.phase
        else {
            return None;
        };
        if input.is_empty() {
            return None;
        }
        let started = if *arriving { *since } else { now };
        let (mut request, len, keep_alive) = match parse_request(input, max_size, max_headers) {
            Ok(Parsed::Partial) => return None,
            Ok(Parsed::Complete {
                request,
                len,
                keep_alive,
            }) => (request, len, keep_alive),
            Err(err) => return Some(Err((err, started))),
        };
        input.drain(..len);
        // With nothing left the connection is idle from now; a pipelined request's first
        // bytes are here already, so it is arriving from now.
        *arriving = !input.is_empty();
        *since = now;
        if input.is_empty() && input.capacity() > KEEP_INPUT {
            *input = Vec::new();
        }
        request.peer = Some(self.peer);
        Some(Ok(Taken {
            request,
            keep_alive,
            started,
        }))
    }

    /// The client hung up (its bytes so far were read). Returns whether to close now: a
    /// connection still owing responses first finishes answering what arrived before.
    pub(crate) fn hang_up(&mut self) -> bool {
        match self.phase {
            Phase::Requests { .. } if self.owes_output() => {
                self.close_after_flush();
                false
            }
            Phase::Closing if self.owes_output() => false,
            _ => true,
        }
    }

    // ---- Writing ----------------------------------------------------------------------------

    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() || self.file.is_some()
    }

    /// Whether anything is still to be written: queued bytes, or a parked response.
    pub(crate) fn owes_output(&self) -> bool {
        self.has_output() || self.parked.is_some()
    }

    pub(crate) fn queue(&mut self, bytes: Vec<u8>, now: Instant) {
        self.note_queued(now);
        self.out.push_owned(bytes);
    }

    pub(crate) fn queue_frame(&mut self, frame: Frame, now: Instant) {
        self.note_queued(now);
        self.out.push_shared(frame);
    }

    /// Sends `file` after what is queued, read into the queue as the client drains it.
    pub(crate) fn queue_file(&mut self, file: FileBody) {
        debug_assert!(self.file.is_none(), "one file body at a time");
        self.file = Some(Box::new(file));
    }

    /// Queues a published event to a subscriber whose queue is capped at `cap` bytes. A
    /// subscriber that would pass the cap is a slow consumer; what it has already taken does
    /// not count, so the queue is written first. Returns the bytes written on the way.
    pub(crate) fn queue_event(
        &mut self,
        frame: Frame,
        cap: usize,
        now: Instant,
    ) -> Result<usize, DropReason> {
        let mut written = 0;
        if self.out.len() + frame.len() > cap {
            written = self
                .write_pending(now)
                .map_err(|_| DropReason::WriteError)?;
            if self.out.len() + frame.len() > cap {
                return Err(DropReason::SlowConsumer);
            }
        }
        self.queue_frame(frame, now);
        Ok(written)
    }

    /// Queues a published event to a stream under [`LagPolicy::DropOldest`]: one whose queue
    /// would pass `lag` bytes skips ahead (see [`OutQueue::skip_events`]) first; past `cap`
    /// it is a slow consumer all the same.
    pub(crate) fn queue_skipping(
        &mut self,
        frame: Frame,
        lag: usize,
        cap: usize,
        now: Instant,
    ) -> Result<Lagged, DropReason> {
        let mut lagged = Lagged::default();
        let lag = lag.min(cap);
        if self.out.len() + frame.len() > lag {
            lagged.written = self
                .write_pending(now)
                .map_err(|_| DropReason::WriteError)?;
            if self.out.len() + frame.len() > lag {
                (lagged.dropped, lagged.gap) = self.out.skip_events(self.is_compressed());
                if self.out.len() + frame.len() > cap {
                    return Err(DropReason::SlowConsumer);
                }
            }
        }
        self.queue_frame(frame, now);
        Ok(lagged)
    }

    /// Queues a published event to a stream under [`LagPolicy::Latest`]: it replaces the
    /// event of its channel still waiting unsent; past `cap` the stream is a slow consumer
    /// all the same.
    pub(crate) fn queue_latest(
        &mut self,
        latest: Arc<LatestFrame>,
        cap: usize,
        now: Instant,
    ) -> Result<Lagged, DropReason> {
        let mut lagged = Lagged::default();
        if !self.out.is_empty() {
            lagged.dropped = self.out.drop_latest(&latest.channel);
        }
        let len = latest.frame.len();
        if self.out.len() + len > cap {
            lagged.written = self
                .write_pending(now)
                .map_err(|_| DropReason::WriteError)?;
            if self.out.len() + len > cap {
                return Err(DropReason::SlowConsumer);
            }
        }
        self.note_queued(now);
        self.out.push_latest(latest);
        Ok(lagged)
    }

    fn note_queued(&mut self, now: Instant) {
        if !self.has_output() {
            // The write timeout counts from when the client had something to read.
            self.last_progress = now;
        }
        self.last_queued = now;
    }

    /// Writes queued bytes (reading file bodies in as the queue empties) until everything is
    /// written or the socket is full; returns how many bytes went out. An error means the
    /// connection is broken.
    pub(crate) fn write_pending(&mut self, now: Instant) -> io::Result<usize> {
        let mut written = 0;
        loop {
            if self.out.is_empty() {
                let Some(file) = &mut self.file else {
                    return Ok(written);
                };
                match file.next_chunk()? {
                    Some(chunk) => self.out.push_owned(chunk),
                    None => {
                        self.file = None;
                        return Ok(written);
                    }
                }
            }
            match self.out.write_to(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.last_progress = now;
                }
                Err(err) if would_block(&err) => return Ok(written),
                Err(err) if interrupted(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// What comes next for a connection whose queue is written out: a closing connection
    /// that owes nothing more lingers (until `linger_until`); one taking requests reads again
    /// or answers the requests that waited for this output.
    pub(crate) fn flushed(&mut self, linger_until: Instant) -> AfterFlush {
        if self.has_output() {
            return AfterFlush::Wait;
        }
        match self.phase {
            // A parked response is still to come: it is written before the connection shuts.
            Phase::Closing if self.parked.is_none() => {
                self.linger(linger_until);
                AfterFlush::Drain
            }
            Phase::Requests { .. } if self.read_paused => AfterFlush::Read,
            Phase::Requests { ref input, .. } if !input.is_empty() => AfterFlush::Answer,
            _ => AfterFlush::Wait,
        }
    }

    // ---- Phases -----------------------------------------------------------------------------

    /// The stream handler answered: the connection now belongs to `channels`, and waits to be
    /// attached to them; `head` and then, after any replay, `initial` go out when it is.
    pub(crate) fn start_streaming(
        &mut self,
        channels: Channels,
        head: Vec<u8>,
        initial: Vec<Frame>,
    ) {
        debug_assert!(
            matches!(self.phase, Phase::Requests { .. }) && self.parked.is_none(),
            "a stream starts from a request"
        );
        // Leaving `Requests` frees the read buffer: a stream keeps no request state.
        self.phase = Phase::Streaming {
            channels,
            opening: Some(Box::new(Opening { head, initial })),
            expires: None,
            compressed: false,
        };
    }

    /// What happens when this stream falls behind.
    pub(crate) fn set_lag_policy(&mut self, policy: LagPolicy) {
        self.lag_policy = policy;
    }

    pub(crate) fn lag_policy(&self) -> LagPolicy {
        self.lag_policy
    }

    /// The stream is sent gzip-compressed: queue it deflate chunks only.
    pub(crate) fn set_compressed(&mut self) {
        debug_assert!(self.is_streaming(), "only streams are compressed");
        if let Phase::Streaming { compressed, .. } = &mut self.phase {
            *compressed = true;
        }
    }

    pub(crate) fn is_compressed(&self) -> bool {
        matches!(
            self.phase,
            Phase::Streaming {
                compressed: true,
                ..
            }
        )
    }

    /// The stream is to end, cleanly, once `at` has passed.
    pub(crate) fn expire_at(&mut self, at: Instant) {
        if let Phase::Streaming { expires, .. } = &mut self.phase {
            *expires = Some(at);
        }
    }

    /// Caps the kernel's send buffer for this socket at `bytes` (see
    /// [`STREAM_SEND_BUFFER`](crate::limits::STREAM_SEND_BUFFER)).
    pub(crate) fn limit_send_buffer(&self, bytes: usize) -> io::Result<()> {
        socket2::SockRef::from(&self.socket).set_send_buffer_size(bytes)
    }

    /// Attaches a stream waiting for its replay, handing back what it sends first; `None`
    /// when it is not one (it closed or the server is shutting down meanwhile).
    pub(crate) fn attach(&mut self) -> Option<Box<Opening>> {
        match &mut self.phase {
            Phase::Streaming { opening, .. } => opening.take(),
            _ => None,
        }
    }

    pub(crate) fn is_streaming(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    /// The channels of a stream (attached or not); empty for other connections.
    pub(crate) fn channels(&self) -> &[Box<str>] {
        match &self.phase {
            Phase::Streaming { channels, .. } => channels,
            _ => &[],
        }
    }

    /// An attached stream joins `channel`; `false` when it is not one, or already has it.
    pub(crate) fn join_channel(&mut self, channel: &str) -> bool {
        match &mut self.phase {
            Phase::Streaming {
                channels,
                opening: None,
                ..
            } if !channels.has(channel) => {
                let mut list = channels.to_vec();
                list.push(channel.into());
                *channels = Channels::from_list(list);
                true
            }
            _ => false,
        }
    }

    /// An attached stream leaves `channel`; `false` when it is not one, or does not have it.
    pub(crate) fn leave_channel(&mut self, channel: &str) -> bool {
        match &mut self.phase {
            Phase::Streaming {
                channels,
                opening: None,
                ..
            } if channels.has(channel) => {
                let list = channels.iter().filter(|c| ***c != *channel).cloned();
                *channels = Channels::from_list(list.collect());
                true
            }
            _ => false,
        }
    }

    /// Whether this is a stream attached to `channel` (to any channel, for `None`).
    pub(crate) fn is_attached_to(&self, channel: Option<&str>) -> bool {
        match &self.phase {
            Phase::Streaming {
                channels,
                opening: None,
                ..
            } => channel.is_none_or(|wanted| channels.has(wanted)),
            _ => false,
        }
    }

    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self.phase, Phase::Lingering { .. })
    }

    /// Stops taking requests: answer what is queued (and what is parked), then close.
    pub(crate) fn close_after_flush(&mut self) {
        debug_assert!(!self.is_lingering(), "already past closing");
        // Leaving `Requests` frees the read buffer.
        self.phase = Phase::Closing;
        self.read_paused = false;
    }

    /// The server is shutting down: finish what is owed, then close. Returns a stream's
    /// channels, which it leaves now.
    pub(crate) fn shut_down(&mut self) -> Option<Channels> {
        debug_assert!(
            self.owes_output(),
            "a connection owing nothing closes at once"
        );
        let channels = match &mut self.phase {
            Phase::Streaming { channels, .. } => Some(std::mem::take(channels)),
            _ => None,
        };
        self.close_after_flush();
        channels
    }

    /// Everything owed is written: shut the write side and drain the client's input until it
    /// hangs up or `until`.
    fn linger(&mut self, until: Instant) {
        debug_assert!(
            matches!(self.phase, Phase::Closing) && !self.owes_output(),
            "only a closing connection that owes nothing lingers"
        );
        let _ = self.socket.shutdown(Shutdown::Write);
        self.phase = Phase::Lingering { until };
    }

    // ---- Parked responses -------------------------------------------------------------------

    /// Holds a response until the broker acknowledges the publishes its handler made.
    pub(crate) fn park(&mut self, parked: Parked) {
        debug_assert!(
            matches!(self.phase, Phase::Requests { .. }) && self.parked.is_none(),
            "one parked response, while taking requests"
        );
        self.parked = Some(Box::new(parked));
    }

    pub(crate) fn parked_mut(&mut self) -> Option<&mut Parked> {
        self.parked.as_deref_mut()
    }

    pub(crate) fn take_parked(&mut self) -> Option<Parked> {
        self.parked.take().map(|parked| *parked)
    }

    /// Whether this connection takes requests (it is not streaming, closing or lingering).
    pub(crate) fn takes_requests(&self) -> bool {
        matches!(self.phase, Phase::Requests { .. })
    }

    // ---- Timers -----------------------------------------------------------------------------

    /// What the connection's timers call for at `now`, under `config`'s timeouts.
    pub(crate) fn due(&self, now: Instant, config: &Config) -> Option<Due> {
        if let Some(parked) = &self.parked {
            let wait = match parked.job {
                Some(_) => config.offload_deadline(),
                None => PUBLISH_ACK_TIMEOUT,
            };
            let late = now.duration_since(parked.since) >= wait;
            return late.then_some(Due::Unacknowledged);
        }
        if self.has_output() && now.duration_since(self.last_progress) >= config.write_timeout() {
            return Some(Due::Close(DropReason::Stalled));
        }
        match &self.phase {
            Phase::Requests {
                arriving: true,
                since,
                ..
            } => (now.duration_since(*since) >= config.max_request_age())
                .then_some(Due::RequestTimeout(*since)),
            Phase::Requests { .. } if self.has_output() => None,
            Phase::Requests { since, .. }
                if now.duration_since(*since) >= config.keep_alive_timeout() =>
            {
                Some(Due::Close(DropReason::HangUp))
            }
            Phase::Requests { .. } => Some(Due::Idle),
            // A stream waiting for its replay has not even had its head yet.
            Phase::Streaming {
                opening: Some(_), ..
            } => None,
            Phase::Streaming {
                expires: Some(at), ..
            } if now >= *at => Some(Due::Expired),
            Phase::Streaming { .. } => (now.duration_since(self.last_queued)
                >= config.heartbeat_interval())
            .then_some(Due::Heartbeat),
            Phase::Closing => None,
            Phase::Lingering { until } => (now >= *until).then_some(Due::Close(DropReason::HangUp)),
        }
    }
}

pub(crate) fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

pub(crate) fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call and records what it got.
    struct Trickle {
        limit: usize,
        got: Vec<u8>,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.limit - n);
                self.got.extend_from_slice(&buf[..take]);
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queue_writes_in_order_across_partial_writes() {
        let mut queue = OutQueue::default();
        let frame: Frame = Arc::from(&b"data: x\n\n"[..]);
        queue.push_owned(b"HEAD\r\n".to_vec());
        queue.push_shared(frame.clone());
        queue.push_owned(Vec::new());
        queue.push_shared(frame);
        assert_eq!(queue.len(), 24);
        let mut out = Trickle {
            limit: 5,
            got: Vec::new(),
            calls: 0,
        };
        while !queue.is_empty() {
            queue.write_to(&mut out).unwrap();
        }
        assert_eq!(out.got, b"HEAD\r\ndata: x\n\ndata: x\n\n");
        assert_eq!(out.calls, 5);
    }

    #[test]
    fn queued_events_go_out_in_one_write() {
        let mut queue = OutQueue::default();
        for _ in 0..10 {
            queue.push_shared(Arc::from(&b"data: x\n\n"[..]));
        }
        let mut out = Trickle {
            limit: usize::MAX,
            got: Vec::new(),
            calls: 0,
        };
        queue.write_to(&mut out).unwrap();
        assert_eq!((out.calls, out.got.len(), queue.len()), (1, 90, 0));
    }

    /// Everything a queue would write, to the end.
    fn drain(queue: &mut OutQueue) -> Vec<u8> {
        let mut out = Trickle {
            limit: usize::MAX,
            got: Vec::new(),
            calls: 0,
        };
        while !queue.is_empty() {
            queue.write_to(&mut out).unwrap();
        }
        out.got
    }

    fn latest(channel: &str, data: &str) -> Arc<LatestFrame> {
        let frame: Frame = Arc::from(format!("data: {data}\n\n").as_bytes());
        Arc::new(LatestFrame::new(channel, frame))
    }

    #[test]
    fn gap_is_the_reset_event() {
        assert_eq!(GAP, crate::sse::reset_event());
    }

    #[test]
    fn a_drained_queue_keeps_no_allocation() {
        let mut queue = OutQueue::default();
        queue.push_owned(b"HEAD\n".to_vec());
        assert!(matches!(queue.chunks, Chunks::One(_)));
        for data in ["data: 1\n\n", "data: 2\n\n"] {
            queue.push_shared(Arc::from(data.as_bytes()));
        }
        assert_eq!(queue.chunks.len(), 3);
        assert_eq!(drain(&mut queue), b"HEAD\ndata: 1\n\ndata: 2\n\n");
        assert!(matches!(queue.chunks, Chunks::Empty));
        // Skipping every event of a queue of events empties it too, but for the gap signal.
        queue.push_shared(Arc::from(&b"data: 3\n\n"[..]));
        queue.push_shared(Arc::from(&b"data: 4\n\n"[..]));
        assert_eq!(queue.skip_events(false), (2, true));
        assert!(matches!(queue.chunks, Chunks::One(Chunk::Gap)));
    }

    #[test]
    fn one_channel_is_kept_without_a_list() {
        let one = Channels::from_names(&["lobby".to_owned()]);
        assert!(matches!(one, Channels::One(_)));
        let mut list = one.to_vec();
        list.push("kitchen".into());
        let two = Channels::from_list(list);
        assert!(matches!(two, Channels::Many(_)));
        assert_eq!(&*two, [Box::from("lobby"), Box::from("kitchen")]);
        assert!(two.has("kitchen") && !two.has("attic"));
        let left = Channels::from_list(two.iter().skip(1).cloned().collect());
        assert!(matches!(&left, Channels::One(name) if &**name == "kitchen"));
        assert!(Channels::from_names(&[]).is_empty());
        assert_eq!(
            std::mem::size_of::<Channels>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_idle_stream_stays_small() {
        // Every connection is boxed at this size: 184 bytes in release builds (a 192-byte
        // malloc chunk); debug builds add 16 for mio's selector id on the socket (and padding).
        let debug_extra = if cfg!(debug_assertions) { 16 } else { 0 };
        assert!(std::mem::size_of::<Conn>() <= 184 + debug_extra);
        // The request state lives in the phase, beside a stream's, not after it.
        assert_eq!(
            std::mem::size_of::<Phase>(),
            6 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_inline_chunk_costs_no_room() {
        // The inline chunk and the deque share the deque's four words.
        assert_eq!(
            std::mem::size_of::<Chunks>(),
            std::mem::size_of::<VecDeque<Chunk>>()
        );
    }

    #[test]
    fn chunks_stay_three_words() {
        // Every connection holds one inline, and each slot of a backed-up queue costs this.
        assert_eq!(
            std::mem::size_of::<Chunk>(),
            3 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn skipping_keeps_heads_and_the_started_event_and_signals_the_gap_once() {
        let mut queue = OutQueue::default();
        queue.push_owned(b"HEAD\n".to_vec());
        for data in ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"] {
            queue.push_shared(Arc::from(data.as_bytes()));
        }
        // The head and part of event 1 went out.
        queue.advance(5 + 6);
        assert_eq!(queue.skip_events(false), (2, true));
        queue.push_shared(Arc::from(&b"data: 4\n\n"[..]));
        // Skipping again, before the client read: one gap still waits, none is added.
        assert_eq!(queue.skip_events(false), (1, false));
        queue.push_shared(Arc::from(&b"data: 5\n\n"[..]));
        let got = String::from_utf8(drain(&mut queue)).unwrap();
        assert_eq!(
            got,
            "1\n\nevent: reset\ndata: events were missed\n\ndata: 5\n\n"
        );
        // Nothing to skip: no gap either.
        assert_eq!(queue.skip_events(false), (0, false));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_compressed_stream_skips_to_the_deflated_gap_signal() {
        let mut queue = OutQueue::default();
        for _ in 0..3 {
            queue.push_shared(Arc::from(crate::gzip::deflate(b"data: x\n\n")));
        }
        assert_eq!(queue.skip_events(true), (3, true));
        assert_eq!(queue.skip_events(true), (0, false));
        assert_eq!(drain(&mut queue), crate::gzip::reset_chunk());
    }

    #[test]
    fn latest_replaces_the_unsent_event_of_its_channel_only() {
        let mut queue = OutQueue::default();
        queue.push_latest(latest("a", "a1"));
        queue.push_latest(latest("b", "b1"));
        queue.push_latest(latest("a", "a2"));
        // `a1` started: it is finished, not replaced.
        queue.advance(6);
        assert_eq!(queue.drop_latest("a"), 1);
        queue.push_latest(latest("a", "a3"));
        assert_eq!(queue.drop_latest("b"), 1);
        queue.push_latest(latest("b", "b2"));
        assert_eq!(queue.drop_latest("c"), 0);
        let got = String::from_utf8(drain(&mut queue)).unwrap();
        assert_eq!(got, "a1\n\ndata: a3\n\ndata: b2\n\n");
    }
}
