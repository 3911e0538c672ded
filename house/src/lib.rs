//! House is a tiny, fast Server-Sent-Events pub/sub HTTP server on one `mio` event loop.
//!
//! A program lists its handlers, starts a [`Server`], and the loop answers one-shot requests
//! (closing handlers) and holds SSE streams (stream handlers) that a channel [`Hub`] fans
//! events out to.
//!
//! # Example
//! ```no_run
//! use house::{Config, Event, Route, Server, Subscribe};
//!
//! let routes = vec![
//!     Route::stream("/source", |ctx| Subscribe::to(ctx.request.param("room").unwrap_or("lobby"))),
//!     Route::closing("/send", |ctx| {
//!         let room = ctx.request.param("room").unwrap_or("lobby").to_owned();
//!         let message = ctx.request.param("message").unwrap_or("").to_owned();
//!         ctx.hub.publish(&room, Event::new(message)).map(|()| "sent")
//!     }),
//! ];
//! let server = Server::bind("127.0.0.1:4242", Config::default(), routes)?;
//! server.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "redis")]
mod broker;
mod config;
mod conn;
mod error;
pub mod files;
mod hub;
mod macros;
mod param;
pub mod parse;
mod request;
mod response;
mod route;
mod server;
mod sse;
mod stats;

pub use config::Config;
pub use error::{status_for, Error};
pub use house_macros::{closing_handler, stream_handler, FromParam};
pub use hub::{Hub, PublishError, RESET_EVENT};
#[doc(hidden)]
pub use param::__private;
pub use param::{Bounded, FromParam, ParamError};
pub use request::{JsonBodyError, Method, Methods, Params, Request, Version};
pub use response::{Body, IntoResponse, InvalidHeader, Json, Response, Status};
pub use route::{
    ClosingFn, Ctx, DuplicateRoute, Handler, IntoSubscribe, Route, Routes, StreamFn, Subscribe,
};
pub use server::{Handle, Server};
pub use sse::{comment, Event};
pub use stats::{metrics_route, DropReason, Stats};

/// Limits and their defaults.
pub mod limits {
    pub use crate::config::{
        ACCEPT_BACKOFF, FD_MARGIN, HEARTBEAT_INTERVAL, HISTORY_BYTES, HISTORY_EVENTS, HISTORY_TTL,
        KEEP_ALIVE_TIMEOUT, LISTEN_BACKLOG, MAX_HEADERS, MAX_REQUEST_AGE, MAX_REQUEST_SIZE,
        RETRY_HINT, SHUTDOWN_GRACE, SUBSCRIBER_QUEUE_CAP, WRITE_TIMEOUT,
    };
}
