//! `cargo run --example api`, then talk to `localhost:4243` with curl:
//!
//! ```text
//! curl -c jar -d name=ann localhost:4243/api/login                   # a session cookie
//! curl -N -b jar localhost:4243/api/rooms/lobby/events               # terminal 1: live messages
//! curl -H 'Authorization: Bearer dev-token' -H 'Content-Type: application/json' \
//!      -d '{"author": "ann", "text": "hello there"}' localhost:4243/api/rooms/lobby/messages
//! curl localhost:4243/api/rooms/lobby/messages                       # the room's messages, JSON
//! ```
//!
//! A small JSON API with a live stream and two kinds of auth, the shape of many real apps:
//! - the room list lives in state (`&Rooms`), given once to the server with `with_state`;
//! - `/api/rooms/{name}/messages` has a `GET` and a `POST` handler, told apart by method;
//! - posting needs a bearer token (`#[guard] Bearer`, checked against `BearerTokens` state);
//!   the message is a JSON body whose fields carry the same rules as query parameters;
//! - the stream needs a logged-in session (`#[guard] SessionUser`): a browser's EventSource
//!   cannot send an `Authorization` header, but it does send the session cookie;
//! - an unknown path answers JSON from a custom 404 catcher.
//!
//! Its tests (`tests/api.rs`) run it through `house::test::Client`, without a socket.

use std::collections::HashMap;
use std::sync::Mutex;

use house::{
    catcher, closing_handler, routes, stream_handler, BearerTokens, Caught, Config, Event, Hub,
    Json, Response, Route, Server, Session, SessionUser, Status, Subscribe,
};
use serde::{Deserialize, Serialize};

/// The token `POST /api/rooms/{name}/messages` accepts unless `API_TOKEN` says otherwise.
pub(crate) const DEV_TOKEN: &str = "dev-token";
/// How many messages a room keeps for `GET /api/rooms/{name}/messages`.
const KEPT_MESSAGES: usize = 100;

/// The app's state: which rooms exist and their latest messages.
#[derive(Debug)]
pub(crate) struct Rooms {
    messages: Mutex<HashMap<String, Vec<Message>>>,
}

impl Rooms {
    /// Rooms named `names`, all empty.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Rooms {
        let rooms = names.into_iter().map(|n| (n.to_owned(), Vec::new()));
        Rooms {
            messages: Mutex::new(rooms.collect()),
        }
    }

    /// Runs `f` on room `name`'s messages, or answers 404 if there is no such room.
    fn with_room<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Vec<Message>) -> T,
    ) -> Result<T, Response> {
        // A handler that panicked while holding the lock left the data as it was: go on.
        let mut rooms = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        match rooms.get_mut(name) {
            Some(messages) => Ok(f(messages)),
            None => Err(not_found_json(&format!("no room `{name}`"))),
        }
    }
}

/// A stored message, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Message {
    /// The event id the hub gave it; also its URL's last segment.
    pub(crate) id: String,
    /// Who wrote it.
    pub(crate) author: String,
    /// What they wrote.
    pub(crate) text: String,
}

/// What a client posts: a JSON body, its fields checked like parameters.
#[derive(Debug, Deserialize, house::Validate)]
pub(crate) struct NewMessage {
    #[param(min = 1, max = 32)]
    author: String,
    #[param(min = 1, max = 500)]
    text: String,
}

/// `GET /api/rooms`: the room names and how many messages each keeps.
#[closing_handler("/api/rooms", methods = [GET])]
fn list_rooms(rooms: &Rooms) -> Json<HashMap<String, usize>> {
    let rooms = rooms.messages.lock().unwrap_or_else(|e| e.into_inner());
    Json(rooms.iter().map(|(n, m)| (n.clone(), m.len())).collect())
}

/// `GET /api/rooms/{name}/messages?limit=N`: the room's latest messages, oldest first.
#[closing_handler("/api/rooms/{name}/messages", methods = [GET])]
fn messages(
    #[param(max = 16)] name: String,
    #[param(min = 1, max = 100, default = 20)] limit: usize,
    rooms: &Rooms,
) -> Result<Json<Vec<Message>>, Response> {
    rooms.with_room(&name, |messages| {
        let skip = messages.len().saturating_sub(limit);
        Json(messages[skip..].to_vec())
    })
}

