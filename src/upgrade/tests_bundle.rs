//! The bundle script: valid bash (and clean for shellcheck where it is installed), and run for real
//! against stand-in `kubectl`, `helm` and `git` that record their calls and answer like a cluster
//! in the middle of the upgrade: the steps run in order, a "no" stops before the cluster changes,
//! blocking checks and a database not on k8s stop it before step 3.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::bundle::{Origin, script};
use super::test_support::rendered_installation;
use super::{UpgradePlan, plan};

const ORIGIN: Origin<'static> = Origin {
    run_id: "0196-test",
    made_at: "2026-11-28T10:00:00Z",
};

/// Stand-ins that append their arguments to `$CALLS` and keep a little state in `$STATE`.
const KUBECTL: &str = r#"#!/usr/bin/env bash
echo "kubectl $*" >>"$CALLS"
args="$*"
case "$args" in
  *"jsonpath={.spec.dbConnectionURL}"*) printf '%s' "${DB_URL:-k8s}" ;;
  *"jsonpath={.data.MASTER_PASSPHRASE}"*) printf 'c2VjcmV0' ;;
  *"-o yaml"*) echo "kind: LinstorController" ;;
  *"get crds -o name"*)
    echo "customresourcedefinition.apiextensions.k8s.io/nodes.internal.linstor.linbit.com"
    [ -e "$STATE/crds-deleted" ] || echo "customresourcedefinition.apiextensions.k8s.io/linstorcontrollers.piraeus.linbit.com" ;;
  *"delete crd"*) touch "$STATE/crds-deleted" ;;
  *" delete linstorcontroller "*) touch "$STATE/crs-deleted" ;;
  *"-o name"*)
    case "$args" in
      *linstorcontrollers*) [ -e "$STATE/crs-deleted" ] || echo "linstorcontroller.piraeus.linbit.com/piraeus-op-cs" ;;
    esac ;;
  *" exec "*) echo "node-1 SATELLITE Online" ;;
  *" get nodes.internal.linstor.linbit.com"*) echo "items: []" ;;
esac
exit 0
"#;

const HELM: &str = r#"#!/usr/bin/env bash
echo "helm $*" >>"$CALLS"
case "$*" in
  "get values"*) echo "operator: {}" ;;
esac
exit 0
"#;

const GIT: &str = r#"#!/usr/bin/env bash
echo "git $*" >>"$CALLS"
for last; do :; done
mkdir -p "$last/charts/piraeus" && echo "name: piraeus" >"$last/charts/piraeus/Chart.yaml"
"#;

struct Run {
    output: Output,
    calls: Vec<String>,
    work: tempfile::TempDir,
}

