//! A browser's `EventSource` refused at the connection cap comes back by itself once there is
//! room: headless Chromium, driven by `tests/browser/cap.mjs`, opens a stream on a server whose
//! cap is full; the server tells it to retry later (a 503 would make it give up for good), and
//! it connects and receives once the test frees the cap.
//!
//! The page comes from a second, uncapped server (so the browser holds no kept-alive
//! connection to the capped one, which allows any origin), through which the driver also
//! steers the test (`/fill`, `/free`, `/deferred`, `/publish`): the capped one answers nothing
//! new while it is full.
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`, like `tests/chat_browser.rs`;
//! without them this test fails (it never skips).
#![allow(clippy::unwrap_used)]

mod browser_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use house::{Config, Cors, Event, Handle, Methods, Route, Server, Subscribe};

/// The page: nothing of its own; the driver opens the `EventSource` in it.
const PAGE: &str = "<!doctype html><meta charset=utf-8><title>cap</title><p>a page</p>";

/// Connections the capped server takes.
const CAP: usize = 4;

struct Running {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(config: Config, routes: Vec<Route>) -> Running {
    let server = Server::bind("127.0.0.1:0", config, routes).unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    Running {
        addr,
        handle,
        thread: Some(thread::spawn(move || server.run())),
    }
}

/// Opens streams on `addr` until one is refused; returns the ones it holds.
fn fill(addr: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..=CAP {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        if &head != b"HTTP/1.1 200" {
            return held;
        }
        held.push(stream);
    }
    panic!("the cap of {CAP} was never reached");
}

#[test]
fn an_event_source_refused_at_the_cap_connects_once_there_is_room() {
    let capped = run(
        Config::default()
            .with_max_connections(CAP)
            .with_cap_retry(Duration::from_millis(300))
            .with_cors(Cors::any()),
        vec![Route::stream("/events", |_| Subscribe::to("room")).with_methods(Methods::GET)],
    );
    let (addr, handle) = (capped.addr, capped.handle.clone());
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let (to_fill, to_free) = (Arc::clone(&held), Arc::clone(&held));
    let deferred = capped.handle.clone();
    let steering = run(
        Config::default(),
        vec![
            Route::closing("/page", |_| PAGE).with_methods(Methods::GET),
            Route::closing("/fill", move |_| {
                let mut held = to_fill.lock().unwrap();
                held.extend(fill(addr));
                held.len().to_string()
            }),
            Route::closing("/free", move |_| {
                to_free.lock().unwrap().clear();
                "freed"
            }),
            Route::closing("/deferred", move |_| {
                deferred.stats().streams_deferred.to_string()
            }),
            Route::closing("/publish", move |ctx| {
                let text = ctx.request.param("text").unwrap_or("").to_owned();
                handle
                    .publish("room", Event::new(text))
                    .map(|()| "published")
            }),
        ],
    );
    let out = browser_support::run_driver(
        "cap.mjs",
        &[
            format!("http://{}", capped.addr),
            format!("http://{}", steering.addr),
        ],
    );
    assert!(out.contains("ok: the stream received"), "{out}");
}
