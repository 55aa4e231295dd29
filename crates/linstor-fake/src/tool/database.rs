//! What one run of `linstor-database` does with its database once it is configured: an export
//! reads etcd (rows by key, as etcd returns them) or the `k8s` backend at the release's data
//! version and writes one line of JSON in the release's shape; an import reads and checks the file
//! before it connects (an export of a newer LINSTOR is refused), then runs
//! [`crate::k8s::import`]. Failures are the stack traces of [`super::trace`]; the `k8s` client the
//! run starts is what keeps 1.25.1's process alive after its last line.

use async_trait::async_trait;
use linstor_model::export::{ExportDocument, Row, without_nulls};
use linstor_model::naming;

use super::trace::{self, Failure};
use super::{Fault, Host, Wait, log, mac_warning};
use crate::Release;
use crate::config::Database;
use crate::k8s::{self, ApiError, K8sApi};
use crate::schema::Table;

/// Rows sorted by their primary-key string, as etcd returns them (by key).
fn etcd_order(table: &Table, mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_cached_key(|r| naming::key_text(table, r).unwrap_or_default());
    rows
}

/// The tables of `doc` that `release` has, with their rows.
fn tables_of(release: Release, doc: &ExportDocument) -> Vec<(&'static Table, Vec<Row>)> {
    doc.tables
        .iter()
        .filter_map(|t| Some((release.table(&t.name)?, t.data.clone())))
        .collect()
}

/// Paces an import row by row through the host.
struct RowPace<'a> {
    host: &'a dyn Host,
    slow: bool,
}

#[async_trait]
impl k8s::Pace for RowPace<'_> {
    async fn migrations(&self) {
        self.host.wait(Wait::Migrations).await;
    }
    async fn row(&self, done: usize) {
        let slow = self.slow && done > 1;
        self.host.wait(if slow { Wait::SlowRow } else { Wait::Row }).await;
    }
}

/// `major.minor.patch` of a version string.
fn version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()?
        .split('.');
    let mut n = || it.next().and_then(|p| p.parse::<u32>().ok());
    Some((n()?, n().unwrap_or(0), n().unwrap_or(0)))
}

/// One run's database work.
pub(super) struct Run<'a> {
    pub host: &'a dyn Host,
    pub db: &'a Database,
    pub fault: Option<Fault>,
    pub release: Release,
    /// The `k8s` client was made (its threads keep 1.25.1's process alive).
    pub client_started: bool,
}

