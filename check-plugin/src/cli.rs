//! The command line and the run sequence: parse, load the config, fetch under the
//! timeout, evaluate, render. [`run`] returns the text and the exit code; `main` only
//! prints and exits.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use autoscaler_config::{Config, Env};
use chrono::{DateTime, Utc};
use clap::Parser;

use crate::error::ArgError;
use crate::evaluate::evaluate;
use crate::output::{render, unknown_line};
use crate::source::{LiveSource, Progress, Source};
use crate::thresholds::{Subcheck, Thresholds};

/// Where the controller's config is read from when `-C` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/gitlab-runner-autoscaler/config.toml";

const AFTER_HELP: &str = "\
Thresholds: -w/-c METRIC=RANGE (repeatable), RANGE = [@][start:][end] as in the Monitoring
Plugins guidelines (10 = outside 0..10, 10: = below 10, ~:10 = above 10, 10:20 = outside,
@10:20 = inside); METRIC=none disables a default. Metrics and defaults (warning / critical):
  runners:    runners_offline 0/2, runners_stale 0/-, runners_never_contacted 0/2
              (only runners older than their pool's boot_timeout), runner_contact_age 600/1800 s
  vms:        vms_error 0/2, vms_stuck_booting 0/2, vms_orphaned 0/3 (servers without runner),
              runners_orphaned 0/3 (runners without server), vms_limit_headroom -/0: (over limit),
              quota_shortfall 0/-
  queue:      jobs_pending -/-, pending_age 900/3600 s
  controller: controller_success_age (4 x poll_interval + 60) / (20 x poll_interval) s;
              unreachable or wrong controller id is CRITICAL

The GitLab token is read from the environment: GITLAB_AUTOSCALER_TOKEN, else the config's
token_env / token_file. OpenStack credentials come from the config's [openstack] section,
else OS_CLOUD / OS_* variables. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "check_gitlab_autoscaler",
    version,
    about = "Icinga/Nagios check of the GitLab runner autoscaler for OpenStack: runners, VMs, job queue, controller heartbeat",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// The controller's config file (GitLab URL, token source, OpenStack, pools, listen address).
    #[arg(short = 'C', long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Subchecks to run: all, runners, vms, queue, controller (comma-separated or repeated).
    #[arg(
        short = 's',
        long = "subcheck",
        value_name = "NAME",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub subchecks: Vec<String>,
    /// Warning threshold METRIC=RANGE (repeatable).
    #[arg(short = 'w', long = "warning", value_name = "METRIC=RANGE")]
    pub warning: Vec<String>,
    /// Critical threshold METRIC=RANGE (repeatable).
    #[arg(short = 'c', long = "critical", value_name = "METRIC=RANGE")]
    pub critical: Vec<String>,
    /// Seconds before the check gives up with UNKNOWN, naming the stage reached.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "SECONDS",
        default_value = "30"
    )]
    pub timeout: String,
    /// Log to stderr (-v warnings, -vv debug). Icinga merges stderr into the output.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Evaluate as of this RFC 3339 time instead of the clock (reproducible output).
    #[arg(long, hide = true, value_name = "TIME")]
    pub now: Option<String>,
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Config file.
    pub config: PathBuf,
    /// Selected subchecks.
    pub subchecks: BTreeSet<Subcheck>,
    /// Raw `-w` arguments (applied once the config's poll interval is known).
    pub warning: Vec<String>,
    /// Raw `-c` arguments.
    pub critical: Vec<String>,
    /// `-t`.
    pub timeout: Duration,
    /// `-v` count.
    pub verbose: u8,
    /// `--now`.
    pub now: Option<DateTime<Utc>>,
}

/// The outcome of a run: what to print on stdout and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Full stdout text.
    pub stdout: String,
    /// 0..=3.
    pub code: i32,
}

impl Outcome {
    fn unknown(message: &str) -> Self {
        Outcome {
            stdout: unknown_line(message),
            code: 3,
        }
    }
}

/// Parses `argv`; `-h`, `-V` and bad arguments give an [`Outcome`] with exit code 3.
///
/// # Errors
///
/// The [`Outcome`] to print instead of running.
pub fn parse_args<I, T>(argv: I) -> Result<Options, Outcome>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            return Err(match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Outcome {
                    stdout: e.render().to_string(),
                    code: 3,
                },
                _ => {
                    let text = e.render().to_string();
                    let first = text
                        .lines()
                        .next()
                        .unwrap_or("bad arguments")
                        .trim_start_matches("error: ");
                    Outcome::unknown(&format!("{first} (see --help)"))
                }
            });
        }
    };
    options(args).map_err(|e| Outcome::unknown(&e.to_string()))
}

