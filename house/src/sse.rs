//! Server-Sent Events framing: an [`Event`] builder and its exact wire bytes, the shared
//! [`Frame`] a published event becomes, and the head and signals of a stream response.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::response::{Response, Status};

/// An event serialized once, shared by every subscriber's write queue.
pub(crate) type Frame = Arc<[u8]>;

/// The name of the event that tells a reconnecting client it missed events.
///
/// A stream whose `Last-Event-ID` is older than its channels' history, or comes from an earlier
/// run of the server, starts with `event: reset` (data: `events were missed`), then the history
/// the server still has, then live events.
pub const RESET_EVENT: &str = "reset";

/// The name of a joinable stream's first event, whose data is the stream's id.
///
/// A stream whose handler returned [`Subscribe::joinable`](crate::Subscribe::joinable) starts with `event: house-stream` and `data: ID` (32 hex digits, 128 random bits),
/// before any replay or live event. It has no `id:` line, so it leaves the client's
/// `Last-Event-ID` alone. The id is what [`Hub::join`](crate::Hub::join) and
/// [`Hub::leave`](crate::Hub::leave) take to change the stream's channels, and knowing it is
/// the right to do so: keep it to the page that owns the stream. It names nothing once the
/// stream closes; a reconnected stream gets a new one.
pub const STREAM_EVENT: &str = "house-stream";

/// One Server-Sent Event.
///
/// `data` may hold any text: each line of it (split on `\n`, `\r\n` or `\r`) becomes its own
/// `data:` line, so a message can never inject an `id:` or `event:` line. `id` and `event` must
/// be single lines.
///
/// # Examples
/// ```
/// use house::Event;
///
/// let event = Event::new("a\nb").event("chat");
/// assert_eq!(event.to_bytes(), b"event: chat\ndata: a\ndata: b\n\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event: Option<String>,
    retry: Option<Duration>,
    data: String,
}

impl Event {
    /// An event carrying `data`.
    pub fn new(data: impl Into<String>) -> Event {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// An event whose data is `value` as JSON (one line).
    ///
    /// # Panics
    /// If `value` cannot be serialized to JSON (a map with non-string keys, or a `Serialize`
    /// impl that fails). In a handler the panic becomes a 500.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Event {
        match serde_json::to_string(value) {
            Ok(data) => Event::new(data),
            Err(err) => panic!("event data could not be serialized to JSON: {err}"),
        }
    }

    /// Sets the event's `id:` (otherwise the channel assigns one when it is published).
    ///
    /// # Panics
    /// If `id` contains CR, LF or NUL (the SSE parser would ignore or split it).
    pub fn id(mut self, id: impl Into<String>) -> Event {
        let id = id.into();
        assert!(
            is_single_line(&id) && !id.contains('\0'),
            "an SSE id must be one line without NUL"
        );
        self.id = Some(id);
        self
    }

    /// Sets the event's `event:` name.
    ///
    /// # Panics
    /// If `name` contains CR or LF.
    pub fn event(mut self, name: impl Into<String>) -> Event {
        let name = name.into();
        assert!(is_single_line(&name), "an SSE event name must be one line");
        self.event = Some(name);
        self
    }

    /// Sets the `retry:` hint: how long the client waits before reconnecting.
    pub fn retry(mut self, retry: Duration) -> Event {
        self.retry = Some(retry);
        self
    }

    /// Replaces the data.
    pub fn data(mut self, data: impl Into<String>) -> Event {
        self.data = data.into();
        self
    }

    /// The event's id, if it has one.
    pub fn get_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event's data.
    pub fn get_data(&self) -> &str {
        &self.data
    }

    /// Appends the event's wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(id) = &self.id {
            field(out, "id", id);
        }
        self.write_body_to(out);
    }

    /// Appends everything but the `id:` line (a broker adds its own id).
    pub(crate) fn write_body_to(&self, out: &mut Vec<u8>) {
        if let Some(name) = &self.event {
            field(out, "event", name);
        }
        if let Some(retry) = self.retry {
            field(out, "retry", &retry.as_millis().to_string());
        }
        // `lines()` would swallow a lone `\r` and a trailing empty line; split by hand.
        let mut rest = self.data.as_str();
        loop {
            match rest.find(['\r', '\n']) {
                Some(at) => {
                    field(out, "data", &rest[..at]);
                    let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                    rest = &rest[at + skip..];
                }
                None => {
                    field(out, "data", rest);
                    break;
                }
            }
        }
        out.push(b'\n');
    }

    /// The event's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 16);
        self.write_to(&mut out);
        out
    }
}

