//! Helm 3 release records, read without helm: after a migration the release values must be
//! changed too, or the next `helm upgrade --reuse-values` renders `dbConnectionURL` back to etcd
//! (REFERENCE.md §2). This module decodes the release Secrets and says whether they still do.
//!
//! A release Secret (`sh.helm.release.v1.<name>.v<N>`, type `helm.sh/release.v1`) holds under
//! `release` the base64 text of the gzipped release JSON; k8s-openapi has already undone the
//! Secret's own base64, so one more base64 decoding and a gunzip remain.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, bail};
use base64::Engine;
use flate2::read::GzDecoder;
use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The values a migration sets, and the chart's own default for the URL.
const TARGET_URL: &str = "k8s";
const ETCD_SCHEME: &str = "etcd://";
/// The chart of Piraeus Operator v1.
const DEFAULT_CHART: &str = "piraeus";
/// Where Piraeus Operator v1 ships its chart: `charts/piraeus` of the operator's repository, at
/// the tag of the chart's version (chart 1.10.8 is tag v1.10.8); it was never published to a
/// chart repository, and its `piraeus-ha-controller` dependency is fetched by `helm dependency build`.
const PIRAEUS_REPO: &str = "https://github.com/piraeusdatastore/piraeus-operator";
/// Upper bound of a decompressed release, against a gzip bomb in a Secret.
const MAX_RELEASE_BYTES: u64 = 64 * 1024 * 1024;

/// One revision of a Helm release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    /// The revision number (`helm history`).
    pub version: i64,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, ...
    pub status: String,
    /// `<chart name>-<chart version>` as `helm list` shows it, e.g. `piraeus-1.10.8`.
    pub chart: Option<String>,
    /// The chart's name alone, e.g. `piraeus`.
    pub chart_name: Option<String>,
    /// The chart's version alone, e.g. `1.10.8`.
    pub chart_version: Option<String>,
    /// The user-supplied values (`helm get values`), not the chart defaults.
    pub config: serde_json::Value,
}

/// Whether a release's values would undo the migration, the command that persists it, and the
/// separate, later command that removes etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HelmDrift {
    pub release: String,
    pub namespace: String,
    /// `operator.controller.dbConnectionURL` of the values; `None` means the chart default
    /// (`etcd://<release>-etcd:2379`).
    pub db_connection_url: Option<String>,
    /// `etcd.enabled` of the values; `None` means the chart default (true).
    pub etcd_enabled: Option<bool>,
    /// True when a `helm upgrade --reuse-values` would render an etcd URL into the
    /// `LinstorController` again.
    pub says_etcd: bool,
    /// The chart the release uses, `<name>-<version>` as `helm list` shows it.
    #[serde(default)]
    pub chart: Option<String>,
    /// The commands that persist the migration in the release's values: getting the release's
    /// own chart, then `helm upgrade --reuse-values` with `dbConnectionURL=k8s` (etcd stays).
    pub persist_command: String,
    /// What the persist command changes, and what it leaves as it is.
    #[serde(default)]
    pub persist_changes: Vec<String>,
    /// A separate, later command: `etcd.enabled=false`, which removes etcd (the PVCs stay).
    #[serde(default)]
    pub drop_etcd_command: Option<String>,
    /// What removing etcd costs.
    #[serde(default)]
    pub drop_etcd_warning: Option<String>,
}

