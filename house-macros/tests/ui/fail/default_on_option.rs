#[house::closing_handler]
fn page(#[param(default = Some(1))] page: Option<u32>) -> String {
    format!("{page:?}")
}

fn main() {}
