//! Stage: accepting connections, refusing them at the connection cap (an `EventSource` with a
//! `retry:` that brings it back later, anything else with 503), and pausing while the process
//! is out of file descriptors.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::Server;
use crate::config::ACCEPT_BACKOFF;
use crate::conn::{interrupted, would_block, Conn};
use crate::cors::Cors;
use crate::response::{Response, Status};
use crate::sse::{stream_head, stream_response};

impl Server {
    /// Accepts until `WouldBlock`, or until out of file descriptors.
    pub(super) fn accept(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(err) if would_block(&err) => return,
                Err(err) if interrupted(&err) => {}
                Err(err) if out_of_fds(&err) => {
                    // The listener stays readable while connections wait; with no fds to take
                    // them, retrying now would spin. Resume from the timer sweep.
                    log::warn!("out of file descriptors ({err}); pausing accepts");
                    self.stats.accept_backoffs += 1;
                    self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                    return;
                }
                // A connection that failed between SYN and accept (ECONNABORTED, …) affects
                // only itself.
                Err(err) => log::debug!("accept failed: {err}"),
            }
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.config.max_connections() || self.shutdown_deadline.is_some() {
            if self.shutdown_deadline.is_none() && self.refusals.len() < self.config.refusal_slots()
            {
                self.hold_refusal(socket, peer);
                return;
            }
            // Best effort: the socket is new, so this small write fits its send buffer.
            let _ = socket.write(&at_capacity(self.config.cors(), None));
            self.stats.connections_refused += 1;
            log::debug!("{peer}: refused at the connection cap");
            return;
        }
        // Events are written whole as soon as they are published; Nagle would hold them back.
        let _ = socket.set_nodelay(true);
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            log::warn!("{peer}: could not register the connection: {err}");
            return;
        }
        self.stats.connections_accepted += 1;
        self.conns
            .insert(token, Box::new(Conn::new(socket, peer, self.now)));
    }
}

impl Server {
    /// Keeps a connection past the cap just long enough to read its request head, so that an
    /// `EventSource` can be told to come back later instead of being failed for good.
    fn hold_refusal(&mut self, mut socket: TcpStream, peer: SocketAddr) {
        let token = Token(self.next_refusal);
        self.next_refusal += 1;
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            log::warn!("{peer}: could not register the connection: {err}");
            return;
        }
        let deadline = self.now + self.config.refusal_wait();
        self.refusals.insert(
            token,
            Refusal {
                socket,
                peer,
                head: Vec::new(),
                deadline,
            },
        );
    }

    /// Reads what a connection past the cap sent; once its head is in (or it sent too much),
    /// answers and closes it.
    pub(super) fn refusal_event(&mut self, token: Token) {
        let Some(refusal) = self.refusals.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 1024];
        loop {
            let want = (REFUSAL_HEAD - refusal.head.len()).min(chunk.len());
            match refusal.socket.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    refusal.head.extend_from_slice(&chunk[..n]);
                    if refusal.head.len() >= REFUSAL_HEAD {
                        break;
                    }
                }
                Err(err) if would_block(&err) => {
                    if refusal.head_complete() {
                        break;
                    }
                    return;
                }
                Err(err) if interrupted(&err) => {}
                Err(_) => break,
            }
        }
        self.refuse(token);
    }

    /// Answers a connection past the cap and closes it: an event stream gets a spread-out
    /// `retry:` (see [`CAP_RETRY`](crate::limits::CAP_RETRY)), anything else the 503.
    pub(super) fn refuse(&mut self, token: Token) {
        let Some(mut refusal) = self.refusals.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut refusal.socket);
        let head = RefusedHead::parse(&refusal.head);
        let origin = head.as_ref().and_then(|h| h.origin.as_deref());
        let answer = if head.as_ref().is_some_and(|h| h.wants_stream) {
            let retry = self.config.cap_retry();
            let retry = self.jitter.between(retry, retry * 2);
            let mut response = stream_response();
            if let Some(cors) = self.config.cors() {
                response = cors.apply(response, origin);
            }
            self.stats.streams_deferred += 1;
            stream_head(&response, Some(retry))
        } else {
            at_capacity(self.config.cors(), origin)
        };
        // Best effort: the socket is new, so this small write fits its send buffer.
        let _ = refusal.socket.write(&answer);
        self.stats.connections_refused += 1;
        log::debug!("{}: refused at the connection cap", refusal.peer);
    }

    /// The connections past the cap whose head did not come in time, at `now`.
    pub(super) fn overdue_refusals(&self, now: Instant) -> Vec<Token> {
        self.refusals
            .iter()
            .filter(|(_, refusal)| now >= refusal.deadline)
            .map(|(&token, _)| token)
            .collect()
    }
}

/// Bytes of a refused connection's request read at most: enough for a browser's head.
const REFUSAL_HEAD: usize = 8 * 1024;

/// A connection past the connection cap, held only until its request head is read.
#[derive(Debug)]
pub(super) struct Refusal {
    socket: TcpStream,
    peer: SocketAddr,
    head: Vec<u8>,
    deadline: Instant,
}

impl Refusal {
    fn head_complete(&self) -> bool {
        self.head.windows(4).any(|w| w == b"\r\n\r\n")
    }
}

/// What a refusal needs from a request head.
struct RefusedHead {
    /// A `GET` that accepts `text/event-stream`, as every `EventSource` sends.
    wants_stream: bool,
    origin: Option<String>,
}

impl RefusedHead {
    fn parse(bytes: &[u8]) -> Option<RefusedHead> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        request.parse(bytes).ok()?.is_complete().then_some(())?;
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
        };
        let wants_stream = request.method == Some("GET")
            && header("accept").is_some_and(|accept| accept.contains("text/event-stream"));
        Some(RefusedHead {
            wants_stream,
            origin: header("origin").map(str::to_owned),
        })
    }
}

/// The answer to a connection refused at the connection cap (or during shutdown). Without a
/// request read, its origin is unknown: only a CORS setting for any origin can label it.
fn at_capacity(cors: Option<&Cors>, origin: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let response = Response::error(
        Status::SERVICE_UNAVAILABLE,
        "too many connections, retry soon",
    )
    .with_header("Retry-After", "1");
    let response = match cors {
        Some(cors) => cors.apply(response, origin),
        None => response,
    };
    response.write_to(&mut out, true);
    out
}

/// A non-blocking listener on `addr` with a listen queue of `backlog`.
pub(super) fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// `EMFILE` (24) or `ENFILE` (23): the process or the system is out of file descriptors.
fn out_of_fds(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(23 | 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_its_length() {
        let text = String::from_utf8(at_capacity(None, None)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            body,
            "503 Service Unavailable: too many connections, retry soon\n"
        );
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains("\r\nRetry-After: 1\r\n") && head.ends_with("Connection: close"));
    }
}
