//! Request limits over real sockets: size (413/414/431), age (408), and that a stalled client
//! never delays anyone else.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use house::{Config, Route};
use support::*;

fn hello() -> Vec<Route> {
    vec![
        Route::closing("/hello", |_| "hello"),
        Route::closing("/echo", |ctx| ctx.request.body().len().to_string()),
    ]
}

fn quick_age() -> Config {
    Config::default().with_max_request_age(Duration::from_millis(300))
}

#[test]
fn declared_huge_body_is_refused_from_the_head() {
    let server = TestServer::start(Config::default(), hello());
    let started = Instant::now();
    let response = server.exchange(b"POST /echo HTTP/1.1\r\nContent-Length: 67108864\r\n\r\n");
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(response.contains("Connection: close"));
    // Refused at once, not after the request age limit.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn body_just_over_the_limit_is_413_and_at_the_limit_is_served() {
    let config = Config::default().with_max_request_size(1024);
    let server = TestServer::start(config, hello());
    let head = |len: usize| {
        format!("POST /echo HTTP/1.1\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n")
    };
    let fits = (0..1024)
        .rev()
        .find(|&n| head(n).len() + n <= 1024)
        .unwrap();
    let request = [head(fits).into_bytes(), vec![b'x'; fits]].concat();
    let response = server.exchange(&request);
    assert_eq!(body_of(&response), fits.to_string(), "{response}");
    let request = [head(fits + 1).into_bytes(), vec![b'x'; fits + 1]].concat();
    assert_eq!(status_of(&server.exchange(&request)), 413);
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn oversized_request_line_is_414() {
    let server = TestServer::start(Config::default(), hello());
    let request = format!("GET /hello?x={} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
    assert_eq!(status_of(&server.exchange(request.as_bytes())), 414);
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn oversized_header_block_is_431() {
    let server = TestServer::start(Config::default(), hello());
    let request = format!(
        "GET /hello HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    assert_eq!(status_of(&server.exchange(request.as_bytes())), 431);
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn too_many_headers_is_431() {
    let server = TestServer::start(Config::default(), hello());
    let mut request = String::from("GET /hello HTTP/1.1\r\n");
    for i in 0..65 {
        request.push_str(&format!("X-{i}: v\r\n"));
    }
    request.push_str("\r\n");
    assert_eq!(status_of(&server.exchange(request.as_bytes())), 431);
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn half_sent_request_times_out_with_408() {
    let server = TestServer::start(quick_age(), hello());
    let mut stream = server.connect();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let response = read_to_close(&mut stream);
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "fired early: {:?}",
        started.elapsed()
    );
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn silent_connection_times_out_with_408() {
    let server = TestServer::start(quick_age(), hello());
    let mut stream = server.connect();
    assert_eq!(status_of(&read_to_close(&mut stream)), 408);
}

#[test]
fn slowloris_trickle_is_cut_off_at_the_age_limit() {
    let server = TestServer::start(quick_age(), hello());
    let mut stream = server.connect();
    let request = b"GET /hello HTTP/1.1\r\nHost: example\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut sent = 0;
    // One byte every 20 ms: the whole request would take ~2 s, far past the 300 ms limit.
    for byte in request {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        sent += 1;
        thread::sleep(Duration::from_millis(20));
        if sent > 40 {
            break;
        }
    }
    assert_eq!(status_of(&read_to_close(&mut stream)), 408);
    assert_eq!(body_of(&server.get("/hello")), "hello");
}

#[test]
fn stalled_client_does_not_delay_another() {
    let server = TestServer::start(Config::default(), hello());
    let mut stalled = server.connect();
    stalled
        .write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part of the bo")
        .unwrap();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(body_of(&server.get("/hello")), "hello");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // The stalled request is still pending and completes when its bytes arrive.
    stalled.write_all(&[b'y'; 81]).unwrap();
    assert!(read_until(&mut stalled, "\r\n\r\n100").ends_with("100"));
}

#[test]
fn request_age_applies_to_each_keep_alive_request() {
    let server = TestServer::start(quick_age(), hello());
    let mut stream = server.connect();
    let mut buffer = Vec::new();
    for i in 1..=3 {
        // Each request arrives well within the limit, though together they take longer.
        stream.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap();
        read_until_count(&mut stream, &mut buffer, "hello", i);
        thread::sleep(Duration::from_millis(150));
    }
    stream.write_all(b"GET /hel").unwrap();
    assert_eq!(status_of(&read_to_close(&mut stream)), 408);
}
