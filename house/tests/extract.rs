//! State, guards and bodies over real sockets, with hand-written routes that call
//! `house::__private` and the traits the way the macros' generated code does: state read by a
//! handler and refused at startup when missing, `Bearer` and `SessionUser` guarding closing and
//! stream handlers, JSON/text bodies and their 400/413/415, and a form handler refusing bodies
//! it cannot read. After every refusal the server still answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Write};

use house::__private;
use house::{
    Bearer, BearerTokens, BodyError, Config, Event, FromRequest, Json, Methods, Response, Route,
    Server, SessionUser, Status, Subscribe,
};
use serde::Deserialize;
use support::*;

/// Request headers, as a table row gives them.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// The application state of these tests.
struct Rooms(Vec<&'static str>);

#[derive(Deserialize)]
struct Author {
    name: String,
}

#[derive(Deserialize)]
struct NewMessage {
    text: String,
    author: Author,
}

/// What `#[derive(Validate)]` writes for `#[param(min = 5)] text: String`.
impl house::Validate for NewMessage {
    fn validate(&self) -> Result<(), BodyError> {
        __private::check_min(&self.text, 5).map_err(|err| BodyError::field("text", err))
    }
}

/// `fn rooms(rooms: &Rooms)`: state by type.
fn rooms_route() -> Route {
    Route::closing("/rooms", |ctx| {
        let rooms = match __private::state::<Rooms>(ctx.state) {
            Ok(state) => state,
            Err(refusal) => return refusal,
        };
        Response::text(Status::OK, rooms.0.join(","))
    })
    .with_name("rooms")
    .needs_state::<Rooms>()
}

/// `fn publish(#[guard] token: Bearer)`.
fn publish_route() -> Route {
    Route::closing("/api/publish", |ctx| {
        let token = match Bearer::from_request(ctx) {
            Ok(guard) => guard,
            Err(refusal) => return refusal,
        };
        Response::text(Status::OK, format!("token {}", token.token()))
    })
}

/// `#[stream_handler] fn api_feed(#[guard] _token: Bearer) -> Subscribe`.
fn api_feed_route() -> Route {
    Route::stream("/api/feed", |ctx| {
        Bearer::from_request(ctx)?;
        Ok::<_, Response>(Subscribe::to("api"))
    })
}

/// `fn maybe(#[guard] token: Option<Bearer>)`: never refused.
fn maybe_route() -> Route {
    Route::closing("/maybe", |ctx| {
        let token = match Option::<Bearer>::from_request(ctx) {
            Ok(guard) => guard,
            Err(refusal) => return refusal,
        };
        let who = token.map_or("anonymous".to_owned(), |t| t.into_token());
        Response::text(Status::OK, who)
    })
}

fn login_route() -> Route {
    Route::closing("/login", |ctx| {
        let name = ctx.request.param("name").unwrap_or("").to_owned();
        SessionUser::log_in(&mut ctx.session, &name).map(|()| format!("hello {name}"))
    })
    .with_methods(Methods::POST)
}

fn logout_route() -> Route {
    Route::closing("/logout", |ctx| {
        SessionUser::log_out(&mut ctx.session);
        "bye"
    })
    .with_methods(Methods::POST)
}

/// `#[stream_handler] fn inbox(#[guard] user: SessionUser) -> Subscribe`.
fn inbox_route() -> Route {
    Route::stream("/inbox", |ctx| {
        let user = SessionUser::from_request(ctx)?;
        Ok::<_, Response>(Subscribe::to(format!("inbox/{}", user.name())))
    })
}

/// `fn post_message(#[body] message: Json<NewMessage>)`.
fn messages_route() -> Route {
    Route::closing("/messages", |ctx| {
        let message: Json<NewMessage> = match __private::body(ctx.request) {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        if let Err(refusal) = __private::validate_body!(&message) {
            return refusal;
        }
        let Json(message) = message;
        Response::text(
            Status::OK,
            format!("{} by {}", message.text, message.author.name),
        )
    })
    .with_methods(Methods::POST)
}

/// `fn note(#[body] text: String)`.
fn note_route() -> Route {
    Route::closing("/note", |ctx| {
        let text: String = match __private::body(ctx.request) {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        Response::text(Status::OK, format!("{} chars", text.chars().count()))
    })
    .with_methods(Methods::POST)
}

/// `fn upload(#[body] bytes: Vec<u8>)`.
fn upload_route() -> Route {
    Route::closing("/upload", |ctx| {
        let bytes: Vec<u8> = match __private::body(ctx.request) {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        Response::text(Status::OK, format!("{} bytes", bytes.len()))
    })
    .with_methods(Methods::POST)
}

/// `fn send(room: String)`: parameters and no `#[body]`.
fn send_route() -> Route {
    Route::closing("/send", |ctx| {
        if let Err(refusal) = __private::expect_form(ctx.request) {
            return refusal;
        }
        match ctx.request.param("room") {
            Some(room) => Response::text(Status::OK, format!("sent to {room}")),
            None => __private::reject("room", house::ParamError::missing()),
        }
    })
    .with_methods(Methods::POST)
}

fn server(config: Config) -> TestServer {
    let routes = vec![
        rooms_route(),
        publish_route(),
        api_feed_route(),
        maybe_route(),
        login_route(),
        logout_route(),
        inbox_route(),
        messages_route(),
        note_route(),
        upload_route(),
        send_route(),
        count_route(),
    ];
    let server = Server::bind("127.0.0.1:0", config, routes)
        .unwrap()
        .with_state(Rooms(vec!["lobby", "dev"]))
        .with_state(BearerTokens::new(["t1", "t2"]));
    TestServer::run(server)
}

/// A `Connection: close` request with `headers` and `body`; the raw response.
fn send(server: &TestServer, head: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut request = format!("{head} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    server.exchange(&bytes)
}

/// The value of header `name` (case-insensitive) in a raw response's head.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The server still answers after a refusal.
#[track_caller]
fn still_serving(server: &TestServer) {
    let response = server.get("/rooms");
    assert_eq!(status_of(&response), 200, "{response}");
}

#[test]
fn state_is_read_by_type() {
    let server = server(Config::default());
    server.check(&[("/rooms", 200, "lobby,dev")]);
}

#[test]
fn a_missing_state_refuses_to_start() {
    let routes = [rooms_route(), publish_route()];
    let server = Server::bind("127.0.0.1:0", Config::default(), routes)
        .unwrap()
        .with_state(BearerTokens::new(["t"]))
        .with_state(Rooms(vec!["replaced"]))
        .with_state(7_u8);
    // A second value of a type replaces the first, so this one starts and serves it.
    let started = TestServer::run(server);
    started.check(&[("/rooms", 200, "replaced")]);
    started.stop().unwrap();

    let err = Server::bind("127.0.0.1:0", Config::default(), [rooms_route()])
        .unwrap()
        .with_state(7_u8)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "handler `rooms` needs state `extract::Rooms`; add it with `Server::with_state`"
    );
}

#[test]
fn bearer_missing_wrong_malformed_and_right() {
    let server = server(Config::default());
    let rows: [(Headers, u16, Option<&str>, &str); 7] = [
        (
            &[],
            401,
            Some("Bearer"),
            "this needs `Authorization: Bearer <token>`",
        ),
        (
            &[("Authorization", "Basic dTpw")],
            401,
            Some("Bearer"),
            "this needs",
        ),
        (
            &[("Authorization", "Bearer t3")],
            401,
            Some(r#"Bearer error="invalid_token""#),
            "the bearer token is not valid",
        ),
        (
            &[("Authorization", "Bearer t1 t2")],
            400,
            Some(r#"Bearer error="invalid_request""#),
            "the bearer token is malformed",
        ),
        (&[("Authorization", "Bearer t1")], 200, None, "token t1"),
        (&[("Authorization", "bearer   t2")], 200, None, "token t2"),
        (&[("authorization", "BEARER t1")], 200, None, "token t1"),
    ];
    for (headers, status, authenticate, body) in rows {
        let response = send(&server, "GET /api/publish", headers, b"");
        assert_eq!(status_of(&response), status, "{headers:?}: {response}");
        assert_eq!(
            header(&response, "www-authenticate"),
            authenticate,
            "{response}"
        );
        assert!(body_of(&response).contains(body), "{headers:?}: {response}");
        still_serving(&server);
    }
    // An optional guard turns every refusal into `None`.
    let response = send(
        &server,
        "GET /maybe",
        &[("Authorization", "Bearer t9")],
        b"",
    );
    assert_eq!(body_of(&response), "anonymous");
    let response = send(
        &server,
        "GET /maybe",
        &[("Authorization", "Bearer t2")],
        b"",
    );
    assert_eq!(body_of(&response), "t2");
}

#[test]
fn bearer_without_tokens_is_a_500() {
    let server =
        TestServer::run(Server::bind("127.0.0.1:0", Config::default(), [publish_route()]).unwrap());
    let response = send(
        &server,
        "GET /api/publish",
        &[("Authorization", "Bearer t1")],
        b"",
    );
    assert_eq!(status_of(&response), 500, "{response}");
    assert_eq!(
        body_of(&response),
        "500 Internal Server Error: the server has no bearer tokens configured\n"
    );
    assert_eq!(header(&response, "www-authenticate"), None);
}

#[test]
fn bearer_guards_a_stream() {
    let server = server(Config::default());
    let refused = send(
        &server,
        "GET /api/feed",
        &[("Authorization", "Bearer nope")],
        b"",
    );
    assert_eq!(status_of(&refused), 401, "{refused}");
    assert_eq!(
        header(&refused, "www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let refused = send(&server, "GET /api/feed", &[], b"");
    assert_eq!(header(&refused, "www-authenticate"), Some("Bearer"));

    let mut stream = server.connect();
    stream
        .write_all(b"GET /api/feed HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t1\r\n\r\n")
        .unwrap();
    let head = read_until(&mut stream, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"));
    wait_for("the subscriber", || {
        body_of(&server.get("/count?channel=api")) == "1"
    });
    server
        .handle
        .publish("api", Event::new("for api clients"))
        .unwrap();
    let text = read_until(&mut stream, "for api clients");
    assert!(text.contains("data: for api clients\n"), "{text}");
}

/// The cookie (`name=value`) a raw response sets.
fn session_cookie(response: &str) -> String {
    let set = header(response, "set-cookie").unwrap_or_else(|| panic!("no cookie: {response}"));
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn session_user_guards_a_stream() {
    let config = Config::default();
    let routes = vec![login_route(), logout_route(), inbox_route(), count_route()];
    let server = TestServer::start(config, routes);

    let refused = send(&server, "GET /inbox", &[], b"");
    assert_eq!(status_of(&refused), 401, "{refused}");
    assert_eq!(header(&refused, "www-authenticate"), None);
    assert_eq!(
        body_of(&refused),
        "401 Unauthorized: log in first: this needs a signed-in session\n"
    );

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let login = send(&server, "POST /login", &form, b"name=ann");
    assert_eq!(body_of(&login), "hello ann", "{login}");
    let cookie = session_cookie(&login);

    let mut stream = server.connect();
    stream
        .write_all(format!("GET /inbox HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n").as_bytes())
        .unwrap();
    let head = read_until(&mut stream, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    wait_for("the subscriber", || {
        body_of(&server.get("/count?channel=inbox/ann")) == "1"
    });
    server
        .handle
        .publish("inbox/ann", Event::new("hi ann"))
        .unwrap();
    read_until(&mut stream, "data: hi ann\n");

    // Logged out, the same cookie no longer opens the stream.
    let cookie_header = [("Cookie", cookie.as_str())];
    let logout = send(&server, "POST /logout", &cookie_header, b"");
    assert_eq!(body_of(&logout), "bye");
    let refused = send(&server, "GET /inbox", &cookie_header, b"");
    assert_eq!(status_of(&refused), 401, "{refused}");
}

#[test]
fn json_bodies() {
    let server = server(Config::default().with_max_request_size(1024));
    let json = [("Content-Type", "application/json")];
    let rows: [(Headers, &str, u16, &str); 7] = [
        (
            &json,
            r#"{"text": "hello", "author": {"name": "ann"}}"#,
            200,
            "hello by ann",
        ),
        (
            &[("Content-Type", "application/json; charset=utf-8")],
            r#"{"text": "hello", "author": {"name": "ann"}}"#,
            200,
            "hello by ann",
        ),
        (
            &json,
            r#"{"text": "hello", "author": {"name": 5}}"#,
            400,
            "400 Bad Request: invalid JSON body at `author.name`: invalid type: integer `5`, expected a string\n",
        ),
        (
            &json,
            r#"{"text": "hi", "author": {"name": "ann"}}"#,
            400,
            "400 Bad Request: body field `text` must be at least 5 characters (got 2)\n",
        ),
        (
            &json,
            r#"{"text": "hello""#,
            400,
            "400 Bad Request: invalid JSON body: EOF while parsing an object at line 1 column 16\n",
        ),
        (
            &[("Content-Type", "text/plain")],
            r#"{"text": "hello", "author": {"name": "ann"}}"#,
            415,
            "415 Unsupported Media Type: expected a body with `Content-Type: application/json` (got `text/plain`)\n",
        ),
        (
            &[],
            r#"{"text": "hello", "author": {"name": "ann"}}"#,
            415,
            "415 Unsupported Media Type: expected a body with `Content-Type: application/json` (got none)\n",
        ),
    ];
    for (headers, body, status, expected) in rows {
        let response = send(&server, "POST /messages", headers, body.as_bytes());
        assert_eq!(status_of(&response), status, "{body}: {response}");
        assert_eq!(body_of(&response), expected, "{body}");
        still_serving(&server);
    }
    // Too large for the request size limit: the parser's 413, before any handler.
    let big = format!(
        r#"{{"text": "{}", "author": {{"name": "ann"}}}}"#,
        "x".repeat(2000)
    );
    let response = send(&server, "POST /messages", &json, big.as_bytes());
    assert_eq!(status_of(&response), 413, "{response}");
    still_serving(&server);
}

#[test]
fn text_and_byte_bodies() {
    let server = server(Config::default());
    let response = send(&server, "POST /note", &[], "héllo".as_bytes());
    assert_eq!(body_of(&response), "5 chars", "{response}");
    let response = send(&server, "POST /note", &[], b"ok\xff\xfe");
    assert_eq!(status_of(&response), 400, "{response}");
    assert_eq!(
        body_of(&response),
        "400 Bad Request: the body is not UTF-8 text (invalid byte at offset 2)\n"
    );
    still_serving(&server);
    let response = send(
        &server,
        "POST /upload",
        &[("Content-Type", "image/png")],
        b"\x89PNG\xff",
    );
    assert_eq!(body_of(&response), "5 bytes", "{response}");
}

#[test]
fn a_form_handler_refuses_bodies_it_cannot_read() {
    let server = server(Config::default());
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let response = send(&server, "POST /send", &form, b"room=lobby");
    assert_eq!(body_of(&response), "sent to lobby", "{response}");
    let response = send(&server, "POST /send?room=dev", &[], b"");
    assert_eq!(body_of(&response), "sent to dev", "{response}");

    let multipart =
        "--XyZ\r\nContent-Disposition: form-data; name=\"room\"\r\n\r\nlobby\r\n--XyZ--\r\n";
    let rows = [
        (
            "application/json",
            r#"{"room": "lobby"}"#,
            "`application/json`",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            multipart,
            "`multipart/form-data`",
        ),
    ];
    for (content_type, body, got) in rows {
        let response = send(
            &server,
            "POST /send",
            &[("Content-Type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(status_of(&response), 415, "{content_type}: {response}");
        assert_eq!(
            body_of(&response),
            format!("415 Unsupported Media Type: expected a body with `Content-Type: application/x-www-form-urlencoded` (got {got})\n")
        );
        still_serving(&server);
    }
}
