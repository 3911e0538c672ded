#[house::closing_handler("/rooms/{name}")]
fn room(name: Vec<String>) -> String {
    name.join(",")
}

fn main() {}
