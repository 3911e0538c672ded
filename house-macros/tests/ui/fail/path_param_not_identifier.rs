#[house::closing_handler("/rooms/{room-id}")]
fn room() -> &'static str {
    "none"
}

fn main() {}
