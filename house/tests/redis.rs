//! Several nodes behind one real Redis (`redis-server`, started here on a free loopback port
//! with persistence off): every subscriber gets every event once, in one order; streams resume
//! on another node; streams join and leave channels across nodes; Redis and nodes going away.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use house::{Config, Event, Route, Status, Subscribe};
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

    /// Makes Redis hold every write command (a node's `XADD` waits, so the response parked
    /// behind it waits too) until [`WritesPaused::resume`]. Reads still run.
    fn pause_writes(&self) -> WritesPaused {
        let mut con = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        con.set_read_timeout(Some(PATIENCE)).unwrap();
        let millis = PATIENCE.as_millis().to_string();
        let reply = redis_command(&mut con, &["CLIENT", "PAUSE", &millis, "WRITE"]);
        assert_eq!(reply, "+OK\r\n");
        WritesPaused {
            con,
            since: Instant::now(),
        }
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

/// A connection to Redis that paused its writes.
struct WritesPaused {
    con: TcpStream,
    since: Instant,
}

impl WritesPaused {
    fn resume(mut self) {
        // The node's writer gives up on an `XADD` after 2 s (and answers 503): past that, a
        // test meaning to see `200 sent` would be testing something else.
        assert!(
            self.since.elapsed() < Duration::from_millis(1500),
            "the test was too slow: the publish may have timed out in Redis"
        );
        let reply = redis_command(&mut self.con, &["CLIENT", "UNPAUSE"]);
        assert_eq!(reply, "+OK\r\n");
    }
}

/// Sends one command on a raw connection and returns its reply line.
fn redis_command(con: &mut TcpStream, args: &[&str]) -> String {
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    con.write_all(command.as_bytes()).unwrap();
    read_until(con, "\r\n")
}

/// The body of `/bulk`: under the 256 KiB of responses that make the server stop answering
/// pipelined requests, so the request after it is answered (or parked) at once.
const BULK: usize = 250_000;

fn routes() -> Vec<Route> {
    let mut routes = room_routes();
    routes.extend([
        count_route(),
        Route::closing("/bulk", |_| "x".repeat(BULK)),
        Route::stream("/snapshot", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
                .with_initial(Event::new("first").event("snapshot"))
                .with_initial(Event::new("second").event("snapshot"))
        }),
        Route::stream("/joinable", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby")).joinable()
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
        // Publishes `before`, joins, then publishes `after`, in one handler.
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
            ctx.session.insert("user", "me").unwrap();
            "in"
        }),
    ]);
    routes
}

fn node(redis: &Redis) -> TestServer {
    node_with(Config::default().with_redis(redis.url()))
}

fn node_with(config: Config) -> TestServer {
    let server = TestServer::start(config, routes());
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
fn initial_events_wait_for_the_brokers_replay_and_precede_live_events() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut first = subscribe(&a, "/source?room=i");
    wait_for("the stream to attach", || count(&a, "i") == 1);
    for i in 1..=3 {
        send(&a, "i", &format!("m{i}"));
    }
    let mut buffer = Vec::new();
    let seen = sse_events(&read_until_count(&mut first, &mut buffer, "data: m", 3));
    let after = seen[0].0.clone();
    let mut stream = b.connect();
    stream
        .write_all(
            format!("GET /snapshot?room=i HTTP/1.1\r\nLast-Event-ID: {after}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: second", 1);
    wait_for("the stream to attach", || count(&b, "i") == 1);
    send(&a, "i", "m4");
    let text = read_until_count(&mut stream, &mut buffer, "data: m", 3);
    let body = body_of(&text);
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data, ["m2", "m3", "first", "second", "m4"], "{body}");
    assert!(!body.contains("event: reset"), "{body}");
    // Not published: the first node's stream never sees them.
    let text = read_until(&mut first, "data: m4");
    assert!(!text.contains("snapshot"), "{text}");
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
    let (retry, after_retry) = body_of(&text).split_once("\n\n").unwrap();
    assert!(
        retry.starts_with("retry: ") && after_retry.starts_with("event: reset\n"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(
        !text.contains("data: t1\n"),
        "trimmed events cannot be replayed"
    );
}

/// Reads one response (its head and its `Content-Length` body) and returns it.
fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8];
    while !bytes.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let len: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("no Content-Length: {head}"))
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// The stats once the node's warm-up is counted and its connections are gone, so later
/// counts are this test's own.
fn settled(server: &TestServer) -> house::Stats {
    let mut stats = server.handle.stats();
    wait_for("the warm-up to be counted", || {
        stats = server.handle.stats();
        stats.connections == 0 && stats.events_published > 0
    });
    stats
}

