struct User;

impl house::FromRequest for User {
    fn from_request(_: &mut house::Ctx<'_>) -> Result<User, house::Response> {
        Ok(User)
    }
}

#[house::closing_handler]
fn me(#[guard] #[param(name = "user")] user: User) -> &'static str {
    let _ = user;
    "me"
}

fn main() {}
