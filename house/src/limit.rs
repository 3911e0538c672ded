//! Rate limits for handlers: named limits kept per session and, around them, per client
//! address; the budget for new sessions per address; and the `429 Too Many Requests` a
//! refused request answers.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::lru::Lru;
use crate::response::{IntoResponse, Response, Status};

/// Which budget refused a request: the label of the `house_rate_limited_total` metric.
///
/// A request that [`Session::rate_limit`](crate::Session::rate_limit) counts is charged twice:
/// to its session's bucket (or, without a session, to the one bucket that all requests without
/// a session from its address share), and to its address's bucket, which is
/// [`ADDR_RATE_MULTIPLE`](crate::limits::ADDR_RATE_MULTIPLE) times larger and shared by every
/// session at that address. It passes only if both have room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// The request's session had used its own budget.
    Session,
    /// The requests without a session from the client's address had used theirs (one budget,
    /// the size of a session's, for all of them).
    NoSession,
    /// The client's address had used its budget, shared by all its sessions and its requests
    /// without one.
    Address,
    /// The client's address had started as many sessions as
    /// [`NEW_SESSIONS_PER_ADDR`](crate::limits::NEW_SESSIONS_PER_ADDR) allows.
    NewSession,
}

impl LimitScope {
    /// Every scope, in the order of [`Stats::rate_limited`](crate::Stats::rate_limited).
    pub const ALL: [LimitScope; 4] = [
        LimitScope::Session,
        LimitScope::NoSession,
        LimitScope::Address,
        LimitScope::NewSession,
    ];

    /// The scope's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            LimitScope::Session => "session",
            LimitScope::NoSession => "no_session",
            LimitScope::Address => "address",
            LimitScope::NewSession => "new_session",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A request refused by a rate limit; as a response, `429 Too Many Requests` with
/// `Retry-After` (whole seconds, rounded up) and a plain-text body that explains it.
///
/// Returned by [`Session::rate_limit`](crate::Session::rate_limit), and inside
/// [`SessionError::RateLimited`](crate::SessionError::RateLimited) when an address starts too
/// many sessions.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use house::{Ctx, Hub, IntoResponse, LimitScope, Method, Request};
///
/// let request = Request::new(Method::Post, "/send");
/// let mut hub = Hub::default();
/// let mut ctx = Ctx::new(&request, &mut hub);
/// let window = Duration::from_secs(10);
/// assert!(ctx.session.rate_limit("send", 1, window).is_ok());
/// let refused = ctx.session.rate_limit("send", 1, window).unwrap_err();
/// // No session: the requests without one from this address share one budget.
/// assert_eq!(refused.scope(), LimitScope::NoSession);
/// let response = refused.into_response();
/// assert_eq!(response.status().code(), 429);
/// assert_eq!(response.header("Retry-After"), Some("10"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    name: String,
    scope: LimitScope,
    limit: u32,
    window: Duration,
    retry_after: Duration,
}

impl RateLimited {
    /// The name of the limit that refused the request (`new sessions` for
    /// [`LimitScope::NewSession`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which budget refused the request.
    pub fn scope(&self) -> LimitScope {
        self.scope
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
        let (limit, window, retry) = (self.limit, Seconds(self.window), self.retry_after_secs());
        match self.scope {
            LimitScope::Session | LimitScope::NoSession => write!(
                f,
                "too many `{}` requests (at most {limit} per {window}); retry in {retry} s",
                self.name
            ),
            LimitScope::Address => write!(
                f,
                "too many `{}` requests from this address (at most {limit} per {window} for \
                 everyone there); retry in {retry} s",
                self.name
            ),
            LimitScope::NewSession => write!(
                f,
                "too many new sessions from this address (at most {limit} per {window}); \
                 retry in {retry} s"
            ),
        }
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

/// One limit as a handler states it: `limit` requests per `window`, under a name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate<'a> {
    pub(crate) name: &'a str,
    pub(crate) limit: u32,
    pub(crate) window: Duration,
}

/// The state of every named bucket for one key (a session or an address).
///
/// Each bucket holds `limit` requests and refills evenly over `window`, kept as its
/// "theoretical arrival time" (GCRA): one `Instant` per bucket, whatever the limit. A burst of
/// `limit` requests passes at once; after that, one more every `window / limit`. A bucket that
/// is full again holds no information and is dropped, so the state expires with the window.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    /// Buckets and when they are full again; a key rarely has more than a few.
    full_at: Vec<(LimitScope, Box<str>, Instant)>,
}

impl Limiter {
    /// Counts one request against `rate` in `scope`, or refuses it.
    pub(crate) fn check(
        &mut self,
        scope: LimitScope,
        rate: Rate<'_>,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let next = self.admit(scope, rate, now)?;
        self.charge(scope, rate.name, next);
        Ok(())
    }

