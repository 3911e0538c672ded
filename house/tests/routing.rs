//! Routing over real sockets: path templates, methods (405, `HEAD`, `OPTIONS`), and catchers
//! for the server's own answers, with the server still serving after each.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::time::Duration;

use house::{Config, Event, Methods, Response, Route, Status, Subscribe};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::closing("/rooms/{room}/messages", |ctx| {
            let room = ctx.request.path_param("room").unwrap_or("?");
            format!(
                "messages of {room} (page {})",
                ctx.request.param("page").unwrap_or("1")
            )
        }),
        Route::closing("/rooms/all/messages", |_| "every room"),
        Route::stream("/rooms/{room}/source", |ctx| {
            Subscribe::to(ctx.request.path_param("room").unwrap_or("lobby"))
        }),
        Route::closing("/files/{*path}", |ctx| {
            format!("file [{}]", ctx.request.path_param("path").unwrap_or("?"))
        }),
        Route::closing("/things", |_| "the list").with_methods(Methods::GET),
        Route::closing("/things", |ctx| {
            let name = String::from_utf8_lossy(ctx.request.body()).into_owned();
            (Status::CREATED, format!("made {name}"))
        })
        .with_methods(Methods::POST),
        Route::closing("/things/{id}", |ctx| {
            format!("deleted {}", ctx.request.path_param("id").unwrap_or("?"))
        })
        .with_methods(Methods::DELETE),
        Route::closing("/page", |_| "twelve bytes").with_methods(Methods::GET),
        Route::closing("/panic", |_| -> &'static str { panic!("handler bug") }),
    ]
}

