//! One log line per finished request, through the `log` facade, without parameter values.
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
    wait_for("three request lines", || {
        LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("INFO "))
            .count()
            >= 3
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
    for line in &lines {
        assert!(
            !line.contains("hunter2") && !line.contains("s3cr3t") && !line.contains("%zz"),
            "{line}"
        );
    }
}
