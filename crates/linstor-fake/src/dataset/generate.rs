//! Realistic LINSTOR databases in a release's export format, generated deterministically by the
//! rules the real controller imposes (`dataset-rules.txt` of the 1.33.3 recordings): satellites
//! with storage pools, resource groups, CSI volumes (`pvc-<uuid>`) with two replicas and a
//! diskless tie-breaker, their layer data, many properties and LINSTOR's default security
//! objects. Names are stored upper case with the display name beside them. The release decides
//! the tables and columns (a column it does not have is left out), the header, and the property
//! instance names.

use std::collections::BTreeMap;

use crate::Release;
use crate::release::PropsNaming;
use base64::Engine as _;
use linstor_model::export::{ExportDocument, ExportTable, Row, without_nulls};
use serde_json::{Value, json};

use super::security as dataset_sec;

/// The satellites of the Piraeus-managed cluster (the simulated cluster's Kubernetes nodes).
pub const PIRAEUS_NODES: [&str; 4] = ["k8s-worker-1", "k8s-worker-2", "k8s-worker-3", "k8s-worker-4"];
const PLAIN_NODES: [&str; 3] = ["storage-a", "storage-b", "storage-c"];

/// Deterministic numbers (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn uuid(&mut self) -> String {
        let bytes = (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }
    pub fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n)
            .map(|_| A[(self.next() % A.len() as u64) as usize] as char)
            .collect()
    }
}

/// Collects rows table by table.
pub struct Builder {
    tables: BTreeMap<String, Vec<Row>>,
    pub rng: Rng,
    pub release: Release,
}

impl Builder {
    fn new(seed: u64, release: Release) -> Self {
        Self {
            tables: BTreeMap::new(),
            rng: Rng::new(seed),
            release,
        }
    }

    /// The release's property instance names.
    pub fn props(&self) -> PropsNaming {
        self.release.facts().props
    }

    /// Adds a row given as `(COLUMN, value)`; columns left out are null, columns the release's
    /// table does not have are dropped, and so is a row of a table it does not have.
    pub fn add(&mut self, table: &str, values: &[(&str, Value)]) {
        let Some(t) = self.release.table(table) else {
            return;
        };
        let given: BTreeMap<&str, &Value> = values.iter().map(|(k, v)| (*k, v)).collect();
        let row: Row = t
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.to_ascii_lowercase(),
                    given.get(c.name.as_str()).map_or(Value::Null, |v| (*v).clone()),
                )
            })
            .collect();
        self.tables.entry(table.to_string()).or_default().push(row);
    }

    /// Adds a row as it is (lower-case column names).
    pub fn add_row(&mut self, table: &str, row: Row) {
        self.tables.entry(table.to_string()).or_default().push(row);
    }

    /// One property of a props container (`/NODES/K8S-WORKER-1`, ...; see [`Self::props`]).
    pub fn prop(&mut self, instance: &str, key: &str, value: &str) {
        self.add(
            "PROPS_CONTAINERS",
            &[
                ("PROPS_INSTANCE", json!(instance)),
                ("PROP_KEY", json!(key)),
                ("PROP_VALUE", json!(value)),
            ],
        );
    }

    /// The document as the release exports it: its header versions, its exported tables in its
    /// order (the four it never writes dropped), null columns left out.
    fn finish(self, linstor_version: &str, timestamp_ms: i64) -> ExportDocument {
        let mut tables = self.tables;
        let mut doc = self.release.empty_export("etcd", timestamp_ms);
        doc.linstor_version = linstor_version.into();
        doc.tables = self
            .release
            .exported_tables()
            .iter()
            .map(|t| ExportTable {
                data: tables
                    .remove(&t.name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(without_nulls)
                    .collect(),
                ..ExportTable::from_schema(t)
            })
            .collect();
        doc
    }
}

pub fn b64_json(v: &Value) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

pub const GIB: i64 = 1024 * 1024;
pub const CREATED_MS: i64 = 1_715_677_951_000;

/// What to generate.
pub struct Spec<'a> {
    pub seed: u64,
    pub nodes: &'a [&'a str],
    pub resources: usize,
    /// The LINSTOR version in the header; the release that plays it decides the shape.
    pub linstor_version: &'a str,
    pub subnet: &'a str,
}

/// The etcd data of a Piraeus-managed controller of `release` (4 satellites, 18 CSI volumes).
pub fn piraeus(release: Release) -> ExportDocument {
    generate(&Spec {
        seed: 0x00c0_ffee,
        nodes: &PIRAEUS_NODES,
        resources: 18,
        linstor_version: release.version(),
        subnet: "192.168.122",
    })
}

/// The LINSTOR version of the plain controller Deployment: one without recordings, played by the
/// nearest recorded release (1.33.3).
pub const PLAIN_VERSION: &str = "1.32.3";

/// The etcd data of a plain controller Deployment (3 satellites, 8 volumes, LINSTOR 1.32.3).
pub fn plain() -> ExportDocument {
    generate(&Spec {
        seed: 0x0051_0a6e,
        nodes: &PLAIN_NODES,
        resources: 8,
        linstor_version: PLAIN_VERSION,
        subnet: "10.20.0",
    })
}

