//! Compressed streams over real sockets (`Config::with_compression`): a client that takes gzip
//! decodes exactly the bytes a plain client gets; clients that do not (no header, `gzip;q=0`)
//! get today's bytes; each event is compressed once, however many subscribers take it; replays,
//! stream ids, resets and heartbeats are compressed too; and a lagging stream that skips or
//! replaces events drops whole chunks, so what it gets still decodes.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flate2::{Decompress, FlushDecompress};
use house::{Config, Event, LagPolicy, Route, Subscribe};
use support::*;

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Today's stream head with compression on, for a client that does not take gzip.
const PLAIN_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nVary: Accept-Encoding\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";

/// The same for a client that takes gzip.
const GZIP_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nVary: Accept-Encoding\r\n\
Content-Encoding: gzip\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";

/// Today's head with compression off.
const OFF_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";

fn routes() -> Vec<Route> {
    vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("room"))
        }),
        Route::stream("/joinable", |_| Subscribe::to("room").joinable()),
        Route::stream("/own", |_| {
            Subscribe::to("room").with_header("Content-Encoding", "identity")
        }),
    ]
}

fn config() -> Config {
    // No spread: every stream's head is the same bytes.
    Config::default()
        .with_compression(true)
        .with_retry_spread(0.0)
}

/// A stream read as it arrives: its head, the raw body, and the body decoded when gzipped.
struct Reader {
    stream: TcpStream,
    head: String,
    raw: Vec<u8>,
    /// `Some` once the head said `Content-Encoding: gzip`.
    inflate: Option<Decompress>,
    text: Vec<u8>,
}

impl Reader {
    /// Sends `GET target` with `headers` and reads the response head.
    fn open(server: &TestServer, target: &str, headers: &str) -> Reader {
        Reader::request(server, "GET", target, headers)
    }

    fn request(server: &TestServer, method: &str, target: &str, headers: &str) -> Reader {
        Reader::on(server.connect(), method, target, headers)
    }

    /// A subscriber that reads nothing until told: a receive buffer of 4 KiB.
    fn stalled(server: &TestServer, target: &str, headers: &str) -> Reader {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Reader::on(stream, "GET", target, headers)
    }

    fn on(mut stream: TcpStream, method: &str, target: &str, headers: &str) -> Reader {
        stream
            .write_all(format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes())
            .unwrap();
        let mut buffer = Vec::new();
        let text = read_until_count(&mut stream, &mut buffer, "\r\n\r\n", 1);
        let end = text.find("\r\n\r\n").unwrap() + 4;
        let head = text[..end].to_owned();
        let gzip = head.contains("\r\nContent-Encoding: gzip\r\n");
        let mut reader = Reader {
            stream,
            head,
            raw: Vec::new(),
            inflate: gzip.then(|| Decompress::new(false)),
            text: Vec::new(),
        };
        reader.take(&buffer[end..]);
        reader
    }

    /// Adds body bytes, decoding them if the stream is gzipped.
    fn take(&mut self, bytes: &[u8]) {
        let from = self.raw.len();
        self.raw.extend_from_slice(bytes);
        let Some(inflate) = &mut self.inflate else {
            self.text.extend_from_slice(bytes);
            return;
        };
        // The gzip header first, then deflate from wherever it stopped.
        let start = from.max(GZIP_HEADER.len());
        if self.raw.len() < start {
            return;
        }
        assert_eq!(self.raw[..GZIP_HEADER.len()], GZIP_HEADER, "gzip header");
        let input = &self.raw[start..];
        let mut at = 0;
        loop {
            self.text.reserve(64 * 1024);
            let before = inflate.total_in();
            inflate
                .decompress_vec(&input[at..], &mut self.text, FlushDecompress::Sync)
                .unwrap();
            at += (inflate.total_in() - before) as usize;
            if at == input.len() && self.text.len() < self.text.capacity() {
                break;
            }
        }
    }

