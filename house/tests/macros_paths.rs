//! What the handler macros make of issue 13's arguments over real sockets: path parameters
//! with rules, guards on closing and stream handlers, state, JSON bodies with field rules,
//! and the 415s of bodies a handler cannot read. After every refusal the server still answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use house::{
    catcher, closing_handler, routes, stream_handler, Caught, Config, Ctx, FromRequest,
    IntoResponse, Json, Response, Server, Status, Subscribe,
};
use serde::Deserialize;
use support::{body_of, read_until, status_of, TestServer};

/// A user named by the `X-User` header; none → 401.
struct User(String);

impl FromRequest for User {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<User, Response> {
        match ctx.request.header("x-user") {
            Some(name) => Ok(User(name.to_owned())),
            None => Err((Status::UNAUTHORIZED, "log in first").into_response()),
        }
    }
}

/// State: the rooms there are, and how many messages were posted.
struct Rooms {
    names: Vec<&'static str>,
    posted: AtomicU64,
}

#[derive(Deserialize, house::Validate)]
struct NewMessage {
    #[param(min = 2, max = 8)]
    text: String,
    #[param(one_of = ["info", "warn"])]
    level: Option<String>,
}

#[closing_handler("/api/rooms/{name}/messages", methods = [GET])]
fn messages(#[param(max = 16)] name: String, rooms: &Rooms) -> String {
    let known = rooms.names.contains(&name.as_str());
    format!(
        "{name} known={known} posted={}",
        rooms.posted.load(Ordering::Relaxed)
    )
}

#[closing_handler("/api/rooms/{name}/messages", methods = [POST])]
fn post_message(
    #[guard] user: User,
    #[param(max = 16)] name: String,
    #[body] message: Json<NewMessage>,
    rooms: &Rooms,
) -> String {
    rooms.posted.fetch_add(1, Ordering::Relaxed);
    let level = message.0.level.as_deref().unwrap_or("-");
    format!("{} in {name}: {} ({level})", user.0, message.0.text)
}

#[closing_handler("/items/{id}")]
fn item(#[param(min = 1)] id: u32, #[param(max = 3)] sort: Option<String>) -> String {
    format!("item {id} {}", sort.unwrap_or_default())
}

#[closing_handler("/files/{*path}")]
fn file(path: String) -> String {
    format!("file [{path}]")
}

#[closing_handler("/me")]
fn me(#[guard] user: Option<User>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |u| u.0)
}

#[closing_handler("/guarded/{n}")]
fn guarded(#[guard] user: User, #[param(max = 9)] n: u8) -> String {
    format!("{} {n}", user.0)
}

#[closing_handler("/note", methods = [POST])]
fn note(#[body] text: String) -> String {
    format!("note: {text}")
}

#[closing_handler("/form", methods = [POST])]
fn form(room: String) -> String {
    format!("form {room}")
}

#[stream_handler("/rooms/{room}/source")]
fn source(#[guard] user: User, #[param(max = 16)] room: String) -> Subscribe {
    let _ = user;
    Subscribe::to(room)
}

#[catcher(404)]
fn not_found(caught: &Caught) -> (Status, String) {
    let path = caught.request.map_or("?", |r| r.path());
    (Status::NOT_FOUND, format!("no page at {path}"))
}

fn start() -> TestServer {
    let routes = routes![
        messages,
        post_message,
        item,
        file,
        me,
        guarded,
        note,
        form,
        source,
        not_found
    ];
    let server = Server::bind("127.0.0.1:0", Config::default(), routes)
        .unwrap()
        .with_state(Rooms {
            names: vec!["lobby"],
            posted: AtomicU64::new(0),
        });
    TestServer::run(server)
}

