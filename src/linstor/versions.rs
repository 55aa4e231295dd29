//! Which LINSTOR versions a migration supports, and how (stated in README and by preflight):
//! - recorded and proven (`linstor_model::versions::RECORDED`: 1.25.1, the Piraeus v1.10.8 chart's
//!   default, and 1.33.3): the delta import is the default, because a replay of the recordings
//!   shows its objects equal to the real `import-db`'s;
//! - 1.24.0 to 1.33.x otherwise: accepted with the tool's import only (the naming rule and the
//!   encoding are not proven for them);
//! - before 1.24: refused (no `linstor-database` tool); 1.34 and later: refused for an etcd source
//!   (etcd support was removed).

pub use linstor_model::versions::*;

/// What a migration of a controller running LINSTOR `version` may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Recorded: the delta import is proven.
    Proven(&'static Recorded),
    /// Accepted with the tool's import; the text says why not the delta.
    ToolOnly(String),
    /// Refused; the text says why.
    Refused(String),
}

/// The recorded versions, for messages: `1.25.1, 1.33.3`.
pub fn recorded_list() -> String {
    RECORDED.iter().map(|r| r.linstor).collect::<Vec<_>>().join(", ")
}

/// How a migration from `source` (`etcd`, or another backend) supports LINSTOR `version`.
pub fn support(version: &str, from_etcd: bool) -> Support {
    let Some(v) = parse(version) else {
        return Support::ToolOnly(format!(
            "the LINSTOR version {version:?} cannot be read; only the recorded versions ({}) have a proven delta \
             import",
            recorded_list()
        ));
    };
    if v < FIRST_WITH_TOOL {
        return Support::Refused(format!(
            "LINSTOR {version} has no linstor-database tool (needs 1.24 or later); upgrade within 1.x first"
        ));
    }
    if from_etcd && v >= FIRST_WITHOUT_ETCD {
        return Support::Refused(format!(
            "LINSTOR {version} cannot read etcd (removed in 1.34); use an image of 1.33.x or earlier"
        ));
    }
    match recorded(version).filter(|r| r.delta_proven) {
        Some(r) => Support::Proven(r),
        None => Support::ToolOnly(format!(
            "LINSTOR {version} is not among the recorded versions ({}): the delta import's naming rule and \
             encoding are proven only for those, so the tool's import runs",
            recorded_list()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_range() {
        assert!(matches!(support("1.25.1", true), Support::Proven(r) if r.data_version == "v1-19-1"));
        assert!(matches!(support("v1.33.3", true), Support::Proven(_)));
        assert!(matches!(support("1.28.0", true), Support::ToolOnly(w) if w.contains("1.25.1, 1.33.3")));
        assert!(matches!(support("1.23.2", true), Support::Refused(w) if w.contains("1.24")));
        assert!(matches!(support("1.34.0", true), Support::Refused(w) if w.contains("etcd")));
        assert!(matches!(support("1.34.0", false), Support::ToolOnly(_)));
        assert!(matches!(support("latest", true), Support::ToolOnly(_)));
    }
}
