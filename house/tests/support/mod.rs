//! Shared helpers for house's integration tests: a server on `127.0.0.1:0` on its own thread,
//! and raw-socket clients with bounded waits.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use house::{Config, Event, Handle, Route, Server, Subscribe};

/// How long any single wait in a test may take before the test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// A running server that shuts down when dropped.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    pub(crate) fn start(config: Config, routes: Vec<Route>) -> TestServer {
        TestServer::run(Server::bind("127.0.0.1:0", config, routes).unwrap())
    }

    /// Runs a server built by the test (with state, say) on its own thread.
    pub(crate) fn run(server: Server) -> TestServer {
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = thread::spawn(move || server.run());
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Sends raw bytes on a new connection and returns everything until the server closes it.
    pub(crate) fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        read_to_close(&mut stream)
    }

    /// A `GET` with `Connection: close`; returns the raw response.
    pub(crate) fn get(&self, target: &str) -> String {
        self.exchange(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// GETs each `(target, status, body)` row and asserts the response's status and body. A 400's
    /// body is house's error page, so `body` is only its reason: `400 Bad Request: {body}\n`.
    #[track_caller]
    pub(crate) fn check(&self, rows: &[(&str, u16, &str)]) {
        for (target, status, body) in rows {
            let response = self.get(target);
            assert_eq!(status_of(&response), *status, "{target}: {response}");
            let expected = if *status == 400 {
                format!("400 Bad Request: {body}\n")
            } else {
                body.to_string()
            };
            assert_eq!(body_of(&response), expected, "{target}");
        }
    }

    /// Stops the server and waits for `run` to return, with its result.
    pub(crate) fn stop(self) -> io::Result<()> {
        self.stop_and_join().unwrap()
    }

    /// Like [`stop`](Self::stop), but a panic of the loop's thread comes back as the `Err`.
    pub(crate) fn stop_and_join(mut self) -> thread::Result<io::Result<()>> {
        self.handle.shutdown();
        self.thread.take().unwrap().join()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

/// Everything until the peer closes (or the read times out, which fails the test).
pub(crate) fn read_to_close(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => {}
        // A reset after the response arrived still leaves the response readable.
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset && !bytes.is_empty() => {}
        Err(err) => panic!(
            "reading the response failed: {err} (got {:?})",
            String::from_utf8_lossy(&bytes)
        ),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads until `buffer` contains `pattern` `count` times; returns what was read so far.
pub(crate) fn read_until_count(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    pattern: &str,
    count: usize,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut chunk = [0u8; 16 * 1024];
    let mut found = count_of(buffer, pattern);
    while found < count {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {count} × {pattern:?} in {:?}",
            String::from_utf8_lossy(buffer)
        );
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed while waiting for {pattern:?}; got {:?}",
                String::from_utf8_lossy(buffer)
            ),
            Ok(n) => {
                // Only matches that start in the part not yet searched are new.
                let from = buffer.len().saturating_sub(pattern.len() - 1);
                buffer.extend_from_slice(&chunk[..n]);
                found += count_of(&buffer[from..], pattern);
            }
            Err(err) => panic!(
                "read failed waiting for {pattern:?}: {err}; got {:?}",
                String::from_utf8_lossy(buffer)
            ),
        }
    }
    String::from_utf8_lossy(buffer).into_owned()
}

/// Reads until `pattern` appears once.
pub(crate) fn read_until(stream: &mut TcpStream, pattern: &str) -> String {
    let mut buffer = Vec::new();
    read_until_count(stream, &mut buffer, pattern, 1)
}

pub(crate) fn count_of(haystack: &[u8], needle: &str) -> usize {
    let needle = needle.as_bytes();
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Opens an SSE subscription and reads until the stream's head (and retry hint) arrived.
pub(crate) fn subscribe(server: &TestServer, target: &str) -> TcpStream {
    let mut stream = server.connect();
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    read_until(&mut stream, "\r\n\r\n");
    stream
}

/// Reads a joinable stream's start: its head, the retry hint if any, and its first event, the
/// `event: house-stream` that names its id. Returns what was read and the id.
pub(crate) fn read_stream_start(stream: &mut TcpStream) -> (String, String) {
    let text = read_until(stream, "event: house-stream\ndata: ");
    // Read on until the id event's blank line, unless it came in the same read.
    let at = text.find("event: house-stream").unwrap();
    let ends = count_of(&text.as_bytes()[..at], "\n\n");
    let mut buffer = text.into_bytes();
    let text = read_until_count(stream, &mut buffer, "\n\n", ends + 1);
    let data = &text[at + "event: house-stream\ndata: ".len()..];
    let id = data.split_once('\n').unwrap().0.to_owned();
    (text, id)
}

/// The bytes of a stream's first event for `id` (see [`read_stream_start`]).
pub(crate) fn stream_id_event(id: &str) -> String {
    format!("event: house-stream\ndata: {id}\n\n")
}

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The status code of a raw response.
pub(crate) fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// The body of a raw response.
pub(crate) fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// File descriptors this process has open.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A route that reports how many subscribers `?channel=` has.
/// `/source?room=R` streams room `R` (default `lobby`); `/send?room=R&text=T` publishes `T`
/// to it and answers `sent`: the two routes most socket tests start from.
pub(crate) fn room_routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))
        }),
        Route::closing("/send", |ctx| {
            let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub.publish(&room, Event::new(text)).map(|_| "sent")
        }),
    ]
}

pub(crate) fn count_route() -> Route {
    Route::closing("/count", |ctx| {
        let channel = ctx.request.param("channel").unwrap_or("");
        ctx.hub.subscribers(channel).to_string()
    })
}

/// `(id, data)` of every event in an SSE byte stream's text, in order.
pub(crate) fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let id = block.lines().find_map(|l| l.strip_prefix("id: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id.to_owned(), data.to_owned()))
        })
        .collect()
}

/// A subscriber to `target` with a tiny receive buffer, which never reads.
pub(crate) fn stalled_subscriber(server: &TestServer, target: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    stream
}
