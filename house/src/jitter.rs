//! Random spreads for timings: many clients told the same delay would all come back at once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// A small pseudo-random source (xorshift64*), seeded from the standard library's random
/// hasher keys. Spreading timings needs no cryptographic strength, nor a dependency.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Jitter {
        // Never zero: xorshift would stay there.
        Jitter(RandomState::new().hash_one(Instant::now()) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration picked evenly from `low..high`, to the millisecond (`low` when the range is
    /// empty).
    pub(crate) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis();
        if span == 0 {
            return low;
        }
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        low + Duration::from_millis(self.next() % span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_in_range_and_spreads() {
        let mut jitter = Jitter::new();
        let (low, high) = (Duration::from_millis(1000), Duration::from_millis(2000));
        let picks: Vec<Duration> = (0..1000).map(|_| jitter.between(low, high)).collect();
        assert!(picks.iter().all(|d| (low..high).contains(d)));
        // Ten buckets of 100 ms: each gets some of 1,000 even picks.
        for bucket in 0..10 {
            let from = low + Duration::from_millis(bucket * 100);
            let count = picks
                .iter()
                .filter(|d| (from..from + Duration::from_millis(100)).contains(d))
                .count();
            assert!(count > 40, "bucket {bucket}: {count}");
        }
        assert_eq!(jitter.between(high, low), high);
    }
}