/// The part of the release JSON this module reads.
#[derive(Deserialize)]
struct ReleaseRecord {
    name: Option<String>,
    namespace: Option<String>,
    version: Option<i64>,
    #[serde(default)]
    info: Option<ReleaseInfo>,
    #[serde(default)]
    chart: Option<ChartRecord>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ReleaseInfo {
    status: Option<String>,
}

#[derive(Deserialize)]
struct ChartRecord {
    metadata: Option<ChartMetadata>,
}

#[derive(Deserialize)]
struct ChartMetadata {
    name: Option<String>,
    version: Option<String>,
}

/// Decodes one release Secret. Fields missing from the JSON fall back to the Secret's labels
/// (`name`, `version`, `status`), which Helm writes as well.
pub fn decode_release(secret: &Secret) -> anyhow::Result<HelmRelease> {
    let secret_name = secret.metadata.name.as_deref().unwrap_or("<unnamed>");
    let encoded = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .with_context(|| format!("Secret {secret_name} has no `release` key"))?;
    let json =
        release_json(&encoded.0).with_context(|| format!("Secret {secret_name} holds no Helm release"))?;
    let record: ReleaseRecord = serde_json::from_slice(&json)
        .with_context(|| format!("Secret {secret_name}: the release is not Helm release JSON"))?;

    let labels = secret.metadata.labels.clone().unwrap_or_default();
    let name = record.name.or_else(|| labels.get("name").cloned());
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        bail!("Secret {secret_name}: the release has no name");
    };
    let version = record
        .version
        .or_else(|| labels.get("version").and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    let status = record
        .info
        .and_then(|i| i.status)
        .or_else(|| labels.get("status").cloned())
        .unwrap_or_default();
    let metadata = record.chart.and_then(|c| c.metadata);
    let chart_name = metadata.as_ref().and_then(|m| m.name.clone());
    let chart_version = metadata.as_ref().and_then(|m| m.version.clone());
    let chart = metadata.and_then(|m| Some(format!("{}-{}", m.name?, m.version?)));
    Ok(HelmRelease {
        name,
        namespace: record
            .namespace
            .or_else(|| secret.metadata.namespace.clone())
            .unwrap_or_default(),
        version,
        status,
        chart: chart.or_else(|| chart_name.clone()),
        chart_name,
        chart_version,
        config: record.config.unwrap_or(serde_json::Value::Null),
    })
}

/// base64 text -> bytes -> gunzip when gzipped (Helm's own check, by magic number).
fn release_json(encoded: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text: Vec<u8> = encoded
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .context("the release is not base64")?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut json = Vec::new();
    GzDecoder::new(raw.as_slice())
        .take(MAX_RELEASE_BYTES)
        .read_to_end(&mut json)
        .context("the release is not valid gzip")?;
    Ok(json)
}

/// The current revision of each release: the highest `deployed` one, or the highest of any
/// status when none is deployed (a failed upgrade). Undecodable Secrets are skipped with a
/// warning. Releases of the `piraeus` chart come first, then by name.
pub fn latest_deployed(secrets: &[Secret]) -> Vec<HelmRelease> {
    let mut by_name: BTreeMap<String, HelmRelease> = BTreeMap::new();
    for secret in secrets {
        let release = match decode_release(secret) {
            Ok(release) => release,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "skipping an unreadable Helm release Secret"
                );
                continue;
            }
        };
        let rank = |r: &HelmRelease| (r.status == "deployed", r.version);
        match by_name.get(&release.name) {
            Some(best) if rank(best) >= rank(&release) => {}
            _ => {
                by_name.insert(release.name.clone(), release);
            }
        }
    }
    let mut releases: Vec<HelmRelease> = by_name.into_values().collect();
    releases.sort_by_key(|r| (r.chart_name.as_deref() != Some(DEFAULT_CHART), r.name.clone()));
    releases
}

