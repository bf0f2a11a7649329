//! `autoscaler simulate`: figures, comparisons, sweeps and plots.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use autoscaler_config::Config;
use serde::Serialize;

use super::{Format, SimulateArgs};
use crate::settings;
use crate::sim::world::CloudModel;
use crate::sim::{self, Figures, PolicyReport, SimSpec, Trace};

/// The reference setup's configuration, embedded for the no-argument default.
pub const REFERENCE_CONFIG: &str = include_str!("../../../docs/examples/reference-setup.toml");
/// The built-in week trace.
pub const REFERENCE_TRACE: &str = include_str!("../../data/release-week.csv");

pub(super) fn run(args: &SimulateArgs) -> anyhow::Result<i32> {
    let config = match &args.config {
        Some(path) => autoscaler_config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => autoscaler_config::parse(REFERENCE_CONFIG, "reference-setup.toml (embedded)")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let trace = match &args.trace {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading trace {}", path.display()))?;
            Trace::parse(&text, &path.display().to_string())?
        }
        None => match args.synthetic_jobs {
            Some(n) => sim::synthetic::week(n, args.seed),
            None => Trace::parse(REFERENCE_TRACE, "release-week.csv (built-in)")?,
        },
    };
    check_args(args)?;
    let out = if let Some(sweep) = &args.sweep {
        match parse_sweep(sweep)? {
            Sweep::IdleCount(values) => run_sweep(&config, &trace, args, &values)?,
            Sweep::TargetWait(values) => run_target_sweep(&config, &trace, args, &values)?,
        }
    } else {
        let spec = spec(&config, args);
        let mut reports = if args.compare {
            sim::compare(&trace, &spec)
        } else {
            vec![sim::ours::run(&trace, &spec)]
        };
        if let Some(path) = &args.plot {
            let drawn: Vec<&PolicyReport> = reports
                .iter()
                .filter(|r| r.name == "autoscaler" || r.name == "docker+machine")
                .collect();
            std::fs::write(path, sim::plot::svg(&drawn))
                .with_context(|| format!("writing plot {}", path.display()))?;
        }
        for r in reports.iter_mut() {
            r.samples.clear();
        }
        match args.format {
            Format::Text => text_report(&config, &trace, &spec, &reports),
            Format::Json => json_report(&trace, &spec, &reports)?,
        }
    };
    print!("{out}");
    Ok(0)
}

fn check_args(args: &SimulateArgs) -> anyhow::Result<()> {
    if !(args.boot_median > 0.0 && args.boot_median.is_finite()) {
        bail!(
            "--boot-median must be a positive number of seconds, got {}",
            args.boot_median
        );
    }
    if !(args.boot_sigma >= 0.0 && args.boot_sigma.is_finite()) {
        bail!("--boot-sigma must be >= 0, got {}", args.boot_sigma);
    }
    if !(0.0..1.0).contains(&args.create_failure_rate) {
        bail!(
            "--create-failure-rate must be in [0, 1), got {}",
            args.create_failure_rate
        );
    }
    if args.delete_time < 0 || args.tail_hours < 0 {
        bail!("--delete-time and --tail-hours must not be negative");
    }
    Ok(())
}

/// Builds the simulation input from the config and the command line.
pub(crate) fn spec(config: &Config, args: &SimulateArgs) -> SimSpec {
    let mut pools: Vec<sim::SimPool> = config.pools.iter().map(settings::sim_pool).collect();
    if let Some(days) = args.forecast_days {
        for p in pools.iter_mut() {
            p.policy.forecast.days = days;
        }
    }
    SimSpec {
        pools,
        poll_interval: config.controller.poll_interval,
        cloud: CloudModel {
            boot_median_s: args.boot_median,
            boot_sigma: args.boot_sigma,
            boot_min_s: (args.boot_median / 3.0).min(30.0),
            create_failure_rate: args.create_failure_rate,
            delete_s: args.delete_time,
        },
        backoff: autoscaler_core::model::Backoff::default(),
        seed: args.seed,
        tail_s: args.tail_hours * 3600,
        sample_every_s: if args.plot.is_some() { 60 } else { 0 },
        webhook: config.gitlab.webhook_token.is_some(),
    }
}

