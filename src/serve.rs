//! `linstor-migrator serve`: the engine and the HTTP server side by side. SIGTERM (or Ctrl-C)
//! stops accepting requests, lets the running steps reach a safe point, persists, and exits; the
//! next start resumes the interrupted runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::AccessQuestion;
use crate::config::{Common, ServeArgs};
use crate::http::{self, AppState, HttpSettings};
use crate::metrics::Metrics;

/// Runs the service until a termination signal.
pub async fn run(common: &Common, args: &ServeArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let cluster = crate::app::cluster(common).await?;
    tracing::info!(cluster = %cluster.describe(), data_dir = %common.data_dir.display(), "starting");
    let engine = crate::app::engine(common, cluster, metrics).await?;

    let mut settings = HttpSettings::new(args.auth);
    if args.token.is_some() {
        settings.tokens = args.token.clone();
    }
    let (group, resource) = args
        .auth_resource
        .split_once('/')
        .unwrap_or(("", args.auth_resource.as_str()));
    settings.access = AccessQuestion::new(group, resource, &args.auth_verb, &args.auth_namespace);
    settings.secure_cookies = args.secure_cookies;
    let state = AppState::new(engine.clone(), settings)?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    http::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopping: letting runs reach a safe point");
    engine
        .shutdown(Duration::from_secs(args.shutdown_grace_seconds))
        .await;
    engine.db().close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
