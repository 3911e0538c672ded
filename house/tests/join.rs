//! Live subscription changes over real sockets: a stream's first event is its id; closing
//! handlers join and leave channels of an open stream by that id, with replay on join, the
//! session binding (403), unknown ids (404), and cleanup when a joined stream closes.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;

use house::{Config, Event, Route, Session, Status, Subscribe, STREAM_EVENT};
use support::*;

/// `/stream?room=` subscribes; `/join` and `/leave` change a stream by `stream` and `room`;
/// `/publish` sends `text` to `room` and answers the event's id; `/login` starts a session;
/// `/join-publish` publishes `before`, joins, then publishes `after`, in one handler.
fn routes() -> Vec<Route> {
    vec![
        Route::stream("/stream", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby")).joinable()
        }),
        Route::stream("/plain", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        Route::closing("/join", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let room = ctx.request.param("room").unwrap_or("");
            ctx.hub.join(stream, room).map(|()| "joined")
        }),
        Route::closing("/leave", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let room = ctx.request.param("room").unwrap_or("");
            ctx.hub.leave(stream, room).map(|()| "left")
        }),
        Route::closing("/publish", |ctx| {
            let room = ctx.request.param("room").unwrap_or("").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub
                .publish(&room, Event::new(text))
                .map(|p| p.id().unwrap_or("").to_owned())
        }),
        Route::closing("/join-publish", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("").to_owned();
            let room = ctx.request.param("room").unwrap_or("").to_owned();
            ctx.hub
                .publish(&room, Event::new("before"))
                .map_err(|_| Status::SERVICE_UNAVAILABLE)?;
            ctx.hub
                .join(&stream, &room)
                .map_err(|_| Status::NOT_FOUND)?;
            ctx.hub
                .publish(&room, Event::new("after"))
                .map_err(|_| Status::SERVICE_UNAVAILABLE)?;
            Ok::<_, Status>("done")
        }),
        Route::closing("/login", |ctx| {
            login(&mut ctx.session);
            "in"
        }),
        count_route(),
    ]
}

fn login(session: &mut Session) {
    session.insert("user", "me").unwrap();
}

fn server() -> TestServer {
    TestServer::start(Config::default(), routes())
}

/// Opens a stream (with `cookie`, if given) and returns it with its id, read from the first
/// event.
fn open(server: &TestServer, target: &str, cookie: Option<&str>) -> (TcpStream, String) {
    let mut stream = server.connect();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{cookie}\r\n").as_bytes())
        .unwrap();
    let (text, _) = read_stream_start(&mut stream);
    let (head, events) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    // The id is the first event (after the retry hint), and carries no `id:` line.
    let mut blocks = events
        .split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with("retry:"));
    let mut lines = blocks.next().unwrap().lines();
    assert_eq!(lines.next(), Some("event: house-stream"), "{events:?}");
    let id = lines
        .next()
        .unwrap()
        .strip_prefix("data: ")
        .unwrap()
        .to_owned();
    assert_eq!(lines.next(), None, "{events:?}");
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    (stream, id)
}

/// A POST with the query `target` on a new connection; returns the raw response.
fn post(server: &TestServer, target: &str, cookie: Option<&str>) -> String {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    server.exchange(
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn post_ok(server: &TestServer, target: &str) -> String {
    let response = post(server, target, None);
    assert_eq!(status_of(&response), 200, "{target}: {response}");
    body_of(&response).to_owned()
}

fn subscribers(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

#[test]
fn first_event_is_a_fresh_id() {
    let server = server();
    let (_a, first) = open(&server, "/stream?room=a", None);
    let (_b, second) = open(&server, "/stream?room=a", None);
    assert_ne!(first, second);
}

#[test]
fn join_adds_live_events_and_leave_stops_them() {
    let server = server();
    let (mut stream, id) = open(&server, "/stream?room=a", None);
    // Published before the join: not for this stream.
    post_ok(&server, "/publish?room=b&text=early");
    assert_eq!(
        post_ok(&server, &format!("/join?stream={id}&room=b")),
        "joined"
    );
    assert_eq!(subscribers(&server, "b"), 1);
    // Joining twice changes nothing.
    post_ok(&server, &format!("/join?stream={id}&room=b"));
    assert_eq!(subscribers(&server, "b"), 1);
    post_ok(&server, "/publish?room=b&text=b1");
    post_ok(&server, "/publish?room=a&text=a1");
    let mut buffer = Vec::new();
    let text = read_until_count(&mut stream, &mut buffer, "data: a1", 1);
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["b1", "a1"]);
    assert_eq!(
        post_ok(&server, &format!("/leave?stream={id}&room=b")),
        "left"
    );
    assert_eq!(subscribers(&server, "b"), 0);
    post_ok(&server, "/publish?room=b&text=b2");
    post_ok(&server, "/publish?room=a&text=a2");
    let text = read_until_count(&mut stream, &mut buffer, "data: a2", 1);
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["b1", "a1", "a2"]);
}

#[test]
fn leaving_the_last_channel_keeps_the_stream_open() {
    let server = server();
    let (mut stream, id) = open(&server, "/stream?room=a", None);
    post_ok(&server, &format!("/leave?stream={id}&room=a"));
    assert_eq!(subscribers(&server, "a"), 0);
    // Still open, and still joinable.
    post_ok(&server, &format!("/join?stream={id}&room=c"));
    post_ok(&server, "/publish?room=c&text=c1");
    read_until(&mut stream, "data: c1");
}

#[test]
fn join_with_last_event_id_replays_the_channel() {
    let server = server();
    let first = post_ok(&server, "/publish?room=b&text=b1");
    post_ok(&server, "/publish?room=b&text=b2");
    post_ok(&server, "/publish?room=b&text=b3");
    let (mut stream, id) = open(&server, "/stream?room=a", None);
    post_ok(
        &server,
        &format!("/join?stream={id}&room=b&last_event_id={first}"),
    );
    post_ok(&server, "/publish?room=b&text=b4");
    let mut buffer = Vec::new();
    let text = read_until_count(&mut stream, &mut buffer, "data: b4", 1);
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["b2", "b3", "b4"]);
    assert!(!text.contains("event: reset"));

    // An id the server does not know: a reset, then what the channel still has.
    let (mut other, id) = open(&server, "/stream?room=a", None);
    post_ok(
        &server,
        &format!("/join?stream={id}&room=b&last_event_id=unknown-1"),
    );
    post_ok(&server, "/publish?room=b&text=b5");
    let mut buffer = Vec::new();
    let text = read_until_count(&mut other, &mut buffer, "data: b5", 1);
    let reset = text.find("event: reset").unwrap();
    assert!(reset < text.find("data: b1").unwrap(), "{text}");
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["b1", "b2", "b3", "b4", "b5"]);
}

