//! Builds the parts from the configuration: tracing, the cluster (real or simulated), the
//! database and the engine. Shared by `serve` and the one-shot commands.

use std::sync::Arc;

use anyhow::Context as _;

use crate::cluster::Cluster;
use crate::cluster::kube::{CallPolicy, KubeCluster, KubeOptions};
use crate::cluster::sim::{SimCluster, SimTiming};
use crate::config::{Common, LogFormat};
use crate::db::Db;
use crate::engine::{Engine, EngineSettings, PodPaths};
use crate::metrics::Metrics;

/// Sets up logging to stderr (`RUST_LOG` filters; default info). Colours only on a terminal
/// (and not with `NO_COLOR`): a log file or a pipe gets plain text.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,kube=warn,hyper=warn"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The cluster the configuration asks for.
pub async fn cluster(common: &Common) -> anyhow::Result<Arc<dyn Cluster>> {
    if common.demo {
        return Ok(Arc::new(SimCluster::new(
            SimTiming::demo().scaled(common.demo_pace),
        )));
    }
    let options = KubeOptions {
        linstor_url_override: common.linstor_url.clone(),
        namespaces: common.managed_namespaces(),
        calls: CallPolicy {
            deadline: std::time::Duration::from_secs(common.kube_timeout_seconds),
            ..CallPolicy::default()
        },
    };
    let kube = KubeCluster::from_default_config(options)
        .await
        .context("cannot reach Kubernetes (no kubeconfig and not in a cluster); try --demo")?;
    Ok(Arc::new(kube))
}

/// Opens the database and starts the engine (which resumes interrupted runs).
pub async fn engine(
    common: &Common,
    cluster: Arc<dyn Cluster>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Engine> {
    let db = Db::open(&common.data_dir).await?;
    let mut settings = EngineSettings::new(common.data_dir.clone());
    settings.pod_paths = PodPaths {
        tool: common.tool_path.clone(),
        source_config_dir: common.source_config_dir.clone(),
        target_config_dir: common.target_config_dir.clone(),
        backup_dir: common.backup_dir.clone(),
        ..PodPaths::default()
    };
    // on a real cluster every run holds its controller's Lease (in the controller's namespace),
    // so that the CLI and the in-cluster service, or two replicas, never act on one controller
    settings.leases = !common.demo;
    settings.lease_ttl = std::time::Duration::from_secs(common.lease_seconds);
    settings.demo_scenario = common.demo_scenario;
    settings.instance_id = match std::env::var("POD_NAME") {
        Ok(pod) => pod,
        Err(_) => format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "linstor-migrator".into()),
            std::process::id()
        ),
    };
    Engine::start(db, cluster, settings, metrics).await
}
