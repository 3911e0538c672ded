#[house::closing_handler("send")]
fn send() -> &'static str {
    "sent"
}

fn main() {}