/// The database `spec` describes.
pub(super) fn generate(spec: &Spec<'_>) -> ExportDocument {
    let release = Release::modelling(spec.linstor_version);
    let mut b = Builder::new(spec.seed, release);
    let names = b.props();
    // DRBD ports are 7000 + the resource's index: the range grows past 7999 with the resources
    let tcp_ports = format!("7000-{}", 7999.max(7000 + spec.resources.saturating_sub(1)));
    let mut protected: Vec<String> = Vec::new();
    dataset_sec::defaults(&mut b);
    let cluster_id = b.rng.uuid();
    for (k, v) in [
        ("Cluster/LocalID", cluster_id.as_str()),
        ("defaultDebugSslConnector", "DebugSslConnector"),
        ("defaultPlainConSvc", "PlainConnector"),
        ("defaultSslConSvc", "SslConnector"),
        ("netcom/PlainConnector/bindaddress", "::0"),
        ("netcom/PlainConnector/enabled", "true"),
        ("netcom/PlainConnector/port", "3376"),
        ("netcom/PlainConnector/type", "plain"),
        ("netcom/SslConnector/enabled", "false"),
        ("netcom/SslConnector/port", "3377"),
        ("netcom/SslConnector/type", "ssl"),
        ("DrbdOptions/Net/max-buffers", "10000"),
        ("TcpPortAutoRange", tcp_ports.as_str()),
        ("MinorNrAutoRange", "1000-49999"),
    ] {
        b.prop(names.ctrl, k, v);
    }
    let (on_satellites, quorum) = release.facts().quorum_policy;
    b.prop(
        if on_satellites { names.stlt } else { names.ctrl },
        quorum,
        "io-error",
    );

    for (pool, dsp) in [
        ("DFLTDISKLESSSTORPOOL", "DfltDisklessStorPool"),
        ("DFLTSTORPOOL", "DfltStorPool"),
        ("LVM-THIN", "lvm-thin"),
    ] {
        let uuid = b.rng.uuid();
        b.add(
            "STOR_POOL_DEFINITIONS",
            &[
                ("UUID", json!(uuid)),
                ("POOL_NAME", json!(pool)),
                ("POOL_DSP_NAME", json!(dsp)),
            ],
        );
        protected.push(format!("/storpooldefinitions/{pool}"));
    }
    let rg_dsp = format!("sc-{}", &b.rng.uuid()[..8]);
    let rg = rg_dsp.to_ascii_uppercase();
    for (name, dsp, replicas, pool) in [
        ("DFLTRSCGRP", "DfltRscGrp", 2, None),
        (rg.as_str(), rg_dsp.as_str(), 2, Some("[\"lvm-thin\"]")),
    ] {
        let uuid = b.rng.uuid();
        b.add(
            "RESOURCE_GROUPS",
            &[
                ("UUID", json!(uuid)),
                ("RESOURCE_GROUP_NAME", json!(name)),
                ("RESOURCE_GROUP_DSP_NAME", json!(dsp)),
                ("REPLICA_COUNT", json!(replicas)),
                ("POOL_NAME", json!(pool)),
                (
                    "LAYER_STACK",
                    if pool.is_some() {
                        json!("[\"DRBD\",\"STORAGE\"]")
                    } else {
                        Value::Null
                    },
                ),
                (
                    "DISKLESS_ON_REMAINING",
                    if pool.is_some() { json!(false) } else { Value::Null },
                ),
            ],
        );
        protected.push(format!("/resourcegroups/{name}"));
        if pool.is_some() {
            let vg_uuid = b.rng.uuid();
            b.add(
                "VOLUME_GROUPS",
                &[
                    ("UUID", json!(vg_uuid)),
                    ("RESOURCE_GROUP_NAME", json!(name)),
                    ("VLM_NR", json!(0)),
                    ("FLAGS", json!(0)),
                ],
            );
            let inst = format!("{}{name}", names.rsc_grps);
            b.prop(&inst, "DrbdOptions/Resource/quorum", "majority");
            b.prop(&inst, "DrbdOptions/Resource/on-no-quorum", "suspend-io");
            b.prop(&inst, "DrbdOptions/Net/allow-two-primaries", "yes");
            b.prop(&inst, "FileSystem/Type", "ext4");
        }
    }
    let kvs_uuid = b.rng.uuid();
    b.add(
        "KEY_VALUE_STORE",
        &[
            ("UUID", json!(kvs_uuid)),
            ("KVS_NAME", json!("LINSTOR-CSI")),
            ("KVS_DSP_NAME", json!("linstor-csi")),
        ],
    );
    b.prop(&format!("{}LINSTOR-CSI", names.kvs), "csi/version", "v1.6.4");
    protected.push("/keyvaluestores/LINSTOR-CSI".into());

    super::nodes::nodes(&mut b, spec, &mut protected);
    super::nodes::resources(&mut b, spec, &rg, &mut protected);

    for day in 0..5i64 {
        let cap =
            json!({"lvm-thin": {"capacity": 4 * 100 * GIB, "free": 4 * 100 * GIB - (day + 3) * 7 * GIB}});
        b.add(
            "SPACE_HISTORY",
            &[
                (
                    "ENTRY_DATE",
                    json!(CREATED_MS - CREATED_MS % 86_400_000 + day * 86_400_000),
                ),
                ("CAPACITY", b64_json(&cap)),
            ],
        );
    }
    // no TRACKING_DATE row: LINSTOR exports none (the table has no export driver; neither
    // recorded export-etcd.json has such a table)
    for path in &protected {
        dataset_sec::protect(&mut b, path);
    }
    b.finish(
        spec.linstor_version,
        CREATED_MS + 172_800_000 + (spec.seed as i64 % 1000),
    )
}
