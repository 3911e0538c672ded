#[house::closing_handler]
fn send(#[param(max = 2.5)] room: String) -> String {
    room
}

fn main() {}
