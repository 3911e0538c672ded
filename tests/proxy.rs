//! house behind real reverse proxies, run with the shipped configs (`deploy/nginx.conf`,
//! `deploy/Caddyfile`): nginx and Caddy as child processes terminating TLS on loopback, curl
//! as the HTTP/2 client. An event reaches a subscriber at once (and with nginx's buffering
//! turned on it does not), heartbeats keep an idle stream open past the proxy's read timeout
//! (and without them the proxy closes it), and `Last-Event-ID` survives the hop, so a
//! reconnect gets the replay.
//!
//! Needs nginx, caddy, openssl and curl (`.ci/setup` installs them); without them these
//! tests fail (they never skip). The browser half is `tests/proxy_browser.rs`.
#![allow(clippy::unwrap_used)]

mod proxy_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use house::{Config, Event, Methods, Response, Route, Status, Subscribe};
use proxy_support::{CurlStream, House, Proxy};

/// Generous bound for anything that should happen promptly on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// How soon a published event must reach the subscriber through the proxy (it takes a few
/// ms; the rest is room for a loaded machine). A proxy buffer never flushes on a timer: a
/// buffered event would arrive only when more data filled it.
const AT_ONCE: Duration = Duration::from_secs(1);

/// The read timeout the heartbeat test gives nginx, and house's heartbeat interval under it.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_millis(300);

/// A stream on `room`, and `POST /send?text=…` publishing to it (answered after publishing).
fn house(config: Config) -> House {
    House::start(
        config,
        vec![
            Route::stream("/events", |_| Subscribe::to("room")).with_methods(Methods::GET),
            Route::closing("/send", |ctx| {
                let text = ctx.request.param("text").unwrap_or("").to_owned();
                match ctx.hub.publish("room", Event::new(text)) {
                    Ok(_) => Response::text(Status::OK, "sent"),
                    Err(err) => Response::error(Status::SERVICE_UNAVAILABLE, err),
                }
            })
            .with_methods(Methods::POST),
        ],
    )
}

