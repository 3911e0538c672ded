#[derive(house::Validate)]
enum Level {
    Info,
    Warn,
}

fn main() {}
