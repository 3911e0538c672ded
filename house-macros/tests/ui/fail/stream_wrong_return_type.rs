#[house::stream_handler]
fn source() -> &'static str {
    "lobby"
}

fn main() {}
