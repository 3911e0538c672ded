//! How a stream starts, over real sockets: its initial events (after the replay, before live,
//! for that connection only), subscribing to many channels, and the 400 of a stream with none.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use house::{Config, Event, Response, Route, Subscribe};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        // Two initial events, built both ways.
        Route::stream("/snapshot", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
                .with_initial(Event::new("first").event("snapshot"))
                .with_initial_events([Event::new("second").event("snapshot")])
        }),
        // The snapshot of the race test: how many events the hub has taken so far. The loop
        // runs the handler, so every later publish reaches this stream live.
        Route::stream("/counted", |ctx| {
            let seen = ctx.hub.published();
            Subscribe::to("race").with_initial(Event::new(format!("seen {seen}")).event("snapshot"))
        }),
        Route::stream("/many", |ctx| {
            let rooms = ctx.request.param("rooms").unwrap_or("").to_owned();
            Subscribe::to_all(rooms.split(',').filter(|r| !r.is_empty()))
        }),
        Route::stream("/nothing", |_| {
            Ok::<_, Response>(Subscribe::to_all(Vec::<String>::new()))
        }),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub.publish(&room, Event::new(text)).map(|_| "sent")
        }),
        Route::closing("/run", |ctx| ctx.hub.run_id().to_owned()),
        // Who is online, counting the stream being opened (not subscribed while this runs).
        Route::stream("/online", |ctx| {
            let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
            let online = ctx.hub.subscribers(&room) + 1;
            Subscribe::to(room).with_initial(Event::new(format!("online {online}")))
        }),
        Route::closing("/channels", |ctx| {
            let mut lines: Vec<String> = ctx
                .hub
                .channels()
                .map(|c| format!("{} {} {}", c.name(), c.subscribers(), c.history_len()))
                .collect();
            lines.sort_unstable();
            lines.join("\n")
        }),
        count_route(),
    ]
}

fn count(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

/// `(event name, id, data)` of every event in a stream's text (after its head, if it is there).
fn events(text: &str) -> Vec<(String, String, String)> {
    let body = text.split_once("\r\n\r\n").map_or(text, |(_, body)| body);
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data: ")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or("")
                    .to_owned()
            };
            (field("event: "), field("id: "), field("data: "))
        })
        .collect()
}

fn open(server: &TestServer, target: &str, last_event_id: Option<&str>) -> TcpStream {
    let mut stream = server.connect();
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\n{resume}\r\n").as_bytes())
        .unwrap();
    stream
}

fn ev(event: &str, id: &str, data: &str) -> (String, String, String) {
    (event.to_owned(), id.to_owned(), data.to_owned())
}

#[test]
fn initial_events_come_after_the_replay_and_before_live_events() {
    let server = TestServer::start(Config::default(), routes());
    let run = body_of(&server.get("/run")).to_owned();
    for i in 1..=3 {
        server.get(&format!("/send?room=o&text=m{i}"));
    }
    let mut stream = open(&server, "/snapshot?room=o", Some(&format!("{run}-1")));
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "event: snapshot", 2);
    wait_for("the subscription", || count(&server, "o") == 1);
    server.get("/send?room=o&text=m4");
    let text = read_until(&mut stream, "data: m4");
    let text = format!("{}{text}", String::from_utf8_lossy(&buffer));
    assert_eq!(
        events(&text),
        [
            ev("", &format!("{run}-2"), "m2"),
            ev("", &format!("{run}-3"), "m3"),
            ev("snapshot", "", "first"),
            ev("snapshot", "", "second"),
            ev("", &format!("{run}-4"), "m4"),
        ],
        "{text}"
    );
}

#[test]
fn initial_events_follow_the_reset_signal() {
    let server = TestServer::start(Config::default(), routes());
    server.get("/send?room=r&text=kept");
    let mut stream = open(&server, "/snapshot?room=r", Some("previousrun-6"));
    let text = read_until(&mut stream, "data: second");
    let after_head = body_of(&text);
    let (retry, after_retry) = after_head.split_once("\n\n").unwrap();
    assert!(retry.starts_with("retry: "), "{after_head}");
    assert!(
        after_retry.starts_with("event: reset\ndata: events were missed\n\n"),
        "{after_head}"
    );
    let got: Vec<String> = events(&text).into_iter().map(|(_, _, data)| data).collect();
    assert_eq!(got, ["events were missed", "kept", "first", "second"]);
}

