//! `cargo run --release --example chat`, then open http://localhost:4242/index
//!
//! A chat room in six handlers. The page (`static/index.html`) listens to its room with an
//! `EventSource` on `/rooms/NAME/source` (curl may use `/source?room=NAME`), switches rooms on
//! that same stream by posting its id to `/rooms/switch`, and posts messages to
//! `/send-message`; the server checks the parameters and publishes each message
//! to everyone in the room. It remembers the name each visitor chose in their session (the
//! page asks `/me` for it and pre-fills it), and lets each session send at most 5 messages
//! per 10 seconds, and each address 20 (4 sessions' worth, over all its sessions: new cookies
//! buy nothing; clients without a session share one session's 5); past that, `/send-message`
//! answers `429 Too Many Requests` with `Retry-After`, and the page explains the wait. A
//! client that keeps no cookies (curl) starts a session only while its address has new
//! sessions left (60 a minute); after that its messages still go out, and no name is kept.
//!
//! Without a browser:
//!
//! ```text
//! curl -N 'localhost:4242/source?room=x'                                # terminal 1
//! curl -N 'localhost:4242/rooms/x/source'                                # the same, room in the path
//! curl 'localhost:4242/send-message?room=x&name=ann&message=hello+there' # terminal 2
//! ```
//!
//! Flags: `--host ADDR` (default `127.0.0.1`), `--port N` (default `4242`; `0` picks a free
//! port), `--rate N/SECONDS` (default `5/10`: messages each session may send per window; an
//! address may send 4 times that over all its sessions),
//! `--redis URL` (with `--features redis`: several nodes share rooms through Redis; sessions
//! stay in each node).
//! The first line printed is `listening on http://ADDR/index`. Metrics for Prometheus are at
//! `/metrics`; request logs go to stderr. SIGINT or SIGTERM shuts the server down cleanly.

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use house::{
    closing_handler, files, routes, stream_handler, Config, Event, Handler, Hub, IntoResponse,
    JoinError, Json, PublishError, Request, Response, Route, Server, Session, SessionError,
    Subscribe,
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

/// An SSE stream of the room's messages: `/source?room=NAME` (for curl and the benchmarks).
#[stream_handler]
fn source(#[param(max = 16)] room: String) -> Subscribe {
    Subscribe::to(room)
}

/// The page's stream, with the room in the path: `/rooms/NAME/source`. The rule is checked
/// the same way (a 17-character room answers 400 naming `room`). It is joinable: its first
/// event names its id, with which the page moves it to another room (`/rooms/switch`).
#[stream_handler("/rooms/{room}/source")]
fn room_source(#[param(max = 16)] room: String) -> Subscribe {
    Subscribe::to(room).joinable()
}

/// Moves the page's open stream from room `from` to room `to`, without a new connection: the
/// stream's id is its first event (`event: house-stream`), which the page keeps. Only live
/// messages of the new room follow (no replay: the page starts the room empty). An unknown or
/// closed stream answers 404; a stream of another session 403.
#[closing_handler("/rooms/switch", methods = [POST])]
fn switch_room(
    #[param(max = 32)] stream: String,
    #[param(max = 16)] from: String,
    #[param(max = 16)] to: String,
    hub: &mut Hub,
) -> Result<&'static str, JoinError> {
    hub.leave(&stream, &from)?;
    hub.join(&stream, &to)?;
    Ok("switched")
}

/// Publishes a message to everyone in the room, from a query string or a form, and remembers
/// the sender's name in their session.
#[closing_handler(methods = [GET, POST])]
fn send_message(
    #[param(max = 16)] room: String,
    #[param(min = 1, max = 64)] name: String,
    #[param(min = 5, max = 256)] message: String,
    hub: &mut Hub,
    session: &mut Session,
) -> Result<&'static str, PublishError> {
    // Writing starts a session (and sets its cookie); skip the write when nothing changed.
    if session.get::<String>("name").as_deref() != Some(name.as_str()) {
        match session.insert("name", &name) {
            Ok(()) => {}
            // A client without cookies, at its address's budget of new sessions: the message
            // still goes out, and its name is not worth a session (nor a warning each time).
            Err(SessionError::RateLimited(refused)) => log::debug!("name not kept: {refused}"),
            Err(err) => log::warn!("could not remember the name: {err}"),
        }
    }
    hub.publish(&room, Event::json(&Chat { name, message }))?;
    Ok("sent")
}

/// Who the page's visitor is, as far as their session knows.
#[derive(Serialize)]
struct Me {
    name: Option<String>,
}

/// The name this visitor last sent with, for the page to pre-fill. Only reads the session, so
/// it creates none.
#[closing_handler(methods = [GET, HEAD])]
fn me(session: &Session) -> Json<Me> {
    Json(Me {
        name: session.get("name"),
    })
}

/// How many messages a session may send per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub messages: u32,
    pub per: Duration,
}

impl Default for Rate {
    fn default() -> Rate {
        Rate {
            messages: 5,
            per: Duration::from_secs(10),
        }
    }
}

