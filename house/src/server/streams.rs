//! Stage: streams. Starts a stream (its head, the replay of what a resuming client missed),
//! attaches it to its channels, and fans each published event out to every subscriber.
//!
//! One rule keeps replays and live events from overlapping or leaving a gap: whatever was
//! published before a stream subscribes is delivered to the subscribers already there first
//! (`attach` and `signal_gap` begin by fanning out).

use std::sync::Arc;
use std::time::Instant;

use mio::Token;

use super::Server;
use crate::conn::{Channels, Conn, Exchange, LatestFrame, Opening};
use crate::gzip::{self, accepts_gzip, GZIP_HEADER};
use crate::hub::Change;
use crate::hub::Replay;
use crate::printable::Printable;
use crate::request::{Method, Request};
use crate::response::Status;
use crate::route::Subscribe;
use crate::sse::{reset_event, retry_hint, stream_head, stream_id_event, stream_response, Frame};
use crate::stats::{DropReason, LagPolicy, Stats};

impl Server {
    /// Answers `200 text/event-stream`, replays missed events, and subscribes the connection.
    pub(super) fn start_stream(
        &mut self,
        token: Token,
        request: &Request,
        mut subscribe: Subscribe,
        exchange: Exchange<'_>,
    ) {
        let now = self.now;
        let head_only = request.method() == Method::Head;
        let compression = self.config.compression();
        // A handler that set its own `Content-Encoding` keeps it, and its stream stays plain.
        let gzip = compression
            && accepts_gzip(request.header("accept-encoding"))
            && !subscribe
                .headers()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-encoding"));
        let mut head = if subscribe.headers().next().is_none()
            && self.config.cors().is_none()
            && !head_only
            && !compression
        {
            // Room for this stream's own lines too (its `retry:`, its id), so appending
            // them does not reallocate.
            let mut head = Vec::with_capacity(self.default_stream_head.len() + 96);
            head.extend_from_slice(&self.default_stream_head);
            head
        } else {
            // The head is this stream's own (its handler's headers), built once per stream.
            let mut response = stream_response();
            if compression {
                // Caches keep the compressed and the plain answer apart.
                response = response.with_header("Vary", "Accept-Encoding");
            }
            if gzip {
                response = response.with_header("Content-Encoding", "gzip");
            }
            let response = response.with_checked_headers(subscribe.take_headers());
            // A stream's head gets its CORS headers here, as every other answer does in `respond`.
            let response = match self.config.cors() {
                Some(cors) => cors.apply(response, request.header("origin")),
                None => response,
            };
            stream_head(&response, None)
        };
        // Where the body starts: a compressed stream's is deflated from there.
        let body_at = head.len();
        // Each stream is told its own `retry:`, so clients dropped together come back spread.
        if let Some((low, high)) = self.retry_range.filter(|_| !head_only) {
            retry_hint(&mut head, self.jitter.between(low, high));
        }
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        self.stats.count_response(Status::OK);
        log::info!(
            "{} {} 200 stream {:?}",
            exchange.method.map_or("-", Method::as_str),
            Printable(&exchange.path),
            exchange.started.elapsed()
        );
        if head_only {
            conn.queue(head, now);
            conn.close_after_flush();
            self.dirty.mark(token, conn);
            return;
        }
        // The head goes out when the stream attaches (at once here, or when a broker's replay
        // arrives), so a client that has it is subscribed. The stream's id is its first event.
        if subscribe.is_joinable() {
            match self.hub.open_stream(token) {
                Ok(id) => head.extend_from_slice(&stream_id_event(&id)),
                // Without an id the stream works, but cannot be joined.
                Err(err) => log::warn!("no id for a stream: {err}"),
            }
        }
        if gzip {
            let body = head.split_off(body_at);
            head.extend_from_slice(&GZIP_HEADER);
            head.extend_from_slice(&gzip::deflate(&body));
        }
        conn.start_streaming(
            Channels::from_names(subscribe.channels()),
            head,
            subscribe.take_initial(),
        );
        if gzip {
            conn.set_compressed();
        }
        conn.set_lag_policy(subscribe.lag_policy());
        if let Some(lifetime) = self.config.max_stream_lifetime() {
            // Up to a tenth more, so streams opened together do not all close together.
            let lifetime = self
                .jitter
                .between(lifetime, lifetime.saturating_add(lifetime / 10));
            // One too long for the clock never ends.
            if let Some(at) = now.checked_add(lifetime) {
                conn.expire_at(at);
            }
        }
        let send_buffer = self.config.stream_send_buffer();
        if send_buffer > 0 {
            if let Err(err) = conn.limit_send_buffer(send_buffer) {
                log::debug!("{}: send buffer not limited: {err}", conn.peer());
            }
        }
        self.stats.connections_streaming += 1;
        let last_event_id = request
            .header("last-event-id")
            .or_else(|| request.param("last_event_id"))
            .map(str::trim);
        if last_event_id.is_some() {
            self.stats.replays += 1;
        }
        if self.hub.is_remote() {
            // The broker answers with the replay; the stream attaches then.
            self.hub
                .request_replay(token, subscribe.channels(), last_event_id);
            return;
        }
        let replay = match last_event_id {
            Some(id) => self
                .hub
                .replay_matching(subscribe.channels(), subscribe.patterns(), id),
            None => Replay::default(),
        };
        self.attach(token, replay.reset, replay.frames);
        // Patterns never go through a broker (`answer` refuses them there), so a local stream
        // is attached by now; nothing is fanned out between its channels and its patterns.
        if self.conns.contains_key(&token) {
            for pattern in subscribe.patterns() {
                self.hub.subscribe_pattern(token, pattern);
            }
        }
    }

