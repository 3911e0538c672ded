//! `cargo run --release --example chat`, then open http://localhost:4242/index
//!
//! A chat room in three handlers. The page (`static/index.html`) listens to its room with an
//! `EventSource` on `/source?room=NAME` and posts messages to `/send-message`; the server
//! checks the parameters and publishes each message to everyone in the room.
//!
//! Without a browser:
//!
//! ```text
//! curl -N 'localhost:4242/source?room=x'                                # terminal 1
//! curl 'localhost:4242/send-message?room=x&name=ann&message=hello+there' # terminal 2
//! ```
//!
//! Flags: `--host ADDR` (default `127.0.0.1`), `--port N` (default `4242`; `0` picks a free
//! port). The first line printed is `listening on http://ADDR/index`.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use house::{
    closing_handler, files, routes, stream_handler, Config, Event, Hub, PublishError, Request,
    Response, Route, Server, Subscribe,
};
use serde::Serialize;

/// Where the page, its script and its style live, whatever directory the example runs from.
const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static");

/// What every subscriber of a room receives, as the JSON data of an SSE event.
#[derive(Serialize)]
struct Chat {
    name: String,
    message: String,
}

// Each handler declares its parameters and their rules; the macro writes the code that looks
// them up, checks them, and answers `400 Bad Request` naming the first parameter that breaks
// a rule, e.g. "parameter `message` must be at least 5 characters (got 3)". The path is the
// fn's name: `send_message` answers `/send-message`.

/// The chat page. It reads its room from its own URL (`/index?room=NAME`).
#[closing_handler(methods = [GET, HEAD])]
fn index(request: &Request) -> Response {
    files::serve_file(request, Path::new(STATIC_DIR).join("index.html"))
}

/// An SSE stream of the room's messages: `/source?room=NAME`.
#[stream_handler]
fn source(#[param(max = 16)] room: String) -> Subscribe {
    Subscribe::to(room)
}

/// Publishes a message to everyone in the room, from a query string or a form.
#[closing_handler(methods = [GET, POST])]
fn send_message(
    #[param(max = 16)] room: String,
    #[param(min = 1, max = 64)] name: String,
    #[param(min = 5, max = 256)] message: String,
    hub: &mut Hub,
) -> Result<&'static str, PublishError> {
    hub.publish(&room, Event::json(&Chat { name, message }))?;
    Ok("sent")
}

/// The chat's routes: the three handlers, and the page's script and style under `/static/`.
pub fn routes() -> io::Result<Vec<Route>> {
    let mut routes = routes![index, source, send_message];
    routes.push(files::mount("/static/", STATIC_DIR)?);
    Ok(routes)
}

const USAGE: &str = "usage: chat [--host ADDR] [--port N]

  --host ADDR  address to listen on (default 127.0.0.1)
  --port N     port to listen on (default 4242; 0 picks a free one)";

/// Where to listen, from the command line.
#[derive(Debug, PartialEq)]
struct Options {
    host: String,
    port: u16,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            host: "127.0.0.1".to_owned(),
            port: 4242,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            // Both `--port 80` and `--port=80`.
            let (flag, inline) = match flag.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("`{flag}` needs a value"))
            };
            match flag.as_str() {
                "--host" => options.host = value()?,
                "--port" => {
                    let port = value()?;
                    options.port = port.parse().map_err(|_| {
                        format!("`--port` must be a number from 0 to 65535 (got `{port}`)")
                    })?;
                }
                "-h" | "--help" => return Err(String::new()),
                _ => return Err(format!("unknown argument `{flag}`")),
            }
        }
        Ok(options)
    }

    fn addr(&self) -> String {
        // An IPv6 literal needs brackets before the port.
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            if why.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("chat: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(options: &Options) -> io::Result<()> {
    let server = Server::bind(options.addr(), Config::default(), routes()?)?;
    let addr = server.local_addr();
    // Tests read this first line to find the port when started with `--port 0`.
    println!("listening on http://{addr}/index");
    println!("try: curl -N 'http://{addr}/source?room=x'");
    println!("and: curl 'http://{addr}/send-message?room=x&name=ann&message=hello+there'");
    // TODO(signals): SIGINT/SIGTERM should call `server.handle().shutdown()` so queued bytes
    // reach clients first; std cannot catch signals without `unsafe` or a crate such as
    // `signal-hook`. Until then the default action ends the process (the OS closes sockets).
    server.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn flags() {
        assert_eq!(parse(&[]).unwrap().addr(), "127.0.0.1:4242");
        assert_eq!(parse(&["--port", "0"]).unwrap().addr(), "127.0.0.1:0");
        assert_eq!(
            parse(&["--host=0.0.0.0", "--port=80"]).unwrap().addr(),
            "0.0.0.0:80"
        );
        assert_eq!(parse(&["--host", "::1"]).unwrap().addr(), "[::1]:4242");
        assert_eq!(parse(&["--port"]).unwrap_err(), "`--port` needs a value");
        assert_eq!(
            parse(&["--port", "http"]).unwrap_err(),
            "`--port` must be a number from 0 to 65535 (got `http`)"
        );
        assert_eq!(
            parse(&["--verbose"]).unwrap_err(),
            "unknown argument `--verbose`"
        );
    }
}
