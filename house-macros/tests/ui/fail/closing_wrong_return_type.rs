#[house::closing_handler]
fn count() -> u32 {
    1
}

fn main() {}
