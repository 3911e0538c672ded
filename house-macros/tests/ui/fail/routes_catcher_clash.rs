#[house::catcher(404)]
fn not_found() -> &'static str {
    "not found"
}

#[house::catcher(404)]
fn missing() -> &'static str {
    "missing"
}

fn main() {
    let _ = house::routes![not_found, missing];
}
