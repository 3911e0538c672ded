#[house::closing_handler]
fn send(#[param(min = 5, max = 3)] message: String) -> String {
    message
}

fn main() {}