/// Shuts the server down and waits until it has begun to: its listener is closed then, so
/// connecting is refused.
fn begin_shutdown(server: &TestServer) {
    server.handle.shutdown();
    wait_for("shutdown to begin", || {
        TcpStream::connect(server.addr).is_err()
    });
}

/// What `run` came to: `Ok(())`, its error, or the panic that killed the loop's thread.
fn outcome(run: std::thread::Result<std::io::Result<()>>) -> String {
    match run {
        Ok(result) => format!("{result:?}"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("panicked: {message}")
        }
    }
}

/// Whether `answer` is the publish's `200 sent`, closing the connection.
fn is_sent(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 200 OK\r\n")
        && answer.contains("Connection: close\r\n")
        && body_of(answer) == "sent"
}

/// A node whose shutdown waits long enough for the answers a paused Redis holds back.
fn patient_node(redis: &Redis) -> TestServer {
    node_with(
        Config::default()
            .with_redis(redis.url())
            .with_shutdown_grace(PATIENCE),
    )
}

/// Shutdown begins while a connection still writes an earlier response and its next one is
/// parked until Redis acknowledges the publish: the connection must not shut its write side
/// (and linger) before the parked response is out. (It did: the client got `/bulk` and the
/// close, and the late acknowledgement answered a lingering connection, which trips
/// `close_after_flush`'s debug assertion and kills the loop.)
#[test]
fn a_parked_response_is_answered_when_shutdown_begins() {
    let redis = Redis::start();
    let server = patient_node(&redis);
    let before = settled(&server);

    // A client that does not read yet, with a tiny MSS and receive buffer: the kernel takes
    // only some tens of KiB of `/bulk`, the rest stays queued in the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_tcp_mss(536).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut client: TcpStream = socket.into();
    client.set_read_timeout(Some(PATIENCE)).unwrap();

    let paused = redis.pause_writes();
    client
        .write_all(
            b"GET /bulk HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /send?room=p&text=parked HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    wait_for("the publish (its response parked behind Redis)", || {
        server.handle.stats().events_published > before.events_published
    });
    let written = server.handle.stats().bytes_written - before.bytes_written;
    assert!(
        written < BULK as u64,
        "the kernel took all of /bulk ({written} bytes): nothing is left queued"
    );

    begin_shutdown(&server);
    let first = read_response(&mut client);
    assert_eq!(
        (status_of(&first), body_of(&first).len()),
        (200, BULK),
        "/bulk"
    );
    // Everything before the parked response is written; only now may Redis take the event.
    paused.resume();
    let answer = read_to_close(&mut client);
    // The client stays connected until the loop is done: hanging up could close the
    // connection before the acknowledgement arrives, and hide a panic it would cause.
    let run = outcome(server.stop_and_join());
    assert!(
        is_sent(&answer) && run == "Ok(())",
        "after /bulk the client got {answer:?} (wanted `200 sent`, then the close); \
         the loop: {run}"
    );
}

/// Shutdown begins while a connection has nothing queued but its parked response: the
/// connection stays until the response is out. (It was closed at once, the answer lost.)
#[test]
fn a_parked_response_alone_is_answered_when_shutdown_begins() {
    let redis = Redis::start();
    let server = patient_node(&redis);
    let before = settled(&server);
    let paused = redis.pause_writes();
    let mut client = server.connect();
    client
        .write_all(b"GET /send?room=q&text=parked HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    wait_for("the publish (its response parked behind Redis)", || {
        server.handle.stats().events_published > before.events_published
    });
    begin_shutdown(&server);
    paused.resume();
    let answer = read_to_close(&mut client);
    drop(client);
    let run = outcome(server.stop_and_join());
    assert!(
        is_sent(&answer) && run == "Ok(())",
        "the client got {answer:?} (wanted `200 sent`, then the close); the loop: {run}"
    );
}

