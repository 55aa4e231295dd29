//! Cluster end-to-end tests (DESIGN.md "Testing layers", layer 3): the real `linstor-migrator
//! serve` process against a real API server on loopback (tests/cluster/start.sh) with KWOK nodes,
//! the chart's RBAC, a Piraeus-v1-shaped installation reconciled by the operator stand-in, and
//! the LINSTOR stand-ins. One namespace per test; run one test at a time (the `k8s` backend's
//! CRDs are cluster-wide).
//!
//! Ignored in a plain `cargo test`: `tests/cluster/e2e` starts the control plane and runs them
//! with `--ignored --test-threads=1`.

mod chart;
mod inspect;
mod install;
mod measure;
mod objects;
mod observe;
mod process;
mod service;
mod suite;

mod backup;
mod crash;
mod delta;
mod faults;
mod guards;
mod migrate;
mod operator;
mod processes;
mod releases;
mod upgrade_plan;
