//! The `autoscaler` command: parses arguments, sets up logging, runs a subcommand and
//! turns its result into an exit code (errors printed with their whole chain).

use clap::Parser as _;

fn main() {
    let cli = autoscaler::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.json_logs() {
        builder.json().init();
    } else {
        builder.init();
    }
    let code = match autoscaler::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
