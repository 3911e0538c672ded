#[house::closing_handler(methods = [POST])]
fn upload(#[body] #[param(max = 10)] text: String) -> String {
    text
}

fn main() {}
