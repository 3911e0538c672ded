//! The in-process test client answers what a socket would: routing, catchers, sessions,
//! state, streams and publishes, with no socket.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use house::test::Client;
use house::{Event, IntoResponse, Method, Methods, Response, Route, Status, Subscribe};

fn routes() -> Vec<Route> {
    vec![
        Route::closing("/rooms/{room}/messages", |ctx| {
            let room = ctx
                .request
                .path_param("room")
                .unwrap_or_default()
                .to_owned();
            let text = ctx.request.param("text").unwrap_or("?").to_owned();
            let published = ctx.hub.publish(&room, Event::new(text))?;
            let id = published.id().unwrap_or_default().to_owned();
            Ok::<_, house::PublishError>(Response::created(format!("/rooms/{room}/{id}")))
        })
        .with_methods(Methods::POST),
        Route::closing("/rooms/{room}/messages", |ctx| {
            format!(
                "messages of {}",
                ctx.request.path_param("room").unwrap_or_default()
            )
        })
        .with_methods(Methods::GET),
        Route::stream("/rooms/{room}/events", |ctx| {
            Subscribe::to(ctx.request.path_param("room").unwrap_or_default())
        }),
        Route::closing("/visit", |ctx| {
            let visits = ctx.session.get::<u32>("visits").unwrap_or(0) + 1;
            ctx.session.insert("visits", &visits).unwrap();
            format!("visit {visits}")
        }),
        Route::closing("/motd", |ctx| {
            ctx.state.get::<Motd>().map_or("none", |m| m.0).to_owned()
        })
        .needs_state::<Motd>(),
        Route::closing("/panic", |_| -> &'static str { panic!("handler bug") }),
        Route::catcher(Status::NOT_FOUND, |caught| {
            format!("nothing at {}", caught.request.map_or("?", |r| r.path()))
        }),
    ]
}

struct Motd(&'static str);

fn client() -> Client {
    Client::new(routes()).unwrap().with_state(Motd("hello"))
}

#[test]
fn routes_by_path_and_method_with_catchers() {
    let client = client();
    let listed = client.get("/rooms/lobby/messages").send();
    assert_eq!(
        (listed.status(), listed.text()),
        (Status::OK, "messages of lobby".into())
    );
    let missing = client.get("/nowhere").send();
    assert_eq!(
        (missing.status(), missing.text()),
        (Status::NOT_FOUND, "nothing at /nowhere".into())
    );
    let wrong = client.delete("/rooms/lobby/messages").send();
    assert_eq!(wrong.status(), Status::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    let head = client.request(Method::Head, "/rooms/lobby/messages").send();
    assert_eq!((head.status(), head.body()), (Status::OK, &b""[..]));
    let panicked = client.get("/panic").send();
    assert_eq!(panicked.status(), Status::INTERNAL_SERVER_ERROR);
    // The parser's refusals come through too.
    let bad = client.get("/rooms/%zz/messages").send();
    assert_eq!(bad.status(), Status::BAD_REQUEST);
}

#[test]
fn state_and_the_session_cookie_carry_over() {
    let client = client();
    assert_eq!(client.get("/motd").send().text(), "hello");
    assert_eq!(client.get("/visit").send().text(), "visit 1");
    assert!(client.cookie("house_session").is_some());
    assert_eq!(client.get("/visit").send().text(), "visit 2");
}

#[test]
#[should_panic(expected = "handler `/motd` needs state")]
fn a_missing_state_is_reported_by_name() {
    let client = Client::new(routes()).unwrap();
    let _ = client.get("/motd").send();
}

#[test]
fn streams_get_what_is_published_after_they_open() {
    let client = client();
    let created = client.post("/rooms/lobby/messages?text=before").send();
    assert_eq!(created.status(), Status::CREATED);
    let mut lobby = client.stream("/rooms/lobby/events").unwrap();
    let mut other = client.stream("/rooms/other/events").unwrap();
    let created = client
        .post("/rooms/lobby/messages")
        .form(&[("text", "a & b")])
        .send();
    let location = created.header("location").unwrap().to_owned();
    let event = lobby.next_event().unwrap();
    assert_eq!(event.data, "a & b");
    assert!(
        location.ends_with(event.id.as_deref().unwrap()),
        "{location}"
    );
    assert_eq!(other.next_event_within(Duration::from_millis(20)), None);

    // From another thread, through a publisher, within the wait.
    let publisher = client.publisher();
    let thread = std::thread::spawn(move || publisher.publish("other", Event::new("late")));
    assert_eq!(other.next_event().unwrap().data, "late");
    assert!(thread.join().unwrap());

    let published: Vec<String> = client
        .published()
        .into_iter()
        .map(|(_, e)| e.data)
        .collect();
    assert_eq!(published, ["before", "a & b", "late"]);
}

#[test]
fn a_resuming_stream_replays_and_signals_a_gap() {
    let client = client();
    let first = client.post("/rooms/r/messages?text=one").send();
    let id = first
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    client.post("/rooms/r/messages?text=two").send();
    let mut resumed = client
        .get("/rooms/r/events")
        .header("Last-Event-ID", &id)
        .open()
        .unwrap();
    assert_eq!(resumed.next_event().unwrap().data, "two");
    let mut stale = client
        .get("/rooms/r/events")
        .header("Last-Event-ID", "another-run-1")
        .open()
        .unwrap();
    assert!(stale.next_event().unwrap().is_reset());
    assert_eq!(stale.next_event().unwrap().data, "one");
}

/// An app with joinable streams: `/live` opens one in `lobby` (a session's, if the client has
/// one), `/join` and `/leave` change it by `stream` and `room`, `/say` publishes `text` to
/// `room` and answers the id, `/join-say` publishes `before`, joins, then publishes `after`.
fn joining_client() -> Client {
    Client::new([
        Route::stream("/live", |_| Subscribe::to("lobby").joinable()),
        Route::stream("/plain", |_| Subscribe::to("lobby")),
        Route::closing("/join", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let room = ctx.request.param("room").unwrap_or("");
            ctx.hub.join(stream, room).map(|()| "joined")
        })
        .with_methods(Methods::POST),
        Route::closing("/leave", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("");
            let room = ctx.request.param("room").unwrap_or("");
            ctx.hub.leave(stream, room).map(|()| "left")
        })
        .with_methods(Methods::POST),
        Route::closing("/say", |ctx| {
            let room = ctx.request.param("room").unwrap_or("").to_owned();
            let text = ctx.request.param("text").unwrap_or("").to_owned();
            let published = ctx.hub.publish(&room, Event::new(text))?;
            Ok::<_, house::PublishError>(published.id().unwrap_or_default().to_owned())
        })
        .with_methods(Methods::POST),
        Route::closing("/join-say", |ctx| {
            let stream = ctx.request.param("stream").unwrap_or("").to_owned();
            let room = ctx.request.param("room").unwrap_or("").to_owned();
            ctx.hub.publish(&room, Event::new("before"))?;
            if let Err(err) = ctx.hub.join(&stream, &room) {
                return Ok(err.into_response());
            }
            ctx.hub.publish(&room, Event::new("after"))?;
            Ok::<_, house::PublishError>("done".into_response())
        })
        .with_methods(Methods::POST),
        Route::closing("/login", |ctx| {
            ctx.session.insert("user", "me").unwrap();
            "in"
        }),
        Route::closing("/logout", |ctx| {
            ctx.session.end();
            "out"
        }),
    ])
    .unwrap()
}

fn join(client: &Client, id: &str, room: &str) -> house::test::TestResponse {
    client
        .post("/join")
        .form(&[("stream", id), ("room", room)])
        .send()
}

fn leave(client: &Client, id: &str, room: &str) -> house::test::TestResponse {
    client
        .post("/leave")
        .form(&[("stream", id), ("room", room)])
        .send()
}

fn say(client: &Client, room: &str, text: &str) -> String {
    let said = client
        .post("/say")
        .form(&[("room", room), ("text", text)])
        .send();
    assert_eq!(said.status(), Status::OK, "{}", said.text());
    said.text()
}

/// The data of every event the stream has now.
fn data_now(stream: &mut house::test::TestStream) -> Vec<String> {
    stream.events_now().into_iter().map(|e| e.data).collect()
}

#[test]
fn a_joinable_stream_has_an_id_and_names_it_first() {
    let client = joining_client();
    let mut stream = client.stream("/live").unwrap();
    let id = stream.id().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    let first = stream.next_event().unwrap();
    assert_eq!(first.event.as_deref(), Some(house::STREAM_EVENT));
    assert_eq!((first.id, first.data), (None, id.clone()));
    let other = client.stream("/live").unwrap();
    assert_ne!(other.id(), Some(id.as_str()));
    // A stream that is not joinable has neither.
    let mut plain = client.stream("/plain").unwrap();
    assert_eq!(plain.id(), None);
    say(&client, "lobby", "hello");
    assert_eq!(data_now(&mut plain), ["hello"]);
}

#[test]
fn a_handler_joins_and_leaves_channels_of_a_test_stream() {
    let client = joining_client();
    let mut stream = client.stream("/live").unwrap();
    let id = stream.id().unwrap().to_owned();
    stream.events_now();
    // Published before the join: not for this stream.
    say(&client, "kitchen", "early");
    assert_eq!(join(&client, &id, "kitchen").text(), "joined");
    // Joining twice changes nothing.
    assert_eq!(join(&client, &id, "kitchen").text(), "joined");
    assert_eq!(stream.channels(), ["lobby", "kitchen"]);
    say(&client, "kitchen", "k1");
    say(&client, "lobby", "l1");
    assert_eq!(data_now(&mut stream), ["k1", "l1"]);
    assert_eq!(leave(&client, &id, "kitchen").text(), "left");
    assert_eq!(stream.channels(), ["lobby"]);
    say(&client, "kitchen", "k2");
    say(&client, "lobby", "l2");
    assert_eq!(data_now(&mut stream), ["l2"]);
    // Leaving the last channel keeps the stream, which can join again.
    leave(&client, &id, "lobby");
    assert!(stream.channels().is_empty());
    join(&client, &id, "cellar");
    say(&client, "cellar", "c1");
    assert_eq!(stream.next_event().unwrap().data, "c1");
}

#[test]
fn a_join_with_an_id_replays_and_an_unknown_one_signals_a_gap() {
    let client = joining_client();
    let first = say(&client, "hall", "h1");
    say(&client, "hall", "h2");
    let mut stream = client.stream("/live").unwrap();
    let id = stream.id().unwrap().to_owned();
    stream.events_now();
    let joined = client
        .post("/join")
        .header("Last-Event-ID", &first)
        .form(&[("stream", &id), ("room", "hall")])
        .send();
    assert_eq!(joined.text(), "joined");
    say(&client, "hall", "h3");
    assert_eq!(data_now(&mut stream), ["h2", "h3"]);

    let mut stale = client.stream("/live").unwrap();
    let id = stale.id().unwrap().to_owned();
    stale.events_now();
    client
        .post("/join")
        .form(&[
            ("stream", &id),
            ("room", "hall"),
            ("last_event_id", "gone-1"),
        ])
        .send();
    let events = stale.events_now();
    assert!(events[0].is_reset(), "{events:?}");
    let data: Vec<&str> = events[1..].iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["h1", "h2", "h3"]);
}

