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
//!
//! Each stand-in is the LINSTOR release of the controller image it runs as ([`image_version`]):
//! the tool the migration pod's image (which [`podfs`] writes where the tool finds it), the REST
//! server the image of the controller pod it serves for.

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

/// The LINSTOR version of a stand-in whose image does not tell: the newest recorded release.
pub const DEFAULT_VERSION: &str = "1.33.3";
/// Environment variable that sets the tool's LINSTOR version whatever its image (tests of the
/// stand-in itself).
pub const VERSION_ENV: &str = "LINSTOR_STANDIN_VERSION";

/// The LINSTOR version of a controller image, from its tag
/// (`quay.io/piraeusdatastore/piraeus-server:v1.25.1` -> `1.25.1`); `None` when the tag does not
/// tell.
pub fn image_version(image: &str) -> Option<String> {
    let last = image.split('@').next()?.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    linstor_migrator::linstor::versions::parse(tag).map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

/// Selects rustls' ring provider for the Kubernetes client: the dependency graph enables more
/// than one, and rustls then refuses to pick. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_come_from_image_tags() {
        assert_eq!(
            super::image_version("quay.io/piraeusdatastore/piraeus-server:v1.25.1").as_deref(),
            Some("1.25.1")
        );
        assert_eq!(
            super::image_version("registry:5000/piraeus-server:v1.33.3").as_deref(),
            Some("1.33.3")
        );
        assert_eq!(super::image_version("piraeus-server:latest"), None);
        assert_eq!(super::image_version("piraeus-server"), None);
        assert_eq!(linstor_fake::Release::LATEST.version(), super::DEFAULT_VERSION);
    }
}
