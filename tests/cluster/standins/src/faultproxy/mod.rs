//! A fault-injecting proxy between the service and the kube-apiserver (the `kube-fault-proxy`
//! binary): plain HTTP/1.1 on loopback towards the service, TLS towards the API server, every
//! request passed through as it is (watches stream, exec upgrades to its websocket) unless a rule
//! says otherwise. A test puts rules through its control API and reads what happened:
//!
//! - `PUT /rules` with a JSON list of [`Rule`]s (replacing the earlier ones), `GET /rules` (what
//!   is left of them), `GET /stats` ([`Stats`]), `POST /stats/reset`.
//!
//! A rule matches requests by method and by substrings of the path and the query; watches and
//! upgrades (exec) only when it says so. Of the requests it matches it lets `skip` through, then
//! gives `count` of them its [`Fault`]: an HTTP 500, a reset connection (before or after the
//! request reached the API server), or no answer at all (the proxy holds the request until the
//! client gives up, and records how long that took: the stall).

pub mod serve;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a faulted request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `500 Internal Server Error` with a `Status` body, as an API server whose etcd hiccups.
    Status500,
    /// The connection is reset (RST) before the request is passed on.
    Reset,
    /// The request is passed on, and the connection reset before the answer comes back: the
    /// change is made, the client does not learn it.
    ResetAfterForward,
    /// The request is never answered; the connection stays open until the client closes it.
    Hang,
}

/// Which requests get a fault, and how many of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The HTTP method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// A substring of the path, e.g. `/linstorcontrollers/` (any when absent).
    #[serde(default)]
    pub path: Option<String>,
    /// A substring of the query (any when absent).
    #[serde(default)]
    pub query: Option<String>,
    /// Also watches (`watch=true`) and upgrades (exec); never by default.
    #[serde(default)]
    pub streams: bool,
    pub fault: Fault,
    /// Matching requests let through before the first fault.
    #[serde(default)]
    pub skip: u32,
    /// Matching requests that get the fault (then the rule is spent).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// A request as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// A watch or an upgrade.
    pub streams: bool,
}

impl Rule {
    fn matches(&self, r: &Seen<'_>) -> bool {
        (self.streams || !r.streams)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(r.method))
            && self.path.as_deref().is_none_or(|p| r.path.contains(p))
            && self.query.as_deref().is_none_or(|q| r.query.contains(q))
    }
}

/// One request that was never answered, and how long the client waited for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    pub request: String,
    pub seconds: f64,
}

/// One fault given to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    pub fault: Fault,
    /// Method and path.
    pub request: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What the proxy did since it started (or since `POST /stats/reset`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    /// Every fault injected, in order.
    pub injections: Vec<Injection>,
    /// Every request held without an answer, once its client gave up on it.
    pub stalls: Vec<Stall>,
}

impl Stats {
    pub fn faults(&self) -> u64 {
        self.injected.values().sum()
    }

    pub fn longest_stall(&self) -> Duration {
        Duration::from_secs_f64(self.stalls.iter().map(|s| s.seconds).fold(0.0, f64::max))
    }
}

/// The rules in force and the figures, behind one lock.
#[derive(Debug, Default)]
pub struct Book {
    pub rules: Vec<Rule>,
    pub stats: Stats,
}

impl Book {
    /// Counts the request and says which fault it gets, if any (the first rule that matches and
    /// is not spent decides).
    pub fn decide(&mut self, r: &Seen<'_>) -> Option<Fault> {
        self.stats.requests += 1;
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| rule.count > 0 && rule.matches(r))?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.count -= 1;
        let fault = rule.fault;
        let name = serde_json::to_value(fault)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *self.stats.injected.entry(name).or_default() += 1;
        self.stats.injections.push(Injection {
            fault,
            request: format!("{} {}", r.method, r.path),
            at: chrono::Utc::now(),
        });
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(method: &'a str, path: &'a str, query: &'a str, streams: bool) -> Seen<'a> {
        Seen {
            method,
            path,
            query,
            streams,
        }
    }

    #[test]
    fn a_rule_skips_then_faults_count_requests_then_is_spent() {
        let mut book = Book {
            rules: serde_json::from_str(
                r#"[{"method": "patch", "path": "/linstorcontrollers/", "fault": "hang", "skip": 1, "count": 2}]"#,
            )
            .unwrap(),
            ..Book::default()
        };
        let patch = seen(
            "PATCH",
            "/apis/piraeus.linbit.com/v1/namespaces/n/linstorcontrollers/cs",
            "",
            false,
        );
        let get = seen(
            "GET",
            "/apis/piraeus.linbit.com/v1/namespaces/n/linstorcontrollers/cs",
            "",
            false,
        );
        assert_eq!(book.decide(&get), None);
        assert_eq!(book.decide(&patch), None, "skipped");
        assert_eq!(book.decide(&patch), Some(Fault::Hang));
        assert_eq!(book.decide(&patch), Some(Fault::Hang));
        assert_eq!(book.decide(&patch), None, "spent");
        assert_eq!(book.stats.requests, 5);
        assert_eq!(book.stats.faults(), 2);
        assert_eq!(book.stats.injected["hang"], 2);
    }

    #[test]
    fn watches_and_upgrades_only_when_a_rule_says_so() {
        let mut book = Book {
            rules: vec![Rule {
                method: None,
                path: Some("/pods".into()),
                query: None,
                streams: false,
                fault: Fault::Status500,
                skip: 0,
                count: 9,
            }],
            ..Book::default()
        };
        assert_eq!(
            book.decide(&seen("GET", "/api/v1/namespaces/n/pods", "watch=true", true)),
            None
        );
        assert_eq!(
            book.decide(&seen("GET", "/api/v1/namespaces/n/pods", "limit=500", false)),
            Some(Fault::Status500)
        );
        book.rules[0].streams = true;
        book.rules[0].query = Some("watch=true".into());
        assert_eq!(
            book.decide(&seen("GET", "/api/v1/namespaces/n/pods", "watch=true", true)),
            Some(Fault::Status500)
        );
    }
}
