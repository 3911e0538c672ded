//! CORS in a real browser: headless Chromium, driven by `tests/browser/cors.mjs`, loads a page
//! from one house server (origin A, `http://127.0.0.1:PORT_A`) that uses the API and stream of
//! another (origin B, `http://localhost:PORT_B`), which allows A with credentials, and moves its
//! one stream to another room by the stream's id; the same page from a third server (origin
//! C, not allowed) is refused.
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`, like `tests/chat_browser.rs`;
//! without them this test fails (it never skips).

mod browser_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use house::{Config, Cors, Event, Handle, Methods, Response, Route, Server, Status, Subscribe};

/// A page with no script of its own: the driver runs the README's code in it.
const PAGE: &str = "<!doctype html><meta charset=utf-8><title>cors</title><p>a page</p>";

struct Running {
    port: u16,
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
    let server = Server::bind("127.0.0.1:0", config, routes).expect("bind on loopback");
    let (port, handle) = (server.local_addr().port(), server.handle());
    Running {
        port,
        handle,
        thread: Some(thread::spawn(move || server.run())),
    }
}

fn page_server() -> Running {
    run(
        Config::default(),
        vec![Route::closing("/page", |_| PAGE).with_methods(Methods::GET)],
    )
}

#[test]
fn a_page_on_another_origin_posts_and_streams_and_a_third_is_refused() {
    let page = page_server();
    let refused = page_server();
    let allowed_origin = format!("http://127.0.0.1:{}", page.port);
    let cors = Cors::allow_origins([allowed_origin.clone()])
        .allow_credentials(true)
        .allow_headers(["content-type"]);
    let sends = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sends);
    let api = run(
        Config::default().with_cors(cors),
        vec![
            Route::stream("/events", |_| Subscribe::to("room")).with_methods(Methods::GET),
            Route::stream("/joinable", |_| Subscribe::to("room").joinable())
                .with_methods(Methods::GET),
            // Moves a joinable stream from `room` to the form's `room`.
            Route::closing("/switch", |ctx| {
                let stream = ctx.request.param("stream").unwrap_or("").to_owned();
                let to = ctx.request.param("room").unwrap_or("").to_owned();
                ctx.hub.leave(&stream, "room")?;
                ctx.hub.join(&stream, &to).map(|()| "switched")
            })
            .with_methods(Methods::POST),
            Route::closing("/send", move |ctx| {
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(body) = std::str::from_utf8(ctx.request.body()) else {
                    return Response::error(Status::BAD_REQUEST, "not UTF-8");
                };
                let body = body.to_owned();
                let room = ctx.request.param("room").unwrap_or("room").to_owned();
                match ctx.hub.publish(&room, Event::new(body)) {
                    Ok(_) => Response::text(Status::OK, "sent"),
                    Err(err) => Response::error(Status::SERVICE_UNAVAILABLE, err),
                }
            })
            .with_methods(Methods::POST),
        ],
    );

    let stdout = browser_support::run_driver(
        "cors.mjs",
        &[
            allowed_origin.clone(),
            // `localhost`, not `127.0.0.1`: another host, so another origin and another site.
            format!("http://localhost:{}", api.port),
            format!("http://127.0.0.1:{}", refused.port),
        ],
    );
    for check in [
        "ok: the allowed origin's stream receives the published event",
        "ok: the refused origin's EventSource errors and closes",
        "ok: the refused origin's fetch rejects",
        "ok: the allowed origin switches its stream to another room",
    ] {
        assert!(stdout.contains(check), "{stdout}");
    }
    // The refused page's POST never reached the handler: a JSON POST is preflighted, and the
    // preflight was refused (without one the POST would have run, only its answer hidden).
    // One from the allowed page's first POST, two from its room switch.
    assert_eq!(sends.load(Ordering::SeqCst), 3);
}
