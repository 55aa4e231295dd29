//! A pod's filesystem as its container sees it: paths resolve through `volumeMounts` to
//! ConfigMap and Secret keys (read live), emptyDirs and the image's own files.

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

use super::state::{SimPod, State, key};

/// The `linstor-database` binary in the controller image (LINSTOR >= 1.24).
pub(crate) const TOOL: &str = "/usr/share/linstor-server/bin/linstor-database";

/// Directories of the image (for `test -d`).
const IMAGE_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/usr",
    "/usr/bin",
    "/usr/share",
    "/usr/share/linstor-server",
    "/usr/share/linstor-server/bin",
    "/etc",
    "/tmp",
    "/var",
    "/var/lib",
    "/var/lib/linstor",
    "/var/log",
];

/// Executables of the image.
const IMAGE_BINARIES: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/cat",
    "/usr/bin/cat",
    "/bin/rm",
    "/usr/bin/test",
    "/bin/sleep",
    "/usr/bin/sha256sum",
    "/usr/share/linstor-server/bin/Controller",
];

/// `(major, minor, patch)` from an image tag such as `...:v1.33.3`.
pub(crate) fn image_version(image: &str) -> Option<(u32, u32, u32)> {
    let last = image.split('@').next()?.rsplit('/').next()?;
    let tag = last.split_once(':')?.1.trim_start_matches('v');
    let mut it = tag
        .split(['-', '+'])
        .next()?
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The LINSTOR version of a controller image (`1.25.1`); the newest recorded release's for an
/// image whose tag does not tell.
pub(crate) fn linstor_version(image: &str) -> String {
    image_version(image)
        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
        .unwrap_or_else(|| linstor_fake::Release::LATEST.version().into())
}

/// The LINSTOR release that plays the image's version.
pub(crate) fn linstor_release(image: &str) -> linstor_fake::Release {
    linstor_fake::Release::modelling(&linstor_version(image))
}

/// What is at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    File(Vec<u8>),
    Dir,
    /// An executable of the image.
    Executable,
}

pub(crate) fn container<'a>(spec: &'a PodSpec, name: &str) -> Option<&'a Container> {
    spec.containers.iter().find(|c| c.name == name)
}

/// The mount a path falls under (the longest mount path that is a prefix) and the rest of the path.
fn mount_of<'a>(
    spec: &'a PodSpec,
    c: &'a Container,
    path: &str,
) -> Option<(&'a Volume, String, bool, Option<&'a str>)> {
    let mounts = c.volume_mounts.as_ref()?;
    let m = mounts
        .iter()
        .filter(|m| {
            let mp = m.mount_path.trim_end_matches('/');
            path == mp || path.starts_with(&format!("{mp}/")) || mp.is_empty()
        })
        .max_by_key(|m| m.mount_path.len())?;
    let volume = spec.volumes.as_ref()?.iter().find(|v| v.name == m.name)?;
    let rest = path[m.mount_path.trim_end_matches('/').len().min(path.len())..]
        .trim_start_matches('/')
        .to_string();
    Some((
        volume,
        rest,
        m.read_only.unwrap_or(false),
        m.sub_path.as_deref().filter(|s| !s.is_empty()),
    ))
}

/// The key a projected ConfigMap/Secret file is, honouring `items` (key -> path).
fn projected_key(items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>, rel: &str) -> Option<String> {
    match items {
        Some(items) => items.iter().find(|i| i.path == rel).map(|i| i.key.clone()),
        None => Some(rel.to_string()),
    }
}

/// Looks at `path` in the pod's container.
pub(crate) fn stat(st: &State, ns: &str, pod: &SimPod, container_name: &str, path: &str) -> Option<Entry> {
    let spec = pod.pod.spec.as_ref()?;
    let c = container(spec, container_name)?;
    let path = normalize(path);
    if let Some((volume, rest, _, sub_path)) = mount_of(spec, c, &path) {
        // a subPath mount shows one key at the mount path itself
        let rel = match sub_path {
            Some(sp) if rest.is_empty() => sp.to_string(),
            Some(sp) => format!("{sp}/{rest}"),
            None => rest,
        };
        if let Some(cm) = &volume.config_map {
            let data = st
                .config_maps
                .get(&key(ns, &cm.name))?
                .data
                .clone()
                .unwrap_or_default();
            if rel.is_empty() {
                return Some(Entry::Dir);
            }
            let k = projected_key(cm.items.as_ref(), &rel)?;
            return data.get(&k).map(|v| Entry::File(v.clone().into_bytes()));
        }
        if let Some(sec) = &volume.secret {
            let name = sec.secret_name.as_deref().unwrap_or_default();
            let data = st.secrets.get(&key(ns, name))?.data.clone().unwrap_or_default();
            if rel.is_empty() {
                return Some(Entry::Dir);
            }
            let k = projected_key(sec.items.as_ref(), &rel)?;
            return data.get(&k).map(|v| Entry::File(v.0.clone()));
        }
        if volume.empty_dir.is_some() && rel.is_empty() {
            return Some(Entry::Dir);
        }
    }
    if let Some(bytes) = pod.files.get(&path) {
        return Some(Entry::File(bytes.to_vec()));
    }
    let prefix = format!("{}/", path.trim_end_matches('/'));
    if pod.files.keys().any(|f| f.starts_with(&prefix)) || IMAGE_DIRS.contains(&path.as_str()) {
        return Some(Entry::Dir);
    }
    let image = c.image.as_deref().unwrap_or_default();
    let has_tool = image_version(image).is_some_and(|v| v >= (1, 24, 0));
    if IMAGE_BINARIES.contains(&path.as_str()) || (path == TOOL && has_tool) {
        return Some(Entry::Executable);
    }
    None
}

/// Reads a file's content.
pub(crate) fn read(
    st: &State,
    ns: &str,
    pod: &SimPod,
    container_name: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    match stat(st, ns, pod, container_name, path) {
        Some(Entry::File(b)) => Ok(b),
        Some(Entry::Dir) => Err("Is a directory".into()),
        Some(Entry::Executable) => Ok(b"\x7fELF".to_vec()),
        None => Err("No such file or directory".into()),
    }
}

/// Why the container cannot write `path`, if it cannot.
pub(crate) fn check_writable(pod: &SimPod, container_name: &str, path: &str) -> Result<String, String> {
    let spec = pod.pod.spec.as_ref().ok_or("pod has no spec")?;
    let c = container(spec, container_name).ok_or("no such container")?;
    let path = normalize(path);
    if let Some((volume, _, read_only, _)) = mount_of(spec, c, &path) {
        if volume.config_map.is_some() || volume.secret.is_some() || read_only {
            return Err("Read-only file system".into());
        }
        return Ok(path);
    }
    let ro_root = c
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        .unwrap_or(false);
    if ro_root {
        Err("Read-only file system".into())
    } else {
        Ok(path)
    }
}

/// `/a/./b//c` -> `/a/b/c`; relative paths are relative to `/` (the image sets no WORKDIR).
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}
