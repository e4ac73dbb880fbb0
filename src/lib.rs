//! monstack: a complete monitoring stack (Prometheus, Grafana, etcd, Alertmanager, Pushgateway)
//! for any project, from one `monstack.yaml`.
//!
//! Data flows one way: manifest -> validated model -> rendered files -> plan -> Docker/HTTP ->
//! health. Everything before the edges (Docker, HTTP, the file system) is pure. The folders are
//! the stages (README, "Architecture"); `tests/architecture.rs` keeps imports pointing back up
//! the path only.

pub mod agent;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod dashboards;
pub mod error;
pub mod export;
pub mod files;
pub mod layout;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod output;
pub mod project;
pub mod render;
pub mod signal;
pub mod stack;
#[cfg(test)]
pub mod testsupport;
