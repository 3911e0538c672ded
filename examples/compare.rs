//! `cargo run --release --example compare -- --runs 3`
//!
//! Runs the same workloads against house, nginx+nchan (1 worker), the axum reference (tokio
//! current_thread) and the featureless server (`examples/ceiling.rs`, the practical ceiling), in
//! turn, several times, and writes the medians to `docs/bench/results.md` (a table with ratios
//! against the better peer and against the ceiling), `docs/bench/chart.svg`
//! and every run's raw figures to `docs/bench/runs.jsonl`.
//!
//! Run it from the repository root, with `../shared/peers/` beside the repository. It:
//! - builds `examples/loadgen.rs`, `examples/ceiling.rs` and house's servers in release mode:
//!   `examples/chat.rs` for the SSE workloads (`--house-example NAME` picks another), and
//!   `examples/bench_server.rs` for the small-response workload, since the chat has no `/hello`;
//! - installs `nginx-light libnginx-mod-nchan wrk` with apt-get when they are missing, renders
//!   `../shared/peers/nchan/nginx.conf.tmpl` with one worker into `target/bench/nchan/`;
//! - builds `../shared/peers/axum-chat` with its own target dir (outside the repository:
//!   `$TMPDIR/house-bench/axum-chat-target`, or `--axum-target DIR`);
//! - starts each server fresh for each workload, so memory figures start from the same state,
//!   and stops it (SIGTERM, then SIGKILL) afterwards.
//!
//! Flags: `--runs N` (3), `--servers house,ceiling,nchan,axum`, `--workloads fanout-1k,fanout-10k,
//! idle-10k,hello,flat-1k,pipelined-1k,broadcast-19k` (all), `--quick` (10x fewer subscribers,
//! 5x fewer messages, one run: a smoke test, not a measurement), `--out DIR` (`docs/bench`),
//! `--wait-load SECS` (wait up to SECS for the 1-minute load average to fall below 1.0 first).
//!
//! The load generator shares the machine's cores with the server, so absolute numbers drift with
//! the machine; the ratios measured in one run are what to compare.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Ports the servers listen on (nchan's is fixed by its config template).
const HOUSE_PORT: u16 = 4500;
const NCHAN_PORT: u16 = 4300;
const AXUM_PORT: u16 = 4400;
const CEILING_PORT: u16 = 4600;

/// The chat example's `--rate` for benchmarks: effectively unlimited sending.
const CHAT_RATE: &str = "1000000000/1";

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The load generator's own deadline per run; compare kills it a little after that.
const LOADGEN_TIMEOUT: Duration = Duration::from_secs(150);

const USAGE: &str = "usage: compare [--runs N] [--servers LIST] [--workloads LIST] [--quick]
        [--out DIR] [--house-example NAME] [--axum-target DIR] [--wait-load SECS]

  --runs N              runs of each workload; the medians are reported (default 3, 1 with --quick)
  --servers LIST        some of house,ceiling,nchan,axum (default all)
  --workloads LIST      some of fanout-1k,fanout-10k,idle-10k,hello,flat-1k,pipelined-1k,
                        broadcast-19k (default all)
  --quick               10x fewer subscribers, 5x fewer messages, one run: a smoke test
  --out DIR             where results.md, chart.svg and runs.jsonl go (default docs/bench)
  --house-example NAME  the house example for the SSE workloads (default chat)
  --axum-target DIR     the axum reference's target dir (default $TMPDIR/house-bench/axum-chat-target)
  --wait-load SECS      first wait up to SECS for the 1-minute load average to fall below 1.0";

