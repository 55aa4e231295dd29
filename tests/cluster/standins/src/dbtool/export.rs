//! `export-db`: the configured database into an export file. etcd gives the dataset file with a
//! fresh timestamp; `k8s` reads every object back; H2 (the missing-config fallback) is empty.

use linstor_migrator::linstor::export::{ExportDocument, ExportTable};
use linstor_migrator::linstor::schema;

use super::config::Database;
use super::{Job, file_exception, half, k8s, unreachable, write_file};
use crate::backend::{self, SCHEMA_VERSION};
use crate::fault::FaultKind;
use crate::javalog::JavaException;
use crate::pace;

pub(super) async fn run(job: &mut Job<'_>) -> Result<(), JavaException> {
    let started = std::time::Instant::now();
    let mut doc = match job.database {
        Database::Etcd { .. } => from_etcd(job)?,
        Database::K8s => from_k8s().await?,
        Database::H2 { .. } => empty("sql/h2"),
        Database::Sql { .. } => return Err(unreachable(job.database, "Connection refused")),
    };
    let rows = doc.tables.iter().map(|t| t.data.len()).sum();
    match job.database {
        Database::Etcd { .. } => pace::rows(job.pace, |p| p.export_etcd_rows_per_s, rows, started).await,
        Database::K8s => pace::rows(job.pace, |p| p.export_k8s_rows_per_s, rows, started).await,
        _ => {}
    }
    doc.linstor_version = job.env.version.clone();
    doc.export_timestamp_ms = chrono::Utc::now().timestamp_millis();
    if doc.exported_from == "sql/h2" {
        doc.sql_version = Some(1.into());
    }
    for t in &doc.tables {
        job.log
            .info(&format!("Exporting table {} ({} entries)", t.name, t.data.len()));
    }
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| JavaException::new("java.io.IOException", e.to_string(), &[]))?;
    match job.fault {
        Some(FaultKind::Partial) => {
            write_file(&job.file, job.file_shown, half(&bytes))?;
            Err(JavaException::new(
                "java.io.IOException",
                format!("No space left on device (writing {})", job.file_shown),
                &["java.io.FileOutputStream.writeBytes(Native Method)"],
            ))
        }
        Some(FaultKind::Corrupt) => {
            write_file(&job.file, job.file_shown, half(&bytes))?;
            job.log.info("Export finished");
            Ok(())
        }
        _ => {
            write_file(&job.file, job.file_shown, &bytes)?;
            job.log.info("Export finished");
            Ok(())
        }
    }
}

fn from_etcd(job: &Job<'_>) -> Result<ExportDocument, JavaException> {
    let Some(path) = job.env.etcd_data.as_deref() else {
        return Err(unreachable(
            job.database,
            "no etcd cluster (LINSTOR_STANDIN_ETCD_DATA is unset)",
        ));
    };
    let text = std::fs::read(path).map_err(|e| unreachable(job.database, &e.to_string()))?;
    let mut doc: ExportDocument = serde_json::from_slice(&text)
        .map_err(|e| file_exception(&path.display().to_string(), &std::io::Error::other(e)))?;
    doc.exported_from = "etcd".into();
    Ok(doc)
}

async fn from_k8s() -> Result<ExportDocument, JavaException> {
    let client = k8s::connect().await?;
    let content = backend::read_all(&client)
        .await
        .map_err(|e| k8s::exception("GET", "/apis/internal.linstor.linbit.com", &e))?;
    let mut doc = empty("k8s");
    doc.k8s_version = Some(content.schema_version.unwrap_or(SCHEMA_VERSION));
    for t in &mut doc.tables {
        t.data = content.tables.get(&t.name).cloned().unwrap_or_default();
    }
    Ok(doc)
}

fn empty(exported_from: &str) -> ExportDocument {
    ExportDocument {
        linstor_version: String::new(),
        export_timestamp_ms: 0,
        exported_from: exported_from.into(),
        data_version: schema::DATA_VERSION.into(),
        sql_version: None,
        k8s_version: None,
        etcd_version: None,
        tables: schema::tables().iter().map(ExportTable::from_schema).collect(),
    }
}
