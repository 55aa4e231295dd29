//! The part of a kubelet that KWOK lacks: pod volumes. KWOK "runs" a pod without a filesystem
//! and executes `kubectl exec` commands as local processes (tests/cluster/README.md), so a
//! command that reads a mounted ConfigMap reads this machine's path. This writes the ConfigMap
//! and Secret volumes of the pods it follows as files at their `mountPath` and creates the
//! emptyDirs, as soon as a pod appears (before KWOK marks it Running, ~1 s later).
//!
//! KWOK would mark the pod Running within milliseconds, before this watch has even seen it, so
//! `tests/cluster/start.sh` with `KWOK_VOLUME_GATE` keeps such pods Pending until they carry
//! [`VOLUME_GATE_ANNOTATION`], which this sets after writing the volumes: as a kubelet mounts
//! volumes before it starts the containers.
//!
//! Only paths under `root` are written; mounts elsewhere (`/logs`, `/tmp`) are left alone, so a
//! test can never overwrite machine files. Volumes are written once per pod (a running pod
//! would see later ConfigMap changes only after a kubelet sync; nothing here needs that).
//!
//! What a container runs is its image: the image of the pod's container is written to
//! [`IMAGE_FILE`] under `root`, where the `linstor-database` stand-in takes its LINSTOR version
//! from (the migration pod runs the controller's image).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Pod, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

/// The annotation KWOK's pod-ready stage waits for (tests/cluster/start.sh `KWOK_VOLUME_GATE`).
pub const VOLUME_GATE_ANNOTATION: &str = "kwok.e2e.linstor-migrator.io/volumes";
/// The file under `root` holding the image of the last pod's (first) container.
pub const IMAGE_FILE: &str = "image";

fn log(message: &str) {
    eprintln!("{} podfs: {message}", chrono::Utc::now().format("%H:%M:%S%.3f"));
}

/// Which pods, and where files may be written.
#[derive(Debug, Clone)]
pub struct PodFs {
    pub namespace: String,
    pub label_selector: String,
    pub root: PathBuf,
}

/// The files of one volume: (relative path, content).
fn project(data: BTreeMap<String, Vec<u8>>, items: Option<&Vec<KeyToPath>>) -> Vec<(String, Vec<u8>)> {
    match items {
        Some(items) => items
            .iter()
            .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v.clone())))
            .collect(),
        None => data.into_iter().collect(),
    }
}

impl PodFs {
    /// Starts following pods; returns once the first list is done (later pods are caught).
    pub async fn start(self, client: kube::Client) -> tokio::task::JoinHandle<()> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(self.follow(client, ready_tx));
        let _ = tokio::time::timeout(Duration::from_secs(30), ready_rx).await;
        handle
    }

    async fn follow(self, client: kube::Client, ready: tokio::sync::oneshot::Sender<()>) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let mut events = watcher::watcher(pods, watcher::Config::default().labels(&self.label_selector))
            .default_backoff()
            .boxed();
        let mut done: HashSet<String> = HashSet::new();
        let mut ready = Some(ready);
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(Event::InitDone) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    continue;
                }
                Ok(Event::Apply(p) | Event::InitApply(p)) => p,
                Ok(_) => continue,
                Err(e) => {
                    log(&format!("watching pods: {e}"));
                    continue;
                }
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() || done.contains(&uid) {
                continue;
            }
            match self.materialize(&client, &pod).await {
                Ok(n) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    log(&format!("pod {name}: {n} volume(s) written"));
                    let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
                    let patch =
                        serde_json::json!({"metadata": {"annotations": {VOLUME_GATE_ANNOTATION: "mounted"}}});
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {
                            done.insert(uid);
                        }
                        Err(e) => log(&format!("pod {name}: marking the volumes mounted: {e}")),
                    }
                }
                Err(e) => log(&format!(
                    "pod {}: {e}",
                    pod.metadata.name.as_deref().unwrap_or_default()
                )),
            }
        }
    }

    fn allowed(&self, path: &Path) -> bool {
        path.is_absolute()
            && path.starts_with(&self.root)
            && !path.components().any(|c| c.as_os_str() == "..")
    }

    /// Writes every volume mount of `pod` under [`Self::root`]; returns how many.
    pub async fn materialize(&self, client: &kube::Client, pod: &Pod) -> Result<usize, String> {
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(0);
        };
        if let Some(image) = spec.containers.first().and_then(|c| c.image.as_deref()) {
            std::fs::create_dir_all(&self.root)
                .and_then(|()| std::fs::write(self.root.join(IMAGE_FILE), image))
                .map_err(|e| format!("writing the image of the pod: {e}"))?;
        }
        let volumes = spec.volumes.clone().unwrap_or_default();
        let mut written = 0;
        for mount in spec
            .containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().flatten())
        {
            let dir = PathBuf::from(&mount.mount_path);
            if !self.allowed(&dir) {
                continue;
            }
            let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else {
                continue;
            };
            let files = if let Some(cm) = &volume.config_map {
                let data = self.config_map(client, &cm.name).await?;
                project(data, cm.items.as_ref())
            } else if let Some(s) = &volume.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                let data = self.secret(client, &name).await?;
                project(data, s.items.as_ref())
            } else if volume.empty_dir.is_some() {
                Vec::new()
            } else {
                continue;
            };
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            for (rel, content) in files {
                let path = dir.join(&rel);
                if !self.allowed(&path) {
                    return Err(format!(
                        "volume {} maps a key outside its mount: {rel}",
                        volume.name
                    ));
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
                }
                std::fs::write(&path, content).map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
            written += 1;
        }
        Ok(written)
    }

    async fn config_map(
        &self,
        client: &kube::Client,
        name: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        // the service creates the ConfigMap before the pod, but allow for a slow cache anyway
        for _ in 0..50 {
            match api.get_opt(name).await {
                Ok(Some(cm)) => {
                    let mut out: BTreeMap<String, Vec<u8>> = cm
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes()))
                        .collect();
                    out.extend(
                        cm.binary_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0)),
                    );
                    return Ok(out);
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(format!("reading ConfigMap {name}: {e}")),
            }
        }
        Err(format!("ConfigMap {}/{name} does not exist", self.namespace))
    }

    async fn secret(&self, client: &kube::Client, name: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()),
            Ok(None) => Err(format!("Secret {}/{name} does not exist", self.namespace)),
            Err(e) => Err(format!("reading Secret {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_under_the_root_are_written() {
        let fs = PodFs {
            namespace: "n".into(),
            label_selector: String::new(),
            root: PathBuf::from("/tmp/e2e/t1"),
        };
        assert!(fs.allowed(Path::new("/tmp/e2e/t1/etc/linstor")));
        assert!(!fs.allowed(Path::new("/etc/linstor")));
        assert!(!fs.allowed(Path::new("/tmp/e2e/t1/../t2")));
        assert!(!fs.allowed(Path::new("/tmp/e2e/t10")));
        assert!(!fs.allowed(Path::new("relative")));
    }

    #[test]
    fn items_select_and_rename_keys() {
        let data = BTreeMap::from([("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())]);
        assert_eq!(project(data.clone(), None).len(), 2);
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/x".into(),
            mode: None,
        }];
        assert_eq!(
            project(data, Some(&items)),
            vec![("sub/x".to_string(), b"2".to_vec())]
        );
    }
}
