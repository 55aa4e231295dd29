//! linstor-migrator: moves a LINSTOR controller's database from etcd to the Kubernetes backend.
//!
//! Layout: [`cluster`] (Kubernetes, simulated cluster), [`linstor`] (LINSTOR's config, export
//! format and REST API), [`db`] (SQLite), [`engine`] (steps and runner), [`http`] (API, pages,
//! SSE), [`cli`] (one-shot runs), [`upgrade`] (the plan for the rest of the Piraeus v1 -> v2
//! upgrade).

pub mod app;
pub mod cli;
pub mod cli_upgrade_plan;
pub mod cluster;
pub mod config;
pub mod db;
pub mod engine;
pub mod http;
pub mod linstor;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod upgrade;
