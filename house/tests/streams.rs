//! SSE streams over real sockets: fan-out, pruning, replay, heartbeats, slow consumers.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use house::{Config, Event, Route, Subscribe};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        Route::stream("/both", |_| Subscribe::to("a").and("b")),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub.publish(&room, Event::new(text)).map(|_| "sent")
        }),
        Route::closing("/run", |ctx| ctx.hub.run_id().to_owned()),
        Route::closing("/channels", |ctx| ctx.hub.channel_count().to_string()),
        count_route(),
    ]
}

fn count(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

#[test]
fn stream_head_and_retry_hint() {
    // No spread: the hint exactly (tests/lifecycle.rs checks the spread).
    let server = TestServer::start(Config::default().with_retry_spread(0.0), routes());
    let mut stream = server.connect();
    stream
        .write_all(b"GET /source?room=x HTTP/1.1\r\n\r\n")
        .unwrap();
    let head = read_until(&mut stream, "retry: 2000\n\n");
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\n\
X-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n"
    );
}

#[test]
fn thousand_subscribers_get_ten_events_in_order() {
    let server = TestServer::start(Config::default(), routes());
    let mut streams: Vec<TcpStream> = (0..1000)
        .map(|_| subscribe(&server, "/source?room=big"))
        .collect();
    wait_for("1000 subscribers", || count(&server, "big") == 1000);
    for i in 0..10 {
        server
            .handle
            .publish("big", Event::new(format!("event {i}")))
            .unwrap();
    }
    for stream in &mut streams {
        let mut buffer = Vec::new();
        let text = read_until_count(stream, &mut buffer, "data: event", 10);
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(
            order,
            (0..10).map(|i| format!("event {i}")).collect::<Vec<_>>()
        );
    }
}

#[test]
fn hang_up_prunes_without_a_publish_and_frees_fds() {
    let server = TestServer::start(Config::default(), routes());
    wait_for("the server to settle", || count(&server, "x") == 0);
    let baseline = open_fds();
    let streams: Vec<TcpStream> = (0..20)
        .map(|_| subscribe(&server, "/source?room=x"))
        .collect();
    wait_for("20 subscribers", || count(&server, "x") == 20);
    // 20 client and 20 server sockets (the probe connections may still be closing).
    assert!(open_fds() >= baseline + 35);
    drop(streams);
    // Other tests of this binary open sockets meanwhile, so the count is the process's:
    // wait (bounded) for it to come back, not for a fixed second.
    wait_for("the fds to return to the baseline", || {
        open_fds() <= baseline
    });
    assert_eq!(count(&server, "x"), 0);
    assert_eq!(body_of(&server.get("/channels")), "0");
}

#[test]
fn reset_subscriber_is_pruned_and_others_keep_receiving() {
    let server = TestServer::start(Config::default(), routes());
    let mut healthy = subscribe(&server, "/source?room=r");
    let doomed = subscribe(&server, "/source?room=r");
    wait_for("2 subscribers", || count(&server, "r") == 2);
    // SO_LINGER 0: closing sends RST, as a crashed client's kernel would.
    let doomed = socket2::Socket::from(doomed);
    doomed.set_linger(Some(Duration::ZERO)).unwrap();
    drop(doomed);
    server
        .handle
        .publish("r", Event::new("after the reset"))
        .unwrap();
    wait_for("the reset subscriber to be pruned", || {
        count(&server, "r") == 1
    });
    assert!(read_until(&mut healthy, "after the reset").contains("data: after the reset"));
}

#[test]
fn several_channels_on_one_stream() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = subscribe(&server, "/both");
    wait_for("subscriptions", || {
        count(&server, "a") == 1 && count(&server, "b") == 1
    });
    server.get("/send?room=a&text=to+a");
    server.get("/send?room=b&text=to+b");
    server.get("/send?room=c&text=to+c");
    let text = read_until(&mut stream, "to b");
    assert!(
        text.contains("data: to a\n\n") && !text.contains("to c"),
        "{text}"
    );
}

#[test]
fn rooms_are_isolated() {
    let server = TestServer::start(Config::default(), routes());
    let mut a = subscribe(&server, "/source?room=a");
    let mut b = subscribe(&server, "/source?room=b");
    wait_for("subscriptions", || {
        count(&server, "a") == 1 && count(&server, "b") == 1
    });
    server.get("/send?room=a&text=for+a");
    server.get("/send?room=b&text=for+b");
    assert!(!read_until(&mut a, "\n\n").contains("for b"));
    assert!(!read_until(&mut b, "\n\n").contains("for a"));
}

