//! The browser side: `house.js`, a small dependency-free script that lets every tab of an
//! origin share one stream, served by the crate so a page gets the version that matches its
//! server.
//!
//! A browser opens about 6 HTTP/1.1 connections per origin, so a user with more tabs of an SSE
//! page than that starves. With `house.js` one tab (elected with Web Locks, or over a
//! `BroadcastChannel` where Web Locks are missing) holds the `EventSource` of a
//! [joinable](crate::Subscribe::joinable) stream and shares its events with the other tabs;
//! tabs subscribe to channels, and the holding tab joins and leaves them on the shared stream
//! through the app's own endpoints (which call [`Hub::join`](crate::Hub::join) and
//! [`Hub::leave`](crate::Hub::leave), so who may join what stays the app's decision). When the
//! holding tab closes, the next one resumes from the last event id any tab saw, and every tab
//! drops an event it already delivered: nothing is lost, nothing repeats. The script's own
//! header documents its API; [`SCRIPT`] is its text.
//!
//! # Examples
//! ```no_run
//! use house::{closing_handler, routes, stream_handler, Config, Hub, JoinError, Server, Subscribe};
//!
//! /// The shared stream: joinable, on a channel of its own that nothing is published to.
//! #[stream_handler("/stream")]
//! fn stream() -> Subscribe {
//!     Subscribe::to("tabs").joinable()
//! }
//!
//! /// house.js's default join: `POST /join` with `stream`, `channel` and `last_event_id`.
//! #[closing_handler(methods = [POST])]
//! fn join(#[param(max = 32)] stream: String, #[param(max = 64)] channel: String, hub: &mut Hub)
//!     -> Result<&'static str, JoinError> {
//!     hub.join(&stream, &channel).map(|()| "joined")
//! }
//!
//! /// And its default leave: `POST /leave` with `stream` and `channel`.
//! #[closing_handler(methods = [POST])]
//! fn leave(#[param(max = 32)] stream: String, #[param(max = 64)] channel: String, hub: &mut Hub)
//!     -> Result<&'static str, JoinError> {
//!     hub.leave(&stream, &channel).map(|()| "left")
//! }
//!
//! let mut routes = routes![stream, join, leave];
//! routes.push(house::browser::script("/house.js"));
//! Server::bind("127.0.0.1:8080", Config::default(), routes)?.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ```html
//! <script src="/house.js"></script>
//! <script>
//!   const tab = house.connect("/stream", { onState: (state) => console.log(state) });
//!   tab.addEventListener("message", (event) => console.log(event.data));
//!   tab.subscribe("lobby");
//! </script>
//! ```

use std::hash::Hasher as _;

use crate::request::Methods;
use crate::response::{Response, Status};
use crate::route::Route;

/// The text of `house.js` (see the [module docs](self)).
pub const SCRIPT: &str = include_str!("../assets/house.js");

/// A route serving [`SCRIPT`] at `path` (GET and HEAD) as `text/javascript; charset=utf-8`,
/// with a strong `ETag` of its content and `Cache-Control: no-cache`: a browser keeps it, asks
/// again on each use, and gets `304 Not Modified` until the script changes with a new version
/// of house.
///
/// # Examples
/// ```
/// let routes = vec![house::browser::script("/house.js")];
/// assert_eq!(routes[0].path(), "/house.js");
/// ```
pub fn script(path: &'static str) -> Route {
    let etag = etag(SCRIPT);
    Route::closing(path, move |ctx| {
        let fresh = ctx.request.header("if-none-match").is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                // Weak comparison: `W/"x"` matches `"x"`.
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
        });
        let response = if fresh {
            Response::new(Status::NOT_MODIFIED)
        } else {
            Response::new(Status::OK)
                .with_header("Content-Type", "text/javascript; charset=utf-8")
                .with_body(SCRIPT)
        };
        response
            .with_header("ETag", etag.clone())
            .with_header("Cache-Control", "no-cache")
            .with_header("X-Content-Type-Options", "nosniff")
    })
    .with_methods(Methods::GET | Methods::HEAD)
    .with_name("house.js")
}

/// A strong validator of `text`: its length and a 64-bit FNV-1a hash, computed once per route.
fn etag(text: &str) -> String {
    let mut hasher = Fnv1a::default();
    hasher.write(text.as_bytes());
    format!("\"{:x}-{:016x}\"", text.len(), hasher.finish())
}

/// FNV-1a: a fixed hash (the standard library's differs between runs, and an ETag must not).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_stable_and_follows_the_text() {
        assert_eq!(etag(""), "\"0-cbf29ce484222325\"");
        assert_eq!(etag("a"), "\"1-af63dc4c8601ec8c\"");
        assert_ne!(etag(SCRIPT), etag("a"));
    }
}