/// Publishes `text` straight to house; returns when house has answered.
fn publish(house: &House, text: &str) {
    let answer = house.request(&format!("POST /send?text={text} HTTP/1.1"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Opens `/events` through `proxy` and waits for the end of its response head, which house
/// writes once the stream is subscribed; checks the head came over HTTP/2, uncompressed.
fn subscribe(proxy: &Proxy, headers: &[&str]) -> CurlStream {
    let mut stream = CurlStream::open(proxy, "/events", headers);
    assert!(
        stream.wait_for(PATIENCE, str::is_empty).is_some(),
        "no stream head through the proxy: {:?}",
        stream.seen
    );
    let head = stream.seen.join("\n").to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
    stream
}

fn delivers_an_event_at_once(start: impl Fn(SocketAddr) -> Proxy) {
    let house = house(Config::default());
    let proxy = start(house.addr);
    let mut stream = subscribe(&proxy, &[]);
    let sent = Instant::now();
    publish(&house, "now");
    let arrived = stream
        .wait_for(PATIENCE, |line| line == "data: now")
        .unwrap_or_else(|| panic!("the event never came through: {:?}", stream.seen));
    let took = arrived - sent;
    assert!(took < AT_ONCE, "the event took {took:?} through the proxy");
}

fn last_event_id_survives_the_hop(start: impl Fn(SocketAddr) -> Proxy) {
    let house = house(Config::default());
    let proxy = start(house.addr);
    let mut first = subscribe(&proxy, &[]);
    publish(&house, "one");
    assert!(first.wait_for(PATIENCE, |l| l == "data: one").is_some());
    let id = first
        .seen
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("the event had no id: {:?}", first.seen))
        .to_owned();
    drop(first);

    // Missed while away.
    publish(&house, "two");
    publish(&house, "three");
    let header = format!("Last-Event-ID: {id}");
    let mut resumed = subscribe(&proxy, &[&header]);
    assert!(
        resumed.wait_for(PATIENCE, |l| l == "data: three").is_some(),
        "no replay through the proxy: {:?}",
        resumed.seen
    );
    let data: Vec<&String> = resumed
        .seen
        .iter()
        .filter(|l| l.starts_with("data: "))
        .collect();
    assert_eq!(data, ["data: two", "data: three"]);

    // The replay came from the header: a stream without it starts with what is new.
    let mut fresh = subscribe(&proxy, &[]);
    publish(&house, "four");
    assert!(fresh
        .wait_for(PATIENCE, |l| l.starts_with("data: "))
        .is_some());
    assert_eq!(fresh.seen.last().map(String::as_str), Some("data: four"));
}

#[test]
fn nginx_delivers_an_event_at_once() {
    delivers_an_event_at_once(|house| Proxy::nginx(house, None));
}

#[test]
fn nginx_passes_last_event_id_so_a_reconnect_gets_the_replay() {
    last_event_id_survives_the_hop(|house| Proxy::nginx(house, None));
}

#[test]
fn heartbeats_keep_a_stream_open_past_nginx_read_timeout() {
    let house = house(Config::default().with_heartbeat_interval(HEARTBEAT));
    let proxy = Proxy::nginx(house.addr, Some("1s"));
    let mut stream = subscribe(&proxy, &[]);
    // Three read timeouts with nothing but heartbeats.
    assert!(
        !stream.ends_within(3 * READ_TIMEOUT),
        "nginx closed the stream: {:?}",
        stream.seen
    );
    let heartbeats = stream.seen.iter().filter(|l| *l == ": heartbeat").count();
    assert!(
        heartbeats >= 5,
        "{heartbeats} heartbeats: {:?}",
        stream.seen
    );
    // And the stream still carries events.
    publish(&house, "still-here");
    assert!(stream
        .wait_for(PATIENCE, |l| l == "data: still-here")
        .is_some());
}

#[test]
fn without_heartbeats_nginx_closes_an_idle_stream_at_its_read_timeout() {
    // The control for the test above: the short timeout is really in force.
    let house = house(Config::default().with_heartbeat_interval(Duration::from_secs(60)));
    let proxy = Proxy::nginx(house.addr, Some("1s"));
    let mut stream = subscribe(&proxy, &[]);
    let opened = Instant::now();
    assert!(
        stream.ends_within(3 * READ_TIMEOUT),
        "nginx kept an idle stream open: {:?}",
        stream.seen
    );
    assert!(opened.elapsed() >= READ_TIMEOUT / 2);
    let log = std::fs::read_to_string(&proxy.error_log).unwrap_or_default();
    assert!(log.contains("upstream timed out"), "{log}");
}

#[test]
fn caddy_delivers_an_event_at_once() {
    delivers_an_event_at_once(Proxy::caddy);
}

#[test]
fn caddy_passes_last_event_id_so_a_reconnect_gets_the_replay() {
    last_event_id_survives_the_hop(Proxy::caddy);
}

/// Waits (bounded) until house's stats satisfy `done`.
fn wait_for_house(house: &House, what: &str, done: impl Fn(&house::Stats) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(&house.handle.stats()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn nginx_with_buffering_holds_the_event_back() {
    // The control for the at-once tests: buffering on, and house's `X-Accel-Buffering: no`
    // ignored. house writes the event to nginx; the subscriber gets nothing, not even the head.
    let house = house(Config::default());
    let proxy = Proxy::nginx_with(
        house.addr,
        None,
        &[(
            "proxy_buffering off;",
            "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;",
        )],
    );
    // Not `subscribe`: the head is held back too, so ask house when the stream is on.
    let mut stream = CurlStream::open(&proxy, "/events", &[]);
    wait_for_house(&house, "the stream", |s| s.connections_streaming == 1);
    publish(&house, "now");
    wait_for_house(&house, "the event written", |s| s.events_delivered == 1);
    assert!(
        stream
            .wait_for(2 * AT_ONCE, |line| line == "data: now")
            .is_none(),
        "the event came through a buffering nginx: {:?}",
        stream.seen
    );
    assert_eq!(stream.seen, Vec::<String>::new());
}

#[test]
fn nginx_with_gzip_for_event_streams_compresses_them_despite_no_transform() {
    // Why the shipped config says `gzip off`: nginx ignores `Cache-Control: no-transform`.
    // With buffering off it flushes the compressor per chunk, so the event still arrives.
    let house = house(Config::default());
    let proxy = Proxy::nginx_with(
        house.addr,
        None,
        &[("gzip off;", "gzip on; gzip_types text/event-stream;")],
    );
    let mut stream = CurlStream::open(&proxy, "/events", &[]);
    assert!(stream.wait_for(PATIENCE, str::is_empty).is_some());
    let head = stream.seen.join("\n").to_ascii_lowercase();
    assert!(head.contains("no-transform"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    publish(&house, "now");
    assert!(stream
        .wait_for(PATIENCE, |line| line == "data: now")
        .is_some());
}
