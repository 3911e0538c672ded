#[house::catcher(404)]
fn not_found(request: &house::Request) -> String {
    request.path().to_owned()
}

fn main() {}
