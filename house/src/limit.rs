//! Rate limits for handlers: named limits kept per session, or per client address for requests
//! without one, and the `429 Too Many Requests` a refused request answers.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::lru::Lru;
use crate::response::{IntoResponse, Response, Status};

/// A request refused by a rate limit; as a response, `429 Too Many Requests` with
/// `Retry-After` (whole seconds, rounded up) and a plain-text body that explains it.
///
/// Returned by [`Session::rate_limit`](crate::Session::rate_limit).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use house::{Ctx, Hub, IntoResponse, Method, Request};
///
/// let request = Request::new(Method::Post, "/send");
/// let mut hub = Hub::default();
/// let mut ctx = Ctx::new(&request, &mut hub);
/// let window = Duration::from_secs(10);
/// assert!(ctx.session.rate_limit("send", 1, window).is_ok());
/// let refused = ctx.session.rate_limit("send", 1, window).unwrap_err();
/// let response = refused.into_response();
/// assert_eq!(response.status().code(), 429);
/// assert_eq!(response.header("Retry-After"), Some("10"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    name: String,
    limit: u32,
    window: Duration,
    retry_after: Duration,
}

impl RateLimited {
    /// The name of the limit that refused the request.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long until the limit allows one more request.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up (at least 1), as
    /// `Retry-After` says it.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let secs = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        secs.max(1)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many `{}` requests (at most {} per {}); retry in {} s",
            self.name,
            self.limit,
            Seconds(self.window),
            self.retry_after_secs()
        )
    }
}

impl std::error::Error for RateLimited {}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_secs().to_string();
        Response::error(Status::TOO_MANY_REQUESTS, &self).with_header("Retry-After", retry_after)
    }
}

/// A duration for people: `10 s`, `1.5 s`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{} s", self.0.as_secs())
        } else {
            write!(f, "{} s", self.0.as_secs_f64())
        }
    }
}

/// The state of every named limit for one key (a session or an address).
///
/// Each limit is a token bucket of `limit` requests that refills evenly over `window`, kept as
/// its "theoretical arrival time" (GCRA): one `Instant` per name, whatever the limit. A burst of
/// `limit` requests passes at once; after that, one more every `window / limit`. A name whose
/// bucket is full again holds no information and is dropped, so the state expires with the
/// window.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    /// Names and when their bucket is full again; a key rarely has more than a few.
    full_at: Vec<(Box<str>, Instant)>,
}

impl Limiter {
    /// Counts one request against `name`, or refuses it.
    pub(crate) fn check(
        &mut self,
        name: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), RateLimited> {
        self.full_at.retain(|(_, full_at)| *full_at > now);
        let refused = |retry_after| RateLimited {
            name: name.to_owned(),
            limit,
            window,
            retry_after,
        };
        if limit == 0 {
            return Err(refused(window));
        }
        let slot = self.full_at.iter().position(|(n, _)| **n == *name);
        let full_at = slot.map_or(now, |i| self.full_at[i].1);
        let next = full_at + window / limit;
        let deadline = now + window;
        if next > deadline {
            return Err(refused(next - deadline));
        }
        match slot {
            Some(i) => self.full_at[i].1 = next,
            None => self.full_at.push((name.into(), next)),
        }
        Ok(())
    }

    /// Whether every bucket is full again, so the state can be forgotten.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        self.full_at.iter().all(|(_, full_at)| *full_at <= now)
    }
}

/// Limits for requests without a session, by client address, bounded in count.
#[derive(Debug)]
pub(crate) struct AddrLimits {
    by_addr: Lru<Option<IpAddr>, Limiter>,
}

