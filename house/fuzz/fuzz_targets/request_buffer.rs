//! The request buffer as the server drives it: bytes arrive in chunks of arbitrary sizes, each
//! chunk is appended and parsed, and each complete request is consumed. The requests, the final
//! error (if any) and the bytes left over must be the same as parsing everything at once.
#![no_main]

use house::parse::{parse_request, Parsed};
use house_fuzz::{describe, limits};
use libfuzzer_sys::fuzz_target;

/// What a connection saw: each parse that consumed a request or failed, and the unparsed rest.
#[derive(Debug, PartialEq)]
struct Trace {
    results: Vec<String>,
    rest: Vec<u8>,
}

fn feed<'a>(chunks: impl Iterator<Item = &'a [u8]>, max_size: usize, max_headers: usize) -> Trace {
    let mut buf = Vec::new();
    let mut results = Vec::new();
    // A read of nothing is the peer closing, not data to parse.
    for chunk in chunks.filter(|chunk| !chunk.is_empty()) {
        buf.extend_from_slice(chunk);
        loop {
            let result = parse_request(&buf, max_size, max_headers);
            match result {
                Ok(Parsed::Partial) => break,
                Ok(Parsed::Complete { len, .. }) => {
                    results.push(describe(&result));
                    buf.drain(..len);
                }
                Err(_) => {
                    // The server answers the error and closes: nothing after it counts.
                    results.push(describe(&result));
                    return Trace {
                        results,
                        rest: Vec::new(),
                    };
                }
            }
        }
    }
    Trace { results, rest: buf }
}

fuzz_target!(|data: &[u8]| {
    let Some((max_size, max_headers, data)) = limits(data) else {
        return;
    };
    // Then a count of chunk sizes, the sizes (cycled), and the stream itself.
    let Some((&count, data)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = data.split_at(usize::from(count % 16).min(data.len()));
    let whole = feed(std::iter::once(stream), max_size, max_headers);

    let mut chunks = Vec::new();
    let mut at = 0;
    for &size in sizes
        .iter()
        .cycle()
        .take(if sizes.is_empty() { 0 } else { stream.len() })
    {
        let end = (at + usize::from(size)).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
        if at == stream.len() {
            break;
        }
    }
    if at < stream.len() {
        // No sizes given: one byte at a time, the slowest sender.
        chunks.extend(stream[at..].chunks(1));
    }
    let chunked = feed(chunks.into_iter(), max_size, max_headers);
    assert_eq!(chunked, whole);
});