    /// Sends a new stream its head and what it missed, then subscribes it to its channels.
    pub(super) fn attach(&mut self, token: Token, reset: bool, frames: Vec<Frame>) {
        // Published before this stream subscribes: for the streams already there (the new one
        // has it in its replay, or started after it).
        self.fan_out();
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(opening) = conn.attach() else {
            return;
        };
        let Opening { head, initial } = *opening;
        conn.queue(head, now);
        self.stats.gap_signals += u64::from(reset);
        // This stream's own first events: after what it missed, before anything live.
        self.stats.events_delivered += (frames.len() + initial.len()) as u64;
        queue_missed(conn, reset, frames.into_iter().chain(initial), now);
        for channel in conn.channels() {
            self.hub.subscribe(token, channel);
        }
        self.dirty.mark_opened(token, conn);
    }

    /// Applies the joins and leaves handlers made, in order. What was published before a join
    /// goes to the streams already there first; the joining stream then gets its replay (what
    /// it missed after its `Last-Event-ID`, or what was published after the join call), then
    /// live events. With a broker, the replay comes from it later (see
    /// [`attach_joined`](Self::attach_joined)); the stream has the channel meanwhile, so a
    /// leave or its closing cancels the join.
    pub(super) fn apply_changes(&mut self) {
        let changes = self.hub.take_changes();
        if changes.is_empty() {
            return;
        }
        self.fan_out();
        for change in changes {
            match change {
                Change::Join {
                    token,
                    channel,
                    last_event_id,
                    after_seq,
                    remote,
                } => {
                    let joined = self
                        .conns
                        .get_mut(&token)
                        .is_some_and(|conn| conn.join_channel(&channel));
                    self.hub.apply_join(token, &channel, remote, joined);
                    if !joined {
                        continue;
                    }
                    if last_event_id.is_some() {
                        self.stats.replays += 1;
                    }
                    if remote.is_some() {
                        continue;
                    }
                    let replay = match &last_event_id {
                        // A pattern of the stream's brings it the channel's events already.
                        _ if self.hub.pattern_covers(token, &channel) => Replay::default(),
                        Some(id) => self.hub.replay(std::slice::from_ref(&channel), id),
                        None => self.hub.replay_since(&channel, after_seq),
                    };
                    self.attach_joined(token, channel, replay.reset, replay.frames);
                }
                Change::Leave { token, channel } => self.leave(token, &channel),
                Change::JoinPattern {
                    token,
                    pattern,
                    last_event_id,
                    after_seq,
                } => {
                    let Some(conn) = self.conns.get_mut(&token) else {
                        continue;
                    };
                    if !conn.is_attached_to(None) || self.hub.has_pattern(token, &pattern) {
                        continue;
                    }
                    let now = self.now;
                    if last_event_id.is_some() {
                        self.stats.replays += 1;
                    }
                    let replay = self.hub.replay_join_pattern(
                        token,
                        conn.channels(),
                        &pattern,
                        last_event_id.as_deref(),
                        after_seq,
                    );
                    self.stats.gap_signals += u64::from(replay.reset);
                    self.stats.events_delivered += replay.frames.len() as u64;
                    queue_missed(conn, replay.reset, replay.frames, now);
                    self.hub.subscribe_pattern(token, &pattern);
                    self.dirty.mark(token, conn);
                }
                Change::LeavePattern { token, pattern } => {
                    self.hub.unsubscribe_pattern(token, &pattern);
                }
            }
        }
    }

    /// Sends a stream that joined `channel` what it missed, then subscribes it to `channel`.
    pub(super) fn attach_joined(
        &mut self,
        token: Token,
        channel: String,
        reset: bool,
        frames: Vec<Frame>,
    ) {
        // Published before the stream subscribes: for the streams already there.
        self.fan_out();
        let now = self.now;
        // Gone, or no longer a stream (the server is shutting down): nothing to send.
        let Some(conn) = self
            .conns
            .get_mut(&token)
            .filter(|conn| conn.is_attached_to(Some(&channel)))
        else {
            return;
        };
        self.stats.gap_signals += u64::from(reset);
        self.stats.events_delivered += frames.len() as u64;
        queue_missed(conn, reset, frames, now);
        self.hub.subscribe(token, &channel);
        self.dirty.mark(token, conn);
    }

    /// Stream `token` leaves `channel` (if it has it).
    pub(super) fn leave(&mut self, token: Token, channel: &str) {
        if self
            .conns
            .get_mut(&token)
            .is_some_and(|conn| conn.leave_channel(channel))
        {
            self.hub.leave_channel(token, channel);
        }
    }

