//! The budgets of all channels' history over real sockets: which histories go first, what a
//! stream resuming into one that went gets, the metrics, and the memory 100,000 rooms take.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use house::{Config, Event, HistoryBudget, Route, Stats};
use support::*;

fn routes() -> Vec<Route> {
    let mut routes = room_routes();
    routes.extend([
        // `count` events of `size` bytes, each to a room of its own: `{prefix}{from}`, ...
        Route::closing("/flood", |ctx| {
            let param = |name, default: usize| {
                ctx.request
                    .param(name)
                    .map_or(default, |v| v.parse().unwrap())
            };
            let (from, count, size) = (param("from", 0), param("count", 1), param("size", 1));
            let prefix = ctx.request.param("prefix").unwrap_or("r").to_owned();
            let data = "x".repeat(size);
            for i in from..from + count {
                ctx.hub
                    .publish(&format!("{prefix}{i}"), Event::new(data.clone()))?;
            }
            Ok::<_, house::PublishError>("flooded")
        }),
        // How many events `room` keeps (0 when it is gone).
        Route::closing("/history", |ctx| {
            let room = ctx.request.param("room").unwrap_or("");
            let kept = ctx.hub.channels().find(|c| c.name() == room);
            kept.map_or(0, |c| c.history_len()).to_string()
        }),
        Route::closing("/run", |ctx| ctx.hub.run_id().to_owned()),
        count_route(),
        house::metrics_route("/metrics"),
    ]);
    routes
}

/// How many events `room` keeps.
fn history(server: &TestServer, room: &str) -> usize {
    body_of(&server.get(&format!("/history?room={room}")))
        .parse()
        .unwrap()
}

fn send(server: &TestServer, room: &str, text: &str) {
    let response = server.get(&format!("/send?room={room}&text={text}"));
    assert_eq!(status_of(&response), 200, "{response}");
}

/// The stats once the loop's sweep has counted `published` events.
fn stats_after(server: &TestServer, published: u64) -> Stats {
    wait_for("the stats to count the publishes", || {
        server.handle.stats().events_published == published
    });
    server.handle.stats()
}

/// What one event with `data` bytes, with a one-digit `RUN-N` id, costs the bytes budget in a
/// channel named `room` that keeps only it: as `HISTORY_BUDGET_BYTES` documents it.
fn one_event_channel(room: &str, data: usize) -> usize {
    let frame = "id: 0123456789-1\n".len() + "data: \n\n".len() + data;
    frame + 64 + 512 + 2 * room.len()
}

#[test]
fn least_recently_published_idle_history_goes_first() {
    let one = one_event_channel("r0", 1000);
    // Three one-event rooms fit, and most of an event more.
    let config = Config::default().with_history_budget_bytes(3 * one + 800);
    let server = TestServer::start(config, routes());
    let text = "y".repeat(1000);
    for room in ["r0", "r1", "r2"] {
        send(&server, room, &text);
    }
    // r1's second event passes the budget: r0, published to least recently, goes.
    send(&server, "r1", &text);
    assert_eq!(
        ["r0", "r1", "r2"].map(|room| history(&server, room)),
        [0, 2, 1]
    );
    // r3 passes it again: r2 is the least recently published now (r1 had an event since).
    send(&server, "r3", &text);
    assert_eq!(
        ["r0", "r1", "r2", "r3"].map(|room| history(&server, room)),
        [0, 2, 0, 1]
    );
    let stats = stats_after(&server, 5);
    assert_eq!(stats.history_evicted(HistoryBudget::Bytes), 2);
    assert_eq!(stats.history_evicted(HistoryBudget::Channels), 0);
    assert!(stats.history_bytes <= (3 * one + 800) as u64);
    // The dropped rooms are gone, not kept empty.
    assert_eq!(stats.channels, 2);
}

