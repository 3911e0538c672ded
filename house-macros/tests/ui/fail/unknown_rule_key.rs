#[house::closing_handler]
fn send(#[param(maximum = 16)] room: String) -> String {
    room
}

fn main() {}
