//! Integration tests: the `monstack` binary run in temporary project directories.

mod support;

mod alerts;
mod architecture;
mod cli;
mod consul;
mod dashboards;
mod discovery;
mod etcd_cluster;
mod export;
mod exporters;
mod hostile;
mod hostile_input;
mod images;
mod import;
mod influxdb;
mod malformed;
mod readme;
mod remote_write;
mod up;
