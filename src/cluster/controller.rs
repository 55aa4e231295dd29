//! Finding LINSTOR controllers: `LinstorController` CRs with the Deployment, ConfigMap and
//! Service they own, and Deployments with a `linstor-controller` container that no CR owns.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Cluster, ClusterError, ClusterResult, LinstorController};
use crate::linstor::toml::{Backend, LinstorConfig};
use crate::model::ControllerRef;

/// The container name of the LINSTOR controller in Piraeus deployments.
pub const CONTROLLER_CONTAINER: &str = "linstor-controller";

/// Who manages a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ControllerKind {
    /// A `LinstorController` CR of Piraeus Operator v1: patch the CR, never the Deployment.
    LinstorController,
    /// A Deployment no CR owns: scale it and edit its ConfigMap directly.
    Deployment,
}

/// A discovered LINSTOR controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ControllerInfo {
    pub namespace: String,
    /// The CR's name, or the Deployment's for unowned controllers.
    pub name: String,
    pub kind: ControllerKind,
    pub deployment: String,
    /// The ConfigMap holding `linstor.toml`.
    pub config_map: Option<String>,
    /// The Service of the REST API.
    pub service: Option<String>,
    pub service_account: String,
    pub image: Option<String>,
    /// LINSTOR version from the image tag (`v1.33.3` -> `1.33.3`).
    pub linstor_version: Option<String>,
    /// Desired replicas (the CR's when it has them).
    pub replicas: i32,
    pub ready_replicas: i32,
    pub backend: Backend,
    pub connection_url: Option<String>,
    /// Why `linstor.toml` could not be read, if it could not.
    pub config_error: Option<String>,
    /// Secret with the REST API client certificate (https).
    pub https_client_secret: Option<String>,
    /// Label selector of the controller's pods.
    pub pod_selector: String,
}

impl ControllerInfo {
    pub fn reference(&self) -> ControllerRef {
        ControllerRef::new(&self.namespace, &self.name)
    }
}

fn controller_container(spec: &PodSpec) -> Option<&Container> {
    spec.containers.iter().find(|c| c.name == CONTROLLER_CONTAINER)
}

/// `1.33.3` from `quay.io/piraeusdatastore/piraeus-server:v1.33.3` (digest and suffixes ignored).
pub fn version_from_image(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let last = without_digest.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    let core = tag.trim_start_matches('v').split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
    .then(|| core.to_string())
}

/// Parses `1.33.3` into comparable numbers.
pub fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn config_map_of(spec: &PodSpec) -> Option<String> {
    let container = controller_container(spec)?;
    let mount = container
        .volume_mounts
        .as_ref()?
        .iter()
        .find(|m| m.mount_path == "/etc/linstor")?;
    let volume = spec.volumes.as_ref()?.iter().find(|v| v.name == mount.name)?;
    volume.config_map.as_ref().map(|c| c.name.clone())
}

fn owned_by_cr(d: &Deployment) -> Option<String> {
    d.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "LinstorController" && o.controller == Some(true))
        .map(|o| o.name.clone())
}

fn selector_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn describe(
    namespace: &str,
    name: &str,
    kind: ControllerKind,
    deployment: &Deployment,
    cr: Option<&LinstorController>,
    config_map: Option<&ConfigMap>,
) -> ControllerInfo {
    let spec = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let container = spec.and_then(controller_container);
    let image = container.and_then(|c| c.image.clone());
    let config_map_name = spec.and_then(config_map_of);
    let (config, config_error) = match config_map
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("linstor.toml"))
    {
        Some(text) => match LinstorConfig::parse(text) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        },
        None => (
            None,
            Some(match &config_map_name {
                Some(n) => format!("ConfigMap {namespace}/{n} has no linstor.toml"),
                None => "the controller mounts no ConfigMap at /etc/linstor".into(),
            }),
        ),
    };
    let deployment_replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    ControllerInfo {
        namespace: namespace.into(),
        name: name.into(),
        kind,
        deployment: deployment.metadata.name.clone().unwrap_or_default(),
        config_map: config_map_name,
        service: match kind {
            ControllerKind::LinstorController => Some(name.to_string()),
            ControllerKind::Deployment => Some(deployment.metadata.name.clone().unwrap_or_default()),
        },
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        linstor_version: image.as_deref().and_then(version_from_image),
        image,
        replicas: cr.and_then(|c| c.spec.replicas).unwrap_or(deployment_replicas),
        ready_replicas: deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        backend: config.as_ref().map(|c| c.backend()).unwrap_or(Backend::Unknown),
        connection_url: config.as_ref().map(|c| c.effective_url().to_string()),
        config_error,
        https_client_secret: cr.and_then(|c| c.spec.linstor_https_client_secret.clone()),
        pod_selector: selector_of(deployment),
    }
}