#[test]
fn events_published_in_the_joining_handler_split_at_the_join() {
    let server = server();
    // Another stream is on the room already: it gets both.
    let mut there = subscribe(&server, "/stream?room=r");
    let (mut joiner, id) = open(&server, "/stream?room=a", None);
    post_ok(&server, &format!("/join-publish?stream={id}&room=r"));
    post_ok(&server, "/publish?room=r&text=later");
    let mut buffer = Vec::new();
    let text = read_until_count(&mut joiner, &mut buffer, "data: later", 1);
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["after", "later"]);
    let mut buffer = Vec::new();
    let text = read_until_count(&mut there, &mut buffer, "data: later", 1);
    let events: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(events, ["before", "after", "later"]);
}

#[test]
fn unknown_ids_are_404_and_the_server_still_serves() {
    let server = server();
    for target in [
        "/join?stream=0123456789abcdef0123456789abcdef&room=b",
        "/join?stream=&room=b",
        "/leave?stream=nonsense&room=b",
    ] {
        let response = post(&server, target, None);
        assert_eq!(status_of(&response), 404, "{target}: {response}");
        assert_eq!(status_of(&server.get("/count?channel=b")), 200);
    }
    // A closed stream's id names nothing any more.
    let (stream, id) = open(&server, "/stream?room=a", None);
    drop(stream);
    wait_for("the stream to close", || subscribers(&server, "a") == 0);
    let response = post(&server, &format!("/join?stream={id}&room=b"), None);
    assert_eq!(status_of(&response), 404, "{response}");
    assert_eq!(subscribers(&server, "b"), 0);
}

#[test]
fn a_stream_with_a_session_is_changed_only_by_that_session() {
    let server = server();
    let cookie = |response: &str| {
        response
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned()
    };
    let mine = cookie(&post(&server, "/login", None));
    let theirs = cookie(&post(&server, "/login", None));
    assert_ne!(mine, theirs);
    let (mut stream, id) = open(&server, "/stream?room=a", Some(&mine));
    for who in [Some(theirs.as_str()), None] {
        for action in ["join", "leave"] {
            let response = post(&server, &format!("/{action}?stream={id}&room=a"), who);
            assert_eq!(status_of(&response), 403, "{action} as {who:?}: {response}");
        }
        assert_eq!(subscribers(&server, "a"), 1);
    }
    let response = post(&server, &format!("/join?stream={id}&room=b"), Some(&mine));
    assert_eq!(status_of(&response), 200, "{response}");
    post_ok(&server, "/publish?room=b&text=b1");
    read_until(&mut stream, "data: b1");
}

#[test]
fn a_joined_stream_that_closes_leaves_the_new_channel() {
    let server = server();
    let (stream, id) = open(&server, "/stream?room=a", None);
    post_ok(&server, &format!("/join?stream={id}&room=b"));
    assert_eq!(subscribers(&server, "b"), 1);
    drop(stream);
    wait_for("the joined channel to be left", || {
        subscribers(&server, "b") == 0 && subscribers(&server, "a") == 0
    });
    // Publishing to it still works, to nobody.
    post_ok(&server, "/publish?room=b&text=x");
}

#[test]
fn with_presence_joining_and_leaving_are_announced() {
    let server = TestServer::start(Config::default().with_presence(true), routes());
    let mut watcher = subscribe(&server, "/stream?room=b/presence");
    wait_for("the watcher", || subscribers(&server, "b/presence") == 1);
    let (_stream, id) = open(&server, "/stream?room=a", None);
    post_ok(&server, &format!("/join?stream={id}&room=b"));
    let mut buffer = Vec::new();
    read_until_count(
        &mut watcher,
        &mut buffer,
        "event: join\ndata: {\"channel\":\"b\",\"count\":1}",
        1,
    );
    post_ok(&server, &format!("/leave?stream={id}&room=b"));
    read_until_count(
        &mut watcher,
        &mut buffer,
        "event: leave\ndata: {\"channel\":\"b\",\"count\":0}",
        1,
    );
}

/// Only a stream whose handler asked for it gets an id: the others' first event is their
/// first published one, and no join can reach them.
#[test]
fn a_stream_that_is_not_joinable_has_no_id() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = subscribe(&server, "/plain?room=quiet");
    wait_for("the plain stream", || {
        body_of(&server.get("/count?channel=quiet")) == "1"
    });
    assert_eq!(
        status_of(&server.get("/publish?room=quiet&text=first")),
        200
    );
    let text = read_until(&mut stream, "data: first\n\n");
    assert!(!text.contains(STREAM_EVENT), "{text}");
}
