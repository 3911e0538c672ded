//! Real reverse proxies in front of a house server, for `tests/proxy*.rs`: a self-signed
//! certificate from the `openssl` CLI, nginx (and Caddy) started as child processes on
//! loopback ports with the shipped `deploy/` config and everything they write in a temp dir,
//! and `curl` as an HTTP/2 SSE client. Every wait is bounded; every child is killed on drop.
//! Without nginx, caddy, openssl or curl the tests fail with how to install them (never skip).
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use house::{Config, Handle, Route, Server};

/// How long a proxy may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "house-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nobody listens on right now (the proxy binds it a moment later).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails the test with how to install `tool` when it is not on the PATH.
fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is missing: the proxy tests need nginx, caddy, openssl and curl; \
         install them with `.ci/setup` (as root: apt-get install nginx caddy openssl curl)"
    );
}

/// A self-signed certificate for `localhost` and `127.0.0.1` in `dir`: `(cert, key)` paths.
pub(crate) fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    require("openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // An EC key: generated in milliseconds, unlike RSA.
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req -x509 failed");
    (cert, key)
}

/// A house server on a loopback port, shut down on drop.
pub(crate) struct House {
    pub(crate) addr: SocketAddr,
    pub(crate) handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl House {
    pub(crate) fn start(config: Config, routes: Vec<Route>) -> House {
        let server = Server::bind("127.0.0.1:0", config, routes).expect("bind on loopback");
        let (addr, handle) = (server.local_addr(), server.handle());
        House {
            addr,
            handle,
            thread: Some(thread::spawn(move || server.run())),
        }
    }

    /// A request straight to house (not through the proxy), answered before this returns.
    pub(crate) fn request(&self, head: &str) -> String {
        let mut socket = TcpStream::connect(self.addr).unwrap();
        socket.set_read_timeout(Some(START_TIMEOUT)).unwrap();
        socket
            .write_all(
                format!("{head}\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    }
}

impl Drop for House {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A proxy child process listening on `https://127.0.0.1:{port}`, killed on drop.
pub(crate) struct Proxy {
    /// The name the certificate and the proxy's site answer to.
    pub(crate) host: &'static str,
    pub(crate) port: u16,
    pub(crate) cert: PathBuf,
    child: Child,
    /// What the proxy logs (nginx's access log lists each request's protocol).
    pub(crate) access_log: PathBuf,
    pub(crate) error_log: PathBuf,
    // Last: removed after the child is gone.
    dir: TempDir,
}

impl Proxy {
    /// nginx running `deploy/nginx.conf` in front of `house`, with `proxy_read_timeout`
    /// replaced by `read_timeout` when given.
    pub(crate) fn nginx(house: SocketAddr, read_timeout: Option<&str>) -> Proxy {
        Proxy::nginx_with(house, read_timeout, &[])
    }

    /// nginx as [`Proxy::nginx`], with each `(from, to)` of `changes` made to the shipped
    /// config first (for the controls that show what a setting prevents).
    pub(crate) fn nginx_with(
        house: SocketAddr,
        read_timeout: Option<&str>,
        changes: &[(&str, &str)],
    ) -> Proxy {
        require("nginx");
        let dir = TempDir::new("nginx");
        let (cert, key) = self_signed(dir.path());
        let port = free_port();
        let mut site = shipped("deploy/nginx.conf");
        substitute(
            &mut site,
            "server 127.0.0.1:4242;",
            &format!("server {house};"),
        );
        substitute(
            &mut site,
            "listen 443 ",
            &format!("listen 127.0.0.1:{port} "),
        );
        use_test_certificate(&mut site, &cert, &key);
        if let Some(timeout) = read_timeout {
            substitute(
                &mut site,
                "proxy_read_timeout 60s;",
                &format!("proxy_read_timeout {timeout};"),
            );
        }
        for (from, to) in changes {
            substitute(&mut site, from, to);
        }
        std::fs::write(dir.path().join("house.conf"), site).unwrap();
        let d = dir.path().display();
        // Everything nginx writes stays in the temp dir; one process (no master to orphan
        // workers when the test kills it), in the foreground.
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               log_format protocol '$request_method $request_uri $server_protocol $status';\n\
               access_log {d}/access.log protocol;\n\
               client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
               include {d}/house.conf;\n\
             }}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        Proxy::started(
            child,
            "127.0.0.1",
            port,
            cert,
            dir,
            "access.log",
            "error.log",
        )
    }

    /// Caddy running `deploy/Caddyfile` in front of `house`.
    pub(crate) fn caddy(house: SocketAddr) -> Proxy {
        require("caddy");
        let dir = TempDir::new("caddy");
        let (cert, key) = self_signed(dir.path());
        let port = free_port();
        let mut site = shipped("deploy/Caddyfile");
        substitute(&mut site, "127.0.0.1:4242", &house.to_string());
        // Loopback only, under a name (a client sends no SNI for an IP address, and Caddy
        // picks the certificate by SNI).
        substitute(
            &mut site,
            "example.com {",
            &format!("https://localhost:{port} {{\n\tbind 127.0.0.1"),
        );
        use_test_certificate(&mut site, &cert, &key);
        // Test-only globals: no admin endpoint, no automatic certificates or redirect
        // listener (port 80 needs root), a log file in the temp dir.
        let d = dir.path().display();
        let config = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n\
             \tlog {{\n\t\toutput file {d}/error.log\n\t}}\n}}\n\n{site}"
        );
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("caddy")
            .arg("run")
            .arg("--config")
            .arg(&file)
            .args(["--adapter", "caddyfile"])
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        Proxy::started(
            child,
            "localhost",
            port,
            cert,
            dir,
            "access.log",
            "error.log",
        )
    }

