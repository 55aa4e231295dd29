//! How a run of `linstor-database` ended, judged from its exit code and output the way the real
//! 1.33.3 tool behaves (tests/fixtures/linstor-1.33.3/tool): success is exit 0 **and** the
//! `... - Export finished` / `Import finished` line (argument errors exit 0 with picocli's usage on
//! stderr); every runtime failure exits 1 with one Java stack trace on stderr whose `Caused by:`
//! lines carry the reason. A failure is told in one line: the innermost cause, plus what to do
//! where the cause says it (a missing RBAC right, the H2 fallback of a missing `linstor.toml`).

/// The two subcommands and the line that proves each succeeded.
pub fn finished_marker(subcommand: &str) -> &'static str {
    if subcommand == "import-db" {
        "Import finished"
    } else {
        "Export finished"
    }
}

/// What the tool printed, as far as the verdict needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    pub exit_code: i32,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// The process printed its `... finished` line (or its failure's stack trace) and was stopped
    /// while it lingered, so its exit code never came (LINSTOR 1.25.1 on the `k8s` backend lives on for about 60 s after it;
    /// `fixtures/linstor-1.25.1/timing.txt`).
    pub stopped_after_finish: bool,
}

/// Why a run did not succeed, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure {
    /// `linstor-database import-db exited with 1: KubernetesClientException: ... forbidden ...`.
    pub summary: String,
    /// What to do about it, when the cause tells (`grant ...`, `mount linstor.toml ...`).
    pub hint: Option<String>,
}

impl std::fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hint {
            Some(h) => write!(f, "{}; {h}", self.summary),
            None => f.write_str(&self.summary),
        }
    }
}

/// One `Caused by:` of a Java stack trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Fully qualified class name.
    pub class: String,
    /// The first line of the message.
    pub message: String,
}

impl Cause {
    fn simple_class(&self) -> &str {
        self.class.rsplit(['.', '$']).next().unwrap_or(&self.class)
    }

    /// `SimpleClass: message`, with the fabric8 client's status dump cut to its message.
    pub fn one_line(&self) -> String {
        format!("{}: {}", self.simple_class(), fabric8_message(&self.message))
    }
}

/// The `Caused by:` lines of a stack trace, outermost first.
pub fn causes(stderr: &[String]) -> Vec<Cause> {
    stderr
        .iter()
        .filter_map(|l| l.strip_prefix("Caused by: "))
        .map(|rest| match rest.split_once(": ") {
            Some((class, message)) => Cause {
                class: class.to_string(),
                message: message.to_string(),
            },
            None => Cause {
                class: rest.trim().to_string(),
                message: String::new(),
            },
        })
        .collect()
}

/// The cause that says why: the innermost one, unless that is only a `java.util.concurrent`
/// future that timed out waiting for the real failure (the etcd client's `TimeoutException`
/// under `No connection to ETCD server`), then the one it explains.
pub fn reason(causes: &[Cause]) -> Option<&Cause> {
    let last = causes.last()?;
    if last.class.starts_with("java.util.concurrent.") && causes.len() > 1 {
        return causes.get(causes.len() - 2);
    }
    Some(last)
}

/// `Failure executing: DELETE at: URL. Message: TEXT. Received status: ...` -> `TEXT`.
fn fabric8_message(message: &str) -> String {
    let Some((call, rest)) = message.split_once(". Message: ") else {
        return message.to_string();
    };
    let said = rest.split(". Received status:").next().unwrap_or(rest);
    // an answer without a Status is only the HTTP reason (`Not Found`: a resource the API server
    // does not serve, LINSTOR 1.25.1's tool/17): the call it answered says what is missing
    if said.trim_end_matches('.').split(' ').count() <= 3 && !said.contains('"') {
        let call = call
            .trim_start_matches("Failure executing: ")
            .replacen(" at: ", " ", 1);
        return format!("{call}: {said}");
    }
    said.to_string()
}

/// `(verb, resource, group)` of an API server 403 message (`... cannot deletecollection resource
/// "volumegroups" in API group "internal.linstor.linbit.com" ...`).
pub fn forbidden(message: &str) -> Option<(String, String, String)> {
    let rest = message.split(" cannot ").nth(1)?;
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, rest) = rest.split_once('"')?;
    let group = rest
        .split_once("in API group \"")
        .and_then(|(_, g)| g.split_once('"'))
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    Some((verb.to_string(), resource.to_string(), group))
}