/// A client pipelines a request and a publish and half-closes at once: the server reads the
/// end of input with the requests, answers the first, and must keep the connection until the
/// parked answer is out. (It shut its write side after the first and closed on the hang-up.)
#[test]
fn a_half_closed_client_still_gets_its_parked_answer() {
    half_close_with_a_parked_answer("h", HalfClose::AtOnce);
}

/// A client half-closes once it has its first answer, while the next is parked: the hang-up
/// arrives with nothing queued, and the parked answer is still owed. (It was closed at once.)
#[test]
fn a_client_half_closing_after_its_first_answer_gets_the_parked_one() {
    half_close_with_a_parked_answer("g", HalfClose::AfterTheFirstAnswer);
}

/// When the client of [`half_close_with_a_parked_answer`] shuts its write side.
#[derive(PartialEq)]
enum HalfClose {
    AtOnce,
    AfterTheFirstAnswer,
}

/// Pipelines `/count` and a publish to `room` while Redis writes are paused, half-closes
/// `when`, and expects the count, then `200 sent` once Redis takes the event, then the close.
fn half_close_with_a_parked_answer(room: &str, when: HalfClose) {
    let redis = Redis::start();
    let server = node(&redis);
    let paused = redis.pause_writes();
    let mut client = server.connect();
    let requests = format!(
        "GET /count?channel={room} HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /send?room={room}&text=parked HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    client.write_all(requests.as_bytes()).unwrap();
    if when == HalfClose::AtOnce {
        client.shutdown(Shutdown::Write).unwrap();
    }
    // Both requests are handled in one go: the publish is parked behind the paused Redis.
    let first = read_response(&mut client);
    assert_eq!((status_of(&first), body_of(&first)), (200, "0"), "{first}");
    if when == HalfClose::AfterTheFirstAnswer {
        client.shutdown(Shutdown::Write).unwrap();
    }
    paused.resume();
    let answer = read_to_close(&mut client);
    assert!(
        is_sent(&answer),
        "after /count the client got {answer:?} (wanted `200 sent`, then the close)"
    );
    server.stop().unwrap();
}

/// Opens a joinable stream of `room` (with the session `cookie`, if given) and returns it with
/// its id, once it is attached: under Redis the head, and so the id, come only then.
fn open_joinable(server: &TestServer, room: &str, cookie: Option<&str>) -> (TcpStream, String) {
    let mut stream = server.connect();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    stream
        .write_all(
            format!("GET /joinable?room={room} HTTP/1.1\r\nHost: t\r\n{cookie}\r\n").as_bytes(),
        )
        .unwrap();
    let (_, id) = read_stream_start(&mut stream);
    (stream, id)
}

/// A request for `target` with the session `cookie`, if given, on a new connection.
fn get_as(server: &TestServer, target: &str, cookie: Option<&str>) -> String {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    server.exchange(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{cookie}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn join(server: &TestServer, id: &str, room: &str) -> String {
    server.get(&format!("/join?stream={id}&room={room}"))
}

/// The data of the events in `text` whose data starts with `prefix`, in order.
fn data_of(text: &str, prefix: &str) -> Vec<String> {
    sse_events(text)
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d.starts_with(prefix))
        .collect()
}

#[test]
fn a_joined_stream_gets_what_another_node_publishes_after_the_join() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let (mut stream, id) = open_joinable(&a, "r", None);
    // Published before the join: not for this stream.
    assert!(is_sent(&send(&b, "j", "j0")));
    let joined = join(&a, &id, "j");
    assert_eq!(body_of(&joined), "joined", "{joined}");
    // Joining twice changes nothing.
    assert_eq!(body_of(&join(&a, &id, "j")), "joined");
    send(&b, "j", "j1");
    send(&b, "j", "j2");
    send(&a, "r", "r1");
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: j2", 1);
    let text = read_until_count(&mut stream, &mut buffer, "data: r1", 1);
    assert_eq!(data_of(&text, "j"), ["j1", "j2"], "{text}");
    assert_eq!(data_of(&text, "r"), ["r1"], "{text}");
    assert!(!text.contains("event: reset"), "{text}");
    assert_eq!(count(&a, "j"), 1);
}

#[test]
fn a_join_with_an_id_replays_what_the_stream_missed_from_redis() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut watcher = subscribe(&b, "/source?room=h");
    wait_for("the watcher to attach", || count(&b, "h") == 1);
    for i in 1..=3 {
        send(&b, "h", &format!("h{i}"));
    }
    let mut buffer = Vec::new();
    let seen = sse_events(&read_until_count(&mut watcher, &mut buffer, "data: h", 3));
    let first = &seen[0].0;
    let (mut stream, id) = open_joinable(&a, "r", None);
    let joined = a.get(&format!("/join?stream={id}&room=h&last_event_id={first}"));
    assert_eq!(body_of(&joined), "joined", "{joined}");
    send(&b, "h", "h4");
    let text = read_until(&mut stream, "data: h4");
    assert_eq!(data_of(&text, "h"), ["h2", "h3", "h4"], "{text}");
    assert!(!text.contains("event: reset"), "{text}");
}

