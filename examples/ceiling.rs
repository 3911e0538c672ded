//! `cargo run --release --example ceiling -- --port 4600 [--nagle]`
//!
//! The featureless server: the practical ceiling `examples/compare.rs` shows beside house. One
//! thread, one mio `Poll`, no parsing beyond the request line's path and query, no headers
//! kept, no routing table, no limits, no timers. It speaks just enough of the benchmark's shape:
//!
//!   GET /source?room=X                          an SSE stream of room X
//!   GET /send-message?room=X&name=N&message=M   publishes {"name":N,"message":M} to room X
//!   GET /hello                                  "Hello, World!"
//!
//! What makes it cheap (see `../shared/PERF-NOTES.md`): an event is framed once into one shared
//! buffer and handed to each subscriber with one `write` straight from it; a connection owns
//! nothing but its socket, its room and a slot for leftovers, which is allocated only when a
//! socket is full (bytes waiting to be written) or a request arrives in pieces. Sockets are
//! registered READABLE | WRITABLE once at accept (edge-triggered, so a writable socket with
//! nothing queued costs nothing). Nagle is off, as in house; `--nagle` leaves it on.
//!
//! It is a measuring stick, not a server: it trusts its clients (the query values are copied
//! into the JSON unescaped; the load generator sends only letters and digits), answers every
//! other path 404 and closes a connection on any error.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The listener's token; connections use their slot index + 1.
const LISTENER: Token = Token(0);

/// Bytes read per `read` call into the one shared read buffer.
const READ_CHUNK: usize = 64 * 1024;

/// A request head larger than this closes the connection.
const MAX_HEAD: usize = 8 * 1024;

/// A connection: its socket, the room it streams (if it is a stream), and leftovers.
struct Conn {
    stream: TcpStream,
    /// The room's index in `Server::rooms` once the connection is an SSE stream.
    room: Option<u32>,
    /// Allocated only while bytes wait: a partial request, or output the socket did not take.
    spill: Option<Box<Spill>>,
}

#[derive(Default)]
struct Spill {
    input: Vec<u8>,
    output: Vec<u8>,
}

struct Server {
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Room names and their subscribers (slot indices), side by side.
    room_names: Vec<String>,
    rooms: Vec<Vec<usize>>,
    nodelay: bool,
    read_buf: Vec<u8>,
    /// The shared event frame: built once per publish, written to every subscriber.
    frame: Vec<u8>,
}

fn main() -> io::Result<()> {
    let mut port = 4600u16;
    let mut nagle = false;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(io::Error::other)? {
        match arg {
            lexopt::Arg::Long("port") => {
                let value = parser.value().map_err(io::Error::other)?;
                port = lexopt::ValueExt::parse(&value).map_err(io::Error::other)?;
            }
            lexopt::Arg::Long("nagle") => nagle = true,
            _ => {
                eprintln!("usage: ceiling [--port N] [--nagle]");
                std::process::exit(2);
            }
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Server {
        listener: TcpListener::bind(addr)?,
        conns: Vec::new(),
        free: Vec::new(),
        room_names: Vec::new(),
        rooms: Vec::new(),
        nodelay: !nagle,
        read_buf: vec![0; READ_CHUNK],
        frame: Vec::with_capacity(512),
    };
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut server.listener, LISTENER, Interest::READABLE)?;
    eprintln!(
        "ceiling: listening on {addr} (nagle {})",
        if nagle { "on" } else { "off" }
    );
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                server.accept(&poll)?;
                continue;
            }
            let slot = event.token().0 - 1;
            if event.is_writable() {
                server.flush(slot);
            }
            if event.is_readable() {
                server.read(slot);
            }
        }
    }
}