/// Reads the values the migration depends on and builds the command that persists it.
pub fn values_drift(release: &HelmRelease) -> HelmDrift {
    let config = &release.config;
    let db_connection_url = config
        .pointer("/operator/controller/dbConnectionURL")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let etcd_enabled = config
        .pointer("/etcd/enabled")
        .and_then(serde_json::Value::as_bool);
    // The chart renders `dbConnectionURL | default "etcd://<release>-etcd:2379"`: an unset or
    // empty value is etcd whatever `etcd.enabled` says.
    let says_etcd = db_connection_url
        .as_deref()
        .is_none_or(|url| url.starts_with(ETCD_SCHEME));
    let (fetch, chart) = chart_source(release);
    let upgrade = |set: &str| {
        format!(
            "helm upgrade {} {chart} --namespace {} --reuse-values --set {set}",
            release.name, release.namespace
        )
    };
    let persist_command = fetch
        .iter()
        .cloned()
        .chain([upgrade(&format!(
            "operator.controller.dbConnectionURL={TARGET_URL}"
        ))])
        .collect::<Vec<_>>()
        .join("\n");
    let etcd_kept = etcd_enabled != Some(false);
    let mut persist_changes = vec![
        format!(
            "sets operator.controller.dbConnectionURL={TARGET_URL} in the values of release {}, so that a later \
             helm upgrade keeps the LinstorController on k8s instead of rendering etcd again",
            release.name
        ),
        "the chart then also renders the ClusterRole and ClusterRoleBinding linstor-controller with the rights the \
         k8s backend needs (it renders them only for k8s)"
            .to_string(),
        "every other value stays as it is (--reuse-values); the controller keeps running".to_string(),
    ];
    if etcd_kept {
        persist_changes.push(
            "etcd stays (etcd.enabled is not touched): a rollback to etcd needs it; remove it later, when you no \
             longer want to roll back"
                .to_string(),
        );
    }
    HelmDrift {
        release: release.name.clone(),
        namespace: release.namespace.clone(),
        db_connection_url,
        etcd_enabled,
        says_etcd,
        chart: release.chart.clone(),
        persist_command,
        persist_changes,
        drop_etcd_command: etcd_kept.then(|| upgrade("etcd.enabled=false")),
        drop_etcd_warning: etcd_kept.then(|| {
            format!(
                "removes the etcd StatefulSet {0}-etcd and its Service; Helm keeps the PVCs datadir-{0}-etcd-N with \
                 the old database. After it, a rollback to etcd (by this service or by hand) no longer works: run it \
                 only once the controller has run well on k8s and you will not go back",
                release.name
            )
        }),
    }
}

