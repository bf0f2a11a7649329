//! The `autoscaler` command: parses arguments, sets up logging, runs a subcommand and
//! turns its result into an exit code (errors printed with their whole chain).

use clap::Parser as _;

fn main() {
    let cli = autoscaler::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match autoscaler::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
