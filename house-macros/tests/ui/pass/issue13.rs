//! Path parameters, guards, state, bodies, catchers and `Validate` together.
#![deny(missing_docs, missing_debug_implementations, warnings)]

use std::sync::Mutex;

use house::{
    catcher, closing_handler, routes, stream_handler, Caught, Ctx, FromRequest, Hub, IntoResponse,
    Json, JsonParam, Request, Response, Status, Subscribe,
};

struct User(String);

impl FromRequest for User {
    fn from_request(ctx: &mut Ctx<'_>) -> Result<User, Response> {
        match ctx.request.header("x-user") {
            Some(name) => Ok(User(name.to_owned())),
            None => Err(Status::UNAUTHORIZED.into_response()),
        }
    }
}

struct Rooms(Mutex<Vec<String>>);

#[derive(serde::Deserialize, house::Validate)]
struct NewMessage {
    #[param(min = 1, max = 256)]
    text: String,
    #[param(one_of = ["info", "warn"])]
    level: Option<String>,
    #[param(max = 10)]
    tags: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Filter {
    from: u32,
}

#[closing_handler("/api/rooms/{name}/messages", methods = [POST])]
fn post_message(
    #[guard] user: User,
    #[param(max = 16)] name: String,
    rooms: &Rooms,
    #[body] message: Json<NewMessage>,
    hub: &mut Hub,
) -> String {
    let _ = (hub, rooms.0.lock().map(|r| r.len()));
    format!("{} in {name}: {}", user.0, message.0.text)
}

#[closing_handler("/api/rooms/{room}/messages", methods = [GET])]
fn list_messages(
    #[guard] user: Option<User>,
    #[param(name = "room", min = 1)] room_name: String,
    #[param(min = 1, max = 100)] limit: Option<u32>,
    filter: Option<JsonParam<Filter>>,
    rooms: &Rooms,
) -> String {
    let _ = (user.map(|u| u.0), limit, filter.map(|f| f.0.from), rooms);
    room_name
}

#[closing_handler("/files/{*path}")]
fn file(path: String, request: &Request) -> String {
    format!("{path} {}", request.path())
}

#[closing_handler("/raw/{id}", methods = [PUT])]
fn raw(id: u64, #[body] bytes: Vec<u8>) -> String {
    format!("{id}: {}", bytes.len())
}

#[closing_handler("/text", methods = [PUT])]
fn text(#[body] text: String) -> String {
    text
}

#[stream_handler("/rooms/{room}/source")]
fn source(#[guard] user: User, #[param(max = 16)] room: String, _rooms: &Rooms) -> Subscribe {
    let _ = user.0;
    Subscribe::to(room)
}

#[catcher(404)]
fn not_found(caught: &Caught) -> String {
    format!("nothing at {:?}", caught.request.map(Request::path))
}

#[catcher(500)]
fn oops() -> Status {
    Status::INTERNAL_SERVER_ERROR
}

fn main() {
    let routes = routes![post_message, list_messages, file, raw, text, source, not_found, oops];
    assert_eq!(routes.len(), 8);
}