/// How to get the chart the release uses, and the chart argument of `helm upgrade`: the v1 chart
/// from the operator's repository at its version's tag; any other chart at a path to fill in.
fn chart_source(release: &HelmRelease) -> (Vec<String>, String) {
    match (release.chart_name.as_deref(), release.chart_version.as_deref()) {
        (Some(DEFAULT_CHART), Some(version)) => {
            let dir = format!("piraeus-operator-v{version}");
            (
                vec![
                    format!("git clone --depth 1 --branch v{version} {PIRAEUS_REPO} {dir}"),
                    format!("helm dependency build {dir}/charts/piraeus"),
                ],
                format!("{dir}/charts/piraeus"),
            )
        }
        (name, version) => {
            let what = match (name, version) {
                (Some(n), Some(v)) => format!("{n}-{v}"),
                (Some(n), None) => n.to_string(),
                _ => "the release's chart".to_string(),
            };
            (Vec::new(), format!("<path or repo/name of chart {what}>"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;

    fn release_secret(name: &str, version: i64, status: &str, config: serde_json::Value) -> Secret {
        let record = json!({
            "name": name,
            "namespace": "piraeus",
            "version": version,
            "info": {"status": status},
            "chart": {"metadata": {"name": "piraeus", "version": "1.10.8"}},
            "config": config,
            "manifest": "---\n# many lines",
        });
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(record.to_string().as_bytes()).expect("gzip");
        let text = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        secret_with(name, version, status, text.into_bytes())
    }

    fn secret_with(name: &str, version: i64, status: &str, release: Vec<u8>) -> Secret {
        let labels = [("owner", "helm"), ("name", name), ("status", status)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("version".to_string(), version.to_string())])
            .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some(format!("sh.helm.release.v1.{name}.v{version}")),
                namespace: Some("piraeus".into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some("helm.sh/release.v1".into()),
            data: Some([("release".to_string(), ByteString(release))].into()),
            ..Secret::default()
        }
    }

    #[test]
    fn decodes_a_gzipped_release() {
        let secret = release_secret(
            "piraeus-op",
            3,
            "deployed",
            json!({"operator": {"controller": {"replicas": 1}}}),
        );
        let release = decode_release(&secret).expect("decodes");
        assert_eq!(
            (release.name.as_str(), release.namespace.as_str()),
            ("piraeus-op", "piraeus")
        );
        assert_eq!((release.version, release.status.as_str()), (3, "deployed"));
        assert_eq!(release.chart.as_deref(), Some("piraeus-1.10.8"));
        assert_eq!(
            release.config.pointer("/operator/controller/replicas"),
            Some(&json!(1))
        );
    }

    #[test]
    fn garbage_gives_a_clear_error() {
        let err =
            decode_release(&secret_with("x", 1, "deployed", b"not base64 at all!".to_vec())).unwrap_err();
        assert!(format!("{err:#}").contains("not base64"), "{err:#}");
        let not_gzip_json = base64::engine::general_purpose::STANDARD.encode([0x1f, 0x8b, 1, 2, 3]);
        let err = decode_release(&secret_with("x", 1, "deployed", not_gzip_json.into_bytes())).unwrap_err();
        assert!(format!("{err:#}").contains("not valid gzip"), "{err:#}");
        let mut no_key = secret_with("x", 1, "deployed", Vec::new());
        no_key.data = None;
        assert!(format!("{:#}", decode_release(&no_key).unwrap_err()).contains("no `release` key"));
    }

    #[test]
    fn latest_prefers_the_highest_deployed_revision() {
        let secrets = vec![
            release_secret("piraeus-op", 1, "superseded", json!({})),
            release_secret("piraeus-op", 2, "deployed", json!({})),
            release_secret("piraeus-op", 3, "failed", json!({})),
            release_secret("other", 4, "failed", json!({})),
            secret_with("broken", 1, "deployed", b"%%%".to_vec()),
        ];
        let latest = latest_deployed(&secrets);
        let picked: Vec<(&str, i64)> = latest.iter().map(|r| (r.name.as_str(), r.version)).collect();
        assert_eq!(picked, vec![("other", 4), ("piraeus-op", 2)]);
    }

    fn drift(config: serde_json::Value) -> HelmDrift {
        values_drift(&decode_release(&release_secret("piraeus-op", 1, "deployed", config)).expect("decodes"))
    }

    #[test]
    fn missing_url_is_the_etcd_default() {
        let d = drift(json!({"operator": {"controller": {"replicas": 1}}}));
        assert!(d.says_etcd);
        assert_eq!((d.db_connection_url, d.etcd_enabled), (None, None));
    }

    #[test]
    fn the_persist_command_uses_the_releases_chart_and_keeps_etcd() {
        let d = drift(json!({"operator": {"controller": {"replicas": 1}}}));
        assert_eq!(d.chart.as_deref(), Some("piraeus-1.10.8"));
        assert_eq!(
            d.persist_command,
            "git clone --depth 1 --branch v1.10.8 https://github.com/piraeusdatastore/piraeus-operator \
             piraeus-operator-v1.10.8\n\
             helm dependency build piraeus-operator-v1.10.8/charts/piraeus\n\
             helm upgrade piraeus-op piraeus-operator-v1.10.8/charts/piraeus --namespace piraeus --reuse-values \
             --set operator.controller.dbConnectionURL=k8s"
        );
        assert!(
            !d.persist_command.contains("etcd.enabled"),
            "etcd stays: {}",
            d.persist_command
        );
        assert!(
            d.persist_changes.iter().any(|c| c.contains("etcd stays")),
            "{:?}",
            d.persist_changes
        );
        let drop = d.drop_etcd_command.expect("a separate command drops etcd");
        assert!(drop.ends_with("--set etcd.enabled=false"), "{drop}");
        assert!(d.drop_etcd_warning.unwrap().contains("rollback"));
        // a chart that is not Piraeus's own: named, with its path to fill in
        let mut other = decode_release(&release_secret("x", 1, "deployed", json!({}))).unwrap();
        other.chart_name = Some("my-linstor".into());
        other.chart_version = Some("2.0.0".into());
        assert!(
            values_drift(&other)
                .persist_command
                .contains("<path or repo/name of chart my-linstor-2.0.0>")
        );
    }

    #[test]
    fn explicit_etcd_url_says_etcd() {
        let d =
            drift(json!({"operator": {"controller": {"dbConnectionURL": "etcd://piraeus-op-etcd:2379"}}}));
        assert!(d.says_etcd);
        assert_eq!(
            d.db_connection_url.as_deref(),
            Some("etcd://piraeus-op-etcd:2379")
        );
    }

    #[test]
    fn persisted_values_do_not_drift() {
        let d = drift(
            json!({"operator": {"controller": {"dbConnectionURL": "k8s"}}, "etcd": {"enabled": false}}),
        );
        assert!(!d.says_etcd);
        assert_eq!(
            (d.db_connection_url.as_deref(), d.etcd_enabled),
            (Some("k8s"), Some(false))
        );
    }
}
