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

const USAGE: &str = "usage: bench_server [--port N]

  --port N  port to listen on, on 127.0.0.1 (default 4500)";

/// The port from the command line; `Err` carries what to print (empty for `--help`).
fn parse_port() -> Result<u16, String> {
    let mut port = 4500;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        match arg {
            lexopt::Arg::Long("port") => {
                let value = parser.value().map_err(|err| err.to_string())?;
                port = lexopt::ValueExt::parse(&value).map_err(|err| err.to_string())?;
            }
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Err(String::new()),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(port)
}

fn main() -> std::io::Result<()> {
    let port = match parse_port() {
        Ok(port) => port,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(why) => {
            eprintln!("bench_server: {why}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
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
