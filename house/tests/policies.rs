//! Slow-consumer policies over real sockets: a subscriber stops reading (a small receive
//! buffer, and a small send buffer and queue cap on the server, so it falls behind quickly)
//! while another subscriber of the same channel keeps up; then the stalled one reads again.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use house::{Config, Event, LagPolicy, Route, Subscribe};
use support::*;

/// Bytes of each event's data: with [`QUEUE_CAP`], 64 unread events make a slow consumer.
const EVENT_SIZE: usize = 1024;

/// The subscriber queue cap the tests run with.
const QUEUE_CAP: usize = 64 * 1024;

/// The lag threshold the tests run with (`DropOldest` skips past it).
const LAG: usize = 16 * 1024;

/// Events published per batch; the next batch waits until the reader that keeps up has them,
/// so only the stalled subscriber falls behind.
const BATCH: usize = 8;

fn config() -> Config {
    Config::default()
        .with_subscriber_queue_cap(QUEUE_CAP)
        .with_lag_threshold(LAG)
        .with_stream_send_buffer(4096)
}

/// `/disconnect`, `/drop_oldest` and `/latest` subscribe to `?channel=` (and `?also=`) under
/// that policy.
fn routes() -> Vec<Route> {
    let route = |path: &'static str, policy: LagPolicy| {
        Route::stream(path, move |ctx| {
            let mut subscribe = Subscribe::to(ctx.request.param("channel").unwrap_or("feed"));
            if let Some(also) = ctx.request.param("also") {
                subscribe = subscribe.and(also);
            }
            subscribe.with_lag_policy(policy)
        })
    };
    vec![
        route("/disconnect", LagPolicy::Disconnect),
        route("/drop_oldest", LagPolicy::DropOldest),
        route("/latest", LagPolicy::Latest),
        count_route(),
        house::metrics_route("/metrics"),
    ]
}

/// One event of a stream as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The `reset` gap signal.
    Reset,
    /// A published event: its channel tag and sequence number.
    Event(String, usize),
}

/// The data of event `seq` of `tag`: `tag seq`, padded to [`EVENT_SIZE`].
fn payload(tag: &str, seq: usize) -> String {
    let head = format!("{tag} {seq:06} ");
    format!("{head}{}", "x".repeat(EVENT_SIZE - head.len()))
}

/// The events in a stream's text (after its head), in order.
fn events(text: &str) -> Vec<Seen> {
    let body = text.split_once("\r\n\r\n").map_or(text, |(_, body)| body);
    body.split("\n\n")
        .filter_map(|block| {
            if block.lines().any(|l| l == "event: reset") {
                return Some(Seen::Reset);
            }
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            let mut words = data.split(' ');
            let tag = words.next()?.to_owned();
            Some(Seen::Event(tag, words.next()?.parse().ok()?))
        })
        .collect()
}

/// A subscriber that reads as fast as it can on its own thread, counting the events it has.
struct Reader {
    events: Arc<AtomicUsize>,
    /// What it read, and its stream, kept open until the test is done with it.
    thread: JoinHandle<(String, TcpStream)>,
}

impl Reader {
    /// Subscribes to `target` and reads until it has `total` events, or the server closes.
    fn start(server: &TestServer, target: &str, total: usize) -> Reader {
        let mut stream = subscribe(server, target);
        let events = Arc::new(AtomicUsize::new(0));
        let counter = events.clone();
        let thread = thread::spawn(move || {
            let (mut buffer, mut chunk) = (Vec::new(), vec![0; 64 * 1024]);
            let deadline = Instant::now() + 3 * PATIENCE;
            while counter.load(Ordering::Relaxed) < total && Instant::now() < deadline {
                let n = stream.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                counter.store(count_of(&buffer, "data: "), Ordering::Relaxed);
            }
            (String::from_utf8(buffer).unwrap(), stream)
        });
        Reader { events, thread }
    }

