//! The chat example end to end over raw sockets: subscribe, publish, validation, rooms, the
//! remembered name, the send rate limit, and the page's static files.

mod chat_support;

use chat_support::{get, request, spawn_chat, subscribe};
use serde_json::json;

#[test]
fn get_and_post_publish_json_to_the_room() {
    let chat = spawn_chat();
    let mut room = subscribe(chat.addr, "/source?room=x");

    let sent = get(
        chat.addr,
        "/send-message?room=x&name=ann&message=hello+there",
        &[],
    );
    assert_eq!(sent.status(), 200, "{}", sent.text());
    assert_eq!(sent.text(), "sent");
    assert_eq!(
        room.next_json(),
        json!({"room": "x", "name": "ann", "message": "hello there"})
    );

    // A form body, with characters that need encoding and JSON escaping.
    let body = "room=x&name=B%C3%B6b+%22the+builder%22&message=a+%26+b+%3D+%3Cc%3E%0Anew+line";
    let sent = request(chat.addr, "POST", "/send-message", &[], body);
    assert_eq!(sent.status(), 200, "{}", sent.text());
    assert_eq!(
        room.next_json(),
        json!({"room": "x", "name": "Böb \"the builder\"", "message": "a & b = <c>\nnew line"})
    );

    // Every subscriber of the room gets it, whether it names the room in the query or the path.
    let mut second = subscribe(chat.addr, "/rooms/x/source");
    get(
        chat.addr,
        "/send-message?room=x&name=cy&message=for+both",
        &[],
    );
    let expected = json!({"room": "x", "name": "cy", "message": "for both"});
    assert_eq!(room.next_json(), expected);
    assert_eq!(second.next_json(), expected);
}

#[test]
fn the_room_in_the_path_follows_the_same_rule() {
    let chat = spawn_chat();
    let long = get(chat.addr, &format!("/rooms/{}/source", "r".repeat(17)), &[]);
    assert_eq!(long.status(), 400);
    assert_eq!(
        long.text(),
        "400 Bad Request: parameter `room` must be at most 16 characters (got 17)\n"
    );
    // An encoded slash stays inside the room's name; the stream still opens.
    let mut slashed = subscribe(chat.addr, "/rooms/a%2Fb/source");
    get(
        chat.addr,
        "/send-message?room=a%2Fb&name=ann&message=hello+a%2Fb",
        &[],
    );
    assert_eq!(slashed.next_json()["message"], "hello a/b");
}

#[test]
fn rooms_are_isolated() {
    let chat = spawn_chat();
    let mut a = subscribe(chat.addr, "/source?room=a");
    let mut b = subscribe(chat.addr, "/source?room=b");
    for (room, message) in [("a", "only for a"), ("b", "only for b")] {
        let target = format!(
            "/send-message?room={room}&name=ann&message={}",
            message.replace(' ', "+")
        );
        assert_eq!(get(chat.addr, &target, &[]).status(), 200);
    }
    // The loop handles requests in order, so had `b` received a's message it would come first.
    assert_eq!(a.next_json()["message"], "only for a");
    assert_eq!(b.next_json()["message"], "only for b");
    // And `a` did not get b's: its next event is the next one sent to `a`.
    get(
        chat.addr,
        "/send-message?room=a&name=ann&message=again",
        &[],
    );
    assert_eq!(a.next_json()["message"], "again");
}

#[test]
fn a_stream_switches_rooms_without_reconnecting() {
    let chat = spawn_chat();
    let mut stream = subscribe(chat.addr, "/rooms/a/source");
    let mut in_b = subscribe(chat.addr, "/source?room=b");
    let switch = |id: &str, from: &str, to: &str| {
        request(
            chat.addr,
            "POST",
            &format!("/rooms/switch?stream={id}&from={from}&to={to}"),
            &[],
            "",
        )
    };
    assert_eq!(switch(&stream.id, "a", "b").status(), 200);
    for (room, message) in [("a", "left+behind"), ("b", "hello+b")] {
        let target = format!("/send-message?room={room}&name=ann&message={message}");
        assert_eq!(get(chat.addr, &target, &[]).status(), 200);
    }
    // Had the stream still been in `a`, a's message would come first.
    assert_eq!(stream.next_json()["message"], "hello b");
    assert_eq!(in_b.next_json()["message"], "hello b");
    // An unknown stream, and a room name past the rule; the server still serves.
    let unknown = switch("0123456789abcdef0123456789abcdef", "b", "c");
    assert_eq!(unknown.status(), 404, "{}", unknown.text());
    assert_eq!(switch(&stream.id, "b", &"c".repeat(17)).status(), 400);
    get(
        chat.addr,
        "/send-message?room=b&name=ann&message=still+b",
        &[],
    );
    assert_eq!(stream.next_json()["message"], "still b");
}