/// What `--sweep` varies.
#[derive(Debug, Clone, PartialEq)]
enum Sweep {
    /// `idle_count=FROM..TO`: both policies at each value.
    IdleCount(Vec<u32>),
    /// `target_wait=FROM..TO[:STEP]`: this project in wait-target mode at each target,
    /// against docker+machine's `IdleCount` swept over 0..=8.
    TargetWait(Vec<std::time::Duration>),
}

fn parse_sweep(s: &str) -> anyhow::Result<Sweep> {
    let (key, range) = s.split_once('=').with_context(|| {
        format!(
            "--sweep `{s}`: expected KEY=FROM..TO, e.g. idle_count=0..8 or target_wait=30s..300s"
        )
    })?;
    let (a, b) = range
        .split_once("..")
        .with_context(|| format!("--sweep `{s}`: expected a range FROM..TO"))?;
    match key {
        "idle_count" => {
            let parse = |v: &str| {
                v.trim()
                    .parse::<u32>()
                    .with_context(|| format!("--sweep `{s}`: `{v}` is not a whole number"))
            };
            let (from, to) = (parse(a)?, parse(b.trim_start_matches('='))?);
            if from > to || to - from > 64 {
                bail!("--sweep `{s}`: need FROM <= TO and at most 65 points");
            }
            Ok(Sweep::IdleCount((from..=to).collect()))
        }
        "target_wait" => {
            let parse = |v: &str| {
                humantime::parse_duration(v.trim()).with_context(|| {
                    format!("--sweep `{s}`: `{v}` is not a duration (e.g. 30s, 5m)")
                })
            };
            let (b, step) = match b.split_once(':') {
                Some((b, step)) => (b, parse(step)?),
                None => (b, std::time::Duration::from_secs(30)),
            };
            let (from, to) = (parse(a)?, parse(b)?);
            if from.is_zero() || from > to || step.is_zero() {
                bail!("--sweep `{s}`: need 0 < FROM <= TO and a step above 0");
            }
            let mut values = Vec::new();
            let mut v = from;
            while v <= to && values.len() <= 64 {
                values.push(v);
                v += step;
            }
            if v <= to {
                bail!("--sweep `{s}`: at most 65 points");
            }
            Ok(Sweep::TargetWait(values))
        }
        _ => bail!("--sweep `{s}`: only `idle_count` or `target_wait` can be swept"),
    }
}

/// One sweep point.
#[derive(Debug, Serialize)]
struct SweepPoint {
    idle_count: u32,
    autoscaler: Figures,
    docker_machine: Figures,
}

/// Whether a docker+machine point is dominated as the trade-off target asks.
#[derive(Debug, Serialize)]
struct Dominance {
    docker_machine_idle_count: u32,
    docker_machine_p95_s: f64,
    docker_machine_vm_hours: f64,
    /// Cheapest autoscaler point with a p95 no longer, if any.
    best_autoscaler_idle_count: Option<u32>,
    best_vm_hours_ratio: Option<f64>,
    /// VM-hours ratio <= 0.9 with p95 no longer.
    met: bool,
}

