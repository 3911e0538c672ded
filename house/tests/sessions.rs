//! Sessions over real sockets: the cookie's exact attributes, token length and uniqueness,
//! nothing created by reads or by rate-limited writes without a cookie, expiry, forged
//! cookies, typed values, eviction, logging out, and the budget of new sessions per address.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use house::{
    closing_handler, routes, stream_handler, Config, Event, Hub, IntoResponse, Json, RateLimited,
    Response, Route, Session, SessionError, Status, Subscribe,
};
use serde::{Deserialize, Serialize};
use support::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
    tags: Vec<String>,
    motto: Option<String>,
}

#[closing_handler(methods = [POST])]
fn login(#[param(max = 32)] name: String, session: &mut Session) -> Result<String, Status> {
    let profile = Profile {
        name: name.clone(),
        visits: 1,
        tags: vec!["new".into(), "ünïcode ✓".into()],
        motto: None,
    };
    session
        .insert("profile", &profile)
        .map_err(|_| Status::INTERNAL_SERVER_ERROR)?;
    session
        .insert("count", &u64::MAX)
        .map_err(|_| Status::INTERNAL_SERVER_ERROR)?;
    Ok(format!("hello {name}"))
}

#[closing_handler]
fn whoami(session: &Session) -> Json<Option<Profile>> {
    Json(session.get("profile"))
}

#[closing_handler]
fn number(session: &Session) -> String {
    // The wrong type reads as absent.
    let wrong: Option<String> = session.get("count");
    let count: Option<u64> = session.get("count");
    format!("{count:?} {wrong:?}")
}

#[closing_handler(methods = [POST])]
fn logout(session: &mut Session) -> &'static str {
    session.end();
    "bye"
}

/// A handler that sets its own cookie next to the session's.
#[closing_handler]
fn theme(session: &mut Session) -> Result<Response, Status> {
    session
        .insert("theme", "dark")
        .map_err(|_| Status::INTERNAL_SERVER_ERROR)?;
    Ok(Response::text(Status::OK, "dark").with_header("Set-Cookie", "theme=dark; Path=/"))
}

/// Subscribes to the channel named after the session's user; cannot start a session.
#[stream_handler]
fn feed(session: &mut Session) -> Subscribe {
    let refused = session.insert("x", &1).is_err();
    let name = session
        .get::<Profile>("profile")
        .map_or("anonymous".to_owned(), |p| p.name);
    Subscribe::to(format!("{name} refused={refused}"))
}

/// Starts (or updates) a session; a refused start answers its 429.
#[closing_handler(methods = [POST])]
fn start_session(session: &mut Session) -> Result<&'static str, SessionError> {
    session.insert("started", &true)?;
    Ok("started")
}

/// A write that needs only a limiter: publishes to `room`, counted per session or address.
#[closing_handler(methods = [POST])]
fn publish(#[param(max = 32)] room: String, session: &mut Session, hub: &mut Hub) -> Response {
    if let Err(refused) = session.rate_limit("publish", 1000, Duration::from_secs(60)) {
        return refused.into_response();
    }
    match hub.publish(&room, Event::new("x")) {
        Ok(_) => Response::text(Status::OK, "published"),
        Err(err) => err.into_response(),
    }
}

/// Like the chat's send: limited, and it remembers something in the session, which is a
/// nicety, so a refused new session does not fail the request.
#[closing_handler(methods = [POST])]
fn say(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("say", 1000, Duration::from_secs(60))?;
    let _ = session.insert("said", &true);
    Ok("said")
}

fn all_routes() -> Vec<Route> {
    let mut routes = routes![
        login,
        whoami,
        number,
        logout,
        theme,
        feed,
        start_session,
        publish,
        say
    ];
    // Reads the session and reports how many sessions the server holds.
    routes.push(Route::closing("/sessions", |ctx| {
        let _: Option<String> = ctx.session.get("name");
        ctx.stats.sessions.to_string()
    }));
    routes.push(count_route());
    routes.push(house::metrics_route("/metrics"));
    routes
}

fn start(config: Config) -> TestServer {
    TestServer::start(config, all_routes())
}

