//! Facts about LINSTOR itself: its configuration file, its database export format, its REST API
//! and how its `linstor-database` tool reports success and failure.

pub mod compare;
pub mod export;
pub mod export_rows;
pub mod rest;
pub mod row_index;
pub mod schema;
pub mod snapshot;
pub mod toml;
pub mod tool_output;
pub mod versions;
