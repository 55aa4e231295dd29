//! LINSTOR's default security objects (what a fresh controller database holds): identities,
//! roles, security types and their rules, access types, and an object protection with an ACL
//! for every protected object.

use serde_json::json;

use super::dataset::Builder;

/// Objects of the controller itself that LINSTOR protects.
pub(crate) const SYSTEM_OBJECTS: &[&str] = &[
    "/sys/controller/conf",
    "/sys/controller/shutdown",
    "/sys/controller/nodesMap",
    "/sys/controller/rscDfnMap",
    "/sys/controller/storPoolMap",
    "/sys/controller/freeSpaceMgrMap",
    "/sys/controller/keyValueStoreMap",
    "/sys/controller/rscGrpMap",
    "/sys/controller/extFilesMap",
    "/sys/controller/remoteMap",
    "/sys/controller/scheduleMap",
];

const ROLES: &[(&str, &str, i64)] = &[
    ("SYSTEM", "SYSTEM", -1),
    ("PUBLIC", "PUBLIC", 0),
    ("SYSADM", "SysAdm", -1),
    ("USER", "User", 0),
];

const TYPES: &[(&str, &str)] = &[
    ("SYSTEM", "SYSTEM"),
    ("PUBLIC", "PUBLIC"),
    ("SHARED", "SHARED"),
    ("SYSADM", "SysAdm"),
    ("USER", "User"),
];

/// `(domain, type, access)`: CONTROL 15, CHANGE 7, USE 3, VIEW 1.
const TYPE_RULES: &[(&str, &str, i64)] = &[
    ("SYSTEM", "SYSTEM", 15),
    ("SYSTEM", "PUBLIC", 15),
    ("SYSTEM", "SHARED", 15),
    ("SYSTEM", "SYSADM", 15),
    ("SYSTEM", "USER", 15),
    ("PUBLIC", "PUBLIC", 15),
    ("PUBLIC", "SHARED", 7),
    ("SYSADM", "PUBLIC", 15),
    ("SYSADM", "SHARED", 15),
    ("SYSADM", "SYSADM", 15),
    ("SYSADM", "USER", 15),
    ("USER", "PUBLIC", 15),
    ("USER", "SHARED", 7),
    ("USER", "USER", 15),
];

/// The rows every LINSTOR database starts with.
pub(crate) fn defaults(b: &mut Builder) {
    for (name, dsp, locked) in [("SYSTEM", "SYSTEM", true), ("PUBLIC", "PUBLIC", false)] {
        b.add(
            "SEC_IDENTITIES",
            &[
                ("IDENTITY_NAME", json!(name)),
                ("IDENTITY_DSP_NAME", json!(dsp)),
                ("ID_ENABLED", json!(true)),
                ("ID_LOCKED", json!(locked)),
            ],
        );
        b.add(
            "SEC_ID_ROLE_MAP",
            &[("IDENTITY_NAME", json!(name)), ("ROLE_NAME", json!(name))],
        );
        b.add(
            "SEC_DFLT_ROLES",
            &[("IDENTITY_NAME", json!(name)), ("ROLE_NAME", json!(name))],
        );
    }
    for (name, dsp, privileges) in ROLES {
        b.add(
            "SEC_ROLES",
            &[
                ("ROLE_NAME", json!(name)),
                ("ROLE_DSP_NAME", json!(dsp)),
                ("DOMAIN_NAME", json!(name)),
                ("ROLE_ENABLED", json!(true)),
                ("ROLE_PRIVILEGES", json!(privileges)),
            ],
        );
    }
    for (name, dsp) in TYPES {
        b.add(
            "SEC_TYPES",
            &[
                ("TYPE_NAME", json!(name)),
                ("TYPE_DSP_NAME", json!(dsp)),
                ("TYPE_ENABLED", json!(true)),
            ],
        );
    }
    for (domain, ty, access) in TYPE_RULES {
        b.add(
            "SEC_TYPE_RULES",
            &[
                ("DOMAIN_NAME", json!(domain)),
                ("TYPE_NAME", json!(ty)),
                ("ACCESS_TYPE", json!(access)),
            ],
        );
    }
    for (name, value) in [("CONTROL", 15), ("CHANGE", 7), ("USE", 3), ("VIEW", 1)] {
        b.add(
            "SEC_ACCESS_TYPES",
            &[
                ("ACCESS_TYPE_NAME", json!(name)),
                ("ACCESS_TYPE_VALUE", json!(value)),
            ],
        );
    }
    for (key, dsp, value) in [
        ("SECURITYLEVEL", "SecurityLevel", "NO_SECURITY"),
        ("AUTHREQUIRED", "AuthRequired", "false"),
    ] {
        b.add(
            "SEC_CONFIGURATION",
            &[
                ("ENTRY_KEY", json!(key)),
                ("ENTRY_DSP_KEY", json!(dsp)),
                ("ENTRY_VALUE", json!(value)),
            ],
        );
    }
}

/// The object protection and ACL of one object.
pub(crate) fn protect(b: &mut Builder, path: &str) {
    let system = path.starts_with("/sys/");
    b.add(
        "SEC_OBJECT_PROTECTION",
        &[
            ("OBJECT_PATH", json!(path)),
            ("CREATOR_IDENTITY_NAME", json!("SYSTEM")),
            ("OWNER_ROLE_NAME", json!(if system { "SYSTEM" } else { "SYSADM" })),
            (
                "SECURITY_TYPE_NAME",
                json!(if system { "SYSTEM" } else { "SHARED" }),
            ),
        ],
    );
    b.add(
        "SEC_ACL_MAP",
        &[
            ("OBJECT_PATH", json!(path)),
            ("ROLE_NAME", json!("SYSADM")),
            ("ACCESS_TYPE", json!(15)),
        ],
    );
    b.add(
        "SEC_ACL_MAP",
        &[
            ("OBJECT_PATH", json!(path)),
            ("ROLE_NAME", json!("PUBLIC")),
            ("ACCESS_TYPE", json!(if system { 1 } else { 7 })),
        ],
    );
}
