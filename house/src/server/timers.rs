//! Stage: the timers. A sweep, a few times a second, finds what is due on every connection
//! (request age, keep-alive idleness, stalled writes, lingering, unacknowledged publishes),
//! queues heartbeats, expires history and sessions, and hands the rest to the turn. Also the
//! waves in which shutdown closes streams.

use std::time::{Duration, Instant};

use mio::Token;

use super::Server;
use crate::conn::Due;
use crate::gzip;
use crate::sse::comment;
use crate::stats::DropReason;

/// What a sweep found for the turn to act on.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// Connections whose parked response waited too long for the broker.
    pub(super) unacknowledged: Vec<Token>,
    /// Connections to close, and why.
    pub(super) expired: Vec<(Token, DropReason)>,
    /// Streams past their lifetime, to end once what is queued is written.
    pub(super) retired: Vec<Token>,
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
        // Compressed streams' heartbeat, deflated for the first of them only.
        let mut deflated: Option<Vec<u8>> = None;
        let mut idle = 0;
        for (&token, conn) in self.conns.iter_mut() {
            match conn.due(now, &self.config) {
                None => {}
                Some(Due::Idle) => idle += 1,
                Some(Due::Heartbeat) => {
                    let bytes = if conn.is_compressed() {
                        deflated.get_or_insert_with(|| gzip::deflate(&heartbeat))
                    } else {
                        &heartbeat
                    };
                    conn.queue(bytes.clone(), now);
                    self.stats.heartbeats += 1;
                    self.dirty.mark(token, conn);
                }
                Some(Due::Close(reason)) => sweep.expired.push((token, reason)),
                Some(Due::Expired) => sweep.retired.push(token),
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

/// The least time between two waves of shutdown closes: with many streams, a wave closes
/// those due meanwhile, rather than the loop waking for each one.
pub(super) const WAVE_GAP: Duration = Duration::from_millis(5);

/// The streams shutdown closes in waves over its window (see
/// [`SHUTDOWN_WINDOW`](crate::limits::SHUTDOWN_WINDOW)): of `n` streams, the `k`-th (from 0)
/// is due `k / n` of the way through, so closes spread evenly and the first goes at once.
#[derive(Debug)]
pub(super) struct Waves {
    streams: Vec<Token>,
    /// How many of `streams` are closed (the first ones).
    closed: usize,
    start: Instant,
    window: Duration,
}

impl Waves {
    pub(super) fn new(streams: Vec<Token>, start: Instant, window: Duration) -> Waves {
        Waves {
            streams,
            closed: 0,
            start,
            window,
        }
    }

    /// The streams due by `now` and not yet handed out.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Token> {
        let n = self.streams.len();
        let elapsed = now.saturating_duration_since(self.start);
        let due = if elapsed >= self.window {
            n
        } else {
            // The `k`-th is due once `k <= n × elapsed / window`.
            let share = n as u128 * elapsed.as_nanos() / self.window.as_nanos();
            usize::try_from(share).map_or(n, |k| (k + 1).min(n))
        };
        let from = self.closed;
        self.closed = due.max(from);
        self.streams[from..self.closed].to_vec()
    }

    /// When the next stream is due; `None` once all are handed out.
    pub(super) fn next_at(&self) -> Option<Instant> {
        let n = self.streams.len();
        if self.closed >= n {
            return None;
        }
        let offset = self.window.as_nanos() * self.closed as u128 / n as u128;
        let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
        // Past what the clock can count: not in this run's lifetime.
        self.start.checked_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_spread_evenly_and_end_with_the_window() {
        let start = Instant::now();
        let window = Duration::from_millis(1000);
        let mut waves = Waves::new((0..10).map(Token).collect(), start, window);
        assert_eq!(waves.due(start), [Token(0)]);
        assert_eq!(waves.next_at(), Some(start + Duration::from_millis(100)));
        assert!(waves.due(start + Duration::from_millis(99)).is_empty());
        assert_eq!(
            waves.due(start + Duration::from_millis(350)),
            [Token(1), Token(2), Token(3)]
        );
        assert_eq!(waves.due(start + window).len(), 6);
        assert_eq!(waves.next_at(), None);
        assert!(waves.due(start + window * 2).is_empty());
    }

    #[test]
    fn a_zero_window_closes_everything_at_once() {
        let start = Instant::now();
        let mut waves = Waves::new((0..3).map(Token).collect(), start, Duration::ZERO);
        assert_eq!(waves.due(start).len(), 3);
        assert_eq!(waves.next_at(), None);
    }
}
