//! The LINSTOR 1.33 database schema: the facts live in `linstor-model` (shared with the fake
//! LINSTOR of the tests and the demo); re-exported here under the service's own path.

pub use linstor_model::schema::*;
