//! Fault-injecting proxy in front of the kube-apiserver (see `linstor_standins::faultproxy`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;
use linstor_standins::faultproxy::Book;
use linstor_standins::faultproxy::serve::{self, Upstream};

/// Passes plain HTTP/1.1 on `--listen` to the API server over TLS; faults as the control API
/// on `--control` says.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where clients (the service) connect, plain HTTP.
    #[arg(long)]
    listen: SocketAddr,
    /// The control API of the tests.
    #[arg(long)]
    control: SocketAddr,
    /// The API server, `https://host:port`.
    #[arg(long)]
    upstream: String,
    /// The CA certificate (PEM) the API server's certificate is checked against.
    #[arg(long)]
    ca: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    linstor_standins::install_crypto_provider();
    let args = Args::parse();
    let upstream = Arc::new(Upstream::new(&args.upstream, &args.ca).context("the upstream")?);
    let book = Arc::new(Mutex::new(Book::default()));
    let proxied = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let control = tokio::net::TcpListener::bind(args.control)
        .await
        .with_context(|| format!("cannot listen on {}", args.control))?;
    eprintln!(
        "kube-fault-proxy: http://{} -> {} (control http://{})",
        args.listen, args.upstream, args.control
    );
    let control = axum::serve(control, serve::control(book.clone()));
    tokio::select! {
        () = serve::proxy(proxied, upstream, book) => Ok(()),
        r = control => r.context("the control API"),
    }
}
