//! `cargo run --release --example chat`, then open http://localhost:4242/index
//!
//! A chat room in a few handlers. Every tab of the page (`static/index.html`) shares one
//! stream through `house.js` (served at `/house.js`): one tab holds the `EventSource` on
//! `/rooms/source`, the others get its events, and entering a room joins the room (and its
//! `ROOM/presence` channel, for the "N online" count) on that shared stream through
//! `/rooms/NAME/join`; leaving it goes through `/rooms/NAME/leave`. Messages are posted to
//! `/send-message`; the server checks the parameters and publishes each message, naming its
//! room, to everyone in the room. It remembers the name each visitor chose in their session
//! (the page asks `/me` for it and pre-fills it), and lets each session send at most 5
//! messages per 10 seconds, and each address 20 (4 sessions' worth, over all its sessions: new
//! cookies buy nothing; clients without a session share one session's 5); past that,
//! `/send-message` answers `429 Too Many Requests` with `Retry-After`, and the page explains
//! the wait. A client that keeps no cookies (curl) starts a session only while its address has
//! new sessions left (60 a minute); after that its messages still go out, and no name is kept.
//!
//! Presence counts streams, not tabs: all tabs of one browser share one stream, so a person
//! with eight tabs open counts once; two browsers (or a browser and `curl`) count twice.
//!
//! Without a browser:
//!
//! ```text
//! curl -N 'localhost:4242/source?room=x'                                # terminal 1
//! curl -N 'localhost:4242/rooms/x/source'                                # the same, room in the path
//! curl 'localhost:4242/send-message?room=x&name=ann&message=hello+there' # terminal 2
//! curl -N 'localhost:4242/source?room=x%2Fpresence'   # `event: join` `{"channel":"x","count":2}`
//! ```
//!
//! Flags: `--host ADDR` (default `127.0.0.1`), `--port N` (default `4242`; `0` picks a free
//! port), `--rate N/SECONDS` (default `5/10`: messages each session may send per window; an
//! address may send 4 times that over all its sessions),
//! `--redis URL` (with `--features redis`: several nodes share rooms through Redis; sessions
//! stay in each node), `--archive PATH` (where to keep every message: a SQLite file, created if
//! missing and kept across restarts, from which the page loads older messages when scrolled to
//! the top; default `chat.sqlite3` in the current directory), `--no-archive` (keep none:
//! nothing is written, and the page starts each room empty).
//! The first line printed is `listening on http://ADDR/index`; the second says where the
//! archive is (`archive: /full/path/chat.sqlite3 …`, or `archive: off`). Metrics for
//! Prometheus are at `/metrics`; request logs go to stderr at `info` (`RUST_LOG=warn` or
//! `RUST_LOG=debug` to change that). SIGINT or SIGTERM shuts the server down cleanly.

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use house::{
    closing_handler, files, routes, stream_handler, Config, Ctx, Deferred, Event, FromRequest,
    Handler, Hub, IntoResponse, JoinError, Json, PublishError, Request, Response, Route, Server,
    Session, SessionError, Status, Subscribe,
};
use serde::Serialize;

/// Where the page, its script and its style live, whatever directory the example runs from.
const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static");

/// What every subscriber of a room receives, as the JSON data of an SSE event. It names its
/// room: a shared stream carries several rooms, and each tab shows only its own.
#[derive(Serialize)]
struct Chat {
    room: String,
    name: String,
    message: String,
}

/// The shared stream's own channel. Nothing is published to it: the stream gets its rooms by
/// joining them. Longer than a room's name may be, so no room is this channel.
const PAGES_CHANNEL: &str = "every open chat page";

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

/// The stream every tab of the page shares (through `house.js`): joinable, on a channel of its
/// own; the tabs' rooms are joined to it (`/rooms/NAME/join`).
#[stream_handler("/rooms/source")]
fn shared_source() -> Subscribe {
    Subscribe::to(PAGES_CHANNEL).joinable()
}

