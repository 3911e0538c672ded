struct Chat;

impl Chat {
    #[house::closing_handler]
    fn send(&self) -> &'static str {
        "sent"
    }
}

fn main() {}
