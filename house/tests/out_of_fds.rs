//! Running out of file descriptors: the loop neither spins nor dies, and serves again once
//! descriptors free up. Its own test binary, since it exhausts the whole process's descriptors.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::time::Duration;

use house::{Config, Route};
use socket2::{Domain, Socket, Type};
use support::*;

/// CPU time (user + system) this process has used, in clock ticks, read through a file opened
/// before the descriptors ran out.
fn cpu_ticks(stat: &mut File) -> u64 {
    let mut text = String::new();
    stat.seek(SeekFrom::Start(0)).unwrap();
    stat.read_to_string(&mut text).unwrap();
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn emfile_backs_off_without_spinning_and_recovers() {
    let config = Config::default().with_max_connections(100_000);
    let server = TestServer::start(config, vec![Route::closing("/hello", |_| "hello")]);
    assert_eq!(body_of(&server.get("/hello")), "hello");
    // Everything the test needs while out of descriptors is opened first.
    let mut stat = File::open("/proc/self/stat").unwrap();
    let clients: Vec<Socket> = (0..3)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let mut hog = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        hog.push(file);
    }
    // These connect (the kernel completes the handshake) but the server cannot accept them.
    let mut waiting: Vec<TcpStream> = clients
        .into_iter()
        .map(|socket| {
            socket.connect(&server.addr.into()).unwrap();
            let mut stream = TcpStream::from(socket);
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream
        })
        .collect();
    let before = cpu_ticks(&mut stat);
    std::thread::sleep(Duration::from_millis(1000));
    let spent = cpu_ticks(&mut stat) - before;
    drop(hog);
    // A spinning loop would burn ~100 ticks (one core for a second); backing off costs a few.
    assert!(
        spent < 20,
        "the loop used {spent} ticks in a second while out of descriptors"
    );
    for stream in &mut waiting {
        assert_eq!(body_of(&read_to_close(stream)), "hello");
    }
}
