//! SSE framing: events built from arbitrary strings (ids, names and data with any newlines, CR
//! and NUL, any `retry`), serialized with `Event::write_to` between arbitrary comments, and read
//! back by a parser written from the WHATWG HTML spec's "interpreting an event stream", give
//! back exactly the fields that went in: the event type (`message` when unnamed or named ``),
//! the data with each line break as LF, the last event id (kept from the event before when the
//! event has none) and the reconnection time. A comment never yields a field.
#![no_main]

use std::time::Duration;

use house::Event;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The id every parse starts from, so an event without an id shows that it kept it.
const FIRST_ID: &str = "first";

/// The fields one event was built with.
#[derive(Debug)]
struct Spec {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry_ms: Option<u64>,
    /// A comment written before the event.
    comment: Option<String>,
}

impl<'a> Arbitrary<'a> for Spec {
    fn arbitrary(u: &mut Unstructured<'a>) -> libfuzzer_sys::arbitrary::Result<Spec> {
        Ok(Spec {
            id: u.arbitrary()?,
            event: u.arbitrary()?,
            data: u.arbitrary()?,
            retry_ms: u.arbitrary()?,
            comment: u.arbitrary()?,
        })
    }
}

/// What a WHATWG `EventSource` dispatches: type, data, `lastEventId`.
#[derive(Debug, PartialEq, Eq)]
struct Dispatched {
    kind: String,
    data: String,
    last_id: String,
}

/// The state of an event-stream parse, as the spec names it.
struct Parser {
    data: String,
    kind: String,
    last_id_buffer: String,
    last_id: String,
    retry: Option<u128>,
    events: Vec<Dispatched>,
}

impl Parser {
    /// Parses a whole stream. Lines end at CRLF, LF or CR; a last line without an end, and an
    /// event without its blank line, are discarded, as at the end of a real stream.
    fn parse(stream: &str) -> Parser {
        let mut parser = Parser {
            data: String::new(),
            kind: String::new(),
            last_id_buffer: FIRST_ID.to_owned(),
            last_id: FIRST_ID.to_owned(),
            retry: None,
            events: Vec::new(),
        };
        let stream = stream.strip_prefix('\u{feff}').unwrap_or(stream);
        let mut rest = stream;
        while let Some(at) = rest.find(['\r', '\n']) {
            parser.line(&rest[..at]);
            let end = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
            rest = &rest[at + end..];
        }
        parser
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.kind = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" => {
                if !value.contains('\0') {
                    self.last_id_buffer = value.to_owned();
                }
            }
            "retry" => {
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    // Digits beyond u128 are not a time any client could wait.
                    self.retry = value.parse().ok().or(self.retry);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        self.last_id = self.last_id_buffer.clone();
        if self.data.is_empty() {
            self.kind.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let kind = if self.kind.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.kind)
        };
        self.events.push(Dispatched {
            kind,
            data: std::mem::take(&mut self.data),
            last_id: self.last_id.clone(),
        });
        self.kind.clear();
    }
}

/// A value `Event::id` accepts: its documented panics are for CR, LF and NUL.
fn valid_id(id: &str) -> String {
    id.replace(['\r', '\n', '\0'], "")
}

/// A value `Event::event` accepts: its documented panics are for CR and LF.
fn valid_name(name: &str) -> String {
    name.replace(['\r', '\n'], "")
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(specs) = Vec::<Spec>::arbitrary(&mut u) else {
        return;
    };
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut last_id = FIRST_ID.to_owned();
    let mut retry = None;
    for spec in &specs {
        if let Some(text) = &spec.comment {
            stream.extend_from_slice(&house::comment(text));
        }
        let mut event = Event::new(spec.data.as_str());
        if let Some(id) = &spec.id {
            event = event.id(valid_id(id));
            last_id = valid_id(id);
        }
        let mut kind = "message".to_owned();
        if let Some(name) = &spec.event {
            event = event.event(valid_name(name));
            if !valid_name(name).is_empty() {
                kind = valid_name(name);
            }
        }
        if let Some(ms) = spec.retry_ms {
            event = event.retry(Duration::from_millis(ms));
            retry = Some(u128::from(ms));
        }
        assert_eq!(event.to_bytes(), {
            let mut out = Vec::new();
            event.write_to(&mut out);
            out
        });
        event.write_to(&mut stream);
        expected.push(Dispatched {
            kind,
            data: spec.data.replace("\r\n", "\n").replace('\r', "\n"),
            last_id: last_id.clone(),
        });
    }
    let text = std::str::from_utf8(&stream).expect("events built from strings are UTF-8");
    let parsed = Parser::parse(text);
    assert_eq!(parsed.events, expected, "stream: {text:?}");
    assert_eq!(parsed.retry, retry, "stream: {text:?}");
    assert_eq!(parsed.last_id, last_id, "stream: {text:?}");
    assert!(
        parsed.data.is_empty() && parsed.kind.is_empty(),
        "stream: {text:?}"
    );
});
