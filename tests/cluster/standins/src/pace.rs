//! Pacing of the stand-ins for the downtime benchmark: off by default (they then run as fast as
//! the API server lets them); `LINSTOR_STANDIN_PACE=recorded` makes each `linstor-database` run
//! take about as long as the real tool of its release took on a 2-vCPU machine, by sleeping, and
//! [`controller_start`] says how long that release's controller took to start on a `k8s` database
//! of a given size (the benchmark's KWOK pod waits that long before it is Ready). The stand-ins
//! imitate slow external processes; the benchmark needs their durations, not their speed. Nothing
//! decides a test result by these sleeps.
//!
//! Every cost comes from one constant below, with the `timing.txt` line it is taken from
//! (`../shared/fixtures/linstor-<version>/timing.txt`). Row rates are ceilings: the stand-in waits
//! until `rows / rate` seconds have passed since its first row, so a slower API server is not paid
//! twice. 1.25.1 was recorded on a VM under heavy load (load average 8-11 on 2 vCPUs), 1.33.3 on
//! a less loaded one: compare a release's tool with its own delta, not one release with the other.

use std::time::{Duration, Instant};

use linstor_fake::Release;

/// Environment variable: `recorded` (the real tool's costs) or `off`/unset (none).
pub const PACE_ENV: &str = "LINSTOR_STANDIN_PACE";

/// What a run of the stand-in tool costs when paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Before the first database access of every run (JVM and Guice start).
    pub start: Duration,
    /// An import into a `k8s` backend whose CRDs do not exist yet: creating the CRDs and the
    /// CRD-migration steps, once, before the first row.
    pub fresh_schema: Duration,
    /// Rows created per second by an import into `k8s` (one object per row).
    pub import_k8s_rows_per_s: f64,
    /// Rows exported per second from etcd.
    pub export_etcd_rows_per_s: f64,
    /// Rows exported per second from `k8s` (one LIST per CRD).
    pub export_k8s_rows_per_s: f64,
}