fn run_sweep(
    config: &Config,
    trace: &Trace,
    args: &SimulateArgs,
    values: &[u32],
) -> anyhow::Result<String> {
    let mut points = Vec::new();
    for &v in values {
        let s = spec(&with_idle_count(config, v), args);
        points.push(SweepPoint {
            idle_count: v,
            autoscaler: sim::ours::run(trace, &s).total,
            docker_machine: sim::dm::run(trace, &s).total,
        });
    }
    let dominance: Vec<Dominance> = points
        .iter()
        .map(|d| {
            let best = points
                .iter()
                .filter(|o| o.autoscaler.wait_p95_s <= d.docker_machine.wait_p95_s)
                .min_by(|a, b| a.autoscaler.vm_hours.total_cmp(&b.autoscaler.vm_hours));
            let ratio = best.map(|b| b.autoscaler.vm_hours / d.docker_machine.vm_hours);
            Dominance {
                docker_machine_idle_count: d.idle_count,
                docker_machine_p95_s: d.docker_machine.wait_p95_s,
                docker_machine_vm_hours: d.docker_machine.vm_hours,
                best_autoscaler_idle_count: best.map(|b| b.idle_count),
                best_vm_hours_ratio: ratio,
                met: ratio.is_some_and(|r| r <= 0.9),
            }
        })
        .collect();
    if let Some(path) = &args.plot {
        let ours: Vec<sim::plot::TradeoffPoint> = points
            .iter()
            .map(|p| plot_point(&p.autoscaler, p.idle_count.to_string()))
            .collect();
        let dm: Vec<sim::plot::TradeoffPoint> = points
            .iter()
            .map(|p| plot_point(&p.docker_machine, p.idle_count.to_string()))
            .collect();
        let title = format!("idle_count swept on {}", trace.name);
        std::fs::write(
            path,
            sim::plot::tradeoff_svg(
                &title,
                &[
                    ("autoscaler (idle_count)", &ours),
                    ("docker+machine (idle_count)", &dm),
                ],
            ),
        )
        .with_context(|| format!("writing plot {}", path.display()))?;
    }
    Ok(match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                trace: &'a str,
                jobs: usize,
                sweep: &'a [SweepPoint],
                dominance: &'a [Dominance],
            }
            let out = Out {
                trace: &trace.name,
                jobs: trace.jobs.len(),
                sweep: &points,
                dominance: &dominance,
            };
            serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
        }
        Format::Text => {
            let mut o = String::new();
            let _ = writeln!(
                o,
                "sweep of idle_count on {} ({} jobs); idle_count is set in the pool and in every period that sets it{}",
                trace.name,
                trace.jobs.len(),
                if config.pools.iter().any(|p| p.policy.target_wait.is_some()) {
                    "; ours is in wait-target mode, where idle_count is the reserve's floor"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                o,
                "{:>10} | {:>10} {:>10} {:>9} | {:>10} {:>10} {:>9}",
                "idle_count",
                "ours p95 s",
                "ours VM-h",
                "ours idle",
                "d+m p95 s",
                "d+m VM-h",
                "d+m idle"
            );
            for p in &points {
                let _ = writeln!(
                    o,
                    "{:>10} | {:>10.0} {:>10.1} {:>8.0}% | {:>10.0} {:>10.1} {:>8.0}%",
                    p.idle_count,
                    p.autoscaler.wait_p95_s,
                    p.autoscaler.vm_hours,
                    p.autoscaler.idle_share * 100.0,
                    p.docker_machine.wait_p95_s,
                    p.docker_machine.vm_hours,
                    p.docker_machine.idle_share * 100.0
                );
            }
            let _ = writeln!(
                o,
                "\nfor each docker+machine point, the cheapest autoscaler point with a p95 no longer (target: VM-hours <= 0.9x):"
            );
            for d in &dominance {
                let _ = writeln!(
                    o,
                    "  d+m idle_count={:<2} p95 {:>5.0} s {:>7.1} VM-h -> {}",
                    d.docker_machine_idle_count,
                    d.docker_machine_p95_s,
                    d.docker_machine_vm_hours,
                    match (d.best_autoscaler_idle_count, d.best_vm_hours_ratio) {
                        (Some(i), Some(r)) => format!(
                            "autoscaler idle_count={i}: {r:.2}x VM-hours {}",
                            if d.met { "(met)" } else { "(NOT met)" }
                        ),
                        _ => "no autoscaler point with a p95 that short (NOT met)".to_string(),
                    }
                );
            }
            o
        }
    })
}

/// A sweep point for the trade-off plot.
fn plot_point(f: &Figures, label: String) -> sim::plot::TradeoffPoint {
    (f.vm_hours, f.wait_p95_s, label)
}

/// `config` with `idle_count` set in every pool and in every period that sets one.
fn with_idle_count(config: &Config, n: u32) -> Config {
    let mut c = config.clone();
    for pool in c.pools.iter_mut() {
        pool.policy.idle_count = n;
        for period in pool.periods.iter_mut() {
            if period.overrides.idle_count.is_some() {
                period.overrides.idle_count = Some(n);
            }
        }
    }
    c
}

