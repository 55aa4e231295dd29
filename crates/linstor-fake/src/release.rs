//! The LINSTOR releases this model knows, each proven by a set of recordings of the real software
//! (`tests/fixtures/linstor-<version>/`): 1.25.1, the Piraeus Operator v1.10.8 chart's default
//! controller image, and 1.33.3, the last LINSTOR that reads etcd. Every part of the model takes a
//! [`Release`]: its tables and columns come from the release's recorded export
//! ([`crate::schema`]); what an export cannot give is one row of [`FACTS`], each field with the
//! recording that proves it (the tool's output, its `k8s` client, the CRDs' versions, the REST
//! answers, property instance names).
//!
//! A LINSTOR version without recordings (`1.32.3`) is played by the nearest recorded release
//! ([`Release::modelling`]); it keeps its own version string where LINSTOR prints it.

use linstor_model::versions::{self, Recorded};

/// A recorded LINSTOR release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    V1_25_1,
    V1_33_3,
}

/// How LINSTOR names the property containers of its objects in `PROPS_CONTAINERS.props_instance`
/// (prefixes; the controller's and the satellites' own containers are whole names). 1.27.1
/// renamed them (`Migration_23_v1_27_1_SplitSnapPropsFromRscPropsAndChangeInstanceNames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropsNaming {
    /// The controller's properties (`/CTRLCFG`, `/CTRL`).
    pub ctrl: &'static str,
    /// The satellites' cluster-wide properties (`STLTCFG`: no leading slash in 1.25.1).
    pub stlt: &'static str,
    pub nodes: &'static str,
    pub node_conns: &'static str,
    pub rsc_grps: &'static str,
    pub rsc_dfns: &'static str,
    pub rscs: &'static str,
    pub vlm_grps: &'static str,
    pub vlm_dfns: &'static str,
    pub vlms: &'static str,
    pub stor_pools: &'static str,
    pub kvs: &'static str,
}

/// What the REST API answers that no table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestFacts {
    /// `/v1/controller/version` of the recorded build (`rest/etcd/controller_version.json`).
    pub git_hash: &'static str,
    pub build_time: &'static str,
    pub rest_api_version: &'static str,
    /// `/v1/nodes` of a satellite that never connected (`rest/etcd/nodes.json`): the providers
    /// the controller knows without a satellite, and the unsupported providers and layers with how
    /// many "No information from satellite yet" entries each lists.
    pub offline_providers: &'static [&'static str],
    pub offline_unsupported_providers: &'static [(&'static str, usize)],
    pub offline_unsupported_layers: &'static [(&'static str, usize)],
}

/// How the release's `k8s` client (fabric8) words a refused call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fabric8 {
    /// fabric8 6.7.2 (LINSTOR 1.25.1): `Message: Forbidden! User <kubeconfig user> doesn't have
    /// permission. <status message>.`, `Message: Not Found.` for a resource the server does not
    /// serve, no `Received status` (tool/13, 14, 17).
    V6_7,
    /// The newer fabric8 of 1.33.3: `Message: <status message>. Received status: Status(...).`
    /// (tool/12, 13, 14).
    Newer,
}

/// The facts of one release that its export cannot give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub release: Release,
    pub linstor: &'static str,
    /// `dataset/export-etcd.json`, byte-exact tool output: the release's tables, columns, export
    /// order and header versions.
    pub export_etcd: &'static str,
    /// The versions its table CRDs have, oldest first, the last the storage version
    /// (`k8s/crds.yaml`; a table that came later has only the versions from its first on, see
    /// [`crate::schema::FIRST_CRD_VERSION`]).
    pub crd_versions: &'static [&'static str],
    /// CRD migration steps a fresh import runs (`k8s/import-requests-fresh.txt`, README).
    pub fresh_migrations: u32,
    /// What it appends to an H2 URL in the `SQL database connection URL is "..."` line (tool/08).
    pub h2_url_suffix: &'static str,
    /// Whether its `k8s` client starts netty (vert.x), which prints the MAC address warning as
    /// its etcd client does (tool/02 of 1.33.3; 1.25.1's okhttp client prints nothing).
    pub k8s_client_mac_warning: bool,
    pub fabric8: Fabric8,
    /// `PROPS_CONTAINERS.props_instance` names. 1.25.1's are recorded for the controller,
    /// satellites, nodes, node connections, resource groups and definitions, volume groups and
    /// definitions and key-value stores (`dataset/export-etcd.json`); those of resources, volumes
    /// and storage pools are the old names of LINSTOR's own renaming migration.
    pub props: PropsNaming,
    /// Where the cluster-wide quorum policy that `DrbdOptions/auto-quorum=io-error` sets lives:
    /// `(in the satellites' properties, key)`; 1.25.1 keeps the key in the controller's, 1.33.3
    /// moved it (`Migration_26`; `dataset/README.txt`, COMPARISON-1.33.3.md section 5).
    pub quorum_policy: (bool, &'static str),
    pub rest: RestFacts,
}

