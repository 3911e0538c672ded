//! `cargo run --example hello`, then `curl 'localhost:4242/hello?name=ann'`
//!
//! The smallest complete house program: a closing handler that answers once, a stream handler
//! that keeps its connection open as a Server-Sent-Events stream, and a publish that joins the
//! two. In two terminals:
//!
//! ```text
//! curl -N 'localhost:4242/listen?room=x'       # terminal 1: the room's greetings, live
//! curl 'localhost:4242/hello?name=ann&room=x'  # terminal 2: `hello, ann!`, here and in terminal 1
//! curl 'localhost:4242/hello'                  # `hello, world!`, to the room `lobby`
//! ```

use house::{
    closing_handler, routes, stream_handler, Config, Event, Hub, PublishError, Server, Subscribe,
};

// The macros turn each fn into a route named after it (`hello` answers `/hello`). They read
// every argument that is not a context type (`&mut Hub` here) from the query string or a form
// body, and check it against its `#[param(...)]` rules: a `?name=` of 40 characters answers
// 400 with "parameter `name` must be at most 32 characters (got 40)", and the fn is never
// called. An absent parameter takes its `default`.

/// `GET /hello?name=ann&room=x`: answers `hello, ann!` and publishes it to the room.
///
/// Strings are sent as HTML unless told otherwise; this one echoes the client's text, so it
/// goes out as plain text and a `<script>` in `name` stays text.
#[closing_handler(content_type = "text/plain; charset=utf-8")]
fn hello(
    #[param(max = 32, default = "world")] name: String,
    #[param(max = 16, default = "lobby")] room: String,
    hub: &mut Hub,
) -> Result<String, PublishError> {
    let greeting = format!("hello, {name}!");
    // Every stream subscribed to `room` gets it, as `data: hello, ann!`.
    hub.publish(&room, Event::new(greeting.as_str()))?;
    Ok(greeting + "\n")
}

/// `GET /listen?room=x`: an SSE stream of the room's greetings. The connection stays open and
/// the handler returns at once; the server writes each event as it is published.
#[stream_handler]
fn listen(#[param(max = 16, default = "lobby")] room: String) -> Subscribe {
    Subscribe::to(room)
}

fn main() -> std::io::Result<()> {
    let server = Server::bind("127.0.0.1:4242", Config::default(), routes![hello, listen])?;
    println!("listening on http://{}/hello", server.local_addr());
    // One thread, one event loop, until the process is stopped.
    server.run()
}
