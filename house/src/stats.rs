//! Counters and gauges the event loop keeps as plain integers on its own thread, a snapshot
//! other threads can read, and the Prometheus text exposition of both.

use std::fmt::Write as _;

use crate::{Response, Route, Status};

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
}

impl DropReason {
    /// Every reason, in the order of [`Stats::subscribers_dropped`].
    pub const ALL: [DropReason; 5] = [
        DropReason::HangUp,
        DropReason::WriteError,
        DropReason::SlowConsumer,
        DropReason::Stalled,
        DropReason::Shutdown,
    ];

    /// The reason's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::HangUp => "hang_up",
            DropReason::WriteError => "write_error",
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::Stalled => "stalled",
            DropReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
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
    /// Stream subscriptions (a stream on two channels counts twice).
    pub subscribers: u64,
    /// Sessions kept (expired ones count until the timer sweep removes them).
    pub sessions: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections refused with 503 at the connection cap.
    pub connections_refused: u64,
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
    pub subscribers_dropped: [u64; 5],
    /// Streams that resumed with `Last-Event-ID`.
    pub replays: u64,
    /// Streams that started with the `reset` gap signal.
    pub gap_signals: u64,
    /// Heartbeat comments written to idle streams.
    pub heartbeats: u64,
}

impl Stats {
    /// All zeros (what [`Default`] gives, usable in constants).
    pub const EMPTY: Stats = Stats {
        connections: 0,
        connections_streaming: 0,
        connections_idle: 0,
        channels: 0,
        subscribers: 0,
        sessions: 0,
        connections_accepted: 0,
        connections_refused: 0,
        accept_backoffs: 0,
        requests: [0; 5],
        events_published: 0,
        events_delivered: 0,
        bytes_written: 0,
        subscribers_dropped: [0; 5],
        replays: 0,
        gap_signals: 0,
        heartbeats: 0,
    };

    pub(crate) fn count_response(&mut self, status: Status) {
        let class = (status.code() / 100).clamp(1, 5) as usize - 1;
        self.requests[class] += 1;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.subscribers_dropped[reason.index()] += 1;
    }

    /// Streams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.subscribers_dropped[reason.index()]
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        let requests = self
            .connections
            .saturating_sub(self.connections_streaming + self.connections_idle);
        family(
            &mut out,
            "house_connections",
            "gauge",
            "Open connections by kind.",
        );
        for (kind, value) in [
            ("request", requests),
            ("idle", self.connections_idle),
            ("stream", self.connections_streaming),
        ] {
            let _ = writeln!(out, "house_connections{{kind=\"{kind}\"}} {value}");
        }
        single(
            &mut out,
            "house_channels",
            "gauge",
            "Channels with subscribers or history.",
            self.channels,
        );
        single(
            &mut out,
            "house_subscribers",
            "gauge",
            "Stream subscriptions.",
            self.subscribers,
        );
        single(
            &mut out,
            "house_sessions",
            "gauge",
            "Sessions kept.",
            self.sessions,
        );
        single(
            &mut out,
            "house_connections_accepted_total",
            "counter",
            "Connections accepted.",
            self.connections_accepted,
        );
        single(
            &mut out,
            "house_connections_refused_total",
            "counter",
            "Connections refused with 503 at the connection cap.",
            self.connections_refused,
        );
        single(
            &mut out,
            "house_accept_backoffs_total",
            "counter",
            "Pauses in accepting after running out of file descriptors.",
            self.accept_backoffs,
        );
        family(
            &mut out,
            "house_requests_total",
            "counter",
            "Responses by status class.",
        );
        for (i, value) in self.requests.iter().enumerate() {
            let _ = writeln!(out, "house_requests_total{{class=\"{}xx\"}} {value}", i + 1);
        }
        single(
            &mut out,
            "house_events_published_total",
            "counter",
            "Events published.",
            self.events_published,
        );
        single(
            &mut out,
            "house_events_delivered_total",
            "counter",
            "Events queued to subscribers, live or replayed.",
            self.events_delivered,
        );
        single(
            &mut out,
            "house_written_bytes_total",
            "counter",
            "Bytes written to clients.",
            self.bytes_written,
        );
        family(
            &mut out,
            "house_subscribers_dropped_total",
            "counter",
            "Stream connections dropped, by reason.",
        );
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "house_subscribers_dropped_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.dropped(reason)
            );
        }
        single(
            &mut out,
            "house_replays_total",
            "counter",
            "Streams resumed with Last-Event-ID.",
            self.replays,
        );
        single(
            &mut out,
            "house_gap_signals_total",
            "counter",
            "Streams that started with the reset signal.",
            self.gap_signals,
        );
        single(
            &mut out,
            "house_heartbeats_total",
            "counter",
            "Heartbeat comments written.",
            self.heartbeats,
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A route serving the server's [`Stats`] in the Prometheus text format at `path` (GET and
/// HEAD). Opt in by adding it to the routes; bind the server where only your scraper can reach
/// it if the numbers are private.
///
/// # Examples
/// ```
/// let routes = vec![house::metrics_route("/metrics")];
/// # let _ = routes;
/// ```
pub fn metrics_route(path: &'static str) -> Route {
    Route::closing(path, |ctx| {
        Response::new(Status::OK)
            .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .with_body(ctx.stats.to_prometheus())
    })
    .with_methods(crate::Methods::GET | crate::Methods::HEAD)
    .with_name("metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let mut stats = Stats {
            connections: 5,
            connections_streaming: 3,
            connections_idle: 1,
            ..Stats::default()
        };
        stats.count_response(Status::OK);
        stats.count_response(Status::NOT_FOUND);
        stats.count_drop(DropReason::SlowConsumer);
        let text = stats.to_prometheus();
        assert!(
            text.contains(
                "# TYPE house_connections gauge\nhouse_connections{kind=\"request\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "house_requests_total{class=\"2xx\"} 1\nhouse_requests_total{class=\"3xx\"} 0\n"
        ));
        assert!(text.contains("house_subscribers_dropped_total{reason=\"slow_consumer\"} 1\n"));
        assert!(text.ends_with("house_heartbeats_total 0\n"));
    }
}
