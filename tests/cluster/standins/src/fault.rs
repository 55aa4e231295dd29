//! Injected failures of the `linstor-database` stand-in, named `<operation>:<kind>`
//! (`import:exit1`, `export:usage`, `*:hang`; a bare `<kind>` means any operation).
//!
//! Two sources: `LINSTOR_STANDIN_FAULT_FILE` names a file with one fault per line; the first line
//! that matches the running operation fires and is removed (the file is deleted once empty), so
//! each line fires once. `LINSTOR_STANDIN_FAULT` holds comma-separated faults that fire on every
//! matching run. The file is consulted first.

use std::path::Path;
use std::str::FromStr;

/// Environment variable with faults that fire on every run.
pub const FAULT_ENV: &str = "LINSTOR_STANDIN_FAULT";
/// Environment variable naming a file of faults that fire once each.
pub const FAULT_FILE_ENV: &str = "LINSTOR_STANDIN_FAULT_FILE";

/// What the tool was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Export,
    Import,
}

impl Operation {
    /// `export` / `import`, as in fault names.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Export => "export",
            Operation::Import => "import",
        }
    }
}

/// How the tool fails: `linstor_fake::tool::Fault` (`exit1`, `exit2`, `usage`, `hang`, `partial`,
/// `corrupt` for exports, `slow` for imports).
pub use linstor_fake::tool::Fault as FaultKind;

fn parse_kind(s: &str) -> Option<FaultKind> {
    Some(match s {
        "exit1" => FaultKind::Exit1,
        "exit2" => FaultKind::Exit2,
        "usage" => FaultKind::Usage,
        "hang" => FaultKind::Hang,
        "partial" => FaultKind::Partial,
        "corrupt" => FaultKind::Corrupt,
        "slow" => FaultKind::Slow,
        _ => return None,
    })
}

/// One fault: the operation it applies to (`None`: any) and what happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub operation: Option<Operation>,
    pub kind: FaultKind,
}

impl Fault {
    fn applies_to(&self, op: Operation) -> bool {
        self.operation.is_none_or(|o| o == op)
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (op, kind) = s.split_once(':').unwrap_or(("*", s));
        let operation = match op {
            "*" | "any" => None,
            "export" => Some(Operation::Export),
            "import" => Some(Operation::Import),
            other => {
                return Err(format!(
                    "unknown operation {other:?} in fault {s:?} (export, import, *)"
                ));
            }
        };
        let kind = parse_kind(kind).ok_or_else(|| {
            format!("unknown fault {kind:?} in {s:?} (exit1, exit2, usage, hang, partial, corrupt, slow)")
        })?;
        if kind == FaultKind::Corrupt && operation != Some(Operation::Export) {
            return Err(format!(
                "fault {s:?}: corrupt applies to export only (export:corrupt)"
            ));
        }
        if kind == FaultKind::Slow && operation != Some(Operation::Import) {
            return Err(format!("fault {s:?}: slow applies to import only (import:slow)"));
        }
        Ok(Fault { operation, kind })
    }
}

/// Parses a fault list: lines or commas; blank lines and `#` comments are skipped.
pub fn parse_list(text: &str) -> Result<Vec<Fault>, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split(','))
        .filter(|f| !f.trim().is_empty())
        .map(Fault::from_str)
        .collect()
}

/// The fault that fires for `op`, if any: the first matching line of `file` (removed from it),
/// else the first matching entry of `env`. An unreadable or invalid list is an error, so that a
/// typo in a test shows up instead of silently injecting nothing.
pub fn take(op: Operation, env: Option<&str>, file: Option<&Path>) -> Result<Option<FaultKind>, String> {
    if let Some(path) = file
        && let Some(kind) = take_from_file(op, path)?
    {
        return Ok(Some(kind));
    }
    let from_env = parse_list(env.unwrap_or("")).map_err(|e| format!("{FAULT_ENV}: {e}"))?;
    Ok(from_env.into_iter().find(|f| f.applies_to(op)).map(|f| f.kind))
}

fn take_from_file(op: Operation, path: &Path) -> Result<Option<FaultKind>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let mut fired = None;
    for (i, line) in lines.iter().enumerate() {
        let faults = parse_list(line).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(f) = faults.first().filter(|f| f.applies_to(op)) {
            fired = Some((i, f.kind));
            break;
        }
    }
    let Some((i, kind)) = fired else { return Ok(None) };
    lines.remove(i);
    let rest: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    let written = if rest.is_empty() {
        std::fs::remove_file(path)
    } else {
        std::fs::write(path, rest.join("\n") + "\n")
    };
    written.map_err(|e| format!("consuming fault in {}: {e}", path.display()))?;
    Ok(Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_and_without_operation() {
        assert_eq!(
            "import:exit1".parse::<Fault>().unwrap(),
            Fault {
                operation: Some(Operation::Import),
                kind: FaultKind::Exit1
            }
        );
        assert_eq!(
            "hang".parse::<Fault>().unwrap(),
            Fault {
                operation: None,
                kind: FaultKind::Hang
            }
        );
        assert_eq!("*:usage".parse::<Fault>().unwrap().kind, FaultKind::Usage);
        assert!("import:explode".parse::<Fault>().is_err());
        assert!("restore:exit1".parse::<Fault>().is_err());
        assert!("import:corrupt".parse::<Fault>().is_err());
        assert_eq!("import:slow".parse::<Fault>().unwrap().kind, FaultKind::Slow);
        assert!("slow".parse::<Fault>().is_err());
        assert_eq!(
            parse_list("export:corrupt, import:partial # two\n\n")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_file_fault_fires_once_and_only_for_its_operation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fault");
        std::fs::write(&path, "import:partial\nexport:exit1\n").unwrap();

        assert_eq!(
            take(Operation::Export, None, Some(&path)).unwrap(),
            Some(FaultKind::Exit1)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "import:partial\n");
        assert_eq!(take(Operation::Export, None, Some(&path)).unwrap(), None);

        assert_eq!(
            take(Operation::Import, None, Some(&path)).unwrap(),
            Some(FaultKind::Partial)
        );
        assert!(!path.exists(), "an emptied fault file is deleted");
        assert_eq!(take(Operation::Import, None, Some(&path)).unwrap(), None);
    }

    #[test]
    fn env_faults_fire_every_time_and_typos_are_errors() {
        for _ in 0..2 {
            assert_eq!(
                take(Operation::Import, Some("export:hang,import:exit2"), None).unwrap(),
                Some(FaultKind::Exit2)
            );
        }
        assert_eq!(take(Operation::Export, Some("import:exit2"), None).unwrap(), None);
        assert!(take(Operation::Export, Some("exit3"), None).is_err());
    }
}
