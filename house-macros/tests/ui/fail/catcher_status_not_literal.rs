const NOT_FOUND: u16 = 404;

#[house::catcher(NOT_FOUND)]
fn not_found() -> &'static str {
    "not found"
}

fn main() {}
