#[house::closing_handler("/rooms/room-{id}")]
fn room(id: u32) -> String {
    id.to_string()
}

fn main() {}
