//! `cargo build --release --example loadgen --example chat && cargo run --release --example scale -- --steps 1000,3000,10000,30000,100000`
//!
//! The cost curve up to C100K: one house process (the chat example), one room, and at each step
//! N subscribers (1k, 3k, 10k, 30k, 100k by default) that every one receive each of
//! `--broadcasts` broadcasts. For each step it reports how long connecting and subscribing all
//! N took, the server's RSS growth per subscriber, its CPU per delivery, latency p50/p99/max,
//! and loss, duplicates and dropped subscribers; then writes `docs/bench/scale.md` (the table)
//! and `docs/bench/scale.svg` (CPU per delivery, p99 and RSS per connection against N on a log
//! axis), so a reader sees whether the cost per subscriber stays flat as the work grows.
//!
//! It builds nothing: it runs `target/release/examples/chat` and `.../loadgen` (the `cargo
//! build` above). Run it as root, or with a hard open-file limit above the largest step: each
//! subscriber is an open file in the server and another in the load generator, and both are
//! started under `prlimit --nofile=...` (default 300,000; the kernel allows `fs.nr_open`).
//! Raising a hard limit needs CAP_SYS_RESOURCE, which root in a container or sandbox may lack:
//! then both run at the hard limit, and a step that does not fit in it is reported as not run.
//!
//! One client address reaches only ~28,000 ports of one server port
//! (`net.ipv4.ip_local_port_range`), so the load generator binds its subscribers round-robin to
//! about N / 20,000 + 1 loopback source addresses (127.0.0.2, ...; all of 127.0.0.0/8 is
//! loopback on Linux). Each step takes fresh addresses and a fresh server port, so the previous
//! step's sockets in TIME_WAIT never hold the ports it needs.
//!
//! Each step starts the server fresh, so its memory figures start from the same state; the
//! server and the load generator are always stopped at the end of a step, on error too (a drop
//! guard). Every wait is bounded. Loopback only.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The chat example's `--rate` for benchmarks: effectively unlimited sending.
const CHAT_RATE: &str = "1000000000/1";

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stopped process may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The load generator's deadline: this much, plus a second per 1,000 subscribers, plus the
/// publishing time. Past it (and `LOADGEN_GRACE` more) the driver kills it.
const LOADGEN_BASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long past its own deadline the load generator may take to report.
const LOADGEN_GRACE: Duration = Duration::from_secs(30);

/// Loopback source addresses are 127.0.0.2 ..= 127.0.0.254 (one address holds ~28,000 ports).
const MAX_SOURCES: usize = 253;

/// Open files the server needs besides one per subscriber: house keeps `FD_MARGIN` (32) free
/// below its limit, and the publisher's connection and the server's own files fit in this.
const SERVER_FD_RESERVE: u64 = 64;

/// CAP_SYS_RESOURCE's bit in /proc/PID/status `CapEff`: what raising a hard limit needs.
const CAP_SYS_RESOURCE: u32 = 24;

const USAGE: &str = "usage: scale [--steps N,N,...] [--broadcasts K] [--rate R] [--port P]
        [--per-source N] [--nofile N] [--server chat|bench_server] [--out DIR]

  --steps LIST     subscriber counts (default 1000,3000,10000,30000,100000)
  --broadcasts K   broadcasts each subscriber receives (default 5)
  --rate R         broadcasts per second (default 1)
  --port P         the first step's server port; each step uses the next (default 4700)
  --per-source N   subscribers per loopback source address (default 20000; one address
                   reaches ~28,000 ports of one server port)
  --nofile N       open-file limit for the server and the load generator (default 300000)
  --server NAME    the house example to measure (default chat)
  --out DIR        where scale.md and scale.svg go (default docs/bench)";