/// The channel of room `room`, or of its presence events with `presence=true`.
fn room_channel(room: String, presence: bool) -> String {
    if presence {
        format!("{room}/presence")
    } else {
        room
    }
}

/// Joins room `room` (or, with `presence=true`, its `room/presence` channel) to the open
/// stream `stream`, from the page's `house.js`. With `last_event_id` (a tab took the stream
/// over) the room's messages after that id come first; without, only what follows. An unknown
/// or closed stream answers 404, a stream of another session 403, a room name the rules refuse
/// 400 (the page says why).
#[closing_handler("/rooms/{room}/join", methods = [POST])]
fn join_room(
    #[param(max = 16)] room: String,
    #[param(max = 32)] stream: String,
    #[param(default = false)] presence: bool,
    hub: &mut Hub,
) -> Result<&'static str, JoinError> {
    hub.join(&stream, &room_channel(room, presence))?;
    Ok("joined")
}

/// Leaves room `room` (or its presence channel) on the open stream `stream`.
#[closing_handler("/rooms/{room}/leave", methods = [POST])]
fn leave_room(
    #[param(max = 16)] room: String,
    #[param(max = 32)] stream: String,
    #[param(default = false)] presence: bool,
    hub: &mut Hub,
) -> Result<&'static str, JoinError> {
    hub.leave(&stream, &room_channel(room, presence))?;
    Ok("left")
}

/// How many streams are in a room now, as presence events count them.
#[derive(Serialize)]
struct Online {
    channel: String,
    count: usize,
}

/// The room's count now, for a page that enters it: presence events only say when it changes.
#[closing_handler("/rooms/{room}/online", methods = [GET, HEAD])]
fn online(#[param(max = 16)] room: String, hub: &Hub) -> Json<Online> {
    let count = hub.subscribers(&room);
    Json(Online {
        channel: room,
        count,
    })
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
/// the sender's name in their session. With the archive on, the message is also written to
/// it, off the event loop (a disk write must not stall every stream), and "sent" waits for
/// that write.
#[closing_handler(methods = [GET, POST])]
fn send_message(
    #[param(max = 16)] room: String,
    #[param(min = 1, max = 64)] name: String,
    #[param(min = 5, max = 256)] message: String,
    #[guard] _room_for_the_archive: WorkerRoom,
    hub: &mut Hub,
    session: &mut Session,
    archive: &Archive,
) -> Result<Response, PublishError> {
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
    let chat = Chat {
        room: room.clone(),
        name,
        message,
    };
    let published = hub.publish(&room, Event::json(&chat))?;
    if !archive.is_on() {
        return Ok("sent".into_response());
    }
    // Live delivery and replay are the hub's as before; the archive is the long memory.
    let archive = archive.clone();
    let event_id = published.id().map(str::to_owned);
    Ok(
        Deferred::new(move || match archive.record(&chat, event_id.as_deref()) {
            Ok(_) => "sent".into_response(),
            Err(err) => {
                log::warn!("the archive did not take a message: {err}");
                Response::error(Status::INTERNAL_SERVER_ERROR, "sent, but not archived")
            }
        })
        .into_response(),
    )
}

/// A guard that refuses (503, `Retry-After: 1`) while the offload workers have no room for
/// one more job: checked before the message is published, so a client told to retry cannot
/// post it twice (past the handler, a full pool would answer 503 after the publish).
struct WorkerRoom;

impl FromRequest for WorkerRoom {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<WorkerRoom, Response> {
        if ctx.can_offload() {
            Ok(WorkerRoom)
        } else {
            Err(Response::error(
                Status::SERVICE_UNAVAILABLE,
                "the archive is busy, try again",
            )
            .with_header("Retry-After", "1"))
        }
    }
}

/// The archive of every message sent, in SQLite (`--archive PATH`), or off. Shared by the
/// workers that run its jobs: one connection, behind a lock, is plenty for a chat.
#[derive(Clone)]
pub(crate) struct Archive(Option<Arc<Mutex<rusqlite::Connection>>>);

/// One archived message, as `/rooms/NAME/messages` lists it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Archived {
    /// The archive's own id, what `before` pages by (ids only go up).
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) message: String,
    /// The id the live event had, so the page shows a message it got both ways once.
    pub(crate) event_id: Option<String>,
}

