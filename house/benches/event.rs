//! `cargo bench -p house-sse --bench event`
//!
//! Event framing: the bytes each published event becomes (once per publish, shared by every
//! subscriber), for a chat message, a JSON payload, a multi-line payload and a large one.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use house::Event;

fn to_bytes(c: &mut Criterion) {
    let large = "x".repeat(16 * 1024);
    let multiline = "line one\nline two\r\nline three\rline four\n".repeat(8);
    let events = [
        (
            "chat",
            Event::new(r#"{"name":"ann","message":"ms12t345678n9"}"#).id("k3x9-42"),
        ),
        (
            "json",
            Event::json(
                &serde_json::json!({ "name": "ann", "message": "hello", "at": 1_700_000_000 }),
            )
            .id("k3x9-43")
            .event("chat"),
        ),
        ("multiline", Event::new(multiline)),
        ("large_16k", Event::new(large)),
    ];
    let mut group = c.benchmark_group("event_to_bytes");
    for (name, event) in &events {
        group.throughput(Throughput::Bytes(event.to_bytes().len() as u64));
        group.bench_function(*name, |b| b.iter(|| black_box(event).to_bytes()));
    }
    group.finish();

    // What a handler does per publish: build the event, then frame it.
    c.bench_function("event_json_build_and_frame", |b| {
        b.iter(|| {
            Event::json(
                &serde_json::json!({ "name": black_box("ann"), "message": black_box("hello") }),
            )
            .id("k3x9-44")
            .to_bytes()
        })
    });
}

criterion_group!(benches, to_bytes);
criterion_main!(benches);