    fn has(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// What it read, once it has everything.
    fn finish(self) -> String {
        self.thread.join().unwrap().0
    }
}

/// Publishes `count` events from `first` on, alternating between `channels` (each channel has
/// its own sequence, `seq / channels.len()`), in batches the `reader` must take before the
/// next; stops early once `done` holds. Returns how many were published.
fn publish(
    server: &TestServer,
    channels: &[&str],
    first: usize,
    count: usize,
    reader: &Reader,
    mut done: impl FnMut() -> bool,
) -> usize {
    let mut seq = first;
    while seq < first + count {
        for _ in 0..BATCH.min(first + count - seq) {
            let channel = channels[seq % channels.len()];
            let event = Event::new(payload(channel, seq / channels.len()));
            server.handle.publish(channel, event).unwrap();
            seq += 1;
        }
        wait_for("the reader that keeps up", || reader.has() >= seq);
        if done() {
            break;
        }
    }
    seq
}

/// The stalled subscriber, which has read nothing yet: a receive buffer of 4 KiB.
fn stalled(server: &TestServer, target: &str) -> TcpStream {
    let stream = stalled_subscriber(server, target);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// `name{policy="policy"}`'s value in the server's metrics.
fn metric(server: &TestServer, name: &str, policy: &str) -> u64 {
    let scrape = server.get("/metrics");
    let line = format!("{name}{{policy=\"{policy}\"}} ");
    body_of(&scrape)
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in {scrape}"))
        .parse()
        .unwrap()
}

/// The sequence numbers of `tag`'s events, in order of arrival.
fn sequence(seen: &[Seen], tag: &str) -> Vec<usize> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(t, seq) if t == tag => Some(*seq),
            _ => None,
        })
        .collect()
}

#[track_caller]
fn assert_every_event(text: &str, tag: &str, count: usize) {
    assert_eq!(
        sequence(&events(text), tag),
        (0..count).collect::<Vec<_>>(),
        "the reader that kept up"
    );
}

#[test]
fn disconnect_closes_a_stalled_subscriber_and_nobody_else_waits() {
    let server = TestServer::start(config(), routes());
    let mut slow = stalled(&server, "/disconnect?channel=feed");
    let reader = Reader::start(&server, "/disconnect?channel=feed", 400);
    wait_for("2 subscribers", || {
        body_of(&server.get("/count?channel=feed")) == "2"
    });
    let published = publish(&server, &["feed"], 0, 400, &reader, || false);
    assert_eq!(published, 400);
    wait_for("the stalled subscriber to be dropped", || {
        body_of(&server.get("/count?channel=feed")) == "1"
    });
    assert_every_event(&reader.finish(), "feed", 400);

    // Reading again, it gets what the kernel held, then the end of the stream.
    let mut got = Vec::new();
    slow.read_to_end(&mut got).unwrap();
    let seen = events(&String::from_utf8_lossy(&got));
    let seqs = sequence(&seen, "feed");
    assert!(!seen.contains(&Seen::Reset), "{seen:?}");
    assert_eq!(seqs, (0..seqs.len()).collect::<Vec<_>>());
    assert!(seqs.len() < 400, "{} events", seqs.len());
    assert_eq!(
        metric(&server, "house_slow_consumers_total", "disconnect"),
        1
    );
    assert_eq!(
        metric(&server, "house_slow_consumers_total", "drop_oldest"),
        0
    );
    wait_for("the stats", || {
        server.handle.stats().lagged(LagPolicy::Disconnect) == 1
    });
}

