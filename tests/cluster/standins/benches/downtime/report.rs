//! The benchmark's results as markdown: one table of every migration (size x import mode), the
//! tool/delta ratio per size, copy-out against `kubectl cp`, and the project's goals checked
//! against what was measured.

use crate::measure::{CopyTimes, Downtime};

/// One migration measured.
pub struct Measured {
    /// `tool` or `delta`.
    pub mode: &'static str,
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

/// Everything measured for one dataset size.
pub struct SizeResult {
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
            "| dataset | import | **downtime** | {} | tool runs | controller start | service overhead | rows written in the downtime | peak RSS |",
            STEPS.map(|(_, short)| short).join(" | ")
        ),
        format!(
            "|---|---|---:|{}---:|---:|---:|---:|---:|",
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
                "| {} ({} rows, {} RDs, {} volumes) | {}{} | **{:.2} s** | {} | {:.2} s | {:.2} s | {:.2} s | {} | {:.1} MiB |",
                r.label,
                thousands(r.rows as u64),
                thousands(r.resource_definitions as u64),
                thousands(r.volumes as u64),
                m.mode,
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
    out.push("| dataset | tool downtime | delta downtime | tool / delta |".into());
    out.push("|---|---:|---:|---:|".into());
    for r in results {
        if let (Some(t), Some(d)) = (r.run("tool"), r.run("delta")) {
            let (t, d) = (t.downtime.total(), d.downtime.total());
            out.push(format!("| {} | {t:.2} s | {d:.2} s | {:.1}x |", r.label, t / d));
        }
    }
    out.push(String::new());
    out.push(
        "| dataset | backup | copy_backup step | service copy code, best of 3 | `kubectl cp`, best of 3 | service / kubectl cp |"
            .into(),
    );
    out.push("|---|---:|---:|---:|---:|---:|".into());
    for r in results {
        if let Some(c) = &r.copy {
            let t = &c.times;
            out.push(format!(
                "| {} | {} bytes | {} ms = {:.1} MiB/s | {:.3} s = {:.1} MiB/s | {:.3} s = {:.1} MiB/s | {:.2}x |",
                r.label,
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
    let at = |label: &str| results.iter().find(|r| r.label == label);
    if let Some(d) = at("20k").and_then(|r| r.run("delta")) {
        let limit = d.consistent_export() + d.downtime.controller_start + 3.0;
        out.push(format!(
            "- delta at 20k <= consistent export + controller start + 3 s: {:.2} s against {:.2} s + {:.2} s + 3 s = {limit:.2} s: {}",
            d.downtime.total(),
            d.consistent_export(),
            d.downtime.controller_start,
            verdict(d.downtime.total() <= limit)
        ));
    }
    if let Some(r) = at("20k")
        && let (Some(t), Some(d)) = (r.run("tool"), r.run("delta"))
    {
        let ratio = t.downtime.total() / d.downtime.total();
        out.push(format!(
            "- at least 5x less downtime than the tool at 20k: {ratio:.1}x: {}",
            verdict(ratio >= 5.0)
        ));
    }
    if let Some(r) = at("100k") {
        let peak = r.runs.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        out.push(format!(
            "- peak RSS < 64 MiB at 100k: {peak:.1} MiB: {}",
            verdict(peak < 64.0)
        ));
    }
    for r in results {
        if let Some(c) = &r.copy {
            let ratio = c.times.kubectl / c.times.service;
            out.push(format!(
                "- copy-out >= 0.9x `kubectl cp` ({}): {ratio:.2}x: {}",
                r.label,
                verdict(ratio >= 0.9)
            ));
        }
    }
    out
}
