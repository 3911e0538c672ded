//! Gzip for streams, computed once per event and shared by every subscriber (see
//! [`Config::with_compression`](crate::Config::with_compression)).
//!
//! A compressed stream's body is the 10-byte gzip header, then chunks: each one the raw
//! deflate of one piece of the stream (an event, a heartbeat, a stream's opening) from a
//! compressor reset to empty, ended by a sync flush (non-final blocks, then the empty stored
//! block `00 00 ff ff`). A chunk refers back to nothing before it and ends on a byte boundary,
//! so any sequence of chunks is a valid deflate stream: the chunk of a published event is
//! computed once and queued, as it is, to every compressing subscriber, whatever each got
//! before.
//!
//! The gzip trailer (CRC-32 and length of everything sent) is never written: it would need
//! state per stream, and a stream only ends when its connection closes. Clients decode as
//! bytes arrive, so each event is delivered whole when its chunk does; at the close, a client
//! that checks the trailer sees a truncated body after the last event. curl, Python `httpx`,
//! Node's `fetch` and Chromium's `EventSource` do not report it (tests/compression_clients.rs,
//! tests/compression_browser.rs); Node's `zlib.createGunzip()` does, unless given
//! `finishFlush: Z_SYNC_FLUSH` (as `fetch` gives it).

use std::cell::RefCell;
use std::sync::LazyLock;

use flate2::{Compress, Compression, FlushCompress};

/// The gzip member header (RFC 1952): magic, method deflate, no flags, no time, no extra
/// flags, operating system unknown. Sent once, at the start of a compressed stream's body.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The compression level (0–9). Each chunk is one event, so the longer searches of higher
/// levels find little more, and cost CPU once per event all the same.
const LEVEL: u32 = 6;

/// Largest stored (uncompressed) deflate block.
const STORED_MAX: usize = 0xffff;

thread_local! {
    /// One compressor per thread (the server loop's), reset before each chunk: resetting clears
    /// its window and hash tables, which a chunk must not refer back to, without allocating
    /// them again.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
}

/// The `reset` gap signal as a chunk, built once (see [`crate::sse::reset_event`]).
static RESET_CHUNK: LazyLock<Vec<u8>> = LazyLock::new(|| deflate(&crate::sse::reset_event()));

/// `bytes` as one chunk of a compressed stream: raw deflate from an empty window, ended by a
/// sync flush. Empty input gives an empty chunk.
pub(crate) fn deflate(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        return Vec::new();
    }
    COMPRESSOR
        .with(|compressor| {
            let mut compressor = compressor.try_borrow_mut().ok()?;
            compressor.reset();
            // Room for incompressible input (5 bytes per stored block) and the flush marker.
            let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 1024 + 64);
            loop {
                let taken = compressor.total_in() as usize;
                compressor
                    .compress_vec(&bytes[taken..], &mut out, FlushCompress::Sync)
                    .ok()?;
                // The flush is complete once all input is taken with output room to spare.
                if compressor.total_in() as usize == bytes.len() && out.len() < out.capacity() {
                    return Some(out);
                }
                out.reserve(out.capacity());
            }
        })
        .unwrap_or_else(|| stored(bytes))
}

/// `bytes` as non-final stored blocks: valid deflate that does not compress, should the
/// compressor ever fail.
fn stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / STORED_MAX * 5 + 5);
    for block in bytes.chunks(STORED_MAX) {
        // BFINAL 0, BTYPE 00, padded to the byte: a chunk always starts on a byte boundary.
        out.push(0);
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// The `reset` gap signal's chunk.
pub(crate) fn reset_chunk() -> &'static [u8] {
    &RESET_CHUNK
}

/// Whether a request's `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`) with a weight
/// above 0, or else `*` with one. `gzip;q=0` refuses, even after `*`; a malformed weight
/// counts as 0. No header: no.
///
/// `gzip, deflate, br` → yes; `gzip;q=0.5` → yes; `gzip;q=0` → no; `*` → yes;
/// `br, *;q=0` → no; `identity` → no.
pub(crate) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut any = false;
    for item in header.split(',') {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or_default().trim();
        let weighted = params
            .map(str::trim)
            .find_map(|param| param.strip_prefix("q=").or(param.strip_prefix("Q=")));
        let accepted = weighted.is_none_or(is_positive_weight);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return accepted;
        }
        if coding == "*" {
            any = accepted;
        }
    }
    any
}

