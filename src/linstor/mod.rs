//! Facts about LINSTOR itself: its configuration file, its database export format and its REST API.

pub mod export;
pub mod export_rows;
pub mod rest;
pub mod schema;
pub mod toml;
