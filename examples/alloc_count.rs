//! `cargo run --release --example alloc_count [-- --requests N]`
//!
//! Heap allocations per request in the real server: a counting global allocator wraps the
//! system one, a house `Server` (the same routes as `examples/bench_server.rs`, plus a form
//! POST) runs on a thread of this process, and one keep-alive client on the main thread sends
//! requests over loopback and reads each answer before the next. The client writes bytes
//! prepared up front and reads into one fixed buffer, so it allocates nothing while counting:
//! what the allocator counts between the first and the last request is the server's work —
//! its parser, router, handler, response and connection bookkeeping.
//!
//! It prints allocations (and bytes allocated) per request for:
//! - `GET /hello` with the headers `wrk` sends (the `hello` workload of `examples/compare.rs`);
//! - a browser-like `GET /hello` with eight headers;
//! - `POST /form` with an `application/x-www-form-urlencoded` body of two fields.
//!
//! Then it opens `--streams N` SSE streams (`GET /source?room=R`, one channel each, as
//! `loadgen --idle` opens them) and prints the heap each one keeps while idle: allocations
//! still live, and their bytes as requested (glibc rounds each up to a 16-byte chunk of at
//! least 32 with its 8-byte header), the connection map's and channel sets' growth included.

use std::alloc::System;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use house::{Config, Route, Server, Subscribe};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// Every allocation of the process goes through this counter.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Requests sent before counting, so every buffer and table has reached its working size.
const WARM_UP: usize = 1_000;

/// The cases: a name, the request bytes, and how the response ends (to know it is complete).
const CASES: &[(&str, &[u8], &[u8])] = &[
    (
        "GET /hello (wrk's headers)",
        b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"Hello, World!",
    ),
    (
        "GET /hello (8 browser-like headers)",
        b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:4500\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\
Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\n\
Referer: http://127.0.0.1:4500/\r\n\r\n",
        b"Hello, World!",
    ),
    (
        "POST /form (2 fields)",
        b"POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 28\r\n\r\nname=ann&message=hello+there",
        b"ann: hello there",
    ),
];

fn main() -> io::Result<()> {
    let mut requests = 20_000usize;
    let mut streams = 2_000usize;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(io::Error::other)? {
        match arg {
            lexopt::Arg::Long("requests") => {
                let value = parser.value().map_err(io::Error::other)?;
                requests = lexopt::ValueExt::parse(&value).map_err(io::Error::other)?;
            }
            lexopt::Arg::Long("streams") => {
                let value = parser.value().map_err(io::Error::other)?;
                streams = lexopt::ValueExt::parse(&value).map_err(io::Error::other)?;
            }
            _ => {
                eprintln!("usage: alloc_count [--requests N] [--streams N]");
                std::process::exit(2);
            }
        }
    }
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || -> io::Result<()> {
        let routes = vec![
            Route::closing("/hello", |_| "Hello, World!"),
            Route::closing("/form", |ctx| {
                format!(
                    "{}: {}",
                    ctx.request.param("name").unwrap_or(""),
                    ctx.request.param("message").unwrap_or("")
                )
            }),
            Route::stream("/source", |ctx| {
                Subscribe::to(ctx.request.param("room").unwrap_or("lobby").to_owned())
            }),
        ];
        let server = Server::bind(("127.0.0.1", 0), Config::default(), routes)?;
        let _ = tx.send((server.local_addr(), server.handle()));
        server.run()
    });
    let (addr, handle) = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| io::Error::other("the server did not start"))?;

    println!(
        "allocations per request, {requests} keep-alive requests each, after {WARM_UP} to warm up:"
    );
    for (name, request, ends) in CASES {
        let mut client = TcpStream::connect(addr)?;
        client.set_nodelay(true)?;
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = vec![0u8; 4096];
        for _ in 0..WARM_UP {
            exchange(&mut client, request, ends, &mut buf)?;
        }
        let region = Region::new(GLOBAL);
        for _ in 0..requests {
            exchange(&mut client, request, ends, &mut buf)?;
        }
        let change = region.change();
        println!(
            "  {name:<38} {:>6.2} allocations, {:>7.0} bytes allocated",
            change.allocations as f64 / requests as f64,
            change.bytes_allocated as f64 / requests as f64,
        );
    }
    idle_streams(addr, streams)?;
    handle.shutdown();
    server
        .join()
        .map_err(|_| io::Error::other("the server thread panicked"))?
}

/// Opens `count` streams on a few rooms, each read up to the end of its head (so it is
/// attached), and prints what the heap keeps per stream meanwhile.
fn idle_streams(addr: std::net::SocketAddr, count: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut open = Vec::with_capacity(count);
    let region = Region::new(GLOBAL);
    for i in 0..count {
        let mut client = TcpStream::connect(addr)?;
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!(
            "GET /source?room=1234567x{} HTTP/1.1\r\nHost: x\r\n\r\n",
            i % 4
        );
        client.write_all(request.as_bytes())?;
        let mut filled = 0;
        while !buf[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf[filled..])?;
            if n == 0 {
                return Err(io::Error::other("stream closed"));
            }
            filled += n;
        }
        open.push(client);
    }
    // The client's side frees what it allocates meanwhile (`open` was allocated before).
    thread::sleep(Duration::from_millis(200));
    let change = region.change();
    let live = change.allocations as isize - change.deallocations as isize;
    let bytes = change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated;
    println!(
        "heap kept per idle stream, {count} streams on 4 channels: {:.2} allocations, {:.0} bytes",
        live as f64 / count as f64,
        bytes as f64 / count as f64,
    );
    drop(open);
    Ok(())
}

/// Sends one request and reads until its response is complete (it ends with `ends`).
fn exchange(client: &mut TcpStream, request: &[u8], ends: &[u8], buf: &mut [u8]) -> io::Result<()> {
    client.write_all(request)?;
    let mut filled = 0;
    loop {
        let n = client.read(&mut buf[filled..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        filled += n;
        if buf[..filled].ends_with(ends) {
            if !buf.starts_with(b"HTTP/1.1 200") {
                return Err(io::Error::other(format!(
                    "not a 200: {}",
                    String::from_utf8_lossy(&buf[..filled])
                )));
            }
            return Ok(());
        }
        if filled == buf.len() {
            return Err(io::Error::other("response larger than the buffer"));
        }
    }
}
