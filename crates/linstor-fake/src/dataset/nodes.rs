//! Satellites and CSI volumes of the generated LINSTOR database: nodes with their network
//! interfaces, storage pools and capacity; `pvc-<uuid>` resource definitions with two
//! replicas and a diskless tie-breaker, their volumes, DRBD and storage layer data and properties.

use serde_json::{Value, json};

use super::generate::{Builder, CREATED_MS, GIB, Spec, b64_json};

pub fn resources(b: &mut Builder, spec: &Spec<'_>, rg: &str, protected: &mut Vec<String>) {
    let n = spec.nodes.len();
    let mut layer_id = 0i64;
    for r in 0..spec.resources {
        let dsp = format!("pvc-{}", b.rng.uuid());
        let rsc = dsp.to_ascii_uppercase();
        let size = [1, 2, 5, 10, 20, 50][(b.rng.next() % 6) as usize] * GIB;
        let (rd_uuid, vd_uuid) = (b.rng.uuid(), b.rng.uuid());
        let port = 7000 + r as i64;
        b.add(
            "RESOURCE_DEFINITIONS",
            &[
                ("UUID", json!(rd_uuid)),
                ("RESOURCE_NAME", json!(rsc)),
                ("SNAPSHOT_NAME", json!("")),
                ("RESOURCE_DSP_NAME", json!(dsp)),
                ("SNAPSHOT_DSP_NAME", json!("")),
                ("RESOURCE_FLAGS", json!(0)),
                ("LAYER_STACK", json!("[\"DRBD\",\"STORAGE\"]")),
                ("RESOURCE_GROUP_NAME", json!(rg)),
            ],
        );
        let names = b.props();
        let rd = format!("{}{rsc}", names.rsc_dfns);
        let pvc_ns = ["default", "monitoring", "gitlab", "postgres"][r % 4];
        b.prop(
            &rd,
            "Aux/csi-provisioning-completed-by",
            "linstor-csi/v1.6.4-2c5e8f2",
        );
        b.prop(
            &rd,
            "Aux/csi-volume-annotations",
            &format!("{{\"name\":\"{dsp}\",\"namespace\":\"{pvc_ns}\"}}"),
        );
        b.prop(&rd, "DrbdOptions/Resource/quorum", "majority");
        b.prop(&rd, "DrbdOptions/Resource/on-no-quorum", "suspend-io");
        b.prop(&rd, "DrbdPrimarySetOn", &spec.nodes[r % n].to_ascii_uppercase());
        b.prop(&rd, "FileSystem/Type", "ext4");
        b.add(
            "VOLUME_DEFINITIONS",
            &[
                ("UUID", json!(vd_uuid)),
                ("RESOURCE_NAME", json!(rsc)),
                ("SNAPSHOT_NAME", json!("")),
                ("VLM_NR", json!(0)),
                ("VLM_SIZE", json!(size)),
                ("VLM_FLAGS", json!(0)),
            ],
        );
        let gi = format!("{:016X}", b.rng.next());
        b.prop(&format!("{}{rsc}/0", names.vlm_dfns), "DrbdCurrentGi", &gi);
        let secret = b.rng.alnum(20);
        b.add(
            "LAYER_DRBD_RESOURCE_DEFINITIONS",
            &[
                ("RESOURCE_NAME", json!(rsc)),
                ("RESOURCE_NAME_SUFFIX", json!("")),
                ("SNAPSHOT_NAME", json!("")),
                ("PEER_SLOTS", json!(7)),
                ("AL_STRIPES", json!(1)),
                ("AL_STRIPE_SIZE", json!(32)),
                ("TCP_PORT", json!(port)),
                ("TRANSPORT_TYPE", json!("IP")),
                ("SECRET", json!(secret)),
            ],
        );
        b.add(
            "LAYER_DRBD_VOLUME_DEFINITIONS",
            &[
                ("RESOURCE_NAME", json!(rsc)),
                ("RESOURCE_NAME_SUFFIX", json!("")),
                ("SNAPSHOT_NAME", json!("")),
                ("VLM_NR", json!(0)),
                ("VLM_MINOR_NR", json!(1000 + r as i64)),
            ],
        );
        protected.push(format!("/resourcedefinitions/{rsc}"));
        // two replicas and, with three or more nodes, a diskless tie-breaker
        let placement: Vec<(usize, bool)> = [(r % n, false), ((r + 1) % n, false)]
            .into_iter()
            .chain((n >= 3).then_some(((r + 2) % n, true)))
            .collect();
        for (node_id, (ni, diskless)) in placement.into_iter().enumerate() {
            let node = spec.nodes[ni].to_ascii_uppercase();
            // every resource is a protected object (dataset-rules.txt rule 2)
            protected.push(format!("/resources/{node}/{rsc}"));
            let (r_uuid, v_uuid) = (b.rng.uuid(), b.rng.uuid());
            b.add(
                "RESOURCES",
                &[
                    ("UUID", json!(r_uuid)),
                    ("NODE_NAME", json!(node)),
                    ("RESOURCE_NAME", json!(rsc)),
                    ("SNAPSHOT_NAME", json!("")),
                    ("RESOURCE_FLAGS", json!(if diskless { 388 } else { 0 })),
                    ("CREATE_TIMESTAMP", json!(CREATED_MS + r as i64 * 3_600_000)),
                ],
            );
            let (pool, pool_dsp, kind) = if diskless {
                ("DFLTDISKLESSSTORPOOL", "DfltDisklessStorPool", "DISKLESS")
            } else {
                ("LVM-THIN", "lvm-thin", "LVM_THIN")
            };
            b.prop(&format!("{}{node}/{rsc}", names.rscs), "StorPoolName", pool_dsp);
            let vlm = format!("{}{node}/{rsc}/0", names.vlms);
            b.prop(
                &vlm,
                "Satellite/Device/Symlinks/0",
                &format!("/dev/drbd/by-res/{dsp}/0"),
            );
            b.prop(
                &vlm,
                "Satellite/Device/Symlinks/1",
                &format!("/dev/drbd/by-disk/linstor_vg/{dsp}_00000"),
            );
            b.add(
                "VOLUMES",
                &[
                    ("UUID", json!(v_uuid)),
                    ("NODE_NAME", json!(node)),
                    ("RESOURCE_NAME", json!(rsc)),
                    ("SNAPSHOT_NAME", json!("")),
                    ("VLM_NR", json!(0)),
                    ("VLM_FLAGS", json!(0)),
                ],
            );
            let drbd_id = layer_id;
            layer_id += 2;
            for (id, kind_name, parent) in [
                (drbd_id, "DRBD", Value::Null),
                (drbd_id + 1, "STORAGE", json!(drbd_id)),
            ] {
                b.add(
                    "LAYER_RESOURCE_IDS",
                    &[
                        ("LAYER_RESOURCE_ID", json!(id)),
                        ("NODE_NAME", json!(node)),
                        ("RESOURCE_NAME", json!(rsc)),
                        ("SNAPSHOT_NAME", json!("")),
                        ("LAYER_RESOURCE_KIND", json!(kind_name)),
                        ("LAYER_RESOURCE_PARENT_ID", parent),
                        ("LAYER_RESOURCE_SUFFIX", json!("")),
                        ("LAYER_RESOURCE_SUSPENDED", json!(false)),
                    ],
                );
            }
            b.add(
                "LAYER_DRBD_RESOURCES",
                &[
                    ("LAYER_RESOURCE_ID", json!(drbd_id)),
                    ("PEER_SLOTS", json!(7)),
                    ("AL_STRIPES", json!(1)),
                    ("AL_STRIPE_SIZE", json!(32)),
                    ("FLAGS", json!(if diskless { 4 } else { 0 })),
                    ("NODE_ID", json!(node_id)),
                    ("TCP_PORT_LIST", json!(format!("[{port}]"))),
                ],
            );
            b.add(
                "LAYER_DRBD_VOLUMES",
                &[("LAYER_RESOURCE_ID", json!(drbd_id)), ("VLM_NR", json!(0))],
            );
            b.add(
                "LAYER_STORAGE_VOLUMES",
                &[
                    ("LAYER_RESOURCE_ID", json!(drbd_id + 1)),
                    ("VLM_NR", json!(0)),
                    ("PROVIDER_KIND", json!(kind)),
                    ("NODE_NAME", json!(node)),
                    ("STOR_POOL_NAME", json!(pool)),
                ],
            );
        }
    }
}

