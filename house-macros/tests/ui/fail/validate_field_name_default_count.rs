#[derive(house::Validate)]
struct Message {
    #[param(name = "body", default = "hi")]
    text: String,
    #[param(min_count = 1)]
    tags: Vec<String>,
    #[param(min = 1)]
    urgent: bool,
}

fn main() {}
