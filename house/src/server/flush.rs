//! Stage: writing. The turn's list of connections with output, the write itself and what a
//! connection needs once it is done, its poll registration, and closing.

use std::collections::VecDeque;
use std::time::Duration;

use mio::Token;

use super::Server;
use crate::conn::{AfterFlush, Conn};
use crate::stats::DropReason;

/// How long a closed connection keeps draining the client's unread input (see
/// [`AfterFlush::Drain`]).
const LINGER: Duration = Duration::from_secs(1);

/// Connections with output queued, to write at the end of the loop's turn: responses (and the
/// heads of streams just opened) apart from streams, so the turn can write responses first.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    requests: Vec<Token>,
    streams: VecDeque<Token>,
}

impl Dirty {
    /// Puts `conn` on the list, once.
    pub(super) fn mark(&mut self, token: Token, conn: &mut Conn) {
        if conn.mark_dirty() {
            if conn.is_streaming() {
                self.streams.push_back(token);
            } else {
                self.requests.push(token);
            }
        }
    }

    /// Puts a stream that just attached on the list with the responses: its head is the
    /// response to its request, written this turn whatever the streams' budget. Behind the
    /// budget, a burst of new streams kept thousands of heads queued (and their clients
    /// waiting for them), memory that stayed in the heap once freed.
    pub(super) fn mark_opened(&mut self, token: Token, conn: &mut Conn) {
        if conn.mark_dirty() {
            self.requests.push(token);
        }
    }

    /// Every connection with a response queued.
    pub(super) fn take_requests(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.requests)
    }

    /// The stream marked longest ago.
    pub(super) fn next_stream(&mut self) -> Option<Token> {
        self.streams.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.streams.is_empty()
    }
}

impl Server {
    /// Writes queued bytes until the queue is empty or the socket is full, and says what the
    /// connection needs next (nothing, when the write failed and it is closed).
    pub(super) fn flush(&mut self, token: Token) -> AfterFlush {
        let Some(conn) = self.conns.get_mut(&token) else {
            return AfterFlush::Wait;
        };
        match conn.write_pending(self.now) {
            Ok(written) => self.stats.bytes_written += written as u64,
            // The peer is gone: a failed write prunes the connection.
            Err(err) => {
                log::debug!("{}: write failed: {err}", conn.peer());
                self.close(token, DropReason::WriteError);
                return AfterFlush::Wait;
            }
        }
        conn.flushed(self.now + LINGER)
    }

    /// Registers the readiness the connection now needs, if that changed.
    pub(super) fn update_interest(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.update_interest(self.poll.registry(), token).is_err() {
            self.close(token, DropReason::WriteError);
        }
    }

    /// Closes a connection: out of the poll, out of every channel, socket dropped. `reason`
    /// is counted when the connection was a stream.
    pub(super) fn close(&mut self, token: Token, reason: DropReason) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        conn.deregister(self.poll.registry());
        if conn.is_streaming() {
            self.unsubscribe(token, conn.channels(), reason);
            log::debug!("{}: stream closed ({})", conn.peer(), reason.label());
        }
    }

    /// A stream leaves its channels, for `reason`.
    pub(super) fn unsubscribe(&mut self, token: Token, channels: &[Box<str>], reason: DropReason) {
        for channel in channels {
            self.hub.unsubscribe(token, channel);
            self.hub.drop_interest(channel);
        }
        // Its id dies with it.
        self.hub.close_stream(token);
        self.stats.connections_streaming -= 1;
        self.stats.count_drop(reason);
    }
}
