#[house::closing_handler]
struct Send;

fn main() {}
