#[house::closing_handler("/rooms/{name}/messages")]
fn messages() -> &'static str {
    "none"
}

fn main() {}
