//! The open-file limit (`RLIMIT_NOFILE`) and the connection limit that fits below it. Every
//! connection is a file descriptor; so are the SQLite files, the Kubernetes and LINSTOR client
//! connections, backups being written and the runtime's own. A server that runs out of them can
//! accept nothing, not even the kubelet's `/livez`.

use super::connections::EVICTION_HEADROOM;

/// File descriptors kept for everything but HTTP connections (SQLite's pool of 8 with its WAL
/// and shared-memory files, Kubernetes and LINSTOR clients, exec streams, backup files, stdio,
/// the runtime's epoll and event descriptors), with room to spare.
pub const FD_RESERVE: u64 = 64;

/// Raises the soft open-file limit to the hard limit, as a process may without privileges (the
/// soft default is often 1,024). Returns the soft limit in force afterwards (`None`: unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    // an unlimited hard limit still stops at the kernel's nr_open (usually 2^20)
    let target = now.maximum.unwrap_or(1 << 20);
    if now.current.is_some_and(|soft| soft < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(
                soft = now.current,
                hard = now.maximum,
                "cannot raise the open-file limit: {e}"
            );
        }
    }
    open_files_limit()
}

/// The soft open-file limit in force (`None`: unlimited).
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// `wanted` connections, or fewer so that they, the connections being evicted and
/// [`FD_RESERVE`] stay within `open_files` (at least one).
pub fn fit_connection_limit(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return wanted.max(1);
    };
    let room = open_files.saturating_sub(FD_RESERVE + EVICTION_HEADROOM as u64);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_stays_below_the_open_file_limit() {
        assert_eq!(fit_connection_limit(1000, Some(1_048_576)), 1000);
        assert_eq!(fit_connection_limit(1000, None), 1000);
        let fitted = fit_connection_limit(1000, Some(1024));
        assert_eq!(fitted, 1024 - 64 - 16);
        assert!(fitted as u64 + EVICTION_HEADROOM as u64 + FD_RESERVE <= 1024);
        assert_eq!(fit_connection_limit(1000, Some(10)), 1, "never zero");
    }

    #[test]
    fn raising_keeps_the_hard_limit() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let soft = raise_open_files_limit();
        let after = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(after.maximum, before.maximum, "the hard limit stays");
        if before.maximum.is_some() {
            assert_eq!(soft, before.maximum, "the soft limit is raised to the hard one");
        }
    }
}