    /// Reads until the decoded body holds `pattern` `count` times; returns it.
    fn until(&mut self, pattern: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut chunk = [0; 16 * 1024];
        while count_of(&self.text, pattern) < count {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} × {pattern:?} in {:?}",
                String::from_utf8_lossy(&self.text)
            );
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "closed waiting for {pattern:?}: {:?}",
                String::from_utf8_lossy(&self.text)
            );
            self.take(&chunk[..n]);
        }
        String::from_utf8(self.text.clone()).unwrap()
    }
}

/// Events of every shape: plain, multi-line, named, non-ASCII, and one of 20 KB.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..12 {
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

fn wait_subscribers(server: &TestServer, count: u64) {
    wait_for("subscribers", || server.handle.stats().subscribers == count);
}

#[test]
fn a_gzip_client_decodes_exactly_what_a_plain_client_gets() {
    let server = TestServer::start(config(), routes());
    let mut gzip = Reader::open(&server, "/source", "Accept-Encoding: gzip, deflate, br\r\n");
    let mut plain = Reader::open(&server, "/source", "");
    assert_eq!(gzip.head, GZIP_HEAD);
    assert_eq!(plain.head, PLAIN_HEAD);
    wait_subscribers(&server, 2);
    let events = events();
    let count = events.len();
    for event in events {
        server.handle.publish("room", event).unwrap();
    }
    let want = plain.until("\n\n", count + 1);
    assert!(want.starts_with("retry: 2000\n\n"), "{want}");
    assert_eq!(gzip.until("\n\n", count + 1), want);
    // And the compressed body is the smaller.
    assert!(
        gzip.raw.len() < plain.raw.len() / 2,
        "{} vs {}",
        gzip.raw.len(),
        plain.raw.len()
    );
}

#[test]
fn clients_that_refuse_gzip_get_todays_bytes() {
    let server = TestServer::start(config(), routes());
    let mut readers: Vec<Reader> = [
        "",
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: gzip;q=0, *\r\n",
        "Accept-Encoding: identity\r\n",
        "Accept-Encoding: br, *;q=0\r\n",
    ]
    .iter()
    .map(|headers| Reader::open(&server, "/source", headers))
    .collect();
    wait_subscribers(&server, readers.len() as u64);
    server.handle.publish("room", Event::new("hi")).unwrap();
    for reader in &mut readers {
        assert_eq!(reader.head, PLAIN_HEAD);
        let body = reader.until("data: hi\n\n", 1);
        let id = body
            .split("id: ")
            .nth(1)
            .unwrap()
            .split('\n')
            .next()
            .unwrap();
        assert_eq!(body, format!("retry: 2000\n\nid: {id}\ndata: hi\n\n"));
    }
    wait_for("stats", || server.handle.stats().events_delivered == 5);
    assert_eq!(server.handle.stats().events_compressed, 0);

    // A handler's own `Content-Encoding` stands, and its stream is not compressed.
    let mut own = Reader::open(&server, "/own", "Accept-Encoding: gzip\r\n");
    assert!(
        own.head.contains("\r\nContent-Encoding: identity\r\n"),
        "{}",
        own.head
    );
    assert!(!own.head.contains("gzip"), "{}", own.head);
    wait_subscribers(&server, readers.len() as u64 + 1);
    server.handle.publish("room", Event::new("again")).unwrap();
    assert!(own
        .until("data: again\n\n", 1)
        .starts_with("retry: 2000\n\nid: "));

    // With compression off, a client that takes gzip gets today's head: no `Vary` either.
    let off = TestServer::start(Config::default().with_retry_spread(0.0), routes());
    let mut reader = Reader::open(&off, "/source", "Accept-Encoding: gzip\r\n");
    assert_eq!(reader.head, OFF_HEAD);
    wait_subscribers(&off, 1);
    off.handle.publish("room", Event::new("hi")).unwrap();
    assert!(reader
        .until("data: hi\n\n", 1)
        .starts_with("retry: 2000\n\nid: "));
}