fn hint(out: &ToolOutput, cause: Option<&Cause>) -> Option<String> {
    let message = cause.map(|c| c.message.as_str()).unwrap_or_default();
    if let Some((verb, resource, group)) = forbidden(message) {
        let rule_resource = if group == "internal.linstor.linbit.com" {
            "*".to_string()
        } else {
            resource.clone()
        };
        return Some(format!(
            "the controller's ServiceAccount may not {verb} {resource} ({group}): grant it with a ClusterRole rule \
             {{apiGroups: [\"{group}\"], resources: [\"{rule_resource}\"], verbs: [\"{verb}\"]}} bound to that \
             ServiceAccount (the chart's k8s-backend ClusterRole has it; piraeus-operator#521)"
        ));
    }
    let loaded_config = out
        .stdout
        .iter()
        .any(|l| l.starts_with("Loading configuration file"));
    if !loaded_config && out.stdout.iter().any(|l| l.contains("jdbc:h2:")) {
        return Some(
            "the tool found no linstor.toml in its config directory and fell back, without a word, to its \
             built-in H2 database (/var/lib/linstor/linstordb): mount the controller's ConfigMap there"
                .into(),
        );
    }
    if message.contains("No connection to ETCD server") {
        let url = out
            .stdout
            .iter()
            .find_map(|l| l.split("etcd connection URL is \"").nth(1))
            .and_then(|u| u.split('"').next())
            .unwrap_or("the configured etcd");
        return Some(format!(
            "etcd at {url} did not answer (the tool gives up after about 60 s): is the etcd StatefulSet running \
             and reachable from the migration pod, with its TLS certificates mounted if it uses TLS?"
        ));
    }
    if message.contains("timeout period") && message.contains("DELETE") {
        return Some(
            "a deletecollection took longer than the tool's 10 s client timeout; tables may be partly emptied: \
             empty the k8s backend's tables first, then import again"
                .into(),
        );
    }
    None
}

/// `Ok` when the run succeeded; else why not, in one line.
pub fn judge(subcommand: &str, out: &ToolOutput) -> Result<(), ToolFailure> {
    let marker = finished_marker(subcommand);
    let finished = out.stdout.iter().any(|l| l.trim_end().ends_with(marker));
    if out.exit_code == 0 && finished {
        return Ok(());
    }
    // stopped while it lingered after the line: the line decides, unless it also printed a failure
    if out.stopped_after_finish && finished && causes(&out.stderr).is_empty() {
        return Ok(());
    }
    let first_err = out
        .stderr
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if out.exit_code == 0 {
        let why = if first_err.is_empty() {
            "no output on stderr".to_string()
        } else {
            first_err.to_string()
        };
        return Err(ToolFailure {
            summary: format!(
                "linstor-database {subcommand} exited 0 without printing {marker:?}: it did not run ({why})"
            ),
            hint: Some("bad arguments: picocli prints the usage and exits 0".into()),
        });
    }
    let all = causes(&out.stderr);
    let cause = reason(&all);
    let why = match cause {
        Some(c) => c.one_line(),
        None if !first_err.is_empty() => first_err.to_string(),
        None => "no output on stderr".into(),
    };
    let ended = if out.stopped_after_finish {
        "was stopped after it lingered".to_string()
    } else {
        format!("exited with {}", out.exit_code)
    };
    Err(ToolFailure {
        summary: format!("linstor-database {subcommand} {ended}: {why}"),
        hint: hint(out, cause),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn the_finished_line_and_exit_zero_make_success() {
        let ok = ToolOutput {
            exit_code: 0,
            stdout: lines("06:54:41.108 [main] INFO LINSTOR/linstor-db -- SYSTEM - Export finished"),
            stderr: vec![],
            stopped_after_finish: false,
        };
        assert!(judge("export-db", &ok).is_ok());
        assert!(judge("import-db", &ok).is_err());
        let usage = ToolOutput {
            exit_code: 0,
            stdout: vec![],
            stderr: lines(
                "Unknown option: '--bogus'\nUsage: linstor-database export-db [-c=<configurationDirectory>] <dbExportPath>",
            ),
            stopped_after_finish: false,
        };
        let e = judge("export-db", &usage).unwrap_err();
        assert!(e.summary.contains("Unknown option: '--bogus'"), "{e}");
    }

    #[test]
    fn a_tool_stopped_while_it_lingered_after_its_line_succeeded() {
        // LINSTOR 1.25.1 on k8s: the line, then 60 s of nothing (fixtures/linstor-1.25.1/tool/02)
        let lingered = ToolOutput {
            exit_code: -1,
            stdout: lines("13:52:29.866 [main] INFO LINSTOR/linstor-db -- SYSTEM - Import finished"),
            stderr: vec![],
            stopped_after_finish: true,
        };
        assert!(judge("import-db", &lingered).is_ok());
        let failed = ToolOutput {
            stderr: lines("Exception in thread \"main\" x\nCaused by: java.io.IOException: broken"),
            ..lingered.clone()
        };
        let e = judge("import-db", &failed).unwrap_err();
        assert!(
            e.summary
                .contains("stopped after it lingered: IOException: broken"),
            "{e}"
        );
        let unfinished = ToolOutput {
            stdout: vec![],
            ..lingered
        };
        assert!(judge("import-db", &unfinished).is_err());
    }

    #[test]
    fn a_concurrent_timeout_gives_way_to_what_it_waited_for() {
        let c = causes(&lines(
            "Caused by: com.linbit.linstor.transaction.TransactionException: No connection to ETCD server\n\
             \tat x\n\
             Caused by: java.util.concurrent.TimeoutException: Waited 60 seconds",
        ));
        assert_eq!(
            reason(&c).unwrap().one_line(),
            "TransactionException: No connection to ETCD server"
        );
    }

    #[test]
    fn forbidden_messages_name_verb_resource_and_group() {
        let m = "volumegroups.internal.linstor.linbit.com is forbidden: User \"nodelete\" cannot deletecollection \
                 resource \"volumegroups\" in API group \"internal.linstor.linbit.com\" at the cluster scope";
        assert_eq!(
            forbidden(m),
            Some((
                "deletecollection".into(),
                "volumegroups".into(),
                "internal.linstor.linbit.com".into()
            ))
        );
    }
}