#[test]
fn a_join_with_an_id_redis_no_longer_has_sends_the_reset_signal() {
    let redis = Redis::start();
    let server = node_with(
        Config::default()
            .with_redis(redis.url())
            .with_history_events(5),
    );
    let mut first = subscribe(&server, "/source?room=t");
    wait_for("the stream to attach", || count(&server, "t") == 1);
    send(&server, "t", "t0");
    let old_id = sse_events(&read_until(&mut first, "data: t0"))[0].0.clone();
    drop(first);
    wait_for("the stream to leave", || count(&server, "t") == 0);
    // Far more than the history keeps (MAXLEN ~ trims whole blocks of 100 entries).
    for i in 1..=300 {
        send(&server, "t", &format!("t{i}"));
    }
    let (mut stream, id) = open_joinable(&server, "r", None);
    let joined = server.get(&format!("/join?stream={id}&room=t&last_event_id={old_id}"));
    assert_eq!(body_of(&joined), "joined", "{joined}");
    send(&server, "t", "t301");
    let text = read_until(&mut stream, "data: t301");
    let reset = text.find("event: reset\n").expect(&text);
    assert!(reset < text.find("data: t300\n").unwrap(), "{text}");
    assert!(
        !text.contains("data: t1\n"),
        "trimmed events cannot be replayed"
    );
    // What Redis still has, in order, then the live event.
    let got = data_of(&text, "t");
    assert_eq!(got.last().map(String::as_str), Some("t301"));
    let numbers: Vec<u32> = got.iter().map(|d| d[1..].parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
}

#[test]
fn publishes_in_the_joining_handler_split_at_the_join() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut there = subscribe(&b, "/source?room=s");
    wait_for("the other stream to attach", || count(&b, "s") == 1);
    let (mut joiner, id) = open_joinable(&a, "r", None);
    let done = a.get(&format!("/join-publish?stream={id}&room=s"));
    assert_eq!(body_of(&done), "done", "{done}");
    send(&b, "s", "later");
    let text = read_until(&mut joiner, "data: later");
    assert_eq!(data_of(&text, ""), ["after", "later"], "{text}");
    let text = read_until(&mut there, "data: later");
    assert_eq!(data_of(&text, ""), ["before", "after", "later"], "{text}");
}