/// A comment line (`: text`), which clients ignore; useful to keep a connection open. Each line
/// of `text` becomes its own comment line.
pub fn comment(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for line in text.split(['\r', '\n']).filter(|line| !line.is_empty()) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if out.is_empty() {
        out.extend_from_slice(b":\n");
    }
    out.push(b'\n');
    out
}

/// The bytes of a stream's first event, which names its id (see [`STREAM_EVENT`]).
pub(crate) fn stream_id_event(id: &str) -> Vec<u8> {
    Event::new(id).event(STREAM_EVENT).to_bytes()
}

/// The `reset` event's bytes: the client missed events (see [`RESET_EVENT`]).
pub(crate) fn reset_event() -> Vec<u8> {
    Event::new("events were missed")
        .event(RESET_EVENT)
        .to_bytes()
}

/// The response whose head starts a stream, before the handler's own headers and CORS: the body
/// has no length and runs until the connection closes, and proxies and compressors are told
/// not to buffer or rewrite it (`no-transform`, `X-Accel-Buffering`).
pub(crate) fn stream_response() -> Response {
    Response::new(Status::OK)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache, no-transform")
        .with_header("X-Accel-Buffering", "no")
}

/// The head of the stream `response`, then the `retry:` hint when there is one.
pub(crate) fn stream_head(response: &Response, retry: Option<Duration>) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    response.write_open_head(&mut out);
    if let Some(retry) = retry {
        retry_hint(&mut out, retry);
    }
    out
}

/// Appends a `retry:` hint, as an event of its own, without allocating: streams get one each.
pub(crate) fn retry_hint(out: &mut Vec<u8>, retry: Duration) {
    use std::io::Write as _;
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "retry: {}\n\n", retry.as_millis());
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.is_empty() {
        out.push(b':');
    } else {
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'\n');
}

fn is_single_line(text: &str) -> bool {
    !text.contains(['\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! frames {
        ($($name:ident: $event:expr => $bytes:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(String::from_utf8($event.to_bytes()).unwrap(), String::from_utf8($bytes.to_vec()).unwrap());
            }
        )*};
    }

    frames! {
        plain: Event::new("hello") => b"data: hello\n\n";
        empty_data: Event::new("") => b"data:\n\n";
        lf_split: Event::new("a\nb") => b"data: a\ndata: b\n\n";
        crlf_split: Event::new("a\r\nb") => b"data: a\ndata: b\n\n";
        cr_split: Event::new("a\rb") => b"data: a\ndata: b\n\n";
        trailing_newline: Event::new("a\n") => b"data: a\ndata:\n\n";
        injection_stays_data: Event::new("x\nid: 99\nevent: evil") => b"data: x\ndata: id: 99\ndata: event: evil\n\n";
        all_fields: Event::new("d").id("7").event("chat").retry(Duration::from_millis(1500))
            => b"id: 7\nevent: chat\nretry: 1500\ndata: d\n\n";
        json: Event::json(&serde_json::json!({"name": "ann", "message": "a\nb"}))
            => b"data: {\"message\":\"a\\nb\",\"name\":\"ann\"}\n\n";
    }

    #[test]
    #[should_panic(expected = "one line")]
    fn id_with_newline_is_rejected() {
        let _ = Event::new("x").id("1\n2");
    }

    #[test]
    #[should_panic(expected = "one line")]
    fn event_with_cr_is_rejected() {
        let _ = Event::new("x").event("a\rb");
    }

    #[test]
    fn stream_head_has_no_length_and_closes() {
        let response = stream_response();
        assert_eq!(
            String::from_utf8(stream_head(&response, Some(Duration::from_secs(2)))).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
             Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n\
             X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n"
        );
        assert!(stream_head(&response, None).ends_with(b"Connection: close\r\n\r\n"));
    }

    #[test]
    fn comments() {
        assert_eq!(comment("hi"), b": hi\n\n");
        assert_eq!(comment(""), b":\n\n");
        assert_eq!(comment("a\nb"), b": a\n: b\n\n");
    }
}
