//! `linstor-migrator serve`: the engine and the HTTP server side by side. SIGTERM (or Ctrl-C)
//! stops accepting requests, lets the running steps reach a safe point, persists, and exits; the
//! next start resumes the interrupted runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::AccessQuestion;
use crate::config::{Common, ServeArgs};
use crate::http::{self, AppState, AuthMode, HttpSettings};
use crate::metrics::Metrics;

/// Runs the service until a termination signal.
pub async fn run(common: &Common, args: &ServeArgs) -> anyhow::Result<()> {
    // before anything is opened: a refused start leaves no trace
    check_exposure(args)?;
    let settings = http_settings(args);
    settings.check_tokens()?;
    // every connection is a file descriptor: take all the process may have
    let open_files = http::server::fd_limit::raise_open_files_limit();
    tracing::debug!(?open_files, "open-file limit");
    let metrics = Arc::new(Metrics::default());
    let cluster = crate::app::cluster(common).await?;
    tracing::info!(cluster = %cluster.describe(), data_dir = %common.data_dir.display(), "starting");
    let engine = crate::app::engine(common, cluster, metrics).await?;

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

/// The HTTP settings the command line asks for.
fn http_settings(args: &ServeArgs) -> HttpSettings {
    let mut settings = HttpSettings::new(args.auth);
    if args.token.is_some() {
        settings.tokens = args.token.clone();
    }
    if args.metrics_token.is_some() {
        settings.metrics_token = args.metrics_token.clone();
    }
    settings.public_metrics = args.public_metrics;
    settings.max_connections = args.max_connections as usize;
    settings.header_timeout = Duration::from_secs(args.header_timeout_seconds);
    settings.body_timeout = Duration::from_secs(args.body_timeout_seconds);
    let (group, resource) = args
        .auth_resource
        .split_once('/')
        .unwrap_or(("", args.auth_resource.as_str()));
    settings.access = AccessQuestion::new(group, resource, &args.auth_verb, &args.auth_namespace);
    settings.secure_cookies = args.secure_cookies;
    settings.loopback_hosts_only = args.auth == AuthMode::None && !args.allow_unauthenticated_remote;
    settings
}

/// Refuses `--auth none` on an address others can reach, unless `--allow-unauthenticated-remote`:
/// without authentication, whoever reaches the port can stop a LINSTOR controller.
pub fn check_exposure(args: &ServeArgs) -> anyhow::Result<()> {
    let loopback = args.listen.ip().to_canonical().is_loopback();
    if args.auth != AuthMode::None || loopback || args.allow_unauthenticated_remote {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve without authentication on {listen}: anyone who reaches that address \
         could start and roll back migrations. Listen on loopback (--listen 127.0.0.1:{port}, \
         reached through `kubectl port-forward` or `ssh -L`), use --auth token or --auth \
         kubernetes, or accept the risk with --allow-unauthenticated-remote \
         (LINSTOR_MIGRATOR_ALLOW_UNAUTHENTICATED_REMOTE=true)",
        listen = args.listen,
        port = args.listen.port(),
    )
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::{Cli, Command};

    fn serve_args(args: &[&str]) -> ServeArgs {
        let argv = ["linstor-migrator", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).expect("arguments").command {
            Command::Serve(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn auth_none_stays_on_loopback_unless_forced() {
        for ok in [
            &["--auth", "none"][..],
            &["--auth", "none", "--listen", "[::1]:8080"],
            &["--auth", "none", "--listen", "127.0.0.2:8080"],
            &[
                "--auth",
                "none",
                "--listen",
                "0.0.0.0:8080",
                "--allow-unauthenticated-remote",
            ],
            &["--auth", "token", "--listen", "0.0.0.0:8080"],
            &["--auth", "kubernetes", "--listen", "[::]:8080"],
        ] {
            assert!(check_exposure(&serve_args(ok)).is_ok(), "{ok:?}");
        }
        for refused in [
            &["--auth", "none", "--listen", "0.0.0.0:8080"][..],
            &["--auth", "none", "--listen", "[::]:8080"],
            &["--auth", "none", "--listen", "10.1.2.3:9000"],
            &["--auth", "none", "--listen", "[::ffff:10.1.2.3]:9000"],
        ] {
            let err = check_exposure(&serve_args(refused)).unwrap_err().to_string();
            assert!(
                err.contains("--allow-unauthenticated-remote"),
                "{refused:?}: {err}"
            );
        }
    }
}