#[test]
fn drop_oldest_skips_ahead_with_a_reset_and_keeps_the_subscriber() {
    let server = TestServer::start(config(), routes());
    let mut slow = stalled(&server, "/drop_oldest?channel=feed");
    let reader = Reader::start(&server, "/disconnect?channel=feed", 401);
    wait_for("2 subscribers", || {
        body_of(&server.get("/count?channel=feed")) == "2"
    });
    // Far past the queue cap: a `Disconnect` subscriber would have been dropped.
    let published = publish(&server, &["feed"], 0, 400, &reader, || false);
    assert!(metric(&server, "house_slow_consumers_total", "drop_oldest") >= 1);
    let skipped = metric(&server, "house_lagging_events_dropped_total", "drop_oldest");
    assert!(skipped > 100, "{skipped} events skipped");
    assert_eq!(body_of(&server.get("/count?channel=feed")), "2");

    // It reads again: what the kernel held, the gap signal, then the newest events in order.
    let mut buffer = Vec::new();
    let text = read_until_count(&mut slow, &mut buffer, &payload("feed", 399)[..11], 1);
    let seen = events(&text);
    let seqs = sequence(&seen, "feed");
    assert!(seen.contains(&Seen::Reset), "no reset in {seen:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&(published - 1)));
    // Every reset stands where events are missing, and nothing is missing without one.
    let mut last = None;
    let mut after_reset = false;
    for s in &seen {
        match s {
            Seen::Reset => after_reset = true,
            Seen::Event(_, seq) => {
                let next = last.map_or(0, |l: usize| l + 1);
                assert!(
                    *seq == next || (after_reset && *seq > next),
                    "{seq} after {last:?} without a reset: {seen:?}"
                );
                (last, after_reset) = (Some(*seq), false);
            }
        }
    }
    assert_eq!(seqs.len() as u64 + skipped, published as u64, "{seqs:?}");

    // It keeps working: a new event arrives as published.
    server
        .handle
        .publish("feed", Event::new(payload("feed", 400)))
        .unwrap();
    let text = read_until_count(&mut slow, &mut buffer, &payload("feed", 400)[..11], 1);
    assert_eq!(events(&text).last(), Some(&Seen::Event("feed".into(), 400)));
    assert_every_event(&reader.finish(), "feed", 401);
    assert_eq!(
        metric(&server, "house_slow_consumers_total", "disconnect"),
        0
    );
    wait_for("the stats", || {
        let stats = server.handle.stats();
        stats.events_skipped == skipped && stats.gap_signals >= 1
    });
}

#[test]
fn latest_gives_a_stalled_subscriber_the_newest_state_of_each_channel() {
    let server = TestServer::start(config(), routes());
    let mut slow = stalled(&server, "/latest?channel=eur&also=usd");
    let reader = Reader::start(&server, "/disconnect?channel=eur&also=usd", 800);
    wait_for("the subscribers", || {
        body_of(&server.get("/count?channel=usd")) == "2"
    });
    let published = publish(&server, &["eur", "usd"], 0, 800, &reader, || false);
    assert_eq!(published, 800);
    let replaced = metric(&server, "house_lagging_events_dropped_total", "latest");
    assert!(replaced > 600, "{replaced} events replaced");
    assert_eq!(
        metric(&server, "house_slow_consumers_total", "latest"),
        replaced
    );
    assert_eq!(body_of(&server.get("/count?channel=eur")), "2");

    // It reads again: what the kernel held, then the newest of each channel, not the backlog.
    let mut buffer = Vec::new();
    read_until_count(&mut slow, &mut buffer, "eur 000399 ", 1);
    let text = read_until_count(&mut slow, &mut buffer, "usd 000399 ", 1);
    let seen = events(&text);
    assert!(!seen.contains(&Seen::Reset));
    for tag in ["eur", "usd"] {
        let seqs = sequence(&seen, tag);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{tag}: {seqs:?}");
    }
    // What it got is what the kernel's buffers held, then one event per channel.
    assert!(seen.len() < 60, "{} events: the backlog", seen.len());
    assert_eq!(seen.len() as u64 + replaced, published as u64);
    assert_every_event(&reader.finish(), "eur", 400);
    assert_eq!(
        metric(&server, "house_slow_consumers_total", "disconnect"),
        0
    );
}
