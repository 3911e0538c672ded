//! Counters and gauges the event loop keeps as plain integers on its own thread, and the
//! snapshot other threads read.

use crate::limit::LimitScope;
use crate::response::Status;

/// Why a stream subscriber left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The client closed or reset its connection.
    HangUp,
    /// A write to the client failed.
    WriteError,
    /// The client fell further behind than the subscriber queue cap.
    SlowConsumer,
    /// The client took none of its queued bytes for the write timeout.
    Stalled,
    /// The server shut down.
    Shutdown,
    /// The stream reached its maximum lifetime (see
    /// [`MAX_STREAM_LIFETIME`](crate::limits::MAX_STREAM_LIFETIME)) and was closed once what
    /// was queued for it was written.
    Lifetime,
}

impl DropReason {
    /// Every reason, in the order of [`Stats::subscribers_dropped`].
    pub const ALL: [DropReason; 6] = [
        DropReason::HangUp,
        DropReason::WriteError,
        DropReason::SlowConsumer,
        DropReason::Stalled,
        DropReason::Shutdown,
        DropReason::Lifetime,
    ];

    /// The reason's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::HangUp => "hang_up",
            DropReason::WriteError => "write_error",
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::Stalled => "stalled",
            DropReason::Shutdown => "shutdown",
            DropReason::Lifetime => "lifetime",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What happens to a stream whose client reads more slowly than its events arrive, so that
/// bytes pile up in its queue ([`Subscribe::with_lag_policy`](crate::Subscribe::with_lag_policy)).
///
/// Under every policy a stream whose queue would still pass
/// [`Config::subscriber_queue_cap`](crate::Config::subscriber_queue_cap) is disconnected, and
/// one whose client takes nothing for [`Config::write_timeout`](crate::Config::write_timeout)
/// is closed. Each outcome is counted: [`Stats::slow_consumers`](crate::Stats::slow_consumers)
/// by policy, and the events a stream never got, [`Stats::events_skipped`](crate::Stats::events_skipped)
/// and [`Stats::events_replaced`](crate::Stats::events_replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagPolicy {
    /// Disconnect it once its queue would pass the cap; its client reconnects and resumes with
    /// `Last-Event-ID` from the channel's history. For logs, where every event counts. The
    /// default.
    #[default]
    Disconnect,
    /// Past [`Config::lag_threshold`](crate::Config::lag_threshold) queued bytes, skip ahead:
    /// every queued event not yet started is dropped and the gap signal `event: reset` (see
    /// [`RESET_EVENT`](crate::RESET_EVENT)) takes their place, once, so its client knows it
    /// missed events; newer events follow. An event partly written is finished first, so no
    /// frame is cut. For feeds where fresh events matter more than old ones.
    DropOldest,
    /// Keep only the newest event of each channel: an event replaces the one of the same
    /// channel still waiting unsent in the stream's queue (and goes to the back of it). A
    /// client that keeps up gets every event the loop writes before the next one arrives; one
    /// that falls behind gets the newest. For state channels (prices, positions), where only
    /// the current value matters.
    Latest,
}

impl LagPolicy {
    /// Every policy, in the order of [`Stats::slow_consumers`](crate::Stats::slow_consumers).
    pub const ALL: [LagPolicy; 3] = [
        LagPolicy::Disconnect,
        LagPolicy::DropOldest,
        LagPolicy::Latest,
    ];

    /// The policy's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            LagPolicy::Disconnect => "disconnect",
            LagPolicy::DropOldest => "drop_oldest",
            LagPolicy::Latest => "latest",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Which budget of all channels' history made an event go (see
/// [`HISTORY_BUDGET_BYTES`](crate::limits::HISTORY_BUDGET_BYTES) and
/// [`HISTORY_BUDGET_CHANNELS`](crate::limits::HISTORY_BUDGET_CHANNELS)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryBudget {
    /// The histories together held more bytes than the budget.
    Bytes,
    /// More channels held history than the budget.
    Channels,
}

impl HistoryBudget {
    /// Every budget, in the order of [`Stats::history_evictions`].
    pub const ALL: [HistoryBudget; 2] = [HistoryBudget::Bytes, HistoryBudget::Channels];

