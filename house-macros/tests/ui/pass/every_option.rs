//! A handler using every option; public handlers need no docs on the generated companion.
#![deny(missing_docs, missing_debug_implementations, warnings)]

use house::{closing_handler, routes, stream_handler, Hub, JsonParam, Request, Status, Subscribe};

/// A colour.
#[derive(house::FromParam)]
enum Colour {
    Red,
    DarkBlue,
}

#[derive(serde::Deserialize)]
struct Point {
    x: i32,
}

#[closing_handler("/everything", methods = [GET, POST], content_type = "text/plain")]
fn everything(
    request: &Request,
    #[param(min = 1, max = 16, one_of = ["a", "b"])] s: String,
    #[param(min = -5, max = 5)] i: i8,
    #[param(min = 0, max = 1.5)] f: f64,
    b: bool,
    c: char,
    o: Option<u8>,
    #[param(name = "v", min_count = 0, max_count = 3, max = 9)] v: Vec<u8>,
    #[param(default = "lobby")] room: String,
    #[param(default = 2)] ratio: f32,
    colour: Colour,
    point: JsonParam<Point>,
    hub: &mut Hub,
) -> Result<String, Status> {
    let _ = (request, b, c, o, v, ratio, colour, hub.subscribers(&room));
    Ok(format!("{s} {i} {f} {}", point.0.x))
}

/// The event stream.
#[stream_handler(path = "/events")]
pub fn events(#[param(max = 16)] room: String, _hub: &Hub) -> Subscribe {
    Subscribe::to(room)
}

#[stream_handler]
fn r#type() -> Result<Subscribe, Status> {
    Err(Status::FORBIDDEN)
}

fn main() {
    let routes = routes![everything, events, r#type];
    assert_eq!(routes.len(), 3);
}
