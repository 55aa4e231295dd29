//! The `linstor-rest` stand-in: LINSTOR's REST API (REFERENCE.md §5) answering only while a
//! controller pod is Ready, from the database that pod started with (the `linstor.toml` of the
//! controller's ConfigMap when the pod was first seen; the data loaded then, as the real
//! controller loads its database once at start-up).

pub mod controller;
pub mod registry;
pub mod server;
pub mod view;