/// The answer to a join waits, as a publish's does, until Redis took the join, in order with
/// the node's publishes: then anything published after the answer, on any node, reaches the
/// stream.
#[test]
fn a_join_is_answered_once_redis_took_it() {
    let redis = Redis::start();
    let a = node(&redis);
    let (mut stream, id) = open_joinable(&a, "r", None);
    let before = a.handle.stats();
    let paused = redis.pause_writes();
    // A publish ahead of the join holds the node's writer until Redis takes writes again.
    let mut held = a.connect();
    held.write_all(b"GET /send?room=w&text=held HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    wait_for("the publish to reach the writer", || {
        a.handle.stats().events_published > before.events_published
    });
    let mut joining = a.connect();
    joining
        .write_all(
            format!(
                "GET /join?stream={id}&room=w HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    joining
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let early = joining.read(&mut [0u8; 64]);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the join was answered before Redis took it: {early:?}"
    );
    paused.resume();
    joining.set_read_timeout(Some(PATIENCE)).unwrap();
    let joined = read_to_close(&mut joining);
    assert_eq!(body_of(&joined), "joined", "{joined}");
    assert!(is_sent(&read_to_close(&mut held)));
    send(&a, "w", "w1");
    let text = read_until(&mut stream, "data: w1");
    assert_eq!(data_of(&text, "w"), ["w1"], "{text}");
}

/// Another node publishes numbered events while a stream joins: the joined stream gets an
/// unbroken run of them up to the last, starting after every one published before the join was
/// asked for and no later than the first published after it was answered; a stream already on
/// the channel gets every one, once, in order.
#[test]
fn a_join_racing_with_publishes_loses_and_repeats_nothing() {
    const EVENTS: usize = 200;
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut there = subscribe(&a, "/source?room=q");
    wait_for("the other stream to attach", || count(&a, "q") == 1);
    let (mut joiner, id) = open_joinable(&a, "r", None);
    let sent = AtomicUsize::new(0);
    let (asked_at, answered_at) = std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..EVENTS {
                assert!(is_sent(&send(&b, "q", &format!("q{i}"))));
                sent.store(i + 1, Ordering::SeqCst);
            }
        });
        wait_for("publishes to be under way", || {
            sent.load(Ordering::SeqCst) >= EVENTS / 4
        });
        let asked_at = sent.load(Ordering::SeqCst);
        let joined = join(&a, &id, "q");
        let answered_at = sent.load(Ordering::SeqCst);
        assert_eq!(body_of(&joined), "joined", "{joined}");
        (asked_at, answered_at)
    });
    let last = format!("data: q{}\n", EVENTS - 1);
    let text = read_until(&mut there, &last);
    let all: Vec<String> = (0..EVENTS).map(|i| format!("q{i}")).collect();
    assert_eq!(data_of(&text, "q"), all);
    let text = read_until(&mut joiner, &last);
    let got = data_of(&text, "q");
    let start: usize = got[0][1..].parse().unwrap();
    assert_eq!(got, all[start..], "{text}");
    assert!(
        start >= asked_at,
        "{start} < {asked_at}: published before the join"
    );
    assert!(start <= answered_at + 1, "{start} > {answered_at} + 1");
    assert!(!text.contains("event: reset"), "{text}");
}

/// Redis's `MONITOR` feed: every command Redis runs, one line each.
fn monitor(redis: &Redis) -> BufReader<TcpStream> {
    let mut con = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    con.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(redis_command(&mut con, &["MONITOR"]), "+OK\r\n");
    BufReader::new(con)
}

/// Reads the feed until a line that passes `wanted`.
fn wait_for_command(feed: &mut BufReader<TcpStream>, what: &str, wanted: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut line = String::new();
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        line.clear();
        feed.read_line(&mut line).unwrap();
        if wanted(&line) {
            return;
        }
    }
}

#[test]
fn leaving_stops_the_channel_and_the_node_stops_reading_it() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let (mut stream, id) = open_joinable(&a, "r", None);
    let mut feed = monitor(&redis);
    assert_eq!(body_of(&join(&a, &id, "l")), "joined");
    let reads = |line: &str, channel: &str| {
        line.contains("\"XREAD\"") && line.contains(&format!("\"house:stream:{channel}\""))
    };
    wait_for_command(&mut feed, "the node to read the joined channel", |line| {
        reads(line, "l")
    });
    send(&b, "l", "l1");
    read_until(&mut stream, "data: l1");
    let left = a.get(&format!("/leave?stream={id}&room=l"));
    assert_eq!(body_of(&left), "left", "{left}");
    assert_eq!(count(&a, "l"), 0);
    // The node goes on reading the stream's other channel, and only that one.
    wait_for_command(
        &mut feed,
        "the node to stop reading the left channel",
        |line| reads(line, "r") && !reads(line, "l"),
    );
    send(&b, "l", "gone");
    send(&b, "r", "r1");
    let text = read_until(&mut stream, "data: r1");
    assert!(!text.contains("data: gone"), "{text}");
    // Leaving twice changes nothing; the stream can join again.
    assert_eq!(
        body_of(&a.get(&format!("/leave?stream={id}&room=l"))),
        "left"
    );
    assert_eq!(body_of(&join(&a, &id, "l")), "joined");
    send(&b, "l", "l2");
    let text = read_until(&mut stream, "data: l2");
    assert!(!text.contains("data: gone"), "{text}");
}