#[test]
fn publishes_in_the_joining_handler_split_at_the_join() {
    let client = joining_client();
    let mut there = client.stream("/plain").unwrap();
    let mut joiner = client.stream("/live").unwrap();
    let id = joiner.id().unwrap().to_owned();
    joiner.events_now();
    let done = client
        .post("/join-say")
        .form(&[("stream", &id), ("room", "lobby/side")])
        .send();
    assert_eq!(done.text(), "done");
    assert_eq!(data_now(&mut joiner), ["after"]);
    // The stream already on `lobby` is not on `lobby/side`.
    assert!(data_now(&mut there).is_empty());
}

#[test]
fn only_the_streams_session_changes_it_and_unknown_ids_are_404() {
    let client = joining_client();
    assert_eq!(client.get("/login").send().text(), "in");
    let mut stream = client.stream("/live").unwrap();
    let id = stream.id().unwrap().to_owned();
    stream.events_now();
    client.get("/logout").send();
    assert_eq!(client.cookie("house_session"), None);
    for refused in [join(&client, &id, "x"), leave(&client, &id, "lobby")] {
        assert_eq!(refused.status(), Status::FORBIDDEN, "{}", refused.text());
    }
    assert_eq!(stream.channels(), ["lobby"]);
    // Another session is another owner too.
    client.get("/login").send();
    assert_eq!(join(&client, &id, "x").status(), Status::FORBIDDEN);

    let unknown = join(&client, "0123456789abcdef0123456789abcdef", "x");
    assert_eq!(unknown.status(), Status::NOT_FOUND, "{}", unknown.text());
    let split = client
        .post("/join-say")
        .form(&[("stream", "nope"), ("room", "x")])
        .send();
    assert_eq!(split.status(), Status::NOT_FOUND);
    // A dropped stream's id names nothing any more.
    let open = client.stream("/live").unwrap();
    let gone = open.id().unwrap().to_owned();
    drop(open);
    assert_eq!(join(&client, &gone, "x").status(), Status::NOT_FOUND);
    say(&client, "x", "to nobody");
    assert!(data_now(&mut stream).is_empty());
}