/// A request on a new connection, with `cookie` if given.
fn request(server: &TestServer, method: &str, target: &str, cookie: Option<&str>) -> String {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    server.exchange(
        format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

/// Every `Set-Cookie` value of a raw response.
fn set_cookies(response: &str) -> Vec<&str> {
    let head = response.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .filter_map(|line| line.strip_prefix("Set-Cookie: "))
        .collect()
}

/// The `name=value` pair of the session cookie a response sets.
fn session_cookie(response: &str) -> String {
    let cookies = set_cookies(response);
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("house_session="))
        .unwrap_or_else(|| panic!("no session cookie in {response:?}"));
    cookie.split(';').next().unwrap().to_owned()
}

fn login_as(server: &TestServer, name: &str) -> String {
    let response = request(server, "POST", &format!("/login?name={name}"), None);
    assert_eq!(status_of(&response), 200, "{response}");
    session_cookie(&response)
}

fn sessions_gauge(server: &TestServer) -> u64 {
    body_of(&server.get("/sessions")).parse().unwrap()
}

#[test]
fn cookie_attributes_are_exact() {
    let server = start(Config::default());
    let response = request(&server, "POST", "/login?name=ada", None);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{response}");
    let (token, attributes) = cookies[0]
        .strip_prefix("house_session=")
        .unwrap()
        .split_once(';')
        .unwrap();
    assert_eq!(token.len(), 32);
    assert!(token
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(attributes, " Max-Age=1800; Path=/; HttpOnly; SameSite=Lax");

    let config = Config::default()
        .with_session_cookie("sid")
        .with_session_secure(true)
        .with_session_idle_timeout(Duration::from_secs(90));
    let server = start(config);
    let response = request(&server, "POST", "/login?name=ada", None);
    let cookie = set_cookies(&response)[0];
    let token = &cookie["sid=".len()..][..32];
    assert_eq!(
        cookie,
        format!("sid={token}; Max-Age=90; Path=/; HttpOnly; SameSite=Lax; Secure")
    );
    // The custom name is the one read back.
    let cookie = format!("sid={token}");
    let whoami = request(&server, "GET", "/whoami", Some(&cookie));
    assert!(
        body_of(&whoami).starts_with("{\"name\":\"ada\""),
        "{whoami}"
    );
}

#[test]
fn tokens_are_long_and_unique() {
    // One address starts them all: lift its budget of new sessions.
    let server = start(Config::default().with_new_sessions_per_addr(1000));
    let mut stream = server.connect();
    let mut tokens = HashSet::new();
    for _ in 0..10 {
        // 100 logins pipelined on one keep-alive connection, then their 100 responses.
        let batch =
            "POST /login?name=x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".repeat(100);
        stream.write_all(batch.as_bytes()).unwrap();
        let mut buffer = Vec::new();
        let text = read_until_count(&mut stream, &mut buffer, "hello x", 100);
        for response in text.split("HTTP/1.1 ").skip(1) {
            let cookie = session_cookie(response);
            let token = cookie.strip_prefix("house_session=").unwrap();
            assert_eq!(token.len(), 32, "{cookie}");
            assert!(tokens.insert(token.to_owned()), "token {token} repeated");
        }
    }
    assert_eq!(tokens.len(), 1000);
    assert_eq!(sessions_gauge(&server), 1000);
}

#[test]
fn read_only_requests_create_no_session() {
    let server = start(Config::default());
    let request = "GET /sessions HTTP/1.1\r\nHost: t\r\n\r\n".repeat(100);
    let mut streams: Vec<TcpStream> = (0..10).map(|_| server.connect()).collect();
    // 10 keep-alive connections × 10 batches × 100 pipelined requests, each reading the
    // session and reporting the number of sessions.
    for _ in 0..10 {
        for stream in &mut streams {
            stream.write_all(request.as_bytes()).unwrap();
            let mut buffer = Vec::new();
            let text = read_until_count(stream, &mut buffer, "\r\n\r\n0", 100);
            assert_eq!(count_of(text.as_bytes(), "HTTP/1.1 200 OK"), 100);
            assert!(!text.contains("Set-Cookie"), "{text}");
        }
    }
    // Handlers that only read, and streams, create nothing either.
    for target in ["/whoami", "/number"] {
        let response = server.get(target);
        assert_eq!(status_of(&response), 200);
        assert!(set_cookies(&response).is_empty(), "{response}");
    }
    let mut stream = server.connect();
    stream
        .write_all(b"GET /feed HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_until(&mut stream, "retry:");
    assert!(!head.contains("Set-Cookie"), "{head}");
    let count = server.get("/count?channel=anonymous%20refused%3Dtrue");
    assert_eq!(body_of(&count), "1");
    assert_eq!(sessions_gauge(&server), 0);
    wait_for("a stats sweep after the requests", || {
        server.handle.stats().requests[1] >= 10_000
    });
    assert_eq!(server.handle.stats().sessions, 0);
}

#[test]
fn values_round_trip_through_their_types() {
    let server = start(Config::default());
    let cookie = login_as(&server, "gr%C3%A4ce");
    let whoami = request(&server, "GET", "/whoami", Some(&cookie));
    let profile: Option<Profile> = serde_json::from_str(body_of(&whoami)).unwrap();
    assert_eq!(
        profile,
        Some(Profile {
            name: "gräce".into(),
            visits: 1,
            tags: vec!["new".into(), "ünïcode ✓".into()],
            motto: None,
        })
    );
    let number = request(&server, "GET", "/number", Some(&cookie));
    assert_eq!(body_of(&number), "Some(18446744073709551615) None");
    // Using the session re-sends its cookie, so the browser's Max-Age keeps step.
    assert_eq!(session_cookie(&number), cookie);
    // Other cookies around ours do not matter.
    let around = format!("a=1; {cookie}; b=2");
    let whoami = request(&server, "GET", "/whoami", Some(&around));
    assert!(body_of(&whoami).contains("gräce"), "{whoami}");
    // A stream handler reads the session, and may change one that exists.
    let mut stream = server.connect();
    stream
        .write_all(format!("GET /feed HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n").as_bytes())
        .unwrap();
    read_until(&mut stream, "retry:");
    let count = server.get("/count?channel=gr%C3%A4ce%20refused%3Dfalse");
    assert_eq!(body_of(&count), "1");
}

#[test]
fn forged_or_unknown_cookie_starts_a_fresh_session() {
    let server = start(Config::default());
    let real = login_as(&server, "ada");
    let forged = [
        format!("house_session={}", "0".repeat(32)),
        "house_session=<script>".to_owned(),
        format!("house_session={}", "A".repeat(32)),
        format!("{real}0"),
        "house_session=".to_owned(),
    ];
    for cookie in &forged {
        let whoami = request(&server, "GET", "/whoami", Some(cookie));
        assert_eq!(status_of(&whoami), 200, "{whoami}");
        assert_eq!(body_of(&whoami), "null");
        assert!(set_cookies(&whoami).is_empty());
        let login = request(&server, "POST", "/login?name=eve", Some(cookie));
        assert_eq!(status_of(&login), 200);
        let fresh = session_cookie(&login);
        assert_ne!(&fresh, cookie);
        assert_ne!(fresh, real);
    }
    let whoami = request(&server, "GET", "/whoami", Some(&real));
    assert!(body_of(&whoami).contains("\"ada\""), "{whoami}");
}

#[test]
fn idle_sessions_expire() {
    let idle = Duration::from_secs(1);
    let server = start(Config::default().with_session_idle_timeout(idle));
    let cookie = login_as(&server, "ada");
    assert_eq!(sessions_gauge(&server), 1);
    // The snapshot starts at 0: see a sweep count the session before waiting for it to go.
    wait_for("a sweep to count the session", || {
        server.handle.stats().sessions == 1
    });
    wait_for("the session to expire", || {
        server.handle.stats().sessions == 0
    });
    let whoami = request(&server, "GET", "/whoami", Some(&cookie));
    assert_eq!(body_of(&whoami), "null");
    let login = request(&server, "POST", "/login?name=bob", Some(&cookie));
    assert_ne!(session_cookie(&login), cookie);
}

#[test]
fn use_keeps_a_session_alive() {
    let idle = Duration::from_secs(1);
    let server = start(Config::default().with_session_idle_timeout(idle));
    let cookie = login_as(&server, "ada");
    // Used every 200 ms for two idle timeouts, it never expires.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(200));
        let whoami = request(&server, "GET", "/whoami", Some(&cookie));
        assert!(body_of(&whoami).contains("\"ada\""), "{whoami}");
    }
}

#[test]
fn full_store_evicts_the_least_recently_used() {
    let server = start(Config::default().with_max_sessions(3));
    let first = login_as(&server, "first");
    let second = login_as(&server, "second");
    let third = login_as(&server, "third");
    // Using the first makes the second the least recently used.
    request(&server, "GET", "/whoami", Some(&first));
    let fourth = login_as(&server, "fourth");
    assert_eq!(sessions_gauge(&server), 3);
    for (cookie, name) in [
        (&first, "first"),
        (&second, "null"),
        (&third, "third"),
        (&fourth, "fourth"),
    ] {
        let whoami = request(&server, "GET", "/whoami", Some(cookie));
        assert!(body_of(&whoami).contains(name), "{name}: {whoami}");
    }
}

#[test]
fn logout_ends_the_session() {
    let server = start(Config::default());
    let cookie = login_as(&server, "ada");
    let logout = request(&server, "POST", "/logout", Some(&cookie));
    assert_eq!(
        set_cookies(&logout),
        ["house_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"]
    );
    assert_eq!(sessions_gauge(&server), 0);
    let whoami = request(&server, "GET", "/whoami", Some(&cookie));
    assert_eq!(body_of(&whoami), "null");
}

#[test]
fn handler_cookies_stay_beside_the_session_cookie() {
    let server = start(Config::default());
    let response = server.get("/theme");
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 2, "{response}");
    assert_eq!(cookies[0], "theme=dark; Path=/");
    assert!(cookies[1].starts_with("house_session="));
}

/// `count` copies of `POST target` without a cookie, pipelined on one connection from
/// `127.0.0.{host}`; the responses in order.
fn pipeline(server: &TestServer, host: u8, target: &str, count: usize) -> Vec<String> {
    let mut stream = connect_from(server, host);
    let request = format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let last = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let requests = request.repeat(count - 1) + &last;
    stream.write_all(requests.as_bytes()).unwrap();
    let text = read_to_close(&mut stream);
    let responses: Vec<String> = text
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| format!("HTTP/1.1 {r}"))
        .collect();
    assert_eq!(responses.len(), count, "{text}");
    responses
}

