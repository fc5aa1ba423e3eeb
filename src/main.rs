//! The `commitment-tracker` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc: the server allocates many small, short-lived objects per request from several
/// threads, where it is measurably faster than the system allocator (see README,
/// Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use commitment_tracker::{cli, config::Cli, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    match cli::run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
