#[house::closing_handler("/rooms/{}")]
fn room() -> &'static str {
    "none"
}

fn main() {}