impl<'a> Run<'a> {
    /// The API server's client, or the failure of a client that finds none.
    fn k8s(&mut self) -> Result<&'a dyn K8sApi, Failure> {
        self.client_started = true;
        self.host.k8s().ok_or(Failure::NoApiServer)
    }

    /// A refused call as the tool reports it.
    fn api_failure(api: &dyn K8sApi, error: ApiError) -> Box<trace::Api> {
        Box::new(trace::Api {
            server: api.server(),
            config_user: api.config_user(),
            error,
        })
    }

    /// The 500 an injected fault answers with.
    fn injected(&self) -> ApiError {
        ApiError {
            method: "POST",
            path: format!("/apis/{}/{}", k8s::GROUP, self.release.data_version()),
            code: 500,
            message: "etcdserver: request timed out (injected fault)".into(),
            forbidden: None,
        }
    }

    /// The document an export writes: the release's exported tables in order, nulls left out.
    fn document(&self, exported_from: &str, tables: Vec<(&'static Table, Vec<Row>)>) -> ExportDocument {
        let mut doc = self
            .release
            .empty_export(exported_from, chrono::Utc::now().timestamp_millis());
        doc.linstor_version = self.host.version();
        for (t, rows) in tables {
            if let Some(out) = doc.tables.iter_mut().find(|x| x.name == t.name) {
                out.data = rows.into_iter().map(without_nulls).collect();
            }
        }
        doc
    }

    pub async fn export(&mut self, file: &str) -> Result<(), Failure> {
        let (host, fault) = (self.host, self.fault);
        let doc = match self.db {
            Database::Etcd(url) => {
                mac_warning(host, self.db).await;
                let data = match fault {
                    Some(Fault::Exit1) => None,
                    _ => host.etcd(url).await,
                };
                let Some(data) = data else {
                    if fault != Some(Fault::Exit1) {
                        host.wait(Wait::EtcdGiveUp).await;
                    }
                    return Err(Failure::EtcdUnreachable);
                };
                host.wait(Wait::Export).await;
                let tables = tables_of(self.release, &data)
                    .into_iter()
                    .map(|(t, rows)| (t, etcd_order(t, rows)))
                    .collect();
                self.document("etcd", tables)
            }
            Database::K8s => {
                mac_warning(host, self.db).await;
                let injected = self.injected();
                let release = self.release;
                let api = self.k8s()?;
                host.wait(Wait::Export).await;
                if fault == Some(Fault::Exit1) {
                    return Err(Failure::Table(Self::api_failure(api, injected)));
                }
                let tables = k8s::read_tables(api, release)
                    .await
                    .map_err(|e| Failure::Table(Self::api_failure(api, e)))?;
                self.document("k8s", tables)
            }
            Database::H2(_) | Database::Sql(_) => return Err(Failure::H2NoSchema),
        };
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let bytes = match fault {
            Some(Fault::Partial | Fault::Corrupt) => bytes[..bytes.len() / 2].to_vec(),
            _ => bytes,
        };
        if let Err(e) = host.write(file, bytes).await {
            return Err(Failure::FileNotFound(format!("{} ({e})", host.absolute(file))));
        }
        if fault == Some(Fault::Partial) {
            return Err(Failure::EtcdUnreachable);
        }
        log(host, "Export finished").await;
        Ok(())
    }

    pub async fn import(&mut self, file: &str) -> Result<(), Failure> {
        let (host, fault, release) = (self.host, self.fault, self.release);
        let shown = host.absolute(file);
        if matches!(self.db, Database::H2(_) | Database::Sql(_)) {
            return Err(Failure::H2NoSchema);
        }
        let bytes = host
            .read(file)
            .await
            .map_err(|_| Failure::FileNotFound(shown.clone()))?;
        let doc: ExportDocument = serde_json::from_slice(&bytes).map_err(|e| Failure::JsonEof {
            file: shown.clone(),
            // where a JSON text ends early: the column after its last byte
            column: if e.is_eof() { bytes.len() + 1 } else { e.column() },
        })?;
        let tool = host.version();
        if version(&doc.linstor_version).is_none_or(|v| version(&tool).is_some_and(|t| v > t)) {
            return Err(Failure::NewerExport {
                version: tool,
                export_version: doc.linstor_version.clone(),
            });
        }
        mac_warning(host, self.db).await;
        let Database::K8s = self.db else {
            // etcd imports are not modelled (the service never imports into etcd)
            return Err(Failure::EtcdUnreachable);
        };
        let injected = self.injected();
        let api = self.k8s()?;
        let mut tables = tables_of(release, &doc);
        if fault == Some(Fault::Partial) {
            let mut left = tables.iter().map(|(_, r)| r.len()).sum::<usize>() / 2;
            for (_, rows) in &mut tables {
                let keep = rows.len().min(left);
                rows.truncate(keep);
                left -= keep;
            }
        }
        if fault == Some(Fault::Exit1) {
            return Err(Failure::Table(Self::api_failure(api, injected)));
        }
        let pace = RowPace {
            host,
            slow: fault == Some(Fault::Slow),
        };
        match k8s::import(api, release, &tables, &pace).await {
            Err(e) if e.path.contains("customresourcedefinitions") => {
                return Err(Failure::CrdApply(Self::api_failure(api, e)));
            }
            Err(e) => return Err(Failure::Table(Self::api_failure(api, e))),
            Ok(_) => {}
        }
        if fault == Some(Fault::Partial) {
            return Err(Failure::Table(Self::api_failure(api, injected)));
        }
        log(host, "Import finished").await;
        Ok(())
    }
}
