//! One-shot requests over real sockets: statuses, keep-alive, pipelining, panics, shutdown.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::time::Duration;

use house::{Config, Event, Methods, Response, Route, Status};
use support::*;

fn routes() -> Vec<Route> {
    vec![
        Route::closing("/hello", |ctx| {
            format!("hello {}", ctx.request.param("name").unwrap_or("you"))
        }),
        Route::closing("/echo", |ctx| {
            String::from_utf8_lossy(ctx.request.body()).into_owned()
        }),
        Route::closing("/json", |ctx| {
            match ctx.request.json::<serde_json::Value>() {
                Ok(value) => Response::json(Status::OK, &value["x"]),
                Err(err) => house::IntoResponse::into_response(err),
            }
        }),
        Route::closing("/post-only", |_| "posted").with_methods(Methods::POST),
        Route::closing("/panic", |_| -> &'static str { panic!("handler bug") }),
        Route::closing("/bad-header", |_| {
            Response::new(Status::OK).with_header("X-Evil", "a\r\nSet-Cookie: x=1")
        }),
    ]
}

#[test]
fn ok_with_exact_bytes() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.get("/hello?name=caf%C3%A9");
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello café"
    );
}

#[test]
fn post_form_and_query_both_work() {
    let server = TestServer::start(Config::default(), routes());
    let body = "name=ann+b";
    let request = format!(
        "POST /hello HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(body_of(&server.exchange(request.as_bytes())), "hello ann b");
}

#[test]
fn json_body_reaches_handler() {
    let server = TestServer::start(Config::default(), routes());
    let body = r#"{"x": [1, 2]}"#;
    let request = format!(
        "POST /json HTTP/1.1\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = server.exchange(request.as_bytes());
    assert_eq!(status_of(&response), 200);
    assert_eq!(body_of(&response), "[1,2]");
}

#[test]
fn error_statuses_and_server_keeps_serving() {
    let server = TestServer::start(Config::default(), routes());
    let cases: &[(&[u8], u16)] = &[
        (b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"DELETE /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
        (b"GET /post-only HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET /hello?x=%zz HTTP/1.1\r\n\r\n", 400),
        (b"GET /hello?x=%ff HTTP/1.1\r\n\r\n", 400),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        (b"POST /echo HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc", 400),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\nabc",
            400,
        ),
        (b"GET ftp://h/hello HTTP/1.1\r\n\r\n", 400),
        (b"GET http://user@h/hello HTTP/1.1\r\n\r\n", 400),
        (b"GET hello HTTP/1.1\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
    ];
    for (request, status) in cases {
        let response = server.exchange(request);
        assert_eq!(
            status_of(&response),
            *status,
            "{:?} → {response:?}",
            String::from_utf8_lossy(request)
        );
        assert!(response.contains("Content-Length: "), "{response:?}");
        assert_eq!(
            status_of(&server.get("/hello")),
            200,
            "served after {:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn absolute_form_targets_are_routed_by_their_path() {
    // RFC 9112 3.2.2: a server must accept `GET http://host/path`, as proxies send it.
    let server = TestServer::start(Config::default(), routes());
    let response = server.exchange(
        b"GET http://127.0.0.1/hello?name=abs HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body_of(&response), "hello abs", "{response:?}");
    let response = server.exchange(b"GET HTTPS://h HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&response), 404, "{response:?}");
}

#[test]
fn wrong_method_lists_allowed_ones() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.exchange(b"PUT /post-only HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(
        response.contains("\r\nAllow: POST, OPTIONS\r\n"),
        "{response}"
    );
}

#[test]
fn head_has_length_but_no_body() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.exchange(b"HEAD /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(response.contains("Content-Length: 9\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "{response}");
}

#[test]
fn panicking_handler_answers_500_and_others_are_served() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = subscribe_like_keepalive(&server);
    let response = server.get("/panic");
    assert_eq!(status_of(&response), 500);
    assert_eq!(
        body_of(&response),
        "500 Internal Server Error: the handler failed\n"
    );
    // A connection that was open before the panic still works.
    stream.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_until(&mut stream, "hello you").ends_with("hello you"));
}

fn subscribe_like_keepalive(server: &TestServer) -> std::net::TcpStream {
    let mut stream = server.connect();
    stream.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap();
    read_until(&mut stream, "hello you");
    stream
}

#[test]
fn response_splitting_header_is_refused() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.get("/bad-header");
    assert_eq!(status_of(&response), 500);
    assert!(!response.contains("Set-Cookie"), "{response}");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = server.connect();
    let mut buffer = Vec::new();
    for i in 1..=5 {
        stream
            .write_all(format!("GET /hello?name={i} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        read_until_count(&mut stream, &mut buffer, "hello ", i);
    }
    let text = String::from_utf8(buffer).unwrap();
    assert!(!text.contains("Connection: close"));
    assert!(text.ends_with("hello 5"));
}

#[test]
fn pipelined_requests_answered_in_order() {
    let server = TestServer::start(Config::default(), routes());
    let mut stream = server.connect();
    let mut pipeline = String::new();
    for i in 0..50 {
        pipeline.push_str(&format!("GET /hello?name=n{i} HTTP/1.1\r\n\r\n"));
    }
    pipeline.push_str("GET /hello?name=last HTTP/1.1\r\nConnection: close\r\n\r\n");
    stream.write_all(pipeline.as_bytes()).unwrap();
    let all = read_to_close(&mut stream);
    let bodies: Vec<&str> = all
        .split("HTTP/1.1 200 OK")
        .skip(1)
        .map(|r| r.rsplit("\r\n\r\n").next().unwrap())
        .collect();
    let expected: Vec<String> = (0..50)
        .map(|i| format!("hello n{i}"))
        .chain(["hello last".to_owned()])
        .collect();
    assert_eq!(bodies, expected);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let server = TestServer::start(Config::default(), routes());
    let response = server.exchange(b"GET /hello HTTP/1.0\r\n\r\n");
    assert!(response.contains("Connection: close"));
    let mut stream = server.connect();
    stream
        .write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let first = read_until(&mut stream, "hello you");
    assert!(first.contains("Connection: keep-alive"), "{first}");
    stream
        .write_all(b"GET /hello?name=again HTTP/1.0\r\n\r\n")
        .unwrap();
    assert!(read_to_close(&mut stream).ends_with("hello again"));
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let config = Config::default().with_keep_alive_timeout(Duration::from_millis(200));
    let server = TestServer::start(config, routes());
    let mut stream = server.connect();
    stream.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap();
    read_until(&mut stream, "hello you");
    // The server closes the idle connection: the read sees EOF (with no further bytes).
    assert_eq!(read_to_close(&mut stream), "");
}

#[test]
fn publish_from_another_thread() {
    let server = TestServer::start(
        Config::default(),
        vec![
            Route::stream("/s", |_| house::Subscribe::to("news")),
            count_route(),
        ],
    );
    let mut stream = subscribe(&server, "/s");
    wait_for("the subscription", || {
        body_of(&server.get("/count?channel=news")) == "1"
    });
    let handle = server.handle.clone();
    std::thread::spawn(move || handle.publish("news", Event::new("from a thread")).unwrap())
        .join()
        .unwrap();
    assert!(read_until(&mut stream, "\n\n").contains("data: from a thread\n\n"));
}

#[test]
fn duplicate_route_fails_at_start_up() {
    let err = house::Server::bind(
        "127.0.0.1:0",
        Config::default(),
        vec![
            Route::closing("/a", |_| "1").with_name("one"),
            Route::closing("/a", |_| "2").with_name("two"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("by `one` and by `two`"), "{err}");
}

#[test]
fn shutdown_closes_streams_and_returns() {
    let server = TestServer::start(
        Config::default(),
        vec![
            Route::stream("/s", |_| house::Subscribe::to("x")),
            count_route(),
        ],
    );
    let mut streams: Vec<_> = (0..3).map(|_| subscribe(&server, "/s")).collect();
    wait_for("subscriptions", || {
        body_of(&server.get("/count?channel=x")) == "3"
    });
    let addr = server.addr;
    server.stop().unwrap();
    for stream in &mut streams {
        read_to_close(stream);
    }
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still accepting"
    );
}

/// `201` with a `Location` naming the published event, the three redirects, and headers from a
/// `(Status, [(name, value)], body)` tuple, byte for byte on the wire.
#[test]
fn created_redirects_and_header_tuples_on_the_wire() {
    let routes = vec![
        Route::closing("/messages", |ctx| {
            let published = ctx.hub.publish("lobby", Event::new("hi"))?;
            let id = published.id().unwrap_or("unknown");
            Ok::<_, house::PublishError>(
                Response::created(format!("/messages/{id}")).with_json(&id),
            )
        }),
        Route::closing("/see-other", |_| {
            Response::redirect(house::Redirect::SeeOther, "/next")
        }),
        Route::closing("/temporary", |_| {
            Response::redirect(house::Redirect::Temporary, "/next")
        }),
        Route::closing("/permanent", |_| {
            Response::redirect(house::Redirect::Permanent, "/next")
        }),
        Route::closing("/tuple", |_| {
            (Status::ACCEPTED, [("Cache-Control", "no-store")], "queued")
        }),
        Route::closing("/gone", |_| Status::GONE),
    ];
    let server = TestServer::start(Config::default(), routes);
    let created = server.get("/messages");
    assert!(
        created.starts_with("HTTP/1.1 201 Created\r\nLocation: /messages/"),
        "{created}"
    );
    let location = created
        .lines()
        .find_map(|line| line.strip_prefix("Location: /messages/"))
        .unwrap();
    assert!(location.ends_with("-1"), "the first event's id: {location}");
    assert_eq!(body_of(&created), format!("\"{location}\""));
    for (path, line) in [
        ("/see-other", "303 See Other"),
        ("/temporary", "307 Temporary Redirect"),
        ("/permanent", "308 Permanent Redirect"),
    ] {
        let response = server.get(path);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {line}\r\nLocation: /next\r\n")),
            "{response}"
        );
    }
    let tuple = server.get("/tuple");
    assert!(tuple.starts_with("HTTP/1.1 202 Accepted\r\n"), "{tuple}");
    assert!(tuple.contains("\r\nCache-Control: no-store\r\n"), "{tuple}");
    assert_eq!(body_of(&tuple), "queued");
    assert!(server.get("/gone").starts_with("HTTP/1.1 410 Gone\r\n"));
}

/// Every status constant goes out with its code and RFC 9110 reason phrase (1xx and the
/// bodiless codes without a body), and the connection serves on after each.
#[test]
fn every_status_constant_on_the_wire() {
    let statuses = [
        (Status::ACCEPTED, "202 Accepted"),
        (
            Status::NON_AUTHORITATIVE_INFORMATION,
            "203 Non-Authoritative Information",
        ),
        (Status::RESET_CONTENT, "205 Reset Content"),
        (Status::PARTIAL_CONTENT, "206 Partial Content"),
        (Status::MULTIPLE_CHOICES, "300 Multiple Choices"),
        (Status::USE_PROXY, "305 Use Proxy"),
        (Status::PAYMENT_REQUIRED, "402 Payment Required"),
        (Status::NOT_ACCEPTABLE, "406 Not Acceptable"),
        (
            Status::PROXY_AUTHENTICATION_REQUIRED,
            "407 Proxy Authentication Required",
        ),
        (Status::GONE, "410 Gone"),
        (Status::LENGTH_REQUIRED, "411 Length Required"),
        (Status::PRECONDITION_FAILED, "412 Precondition Failed"),
        (Status::CONTENT_TOO_LARGE, "413 Content Too Large"),
        (Status::RANGE_NOT_SATISFIABLE, "416 Range Not Satisfiable"),
        (Status::EXPECTATION_FAILED, "417 Expectation Failed"),
        (Status::MISDIRECTED_REQUEST, "421 Misdirected Request"),
        (Status::UNPROCESSABLE_CONTENT, "422 Unprocessable Content"),
        (Status::UPGRADE_REQUIRED, "426 Upgrade Required"),
        (Status::PRECONDITION_REQUIRED, "428 Precondition Required"),
        (Status::BAD_GATEWAY, "502 Bad Gateway"),
        (Status::GATEWAY_TIMEOUT, "504 Gateway Timeout"),
        (
            Status::NETWORK_AUTHENTICATION_REQUIRED,
            "511 Network Authentication Required",
        ),
    ];
    let routes = vec![Route::closing("/status/{code}", |ctx| {
        let code = ctx.request.path_param("code").unwrap_or("500");
        Status::from_code(code.parse().unwrap_or(500))
    })];
    let server = TestServer::start(Config::default(), routes);
    for (status, line) in statuses {
        let response = server.get(&format!("/status/{}", status.code()));
        assert!(
            response.starts_with(&format!("HTTP/1.1 {line}\r\n")),
            "{response}"
        );
    }
    // A code without a constant keeps the space before its empty reason phrase.
    assert!(server.get("/status/299").starts_with("HTTP/1.1 299 \r\n"));
}
