//! Several nodes behind one real Redis (`redis-server`, started here on a free loopback port
//! with persistence off): every subscriber gets every event once, in one order; streams resume
//! on another node; Redis and nodes going away.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use house::{Config, Event, Route, Subscribe};
use support::*;

/// A `redis-server` child process.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server is not installed: run `bash .ci/setup` (Debian package redis-server)",
            );
        wait_for("redis-server to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Redis { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub.publish(&room, Event::new(text)).map(|()| "sent")
        }),
        count_route(),
    ]
}

fn node(redis: &Redis) -> TestServer {
    let server = TestServer::start(Config::default().with_redis(redis.url()), routes());
    wait_for("the node to reach Redis", || {
        status_of(&server.get("/send?room=warmup&text=x")) == 200
    });
    server
}

fn count(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

fn send(server: &TestServer, room: &str, text: &str) -> String {
    server.get(&format!("/send?room={room}&text={text}"))
}

#[test]
fn three_nodes_deliver_every_event_once_in_one_order() {
    let redis = Redis::start();
    let nodes: Vec<TestServer> = (0..3).map(|_| node(&redis)).collect();
    let mut subscribers: Vec<TcpStream> = nodes
        .iter()
        .flat_map(|n| (0..3).map(move |_| subscribe(n, "/source?room=r")))
        .collect();
    for n in &nodes {
        wait_for("streams to attach", || count(n, "r") == 3);
    }
    for i in 0..5 {
        for (k, n) in nodes.iter().enumerate() {
            let response = send(n, "r", &format!("n{k}-{i}"));
            assert_eq!(body_of(&response), "sent", "{response}");
        }
    }
    let mut orders = Vec::new();
    for stream in &mut subscribers {
        let mut buffer = Vec::new();
        let text = read_until_count(stream, &mut buffer, "data: n", 15);
        let got = sse_events(&text);
        assert_eq!(got.len(), 15, "{text}");
        let mut ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 15, "duplicate ids: {text}");
        orders.push(got);
    }
    // One order everywhere, and each node's own publishes in the order it made them.
    assert!(orders.windows(2).all(|w| w[0] == w[1]));
    for k in 0..3 {
        let mine: Vec<&str> = orders[0]
            .iter()
            .map(|(_, d)| d.as_str())
            .filter(|d| d.starts_with(&format!("n{k}-")))
            .collect();
        assert_eq!(
            mine,
            (0..5).map(|i| format!("n{k}-{i}")).collect::<Vec<_>>()
        );
    }
}

#[test]
fn reconnecting_to_another_node_resumes_without_gap_or_duplicate() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut stream = subscribe(&a, "/source?room=m");
    wait_for("the stream to attach", || count(&a, "m") == 1);
    for i in 1..=3 {
        send(&a, "m", &format!("m{i}"));
    }
    let mut buffer = Vec::new();
    let seen = sse_events(&read_until_count(&mut stream, &mut buffer, "data: m", 3));
    let last_id = seen.last().unwrap().0.clone();
    drop(stream);
    // Missed while away, published on the other node.
    send(&b, "m", "m4");
    send(&b, "m", "m5");
    let mut stream = b.connect();
    stream
        .write_all(
            format!("GET /source?room=m HTTP/1.1\r\nLast-Event-ID: {last_id}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: m", 2);
    wait_for("the stream to attach", || count(&b, "m") == 1);
    send(&a, "m", "m6");
    let text = read_until_count(&mut stream, &mut buffer, "data: m", 3);
    assert!(!text.contains("event: reset"), "{text}");
    let data: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, ["m4", "m5", "m6"]);
}

#[test]
fn redis_outage_answers_503_keeps_streams_and_signals_the_gap() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = node(&redis);
    let b = node(&redis);
    let mut stream = subscribe(&b, "/source?room=o");
    wait_for("the stream to attach", || count(&b, "o") == 1);
    send(&a, "o", "before");
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: before", 1);

    redis.kill();
    wait_for("publishes to fail with 503", || {
        status_of(&send(&a, "o", "lost")) == 503
    });
    let refused = send(&b, "o", "refused");
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(refused.contains("Retry-After: 1\r\n"), "{refused}");
    // The nodes still serve, and the stream is still open.
    assert_eq!(count(&b, "o"), 1);

    // A fresh Redis without the old data: the stream hears it missed events, then goes on.
    let _redis = Redis::start_on(port);
    wait_for("publishes to work again", || {
        status_of(&send(&a, "o", "after")) == 200
    });
    let text = read_until_count(&mut stream, &mut buffer, "data: after", 1);
    let after_before = &text[text.find("data: before").unwrap()..];
    assert!(
        after_before.contains("event: reset\ndata: events were missed\n\n"),
        "{after_before}"
    );
    assert!(
        !text.contains("data: lost") && !text.contains("data: refused"),
        "{text}"
    );
}

#[test]
fn clients_of_a_stopped_node_resume_on_another() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut stream = subscribe(&a, "/source?room=k");
    // The head comes only once the stream is attached: no wait needed before publishing.
    assert_eq!(count(&a, "k"), 1);
    send(&b, "k", "k1");
    let mut buffer = Vec::new();
    let seen = sse_events(&read_until_count(&mut stream, &mut buffer, "data: k1", 1));
    let last_id = seen.last().unwrap().0.clone();
    a.stop().unwrap();
    // The stream ends when its node goes.
    read_to_close(&mut stream);
    send(&b, "k", "k2");
    let mut stream = b.connect();
    stream
        .write_all(
            format!("GET /source?room=k HTTP/1.1\r\nLast-Event-ID: {last_id}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let text = read_until(&mut stream, "data: k2");
    let data: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, ["k2"]);
}

#[test]
fn trimmed_history_sends_the_reset_signal() {
    let redis = Redis::start();
    let server = TestServer::start(
        Config::default()
            .with_redis(redis.url())
            .with_history_events(5),
        routes(),
    );
    wait_for("the node to reach Redis", || {
        status_of(&server.get("/send?room=warmup&text=x")) == 200
    });
    let mut first = subscribe(&server, "/source?room=t");
    wait_for("the stream to attach", || count(&server, "t") == 1);
    send(&server, "t", "t0");
    let mut buffer = Vec::new();
    let old_id = sse_events(&read_until_count(&mut first, &mut buffer, "data: t0", 1))[0]
        .0
        .clone();
    // Far more than the history keeps (MAXLEN ~ trims whole blocks of 100 entries).
    for i in 1..=300 {
        send(&server, "t", &format!("t{i}"));
    }
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET /source?room=t HTTP/1.1\r\nLast-Event-ID: {old_id}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let text = read_until(&mut stream, "data: t300");
    assert!(
        body_of(&text).starts_with("retry: 2000\n\nevent: reset\n"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(
        !text.contains("data: t1\n"),
        "trimmed events cannot be replayed"
    );
}
