#[house::closing_handler(methods = [GET, FETCH])]
fn send(
    #[param(min = 5, max = 3)] message: String,
    #[param(min_count = 1)] room: String,
    #[param(sort = true)] flag: bool,
) -> String {
    let _ = (room, flag);
    message
}

fn main() {
    // The fn and its route type still exist: no "cannot find" errors follow.
    let _ = house::routes![send];
    let _ = send(String::new(), String::new(), false);
}
