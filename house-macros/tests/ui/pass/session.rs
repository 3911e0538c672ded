//! The session as a context argument: by type, in any position, shared or mutable.
#![deny(warnings)]

use std::time::Duration;

use house::{closing_handler, routes, stream_handler, Hub, RateLimited, Session, Subscribe};

#[closing_handler(methods = [POST])]
fn rename(#[param(max = 16)] name: String, session: &mut Session, hub: &Hub) -> Result<String, RateLimited> {
    session.rate_limit("rename", 5, Duration::from_secs(10))?;
    let old: Option<String> = session.get("name");
    let _ = session.insert("name", &name);
    Ok(format!("{} → {name} ({} channels)", old.unwrap_or_default(), hub.channel_count()))
}

#[closing_handler]
fn whoami(session: &house::Session<'_>) -> String {
    session.get::<String>("name").unwrap_or_default()
}

#[stream_handler]
fn source(session: &Session, #[param(default = "lobby")] room: String) -> Subscribe {
    let _ = session.get::<String>("name");
    Subscribe::to(room)
}

fn main() {
    let routes = routes![rename, whoami, source];
    assert_eq!(routes.len(), 3);
}
