//! Compression in a real browser: headless Chromium, driven by `tests/browser/compression.mjs`,
//! reads a compressed stream (`Config::with_compression`) with `EventSource` and must receive
//! every event exactly: live events, the events published while it was away (the server ends
//! each stream at its lifetime), replayed when it reconnects by itself with `Last-Event-ID`,
//! and live events again.
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`, like `tests/chat_browser.rs`;
//! without them this test fails (it never skips).
#![allow(clippy::unwrap_used)]

mod browser_support;

use std::thread;
use std::time::Duration;

use house::{Config, Event, Methods, Response, Route, Server, Status, Subscribe};

/// The page: nothing of its own; the driver opens the `EventSource` in it.
const PAGE: &str = "<!doctype html><meta charset=utf-8><title>compression</title><p>a page</p>";

#[test]
fn an_event_source_decodes_every_event_live_and_replayed() {
    let config = Config::default()
        .with_compression(true)
        // Long enough for the first batch; the page is away for the retry hint.
        .with_max_stream_lifetime(Some(Duration::from_secs(3)))
        .with_retry_hint(Some(Duration::from_secs(2)))
        .with_retry_spread(0.0);
    let routes = vec![
        Route::closing("/page", |_| PAGE).with_methods(Methods::GET),
        Route::stream("/events", |_| Subscribe::to("room")).with_methods(Methods::GET),
        Route::closing("/publish", |ctx| {
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            ctx.hub
                .publish("room", Event::new(text))
                .map(|_| "published")
        }),
        Route::closing("/stats", |ctx| {
            Response::json(
                Status::OK,
                &serde_json::json!({
                    "replays": ctx.stats.replays,
                    "events_compressed": ctx.stats.events_compressed,
                }),
            )
        }),
    ];
    let server = Server::bind("127.0.0.1:0", config, routes).unwrap();
    let handle = server.handle();
    let origin = format!("http://{}", server.local_addr());
    let thread = thread::spawn(move || server.run());
    let out = browser_support::run_driver("compression.mjs", &[origin]);
    handle.shutdown();
    thread.join().unwrap().unwrap();
    assert!(out.contains("ok: all 44 events arrived exactly"), "{out}");
}
