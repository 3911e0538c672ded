//! `cargo bench -p house-sse --bench parse`
//!
//! Request parsing and form decoding: what the loop does for every request before a handler
//! runs. The inputs are the requests the benchmarks send: a chat publish, a subscribe, a small
//! GET as wrk sends it, and a form-encoded POST.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use house::parse::{decode_form, parse_request, Parsed};

/// The defaults of `house::limits`, as the server passes them.
const MAX_SIZE: usize = house::limits::MAX_REQUEST_SIZE;
const MAX_HEADERS: usize = house::limits::MAX_HEADERS;

const REQUESTS: &[(&str, &[u8])] = &[
    (
        "publish",
        b"GET /send-message?room=lobby&name=ann&message=ms12t345678n9 HTTP/1.1\r\nHost: 127.0.0.1:4500\r\n\r\n",
    ),
    (
        "subscribe",
        b"GET /source?room=lobby HTTP/1.1\r\nHost: 127.0.0.1:4500\r\nAccept: text/event-stream\r\n\r\n",
    ),
    ("wrk_hello", b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:4500\r\n\r\n"),
    (
        "browser_get",
        b"GET /source?room=lobby HTTP/1.1\r\nHost: localhost:4500\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/event-stream\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: http://localhost:4500/\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-origin\r\n\r\n",
    ),
    (
        "form_post",
        b"POST /send-message HTTP/1.1\r\nHost: 127.0.0.1:4500\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 48\r\n\r\nroom=lobby&name=ann&message=hello+there%2C+world",
    ),
];

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_request");
    for (name, bytes) in REQUESTS {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(
                || match parse_request(black_box(bytes), MAX_SIZE, MAX_HEADERS) {
                    Ok(Parsed::Complete { request, .. }) => request,
                    other => panic!("{name} did not parse: {other:?}"),
                },
            )
        });
    }
    // An incomplete head is parsed again each time more bytes arrive.
    let partial = &REQUESTS[3].1[..200];
    group.bench_function("browser_get_partial", |b| {
        b.iter(|| parse_request(black_box(partial), MAX_SIZE, MAX_HEADERS))
    });
    group.finish();
}

fn form(c: &mut Criterion) {
    let inputs: &[(&str, &[u8])] = &[
        ("plain", b"room=lobby&name=ann&message=ms12t345678n9"),
        (
            "escaped",
            b"room=lobby&name=ann&message=hello+there%2C+w%C3%B6rld%21+%F0%9F%91%8B",
        ),
        ("empty", b""),
    ];
    let mut group = c.benchmark_group("decode_form");
    for (name, bytes) in inputs {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| decode_form(black_box(bytes)).expect("valid form"))
        });
    }
    group.finish();
}

criterion_group!(benches, parse, form);
criterion_main!(benches);