fn main() {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(why) => {
            eprintln!("compare: {why}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(err) = run(&opts) {
        eprintln!("compare: {err}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    runs: usize,
    servers: Vec<Kind>,
    workloads: Vec<Workload>,
    quick: bool,
    out: PathBuf,
    house_example: Option<String>,
    axum_target: PathBuf,
    wait_load: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        runs: 3,
        servers: vec![Kind::House, Kind::Ceiling, Kind::Nchan, Kind::Axum],
        workloads: Workload::ALL.to_vec(),
        quick: false,
        out: PathBuf::from("docs/bench"),
        house_example: None,
        axum_target: std::env::temp_dir().join("house-bench/axum-chat-target"),
        wait_load: Duration::ZERO,
    };
    let mut runs_given = false;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        let flag = match arg {
            lexopt::Arg::Long("quick") => {
                opts.quick = true;
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
        match flag.as_str() {
            "--runs" => {
                opts.runs = value.parse().map_err(|_| "--runs takes a number")?;
                runs_given = true;
            }
            "--servers" => {
                opts.servers = value
                    .split(',')
                    .map(|s| Kind::from_name(s).ok_or(format!("unknown server {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--workloads" => {
                opts.workloads = value
                    .split(',')
                    .map(|s| Workload::from_name(s).ok_or(format!("unknown workload {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--out" => opts.out = PathBuf::from(value),
            "--house-example" => opts.house_example = Some(value),
            "--axum-target" => opts.axum_target = PathBuf::from(value),
            "--wait-load" => {
                opts.wait_load =
                    Duration::from_secs(value.parse().map_err(|_| "--wait-load takes seconds")?);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if opts.quick && !runs_given {
        opts.runs = 1;
    }
    if opts.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    House,
    /// `examples/ceiling.rs`: not a peer but the limit, so it is kept out of "best peer".
    Ceiling,
    Nchan,
    Axum,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        match name {
            "house" => Some(Kind::House),
            "ceiling" => Some(Kind::Ceiling),
            "nchan" => Some(Kind::Nchan),
            "axum" => Some(Kind::Axum),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::House => "house",
            Kind::Ceiling => "ceiling",
            Kind::Nchan => "nchan",
            Kind::Axum => "axum",
        }
    }

    fn port(self) -> u16 {
        match self {
            Kind::House => HOUSE_PORT,
            Kind::Ceiling => CEILING_PORT,
            Kind::Nchan => NCHAN_PORT,
            Kind::Axum => AXUM_PORT,
        }
    }

    /// The loadgen's `--publish` shape for this server.
    fn publish(self) -> &'static str {
        match self {
            Kind::Nchan => "post",
            Kind::House | Kind::Ceiling | Kind::Axum => "get",
        }
    }
}

/// How to start each server, prepared once.
#[derive(Debug)]
struct Setup {
    root: PathBuf,
    bin_dir: PathBuf,
    house_example: String,
    /// House's server for the small-response workload (it needs `/hello`).
    house_hello: String,
    nchan_run: PathBuf,
    axum_bin: PathBuf,
}

/// A started server: the process we spawned and the pid whose CPU and memory we measure (for
/// nginx, the worker; for the others, the process itself).
struct Running {
    child: Child,
    measured_pid: u32,
}

impl Setup {
    fn start(&self, kind: Kind, workload: Workload) -> io::Result<Running> {
        if TcpStream::connect(("127.0.0.1", kind.port())).is_ok() {
            return Err(io::Error::other(format!(
                "port {} is already taken; stop whatever listens there",
                kind.port()
            )));
        }
        let mut command = match kind {
            Kind::House => {
                let example = if workload == Workload::Hello {
                    &self.house_hello
                } else {
                    &self.house_example
                };
                let mut c = Command::new(self.bin_dir.join(example));
                c.args(["--port", &HOUSE_PORT.to_string()]);
                if example == "chat" {
                    // The chat limits sending per session (5 per 10 s by default); the loadgen
                    // is one client publishing thousands. No archive: the peers keep none, and
                    // it would be a file in the repository.
                    c.args(["--rate", CHAT_RATE, "--no-archive"]);
                }
                c
            }
            Kind::Ceiling => {
                let mut c = Command::new(self.bin_dir.join("ceiling"));
                c.args(["--port", &CEILING_PORT.to_string()]);
                c
            }
            Kind::Nchan => {
                let mut c = Command::new("nginx");
                c.arg("-c")
                    .arg(self.nchan_run.join("nginx.conf"))
                    .arg("-p")
                    .arg(&self.nchan_run);
                c
            }
            Kind::Axum => {
                let mut c = Command::new(&self.axum_bin);
                c.args(["--runtime", "current", "--port", &AXUM_PORT.to_string()]);
                c
            }
        };
        let log = std::fs::File::create(
            self.root
                .join("target/bench")
                .join(format!("{}.log", kind.name())),
        )?;
        let child = command
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut running = Running {
            measured_pid: child.id(),
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", kind.port())).is_err() {
            if Instant::now() >= deadline || matches!(running.child.try_wait(), Ok(Some(_))) {
                stop(running);
                return Err(io::Error::other(format!(
                    "{} did not start listening on {}; see target/bench/{}.log",
                    kind.name(),
                    kind.port(),
                    kind.name()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        if kind == Kind::Nchan {
            // The master listens before it forks the worker: wait for the worker too.
            loop {
                if let Some(&worker) = children(running.child.id()).first() {
                    running.measured_pid = worker;
                    break;
                }
                if Instant::now() >= deadline {
                    stop(running);
                    return Err(io::Error::other("nginx started no worker process"));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(running)
    }
}

/// SIGTERM, wait, then SIGKILL; for nginx, also any worker left behind.
fn stop(mut running: Running) {
    let pid = running.child.id();
    let workers = children(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Ok(Some(_)) = running.child.try_wait() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = running.child.kill();
            let _ = running.child.wait();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    for worker in workers {
        if Path::new(&format!("/proc/{worker}")).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &worker.to_string()])
                .status();
        }
    }
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the parenthesised name: state, ppid, ...
        let ppid = stat
            .rfind(')')
            .and_then(|at| stat[at + 2..].split(' ').nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found.sort_unstable();
    found
}

// ---------------------------------------------------------------------------------------------
// Workloads

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Fanout1k,
    Fanout10k,
    Idle10k,
    Hello,
    Flat1k,
    Pipelined1k,
    Broadcast19k,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::Fanout1k,
        Workload::Fanout10k,
        Workload::Idle10k,
        Workload::Hello,
        Workload::Flat1k,
        Workload::Pipelined1k,
        Workload::Broadcast19k,
    ];

    fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Fanout1k => "fanout-1k",
            Workload::Fanout10k => "fanout-10k",
            Workload::Idle10k => "idle-10k",
            Workload::Hello => "hello",
            Workload::Flat1k => "flat-1k",
            Workload::Pipelined1k => "pipelined-1k",
            Workload::Broadcast19k => "broadcast-19k",
        }
    }

    fn describe(self, quick: bool) -> String {
        let (subs, msgs) = self.size(quick);
        match self {
            Workload::Fanout1k | Workload::Fanout10k => {
                format!("{subs} subscribers, {msgs} messages at {}/s", self.rate())
            }
            Workload::Idle10k => format!("{subs} idle SSE connections"),
            Workload::Hello => format!("small response, `wrk -t1 -c64 -d{}s`", wrk_secs(quick)),
            Workload::Flat1k => format!(
                "{subs} subscribers, {msgs} messages flat out, one publish request at a time"
            ),
            Workload::Pipelined1k => format!(
                "{subs} subscribers, {msgs} messages flat out, {} publish requests in flight",
                self.inflight()
            ),
            Workload::Broadcast19k => {
                format!("{subs} subscribers, {msgs} broadcasts at {}/s", self.rate())
            }
        }
    }

    /// (subscribers, messages); `--quick` scales them down.
    fn size(self, quick: bool) -> (usize, u64) {
        let (subs, msgs) = match self {
            Workload::Fanout1k => (1_000, 1_000),
            Workload::Fanout10k => (10_000, 200),
            Workload::Idle10k => (10_000, 0),
            Workload::Hello => (0, 0),
            Workload::Flat1k | Workload::Pipelined1k => (1_000, 5_000),
            Workload::Broadcast19k => (19_000, 5),
        };
        if quick {
            (subs / 10, (msgs / 5).max(msgs.min(5)))
        } else {
            (subs, msgs)
        }
    }

    fn rate(self) -> f64 {
        match self {
            Workload::Fanout1k => 200.0,
            Workload::Fanout10k => 20.0,
            Workload::Broadcast19k => 2.0,
            _ => 0.0,
        }
    }
}

impl Workload {
    /// Publish requests the loadgen keeps outstanding (pipelined on its one connection).
    fn inflight(self) -> usize {
        match self {
            Workload::Pipelined1k => 16,
            _ => 1,
        }
    }
}

fn wrk_secs(quick: bool) -> u64 {
    if quick {
        2
    } else {
        10
    }
}

/// Runs one workload against a running server; returns the loadgen's (or wrk's) figures.
fn measure(setup: &Setup, kind: Kind, pid: u32, workload: Workload, quick: bool) -> Value {
    let addr = format!("127.0.0.1:{}", kind.port());
    if workload == Workload::Hello {
        return wrk(&addr, pid, wrk_secs(quick));
    }
    let (subs, msgs) = workload.size(quick);
    let mut command = Command::new(setup.bin_dir.join("loadgen"));
    command.args([
        "--addr",
        &addr,
        "--subs",
        &subs.to_string(),
        "--server-pid",
        &pid.to_string(),
        "--publish",
        kind.publish(),
        "--timeout",
        &LOADGEN_TIMEOUT.as_secs().to_string(),
        "--label",
        &format!("{}/{}", kind.name(), workload.name()),
    ]);
    if workload == Workload::Idle10k {
        command.arg("--idle");
    } else {
        command.args([
            "--messages",
            &msgs.to_string(),
            "--rate",
            &workload.rate().to_string(),
            "--inflight",
            &workload.inflight().to_string(),
        ]);
    }
    let output = run_bounded(command, LOADGEN_TIMEOUT + Duration::from_secs(30));
    let json = output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    json.unwrap_or_else(
        || serde_json::json!({ "error": format!("no result from loadgen: {output}") }),
    )
}

/// Runs `wrk -t1 -c64` against `/hello`, with the server's CPU time around it.
fn wrk(addr: &str, pid: u32, secs: u64) -> Value {
    let before = cpu_ticks(pid);
    let mut command = Command::new("wrk");
    command.args([
        "-t1",
        "-c64",
        &format!("-d{secs}s"),
        &format!("http://{addr}/hello"),
    ]);
    let output = run_bounded(command, Duration::from_secs(secs + 30));
    let after = cpu_ticks(pid);
    let field = |name: &str| -> Option<f64> {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    let Some(rps) = field("Requests/sec:") else {
        return serde_json::json!({ "error": format!("no Requests/sec from wrk: {output}") });
    };
    let errors = output
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .unwrap_or("")
        .trim()
        .to_owned();
    if errors.contains("Non-2xx") {
        // A missing route answers fast too: such a number would mean nothing.
        return serde_json::json!({ "error": format!("non-2xx answers from /hello: {errors}") });
    }
    let mut json =
        serde_json::json!({ "workload": "hello", "requests_per_s": rps, "wrk_errors": errors });
    if let (Some(a), Some(b)) = (before, after) {
        let cpu = (b - a) as f64 / 100.0;
        json["server_cpu_s"] = cpu.into();
        json["server_cpu_us_per_request"] = (cpu * 1e6 / (rps * secs as f64)).into();
    }
    json
}

/// Runs a command with a deadline; returns its stdout (and stderr, if it failed).
fn run_bounded(mut command: Command, limit: Duration) -> String {
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("house-compare-{}.out", std::process::id()));
    let (Ok(out), Ok(err)) = (
        std::fs::File::create(&out_path),
        std::fs::File::create(out_path.with_extension("err")),
    ) else {
        return "could not create a temporary file".into();
    };
    let mut child = match command.stdin(Stdio::null()).stdout(out).stderr(err).spawn() {
        Ok(child) => child,
        Err(err) => return format!("could not start {command:?}: {err}"),
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut text = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.is_some_and(|s| s.success()) {
        text.push_str(&std::fs::read_to_string(out_path.with_extension("err")).unwrap_or_default());
    }
    text
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

// ---------------------------------------------------------------------------------------------
// Preparation

fn run(opts: &Options) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/peers");
    std::fs::create_dir_all(root.join("target/bench")).map_err(|e| e.to_string())?;

    let house_example = opts.house_example.clone().unwrap_or_else(|| {
        if root.join("examples/chat.rs").exists() {
            "chat".into()
        } else {
            "bench_server".into()
        }
    });
    step(&format!(
        "building loadgen, ceiling, {house_example} and bench_server (release)"
    ));
    let status = Command::new("cargo")
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--example",
            "loadgen",
            "--example",
            "ceiling",
            "--example",
            &house_example,
            "--example",
            "bench_server",
        ])
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build failed".into());
    }
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or("cannot locate the examples directory")?;

    let mut servers = opts.servers.clone();
    if servers.contains(&Kind::Nchan) && !ensure_nchan() {
        eprintln!("compare: nginx+nchan is not available; skipping it");
        servers.retain(|&k| k != Kind::Nchan);
    }
    if opts.workloads.contains(&Workload::Hello) && !ensure_tool("wrk", &["wrk"]) {
        return Err("wrk is not available (apt-get install wrk)".into());
    }
    let nchan_run = root.join("target/bench/nchan");
    if servers.contains(&Kind::Nchan) {
        render_nchan(&shared.join("nchan/nginx.conf.tmpl"), &nchan_run)?;
    }
    let axum_bin = opts.axum_target.join("release/axum-chat");
    if servers.contains(&Kind::Axum) {
        step("building the axum reference (release, own target dir)");
        let status = Command::new("cargo")
            .args(["build", "--release", "--manifest-path"])
            .arg(shared.join("axum-chat/Cargo.toml"))
            .arg("--target-dir")
            .arg(&opts.axum_target)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() {
            eprintln!("compare: the axum reference did not build; skipping it");
            servers.retain(|&k| k != Kind::Axum);
        }
    }
    let setup = Setup {
        root: root.clone(),
        bin_dir,
        house_example: house_example.clone(),
        house_hello: "bench_server".into(),
        nchan_run,
        axum_bin,
    };

    let load_start = wait_for_quiet(opts.wait_load);
    let machine = machine();
    let started = Instant::now();
    let mut results: Vec<Value> = Vec::new();
    for run in 1..=opts.runs {
        for &workload in &opts.workloads {
            for &kind in &servers {
                step(&format!(
                    "run {run}/{}: {} against {}",
                    opts.runs,
                    workload.name(),
                    kind.name()
                ));
                let mut result = match setup.start(kind, workload) {
                    Ok(running) => {
                        let result =
                            measure(&setup, kind, running.measured_pid, workload, opts.quick);
                        stop(running);
                        result
                    }
                    Err(err) => serde_json::json!({ "error": err.to_string() }),
                };
                result["server"] = kind.name().into();
                result["workload"] = workload.name().into();
                result["run"] = run.into();
                println!("    {}", summary(&result));
                results.push(result);
            }
        }
    }
    let load_end = loadavg();

    let out = root.join(&opts.out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut jsonl = String::new();
    for result in &results {
        let _ = writeln!(jsonl, "{result}");
    }
    let context = Context {
        machine,
        load_start,
        load_end,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        opts: opts.clone(),
        servers: servers.clone(),
        house_example,
    };
    let rows = table_rows(&results, &opts.workloads, &servers);
    write(&out.join("runs.jsonl"), &jsonl)?;
    write(
        &out.join("results.md"),
        &markdown(&rows, &context, &results),
    )?;
    write(&out.join("chart.svg"), &svg(&rows, &servers, &context))?;
    step(&format!(
        "wrote {}/results.md, chart.svg, runs.jsonl",
        opts.out.display()
    ));
    print!("{}", markdown_table(&rows, &servers));
    Ok(())
}

fn step(text: &str) {
    println!("==> {text}");
    let _ = io::stdout().flush();
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn ensure_tool(binary: &str, packages: &[&str]) -> bool {
    let found = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b} || test -x /usr/sbin/{b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found(binary) {
        return true;
    }
    step(&format!("installing {} with apt-get", packages.join(" ")));
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    found(binary)
}

fn ensure_nchan() -> bool {
    let module = Path::new("/usr/lib/nginx/modules/ngx_nchan_module.so");
    if !ensure_tool("nginx", &["nginx-light"]) {
        return false;
    }
    if !module.exists() {
        // nginx alone (e.g. from the CI setup) does not bring the module: install it too.
        step("installing libnginx-mod-nchan with apt-get");
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "libnginx-mod-nchan"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    module.exists()
}

fn render_nchan(template: &Path, run_dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(template).map_err(|e| {
        format!(
            "{}: {e} (is ../shared beside the repository?)",
            template.display()
        )
    })?;
    std::fs::create_dir_all(run_dir).map_err(|e| e.to_string())?;
    let run = run_dir
        .canonicalize()
        .map_err(|e| e.to_string())?
        .display()
        .to_string();
    let conf = text.replace("@WORKERS@", "1").replace("@RUN@", &run);
    write(&run_dir.join("nginx.conf"), &conf)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Waits (at most `limit`) for the 1-minute load average to drop below 1.0; returns the load.
fn wait_for_quiet(limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let load = loadavg();
        let one: f64 = load
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        if one < 1.0 || Instant::now() >= deadline {
            if one >= 1.0 {
                eprintln!("compare: load average is {load}; the figures will be noisier");
            }
            return load;
        }
        step(&format!("waiting for a quieter machine (load {load})"));
        thread::sleep(
            Duration::from_secs(10).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
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
    let version = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().next().unwrap_or("").trim().to_owned()
            })
            .unwrap_or_default()
    };
    format!(
        "{cpus} CPUs ({model}), {mem_gib:.0} GiB RAM, Linux {}; {}; {}; {}",
        kernel.trim(),
        version("rustc", "--version"),
        version("nginx", "-v"),
        version("wrk", "-v"),
    )
}

fn summary(result: &Value) -> String {
    if let Some(err) = result.get("error") {
        return format!("error: {err}");
    }
    let keys = [
        "deliveries_per_s",
        "lat_p99_ms",
        "lost",
        "publish_errors",
        "server_cpu_us_per_delivery",
        "rss_per_conn_bytes",
        "requests_per_s",
        "delivered",
        "expected",
    ];
    keys.iter()
        .filter_map(|k| result.get(*k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Report

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// One row of the results table: a metric of a workload, the median per server.
#[derive(Debug)]
struct Row {
    workload: Workload,
    metric: &'static str,
    unit: &'static str,
    better: Better,
    /// The issue's target for house, as text.
    target: &'static str,
    /// The median per server (in `servers` order); None when no run produced it.
    medians: Vec<Option<f64>>,
}

/// A metric of the results table and the workloads it is reported for.
#[derive(Debug)]
struct Metric {
    /// The workloads whose table gets this row.
    workloads: &'static [Workload],
    /// The key in the loadgen's (or wrk's) JSON figures.
    key: &'static str,
    name: &'static str,
    unit: &'static str,
    better: Better,
    /// The issue's target for house, as text; empty when there is none.
    target: &'static str,
}

/// Every metric row, in table order: each workload's rows come out in the order they appear
/// here. A metric whose target differs between workloads has one row per target.
const METRICS: &[Metric] = {
    use Better::{Higher, Lower};
    use Workload::{Broadcast19k, Fanout10k, Fanout1k, Flat1k, Hello, Idle10k, Pipelined1k};
    const FANOUT: &[Workload] = &[Fanout1k, Fanout10k];
    const FLAT: &[Workload] = &[Flat1k, Pipelined1k];
    &[
        Metric {
            workloads: FANOUT,
            key: "deliveries_per_s",
            name: "deliveries/s",
            unit: "",
            better: Higher,
            target: "",
        },
        Metric {
            workloads: &[Flat1k],
            key: "deliveries_per_s",
            name: "deliveries/s",
            unit: "",
            better: Higher,
            target: "≥ 2× best; ≥ 1.75× ceiling (issue 16)",
        },
        Metric {
            workloads: &[Pipelined1k],
            key: "deliveries_per_s",
            name: "deliveries/s",
            unit: "",
            better: Higher,
            target: "≥ 2× best",
        },
        // Flat out, CPU comes before latency; in the fanouts, after it.
        Metric {
            workloads: FLAT,
            key: "server_cpu_us_per_delivery",
            name: "server CPU per delivery",
            unit: "µs",
            better: Lower,
            target: "",
        },
        Metric {
            workloads: &[Fanout1k, Pipelined1k],
            key: "lat_p99_ms",
            name: "p99 latency",
            unit: "ms",
            better: Lower,
            target: "",
        },
        Metric {
            workloads: &[Flat1k],
            key: "lat_p99_ms",
            name: "p99 latency",
            unit: "ms",
            better: Lower,
            target: "≤ 1.25× ceiling (issue 16)",
        },
        Metric {
            workloads: &[Fanout10k],
            key: "lat_p99_ms",
            name: "p99 latency",
            unit: "ms",
            better: Lower,
            target: "≤ 50 ms",
        },
        Metric {
            workloads: FANOUT,
            key: "server_cpu_us_per_delivery",
            name: "server CPU per delivery",
            unit: "µs",
            better: Lower,
            target: "≤ 0.5× nchan",
        },
        Metric {
            workloads: &[Fanout1k, Fanout10k, Flat1k, Pipelined1k],
            key: "loadgen_cpu_us_per_delivery",
            name: "load generator CPU per delivery",
            unit: "µs",
            better: Lower,
            target: "below the server's",
        },
        Metric {
            workloads: &[Fanout1k, Fanout10k, Flat1k, Pipelined1k],
            key: "lost",
            name: "lost deliveries",
            unit: "",
            better: Lower,
            target: "0",
        },
        Metric {
            workloads: &[Idle10k],
            key: "rss_per_conn_bytes",
            name: "server RSS per connection",
            unit: "B",
            better: Lower,
            target: "≤ 2 KB, ≤ 0.2× nchan; ≤ 400 B (issue 16)",
        },
        Metric {
            workloads: &[Hello],
            key: "requests_per_s",
            name: "requests/s",
            unit: "",
            better: Higher,
            target: "≥ 1.1× best",
        },
        Metric {
            workloads: &[Hello],
            key: "server_cpu_us_per_request",
            name: "server CPU per request",
            unit: "µs",
            better: Lower,
            target: "≤ 1.1× ceiling (issue 16)",
        },
        Metric {
            workloads: &[Broadcast19k],
            key: "subscribed",
            name: "subscribers connected",
            unit: "",
            better: Higher,
            target: "19,000",
        },
        Metric {
            workloads: &[Broadcast19k],
            key: "delivered",
            name: "deliveries (of subscribers × broadcasts)",
            unit: "",
            better: Higher,
            target: "all",
        },
    ]
};

/// The metrics reported for `workload`, in table order.
fn metrics(workload: Workload) -> impl Iterator<Item = &'static Metric> {
    METRICS
        .iter()
        .filter(move |metric| metric.workloads.contains(&workload))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn table_rows(results: &[Value], workloads: &[Workload], servers: &[Kind]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &workload in workloads {
        for metric in metrics(workload) {
            let mut medians = Vec::new();
            for kind in servers {
                let values: Vec<f64> = results
                    .iter()
                    .filter(|r| {
                        r["server"] == kind.name()
                            && r["workload"] == workload.name()
                            && r.get("error").is_none()
                    })
                    .filter_map(|r| r.get(metric.key).and_then(Value::as_f64))
                    .collect();
                medians.push(median(values));
            }
            rows.push(Row {
                workload,
                metric: metric.name,
                unit: metric.unit,
                better: metric.better,
                target: metric.target,
                medians,
            });
        }
    }
    rows
}

impl Row {
    /// The better of the peers' medians (every server but house).
    fn best_peer(&self, servers: &[Kind]) -> Option<(Kind, f64)> {
        let peers = servers
            .iter()
            .zip(&self.medians)
            .filter(|(k, _)| !matches!(**k, Kind::House | Kind::Ceiling))
            .filter_map(|(k, m)| m.map(|m| (*k, m)));
        match self.better {
            Better::Higher => peers.max_by(|a, b| a.1.total_cmp(&b.1)),
            Better::Lower => peers.min_by(|a, b| a.1.total_cmp(&b.1)),
        }
    }

    fn house(&self, servers: &[Kind]) -> Option<f64> {
        self.median_of(Kind::House, servers)
    }

    fn median_of(&self, kind: Kind, servers: &[Kind]) -> Option<f64> {
        servers
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.medians[i])
    }
}

/// A compact figure with its unit: `182k`, `14.2 ms`, `0.73 µs`, `10.2 KB`.
fn format_value(value: f64, unit: &str) -> String {
    if unit == "B" && value.abs() >= 1000.0 {
        return format!("{:.1} KB", value / 1000.0);
    }
    let abs = value.abs();
    let number = if unit.is_empty() && value == value.trunc() && abs < 1e15 {
        // Counts stay exact: 18,972 of 19,000 subscribers must not read as "19.0k".
        let digits = format!("{abs:.0}");
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if value < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if abs >= 100_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if abs >= 10_000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if abs >= 100.0 || (unit.is_empty() && value == value.trunc()) {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if unit.is_empty() {
        number
    } else {
        format!("{number} {unit}")
    }
}

fn markdown_table(rows: &[Row], servers: &[Kind]) -> String {
    let mut out = String::new();
    let names: Vec<&str> = servers.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        out,
        "| workload | metric | {} | house ÷ best peer | house ÷ ceiling | target |",
        names.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---|{}---:|---:|---|",
        "---:|".repeat(servers.len())
    );
    for row in rows {
        let cells: Vec<String> = row
            .medians
            .iter()
            .map(|m| m.map_or("–".into(), |v| format_value(v, row.unit)))
            .collect();
        let ratio = match (row.house(servers), row.best_peer(servers)) {
            (Some(h), Some((kind, best))) if best != 0.0 => {
                format!("{:.2} (vs {})", h / best, kind.name())
            }
            _ => "–".into(),
        };
        let to_ceiling = match (row.house(servers), row.median_of(Kind::Ceiling, servers)) {
            (Some(h), Some(c)) if c != 0.0 => format!("{:.2}", h / c),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} ({} is better) | {} | {} | {} | {} |",
            row.workload.name(),
            row.metric,
            if row.better == Better::Higher {
                "higher"
            } else {
                "lower"
            },
            cells.join(" | "),
            ratio,
            to_ceiling,
            if row.target.is_empty() {
                "–"
            } else {
                row.target
            },
        );
    }
    out
}

struct Context {
    machine: String,
    load_start: String,
    load_end: String,
    minutes: f64,
    opts: Options,
    servers: Vec<Kind>,
    house_example: String,
}

fn markdown(rows: &[Row], ctx: &Context, results: &[Value]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# House vs nginx+nchan vs axum, beside the featureless server\n"
    );
    let _ = writeln!(
        out,
        "Written by `cargo run --release --example compare -- {}` (examples/compare.rs). \
         Medians of {} run(s) per server and workload; each server is started fresh for each \
         workload; the load generator (examples/loadgen.rs) runs on the same machine.\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        ctx.opts.runs
    );
    let _ = writeln!(out, "- machine: {}", ctx.machine);
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min) before: {}; after: {} (the benchmark itself loads both cores); took {:.1} min",
        ctx.load_start, ctx.load_end, ctx.minutes
    );
    let _ = writeln!(
        out,
        "- house: `examples/{}.rs` (for `hello`: `examples/bench_server.rs`, which has `/hello`); \
         nchan: nginx with 1 worker, config from `../shared/peers/nchan/`; \
         axum: `../shared/peers/axum-chat --runtime current`; \
         ceiling: `examples/ceiling.rs` (the featureless single-threaded mio server, Nagle off)",
        ctx.house_example
    );
    if ctx.opts.quick {
        let _ = writeln!(
            out,
            "- **`--quick`: scaled-down smoke run, not a measurement**"
        );
    }
    let _ = writeln!(out, "\nWorkloads:\n");
    for workload in &ctx.opts.workloads {
        let _ = writeln!(
            out,
            "- `{}`: {}",
            workload.name(),
            workload.describe(ctx.opts.quick)
        );
    }
    let _ = writeln!(out, "\n![chart](chart.svg)\n");
    out.push_str(&markdown_table(rows, &ctx.servers));
    let _ = writeln!(
        out,
        "\nRatios are house's median over the better peer's median (nchan, axum), and over the \
         featureless server's (the ceiling, not a peer); for lower-is-better rows a ratio below 1 \
         favours house. Server CPU is utime + stime of the server process (nginx: \
         its worker) from /proc over the run; RSS per connection is the growth of VmRSS while \
         the idle connections are opened, divided by their number.\n"
    );
    let failures: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "Runs that failed:\n");
        for failure in failures {
            let _ = writeln!(
                out,
                "- {} / {} run {}: {}",
                failure["server"], failure["workload"], failure["run"], failure["error"]
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Every run's figures are in `runs.jsonl`.");
    out
}

/// A horizontal bar chart: one panel per table row, one bar per server, scaled to the row's
/// largest value.
fn svg(rows: &[Row], servers: &[Kind], ctx: &Context) -> String {
    const WIDTH: f64 = 760.0;
    const LABEL: f64 = 70.0;
    const BAR: f64 = 15.0;
    const GAP: f64 = 4.0;
    const HEADER: f64 = 22.0;
    const PANEL_GAP: f64 = 12.0;
    let colour = |kind: Kind| match kind {
        Kind::House => "#d9480f",
        Kind::Ceiling => "#868e96",
        Kind::Nchan => "#1971c2",
        Kind::Axum => "#2f9e44",
    };
    let shown: Vec<&Row> = rows
        .iter()
        .filter(|r| r.metric != "lost deliveries" && !r.metric.starts_with("load generator"))
        .collect();
    let panel = HEADER + servers.len() as f64 * (BAR + GAP) + PANEL_GAP;
    let height = 70.0 + shown.len() as f64 * panel;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">house vs nginx+nchan vs axum vs the featureless server (medians of {} run(s){})</text>"#,
        ctx.opts.runs,
        if ctx.opts.quick { ", --quick" } else { "" }
    );
    let mut x = 10.0;
    for &kind in servers {
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="36" width="12" height="12" fill="{}"/><text x="{}" y="46">{}</text>"#,
            colour(kind),
            x + 16.0,
            kind.name()
        );
        x += 80.0;
    }
    let mut y = 64.0;
    let span = WIDTH - LABEL - 110.0;
    for row in shown {
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}" font-weight="bold">{}: {}{} ({} is better)</text>"#,
            y + 14.0,
            row.workload.name(),
            row.metric,
            if row.unit.is_empty() {
                String::new()
            } else {
                format!(", {}", row.unit)
            },
            if row.better == Better::Higher {
                "higher"
            } else {
                "lower"
            },
        );
        let max = row.medians.iter().flatten().copied().fold(0.0f64, f64::max);
        let mut bar_y = y + HEADER;
        for (i, &kind) in servers.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LABEL - 6.0,
                bar_y + BAR - 3.0,
                kind.name()
            );
            match row.medians[i] {
                Some(value) => {
                    let w = if max > 0.0 {
                        (value / max * span).max(1.0)
                    } else {
                        1.0
                    };
                    let _ = writeln!(
                        out,
                        r#"<rect x="{LABEL}" y="{bar_y}" width="{w:.1}" height="{BAR}" fill="{}"/><text x="{:.1}" y="{}">{}</text>"#,
                        colour(kind),
                        LABEL + w + 5.0,
                        bar_y + BAR - 3.0,
                        format_value(value, row.unit),
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{LABEL}" y="{}" fill="#888">no result</text>"##,
                        bar_y + BAR - 3.0
                    );
                }
            }
            bar_y += BAR + GAP;
        }
        y += panel;
    }
    out.push_str("</svg>\n");
    out
}