#[test]
fn a_channel_with_subscribers_keeps_its_history_while_idle_ones_go() {
    let config = Config::default().with_history_budget_channels(2);
    let server = TestServer::start(config, routes());
    let mut stream = subscribe(&server, "/source?room=busy");
    wait_for("the subscription", || {
        body_of(&server.get("/count?channel=busy")) == "1"
    });
    send(&server, "busy", "kept");
    read_until(&mut stream, "data: kept");
    let flood = server.get("/flood?prefix=idle&count=10");
    assert_eq!(status_of(&flood), 200, "{flood}");
    // `busy` is the oldest, but has a subscriber: each idle room went in its turn instead.
    assert_eq!(history(&server, "busy"), 1);
    assert_eq!(history(&server, "idle8"), 0);
    assert_eq!(history(&server, "idle9"), 1);
    let stats = stats_after(&server, 11);
    assert_eq!(stats.history_evicted(HistoryBudget::Channels), 9);
    // Once nobody listens, it is the least recently published idle room: the next to go.
    drop(stream);
    wait_for("the subscriber to leave", || {
        body_of(&server.get("/count?channel=busy")) == "0"
    });
    send(&server, "late", "x");
    assert_eq!(history(&server, "busy"), 0);
    assert_eq!(history(&server, "idle9"), 1);
}

#[test]
fn the_channel_budget_keeps_the_rooms_published_to_last() {
    let config = Config::default().with_history_budget_channels(5);
    let server = TestServer::start(config, routes());
    let flood = server.get("/flood?prefix=r&count=50&size=10");
    assert_eq!(status_of(&flood), 200, "{flood}");
    let stats = stats_after(&server, 50);
    assert_eq!(stats.channels, 5);
    assert_eq!(stats.history_evicted(HistoryBudget::Channels), 45);
    assert_eq!(stats.history_evicted(HistoryBudget::Bytes), 0);
    assert_eq!(
        stats.history_bytes,
        (45..50)
            .map(|i| one_event_channel(&format!("r{i}"), 10) + 1)
            .sum::<usize>() as u64,
        "two-digit ids, one byte longer than `one_event_channel` counts"
    );
    assert_eq!(history(&server, "r44"), 0);
    assert_eq!(history(&server, "r45"), 1);
}

