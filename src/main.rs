//! The `chamber` command-line interface: parses the arguments, sets up logging and a runtime,
//! and prints any error (each says what happened and what to do).

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = chamber::cli::Cli::parse();
    // The daemon logs its progress by default; one-shot commands only warnings. webrtc-ice and
    // its TURN client warn about states the link layer handles and reports itself (checks
    // before the peer's candidates arrive, candidates released once a pair was chosen):
    // tens of thousands of lines while a ring of 50 forms, so only their errors by default.
    let default = match (
        cli.verbose,
        matches!(cli.command, chamber::cli::Command::Up),
    ) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info,webrtc_ice=error,turn=error",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("CHAMBER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Err(e) = runtime.block_on(chamber::cli::run(cli)) {
        // The message is meant for people: no backtrace, no debug dump.
        eprintln!("chamber: {e}");
        std::process::exit(1);
    }
    Ok(())
}
