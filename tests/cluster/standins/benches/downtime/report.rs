//! The benchmark's results as markdown: one table of every migration (release x size x import
//! option), the tool / default ratio per release and size, copy-out against `kubectl cp`, and the
//! project's goals checked against what was measured.

use linstor_fake::Release;

use crate::measure::{CopyTimes, Downtime};

/// The most the service's own part of a downtime may take (everything but the `linstor-database`
/// runs and the controller's own start), seconds.
const OVERHEAD_GOAL: f64 = 3.0;

/// One migration measured.
pub struct Measured {
    /// The import option given: `default` (none), `tool` or `delta`.
    pub mode: &'static str,
    /// The import that ran (`auto` chooses for `default`).
    pub chosen: String,
    pub downtime: Downtime,
    /// Rows written into the `k8s` backend during the downtime.
    pub rows_written: u64,
    /// Why the tool's import ran after the delta, when it did.
    pub fallback: Option<String>,
    /// `VmHWM` of the service's process just before it stopped, KiB.
    pub peak_rss_kib: u64,
}

impl Measured {
    /// Seconds of the consistent export (the tool's `export-db` inside the downtime).
    pub fn consistent_export(&self) -> f64 {
        let d = &self.downtime;
        d.tool_runs
            .iter()
            .filter(|r| r.command == "export-db")
            .map(|r| r.within(d.started, d.ended))
            .sum()
    }

    fn step(&self, name: &str) -> f64 {
        self.downtime
            .steps
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or(0.0, |(_, ms, _)| *ms as f64 / 1000.0)
    }
}

/// Copy-out of one size's backup.
pub struct CopyOut {
    pub times: CopyTimes,
    /// The run's `copy_backup` step (stream, fsync, SHA-256, validation), ms.
    pub step_ms: i64,
}

/// Everything measured for one release at one dataset size.
pub struct SizeResult {
    pub release: Release,
    pub label: String,
    pub rows: usize,
    pub resource_definitions: usize,
    pub volumes: usize,
    pub runs: Vec<Measured>,
    pub copy: Option<CopyOut>,
}

impl SizeResult {
    fn run(&self, mode: &str) -> Option<&Measured> {
        self.runs.iter().find(|m| m.mode == mode)
    }

    /// The run of the delta import: the default options' (when `auto` chose it), else `delta`'s.
    fn delta(&self) -> Option<&Measured> {
        self.runs
            .iter()
            .find(|m| m.mode == "default" && m.chosen == "delta" && m.fallback.is_none())
            .or_else(|| self.run("delta"))
    }

    /// `1.25.1 20k`.
    fn name(&self) -> String {
        format!("{} {}", self.release.version(), self.label)
    }
}

impl Measured {
    /// `default (delta)`, `tool`.
    fn option(&self) -> String {
        match self.mode {
            "default" => format!("default ({})", self.chosen),
            mode => mode.to_string(),
        }
    }
}

/// `12345` -> `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The downtime steps as the table shows them.
const STEPS: [(&str, &str); 7] = [
    ("stop_controller", "stop"),
    ("export", "export"),
    ("copy_backup", "copy"),
    ("import", "import"),
    ("verify_data", "verify"),
    ("switch", "switch"),
    ("start_controller", "start"),
];

