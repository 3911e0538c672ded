#[house::stream_handler]
fn source(#[body] text: String) -> house::Subscribe {
    house::Subscribe::to(text)
}

fn main() {}
