//! A limit on failed authentication attempts (a wrong token in the sign-in form or as a bearer
//! token), per client address and for all clients together, so that nobody can guess tokens at
//! the speed of the network. A client over its limit is answered 429 with `Retry-After` *before*
//! its credential is looked at, so that the answer to a right guess cannot tell it apart either.
//! Successful requests cost nothing: automation with a valid token is never slowed down.
//!
//! Each limit is a GCRA (generic cell rate algorithm, the one `governor` implements): a burst of
//! failures, then one more every interval. It is written out here because the limiter must be
//! asked "is this client blocked?" without spending a failure on every request (`governor` can
//! only check by spending, which would throttle valid requests or, refunded, let concurrent
//! guesses through).
//!
//! Behind a proxy every request comes from the proxy's address: the per-client limit then
//! applies to all clients of the proxy together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A burst of failures, then one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval: Duration,
}

impl Rate {
    /// How far ahead of now the schedule may run before failures are refused.
    fn tolerance(&self) -> Duration {
        self.interval * self.burst.saturating_sub(1)
    }
}

/// The limits on failed authentications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// For one client address (an IPv6 client by its /64 network).
    pub per_client: Rate,
    /// For all clients together.
    pub overall: Rate,
}

impl Default for FailureLimits {
    /// 20 failures at once per client, then one a second; 100 for everyone, then ten a second.
    fn default() -> Self {
        Self {
            per_client: Rate {
                burst: 20,
                interval: Duration::from_secs(1),
            },
            overall: Rate {
                burst: 100,
                interval: Duration::from_millis(100),
            },
        }
    }
}

/// Counts failures and says who must wait.
pub struct FailureLimiter {
    limits: FailureLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The "theoretical arrival time" of each client's next failure (only clients that failed).
    clients: HashMap<IpAddr, Instant>,
    overall: Option<Instant>,
}

/// The address a client is counted under: IPv4 as it is, IPv6 by its /64 (one host usually has
/// a whole /64 to pick addresses from).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::V6(s.into())
        }
        v4 => v4,
    }
}

/// How long until `tat` admits a failure under `rate`, if it does not now.
fn wait(tat: Option<Instant>, rate: Rate, now: Instant) -> Option<Duration> {
    let allowed_from = tat?.checked_sub(rate.tolerance())?;
    (allowed_from > now).then(|| allowed_from - now)
}

fn advance(tat: Option<Instant>, rate: Rate, now: Instant) -> Instant {
    tat.map_or(now, |t| t.max(now)) + rate.interval
}

impl FailureLimiter {
    pub fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// `Err(wait)` when `client`, or everybody, has used up the failures allowed for now.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.state.lock().expect("limiter lock");
        let mine = wait(
            state.clients.get(&client_key(client)).copied(),
            self.limits.per_client,
            now,
        );
        let all = wait(state.overall, self.limits.overall, now);
        match mine.max(all) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt of `client`.
    pub fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("limiter lock");
        let key = client_key(client);
        let tat = advance(state.clients.get(&key).copied(), self.limits.per_client, now);
        state.clients.insert(key, tat);
        state.overall = Some(advance(state.overall, self.limits.overall, now));
        // a client whose schedule is back in the past is like one that never failed; the overall
        // limit bounds how many can be ahead of it at once
        if state.clients.len() > 1024 {
            state.clients.retain(|_, t| *t > now);
        }
    }
}

/// Seconds for `Retry-After` (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, overall_burst: u32) -> FailureLimiter {
        FailureLimiter::new(FailureLimits {
            per_client: Rate {
                burst,
                interval: Duration::from_secs(60),
            },
            overall: Rate {
                burst: overall_burst,
                interval: Duration::from_secs(60),
            },
        })
    }

    #[test]
    fn a_client_gets_its_burst_of_failures_then_waits() {
        let l = limiter(3, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
            l.failed(a);
        }
        let wait = l.check(a).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(l.check(b).is_ok(), "another client is not affected");
    }

    #[test]
    fn all_clients_together_have_a_limit_too() {
        let l = limiter(100, 2);
        l.failed("10.0.0.1".parse().unwrap());
        l.failed("10.0.0.2".parse().unwrap());
        assert!(l.check("10.0.0.3".parse().unwrap()).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        let l = limiter(1, 100);
        l.failed("2001:db8:1:2::1".parse().unwrap());
        assert!(l.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        l.failed("::ffff:10.0.0.9".parse().unwrap());
        assert!(
            l.check("10.0.0.9".parse().unwrap()).is_err(),
            "an IPv4-mapped address is that IPv4 client"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(3001)), 4);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
