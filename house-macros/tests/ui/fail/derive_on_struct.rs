#[derive(house::FromParam)]
struct Colour(String);

fn main() {}