impl Archive {
    /// No archive: nothing is written, and `/rooms/NAME/messages` answers 404.
    pub(crate) fn off() -> Archive {
        Archive(None)
    }

    /// Opens (or creates) the archive at `path`; what it holds survives restarts.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Archive> {
        let db = rusqlite::Connection::open(path)?;
        // Write-ahead logging, synced at checkpoints rather than on every message: a write
        // costs microseconds, not a few fsyncs, so the offload workers keep up with a busy
        // chat. A crash of the process loses nothing; a crash of the machine may lose the last
        // moments, which a chat's history can spare. Several chats on one file (nodes sharing
        // Redis, started in one directory) share it safely.
        let mode: String =
            db.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("the archive keeps a `{mode}` journal (no WAL here): writes are slower");
        }
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 room TEXT NOT NULL,
                 name TEXT NOT NULL,
                 message TEXT NOT NULL,
                 event_id TEXT
             );
             CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);",
        )?;
        Ok(Archive(Some(Arc::new(Mutex::new(db)))))
    }

    fn is_on(&self) -> bool {
        self.0.is_some()
    }

    fn db(&self) -> Option<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        let db = self.0.as_ref()?;
        Some(db.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Writes `chat`; returns its archive id (`0` with the archive off).
    fn record(&self, chat: &Chat, event_id: Option<&str>) -> rusqlite::Result<i64> {
        let Some(db) = self.db() else {
            return Ok(0);
        };
        db.execute(
            "INSERT INTO messages (room, name, message, event_id) VALUES (?1, ?2, ?3, ?4)",
            (&chat.room, &chat.name, &chat.message, event_id),
        )?;
        Ok(db.last_insert_rowid())
    }

    /// Up to `limit` messages of `room` older than `before` (all, without), newest first.
    pub(crate) fn page(
        &self,
        room: &str,
        before: Option<i64>,
        limit: u32,
    ) -> rusqlite::Result<Vec<Archived>> {
        let Some(db) = self.db() else {
            return Ok(Vec::new());
        };
        let mut query = db.prepare_cached(
            "SELECT id, name, message, event_id FROM messages
             WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = query.query_map((room, before.unwrap_or(i64::MAX), limit), |row| {
            Ok(Archived {
                id: row.get(0)?,
                name: row.get(1)?,
                message: row.get(2)?,
                event_id: row.get(3)?,
            })
        })?;
        rows.collect()
    }
}

/// A page of a room's archive.
#[derive(Serialize)]
struct Page {
    room: String,
    /// Newest first: the page asks for the next page with `before` = the last one's id.
    messages: Vec<Archived>,
}

/// The room's archived messages, newest first: `/rooms/NAME/messages?before=ID&limit=N`
/// (`limit` 1 to 200, default 50; without `before`, the newest). Read off the event loop. With
/// the archive off, 404.
#[closing_handler("/rooms/{room}/messages", methods = [GET, HEAD])]
fn messages(
    #[param(max = 16)] room: String,
    #[param(min = 1)] before: Option<i64>,
    #[param(default = 50, min = 1, max = 200)] limit: u32,
    archive: &Archive,
) -> Result<Deferred, Response> {
    if !archive.is_on() {
        return Err(Response::error(
            Status::NOT_FOUND,
            "the archive is off (the chat was started with --no-archive)",
        ));
    }
    let archive = archive.clone();
    Ok(Deferred::new(move || {
        match archive.page(&room, before, limit) {
            Ok(messages) => Json(Page { room, messages }).into_response(),
            Err(err) => {
                log::warn!("the archive could not be read: {err}");
                Response::error(
                    Status::INTERNAL_SERVER_ERROR,
                    "the archive could not be read",
                )
            }
        }
    }))
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

/// The chat's routes: the handlers (sending limited to `rate`), `house.js`, the page's script
/// and style under `/static/`, and the server's metrics at `/metrics`.
pub(crate) fn routes(rate: Rate) -> io::Result<Vec<Route>> {
    let mut routes = routes![
        index,
        source,
        room_source,
        shared_source,
        join_room,
        leave_room,
        online,
        switch_room,
        messages,
        me
    ];
    routes.push(house::browser::script("/house.js"));
    for send in routes![send_message] {
        routes.push(rate_limited(send, rate));
    }
    routes.push(files::mount("/static/", STATIC_DIR)?);
    routes.push(house::metrics_route("/metrics"));
    Ok(routes)
}

/// Where the archive is kept without `--archive PATH` (relative: in the current directory).
const DEFAULT_ARCHIVE: &str = "chat.sqlite3";

const USAGE: &str = "usage: chat [--host ADDR] [--port N] [--rate N/SECONDS] [--redis URL]
            [--archive PATH | --no-archive]

  --host ADDR       address to listen on (default 127.0.0.1)
  --port N          port to listen on (default 4242; 0 picks a free one)
  --rate N/SECONDS  messages each session may send per window (default 5/10); each
                    address may send 4 times that, over all its sessions
  --redis URL       share rooms with other nodes through Redis, e.g. redis://127.0.0.1:6379
                    (needs `--features redis`)
  --archive PATH    keep every message in the SQLite file PATH (created if missing, kept
                    across restarts), for the page's older messages (default chat.sqlite3,
                    in the current directory)
  --no-archive      keep no archive: nothing is written, rooms start empty";

/// Where to listen, from the command line.
#[derive(Debug, PartialEq)]
struct Options {
    host: String,
    port: u16,
    rate: Rate,
    redis: Option<String>,
    /// The archive's file; `None` with `--no-archive`.
    archive: Option<std::path::PathBuf>,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            host: "127.0.0.1".to_owned(),
            port: 4242,
            rate: Rate::default(),
            redis: None,
            archive: Some(DEFAULT_ARCHIVE.into()),
        };
        // `--archive PATH` and `--no-archive` together: which one was meant would be a guess.
        let (mut archive_given, mut no_archive) = (false, false);
        // lexopt takes both `--port 80` and `--port=80`, and stops reading flags after `--`.
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
            let flag = match arg {
                lexopt::Arg::Long(name) => format!("--{name}"),
                lexopt::Arg::Short(c) => format!("-{c}"),
                lexopt::Arg::Value(value) => {
                    return Err(format!("unknown argument `{}`", value.to_string_lossy()))
                }
            };
            let mut value = || -> Result<String, String> {
                let value = parser
                    .value()
                    .map_err(|_| format!("`{flag}` needs a value"))?;
                value
                    .into_string()
                    .map_err(|value| format!("`{flag}` must be UTF-8 (got {value:?})"))
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
                "--archive" => {
                    let path = value()?;
                    if path.is_empty() {
                        return Err("`--archive` needs a file name (or `--no-archive`)".into());
                    }
                    options.archive = Some(path.into());
                    archive_given = true;
                }
                "--no-archive" => no_archive = true,
                "-h" | "--help" => return Err(String::new()),
                _ => return Err(format!("unknown argument `{flag}`")),
            }
        }
        if no_archive {
            if archive_given {
                return Err("`--archive` and `--no-archive` contradict each other".into());
            }
            options.archive = None;
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
    // Request logs on stderr: one line per request at `info`, trouble at `warn`. `RUST_LOG`
    // overrides the level (`RUST_LOG=debug`, `RUST_LOG=house=warn`). Tests that include this
    // file as a module may have installed their own logger first, which then stays.
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .parse_default_env()
        .format(|out, record| {
            use std::io::Write as _;
            writeln!(out, "{:5} {}", record.level(), record.args())
        })
        .try_init();
    let server = Server::bind(options.addr(), config(options)?, routes(options.rate)?)?;
    // Opened once the port is ours, so a chat that cannot listen leaves no new file behind.
    let (archive, archive_path) = archive(options)?;
    let server = server.with_state(archive);
    let addr = server.local_addr();
    // Tests read this first line to find the port when started with `--port 0`.
    println!("listening on http://{addr}/index");
    match archive_path {
        Some(path) => println!("archive: {} (--no-archive keeps none)", path.display()),
        None => println!("archive: off"),
    }
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

/// The chat's settings whatever the flags: rooms announce who joins and leaves (to
/// `ROOM/presence`), which the page shows as "N online".
pub(crate) fn base_config() -> Config {
    Config::default().with_presence(true)
}

/// The config for `options`: [`base_config`], plus Redis when asked for.
fn config(options: &Options) -> io::Result<Config> {
    let config = base_config();
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

/// The archive at `options.archive` (opened or created), with its full path to show; or none.
fn archive(options: &Options) -> io::Result<(Archive, Option<std::path::PathBuf>)> {
    let Some(path) = &options.archive else {
        return Ok((Archive::off(), None));
    };
    let archive = Archive::open(path)
        .map_err(|err| io::Error::other(format!("the archive `{}`: {err}", path.display())))?;
    // `chat.sqlite3` alone does not say which directory the chat was started in.
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    Ok((archive, Some(shown)))
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
        assert_eq!(parse(&["-x"]).unwrap_err(), "unknown argument `-x`");
        assert_eq!(parse(&["4242"]).unwrap_err(), "unknown argument `4242`");
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
        assert_eq!(parse(&["-h"]).unwrap_err(), "");
        // A flag's value may start with a dash; a flag without its value is an error.
        assert_eq!(parse(&["--host", "-"]).unwrap().host, "-");
        assert!(parse(&["--port=1", "--redis"]).is_err_and(|why| why.contains("--redis")));
    }

    #[test]
    fn the_archive_is_on_by_default_and_can_be_moved_or_turned_off() {
        assert_eq!(parse(&[]).unwrap().archive, Some(DEFAULT_ARCHIVE.into()));
        assert_eq!(DEFAULT_ARCHIVE, "chat.sqlite3");
        assert_eq!(
            parse(&["--archive", "/tmp/x.db"]).unwrap().archive,
            Some("/tmp/x.db".into())
        );
        assert_eq!(
            parse(&["--archive=rooms.sqlite3", "--port", "0"])
                .unwrap()
                .archive,
            Some("rooms.sqlite3".into())
        );
        // The last `--archive` names the file, as the last `--port` names the port.
        assert_eq!(
            parse(&["--archive", "a.db", "--archive", "b.db"])
                .unwrap()
                .archive,
            Some("b.db".into())
        );
        assert_eq!(parse(&["--no-archive"]).unwrap().archive, None);
        assert_eq!(
            parse(&["--port", "0", "--no-archive", "--rate", "9/1"])
                .unwrap()
                .archive,
            None
        );
        for contradiction in [
            &["--archive", "a.db", "--no-archive"][..],
            &["--no-archive", "--archive", "a.db"],
            &["--no-archive", "--archive", DEFAULT_ARCHIVE],
        ] {
            assert_eq!(
                parse(contradiction).unwrap_err(),
                "`--archive` and `--no-archive` contradict each other",
                "{contradiction:?}"
            );
        }
        assert_eq!(
            parse(&["--archive"]).unwrap_err(),
            "`--archive` needs a value"
        );
        assert_eq!(
            parse(&["--archive="]).unwrap_err(),
            "`--archive` needs a file name (or `--no-archive`)"
        );
        // `--no-archive` takes no value.
        assert!(parse(&["--no-archive=yes"]).is_err_and(|why| why.contains("--no-archive")));
        assert_eq!(
            parse(&["--no-archives"]).unwrap_err(),
            "unknown argument `--no-archives`"
        );
        // Every flag is in the help text, and the default is named there.
        for flag in ["--archive PATH", "--no-archive", DEFAULT_ARCHIVE] {
            assert!(USAGE.contains(flag), "{flag}");
        }
    }
}
