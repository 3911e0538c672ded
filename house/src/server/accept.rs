//! Stage: accepting connections, refusing them at the connection cap, and pausing while the
//! process is out of file descriptors.

use std::io::{self, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::Server;
use crate::config::ACCEPT_BACKOFF;
use crate::conn::{interrupted, would_block, Conn};
use crate::cors::Cors;
use crate::response::{Response, Status};

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
            // Best effort: the socket is new, so this small write fits its send buffer.
            let _ = socket.write(&at_capacity(self.config.cors()));
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
        self.conns.insert(token, Conn::new(socket, peer, self.now));
    }
}

/// The answer to a connection refused at the connection cap (or during shutdown). No request
/// was read, so its origin is unknown: only a CORS setting for any origin can label it.
fn at_capacity(cors: Option<&Cors>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let response = Response::error(
        Status::SERVICE_UNAVAILABLE,
        "too many connections, retry soon",
    )
    .with_header("Retry-After", "1");
    let response = match cors {
        Some(cors) => cors.apply(response, None),
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
        let text = String::from_utf8(at_capacity(None)).unwrap();
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