/// One point of the wait-target sweep.
#[derive(Debug, Serialize)]
struct TargetPoint {
    target_wait_s: u64,
    autoscaler: Figures,
}

/// One docker+machine `IdleCount` point and whether a wait-target point dominates it.
#[derive(Debug, Serialize)]
struct DmPoint {
    idle_count: u32,
    docker_machine: Figures,
    /// The cheapest wait-target point whose p95 is no longer, if any.
    best_target_wait_s: Option<u64>,
    best_vm_hours_ratio: Option<f64>,
    /// That point is no worse in both p95 and VM-hours.
    dominated: bool,
}

/// docker+machine's `IdleCount` values the wait-target sweep is compared with.
const DM_IDLE_COUNTS: std::ops::RangeInclusive<u32> = 0..=8;

fn run_target_sweep(
    config: &Config,
    trace: &Trace,
    args: &SimulateArgs,
    values: &[std::time::Duration],
) -> anyhow::Result<String> {
    let mut ours = Vec::new();
    for &v in values {
        let mut c = config.clone();
        for pool in c.pools.iter_mut() {
            pool.policy.target_wait = Some(v);
            for period in pool.periods.iter_mut() {
                if period.overrides.target_wait.is_some() {
                    period.overrides.target_wait = Some(v);
                }
            }
        }
        ours.push(TargetPoint {
            target_wait_s: v.as_secs(),
            autoscaler: sim::ours::run(trace, &spec(&c, args)).total,
        });
    }
    let mut dm = Vec::new();
    for n in DM_IDLE_COUNTS {
        let d = sim::dm::run(trace, &spec(&with_idle_count(config, n), args)).total;
        let best = ours
            .iter()
            .filter(|o| o.autoscaler.wait_p95_s <= d.wait_p95_s)
            .min_by(|a, b| a.autoscaler.vm_hours.total_cmp(&b.autoscaler.vm_hours));
        dm.push(DmPoint {
            idle_count: n,
            docker_machine: d,
            best_target_wait_s: best.map(|b| b.target_wait_s),
            best_vm_hours_ratio: best
                .map(|b| b.autoscaler.vm_hours / d.vm_hours.max(f64::MIN_POSITIVE)),
            dominated: best.is_some_and(|b| b.autoscaler.vm_hours <= d.vm_hours),
        });
    }
    // Wait-target points that some docker+machine point beats in both figures.
    let beaten: Vec<u64> = ours
        .iter()
        .filter(|o| {
            dm.iter().any(|d| {
                d.docker_machine.wait_p95_s <= o.autoscaler.wait_p95_s
                    && d.docker_machine.vm_hours <= o.autoscaler.vm_hours
                    && (d.docker_machine.wait_p95_s < o.autoscaler.wait_p95_s
                        || d.docker_machine.vm_hours < o.autoscaler.vm_hours)
            })
        })
        .map(|o| o.target_wait_s)
        .collect();
    if let Some(path) = &args.plot {
        let a: Vec<sim::plot::TradeoffPoint> = ours
            .iter()
            .map(|o| plot_point(&o.autoscaler, format!("{}s", o.target_wait_s)))
            .collect();
        let d: Vec<sim::plot::TradeoffPoint> = dm
            .iter()
            .map(|d| plot_point(&d.docker_machine, d.idle_count.to_string()))
            .collect();
        let title = format!("wait target vs IdleCount on {}", trace.name);
        std::fs::write(
            path,
            sim::plot::tradeoff_svg(
                &title,
                &[
                    ("autoscaler (target_wait)", &a),
                    ("docker+machine (IdleCount)", &d),
                ],
            ),
        )
        .with_context(|| format!("writing plot {}", path.display()))?;
    }
    Ok(match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                trace: &'a str,
                jobs: usize,
                autoscaler: &'a [TargetPoint],
                docker_machine: &'a [DmPoint],
                every_docker_machine_point_dominated: bool,
                autoscaler_points_beaten: &'a [u64],
            }
            serde_json::to_string_pretty(&Out {
                trace: &trace.name,
                jobs: trace.jobs.len(),
                autoscaler: &ours,
                docker_machine: &dm,
                every_docker_machine_point_dominated: dm.iter().all(|d| d.dominated),
                autoscaler_points_beaten: &beaten,
            })
            .unwrap_or_default()
                + "\n"
        }
        Format::Text => {
            let mut o = String::new();
            let _ = writeln!(
                o,
                "sweep of target_wait on {} ({} jobs): this project in wait-target mode (target_wait set in every pool and in every period that sets one) against docker+machine with IdleCount {}..={}",
                trace.name,
                trace.jobs.len(),
                DM_IDLE_COUNTS.start(),
                DM_IDLE_COUNTS.end()
            );
            let _ = writeln!(
                o,
                "{:>11} | {:>7} {:>7} {:>9} {:>9} {:>6}",
                "target_wait", "p95 s", "p99 s", "VM-h", "paid VM-h", "idle"
            );
            for p in &ours {
                let f = &p.autoscaler;
                let _ = writeln!(
                    o,
                    "{:>10}s | {:>7.0} {:>7.0} {:>9.1} {:>9.0} {:>5.0}%",
                    p.target_wait_s,
                    f.wait_p95_s,
                    f.wait_p99_s,
                    f.vm_hours,
                    f.paid_vm_hours.unwrap_or(0.0),
                    f.idle_share * 100.0
                );
            }
            let _ = writeln!(
                o,
                "\n{:>10} | {:>7} {:>7} {:>9} | cheapest wait-target point with a p95 no longer",
                "IdleCount", "p95 s", "p99 s", "VM-h"
            );
            for d in &dm {
                let f = &d.docker_machine;
                let _ = writeln!(
                    o,
                    "{:>10} | {:>7.0} {:>7.0} {:>9.1} | {}",
                    d.idle_count,
                    f.wait_p95_s,
                    f.wait_p99_s,
                    f.vm_hours,
                    match (d.best_target_wait_s, d.best_vm_hours_ratio) {
                        (Some(t), Some(r)) => format!(
                            "target_wait {t}s: {r:.2}x VM-hours ({})",
                            if d.dominated {
                                "dominated"
                            } else {
                                "NOT dominated"
                            }
                        ),
                        _ => "none (NOT dominated)".to_string(),
                    }
                );
            }
            let _ = writeln!(
                o,
                "\nevery docker+machine point dominated: {}; wait-target points some docker+machine point beats: {}",
                if dm.iter().all(|d| d.dominated) {
                    "yes"
                } else {
                    "no"
                },
                if beaten.is_empty() {
                    "none".to_string()
                } else {
                    beaten
                        .iter()
                        .map(|t| format!("{t}s"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            o
        }
    })
}

fn text_report(config: &Config, trace: &Trace, spec: &SimSpec, reports: &[PolicyReport]) -> String {
    let mut o = String::new();
    let first = trace.jobs.first().map(|j| j.submitted.to_rfc3339());
    let last = trace.jobs.last().map(|j| j.submitted.to_rfc3339());
    let _ = writeln!(
        o,
        "trace {}: {} jobs from {} to {}; seed {}; boot median {:.0} s (log-normal sigma {}); poll every {}",
        trace.name,
        trace.jobs.len(),
        first.unwrap_or_default(),
        last.unwrap_or_default(),
        spec.seed,
        spec.cloud.boot_median_s,
        spec.cloud.boot_sigma,
        humantime::format_duration(spec.poll_interval)
    );
    let _ = writeln!(
        o,
        "stage arrivals are replayed as given (no stage dependencies modelled)"
    );
    if let Some(first) = trace.jobs.first() {
        for pool in &config.pools {
            let _ = writeln!(
                o,
                "pool {} at trace start: {}",
                pool.name,
                settings::period_summary(pool, first.submitted)
            );
        }
    }
    let unrunnable = reports.first().map_or(0, |r| r.unrunnable);
    if unrunnable > 0 {
        let _ = writeln!(
            o,
            "{unrunnable} job(s) match no pool's tags and are left out"
        );
    }
    let bound = reports.iter().find(|r| r.name == "clairvoyant");
    let _ = writeln!(o);
    table(
        &mut o,
        "all pools",
        reports.iter().map(|r| (&r.name, &r.total)).collect(),
        bound.map(|b| &b.total),
    );
    for (i, pool) in config.pools.iter().enumerate() {
        let rows = reports
            .iter()
            .filter_map(|r| r.pools.get(i).map(|(_, f)| (&r.name, f)))
            .collect();
        let b = bound.and_then(|b| b.pools.get(i).map(|(_, f)| f));
        let _ = writeln!(o);
        table(&mut o, &format!("pool {}", pool.name), rows, b);
    }
    for r in reports {
        if r.killed_jobs > 0 {
            let _ = writeln!(
                o,
                "\nWARNING: {} refused to delete a busy VM {} times",
                r.name, r.killed_jobs
            );
        }
    }
    o
}

fn table(o: &mut String, title: &str, cols: Vec<(&String, &Figures)>, bound: Option<&Figures>) {
    let _ = write!(o, "{title:<24}");
    for (name, _) in &cols {
        let _ = write!(o, " {name:>15}");
    }
    let _ = writeln!(o);
    type Row = (&'static str, fn(&Figures) -> String);
    let rows: [Row; 14] = [
        ("jobs", |f| f.jobs.to_string()),
        ("unstarted at end", |f| f.unstarted.to_string()),
        ("wait p50 (s)", |f| format!("{:.0}", f.wait_p50_s)),
        ("wait p95 (s)", |f| format!("{:.0}", f.wait_p95_s)),
        ("wait p99 (s)", |f| format!("{:.0}", f.wait_p99_s)),
        ("wait max (s)", |f| format!("{:.0}", f.wait_max_s)),
        ("VM-hours", |f| format!("{:.1}", f.vm_hours)),
        ("paid VM-hours (billing)", |f| {
            f.paid_vm_hours.map_or("-".into(), |p| format!("{p:.0}"))
        }),
        ("busy VM-hours", |f| format!("{:.1}", f.busy_vm_hours)),
        ("utilisation", |f| format!("{:.1}%", f.utilisation * 100.0)),
        ("idle share of VM-hours", |f| {
            format!("{:.1}%", f.idle_share * 100.0)
        }),
        ("peak VMs", |f| f.peak_vms.to_string()),
        ("creates", |f| f.creates.to_string()),
        ("deletes", |f| f.deletes.to_string()),
    ];
    for (label, get) in rows {
        let _ = write!(o, "{label:<24}");
        for (_, f) in &cols {
            let _ = write!(o, " {:>15}", get(f));
        }
        let _ = writeln!(o);
    }
    if let Some(b) = bound.filter(|b| b.vm_hours > 0.0) {
        let _ = write!(o, "{:<24}", "VM-hours / clairvoyant");
        for (_, f) in &cols {
            let _ = write!(o, " {:>14.2}x", f.vm_hours / b.vm_hours);
        }
        let _ = writeln!(o);
    }
}

fn json_report(trace: &Trace, spec: &SimSpec, reports: &[PolicyReport]) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Policy<'a> {
        name: &'a str,
        #[serde(flatten)]
        total: &'a Figures,
        vm_hours_vs_clairvoyant: Option<f64>,
        pools: Vec<PoolFig<'a>>,
    }
    #[derive(Serialize)]
    struct PoolFig<'a> {
        name: &'a str,
        #[serde(flatten)]
        figures: &'a Figures,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        trace: &'a str,
        jobs: usize,
        seed: u64,
        boot_median_s: f64,
        poll_interval_s: u64,
        policies: Vec<Policy<'a>>,
    }
    let bound = reports
        .iter()
        .find(|r| r.name == "clairvoyant")
        .map(|b| b.total.vm_hours)
        .filter(|v| *v > 0.0);
    let out = Out {
        trace: &trace.name,
        jobs: trace.jobs.len(),
        seed: spec.seed,
        boot_median_s: spec.cloud.boot_median_s,
        poll_interval_s: spec.poll_interval.as_secs(),
        policies: reports
            .iter()
            .map(|r| Policy {
                name: &r.name,
                total: &r.total,
                vm_hours_vs_clairvoyant: bound.map(|b| r.total.vm_hours / b),
                pools: r
                    .pools
                    .iter()
                    .map(|(n, f)| PoolFig {
                        name: n,
                        figures: f,
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&out)? + "\n")
}
