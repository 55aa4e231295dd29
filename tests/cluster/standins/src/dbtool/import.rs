//! `import-db`: an export file into the configured database. Refuses exports of a newer LINSTOR;
//! on `k8s` installs the CRDs, deletes all existing objects, then creates one object per row,
//! not transactionally: a failure leaves partial data (REFERENCE.md §3).

use std::time::{Duration, Instant};

use linstor_migrator::linstor::export::ExportDocument;
use linstor_migrator::linstor::schema;

use super::config::Database;
use super::{Job, file_exception, k8s, unreachable};
use crate::fault::FaultKind;
use crate::javalog::JavaException;
use crate::pace;

/// How often a progress line is logged during a long import.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub(super) async fn run(job: &mut Job<'_>) -> Result<(), JavaException> {
    let bytes = std::fs::read(&job.file).map_err(|e| file_exception(job.file_shown, &e))?;
    let doc: ExportDocument = serde_json::from_slice(&bytes).map_err(|e| {
        JavaException::new(
            "com.fasterxml.jackson.core.JsonParseException",
            format!("{e} (in {})", job.file_shown),
            &["com.fasterxml.jackson.core.JsonParser._constructError(JsonParser.java:2477)"],
        )
    })?;
    job.log.info(&format!(
        "Importing database exported from {} by LINSTOR {} (data version {})",
        doc.exported_from, doc.linstor_version, doc.data_version
    ));
    check_version(&doc.linstor_version, &job.env.version)?;
    match job.database {
        Database::K8s => into_k8s(job, &doc).await,
        Database::H2 { .. } => {
            // the H2 fallback: "succeeds" into a database file nobody will ever read
            log_tables(job, &doc);
            job.log.info("Import finished");
            Ok(())
        }
        Database::Etcd { .. } => Err(JavaException::new(
            "com.linbit.linstor.dbdrivers.DatabaseException",
            "The stand-in does not import into etcd (its etcd data is read-only)",
            &["com.linbit.linstor.dbcp.etcd.DbEtcd.importData(DbEtcd.java:301)"],
        )),
        Database::Sql { .. } => Err(unreachable(job.database, "Connection refused")),
    }
}

fn log_tables(job: &mut Job<'_>, doc: &ExportDocument) {
    for t in &doc.tables {
        job.log
            .info(&format!("Importing table {} ({} entries)", t.name, t.data.len()));
    }
}

/// `major.minor.patch` of a version string (`1.33.3`, `v1.33.3-rc.1`).
pub(super) fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

fn check_version(export: &str, tool: &str) -> Result<(), JavaException> {
    match (parse_version(export), parse_version(tool)) {
        (Some(e), Some(t)) if e > t => Err(JavaException::new(
            "com.linbit.linstor.dbdrivers.DatabaseException",
            format!(
                "The database export was created by LINSTOR {export}, which is newer than this LINSTOR {tool}"
            ),
            &["com.linbit.linstor.core.DbExportImportHelper.importDb(DbExportImportHelper.java:208)"],
        )),
        (None, _) => Err(JavaException::new(
            "com.linbit.linstor.dbdrivers.DatabaseException",
            format!("Unknown LINSTOR version {export:?} in the database export"),
            &["com.linbit.linstor.core.DbExportImportHelper.importDb(DbExportImportHelper.java:201)"],
        )),
        _ => Ok(()),
    }
}

async fn into_k8s(job: &mut Job<'_>, doc: &ExportDocument) -> Result<(), JavaException> {
    let client = k8s::connect().await?;
    job.log.info("Installing LINSTOR CRDs");
    if k8s::install_crds(&client).await? > 0 {
        // a fresh backend: the real tool creates the CRDs and runs its CRD migrations
        pace::sleep(job.pace, |p| p.fresh_schema).await;
    }
    k8s::write_schema_version(&client).await?;
    job.log.info("Deleting all existing data from the database");
    k8s::delete_all(&client).await?;

    let total: usize = doc.tables.iter().map(|t| t.data.len()).sum();
    let limit = if job.fault == Some(FaultKind::Partial) {
        total / 2
    } else {
        total
    };
    let (mut done, started, mut last_progress) = (0usize, Instant::now(), Instant::now());
    for t in &doc.tables {
        let Some(table) = schema::table(&t.name) else {
            job.log.warn(&format!("Skipping unknown table {}", t.name));
            continue;
        };
        let take = t.data.len().min(limit - done);
        job.log
            .info(&format!("Importing table {} ({} entries)", t.name, t.data.len()));
        for chunk in t.data[..take].chunks(200) {
            if job.fault == Some(FaultKind::Slow) && done > 0 {
                tokio::time::sleep(crate::fault::SLOW_PAUSE).await;
            }
            k8s::create_rows(&client, table, chunk).await?;
            done += chunk.len();
            pace::rows(job.pace, |p| p.import_k8s_rows_per_s, done, started).await;
            if last_progress.elapsed() >= PROGRESS_EVERY {
                job.log.info(&format!("Imported {done} of {total} entries"));
                last_progress = Instant::now();
            }
        }
        if done == limit && limit < total {
            return Err(k8s::exception(
                "POST",
                &format!("/apis/internal.linstor.linbit.com/v1-31-1/{}", table.plural()),
                &kube::Error::Api(
                    kube::core::Status::failure(
                        "the server was unable to return a response in the time allotted",
                        "Timeout",
                    )
                    .with_code(504)
                    .boxed(),
                ),
            ));
        }
    }
    job.log.info(&format!(
        "Imported {done} entries in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    job.log.info("Import finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_exports_are_refused() {
        assert_eq!(parse_version("v1.33.3-rc.1"), Some((1, 33, 3)));
        assert_eq!(parse_version("1.34"), Some((1, 34, 0)));
        assert!(check_version("1.33.3", "1.33.3").is_ok());
        assert!(check_version("1.32.3", "1.33.3").is_ok());
        assert!(
            check_version("1.34.0", "1.33.3")
                .unwrap_err()
                .message
                .contains("newer")
        );
        assert!(check_version("garbage", "1.33.3").is_err());
    }
}