fn options(args: Args) -> Result<Options, ArgError> {
    let mut subchecks = BTreeSet::new();
    for s in &args.subchecks {
        let s = s.trim();
        if s == "all" {
            subchecks.extend(Subcheck::ALL);
        } else {
            subchecks.insert(s.parse::<Subcheck>()?);
        }
    }
    let timeout = match args.timeout.trim().parse::<u64>() {
        Ok(t) if (1..=3600).contains(&t) => Duration::from_secs(t),
        _ => return Err(ArgError::Timeout(args.timeout.clone())),
    };
    let now = match &args.now {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| ArgError::Now(t.clone()))?
                .with_timezone(&Utc),
        ),
    };
    // Validate thresholds now so a typo fails before any network call.
    let mut probe = Thresholds::defaults(Duration::from_secs(15));
    for w in &args.warning {
        probe.apply(false, w)?;
    }
    for c in &args.critical {
        probe.apply(true, c)?;
    }
    Ok(Options {
        config: args.config,
        subchecks,
        warning: args.warning,
        critical: args.critical,
        timeout,
        verbose: args.verbose,
        now,
    })
}

/// Thresholds from the defaults for `config` and the `-w`/`-c` arguments.
///
/// # Errors
///
/// [`ArgError`] for a malformed argument.
pub fn thresholds(opts: &Options, config: &Config) -> Result<Thresholds, ArgError> {
    let mut t = Thresholds::defaults(config.controller.poll_interval);
    for w in &opts.warning {
        t.apply(false, w)?;
    }
    for c in &opts.critical {
        t.apply(true, c)?;
    }
    Ok(t)
}

/// Runs the check with the live source: loads the config, fetches under the timeout,
/// evaluates and renders. Never panics on bad input; every failure is an UNKNOWN outcome.
pub async fn run(opts: &Options, env: &dyn Env) -> Outcome {
    let config = match autoscaler_config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            let first =
                e.0.first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| format!("{}: invalid", opts.config.display()));
            let more = if e.0.len() > 1 {
                format!(" (and {} more problems)", e.0.len() - 1)
            } else {
                String::new()
            };
            return Outcome::unknown(&format!("cannot load config: {first}{more}"));
        }
    };
    let thresholds = match thresholds(opts, &config) {
        Ok(t) => t,
        Err(e) => return Outcome::unknown(&e.to_string()),
    };
    let source = LiveSource::new(config, env, opts.timeout);
    run_with(&source, opts, &thresholds).await
}

/// Fetches from `source` under the timeout, evaluates and renders.
pub async fn run_with<S: Source>(source: &S, opts: &Options, thresholds: &Thresholds) -> Outcome {
    let progress = Progress::default();
    let now = opts.now.unwrap_or_else(Utc::now);
    let fetched = tokio::time::timeout(
        opts.timeout,
        source.snapshot(&opts.subchecks, now, &progress),
    )
    .await;
    let snapshot = match fetched {
        Err(_) => {
            return Outcome::unknown(&format!(
                "timed out after {}s; stage reached: {}",
                opts.timeout.as_secs(),
                progress.describe()
            ));
        }
        Ok(Err(e)) => return Outcome::unknown(&crate::chain(&e)),
        Ok(Ok(s)) => s,
    };
    tracing::debug!(stages = %progress.describe(), "snapshot complete");
    let result = evaluate(&snapshot, &opts.subchecks, thresholds, now);
    Outcome {
        stdout: render(&result),
        code: result.state.code(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, Outcome> {
        parse_args(std::iter::once("check_gitlab_autoscaler").chain(args.iter().copied()))
    }

    #[test]
    fn help_and_version_exit_3_on_stdout() {
        for a in ["-h", "--help", "-V", "--version"] {
            let o = parse(&[a]).unwrap_err();
            assert_eq!(o.code, 3, "{a}");
            assert!(!o.stdout.is_empty());
        }
        assert!(
            parse(&["-h"])
                .unwrap_err()
                .stdout
                .contains("runners_offline")
        );
    }

    #[test]
    fn bad_arguments_are_one_unknown_line() {
        for a in [
            &["--bogus"][..],
            &["-s", "disks"],
            &["-w", "nope=1"],
            &["-c", "pending_age=abc"],
            &["-t", "0"],
            &["-t", "ten"],
        ] {
            let o = parse(a).unwrap_err();
            assert_eq!(o.code, 3, "{a:?}");
            assert!(
                o.stdout.starts_with("GITLAB AUTOSCALER UNKNOWN - "),
                "{}",
                o.stdout
            );
            assert_eq!(o.stdout.lines().count(), 1, "{}", o.stdout);
        }
    }

    #[test]
    fn subchecks_default_to_all_and_accept_lists() {
        assert_eq!(parse(&[]).unwrap().subchecks.len(), 4);
        let o = parse(&["-s", "vms,queue"]).unwrap();
        assert_eq!(
            o.subchecks.into_iter().collect::<Vec<_>>(),
            vec![Subcheck::Vms, Subcheck::Queue]
        );
    }
}
