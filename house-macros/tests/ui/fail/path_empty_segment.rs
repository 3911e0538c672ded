#[house::closing_handler("/rooms//messages")]
fn messages() -> &'static str {
    "none"
}

fn main() {}
