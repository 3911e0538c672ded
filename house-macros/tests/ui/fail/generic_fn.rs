#[house::closing_handler]
fn send<T: house::FromParam>(value: T) -> &'static str {
    let _ = value;
    "sent"
}

fn main() {}
