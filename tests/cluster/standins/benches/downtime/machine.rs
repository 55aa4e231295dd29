//! What the benchmark ran on, and the peak memory of the service's process, from `/proc`.

/// `nproc`, the CPU model and the memory of this machine, in one line.
pub fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = kib_field(&meminfo, "MemTotal:").unwrap_or(0);
    format!(
        "{cpus} CPUs ({model}), {:.1} GiB memory",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

/// The 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The peak resident memory (`VmHWM`, KiB) of `pid`, which must be a `linstor-migrator serve`
/// process (a recycled pid would give another program's figure).
pub fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| format!("process {pid}: {e}"))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let is_service = args.first().is_some_and(|a| a.ends_with("/linstor-migrator"))
        && args.get(1).map(String::as_str) == Some("serve");
    if !is_service {
        return Err(format!("process {pid} is not `linstor-migrator serve`: {args:?}"));
    }
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("process {pid}: {e}"))?;
    kib_field(&status, "VmHWM:").ok_or_else(|| format!("no VmHWM for process {pid}"))
}