/// The whole report as markdown lines.
pub fn markdown(results: &[SizeResult]) -> Vec<String> {
    let mut out = vec![
        format!(
            "| LINSTOR | dataset | import | **downtime** | {} | tool runs | controller start | service overhead | rows written in the downtime | peak RSS |",
            STEPS.map(|(_, short)| short).join(" | ")
        ),
        format!(
            "|---|---|---|---:|{}---:|---:|---:|---:|---:|",
            "---:|".repeat(STEPS.len())
        ),
    ];
    for r in results {
        for m in &r.runs {
            let d = &m.downtime;
            let steps: Vec<String> = STEPS
                .iter()
                .map(|(name, _)| format!("{:.2}", m.step(name)))
                .collect();
            out.push(format!(
                "| {} | {} ({} rows, {} RDs, {} volumes) | {}{} | **{:.2} s** | {} | {:.2} s | {:.2} s | {:.2} s | {} | {:.1} MiB |",
                r.release.version(),
                r.label,
                thousands(r.rows as u64),
                thousands(r.resource_definitions as u64),
                thousands(r.volumes as u64),
                m.option(),
                m.fallback.as_ref().map_or(String::new(), |f| format!(" (fell back to the tool: {f})")),
                d.total(),
                steps.join(" | "),
                d.tool(),
                d.controller_start,
                d.overhead(),
                thousands(m.rows_written),
                m.peak_rss_kib as f64 / 1024.0
            ));
        }
    }
    out.push(String::new());
    out.push("| LINSTOR, dataset | tool downtime | delta downtime | tool / delta |".into());
    out.push("|---|---:|---:|---:|".into());
    for r in results {
        if let (Some(t), Some(d)) = (r.run("tool"), r.delta()) {
            let (t, d) = (t.downtime.total(), d.downtime.total());
            out.push(format!("| {} | {t:.2} s | {d:.2} s | {:.1}x |", r.name(), t / d));
        }
    }
    out.push(String::new());
    out.push(
        "| LINSTOR, dataset | backup | copy_backup step | service copy code, best of 3 | `kubectl cp`, best of 3 | service / kubectl cp |"
            .into(),
    );
    out.push("|---|---:|---:|---:|---:|---:|".into());
    for r in results {
        if let Some(c) = &r.copy {
            let t = &c.times;
            out.push(format!(
                "| {} | {} bytes | {} ms = {:.1} MiB/s | {:.3} s = {:.1} MiB/s | {:.3} s = {:.1} MiB/s | {:.2}x |",
                r.name(),
                thousands(t.bytes),
                c.step_ms,
                t.mib_per_s(c.step_ms as f64 / 1000.0),
                t.service,
                t.mib_per_s(t.service),
                t.kubectl,
                t.mib_per_s(t.kubectl),
                t.kubectl / t.service
            ));
        }
    }
    out.push(String::new());
    out.extend(goals(results));
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The project's goals, each with what was measured (only for the sizes that ran).
fn goals(results: &[SizeResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.label == "20k") {
        if let Some(d) = r.delta() {
            let limit = d.consistent_export() + d.downtime.controller_start + 3.0;
            out.push(format!(
                "- {}: delta <= consistent export + controller start + 3 s: {:.2} s against {:.2} s + {:.2} s + 3 s = {limit:.2} s: {}",
                r.name(),
                d.downtime.total(),
                d.consistent_export(),
                d.downtime.controller_start,
                verdict(d.downtime.total() <= limit)
            ));
        }
        if let (Some(t), Some(d)) = (r.run("tool"), r.delta()) {
            let ratio = t.downtime.total() / d.downtime.total();
            out.push(format!(
                "- {}: at least 5x less downtime than the tool: {ratio:.1}x: {}",
                r.name(),
                verdict(ratio >= 5.0)
            ));
        }
    }
    for r in results.iter().filter(|r| r.label == "20k" || r.label == "100k") {
        for m in r.runs.iter().filter(|m| m.mode != "tool") {
            let overhead = m.downtime.overhead();
            out.push(format!(
                "- {}, {}: the service's own part <= {OVERHEAD_GOAL} s: {overhead:.2} s: {}",
                r.name(),
                m.option(),
                verdict(overhead <= OVERHEAD_GOAL)
            ));
        }
    }
    for r in results.iter().filter(|r| r.label == "100k") {
        let peak = r.runs.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        out.push(format!(
            "- {}: peak RSS < 64 MiB: {peak:.1} MiB: {}",
            r.name(),
            verdict(peak < 64.0)
        ));
    }
    for r in results {
        if let Some(c) = &r.copy {
            let ratio = c.times.kubectl / c.times.service;
            out.push(format!(
                "- {}: copy-out >= 0.9x `kubectl cp`: {ratio:.2}x: {}",
                r.name(),
                verdict(ratio >= 0.9)
            ));
        }
    }
    out
}
