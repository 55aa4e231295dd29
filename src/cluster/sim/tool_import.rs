//! `linstor-database import-db`: refuses newer exports, creates the CRDs, deletes everything in
//! the target, then creates one object per row in batches; not transactional, so a failure leaves
//! the rows imported so far (REFERENCE.md §3).

use std::time::Duration;

use super::SimCluster;
use super::faults::Fault;
use super::fs;
use super::shell::Out;
use super::state::key;
use super::tool::{exception, log};
use crate::cluster::{ClusterError, ClusterResult};
use crate::linstor::export::ExportDocument;
use crate::linstor::schema;
use crate::linstor::toml::Backend;

/// Rows written per API batch (one lock, one pause).
const BATCH: usize = 25;

const AT: &str = "com.linbit.linstor.core.LinstorDatabaseTool.importDb(LinstorDatabaseTool.java:213)";

fn version_of(v: &str) -> Option<(u32, u32, u32)> {
    fs::image_version(&format!("x:{v}"))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn import(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    file: &str,
    url: &str,
    version: (u32, u32, u32),
    sa: &str,
    fault: Option<Fault>,
    out: &Out,
) -> ClusterResult<i32> {
    let backend = Backend::classify(url);
    match backend {
        Backend::K8s | Backend::H2 => {}
        Backend::Etcd => {
            return exception(
                out,
                "com.linbit.linstor.ImplementationError",
                "Importing into etcd is not supported",
                AT,
            )
            .await;
        }
        _ => {
            let msg = format!("Could not connect to {url}: Connection refused");
            return exception(out, "java.sql.SQLNonTransientConnectionException", &msg, AT).await;
        }
    }
    let bytes = {
        let st = sim.lock();
        let p = st
            .pods
            .get(&key(ns, pod))
            .ok_or_else(|| ClusterError::Api(format!("pod {pod} is gone")))?;
        fs::read(&st, ns, p, container, file)
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(_) => return exception(out, "java.nio.file.NoSuchFileException", file, AT).await,
    };
    let doc: ExportDocument = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            let msg = format!("Unexpected content in {file}: {e}");
            return exception(out, "com.fasterxml.jackson.core.JsonParseException", &msg, AT).await;
        }
    };
    if version_of(&doc.linstor_version).is_none_or(|v| v > version) {
        let msg = format!(
            "Cannot import an export of LINSTOR {} into LINSTOR {}.{}.{}",
            doc.linstor_version, version.0, version.1, version.2
        );
        return exception(out, "com.linbit.linstor.dbdrivers.DatabaseException", &msg, AT).await;
    }
    if let Some(t) = doc.tables.iter().find(|t| schema::table(&t.name).is_none()) {
        let msg = format!("Unknown table {} in data version {}", t.name, doc.data_version);
        return exception(out, "com.linbit.linstor.dbdrivers.DatabaseException", &msg, AT).await;
    }
    out.out(log(&format!(
        "Importing export of LINSTOR {} from {} ({})",
        doc.linstor_version, doc.exported_from, doc.data_version
    )))
    .await;
    let total: usize = doc.tables.iter().map(|t| t.data.len()).sum();
    if backend == Backend::H2 {
        // the trap: without linstor.toml the rows go into the pod's own throwaway H2 file
        out.out(log(&format!("Imported {total} rows"))).await;
        out.out(log("Import finished")).await;
        return Ok(0);
    }
    // the real tool creates/migrates the CRDs, then deletes every object, then creates rows
    let denied = {
        let st = sim.lock();
        st.access
            .service_account_may(
                ns,
                sa,
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                &["get", "create", "update"],
            )
            .and_then(|()| {
                st.access
                    .service_account_may(ns, sa, schema::K8S_GROUP, "*", &["list", "deletecollection"])
            })
    };
    if let Err(e) = denied {
        let msg = format!(
            "Failure executing: DELETE at: https://10.96.0.1:443/apis/{}/. Message: Forbidden! {e}",
            schema::K8S_GROUP
        );
        return exception(
            out,
            "io.fabric8.kubernetes.client.KubernetesClientException",
            &msg,
            AT,
        )
        .await;
    }
    out.out(log("Deleting all existing data in the target database"))
        .await;
    {
        let mut st = sim.lock();
        st.k8s.truncate();
        st.effects.imports += 1;
        st.touch();
    }
    let may_create = sim
        .lock()
        .access
        .service_account_may(ns, sa, schema::K8S_GROUP, "*", &["create"]);
    if let Err(e) = may_create {
        let msg = format!("Failure executing: POST. Message: Forbidden! {e}");
        return exception(
            out,
            "io.fabric8.kubernetes.client.KubernetesClientException",
            &msg,
            AT,
        )
        .await;
    }
    if fault == Some(Fault::Hang) {
        return std::future::pending().await;
    }
    let per_row = sim.timing().import_per_row;
    let mut done = 0usize;
    for t in &doc.tables {
        out.out(log(&format!(
            "Importing table {} ({} rows)",
            t.name,
            t.data.len()
        )))
        .await;
        for batch in t.data.chunks(BATCH) {
            if fault == Some(Fault::PartialImport) && done >= total / 2 {
                let msg = format!(
                    "Failure executing: POST at: https://10.96.0.1:443/apis/{}/{}/{}. Message: etcdserver: request timed out (simulated fault)",
                    schema::K8S_GROUP,
                    schema::DATA_VERSION,
                    schema::table(&t.name).map(|s| s.plural()).unwrap_or_default()
                );
                return exception(
                    out,
                    "io.fabric8.kubernetes.client.KubernetesClientException",
                    &msg,
                    AT,
                )
                .await;
            }
            {
                let mut st = sim.lock();
                for row in batch {
                    st.k8s.insert(&t.name, row.clone());
                }
                st.touch();
            }
            done += batch.len();
            let pause = per_row.saturating_mul(batch.len() as u32);
            if pause > Duration::ZERO {
                tokio::time::sleep(pause).await;
            }
        }
    }
    out.out(log(&format!(
        "Imported {done} rows into {} tables",
        doc.tables.len()
    )))
    .await;
    out.out(log("Import finished")).await;
    Ok(0)
}
