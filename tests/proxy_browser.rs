//! HTTP/2 through real proxies in a real browser: headless Chromium, driven by
//! `tests/browser/proxy.mjs`, loads a page through nginx and through Caddy (the shipped
//! `deploy/nginx.conf` and `deploy/Caddyfile`, TLS with a self-signed certificate, HTTP/2) and
//! holds 10 EventSource streams on it, more than HTTP/1.1's 6 per origin, each receiving a
//! published event; the same page straight from house over HTTP/1.1 opens only 6. nginx's
//! access log confirms its streams were h2.
//!
//! Needs Debian's `chromium`, `npm ci` in `tests/browser`, nginx, caddy and openssl
//! (`.ci/setup`);
//! without them this test fails (it never skips).
#![allow(clippy::unwrap_used)]

mod browser_support;
mod proxy_support;

use std::time::Duration;

use house::{Config, Event, Methods, Response, Route, Status, Subscribe};
use proxy_support::{House, Proxy};

/// A page with no script of its own: the driver runs its code in it.
const PAGE: &str = "<!doctype html><meta charset=utf-8><title>proxy</title><p>a page</p>";

#[test]
fn chromium_holds_ten_streams_over_http2_through_nginx_and_caddy() {
    let house = House::start(
        Config::default(),
        vec![
            Route::closing("/page", |_| Response::html(Status::OK, PAGE))
                .with_methods(Methods::GET),
            Route::stream("/events", |_| Subscribe::to("room")).with_methods(Methods::GET),
            Route::closing("/send", |ctx| {
                let text = ctx.request.param("text").unwrap_or("").to_owned();
                match ctx.hub.publish("room", Event::new(text)) {
                    Ok(_) => Response::text(Status::OK, "sent"),
                    Err(err) => Response::error(Status::SERVICE_UNAVAILABLE, err),
                }
            })
            .with_methods(Methods::POST),
        ],
    );
    let nginx = Proxy::nginx(house.addr, None);
    let caddy = Proxy::caddy(house.addr);
    let stdout = browser_support::run_driver(
        "proxy.mjs",
        &[
            format!("http://{}", house.addr),
            nginx.url(""),
            caddy.url(""),
        ],
    );
    for proxy in [&nginx, &caddy] {
        for check in [
            "the page came over HTTP/2",
            "all 10 streams opened through the proxy",
            "every one of the 10 streams received the event",
        ] {
            let line = format!("ok: {}: {check}", proxy.url(""));
            assert!(stdout.contains(&line), "{line} missing:\n{stdout}");
        }
    }
    assert!(
        stdout.contains("ok: over HTTP/1.1 only 6 streams open"),
        "{stdout}"
    );
    // nginx logs each stream when it ends (the page closed them): all ten, over HTTP/2.
    let lines = nginx.access_lines(12, Duration::from_secs(5));
    let streams: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("GET /events?n="))
        .collect();
    assert_eq!(streams.len(), 10, "{lines:#?}");
    assert!(
        streams.iter().all(|l| l.contains(" HTTP/2.0 ")),
        "{lines:#?}"
    );
}
