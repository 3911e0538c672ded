//! House is a tiny, fast Server-Sent-Events pub/sub HTTP server on one `mio` event loop.
//!
//! A program declares its handlers, starts a [`Server`], and one thread answers one-shot
//! requests (closing handlers) and holds SSE streams (stream handlers) that the channel [`Hub`]
//! fans published events out to. A slow or dead client only ever costs its own connection.
//!
//! The package is `house-sse` on crates.io (`house` there is an unrelated crate) and its
//! library is named `house`: `cargo add house-sse`, then `use house::…`. Keep the
//! dependency's name `house` (the default; do not rename it with `package =`), since the
//! handler macros expand to `::house::…` paths. The `redis` feature adds
//! `Config::with_redis` (Redis Streams behind several nodes).
//!
//! # Example
//! ```no_run
//! use house::{closing_handler, routes, stream_handler, Config, Event, Hub, PublishError, Server, Subscribe};
//!
//! /// `GET /source?room=x`: an SSE stream of the room's events.
//! #[stream_handler]
//! fn source(#[param(max = 16)] room: String) -> Subscribe {
//!     Subscribe::to(room)
//! }
//!
//! /// `GET` or `POST /send-message`: publishes to the room. A parameter that breaks its rule
//! /// answers 400 naming it: "parameter `message` must be at least 5 characters (got 3)".
//! #[closing_handler]
//! fn send_message(
//!     #[param(max = 16)] room: String,
//!     #[param(min = 5, max = 256)] message: String,
//!     hub: &mut Hub,
//! ) -> Result<&'static str, PublishError> {
//!     hub.publish(&room, Event::new(message))?;
//!     Ok("sent")
//! }
//!
//! let server = Server::bind("127.0.0.1:4242", Config::default(), routes![source, send_message])?;
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//! Handlers can also be written by hand with [`Route::closing`] and [`Route::stream`]; the
//! macros expand to the same thing (see [`closing_handler`] for every parameter rule).
//!
//! # Routing
//! A route's path is a template: `{name}` takes one whole segment, a trailing `{*rest}` every
//! segment after it, and handlers read them with [`Request::path_param`]. Literal segments win
//! over `{name}` and `{name}` over `{*rest}`; each segment is percent-decoded on its own, so an
//! encoded `/` (`%2F`) stays inside its segment. Several routes can share a template with
//! different [`Methods`]; any other method answers `405` with `Allow`, `HEAD` runs the `GET`
//! route and sends only the head, `OPTIONS` answers `204` with `Allow` (and `OPTIONS *` lists
//! every method the server takes). A [catcher](Route::catcher) replaces the server's own
//! error answers (`404`, `405`, a panicking handler's `500`, the parser's `4xx`/`5xx`). A
//! table that cannot be built is a [`RouteError`]. See [`Route`] for the rules.
//!
//! ```
//! use std::io::{Read, Write};
//! use house::{Config, Methods, Route, Server, Status};
//!
//! let routes = vec![
//!     Route::closing("/rooms/{room}", |ctx| {
//!         format!("room {}", ctx.request.path_param("room").unwrap_or_default())
//!     })
//!     .with_methods(Methods::GET),
//!     Route::closing("/rooms/{room}", |_| "joined").with_methods(Methods::POST),
//!     Route::catcher(Status::NOT_FOUND, |caught| format!("no page: {}", caught.detail)),
//! ];
//! let server = Server::bind("127.0.0.1:0", Config::default(), routes)?;
//! let (addr, handle) = (server.local_addr(), server.handle());
//! let thread = std::thread::spawn(move || server.run());
//! let ask = |request: &str| -> std::io::Result<String> {
//!     let mut stream = std::net::TcpStream::connect(addr)?;
//!     stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
//!     stream.write_all(request.as_bytes())?;
//!     let mut response = String::new();
//!     stream.read_to_string(&mut response)?;
//!     Ok(response)
//! };
//! let close = "HTTP/1.1\r\nConnection: close\r\n\r\n";
//! assert!(ask(&format!("GET /rooms/a%2Fb {close}"))?.ends_with("room a/b"));
//! let wrong = ask(&format!("DELETE /rooms/x {close}"))?;
//! assert!(wrong.starts_with("HTTP/1.1 405") && wrong.contains("Allow: GET, HEAD, POST, OPTIONS"));
//! assert!(ask(&format!("GET /nope {close}"))?.ends_with("no page: no handler for `/nope`"));
//! handle.shutdown();
//! thread.join().expect("the server thread")?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Behaviour
//! - **Requests**: HTTP/1.0 and 1.1, keep-alive (unless `Connection: close`; HTTP/1.0 only
//!   with `keep-alive`) and pipelining, answered in order. `Transfer-Encoding` answers 501;
//!   `Content-Length` with `Transfer-Encoding`, or two different lengths, answer 400.
//!   Parameters come from the query string and from `application/x-www-form-urlencoded`
//!   bodies, `+` is a space, and text that is not UTF-8 after decoding is a 400. For single
//!   values the query string wins a clash; list parameters get both, query first. A handler
//!   that reads parameters answers 415 to a body that is not a form.
//! - **Bodies**: a [`FromBody`] argument takes the whole body: [`Json<T>`] (415 unless
//!   `application/json`, 400 naming the field that failed, then the [`Validate`] rules),
//!   `String` (400 unless UTF-8) or `Vec<u8>`; too large is the size limit's 413.
//! - **Guards and state**: a [`FromRequest`] guard runs before the handler and may refuse with
//!   any response: [`Bearer`] checks `Authorization: Bearer` against [`BearerTokens`],
//!   [`SessionUser`] the session's signed-in user (the way to guard a browser's
//!   `EventSource`, which cannot send headers). Values given to [`Server::with_state`] are
//!   borrowed by type; a route needing one the server lacks stops [`Server::run`] at start.
//! - **Streams**: `200 text/event-stream` with `Cache-Control: no-cache, no-transform` and
//!   `X-Accel-Buffering: no` (and the handler's own, [`Subscribe::with_header`]), then a
//!   `retry:` hint, then events. Every published event gets an
//!   id `RUN-SEQ` (`RUN` changes at each start). A stream with `Last-Event-ID` (or
//!   `?last_event_id=`) first gets the events it missed from its channels' history; if that
//!   history no longer reaches back far enough, or the id is from another run, it starts with
//!   `event: reset` ([`RESET_EVENT`]) and then what history there is. Idle streams get
//!   `: heartbeat` comments.
//! - **Other origins**: [`Config::with_cors`] with a [`Cors`] puts the `Access-Control-*`
//!   headers on every answer, stream heads included, and answers preflights for every route.
//! - **Compression** (opt-in, [`Config::with_compression`]): a stream whose client sends
//!   `Accept-Encoding: gzip` gets `Content-Encoding: gzip`. Its body is the gzip header, then
//!   one raw-deflate chunk per event (and per heartbeat, reset signal and stream opening), each
//!   from an empty window and ended by a sync flush, so the chunk of a published event is
//!   computed once and shared by every compressing subscriber of its channel, with no
//!   compression state per stream. No gzip trailer is sent (a stream ends only when its
//!   connection closes); clients decode each event as its chunk arrives. Replayed and initial
//!   events are compressed per stream, together as one chunk.
//! - **Failures stay local**: a panicking handler answers 500 to its own request; a subscriber
//!   that falls behind by more than its queue cap is disconnected, or, if its handler chose
//!   another [`LagPolicy`], skips ahead with `event: reset` or keeps only the newest event of
//!   each channel; a dead peer is pruned when
//!   it hangs up or a write fails; at the connection cap new connections get 503 with
//!   `Retry-After`; out of file descriptors, accepting pauses instead of spinning.
//! - **Many nodes**: with the `redis` feature, `Config::with_redis` puts publishing and history
//!   behind Redis Streams so several processes share channels.
//! - **Observability**: [`Handle::stats`], [`Ctx::stats`], [`metrics_route`] (Prometheus text),
//!   and logs through the `log` facade (one `info` line per request, without parameter values).
//! - **Testing**: [`test::Client`] sends requests through the same parser, router, guards,
//!   extraction and handlers without a socket, keeps a cookie jar, opens streams and lists
//!   what was published; keep socket tests for what the connection itself does.
//!
//! # Limits
//! Every limit is a constant in [`limits`] with what happens when it is hit, and a
//! [`Config`] setting: request size 64 KiB (413/414/431), request age 10 s (408), 64 headers
//! (431), keep-alive idle 30 s, subscriber queue 1 MiB, write stall 30 s, heartbeat 15 s,
//! history 256 events / 256 KiB per channel for 5 minutes, connections up to the open-file
//! limit less 32; each address may use 4 sessions' worth of a rate limit and start 60
//! sessions a minute (429).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
// docs.rs builds with `--cfg docsrs` on nightly: mark what needs a feature (`redis`).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod answer;
mod body;
#[cfg(feature = "redis")]
mod broker;
pub mod browser;
mod config;
mod conn;
mod cors;
mod error;
pub mod files;
mod guard;
mod gzip;
mod hub;
mod jitter;
mod limit;
mod lru;
mod macros;
mod metrics;
mod offload;
mod param;
pub mod parse;
mod printable;
mod request;
mod response;
mod route;
mod server;
mod session;
mod sse;
mod state;
mod stats;
pub mod test;