fn run(plan: &UpgradePlan, env: &[(&str, &str)], stdin: &str) -> Run {
    let work = tempfile::tempdir().expect("temp dir");
    let bin = work.path().join("bin");
    let state = work.path().join("state");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    for (name, text) in [("kubectl", KUBECTL), ("helm", HELM), ("git", GIT)] {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let file = work.path().join("upgrade.sh");
    std::fs::write(&file, script(plan, &ORIGIN)).unwrap();
    let calls = work.path().join("calls");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg(&file)
        .current_dir(work.path())
        .env("PATH", path)
        .env("CALLS", &calls)
        .env("STATE", &state)
        .env("WORK_DIR", work.path().join("upgrade"))
        .env_remove("ASSUME_YES")
        .env_remove("START_AT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("bash runs");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("the script ends");
    let calls = std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Run { output, calls, work }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn position(calls: &[String], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call with {needle:?} in {calls:#?}"))
}

#[test]
fn the_script_is_valid_bash_and_passes_shellcheck_where_installed() {
    for file in ["default.yaml", "after-migration.yaml", "tls-https-2replicas.yaml"] {
        let text = script(&plan(&rendered_installation(file)), &ORIGIN);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade.sh");
        std::fs::write(&path, &text).unwrap();
        let syntax = Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("bash -n");
        assert!(syntax.status.success(), "{file}: {}", self::text(&syntax));
        assert!(text.starts_with("#!/usr/bin/env bash\n") && text.contains("set -Eeuo pipefail"));
        if Path::new("/usr/bin/shellcheck").exists() {
            let lint = Command::new("/usr/bin/shellcheck")
                .arg(&path)
                .output()
                .expect("shellcheck");
            assert!(lint.status.success(), "{file}: {}", self::text(&lint));
        }
    }
}

#[test]
fn the_script_runs_every_step_in_order_and_writes_the_plans_yaml() {
    let p = plan(&rendered_installation("after-migration.yaml"));
    let r = run(&p, &[("ASSUME_YES", "1")], "");
    assert!(r.output.status.success(), "{}", text(&r.output));
    let c = &r.calls;
    let order = [
        "get linstorcontroller piraeus-op-cs -o jsonpath",
        "linstor node list",
        "get secret piraeus-op-passphrase",
        "helm get values piraeus-op",
        "get nodes.internal.linstor.linbit.com",
        "scale deployment/piraeus-op-operator --replicas=0",
        "patch linstorcontroller piraeus-op-cs --type merge",
        "delete linstorcsidriver piraeus-op",
        "delete linstorcontroller piraeus-op-cs",
        "helm uninstall piraeus-op",
        "delete crd linstorcontrollers.piraeus.linbit.com",
        "git clone",
        "helm install piraeus-operator",
        "apply --server-side --dry-run=server",
        "rollout status deployment/linstor-controller",
    ];
    let at: Vec<usize> = order.iter().map(|n| position(c, n)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "out of order: {order:?} at {at:?}\n{c:#?}"
    );
    let written = std::fs::read_to_string(r.work.path().join("upgrade/v2-resources.yaml")).unwrap();
    assert_eq!(written, p.yaml());
    let backup = std::fs::read_to_string(r.work.path().join("upgrade/master-passphrase.b64")).unwrap();
    assert_eq!(backup, "c2VjcmV0");
}

#[test]
fn no_stops_the_script_before_the_cluster_changes() {
    let p = plan(&rendered_installation("after-migration.yaml"));
    let r = run(&p, &[], "n\n");
    assert!(!r.output.status.success());
    assert!(
        text(&r.output).contains("stopped before: Run step 3.1"),
        "{}",
        text(&r.output)
    );
    assert!(
        r.calls
            .iter()
            .all(|c| !c.contains("scale") && !c.contains("delete")),
        "{:#?}",
        r.calls
    );
    // and START_AT picks it up where it stopped
    let again = run(&p, &[("ASSUME_YES", "1"), ("START_AT", "4.4")], "");
    assert!(again.output.status.success(), "{}", text(&again.output));
    assert!(
        again.calls.iter().all(|c| !c.contains("helm uninstall")),
        "{:#?}",
        again.calls
    );
}

#[test]
fn blocking_checks_and_a_database_not_on_k8s_stop_the_script_before_step_3() {
    let blocked = plan(&rendered_installation("default.yaml"));
    let r = run(&blocked, &[("ASSUME_YES", "1")], "");
    assert!(!r.output.status.success());
    assert!(
        text(&r.output).contains("block the upgrade"),
        "{}",
        text(&r.output)
    );
    assert!(r.calls.is_empty(), "nothing ran: {:#?}", r.calls);
    // the plan said k8s, the cluster no longer does
    let p = plan(&rendered_installation("after-migration.yaml"));
    let r = run(
        &p,
        &[("ASSUME_YES", "1"), ("DB_URL", "etcd://piraeus-op-etcd:2379")],
        "",
    );
    assert!(!r.output.status.success());
    assert!(text(&r.output).contains("step 2.2"), "{}", text(&r.output));
    assert!(r.calls.iter().all(|c| !c.contains("scale")), "{:#?}", r.calls);
}
