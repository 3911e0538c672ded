struct Room(String);

impl house::FromParam for Room {
    fn from_param(value: &str) -> Result<Room, house::ParamError> {
        Ok(Room(value.to_owned()))
    }
}

#[house::closing_handler]
fn join(#[param(max = 16)] room: Room) -> String {
    room.0
}

fn main() {}
