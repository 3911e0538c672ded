#[house::closing_handler("/rooms/{name}")]
fn room(name: Option<String>) -> String {
    name.unwrap_or_default()
}

fn main() {}
