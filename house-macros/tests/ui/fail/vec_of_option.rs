#[house::closing_handler]
fn tags(tag: Vec<Option<u8>>) -> String {
    format!("{tag:?}")
}

fn main() {}