    /// Tells attached streams (of `channel`, or all) that they missed events.
    pub(super) fn signal_gap(&mut self, channel: Option<&str>) {
        // What was delivered before the gap was noticed goes first.
        self.fan_out();
        let now = self.now;
        for (&token, conn) in self.conns.iter_mut() {
            if !conn.is_attached_to(channel) {
                continue;
            }
            self.stats.gap_signals += 1;
            queue_missed(conn, true, [], now);
            self.dirty.mark(token, conn);
        }
    }

    /// Queues every newly published event to its channel's subscribers. A subscriber whose
    /// queue would pass the cap is a slow consumer: it is disconnected, nobody else waits.
    /// Streams with another [`LagPolicy`] skip or replace queued events first.
    pub(super) fn fan_out(&mut self) {
        if !self.hub.has_pending() {
            return;
        }
        let now = self.now;
        let cap = self.config.subscriber_queue_cap();
        let lag = self.config.lag_threshold();
        let mut dropped = Vec::new();
        let (conns, stats, dirty) = (&mut self.conns, &mut self.stats, &mut self.dirty);
        for (channel, plain) in self.hub.take_pending() {
            // Built for the first subscriber under `Latest`, shared by the others; and so,
            // for compressed streams, the event's chunk and its `Latest` form.
            let mut plain_latest: Option<Arc<LatestFrame>> = None;
            let mut deflated: Option<Frame> = None;
            let mut deflated_latest: Option<Arc<LatestFrame>> = None;
            self.hub.each_subscriber(&channel, |token| {
                let Some(conn) = conns.get_mut(&token) else {
                    return;
                };
                let (frame, latest) = if conn.is_compressed() {
                    let chunk = deflated.get_or_insert_with(|| {
                        stats.events_compressed += 1;
                        Frame::from(gzip::deflate(&plain))
                    });
                    (&*chunk, &mut deflated_latest)
                } else {
                    (&plain, &mut plain_latest)
                };
                // The default policy's path: one byte compared more than before policies.
                let queued = match conn.lag_policy() {
                    LagPolicy::Disconnect => conn.queue_event(frame.clone(), cap, now),
                    policy => {
                        let latest = (policy == LagPolicy::Latest).then(|| {
                            Arc::clone(latest.get_or_insert_with(|| {
                                Arc::new(LatestFrame::new(&channel, frame.clone()))
                            }))
                        });
                        queue_lagging(conn, stats, frame, latest, lag, cap, now)
                    }
                };
                match queued {
                    Ok(written) => {
                        stats.bytes_written += written as u64;
                        stats.events_delivered += 1;
                        dirty.mark(token, conn);
                    }
                    Err(reason) => dropped.push((token, reason, conn.lag_policy())),
                }
            });
        }
        for (token, reason, policy) in dropped {
            // A connection fails once per event still to fan out; it is closed (and counted) once.
            if reason == DropReason::SlowConsumer && self.conns.contains_key(&token) {
                self.stats.slow_consumers[policy.index()] += 1;
            }
            self.close(token, reason);
        }
    }
}

/// Queues what a stream missed: the `reset` signal if `reset`, then `frames` (replayed or
/// initial events). A compressed stream gets them all as one chunk, compressed for it alone.
fn queue_missed(
    conn: &mut Conn,
    reset: bool,
    frames: impl IntoIterator<Item = Frame>,
    now: Instant,
) {
    if conn.is_compressed() {
        let mut missed = if reset { reset_event() } else { Vec::new() };
        for frame in frames {
            missed.extend_from_slice(&frame);
        }
        if !missed.is_empty() {
            conn.queue(gzip::deflate(&missed), now);
        }
        return;
    }
    if reset {
        conn.queue(reset_event(), now);
    }
    for frame in frames {
        conn.queue_frame(frame, now);
    }
}

/// Queues an event to a stream under `DropOldest` or, with `latest`, under `Latest`, and
/// counts what its policy did; returns the bytes written on the way.
fn queue_lagging(
    conn: &mut Conn,
    stats: &mut Stats,
    frame: &Frame,
    latest: Option<Arc<LatestFrame>>,
    lag: usize,
    cap: usize,
    now: Instant,
) -> Result<usize, DropReason> {
    let lagged = match latest {
        Some(latest) => {
            let lagged = conn.queue_latest(latest, cap, now)?;
            // Each replacement is the policy acting.
            stats.slow_consumers[LagPolicy::Latest.index()] += lagged.dropped as u64;
            stats.events_replaced += lagged.dropped as u64;
            lagged
        }
        None => {
            let lagged = conn.queue_skipping(frame.clone(), lag, cap, now)?;
            // One skip ahead drops every queued event at once.
            stats.slow_consumers[LagPolicy::DropOldest.index()] += u64::from(lagged.dropped > 0);
            stats.events_skipped += lagged.dropped as u64;
            lagged
        }
    };
    stats.gap_signals += u64::from(lagged.gap);
    Ok(lagged.written)
}
