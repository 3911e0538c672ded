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
