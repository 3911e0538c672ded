#[house::closing_handler]
fn nick(nick: Option<Option<String>>) -> String {
    format!("{nick:?}")
}

fn main() {}
