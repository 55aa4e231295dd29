//! The LINSTOR versions a Piraeus Operator v1 installation runs, as far as facts about them are
//! recorded (`fixtures/linstor-<version>/`, made with the real software): one row per recorded
//! version with the facts an export cannot give. Everything else of a version (tables, columns,
//! primary keys, the CRD version) a run takes from its own export and from the cluster's CRDs.

/// What the recordings of one LINSTOR version prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// `1.25.1`.
    pub linstor: &'static str,
    /// The export's `data_version`, which is also the storage version of the backend's CRDs.
    pub data_version: &'static str,
    /// Tables in its export.
    pub export_tables: usize,
    /// CRDs of the backend's group that its import creates.
    pub crds: usize,
    /// `spec.version` of the `LinstorVersion` object its import writes (one more than the
    /// export's `k8s_version`).
    pub k8s_schema_version: i64,
    /// Seconds the tool's process lives on after it printed `Import finished` / `Export finished`
    /// (or failed) on the `k8s` backend: its HTTP client's idle threads keep the JVM alive. The
    /// work is complete when the line is printed. None on etcd.
    pub k8s_exit_delay_s: u32,
    /// Whether a recorded `import-db` created exactly the objects the delta import writes for the
    /// same export (names by [`crate::naming`], `spec` = the row without nulls): the delta import
    /// is proven for this version.
    pub delta_proven: bool,
}

/// Every recorded version, oldest first: 1.25.1 is the default image of the Piraeus v1.10.8 chart,
/// 1.33.3 the last LINSTOR that reads etcd.
pub const RECORDED: [Recorded; 2] = [
    Recorded {
        linstor: "1.25.1",
        data_version: "v1-19-1",
        export_tables: 41,
        crds: 47,
        k8s_schema_version: 18,
        k8s_exit_delay_s: 60,
        delta_proven: true,
    },
    Recorded {
        linstor: "1.33.3",
        data_version: "v1-31-1",
        export_tables: 39,
        crds: 45,
        k8s_schema_version: 31,
        k8s_exit_delay_s: 0,
        delta_proven: true,
    },
];

/// The first LINSTOR with `linstor-database` (REFERENCE.md §3).
pub const FIRST_WITH_TOOL: (u32, u32, u32) = (1, 24, 0);
/// The first LINSTOR without etcd support (REFERENCE.md §3: "convert to SQL or CRD DB before
/// upgrade").
pub const FIRST_WITHOUT_ETCD: (u32, u32, u32) = (1, 34, 0);

/// The recorded facts of `version` (`1.25.1`, also `v1.25.1`).
pub fn recorded(version: &str) -> Option<&'static Recorded> {
    let v = version.trim_start_matches('v');
    RECORDED.iter().find(|r| r.linstor == v)
}

/// `(major, minor, patch)` of `1.25.1` / `v1.25` / `1.25.1-rc.1` (a missing patch is 0).
pub fn parse(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = match parts.next() {
        Some(p) => p.ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_versions_are_found_and_parsed() {
        assert_eq!(recorded("v1.25.1").unwrap().data_version, "v1-19-1");
        assert_eq!(recorded("1.33.3").unwrap().k8s_exit_delay_s, 0);
        assert!(recorded("1.26.0").is_none());
        assert_eq!(parse("1.25.1"), Some((1, 25, 1)));
        assert_eq!(parse("v1.24"), Some((1, 24, 0)));
        assert_eq!(parse("1.33.3-rc.1"), Some((1, 33, 3)));
        assert_eq!(parse("latest"), None);
        assert!(parse("1.33.9").unwrap() < FIRST_WITHOUT_ETCD);
        assert!(parse("1.23.9").unwrap() < FIRST_WITH_TOOL);
    }
}
