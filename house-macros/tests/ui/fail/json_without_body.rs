#[derive(serde::Deserialize)]
struct Message {
    text: String,
}

#[house::closing_handler(methods = [POST])]
fn send(message: house::Json<Message>) -> String {
    message.0.text
}

fn main() {}