#[test]
fn resuming_into_an_evicted_history_resets_and_into_a_kept_one_replays() {
    let config = Config::default().with_history_budget_channels(2);
    let server = TestServer::start(config, routes());
    let run = body_of(&server.get("/run")).to_owned();
    send(&server, "gone", "g1");
    send(&server, "kept", "k2");
    send(&server, "kept", "k3");
    // A third room: `gone`, the least recently published, loses its history (and goes).
    send(&server, "other", "o4");
    assert_eq!(history(&server, "gone"), 0);

    let resume = |room: &str, last: &str| {
        let mut stream = server.connect();
        stream
            .write_all(
                format!("GET /source?room={room} HTTP/1.1\r\nLast-Event-ID: {run}-{last}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        stream
    };
    let mut gone = resume("gone", "0");
    let text = read_until(&mut gone, "event: reset\n");
    assert!(!text.contains("data: g1"), "{text}");

    let mut kept = resume("kept", "2");
    let text = read_until(&mut kept, "data: k3\n\n");
    assert!(!text.contains("event: reset"), "{text}");
    assert_eq!(sse_events(&text), [(format!("{run}-3"), "k3".to_owned())]);

    // Both stay subscribed: the next event reaches them live.
    wait_for("both subscriptions", || {
        ["gone", "kept"]
            .iter()
            .all(|room| body_of(&server.get(&format!("/count?channel={room}"))) == "1")
    });
    send(&server, "gone", "g5");
    read_until(&mut gone, "data: g5");
    assert_eq!(stats_after(&server, 5).gap_signals, 1);
}

#[test]
fn evictions_are_counted_in_the_metrics() {
    // Three channels, and not quite three large ones.
    let large = one_event_channel("b0", 2000);
    let config = Config::default()
        .with_history_budget_channels(3)
        .with_history_budget_bytes(3 * large - 100);
    let server = TestServer::start(config, routes());
    // Small events: the channel budget evicts 7.
    assert_eq!(
        status_of(&server.get("/flood?prefix=c&count=10&size=1")),
        200
    );
    // Large ones: each pushes a small room out by count, and the third a large one by bytes.
    assert_eq!(
        status_of(&server.get("/flood?prefix=b&count=3&size=2000")),
        200
    );
    stats_after(&server, 13);
    let metrics = body_of(&server.get("/metrics")).to_owned();
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse::<u64>()
            .unwrap()
    };
    let channels = sample("house_history_evictions_total{budget=\"channels\"}");
    let bytes = sample("house_history_evictions_total{budget=\"bytes\"}");
    assert_eq!((channels, bytes), (7 + 3, 1), "{metrics}");
    let held = sample("house_history_bytes");
    assert!(held > 2 * large as u64 && held < 3 * large as u64, "{held}");
}

/// The byte budget the memory test runs with.
const RSS_BUDGET: usize = 8 * 1024 * 1024;

/// What the server may grow by beyond [`RSS_BUDGET`] while 100,000 rooms are published to:
/// the channel map's spare room, the allocator's slack, and the requests' buffers.
const RSS_SLACK: usize = 4 * 1024 * 1024;

/// Rooms the memory test publishes one event to each.
const ROOMS: usize = 100_000;

/// Set in the child process the memory test runs its server in, to `budget` or `unbounded`.
const CHILD_ENV: &str = "HOUSE_BUDGETS_CHILD";

/// The resident memory of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// In the child: starts a server (budgeted or not), publishes one event to each of [`ROOMS`]
/// rooms, and prints how far the process's resident memory grew, with the stats.
fn measure_rooms(budgeted: bool) {
    let config = if budgeted {
        Config::default().with_history_budget_bytes(RSS_BUDGET)
    } else {
        Config::default()
            .with_history_budget_bytes(usize::MAX)
            .with_history_budget_channels(usize::MAX)
    };
    let server = TestServer::start(config, routes());
    // Warm up: the loop's buffers, a few rooms, and the stats.
    assert_eq!(status_of(&server.get("/flood?prefix=w&count=100")), 200);
    stats_after(&server, 100);
    let before = rss();
    let batch = 10_000;
    for from in (0..ROOMS).step_by(batch) {
        let target = format!("/flood?prefix=room-&from={from}&count={batch}&size=40");
        assert_eq!(status_of(&server.get(&target)), 200);
    }
    let stats = stats_after(&server, (100 + ROOMS) as u64);
    let grown = rss().saturating_sub(before);
    // The harness may have begun the line with the test's name.
    println!(
        "\nrooms: grown={grown} channels={} history_bytes={} evictions={}",
        stats.channels,
        stats.history_bytes,
        stats.history_evictions.iter().sum::<u64>()
    );
}

/// Runs [`measure_rooms`] in a child process of this test binary (so no other test's memory
/// counts), and returns what it printed: (grown, channels, history bytes, evictions).
fn measure_in_child(mode: &str) -> [usize; 4] {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "hundred_thousand_rooms_stay_within_the_byte_budget",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the {mode} child took longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{mode} child failed: {out}");
    let line = out
        .lines()
        .find_map(|line| Some(line.split_once("rooms: ")?.1))
        .unwrap_or_else(|| panic!("no figures from the {mode} child: {out}"));
    let mut figures = line
        .split(' ')
        .map(|pair| pair.split_once('=').unwrap().1.parse().unwrap());
    [(); 4].map(|()| figures.next().unwrap())
}

#[test]
fn hundred_thousand_rooms_stay_within_the_byte_budget() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        measure_rooms(mode == "budget");
        return;
    }
    let [grown, channels, held, evictions] = measure_in_child("budget");
    println!("budgeted: grew {grown} bytes, {channels} channels, {held} held, {evictions} evicted");
    assert!(held <= RSS_BUDGET, "{held}");
    assert!(
        grown <= RSS_BUDGET + RSS_SLACK,
        "grew {grown} bytes, more than the budget {RSS_BUDGET} + {RSS_SLACK}"
    );
    assert!(channels < ROOMS && evictions > 0, "{channels} {evictions}");

    let [grown, channels, held, evictions] = measure_in_child("unbounded");
    println!(
        "unbounded: grew {grown} bytes, {channels} channels, {held} held, {evictions} evicted"
    );
    assert_eq!((channels, evictions), (ROOMS + 100, 0));
    assert!(
        grown > RSS_BUDGET + RSS_SLACK,
        "without the budget, {ROOMS} rooms grew only {grown} bytes"
    );
}
