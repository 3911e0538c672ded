//! `cargo build --release --example soak --example chat && target/release/examples/soak --minutes 30`
//!
//! A soak test of a house server: it starts the chat example (the `chat` binary beside this one;
//! `--server PATH` picks another, `--addr HOST:PORT --server-pid PID` uses one already running),
//! then for `--minutes` keeps `--subs` SSE subscribers on one room, of which `--stalled` never
//! read a byte, replaces `--churn` of them per second (close one, open one), and publishes
//! `--rate` messages per second through one keep-alive connection that keeps its session cookie,
//! as a browser would.
//!
//! Every `--every` seconds it prints the server's RSS and open file descriptors (from
//! `/proc/PID`), the subscribers, and what arrived; at the end a summary. Each message carries
//! `sq<seq>r<run>`; a subscriber that reads must see consecutive sequence numbers from its first
//! event on, so a gap is counted as loss, a repeat as a duplicate, a step back as a reorder.
//! Subscribers that are still open at the end must have everything up to the last message.
//!
//! It exits with status 1 if any reading subscriber lost, duplicated or reordered a message,
//! was refused or closed by the server, if a publish was refused, or if the server's RSS after
//! the warm-up (`--warmup`, default a sixth of the run, at most 5 minutes) rose more than
//! `--max-growth` percent (default 5) above the highest RSS of the warm-up, or its
//! least-squares line moved by more than that percentage over the rest of the run: a leak
//! fails either way, while the events queued for stalled readers (bounded by the write timeout
//! and the queue cap, and freed when those readers are dropped) come and go below the peak
//! they reached in the warm-up. The anonymous part of the RSS (the heap; the rest is mostly
//! the binary's pages) is printed beside it.
//!
//! The chat is started with `--rate 1000000000/1`, the same flag `examples/compare.rs` uses to
//! lift its per-session send limit for benchmarks, and `--no-archive` (no SQLite file is
//! written). Loopback only; every loop is bounded by a
//! count or by the run's deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const USAGE: &str = "soak [--minutes M (30)] [--seconds S] [--subs N (1000)] [--stalled K (20)]
     [--churn C (50/s)] [--rate R (50/s)] [--every SECS (10)] [--warmup SECS]
     [--max-growth PCT (5)]
     [--server PATH | --addr HOST:PORT [--server-pid PID]]";

/// The chat's `--rate` for the soak: effectively unlimited sending (as in examples/compare.rs).
const CHAT_RATE: &str = "1000000000/1";

/// How long the started server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the subscribers still open at the end get to receive the last message.
const DRAIN: Duration = Duration::from_secs(5);

/// How long a reading subscriber may go without any event before it counts as silent.
const SILENT_AFTER: Duration = Duration::from_secs(10);

/// How long one `poll` waits, so churn and sampling stay on time.
const POLL_SLICE: Duration = Duration::from_millis(5);

/// How often the server's RSS and fds are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// Padding in each message, so a stalled subscriber fills its buffers within minutes.
const PADDING: usize = 160;

