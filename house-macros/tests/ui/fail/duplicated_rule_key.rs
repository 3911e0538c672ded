#[house::closing_handler]
fn send(#[param(max = 16, max = 32)] room: String) -> String {
    room
}

fn main() {}
