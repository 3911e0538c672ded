#[house::closing_handler]
fn tags(tag: Option<Vec<String>>) -> String {
    format!("{tag:?}")
}

fn main() {}
