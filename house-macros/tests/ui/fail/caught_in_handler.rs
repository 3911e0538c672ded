#[house::closing_handler]
fn page(caught: &house::Caught) -> String {
    caught.detail.clone()
}

fn main() {}
