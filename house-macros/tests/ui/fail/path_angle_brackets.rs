#[house::closing_handler("/rooms/<name>/messages")]
fn messages(name: String) -> String {
    name
}

fn main() {}
