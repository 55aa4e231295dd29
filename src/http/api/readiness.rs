//! The cluster half of `/readyz`, remembered for a while: kubelets and load balancers probe every
//! few seconds, and each uncached probe would list every LinstorController in the cluster. A
//! success is trusted for a while (10 s in the service), a failure is checked again sooner (2 s),
//! and concurrent probes share the one check in flight, so the cluster sees at most one call per
//! window however often the probes come.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// What the last cluster check found: `Err` holds the message for the probe's answer.
pub type Readiness = Result<(), String>;

/// The last cluster check and when it was made.
#[derive(Debug)]
pub struct ReadinessCache {
    ok_for: Duration,
    retry_after: Duration,
    // a tokio mutex, held across the check: a second probe waits for the first one's answer
    // instead of asking the cluster as well
    last: Mutex<Option<(Instant, Readiness)>>,
}

impl ReadinessCache {
    /// Trusts a success for `ok_for` and a failure for `retry_after`.
    pub fn new(ok_for: Duration, retry_after: Duration) -> Self {
        Self {
            ok_for,
            retry_after,
            last: Mutex::new(None),
        }
    }

    /// The remembered result when it is still fresh at `now`, else the result of `check` (which
    /// is then remembered as of `now`). `now` is a parameter so that tests need no real waiting.
    pub async fn get<F, Fut>(&self, now: Instant, check: F) -> Readiness
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Readiness>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            let valid = if result.is_ok() {
                self.ok_for
            } else {
                self.retry_after
            };
            if now.saturating_duration_since(*at) < valid {
                return result.clone();
            }
        }
        let result = check().await;
        *last = Some((now, result.clone()));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A check that counts its calls and answers from `script` (the last answer repeats).
    fn counted(
        calls: &Arc<AtomicUsize>,
        script: &'static [bool],
    ) -> impl Fn() -> std::future::Ready<Readiness> {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(match script[n.min(script.len() - 1)] {
                true => Ok(()),
                false => Err("the Kubernetes API is not reachable".into()),
            })
        }
    }

    #[tokio::test]
    async fn a_success_is_trusted_for_its_window() {
        let cache = ReadinessCache::new(Duration::from_secs(10), Duration::from_secs(2));
        let calls = Arc::new(AtomicUsize::new(0));
        let check = counted(&calls, &[true, false]);
        let t0 = Instant::now();
        // a probe every second for 10 s: one call
        for s in 0..10 {
            assert_eq!(cache.get(t0 + Duration::from_secs(s), &check).await, Ok(()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // the window is over: the cluster is asked again, and its failure shows
        assert!(cache.get(t0 + Duration::from_secs(10), &check).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_is_retried_after_its_shorter_window() {
        let cache = ReadinessCache::new(Duration::from_secs(10), Duration::from_secs(2));
        let calls = Arc::new(AtomicUsize::new(0));
        let check = counted(&calls, &[false, false, true]);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(cache.get(at(0), &check).await.is_err());
        assert!(
            cache.get(at(1_000), &check).await.is_err(),
            "still the cached failure"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            cache.get(at(2_000), &check).await.is_err(),
            "asked again, failed again"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.get(at(4_500), &check).await, Ok(()), "recovered");
        assert_eq!(cache.get(at(5_000), &check).await, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_probes_share_one_check() {
        let cache = Arc::new(ReadinessCache::new(
            Duration::from_secs(10),
            Duration::from_secs(2),
        ));
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let probes: Vec<_> = (0..8)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get(now, || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            // a slow API server: the others arrive while this one is in flight
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for p in probes {
            assert_eq!(p.await.unwrap(), Ok(()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
