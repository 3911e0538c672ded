//! Per-connection state: the phase, the bytes read so far, and the write queue.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

use crate::hub::Frame;
use crate::{Method, Response, Version};

/// Most slices handed to one `writev`: enough to coalesce a burst of queued events into one
/// syscall, few enough to build on the stack.
const MAX_SLICES: usize = 64;

/// Bytes of a file body read into the queue at a time.
pub(crate) const FILE_CHUNK: usize = 64 * 1024;

/// What a connection is doing.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Receiving requests and answering them in order (one, or several with keep-alive).
    Requests,
    /// Subscribed to channels; input is read only to notice a hang-up. With a broker, a new
    /// stream is not `attached` to its channels until its replay arrives.
    Streaming {
        channels: Box<[String]>,
        attached: bool,
    },
    /// Writing what is queued, then shutting down the write side.
    Closing,
    /// Write side shut; reading and discarding until the peer closes or `until`, so unread input
    /// does not make the kernel reset the connection before the client reads our last response.
    Lingering { until: Instant },
}

/// One queued piece of output.
#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Frame),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(frame) => frame,
        }
    }
}

/// Bytes waiting to be written, in order. Events are queued as shared frames, so fanning an
/// event out to many subscribers never copies its payload.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    offset: usize,
    len: usize,
}

impl OutQueue {
    pub(crate) fn push_owned(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Owned(bytes));
    }

    pub(crate) fn push_shared(&mut self, frame: Frame) {
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Bytes still to write.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One vectored write of as much of the queue as fits in [`MAX_SLICES`] slices.
    pub(crate) fn write_to(&mut self, writer: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(MAX_SLICES).enumerate() {
            let bytes = chunk.bytes();
            slices[i] = IoSlice::new(if i == 0 { &bytes[self.offset..] } else { bytes });
            count += 1;
        }
        let written = writer.write_vectored(&slices[..count])?;
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

/// A response held back until the broker acknowledges the events its handler published, so
/// that "sent" is never said of an event Redis did not take.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) response: Response,
    pub(crate) method: Option<Method>,
    pub(crate) version: Version,
    pub(crate) path: String,
    pub(crate) keep_alive: bool,
    pub(crate) started: Instant,
    pub(crate) since: Instant,
    /// Acknowledgements still to come.
    pub(crate) awaiting: usize,
    /// Whether any publish failed.
    pub(crate) failed: bool,
}

/// The rest of a file response, read into the queue as the client drains it.
#[derive(Debug)]
pub(crate) struct FileBody {
    pub(crate) file: File,
    pub(crate) remaining: u64,
}

impl FileBody {
    /// The next chunk, or `None` at the end. A file that shrank under us ends the body early;
    /// the client sees a short response and the connection closes.
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
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

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) phase: Phase,
    /// Bytes of requests not yet answered.
    pub(crate) input: Vec<u8>,
    /// When the request now arriving began: its first byte, or the accept for a new connection.
    pub(crate) request_started: Option<Instant>,
    /// When the connection last went idle between keep-alive requests.
    pub(crate) idle_since: Instant,
    pub(crate) out: OutQueue,
    pub(crate) file: Option<FileBody>,
    pub(crate) parked: Option<Box<Parked>>,
    /// When bytes were last queued (heartbeats go to streams quiet since long enough).
    pub(crate) last_queued: Instant,
    /// When the client last took bytes from a non-empty queue.
    pub(crate) last_progress: Instant,
    /// Reading stopped before `WouldBlock` (buffer full or output backed up): with edge-triggered
    /// readiness no new event will come, so the loop must read again itself.
    pub(crate) read_paused: bool,
    /// Queued on the loop's list of connections to flush this turn.
    pub(crate) dirty: bool,
    /// The interest currently registered with the poll.
    pub(crate) registered: Interest,
}

impl Conn {
    pub(crate) fn new(socket: TcpStream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            socket,
            peer,
            phase: Phase::Requests,
            input: Vec::new(),
            request_started: Some(now),
            idle_since: now,
            out: OutQueue::default(),
            file: None,
            parked: None,
            last_queued: now,
            last_progress: now,
            read_paused: false,
            dirty: false,
            registered: Interest::READABLE,
        }
    }

    /// The readiness this connection needs: always readable (to notice a hang-up), writable
    /// only while bytes are pending.
    pub(crate) fn interest(&self) -> Interest {
        if self.has_output() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() || self.file.is_some()
    }

    pub(crate) fn queue(&mut self, bytes: Vec<u8>, now: Instant) {
        self.note_queued(now);
        self.out.push_owned(bytes);
    }

    pub(crate) fn queue_frame(&mut self, frame: Frame, now: Instant) {
        self.note_queued(now);
        self.out.push_shared(frame);
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
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(written),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Stops taking requests: answer what is queued, then close.
    pub(crate) fn close_after_flush(&mut self) {
        debug_assert!(
            !matches!(self.phase, Phase::Lingering { .. }),
            "already past closing"
        );
        self.phase = Phase::Closing;
        self.input = Vec::new();
        self.request_started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
}
