//! Integration tests: the `monstack` binary run in temporary project directories.

mod support;

mod alerts;
mod architecture;
mod cli;
mod dashboards;
mod discovery;
mod etcd_cluster;
mod export;
mod exporters;
mod hostile;
mod hostile_input;
mod images;
mod import;
mod malformed;
mod up;
