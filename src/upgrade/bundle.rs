//! The downloadable bundle: one bash script with the v2 resources in a quoted heredoc and every
//! command of the plan as a step that says what it does, asks before it changes the cluster, and
//! checks its result. One file rather than an archive: it can be read top to bottom before it is
//! run, copied to a bastion host as it is, and it cannot be run with a YAML from another plan.

use std::fmt::Write as _;

use super::commands::q;
use super::{PlanStep, UpgradePlan, V2_VERSION};

/// Ends the heredoc with the YAML: no line of a rendered YAML document is this word alone.
const EOF_MARK: &str = "LINSTOR_MIGRATOR_V2_RESOURCES";

/// Where the generated script came from.
pub struct Origin<'a> {
    /// The run that made the plan.
    pub run_id: &'a str,
    /// When (RFC 3339).
    pub made_at: &'a str,
}

/// A shell comment block of `text`, wrapped at about 100 characters.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + word.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

fn function_name(prefix: &str, step: &PlanStep) -> String {
    format!("{prefix}_{}", step.id.replace('.', "_"))
}

/// The script for `plan`. Steps run plainly under `set -e` (a step function called in an `||` list
/// would have `set -e` switched off inside it), and an ERR trap says which step stopped.
pub fn script(plan: &UpgradePlan, origin: &Origin<'_>) -> String {
    let i = &plan.installation;
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n");
    comment(
        &mut s,
        &format!(
            "Piraeus Operator v1 -> v2 upgrade, steps 2 to 4, for LinstorController {}/{}. Made by linstor-migrator {} \
             (run {}) at {}. Read it before you run it.",
            i.namespace,
            i.linstor_controller,
            env!("CARGO_PKG_VERSION"),
            origin.run_id,
            origin.made_at
        ),
    );
    comment(
        &mut s,
        "Every step says what it does, asks before it changes the cluster and checks its result; the script stops at the \
         first failure (set -e). ASSUME_YES=1 answers the questions with yes; START_AT=3.2 skips the steps before 3.2 \
         (after a failure, once its cause is fixed); WORK_DIR is where backups and the YAML go; V2_VERSION the Piraeus \
         Operator v2 release to install. Needs kubectl, helm and git, with the cluster's admin rights.",
    );
    // the steps' texts are single-quoted on purpose: `$` and backticks in them are prose
    s.push_str("# shellcheck disable=SC2016\nset -Eeuo pipefail\n\n");
    let _ = writeln!(
        s,
        "WORK_DIR=\"${{WORK_DIR:-./piraeus-v2-upgrade-{}}}\"",
        i.namespace
    );
    let _ = writeln!(s, "V2_VERSION=\"${{V2_VERSION:-{V2_VERSION}}}\"");
    s.push_str("START_AT=\"${START_AT:-2.1}\"\n");
    s.push_str("export WORK_DIR V2_VERSION\n\n");
    s.push_str(HELPERS);

    // the YAML, quoted: nothing in it is expanded
    s.push_str("\nwrite_v2_resources() {\n");
    let _ = writeln!(s, "  cat <<'{EOF_MARK}'");
    s.push_str(&plan.yaml());
    let _ = writeln!(s, "{EOF_MARK}\n}}");

    for step in &plan.steps {
        let _ = writeln!(s, "\n# {} {}", step.id, step.title);
        let _ = writeln!(
            s,
            "{}() {{\n{}\n}}",
            function_name("step", step),
            indent(&step.command)
        );
        let _ = writeln!(
            s,
            "{}() {{\n{}\n}}",
            function_name("verify", step),
            indent(&step.verify_command)
        );
    }

    s.push_str("\n# --- before anything: tools and the checks of the plan\n");
    s.push_str("for tool in kubectl helm git; do\n  command -v \"$tool\" >/dev/null || die \"$tool is needed\"\ndone\n");
    let blocking: Vec<String> = plan
        .blocking()
        .map(|c| format!("{}: {}", c.title, c.message))
        .collect();
    if !blocking.is_empty() {
        s.push_str("if [ \"${ALLOW_BLOCKING:-}\" != 1 ]; then\n");
        s.push_str("  echo \"The plan found problems that block the upgrade:\" >&2\n");
        for b in &blocking {
            let _ = writeln!(s, "  echo {} >&2", q(&format!("  - {b}")));
        }
        s.push_str(
            "  die \"deal with them and make a new plan (ALLOW_BLOCKING=1 runs this one anyway)\"\nfi\n",
        );
    }
    s.push_str("mkdir -p \"$WORK_DIR\"\n");

    s.push_str("\n# --- the steps\n");
    for step in &plan.steps {
        if step.id == "3.1" {
            // step 3 removes etcd with the chart: the database must be on k8s whatever the plan said
            s.push_str("if after 3.1; then\n  verify_2_2 || die \"the database is not on k8s: migrate it first (step 1)\"\nfi\n");
        }
        let _ = writeln!(
            s,
            "run_step {} {} {} {} {} {}",
            q(&step.id),
            q(&step.title),
            q(&step.explains),
            q(&step.verify),
            if step.changes_cluster { "yes" } else { "no" },
            step.id.replace('.', "_")
        );
    }
    s.push_str("\necho\necho \"Done. Piraeus Operator v2 runs the LINSTOR cluster; the backups are in $WORK_DIR.\"\n");
    s
}

fn indent(command: &str) -> String {
    command
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Functions every script uses.
const HELPERS: &str = r#"die() {
  echo "error: $*" >&2
  exit 1
}

# true when step $1 comes at or after START_AT (steps are numbered phase.number)
after() {
  local a="$1" b="$START_AT"
  [ "${a%%.*}" -gt "${b%%.*}" ] || { [ "${a%%.*}" -eq "${b%%.*}" ] && [ "${a#*.}" -ge "${b#*.}" ]; }
}

confirm() {
  if [ "${ASSUME_YES:-}" = 1 ]; then
    return 0
  fi
  local answer=""
  read -r -p "$1 [y/N] " answer || true
  case "$answer" in
    y | Y | yes | YES) return 0 ;;
    *) die "stopped before: $1 (START_AT=$2 continues here)" ;;
  esac
}

# a failing command anywhere in a step ends the script (set -E passes this trap into functions)
CURRENT_STEP=""
CURRENT_PART=""
trap 'echo "error: step $CURRENT_STEP: its $CURRENT_PART failed (START_AT=$CURRENT_STEP repeats it)" >&2' ERR

# run_step ID TITLE EXPLAINS VERIFY CHANGES_CLUSTER FUNCTION_SUFFIX
run_step() {
  local id="$1" title="$2" explains="$3" verify="$4" changes="$5" fn="$6"
  if ! after "$id"; then
    echo "== $id $title: skipped (START_AT=$START_AT)"
    return 0
  fi
  echo
  echo "== $id $title"
  echo "   $explains"
  if [ "$changes" = yes ]; then
    confirm "Run step $id ($title)?" "$id"
  fi
  CURRENT_STEP="$id"
  CURRENT_PART="command"
  "step_$fn"
  CURRENT_PART="check ($verify)"
  "verify_$fn"
  echo "   ok: $verify"
}
"#;
