#[house::closing_handler]
fn send(room: String, #[param(name = "room")] other: String) -> String {
    room + &other
}

fn main() {}
