#[derive(house::Validate)]
struct Text(String);

fn main() {}
