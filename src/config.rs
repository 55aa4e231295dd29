//! Command line and environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::http::AuthMode;
use crate::model::{ControllerRef, DemoScenario, ImportMode};

/// Moves a LINSTOR controller's database from etcd to the Kubernetes backend.
#[derive(Debug, Parser)]
#[command(name = "linstor-migrator", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Directory for the SQLite database and the backups.
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_DATA_DIR",
        default_value = "./linstor-migrator-data"
    )]
    pub data_dir: PathBuf,
    /// Use a simulated cluster instead of Kubernetes (nothing real is touched).
    #[arg(long, global = true, env = "LINSTOR_MIGRATOR_DEMO")]
    pub demo: bool,
    /// Scales the simulated cluster's durations (`0.1`: ten times faster than the demo's
    /// realistic pace; for tests of the CLI and the pages).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_DEMO_PACE",
        default_value_t = 1.0,
        hide = true
    )]
    pub demo_pace: f64,
    /// With --demo: a failure the simulated cluster plays, to see a rollback before you need one.
    /// The one-shot commands play it in their run; `serve` in every run that names no other
    /// (the start form preselects it).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_DEMO_SCENARIO",
        value_enum,
        requires = "demo",
        value_name = "SCENARIO"
    )]
    pub demo_scenario: Option<DemoScenario>,
    /// Base URL of the LINSTOR REST API instead of http://<service>.<namespace>.svc:3370
    /// (needed outside the cluster).
    #[arg(long, global = true, env = "LINSTOR_MIGRATOR_LINSTOR_URL")]
    pub linstor_url: Option<String>,
    /// Path of linstor-database inside the controller image.
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_TOOL_PATH",
        default_value = "/usr/share/linstor-server/bin/linstor-database"
    )]
    pub tool_path: String,
    /// Where the migration pod mounts the controller's linstor.toml (the controller's own mount
    /// is /etc/linstor).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_SOURCE_CONFIG_DIR",
        default_value = "/etc/linstor"
    )]
    pub source_config_dir: String,
    /// Where the migration pod keeps exports (an emptyDir).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_BACKUP_DIR",
        default_value = "/backup"
    )]
    pub backup_dir: String,
    /// Where the migration pod mounts the target linstor.toml.
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_TARGET_CONFIG_DIR",
        default_value = "/etc/linstor-target"
    )]
    pub target_config_dir: String,
    /// Namespaces whose LINSTOR controllers to manage, comma-separated; empty (the default): all.
    /// When set, controllers are discovered by listing each of these namespaces, so that the
    /// service needs rights only there (the Helm chart's namespaced RBAC).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS,..."
    )]
    pub namespaces: Vec<String>,
    /// Log format.
    #[arg(long, global = true, env = "LINSTOR_MIGRATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds one call to the Kubernetes API may take (an attempt: a call that is safe to
    /// repeat is tried up to 5 times when it fails in a way that may pass).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_KUBE_TIMEOUT",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=600)
    )]
    pub kube_timeout_seconds: u64,
    /// Seconds the controller's Lease lasts without renewal (renewed every third of it; a holder
    /// that cannot renew it stops acting after two thirds of it).
    #[arg(
        long,
        global = true,
        env = "LINSTOR_MIGRATOR_LEASE_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(3..=3600)
    )]
    pub lease_seconds: u64,
}

impl Common {
    /// [`Common::namespaces`] without blanks and duplicates, sorted; empty means all.
    pub fn managed_namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web UI and JSON API.
    Serve(ServeArgs),
    /// Migrate a controller's database to the k8s backend, once, from this terminal.
    Migrate(RunArgs),
    /// Take a consistent backup of a controller's database (stop, export, start).
    Backup(RunArgs),
    /// Check a controller and show the plan; changes nothing.
    Preflight(RunArgs),
    /// Plan the rest of the Piraeus Operator v1 -> v2 upgrade (steps 2-4); changes nothing.
    UpgradePlan(UpgradePlanArgs),
}

