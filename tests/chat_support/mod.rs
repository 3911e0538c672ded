//! The chat example, started in-process on an ephemeral port, and raw-socket helpers for the
//! chat tests.
// Each test crate uses a different subset of the helpers; a failed unwrap is a failed test.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use house::{Handle, Server};

// The example's own file, so the tests exercise exactly the routes `cargo run --example chat`
// serves. Its `main` and flag parsing are only used by the binary.
#[allow(dead_code)]
#[path = "../../examples/chat.rs"]
pub(crate) mod app;

/// A running chat server; shut down and joined on drop.
pub(crate) struct Chat {
    pub addr: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Starts the chat app on `127.0.0.1:0`, with a send rate high enough for tests that send
/// many messages from one address.
pub(crate) fn spawn_chat() -> Chat {
    spawn_chat_with(app::Rate {
        messages: 1000,
        per: Duration::from_secs(1),
    })
}

/// Starts the chat app on `127.0.0.1:0` with `rate` (the example's default is
/// `app::Rate::default()`).
pub(crate) fn spawn_chat_with(rate: app::Rate) -> Chat {
    spawn_chat_archived(rate, app::Archive::off())
}

/// Starts the chat app on `127.0.0.1:0` with `rate` and `archive` (see `app::Archive::open`).
pub(crate) fn spawn_chat_archived(rate: app::Rate, archive: app::Archive) -> Chat {
    let server = Server::bind(
        "127.0.0.1:0",
        app::base_config(),
        app::routes(rate).unwrap(),
    )
    .unwrap()
    .with_state(archive);
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    Chat {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A fresh directory for one test's archive, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// `house-NAME-PID` in the system's temp dir, emptied first.
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("house-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The archive's file in it.
    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("chat.sqlite3")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the chat app with a high send rate and its archive in `dir` (the file is created if
/// missing, so a second call on the same `dir` is a restart).
pub(crate) fn spawn_chat_in(dir: &TempDir) -> Chat {
    let rate = app::Rate {
        messages: 1000,
        per: Duration::from_secs(1),
    };
    spawn_chat_archived(rate, app::Archive::open(&dir.db()).unwrap())
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            // Don't turn a failing test's panic into an abort.
            if !std::thread::panicking() {
                result.unwrap().unwrap();
            }
        }
    }
}

/// How long any single read may wait before a test fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `raw` (a whole request, which should say `Connection: close`) and returns everything
/// the server sends until it closes.
pub(crate) fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.write_all(raw).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    out
}

/// A `GET` of `target` with `Connection: close` and `headers` (each `Name: value`), as text.
pub(crate) fn get(addr: SocketAddr, target: &str, headers: &[&str]) -> Response {
    request(addr, "GET", target, headers, "")
}

/// A request with `Connection: close`; a non-empty `body` is sent as a form.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &str,
) -> Response {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for header in headers {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    if !body.is_empty() {
        raw.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    Response::parse(&exchange(addr, raw.as_bytes()))
}

/// A response split into status line, headers and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn parse(bytes: &[u8]) -> Response {
        let end = find(bytes, b"\r\n\r\n").expect("a complete response head");
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_ascii_lowercase(), value.to_owned())
            })
            .collect();
        Response {
            status_line,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    /// The status code.
    pub(crate) fn status(&self) -> u16 {
        self.status_line[9..12].parse().unwrap()
    }

    /// The value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// An open SSE stream.
pub(crate) struct Stream {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The stream's id, its first event (`event: house-stream`), for the page's joinable
    /// `/rooms/NAME/source`; empty for `/source?room=`.
    pub id: String,
}

/// Subscribes to `target` (e.g. `/source?room=x`) and reads past the response head, the
/// `retry:` hint and, on `/rooms/NAME/source`, the stream's id, so the subscription is
/// registered when this returns.
pub(crate) fn subscribe(addr: SocketAddr, target: &str) -> Stream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(stream, "GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut sse = Stream {
        stream,
        buf: Vec::new(),
        id: String::new(),
    };
    let head = sse.read_until(b"\r\n\r\n");
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    let retry = sse.next_block();
    assert!(retry.starts_with("retry:"), "{retry}");
    if !target.starts_with("/rooms/") {
        return sse;
    }
    let first = sse.next_block();
    sse.id = first
        .strip_prefix("event: house-stream\ndata: ")
        .unwrap_or_else(|| panic!("the stream's id first: {first:?}"))
        .trim_end()
        .to_owned();
    sse
}

impl Stream {
    fn read_until(&mut self, delimiter: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.buf, delimiter) {
                let rest = self.buf.split_off(at + delimiter.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            let mut chunk = [0; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .expect("an event before the timeout");
            assert!(
                n > 0,
                "the stream closed; had {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next block up to a blank line, skipping heartbeat comments.
    fn next_block(&mut self) -> String {
        loop {
            let block = String::from_utf8(self.read_until(b"\n\n")).unwrap();
            if !block.starts_with(':') {
                return block;
            }
        }
    }

    /// The `data` of the next event, parsed as JSON.
    pub(crate) fn next_json(&mut self) -> serde_json::Value {
        let block = self.next_block();
        let data: Vec<&str> = block
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .collect();
        assert!(!data.is_empty(), "an event without data: {block:?}");
        serde_json::from_str(&data.join("\n")).unwrap()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
