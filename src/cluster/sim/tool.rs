//! The simulated `linstor-database` (REFERENCE.md §3) with the real tool's traps: exit 0 with
//! usage on bad arguments, a silent fallback to an empty H2 database without `linstor.toml`,
//! exit 2 for an unparsable config or unknown scheme, and a non-transactional import into `k8s`
//! that truncates first and leaves partial data when it fails.

use bytes::Bytes;

use super::SimCluster;
use super::faults::Fault;
use super::fs;
use super::shell::Out;
use super::state::key;
use super::tool_args::{Cmd, parse, sub_usage};
use crate::cluster::{ClusterError, ClusterResult};
use crate::linstor::export::ExportDocument;
use crate::linstor::schema;
use crate::linstor::toml::{Backend, DEFAULT_H2_URL, LinstorConfig};
use crate::model::StepName;

pub(crate) fn log(msg: &str) -> String {
    format!(
        "{} [main] INFO  LINSTOR/linstor-database - SYSTEM - {msg}",
        chrono::Utc::now().format("%H:%M:%S%.3f")
    )
}

/// Prints a Java exception the way the tool dies with it; returns exit code 1.
pub(crate) async fn exception(out: &Out, class: &str, message: &str, at: &str) -> ClusterResult<i32> {
    out.err(format!("Exception in thread \"main\" {class}: {message}"))
        .await;
    for frame in [
        at,
        "com.linbit.linstor.core.LinstorDatabaseTool.call(LinstorDatabaseTool.java:97)",
        "picocli.CommandLine.executeUserObject(CommandLine.java:2045)",
        "picocli.CommandLine.access$1500(CommandLine.java:148)",
        "com.linbit.linstor.core.LinstorDatabaseTool.main(LinstorDatabaseTool.java:61)",
    ] {
        out.err(format!("\tat {frame}")).await;
    }
    Ok(1)
}