const NOT_YET: usize = 1;

/// One row per release, in [`Release::ALL`] order.
pub static FACTS: [Facts; 2] = [
    Facts {
        release: Release::V1_25_1,
        linstor: "1.25.1",
        export_etcd: include_str!("../../../tests/fixtures/linstor-1.25.1/dataset/export-etcd.json"),
        crd_versions: &["v1-15-0", "v1-17-0", "v1-18-2", "v1-19-1"],
        fresh_migrations: 17,
        h2_url_suffix: "",
        k8s_client_mac_warning: false,
        fabric8: Fabric8::V6_7,
        props: PropsNaming {
            ctrl: "/CTRLCFG",
            stlt: "STLTCFG",
            nodes: "/NODES/",
            node_conns: "/CONDFN/NODES/",
            rsc_grps: "/RESOURCEGROUPS/",
            rsc_dfns: "/RESOURCEDEFINITIONS/",
            rscs: "/RESOURCES/",
            vlm_grps: "/VOLUMEGROUPS/",
            vlm_dfns: "/VOLUMEDEFINITIONS/",
            vlms: "/VOLUMES/",
            stor_pools: "/STORPOOLCONF/",
            kvs: "/KEYVALUESTORES/",
        },
        quorum_policy: (false, "DrbdOptions/auto-quorum"),
        rest: RestFacts {
            git_hash: "918d21837aefab23c28a52e8fcb0af14033d9bcb",
            build_time: "2026-12-06T22:55:28+00:00",
            rest_api_version: "1.20.2",
            offline_providers: &[
                "DISKLESS",
                "REMOTE_SPDK",
                "OPENFLEX_TARGET",
                "EBS_INIT",
                "EBS_TARGET",
            ],
            offline_unsupported_providers: &[
                ("LVM", NOT_YET),
                ("SPDK", NOT_YET),
                ("STORAGE_SPACES", NOT_YET),
                ("ZFS_THIN", 2),
                ("ZFS", 2),
                ("EXOS", 3),
                ("STORAGE_SPACES_THIN", NOT_YET),
                ("FILE_THIN", NOT_YET),
                ("FILE", NOT_YET),
                ("LVM_THIN", NOT_YET),
            ],
            offline_unsupported_layers: &[
                ("DRBD", 2),
                ("LUKS", NOT_YET),
                ("NVME", NOT_YET),
                ("OPENFLEX", NOT_YET),
                ("WRITECACHE", NOT_YET),
                ("CACHE", NOT_YET),
                ("BCACHE", NOT_YET),
            ],
        },
    },
    Facts {
        release: Release::V1_33_3,
        linstor: "1.33.3",
        export_etcd: include_str!("../../../tests/fixtures/linstor-1.33.3/dataset/export-etcd.json"),
        crd_versions: &[
            "v1-15-0", "v1-17-0", "v1-18-2", "v1-19-1", "v1-25-1", "v1-27-1", "v1-31-1",
        ],
        fresh_migrations: 30,
        h2_url_suffix: ";DB_CLOSE_ON_EXIT=FALSE",
        k8s_client_mac_warning: true,
        fabric8: Fabric8::Newer,
        props: PropsNaming {
            ctrl: "/CTRL",
            stlt: "/STLT",
            nodes: "/NODES/",
            node_conns: "/NODE_CONNS/",
            rsc_grps: "/RSC_GRPS/",
            rsc_dfns: "/RSC_DFNS/",
            rscs: "/RSCS/",
            vlm_grps: "/VLM_GRPS/",
            vlm_dfns: "/VLM_DFNS/",
            vlms: "/VLMS/",
            stor_pools: "/STOR_POOLS/",
            kvs: "/KVS/",
        },
        quorum_policy: (true, "DrbdOptions/Resource/on-no-quorum"),
        rest: RestFacts {
            git_hash: "1ff3a1ea5cb5c77100265ec442bb9a492b225145",
            build_time: "2026-11-28T06:25:10+00:00",
            rest_api_version: "1.27.0",
            offline_providers: &["DISKLESS", "REMOTE_SPDK", "EBS_INIT", "EBS_TARGET"],
            offline_unsupported_providers: &[
                ("LVM", NOT_YET),
                ("SPDK", NOT_YET),
                ("STORAGE_SPACES", NOT_YET),
                ("ZFS_THIN", 2),
                ("ZFS", 2),
                ("STORAGE_SPACES_THIN", NOT_YET),
                ("FILE_THIN", NOT_YET),
                ("FILE", NOT_YET),
                ("LVM_THIN", NOT_YET),
            ],
            offline_unsupported_layers: &[
                ("DRBD", 2),
                ("LUKS", NOT_YET),
                ("NVME", NOT_YET),
                ("WRITECACHE", NOT_YET),
                ("CACHE", NOT_YET),
                ("BCACHE", NOT_YET),
            ],
        },
    },
];