    /// When the bucket would be full again after one more request, or the refusal if it has
    /// no room; charges nothing, so a request checked against two buckets is charged to both
    /// or to neither.
    fn admit(
        &mut self,
        scope: LimitScope,
        rate: Rate<'_>,
        now: Instant,
    ) -> Result<Instant, RateLimited> {
        self.full_at.retain(|(_, _, full_at)| *full_at > now);
        let refused = |retry_after| RateLimited {
            name: rate.name.to_owned(),
            scope,
            limit: rate.limit,
            window: rate.window,
            retry_after,
        };
        if rate.limit == 0 {
            return Err(refused(rate.window));
        }
        let full_at = self
            .find(scope, rate.name)
            .map_or(now, |i| self.full_at[i].2);
        let next = full_at + rate.window / rate.limit;
        let deadline = now + rate.window;
        if next > deadline {
            return Err(refused(next - deadline));
        }
        Ok(next)
    }

    /// Records a request that [`admit`](Self::admit) let through.
    fn charge(&mut self, scope: LimitScope, name: &str, next: Instant) {
        match self.find(scope, name) {
            Some(i) => self.full_at[i].2 = next,
            None => self.full_at.push((scope, name.into(), next)),
        }
    }

    fn find(&self, scope: LimitScope, name: &str) -> Option<usize> {
        self.full_at
            .iter()
            .position(|(s, n, _)| *s == scope && **n == *name)
    }

    /// Whether every bucket is full again, so the state can be forgotten.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        self.full_at.iter().all(|(_, _, full_at)| *full_at <= now)
    }
}

