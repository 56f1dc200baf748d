//! The `scalehub` binary: parse the command line, set up logging, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scalehub::telemetry::init_logging();
    scalehub::cli::main(scalehub::cli::Cli::parse()).await
}
