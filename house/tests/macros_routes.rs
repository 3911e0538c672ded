//! What the handler macros make of a whole handler over real sockets: paths, methods, content
//! types, context arguments, return types, stream handlers and duplicate paths.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Write};

use house::{
    closing_handler, routes, stream_handler, Config, Event, Hub, IntoResponse, Json, PublishError,
    Request, Response, Server, Status, Subscribe,
};
use serde::Serialize;
use support::{body_of, read_until, status_of, subscribe, wait_for, TestServer};

#[derive(Serialize)]
struct Chat {
    name: String,
    message: String,
}

#[stream_handler]
fn source(#[param(max = 16)] room: String) -> Result<Subscribe, Status> {
    if room == "secret" {
        return Err(Status::FORBIDDEN);
    }
    Ok(Subscribe::to(room))
}

#[closing_handler(methods = [POST])]
fn send_message(
    #[param(max = 16)] room: String,
    hub: &mut Hub,
    #[param(min = 1, max = 64)] name: String,
    #[param(min = 5, max = 256)] message: String,
) -> Result<&'static str, PublishError> {
    hub.publish(&room, Event::json(&Chat { name, message }))?;
    Ok("sent")
}

#[closing_handler]
fn count(hub: &Hub, channel: String) -> String {
    hub.subscribers(&channel).to_string()
}

#[closing_handler("/")]
fn index(request: &Request) -> String {
    format!("<p>{}</p>", request.path())
}

#[closing_handler(path = "/plain", content_type = "text/plain; charset=utf-8")]
fn plain(json: bool, #[param(max = 3)] word: Option<String>) -> Result<String, Json<Vec<u8>>> {
    if json {
        return Err(Json(vec![1, 2]));
    }
    Ok(word.unwrap_or_default())
}

#[closing_handler]
fn r#type(kind: String) -> Response {
    match kind.as_str() {
        "status" => Status::CONFLICT.into_response(),
        "empty" => Response::new(Status::NO_CONTENT),
        _ => Response::text(Status::OK, kind),
    }
}

#[closing_handler]
fn nothing() {}

#[closing_handler]
fn tuple() -> (Status, &'static str) {
    (Status::NOT_FOUND, "<p>gone</p>")
}

fn server() -> TestServer {
    TestServer::start(
        Config::default(),
        routes![
            source,
            send_message,
            count,
            index,
            plain,
            r#type,
            nothing,
            tuple
        ],
    )
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn paths_come_from_fn_names_or_the_attribute() {
    let server = server();
    assert_eq!(body_of(&server.get("/count?channel=x")), "0");
    assert_eq!(body_of(&server.get("/")), "<p>/</p>");
    assert_eq!(body_of(&server.get("/plain?json=false&word=ab")), "ab");
    assert_eq!(body_of(&server.get("/type?kind=hey")), "hey");
    assert_eq!(status_of(&server.get("/send_message")), 404);
}

#[test]
fn methods_outside_the_list_answer_405() {
    let server = server();
    let get = server.get("/send-message?room=a&name=b&message=hello");
    assert_eq!(status_of(&get), 405, "{get}");
    assert_eq!(header(&get, "Allow"), Some("POST, OPTIONS"));
    // The default is GET, HEAD and POST.
    let put = server.exchange(b"PUT /count?channel=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status_of(&put), 405, "{put}");
    assert_eq!(header(&put, "Allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn content_type_replaces_html_only() {
    let server = server();
    let text = server.get("/plain?json=false&word=ab");
    assert_eq!(
        header(&text, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    let json = server.get("/plain?json=true");
    assert_eq!(header(&json, "Content-Type"), Some("application/json"));
    assert_eq!(body_of(&json), "[1,2]");
    let refused = server.get("/plain?json=true&word=abcd");
    assert_eq!(status_of(&refused), 400);
    assert_eq!(
        header(&refused, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    // Without the option, strings are HTML.
    let html = server.get("/");
    assert_eq!(
        header(&html, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn return_types() {
    let server = server();
    let status = server.get("/type?kind=status");
    assert_eq!(status_of(&status), 409);
    assert_eq!(body_of(&status), "409 Conflict\n");
    assert_eq!(status_of(&server.get("/type?kind=empty")), 204);
    let nothing = server.get("/nothing");
    assert!(
        nothing.starts_with("HTTP/1.1 204 No Content\r\n"),
        "{nothing}"
    );
    let tuple = server.get("/tuple");
    assert_eq!(status_of(&tuple), 404);
    assert_eq!(body_of(&tuple), "<p>gone</p>");
}

#[test]
fn stream_handler_subscribes_and_closing_handler_publishes() {
    let server = server();
    let mut stream = subscribe(&server, "/source?room=lobby");
    wait_for("the subscriber", || {
        body_of(&server.get("/count?channel=lobby")) == "1"
    });
    let form = "room=lobby&name=ann&message=hello%20all";
    let sent = server.exchange(
        format!(
            "POST /send-message HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&sent), 200, "{sent}");
    assert_eq!(body_of(&sent), "sent");
    let events = read_until(&mut stream, "\n\n");
    assert!(
        events.ends_with("data: {\"name\":\"ann\",\"message\":\"hello all\"}\n\n"),
        "{events:?}"
    );
}

#[test]
fn stream_handler_refusals() {
    let server = server();
    let secret = server.get("/source?room=secret");
    assert_eq!(status_of(&secret), 403, "{secret}");
    let long = server.get(&format!("/source?room={}", "a".repeat(17)));
    assert_eq!(status_of(&long), 400);
    assert_eq!(
        body_of(&long),
        "400 Bad Request: parameter `room` must be at most 16 characters (got 17)\n"
    );
    let missing = server.get("/source");
    assert_eq!(
        body_of(&missing),
        "400 Bad Request: missing parameter `room`\n"
    );
}

#[test]
fn refused_parameters_keep_the_connection_alive() {
    let server = server();
    let mut stream = server.connect();
    stream
        .write_all(b"GET /count HTTP/1.1\r\nHost: t\r\n\r\nGET /count?channel=x HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let both = read_until(&mut stream, "\r\n\r\n0");
    assert!(both.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{both}");
    assert!(
        both.contains("400 Bad Request: missing parameter `channel`\n"),
        "{both}"
    );
}

#[closing_handler("/count")]
fn other_count() -> &'static str {
    "0"
}

/// One `routes![count, other_count]` does not compile (tests/ui/fail/routes_clash.rs); a
/// table put together from several lists is still checked at start-up.
#[test]
fn duplicate_paths_name_both_handlers() {
    let mut routes = routes![count];
    routes.extend(routes![other_count]);
    let err = Server::bind("127.0.0.1:0", Config::default(), routes)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "path `/count` is registered twice: by `count` and by `other_count`"
    );
}
