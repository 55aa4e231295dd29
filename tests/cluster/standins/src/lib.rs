//! Stand-ins for the two parts of LINSTOR the cluster end-to-end tests need but cannot install
//! (LINSTOR is Java): the `linstor-database` export/import tool and the controller's REST API.
//! Both follow REFERENCE.md §3 and §5, failure modes included, and work against a real API server.
//!
//! Layout: [`rooting`] (pod paths on a shared machine), [`fault`] (injected failures),
//! [`javalog`] (LINSTOR-style log lines, error reports, stack traces), [`backend`] (the `k8s`
//! database backend's CRDs and objects), [`dbtool`] (the `linstor-database` binary),
//! [`rest`] (the `linstor-rest` binary), [`dataset`] (the etcd data the tests start from),
//! [`operator`] (the `piraeus-operator` binary: Piraeus Operator v1's LinstorController reconciler),
//! [`podfs`] (pod volumes on this machine, which KWOK does not materialise), [`pace`] (the
//! tool's recorded durations, for the downtime benchmark).

pub mod backend;
pub mod dataset;
pub mod dbtool;
pub mod fault;
pub mod javalog;
pub mod operator;
pub mod pace;
pub mod podfs;
pub mod rest;
pub mod rooting;

/// The LINSTOR version the stand-ins claim to be, unless `LINSTOR_STANDIN_VERSION` says otherwise.
pub const DEFAULT_VERSION: &str = "1.33.3";
/// Environment variable overriding [`DEFAULT_VERSION`].
pub const VERSION_ENV: &str = "LINSTOR_STANDIN_VERSION";

/// Selects rustls' ring provider for the Kubernetes client: the dependency graph enables more
/// than one, and rustls then refuses to pick. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