    /// The budget's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            HistoryBudget::Bytes => "bytes",
            HistoryBudget::Channels => "channels",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A snapshot of the server's counters and gauges.
///
/// Counters only go up. Gauges are current, except `connections_idle`, which the loop's timer
/// sweep recounts (at most a quarter of the shortest timeout, and 250 ms, old).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections of every kind.
    pub connections: u64,
    /// Open SSE stream connections.
    pub connections_streaming: u64,
    /// Keep-alive connections waiting, idle, for their next request.
    pub connections_idle: u64,
    /// Channels with subscribers or history.
    pub channels: u64,
    /// What the histories of all channels hold, as counted against
    /// [`HISTORY_BUDGET_BYTES`](crate::limits::HISTORY_BUDGET_BYTES) (0 with the `redis`
    /// feature, where history lives in Redis).
    pub history_bytes: u64,
    /// Stream subscriptions (a stream on two channels counts twice).
    pub subscribers: u64,
    /// Sessions kept (expired ones count until the timer sweep removes them).
    pub sessions: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections refused at the connection cap (503, or for event streams a `retry:`).
    pub connections_refused: u64,
    /// Event streams refused at the connection cap with a `retry:` that brings their
    /// `EventSource` back later (they count in `connections_refused` too).
    pub streams_deferred: u64,
    /// Times accepting paused because the process ran out of file descriptors.
    pub accept_backoffs: u64,
    /// Responses by status class: index 0 counts 1xx, 1 counts 2xx, … 4 counts 5xx. A stream
    /// counts once, as 2xx, when it starts.
    pub requests: [u64; 5],
    /// Events published.
    pub events_published: u64,
    /// Events queued to a subscriber (live or replayed): one event to 100 subscribers is 100.
    pub events_delivered: u64,
    /// Bytes written to clients.
    pub bytes_written: u64,
    /// Stream connections dropped, by [`DropReason`] in the order of [`DropReason::ALL`].
    pub subscribers_dropped: [u64; 6],
    /// Times a stream fell behind and its [`LagPolicy`] acted, by policy in the order of
    /// [`LagPolicy::ALL`]: streams disconnected under `Disconnect` (which count in
    /// `subscribers_dropped` as slow consumers too), skips ahead under `DropOldest` (each queues
    /// one `reset` gap signal, unless one is still waiting), events replaced under `Latest`.
    pub slow_consumers: [u64; 3],
    /// Queued events streams under [`LagPolicy::DropOldest`] skipped: never sent to them.
    pub events_skipped: u64,
    /// Queued events streams under [`LagPolicy::Latest`] had replaced by a newer one of the
    /// same channel: never sent to them.
    pub events_replaced: u64,
    /// Streams that resumed with `Last-Event-ID`.
    pub replays: u64,
    /// `reset` gap signals queued: to streams that resumed past their history, and to streams
    /// under [`LagPolicy::DropOldest`] that skipped ahead.
    pub gap_signals: u64,
    /// Heartbeat comments written to idle streams.
    pub heartbeats: u64,
    /// Published events compressed for gzip streams (see
    /// [`Config::with_compression`](crate::Config::with_compression)): once per event and
    /// channel, however many compressing subscribers it has.
    pub events_compressed: u64,
    /// Events evicted from history because all channels' history passed a budget, by
    /// [`HistoryBudget`] in the order of [`HistoryBudget::ALL`]. (Events a channel's own
    /// limits or its time to live evict are not counted.)
    pub history_evictions: [u64; 2],
    /// Refusals by rate limits (429), by [`LimitScope`] in the order of [`LimitScope::ALL`]:
    /// requests refused by their session's budget, by the budget of requests without a session,
    /// by their address's budget, and sessions refused at the budget of new sessions.
    pub rate_limits_refused: [u64; 4],
    /// Offloaded jobs (see [`Deferred`](crate::Deferred)) whose result was the response.
    pub offload_done: u64,
    /// Offloaded jobs refused because the pool's queue was full (503).
    pub offload_refused: u64,
    /// Requests whose offloaded job outlived the deadline (504).
    pub offload_timed_out: u64,
    /// Offloaded jobs that panicked (500).
    pub offload_panicked: u64,
}

impl Stats {
    /// All zeros (what [`Default`] gives, usable in constants).
    pub const EMPTY: Stats = Stats {
        connections: 0,
        connections_streaming: 0,
        connections_idle: 0,
        channels: 0,
        history_bytes: 0,
        subscribers: 0,
        sessions: 0,
        connections_accepted: 0,
        connections_refused: 0,
        streams_deferred: 0,
        accept_backoffs: 0,
        requests: [0; 5],
        events_published: 0,
        events_delivered: 0,
        bytes_written: 0,
        subscribers_dropped: [0; 6],
        slow_consumers: [0; 3],
        events_skipped: 0,
        events_replaced: 0,
        replays: 0,
        gap_signals: 0,
        heartbeats: 0,
        events_compressed: 0,
        history_evictions: [0; 2],
        rate_limits_refused: [0; 4],
        offload_done: 0,
        offload_refused: 0,
        offload_timed_out: 0,
        offload_panicked: 0,
    };

    pub(crate) fn count_response(&mut self, status: Status) {
        let class = (status.code() / 100).clamp(1, 5) as usize - 1;
        self.requests[class] += 1;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.subscribers_dropped[reason.index()] += 1;
    }

    /// Refusals by rate limits in `scope`.
    pub fn rate_limited(&self, scope: LimitScope) -> u64 {
        self.rate_limits_refused[scope.index()]
    }

    /// Times streams under `policy` fell behind and the policy acted (see
    /// [`slow_consumers`](Self::slow_consumers)).
    pub fn lagged(&self, policy: LagPolicy) -> u64 {
        self.slow_consumers[policy.index()]
    }

    /// Events evicted from history because all channels' history passed `budget`.
    pub fn history_evicted(&self, budget: HistoryBudget) -> u64 {
        self.history_evictions[budget.index()]
    }

    /// Streams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.subscribers_dropped[reason.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_count_by_class_and_drops_by_reason() {
        let mut stats = Stats::default();
        stats.count_response(Status::OK);
        stats.count_response(Status::from_code(599));
        stats.count_drop(DropReason::Stalled);
        assert_eq!(stats.requests, [0, 1, 0, 0, 1]);
        assert_eq!(stats.dropped(DropReason::Stalled), 1);
        assert_eq!(stats.dropped(DropReason::HangUp), 0);
    }
}
