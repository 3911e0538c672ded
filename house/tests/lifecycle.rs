//! Storm-proof lifecycle with 1,000 streams at once: `retry:` hints spread per stream, shutdown
//! closing streams in waves over its window, and a maximum stream lifetime after which each
//! stream ends cleanly and its client resumes with `Last-Event-ID`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

use house::{Config, DropReason, Event, Route, Subscribe};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use support::*;

/// Streams per test.
const STREAMS: usize = 1000;

/// Every test's overall bound: 1,000 clients on a loaded machine take a while, never this long.
const LONG_PATIENCE: Duration = Duration::from_secs(60);

fn routes() -> Vec<Route> {
    vec![Route::stream("/source", |_| Subscribe::to("room"))]
}

/// One client's stream: its socket, what it read on its current connection, and when that
/// connection was asked for and ended.
struct Client {
    socket: TcpStream,
    buffer: Vec<u8>,
    opened: Instant,
    closed: Option<Instant>,
    /// `(id, data)` of every event its earlier connections got.
    events: Vec<(String, String)>,
    /// How many connections ended before the current one.
    reconnects: usize,
}

/// Many clients on one poll, read as data arrives, each noting when its connection ended.
struct Crowd {
    poll: Poll,
    clients: Vec<Client>,
    addr: std::net::SocketAddr,
}

impl Crowd {
    fn open(server: &TestServer, count: usize) -> Crowd {
        let mut crowd = Crowd {
            poll: Poll::new().unwrap(),
            clients: Vec::with_capacity(count),
            addr: server.addr,
        };
        for i in 0..count {
            // Before the request: the server starts the stream later still.
            let opened = Instant::now();
            let socket = crowd.connect(Token(i), None);
            crowd.clients.push(Client {
                socket,
                buffer: Vec::new(),
                opened,
                closed: None,
                events: Vec::new(),
                reconnects: 0,
            });
        }
        crowd
    }

    /// A new connection asking for the stream (resuming after `last_event_id`), on the poll.
    fn connect(&self, token: Token, last_event_id: Option<&str>) -> TcpStream {
        let mut socket = StdStream::connect(self.addr).unwrap();
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        socket
            .write_all(format!("GET /source HTTP/1.1\r\nHost: t\r\n{resume}\r\n").as_bytes())
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut socket = TcpStream::from_std(socket);
        self.poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
            .unwrap();
        socket
    }

    /// Client `i`'s connection ended: keep its events, and resume after the last one.
    fn reconnect(&mut self, i: usize) {
        let client = &mut self.clients[i];
        let text = String::from_utf8(std::mem::take(&mut client.buffer)).unwrap();
        // A clean end: at an event boundary.
        assert!(
            text.ends_with("\n\n"),
            "client {i} ended mid-event: {text:?}"
        );
        client.events.extend(sse_events(&text));
        let last = client.events.last().map(|(id, _)| id.clone());
        let _ = self.poll.registry().deregister(&mut client.socket);
        let opened = Instant::now();
        let socket = self.connect(Token(i), last.as_deref());
        let client = &mut self.clients[i];
        client.socket = socket;
        client.opened = opened;
        client.closed = None;
        client.reconnects += 1;
    }

    /// Reads what arrives until `done` holds, calling `on_close` for each connection that
    /// ends; fails the test after [`LONG_PATIENCE`].
    fn pump(
        &mut self,
        what: &str,
        on_close: &mut impl FnMut(&mut Crowd, usize),
        mut done: impl FnMut(&Crowd) -> bool,
    ) {
        let deadline = Instant::now() + LONG_PATIENCE;
        let mut events = Events::with_capacity(1024);
        let mut chunk = vec![0u8; 64 * 1024];
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.poll
                .poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            let ready: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            for i in ready {
                let client = &mut self.clients[i];
                if client.closed.is_some() {
                    continue;
                }
                loop {
                    match client.socket.read(&mut chunk) {
                        Ok(0) => {
                            client.closed = Some(Instant::now());
                            break;
                        }
                        Ok(n) => client.buffer.extend_from_slice(&chunk[..n]),
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => panic!("client {i}: read failed: {err}"),
                    }
                }
                if self.clients[i].closed.is_some() {
                    on_close(self, i);
                }
            }
        }
    }
}