/// A `Connection: close` request with `headers` and `body`; the raw response.
fn send(server: &TestServer, head: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = format!("{head} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    server.exchange(request.as_bytes())
}

/// The server still answers a good request after a bad one.
#[track_caller]
fn still_serving(server: &TestServer) {
    let response = server.get("/files/ok");
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(body_of(&response), "file [ok]");
}

#[test]
fn path_parameters_decode_and_follow_their_rules() {
    let server = start();
    let long = "x".repeat(17);
    server.check(&[
        (
            "/api/rooms/lobby/messages",
            200,
            "lobby known=true posted=0",
        ),
        (
            "/api/rooms/caf%C3%A9/messages",
            200,
            "café known=false posted=0",
        ),
        // An encoded `/` stays inside its segment.
        ("/api/rooms/a%2Fb/messages", 200, "a/b known=false posted=0"),
        (
            &format!("/api/rooms/{long}/messages"),
            400,
            "parameter `name` must be at most 16 characters (got 17)",
        ),
        ("/items/7?sort=asc", 200, "item 7 asc"),
        ("/items/0", 400, "parameter `id` must be at least 1 (got 0)"),
        (
            "/items/x",
            400,
            "parameter `id` must be an integer from 0 to 4294967295 (got `x`)",
        ),
        (
            "/items/7?sort=down",
            400,
            "parameter `sort` must be at most 3 characters (got 4)",
        ),
        ("/files/", 200, "file []"),
        ("/files/a/b%20c.txt", 200, "file [a/b c.txt]"),
    ]);
    still_serving(&server);
    // Not a template's shape: the catcher's page.
    let response = server.get("/api/rooms/lobby");
    assert_eq!(status_of(&response), 404, "{response}");
    assert_eq!(body_of(&response), "no page at /api/rooms/lobby");
    still_serving(&server);
}

#[test]
fn guards_answer_before_parameters_are_read() {
    let server = start();
    // No user and a broken parameter: the guard's 401, not the parameter's 400.
    let response = server.get("/guarded/99");
    assert_eq!(status_of(&response), 401, "{response}");
    assert_eq!(body_of(&response), "log in first");
    still_serving(&server);
    let response = send(&server, "GET /guarded/99", &[("X-User", "ann")], "");
    assert_eq!(status_of(&response), 400, "{response}");
    assert_eq!(
        body_of(&response),
        "400 Bad Request: parameter `n` must be at most 9 (got 99)\n"
    );
    let response = send(&server, "GET /guarded/3", &[("X-User", "ann")], "");
    assert_eq!(body_of(&response), "ann 3");
    // An optional guard never refuses.
    assert_eq!(body_of(&server.get("/me")), "anonymous");
    assert_eq!(
        body_of(&send(&server, "GET /me", &[("X-User", "bo")], "")),
        "bo"
    );
}

#[test]
fn a_guarded_stream_refuses_or_subscribes() {
    let server = start();
    let response = server.get("/rooms/lobby/source");
    assert_eq!(status_of(&response), 401, "{response}");
    assert_eq!(body_of(&response), "log in first");
    still_serving(&server);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /rooms/lobby/source HTTP/1.1\r\nHost: t\r\nX-User: ann\r\n\r\n")
        .unwrap();
    let head = read_until(&mut stream, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
}

#[test]
fn json_bodies_state_and_field_rules() {
    let server = start();
    let json = [("Content-Type", "application/json"), ("X-User", "ann")];
    let response = send(
        &server,
        "POST /api/rooms/lobby/messages",
        &json,
        r#"{"text":"hello","level":"warn"}"#,
    );
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(body_of(&response), "ann in lobby: hello (warn)");
    // The state the handler changed is what the next handler reads.
    assert_eq!(
        body_of(&server.get("/api/rooms/lobby/messages")),
        "lobby known=true posted=1"
    );
    for (body, message) in [
        (
            r#"{"text":"h"}"#,
            "body field `text` must be at least 2 characters (got 1)",
        ),
        (
            r#"{"text":"hello","level":"loud"}"#,
            "body field `level` must be one of `info`, `warn` (got `loud`)",
        ),
    ] {
        let response = send(&server, "POST /api/rooms/lobby/messages", &json, body);
        assert_eq!(status_of(&response), 400, "{body}: {response}");
        assert_eq!(body_of(&response), format!("400 Bad Request: {message}\n"));
        still_serving(&server);
    }
    // Not JSON: 415 naming the type.
    let response = send(
        &server,
        "POST /api/rooms/lobby/messages",
        &[("Content-Type", "text/plain"), ("X-User", "ann")],
        "hello",
    );
    assert_eq!(status_of(&response), 415, "{response}");
    assert!(
        body_of(&response).contains("application/json"),
        "{response}"
    );
    still_serving(&server);
    // The guard still comes first.
    let response = send(
        &server,
        "POST /api/rooms/lobby/messages",
        &[("Content-Type", "application/json")],
        r#"{"text":"h"}"#,
    );
    assert_eq!(status_of(&response), 401, "{response}");
    // A text body of any type.
    let response = send(
        &server,
        "POST /note",
        &[("Content-Type", "text/plain")],
        "hi",
    );
    assert_eq!(body_of(&response), "note: hi");
}

#[test]
fn a_form_handler_refuses_bodies_it_cannot_read() {
    let server = start();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(
        body_of(&send(&server, "POST /form", &form, "room=dev")),
        "form dev"
    );
    for content_type in ["application/json", "multipart/form-data; boundary=x"] {
        let response = send(
            &server,
            "POST /form",
            &[("Content-Type", content_type)],
            r#"{"room":"dev"}"#,
        );
        assert_eq!(status_of(&response), 415, "{content_type}: {response}");
        assert!(
            body_of(&response).contains("application/x-www-form-urlencoded"),
            "{response}"
        );
        still_serving(&server);
    }
}
