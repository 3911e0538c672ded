//! `cargo run --release --example loadgen -- --addr 127.0.0.1:4500 --subs 1000 --messages 1000 --rate 200`
//!
//! A load generator for SSE pub/sub servers: house's chat (or `bench_server`) example, the axum
//! reference and nginx+nchan all speak the same shape. It opens `--subs` SSE subscribers
//! (`GET /source?room=R`) spread over `--rooms` rooms, then publishes `--messages` messages at
//! `--rate` per second (0 = flat out) through one keep-alive publisher connection, and reports
//! what arrived: deliveries/s, loss, duplicates, out-of-order, latency percentiles, and the
//! server's CPU time and memory read from `/proc/PID` when `--server-pid` is given.
//!
//! `--gzip` makes subscribers send `Accept-Encoding: gzip` and decode the streams that come
//! back with `Content-Encoding: gzip` (house's `Config::with_compression`); every run reports
//! the bytes the subscribers read off their sockets (`wire_bytes`, and per delivery).
//!
//! `--idle` instead only connects the subscribers and reports the server's RSS growth per
//! connection; `--conn-rss` reports the same growth in a publishing run, sampled once every
//! subscriber has its response head and before the first publish. `--precise-cpu` reads CPU
//! times in ns from the scheduler instead of in 10 ms clock ticks, for short runs.
//!
//! One client address reaches only ~28,000 ports of one server port (the kernel's
//! `net.ipv4.ip_local_port_range`), so past that `--sources N` binds each subscriber's socket to
//! one of N loopback source addresses (127.0.0.2, 127.0.0.3, ...) in turn before connecting, or
//! `--source-addrs A,B,...` to the addresses given. Each subscriber is one open file: when
//! `--subs` needs more than the soft `RLIMIT_NOFILE`, the loadgen raises its own limit with
//! `prlimit --pid` (the hard limit too, given CAP_SYS_RESOURCE), or says how to run it.
//!
//! The last line of output is one JSON object with every figure, for `examples/compare.rs`.
//!
//! Every message carries `ms<seq>t<ns>n<run>`: its sequence number, the send time in ns since the
//! loadgen's start (one process, so one clock), and a per-run nonce so a stray message from an
//! earlier run is counted as foreign, not as a delivery. Rooms are named per run for the same
//! reason (nchan keeps recent messages per channel). Loopback only; every loop is bounded by a
//! count or by the `--timeout` deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use memchr::{memchr, memchr_iter, memmem};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const USAGE: &str =
    "loadgen --addr HOST:PORT [--subs N] [--rooms M] [--messages K] [--rate R (0 = flat out)]
        [--publish get|post|TEMPLATE] [--subscribe PATH] [--server-pid PID] [--readers T]
        [--inflight D] [--idle] [--timeout SECS] [--drain SECS] [--label TEXT]
        [--sub-addrs HOST:PORT,HOST:PORT,...] [--settle-us U]
        [--sources N | --source-addrs IP,IP,...] [--conn-rss] [--precise-cpu] [--gzip]
  --settle-us U   after a poll that found few sockets ready, a reader waits U µs (default
                  200) so that the next poll finds more sockets with more bytes each: fewer
                  wake-ups, reads and ACKs per delivery; latencies read up to U µs late
  --sub-addrs     spread subscribers round-robin over these servers (several nodes behind one
                  Redis); publishing still goes to --addr
  --sources N     bind subscribers round-robin to N loopback source addresses 127.0.0.2,
                  127.0.0.3, ... (one address reaches ~28,000 ports of one server port)
  --source-addrs  the same with the addresses given
  --conn-rss      also report the server's RSS growth per subscriber (before publishing)
  --gzip          subscribers send Accept-Encoding: gzip and decode gzip streams
  --precise-cpu   CPU times from /proc/PID/task/*/schedstat (ns), not utime + stime (10 ms
                  ticks): for short runs
  --publish get   GET /send-message?room={room}&name=lg&message={msg}   (house, axum)
  --publish post  POST /pub?room={room} with the message as the body    (nginx+nchan)
  a TEMPLATE is 'METHOD PATH' with {room} and {msg} placeholders; POST sends {msg} as the body";

/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// How long readers block in `poll` before looking at the stop flag again.
const POLL_SLICE: Duration = Duration::from_millis(20);

/// A poll batch with fewer ready sockets than this makes the reader wait `--settle-us`.
const SETTLE_BELOW: usize = 64;

/// How often the monitor samples the server's RSS.
const RSS_SAMPLE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct Options {
    addr: SocketAddr,
    /// Where subscribers connect, round-robin (default: `addr`).
    sub_addrs: Vec<SocketAddr>,
    subs: usize,
    rooms: usize,
    messages: u64,
    rate: f64,
    publish: Publish,
    subscribe: String,
    server_pid: Option<u32>,
    readers: usize,
    inflight: usize,
    idle: bool,
    timeout: Duration,
    drain: Duration,
    label: String,
    settle: Duration,
    /// Local addresses subscribers bind to, round-robin (empty: the kernel picks).
    sources: Vec<IpAddr>,
    conn_rss: bool,
    gzip: bool,
    precise_cpu: bool,
}

/// How messages are published: a request line template, and whether the message is the body.
#[derive(Debug, Clone)]
struct Publish {
    method: String,
    path: String,
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        addr: "127.0.0.1:4500".parse().map_err(|_| "addr")?,
        sub_addrs: Vec::new(),
        subs: 1000,
        rooms: 1,
        messages: 1000,
        rate: 200.0,
        publish: publish_shape("get")?,
        subscribe: "/source?room={room}".into(),
        server_pid: None,
        readers: 2,
        inflight: 1,
        idle: false,
        timeout: Duration::from_secs(180),
        drain: Duration::from_secs(5),
        label: String::new(),
        settle: Duration::from_micros(200),
        sources: Vec::new(),
        conn_rss: false,
        precise_cpu: false,
        gzip: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        let flag = match arg {
            lexopt::Arg::Long("idle") => {
                opts.idle = true;
                continue;
            }
            lexopt::Arg::Long("conn-rss") => {
                opts.conn_rss = true;
                continue;
            }
            lexopt::Arg::Long("precise-cpu") => {
                opts.precise_cpu = true;
                continue;
            }
            lexopt::Arg::Long("gzip") => {
                opts.gzip = true;
                continue;
            }
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Err(String::new()),
            lexopt::Arg::Long(name) => format!("--{name}"),
            _ => return Err(arg.unexpected().to_string()),
        };
        let value = parser
            .value()
            .map_err(|_| format!("{flag} needs a value"))?
            .into_string()
            .map_err(|value| format!("{flag}: not UTF-8: {value:?}"))?;
        let value = &value;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--addr" => opts.addr = value.parse().map_err(|_| format!("bad address {value}"))?,
            "--sub-addrs" => {
                opts.sub_addrs = value
                    .split(',')
                    .map(|a| a.parse().map_err(|_| format!("bad address {a}")))
                    .collect::<Result<_, _>>()?
            }
            "--subs" => opts.subs = value.parse().map_err(bad)?,
            "--rooms" => opts.rooms = value.parse().map_err(bad)?,
            "--messages" => opts.messages = value.parse().map_err(bad)?,
            "--rate" => opts.rate = value.parse().map_err(|_| format!("bad rate {value}"))?,
            "--publish" => opts.publish = publish_shape(value)?,
            "--subscribe" => opts.subscribe = value.clone(),
            "--server-pid" => opts.server_pid = Some(value.parse().map_err(bad)?),
            "--readers" => opts.readers = value.parse().map_err(bad)?,
            "--inflight" => opts.inflight = value.parse().map_err(bad)?,
            "--timeout" => opts.timeout = Duration::from_secs(value.parse().map_err(bad)?),
            "--drain" => opts.drain = Duration::from_secs(value.parse().map_err(bad)?),
            "--label" => opts.label = value.clone(),
            "--settle-us" => opts.settle = Duration::from_micros(value.parse().map_err(bad)?),
            "--sources" => {
                let count: u8 = value.parse().map_err(bad)?;
                if !(1..=253).contains(&count) {
                    return Err(format!("--sources takes 1 to 253, got {count}"));
                }
                // 127.0.0.2 onwards: 127.0.0.1 stays the publisher's (and everyone else's).
                opts.sources = (0..count)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                    .collect();
            }
            "--source-addrs" => {
                opts.sources = value
                    .split(',')
                    .map(|a| a.parse().map_err(|_| format!("bad source address {a}")))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if opts.rooms == 0 || opts.readers == 0 || opts.inflight == 0 {
        return Err("--rooms, --readers and --inflight must be at least 1".into());
    }
    opts.readers = opts.readers.min(opts.subs.max(1));
    Ok(opts)
}

fn publish_shape(spec: &str) -> Result<Publish, String> {
    let spec = match spec {
        "get" => "GET /send-message?room={room}&name=lg&message={msg}",
        "post" => "POST /pub?room={room}",
        other => other,
    };
    let (method, path) = spec
        .split_once(' ')
        .ok_or_else(|| format!("publish template must be 'METHOD PATH', got {spec}"))?;
    Ok(Publish {
        method: method.to_owned(),
        path: path.to_owned(),
    })
}

fn main() {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(err) => {
            if !err.is_empty() {
                eprintln!("loadgen: {err}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(report) => {
            print!("{}", report.table());
            println!("{}", report.json);
        }
        Err(err) => {
            eprintln!("loadgen: {err}");
            println!(
                "{}",
                serde_json::json!({ "label": opts.label, "error": err.to_string() })
            );
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct Report {
    json: serde_json::Value,
}

impl Report {
    /// The human-readable summary: the headline figures in a fixed order.
    fn table(&self) -> String {
        const ROWS: &[(&str, &str)] = &[
            ("label", ""),
            ("workload", ""),
            ("subs", ""),
            ("subscribed", ""),
            ("rooms", ""),
            ("messages", ""),
            ("rate", "msg/s (0 = flat out)"),
            ("inflight", "publish requests outstanding at once"),
            ("timed_out", "the run hit --timeout: losses may be cut-offs"),
            ("subscribed_s", "s to connect and subscribe all"),
            ("expected", "deliveries"),
            ("delivered", "unique deliveries"),
            ("lost", ""),
            ("duplicates", ""),
            ("out_of_order", ""),
            ("foreign", "messages from another run"),
            ("dropped_subs", "subscribers refused or closed"),
            ("publish_errors", "non-2xx publish answers"),
            ("window_s", "s from first publish to last delivery"),
            ("deliveries_per_s", ""),
            ("gzip", "subscribers asked for gzip"),
            ("wire_bytes", "bytes read by subscribers"),
            ("wire_bytes_per_delivery", "bytes"),
            ("lat_p50_ms", "ms"),
            ("lat_p99_ms", "ms"),
            ("lat_max_ms", "ms"),
            ("server_cpu_s", "s (utime + stime)"),
            ("server_cpu_us_per_delivery", "us"),
            ("server_rss_peak_kb", "KiB (sampled VmRSS)"),
            ("server_hwm_kb", "KiB (VmHWM)"),
            ("loadgen_cpu_s", "s"),
            ("loadgen_cpu_us_per_delivery", "us"),
            ("rss_before_kb", "KiB"),
            ("rss_after_kb", "KiB"),
            ("rss_subscribed_kb", "KiB (before publishing)"),
            ("rss_per_conn_bytes", "bytes"),
        ];
        let mut out = String::new();
        for (key, unit) in ROWS {
            if let Some(value) = self.json.get(key) {
                out.push_str(&format!("{key:>28}  {value} {unit}\n"));
            }
        }
        out
    }
}

/// Where subscribers connect from: the kernel's choice, or `--sources` round-robin, each with
/// its own next port.
struct Binder {
    sources: Vec<IpAddr>,
    /// The next port to try on each source address.
    next: Vec<u16>,
    /// `net.ipv4.ip_local_port_range`.
    ports: (u16, u16),
}

impl Binder {
    fn new(sources: &[IpAddr]) -> Binder {
        let ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|range| {
                let mut bounds = range.split_whitespace().map(|p| p.parse::<u16>().ok());
                Some((bounds.next()??, bounds.next()??))
            })
            .filter(|(low, high)| low <= high)
            .unwrap_or((32768, 60999));
        Binder {
            sources: sources.to_vec(),
            next: vec![ports.0; sources.len()],
            ports,
        }
    }

    /// Connects subscriber `i` to `addr`.
    ///
    /// With source addresses, the port is picked here, counting up through the local port
    /// range and skipping ports still taken (say, in TIME_WAIT from an earlier run): a
    /// `bind` to port 0 lets the kernel search for a free port, and that search, which
    /// prefers odd ports, slows with every port taken: 19,900 subscribers from one address
    /// cost the loadgen 10.3 s of system time and took 11.2 s to connect that way, 0.4 s and
    /// 1.2 s this way.
    fn connect(&mut self, i: usize, addr: SocketAddr) -> io::Result<StdStream> {
        if self.sources.is_empty() {
            return StdStream::connect(addr);
        }
        let k = i % self.sources.len();
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        let (low, high) = self.ports;
        let mut bound = false;
        while self.next[k] <= high && self.next[k] >= low {
            let port = self.next[k];
            // Past the top, `next` wraps to 0, below `low`, and the loop ends.
            self.next[k] = port.wrapping_add(1);
            match socket.bind(&SockAddr::from(SocketAddr::new(self.sources[k], port))) {
                Ok(()) => {
                    bound = true;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::AddrInUse => continue,
                Err(err) => return Err(err),
            }
        }
        if !bound {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "no free port left in {low}..={high} on {}: use more --sources",
                    self.sources[k]
                ),
            ));
        }
        // Blocking, as `TcpStream::connect` is: loopback answers at once unless the server's
        // accept queue is full, and then waiting is what a client would do.
        socket.connect(&SockAddr::from(addr))?;
        Ok(socket.into())
    }
}

/// Open files the run needs besides one per subscriber: std streams, the publisher, the
/// readers' epoll instances, /proc reads (about 10), with room to spare.
const FD_MARGIN: u64 = 16;

/// Makes the soft open-file limit cover `subs` subscribers: raised with `prlimit --pid` on this
/// very process (no `unsafe` `setrlimit` here), the hard limit too if need be, which only
/// root may do. An error says what to run instead.
fn ensure_fd_limit(subs: usize) -> io::Result<()> {
    let need = subs as u64 + FD_MARGIN;
    let (soft, hard) = fd_limits().unwrap_or((0, 0));
    if soft >= need {
        return Ok(());
    }
    let pid = std::process::id().to_string();
    let limit = format!("--nofile={need}:{}", hard.max(need));
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &limit])
        .status()
        .is_ok_and(|s| s.success());
    match fd_limits() {
        Some((soft, _)) if raised && soft >= need => Ok(()),
        _ => Err(io::Error::other(format!(
            "{subs} subscribers need {need} open files, the limit is {soft} (hard {hard}) \
             and `prlimit` could not raise it; run under `prlimit --nofile={need}` or \
             `ulimit -n {need}` (past the hard limit only with CAP_SYS_RESOURCE)"
        ))),
    }
}

/// This process's (soft, hard) open-file limits, from /proc/self/limits.
fn fd_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3);
    let mut next = || -> Option<u64> {
        match fields.next()? {
            "unlimited" => Some(u64::MAX),
            n => n.parse().ok(),
        }
    };
    Some((next()?, next()?))
}

fn run(opts: &Options) -> io::Result<Report> {
    ensure_fd_limit(opts.subs)?;
    let epoch = Instant::now();
    let deadline = epoch + opts.timeout;
    // Short enough that "<nonce>x<room>" fits the chat example's 16-character room limit.
    let nonce =
        ((u64::from(std::process::id()) * 1_000_003) ^ epoch_nanos_since_unix()) % 2_000_000_000;
    let room_names: Vec<String> = (0..opts.rooms).map(|r| format!("{nonce}x{r}")).collect();
    let tick = clock_ticks();
    let server = opts.server_pid;
    let rss_before = server.and_then(|pid| status_kb(pid, "VmRSS:"));

    // Connect every subscriber (blocking connect; the request is written at once, so the server
    // answers while we connect the rest), then hand them to the reader threads.
    let mut binder = Binder::new(&opts.sources);
    let connect_start = Instant::now();
    let mut groups: Vec<Vec<Sub>> = (0..opts.readers).map(|_| Vec::new()).collect();
    for i in 0..opts.subs {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connecting took past --timeout",
            ));
        }
        let room = i % opts.rooms;
        let path = opts.subscribe.replace("{room}", &room_names[room]);
        let addr = if opts.sub_addrs.is_empty() {
            opts.addr
        } else {
            opts.sub_addrs[i % opts.sub_addrs.len()]
        };
        let mut stream = binder
            .connect(i, addr)
            .map_err(|e| io::Error::new(e.kind(), format!("subscriber {i}: connect: {e}")))?;
        let encoding = if opts.gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        stream.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{encoding}\r\n"
            )
            .as_bytes(),
        )?;
        stream.set_nonblocking(true)?;
        groups[i % opts.readers].push(Sub::new(TcpStream::from_std(stream), opts.messages));
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();

    let shared = Arc::new(Shared::default());
    let mut readers = Vec::new();
    for group in groups {
        let shared = shared.clone();
        let settle = opts.settle;
        readers.push(thread::spawn(move || {
            read_loop(group, shared, epoch, deadline, nonce, settle)
        }));
    }

    // Every subscriber must have its response head before the first publish, or it would miss
    // messages through no fault of the server.
    while shared.ready.load(Relaxed) + shared.failed.load(Relaxed) < opts.subs {
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let ready = shared.ready.load(Relaxed);
    let subscribed_secs = connect_start.elapsed().as_secs_f64();

    let mut json = serde_json::json!({
        "label": opts.label,
        "addr": opts.addr.to_string(),
        "subs": opts.subs,
        "rooms": opts.rooms,
        "subscribed": ready,
        "connect_s": round(connect_secs, 3),
        "subscribed_s": round(subscribed_secs, 3),
    });

    if opts.idle {
        // Let the server finish whatever it does after answering (allocations settle quickly;
        // the second sample guards against catching it mid-way).
        thread::sleep(Duration::from_millis(500));
        let after = server.and_then(|pid| status_kb(pid, "VmRSS:"));
        thread::sleep(Duration::from_millis(500));
        let after2 = server.and_then(|pid| status_kb(pid, "VmRSS:"));
        let after = after.max(after2);
        shared.stop.store(true, Relaxed);
        let _ = join_all(readers);
        let obj = json.as_object_mut().expect("json object");
        obj.insert("workload".into(), "idle".into());
        if let (Some(before), Some(after)) = (rss_before, after) {
            let per_conn = (after.saturating_sub(before) * 1024) as f64 / ready.max(1) as f64;
            obj.insert("rss_before_kb".into(), before.into());
            obj.insert("rss_after_kb".into(), after.into());
            obj.insert("rss_per_conn_bytes".into(), round(per_conn, 0).into());
        }
        return Ok(Report { json });
    }

    if opts.conn_rss {
        // As in --idle: let the server settle, and take the larger of two samples.
        thread::sleep(Duration::from_millis(500));
        let after = server.and_then(|pid| status_kb(pid, "VmRSS:"));
        thread::sleep(Duration::from_millis(500));
        let after = after.max(server.and_then(|pid| status_kb(pid, "VmRSS:")));
        if let (Some(before), Some(after), Some(obj)) = (rss_before, after, json.as_object_mut()) {
            let per_conn = (after.saturating_sub(before) * 1024) as f64 / ready.max(1) as f64;
            obj.insert("rss_before_kb".into(), before.into());
            obj.insert("rss_subscribed_kb".into(), after.into());
            obj.insert("rss_per_conn_bytes".into(), round(per_conn, 0).into());
        }
    }

    // Expected deliveries: message i goes to room i % rooms, which has subs_in_room subscribers.
    let mut subs_in_room = vec![0u64; opts.rooms];
    for i in 0..opts.subs {
        subs_in_room[i % opts.rooms] += 1;
    }
    let expected: u64 = (0..opts.messages)
        .map(|i| subs_in_room[(i % opts.rooms as u64) as usize])
        .sum();

    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = server.map(|pid| {
        let stop = monitor_stop.clone();
        thread::spawn(move || sample_rss(pid, stop, deadline))
    });
    // CPU seconds of a process, from clock ticks (10 ms) or, with --precise-cpu, from the
    // scheduler's ns counts: 5 broadcasts to 1,000 subscribers take about 3 ticks.
    let cpu_secs = |pid: u32| -> Option<f64> {
        if opts.precise_cpu {
            schedstat_secs(pid)
        } else {
            cpu_ticks(pid).map(|t| t as f64 / tick)
        }
    };
    let cpu_digits = if opts.precise_cpu { 4 } else { 2 };
    let cpu_before = server.and_then(cpu_secs);
    let self_before = cpu_secs(std::process::id());
    let publish_start = Instant::now();
    let published = publish(opts, &room_names, epoch, deadline, nonce);
    let publish_secs = publish_start.elapsed().as_secs_f64();

    // Wait for the deliveries: until all arrived, or nothing new came for --drain, or the deadline.
    let mut last_count = shared.delivered.load(Relaxed);
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        let count = shared.delivered.load(Relaxed);
        if count >= expected || now >= deadline || shared.failed.load(Relaxed) >= opts.subs {
            break;
        }
        if count != last_count {
            last_count = count;
            last_progress = now;
        } else if now - last_progress >= opts.drain {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    let timed_out = Instant::now() >= deadline;
    let cpu_after = server.and_then(cpu_secs);
    let self_after = cpu_secs(std::process::id());
    shared.stop.store(true, Relaxed);
    monitor_stop.store(true, Relaxed);
    let stats = join_all(readers);
    let rss_peak = monitor.and_then(|m| m.join().ok()).flatten();

    let mut latencies = stats.latencies_us;
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let at = ((latencies.len() - 1) as f64 * p).round() as usize;
        f64::from(latencies[at]) / 1000.0
    };
    let last_ns = shared.last_delivery_ns.load(Relaxed);
    let first_publish_ns = publish_start.duration_since(epoch).as_nanos() as u64;
    let window = last_ns.saturating_sub(first_publish_ns) as f64 / 1e9;
    let unique = stats.unique;
    let per_s = if window > 0.0 {
        unique as f64 / window
    } else {
        0.0
    };
    let obj = json.as_object_mut().expect("json object");
    let (published, publish_errors) = match published {
        Ok(counts) => counts,
        Err(err) => {
            obj.insert("publish_error".into(), err.to_string().into());
            (0, 0)
        }
    };
    obj.insert("workload".into(), "fanout".into());
    obj.insert("messages".into(), opts.messages.into());
    obj.insert("rate".into(), opts.rate.into());
    obj.insert("inflight".into(), opts.inflight.into());
    obj.insert("settle_us".into(), (opts.settle.as_micros() as u64).into());
    obj.insert("timed_out".into(), timed_out.into());
    obj.insert("published".into(), published.into());
    obj.insert("publish_errors".into(), publish_errors.into());
    obj.insert("publish_s".into(), round(publish_secs, 3).into());
    obj.insert("expected".into(), expected.into());
    obj.insert("delivered".into(), unique.into());
    obj.insert("gzip".into(), opts.gzip.into());
    obj.insert("wire_bytes".into(), stats.wire_bytes.into());
    if unique > 0 {
        let per = stats.wire_bytes as f64 / unique as f64;
        obj.insert("wire_bytes_per_delivery".into(), round(per, 1).into());
    }
    obj.insert("lost".into(), expected.saturating_sub(unique).into());
    obj.insert("duplicates".into(), stats.duplicates.into());
    obj.insert("out_of_order".into(), stats.out_of_order.into());
    obj.insert("foreign".into(), stats.foreign.into());
    obj.insert("dropped_subs".into(), shared.failed.load(Relaxed).into());
    obj.insert("window_s".into(), round(window, 3).into());
    obj.insert("deliveries_per_s".into(), round(per_s, 0).into());
    obj.insert("lat_p50_ms".into(), round(pct(0.50), 3).into());
    obj.insert("lat_p99_ms".into(), round(pct(0.99), 3).into());
    obj.insert("lat_max_ms".into(), round(pct(1.0), 3).into());
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        let secs = b - a;
        obj.insert("server_cpu_s".into(), round(secs, cpu_digits).into());
        if unique > 0 {
            let us = secs * 1e6 / unique as f64;
            obj.insert("server_cpu_us_per_delivery".into(), round(us, 3).into());
        }
    }
    if let (Some(a), Some(b)) = (self_before, self_after) {
        let secs = b - a;
        obj.insert("loadgen_cpu_s".into(), round(secs, cpu_digits).into());
        if unique > 0 {
            // Beside the server's: a load generator dearer per delivery caps what it can show.
            let us = secs * 1e6 / unique as f64;
            obj.insert("loadgen_cpu_us_per_delivery".into(), round(us, 3).into());
        }
    }
    if let Some(peak) = rss_peak {
        obj.insert("server_rss_peak_kb".into(), peak.into());
    }
    if let Some(hwm) = server.and_then(|pid| status_kb(pid, "VmHWM:")) {
        obj.insert("server_hwm_kb".into(), hwm.into());
    }
    Ok(Report { json })
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn epoch_nanos_since_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------------
// Publisher

/// Publishes every message; returns (accepted, rejected) counts.
fn publish(
    opts: &Options,
    rooms: &[String],
    epoch: Instant,
    deadline: Instant,
    nonce: u64,
) -> io::Result<(u64, u64)> {
    let stream = StdStream::connect(opts.addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let start = Instant::now();
    let (mut sent, mut answered, mut rejected) = (0u64, 0u64, 0u64);
    let mut request = Vec::with_capacity(512);
    while answered < opts.messages {
        if Instant::now() >= deadline {
            break;
        }
        // Keep up to --inflight requests outstanding.
        if sent < opts.messages && sent - answered < opts.inflight as u64 {
            if opts.rate > 0.0 {
                let due = start + Duration::from_secs_f64(sent as f64 / opts.rate);
                let now = Instant::now();
                if due > now {
                    if sent == answered {
                        thread::sleep(due - now);
                    } else {
                        // Something is in flight: collect its answer while we wait.
                        rejected += read_response(&mut reader)?;
                        answered += 1;
                        continue;
                    }
                }
            }
            let room = &rooms[(sent % rooms.len() as u64) as usize];
            let ts = epoch.elapsed().as_nanos() as u64;
            let msg = format!("ms{sent}t{ts}n{nonce}");
            request.clear();
            let path = opts
                .publish
                .path
                .replace("{room}", room)
                .replace("{msg}", &msg);
            if opts.publish.method.eq_ignore_ascii_case("POST") {
                write!(
                    request,
                    "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{msg}",
                    opts.addr,
                    msg.len()
                )?;
            } else {
                write!(
                    request,
                    "{} {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
                    opts.publish.method, opts.addr
                )?;
            }
            writer.write_all(&request)?;
            sent += 1;
            continue;
        }
        rejected += read_response(&mut reader)?;
        answered += 1;
    }
    Ok((answered - rejected, rejected))
}

/// Reads one HTTP response; returns 1 if it was not a 2xx, else 0.
fn read_response(reader: &mut BufReader<StdStream>) -> io::Result<u64> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "publisher connection closed",
        ));
    }
    let ok = line
        .split(' ')
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    let (mut length, mut chunked) = (0usize, false);
    for _ in 0..200 {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "publisher head cut short",
            ));
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    if chunked {
        for _ in 0..100_000 {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                line.clear();
                reader.read_line(&mut line)?;
                break;
            }
            let mut skip = vec![0; size + 2];
            reader.read_exact(&mut skip)?;
        }
    } else {
        let mut skip = vec![0; length];
        reader.read_exact(&mut skip)?;
    }
    Ok(u64::from(!ok))
}

// ---------------------------------------------------------------------------------------------
// Subscribers

#[derive(Default)]
struct Shared {
    /// Subscribers whose response head arrived (status 200).
    ready: AtomicUsize,
    /// Subscribers refused or closed by the server.
    failed: AtomicUsize,
    /// Unique deliveries so far.
    delivered: AtomicU64,
    /// When the latest delivery arrived, in ns since the epoch.
    last_delivery_ns: AtomicU64,
    stop: AtomicBool,
}

#[derive(Default)]
struct Stats {
    unique: u64,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
    latencies_us: Vec<u32>,
    /// Bytes read off the subscribers' sockets, heads included.
    wire_bytes: u64,
}

enum Phase {
    Head,
    Body,
    Done,
}

/// Transfer-Encoding: chunked decoding state (axum's and nchan's SSE bodies are chunked).
enum Chunk {
    /// Reading the hex size line.
    Size(usize),
    /// Skipping a `;extension` after the size.
    Extension(usize),
    /// This many data bytes remain in the chunk.
    Data(usize),
    /// Skipping the CRLF after the data.
    DataEnd,
    /// The last chunk came: the stream is over.
    Trailer,
}

struct Sub {
    stream: TcpStream,
    phase: Phase,
    chunk: Option<Chunk>,
    /// Bytes not yet consumed: the head, then an incomplete line of the body.
    pending: Vec<u8>,
    /// Set when the stream's head says `Content-Encoding: gzip`.
    gzip: Option<Box<Gunzip>>,
    /// Which sequence numbers arrived (bit per message).
    seen: Vec<u64>,
    last_seq: Option<u64>,
}

impl Sub {
    fn new(stream: TcpStream, messages: u64) -> Sub {
        Sub {
            stream,
            phase: Phase::Head,
            chunk: None,
            gzip: None,
            pending: Vec::new(),
            seen: vec![0; messages.div_ceil(64) as usize],
            last_seq: None,
        }
    }
}

fn read_loop(
    mut subs: Vec<Sub>,
    shared: Arc<Shared>,
    epoch: Instant,
    deadline: Instant,
    nonce: u64,
    settle: Duration,
) -> Stats {
    let mut stats = Stats::default();
    let Ok(mut poll) = Poll::new() else {
        shared.failed.fetch_add(subs.len(), Relaxed);
        return stats;
    };
    for (i, sub) in subs.iter_mut().enumerate() {
        if poll
            .registry()
            .register(&mut sub.stream, Token(i), Interest::READABLE)
            .is_err()
        {
            sub.phase = Phase::Done;
            shared.failed.fetch_add(1, Relaxed);
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut body = Vec::with_capacity(READ_CHUNK);
    while !shared.stop.load(Relaxed) && Instant::now() < deadline {
        if let Err(err) = poll.poll(&mut events, Some(POLL_SLICE)) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        // One clock read and one shared-counter update per poll batch, not per read: the
        // batch is handled in microseconds, far below the latencies measured.
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let before = stats.unique;
        for event in events.iter() {
            let Some(sub) = subs.get_mut(event.token().0) else {
                continue;
            };
            // Edge-triggered: read until WouldBlock. Bounded: a socket yields at most what the
            // server wrote, and the outer loop is bounded by the deadline.
            for _ in 0..1_000_000 {
                if matches!(sub.phase, Phase::Done) {
                    break;
                }
                match sub.stream.read(&mut scratch) {
                    Ok(0) => {
                        sub.phase = Phase::Done;
                        shared.failed.fetch_add(1, Relaxed);
                    }
                    Ok(n) => {
                        stats.wire_bytes += n as u64;
                        on_bytes(
                            sub,
                            &scratch[..n],
                            &mut body,
                            now_ns,
                            nonce,
                            &shared,
                            &mut stats,
                        );
                        // A short read emptied the socket; edge-triggered epoll reports the
                        // next arrival, so the `read` that would say WouldBlock is saved.
                        if n < scratch.len() {
                            break;
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        sub.phase = Phase::Done;
                        shared.failed.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if stats.unique != before {
            shared.delivered.fetch_add(stats.unique - before, Relaxed);
            shared.last_delivery_ns.fetch_max(now_ns, Relaxed);
        }
        // Few sockets were ready: let more bytes gather before polling again. A full batch
        // means the reader is behind already, and waiting would only slow it.
        let ready = events.iter().count();
        if !settle.is_zero() && ready > 0 && ready < SETTLE_BELOW {
            thread::sleep(settle);
        }
    }
    stats
}

fn on_bytes(
    sub: &mut Sub,
    bytes: &[u8],
    body: &mut Vec<u8>,
    now_ns: u64,
    nonce: u64,
    shared: &Shared,
    stats: &mut Stats,
) {
    if let Phase::Head = sub.phase {
        sub.pending.extend_from_slice(bytes);
        let Some(end) = memmem::find(&sub.pending, b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(&sub.pending[..end]).to_ascii_lowercase();
        let ok = head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200");
        if !ok {
            sub.phase = Phase::Done;
            shared.failed.fetch_add(1, Relaxed);
            return;
        }
        if head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"))
        {
            sub.chunk = Some(Chunk::Size(0));
        }
        if head
            .lines()
            .any(|l| l.starts_with("content-encoding:") && l.contains("gzip"))
        {
            sub.gzip = Some(Box::default());
        }
        sub.phase = Phase::Body;
        shared.ready.fetch_add(1, Relaxed);
        let rest = sub.pending.split_off(end + 4);
        sub.pending.clear();
        on_body(sub, &rest, body, now_ns, nonce, stats);
        return;
    }
    if let Phase::Body = sub.phase {
        on_body(sub, bytes, body, now_ns, nonce, stats);
    }
}

/// Strips chunk framing if any, then splits the SSE body into lines and handles `data:` lines.
/// Lines are found with `memchr` in the bytes as read; only a line cut by the end of a read is
/// copied (into `pending`), so the common case copies nothing.
fn on_body(
    sub: &mut Sub,
    bytes: &[u8],
    body: &mut Vec<u8>,
    now_ns: u64,
    nonce: u64,
    stats: &mut Stats,
) {
    let mut data = bytes;
    if let Some(state) = &mut sub.chunk {
        body.clear();
        dechunk(state, bytes, body);
        data = body;
    }
    if let Some(gzip) = &mut sub.gzip {
        let mut text = std::mem::take(&mut gzip.text);
        text.clear();
        gzip.inflate(data, &mut text);
        on_text(sub, &text, now_ns, nonce, stats);
        if let Some(gzip) = &mut sub.gzip {
            gzip.text = text;
        }
        return;
    }
    on_text(sub, data, now_ns, nonce, stats);
}

/// The decoding state of a gzip stream (`--gzip`).
struct Gunzip {
    /// Raw deflate, after the gzip header.
    inflate: flate2::Decompress,
    /// Header bytes still to skip: house's header is the plain 10 bytes, with no optional
    /// fields.
    header: usize,
    /// What the last read decoded to, kept to reuse its allocation.
    text: Vec<u8>,
}

impl Default for Gunzip {
    fn default() -> Gunzip {
        Gunzip {
            inflate: flate2::Decompress::new(false),
            header: 10,
            text: Vec::new(),
        }
    }
}

impl Gunzip {
    /// Decodes `bytes` (the next of the body) onto `out`; a corrupt stream decodes no further,
    /// and its events count as lost.
    fn inflate(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let skip = self.header.min(bytes.len());
        self.header -= skip;
        let mut input = &bytes[skip..];
        loop {
            out.reserve((input.len() * 4).max(4096));
            let before = self.inflate.total_in();
            let flush = flate2::FlushDecompress::Sync;
            if self.inflate.decompress_vec(input, out, flush).is_err() {
                return;
            }
            input = &input[(self.inflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return;
            }
        }
    }
}

/// Splits decoded SSE text into lines and handles `data:` lines.
fn on_text(sub: &mut Sub, mut data: &[u8], now_ns: u64, nonce: u64, stats: &mut Stats) {
    if !sub.pending.is_empty() {
        // Finish the line the previous read cut.
        let Some(nl) = memchr(b'\n', data) else {
            sub.pending.extend_from_slice(data);
            return;
        };
        sub.pending.extend_from_slice(&data[..nl]);
        on_line(
            &sub.pending,
            &mut sub.seen,
            &mut sub.last_seq,
            now_ns,
            nonce,
            stats,
        );
        sub.pending.clear();
        data = &data[nl + 1..];
    }
    let mut start = 0;
    for nl in memchr_iter(b'\n', data) {
        on_line(
            &data[start..nl],
            &mut sub.seen,
            &mut sub.last_seq,
            now_ns,
            nonce,
            stats,
        );
        start = nl + 1;
    }
    sub.pending.extend_from_slice(&data[start..]);
}

/// One SSE line (without its `\n`): only `data:` lines carry a marker.
fn on_line(
    line: &[u8],
    seen: &mut [u64],
    last_seq: &mut Option<u64>,
    now_ns: u64,
    nonce: u64,
    stats: &mut Stats,
) {
    if let Some(data) = line.strip_prefix(b"data:") {
        on_data(data, seen, last_seq, now_ns, nonce, stats);
    }
}

fn dechunk(state: &mut Chunk, mut bytes: &[u8], out: &mut Vec<u8>) {
    while let Some((&b, rest)) = bytes.split_first() {
        match state {
            Chunk::Size(size) => {
                bytes = rest;
                match b {
                    b'\n' if *size == 0 => *state = Chunk::Trailer,
                    b'\n' => *state = Chunk::Data(*size),
                    b';' => *state = Chunk::Extension(*size),
                    _ => {
                        if let Some(digit) = (b as char).to_digit(16) {
                            *size = size.saturating_mul(16).saturating_add(digit as usize);
                        }
                    }
                }
            }
            Chunk::Extension(size) => {
                bytes = rest;
                if b == b'\n' {
                    *state = if *size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(*size)
                    };
                }
            }
            Chunk::Data(left) => {
                let take = (*left).min(bytes.len());
                out.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                *left -= take;
                if *left == 0 {
                    *state = Chunk::DataEnd;
                }
            }
            Chunk::DataEnd => {
                bytes = rest;
                if b == b'\n' {
                    *state = Chunk::Size(0);
                }
            }
            Chunk::Trailer => return,
        }
    }
}

fn on_data(
    data: &[u8],
    seen: &mut [u64],
    last_seq: &mut Option<u64>,
    now_ns: u64,
    nonce: u64,
    stats: &mut Stats,
) {
    let Some((seq, ts, run)) = parse_marker(data) else {
        return;
    };
    if run != nonce || seq as usize >= seen.len() * 64 {
        stats.foreign += 1;
        return;
    }
    let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
    if seen[word] & bit != 0 {
        stats.duplicates += 1;
        return;
    }
    seen[word] |= bit;
    if last_seq.is_some_and(|last| seq < last) {
        stats.out_of_order += 1;
    }
    *last_seq = Some(last_seq.map_or(seq, |last| last.max(seq)));
    stats.unique += 1;
    let us = now_ns.saturating_sub(ts) / 1000;
    stats
        .latencies_us
        .push(u32::try_from(us).unwrap_or(u32::MAX));
}

/// Finds `ms<seq>t<ts>n<run>` in a data line (raw for nchan, inside JSON for house and axum).
fn parse_marker(data: &[u8]) -> Option<(u64, u64, u64)> {
    let at = memmem::find(data, b"ms")?;
    let mut rest = &data[at + 2..];
    let mut number = |sep: Option<u8>| -> Option<u64> {
        // Digits by hand: no UTF-8 check or `str::parse` per field.
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 {
            return None;
        }
        let value = rest[..digits]
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        rest = &rest[digits..];
        if let Some(sep) = sep {
            if rest.first() != Some(&sep) {
                return None;
            }
            rest = &rest[1..];
        }
        Some(value)
    };
    let seq = number(Some(b't'))?;
    let ts = number(Some(b'n'))?;
    let run = number(None)?;
    Some((seq, ts, run))
}

fn join_all(readers: Vec<thread::JoinHandle<Stats>>) -> Stats {
    let mut total = Stats::default();
    for reader in readers {
        if let Ok(stats) = reader.join() {
            total.unique += stats.unique;
            total.wire_bytes += stats.wire_bytes;
            total.duplicates += stats.duplicates;
            total.out_of_order += stats.out_of_order;
            total.foreign += stats.foreign;
            total.latencies_us.extend(stats.latencies_us);
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime of a process (all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based, as in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of a process's threads (those alive now) in seconds, from the scheduler's
/// nanosecond counts in /proc/PID/task/TID/schedstat (its first field).
fn schedstat_secs(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        ns += stat.split(' ').next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

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

fn sample_rss(pid: u32, stop: Arc<AtomicBool>, deadline: Instant) -> Option<u64> {
    let mut peak = None;
    while !stop.load(Relaxed) && Instant::now() < deadline {
        if let Some(kb) = status_kb(pid, "VmRSS:") {
            peak = peak.max(Some(kb));
        }
        thread::sleep(RSS_SAMPLE);
    }
    peak
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
