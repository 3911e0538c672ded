//! The connection cap, and clients that misbehave mid-response.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use house::{Config, Response, Route, Status, Subscribe};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |_| Subscribe::to("room")),
        Route::closing("/big", |_| {
            Response::new(Status::OK).with_body(vec![b'x'; 8 << 20])
        }),
        Route::closing("/hello", |_| "hello"),
        count_route(),
    ]
}

#[test]
fn beyond_the_cap_new_connections_get_503_with_retry_after() {
    let server = TestServer::start(Config::default().with_max_connections(5), routes());
    let streams: Vec<_> = (0..5).map(|_| subscribe(&server, "/source")).collect();
    let refused = server.exchange(b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(refused.contains("\r\nRetry-After: 1\r\n"), "{refused}");
    // The whole body, as long as the head says: everything up to the close.
    let body = body_of(&refused);
    assert_eq!(
        body,
        "503 Service Unavailable: too many connections, retry soon\n"
    );
    assert!(
        refused.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{refused}"
    );
    drop(streams);
    // Once connections leave, new ones are served again.
    wait_for("a free slot", || status_of(&server.get("/hello")) == 200);
}

#[test]
fn client_resetting_mid_response_affects_only_itself() {
    let server = TestServer::start(Config::default(), routes());
    for _ in 0..3 {
        let mut stream = server.connect();
        stream.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
        let mut some = [0u8; 4096];
        stream.read_exact(&mut some).unwrap();
        let stream = socket2::Socket::from(stream);
        stream.set_linger(Some(Duration::ZERO)).unwrap();
        drop(stream);
    }
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn ten_thousand_connections_opened_and_dropped() {
    // Each connection costs two descriptors here (client and server share the process), and the
    // limit is 20,000: open them in two waves of 5,000, dropping each wave at once.
    let server = TestServer::start(Config::default(), routes());
    let baseline = open_fds();
    for _ in 0..2 {
        let wave: Vec<_> = (0..5000)
            .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
            .collect();
        drop(wave);
    }
    assert_eq!(body_of(&server.get("/hello")), "hello");
    wait_for("the server to close every dropped connection", || {
        open_fds() <= baseline
    });
}

/// Asks for `target` as an `EventSource` does, and reads the answer to the close.
fn ask_as_event_source(server: &TestServer, method: &str, target: &str) -> String {
    let mut stream = server.connect();
    stream
        .write_all(
            format!("{method} {target} HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n").as_bytes(),
        )
        .unwrap();
    read_to_close(&mut stream)
}

#[test]
fn at_the_cap_an_event_stream_is_told_to_come_back_later() {
    let base = Duration::from_millis(1000);
    let config = Config::default()
        .with_max_connections(5)
        .with_cap_retry(base);
    let server = TestServer::start(config, routes());
    let streams: Vec<_> = (0..5).map(|_| subscribe(&server, "/source")).collect();
    // 1,000 EventSources refused: each gets a stream that only says when to come back, spread
    // over [base, 2 × base) so they do not all return at once.
    let mut retries = Vec::new();
    for _ in 0..1000 {
        let answer = ask_as_event_source(&server, "GET", "/source");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"),
            "{answer}"
        );
        let retry: u64 = body
            .strip_prefix("retry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("not just a retry: {body:?}"));
        retries.push(retry);
    }
    assert!(
        retries.iter().all(|ms| (1000..2000).contains(ms)),
        "{retries:?}"
    );
    for bucket in 0..10 {
        let from = 1000 + bucket * 100;
        let count = retries
            .iter()
            .filter(|ms| (from..from + 100).contains(*ms))
            .count();
        assert!(
            (50..=200).contains(&count),
            "{count} retries in [{from}, +100)"
        );
    }
    // Other requests, and a stream asked for without `Accept` or by POST, still get the 503.
    for answer in [
        server.exchange(b"GET /hello HTTP/1.1\r\nAccept: text/html\r\n\r\n"),
        server.exchange(b"GET /source HTTP/1.1\r\n\r\n"),
        ask_as_event_source(&server, "POST", "/source"),
    ] {
        assert_eq!(status_of(&answer), 503, "{answer}");
        assert!(answer.contains("\r\nRetry-After: 1\r\n"), "{answer}");
    }
    // The stats are as of the last timer sweep.
    wait_for("the refusals counted", || {
        let stats = server.handle.stats();
        stats.streams_deferred == 1000 && stats.connections_refused == 1003
    });
    drop(streams);
    wait_for("a free slot", || status_of(&server.get("/hello")) == 200);
    let _stream = subscribe(&server, "/source");
    wait_for("the new subscriber", || {
        body_of(&server.get("/count?channel=room")) == "1"
    });
}

#[test]
fn past_the_cap_a_silent_connection_gets_503_after_the_wait_and_full_slots_at_once() {
    let config = Config::default()
        .with_max_connections(1)
        .with_refusal_slots(2)
        .with_refusal_wait(Duration::from_secs(2));
    let server = TestServer::start(config, routes());
    let stream = subscribe(&server, "/source");
    let started = std::time::Instant::now();
    let mut silent: Vec<_> = (0..2).map(|_| server.connect()).collect();
    // Both slots are taken (the server has accepted both by the time the third is answered,
    // as it accepts in order): the third is refused at once, long before the wait is over.
    let mut third = server.connect();
    let answer = read_to_close(&mut third);
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "not at once"
    );
    for stream in &mut silent {
        let answer = read_to_close(stream);
        assert_eq!(status_of(&answer), 503, "{answer}");
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    drop(stream);
    wait_for("a free slot", || status_of(&server.get("/hello")) == 200);
    assert_eq!(server.handle.stats().streams_deferred, 0);
}
