#[house::closing_handler]
fn tags(tag: Vec<Vec<String>>) -> String {
    format!("{tag:?}")
}

fn main() {}
