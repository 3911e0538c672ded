//! CORS over real sockets: the `Access-Control-*` headers on every kind of answer the server
//! writes (handler responses, stream heads, 404, 405, 429, 503 at the cap, parser errors), and
//! preflights, for allowed and disallowed origins.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::time::Duration;

use house::{
    closing_handler, routes, Config, Cors, Event, Methods, RateLimited, Response, Route, Session,
    Status, Subscribe,
};
use support::*;

const A: &str = "http://a.test";
const B: &str = "http://b.test";

/// One send a minute per client.
#[closing_handler(methods = [POST])]
fn limited(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("limited", 1, Duration::from_secs(60))?;
    Ok("ok")
}

fn app() -> Vec<Route> {
    let mut routes: Vec<Route> = routes![limited];
    routes.extend([
        Route::stream("/source", |_| {
            Subscribe::to("room").with_header("X-Room", "room")
        }),
        Route::closing("/send", |ctx| {
            ctx.hub.publish("room", Event::new("hi")).map(|_| "sent")
        })
        .with_methods(Methods::POST),
        Route::closing("/hello", |_| {
            Response::text(Status::OK, "hello").with_header("X-Id", "7")
        }),
        Route::closing("/own", |_| {
            Response::text(Status::OK, "own").with_header("Access-Control-Allow-Origin", "x")
        }),
        Route::closing("/opt", |_| "own options").with_methods(Methods::OPTIONS | Methods::PUT),
    ]);
    routes
}

fn list() -> Cors {
    Cors::allow_origins([A])
        .allow_credentials(true)
        .allow_headers(["content-type", "x-token"])
        .expose_headers(["X-Id"])
        .max_age(Duration::from_secs(600))
}

fn start(cors: Cors) -> TestServer {
    TestServer::start(Config::default().with_cors(cors), app())
}

