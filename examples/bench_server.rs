//! `cargo run --release --example bench_server -- --port 4500`
//!
//! The benchmark twin of the axum reference (`../shared/peers/axum-chat`): the same three routes
//! with the same bytes, so `examples/compare.rs` measures the servers and not the apps.
//!
//!   GET /source?room=X                          an SSE stream of room X
//!   GET /send-message?room=X&name=N&message=M   publishes {"name":N,"message":M} to room X
//!   GET /hello                                  "Hello, World!"

use house::{Config, Event, Route, Server, Subscribe};
use serde::Serialize;

/// What a chat message carries (the axum reference publishes the same JSON).
#[derive(Serialize)]
struct Message<'a> {
    name: &'a str,
    message: &'a str,
}

fn main() -> std::io::Result<()> {
    let mut port = 4500u16;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, value] = args.as_slice() {
        if flag == "--port" {
            port = value.parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "--port takes a number")
            })?;
        }
    }
    let routes = vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("default"))
        }),
        Route::closing("/send-message", |ctx| {
            let room = ctx.request.param("room").unwrap_or("default").to_owned();
            let event = Event::json(&Message {
                name: ctx.request.param("name").unwrap_or(""),
                message: ctx.request.param("message").unwrap_or(""),
            });
            // As in the reference, a room nobody listens to is not an error.
            ctx.hub.publish(&room, event).map(|_| "ok")
        }),
        Route::closing("/hello", |_| "Hello, World!"),
    ];
    let server = Server::bind(("127.0.0.1", port), Config::default(), routes)?;
    eprintln!("bench_server: listening on {}", server.local_addr());
    server.run()
}
