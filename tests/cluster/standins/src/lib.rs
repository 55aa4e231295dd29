//! Stand-ins for the parts of LINSTOR the cluster end-to-end tests need but cannot install
//! (LINSTOR is Java): the `linstor-database` tool, the controller's REST API and the Piraeus
//! operator, as real processes against a real API server. What LINSTOR *does* (the tool's
//! arguments, output, exit codes and faults, the `k8s` backend's objects, the REST views, the
//! datasets) is `linstor_fake`, the one model of LINSTOR replayed against the recordings; this
//! crate holds what is specific to being a process: kube-rs calls, the HTTP server, pacing, the
//! run registry, pod paths.
//!
//! Layout: [`rooting`] (pod paths on a shared machine), [`fault`] (which injected failure a run
//! takes), [`backend`] (reading the `k8s` backend with kube-rs), [`dbtool`] (the
//! `linstor-database` binary), [`rest`] (the `linstor-rest` binary), [`dataset`] (the etcd data
//! the tests start from), [`operator`] (the `piraeus-operator` binary: Piraeus Operator v1's
//! LinstorController reconciler), [`podfs`] (pod volumes on this machine, which KWOK does not
//! materialise), [`pace`] (the tool's recorded durations, for the downtime benchmark),
//! [`faultproxy`] (the `kube-fault-proxy` binary: an API server that answers 500, resets or hangs
//! when a test says so).

pub mod backend;
pub mod dataset;
pub mod dbtool;
pub mod fault;
pub mod faultproxy;
pub mod operator;
pub mod pace;
pub mod podfs;
pub mod rest;
pub mod rooting;

/// The LINSTOR version the stand-ins claim to be, unless `LINSTOR_STANDIN_VERSION` says otherwise.
pub const DEFAULT_VERSION: &str = linstor_fake::VERSION;
/// Environment variable overriding [`DEFAULT_VERSION`].
pub const VERSION_ENV: &str = "LINSTOR_STANDIN_VERSION";

/// Selects rustls' ring provider for the Kubernetes client: the dependency graph enables more
/// than one, and rustls then refuses to pick. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
