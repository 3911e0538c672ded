//! What a stalled subscriber pins in the kernel: its stream socket's send queue stays within
//! the configured send buffer (read from `/proc/net/tcp`, where `ss` reads it too) until the
//! user-space queue cap drops the subscriber.
#![allow(clippy::unwrap_used)]

mod support;

use house::{Config, Event, Route, Subscribe};
use support::*;

/// Most 1 KiB events published per run: 16 MiB, far past both buffers.
const MAX_EVENTS: usize = 16 * 1024;

/// Bytes queued in the kernel for the connection from `local_port` to `remote_port` on
/// loopback: the `tx_queue` column (unacknowledged bytes) of `/proc/net/tcp`.
fn kernel_send_queue(local_port: u16, remote_port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit_once(':')?.1, 16).ok();
        if port(fields[1])? != local_port || port(fields[2])? != remote_port {
            return None;
        }
        usize::from_str_radix(fields[4].split_once(':')?.0, 16).ok()
    })
}

/// Stalls one subscriber of a server with `config`, publishes until the server drops it, and
/// returns the most its socket ever held in the kernel's send queue.
fn peak_kernel_queue(config: Config) -> usize {
    let server = TestServer::start(
        config,
        vec![
            Route::stream("/source", |_| Subscribe::to("slow")),
            count_route(),
        ],
    );
    let stalled = stalled_subscriber(&server, "/source");
    wait_for("the subscriber", || {
        body_of(&server.get("/count?channel=slow")) == "1"
    });
    let (server_port, client_port) = (server.addr.port(), stalled.local_addr().unwrap().port());
    let event = "x".repeat(1024);
    let mut peak = 0;
    for published in (0..MAX_EVENTS).step_by(64) {
        for _ in 0..64 {
            server
                .handle
                .publish("slow", Event::new(event.clone()))
                .unwrap();
        }
        // The count goes through the loop, so the publishes before it are written by then.
        let subscribers = body_of(&server.get("/count?channel=slow")).to_owned();
        peak = peak.max(kernel_send_queue(server_port, client_port).unwrap_or(0));
        if subscribers == "0" {
            return peak;
        }
        assert!(
            published + 64 < MAX_EVENTS,
            "the stalled subscriber was never dropped"
        );
    }
    unreachable!()
}

#[test]
fn a_stalled_subscriber_pins_no_more_than_its_send_buffer_in_the_kernel() {
    let buffer = 64 * 1024;
    let limited = peak_kernel_queue(Config::default().with_stream_send_buffer(buffer));
    // Linux doubles SO_SNDBUF for its bookkeeping; the payload it holds stays below that.
    assert!(
        limited > 0 && limited <= 2 * buffer,
        "{limited} bytes queued in the kernel"
    );
    // Left to the kernel's autotuning, the same stall pins far more (2.8 MB where this was
    // measured, against 98 KB limited).
    let autotuned = peak_kernel_queue(Config::default().with_stream_send_buffer(0));
    assert!(
        autotuned > 4 * limited,
        "autotuned {autotuned} bytes, limited {limited}"
    );
}
