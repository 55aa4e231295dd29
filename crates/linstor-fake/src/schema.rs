//! The tables of each release's database, as its recorded export describes them: names, columns,
//! SQL types, primary keys and order come from the `column_description`s of the release's
//! `dataset/export-etcd.json` (41 tables in 1.25.1, 39 in 1.33.3); the four tables LINSTOR keeps
//! but never exports (`SATELLITES_CAPACITY`, `SEC_ACCESS_TYPES`, `SPACE_HISTORY`,
//! `TRACKING_DATE`: CRDs without export rows) come from the fact sheet
//! `linstor-tables-v1-31-1.tsv`, and are the same in both releases (their CRDs' storage schemas
//! are equal in both recordings). The version-independent rules (CRD names, the naming rule) are
//! `linstor_model`'s.

use std::sync::OnceLock;

use linstor_model::export::{ExportDocument, ExportTable};
pub use linstor_model::schema::*;

use crate::Release;

/// The first CRD version of tables that came after the oldest one (`v1-15-0`): their CRDs have
/// only the versions from there on (recorded in `k8s/crds.yaml` of both releases).
pub const FIRST_CRD_VERSION: [(&str, &str); 2] = [("EBS_REMOTES", "v1-19-1"), ("SCHEDULES", "v1-18-2")];

/// The tables of a database that have a CRD but never an export row.
pub const NOT_EXPORTED: [&str; 4] = [
    "SATELLITES_CAPACITY",
    "SEC_ACCESS_TYPES",
    "SPACE_HISTORY",
    "TRACKING_DATE",
];

const TSV: &str = include_str!("linstor-tables-v1-31-1.tsv");

/// The tables of the fact sheet (LINSTOR 1.33's 43), in its (alphabetical) order.
pub fn fact_sheet() -> &'static [Table] {
    static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
    TABLES.get_or_init(|| parse(TSV))
}

fn parse(tsv: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("table\t") && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.len(),
            8,
            "schema fact sheet line has {} fields: {line}",
            f.len()
        );
        let column = Column {
            name: f[3].into(),
            sql_type: f[4].into(),
            sql_type_code: f[5].parse().expect("sql type code"),
            primary_key: f[6] == "yes",
            nullable: f[7] == "yes",
        };
        match out.last_mut() {
            Some(t) if t.name == f[0] => t.columns.push(column),
            _ => out.push(Table {
                name: f[0].into(),
                crd_name: f[1].into(),
                crd_kind: f[2].into(),
                columns: vec![column],
            }),
        }
    }
    out
}

/// What one release's database is made of.
struct Shape {
    /// The exported tables in export order, then the four that are never exported.
    tables: Vec<Table>,
    exported: usize,
    /// The recorded export's header (no rows).
    header: ExportDocument,
}

fn shape(release: Release) -> &'static Shape {
    static SHAPES: [OnceLock<Shape>; 2] = [OnceLock::new(), OnceLock::new()];
    SHAPES[release as usize].get_or_init(|| {
        let recorded = release.recorded_export();
        let mut tables: Vec<Table> = recorded.tables.iter().map(ExportTable::schema).collect();
        let exported = tables.len();
        tables.extend(
            NOT_EXPORTED
                .iter()
                .filter_map(|n| fact_sheet().iter().find(|t| t.name == *n).cloned()),
        );
        let header = ExportDocument {
            tables: Vec::new(),
            ..recorded
        };
        Shape {
            tables,
            exported,
            header,
        }
    })
}

impl Release {
    /// The recorded export from etcd (216 rows), as the real tool wrote it.
    pub fn recorded_export(self) -> ExportDocument {
        serde_json::from_str(self.facts().export_etcd).expect("the recorded export parses")
    }

