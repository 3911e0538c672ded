//! A Redis that hangs (its process stopped with SIGSTOP, its sockets still open, so connects
//! succeed and commands get no answer) rather than refusing: publishes answer 503 within the
//! broker's 2 s round-trip timeout, streams stay open with their heartbeats, and after SIGCONT
//! publishing and delivery resume: no `reset` (nothing was lost), nothing twice, and a stream
//! that resumed during the hang gets its replay once Redis answers. The publish whose `XADD`
//! timed out is in doubt: Redis runs it on SIGCONT, so it may still be delivered.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use house::{Config, Route};
use support::*;

/// The broker's timeout for one Redis round trip (`IO_TIMEOUT` in broker.rs): a publish whose
/// `XADD` gets no answer is refused once it passes.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Slack on top of [`ACK_TIMEOUT`] for a loaded machine: a publish queued behind one that is
/// already waiting can wait for both.
const SLACK: Duration = Duration::from_secs(3);

/// Heartbeats in these tests, so a few arrive during the hang.
const HEARTBEAT: Duration = Duration::from_millis(300);

/// A `redis-server` child process, continued and killed when dropped.
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
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
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

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Stops the process: the kernel still accepts connections and buffers commands, but
    /// nothing answers.
    fn hang(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn routes() -> Vec<Route> {
    let mut routes = room_routes();
    routes.extend([count_route()]);
    routes
}

fn node(redis: &Redis) -> TestServer {
    let config = Config::default()
        .with_redis(redis.url())
        .with_heartbeat_interval(HEARTBEAT);
    let server = TestServer::start(config, routes());
    wait_for("the node to reach Redis", || {
        status_of(&server.get("/send?room=warmup&text=x")) == 200
    });
    server
}

fn send(server: &TestServer, room: &str, text: &str) -> String {
    server.get(&format!("/send?room={room}&text={text}"))
}

/// Sends and returns the answer's status and how long it took.
fn timed_send(server: &TestServer, room: &str, text: &str) -> (u16, Duration) {
    let started = Instant::now();
    let answer = send(server, room, text);
    (status_of(&answer), started.elapsed())
}

fn count(server: &TestServer, channel: &str) -> usize {
    body_of(&server.get(&format!("/count?channel={channel}")))
        .parse()
        .unwrap()
}

#[test]
fn a_hung_redis_answers_503_in_time_keeps_streams_and_resumes() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut stream = subscribe(&b, "/source?room=h");
    wait_for("the stream to attach", || count(&b, "h") == 1);
    assert_eq!(status_of(&send(&a, "h", "before")), 200);
    let mut buffer = Vec::new();
    read_until_count(&mut stream, &mut buffer, "data: before", 1);

    redis.hang();
    // The first publish waits for its `XADD` until the round trip times out, then is refused.
    let (status, took) = timed_send(&a, "h", "hung");
    assert_eq!(status, 503, "a publish to a hung Redis");
    assert!(took < ACK_TIMEOUT + SLACK, "the 503 took {took:?}");
    // Once the node knows, publishes on either node are refused without waiting the timeout
    // again (beyond the one already running).
    for node in [&a, &b] {
        let (status, took) = timed_send(node, "h", "refused");
        assert_eq!(status, 503);
        assert!(took < ACK_TIMEOUT + SLACK, "the 503 took {took:?}");
    }
    // The nodes serve everything else, and the stream stays open: heartbeats keep coming.
    assert_eq!(count(&b, "h"), 1);
    let seen = count_of(&buffer, ": heartbeat");
    read_until_count(&mut stream, &mut buffer, ": heartbeat", seen + 3);

    redis.resume();
    wait_for("publishes to work again", || {
        status_of(&send(&a, "h", "after")) == 200
    });
    let text = read_until_count(&mut stream, &mut buffer, "data: after", 1);
    let from_before = &text[text.find("data: before").unwrap()..];
    // The stream is intact: it was not reset, and nothing arrived twice.
    assert!(!from_before.contains("event: reset"), "{from_before}");
    // The publishes refused at once never reached Redis. The one that timed out is in doubt:
    // its `XADD` sat in the stopped server's socket buffer, and Redis runs it on SIGCONT, so
    // its 503 means "not confirmed", not "not published". It arrives at most once.
    assert!(!from_before.contains("data: refused"), "{from_before}");
    assert!(
        count_of(from_before.as_bytes(), "data: hung") <= 1,
        "{from_before}"
    );
    let ids: Vec<String> = sse_events(from_before)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "duplicate ids: {from_before}");
    // A publish after the hang reaches a stream opened after it too, on the other node.
    let mut late = subscribe(&a, "/source?room=h");
    wait_for("the late stream to attach", || count(&a, "h") == 1);
    assert_eq!(status_of(&send(&b, "h", "later")), 200);
    read_until(&mut late, "data: later");
    read_until_count(&mut stream, &mut buffer, "data: later", 1);
}

#[test]
fn a_stream_opened_during_the_hang_gets_its_replay_after_it() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    // The first stream makes `b` read the room, so its events have ids to resume from.
    let mut first = subscribe(&b, "/source?room=r");
    wait_for("the stream to attach", || count(&b, "r") == 1);
    assert_eq!(status_of(&send(&a, "r", "one")), 200);
    let text = read_until(&mut first, "data: one");
    let (id, _) = sse_events(&text).pop().unwrap();

    redis.hang();
    wait_for("publishes to fail with 503", || {
        timed_send(&a, "r", "hung").0 == 503
    });
    // A client resuming from before the hang: its replay must wait for Redis. Its head may
    // come now or later, but the connection stays open meanwhile.
    let mut resumed = b.connect();
    std::io::Write::write_all(
        &mut resumed,
        format!("GET /source?room=r HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {id}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    resumed
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut early = [0u8; 16 * 1024];
    let mut buffer = Vec::new();
    match resumed.read(&mut early) {
        Ok(0) => panic!("a stream opened during the hang was closed"),
        Ok(n) => buffer.extend_from_slice(&early[..n]),
        Err(err) => assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err}"
        ),
    }
    resumed.set_read_timeout(Some(PATIENCE)).unwrap();

    redis.resume();
    wait_for("publishes to work again", || {
        status_of(&send(&a, "r", "two")) == 200
    });
    let text = read_until_count(&mut resumed, &mut buffer, "data: two", 1);
    assert!(!text.contains("data: one"), "replayed what it had: {text}");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("event: reset"), "{text}");
}