#[derive(Debug, Args, Clone)]
pub struct UpgradePlanArgs {
    /// The LinstorController as NAMESPACE/NAME; may be left out when there is exactly one.
    #[arg(long)]
    pub controller: Option<ControllerRef>,
    /// Where to write v2-resources.yaml, upgrade.sh and upgrade-plan.json.
    #[arg(long, short = 'o', default_value = "./piraeus-v2-upgrade")]
    pub output: PathBuf,
    /// The namespace Piraeus Operator v2 will run in (default: the LinstorController's).
    #[arg(long)]
    pub v2_namespace: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LINSTOR_MIGRATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, env = "LINSTOR_MIGRATOR_AUTH", value_enum, default_value_t = AuthMode::Token)]
    pub auth: AuthMode,
    /// The API token for `--auth token`: a bare token, or `name:token` pairs separated by commas
    /// (the name is recorded as the actor).
    #[arg(long, env = "LINSTOR_MIGRATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Resource checked with a SubjectAccessReview for `--auth kubernetes` (group/resource).
    #[arg(
        long,
        env = "LINSTOR_MIGRATOR_AUTH_RESOURCE",
        default_value = "piraeus.linbit.com/linstorcontrollers"
    )]
    pub auth_resource: String,
    /// Verb checked with a SubjectAccessReview for `--auth kubernetes`.
    #[arg(long, env = "LINSTOR_MIGRATOR_AUTH_VERB", default_value = "patch")]
    pub auth_verb: String,
    /// Namespace of the SubjectAccessReview for `--auth kubernetes` (empty: cluster-wide).
    #[arg(long, env = "LINSTOR_MIGRATOR_AUTH_NAMESPACE", default_value = "")]
    pub auth_namespace: String,
    /// With `--auth none`: listen on a non-loopback address and answer requests for any host name.
    /// Without it, `--auth none` refuses to listen anywhere but on loopback, and answers only
    /// requests for localhost, 127.0.0.1 or [::1] (421 otherwise; this stops DNS-rebinding pages).
    #[arg(long, env = "LINSTOR_MIGRATOR_ALLOW_UNAUTHENTICATED_REMOTE")]
    pub allow_unauthenticated_remote: bool,
    /// Always mark the session cookie Secure. Without it the cookie is Secure whenever the login
    /// came over TLS or with `X-Forwarded-Proto: https` (a TLS-terminating ingress).
    #[arg(long, env = "LINSTOR_MIGRATOR_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Seconds a shutdown waits for runs to reach a safe point.
    #[arg(long, env = "LINSTOR_MIGRATOR_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Serve /metrics without authentication (for a Prometheus that cannot send a token; keep
    /// the port private). Without it /metrics needs the metrics token or an API credential.
    #[arg(long, env = "LINSTOR_MIGRATOR_PUBLIC_METRICS")]
    pub public_metrics: bool,
    /// A token that may read /metrics and nothing else (for Prometheus; at least 16 characters).
    #[arg(long, env = "LINSTOR_MIGRATOR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Most HTTP connections at once (lowered to fit the open-file limit). At the limit the
    /// connection idle the longest is closed to make room; when all are busy, a new one is closed.
    #[arg(long, env = "LINSTOR_MIGRATOR_MAX_CONNECTIONS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a connection gets to send a complete request head, from opening or from the end
    /// of its previous response: closes half-sent requests and idle keep-alive connections.
    #[arg(long, env = "LINSTOR_MIGRATOR_HEADER_TIMEOUT", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_seconds: u64,
    /// Seconds a request body gets to arrive in full.
    #[arg(long, env = "LINSTOR_MIGRATOR_BODY_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_seconds: u64,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The controller as NAMESPACE/NAME; may be left out only when there is exactly one (with
    /// several, the command lists them and stops).
    #[arg(long)]
    pub controller: Option<ControllerRef>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Stop before the downtime and ask again.
    #[arg(long)]
    pub approve_before_downtime: bool,
    /// Do not roll back automatically when a step during the downtime fails.
    #[arg(long)]
    pub no_rollback: bool,
    /// Allow a SQL or H2 source for a migration.
    #[arg(long)]
    pub allow_non_etcd_source: bool,
    /// Scale the etcd StatefulSet to 0 after a successful migration (data kept).
    #[arg(long)]
    pub scale_down_etcd: bool,
    /// How the data is written into the k8s backend (default: tool).
    #[arg(long, value_enum)]
    pub import: Option<ImportMode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_a_comma_separated_list() {
        let cli = Cli::try_parse_from(["linstor-migrator", "--namespaces", " b,a,,b ", "serve"]).unwrap();
        assert_eq!(cli.common.managed_namespaces(), ["a", "b"]);
        let cli = Cli::try_parse_from(["linstor-migrator", "serve", "--namespaces=x"]).unwrap();
        assert_eq!(cli.common.managed_namespaces(), ["x"]);
        let cli = Cli::try_parse_from(["linstor-migrator", "serve"]).unwrap();
        assert!(
            cli.common.managed_namespaces().is_empty(),
            "default: all namespaces"
        );
    }
}
