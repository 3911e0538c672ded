#[house::closing_handler("/rooms/{name}")]
fn room(name: String) -> String {
    name
}

#[house::closing_handler("/rooms/{id}", methods = [GET])]
fn room_by_id(id: u32) -> String {
    id.to_string()
}

fn main() {
    let _ = house::routes![room, room_by_id];
}
