#[house::catcher(302)]
fn moved() -> &'static str {
    "moved"
}

fn main() {}
