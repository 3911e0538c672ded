//! Rate limits over real sockets: 429 with `Retry-After` and an explaining body, recovery
//! after the window, per session, per address without one, and the address cap; sessions
//! nested inside their address's budget, so rotating cookies gains nothing, while other
//! addresses (127.0.0.x) keep their own budgets.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use house::limits::ADDR_RATE_MULTIPLE;
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

/// Two notes a minute per session, eight per address: nothing refills during a test, so counts
/// are exact.
#[closing_handler(methods = [POST])]
fn note(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("note", NOTES, Duration::from_secs(60))?;
    Ok("noted")
}

/// Notes each session may post per minute.
const NOTES: u32 = 2;

/// Notes one address may post per minute, over all its sessions.
const ADDRESS_NOTES: usize = (NOTES * ADDR_RATE_MULTIPLE) as usize;

/// One request a minute per client, to exercise the address cap.
#[closing_handler(methods = [POST])]
fn rare(session: &mut Session) -> Result<&'static str, RateLimited> {
    session.rate_limit("rare", 1, Duration::from_secs(60))?;
    Ok("ok")
}

fn start(config: Config) -> TestServer {
    let mut routes: Vec<Route> = routes![send, note, login, rare];
    routes.push(Route::closing("/sessions", |ctx| {
        ctx.stats.sessions.to_string()
    }));
    routes.push(house::metrics_route("/metrics"));
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
    assert_eq!(refusals(&server, "session"), 1);
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

/// Sends `target` once per cookie (`None`: without one), pipelined on one connection from
/// `127.0.0.{host}`, and returns the responses in order.
fn pipeline(server: &TestServer, host: u8, target: &str, cookies: &[Option<&str>]) -> Vec<String> {
    let mut stream = connect_from(server, host);
    let mut requests = String::new();
    for (i, cookie) in cookies.iter().enumerate() {
        let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        let close = if i + 1 == cookies.len() {
            "Connection: close\r\n"
        } else {
            ""
        };
        requests.push_str(&format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\n{cookie}{close}Content-Length: 0\r\n\r\n"
        ));
    }
    stream.write_all(requests.as_bytes()).unwrap();
    let text = read_to_close(&mut stream);
    let responses: Vec<String> = text
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| format!("HTTP/1.1 {r}"))
        .collect();
    assert_eq!(responses.len(), cookies.len(), "{text}");
    responses
}

/// `count` new sessions, started from `127.0.0.{host}`.
fn log_in_from(server: &TestServer, host: u8, count: usize) -> Vec<String> {
    pipeline(server, host, "/login", &vec![None; count])
        .iter()
        .map(|response| {
            assert_eq!(status_of(response), 200, "{response}");
            let line = header(response, "Set-Cookie").unwrap();
            line.split(';').next().unwrap().to_owned()
        })
        .collect()
}

/// Each cookie in turn, `rounds` times over.
fn rotate(cookies: &[String], rounds: usize) -> Vec<Option<&str>> {
    (0..rounds)
        .flat_map(|_| cookies.iter().map(|c| Some(c.as_str())))
        .collect()
}

fn accepted(responses: &[String]) -> usize {
    responses.iter().filter(|r| status_of(r) == 200).count()
}

/// The value of `house_rate_limited_total{limit="LABEL"}`.
fn refusals(server: &TestServer, label: &str) -> u64 {
    let metrics = server.get("/metrics");
    let line = format!("house_rate_limited_total{{limit=\"{label}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in {metrics}"))
        .parse()
        .unwrap()
}

/// The address refuses what a session's own bucket would have allowed.
fn assert_refused_by_address(response: &str) {
    assert_eq!(status_of(response), 429, "{response}");
    assert_eq!(header(response, "Retry-After"), Some("8"), "{response}");
    assert_eq!(
        body_of(response),
        "429 Too Many Requests: too many `note` requests from this address (at most 8 per 60 s \
         for everyone there); retry in 8 s\n"
    );
}