/// `method target` on its own connection (closed after the answer); the raw response.
fn send(server: &TestServer, method: &str, target: &str) -> String {
    server.exchange(
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The value of header `name` in a raw response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response
        .split_once("\r\n\r\n")
        .map_or(response, |(head, _)| head);
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[test]
fn path_parameters_reach_the_handler() {
    let server = TestServer::start(Config::default(), routes());
    server.check(&[
        ("/rooms/lobby/messages", 200, "messages of lobby (page 1)"),
        (
            "/rooms/lobby/messages?page=2",
            200,
            "messages of lobby (page 2)",
        ),
        (
            "/rooms/caf%C3%A9/messages",
            200,
            "messages of caf\u{e9} (page 1)",
        ),
        // A literal segment wins over `{room}`.
        ("/rooms/all/messages", 200, "every room"),
        ("/files/a/b.txt", 200, "file [a/b.txt]"),
        ("/files/", 200, "file []"),
        ("/files", 404, "404 Not Found: no handler for `/files`\n"),
        (
            "/rooms//messages",
            404,
            "404 Not Found: no handler for `/rooms//messages`\n",
        ),
        (
            "/rooms/lobby",
            404,
            "404 Not Found: no handler for `/rooms/lobby`\n",
        ),
        (
            "/rooms/%ff/messages",
            400,
            "decoded text is not valid UTF-8",
        ),
    ]);
}

#[test]
fn an_encoded_slash_never_splits_a_segment() {
    let server = TestServer::start(Config::default(), routes());
    server.check(&[
        ("/rooms/a%2Fb/messages", 200, "messages of a/b (page 1)"),
        (
            "/rooms/a/b/messages",
            404,
            "404 Not Found: no handler for `/rooms/a/b/messages`\n",
        ),
        ("/files/a%2Fb/c%20d", 200, "file [a/b/c d]"),
    ]);
}

#[test]
fn get_and_post_on_one_path() {
    let server = TestServer::start(Config::default(), routes());
    assert_eq!(body_of(&send(&server, "GET", "/things")), "the list");
    let response = server
        .exchange(b"POST /things HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nmug");
    assert_eq!(status_of(&response), 201, "{response}");
    assert_eq!(body_of(&response), "made mug");
    let response = send(&server, "DELETE", "/things/7");
    assert_eq!(body_of(&response), "deleted 7");
}

#[test]
fn a_wrong_method_is_405_with_allow() {
    let server = TestServer::start(Config::default(), routes());
    let response = send(&server, "DELETE", "/things");
    assert_eq!(status_of(&response), 405, "{response}");
    assert_eq!(header(&response, "allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(
        body_of(&response),
        "405 Method Not Allowed: `/things` accepts GET, HEAD, POST, OPTIONS\n"
    );
    let response = send(&server, "GET", "/things/7");
    assert_eq!(status_of(&response), 405, "{response}");
    assert_eq!(header(&response, "allow"), Some("DELETE, OPTIONS"));
    let response = send(&server, "BREW", "/page");
    assert_eq!(header(&response, "allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(body_of(&send(&server, "GET", "/page")), "twelve bytes");
}

#[test]
fn head_runs_the_get_route_without_its_body() {
    let server = TestServer::start(Config::default(), routes());
    let response = send(&server, "HEAD", "/page");
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    );
    // On a kept-alive connection the next answer starts right after the head.
    let mut stream = server.connect();
    stream
        .write_all(b"HEAD /page HTTP/1.1\r\n\r\nGET /page HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let both = read_to_close(&mut stream);
    assert_eq!(
        both,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 12\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 12\r\nConnection: close\r\n\r\ntwelve bytes"
    );
}

#[test]
fn options_answers_204_with_allow() {
    let server = TestServer::start(Config::default(), routes());
    let response = send(&server, "OPTIONS", "/things");
    assert_eq!(
        response,
        "HTTP/1.1 204 No Content\r\nAllow: GET, HEAD, POST, OPTIONS\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    );
    let response = send(&server, "OPTIONS", "/rooms/x/messages");
    assert_eq!(header(&response, "allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(status_of(&send(&server, "OPTIONS", "/nope")), 404);
}

#[test]
fn options_asterisk_lists_every_method() {
    let server = TestServer::start(Config::default(), routes());
    let response = send(&server, "OPTIONS", "*");
    assert_eq!(status_of(&response), 204, "{response}");
    assert_eq!(
        header(&response, "allow"),
        Some("GET, HEAD, POST, DELETE, OPTIONS")
    );
    // `*` is a target for OPTIONS only.
    let response = send(&server, "GET", "*");
    assert_eq!(status_of(&response), 400, "{response}");
    assert_eq!(body_of(&send(&server, "GET", "/page")), "twelve bytes");
}

#[test]
fn a_stream_route_with_a_path_parameter() {
    let server = TestServer::start(Config::default(), routes());
    let mut lobby = subscribe(&server, "/rooms/lobby/source");
    let mut slashed = subscribe(&server, "/rooms/a%2Fb/source");
    server
        .handle
        .publish("lobby", Event::new("hi lobby"))
        .unwrap();
    server.handle.publish("a/b", Event::new("hi a/b")).unwrap();
    let mut buffer = Vec::new();
    assert!(read_until_count(&mut lobby, &mut buffer, "data: hi lobby", 1).contains("hi lobby"));
    let mut buffer = Vec::new();
    assert!(read_until_count(&mut slashed, &mut buffer, "data: hi a/b", 1).contains("hi a/b"));
}

fn caught_routes() -> Vec<Route> {
    let mut routes = routes();
    routes.extend([
        Route::catcher(Status::NOT_FOUND, |caught| {
            let path = caught.request.map_or("-", |r| r.path());
            if path == "/catcher-panics" {
                panic!("catcher bug");
            }
            Response::html(Status::NOT_FOUND, format!("<h1>nothing at {path}</h1>"))
        }),
        Route::catcher(Status::METHOD_NOT_ALLOWED, |caught| {
            format!("not like that: {}", caught.detail)
        }),
        Route::catcher(Status::INTERNAL_SERVER_ERROR, |caught| {
            format!("sorry, {} failed", caught.request.map_or("-", |r| r.path()))
        }),
        Route::catcher(Status::BAD_REQUEST, |caught| {
            format!("bad ({}): {}", caught.request.is_some(), caught.detail)
        }),
        Route::catcher(Status::PAYLOAD_TOO_LARGE, |_| {
            Response::text(Status::PAYLOAD_TOO_LARGE, "too big for us")
        }),
        Route::catcher(Status::REQUEST_TIMEOUT, |_| "too slow"),
    ]);
    routes
}

/// Asserts the server still answers a plain request.
#[track_caller]
fn still_serving(server: &TestServer) {
    assert_eq!(body_of(&send(server, "GET", "/page")), "twelve bytes");
}

#[test]
fn catchers_answer_404_405_and_500() {
    let server = TestServer::start(Config::default(), caught_routes());
    let response = send(&server, "GET", "/nope");
    assert_eq!(status_of(&response), 404, "{response}");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body_of(&response), "<h1>nothing at /nope</h1>");
    still_serving(&server);

    let response = send(&server, "DELETE", "/page");
    assert_eq!(status_of(&response), 405, "{response}");
    assert_eq!(header(&response, "allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(
        body_of(&response),
        "not like that: `/page` accepts GET, HEAD, OPTIONS"
    );
    still_serving(&server);

    let response = send(&server, "GET", "/panic");
    assert_eq!(status_of(&response), 500, "{response}");
    assert_eq!(body_of(&response), "sorry, /panic failed");
    still_serving(&server);

    // Handlers' own answers are not caught.
    let response = send(&server, "GET", "/things/7");
    assert_eq!(
        body_of(&response),
        "not like that: `/things/7` accepts DELETE, OPTIONS"
    );
    assert_eq!(body_of(&send(&server, "DELETE", "/things/7")), "deleted 7");
}

#[test]
fn a_panicking_catcher_leaves_the_default_answer() {
    let server = TestServer::start(Config::default(), caught_routes());
    let response = send(&server, "GET", "/catcher-panics");
    assert_eq!(status_of(&response), 404, "{response}");
    assert_eq!(
        body_of(&response),
        "404 Not Found: no handler for `/catcher-panics`\n"
    );
    still_serving(&server);
}

#[test]
fn catchers_answer_the_parsers_refusals() {
    let config = Config::default()
        .with_max_request_size(1024)
        .with_max_request_age(Duration::from_millis(300));
    let server = TestServer::start(config, caught_routes());
    let response = server.exchange(b"GET /page HTTP/1.1\r\nContent-Length: ten\r\n\r\n");
    assert_eq!(status_of(&response), 400, "{response}");
    assert_eq!(body_of(&response), "bad (false): invalid content-length");
    still_serving(&server);

    // A path that is not UTF-8 once decoded is the parser's refusal too.
    let response = send(&server, "GET", "/rooms/%ff/messages");
    assert_eq!(status_of(&response), 400, "{response}");
    assert_eq!(
        body_of(&response),
        "bad (false): decoded text is not valid UTF-8"
    );
    still_serving(&server);

    let response = server.exchange(b"POST /things HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    assert_eq!(status_of(&response), 413, "{response}");
    assert_eq!(body_of(&response), "too big for us");
    still_serving(&server);

    let mut stream = server.connect();
    stream.write_all(b"GET /page HTTP/1.1\r\n").unwrap();
    let response = read_to_close(&mut stream);
    assert_eq!(status_of(&response), 408, "{response}");
    assert_eq!(body_of(&response), "too slow");
    still_serving(&server);
}

#[test]
fn keep_alive_survives_caught_answers() {
    let server = TestServer::start(Config::default(), caught_routes());
    let mut stream = server.connect();
    stream
        .write_all(
            b"GET /nope HTTP/1.1\r\n\r\nDELETE /page HTTP/1.1\r\n\r\nGET /panic HTTP/1.1\r\n\r\nGET /page HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let all = read_to_close(&mut stream);
    let statuses: Vec<&str> = all
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &all[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["404", "405", "500", "200"], "{all}");
    assert!(all.ends_with("twelve bytes"), "{all}");
}
