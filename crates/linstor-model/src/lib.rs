//! Pure facts about LINSTOR 1.33's database, shared by the service (`linstor-migrator`) and the
//! one model of LINSTOR the tests and the demo run against (`linstor-fake`), so that neither
//! depends on the other: the schema of export `data_version` `v1-31-1` ([`schema`]) and the
//! export document with the `k8s` backend's naming rule ([`export`]). No I/O, no async.

pub mod export;
pub mod schema;