/// The `retry:` (in ms) right after a stream's head, once it has arrived.
fn retry_of(buffer: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(buffer).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    let (line, _) = body.split_once("\n\n")?;
    line.strip_prefix("retry: ")?.parse().ok()
}

/// Waits until the server counts `count` streams.
fn wait_for_streams(server: &TestServer, count: u64) {
    let deadline = Instant::now() + LONG_PATIENCE;
    while server.handle.stats().connections_streaming != count {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {count} streams"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn retry_hints_spread_over_the_range_per_stream() {
    // The defaults: 2 s, spread by half of it.
    let server = TestServer::start(Config::default(), routes());
    let mut crowd = Crowd::open(&server, STREAMS);
    crowd.pump(
        "every stream's retry:",
        &mut |_, i| panic!("stream {i} closed"),
        |crowd| crowd.clients.iter().all(|c| retry_of(&c.buffer).is_some()),
    );
    let retries: Vec<u64> = crowd
        .clients
        .iter()
        .map(|c| retry_of(&c.buffer).unwrap())
        .collect();
    assert!(
        retries.iter().all(|r| (2000..3000).contains(r)),
        "{retries:?}"
    );
    // Ten slices of 100 ms: each holds about a tenth, none is empty or a crowd.
    for slice in 0..10 {
        let from = 2000 + slice * 100;
        let count = retries
            .iter()
            .filter(|r| (from..from + 100).contains(*r))
            .count();
        assert!((40..=200).contains(&count), "{from} ms: {count} of 1000");
    }
}

#[test]
fn shutdown_closes_streams_in_waves_after_flushing() {
    let window = Duration::from_secs(2);
    let server = TestServer::start(Config::default().with_shutdown_window(window), routes());
    let mut crowd = Crowd::open(&server, STREAMS);
    wait_for_streams(&server, STREAMS as u64);
    // Published before the shutdown, on the same queue: every stream gets them all first.
    for i in 0..5 {
        server
            .handle
            .publish("room", Event::new(format!("e{i}")))
            .unwrap();
    }
    server.handle.shutdown();
    let began = Instant::now();
    crowd.pump("every stream to close", &mut |_, _| {}, |crowd| {
        crowd.clients.iter().all(|c| c.closed.is_some())
    });
    let handle = server.handle.clone();
    server.stop().unwrap();
    assert!(began.elapsed() < window + house::limits::SHUTDOWN_GRACE + Duration::from_secs(2));
    let want: Vec<String> = (0..5).map(|i| format!("e{i}")).collect();
    let mut closes = Vec::new();
    for (i, client) in crowd.clients.iter().enumerate() {
        let text = String::from_utf8_lossy(&client.buffer);
        assert!(
            text.ends_with("\n\n"),
            "client {i} ended mid-event: {text:?}"
        );
        let data: Vec<String> = sse_events(&text).into_iter().map(|(_, d)| d).collect();
        assert_eq!(data, want, "client {i}");
        closes.push(client.closed.unwrap().duration_since(began));
    }
    closes.sort();
    // The closes cover most of the window...
    assert!(closes[0] < window / 5, "first close at {:?}", closes[0]);
    assert!(
        closes[STREAMS - 1] > window * 3 / 4,
        "last close at {:?}",
        closes[STREAMS - 1]
    );
    // ...and no eighth of it holds a burst: evenly, each would hold 125 of 1,000.
    for slice in 0..8 {
        let from = window * slice / 8;
        let to = window * (slice + 1) / 8;
        let count = closes.iter().filter(|c| (from..to).contains(*c)).count();
        assert!(count <= 300, "{count} closes in {from:?}..{to:?}");
    }
    assert_eq!(handle.stats().dropped(DropReason::Shutdown), STREAMS as u64);
}

/// Whether client `c` got the event with data `last`, on this connection or an earlier one.
fn got_last(c: &Client) -> bool {
    count_of(&c.buffer, "data: last\n\n") > 0 || c.events.iter().any(|(_, d)| d == "last")
}

#[test]
fn streams_past_their_lifetime_end_cleanly_and_resume() {
    let lifetime = Duration::from_secs(3);
    let server = TestServer::start(
        Config::default().with_max_stream_lifetime(Some(lifetime)),
        routes(),
    );
    let mut crowd = Crowd::open(&server, STREAMS);
    let mut lifetimes = Vec::new();
    let mut resume = |crowd: &mut Crowd, i: usize| {
        let client = &crowd.clients[i];
        lifetimes.push(client.closed.unwrap().duration_since(client.opened));
        crowd.reconnect(i);
    };
    // A client with its head is subscribed.
    crowd.pump("every stream's head", &mut resume, |crowd| {
        crowd.clients.iter().all(|c| retry_of(&c.buffer).is_some())
    });
    // Publish as the crowd reads, until every client has been closed and come back at least
    // once; then one last event, which every client must get too. 50 ms apart, so the
    // history (256 events) holds everything a resuming client missed.
    let handle = server.handle.clone();
    let mut published = 0;
    let mut last_publish = Instant::now();
    let mut finished = false;
    crowd.pump(
        "every client to resume and get the last event",
        &mut resume,
        |crowd| {
            if !finished && last_publish.elapsed() >= Duration::from_millis(50) {
                let everyone_back = crowd.clients.iter().all(|c| c.reconnects > 0);
                let data = if everyone_back {
                    finished = true;
                    "last".to_owned()
                } else {
                    format!("e{published}")
                };
                handle.publish("room", Event::new(data)).unwrap();
                published += 1;
                last_publish = Instant::now();
            }
            finished && crowd.clients.iter().all(got_last)
        },
    );
    // Never before the lifetime (counted from the request, so the server's own start of the
    // stream is later still); not long after it (a tenth of spread, a sweep, a loaded machine).
    assert!(lifetimes.len() >= STREAMS);
    for seen in &lifetimes {
        assert!(*seen >= lifetime, "closed after {seen:?}");
        assert!(
            *seen < lifetime + lifetime / 10 + Duration::from_secs(5),
            "closed after {seen:?}"
        );
    }
    // Spread a little: streams opened together do not all close together.
    let shortest = lifetimes.iter().min().unwrap();
    let longest = lifetimes.iter().max().unwrap();
    assert!(
        longest.saturating_sub(*shortest) >= lifetime / 20,
        "{shortest:?}..{longest:?}"
    );
    let mut want: Vec<String> = (0..published - 1).map(|i| format!("e{i}")).collect();
    want.push("last".to_owned());
    for (i, client) in crowd.clients.iter_mut().enumerate() {
        let text = String::from_utf8(std::mem::take(&mut client.buffer)).unwrap();
        client.events.extend(sse_events(&text));
        let data: Vec<&str> = client.events.iter().map(|(_, d)| d.as_str()).collect();
        // Every event exactly once, in order, across the reconnects.
        assert_eq!(
            data, want,
            "client {i} after {} reconnects",
            client.reconnects
        );
    }
    wait_for("the lifetime drops to be counted", || {
        let stats = server.handle.stats();
        stats.dropped(DropReason::Lifetime) >= STREAMS as u64 && stats.replays >= STREAMS as u64
    });
    let metrics = server.handle.stats().to_prometheus();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("house_subscribers_dropped_total{reason=\"lifetime\"} "))
        .unwrap();
    let counted: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(counted >= STREAMS as u64, "{line}");
}

#[test]
fn settings_past_what_the_clock_counts_do_not_break_the_server() {
    let config = Config::default()
        .with_retry_spread(f64::INFINITY)
        .with_shutdown_window(Duration::MAX)
        .with_shutdown_grace(Duration::MAX)
        .with_max_stream_lifetime(Some(Duration::MAX));
    let server = TestServer::start(config, routes());
    let mut stream = server.connect();
    stream
        .write_all(b"GET /source HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_until(&mut stream, "\r\n\r\nretry: ");
    let mut buffer = head.into_bytes();
    let text = read_until_count(&mut stream, &mut buffer, "\n\n", 1);
    let retry = retry_of(text.as_bytes()).unwrap();
    assert!(retry >= 2000, "{text}");
    server.handle.publish("room", Event::new("hi")).unwrap();
    read_until(&mut stream, "data: hi\n\n");
    // The one stream is the first wave, closed at once; then `run` returns.
    server.stop().unwrap();
    read_to_close(&mut stream);
}
