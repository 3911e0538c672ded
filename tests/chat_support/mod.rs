//! The chat example, started in-process on an ephemeral port for the chat tests.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use house::{Config, Handle, Server};

// The example's own file, so the tests exercise exactly the routes `cargo run --example chat`
// serves. Its `main` and flag parsing are only used by the binary.
#[allow(dead_code)]
#[path = "../../examples/chat.rs"]
mod app;

/// A running chat server; shut down and joined on drop.
pub struct Chat {
    pub addr: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Starts the chat app on `127.0.0.1:0`.
pub fn spawn_chat() -> Chat {
    let server = Server::bind("127.0.0.1:0", Config::default(), app::routes().unwrap()).unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    Chat {
        addr,
        handle,
        thread: Some(thread),
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            // Don't turn a failing test's panic into an abort.
            if !std::thread::panicking() {
                result.unwrap().unwrap();
            }
        }
    }
}