impl Rate {
    /// `5/10`: 5 messages per 10 seconds.
    fn parse(text: &str) -> Option<Rate> {
        let (messages, secs) = text.split_once('/')?;
        let per = Duration::from_secs(secs.parse().ok().filter(|&s| s > 0)?);
        Some(Rate {
            messages: messages.parse().ok().filter(|&n| n > 0)?,
            per,
        })
    }
}

/// `route`, answering 429 past `rate` requests per session, or past
/// [`ADDR_RATE_MULTIPLE`](house::limits::ADDR_RATE_MULTIPLE) times that per address over all
/// its sessions (requests without a session share one `rate` per address). Every attempt
/// counts, also one the parameter rules refuse, so nobody can probe freely.
fn rate_limited(route: Route, rate: Rate) -> Route {
    let (path, name, methods) = (
        route.path().to_owned(),
        route.name().to_owned(),
        route.methods(),
    );
    let limit = name.clone();
    Route::closing(path, move |ctx| {
        if let Err(refused) = ctx.session.rate_limit(&limit, rate.messages, rate.per) {
            return refused.into_response();
        }
        match route.handler() {
            Handler::Closing(handler) => handler(ctx),
            Handler::Stream(_) | Handler::Catcher(..) => {
                unreachable!("only closing routes are limited")
            }
        }
    })
    .with_methods(methods)
    .with_name(name)
}

/// The chat's routes: the four handlers (sending limited to `rate`), the page's script and
/// style under `/static/`, and the server's metrics at `/metrics`.
pub(crate) fn routes(rate: Rate) -> io::Result<Vec<Route>> {
    let mut routes = routes![index, source, room_source, switch_room, me];
    for send in routes![send_message] {
        routes.push(rate_limited(send, rate));
    }
    routes.push(files::mount("/static/", STATIC_DIR)?);
    routes.push(house::metrics_route("/metrics"));
    Ok(routes)
}

const USAGE: &str = "usage: chat [--host ADDR] [--port N] [--rate N/SECONDS] [--redis URL]

  --host ADDR       address to listen on (default 127.0.0.1)
  --port N          port to listen on (default 4242; 0 picks a free one)
  --rate N/SECONDS  messages each session may send per window (default 5/10); each
                    address may send 4 times that, over all its sessions
  --redis URL       share rooms with other nodes through Redis, e.g. redis://127.0.0.1:6379
                    (needs `--features redis`)";

/// Where to listen, from the command line.
#[derive(Debug, PartialEq)]
struct Options {
    host: String,
    port: u16,
    rate: Rate,
    redis: Option<String>,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            host: "127.0.0.1".to_owned(),
            port: 4242,
            rate: Rate::default(),
            redis: None,
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
                "--rate" => {
                    let rate = value()?;
                    options.rate = Rate::parse(&rate).ok_or_else(|| {
                        format!("`--rate` must be MESSAGES/SECONDS, both above 0, like `5/10` (got `{rate}`)")
                    })?;
                }
                "--redis" => options.redis = Some(value()?),
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
    // Tests include this file as a module and install their own logger, if any.
    let _ = log::set_logger(&StderrLog);
    log::set_max_level(log::LevelFilter::Info);
    let server = Server::bind(options.addr(), config(options)?, routes(options.rate)?)?;
    let addr = server.local_addr();
    // Tests read this first line to find the port when started with `--port 0`.
    println!("listening on http://{addr}/index");
    println!("try: curl -N 'http://{addr}/source?room=x'");
    println!("and: curl 'http://{addr}/send-message?room=x&name=ann&message=hello+there'");
    // A signal asks the loop to stop: it flushes what is queued, closes streams, and returns.
    let handle = server.handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            handle.shutdown();
        }
    });
    server.run()?;
    println!("stopped");
    Ok(())
}

/// The config for `options`: the defaults, plus Redis when asked for.
fn config(options: &Options) -> io::Result<Config> {
    let config = Config::default();
    match &options.redis {
        None => Ok(config),
        #[cfg(feature = "redis")]
        Some(url) => Ok(config.with_redis(url)),
        #[cfg(not(feature = "redis"))]
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "`--redis` needs the redis feature: cargo run --release --features redis --example chat -- --redis URL",
        )),
    }
}

/// Request logs on stderr: one line per request at `info`, trouble at `warn`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{:5} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
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
        assert_eq!(
            parse(&["--redis", "redis://127.0.0.1:1"])
                .unwrap()
                .redis
                .as_deref(),
            Some("redis://127.0.0.1:1")
        );
        assert_eq!(parse(&["--port", "0"]).unwrap().addr(), "127.0.0.1:0");
        assert_eq!(
            parse(&["--host=0.0.0.0", "--port=80"]).unwrap().addr(),
            "0.0.0.0:80"
        );
        assert_eq!(parse(&["--host", "::1"]).unwrap().addr(), "[::1]:4242");
        assert_eq!(parse(&[]).unwrap().rate, Rate::default());
        assert_eq!(
            parse(&["--rate", "3/60"]).unwrap().rate,
            Rate {
                messages: 3,
                per: Duration::from_secs(60)
            }
        );
        for bad in ["0/10", "5/0", "5", "5/x", "/10"] {
            assert!(
                parse(&["--rate", bad]).unwrap_err().contains("`--rate`"),
                "{bad}"
            );
        }
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
