//! linstor-migrator: moves a LINSTOR controller's database from etcd to the Kubernetes backend.
//!
//! Layout: [`cluster`] (Kubernetes, simulated cluster), [`linstor`] (LINSTOR's config, export
//! format and REST API), [`db`] (SQLite), [`engine`] (steps and runner), [`http`] (API, pages,
//! SSE), [`cli`] (one-shot runs).

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod engine;
pub mod http;
pub mod linstor;
pub mod metrics;
pub mod model;
pub mod serve;
