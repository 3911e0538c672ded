//! Rate limits over real sockets: 429 with `Retry-After` and an explaining body, recovery
//! after the window, per session, per address without one, and the address cap.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use house::{closing_handler, routes, Config, RateLimited, Route, Session, Status};
use support::*;

/// Two sends per second: a burst of two, then one every half second.
const WINDOW: Duration = Duration::from_secs(1);

#[closing_handler(methods = [POST])]
fn send(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("send", 2, WINDOW)?;
    Ok("sent")
}

#[closing_handler(methods = [POST])]
fn login(session: &mut Session) -> Result<&'static str, Status> {
    session
        .insert("in", &true)
        .map_err(|_| Status::INTERNAL_SERVER_ERROR)?;
    Ok("in")
}

/// One request a minute per client, to exercise the address cap.
#[closing_handler(methods = [POST])]
fn rare(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("rare", 1, Duration::from_secs(60))?;
    Ok("ok")
}

fn start(config: Config) -> TestServer {
    let mut routes: Vec<Route> = routes![send, login, rare];
    routes.push(Route::closing("/sessions", |ctx| {
        ctx.stats.sessions.to_string()
    }));
    TestServer::start(config, routes)
}

fn post(server: &TestServer, target: &str, cookie: Option<&str>) -> String {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    server.exchange(
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn log_in(server: &TestServer) -> String {
    let response = post(server, "/login", None);
    let line = response
        .lines()
        .find_map(|line| line.strip_prefix("Set-Cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {response:?}"));
    line.split(';').next().unwrap().to_owned()
}

fn header<'r>(response: &'r str, name: &str) -> Option<&'r str> {
    let head = response.split("\r\n\r\n").next().unwrap();
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn over_the_limit_answers_429_then_recovers() {
    let server = start(Config::default());
    let cookie = log_in(&server);
    for _ in 0..2 {
        assert_eq!(body_of(&post(&server, "/send", Some(&cookie))), "sent");
    }
    let refused = post(&server, "/send", Some(&cookie));
    let refused_at = Instant::now();
    assert_eq!(status_of(&refused), 429, "{refused}");
    assert_eq!(header(&refused, "Retry-After"), Some("1"));
    assert_eq!(
        body_of(&refused),
        "429 Too Many Requests: too many `send` requests (at most 2 per 1 s); retry in 1 s\n"
    );
    // Refused requests do not count: once a slot refills (half a second), one send passes.
    wait_for("the limit to allow a send again", || {
        status_of(&post(&server, "/send", Some(&cookie))) == 200
    });
    assert!(refused_at.elapsed() >= WINDOW / 2 - Duration::from_millis(50));
    assert_eq!(status_of(&post(&server, "/send", Some(&cookie))), 429);
    // After a whole window without sends, the full burst is back.
    std::thread::sleep(WINDOW);
    for _ in 0..2 {
        assert_eq!(status_of(&post(&server, "/send", Some(&cookie))), 200);
    }
}

#[test]
fn sessions_have_their_own_limits() {
    let server = start(Config::default());
    let ada = log_in(&server);
    let bob = log_in(&server);
    for _ in 0..2 {
        assert_eq!(status_of(&post(&server, "/send", Some(&ada))), 200);
    }
    assert_eq!(status_of(&post(&server, "/send", Some(&ada))), 429);
    assert_eq!(status_of(&post(&server, "/send", Some(&bob))), 200);
    // Requests without a session are limited by address, apart from the sessions.
    assert_eq!(status_of(&post(&server, "/send", None)), 200);
}

#[test]
fn without_a_session_the_address_is_limited() {
    let server = start(Config::default());
    let mut stream = server.connect();
    // Keep-alive and new connections from one address share the limit.
    let request = "POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".repeat(2);
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = Vec::new();
    let text = read_until_count(&mut stream, &mut buffer, "sent", 2);
    assert!(!text.contains("Set-Cookie"), "{text}");
    let refused = post(&server, "/send", None);
    assert_eq!(status_of(&refused), 429);
    assert_eq!(header(&refused, "Retry-After"), Some("1"));
    assert!(header(&refused, "Set-Cookie").is_none());
    // Rate limiting creates no session.
    assert_eq!(body_of(&server.get("/sessions")), "0");
}

/// A connection from the loopback address `127.0.0.{host}`.
fn connect_from(server: &TestServer, host: u8) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = ([127, 0, 0, host], 0).into();
    socket.bind(&local.into()).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

fn rare_from(server: &TestServer, host: u8) -> u16 {
    let mut stream = connect_from(server, host);
    stream
        .write_all(
            b"POST /rare HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    status_of(&read_to_close(&mut stream))
}

#[test]
fn remembered_addresses_are_capped() {
    let server = start(Config::default().with_max_limited_addrs(2));
    for host in [2, 3] {
        assert_eq!(rare_from(&server, host), 200);
        assert_eq!(rare_from(&server, host), 429);
    }
    // A third address pushes out the least recently limited one (.2), whose limit starts over;
    // .3 is still remembered.
    assert_eq!(rare_from(&server, 4), 200);
    assert_eq!(rare_from(&server, 3), 429);
    assert_eq!(rare_from(&server, 2), 200);
}
