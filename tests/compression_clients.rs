//! Compressed streams (`Config::with_compression`) read by real clients as child processes:
//! curl `--compressed -N`, Python `httpx` and Node (`fetch`, and `http` piped through
//! `zlib`). Each event is published only once the client has printed the one before, so every
//! event must be decoded as its chunk arrives (not at the close); what each client prints must
//! be exactly what a plain client reads, and a server shutting down (which ends the stream
//! without a gzip trailer) must leave every client exiting cleanly.
//!
//! Needs curl, `python3` with `httpx` and `node` (`.ci/setup` installs them); without them
//! these tests fail (they never skip).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use house::{Config, Event, Handle, Route, Server, Subscribe};

/// How long any single wait may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// Streams the body decoded by `httpx` to stdout as it arrives.
const HTTPX: &str = r#"
import sys, httpx
with httpx.stream("GET", sys.argv[1], headers={"Accept-Encoding": "gzip"}, timeout=30) as r:
    if r.headers.get("content-encoding") != "gzip":
        sys.exit("not gzip: %r" % dict(r.headers))
    for chunk in r.iter_bytes():
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
"#;

/// Streams the body to stdout: decoded by `fetch` (undici), or read with `http` and piped
/// through `zlib.createGunzip` (with a sync flush at the end, as undici does: the stream has no
/// gzip trailer, and `Z_FINISH` would call the close an error).
const NODE: &str = r#"
import http from "node:http";
import zlib from "node:zlib";
const [url, mode] = process.argv.slice(1);
const fail = (why) => { console.error(why); process.exit(1); };
if (mode === "fetch") {
  const res = await fetch(url, { headers: { "accept-encoding": "gzip" } });
  if (res.headers.get("content-encoding") !== "gzip") fail(`not gzip: ${[...res.headers]}`);
  for await (const chunk of res.body) process.stdout.write(chunk);
} else {
  http.get(url, { headers: { "accept-encoding": "gzip" } }, (res) => {
    if (res.headers["content-encoding"] !== "gzip") fail(`not gzip: ${JSON.stringify(res.headers)}`);
    const sync = zlib.constants.Z_SYNC_FLUSH;
    const gunzip = zlib.createGunzip({ flush: sync, finishFlush: sync });
    gunzip.on("error", (err) => fail(`gunzip: ${err}`));
    res.pipe(gunzip).pipe(process.stdout);
  }).on("error", (err) => fail(`http: ${err}`));
}
"#;

struct Running {
    url: String,
    port: u16,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start() -> Running {
        let config = Config::default()
            .with_compression(true)
            .with_retry_spread(0.0);
        let routes = vec![Route::stream("/source", |_| Subscribe::to("room"))];
        let server = Server::bind("127.0.0.1:0", config, routes).unwrap();
        let port = server.local_addr().port();
        let handle = server.handle();
        Running {
            url: format!("http://127.0.0.1:{port}/source"),
            port,
            handle,
            thread: Some(thread::spawn(move || server.run())),
        }
    }

    fn wait_subscribers(&self, count: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.handle.stats().subscribers != count {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for subscribers"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client process whose stdout is collected as it arrives.
struct Client {
    child: Child,
    chunks: Receiver<Vec<u8>>,
    got: Vec<u8>,
    ended: bool,
}

impl Client {
    fn spawn(mut command: Command) -> Client {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
        let mut stdout = child.stdout.take().unwrap();
        let (tx, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            chunks,
            got: Vec::new(),
            ended: false,
        }
    }

    /// Waits until stdout holds `count` blank-line event ends.
    fn until_events(&mut self, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while count_of(&self.got, b"\n\n") < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.got.extend_from_slice(&chunk),
                Err(_) => {
                    let stderr = self.stderr_so_far();
                    panic!(
                        "waiting for {count} events, got {:?}; stderr: {stderr}",
                        String::from_utf8_lossy(&self.got)
                    )
                }
            }
        }
    }

    fn stderr_so_far(&mut self) -> String {
        if !self.ended {
            let _ = self.child.kill();
            self.ended = true;
        }
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }

    /// Waits for the process to exit on its own; asserts it succeeded and printed nothing
    /// more. Returns what it printed.
    fn exits_cleanly(mut self) -> Vec<u8> {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            thread::sleep(Duration::from_millis(20));
        };
        let before = self.got.len();
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_secs(1)) {
            self.got.extend_from_slice(&chunk);
        }
        self.ended = true;
        let stderr = self.stderr_so_far();
        assert!(status.success(), "exit {status}; stderr: {stderr}");
        assert_eq!(self.got.len(), before, "printed more after the close");
        std::mem::take(&mut self.got)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn count_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Events of every shape: JSON, multi-line, named, empty, non-ASCII, and one of 20 KB.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..8 {
        events.push(Event::json(&serde_json::json!({
            "name": format!("user{i}"),
            "message": format!("hello {i}, ça va? 🙂"),
        })));
    }
    events.push(Event::new("line one\nline two\r\nline three").event("note"));
    events.push(Event::new(""));
    let big: String = (0..20_000)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    events.push(Event::new(big));
    events.push(Event::new("after the big one"));
    events
}

/// Runs `client` (given the stream's URL) against a compressing server beside a plain raw
/// reader; each event is published once the client printed the previous one.
fn decodes_every_event(client: impl FnOnce(&str) -> Command) {
    let mut server = Running::start();
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain
        .write_all(b"GET /source HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut client = Client::spawn(client(&server.url));
    server.wait_subscribers(2);
    client.until_events(1);
    let events = events();
    let count = events.len();
    for (i, event) in events.into_iter().enumerate() {
        server.handle.publish("room", event).unwrap();
        // The retry hint, then the events so far.
        client.until_events(i + 2);
    }
    // The client took gzip: each event was compressed (once).
    let deadline = Instant::now() + PATIENCE;
    while server.handle.stats().events_compressed != count as u64 {
        assert!(Instant::now() < deadline, "events were not compressed");
        thread::sleep(Duration::from_millis(10));
    }
    server.stop();
    let got = String::from_utf8(client.exits_cleanly()).unwrap();

    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut raw = Vec::new();
    plain.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(!raw.contains("Content-Encoding"), "{raw}");
    let want = raw.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(count_of(want.as_bytes(), b"\n\n"), count + 1);
    assert_eq!(got, want);
}

#[test]
fn curl_compressed_decodes_every_event() {
    decodes_every_event(|url| {
        let mut command = Command::new("curl");
        command.args([
            "--silent",
            "--show-error",
            "--no-buffer",
            "--compressed",
            url,
        ]);
        command
    });
}

#[test]
fn python_httpx_decodes_every_event() {
    decodes_every_event(|url| {
        let mut command = Command::new("python3");
        command.args(["-c", HTTPX, url]);
        command
    });
}

#[test]
fn node_fetch_decodes_every_event() {
    decodes_every_event(|url| {
        let mut command = Command::new("node");
        command.args(["--input-type=module", "-e", NODE, url, "fetch"]);
        command
    });
}

#[test]
fn node_zlib_decodes_every_event() {
    decodes_every_event(|url| {
        let mut command = Command::new("node");
        command.args(["--input-type=module", "-e", NODE, url, "zlib"]);
        command
    });
}