#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    subs: usize,
    stalled: usize,
    churn: f64,
    rate: f64,
    every: Duration,
    warmup: Option<Duration>,
    /// RSS after the warm-up must stay within this many percent of the warm-up's peak, and
    /// its trend line must move less than that.
    max_growth: f64,
    server: Option<PathBuf>,
    addr: Option<SocketAddr>,
    server_pid: Option<u32>,
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        duration: Duration::from_secs(30 * 60),
        subs: 1000,
        stalled: 20,
        churn: 50.0,
        rate: 50.0,
        every: Duration::from_secs(10),
        warmup: None,
        max_growth: 5.0,
        server: None,
        addr: None,
        server_pid: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        let flag = match arg {
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Err(String::new()),
            lexopt::Arg::Long(name) => format!("--{name}"),
            lexopt::Arg::Short(c) => return Err(format!("unknown flag `-{c}`")),
            lexopt::Arg::Value(v) => return Err(format!("unknown flag `{}`", v.to_string_lossy())),
        };
        let mut value = || -> Result<String, String> {
            let value = parser
                .value()
                .map_err(|_| format!("`{flag}` needs a value"))?;
            value
                .into_string()
                .map_err(|v| format!("`{flag}` must be UTF-8 (got {v:?})"))
        };
        let number = |v: String| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or(format!("`{flag}` must be a number (got `{v}`)"))
        };
        match flag.as_str() {
            "--minutes" => opts.duration = Duration::from_secs_f64(number(value()?)? * 60.0),
            "--seconds" => opts.duration = Duration::from_secs_f64(number(value()?)?),
            "--subs" => opts.subs = number(value()?)? as usize,
            "--stalled" => opts.stalled = number(value()?)? as usize,
            "--churn" => opts.churn = number(value()?)?,
            "--rate" => opts.rate = number(value()?)?.max(1.0),
            "--every" => opts.every = Duration::from_secs_f64(number(value()?)?.max(1.0)),
            "--warmup" => opts.warmup = Some(Duration::from_secs_f64(number(value()?)?)),
            "--max-growth" => opts.max_growth = number(value()?)?,
            "--server" => opts.server = Some(PathBuf::from(value()?)),
            "--addr" => {
                let v = value()?;
                let addr: SocketAddr = v.parse().map_err(|_| format!("bad --addr `{v}`"))?;
                if !addr.ip().is_loopback() {
                    return Err("--addr must be a loopback address".into());
                }
                opts.addr = Some(addr);
            }
            "--server-pid" => opts.server_pid = Some(number(value()?)? as u32),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if opts.stalled > opts.subs {
        return Err("--stalled must not exceed --subs".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(why) => {
            eprintln!("{why}\nusage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut child = None;
    let (addr, pid) = match opts.addr {
        Some(addr) => (addr, opts.server_pid),
        None => match start_chat(&opts) {
            Ok((started, addr)) => {
                let pid = started.id();
                child = Some(started);
                (addr, Some(pid))
            }
            Err(err) => {
                eprintln!("soak: could not start the server: {err}");
                return ExitCode::from(2);
            }
        },
    };
    let result = run(&opts, addr, pid);
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("soak: {err}");
            ExitCode::from(2)
        }
    }
}

/// Starts the chat on a free loopback port and reads the address from its first line.
fn start_chat(opts: &Options) -> io::Result<(Child, SocketAddr)> {
    let path = match &opts.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("chat"),
    };
    let mut child = Command::new(&path)
        // No archive: a soak measures the server's memory, and would leave a growing
        // chat.sqlite3 wherever it runs (the repository, in CI).
        .args(["--port", "0", "--rate", CHAT_RATE, "--no-archive"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
    // A thread reads the first line, so a server that prints nothing cannot hang us.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep draining, so the server never blocks on a full pipe.
        for _ in lines.by_ref().take(1_000_000) {}
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the server printed no address"));
        }
    };
    // `listening on http://127.0.0.1:PORT/index`
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok());
    match addr {
        Some(addr) => Ok((child, addr)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other(format!("unexpected first line: {line}")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Publisher

#[derive(Default)]
struct Published {
    /// Messages the server accepted: sequence numbers `0..accepted`.
    accepted: AtomicU64,
    /// Publishes answered with anything but 2xx (retried with the same sequence number).
    refused: AtomicU64,
    /// Times the publisher's connection failed and was opened again.
    reconnects: AtomicU64,
    stop: AtomicBool,
}

/// Publishes at `rate` until stopped; a refused message is sent again with the same number, so
/// the accepted ones stay consecutive.
fn publish_loop(addr: SocketAddr, room: String, run: u64, rate: f64, shared: Arc<Published>) {
    let start = Instant::now();
    let mut cookie: Option<String> = None;
    let padding = "x".repeat(PADDING);
    let mut conn: Option<(StdStream, BufReader<StdStream>)> = None;
    let mut sent = 0u64;
    while !shared.stop.load(Relaxed) {
        let due = start + Duration::from_secs_f64(sent as f64 / rate);
        let now = Instant::now();
        if due > now {
            thread::sleep((due - now).min(Duration::from_millis(100)));
            continue;
        }
        if conn.is_none() {
            match connect_publisher(addr) {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    shared.reconnects.fetch_add(1, Relaxed);
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some((writer, reader)) = conn.as_mut() else {
            continue;
        };
        let seq = shared.accepted.load(Relaxed);
        let cookie_line = cookie
            .as_deref()
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /send-message?room={room}&name=soak&message=sq{seq}r{run}{padding} HTTP/1.1\r\n\
             Host: {addr}\r\n{cookie_line}\r\n"
        );
        sent += 1;
        let answer = writer
            .write_all(request.as_bytes())
            .and_then(|()| read_response(reader));
        match answer {
            Ok((true, set_cookie)) => {
                shared.accepted.fetch_add(1, Relaxed);
                if set_cookie.is_some() {
                    cookie = set_cookie;
                }
            }
            Ok((false, _)) => {
                shared.refused.fetch_add(1, Relaxed);
            }
            Err(_) => {
                // Unknown whether it was published: the subscribers would see a gap or a
                // repeat. Counted, and the run fails on it.
                shared.reconnects.fetch_add(1, Relaxed);
                conn = None;
            }
        }
    }
}

fn connect_publisher(addr: SocketAddr) -> io::Result<(StdStream, BufReader<StdStream>)> {
    let stream = StdStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let reader = BufReader::new(stream.try_clone()?);
    Ok((stream, reader))
}

/// Reads one response with a `Content-Length` body: whether it was 2xx, and the session cookie
/// it set, if any (`name=value`).
fn read_response(reader: &mut BufReader<StdStream>) -> io::Result<(bool, Option<String>)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let ok = line.split(' ').nth(1).is_some_and(|c| c.starts_with('2'));
    let (mut length, mut cookie) = (0usize, None);
    for _ in 0..200 {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            return Ok((ok, cookie));
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("set-cookie") {
                cookie = value.trim().split(';').next().map(str::to_owned);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(io::Error::other("chunked answers are not expected"));
            }
        }
    }
    Err(io::Error::other("response head too long"))
}

// ---------------------------------------------------------------------------------------------
// Subscribers

/// One subscriber's sequence check.
#[derive(Default, Clone, Copy)]
struct Check {
    events: u64,
    lost: u64,
    duplicates: u64,
    reorders: u64,
    last: Option<u64>,
}

impl Check {
    fn on_seq(&mut self, seq: u64) {
        self.events += 1;
        match self.last {
            None => self.last = Some(seq),
            Some(last) if seq == last + 1 => self.last = Some(seq),
            Some(last) if seq > last => {
                self.lost += seq - last - 1;
                self.last = Some(seq);
            }
            Some(last) if seq == last => self.duplicates += 1,
            Some(_) => self.reorders += 1,
        }
    }
}

struct Sub {
    stream: TcpStream,
    /// When a stalled subscriber is closed by us; `None` for one that reads.
    stall_until: Option<Instant>,
    head_done: bool,
    /// The head, then an incomplete line of the body.
    pending: Vec<u8>,
    check: Check,
    last_event: Instant,
}

/// Totals over every subscriber that read (the ones that kept up).
#[derive(Default)]
struct Totals {
    check: Check,
    /// Reading subscribers closed by us (churn) or still open at the end.
    finished: u64,
    /// Reading subscribers the server closed, or that failed.
    dropped: u64,
    /// Subscribers answered with anything but 200.
    refused: u64,
    /// Reading subscribers that went `SILENT_AFTER` without an event while messages flowed.
    silent: u64,
    /// Subscribers whose connect failed.
    connect_failed: u64,
    opened: u64,
    stalled_opened: u64,
    /// Subscribers open at the end that missed messages at the tail.
    tail_lost: u64,
}

impl Totals {
    fn add(&mut self, check: &Check) {
        self.check.events += check.events;
        self.check.lost += check.lost;
        self.check.duplicates += check.duplicates;
        self.check.reorders += check.reorders;
    }
}

/// A small xorshift generator: which subscriber to churn, how long a stalled one waits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Pool {
    subs: Vec<Option<Sub>>,
    free: Vec<usize>,
    poll: Poll,
    addr: SocketAddr,
    room: String,
    run: u64,
    totals: Totals,
    rng: Rng,
}

impl Pool {
    fn open(&mut self, stalled: bool) {
        let stream = match self.connect() {
            Ok(stream) => stream,
            Err(_) => {
                self.totals.connect_failed += 1;
                return;
            }
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.subs.push(None);
            self.subs.len() - 1
        });
        let mut stream = TcpStream::from_std(stream);
        let now = Instant::now();
        let stall_until = if stalled {
            // 20 s to 3 min: some are closed by us with unread bytes, some by the server
            // after its write timeout.
            self.totals.stalled_opened += 1;
            Some(now + Duration::from_secs(20 + self.rng.below(160)))
        } else {
            self.totals.opened += 1;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(slot), Interest::READABLE)
                .is_err()
            {
                self.totals.connect_failed += 1;
                self.free.push(slot);
                return;
            }
            None
        };
        self.subs[slot] = Some(Sub {
            stream,
            stall_until,
            head_done: false,
            pending: Vec::new(),
            check: Check::default(),
            last_event: now,
        });
    }

    fn connect(&self) -> io::Result<StdStream> {
        let mut stream = StdStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        write!(
            stream,
            "GET /source?room={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.room, self.addr
        )?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }

    /// Closes the subscriber in `slot`; `kept_up` adds its figures to the totals.
    fn close(&mut self, slot: usize, kept_up: bool) {
        let Some(mut sub) = self.subs.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if sub.stall_until.is_none() {
            let _ = self.poll.registry().deregister(&mut sub.stream);
            self.totals.add(&sub.check);
            if kept_up {
                self.totals.finished += 1;
            } else {
                self.totals.dropped += 1;
            }
        }
        self.free.push(slot);
    }

    fn reading(&self) -> impl Iterator<Item = (usize, &Sub)> {
        self.subs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .filter(|(_, s)| s.stall_until.is_none())
    }

    fn count(&self) -> (usize, usize) {
        let open = self.subs.iter().flatten().count();
        let reading = self.reading().count();
        (reading, open - reading)
    }

    /// Closes a random reading subscriber and opens another.
    fn churn_one(&mut self) {
        let reading: Vec<usize> = self.reading().map(|(i, _)| i).collect();
        if !reading.is_empty() {
            let pick = reading[self.rng.below(reading.len() as u64) as usize];
            self.close(pick, true);
        }
        self.open(false);
    }

    /// Replaces the stalled subscribers whose time is up.
    fn expire_stalled(&mut self, now: Instant) {
        let due: Vec<usize> = (0..self.subs.len())
            .filter(|&i| {
                self.subs[i]
                    .as_ref()
                    .and_then(|s| s.stall_until)
                    .is_some_and(|until| until <= now)
            })
            .collect();
        for slot in due {
            self.close(slot, true);
            self.open(true);
        }
    }

    /// Reads everything the subscriber in `slot` has; closes it if the server did.
    fn read(&mut self, slot: usize, scratch: &mut [u8]) {
        let marker = format!("r{}", self.run);
        // Edge-triggered: read until WouldBlock, bounded by a count.
        for _ in 0..10_000 {
            let Some(sub) = self.subs.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            match sub.stream.read(scratch) {
                Ok(0) => return self.close(slot, false),
                Ok(n) => {
                    if !on_bytes(sub, &scratch[..n], &marker) {
                        self.totals.refused += 1;
                        return self.close(slot, false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot, false),
            }
        }
    }
}

/// Handles bytes from a subscriber; false if its answer was not a 200 event stream.
fn on_bytes(sub: &mut Sub, bytes: &[u8], marker: &str) -> bool {
    sub.pending.extend_from_slice(bytes);
    if !sub.head_done {
        let Some(end) = sub.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            return sub.pending.len() < 64 * 1024;
        };
        let head = String::from_utf8_lossy(&sub.pending[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") || head.contains("transfer-encoding") {
            return false;
        }
        sub.head_done = true;
        sub.pending.drain(..end + 4);
    }
    let mut start = 0;
    while let Some(at) = sub.pending[start..].iter().position(|&b| b == b'\n') {
        let line = &sub.pending[start..start + at];
        if line.starts_with(b"data:") {
            if let Some(seq) = parse_seq(line, marker.as_bytes()) {
                sub.check.on_seq(seq);
                sub.last_event = Instant::now();
            }
        }
        start += at + 1;
    }
    sub.pending.drain(..start);
    true
}

/// The `<seq>` of `sq<seq>r<run>` in a data line, if it is this run's.
fn parse_seq(line: &[u8], run_marker: &[u8]) -> Option<u64> {
    let at = line.windows(2).position(|w| w == b"sq")? + 2;
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &line[at + digits..];
    if !rest.starts_with(run_marker) || rest.get(run_marker.len()) != Some(&b'x') {
        return None;
    }
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// The run

/// RSS (kB) and fd samples of the server.
#[derive(Default)]
struct Samples {
    /// (seconds since start, RSS kB)
    rss: Vec<(f64, f64)>,
    /// (seconds since start, anonymous RSS kB): the heap, without the binary's pages.
    anon: Vec<(f64, f64)>,
    fds_min: Option<usize>,
    fds_max: usize,
}

fn run(opts: &Options, addr: SocketAddr, pid: Option<u32>) -> io::Result<bool> {
    let run_id = std::process::id() as u64 * 1000
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_millis() as u64);
    let warmup = opts
        .warmup
        .unwrap_or((opts.duration / 6).min(Duration::from_secs(300)));
    println!(
        "soak: {addr} (pid {}), {} subscribers ({} stalled), churn {}/s, {} publishes/s, {:?}, warm-up {:?}",
        pid.map_or("?".into(), |p| p.to_string()),
        opts.subs,
        opts.stalled,
        opts.churn,
        opts.rate,
        opts.duration,
        warmup
    );
    let mut pool = Pool {
        subs: Vec::with_capacity(opts.subs * 2),
        free: Vec::new(),
        poll: Poll::new()?,
        addr,
        room: format!("soak{}", run_id % 1_000_000_000),
        run: run_id,
        totals: Totals::default(),
        rng: Rng(run_id | 1),
    };
    for i in 0..opts.subs {
        pool.open(i < opts.stalled);
    }
    let (ready, _) = pool.count();
    if ready + opts.stalled < opts.subs {
        eprintln!("soak: only {ready} subscribers connected");
    }

    let published = Arc::new(Published::default());
    let publisher = {
        let (room, shared, rate) = (pool.room.clone(), published.clone(), opts.rate);
        thread::spawn(move || publish_loop(addr, room, run_id, rate, shared))
    };

    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut samples = Samples::default();
    let mut next_sample = start;
    let mut next_report = start + opts.every;
    let mut churned = 0u64;
    let mut last_report = (start, 0u64);
    let mut failed = false;
    println!("    time    rss MB  anon MB   fds  reading stalled  published  events/s  lost dup reord dropped refused silent");
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match pool.poll.poll(&mut events, Some(POLL_SLICE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            pool.read(event.token().0, &mut scratch);
        }
        let now = Instant::now();
        let elapsed = now - start;
        // Churn on schedule: `churn` replacements per second.
        let due = (elapsed.as_secs_f64() * opts.churn) as u64;
        for _ in 0..due.saturating_sub(churned).min(100) {
            pool.churn_one();
        }
        churned = churned.max(due);
        pool.expire_stalled(now);
        // A reading subscriber with no event for a while, while messages flow, is stuck.
        let mut silent = Vec::new();
        for (slot, sub) in pool.reading() {
            if now - sub.last_event > SILENT_AFTER {
                silent.push(slot);
            }
        }
        for slot in silent {
            pool.totals.silent += 1;
            pool.close(slot, false);
            pool.open(false);
        }
        if now >= next_sample {
            next_sample += SAMPLE_EVERY;
            if let Some(pid) = pid {
                if let Some(kb) = status_kb(pid, "VmRSS:") {
                    samples.rss.push((elapsed.as_secs_f64(), kb as f64));
                }
                if let Some(kb) = status_kb(pid, "RssAnon:") {
                    samples.anon.push((elapsed.as_secs_f64(), kb as f64));
                }
                if let Some(fds) = open_fds(pid) {
                    samples.fds_min = Some(samples.fds_min.map_or(fds, |m| m.min(fds)));
                    samples.fds_max = samples.fds_max.max(fds);
                }
            }
        }
        if now >= next_report {
            next_report += opts.every;
            let events_now =
                pool.totals.check.events + pool.reading().map(|(_, s)| s.check.events).sum::<u64>();
            let rate = (events_now - last_report.1) as f64 / (now - last_report.0).as_secs_f64();
            last_report = (now, events_now);
            report_line(&pool, pid, elapsed, published.accepted.load(Relaxed), rate);
        }
    }

    // Stop publishing, then give the open subscribers time to read the last message.
    published.stop.store(true, Relaxed);
    let _ = publisher.join();
    let accepted = published.accepted.load(Relaxed);
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        let behind = pool
            .reading()
            .any(|(_, s)| s.check.last.is_some_and(|l| l + 1 < accepted));
        if !behind {
            break;
        }
        pool.poll.poll(&mut events, Some(POLL_SLICE))?;
        for event in events.iter() {
            pool.read(event.token().0, &mut scratch);
        }
    }
    let elapsed = start.elapsed();
    let open: Vec<usize> = (0..pool.subs.len()).collect();
    for slot in open {
        if let Some(sub) = pool.subs[slot].as_ref() {
            if sub.stall_until.is_none() {
                if let Some(last) = sub.check.last {
                    pool.totals.tail_lost += accepted.saturating_sub(last + 1);
                }
            }
        }
        pool.close(slot, true);
    }

    // Summary.
    let t = &pool.totals;
    let refused_publishes = published.refused.load(Relaxed);
    let reconnects = published.reconnects.load(Relaxed);
    println!("--- summary after {:.0} s", elapsed.as_secs_f64());
    println!(
        "published {accepted} ({:.1}/s; refused {refused_publishes}, publisher reconnects {reconnects}); \
         reading subscribers opened {} (finished {}, dropped by the server {}, refused {}, silent {}, \
         connect failed {}), stalled opened {}",
        accepted as f64 / opts.duration.as_secs_f64(),
        t.opened,
        t.finished,
        t.dropped,
        t.refused,
        t.silent,
        t.connect_failed,
        t.stalled_opened
    );
    println!(
        "deliveries {}, lost {}, duplicates {}, reorders {}, missing at the end {}",
        t.check.events, t.check.lost, t.check.duplicates, t.check.reorders, t.tail_lost
    );
    if t.check.lost + t.check.duplicates + t.check.reorders + t.tail_lost > 0 {
        println!("FAIL: a subscriber that kept up lost, duplicated or reordered messages");
        failed = true;
    }
    if t.dropped + t.refused + t.silent + t.connect_failed > 0 {
        println!("FAIL: reading subscribers were refused, dropped or starved");
        failed = true;
    }
    if refused_publishes + reconnects > 0 {
        println!("FAIL: publishes were refused or their connection failed");
        failed = true;
    }
    if accepted == 0 {
        println!("FAIL: nothing was published");
        failed = true;
    }
    if pid.is_some() {
        println!(
            "server fds: min {} max {} (for {} subscribers + publisher + listener)",
            samples.fds_min.unwrap_or(0),
            samples.fds_max,
            opts.subs
        );
        let after = |series: &[(f64, f64)]| -> Vec<(f64, f64)> {
            series
                .iter()
                .copied()
                .filter(|(t, _)| *t >= warmup.as_secs_f64())
                .collect()
        };
        if let Some(heap) = rss_trend(&after(&samples.anon)) {
            println!(
                "server anonymous RSS (heap): {:.2} MB at warm-up, {:.2} MB at the end, min {:.2} max {:.2} MB",
                heap.first / 1024.0,
                heap.last / 1024.0,
                heap.min / 1024.0,
                heap.max / 1024.0
            );
        }
        // The warm-up's peak: what the server reached with every kind of client it will see
        // (stalled readers' queues included), before the window that is judged.
        let warm_peak = samples
            .rss
            .iter()
            .filter(|(t, _)| *t < warmup.as_secs_f64())
            .map(|s| s.1)
            .fold(0.0, f64::max);
        match rss_trend(&after(&samples.rss)) {
            Some(trend) if warm_peak > 0.0 => {
                let over_peak = (trend.max / warm_peak - 1.0) * 100.0;
                let drift = trend.growth_kb / trend.first.max(1.0) * 100.0;
                println!(
                    "server RSS: peak {:.2} MB in the warm-up ({:.0} s); after it {:.2} MB at first, {:.2} MB at the end, \
                     min {:.2} max {:.2} MB ({:+.1}% over the warm-up peak); least-squares slope {:+.1} kB/min, \
                     {:+.0} kB ({:+.1}%) over the {:.0} s after warm-up",
                    warm_peak / 1024.0,
                    warmup.as_secs_f64(),
                    trend.first / 1024.0,
                    trend.last / 1024.0,
                    trend.min / 1024.0,
                    trend.max / 1024.0,
                    over_peak,
                    trend.slope_kb_s * 60.0,
                    trend.growth_kb,
                    drift,
                    trend.window_s
                );
                if over_peak > opts.max_growth {
                    println!(
                        "FAIL: RSS rose more than {}% above its warm-up peak",
                        opts.max_growth
                    );
                    failed = true;
                }
                if drift.abs() > opts.max_growth {
                    println!(
                        "FAIL: RSS's least-squares line moved more than {}% after warm-up",
                        opts.max_growth
                    );
                    failed = true;
                }
            }
            _ => {
                println!("FAIL: too few RSS samples in or after the warm-up");
                failed = true;
            }
        }
    }
    println!("{}", if failed { "soak: FAILED" } else { "soak: ok" });
    Ok(!failed)
}

fn report_line(pool: &Pool, pid: Option<u32>, elapsed: Duration, published: u64, rate: f64) {
    let mut check = pool.totals.check;
    for (_, sub) in pool.reading() {
        check.lost += sub.check.lost;
        check.duplicates += sub.check.duplicates;
        check.reorders += sub.check.reorders;
    }
    let (reading, stalled) = pool.count();
    let secs = elapsed.as_secs();
    println!(
        "{:>5}:{:02} {:>9.2} {:>8.2} {:>5} {:>8} {:>7} {:>10} {:>9.0} {:>5} {:>3} {:>5} {:>7} {:>7} {:>6}",
        secs / 60,
        secs % 60,
        pid.and_then(|p| status_kb(p, "VmRSS:")).unwrap_or(0) as f64 / 1024.0,
        pid.and_then(|p| status_kb(p, "RssAnon:")).unwrap_or(0) as f64 / 1024.0,
        pid.and_then(open_fds).unwrap_or(0),
        reading,
        stalled,
        published,
        rate,
        check.lost,
        check.duplicates,
        check.reorders,
        pool.totals.dropped,
        pool.totals.refused,
        pool.totals.silent
    );
}

struct Trend {
    first: f64,
    last: f64,
    min: f64,
    max: f64,
    slope_kb_s: f64,
    /// How far the least-squares line moves over the window, in kB.
    growth_kb: f64,
    window_s: f64,
}

fn rss_trend(samples: &[(f64, f64)]) -> Option<Trend> {
    if samples.len() < 5 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|s| (s.0 - mean_t) * (s.1 - mean_r))
        .sum();
    let var: f64 = samples.iter().map(|s| (s.0 - mean_t).powi(2)).sum();
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    let (t0, t1) = (samples[0].0, samples[samples.len() - 1].0);
    Some(Trend {
        first: samples[0].1,
        last: samples[samples.len() - 1].1,
        min: samples.iter().map(|s| s.1).fold(f64::MAX, f64::min),
        max: samples.iter().map(|s| s.1).fold(0.0, f64::max),
        slope_kb_s: slope,
        growth_kb: slope * (t1 - t0),
        window_s: t1 - t0,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc

/// A `kB` field of /proc/PID/status, e.g. `VmRSS:`.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// How many file descriptors the process has open.
fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