fn main() {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(why) => {
            eprintln!("scale: {why}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(err) = run(&opts) {
        eprintln!("scale: {err}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    steps: Vec<usize>,
    broadcasts: u64,
    rate: f64,
    port: u16,
    per_source: usize,
    nofile: u64,
    server: String,
    out: PathBuf,
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        steps: vec![1_000, 3_000, 10_000, 30_000, 100_000],
        broadcasts: 5,
        rate: 1.0,
        port: 4700,
        per_source: 20_000,
        nofile: 300_000,
        server: "chat".into(),
        out: PathBuf::from("docs/bench"),
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        let flag = match arg {
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Err(String::new()),
            lexopt::Arg::Long(name) => format!("--{name}"),
            _ => return Err(arg.unexpected().to_string()),
        };
        let value = parser
            .value()
            .map_err(|_| format!("{flag} needs a value"))?
            .into_string()
            .map_err(|value| format!("{flag}: not UTF-8: {value:?}"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--steps" => {
                opts.steps = value
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| format!("bad step {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--broadcasts" => opts.broadcasts = value.parse().map_err(bad)?,
            "--rate" => opts.rate = value.parse().map_err(|_| format!("bad rate {value}"))?,
            "--port" => opts.port = value.parse().map_err(bad)?,
            "--per-source" => opts.per_source = value.parse().map_err(bad)?,
            "--nofile" => opts.nofile = value.parse().map_err(bad)?,
            "--server" => opts.server = value,
            "--out" => opts.out = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if opts.steps.is_empty() || opts.steps.contains(&0) {
        return Err("--steps needs subscriber counts above 0".into());
    }
    if opts.broadcasts == 0 || opts.rate <= 0.0 || opts.per_source == 0 {
        return Err("--broadcasts, --rate and --per-source must be above 0".into());
    }
    let sources: usize = opts.steps.iter().map(|&n| opts.sources_for(n)).sum();
    if sources > MAX_SOURCES {
        return Err(format!(
            "the steps need {sources} source addresses, more than the {MAX_SOURCES} of \
             127.0.0.2..=127.0.0.254; raise --per-source or drop steps"
        ));
    }
    let largest = opts.steps.iter().max().copied().unwrap_or(0) as u64;
    if opts.nofile < largest + 1_000 {
        return Err(format!(
            "--nofile {} is too low for {largest} subscribers",
            opts.nofile
        ));
    }
    if usize::from(opts.port) + opts.steps.len() > usize::from(u16::MAX) {
        return Err("--port leaves no room for a port per step".into());
    }
    Ok(opts)
}

impl Options {
    /// Source addresses for `subs` subscribers: one per `--per-source`, and one to spare.
    fn sources_for(&self, subs: usize) -> usize {
        subs / self.per_source + 1
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A process we started; stopped (SIGTERM, then SIGKILL) when dropped, so an early return or a
/// panic leaves nothing running.
struct Guard {
    child: Child,
    name: &'static str,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit by itself; true if it did.
    fn wait_for_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return true,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => return false,
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if !self.wait_for_exit(STOP_TIMEOUT) {
            eprintln!("scale: {} did not stop on SIGTERM; killing it", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `command` run under `prlimit --nofile=N:N` (prlimit sets the limit and execs it, so the pid
/// is the command's own).
fn with_nofile(nofile: u64, program: &Path) -> Command {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(program);
    command
}

fn start_server(opts: &Options, bin_dir: &Path, port: u16, log: &Path) -> Result<Guard, String> {
    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
        return Err(format!(
            "port {port} is already taken; stop whatever listens there"
        ));
    }
    let mut command = with_nofile(opts.nofile, &bin_dir.join(&opts.server));
    command.args(["--port", &port.to_string()]);
    if opts.server == "chat" {
        // The chat limits sending per session; the loadgen is one client publishing. No
        // archive: it would be a file in the repository, and costs a write per message.
        command.args(["--rate", CHAT_RATE, "--no-archive"]);
    }
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let stderr = file.try_clone().map_err(|e| e.to_string())?;
    let child = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", opts.server))?;
    let mut server = Guard {
        child,
        name: "the server",
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
            return Err(format!(
                "{} did not start listening on {port}; see {}",
                opts.server,
                log.display()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// Runs the load generator for one step and returns its JSON line.
fn run_loadgen(
    opts: &Options,
    bin_dir: &Path,
    port: u16,
    subs: usize,
    sources: &[Ipv4Addr],
    server_pid: u32,
    log_dir: &Path,
) -> Result<Value, String> {
    let timeout = LOADGEN_BASE_TIMEOUT
        + Duration::from_secs(subs as u64 / 1_000)
        + Duration::from_secs_f64(opts.broadcasts as f64 / opts.rate);
    let sources: Vec<String> = sources.iter().map(Ipv4Addr::to_string).collect();
    let mut command = with_nofile(opts.nofile, &bin_dir.join("loadgen"));
    command.args([
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--subs",
        &subs.to_string(),
        "--messages",
        &opts.broadcasts.to_string(),
        "--rate",
        &opts.rate.to_string(),
        "--source-addrs",
        &sources.join(","),
        "--conn-rss",
        "--precise-cpu",
        "--server-pid",
        &server_pid.to_string(),
        "--timeout",
        &timeout.as_secs().to_string(),
        "--label",
        &format!("scale/{subs}"),
    ]);
    let out_path = log_dir.join(format!("scale-loadgen-{subs}.out"));
    let err_path = out_path.with_extension("err");
    let (out, err) = (
        std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?,
        std::fs::File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?,
    );
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("could not start the loadgen: {e}"))?;
    let mut loadgen = Guard {
        child,
        name: "the loadgen",
    };
    if !loadgen.wait_for_exit(timeout + LOADGEN_GRACE) {
        return Err(format!(
            "the loadgen did not finish within {:?}; see {}",
            timeout + LOADGEN_GRACE,
            err_path.display()
        ));
    }
    drop(loadgen);
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .ok_or_else(|| {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            format!("no result from the loadgen: {}", err.trim())
        })
}

// ---------------------------------------------------------------------------------------------
// The run

fn run(opts: &Options) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or("cannot locate the examples directory")?;
    for binary in ["loadgen", opts.server.as_str()] {
        if !bin_dir.join(binary).exists() {
            return Err(format!(
                "{} is missing: cargo build --release --example loadgen --example {}",
                bin_dir.join(binary).display(),
                opts.server
            ));
        }
    }
    let log_dir = root.join("target/bench");
    std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
    print_limits(opts);
    let limit = FdLimit::find(opts.nofile);
    if let Some(why) = &limit.lowered {
        eprintln!("scale: {why}");
    }
    let mut opts = opts.clone();
    opts.nofile = limit.nofile;
    let opts = &opts;

    let load_start = loadavg();
    let started = Instant::now();
    let mut results = Vec::new();
    let mut next_source = 0usize;
    for (i, &subs) in opts.steps.iter().enumerate() {
        // Fresh source addresses and a fresh port per step: the last step's sockets may still
        // be in TIME_WAIT, holding ports of the addresses it used.
        let count = opts.sources_for(subs);
        let sources: Vec<Ipv4Addr> = (next_source..next_source + count)
            .map(|k| Ipv4Addr::new(127, 0, 0, 2 + k as u8))
            .collect();
        next_source += count;
        let port = opts.port + i as u16;
        step(&format!(
            "{subs} subscribers from {count} source address(es), {} broadcasts at {}/s, port {port}",
            opts.broadcasts, opts.rate
        ));
        let log = log_dir.join(format!("scale-server-{subs}.log"));
        let need = subs as u64 + SERVER_FD_RESERVE;
        let mut result = if need > opts.nofile {
            // Nothing to try: the server would refuse the subscribers past its cap (503).
            serde_json::json!({ "error": format!(
                "not run: {} subscribers need about {} open files in the one server process; \
                 the limit here is {}{}",
                format_count(subs as u64),
                format_count(need),
                format_count(opts.nofile),
                if limit.lowered.is_some() { " (see above)" } else { "" },
            )})
        } else {
            match start_server(opts, &bin_dir, port, &log) {
                Ok(server) => {
                    let overflows = listen_overflows();
                    let result =
                        run_loadgen(opts, &bin_dir, port, subs, &sources, server.pid(), &log_dir);
                    let overflows = listen_overflows()
                        .zip(overflows)
                        .map(|(after, before)| after.saturating_sub(before));
                    drop(server);
                    let mut result =
                        result.unwrap_or_else(|err| serde_json::json!({ "error": err }));
                    if let Some(overflows) = overflows {
                        result["listen_overflows"] = overflows.into();
                    }
                    result
                }
                Err(err) => serde_json::json!({ "error": err }),
            }
        };
        result["step"] = subs.into();
        result["sources"] = count.into();
        println!("    {}", summary(&result));
        results.push(result);
    }
    let load_end = loadavg();

    let out = root.join(&opts.out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let context = Context {
        limit,
        machine: machine(),
        load_start,
        load_end,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        commit: commit(&root),
    };
    write(&out.join("scale.md"), &markdown(&results, opts, &context))?;
    write(&out.join("scale.svg"), &svg(&results, opts))?;
    step(&format!(
        "wrote {0}/scale.md and {0}/scale.svg",
        opts.out.display()
    ));
    print!("{}", table(&results));
    Ok(())
}

/// The open-file limit the processes run under.
#[derive(Debug)]
struct FdLimit {
    nofile: u64,
    /// Why it is below `--nofile`, if it is.
    lowered: Option<String>,
}

impl FdLimit {
    /// `wanted`, if `prlimit` may set it; else this process's hard limit, which any process may
    /// take as its soft limit. Raising a hard limit needs CAP_SYS_RESOURCE, which root may lack
    /// (in a container or a VM sandbox, say).
    fn find(wanted: u64) -> FdLimit {
        let allowed = Command::new("prlimit")
            .arg(format!("--nofile={wanted}:{wanted}"))
            .args(["--", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if allowed {
            return FdLimit {
                nofile: wanted,
                lowered: None,
            };
        }
        let hard = hard_nofile().unwrap_or(1024);
        let why = if has_cap_sys_resource() == Some(false) {
            "this process lacks CAP_SYS_RESOURCE (root here too), so no process it starts may \
             raise its hard limit"
        } else {
            "`prlimit` could not raise it"
        };
        FdLimit {
            nofile: hard.min(wanted),
            lowered: Some(format!(
                "the open-file limit stays at the hard limit of {}, not --nofile {}: {why}",
                format_count(hard),
                format_count(wanted)
            )),
        }
    }
}

/// This process's hard open-file limit.
fn hard_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(4)? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Whether CAP_SYS_RESOURCE is among this process's effective capabilities.
fn has_cap_sys_resource() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let caps = u64::from_str_radix(caps.trim(), 16).ok()?;
    Some(caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The kernel's count of connections dropped because a listener's accept queue was full
/// (`TcpExt: ListenOverflows` in /proc/net/netstat; system-wide). Each costs its client a SYN
/// retransmitted a second later.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Prints the system limits that decide whether the largest step can connect at all.
fn print_limits(opts: &Options) {
    let sysctl = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    };
    step(&format!(
        "limits: nofile {} (fs.nr_open {}), net.ipv4.ip_local_port_range {}, net.core.somaxconn {}",
        opts.nofile,
        sysctl("fs.nr_open"),
        sysctl("net.ipv4.ip_local_port_range"),
        sysctl("net.core.somaxconn"),
    ));
}

fn step(text: &str) {
    println!("==> {text}");
    let _ = io::stdout().flush();
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn summary(result: &Value) -> String {
    if let Some(err) = result.get("error") {
        return format!("error: {err}");
    }
    let keys = [
        "subscribed",
        "subscribed_s",
        "rss_per_conn_bytes",
        "server_cpu_us_per_delivery",
        "lat_p50_ms",
        "lat_p99_ms",
        "delivered",
        "expected",
        "lost",
        "dropped_subs",
    ];
    keys.iter()
        .filter_map(|k| result.get(*k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

// The next three are copied from examples/compare.rs: examples are standalone files, and a
// shared module for ~40 lines would be one more thing for every example to include.

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs ({model}), {mem_gib:.0} GiB RAM, Linux {}",
        kernel.trim()
    )
}

/// A compact figure: `1.23`, `12.3`, `123`, `12.3k`.
fn format_value(value: f64) -> String {
    let abs = value.abs();
    if abs >= 100_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if abs >= 10_000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if abs >= 100.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A count with thousands separators: `100,000`.
fn format_count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn commit(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Report

struct Context {
    limit: FdLimit,
    machine: String,
    load_start: String,
    load_end: String,
    minutes: f64,
    commit: String,
}

/// A figure of a result, if the run produced it.
fn figure(result: &Value, key: &str) -> Option<f64> {
    if result.get("error").is_some() {
        return None;
    }
    result.get(key).and_then(Value::as_f64)
}

fn table(results: &[Value]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| subscribers | source addresses | connect · all subscribed | connects/s | listen overflows | server RSS per connection | server CPU per delivery | latency p50 · p99 · max | delivered | lost · duplicates · dropped | loadgen CPU per delivery |"
    );
    let _ = writeln!(out, "|---:|---:|---|---:|---:|---:|---:|---|---:|---|---:|");
    for result in results {
        let subs = result["step"].as_u64().unwrap_or(0);
        let sources = result["sources"].as_u64().unwrap_or(0);
        if let Some(err) = result.get("error") {
            let err = err.as_str().unwrap_or("").replace('|', "/");
            let _ = writeln!(
                out,
                "| {} | {sources} | {}{err} | | | | | | | | |",
                format_count(subs),
                if err.starts_with("not run") {
                    ""
                } else {
                    "failed: "
                },
            );
            continue;
        }
        let num = |key: &str| figure(result, key);
        let show = |value: Option<f64>, unit: &str| {
            value.map_or("–".into(), |v| format!("{}{unit}", format_value(v)))
        };
        let count = |key: &str| num(key).map_or("–".into(), |v| format_count(v as u64));
        let connects = match (num("subscribed"), num("subscribed_s")) {
            (Some(n), Some(s)) if s > 0.0 => format_value(n / s),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {sources} | {} · {} | {connects} | {} | {} | {} | {} · {} · {} | {} of {} | {} · {} · {} | {} |",
            format_count(subs),
            show(num("connect_s"), " s"),
            show(num("subscribed_s"), " s"),
            count("listen_overflows"),
            show(num("rss_per_conn_bytes"), " B"),
            show(num("server_cpu_us_per_delivery"), " µs"),
            show(num("lat_p50_ms"), " ms"),
            show(num("lat_p99_ms"), " ms"),
            show(num("lat_max_ms"), " ms"),
            count("delivered"),
            count("expected"),
            count("lost"),
            count("duplicates"),
            count("dropped_subs"),
            show(num("loadgen_cpu_us_per_delivery"), " µs"),
        );
    }
    out
}

fn markdown(results: &[Value], opts: &Options, ctx: &Context) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# The cost curve up to C100K\n");
    let _ = writeln!(
        out,
        "Written by `cargo run --release --example scale -- {}` (examples/scale.rs) at house \
         `{}`, one run. At each step a fresh `{}` server (one process, one thread) holds N \
         subscribers of one room, and each receives all {} broadcasts, sent at {}/s; the load \
         generator (examples/loadgen.rs, 2 reader threads) runs on the same machine and binds \
         its subscribers to N / {} + 1 loopback source addresses.\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        ctx.commit,
        opts.server,
        opts.broadcasts,
        opts.rate,
        opts.per_source,
    );
    let _ = writeln!(out, "- machine: {}", ctx.machine);
    let _ = writeln!(
        out,
        "- open-file limit of the server and the load generator: {}{}",
        format_count(ctx.limit.nofile),
        ctx.limit
            .lowered
            .as_ref()
            .map_or(String::new(), |why| format!(" ({why})"))
    );
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min) before: {}; after: {}; took {:.1} min",
        ctx.load_start, ctx.load_end, ctx.minutes
    );
    let _ = writeln!(out, "\n![the cost curve](scale.svg)\n");
    out.push_str(&table(results));
    let _ = writeln!(
        out,
        "\n- connect: the load generator's blocking `connect` of every subscriber, each writing \
         its request at once; all subscribed: until every response head arrived.\n\
         - listen overflows: connections the kernel dropped because the server's accept queue \
         (its listen backlog, 4,096, capped by `net.core.somaxconn`) was full, counted \
         machine-wide during the step; each such client retransmits its SYN a second later, \
         which shows as a second more to connect.\n\
         - server RSS per connection: the growth of the server's VmRSS from before the first \
         connect to after the last response head (user space only; the kernel's socket memory \
         is not in it), divided by the subscribers.\n\
         - server CPU per delivery: the server's utime + stime from the first broadcast to the \
         last delivery, divided by the deliveries (heartbeats in that window included).\n\
         - latency: from just before the broadcast's request is written to its arrival at a \
         subscriber; one broadcast reaches N subscribers in one sweep, so p99 grows with N by \
         construction (the sweep is the work itself), unlike the two costs per subscriber."
    );
    out
}

/// Three panels side by side (CPU per delivery, p99, RSS per connection), each against the
/// subscriber count on a log axis, in the hand-written style of compare's `chart.svg`.
fn svg(results: &[Value], opts: &Options) -> String {
    const WIDTH: f64 = 780.0;
    const HEIGHT: f64 = 300.0;
    const PANEL_W: f64 = 210.0;
    const PANEL_GAP: f64 = 45.0;
    const LEFT: f64 = 30.0;
    const TOP: f64 = 80.0;
    const PLOT_H: f64 = 160.0;
    const COLOUR: &str = "#d9480f";
    let panels = [
        (
            "server CPU per delivery",
            "server_cpu_us_per_delivery",
            "µs",
        ),
        ("latency p99", "lat_p99_ms", "ms"),
        ("server RSS per connection", "rss_per_conn_bytes", "B"),
    ];
    let points = |key: &str| -> Vec<(f64, f64)> {
        results
            .iter()
            .filter_map(|r| Some((r["step"].as_f64()?, figure(r, key)?)))
            .filter(|(n, _)| *n > 0.0)
            .collect()
    };
    let (min_n, max_n) = opts.steps.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &n| {
        (lo.min(n as f64), hi.max(n as f64))
    });
    let (log_lo, log_hi) = (min_n.log10(), max_n.log10().max(min_n.log10() + 1.0));
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">house: cost per subscriber as subscribers grow ({} broadcasts at {}/s, one run)</text>"#,
        opts.broadcasts, opts.rate
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="42" fill="#555">subscribers on a log axis; lower is better; a flat line: the cost per subscriber does not grow with the work</text>"##
    );
    for (p, (title, key, unit)) in panels.iter().enumerate() {
        let x0 = LEFT + p as f64 * (PANEL_W + PANEL_GAP);
        let pts = points(key);
        let max = pts.iter().map(|&(_, v)| v).fold(0.0f64, f64::max);
        let top = if max > 0.0 { max * 1.25 } else { 1.0 };
        let x = |n: f64| x0 + (n.log10() - log_lo) / (log_hi - log_lo) * PANEL_W;
        let y = |v: f64| TOP + PLOT_H - v / top * PLOT_H;
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="{}" font-weight="bold">{title}, {unit}</text>"#,
            TOP - 14.0
        );
        // Axes: the baseline at 0 and a light line at the top of the scale.
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{0}" x2="{1}" y2="{0}" stroke="#333"/><line x1="{x0}" y1="{TOP}" x2="{1}" y2="{TOP}" stroke="#ddd"/><text x="{x0}" y="{2}" fill="#888" font-size="10">{3}</text>"##,
            TOP + PLOT_H,
            x0 + PANEL_W,
            TOP - 2.0,
            format_value(top),
        );
        // A tick label too close to the previous one goes a line lower (19.9k beside 30k).
        let mut last_label = f64::MIN;
        for &n in &opts.steps {
            let lower = x(n as f64) - last_label < 28.0;
            last_label = if lower { f64::MIN } else { x(n as f64) };
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#333"/><text x="{0:.1}" y="{3}" text-anchor="middle" font-size="10">{4}</text>"##,
                x(n as f64),
                TOP + PLOT_H,
                TOP + PLOT_H + 4.0,
                TOP + PLOT_H + if lower { 27.0 } else { 16.0 },
                short_count(n),
            );
        }
        let path: Vec<String> = pts
            .iter()
            .map(|&(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{COLOUR}" stroke-width="2"/>"#,
                path.join(" ")
            );
        }
        for &(n, v) in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{COLOUR}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                x(n),
                y(v),
                x(n),
                y(v) - 7.0,
                format_value(v),
            );
        }
        // Steps without a figure say so where their point would be.
        for result in results.iter().filter(|r| r.get("error").is_some()) {
            let Some(n) = result["step"].as_f64() else {
                continue;
            };
            let not_run = result["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("not run"));
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#888">{}</text>"##,
                x(n),
                TOP + PLOT_H - 6.0,
                if not_run { "not run" } else { "failed" },
            );
        }
        if pts.is_empty() {
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" fill="#888">no result</text>"##,
                x0 + 10.0,
                TOP + PLOT_H / 2.0
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">subscribers</text>"#,
            x0 + PANEL_W / 2.0,
            TOP + PLOT_H + 44.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// `1k`, `19.9k`, `100k`, `500`.
fn short_count(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else if n >= 1000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}
