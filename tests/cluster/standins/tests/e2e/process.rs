//! The child processes of a test (service, stand-ins): their logs, their ports, and their
//! record in the control plane's run directory so that stop.sh stops them too.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A free loopback port (bound and released; nothing else here races for it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process with its output in `dir/logs/<name>.log`, killed when dropped.
pub fn spawn(dir: &std::path::Path, name: &str, cmd: &mut Command) -> Child {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))
        .unwrap();
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    // a test process killed by a signal drops nothing: stop.sh stops what is recorded in
    // CLUSTER_DIR/run (every command line here mentions CLUSTER_DIR)
    if let (Some(cluster), Some(pid)) = (std::env::var_os("CLUSTER_DIR"), child.id()) {
        let test = dir.file_name().unwrap_or_default().to_string_lossy();
        let _ = std::fs::write(
            PathBuf::from(cluster).join(format!("run/e2e-{test}-{name}.pid")),
            pid.to_string(),
        );
    }
    child
}
