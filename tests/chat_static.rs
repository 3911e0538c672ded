//! `house::files` over real sockets, on a directory made for the test: dotfiles, symlinks that
//! lead out, directories, and a file large enough to be streamed.
#![allow(clippy::unwrap_used)]

mod chat_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chat_support::{exchange, get, request, Response};
use house::files::{self, STREAM_THRESHOLD};
use house::{Config, Server};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("house-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, contents: &[u8]) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves `root/public` at `/files/` until the returned handle is dropped.
fn serve(root: &Path) -> (SocketAddr, house::Handle, std::thread::JoinHandle<()>) {
    let routes = vec![files::mount("/files/", root.join("public")).unwrap()];
    let server = Server::bind("127.0.0.1:0", Config::default(), routes).unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run().unwrap());
    (addr, handle, thread)
}

/// A byte pattern that shows any reordered or dropped chunk.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn dotfiles_symlinks_and_directories() {
    let tmp = TempDir::new("static-refusals");
    tmp.write("secret.txt", b"outside the served directory");
    tmp.write("public/ok.txt", b"fine");
    tmp.write("public/.env", b"SECRET=1");
    tmp.write("public/.git/config", b"[core]");
    tmp.write("public/docs/page.html", b"<p>page</p>");
    let public = tmp.0.join("public");
    std::os::unix::fs::symlink(tmp.0.join("secret.txt"), public.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(&tmp.0, public.join("up")).unwrap();
    std::os::unix::fs::symlink(public.join("docs"), public.join("manual")).unwrap();

    let (addr, handle, thread) = serve(&tmp.0);
    let ok = get(addr, "/files/ok.txt", &[]);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text(), "fine");
    assert_eq!(ok.header("content-type"), Some("text/plain; charset=utf-8"));
    // A symlink that stays inside is followed.
    let page = get(addr, "/files/manual/page.html", &[]);
    assert_eq!(page.status(), 200);
    assert_eq!(page.text(), "<p>page</p>");

    for target in [
        "/files/.env",
        "/files/%2eenv",
        "/files/.git/config",
        "/files/leak.txt",
        "/files/up/secret.txt",
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/docs",
        "/files/docs/",
        "/files/",
    ] {
        let response = get(addr, target, &[]);
        assert_eq!(response.status(), 404, "{target}: {}", response.text());
        assert!(!response.text().contains("SECRET"), "{target}");
        assert!(!response.text().contains("outside"), "{target}");
    }
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn large_files_stream_whole_and_head_sends_no_body() {
    let tmp = TempDir::new("static-large");
    let len = 3 * 1024 * 1024 + 17;
    assert!(len as u64 > STREAM_THRESHOLD);
    let big = pattern(len);
    tmp.write("public/big.wasm", &big);
    let (addr, handle, thread) = serve(&tmp.0);

    let response = get(addr, "/files/big.wasm", &[]);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("application/wasm"));
    assert_eq!(
        response.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(response.body == big, "the streamed body differs");

    let head = request(addr, "HEAD", "/files/big.wasm", &[], "");
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(
        head.body.is_empty(),
        "HEAD sent {} body bytes",
        head.body.len()
    );

    handle.shutdown();
    thread.join().unwrap();
}

/// Two pipelined requests on one keep-alive connection: the first file body must be sent
/// whole before the second response's head.
#[test]
fn pipelined_file_bodies_stay_in_order() {
    let tmp = TempDir::new("static-pipelined");
    let len = 3 * 1024 * 1024 + 17;
    let big = pattern(len);
    tmp.write("public/big.wasm", &big);
    let (addr, handle, thread) = serve(&tmp.0);

    let raw = b"GET /files/big.wasm HTTP/1.1\r\nHost: t\r\n\r\n\
                GET /files/big.wasm HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let both = exchange(addr, raw);
    let first = Response::parse(&both);
    assert_eq!(first.status(), 200);
    let differs = first.body.iter().zip(&big).position(|(a, b)| a != b);
    assert!(
        first.body[..len] == big[..],
        "the first body differs at {differs:?}: {:?}",
        String::from_utf8_lossy(&first.body[differs.unwrap_or(0)..][..200])
    );
    let second = Response::parse(&first.body[len..]);
    assert_eq!(second.status(), 200);
    assert!(second.body == big, "the second body differs");

    handle.shutdown();
    thread.join().unwrap();
}
