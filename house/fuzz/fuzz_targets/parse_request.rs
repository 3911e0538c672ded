//! The request parser on arbitrary bytes: it never panics, a complete request stays within the
//! buffer and the size limit, its body is exactly `Content-Length` bytes, and every prefix of
//! the buffer parses as `Partial` (shorter than the request) or identically (not shorter).
#![no_main]

use house::parse::{parse_request, Parsed};
use house_fuzz::{describe, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((max_size, max_headers, buf)) = limits(data) else {
        return;
    };
    let result = parse_request(buf, max_size, max_headers);
    let Ok(Parsed::Complete { request, len, .. }) = &result else {
        return;
    };
    let len = *len;
    assert!(
        len <= buf.len() && len <= max_size,
        "len {len} of {}",
        buf.len()
    );

    let declared = request.header("content-length").map(|v| {
        v.trim()
            .parse::<usize>()
            .expect("a complete request has a numeric content-length")
    });
    assert_eq!(request.body().len(), declared.unwrap_or(0));
    assert_eq!(request.body(), &buf[len - request.body().len()..len]);

    // Every cut would be quadratic; these reach the head/body boundary, the last byte and a
    // spread of others.
    let expected = describe(&result);
    let head_len = len - request.body().len();
    let cuts = [
        0,
        1,
        head_len.saturating_sub(1),
        head_len,
        len / 2,
        len - 1,
        len,
        buf.len(),
    ];
    let spread = (0..buf.len()).step_by(buf.len() / 16 + 1);
    for cut in cuts
        .into_iter()
        .chain(spread)
        .filter(|&cut| cut <= buf.len())
    {
        let prefix = parse_request(&buf[..cut], max_size, max_headers);
        if cut < len {
            assert!(
                matches!(prefix, Ok(Parsed::Partial)),
                "cut {cut}: {prefix:?}"
            );
        } else {
            assert_eq!(describe(&prefix), expected, "cut {cut}");
        }
    }
});
