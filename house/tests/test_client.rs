//! The in-process test client answers what a socket would: routing, catchers, sessions,
//! state, streams and publishes, with no socket.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use house::test::Client;
use house::{Event, Method, Methods, Response, Route, Status, Subscribe};

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
