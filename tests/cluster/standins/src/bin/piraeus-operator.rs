//! Stand-in for Piraeus Operator v1.10.8's LinstorController reconciler (see
//! `linstor_standins::operator`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use linstor_standins::operator::{self, Settings};

/// Reconciles LinstorController CRs into a Deployment, ConfigMap and Service.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Watch only this namespace (default: all).
    #[arg(long)]
    namespace: Option<String>,
    /// Kubeconfig (default: KUBECONFIG, then in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Reconcile every CR at least this often (the real operator: 60).
    #[arg(long, default_value_t = 5)]
    resync_seconds: u64,
    /// How long a changed dbConnectionURL waits before it reaches the ConfigMap.
    #[arg(long, default_value_t = 1500)]
    config_delay_ms: u64,
    /// KEY=VALUE: one more annotation of the controller's pod template (repeatable), e.g.
    /// `kwok.e2e.linstor-migrator.io/stop-delay=4s` (see tests/cluster/start.sh).
    #[arg(long = "pod-annotation", value_parser = key_value)]
    pod_annotations: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    linstor_standins::install_crypto_provider();
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    let client = kube::Client::try_from(config).context("connecting to the API server")?;
    let settings = Settings {
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        config_delay: Duration::from_millis(args.config_delay_ms),
        pod_annotations: args.pod_annotations.into_iter().collect(),
    };
    eprintln!(
        "piraeus-operator stand-in: namespace {}, resync {:?}, ConfigMap delay {:?}, pod annotations {:?}",
        args.namespace.as_deref().unwrap_or("(all)"),
        settings.resync,
        settings.config_delay,
        settings.pod_annotations
    );
    operator::run(client, args.namespace.as_deref(), settings).await;
    Ok(())
}
