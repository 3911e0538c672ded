#[house::closing_handler(methods = [GET, FETCH])]
fn index() -> &'static str {
    "hi"
}

fn main() {}
