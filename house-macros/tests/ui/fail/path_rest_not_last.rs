#[house::closing_handler("/files/{*path}/raw")]
fn file(path: String) -> String {
    path
}

fn main() {}
