//! The Prometheus text exposition of the server's [`Stats`], and the route that serves it.

use std::fmt::Write as _;

use crate::limit::LimitScope;
use crate::request::Methods;
use crate::response::{Response, Status};
use crate::route::Route;
use crate::stats::{DropReason, HistoryBudget, LagPolicy, Stats};

impl Stats {
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
            "house_history_bytes",
            "gauge",
            "What the histories of all channels hold, as counted against the history budget.",
            self.history_bytes,
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
            "Connections refused at the connection cap (503, or a retry: for event streams).",
            self.connections_refused,
        );
        single(
            &mut out,
            "house_streams_deferred_total",
            "counter",
            "Event streams refused at the connection cap with a retry: that brings them back.",
            self.streams_deferred,
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
        family(
            &mut out,
            "house_slow_consumers_total",
            "counter",
            "Times a stream fell behind and its lag policy acted: disconnected it, skipped its queued events (with a reset signal), or replaced its queued event of a channel by a newer one.",
        );
        for policy in LagPolicy::ALL {
            let _ = writeln!(
                out,
                "house_slow_consumers_total{{policy=\"{}\"}} {}",
                policy.label(),
                self.lagged(policy)
            );
        }
        family(
            &mut out,
            "house_lagging_events_dropped_total",
            "counter",
            "Queued events streams never got because they fell behind: skipped (drop_oldest) or replaced by a newer one (latest).",
        );
        for (policy, value) in [
            (LagPolicy::DropOldest, self.events_skipped),
            (LagPolicy::Latest, self.events_replaced),
        ] {
            let _ = writeln!(
                out,
                "house_lagging_events_dropped_total{{policy=\"{}\"}} {value}",
                policy.label()
            );
        }
        family(
            &mut out,
            "house_rate_limited_total",
            "counter",
            "Refusals by rate limits (429), by the budget that refused: a session's, the shared one of requests without a session from one address, an address's, or new sessions per address.",
        );
        for scope in LimitScope::ALL {
            let _ = writeln!(
                out,
                "house_rate_limited_total{{limit=\"{}\"}} {}",
                scope.label(),
                self.rate_limited(scope)
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
            "Reset signals queued: to streams resumed past their history, and to lagging streams that skipped events.",
            self.gap_signals,
        );
        family(
            &mut out,
            "house_history_evictions_total",
            "counter",
            "Events evicted from history because all channels' history passed a budget: its bytes, or its channels.",
        );
        for budget in HistoryBudget::ALL {
            let _ = writeln!(
                out,
                "house_history_evictions_total{{budget=\"{}\"}} {}",
                budget.label(),
                self.history_evicted(budget)
            );
        }
        single(
            &mut out,
            "house_heartbeats_total",
            "counter",
            "Heartbeat comments written.",
            self.heartbeats,
        );
        single(
            &mut out,
            "house_events_compressed_total",
            "counter",
            "Published events compressed for gzip streams: once per event and channel, however many subscribers take it.",
            self.events_compressed,
        );
        family(
            &mut out,
            "house_offload_jobs_total",
            "counter",
            "Offloaded jobs by outcome: done (its result answered), refused (queue full, 503), timed_out (past the deadline, 504), panicked (500).",
        );
        for (outcome, value) in [
            ("done", self.offload_done),
            ("refused", self.offload_refused),
            ("timed_out", self.offload_timed_out),
            ("panicked", self.offload_panicked),
        ] {
            let _ = writeln!(
                out,
                "house_offload_jobs_total{{outcome=\"{outcome}\"}} {value}"
            );
        }
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
    .with_methods(Methods::GET | Methods::HEAD)
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
        stats.slow_consumers[LagPolicy::Latest.index()] = 2;
        stats.events_skipped = 7;
        stats.history_bytes = 640;
        stats.history_evictions[HistoryBudget::Channels.index()] = 4;
        stats.rate_limits_refused[LimitScope::Address.index()] = 3;
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
        assert!(text.contains(
            "house_slow_consumers_total{policy=\"disconnect\"} 0\nhouse_slow_consumers_total{policy=\"drop_oldest\"} 0\nhouse_slow_consumers_total{policy=\"latest\"} 2\n"
        ));
        assert!(text.contains(
            "house_lagging_events_dropped_total{policy=\"drop_oldest\"} 7\nhouse_lagging_events_dropped_total{policy=\"latest\"} 0\n"
        ));
        assert!(text.contains(
            "house_rate_limited_total{limit=\"session\"} 0\nhouse_rate_limited_total{limit=\"no_session\"} 0\nhouse_rate_limited_total{limit=\"address\"} 3\nhouse_rate_limited_total{limit=\"new_session\"} 0\n"
        ));
        assert!(text.contains("\nhouse_history_bytes 640\n"));
        assert!(text.contains(
            "house_history_evictions_total{budget=\"bytes\"} 0\nhouse_history_evictions_total{budget=\"channels\"} 4\n"
        ));
        assert!(text.contains("\nhouse_heartbeats_total 0\n"));
        assert!(text.ends_with("house_offload_jobs_total{outcome=\"panicked\"} 0\n"));
    }
}