impl Pace {
    /// The real LINSTOR 1.33.3 tool's costs (`linstor-1.33.3/timing.txt`).
    pub const V1_33_3: Pace = Pace {
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

    /// The real LINSTOR 1.25.1 tool's costs (`linstor-1.25.1/timing.txt`, 216 rows, a loaded VM).
    pub const V1_25_1: Pace = Pace {
        // "01 export-db from etcd ... ~12.5 s" (almost all of it start), "02 import-db into an
        // EMPTY cluster ... (first request +20 s)", "04 import-db again ... ~20.9 s" (of which
        // ~5 s truncation and rows), "03 export-db from k8s ... ~18.5 s": starts of 12.5-20 s,
        // 16 s their middle
        start: Duration::from_secs(16),
        // "23:20:07.3 first request" -> "23:21:08.4" end of the 17 CRD migration steps: 61 s
        fresh_schema: Duration::from_secs(61),
        // "23:21:10.7 - 23:21:13.9  216 POSTs at v1-19-1, one per row, serially, in file order
        // (~68 rows/s on this loaded VM)"
        import_k8s_rows_per_s: 68.0,
        // 216 rows tell no rate: 1.33.3's (the same etcd and k8s export code paths)
        export_etcd_rows_per_s: Pace::V1_33_3.export_etcd_rows_per_s,
        export_k8s_rows_per_s: Pace::V1_33_3.export_k8s_rows_per_s,
    };

    /// The recorded costs of `release`'s tool.
    pub fn recorded(release: Release) -> Pace {
        match release {
            Release::V1_25_1 => Pace::V1_25_1,
            Release::V1_33_3 => Pace::V1_33_3,
        }
    }

    /// The pacing a `LINSTOR_STANDIN_PACE` value asks for, for a tool of `release`: `None` for
    /// none.
    pub fn parse(value: Option<&str>, release: Release) -> Result<Option<Pace>, String> {
        match value.map(str::trim) {
            None | Some("" | "off") => Ok(None),
            Some("recorded") => Ok(Some(Pace::recorded(release))),
            Some(other) => Err(format!("unknown {PACE_ENV} value {other:?} (recorded, off)")),
        }
    }

    /// One line saying what the pacing costs, for reports.
    pub fn describe(&self) -> String {
        format!(
            "every run {:.1} s start; import into k8s: {:.0} s schema when the CRDs are new, then {:.0} rows/s; \
             export: {:.0} rows/s from etcd, {:.0} rows/s from k8s",
            self.start.as_secs_f64(),
            self.fresh_schema.as_secs_f64(),
            self.import_k8s_rows_per_s,
            self.export_etcd_rows_per_s,
            self.export_k8s_rows_per_s
        )
    }
}

/// 1.33.3's controller, process start -> first REST answer on a `k8s` database of so many rows
/// (`linstor-1.33.3/timing.txt` section E, "controller start k8s", the mean of the two passes).
const V1_33_3_CONTROLLER_K8S: [(f64, f64); 3] = [(1_087.0, 6.7), (19_762.0, 17.05), (98_032.0, 61.6)];

/// 1.25.1's controller on `k8s`: "k8s, first start after the import 22.0 s" with the 216-row
/// database (`linstor-1.25.1/timing.txt`), the only size recorded.
const V1_25_1_CONTROLLER_K8S: (f64, f64) = (216.0, 22.0);

/// Seconds at `rows` on the line through the recorded points (straight on beyond either end).
fn interpolate(points: &[(f64, f64)], rows: f64) -> f64 {
    let i = points
        .windows(2)
        .position(|w| rows <= w[1].0)
        .unwrap_or(points.len() - 2);
    let ((x0, y0), (x1, y1)) = (points[i], points[i + 1]);
    y0 + (rows - x0) * (y1 - y0) / (x1 - x0)
}

/// How long `release`'s controller takes to start on a `k8s` database of `rows` rows: 1.33.3's
/// recorded times between its sizes; 1.25.1's one recorded start, grown with the database as
/// 1.33.3's grew (no larger 1.25.1 database was recorded).
pub fn controller_start(release: Release, rows: usize) -> Duration {
    let rows = rows as f64;
    let seconds = match release {
        Release::V1_33_3 => interpolate(&V1_33_3_CONTROLLER_K8S, rows),
        Release::V1_25_1 => {
            let (at, took) = V1_25_1_CONTROLLER_K8S;
            took + interpolate(&V1_33_3_CONTROLLER_K8S, rows) - interpolate(&V1_33_3_CONTROLLER_K8S, at)
        }
    };
    Duration::from_secs_f64(seconds.max(0.0))
}

/// One line saying where the controller's start comes from, for reports.
pub fn describe_controller_start(release: Release) -> String {
    match release {
        Release::V1_33_3 => {
            "1.33.3's recorded start on k8s: 6.7 / 17.05 / 61.6 s at 1,087 / 19,762 / 98,032 rows, \
                             straight lines between"
                .into()
        }
        Release::V1_25_1 => {
            "1.25.1's recorded 22.0 s at 216 rows, grown with the rows as 1.33.3's start grew".into()
        }
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
    fn off_unless_asked_for_and_per_release() {
        assert_eq!(Pace::parse(None, Release::V1_33_3), Ok(None));
        assert_eq!(Pace::parse(Some("off"), Release::V1_25_1), Ok(None));
        assert_eq!(
            Pace::parse(Some("recorded"), Release::V1_33_3),
            Ok(Some(Pace::V1_33_3))
        );
        assert_eq!(
            Pace::parse(Some("recorded"), Release::V1_25_1),
            Ok(Some(Pace::V1_25_1))
        );
        assert!(Pace::parse(Some("fast"), Release::V1_33_3).is_err());
    }

    #[test]
    fn the_controller_starts_at_the_recorded_times() {
        let secs = |r, rows| controller_start(r, rows).as_secs_f64();
        for (rows, took) in V1_33_3_CONTROLLER_K8S {
            assert!(
                (secs(Release::V1_33_3, rows as usize) - took).abs() < 0.01,
                "{rows}"
            );
        }
        // between and beyond the recorded sizes: straight lines
        assert!((secs(Release::V1_33_3, 10_000) - 11.5).abs() < 0.2);
        assert!(secs(Release::V1_33_3, 200_000) > 61.6);
        assert!((secs(Release::V1_25_1, 216) - 22.0).abs() < 0.01);
        // 1.25.1 grows as 1.33.3 did: 20k rows take ~10.9 s more than 216
        let grown = secs(Release::V1_25_1, 20_000) - 22.0;
        assert!((grown - (secs(Release::V1_33_3, 20_000) - secs(Release::V1_33_3, 216))).abs() < 0.01);
        assert!(grown > 10.0 && grown < 12.0, "{grown}");
    }
}
