//! One conformance suite, two servers: every test here runs against the
//! in-process simulator and, when `SCALEHUB_REAL_KUBECONFIG` is set, against a
//! real kube-apiserver v1.20, through the real `kube::Client`.
//!
//! Where the two disagree the real server is right: fix the simulator, never
//! loosen a test.

mod autoscaling;
mod codes;
mod crud;
mod discovery;
mod events;
mod fixtures;
mod leases;
mod patch;
mod pods;
mod scale;
mod selectors;
mod server;
mod status;
mod watch;
mod watcher;
mod watching;