/// Runs `linstor-database ARGS` in the pod.
pub(crate) async fn linstor_database(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    args: &[String],
    out: &Out,
) -> ClusterResult<i32> {
    // counted while it runs: two at once in one pod is what the tool guard prevents
    let _running = super::processes::ToolRunning::start(sim, ns, pod);
    let (cmd, dir, file) = match parse(args) {
        Ok(p) => p,
        Err((msg, usage)) => {
            if !msg.is_empty() {
                out.err(msg).await;
            }
            for l in usage.lines() {
                out.err(l.to_string()).await;
            }
            return Ok(0); // the real tool's trap: bad arguments exit 0
        }
    };
    let toml_path = format!("{}/linstor.toml", dir.trim_end_matches('/'));
    let (toml, version, sa, fault) = {
        let mut st = sim.lock();
        let p = st
            .pods
            .get(&key(ns, pod))
            .ok_or_else(|| ClusterError::Api(format!("pod {pod} is gone")))?;
        let toml = fs::read(&st, ns, p, container, &toml_path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let spec = p.pod.spec.as_ref();
        let image = spec
            .and_then(|s| fs::container(s, container))
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let sa = spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let target_k8s = toml
            .as_deref()
            .and_then(|t| LinstorConfig::parse(t).ok())
            .is_some_and(|c| c.backend() == Backend::K8s);
        // the pre-copy export and the schema-only import of step 4 are told apart by their files
        let prepare = ["precopy.json", "schema-only.json"]
            .iter()
            .any(|f| file.ends_with(&format!("/{f}")));
        let step = match cmd {
            _ if prepare => StepName::PrepareTarget,
            Cmd::Import => StepName::Import,
            Cmd::Export if target_k8s => StepName::VerifyData,
            Cmd::Export => StepName::Export,
        };
        let all = [
            Fault::Error,
            Fault::ExitOne,
            Fault::UsageExitZero,
            Fault::Hang,
            Fault::PartialImport,
        ];
        let fault = st
            .faults
            .take(step, if cmd == Cmd::Import { &all } else { &all[..4] });
        (toml, fs::image_version(&image).unwrap_or((1, 33, 3)), sa, fault)
    };
    match fault {
        Some(Fault::Error) => {
            return Err(ClusterError::Api(
                "error dialing backend: EOF (simulated fault)".into(),
            ));
        }
        Some(Fault::UsageExitZero) => {
            for l in sub_usage(if cmd == Cmd::Export {
                "export-db"
            } else {
                "import-db"
            })
            .lines()
            {
                out.err(l.to_string()).await;
            }
            return Ok(0);
        }
        _ => {}
    }
    let version_text = format!("{}.{}.{}", version.0, version.1, version.2);
    out.out(format!(
        "LINSTOR, Module linstor-database, version {version_text} (4e3f1c0a5b7d9e2f6a8c1b3d5e7f9a0b2c4d6e8f)"
    ))
    .await;
    let url = match &toml {
        None => DEFAULT_H2_URL.to_string(), // no config: silently the built-in H2 default
        Some(text) => {
            out.out(log(&format!("Loading configuration file \"{toml_path}\"")))
                .await;
            match LinstorConfig::parse(text) {
                Ok(c) => c.effective_url().to_string(),
                Err(e) => {
                    out.err(format!(
                        "Error: failed to parse configuration file {toml_path}: {e}"
                    ))
                    .await;
                    return Ok(2);
                }
            }
        }
    };
    let backend = Backend::classify(&url);
    if backend == Backend::Unknown || (backend == Backend::Etcd && version >= (1, 34, 0)) {
        out.err(format!("Error: unsupported database connection URL \"{url}\""))
            .await;
        return Ok(2);
    }
    out.out(log(&match backend {
        Backend::Etcd => format!("etcd connection URL is \"{url}\""),
        Backend::K8s => format!("Kubernetes-CRD connection URL is \"{url}\""),
        _ => format!("SQL database connection URL is \"{url}\""),
    }))
    .await;
    if fault == Some(Fault::ExitOne) {
        return exception(
            out,
            "com.linbit.linstor.dbdrivers.DatabaseException",
            "Failed to initialize the database connection (simulated fault)",
            "com.linbit.linstor.core.LinstorDatabaseTool.initDb(LinstorDatabaseTool.java:141)",
        )
        .await;
    }
    if fault == Some(Fault::Hang) {
        out.out(log("Waiting for the database to answer...")).await;
        return std::future::pending().await;
    }
    match cmd {
        Cmd::Export => export(sim, ns, pod, container, &file, &url, version_text, &sa, out).await,
        Cmd::Import => {
            super::tool_import::import(sim, ns, pod, container, &file, &url, version, &sa, fault, out).await
        }
    }
}

/// The source database as an export document, or the exception the tool dies with.
fn source(
    sim: &SimCluster,
    ns: &str,
    url: &str,
    version: &str,
    sa: &str,
) -> Result<ExportDocument, (String, String)> {
    let st = sim.lock();
    match Backend::classify(url) {
        Backend::Etcd => match st.etcd_for(url, ns) {
            Some(e) if st.etcd_running(e) => {
                let mut doc = e.data.clone();
                doc.linstor_version = version.into();
                doc.export_timestamp_ms = chrono::Utc::now().timestamp_millis();
                Ok(doc)
            }
            _ => Err((
                "io.etcd.jetcd.common.exception.EtcdException".into(),
                format!("UNAVAILABLE: io exception: connection to {url} refused"),
            )),
        },
        Backend::K8s => {
            st.access
                .service_account_may(ns, sa, schema::K8S_GROUP, "*", &["get", "list"])
                .map_err(|e| {
                    (
                        "io.fabric8.kubernetes.client.KubernetesClientException".to_string(),
                        format!("Forbidden: {e}"),
                    )
                })?;
            Ok(st.k8s.to_export(version))
        }
        Backend::H2 => {
            let mut doc = super::state::K8sBackend::default().to_export(version);
            doc.exported_from = "sql/h2".into();
            doc.k8s_version = None;
            doc.sql_version = Some(48);
            Ok(doc)
        }
        _ => Err((
            "java.sql.SQLNonTransientConnectionException".into(),
            format!("Could not connect to {url}: Connection refused"),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
async fn export(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    file: &str,
    url: &str,
    version: String,
    sa: &str,
    out: &Out,
) -> ClusterResult<i32> {
    let at = "com.linbit.linstor.core.LinstorDatabaseTool.exportDb(LinstorDatabaseTool.java:174)";
    let doc = match source(sim, ns, url, &version, sa) {
        Ok(d) => d,
        Err((class, msg)) => return exception(out, &class, &msg, at).await,
    };
    let path = {
        let st = sim.lock();
        let Some(p) = st.pods.get(&key(ns, pod)) else {
            return Err(ClusterError::Api(format!("pod {pod} is gone")));
        };
        fs::check_writable(p, container, file)
    };
    let path = match path {
        Ok(p) => p,
        Err(e) => {
            return exception(
                out,
                "java.nio.file.FileSystemException",
                &format!("{file}: {e}"),
                at,
            )
            .await;
        }
    };
    out.out(log(&format!("Exporting database to \"{file}\""))).await;
    let per_table = sim.timing().export / doc.tables.len().max(1) as u32;
    for t in &doc.tables {
        out.out(log(&format!(
            "Exporting table {} ({} rows)",
            t.name,
            t.data.len()
        )))
        .await;
        tokio::time::sleep(per_table).await;
    }
    let bytes =
        serde_json::to_vec(&doc).map_err(|e| ClusterError::Api(format!("serializing the export: {e}")))?;
    {
        let mut st = sim.lock();
        let Some(p) = st.pods.get_mut(&key(ns, pod)) else {
            return Err(ClusterError::Api(format!("pod {pod} is gone")));
        };
        p.files.insert(path, Bytes::from(bytes));
        *st.effects.exports.entry(doc.exported_from.clone()).or_insert(0) += 1;
        st.touch();
    }
    out.out(log(&format!(
        "Export finished: {} tables, {} rows",
        doc.tables.len(),
        doc.tables.iter().map(|t| t.data.len()).sum::<usize>()
    )))
    .await;
    Ok(0)
}