#[test]
fn initial_events_are_for_that_connection_only_and_not_kept() {
    let server = TestServer::start(Config::default(), routes());
    let run = body_of(&server.get("/run")).to_owned();
    let mut plain = subscribe(&server, "/source?room=p");
    let mut with_snapshot = open(&server, "/snapshot?room=p", None);
    read_until(&mut with_snapshot, "data: second");
    wait_for("both subscriptions", || count(&server, "p") == 2);
    server.get("/send?room=p&text=live");
    let text = read_until(&mut plain, "data: live");
    assert!(!text.contains("snapshot"), "{text}");
    assert_eq!(events(&text), [ev("", &format!("{run}-1"), "live")]);
    // Nothing was published but `live`: the next id is 2, and history holds `live` alone.
    server.get("/send?room=p&text=next");
    read_until(&mut plain, &format!("id: {run}-2\ndata: next"));
    let mut resumed = open(&server, "/source?room=p", Some(&format!("{run}-0")));
    let text = read_until(&mut resumed, "data: next");
    assert_eq!(
        events(&text),
        [
            ev("", &format!("{run}-1"), "live"),
            ev("", &format!("{run}-2"), "next")
        ]
    );
}

/// 1,000 streams attach while another thread publishes numbered events: each stream's
/// snapshot names how many events the hub had taken, and what follows it is exactly every
/// later event, with no gap and no duplicate.
#[test]
fn a_thousand_snapshots_race_a_publisher_without_gap_or_duplicate() {
    const STREAMS: usize = 1000;
    // Bounds the publisher: enough to overlap every attach, few enough for every queue.
    const MAX_EVENTS: u64 = 10_000;
    let server = TestServer::start(Config::default(), routes());
    let attached = Arc::new(AtomicBool::new(false));
    let publisher = {
        let handle = server.handle.clone();
        let attached = Arc::clone(&attached);
        thread::spawn(move || {
            let mut sent = 0;
            // Keep publishing until every stream is in, then a few more so each sees live ones.
            let mut extra = 0;
            while sent < MAX_EVENTS && extra < 20 {
                sent += 1;
                handle
                    .publish("race", Event::new(sent.to_string()))
                    .unwrap();
                if attached.load(Ordering::Relaxed) {
                    extra += 1;
                }
                // Paced, so the publishing spans the attaches (not a wait for anything).
                thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    // In batches, so the attaches spread over the publishing.
    let mut streams = Vec::with_capacity(STREAMS);
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); STREAMS];
    for batch in 0..STREAMS / 50 {
        streams.extend((0..50).map(|_| open(&server, "/counted", None)));
        for i in batch * 50..(batch + 1) * 50 {
            read_until_count(&mut streams[i], &mut buffers[i], "event: snapshot", 1);
        }
    }
    attached.store(true, Ordering::Relaxed);
    let sent = publisher.join().unwrap();
    let last = format!("data: {sent}\n\n");
    let mut snapshots = Vec::with_capacity(STREAMS);
    for (stream, buffer) in streams.iter_mut().zip(&mut buffers) {
        let seen_all = count_of(buffer, &format!("data: seen {sent}\n\n")) == 1;
        let text = if seen_all {
            String::from_utf8_lossy(buffer).into_owned()
        } else {
            read_until_count(stream, buffer, &last, 1)
        };
        let got = events(&text);
        let (name, id, data) = &got[0];
        assert_eq!((name.as_str(), id.as_str()), ("snapshot", ""), "{text}");
        let seen: u64 = data.strip_prefix("seen ").unwrap().parse().unwrap();
        let live: Vec<u64> = got[1..]
            .iter()
            .map(|(_, _, d)| d.parse().unwrap())
            .collect();
        let expected: Vec<u64> = (seen + 1..=sent).collect();
        assert_eq!(live, expected, "after snapshot {seen}");
        snapshots.push(seen);
    }
    // The race was real: streams attached at different points of the publishing.
    snapshots.sort_unstable();
    snapshots.dedup();
    assert!(snapshots.len() > 1, "every stream saw {snapshots:?}");
}

#[test]
fn one_stream_subscribes_to_many_channels() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = subscribe(&server, "/many?rooms=a,b,a,c");
    wait_for("the subscriptions", || {
        count(&server, "a") == 1 && count(&server, "b") == 1 && count(&server, "c") == 1
    });
    for (room, text) in [
        ("c", "three"),
        ("x", "elsewhere"),
        ("a", "one"),
        ("b", "two"),
    ] {
        server.get(&format!("/send?room={room}&text={text}"));
    }
    let text = read_until(&mut stream, "data: two");
    let got: Vec<String> = events(&text).into_iter().map(|(_, _, data)| data).collect();
    assert_eq!(got, ["three", "one", "two"]);
}

#[test]
fn a_stream_with_no_channel_is_a_400_and_the_server_keeps_serving() {
    let server = TestServer::start(Config::default(), routes());
    for target in ["/many", "/many?rooms=,", "/nothing"] {
        let response = server.get(target);
        assert_eq!(status_of(&response), 400, "{target}: {response}");
        assert!(
            response.contains("a stream needs at least one channel"),
            "{response}"
        );
    }
    let mut stream = subscribe(&server, "/many?rooms=still");
    wait_for("the subscription", || count(&server, "still") == 1);
    server.get("/send?room=still&text=serving");
    read_until(&mut stream, "data: serving");
}

#[test]
fn the_test_client_refuses_a_stream_with_no_channel_too() {
    let client = house::test::Client::new(routes()).unwrap();
    let refused = client.stream("/nothing").unwrap_err();
    assert_eq!(refused.status(), house::Status::BAD_REQUEST);
    let mut stream = client.stream("/snapshot?room=t").unwrap();
    assert_eq!(stream.next_event().unwrap().data, "first");
}

#[test]
fn channels_are_listed_and_a_stream_handler_does_not_count_its_own_stream() {
    let server = TestServer::start(Config::default(), routes());
    assert_eq!(body_of(&server.get("/channels")), "");
    server.get("/send?room=kept&text=one");
    server.get("/send?room=kept&text=two");
    let mut first = open(&server, "/online?room=here", None);
    read_until(&mut first, "data: online 1\n\n");
    let mut second = open(&server, "/online?room=here", None);
    read_until(&mut second, "data: online 2\n\n");
    assert_eq!(body_of(&server.get("/channels")), "here 2 0\nkept 0 2");
    drop(first);
    wait_for("the hang-up", || count(&server, "here") == 1);
    assert_eq!(body_of(&server.get("/channels")), "here 1 0\nkept 0 2");
}

#[test]
fn with_presence_streams_announce_joining_and_leaving() {
    let server = TestServer::start(Config::default().with_presence(true), routes());
    let mut watcher = subscribe(&server, "/source?room=lobby/presence");
    wait_for("the watcher", || count(&server, "lobby/presence") == 1);
    let mut buffer = Vec::new();
    let a = subscribe(&server, "/source?room=lobby");
    read_until_count(&mut watcher, &mut buffer, "event: join", 1);
    let _b = subscribe(&server, "/many?rooms=lobby,other");
    read_until_count(&mut watcher, &mut buffer, "event: join", 2);
    drop(a);
    let text = read_until_count(&mut watcher, &mut buffer, "event: leave", 1);
    let got: Vec<(String, String)> = events(&text)
        .into_iter()
        .map(|(event, _, data)| (event, data))
        .collect();
    assert_eq!(
        got,
        [
            (
                "join".to_owned(),
                r#"{"channel":"lobby","count":1}"#.to_owned()
            ),
            (
                "join".to_owned(),
                r#"{"channel":"lobby","count":2}"#.to_owned()
            ),
            (
                "leave".to_owned(),
                r#"{"channel":"lobby","count":1}"#.to_owned()
            ),
        ]
    );
    // Every channel has its own; a presence channel announces nothing about itself.
    assert_eq!(
        body_of(&server.get("/channels")),
        "lobby 1 0\nlobby/presence 1 3\nother 1 0\nother/presence 0 1"
    );
}

#[test]
fn without_presence_nothing_is_announced() {
    let server = TestServer::start(Config::default(), routes());
    let _stream = subscribe(&server, "/source?room=quiet");
    wait_for("the subscription", || count(&server, "quiet") == 1);
    assert_eq!(body_of(&server.get("/channels")), "quiet 1 0");
}