impl AddrLimits {
    /// At most `cap` addresses; past it, the least recently limited address is forgotten.
    pub(crate) fn new(cap: usize) -> AddrLimits {
        AddrLimits {
            by_addr: Lru::new(cap),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Counts one request from `addr` (`None` for a request that did not come over a socket)
    /// against `name`, or refuses it.
    pub(crate) fn check(
        &mut self,
        addr: Option<IpAddr>,
        name: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let key = addr.map(client_key);
        if let Some(limiter) = self.by_addr.get_mut(&key) {
            return limiter.check(name, limit, window, now);
        }
        let mut limiter = Limiter::default();
        let result = limiter.check(name, limit, window, now);
        if result.is_ok() {
            self.by_addr.insert(key, limiter);
        }
        result
    }

    /// Forgets addresses whose buckets are full again, oldest first, stopping at the first one
    /// still limited (later ones go on a later sweep, or by eviction).
    pub(crate) fn expire(&mut self, now: Instant) {
        while self
            .by_addr
            .pop_oldest_if(|limiter| limiter.is_idle(now))
            .is_some()
        {}
    }
}

/// The key of a client: its IPv4 address, or the /64 network of its IPv6 address (one host
/// usually holds a whole /64, so single addresses would let it pick a fresh limit per request).
fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn burst_then_one_per_interval() {
        let start = Instant::now();
        let mut limiter = Limiter::default();
        for _ in 0..5 {
            limiter.check("send", 5, 10 * SEC, start).unwrap();
        }
        let refused = limiter.check("send", 5, 10 * SEC, start).unwrap_err();
        assert_eq!(refused.retry_after(), 2 * SEC);
        assert_eq!(
            refused.to_string(),
            "too many `send` requests (at most 5 per 10 s); retry in 2 s"
        );
        // Other names have their own buckets.
        limiter.check("join", 1, SEC, start).unwrap();
        let later = start + 2 * SEC;
        limiter.check("send", 5, 10 * SEC, later).unwrap();
        assert!(limiter.check("send", 5, 10 * SEC, later).is_err());
        assert!(!limiter.is_idle(later));
        assert!(limiter.is_idle(start + 12 * SEC));
    }

    #[test]
    fn retry_after_rounds_up() {
        let start = Instant::now();
        let mut limiter = Limiter::default();
        limiter.check("x", 2, 3 * SEC, start).unwrap();
        limiter.check("x", 2, 3 * SEC, start).unwrap();
        let refused = limiter.check("x", 2, 3 * SEC, start).unwrap_err();
        assert_eq!(refused.retry_after(), Duration::from_millis(1500));
        assert_eq!(refused.retry_after_secs(), 2);
        let response = refused.into_response();
        assert_eq!(response.status(), Status::TOO_MANY_REQUESTS);
        assert_eq!(response.header("Retry-After"), Some("2"));
    }

    #[test]
    fn zero_refuses_everything() {
        let refused = Limiter::default()
            .check("x", 0, SEC, Instant::now())
            .unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1);
    }

    #[test]
    fn addresses_are_bounded_and_expire() {
        let start = Instant::now();
        let mut limits = AddrLimits::new(2);
        for i in 1..=3u8 {
            let addr = IpAddr::from([10, 0, 0, i]);
            limits.check(Some(addr), "x", 1, SEC, start).unwrap();
        }
        assert_eq!(limits.len(), 2);
        limits.expire(start + SEC / 2);
        assert_eq!(limits.len(), 2);
        limits.expire(start + SEC);
        assert_eq!(limits.len(), 0);
    }

    #[test]
    fn ipv6_limits_by_network() {
        let start = Instant::now();
        let mut limits = AddrLimits::new(10);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        limits.check(Some(a), "x", 1, SEC, start).unwrap();
        assert!(limits.check(Some(b), "x", 1, SEC, start).is_err());
        limits.check(Some(c), "x", 1, SEC, start).unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        limits.check(Some(mapped), "x", 1, SEC, start).unwrap();
        let v4 = IpAddr::from([10, 0, 0, 1]);
        assert!(limits.check(Some(v4), "x", 1, SEC, start).is_err());
    }
}
