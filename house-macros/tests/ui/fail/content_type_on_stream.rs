#[house::stream_handler(content_type = "text/plain")]
fn source() -> house::Subscribe {
    house::Subscribe::to("lobby")
}

fn main() {}
