#[house::closing_handler("/rooms/{id}/users/{id}")]
fn user(id: u32) -> String {
    id.to_string()
}

fn main() {}