#[test]
fn the_shared_stream_joins_rooms_and_their_presence() {
    let chat = spawn_chat();
    let mut shared = subscribe(chat.addr, "/rooms/source");
    let post = |target: &str, body: &str| request(chat.addr, "POST", target, &[], body);
    let online = |room: &str| get(chat.addr, &format!("/rooms/{room}/online"), &[]);
    assert_eq!(online("a").text(), r#"{"channel":"a","count":0}"#);

    // The page joins the room's presence first, then the room: its own arrival is announced.
    let id = &shared.id.clone();
    assert_eq!(
        post("/rooms/a/join", &format!("stream={id}&presence=true")).status(),
        200
    );
    assert_eq!(post("/rooms/a/join", &format!("stream={id}")).status(), 200);
    assert_eq!(shared.next_json(), json!({"channel": "a", "count": 1}));
    assert_eq!(online("a").text(), r#"{"channel":"a","count":1}"#);
    let mut plain = subscribe(chat.addr, "/source?room=a");
    assert_eq!(shared.next_json(), json!({"channel": "a", "count": 2}));

    // Messages name their room.
    let send = |room: &str, message: &str| {
        let target = format!("/send-message?room={room}&name=ann&message={message}");
        assert_eq!(get(chat.addr, &target, &[]).status(), 200);
    };
    send("a", "hello+a");
    assert_eq!(
        shared.next_json(),
        json!({"room": "a", "name": "ann", "message": "hello a"})
    );
    assert_eq!(plain.next_json()["message"], "hello a");

    // Leaving the room (not its presence): the count drops, and a's messages stop.
    assert_eq!(
        post("/rooms/a/leave", &format!("stream={id}")).status(),
        200
    );
    assert_eq!(shared.next_json(), json!({"channel": "a", "count": 1}));
    send("a", "not+for+you");
    assert_eq!(post("/rooms/b/join", &format!("stream={id}")).status(), 200);
    send("b", "hello+b");
    // Had the stream still been in `a`, a's message would come first.
    assert_eq!(shared.next_json()["message"], "hello b");

    // Bad input gets the right status, and the server still serves.
    let long = post(
        &format!("/rooms/{}/join", "r".repeat(17)),
        &format!("stream={id}"),
    );
    assert_eq!(long.status(), 400);
    assert_eq!(
        long.text(),
        "400 Bad Request: parameter `room` must be at most 16 characters (got 17)\n"
    );
    let unknown = post("/rooms/b/join", "stream=0123456789abcdef0123456789abcdef");
    assert_eq!(unknown.status(), 404, "{}", unknown.text());
    assert_eq!(post("/rooms/b/leave", "").status(), 400);
    assert_eq!(
        post("/rooms/b/join", &format!("stream={id}&presence=maybe")).status(),
        400
    );
    assert_eq!(get(chat.addr, "/rooms/b/join", &[]).status(), 405);
    send("b", "still+b");
    assert_eq!(shared.next_json()["message"], "still b");
}

/// `n` copies of `c`, for parameter lengths at and beyond each rule's boundary.
fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

#[test]
fn each_rule_answers_400_naming_the_parameter() {
    let chat = spawn_chat();
    let ok = |room: &str, name: &str, message: &str| {
        format!("room={room}&name={name}&message={message}")
    };
    let cases: Vec<(String, Option<&str>)> = vec![
        // room: at most 16 characters (counted in characters: `é` is two bytes).
        (ok(&chars('é', 16), "ann", "hello"), None),
        (
            ok(&chars('r', 17), "ann", "hello"),
            Some("parameter `room` must be at most 16 characters (got 17)"),
        ),
        (
            "name=ann&message=hello".to_owned(),
            Some("missing parameter `room`"),
        ),
        // name: 1 to 64 characters.
        (ok("x", &chars('n', 1), "hello"), None),
        (ok("x", &chars('n', 64), "hello"), None),
        (
            ok("x", "", "hello"),
            Some("parameter `name` must be at least 1 character (got 0)"),
        ),
        (
            ok("x", &chars('n', 65), "hello"),
            Some("parameter `name` must be at most 64 characters (got 65)"),
        ),
        (
            "room=x&message=hello".to_owned(),
            Some("missing parameter `name`"),
        ),
        // message: 5 to 256 characters.
        (ok("x", "ann", &chars('m', 5)), None),
        (ok("x", "ann", &chars('ü', 256)), None),
        (
            ok("x", "ann", "hey"),
            Some("parameter `message` must be at least 5 characters (got 3)"),
        ),
        (
            ok("x", "ann", &chars('m', 257)),
            Some("parameter `message` must be at most 256 characters (got 257)"),
        ),
        (
            "room=x&name=ann".to_owned(),
            Some("missing parameter `message`"),
        ),
    ];
    for (params, error) in cases {
        // The same rules for a query string and a form body.
        let by_get = get(
            chat.addr,
            &format!("/send-message?{}", encode(&params)),
            &[],
        );
        let by_post = request(chat.addr, "POST", "/send-message", &[], &encode(&params));
        for response in [by_get, by_post] {
            match error {
                None => assert_eq!(response.status(), 200, "{params}: {}", response.text()),
                Some(detail) => {
                    assert_eq!(response.status(), 400, "{params}");
                    assert_eq!(response.text(), format!("400 Bad Request: {detail}\n"));
                }
            }
        }
    }

    // The stream's room has the same limit.
    let response = get(chat.addr, &format!("/source?room={}", chars('r', 17)), &[]);
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.text(),
        "400 Bad Request: parameter `room` must be at most 16 characters (got 17)\n"
    );
    let response = get(chat.addr, "/source", &[]);
    assert_eq!(
        response.text(),
        "400 Bad Request: missing parameter `room`\n"
    );
}

/// Percent-encodes the non-ASCII characters of `a=b&c=d` (the test values need nothing else).
fn encode(params: &str) -> String {
    params
        .bytes()
        .map(|b| {
            if b.is_ascii() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn static_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("the page's files are in static/")
}

#[test]
fn the_page_and_its_files() {
    let chat = spawn_chat();
    let index = get(chat.addr, "/index?room=lobby", &[]);
    assert_eq!(index.status(), 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.body, static_file("index.html"));

    for (name, content_type) in [
        ("chat.js", "text/javascript; charset=utf-8"),
        ("chat.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = get(chat.addr, &format!("/static/{name}"), &[]);
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{name}"
        );
        let expected = static_file(name);
        assert_eq!(response.body, expected, "{name}");
        assert_eq!(
            response.header("content-length"),
            Some(expected.len().to_string().as_str())
        );
    }
}

#[test]
fn static_files_revalidate_with_304() {
    let chat = spawn_chat();
    for target in ["/static/chat.css", "/index"] {
        let first = get(chat.addr, target, &[]);
        let etag = first.header("etag").expect("an ETag");
        let last_modified = first.header("last-modified").expect("a Last-Modified");

        for header in [
            format!("If-None-Match: {etag}"),
            format!("If-Modified-Since: {last_modified}"),
        ] {
            let again = get(chat.addr, target, &[&header]);
            assert_eq!(again.status_line, "HTTP/1.1 304 Not Modified", "{header}");
            assert!(again.body.is_empty());
            assert_eq!(again.header("etag"), Some(etag));
        }
        let changed = get(chat.addr, target, &["If-None-Match: \"something-else\""]);
        assert_eq!(changed.status(), 200);
        assert_eq!(changed.body, first.body);
    }
}

#[test]
fn head_has_the_headers_without_the_body() {
    let chat = spawn_chat();
    let css = static_file("chat.css");
    for target in ["/static/chat.css", "/index"] {
        let head = request(chat.addr, "HEAD", target, &[], "");
        assert_eq!(head.status(), 200, "{target}");
        assert!(head.body.is_empty(), "{target}: {:?}", head.text());
        assert!(head.header("etag").is_some());
        if target == "/static/chat.css" {
            assert_eq!(
                head.header("content-length"),
                Some(css.len().to_string().as_str())
            );
        }
    }
    let post = request(chat.addr, "POST", "/static/chat.css", &[], "a=b");
    assert_eq!(post.status(), 405);
}

#[test]
fn traversal_and_odd_paths_are_404() {
    let chat = spawn_chat();
    for target in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E%2FCargo.toml",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%5cCargo.toml",
        "/static/..\\Cargo.toml",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/./chat.css",
        "/static/chat.css/",
        "/static/",
        "/static/nope.js",
        "/static/chat.css%00.js",
    ] {
        let response = get(chat.addr, target, &[]);
        assert_eq!(response.status(), 404, "{target}: {}", response.text());
        assert!(!response.text().contains("[package]"), "{target}");
    }
}

/// The `name=value` part of the session cookie `response` sets.
fn session_cookie(response: &chat_support::Response) -> String {
    let cookie = response
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {response:?}"));
    let pair = cookie.split_once(';').map_or(cookie, |(pair, _)| pair);
    format!("Cookie: {pair}")
}

#[test]
fn the_name_is_remembered_per_session() {
    let chat = spawn_chat();
    // A visitor who never sent anything has no name, and asking creates no session.
    let me = get(chat.addr, "/me", &[]);
    assert_eq!(me.text(), r#"{"name":null}"#);
    assert_eq!(me.header("set-cookie"), None);

    let sent = get(
        chat.addr,
        "/send-message?room=x&name=ann&message=hello+there",
        &[],
    );
    assert_eq!(sent.status(), 200);
    let ann = session_cookie(&sent);
    assert_eq!(get(chat.addr, "/me", &[&ann]).text(), r#"{"name":"ann"}"#);

    let body = "room=x&name=Ann+B%C3%B6&message=new+name";
    let sent = request(chat.addr, "POST", "/send-message", &[&ann], body);
    assert_eq!(sent.status(), 200);
    assert_eq!(
        get(chat.addr, "/me", &[&ann]).text(),
        r#"{"name":"Ann Bö"}"#
    );
    // Someone else's session knows nothing of it.
    let sent = get(
        chat.addr,
        "/send-message?room=x&name=bob&message=hi+all",
        &[],
    );
    let bob = session_cookie(&sent);
    assert_ne!(bob, ann);
    assert_eq!(get(chat.addr, "/me", &[&bob]).text(), r#"{"name":"bob"}"#);
    assert_eq!(
        get(chat.addr, "/me", &[&ann]).text(),
        r#"{"name":"Ann Bö"}"#
    );
}

#[test]
fn sending_is_limited_per_session() {
    let chat = chat_support::spawn_chat_with(chat_support::app::Rate::default());
    let send = |cookie: &[&str]| {
        get(
            chat.addr,
            "/send-message?room=x&name=ann&message=hello+there",
            cookie,
        )
    };
    // The first message, sent without a session, counts against the address; it starts the
    // session, which then has its own 5 messages.
    let first = send(&[]);
    let ann = session_cookie(&first);
    for _ in 0..5 {
        assert_eq!(send(&[&ann]).status(), 200);
    }
    // The session's sixth message within 10 seconds: one more is allowed every 2 seconds.
    let refused = send(&[&ann]);
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert_eq!(
        refused.text(),
        "429 Too Many Requests: too many `send_message` requests (at most 5 per 10 s); retry in 2 s\n"
    );
    // Another session is not affected (its first send is counted by address, then by session).
    let bob = session_cookie(&send(&[]));
    assert_eq!(send(&[&bob]).status(), 200);
    // Once a slot refills, ann can send again (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match send(&[&ann]).status() {
            200 => break,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still refused after 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
