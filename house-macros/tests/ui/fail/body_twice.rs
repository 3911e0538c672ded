#[house::closing_handler(methods = [POST])]
fn upload(#[body] text: String, #[body] raw: Vec<u8>) -> String {
    format!("{text} {}", raw.len())
}

fn main() {}