/// Every LINSTOR controller the cluster shows, sorted by namespace and name.
pub async fn discover(cluster: &dyn Cluster) -> ClusterResult<Vec<ControllerInfo>> {
    let crs = cluster.list_linstor_controllers().await?;
    let deployments = cluster.list_deployments().await?;
    let mut out = Vec::new();
    for d in &deployments {
        let ns = d.metadata.namespace.as_deref().unwrap_or("default");
        let Some(spec) = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
            continue;
        };
        if controller_container(spec).is_none() {
            continue;
        }
        let owner = owned_by_cr(d);
        let cr = owner.as_ref().and_then(|o| {
            crs.iter().find(|c| {
                c.metadata.name.as_deref() == Some(o) && c.metadata.namespace.as_deref() == Some(ns)
            })
        });
        // one unreadable ConfigMap must not hide every controller: it shows as a config error
        let cm = match config_map_of(spec) {
            Some(name) => match cluster.get_config_map(ns, &name).await {
                Ok(cm) => cm,
                Err(ClusterError::Forbidden(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let info = match (owner.as_deref(), cr) {
            (Some(_), Some(cr)) => describe(
                ns,
                cr.metadata.name.as_deref().unwrap_or_default(),
                ControllerKind::LinstorController,
                d,
                Some(cr),
                cm.as_ref(),
            ),
            _ => describe(
                ns,
                d.metadata.name.as_deref().unwrap_or_default(),
                ControllerKind::Deployment,
                d,
                None,
                cm.as_ref(),
            ),
        };
        out.push(info);
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}

/// A client for the controller's LINSTOR REST API (its Service; https with its client
/// certificate Secret when the CR names one).
pub async fn linstor_api(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
) -> ClusterResult<std::sync::Arc<dyn crate::linstor::rest::LinstorApi>> {
    let service = info.service.as_deref().unwrap_or(&info.name);
    // an empty Secret name is "no https", as the operator reads it (the chart renders `""`)
    let secret = info.https_client_secret.as_deref().filter(|s| !s.is_empty());
    cluster.linstor_api(&info.namespace, service, secret).await
}

/// The controller `r`, freshly read; `NotFound` when there is none.
pub async fn find(cluster: &dyn Cluster, r: &ControllerRef) -> ClusterResult<ControllerInfo> {
    discover(cluster)
        .await?
        .into_iter()
        .find(|c| c.namespace == r.namespace && c.name == r.name)
        .ok_or_else(|| ClusterError::NotFound {
            kind: "LINSTOR controller",
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_image_tags() {
        assert_eq!(
            version_from_image("quay.io/piraeusdatastore/piraeus-server:v1.33.3").as_deref(),
            Some("1.33.3")
        );
        assert_eq!(
            version_from_image("registry:5000/piraeus-server:v1.24.2-1@sha256:ab").as_deref(),
            Some("1.24.2")
        );
        assert_eq!(version_from_image("piraeus-server:latest"), None);
        assert_eq!(version_from_image("piraeus-server"), None);
        assert_eq!(version_tuple("1.33.3"), Some((1, 33, 3)));
        assert!(version_tuple("1.24").unwrap() < version_tuple("1.33.0").unwrap());
    }
}