/// A connection from the loopback address `127.0.0.{host}` (std cannot bind a client socket
/// before connecting; `socket2` can).
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

/// The value of `house_rate_limited_total{limit="new_session"}`.
fn sessions_refused(server: &TestServer) -> u64 {
    let metrics = server.get("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("house_rate_limited_total{limit=\"new_session\"} "))
        .unwrap_or_else(|| panic!("no new_session refusals in {metrics}"))
        .parse()
        .unwrap()
}

#[test]
fn limited_writes_without_a_cookie_start_no_session() {
    let server = start(Config::default());
    let mut room = subscribe(&server, "/feed");
    for response in pipeline(&server, 1, "/publish?room=anonymous%20refused%3Dtrue", 300) {
        assert_eq!(body_of(&response), "published", "{response}");
        assert!(set_cookies(&response).is_empty(), "{response}");
    }
    // The writes happened (the stream got all 300), and no session was started for them.
    read_until_count(&mut room, &mut Vec::new(), "data: x\n", 300);
    assert_eq!(sessions_gauge(&server), 0);
    assert_eq!(sessions_refused(&server), 0);
}

#[test]
fn new_sessions_per_address_are_capped_and_counted() {
    let server = start(Config::default().with_new_sessions_per_addr(5));
    let responses = pipeline(&server, 1, "/start-session", 20);
    let cookies: Vec<String> = responses[..5].iter().map(|r| session_cookie(r)).collect();
    for response in &responses[5..] {
        assert_eq!(status_of(response), 429, "{response}");
        assert!(response.contains("\r\nRetry-After: 12\r\n"), "{response}");
        assert!(set_cookies(response).is_empty(), "{response}");
        assert_eq!(
            body_of(response),
            "429 Too Many Requests: too many new sessions from this address (at most 5 per 60 s); \
             retry in 12 s\n"
        );
    }
    assert_eq!(sessions_gauge(&server), 5);
    assert_eq!(sessions_refused(&server), 15);
    // Sessions that exist are not affected.
    let again = request(&server, "POST", "/start-session", Some(&cookies[0]));
    assert_eq!(body_of(&again), "started", "{again}");
    // A handler that only wishes to remember something still answers; nothing is stored.
    for response in pipeline(&server, 1, "/say", 20) {
        assert_eq!(body_of(&response), "said", "{response}");
        assert!(set_cookies(&response).is_empty(), "{response}");
    }
    assert_eq!(sessions_gauge(&server), 5);
    assert_eq!(sessions_refused(&server), 35);
    // Another address has its own budget.
    let other = pipeline(&server, 2, "/start-session", 1).remove(0);
    assert_eq!(body_of(&other), "started", "{other}");
    assert_eq!(sessions_gauge(&server), 6);
}

#[test]
fn the_budget_of_new_sessions_refills() {
    let config = Config::default()
        .with_new_sessions_per_addr(2)
        .with_new_sessions_window(Duration::from_millis(500));
    let server = start(config);
    let responses = pipeline(&server, 1, "/start-session", 3);
    assert_eq!(status_of(&responses[1]), 200);
    assert_eq!(status_of(&responses[2]), 429, "{}", responses[2]);
    assert!(responses[2].contains("\r\nRetry-After: 1\r\n"));
    // One more every 250 ms.
    wait_for("a new session to be allowed again", || {
        status_of(&pipeline(&server, 1, "/start-session", 1)[0]) == 200
    });
    assert_eq!(sessions_gauge(&server), 3);
}
