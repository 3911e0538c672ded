//! Counters and gauges move exactly as expected over real sockets, and `/metrics` is valid
//! Prometheus text.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use house::{Config, DropReason, Event, Route, Stats, Subscribe};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("a"))
        }),
        house::metrics_route("/metrics"),
    ]
}

/// Waits until the snapshot satisfies `ready`, then checks every field against `expected`
/// (bytes written only grows, so it is checked separately).
fn expect(server: &TestServer, expected: &Stats, ready: impl Fn(&Stats) -> bool) -> Stats {
    wait_for("the stats to settle", || ready(&server.handle.stats()));
    let mut got = server.handle.stats();
    assert!(got.bytes_written > 0);
    got.bytes_written = expected.bytes_written;
    assert_eq!(&got, expected);
    got
}

#[test]
fn counters_move_exactly() {
    let config = Config::default()
        .with_max_request_age(Duration::from_millis(300))
        .with_subscriber_queue_cap(64 * 1024);
    let server = TestServer::start(config, routes());
    let mut want = Stats::default();

    let mut streams: Vec<TcpStream> = (0..10)
        .map(|_| subscribe(&server, "/source?room=a"))
        .collect();
    want.connections = 10;
    want.connections_accepted = 10;
    want.connections_streaming = 10;
    want.subscribers = 10;
    want.channels = 1;
    want.requests[1] = 10;
    expect(&server, &want, |s| s.subscribers == 10);

    for i in 0..3 {
        server
            .handle
            .publish("a", Event::new(format!("e{i}")))
            .unwrap();
    }
    for stream in &mut streams {
        let mut buffer = Vec::new();
        read_until_count(stream, &mut buffer, "data: e", 3);
    }
    want.events_published = 3;
    want.events_delivered = 30;
    // The history budget's count: three frames `id: RUN-N\ndata: eN\n\n` (a 10-letter run)
    // with 64 bytes each for their slots, and 512 and twice the name for the channel.
    let frame = |data: usize| "id: 0123456789-1\n".len() + "data: \n\n".len() + data;
    want.history_bytes = (3 * (frame(2) + 64) + 512 + 2 * "a".len()) as u64;
    expect(&server, &want, |s| s.events_delivered == 30);

    streams.truncate(6);
    want.connections = 6;
    want.connections_streaming = 6;
    want.subscribers = 6;
    want.subscribers_dropped[0] = 4;
    expect(&server, &want, |s| {
        s.dropped(DropReason::HangUp) == 4 && s.connections == 6
    });

    assert_eq!(
        status_of(&server.exchange(b"POST /source HTTP/1.1\r\nContent-Length: 67108864\r\n\r\n")),
        413
    );
    want.connections_accepted = 11;
    want.requests[3] = 1;
    expect(&server, &want, |s| s.requests[3] == 1 && s.connections == 6);

    let mut slow_request = server.connect();
    slow_request
        .write_all(b"GET /source?room=a HTTP/1.1\r\n")
        .unwrap();
    assert_eq!(status_of(&read_to_close(&mut slow_request)), 408);
    want.connections_accepted = 12;
    want.requests[3] = 2;
    expect(&server, &want, |s| s.requests[3] == 2 && s.connections == 6);

    // A subscriber that never reads, sent more than its queue cap.
    let stalled = stalled_subscriber(&server, "/source?room=slow");
    want.connections_accepted = 13;
    want.requests[1] = 11;
    want.connections = 7;
    want.connections_streaming = 7;
    want.subscribers = 7;
    want.channels = 2;
    expect(&server, &want, |s| s.subscribers == 7);
    server
        .handle
        .publish("slow", Event::new("x".repeat(70 * 1024)))
        .unwrap();
    want.events_published = 4;
    want.history_bytes += (frame(70 * 1024) + 64 + 512 + 2 * "slow".len()) as u64;
    want.connections = 6;
    want.connections_streaming = 6;
    want.subscribers = 6;
    want.subscribers_dropped[2] = 1;
    // Under `LagPolicy::Disconnect`, the first in `LagPolicy::ALL`.
    want.slow_consumers[0] = 1;
    expect(&server, &want, |s| s.dropped(DropReason::SlowConsumer) == 1);
    assert_eq!(want.dropped(DropReason::SlowConsumer), 1);
    drop(stalled);
}

#[test]
fn metrics_endpoint_is_valid_prometheus_text() {
    let server = TestServer::start(Config::default(), routes());
    let _streams: Vec<TcpStream> = (0..3)
        .map(|_| subscribe(&server, "/source?room=m"))
        .collect();
    server.handle.publish("m", Event::new("hi")).unwrap();
    wait_for("deliveries", || server.handle.stats().events_delivered == 3);
    let response = server.get("/metrics");
    assert_eq!(status_of(&response), 200);
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{response}"
    );
    let lines = body_of(&response).lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                _ => panic!("{name} is not a counter or gauge"),
            })
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
    };
    assert_eq!(value("house_subscribers", None), 3.0);
    assert_eq!(value("house_connections", Some(("kind", "stream"))), 3.0);
    assert_eq!(value("house_events_published_total", None), 1.0);
    assert_eq!(value("house_events_delivered_total", None), 3.0);
    assert_eq!(value("house_requests_total", Some(("class", "2xx"))), 3.0);
    assert_eq!(
        value(
            "house_subscribers_dropped_total",
            Some(("reason", "slow_consumer"))
        ),
        0.0
    );
    assert!(value("house_written_bytes_total", None) > 0.0);
    assert_eq!(
        value("house_rate_limited_total", Some(("limit", "address"))),
        0.0
    );
    // Every family has HELP and TYPE.
    let families: std::collections::HashSet<_> =
        scrape.samples.iter().map(|s| s.metric.clone()).collect();
    for family in &families {
        assert!(scrape.docs.contains_key(family), "no HELP for {family}");
    }
    assert_eq!(families.len(), 23, "{families:?}");
}