#[test]
fn joins_keep_the_session_binding_and_unknown_ids_are_404() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let cookie = |response: &str| {
        response
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned()
    };
    let mine = cookie(&get_as(&a, "/login", None));
    let theirs = cookie(&get_as(&a, "/login", None));
    let (mut stream, id) = open_joinable(&a, "r", Some(&mine));
    for who in [Some(theirs.as_str()), None] {
        for action in ["join", "leave"] {
            let response = get_as(&a, &format!("/{action}?stream={id}&room=x"), who);
            assert_eq!(status_of(&response), 403, "{action} as {who:?}: {response}");
        }
    }
    // The id is this node's: another node does not know it.
    let elsewhere = get_as(&b, &format!("/join?stream={id}&room=x"), Some(&mine));
    assert_eq!(status_of(&elsewhere), 404, "{elsewhere}");
    let unknown = join(&a, "0123456789abcdef0123456789abcdef", "x");
    assert_eq!(status_of(&unknown), 404, "{unknown}");
    send(&b, "x", "refused");
    let joined = get_as(&a, &format!("/join?stream={id}&room=x"), Some(&mine));
    assert_eq!(status_of(&joined), 200, "{joined}");
    send(&b, "x", "x1");
    let text = read_until(&mut stream, "data: x1");
    assert!(!text.contains("data: refused"), "{text}");
}

#[test]
fn a_join_while_redis_is_down_answers_503_and_changes_nothing() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = node(&redis);
    let (mut stream, id) = open_joinable(&a, "r", None);
    redis.kill();
    wait_for("publishes to fail with 503", || {
        status_of(&send(&a, "r", "lost")) == 503
    });
    let refused = join(&a, &id, "d");
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(refused.contains("Retry-After: 1\r\n"), "{refused}");
    assert_eq!(count(&a, "d"), 0);
    let _redis = Redis::start_on(port);
    wait_for("publishes to work again", || {
        status_of(&send(&a, "d", "d1")) == 200
    });
    send(&a, "r", "r1");
    let text = read_until(&mut stream, "data: r1");
    assert!(!text.contains("data: d1"), "{text}");
}

/// Redis stops taking writes while a join is under way: the join's answer is a 503 and the
/// stream is as before, so joining again once Redis is back works.
#[test]
fn a_join_redis_does_not_take_answers_503_and_is_undone() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let (mut stream, id) = open_joinable(&a, "r", None);
    let before = a.handle.stats();
    // Longer than the writer waits for Redis (2 s): the held publish, then the batch with the
    // join (between two publishes, so the batch writes), fail.
    let _paused = redis.pause_writes();
    let mut held = a.connect();
    held.write_all(b"GET /send?room=u&text=held HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    wait_for("the publish to reach the writer", || {
        a.handle.stats().events_published > before.events_published
    });
    let refused = a.get(&format!("/join-publish?stream={id}&room=u"));
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert_eq!(status_of(&read_to_close(&mut held)), 503);
    let mut con = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    con.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(redis_command(&mut con, &["CLIENT", "UNPAUSE"]), "+OK\r\n");
    wait_for("publishes to work again", || {
        status_of(&send(&a, "r", "back")) == 200
    });
    assert_eq!(count(&a, "u"), 0);
    send(&b, "u", "u1");
    assert_eq!(body_of(&join(&a, &id, "u")), "joined");
    send(&b, "u", "u2");
    let text = read_until(&mut stream, "data: u2");
    assert_eq!(data_of(&text, "u"), ["u2"], "{text}");
}
