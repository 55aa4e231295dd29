//! Pure facts about LINSTOR's database, shared by the service (`linstor-migrator`) and the one
//! model of LINSTOR the tests and the demo run against (`linstor-fake`), so that neither depends
//! on the other: tables as an export describes them and the CRD naming rule ([`schema`]), the
//! export document ([`export`]) and a row read without copying its text ([`row_ref`]), the rule that names a row's object ([`naming`]) and the table of
//! recorded LINSTOR versions ([`versions`]). Nothing here is a constant of one LINSTOR version.
//! No I/O, no async.

pub mod export;
pub mod naming;
pub mod row_ref;
pub mod schema;
pub mod versions;