#[test]
fn each_event_is_compressed_once_for_all_its_subscribers() {
    let server = TestServer::start(config(), routes());
    let mut gzipped: Vec<Reader> = (0..40)
        .map(|_| Reader::open(&server, "/source", "Accept-Encoding: gzip\r\n"))
        .collect();
    let mut plain: Vec<Reader> = (0..3)
        .map(|_| Reader::open(&server, "/source", ""))
        .collect();
    // Only plain subscribers here: their events are not compressed at all.
    let mut other = Reader::open(&server, "/source?room=other", "");
    wait_subscribers(&server, 44);
    let events = events();
    let count = events.len();
    for event in events {
        server.handle.publish("room", event.clone()).unwrap();
        server.handle.publish("other", event).unwrap();
    }
    let want = plain[0].until("\n\n", count + 1);
    for reader in &mut plain[1..] {
        assert_eq!(reader.until("\n\n", count + 1), want);
    }
    for reader in &mut gzipped {
        assert_eq!(reader.until("\n\n", count + 1), want);
    }
    // Every compressed subscriber got the very same bytes: one chunk per event, shared.
    for reader in &gzipped[1..] {
        assert!(reader.raw == gzipped[0].raw);
    }
    other.until("\n\n", count + 1);
    // The shared stats are published once per timer tick.
    let delivered = 44 * count as u64;
    wait_for("stats", || {
        server.handle.stats().events_delivered == delivered
    });
    assert_eq!(server.handle.stats().events_compressed, count as u64);
}

#[test]
fn replays_resets_stream_ids_and_heartbeats_are_compressed() {
    let config = config().with_heartbeat_interval(Duration::from_millis(200));
    let server = TestServer::start(config, routes());
    let mut plain = Reader::open(&server, "/source", "");
    wait_subscribers(&server, 1);
    for i in 1..=5 {
        server
            .handle
            .publish("room", Event::new(format!("e{i}")))
            .unwrap();
    }
    let body = plain.until("\n\n", 6);
    let second = body
        .split("id: ")
        .nth(2)
        .unwrap()
        .split('\n')
        .next()
        .unwrap();

    // Resuming after the second event: the three it missed, then live events.
    let mut resumed = Reader::open(
        &server,
        "/joinable",
        &format!("Accept-Encoding: gzip\r\nLast-Event-ID: {second}\r\n"),
    );
    assert!(resumed.head.contains("Content-Encoding: gzip"));
    let (run, _) = second.rsplit_once('-').unwrap();
    let text = resumed.until("data: e5\n\n", 1);
    let id = text.split("event: house-stream\ndata: ").nth(1).unwrap();
    let id = id.split('\n').next().unwrap();
    assert_eq!(
        text,
        format!(
            "retry: 2000\n\nevent: house-stream\ndata: {id}\n\n\
             id: {run}-3\ndata: e3\n\nid: {run}-4\ndata: e4\n\nid: {run}-5\ndata: e5\n\n"
        )
    );
    wait_subscribers(&server, 2);
    server.handle.publish("room", Event::new("e6")).unwrap();
    let text = resumed.until(": heartbeat\n\n", 1);
    assert!(
        text.ends_with(&format!("id: {run}-6\ndata: e6\n\n: heartbeat\n\n")),
        "{text}"
    );

    // From another run: the reset signal, then what history there is.
    let mut reset = Reader::open(
        &server,
        "/source",
        "Accept-Encoding: gzip\r\nLast-Event-ID: 0-1\r\n",
    );
    let text = reset.until("data: e6\n\n", 1);
    assert!(
        text.starts_with("retry: 2000\n\nevent: reset\ndata: events were missed\n\nid: "),
        "{text}"
    );
    for i in 1..=6 {
        assert_eq!(
            count_of(text.as_bytes(), &format!("data: e{i}\n\n")),
            1,
            "{text}"
        );
    }
}

