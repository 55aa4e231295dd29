//! Realistic LINSTOR 1.33 databases in the real export format (REFERENCE.md §3), generated
//! deterministically: satellites with storage pools, resource groups, CSI volumes (`pvc-<uuid>`)
//! with two replicas and a diskless tie-breaker, their layer data, many properties and LINSTOR's
//! default security objects. Names are stored upper case with the display name beside them.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::dataset_sec;
use crate::linstor::export::{ExportDocument, ExportTable, Row};
use crate::linstor::schema;

/// The satellites of the Piraeus-managed cluster.
pub(crate) const CR_NODES: [&str; 4] = ["k8s-worker-1", "k8s-worker-2", "k8s-worker-3", "k8s-worker-4"];
const PLAIN_NODES: [&str; 3] = ["storage-a", "storage-b", "storage-c"];

/// Ten-plus characters of Kubernetes' name alphabet derived from `s` (pod-template-hash style).
pub(crate) fn short_hash(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Deterministic numbers (splitmix64).
pub(crate) struct Rng(u64);

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
pub(crate) struct Builder {
    tables: BTreeMap<String, Vec<Row>>,
    pub rng: Rng,
}

impl Builder {
    fn new(seed: u64) -> Self {
        Self {
            tables: BTreeMap::new(),
            rng: Rng::new(seed),
        }
    }

    /// Adds a row given as `(COLUMN, value)`; columns left out are null.
    pub fn add(&mut self, table: &str, values: &[(&str, Value)]) {
        let Some(t) = schema::table(table) else { return };
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

    /// One property of a props container (`/NODES/K8S-WORKER-1`, ...).
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

    fn finish(self, linstor_version: &str, timestamp_ms: i64) -> ExportDocument {
        let mut tables = self.tables;
        ExportDocument {
            linstor_version: linstor_version.into(),
            export_timestamp_ms: timestamp_ms,
            exported_from: "etcd".into(),
            data_version: schema::DATA_VERSION.into(),
            sql_version: None,
            k8s_version: None,
            etcd_version: Some(56),
            tables: schema::tables()
                .iter()
                .map(|t| ExportTable {
                    data: tables.remove(&t.name).unwrap_or_default(),
                    ..ExportTable::from_schema(t)
                })
                .collect(),
        }
    }
}

pub(crate) fn b64_json(v: &Value) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

pub(crate) const GIB: i64 = 1024 * 1024;
pub(crate) const CREATED_MS: i64 = 1_715_677_951_000;

/// What to generate.
pub(crate) struct Spec<'a> {
    pub seed: u64,
    pub nodes: &'a [&'a str],
    pub resources: usize,
    pub linstor_version: &'a str,
    pub subnet: &'a str,
}

/// The etcd data of the Piraeus-managed controller `piraeus-op-cs`.
pub(crate) fn cr_controller() -> ExportDocument {
    generate(&Spec {
        seed: 0x00c0_ffee,
        nodes: &CR_NODES,
        resources: 18,
        linstor_version: "1.33.3",
        subnet: "192.168.122",
    })
}

/// The etcd data of the plain controller in `storage` (smaller).
pub(crate) fn plain_controller() -> ExportDocument {
    generate(&Spec {
        seed: 0x0051_0a6e,
        nodes: &PLAIN_NODES,
        resources: 8,
        linstor_version: "1.32.3",
        subnet: "10.20.0",
    })
}

fn generate(spec: &Spec<'_>) -> ExportDocument {
    let mut b = Builder::new(spec.seed);
    let mut protected: Vec<String> = dataset_sec::SYSTEM_OBJECTS
        .iter()
        .map(|s| s.to_string())
        .collect();
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
        ("DrbdOptions/auto-quorum", "io-error"),
        ("DrbdOptions/Net/max-buffers", "10000"),
        ("TcpPortAutoRange", "7000-7999"),
        ("MinorNrAutoRange", "1000-49999"),
    ] {
        b.prop("/CTRLCFG", k, v);
    }

    for (pool, dsp) in [
        ("DFLTDISKLESSSTORPOOL", "DfltDisklessStorPool"),
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
            let inst = format!("/RESOURCEGROUPS/{name}");
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
    b.prop("/KEYVALUESTORES/LINSTOR-CSI", "csi/version", "v1.6.4");
    protected.push("/keyvaluestores/LINSTOR-CSI".into());

    super::dataset_rsc::nodes(&mut b, spec, &mut protected);
    super::dataset_rsc::resources(&mut b, spec, &rg, &mut protected);

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
    // no TRACKING_DATE row: LINSTOR 1.33 exports none (the table has no export driver; the
    // recorded export-etcd.json of fixtures/linstor-1.33.3 has no such table)
    for path in &protected {
        dataset_sec::protect(&mut b, path);
    }
    b.finish(
        spec.linstor_version,
        CREATED_MS + 172_800_000 + (spec.seed as i64 % 1000),
    )
}
