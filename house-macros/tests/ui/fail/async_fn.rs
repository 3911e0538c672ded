#[house::closing_handler]
async fn send() -> &'static str {
    "sent"
}

fn main() {}
