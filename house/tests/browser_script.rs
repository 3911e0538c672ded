//! `house::browser::script` over a socket: the script, its type, and revalidation.

mod support;

use house::{Config, Route};
use support::{body_of, status_of, TestServer};

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn server() -> TestServer {
    TestServer::start(
        Config::default(),
        vec![
            house::browser::script("/house.js"),
            Route::closing("/", |_| "home"),
        ],
    )
}

#[test]
fn serves_the_script_with_a_validator_and_answers_304_when_current() {
    let server = server();
    let response = server.get("/house.js");
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(body_of(&response), house::browser::SCRIPT);
    assert!(body_of(&response).contains("house.connect"));
    assert_eq!(
        header(&response, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header(&response, "cache-control"), Some("no-cache"));
    assert_eq!(
        header(&response, "content-length"),
        Some(house::browser::SCRIPT.len().to_string().as_str())
    );
    let etag = header(&response, "etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // The browser's copy is current: 304 with no body, the same validator.
    for tags in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"old\", {etag}"),
    ] {
        let response = server.exchange(
            format!(
                "GET /house.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: {tags}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status_of(&response), 304, "{tags}: {response}");
        assert_eq!(body_of(&response), "", "{tags}");
        assert_eq!(header(&response, "etag"), Some(etag.as_str()));
    }
    // An old copy gets the script again.
    let response = server.exchange(
        b"GET /house.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"old\"\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(body_of(&response), house::browser::SCRIPT);
}

#[test]
fn head_has_no_body_and_other_methods_get_405() {
    let server = server();
    let head = server.exchange(b"HEAD /house.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&head), 200, "{head}");
    assert_eq!(body_of(&head), "");
    let post = server.exchange(
        b"POST /house.js HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&post), 405, "{post}");
    // The server still serves.
    assert_eq!(body_of(&server.get("/")), "home");
}
