//! The `autoscaler` command line: argument definitions and one function per subcommand.
//!
//! `main.rs` only parses arguments, sets up logging and calls [`run`]. Every subcommand
//! returns an exit code; errors carry their context chain and are printed by `main`.

mod bootstrap;
pub mod controller;
#[cfg(feature = "dev")]
mod dev;
mod simulate;
mod validate;

pub use simulate::{REFERENCE_CONFIG, REFERENCE_TRACE};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// GitLab CI runner autoscaler for OpenStack.
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a job trace through the policy against a simulated cloud.
    ///
    /// With no arguments: the embedded reference setup and its built-in week trace.
    Simulate(SimulateArgs),
    /// Check a configuration file and print every problem, or OK.
    Validate(ValidateArgs),
    /// Cloud-init user-data for a pool's VMs.
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Run the controller in the foreground until SIGTERM (systemd-friendly).
    Run(RunArgs),
    /// What `run` would do now, per pool, with a reason for every action; changes nothing.
    /// Exit 0: no change; 2: changes pending; 1: error (GitLab or the cloud cannot be read).
    Plan(PlanArgs),
    /// The VMs of this controller, like `docker-machine ls`.
    Status(PlanArgs),
    /// Convert a gitlab-runner config.toml (docker+machine on OpenStack) into this
    /// project's configuration.
    Import(ImportArgs),
    /// Print a shell completion script.
    Completions {
        /// Shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// `autoscaler import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// gitlab-runner config.toml to read.
    pub source: PathBuf,
    /// Write here instead of standard output (an existing file is not overwritten).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `--config` of the controller commands.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// `autoscaler run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(long, short, required_unless_present = "dev", conflicts_with = "dev")]
    pub config: Option<PathBuf>,
    /// The embedded demo: the real controller against a fake GitLab and a fake OpenStack on
    /// loopback, fed from the built-in job trace; shows the VM table as it changes, drains
    /// at the end and exits 0 if no job was killed and nothing was left behind.
    #[arg(long)]
    pub dev: bool,
    /// `--dev`: replay speed (30: one trace minute every two seconds).
    #[arg(long, default_value_t = 30.0, requires = "dev")]
    pub speed: f64,
    /// `--dev`: stop (and drain) after this long even if the replay is not over.
    #[arg(long, value_parser = humantime::parse_duration, requires = "dev")]
    pub duration: Option<std::time::Duration>,
    /// On SIGTERM, also drain and delete every VM (busy ones after their jobs end).
    #[arg(long)]
    pub drain_on_exit: bool,
    /// How long `--drain-on-exit` may take before giving up (VMs left are reported).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// Log output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `autoscaler plan` and `status`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Plan as if it were this time (RFC 3339): shows which period would be in force.
    #[arg(long)]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// `autoscaler simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Configuration file (default: the embedded reference setup).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Job trace CSV (default: the built-in release week).
    #[arg(long, short, conflicts_with = "synthetic_jobs")]
    pub trace: Option<PathBuf>,
    /// Instead of a trace file, generate a synthetic week of about N jobs (from --seed).
    #[arg(long, value_name = "N")]
    pub synthetic_jobs: Option<usize>,
    /// Also run docker+machine, the clairvoyant bound and the limit floor.
    #[arg(long)]
    pub compare: bool,
    /// Sweep a setting under both policies, e.g. `idle_count=0..8`.
    #[arg(long, value_name = "KEY=FROM..TO")]
    pub sweep: Option<String>,
    /// Draw VMs by state and queue length over time into an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Random seed (boot times, polling phases, failures).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Median boot time in seconds (create request to the runner's first contact).
    #[arg(long, default_value_t = 90.0)]
    pub boot_median: f64,
    /// Spread of boot times (sigma of the log-normal).
    #[arg(long, default_value_t = 0.3)]
    pub boot_sigma: f64,
    /// Share of creates that end in ERROR (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub create_failure_rate: f64,
    /// Seconds a server delete takes.
    #[arg(long, default_value_t = 10)]
    pub delete_time: i64,
    /// Override every pool's `forecast_days` (0 = no learned pre-warming).
    #[arg(long, value_name = "N")]
    pub forecast_days: Option<u32>,
    /// Hours simulated after the last job arrives.
    #[arg(long, default_value_t = 4)]
    pub tail_hours: i64,
}

/// `autoscaler validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Configuration file.
    pub config: PathBuf,
    /// Also authenticate to OpenStack, resolve every pool's flavor, image, networks,
    /// security groups and key pair, and print the quota headroom.
    #[arg(long)]
    pub online: bool,
}

/// `autoscaler bootstrap ...`.
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Print the user-data a pool's VMs get, secrets redacted.
    Render(RenderArgs),
}

/// `autoscaler bootstrap render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Pool name.
    #[arg(long, short)]
    pub pool: String,
    /// Show the S3 keys instead of `[REDACTED]` (the runner token is always a placeholder:
    /// real tokens exist only when the controller creates a runner).
    #[arg(long)]
    pub reveal: bool,
}

impl Cli {
    /// Log filter when `RUST_LOG` is not set: `run --dev` redraws a table and logs only
    /// warnings; everything else logs at info.
    pub fn default_log_filter(&self) -> &'static str {
        match &self.command {
            Command::Run(r) if r.dev => "warn",
            _ => "info",
        }
    }

    /// Whether logs should be JSON lines (`run --log-format json`).
    pub fn json_logs(&self) -> bool {
        matches!(&self.command, Command::Run(r) if r.log_format == LogFormat::Json)
    }
}

/// Runs a parsed command line; returns the process exit code.
///
/// # Errors
///
/// Any failure, with its context chain, for `main` to print.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Bootstrap(BootstrapCommand::Render(args)) => bootstrap::render(&args),
        Command::Run(args) if args.dev => dev_run(&args),
        Command::Run(args) => controller::run(&args),
        Command::Plan(args) => controller::plan(&args),
        Command::Status(args) => controller::status(&args),
        Command::Import(args) => import(&args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "autoscaler", &mut buf);
            std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
            Ok(0)
        }
    }
}

fn import(args: &ImportArgs) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(&args.source)
        .with_context(|| format!("reading {}", args.source.display()))?;
    let out = crate::import::import(&text, &args.source.display().to_string())?;
    match &args.output {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
            std::io::Write::write_all(&mut f, out.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {}; review its TODOs, then `autoscaler validate {}`",
                path.display(),
                path.display()
            );
        }
        None => print!("{out}"),
    }
    Ok(0)
}

/// `run --dev`: the embedded demo, only in builds with the `dev` feature (the production
/// binary carries no fakes).
fn dev_run(args: &RunArgs) -> anyhow::Result<i32> {
    #[cfg(feature = "dev")]
    return dev::run(args);
    #[cfg(not(feature = "dev"))]
    {
        let _ = args;
        anyhow::bail!(
            "this autoscaler was built without the `dev` feature, so it has no --dev demo \
             (the production build carries no fakes); run it from the source tree with \
             `cargo run --release --features dev --bin autoscaler -- run --dev`"
        )
    }
}