#[test]
fn last_event_id_replays_then_continues_live_without_gap_or_duplicate() {
    let server = TestServer::start(Config::default(), routes());
    let run = body_of(&server.get("/run")).to_owned();
    for i in 1..=5 {
        server.get(&format!("/send?room=h&text=m{i}"));
    }
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET /source?room=h HTTP/1.1\r\nLast-Event-ID: {run}-2\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: m", 3);
    wait_for("the subscription", || count(&server, "h") == 1);
    server.get("/send?room=h&text=m6");
    let text = read_until_count(&mut stream, &mut buffer, "data: m", 4);
    assert!(!text.contains("event: reset"), "{text}");
    let got = sse_events(&text);
    let expected: Vec<(String, String)> = (3..=6)
        .map(|i| (format!("{run}-{i}"), format!("m{i}")))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn last_event_id_query_parameter_works_for_a_first_connection() {
    let server = TestServer::start(Config::default(), routes());
    let run = body_of(&server.get("/run")).to_owned();
    server.get("/send?room=q&text=one");
    server.get("/send?room=q&text=two");
    let mut stream = server.connect();
    stream
        .write_all(format!("GET /source?room=q&last_event_id={run}-1 HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let text = read_until(&mut stream, "data: two");
    assert!(!text.contains("data: one"), "{text}");
}

#[test]
fn resuming_from_evicted_or_foreign_id_starts_with_reset() {
    let config = Config::default().with_history_events(3);
    let server = TestServer::start(config, routes());
    let run = body_of(&server.get("/run")).to_owned();
    for i in 1..=6 {
        server.get(&format!("/send?room=old&text=m{i}"));
    }
    for last in [format!("{run}-1"), "previousrun-6".to_owned()] {
        let mut stream = server.connect();
        stream
            .write_all(
                format!("GET /source?room=old HTTP/1.1\r\nLast-Event-ID: {last}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let text = read_until(&mut stream, "data: m6");
        let after_head = body_of(&text);
        let (retry, after_retry) = after_head.split_once("\n\n").unwrap();
        assert!(retry.starts_with("retry: "), "{after_head}");
        assert!(
            after_retry.starts_with("event: reset\ndata: events were missed\n\n"),
            "{after_head}"
        );
        assert_eq!(
            sse_events(after_head).len(),
            3,
            "the history that is left follows: {after_head}"
        );
    }
}

#[test]
fn idle_streams_get_heartbeats() {
    let config = Config::default().with_heartbeat_interval(Duration::from_millis(100));
    let server = TestServer::start(config, routes());
    let mut stream = subscribe(&server, "/source?room=quiet");
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, ": heartbeat\n\n", 2);
}

#[test]
fn slow_consumer_is_dropped_and_nobody_else_waits() {
    let server = TestServer::start(Config::default(), routes());
    // A subscriber with a tiny receive buffer that never reads.
    let stalled = stalled_subscriber(&server, "/source?room=slow");
    let mut normal = subscribe(&server, "/source?room=slow");
    wait_for("2 subscribers", || count(&server, "slow") == 2);
    let rss_before = rss_bytes();

    let reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let text = read_until_count(&mut normal, &mut buffer, "data: ", 4000);
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| d[..6].to_owned())
            .collect::<Vec<_>>()
    });
    let padding = "x".repeat(240);
    for i in 0..4000 {
        server
            .handle
            .publish("slow", Event::new(format!("{i:06}{padding}")))
            .unwrap();
    }
    let got = reader.join().unwrap();
    assert_eq!(
        got,
        (0..4000).map(|i| format!("{i:06}")).collect::<Vec<_>>()
    );
    wait_for("the stalled subscriber to be dropped", || {
        count(&server, "slow") == 1
    });
    let growth = rss_bytes().saturating_sub(rss_before);
    assert!(growth < 32 << 20, "memory grew by {growth} bytes");
    drop(stalled);
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn idle_channel_history_expires_and_the_channel_is_dropped() {
    let config = Config::default().with_history_ttl(Duration::from_millis(200));
    let server = TestServer::start(config, routes());
    for room in ["one", "two", "three"] {
        server.get(&format!("/send?room={room}&text=kept+for+a+while"));
    }
    assert_eq!(body_of(&server.get("/channels")), "3");
    wait_for("idle history to expire", || {
        body_of(&server.get("/channels")) == "0"
    });
    // A resume from before the expiry hears that events are gone.
    let run = body_of(&server.get("/run")).to_owned();
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET /source?room=one HTTP/1.1\r\nLast-Event-ID: {run}-0\r\n\r\n").as_bytes(),
        )
        .unwrap();
    assert!(read_until(&mut stream, "event: reset").contains("event: reset"));
}