/// The limits kept per client address, bounded in count: each address's share of every
/// named limit, the budget of its requests without a session, and its budget of new sessions.
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
    /// against `rate` in a bucket of the address (`scope` is `NoSession` or `NewSession`), or
    /// refuses it.
    pub(crate) fn check(
        &mut self,
        addr: Option<IpAddr>,
        scope: LimitScope,
        rate: Rate<'_>,
        now: Instant,
    ) -> Result<(), RateLimited> {
        self.with_limiter(addr, |limiter| limiter.check(scope, rate, now))
    }

    /// Counts one request against `rate` in its session's bucket (`session`; without one, in
    /// its address's `NoSession` bucket) and against `shared` in its address's bucket, or
    /// refuses it; a refused request is charged to neither.
    pub(crate) fn check_nested(
        &mut self,
        addr: Option<IpAddr>,
        mut session: Option<&mut Limiter>,
        rate: Rate<'_>,
        shared: u32,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let shared = Rate {
            limit: shared,
            ..rate
        };
        self.with_limiter(addr, |at_addr| {
            let own = match &mut session {
                Some(limiter) => limiter.admit(LimitScope::Session, rate, now),
                None => at_addr.admit(LimitScope::NoSession, rate, now),
            };
            let address = at_addr.admit(LimitScope::Address, shared, now);
            match (own, address) {
                (Ok(own_next), Ok(address_next)) => {
                    match session {
                        Some(limiter) => limiter.charge(LimitScope::Session, rate.name, own_next),
                        None => at_addr.charge(LimitScope::NoSession, rate.name, own_next),
                    }
                    at_addr.charge(LimitScope::Address, rate.name, address_next);
                    Ok(())
                }
                // Both full: the later of the two is when the request could pass.
                (Err(own), Err(address)) if address.retry_after > own.retry_after => Err(address),
                (Err(refused), _) | (_, Err(refused)) => Err(refused),
            }
        })
    }

    /// Runs `check` on `addr`'s limiter; an address not known yet is remembered only if it
    /// let the request through (a refusal leaves nothing to remember).
    fn with_limiter(
        &mut self,
        addr: Option<IpAddr>,
        check: impl FnOnce(&mut Limiter) -> Result<(), RateLimited>,
    ) -> Result<(), RateLimited> {
        let key = addr.map(client_key);
        if let Some(limiter) = self.by_addr.get_mut(&key) {
            return check(limiter);
        }
        let mut limiter = Limiter::default();
        let result = check(&mut limiter);
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

    fn rate(name: &str, limit: u32, window: Duration) -> Rate<'_> {
        Rate {
            name,
            limit,
            window,
        }
    }

    #[test]
    fn burst_then_one_per_interval() {
        let start = Instant::now();
        let mut limiter = Limiter::default();
        let send = rate("send", 5, 10 * SEC);
        let session = LimitScope::Session;
        for _ in 0..5 {
            limiter.check(session, send, start).unwrap();
        }
        let refused = limiter.check(session, send, start).unwrap_err();
        assert_eq!(refused.retry_after(), 2 * SEC);
        assert_eq!(
            refused.to_string(),
            "too many `send` requests (at most 5 per 10 s); retry in 2 s"
        );
        // Other names, and other scopes of the same name, have their own buckets.
        limiter.check(session, rate("join", 1, SEC), start).unwrap();
        limiter.check(LimitScope::Address, send, start).unwrap();
        let later = start + 2 * SEC;
        limiter.check(session, send, later).unwrap();
        assert!(limiter.check(session, send, later).is_err());
        assert!(!limiter.is_idle(later));
        assert!(limiter.is_idle(start + 12 * SEC));
    }

    #[test]
    fn retry_after_rounds_up() {
        let start = Instant::now();
        let mut limiter = Limiter::default();
        let x = rate("x", 2, 3 * SEC);
        limiter.check(LimitScope::Session, x, start).unwrap();
        limiter.check(LimitScope::Session, x, start).unwrap();
        let refused = limiter.check(LimitScope::Session, x, start).unwrap_err();
        assert_eq!(refused.retry_after(), Duration::from_millis(1500));
        assert_eq!(refused.retry_after_secs(), 2);
        let response = refused.into_response();
        assert_eq!(response.status(), Status::TOO_MANY_REQUESTS);
        assert_eq!(response.header("Retry-After"), Some("2"));
    }

    #[test]
    fn zero_refuses_everything() {
        let refused = Limiter::default()
            .check(LimitScope::Session, rate("x", 0, SEC), Instant::now())
            .unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1);
    }

    #[test]
    fn addresses_are_bounded_and_expire() {
        let start = Instant::now();
        let mut limits = AddrLimits::new(2);
        for i in 1..=3u8 {
            let addr = IpAddr::from([10, 0, 0, i]);
            limits
                .check(Some(addr), LimitScope::NoSession, rate("x", 1, SEC), start)
                .unwrap();
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
        let mut check = |addr: &str| {
            let addr: IpAddr = addr.parse().unwrap();
            limits.check(Some(addr), LimitScope::NoSession, rate("x", 1, SEC), start)
        };
        check("2001:db8::1").unwrap();
        assert!(check("2001:db8::2").is_err());
        check("2001:db8:0:1::1").unwrap();
        check("::ffff:10.0.0.1").unwrap();
        assert!(check("10.0.0.1").is_err());
    }

    /// Sessions at one address each have their own budget, and all of them together the
    /// address's: rotating sessions gains nothing past it.
    #[test]
    fn sessions_nest_inside_their_address() {
        let start = Instant::now();
        let mut limits = AddrLimits::new(10);
        let addr = Some(IpAddr::from([10, 0, 0, 1]));
        let send = rate("send", 2, SEC);
        let mut sessions: Vec<Limiter> = (0..5).map(|_| Limiter::default()).collect();
        let mut accepted = 0;
        let mut refusals = Vec::new();
        for session in &mut sessions {
            for _ in 0..3 {
                match limits.check_nested(addr, Some(session), send, 6, start) {
                    Ok(()) => accepted += 1,
                    Err(refused) => refusals.push(refused.scope()),
                }
            }
        }
        // Three sessions use their 2 each; the address's 6 are then spent.
        assert_eq!(accepted, 6);
        assert_eq!(
            refusals
                .iter()
                .filter(|s| **s == LimitScope::Address)
                .count(),
            6
        );
        assert_eq!(
            refusals
                .iter()
                .filter(|s| **s == LimitScope::Session)
                .count(),
            3
        );
        // A refusal by the address charged nothing to the session: the fourth session's first
        // request passes once the address has one slot back.
        let later = start + SEC / 6;
        limits
            .check_nested(addr, Some(&mut sessions[3]), send, 6, later)
            .unwrap();
        let refused = limits
            .check_nested(addr, Some(&mut sessions[4]), send, 6, later)
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "too many `send` requests from this address (at most 6 per 1 s for everyone \
             there); retry in 1 s"
        );
        // Another address has its own budget.
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        limits
            .check_nested(other, Some(&mut sessions[4]), send, 6, later)
            .unwrap();
    }

    /// Requests without a session share one session-sized budget per address, inside the
    /// address's.
    #[test]
    fn requests_without_a_session_share_one_budget() {
        let start = Instant::now();
        let mut limits = AddrLimits::new(10);
        let addr = Some(IpAddr::from([10, 0, 0, 1]));
        let send = rate("send", 2, SEC);
        for _ in 0..2 {
            limits.check_nested(addr, None, send, 3, start).unwrap();
        }
        let refused = limits.check_nested(addr, None, send, 3, start).unwrap_err();
        assert_eq!(refused.scope(), LimitScope::NoSession);
        // They count toward the address: a session there gets only the one slot left.
        let mut session = Limiter::default();
        limits
            .check_nested(addr, Some(&mut session), send, 3, start)
            .unwrap();
        let refused = limits
            .check_nested(addr, Some(&mut session), send, 3, start)
            .unwrap_err();
        assert_eq!(refused.scope(), LimitScope::Address);
    }

    #[test]
    fn new_sessions_have_their_own_message() {
        let mut limits = AddrLimits::new(10);
        let new = rate("new sessions", 1, 60 * SEC);
        let now = Instant::now();
        limits
            .check(None, LimitScope::NewSession, new, now)
            .unwrap();
        let refused = limits
            .check(None, LimitScope::NewSession, new, now)
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "too many new sessions from this address (at most 1 per 60 s); retry in 60 s"
        );
    }
}