pub use body::{BodyError, FromBody, Validate};
pub use config::Config;
pub use cors::Cors;
pub use error::{status_for, Error};
pub use guard::{Bearer, BearerTokens, FromRequest, SessionUser};
pub use house_macros::{catcher, closing_handler, stream_handler, FromParam, Validate};
pub use hub::{
    ChannelInfo, Hub, JoinError, Pattern, PatternError, PatternInfo, PublishError, Published,
};
pub use limit::{LimitScope, RateLimited};
pub use metrics::metrics_route;
pub use offload::Deferred;
pub use param::{Bounded, FromParam, JsonParam, ParamError};
pub use printable::Printable;
pub use request::{JsonBodyError, Method, Methods, Params, Request, Version};
pub use response::{Body, IntoResponse, InvalidHeader, Json, Redirect, Response, Status};
pub use route::{
    CatcherFn, Caught, ClosingFn, Ctx, Handler, IntoSubscribe, Route, RouteError, Routes, StreamFn,
    Subscribe,
};
pub use server::{Handle, Server};
pub use session::{Session, SessionError};
pub use sse::{comment, Event, RESET_EVENT, STREAM_EVENT};
pub use state::States;
pub use stats::{DropReason, HistoryBudget, LagPolicy, Stats};

/// Limits and their defaults.
pub mod limits {
    pub use crate::config::{
        ACCEPT_BACKOFF, ADDR_RATE_MULTIPLE, CAP_RETRY, FD_MARGIN, HEARTBEAT_INTERVAL,
        HISTORY_BUDGET_BYTES, HISTORY_BUDGET_CHANNELS, HISTORY_BYTES, HISTORY_EVENTS, HISTORY_TTL,
        KEEP_ALIVE_TIMEOUT, LAG_THRESHOLD, LISTEN_BACKLOG, MAX_HEADERS, MAX_LIMITED_ADDRS,
        MAX_REQUEST_AGE, MAX_REQUEST_SIZE, MAX_SESSIONS, MAX_STREAM_LIFETIME,
        NEW_SESSIONS_PER_ADDR, NEW_SESSIONS_WINDOW, OFFLOAD_DEADLINE, OFFLOAD_QUEUE,
        OFFLOAD_WORKERS, REFUSAL_SLOTS, REFUSAL_WAIT, RETRY_HINT, RETRY_SPREAD, SESSION_BYTES,
        SESSION_COOKIE, SESSION_IDLE_TIMEOUT, SHUTDOWN_GRACE, SHUTDOWN_WINDOW, STREAM_SEND_BUFFER,
        SUBSCRIBER_QUEUE_CAP, WRITE_TIMEOUT,
    };
}
