#[house::closing_handler("/rooms/{name}")]
fn room(#[param(default = "lobby")] name: String) -> String {
    name
}

fn main() {}