    /// Waits (bounded) until the proxy accepts connections on `port`.
    fn started(
        mut child: Child,
        host: &'static str,
        port: u16,
        cert: PathBuf,
        dir: TempDir,
        access: &str,
        error: &str,
    ) -> Proxy {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(dir.path().join("stderr.log"));
                let log = std::fs::read_to_string(dir.path().join(error));
                panic!("the proxy exited at start ({status}):\n{stderr:?}\n{log:?}");
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not listen on {port}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        Proxy {
            host,
            port,
            cert,
            child,
            access_log: dir.path().join(access),
            error_log: dir.path().join(error),
            dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.host, self.port)
    }

    /// The access log's lines, once it has at least `lines` of them (nginx writes a stream's
    /// line when the stream ends); fails the test after `patience`.
    pub(crate) fn access_lines(&self, lines: usize, patience: Duration) -> Vec<String> {
        let deadline = Instant::now() + patience;
        loop {
            let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
            let found: Vec<String> = text.lines().map(str::to_owned).collect();
            if found.len() >= lines {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the access log has {} lines, expected {lines}:\n{text}",
                found.len()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of this repository, as text.
fn shipped(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Replaces `from` with `to` in the shipped config, failing loudly when the file no longer
/// has `from` (so a config edit cannot silently bypass the test).
/// Points a shipped config at the test's self-signed certificate and key.
fn use_test_certificate(site: &mut String, cert: &Path, key: &Path) {
    substitute(site, "/etc/ssl/house/cert.pem", &cert.display().to_string());
    substitute(site, "/etc/ssl/house/key.pem", &key.display().to_string());
}

fn substitute(text: &mut String, from: &str, to: &str) {
    assert!(text.contains(from), "the shipped config has no `{from}`");
    *text = text.replace(from, to);
}

/// An SSE stream read by `curl` over HTTP/2 (trusting the test's certificate), one line at
/// a time with the moment it arrived; curl is killed on drop.
pub(crate) struct CurlStream {
    child: Child,
    lines: Receiver<(Instant, String)>,
    /// Every line read so far (the response head first: curl runs with `-i`).
    pub(crate) seen: Vec<String>,
}

impl CurlStream {
    pub(crate) fn open(proxy: &Proxy, path: &str, headers: &[&str]) -> CurlStream {
        require("curl");
        let mut command = Command::new("curl");
        command
            .args([
                "--silent",
                "--show-error",
                "--no-buffer",
                "--include",
                "--http2",
            ])
            // Offer gzip like a browser does, so the test sees whether the proxy compresses.
            .arg("--compressed")
            .arg("--cacert")
            .arg(&proxy.cert)
            .arg("--resolve")
            .arg(format!("{}:{}:127.0.0.1", proxy.host, proxy.port));
        for header in headers {
            command.args(["--header", header]);
        }
        let mut child = command
            .arg(proxy.url(path))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        CurlStream {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `want`: `Some(when it arrived)`, or `None` when the
    /// stream ended first or `patience` ran out.
    pub(crate) fn wait_for(
        &mut self,
        patience: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (at, line) = self.lines.recv_timeout(left).ok()?;
            let line = line.trim_end_matches('\r').to_owned();
            let hit = want(&line);
            self.seen.push(line);
            if hit {
                return Some(at);
            }
        }
    }

    /// Reads lines until the stream ends: whether it ended within `patience`.
    pub(crate) fn ends_within(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.lines.recv_timeout(left) {
                Ok((_, line)) => self.seen.push(line.trim_end_matches('\r').to_owned()),
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            }
        }
    }
}

impl Drop for CurlStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