impl Server {
    fn accept(&mut self, poll: &Poll) -> io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, or a connection reset before we took it: keep serving.
                Err(e) => {
                    eprintln!("ceiling: accept: {e}");
                    return Ok(());
                }
            };
            let _ = stream.set_nodelay(self.nodelay);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            poll.registry().register(
                &mut stream,
                Token(slot + 1),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            self.conns[slot] = Some(Conn {
                stream,
                room: None,
                spill: None,
            });
        }
    }

    fn close(&mut self, slot: usize) {
        // Dropping the stream closes the socket, which also takes it out of the poll set.
        if let Some(conn) = self.conns[slot].take() {
            if let Some(room) = conn.room {
                let subs = &mut self.rooms[room as usize];
                if let Some(at) = subs.iter().position(|&s| s == slot) {
                    subs.swap_remove(at);
                }
            }
            self.free.push(slot);
        }
    }

    fn read(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns[slot].as_mut() else {
                return;
            };
            match conn.stream.read(&mut self.read_buf) {
                Ok(0) => return self.close(slot),
                Ok(n) => {
                    let mut buf = std::mem::take(&mut self.read_buf);
                    let open = self.requests(slot, &buf[..n]);
                    buf.resize(READ_CHUNK, 0);
                    self.read_buf = buf;
                    if !open {
                        return self.close(slot);
                    }
                    if n < READ_CHUNK {
                        // A short read drained the socket: save the `read` that would say so.
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot),
            }
        }
    }

    /// Handles every complete request in `bytes` (after any saved partial one); false = close.
    fn requests(&mut self, slot: usize, bytes: &[u8]) -> bool {
        let saved = self.conns[slot]
            .as_mut()
            .and_then(|c| c.spill.as_mut())
            .filter(|s| !s.input.is_empty())
            .map(|s| {
                let mut input = std::mem::take(&mut s.input);
                input.extend_from_slice(bytes);
                input
            });
        let data = saved.as_deref().unwrap_or(bytes);
        let mut at = 0;
        while let Some(end) = find(&data[at..], b"\r\n\r\n") {
            if !self.request(slot, &data[at..at + end]) {
                return false;
            }
            at += end + 4;
        }
        let rest = &data[at..];
        if rest.len() > MAX_HEAD {
            return false;
        }
        if !rest.is_empty() {
            if let Some(conn) = self.conns[slot].as_mut() {
                let spill = conn.spill.get_or_insert_with(Box::default);
                spill.input.clear();
                spill.input.extend_from_slice(rest);
            }
        }
        true
    }

    /// One request head (without the blank line); false = close the connection.
    fn request(&mut self, slot: usize, head: &[u8]) -> bool {
        let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
        let mut parts = line.split(|&b| b == b' ');
        let (Some(b"GET"), Some(target)) = (parts.next(), parts.next()) else {
            return self.send(
                slot,
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
            );
        };
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(q) => (&target[..q], &target[q + 1..]),
            None => (target, &b""[..]),
        };
        match path {
            b"/hello" => self.send(
                slot,
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
            ),
            b"/source" => {
                let room = self.room(param(query, b"room"));
                if let Some(conn) = self.conns[slot].as_mut() {
                    conn.room = Some(room as u32);
                }
                self.rooms[room].push(slot);
                self.send(
                    slot,
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                )
            }
            b"/send-message" => {
                let room = self.room(param(query, b"room"));
                let mut frame = std::mem::take(&mut self.frame);
                frame.clear();
                frame.extend_from_slice(b"data: {\"name\":\"");
                frame.extend_from_slice(param(query, b"name"));
                frame.extend_from_slice(b"\",\"message\":\"");
                frame.extend_from_slice(param(query, b"message"));
                frame.extend_from_slice(b"\"}\n\n");
                // Index loop: a failed send closes (and swap-removes) a subscriber of this room.
                let mut i = 0;
                while let Some(&sub) = self.rooms[room].get(i) {
                    if self.send(sub, &frame) {
                        i += 1;
                    } else {
                        self.close(sub);
                    }
                }
                self.frame = frame;
                self.send(slot, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
            }
            _ => self.send(slot, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        }
    }

    /// The index of a room, created on first use.
    fn room(&mut self, name: &[u8]) -> usize {
        let name = String::from_utf8_lossy(name);
        if let Some(at) = self.room_names.iter().position(|n| *n == name) {
            return at;
        }
        self.room_names.push(name.into_owned());
        self.rooms.push(Vec::new());
        self.rooms.len() - 1
    }

    /// One `write` of `bytes`; what the socket does not take waits in the spill. False = close.
    fn send(&mut self, slot: usize, bytes: &[u8]) -> bool {
        let Some(conn) = self.conns[slot].as_mut() else {
            return false;
        };
        if let Some(spill) = conn.spill.as_mut().filter(|s| !s.output.is_empty()) {
            // Earlier bytes are still waiting: keep the order.
            spill.output.extend_from_slice(bytes);
            return true;
        }
        let written = loop {
            match conn.stream.write(bytes) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        };
        if written < bytes.len() {
            let spill = conn.spill.get_or_insert_with(Box::default);
            spill.output.extend_from_slice(&bytes[written..]);
        }
        true
    }

    /// The socket became writable: write what waits, and free the spill once it is empty.
    fn flush(&mut self, slot: usize) {
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        let Some(spill) = conn.spill.as_mut() else {
            return;
        };
        while !spill.output.is_empty() {
            match conn.stream.write(&spill.output) {
                Ok(n) => {
                    spill.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot),
            }
        }
        if spill.input.is_empty() {
            conn.spill = None;
        }
    }
}

/// The raw value of `name` in a query string (no percent-decoding), or empty.
fn param<'a>(query: &'a [u8], name: &[u8]) -> &'a [u8] {
    query
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix(b"="))
        .unwrap_or(b"")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
