//! Channel patterns over real sockets: live events of every covered channel, each event once
//! with overlapping subscriptions, replay and `reset` through a pattern, the 400 of a
//! malformed pattern, names that stay literal, and cleanup when a pattern stream closes.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use house::{Config, Event, IntoResponse, Pattern, Response, Route, Subscribe};
use support::*;

/// `/pattern?p=` streams a pattern (a malformed one answers the handler's 400);
/// `/both?channel=&p=` a channel and a pattern; `/source?room=` one channel, literally;
/// `/send?room=&text=` publishes and answers the id; `/hub` reports subscriptions, patterns
/// and channels; `/metrics` the server's gauges; `/joinable?room=` opens a joinable stream,
/// which `/join?stream=&room=`, `/join-pattern?stream=&p=` and `/leave-pattern?stream=&p=`
/// change.
fn routes() -> Vec<Route> {
    vec![
        Route::stream("/pattern", |ctx| {
            Subscribe::to_pattern(ctx.request.param("p").unwrap_or(""))
        }),
        Route::stream("/both", |ctx| {
            Subscribe::to(ctx.request.param("channel").unwrap_or(""))
                .and_pattern(ctx.request.param("p").unwrap_or(""))
        }),
        Route::stream("/two-patterns", |_| {
            Subscribe::to_pattern("*")?.and_pattern("orders/*")
        }),
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub
                .publish(&room, Event::new(text))
                .map(|p| p.id().unwrap_or("").to_owned())
        }),
        Route::closing("/hub", |ctx| {
            format!(
                "{} {} {}",
                ctx.hub.subscriptions(),
                ctx.hub.patterns().count(),
                ctx.hub.channel_count()
            )
        }),
        house::metrics_route("/metrics"),
        count_route(),
        Route::stream("/joinable", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby")).joinable()
        }),
        Route::closing("/join", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let room = ctx.request.param("room").unwrap_or("");
            ctx.hub.join(stream, room).map(|()| "joined")
        }),
        Route::closing("/join-pattern", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let pattern = Pattern::new(ctx.request.param("p").unwrap_or(""))
                .map_err(IntoResponse::into_response)?;
            ctx.hub
                .join_pattern(stream, &pattern)
                .map_err(IntoResponse::into_response)?;
            Ok::<_, Response>("joined")
        }),
        Route::closing("/leave-pattern", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let pattern = Pattern::new(ctx.request.param("p").unwrap_or(""))
                .map_err(IntoResponse::into_response)?;
            ctx.hub
                .leave_pattern(stream, &pattern)
                .map_err(IntoResponse::into_response)?;
            Ok::<_, Response>("left")
        }),
    ]
}

fn server(config: Config) -> TestServer {
    TestServer::start(config, routes())
}

fn send(server: &TestServer, room: &str, text: &str) -> String {
    let response = server.get(&format!("/send?room={room}&text={text}"));
    assert_eq!(status_of(&response), 200, "{response}");
    body_of(&response).to_owned()
}