    /// Every table with a CRD: the exported ones in export order, then the never exported ones.
    pub fn tables(self) -> &'static [Table] {
        &shape(self).tables
    }

    /// The tables `export-db` writes, in its (dependency) order: an import creates objects in
    /// this order and truncates in the reverse one.
    pub fn exported_tables(self) -> &'static [Table] {
        let s = shape(self);
        &s.tables[..s.exported]
    }

    /// The table called `name` (upper case).
    pub fn table(self, name: &str) -> Option<&'static Table> {
        self.tables().iter().find(|t| t.name == name)
    }

    /// An export as this release writes it (its header versions, every exported table), empty.
    pub fn empty_export(self, exported_from: &str, export_timestamp_ms: i64) -> ExportDocument {
        ExportDocument {
            exported_from: exported_from.into(),
            export_timestamp_ms,
            tables: self
                .exported_tables()
                .iter()
                .map(ExportTable::from_schema)
                .collect(),
            ..shape(self).header.clone()
        }
    }

    /// The versions the CRD of `table` has, oldest first (the last is the storage version).
    pub fn crd_versions(self, table: &str) -> &'static [&'static str] {
        let all = self.facts().crd_versions;
        let first = FIRST_CRD_VERSION
            .iter()
            .find(|(t, _)| *t == table)
            .and_then(|(_, v)| all.iter().position(|x| x == v))
            .unwrap_or(0);
        &all[first..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_has_its_recorded_tables() {
        for r in Release::ALL {
            assert_eq!(r.exported_tables().len(), r.recorded().export_tables, "{r}");
            // plus the four CRDs without export rows: every CRD but LinstorVersion and Rollback
            assert_eq!(r.tables().len() + 2, r.recorded().crds, "{r}");
            assert_eq!(r.exported_tables()[0].name, "EBS_REMOTES");
            let keyless: Vec<&str> = r
                .tables()
                .iter()
                .filter(|t| !t.is_keyed())
                .map(|t| t.name.as_str())
                .collect();
            assert_eq!(keyless, ["TRACKING_DATE"], "{r}");
            assert_eq!(r.table("VOLUMES").unwrap().primary_key().count(), 4);
        }
        assert!(Release::V1_25_1.table("LAYER_OPENFLEX_VOLUMES").is_some());
        assert!(Release::V1_33_3.table("LAYER_OPENFLEX_VOLUMES").is_none());
        let rc = |r: Release| {
            r.table("RESOURCE_CONNECTIONS")
                .unwrap()
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        assert!(rc(Release::V1_25_1).contains(&"TCP_PORT".to_string()));
        assert!(rc(Release::V1_33_3).contains(&"TCP_PORT_SRC".to_string()));
    }

    #[test]
    fn an_empty_export_has_the_recorded_header() {
        let d = Release::V1_25_1.empty_export("k8s", 1);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["sql_version"], "2023.07.26.09.00");
        assert_eq!(
            (v["etcd_version"].clone(), v["k8s_version"].clone()),
            (60.into(), 17.into())
        );
        assert_eq!(
            (d.data_version.as_str(), d.exported_from.as_str()),
            ("v1-19-1", "k8s")
        );
        assert_eq!(d.tables.len(), 41);
        let d = Release::V1_33_3.empty_export("etcd", 1);
        assert_eq!((d.data_version.as_str(), d.k8s_version), ("v1-31-1", Some(30)));
        assert!(d.tables.iter().all(|t| t.data.is_empty()));
    }

    #[test]
    fn the_fact_sheet_is_the_newest_release_and_follows_the_crd_naming_rule() {
        assert_eq!(fact_sheet().len(), 43);
        for t in fact_sheet() {
            assert_eq!(t.crd_kind, crd_kind(&t.name), "{}", t.name);
            assert_eq!(t.plural(), crd_plural(&t.name), "{}", t.name);
            assert_eq!(Some(t), Release::V1_33_3.table(&t.name), "{}", t.name);
        }
    }

    #[test]
    fn tables_that_came_later_have_fewer_crd_versions() {
        let r = Release::V1_25_1;
        assert_eq!(
            r.crd_versions("NODES"),
            ["v1-15-0", "v1-17-0", "v1-18-2", "v1-19-1"]
        );
        assert_eq!(r.crd_versions("EBS_REMOTES"), ["v1-19-1"]);
        assert_eq!(r.crd_versions("SCHEDULES"), ["v1-18-2", "v1-19-1"]);
        assert_eq!(Release::V1_33_3.crd_versions("EBS_REMOTES").len(), 4);
    }
}