/// `POST /api/rooms/{name}/messages` with a bearer token and a JSON body: publishes the
/// message to the room's stream and answers `201 Created` with its URL.
#[closing_handler("/api/rooms/{name}/messages", methods = [POST])]
fn post_message(
    #[guard] _token: house::Bearer,
    #[param(max = 16)] name: String,
    #[body] new: Json<NewMessage>,
    rooms: &Rooms,
    hub: &mut Hub,
) -> Result<Response, Response> {
    let Json(NewMessage { author, text }) = new;
    rooms.with_room(&name, |_| ())?;
    let event = Event::json(&serde_json::json!({ "author": author, "text": text }));
    let published = hub
        .publish(&name, event)
        .map_err(house::IntoResponse::into_response)?;
    let id = published.id().unwrap_or_default().to_owned();
    let message = Message { id, author, text };
    let location = format!("/api/rooms/{name}/messages/{}", message.id);
    let response = Response::created(location).with_json(&message);
    rooms.with_room(&name, |messages| {
        messages.push(message);
        if messages.len() > KEPT_MESSAGES {
            messages.remove(0);
        }
    })?;
    Ok(response)
}

/// `GET /api/rooms/{name}/messages/{id}`: one message.
#[closing_handler("/api/rooms/{name}/messages/{id}", methods = [GET])]
fn message(
    #[param(max = 16)] name: String,
    #[param(max = 64)] id: String,
    rooms: &Rooms,
) -> Result<Json<Message>, Response> {
    rooms
        .with_room(&name, |messages| {
            messages.iter().find(|m| m.id == id).cloned()
        })?
        .map(Json)
        .ok_or_else(|| not_found_json(&format!("no message `{id}` in `{name}`")))
}

/// `GET /api/rooms/{name}/events`: the room's messages as they are posted, for a logged-in
/// session. The guard answers 401 to anyone else, before the stream opens.
#[stream_handler("/api/rooms/{name}/events")]
fn events(
    #[guard] user: SessionUser,
    #[param(max = 16)] name: String,
    rooms: &Rooms,
) -> Result<Subscribe, Response> {
    rooms.with_room(&name, |_| ())?;
    log::debug!("{} listens to {name}", user.name());
    Ok(Subscribe::to(name))
}

/// `POST /api/login` with `name=ann`: logs the session in (no password: a demo).
#[closing_handler("/api/login", methods = [POST])]
fn login(#[param(min = 1, max = 32)] name: String, session: &mut Session) -> Response {
    match SessionUser::log_in(session, &name) {
        Ok(()) => Response::new(Status::NO_CONTENT),
        Err(err) => house::IntoResponse::into_response(err),
    }
}

/// Every 404 the server makes (an unknown path) as JSON, like the API's own errors.
#[catcher(404)]
fn not_found(caught: &Caught) -> Response {
    not_found_json(&caught.detail)
}

fn not_found_json(detail: &str) -> Response {
    Response::json(Status::NOT_FOUND, &serde_json::json!({ "error": detail }))
}

/// The app's routes.
pub(crate) fn routes() -> Vec<Route> {
    routes![
        list_rooms,
        messages,
        post_message,
        message,
        events,
        login,
        not_found
    ]
}

/// The app's rooms.
pub(crate) fn rooms() -> Rooms {
    Rooms::new(["lobby", "rust", "random"])
}

/// Which bearer tokens may post: `API_TOKEN` from the environment, else [`DEV_TOKEN`].
pub(crate) fn tokens() -> BearerTokens {
    BearerTokens::new([std::env::var("API_TOKEN").unwrap_or_else(|_| DEV_TOKEN.to_owned())])
}

#[allow(dead_code)] // the tests include this file for its routes, not its main
fn main() -> std::io::Result<()> {
    let server = Server::bind("127.0.0.1:4243", Config::default(), routes())?
        .with_state(rooms())
        .with_state(tokens());
    println!("listening on http://{}/api/rooms", server.local_addr());
    server.run()
}
