//! How numbers, times and states read on the pages.

use chrono::{DateTime, Utc};

use crate::model::{RunState, StepState};

/// `2.4 MiB`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n.max(0) as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `0.3 s`, `31.0 s`, `4 min 05 s`, `1 h 02 min`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1} s", ms as f64 / 1000.0),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// `00:00:41`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// `2026-11-23 10:41:07 UTC`.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `10:41` today, `Nov 23` before.
pub fn short_time(t: &DateTime<Utc>) -> String {
    if t.date_naive() == Utc::now().date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %d").to_string()
    }
}

/// RFC 3339 with milliseconds (for `<time datetime>` and scripts).
pub fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Eight characters that tell runs apart: the random tail of a uuid v7 (its head is the time,
/// the same for runs started within a minute).
pub fn short_id(id: &str) -> String {
    id.rsplit('-')
        .next()
        .map(|tail| tail.chars().take(8).collect())
        .unwrap_or_default()
}

pub fn run_state_label(s: RunState) -> &'static str {
    match s {
        RunState::Queued => "queued",
        RunState::Running => "running",
        RunState::Waiting => "waiting for approval",
        RunState::Succeeded => "succeeded",
        RunState::Failed => "failed",
        RunState::Cancelled => "cancelled",
        RunState::RolledBack => "rolled back",
        RunState::RollbackFailed => "rollback failed",
    }
}

/// A text symbol per step state (the colour is not the only cue).
pub fn step_icon(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "○",
        StepState::Running => "●",
        StepState::Succeeded => "✓",
        StepState::Failed => "✗",
        StepState::Skipped => "–",
        StepState::RolledBack => "↺",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2_516_582), "2.4 MiB");
        assert_eq!(duration_ms(1200), "1.2 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(clock(41.9), "00:00:41");
        assert_eq!(short_id("018f3c2e-aaaa-7bbb-8ccc-1234567890ab"), "12345678");
    }
}
