//! The recordings of the real tool (`tests/fixtures/linstor-<version>/tool/*.txt`): each
//! transcript holds the command, exit code, wall time, and stdout and stderr verbatim. Used by the
//! replay tests here and by the service's conformance tests.

use std::path::PathBuf;

use crate::Release;

/// The repository's copy of the recordings.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The recordings of `release` (`tests/fixtures/linstor-1.25.1`).
pub fn fixtures_of(release: Release) -> PathBuf {
    fixtures().join(format!("linstor-{}", release.version()))
}

/// One recorded run of `linstor-database`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The `# scenario:` line.
    pub scenario: String,
    /// Environment the command ran with (`KUBECONFIG=kubeconfig-crd-readonly`, `HOME=emptyhome`).
    pub env: Vec<(String, String)>,
    /// `command (equivalent): linstor-database ...`, without the program name, split on spaces.
    pub args: Vec<String>,
    pub exit_code: i32,
    pub wall_time_s: f64,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

fn section(text: &str, name: &str) -> Vec<String> {
    let start = format!("----- {name} -----\n");
    let end = format!("----- end {name} -----");
    text.split_once(&start)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body.lines().map(String::from).collect())
        .unwrap_or_default()
}

impl Transcript {
    /// Parses a transcript file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
                .ok_or_else(|| format!("transcript without {key:?}"))
        };
        let command = field("command (equivalent):")?;
        let words: Vec<&str> = command.split_whitespace().collect();
        let program = words
            .iter()
            .position(|w| *w == "linstor-database")
            .ok_or_else(|| format!("no linstor-database in {command:?}"))?;
        let env = words[..program]
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Self {
            scenario: field("# scenario:")?.to_string(),
            env,
            args: words[program + 1..].iter().map(|w| w.to_string()).collect(),
            exit_code: field("exit_code:")?
                .parse()
                .map_err(|e| format!("exit_code: {e}"))?,
            wall_time_s: field("wall_time_s:")?
                .parse()
                .map_err(|e| format!("wall_time_s: {e}"))?,
            stdout: section(text, "stdout"),
            stderr: section(text, "stderr"),
        })
    }

    /// Reads `tests/fixtures/linstor-<version>/tool/<name>`.
    pub fn load(release: Release, name: &str) -> Result<Self, String> {
        let path = fixtures_of(release).join("tool").join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// Every transcript of `release`, by file name.
    pub fn all(release: Release) -> Result<Vec<(String, Self)>, String> {
        let dir = fixtures_of(release).join("tool");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".txt") && n != "INDEX.txt")
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| Self::load(release, &n).map(|t| (n, t)))
            .collect()
    }

    /// The value of `name` in the command's environment.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A line with what differs between runs replaced: clock times, Java identity hash codes, the
/// random MAC bytes, nanosecond counts.
pub fn normalize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // HH:MM:SS.mmm
        if i + 12 <= b.len()
            && b[i..i + 12].iter().enumerate().all(|(k, c)| match k {
                2 | 5 => *c == b':',
                8 => *c == b'.',
                _ => c.is_ascii_digit(),
            })
        {
            out.push_str("<time>");
            i += 12;
            continue;
        }
        // @61832929 (identity hash)
        if b[i] == b'@' && i + 1 < b.len() && b[i + 1].is_ascii_hexdigit() {
            out.push_str("@<hash>");
            i += 1;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        let ch = line[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    let out = match out.split_once("using random bytes: ") {
        Some((head, _)) => format!("{head}using random bytes: <mac>"),
        None => out,
    };
    match out.split_once("(plus ") {
        Some((head, rest)) => match rest.split_once(" nanoseconds delay)") {
            Some((_, tail)) => format!("{head}(plus <n> nanoseconds delay){tail}"),
            None => out,
        },
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transcript_parses() {
        for (release, count) in [(Release::V1_25_1, 16), (Release::V1_33_3, 17)] {
            let all = Transcript::all(release).unwrap();
            assert_eq!(all.len(), count, "{release}");
            let (_, export) = &all[0];
            assert_eq!(export.args[..3], ["export-db", "-c", "cfg-etcd"]);
            assert_eq!(export.exit_code, 0);
            assert!(export.stdout.last().unwrap().ends_with("Export finished"));
            assert!(export.stderr.is_empty());
        }
        let t = Transcript::load(Release::V1_25_1, "13-import-k8s-rbac-crd-readonly.txt").unwrap();
        assert_eq!(t.env_var("KUBECONFIG"), Some("kubeconfig-crd-readonly"));
        assert_eq!(t.args[0], "import-db");
    }

    #[test]
    fn normalizing_removes_what_differs_between_runs() {
        assert_eq!(
            normalize("06:54:38.186 [main] INFO x@61832929: random bytes: ed:b2"),
            "<time> [main] INFO x@<hash>: random bytes: ed:b2"
        );
        assert_eq!(
            normalize("WARN x -- using random bytes: ed:b2:07"),
            "WARN x -- using random bytes: <mac>"
        );
    }
}
