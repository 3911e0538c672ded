//! One log line per finished request, through the `log` facade, without parameter values,
//! and with nothing a client sends able to forge a line.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Mutex;

use house::{Config, Route};
use support::*;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("house") {
            LINES
                .lock()
                .unwrap()
                .push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_line_per_request_without_parameter_values() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let server = TestServer::start(
        Config::default(),
        vec![Route::closing("/hello", |_| "hello")],
    );
    server.get("/hello?secret=hunter2");
    server.get("/missing?token=s3cr3t");
    server.exchange(b"GET /hello?x=%zz HTTP/1.1\r\n\r\n");
    // A path that decodes to a line break and a forged line (issue: log forging).
    let forged = server.get("/x%0d%0aINFO%20%20GET%20/admin%20200%20123B%200ns%E2%80%A8%1b[2J");
    assert_eq!(status_of(&forged), 404);
    wait_for("four request lines", || {
        LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("INFO "))
            .count()
            >= 4
    });
    let lines = LINES.lock().unwrap().clone();
    let info: Vec<&String> = lines.iter().filter(|l| l.starts_with("INFO ")).collect();
    assert!(
        info.iter().any(|l| l.starts_with("INFO GET /hello 200 ")),
        "{info:?}"
    );
    assert!(
        info.iter().any(|l| l.starts_with("INFO GET /missing 404 ")),
        "{info:?}"
    );
    assert!(
        info.iter().any(|l| l.starts_with("INFO - - 400 ")),
        "{info:?}"
    );
    assert!(
        info.iter().any(|l| l.starts_with(
            r"INFO GET /x\u{d}\u{a}INFO  GET /admin 200 123B 0ns\u{2028}\u{1b}[2J 404 "
        )),
        "{info:?}"
    );
    for line in &lines {
        assert!(
            !line.contains(|c: char| c.is_control() || c == '\u{2028}'),
            "a control character reached the log: {line:?}"
        );
    }
    for line in &lines {
        assert!(
            !line.contains("hunter2") && !line.contains("s3cr3t") && !line.contains("%zz"),
            "{line}"
        );
    }
}