fn count(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

fn hub(server: &TestServer) -> String {
    body_of(&server.get("/hub")).to_owned()
}

/// The data of every event in `text` (ids or not), in order.
fn data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Opens a stream on `target` resuming after `last` (a `Last-Event-ID` header).
fn resume(server: &TestServer, target: &str, last: &str) -> TcpStream {
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {last}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    stream
}

#[test]
fn a_pattern_stream_gets_every_covered_channel_live() {
    let server = server(Config::default());
    let mut stream = subscribe(&server, "/pattern?p=orders/*");
    wait_for("the pattern stream to attach", || {
        count(&server, "orders/1") == 1
    });
    assert_eq!(count(&server, "orders"), 0);
    for (room, text) in [
        ("orders/1", "one"),
        ("invoices/1", "other"),
        ("orders", "parent"),
        ("ordersheet/1", "lookalike"),
        ("orders/2/items", "nested"),
        ("orders/3", "last"),
    ] {
        send(&server, room, text);
    }
    let text = read_until(&mut stream, "data: last");
    assert_eq!(data(&text), ["one", "nested", "last"], "{text}");
}

#[test]
fn overlapping_subscriptions_get_each_event_once() {
    let server = server(Config::default());
    let mut both = subscribe(&server, "/both?channel=orders/1&p=orders/*");
    let mut two = subscribe(&server, "/two-patterns");
    let mut exact = subscribe(&server, "/source?room=orders/1");
    wait_for("three streams on orders/1", || {
        count(&server, "orders/1") == 3
    });
    for text in ["a", "b", "c"] {
        send(&server, "orders/1", text);
    }
    send(&server, "orders/2", "d");
    send(&server, "elsewhere", "e");
    send(&server, "orders/1", "end");
    let text = read_until(&mut both, "data: end");
    assert_eq!(data(&text), ["a", "b", "c", "d", "end"], "{text}");
    let text = read_until(&mut two, "data: end");
    assert_eq!(data(&text), ["a", "b", "c", "d", "e", "end"], "{text}");
    let text = read_until(&mut exact, "data: end");
    assert_eq!(data(&text), ["a", "b", "c", "end"], "{text}");
}

#[test]
fn a_channel_name_is_never_a_pattern() {
    let server = server(Config::default());
    // `orders%2F*` is the channel `orders/*`, literally.
    let mut literal = subscribe(&server, "/source?room=orders%2F*");
    wait_for("the literal stream", || count(&server, "orders/*") == 1);
    send(&server, "orders/1", "covered");
    send(&server, "orders/*", "literal");
    let text = read_until(&mut literal, "data: literal");
    assert_eq!(data(&text), ["literal"], "{text}");
    assert_eq!(count(&server, "orders/1"), 0);
}

#[test]
fn resuming_through_a_pattern_replays_every_covered_channel_in_order() {
    // An exact `retry:` hint, so the head of a resumed stream can be compared whole.
    let server = server(
        Config::default()
            .with_history_events(2)
            .with_retry_spread(0.0),
    );
    let first = send(&server, "orders/1", "a");
    send(&server, "orders/2", "b");
    send(&server, "invoices/1", "not+covered");
    send(&server, "orders/1/items", "c");
    send(&server, "orders/1", "d");
    let mut stream = resume(&server, "/pattern?p=orders/*", &first);
    wait_for("the resumed stream", || count(&server, "orders/9") == 1);
    send(&server, "orders/9", "live");
    let text = read_until(&mut stream, "data: live");
    assert!(!text.contains("event: reset"), "{text}");
    assert_eq!(data(&text), ["b", "c", "d", "live"], "{text}");

    // Two more on orders/1 evict `d`'s predecessor and `d`: a resume after `a` lost them.
    send(&server, "orders/1", "e");
    send(&server, "orders/1", "f");
    let mut stream = resume(&server, "/pattern?p=orders/*", &first);
    let text = read_until(&mut stream, "data: f");
    let body = body_of(&text);
    assert!(
        body.starts_with("retry: 2000\n\nevent: reset\ndata: events were missed\n\n"),
        "{body}"
    );
    // What is left of every covered channel, in publish order.
    assert_eq!(
        data(body),
        ["events were missed", "b", "c", "live", "e", "f"],
        "{body}"
    );
}

#[test]
fn a_covered_channel_dropped_by_expiry_still_signals_its_gap() {
    let server = server(Config::default().with_history_ttl(Duration::from_millis(200)));
    let first = send(&server, "orders/1", "a");
    send(&server, "orders/2", "gone+with+its+channel");
    wait_for("the idle channels to be dropped", || {
        hub(&server) == "0 0 0"
    });
    let mut stream = resume(&server, "/pattern?p=orders/*", &first);
    let text = read_until(&mut stream, "event: reset");
    assert!(body_of(&text).contains("event: reset"), "{text}");
    drop(stream);

    // A resume from after the dropped channel's last event has nothing to hear about.
    let last = send(&server, "unrelated", "x");
    let mut stream = resume(&server, "/pattern?p=orders/*", &last);
    wait_for("the resumed stream", || count(&server, "orders/3") == 1);
    send(&server, "orders/3", "live");
    let text = read_until(&mut stream, "data: live");
    assert_eq!(data(body_of(&text)), ["live"], "{text}");
}

#[test]
fn malformed_patterns_are_a_400_and_the_server_keeps_serving() {
    let server = server(Config::default());
    let mut good = subscribe(&server, "/pattern?p=orders/*");
    for (target, message) in [
        ("/pattern?p=orders*", "`orders*` is not a channel pattern: `*` may only be its whole last segment"),
        ("/pattern?p=a*/b/*", "`a*/b/*` is not a channel pattern: `*` may only be its whole last segment"),
        ("/pattern?p=orders/**", "`orders/**` is not a channel pattern: `*` may only be its whole last segment"),
        ("/pattern?p=orders", "`orders` is not a channel pattern: it must end with a `*` segment, as in `orders/*`"),
        ("/pattern?p=orders/*/items", "`orders/*/items` is not a channel pattern: it must end with a `*` segment, as in `orders/*`"),
        ("/pattern", "`` is not a channel pattern: it must end with a `*` segment, as in `orders/*`"),
        ("/both?channel=orders/1&p=*/x", "`*/x` is not a channel pattern: it must end with a `*` segment, as in `orders/*`"),
    ] {
        let response = server.get(target);
        assert_eq!(status_of(&response), 400, "{target}: {response}");
        assert_eq!(body_of(&response), format!("400 Bad Request: {message}\n"), "{target}");
    }
    // Nothing was subscribed by the refused streams; the good one still gets events.
    assert_eq!(hub(&server), "1 1 0");
    send(&server, "orders/1", "still+serving");
    assert!(read_until(&mut good, "data: still serving").contains("still serving"));
}

#[test]
fn closing_pattern_streams_leaves_no_subscription_behind() {
    let server = server(Config::default());
    let streams: Vec<TcpStream> = (0..20)
        .map(|i| {
            let target = if i % 2 == 0 {
                "/pattern?p=orders/*"
            } else {
                "/both?channel=orders/1&p=orders/1/*"
            };
            subscribe(&server, target)
        })
        .collect();
    wait_for("20 streams", || count(&server, "orders/1") == 20);
    // 10 on `orders/*`; 10 on `orders/1` and `orders/1/*`.
    assert_eq!(hub(&server), "30 2 1");
    let metrics = body_of(&server.get("/metrics")).to_owned();
    assert!(metrics.contains("\nhouse_subscribers 30\n"), "{metrics}");
    drop(streams);
    wait_for("every subscription to go", || hub(&server) == "0 0 0");
    let metrics = body_of(&server.get("/metrics")).to_owned();
    assert!(metrics.contains("\nhouse_subscribers 0\n"), "{metrics}");
    // A publish after they left queues to nobody, and a new pattern stream starts clean.
    send(&server, "orders/1", "to+nobody");
    let mut stream = subscribe(&server, "/pattern?p=orders/*");
    wait_for("the new stream", || count(&server, "orders/1") == 1);
    send(&server, "orders/1", "fresh");
    let text = read_until(&mut stream, "data: fresh");
    assert_eq!(data(&text), ["fresh"], "{text}");
}

/// Opens a joinable stream on `room`; returns it with its id.
fn open_joinable(server: &TestServer, room: &str) -> (TcpStream, String) {
    let mut stream = server.connect();
    stream
        .write_all(format!("GET /joinable?room={room} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let (_, id) = read_stream_start(&mut stream);
    (stream, id)
}

fn get_ok(server: &TestServer, target: &str) {
    let response = server.get(target);
    assert_eq!(status_of(&response), 200, "{target}: {response}");
}

#[test]
fn an_open_stream_joins_and_leaves_a_pattern() {
    let server = server(Config::default());
    let (mut stream, id) = open_joinable(&server, "lobby");
    // Published before the join: not for this stream.
    let early = send(&server, "orders/1", "early");
    get_ok(&server, &format!("/join-pattern?stream={id}&p=orders/*"));
    assert_eq!(hub(&server), "2 1 2");
    send(&server, "orders/1", "a");
    send(&server, "orders/2/x", "b");
    // A channel the pattern covers, joined by name too, even resuming after `early`: no
    // replay, no duplicate.
    get_ok(
        &server,
        &format!("/join?stream={id}&room=orders/1&last_event_id={early}"),
    );
    send(&server, "orders/1", "c");
    get_ok(&server, &format!("/leave-pattern?stream={id}&p=orders/*"));
    assert_eq!(hub(&server), "2 0 3");
    send(&server, "orders/2", "after+leaving");
    send(&server, "orders/1", "d");
    let text = read_until(&mut stream, "data: d");
    let got: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, ["a", "b", "c", "d"], "{text}");

    // A malformed pattern is the handler's 400, an unknown stream a 404.
    let response = server.get(&format!("/join-pattern?stream={id}&p=orders*"));
    assert_eq!(status_of(&response), 400, "{response}");
    let response = server.get("/join-pattern?stream=nope&p=orders/*");
    assert_eq!(status_of(&response), 404, "{response}");
    drop(stream);
    wait_for("the joined stream to leave", || {
        hub(&server).starts_with("0 0 ")
    });
}

#[test]
fn joining_a_pattern_with_an_id_replays_the_covered_channels() {
    let server = server(Config::default());
    let first = send(&server, "orders/1", "x1");
    send(&server, "orders/2", "x2");
    send(&server, "other", "not+covered");
    send(&server, "orders/1", "x3");
    // The stream is on orders/2 by name already: the pattern's replay leaves it out.
    let (mut stream, id) = open_joinable(&server, "orders/2");
    get_ok(
        &server,
        &format!("/join-pattern?stream={id}&p=orders/*&last_event_id={first}"),
    );
    send(&server, "orders/3", "live");
    let text = read_until(&mut stream, "data: live");
    assert!(!text.contains("event: reset"), "{text}");
    let got: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, ["x3", "live"], "{text}");
}

/// With the Redis broker, patterns are refused (not supported there yet), in a stream and in
/// a join, and plain streams still work.
#[cfg(feature = "redis")]
#[test]
fn patterns_are_refused_with_redis_and_plain_streams_still_work() {
    use std::process::{Child, Command, Stdio};

    /// Stops `redis-server` however the test ends.
    struct Redis(Child);
    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Redis)
        .expect("redis-server is not installed: run `bash .ci/setup`");
    wait_for("redis-server to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let server = server(Config::default().with_redis(format!("redis://127.0.0.1:{port}/")));
    let response = server.get("/pattern?p=orders/*");
    assert_eq!(status_of(&response), 501, "{response}");
    assert_eq!(
        body_of(&response),
        "501 Not Implemented: channel patterns are not supported with the Redis broker yet\n"
    );
    // Malformed is still the handler's 400, before the server looks at where events go.
    assert_eq!(status_of(&server.get("/pattern?p=orders*")), 400);
    // A joinable stream can join channels through Redis, but not patterns.
    let (_joinable, id) = open_joinable(&server, "lobby");
    let response = server.get(&format!("/join-pattern?stream={id}&p=orders/*"));
    assert_eq!(status_of(&response), 501, "{response}");
    assert_eq!(
        body_of(&response),
        "501 Not Implemented: channel patterns are not supported here yet (with the Redis broker, or in the test client)\n"
    );
    let mut plain = subscribe(&server, "/source?room=orders/1");
    wait_for("the plain stream", || count(&server, "orders/1") == 1);
    send(&server, "orders/1", "through+redis");
    assert!(read_until(&mut plain, "data: through redis").contains("through redis"));
}

/// The in-process test client does not deliver patterns yet: it says so with a 501, for a
/// pattern stream and for a pattern join, and its plain streams are unaffected.
#[test]
fn the_test_client_refuses_patterns_with_a_501() {
    let client = house::test::Client::new(routes()).unwrap();
    let refused = client.stream("/pattern?p=orders/*").unwrap_err();
    assert_eq!(refused.status().code(), 501);
    assert!(
        refused.text().contains("not supported by the test client"),
        "{}",
        refused.text()
    );
    let joinable = client.stream("/joinable?room=lobby").unwrap();
    let id = joinable.id().unwrap().to_owned();
    let response = client
        .get(&format!("/join-pattern?stream={id}&p=orders/*"))
        .send();
    assert_eq!(response.status().code(), 501, "{}", response.text());
    assert!(client.stream("/source?room=orders/1").is_ok());
}
