struct Room;

#[house::closing_handler]
fn join(room: Room) -> &'static str {
    let _ = room;
    "joined"
}

fn main() {}
