//! `cargo run --release --example publish_bench`
//!
//! What one publish costs the hub, without sockets: a handler's `hub.publish` on a `Hub` of its
//! own, with the default limits. Two shapes, each timed over several rounds (a fresh hub each
//! round) and reported as the median:
//!
//!   one channel     1,000,000 publishes to `lobby` (its history full after 256)
//!   100k rooms        100,000 publishes, each to a room of its own (`room-0`, `room-1`, ...),
//!                   within the default history budgets
//!   200k rooms        200,000 publishes, each to a room of its own, past the default budget
//!                   of 100,000 channels with history: the second half each evict a room
//!
//! Run it before and after a change to the publish path, on an otherwise quiet machine.

use std::time::{Duration, Instant};

use house::{Event, Hub};

/// Rounds per shape; the median is reported.
const ROUNDS: usize = 7;

/// A chat message's size, as the bench server publishes it.
const DATA: &str = r#"{"name":"bench","message":"hello from the publish bench"}"#;

fn main() {
    let one = median(|| {
        let mut hub = Hub::default();
        time(1_000_000, |_| {
            // The bench measures the hub: a publish on a live hub cannot fail.
            let _ = hub.publish("lobby", Event::new(DATA));
        })
    });
    let rooms = |count: usize| {
        median(|| {
            let mut hub = Hub::default();
            let names: Vec<String> = (0..count).map(|i| format!("room-{i}")).collect();
            time(names.len(), |i| {
                let _ = hub.publish(&names[i], Event::new(DATA));
            })
        })
    };
    let (within, past) = (rooms(100_000), rooms(200_000));
    for (shape, per) in [
        ("one channel", one),
        ("100k rooms", within),
        ("200k rooms", past),
    ] {
        println!(
            "{shape:>13}: {:>6.0} ns/publish, {:>9.0} publishes/s (median of {ROUNDS})",
            per.as_nanos() as f64,
            1.0 / per.as_secs_f64()
        );
    }
}

/// The time per call of `publish`, called `n` times.
fn time(n: usize, mut publish: impl FnMut(usize)) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        publish(i);
    }
    start.elapsed() / n as u32
}

/// The median of [`ROUNDS`] runs of `round`.
fn median(mut round: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| round()).collect();
    times.sort_unstable();
    times[ROUNDS / 2]
}
