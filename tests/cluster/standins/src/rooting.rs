//! "Pod paths" on one machine: KWOK runs `exec` commands as local processes, so `/etc/linstor`
//! in a command means this machine's `/etc/linstor`. `LINSTOR_STANDIN_ROOT` moves every absolute
//! path the tool is *given* under a directory, so that several simulated pods can coexist.

use std::path::{Path, PathBuf};

/// Environment variable naming the directory that absolute paths are moved under.
pub const ROOT_ENV: &str = "LINSTOR_STANDIN_ROOT";

/// The root from the environment (unset or empty: none).
pub fn root_from_env() -> Option<PathBuf> {
    std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where `path` (as the pod sees it) lives on this machine: absolute paths under `root`,
/// relative paths unchanged (relative to the working directory the Exec resource sets).
pub fn rooted(root: Option<&Path>, path: &str) -> PathBuf {
    match root {
        Some(root) if path.starts_with('/') => root.join(path.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_move_under_the_root() {
        let root = Path::new("/tmp/pod-a");
        assert_eq!(
            rooted(Some(root), "/etc/linstor"),
            PathBuf::from("/tmp/pod-a/etc/linstor")
        );
        assert_eq!(
            rooted(Some(root), "/backup/x.json"),
            PathBuf::from("/tmp/pod-a/backup/x.json")
        );
        assert_eq!(rooted(Some(root), "//double"), PathBuf::from("/tmp/pod-a/double"));
    }

    #[test]
    fn relative_paths_and_no_root_stay() {
        assert_eq!(
            rooted(Some(Path::new("/r")), "backup.json"),
            PathBuf::from("backup.json")
        );
        assert_eq!(rooted(None, "/etc/linstor"), PathBuf::from("/etc/linstor"));
    }
}
