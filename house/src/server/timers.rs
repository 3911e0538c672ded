//! Stage: the timers. A sweep, a few times a second, finds what is due on every connection
//! (request age, keep-alive idleness, stalled writes, lingering, unacknowledged publishes),
//! queues heartbeats, expires history and sessions, and hands the rest to the turn.

use std::time::Instant;

use mio::Token;

use super::Server;
use crate::conn::Due;
use crate::sse::comment;
use crate::stats::DropReason;

/// What a sweep found for the turn to act on.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// Connections whose parked response waited too long for the broker.
    pub(super) unacknowledged: Vec<Token>,
    /// Connections to close, and why.
    pub(super) expired: Vec<(Token, DropReason)>,
    /// Connections whose request, begun at the instant, did not arrive in time.
    pub(super) timed_out: Vec<(Token, Instant)>,
    /// Accepting was paused for want of file descriptors, and may resume.
    pub(super) resume_accepts: bool,
}

impl Server {
    /// Looks at every connection's timers at `now`; queues heartbeats to quiet streams.
    pub(super) fn sweep(&mut self, now: Instant) -> Sweep {
        let mut sweep = Sweep::default();
        let heartbeat = comment("heartbeat");
        let mut idle = 0;
        for (&token, conn) in self.conns.iter_mut() {
            match conn.due(now, &self.config) {
                None => {}
                Some(Due::Idle) => idle += 1,
                Some(Due::Heartbeat) => {
                    conn.queue(heartbeat.clone(), now);
                    self.stats.heartbeats += 1;
                    self.dirty.mark(token, conn);
                }
                Some(Due::Close(reason)) => sweep.expired.push((token, reason)),
                Some(Due::RequestTimeout(started)) => sweep.timed_out.push((token, started)),
                Some(Due::Unacknowledged) => sweep.unacknowledged.push(token),
            }
        }
        self.stats.connections_idle = idle;
        self.hub.expire(now);
        self.sessions.expire(now);
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
            sweep.resume_accepts = true;
        }
        sweep
    }

    /// Copies the stats to where [`Handle::stats`](super::Handle::stats) reads them.
    pub(super) fn publish_stats(&self) {
        let mut shared = self
            .shared_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.clone_from(&self.stats);
    }
}