#[test]
fn head_requests_say_gzip_and_send_no_body() {
    let server = TestServer::start(config(), routes());
    let mut reader = Reader::request(&server, "HEAD", "/source", "Accept-Encoding: gzip\r\n");
    assert_eq!(reader.head, GZIP_HEAD);
    let mut rest = Vec::new();
    reader.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty() && reader.raw.is_empty());
}

/// `tag seq ` then letters and digits from a generator seeded by both, to 1 KiB: it compresses
/// only to about three quarters, so a stalled subscriber's queue fills as with plain events.
fn noise(tag: &str, seq: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = (seq as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.len() as u64;
    let mut text = format!("{tag} {seq:06} ");
    while text.len() < 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push(char::from(
            ALPHABET[(state % ALPHABET.len() as u64) as usize],
        ));
    }
    text
}

/// The `(tag, seq)` of each event, and `None` for each `reset`, in a decoded stream's text.
fn seen(text: &str) -> Vec<Option<(String, usize)>> {
    text.split("\n\n")
        .filter_map(|block| {
            if block.lines().any(|l| l == "event: reset") {
                return Some(None);
            }
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            let mut words = data.split(' ');
            let tag = words.next()?.to_owned();
            Some(Some((tag, words.next()?.parse().ok()?)))
        })
        .collect()
}

#[test]
fn lagging_gzip_streams_skip_or_replace_whole_chunks() {
    let config = config()
        .with_subscriber_queue_cap(64 * 1024)
        .with_lag_threshold(16 * 1024)
        .with_stream_send_buffer(4096);
    let policy = |path: &'static str, policy: LagPolicy| {
        Route::stream(path, move |_| {
            Subscribe::to("eur").and("usd").with_lag_policy(policy)
        })
    };
    let routes = vec![
        policy("/drop_oldest", LagPolicy::DropOldest),
        policy("/latest", LagPolicy::Latest),
        Route::stream("/source", |_| Subscribe::to("eur").and("usd")),
    ];
    let server = TestServer::start(config, routes);
    let gzip = "Accept-Encoding: gzip\r\n";
    let mut skipping = Reader::stalled(&server, "/drop_oldest", gzip);
    let mut latest = Reader::stalled(&server, "/latest", gzip);
    let mut fast = Reader::open(&server, "/source", gzip);
    wait_subscribers(&server, 6);
    // Far past the queue cap, in batches the fast reader takes before the next.
    let total = 600;
    for seq in 0..total {
        let tag = ["eur", "usd"][seq % 2];
        server
            .handle
            .publish(tag, Event::new(noise(tag, seq / 2)))
            .unwrap();
        if seq % 8 == 7 {
            fast.until("\n\n", seq + 2);
        }
    }
    fast.until("\n\n", total + 1);
    let last = total / 2 - 1;

    // Skipping ahead: what the kernel held, then a reset wherever events are missing.
    let text = skipping.until(&format!("usd {last:06} "), 1);
    let events = seen(&text);
    assert!(events.contains(&None), "no reset");
    let mut previous: Option<usize> = None;
    let mut after_reset = false;
    for event in &events {
        match event {
            None => after_reset = true,
            Some((tag, seq)) => {
                // Events alternate eur, usd: their global order.
                let at = seq * 2 + usize::from(tag == "usd");
                let next = previous.map_or(0, |p| p + 1);
                assert!(
                    at == next || (after_reset && at > next),
                    "{at} after {previous:?}"
                );
                (previous, after_reset) = (Some(at), false);
            }
        }
    }
    assert_eq!(previous, Some(total - 1));

    // Latest: the backlog replaced by the newest event of each channel.
    latest.until(&format!("eur {last:06} "), 1);
    let text = latest.until(&format!("usd {last:06} "), 1);
    let events = seen(&text);
    assert!(!events.contains(&None));
    assert!(events.len() < 100, "{} events: the backlog", events.len());
    for tag in ["eur", "usd"] {
        let seqs: Vec<usize> = events
            .iter()
            .flatten()
            .filter(|(t, _)| t == tag)
            .map(|(_, seq)| *seq)
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{tag}: {seqs:?}");
    }
}
