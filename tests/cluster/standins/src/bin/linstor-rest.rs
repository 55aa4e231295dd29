//! Stand-in LINSTOR REST server (see `linstor_standins::rest`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use linstor_standins::rest::controller::{self, Controller, Sources};
use linstor_standins::rest::server::{self, AppState, WhenDown};

/// Serves LINSTOR's REST API from the database the running controller pod started with, as the
/// LINSTOR release of that pod's image.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3370")]
    listen: SocketAddr,
    /// The controller Deployment as NAMESPACE/NAME (a LinstorController name also works: its
    /// Deployment is NAME-controller).
    #[arg(long)]
    controller: String,
    /// Kubeconfig to watch the cluster with (default: KUBECONFIG, then in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The export file that stands for the etcd cluster's data.
    #[arg(long, env = "LINSTOR_STANDIN_ETCD_DATA")]
    etcd_data: Option<PathBuf>,
    /// The controller's ConfigMap, when its Deployment does not mount one at /etc/linstor.
    #[arg(long)]
    config_map: Option<String>,
    /// What the API does while no controller pod is Ready.
    #[arg(long, value_enum, default_value = "503")]
    when_down: WhenDown,
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    linstor_standins::install_crypto_provider();
    let (ns, name) = args
        .controller
        .split_once('/')
        .context("--controller must be NAMESPACE/NAME")?;
    let client = client(args.kubeconfig.as_ref())
        .await
        .context("connecting to the API server")?;
    let ctl = Controller::default();
    let sources = Sources {
        etcd_data: args.etcd_data,
        config_map: args.config_map,
    };
    tokio::spawn(controller::follow(
        client,
        ctl.clone(),
        ns.to_string(),
        name.to_string(),
        sources,
    ));
    let state = AppState { controller: ctl };
    server::serve(args.listen, state, args.when_down)
        .await
        .context("serving")?;
    Ok(())
}
