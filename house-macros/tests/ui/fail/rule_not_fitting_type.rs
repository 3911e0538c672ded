#[house::closing_handler]
fn toggle(#[param(min = 1)] on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn main() {}