impl Release {
    /// Every recorded release, oldest first.
    pub const ALL: [Release; 2] = [Release::V1_25_1, Release::V1_33_3];
    /// The newest recorded release.
    pub const LATEST: Release = Release::V1_33_3;
    /// The release of the Piraeus v1.10.8 chart's default controller image
    /// (`quay.io/piraeusdatastore/piraeus-server:v1.25.1`).
    pub const CHART_DEFAULT: Release = Release::V1_25_1;

    /// Its row of [`FACTS`].
    pub fn facts(self) -> &'static Facts {
        &FACTS[self as usize]
    }

    /// `1.25.1`.
    pub fn version(self) -> &'static str {
        self.facts().linstor
    }

    /// Its row of the service's and the model's shared table of recorded versions
    /// (`linstor_model::versions::RECORDED`: data version, CRD count, `LinstorVersion`, exit delay).
    pub fn recorded(self) -> &'static Recorded {
        versions::recorded(self.version()).expect("every release of the model is a recorded version")
    }

    /// The export's `data_version`, which is also the storage version of its CRDs (`v1-19-1`).
    pub fn data_version(self) -> &'static str {
        self.recorded().data_version
    }

    /// The release recorded as exactly `version` (`1.25.1`, `v1.25.1`).
    pub fn of(version: &str) -> Option<Release> {
        let v = version.trim().trim_start_matches('v');
        Self::ALL.into_iter().find(|r| r.version() == v)
    }

    /// The release that plays LINSTOR `version`: the recorded one, or else the recorded release
    /// nearest to it (by major, minor, patch; the newer one of two as near); the newest for a
    /// version that does not parse.
    pub fn modelling(version: &str) -> Release {
        if let Some(r) = Self::of(version) {
            return r;
        }
        let Some(v) = versions::parse(version) else {
            return Self::LATEST;
        };
        let distance = |r: &Release| {
            let (a, b, c) = versions::parse(r.version()).unwrap_or_default();
            let key = |(x, y, z): (u32, u32, u32)| {
                (i64::from(x) * 1_000_000) + (i64::from(y) * 1_000) + i64::from(z)
            };
            (key((a, b, c)) - key(v)).abs()
        };
        Self::ALL
            .into_iter()
            .rev()
            .min_by_key(distance)
            .unwrap_or(Self::LATEST)
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_releases_are_the_recorded_versions() {
        let model: Vec<&str> = Release::ALL.iter().map(|r| r.version()).collect();
        let recorded: Vec<&str> = versions::RECORDED.iter().map(|r| r.linstor).collect();
        assert_eq!(model, recorded);
        for r in Release::ALL {
            assert_eq!(r.facts().release, r);
            assert_eq!(r.facts().crd_versions.last(), Some(&r.data_version()));
        }
        assert_eq!(Release::CHART_DEFAULT.data_version(), "v1-19-1");
    }

    #[test]
    fn a_version_without_recordings_is_played_by_the_nearest_release() {
        assert_eq!(Release::of("v1.25.1"), Some(Release::V1_25_1));
        assert_eq!(Release::of("1.32.3"), None);
        assert_eq!(Release::modelling("1.32.3"), Release::V1_33_3);
        assert_eq!(Release::modelling("1.24.2"), Release::V1_25_1);
        assert_eq!(Release::modelling("1.26.0"), Release::V1_25_1);
        assert_eq!(
            Release::modelling("1.29.2"),
            Release::V1_33_3,
            "as near: the newer"
        );
        assert_eq!(Release::modelling("latest"), Release::LATEST);
    }
}
