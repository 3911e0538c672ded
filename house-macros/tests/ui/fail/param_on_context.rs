#[house::closing_handler]
fn send(#[param(max = 1)] hub: &mut house::Hub) -> &'static str {
    let _ = hub;
    "sent"
}

fn main() {}
