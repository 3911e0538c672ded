//! The JSON API example (`examples/api.rs`) through the in-process test client: path
//! parameters, GET and POST on one path, a JSON body with field rules, bearer-guarded
//! publishing, a session-guarded stream, state, and the JSON 404.

#[path = "../examples/api.rs"]
#[allow(dead_code)]
mod api;

use house::test::Client;
use house::Status;
use serde_json::{json, Value};

fn client() -> Client {
    Client::new(api::routes())
        .expect("the routes build")
        .with_state(api::rooms())
        .with_state(house::BearerTokens::new([api::DEV_TOKEN]))
}

fn post(client: &Client, room: &str, body: &Value) -> house::test::TestResponse {
    client
        .post(&format!("/api/rooms/{room}/messages"))
        .bearer(api::DEV_TOKEN)
        .json(body)
        .send()
}

#[test]
fn a_posted_message_is_created_listed_and_streamed() {
    let client = client();
    let login = client.post("/api/login").form(&[("name", "ann")]).send();
    assert_eq!(login.status(), Status::NO_CONTENT);
    let mut events = client
        .stream("/api/rooms/lobby/events")
        .expect("a logged-in stream");

    let created = post(
        &client,
        "lobby",
        &json!({"author": "ann", "text": "hello there"}),
    );
    assert_eq!(created.status(), Status::CREATED, "{}", created.text());
    let message: api::Message = created.json().expect("the message as JSON");
    assert_eq!(
        (message.author.as_str(), message.text.as_str()),
        ("ann", "hello there")
    );
    let location = created.header("location").expect("a Location");
    assert_eq!(
        location,
        format!("/api/rooms/lobby/messages/{}", message.id)
    );

    let event = events.next_event().expect("the stream gets the message");
    assert_eq!(event.id.as_deref(), Some(message.id.as_str()));
    let data: Value = serde_json::from_str(&event.data).expect("JSON data");
    assert_eq!(data, json!({"author": "ann", "text": "hello there"}));

    let fetched = client.get(location).send();
    assert_eq!(fetched.json::<api::Message>().expect("JSON"), message);
    let listed = client.get("/api/rooms/lobby/messages?limit=5").send();
    assert_eq!(listed.json::<Vec<api::Message>>().expect("JSON"), [message]);
    let rooms: Value = client.get("/api/rooms").send().json().expect("JSON");
    assert_eq!(rooms["lobby"], 1);
    assert_eq!(client.published().len(), 1);
}

#[test]
fn posting_needs_a_known_bearer_token() {
    let client = client();
    let body = json!({"author": "ann", "text": "hi"});
    let anonymous = client.post("/api/rooms/lobby/messages").json(&body).send();
    assert_eq!(anonymous.status(), Status::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = client
        .post("/api/rooms/lobby/messages")
        .bearer("guess")
        .json(&body)
        .send();
    assert_eq!(wrong.status(), Status::UNAUTHORIZED);
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert!(client.published().is_empty());
}

#[test]
fn bad_bodies_and_parameters_name_what_is_wrong() {
    let client = client();
    let short = post(&client, "lobby", &json!({"author": "", "text": "hi"}));
    assert_eq!(short.status(), Status::BAD_REQUEST);
    assert!(
        short
            .text()
            .contains("body field `author` must be at least 1"),
        "{}",
        short.text()
    );
    let wrong_type = post(&client, "lobby", &json!({"author": 5, "text": "hi"}));
    assert_eq!(wrong_type.status(), Status::BAD_REQUEST);
    assert!(
        wrong_type.text().contains("`author`"),
        "{}",
        wrong_type.text()
    );
    let form = client
        .post("/api/rooms/lobby/messages")
        .bearer(api::DEV_TOKEN)
        .form(&[("author", "ann"), ("text", "hi")])
        .send();
    assert_eq!(form.status(), Status::UNSUPPORTED_MEDIA_TYPE);
    let long_room = client
        .get(&format!("/api/rooms/{}/messages", "x".repeat(17)))
        .send();
    assert_eq!(long_room.status(), Status::BAD_REQUEST);
    assert!(
        long_room
            .text()
            .contains("parameter `name` must be at most 16"),
        "{}",
        long_room.text()
    );
    let limit = client.get("/api/rooms/lobby/messages?limit=0").send();
    assert_eq!(limit.status(), Status::BAD_REQUEST);
}

#[test]
fn unknown_rooms_and_paths_answer_json_404s() {
    let client = client();
    let room = post(&client, "cellar", &json!({"author": "ann", "text": "hi"}));
    assert_eq!(room.status(), Status::NOT_FOUND);
    assert_eq!(
        room.json::<Value>().expect("JSON"),
        json!({"error": "no room `cellar`"})
    );
    let path = client.get("/api/nothing").send();
    assert_eq!(path.status(), Status::NOT_FOUND);
    assert_eq!(path.header("content-type"), Some("application/json"));
    let method = client.delete("/api/rooms/lobby/messages").send();
    assert_eq!(method.status(), Status::METHOD_NOT_ALLOWED);
    assert_eq!(method.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn the_stream_needs_a_logged_in_session() {
    let client = client();
    let refused = client
        .stream("/api/rooms/lobby/events")
        .expect_err("no session");
    assert_eq!(refused.status(), Status::UNAUTHORIZED);
    client.post("/api/login").form(&[("name", "bob")]).send();
    assert!(client.stream("/api/rooms/lobby/events").is_ok());
    let unknown = client
        .stream("/api/rooms/cellar/events")
        .expect_err("no such room");
    assert_eq!(unknown.status(), Status::NOT_FOUND);
}

#[test]
fn the_server_refuses_to_start_without_the_state() {
    let server = house::Server::bind("127.0.0.1:0", house::Config::default(), api::routes())
        .expect("bind")
        .with_state(api::rooms());
    // `run` returns at once with the error; were it to serve instead, the wait is bounded.
    let (done, ran) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(server.run()));
    let result = ran
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("run() returns at once without the `BearerTokens` state");
    let err = result.expect_err("BearerTokens is missing");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("needs state `house::guard::BearerTokens`"),
        "{err}"
    );
}
