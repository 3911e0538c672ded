//! A stream's head over real sockets: the defaults, a handler's own headers, an invalid header
//! (a 500, never a split head), and `HEAD` on a stream route.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;

use house::{Config, Event, Route, Status, Subscribe};
use support::*;

const DEFAULTS: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n";

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/plain", |_| Subscribe::to("plain")),
        Route::stream("/own", |_| {
            Subscribe::to("own")
                .with_header("X-Room", "own")
                .with_header("cache-control", "no-store")
        }),
        Route::stream("/split", |_| {
            Subscribe::to("split").with_header("X-A", "a\r\nSet-Cookie: evil=1")
        }),
        Route::stream("/try", |_| {
            Subscribe::to("try")
                .try_with_header("Bad Name", "v")
                .map_err(|err| (Status::BAD_REQUEST, err.to_string()))
        }),
        Route::stream("/framing", |ctx| {
            let name = ctx
                .request
                .param("name")
                .unwrap_or("Content-Length")
                .to_owned();
            Subscribe::to("framing")
                .try_with_header(name, "5")
                .map_err(|err| (Status::BAD_REQUEST, err.to_string()))
        }),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("plain").to_owned();
            ctx.hub.publish(&room, Event::new("hi")).map(|_| "sent")
        }),
    ]
}

#[test]
fn default_head_is_exact_and_events_follow() {
    // No spread: the hint exactly (tests/lifecycle.rs checks the spread).
    let server = TestServer::start(Config::default().with_retry_spread(0.0), routes());
    let mut stream = server.connect();
    stream.write_all(b"GET /plain HTTP/1.1\r\n\r\n").unwrap();
    let head = read_until(&mut stream, "retry: 2000\n\n");
    assert_eq!(
        head,
        format!(
            "{DEFAULTS}X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n"
        )
    );
    assert_eq!(status_of(&server.get("/send?room=plain")), 200);
    assert!(read_until(&mut stream, "data: hi\n\n").ends_with("data: hi\n\n"));
}

#[test]
fn handler_headers_join_and_replace_the_defaults() {
    let server = TestServer::start(Config::default().with_retry_hint(None), routes());
    let mut stream = server.connect();
    stream.write_all(b"GET /own HTTP/1.1\r\n\r\n").unwrap();
    let head = read_until(&mut stream, "\r\n\r\n");
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Accel-Buffering: no\r\n\
X-Room: own\r\ncache-control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&server.get("/send?room=own")), 200);
    read_until(&mut stream, "data: hi\n\n");
}

#[test]
fn head_on_a_stream_route_sends_the_head_and_closes() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.exchange(b"HEAD /own HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Accel-Buffering: no\r\n\
X-Room: own\r\ncache-control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    );
    let response = server.exchange(b"HEAD /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        response,
        format!("{DEFAULTS}X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n")
    );
}

#[test]
fn an_invalid_header_is_a_500_never_a_split_head() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.get("/split");
    assert_eq!(status_of(&response), 500, "{response}");
    assert!(!response.contains("evil"), "{response}");
    let response = server.get("/try");
    assert_eq!(status_of(&response), 400, "{response}");
    assert!(body_of(&response).contains("invalid header `Bad Name`"));
    for name in ["Content-Length", "connection", "Transfer-Encoding"] {
        let response = server.get(&format!("/framing?name={name}"));
        assert_eq!(status_of(&response), 400, "{response}");
        assert!(
            body_of(&response).contains("the server frames the message itself"),
            "{response}"
        );
    }
    // The server still serves streams.
    let mut stream = subscribe(&server, "/plain");
    assert_eq!(status_of(&server.get("/send?room=plain")), 200);
    read_until(&mut stream, "data: hi\n\n");
}
