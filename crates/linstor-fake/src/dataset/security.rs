//! LINSTOR's security objects in a generated database, as the real LINSTOR writes them
//! (dataset-rules.txt rule 2): the default identities, roles, types, rules and configuration and
//! the protection of the controller's own objects and default pool/group are taken verbatim from
//! the release's recorded export ([`super::recorded`]); every other object gets one
//! `SEC_OBJECT_PROTECTION` row (PUBLIC) and one `SEC_ACL_MAP` row (PUBLIC, access 15).

use serde_json::json;

use super::generate::Builder;

/// Tables whose rows every LINSTOR database starts with.
const DEFAULT_TABLES: [&str; 7] = [
    "SEC_IDENTITIES",
    "SEC_TYPES",
    "SEC_ROLES",
    "SEC_CONFIGURATION",
    "SEC_ID_ROLE_MAP",
    "SEC_DFLT_ROLES",
    "SEC_TYPE_RULES",
];

/// Objects LINSTOR creates itself, protected by SYSTEM (their rows come from the recording).
fn is_default_object(path: &str) -> bool {
    path.starts_with("/sys/")
        || [
            "/resourcegroups/DFLTRSCGRP",
            "/storpooldefinitions/DFLTDISKLESSSTORPOOL",
            "/storpooldefinitions/DFLTSTORPOOL",
        ]
        .contains(&path)
}

/// The rows every LINSTOR database starts with.
pub fn defaults(b: &mut Builder) {
    let recorded = super::recorded(b.release);
    for t in &recorded.tables {
        let keep = |row: &linstor_model::export::Row| {
            DEFAULT_TABLES.contains(&t.name.as_str())
                || row
                    .get("object_path")
                    .and_then(|p| p.as_str())
                    .is_some_and(is_default_object)
        };
        if DEFAULT_TABLES.contains(&t.name.as_str())
            || t.name == "SEC_OBJECT_PROTECTION"
            || t.name == "SEC_ACL_MAP"
        {
            for row in t.data.iter().filter(|r| keep(r)) {
                b.add_row(&t.name, row.clone());
            }
        }
    }
}

/// The object protection and ACL of one object the user created.
pub fn protect(b: &mut Builder, path: &str) {
    if is_default_object(path) {
        return;
    }
    b.add(
        "SEC_OBJECT_PROTECTION",
        &[
            ("OBJECT_PATH", json!(path)),
            ("CREATOR_IDENTITY_NAME", json!("PUBLIC")),
            ("OWNER_ROLE_NAME", json!("PUBLIC")),
            ("SECURITY_TYPE_NAME", json!("PUBLIC")),
        ],
    );
    b.add(
        "SEC_ACL_MAP",
        &[
            ("OBJECT_PATH", json!(path)),
            ("ROLE_NAME", json!("PUBLIC")),
            ("ACCESS_TYPE", json!(15)),
        ],
    );
}
