use house::Session;

#[house::closing_handler]
fn rename(first: &mut Session, second: &Session) -> &'static str {
    let _ = (first, second);
    "renamed"
}

fn main() {}
