//! LINSTOR's tables as an export describes them, the CRD naming rule and the CRDs that hold no
//! export rows: the facts live in `linstor-model` (shared with the fake LINSTOR of the tests and
//! the demo); re-exported here under the service's own path. No table list of one LINSTOR version
//! is here: a run takes its tables from its own export.

pub use linstor_model::schema::*;
