//! Pacing of the `linstor-database` stand-in: off by default (it then runs as fast as the API
//! server lets it); `LINSTOR_STANDIN_PACE=recorded` makes each run take about as long as the
//! real LINSTOR 1.33.3 tool took on a 2-vCPU machine
//! (`../shared/fixtures/linstor-1.33.3/timing.txt`), by sleeping: the stand-in imitates a slow
//! external process, and the downtime benchmark needs its durations, not its speed. Nothing
//! decides a test result by these sleeps.
//!
//! Every cost comes from one constant of [`Pace::RECORDED`], with the timing.txt line it is taken
//! from. Row rates are ceilings: the stand-in waits until `rows / rate` seconds have passed since
//! its first row, so a slower API server is not paid twice.

use std::time::{Duration, Instant};

/// Environment variable: `recorded` (the real tool's costs) or `off`/unset (none).
pub const PACE_ENV: &str = "LINSTOR_STANDIN_PACE";

/// What a run of the stand-in costs when paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Before the first database access of every run (JVM and Guice start).
    pub start: Duration,
    /// An import into a `k8s` backend whose CRDs do not exist yet: creating the 45 CRDs and the
    /// 30 CRD-migration steps, once, before the first row.
    pub fresh_schema: Duration,
    /// Rows created per second by an import into `k8s` (one object per row).
    pub import_k8s_rows_per_s: f64,
    /// Rows exported per second from etcd.
    pub export_etcd_rows_per_s: f64,
    /// Rows exported per second from `k8s` (one LIST per CRD).
    pub export_k8s_rows_per_s: f64,
}

impl Pace {
    /// The real tool's costs, from timing.txt.
    pub const RECORDED: Pace = Pace {
        // "Wall time = JVM start to exit (the JVM + Guice start alone takes ~3-5 s before the
        // first DB access)"; section A, 1 025 rows, pass 2: 40.8 s wall - 36.8 s DB phase = 4.0 s
        start: Duration::from_secs(4),
        // section A: "216  41.1 s ... DB phase 35.6 s" (216 rows at 340/s are 0.6 s of it) and
        // "Fixed cost of a fresh cluster (CRD creation + migrations + JVM) ~ 35-40 s"
        fresh_schema: Duration::from_secs(35),
        // section A: "Marginal row rate (1k -> 20k, 18 980 extra rows): ... pass 2 (96.7-40.8) s
        // -> ~340 rows/s" (the faster pass; pass 1 gave ~180 rows/s, and section E's 98 032-row
        // import 558.9 s, ~190 rows/s)
        import_k8s_rows_per_s: 340.0,
        // section E, export-db etcd: 1 087 rows 3.6 / 4.4 s, 19 762 rows 4.5 / 4.1 s, 98 032 rows
        // 5.8 s: the start plus ~1.8 s for 98k rows, ~50 000 rows/s
        export_etcd_rows_per_s: 50_000.0,
        // section C: "one LIST per CRD; JVM start dominates; ~5 000+ rows/s"; section E,
        // export-db k8s 98 032 rows 24.3 s: (24.3 - 4) s -> ~4 800 rows/s
        export_k8s_rows_per_s: 5_000.0,
    };

    /// The pacing a `LINSTOR_STANDIN_PACE` value asks for: `None` for none.
    pub fn parse(value: Option<&str>) -> Result<Option<Pace>, String> {
        match value.map(str::trim) {
            None | Some("" | "off") => Ok(None),
            Some("recorded") => Ok(Some(Pace::RECORDED)),
            Some(other) => Err(format!("unknown {PACE_ENV} value {other:?} (recorded, off)")),
        }
    }

    /// One line saying what the pacing costs, for reports.
    pub fn describe(&self) -> String {
        format!(
            "every run {:.1} s start; import into k8s: {:.0} s schema when the CRDs are new, then {:.0} rows/s; \
             export: {:.0} rows/s from etcd, {:.0} rows/s from k8s (timing.txt, LINSTOR 1.33.3 on 2 vCPUs)",
            self.start.as_secs_f64(),
            self.fresh_schema.as_secs_f64(),
            self.import_k8s_rows_per_s,
            self.export_etcd_rows_per_s,
            self.export_k8s_rows_per_s
        )
    }
}

/// Sleeps `d` when paced.
pub async fn sleep(pace: Option<Pace>, d: impl Fn(&Pace) -> Duration) {
    if let Some(p) = pace {
        tokio::time::sleep(d(&p)).await;
    }
}

/// When paced, sleeps until `rows` rows at `rate(pace)` rows/s have taken their time since `since`.
pub async fn rows(pace: Option<Pace>, rate: impl Fn(&Pace) -> f64, rows: usize, since: Instant) {
    if let Some(p) = pace {
        let due = since + Duration::from_secs_f64(rows as f64 / rate(&p));
        tokio::time::sleep_until(due.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_asked_for() {
        assert_eq!(Pace::parse(None), Ok(None));
        assert_eq!(Pace::parse(Some("off")), Ok(None));
        assert_eq!(Pace::parse(Some("recorded")), Ok(Some(Pace::RECORDED)));
        assert!(Pace::parse(Some("fast")).is_err());
    }
}
