#[house::closing_handler]
fn tag(#[param(min_count = 1)] tag: String) -> String {
    tag
}

fn main() {}
