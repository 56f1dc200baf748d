//! One conformance suite, two servers: every test here runs against the
//! in-process simulator and, when `SCALEHUB_REAL_KUBECONFIG` is set, against a
//! real kube-apiserver v1.20, through the real `kube::Client`.
//!
//! Where the two disagree the real server is right: fix the simulator, never
//! loosen a test.
//!
//! Against the real server by hand:
//! `scripts/real-apiserver.sh start DIR --controller-manager`, then
//! `SCALEHUB_REAL_KUBECONFIG=DIR/kubeconfig cargo test --test conformance --test kubectl`,
//! then `scripts/real-apiserver.sh stop DIR`. Skips (APIs a v1.20 server lacks) are
//! printed; add `-- --nocapture` to see them.
//!
//! Layout: [`server`] is the harness (servers, per-test namespaces, waits),
//! [`fixtures`] and [`watching`] are shared helpers; every other module is one
//! area of API behaviour.

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