#[test]
fn rotating_session_cookies_gets_no_more_than_the_address_budget() {
    let server = start(Config::default());
    // Ten sessions with two notes each would be 20 notes; the address allows 8.
    let cookies = log_in_from(&server, 1, 10);
    let responses = pipeline(&server, 1, "/note", &rotate(&cookies, 3));
    assert_eq!(accepted(&responses), ADDRESS_NOTES);
    // The first eight went through; every later one is refused by the address, though no
    // session had sent more than one.
    assert!(responses[..ADDRESS_NOTES]
        .iter()
        .all(|r| body_of(r) == "noted"));
    for response in &responses[ADDRESS_NOTES..] {
        assert_refused_by_address(response);
    }
    assert_eq!(refusals(&server, "address"), 30 - ADDRESS_NOTES as u64);
    // Without a cookie it is the same address.
    assert_refused_by_address(&pipeline(&server, 1, "/note", &[None])[0]);
    // The server still serves.
    assert_eq!(body_of(&server.get("/sessions")), "10");
}

#[test]
fn the_address_budget_refills() {
    let server = start(Config::default());
    // Two sends a second per session, eight per address.
    let cookies = log_in_from(&server, 1, 8);
    let mut last = String::new();
    // Bounded: the address budget runs out within 16 sends however the burst is timed.
    for cookie in rotate(&cookies, 2) {
        last = pipeline(&server, 1, "/send", &[cookie]).remove(0);
        if status_of(&last) == 429 {
            break;
        }
    }
    assert_eq!(status_of(&last), 429, "{last}");
    assert!(body_of(&last).contains("from this address"), "{last}");
    assert_eq!(header(&last, "Retry-After"), Some("1"));
    // A session that has not sent at all is still refused until the address has room again:
    // one more send every 125 ms.
    let fresh = log_in_from(&server, 1, 1).remove(0);
    wait_for("the address budget to refill", || {
        status_of(&pipeline(&server, 1, "/send", &[Some(&fresh)])[0]) == 200
    });
}

#[test]
fn each_address_has_its_own_budget() {
    let server = start(Config::default());
    for host in 2..=5 {
        let cookies = log_in_from(&server, host, 5);
        let responses = pipeline(&server, host, "/note", &rotate(&cookies, 2));
        assert_eq!(accepted(&responses), ADDRESS_NOTES, "from 127.0.0.{host}");
        assert_refused_by_address(&responses[ADDRESS_NOTES]);
    }
    // The first address is still spent: the others did not take from it, nor it from them.
    let cookie = log_in_from(&server, 2, 1).remove(0);
    assert_refused_by_address(&pipeline(&server, 2, "/note", &[Some(&cookie)])[0]);
    assert_eq!(refusals(&server, "address"), 4 * 2 + 1);
}

#[test]
fn sessions_behind_one_address_share_its_budget() {
    // Behind a NAT: as many sessions as the multiple each get their full rate.
    let server = start(Config::default());
    let people = log_in_from(&server, 1, ADDR_RATE_MULTIPLE as usize);
    let responses = pipeline(&server, 1, "/note", &rotate(&people, NOTES as usize));
    assert_eq!(accepted(&responses), ADDRESS_NOTES);
    // One more person there waits for the shared budget, though their own is untouched.
    let late = log_in_from(&server, 1, 1).remove(0);
    assert_refused_by_address(&pipeline(&server, 1, "/note", &[Some(&late)])[0]);
    // Requests without a session from the address count toward it too.
    assert_refused_by_address(&pipeline(&server, 1, "/note", &[None])[0]);
    assert_eq!(refusals(&server, "address"), 2);
    assert_eq!(refusals(&server, "session"), 0);

    // A larger multiple lets a larger NAT through at full rate, and no more.
    let server = start(Config::default().with_addr_rate_multiple(10));
    let people = log_in_from(&server, 1, 11);
    let responses = pipeline(&server, 1, "/note", &rotate(&people, NOTES as usize));
    assert_eq!(accepted(&responses), 10 * NOTES as usize);
    assert_eq!(refusals(&server, "address"), 2);
}

#[test]
fn requests_without_a_session_share_one_session_sized_budget() {
    let server = start(Config::default());
    let responses = pipeline(&server, 1, "/note", &[None; 5]);
    assert_eq!(accepted(&responses), NOTES as usize);
    assert_eq!(
        body_of(&responses[2]),
        "429 Too Many Requests: too many `note` requests (at most 2 per 60 s); retry in 30 s\n"
    );
    assert_eq!(refusals(&server, "no_session"), 3);
    // They took two of the address's eight: three sessions' worth remain.
    let cookies = log_in_from(&server, 1, 4);
    let responses = pipeline(&server, 1, "/note", &rotate(&cookies, 2));
    assert_eq!(accepted(&responses), ADDRESS_NOTES - NOTES as usize);
    // Rate limiting started no session: only the four logins did.
    assert_eq!(body_of(&server.get("/sessions")), "4");
}
