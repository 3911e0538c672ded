const LIMIT: usize = 16;

#[house::closing_handler]
fn send(#[param(max = LIMIT)] room: String) -> String {
    room
}

fn main() {}
