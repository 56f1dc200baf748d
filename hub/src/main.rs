//! The `scalehub` binary: parse the command line, set up logging, run.

use clap::Parser;

/// jemalloc instead of glibc's malloc: a hub holds many small objects per target and churns
/// short-lived ones every tick; glibc's per-thread arenas kept about twice the live heap
/// resident, jemalloc returns what ticks free (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `kubectl scalehub ...` runs this binary as `kubectl-scalehub`.
    if std::env::args_os().next().is_some_and(|argv0| scalehub::ctl::invoked_as_plugin(&argv0)) {
        let plugin = scalehub::ctl::Plugin::parse();
        std::process::exit(i32::from(scalehub::ctl::main(plugin.args).await));
    }
    scalehub::telemetry::init_logging();
    scalehub::cli::main(scalehub::cli::Cli::parse()).await
}