/// Whether `qvalue` (RFC 9110: `0` or `1`, then up to three decimals) is above 0; anything
/// malformed is not.
fn is_positive_weight(qvalue: &str) -> bool {
    let (whole, decimals) = qvalue.split_once('.').unwrap_or((qvalue, ""));
    let well_formed = matches!(whole, "0" | "1")
        && decimals.len() <= 3
        && decimals.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || decimals.bytes().all(|b| b == b'0'));
    well_formed && (whole == "1" || decimals.bytes().any(|b| b != b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What a gzip decoder makes of the header and `chunks`, read to their end (no trailer:
    /// the decoder stops at the end of input, so only what it produced by then is kept).
    fn gunzip(chunks: &[&[u8]]) -> Vec<u8> {
        let mut body = GZIP_HEADER.to_vec();
        for chunk in chunks {
            body.extend_from_slice(chunk);
        }
        let mut decoder = flate2::read::GzDecoder::new(&body[..]);
        let mut out = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn chunks_decode_in_any_order_and_combination() {
        let ann = b"data: {\"name\":\"ann\",\"text\":\"hello hello hello\"}\n\n";
        let a = deflate(ann);
        let b = deflate(b"data: {\"name\":\"bob\",\"text\":\"hello hello hello\"}\n\n");
        let c = deflate(&[b'x'; 100_000]);
        assert!(a.ends_with(&[0, 0, 0xff, 0xff]));
        // After other input, the same input gives the same chunk: no state is carried over.
        assert_eq!(deflate(ann), a);
        assert_eq!(
            gunzip(&[&b, &a]),
            b"data: {\"name\":\"bob\",\"text\":\"hello hello hello\"}\n\n\
              data: {\"name\":\"ann\",\"text\":\"hello hello hello\"}\n\n"
        );
        // A chunk after a large one still decodes: nothing refers back across chunks.
        let got = gunzip(&[&c, &a, &c, &b]);
        assert_eq!(got.len(), 200_000 + 2 * ann.len());
        assert_eq!(&got[100_000..100_000 + ann.len()], ann);
    }

    #[test]
    fn stored_blocks_are_deflate_too() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let got = gunzip(&[
            &stored(b"data: x\n\n"),
            &deflate(b"data: y\n\n"),
            &stored(&big),
        ]);
        assert_eq!(&got[..18], b"data: x\n\ndata: y\n\n");
        assert_eq!(&got[18..], &big[..]);
    }

    #[test]
    fn empty_input_is_an_empty_chunk() {
        assert!(deflate(b"").is_empty());
        assert_eq!(gunzip(&[reset_chunk()]), crate::sse::reset_event());
    }

    macro_rules! accepts {
        ($($name:ident: $header:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(accepts_gzip($header), $want);
            }
        )*};
    }

    accepts! {
        no_header: None => false;
        browser: Some("gzip, deflate, br, zstd") => true;
        curl: Some("deflate, gzip, br, zstd") => true;
        uppercase: Some("GZIP") => true;
        x_gzip: Some("x-gzip") => true;
        weighted: Some("br;q=1.0, gzip;q=0.5") => true;
        smallest_weight: Some("gzip;q=0.001") => true;
        spaces: Some("gzip ; q=0.8") => true;
        refused: Some("gzip;q=0") => false;
        refused_decimals: Some("gzip;q=0.000") => false;
        refused_after_star: Some("*, gzip;q=0") => false;
        star: Some("*") => true;
        star_refused: Some("br, *;q=0") => false;
        identity_only: Some("identity") => false;
        empty: Some("") => false;
        malformed_weight: Some("gzip;q=abc") => false;
        weight_above_one: Some("gzip;q=1.5") => false;
        too_many_decimals: Some("gzip;q=0.0001") => false;
    }
}