pub fn nodes(b: &mut Builder, spec: &Spec<'_>, protected: &mut Vec<String>) {
    for (i, node) in spec.nodes.iter().enumerate() {
        let name = node.to_ascii_uppercase();
        let (uuid, if_uuid) = (b.rng.uuid(), b.rng.uuid());
        b.add(
            "NODES",
            &[
                ("UUID", json!(uuid)),
                ("NODE_NAME", json!(name)),
                ("NODE_DSP_NAME", json!(node)),
                ("NODE_FLAGS", json!(0)),
                ("NODE_TYPE", json!(2)),
            ],
        );
        b.add(
            "NODE_NET_INTERFACES",
            &[
                ("UUID", json!(if_uuid)),
                ("NODE_NAME", json!(name)),
                ("NODE_NET_NAME", json!("DEFAULT")),
                ("NODE_NET_DSP_NAME", json!("default")),
                ("INET_ADDRESS", json!(format!("{}.{}", spec.subnet, 11 + i))),
                ("STLT_CONN_PORT", json!(3366)),
                ("STLT_CONN_ENCR_TYPE", json!("PLAIN")),
            ],
        );
        let names = b.props();
        let inst = format!("{}{name}", names.nodes);
        b.prop(&inst, "CurStltConnName", "default");
        b.prop(&inst, "NodeUname", node);
        b.prop(&inst, "Aux/topology/kubernetes.io/hostname", node);
        b.prop(&inst, "Aux/topology/linbit.com/hostname", node);
        b.prop(
            &inst,
            "Aux/topology/topology.kubernetes.io/zone",
            ["zone-a", "zone-b"][i % 2],
        );
        b.prop(&inst, "Aux/piraeus.linbit.com/configured-by", "piraeus-operator");
        for (pool, pool_dsp, driver) in [
            ("DFLTDISKLESSSTORPOOL", "DfltDisklessStorPool", "DISKLESS"),
            ("LVM-THIN", "lvm-thin", "LVM_THIN"),
        ] {
            let sp_uuid = b.rng.uuid();
            b.add(
                "NODE_STOR_POOL",
                &[
                    ("UUID", json!(sp_uuid)),
                    ("NODE_NAME", json!(name)),
                    ("POOL_NAME", json!(pool)),
                    ("DRIVER_NAME", json!(driver)),
                    ("FREE_SPACE_MGR_NAME", json!(format!("{name};{pool}"))),
                    ("FREE_SPACE_MGR_DSP_NAME", json!(format!("{node};{pool_dsp}"))),
                    ("EXTERNAL_LOCKING", json!(false)),
                ],
            );
            if driver == "LVM_THIN" {
                let sp = format!("{}{name}/{pool}", names.stor_pools);
                b.prop(&sp, "StorDriver/LvmVg", "linstor_vg");
                b.prop(&sp, "StorDriver/ThinPool", "thinpool");
                b.prop(&sp, "StorDriver/StorPoolName", "linstor_vg/thinpool");
                b.prop(&sp, "Aux/piraeus.linbit.com/managed-by", "piraeus-operator");
            }
        }
        let capacity =
            json!({"lvm-thin": {"total": 100 * GIB, "free": 100 * GIB - (i as i64 + 2) * 9 * GIB}});
        b.add(
            "SATELLITES_CAPACITY",
            &[
                ("NODE_NAME", json!(name)),
                ("CAPACITY", b64_json(&capacity)),
                ("FAIL_FLAG", json!(false)),
                (
                    "ALLOCATED",
                    b64_json(&json!({"lvm-thin": (i as i64 + 2) * 9 * GIB})),
                ),
                ("USABLE", b64_json(&json!({"lvm-thin": 100 * GIB}))),
            ],
        );
        protected.push(format!("/nodes/{name}"));
    }
}