/// A request with `Connection: close` and `Origin: origin` (none for `""`), and `extra` header
/// lines; the whole response.
fn ask(server: &TestServer, line: &str, origin: &str, extra: &str) -> String {
    let origin = if origin.is_empty() {
        String::new()
    } else {
        format!("Origin: {origin}\r\n")
    };
    server.exchange(
        format!("{line} HTTP/1.1\r\nHost: t\r\n{origin}{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn head_of(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(head, _)| head)
}

/// The `Access-Control-*` and `Vary` lines of a response head, in order.
fn cors_lines(response: &str) -> Vec<&str> {
    head_of(response)
        .split("\r\n")
        .filter(|line| line.starts_with("Access-Control-") || line.starts_with("Vary:"))
        .collect()
}

const ALLOWED: [&str; 4] = [
    "Vary: Origin",
    "Access-Control-Allow-Origin: http://a.test",
    "Access-Control-Allow-Credentials: true",
    "Access-Control-Expose-Headers: X-Id",
];

#[test]
fn an_allowed_origin_gets_its_own_origin_back_with_credentials() {
    let server = start(list());
    let response = ask(&server, "GET /hello", A, "");
    assert_eq!(status_of(&response), 200);
    assert_eq!(cors_lines(&response), ALLOWED);
    assert_eq!(body_of(&response), "hello");
}

#[test]
fn a_disallowed_or_missing_origin_gets_only_vary() {
    let server = start(list());
    for origin in [B, "http://a.test:80", "null", ""] {
        let response = ask(&server, "GET /hello", origin, "");
        assert_eq!(status_of(&response), 200, "{origin}");
        assert_eq!(cors_lines(&response), ["Vary: Origin"], "{origin}");
    }
}

#[test]
fn without_cors_there_are_no_cors_headers() {
    let server = TestServer::start(Config::default(), app());
    let response = ask(&server, "GET /hello", A, "");
    assert_eq!(cors_lines(&response), Vec::<&str>::new());
    let preflight = ask(
        &server,
        "OPTIONS /send",
        A,
        "Access-Control-Request-Method: POST\r\n",
    );
    assert_eq!(status_of(&preflight), 204);
    assert_eq!(cors_lines(&preflight), Vec::<&str>::new());
}

#[test]
fn any_is_a_star_unless_credentials_then_the_origin() {
    let server = start(Cors::any());
    for origin in [A, B, ""] {
        let response = ask(&server, "GET /hello", origin, "");
        assert_eq!(
            cors_lines(&response),
            ["Access-Control-Allow-Origin: *"],
            "{origin}"
        );
    }
    let server = start(Cors::any().allow_credentials(true));
    let response = ask(&server, "GET /hello", B, "");
    assert_eq!(
        cors_lines(&response),
        [
            "Vary: Origin",
            "Access-Control-Allow-Origin: http://b.test",
            "Access-Control-Allow-Credentials: true"
        ]
    );
    let response = ask(&server, "GET /hello", "", "");
    assert_eq!(cors_lines(&response), ["Vary: Origin"]);
}

#[test]
fn a_handlers_own_allow_origin_is_kept() {
    let server = start(list());
    let response = ask(&server, "GET /own", A, "");
    assert_eq!(cors_lines(&response), ["Access-Control-Allow-Origin: x"]);
}

#[test]
fn stream_heads_carry_cors_headers() {
    // No spread: the hint exactly (tests/lifecycle.rs checks the spread).
    let server = TestServer::start(
        Config::default().with_cors(list()).with_retry_spread(0.0),
        app(),
    );
    let mut stream = server.connect();
    stream
        .write_all(format!("GET /source HTTP/1.1\r\nOrigin: {A}\r\n\r\n").as_bytes())
        .unwrap();
    let head = read_until(&mut stream, "retry: 2000\n\n");
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nX-Room: room\r\n\
Vary: Origin\r\nAccess-Control-Allow-Origin: http://a.test\r\n\
Access-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: X-Id\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n"
    );
    assert_eq!(status_of(&ask(&server, "POST /send", A, "")), 200);
    read_until(&mut stream, "data: hi\n\n");
    // HEAD on the stream route: the same head, then the close.
    let response = ask(&server, "HEAD /source", A, "");
    assert_eq!(cors_lines(&response), ALLOWED);
    assert!(
        response.ends_with("Connection: close\r\n\r\n"),
        "{response}"
    );
    // A disallowed origin's stream still streams (the browser is the one that refuses it).
    let response = ask(&server, "HEAD /source", B, "");
    assert_eq!(cors_lines(&response), ["Vary: Origin"]);
}

#[test]
fn router_errors_and_rate_limits_carry_cors_headers() {
    let server = start(list());
    let response = ask(&server, "GET /nope", A, "");
    assert_eq!(status_of(&response), 404);
    assert_eq!(cors_lines(&response), ALLOWED);
    let response = ask(&server, "GET /send", A, "");
    assert_eq!(status_of(&response), 405);
    assert_eq!(cors_lines(&response), ALLOWED);
    assert!(
        response.contains("\r\nAllow: POST, OPTIONS\r\n"),
        "{response}"
    );
    assert_eq!(status_of(&ask(&server, "POST /limited", A, "")), 200);
    let response = ask(&server, "POST /limited", A, "");
    assert_eq!(status_of(&response), 429);
    assert_eq!(cors_lines(&response), ALLOWED);
    assert!(response.contains("\r\nRetry-After: "), "{response}");
}

#[test]
fn parser_errors_carry_what_cors_can_say_without_a_request() {
    // The request could not be read, so its origin is unknown: a list says only `Vary`, any
    // origin says `*`.
    let bad = format!("GET /hello HTTP/1.1\r\nOrigin: {A}\r\nTransfer-Encoding: chunked\r\n\r\n");
    let server = start(list());
    let response = server.exchange(bad.as_bytes());
    assert_eq!(status_of(&response), 501, "{response}");
    assert_eq!(cors_lines(&response), ["Vary: Origin"]);
    let server = start(Cors::any());
    let response = server.exchange(bad.as_bytes());
    assert_eq!(status_of(&response), 501, "{response}");
    assert_eq!(cors_lines(&response), ["Access-Control-Allow-Origin: *"]);
    assert_eq!(body_of(&ask(&server, "GET /hello", A, "")), "hello");
}

#[test]
fn at_the_connection_cap_the_refusal_names_the_origin_it_read() {
    // The refusal reads the request head (see `REFUSAL_SLOTS`), so it knows the origin; with
    // no slot left it answers before reading, and only a star can be said.
    let allowed = [
        "Vary: Origin",
        "Access-Control-Allow-Origin: http://a.test",
        "Access-Control-Allow-Credentials: true",
        "Access-Control-Expose-Headers: X-Id",
    ];
    for (cors, slots, expected) in [
        (Cors::any(), 16, vec!["Access-Control-Allow-Origin: *"]),
        (list(), 16, allowed.to_vec()),
        (Cors::any(), 0, vec!["Access-Control-Allow-Origin: *"]),
        (list(), 0, vec!["Vary: Origin"]),
    ] {
        let config = Config::default()
            .with_max_connections(2)
            .with_refusal_slots(slots)
            .with_cors(cors);
        let server = TestServer::start(config, app());
        let streams: Vec<_> = (0..2).map(|_| subscribe(&server, "/source")).collect();
        let refused = ask(&server, "GET /hello", A, "");
        assert_eq!(status_of(&refused), 503, "{refused}");
        assert_eq!(cors_lines(&refused), expected, "{slots} slots");
        drop(streams);
        wait_for("a free slot", || status_of(&server.get("/hello")) == 200);
    }
}

#[test]
fn a_preflight_from_an_allowed_origin_is_answered_before_any_handler() {
    let server = start(list());
    let preflight = ask(
        &server,
        "OPTIONS /send",
        A,
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: Content-Type, x-other\r\n",
    );
    assert_eq!(
        preflight,
        "HTTP/1.1 204 No Content\r\nVary: Origin\r\nAccess-Control-Allow-Origin: http://a.test\r\n\
Access-Control-Allow-Credentials: true\r\nAccess-Control-Allow-Methods: POST, OPTIONS\r\n\
Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 600\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    );
    // GET brings HEAD (a stream route takes GET and POST); a route's own OPTIONS handler
    // does not see preflights.
    let preflight = ask(
        &server,
        "OPTIONS /source",
        A,
        "Access-Control-Request-Method: GET\r\n",
    );
    assert!(
        preflight.contains("\r\nAccess-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\n"),
        "{preflight}"
    );
    assert!(
        !preflight.contains("Access-Control-Allow-Headers"),
        "{preflight}"
    );
    let preflight = ask(
        &server,
        "OPTIONS /opt",
        A,
        "Access-Control-Request-Method: PUT\r\n",
    );
    assert_eq!(status_of(&preflight), 204);
    assert!(preflight.contains("\r\nAccess-Control-Allow-Methods: PUT, OPTIONS\r\n"));
    // An OPTIONS that is not a preflight reaches the route, with the CORS headers.
    let plain = ask(&server, "OPTIONS /opt", A, "");
    assert_eq!(body_of(&plain), "own options");
    assert_eq!(cors_lines(&plain), ALLOWED);
    let plain = ask(&server, "OPTIONS /send", A, "");
    assert_eq!(status_of(&plain), 204);
    assert!(plain.contains("\r\nAllow: POST, OPTIONS\r\n"), "{plain}");
}

#[test]
fn a_preflight_from_a_disallowed_origin_is_a_403_without_cors_headers() {
    let server = start(list());
    let preflight = ask(
        &server,
        "OPTIONS /send",
        B,
        "Access-Control-Request-Method: POST\r\n",
    );
    assert_eq!(status_of(&preflight), 403, "{preflight}");
    assert_eq!(cors_lines(&preflight), ["Vary: Origin"]);
    // To a path without a route it is the usual 404.
    let preflight = ask(
        &server,
        "OPTIONS /nope",
        A,
        "Access-Control-Request-Method: POST\r\n",
    );
    assert_eq!(status_of(&preflight), 404, "{preflight}");
    assert_eq!(cors_lines(&preflight), ALLOWED);
    assert_eq!(body_of(&ask(&server, "GET /hello", A, "")), "hello");
}

#[test]
fn a_preflight_keeps_a_keep_alive_connection_serving() {
    let server = start(list());
    let mut stream = server.connect();
    stream
        .write_all(
            format!(
                "OPTIONS /send HTTP/1.1\r\nOrigin: {A}\r\nAccess-Control-Request-Method: POST\r\n\r\n\
POST /send HTTP/1.1\r\nOrigin: {A}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let both = read_to_close(&mut stream);
    assert!(both.starts_with("HTTP/1.1 204 No Content\r\n"), "{both}");
    assert!(both.ends_with("sent"), "{both}");
    assert_eq!(
        count_of(
            both.as_bytes(),
            "Access-Control-Allow-Origin: http://a.test"
        ),
        2
    );
}

#[test]
fn the_test_client_sees_what_a_socket_gets() {
    use house::test::Client;
    let client = Client::with_config(Config::default().with_cors(list()), app()).unwrap();
    let headers = |response: &house::test::TestResponse| -> Vec<(String, String)> {
        response
            .headers()
            .filter(|(n, _)| n.starts_with("Access-Control-") || *n == "Vary")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    };
    let allowed: Vec<(String, String)> = ALLOWED
        .iter()
        .map(|line| {
            let (n, v) = line.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let response = client.get("/hello").header("Origin", A).send();
    assert_eq!(headers(&response), allowed);
    let response = client.get("/nope").header("Origin", B).send();
    assert_eq!(response.status(), Status::NOT_FOUND);
    assert_eq!(
        headers(&response),
        [("Vary".to_owned(), "Origin".to_owned())]
    );
    let stream = client.get("/source").header("Origin", A).open().unwrap();
    assert_eq!(headers(stream.head()), allowed);
    assert_eq!(stream.head().header("x-room"), Some("room"));
    assert_eq!(
        stream.head().header("cache-control"),
        Some("no-cache, no-transform")
    );
    let preflight = client
        .request(house::Method::Options, "/send")
        .header("Origin", A)
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert_eq!(preflight.status(), Status::NO_CONTENT);
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    let refused = client
        .request(house::Method::Options, "/send")
        .header("Origin", B)
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert_eq!(refused.status(), Status::FORBIDDEN);
    assert_eq!(
        headers(&refused),
        [("Vary".to_owned(), "Origin".to_owned())]
    );
}
