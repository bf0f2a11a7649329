//! `autoscaler run`, `plan` and `status`: the controller against the real GitLab and
//! OpenStack named in the configuration.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use autoscaler_config::{Config, ProcessEnv};
use serde::Serialize;

use super::{ConfigArg, Format, PlanArgs, RunArgs};
use crate::reconcile::{Reconciler, SystemClock};
use crate::settings;
use autoscaler_core::model::{Observed, Timestamp};
use autoscaler_core::plan::{Plan, VmState, idle_since};
use autoscaler_core::ports::{Cloud, ControllerId, GitLab};
use autoscaler_gitlab::{GitLabAdapter, GitLabSettings};
use autoscaler_openstack::{AuthSettings, ClientOptions, OpenStack, resolve_auth};

/// Connects to GitLab and OpenStack as the configuration says (what `run`, `plan` and
/// `status` use; scenario tests use it too).
///
/// # Errors
///
/// A secret cannot be read, GitLab refuses the token or stays unreachable, or the
/// OpenStack credentials cannot be resolved.
pub async fn connect(config: &Config) -> anyhow::Result<(GitLabAdapter, OpenStack)> {
    let controller = ControllerId::new(config.controller.id.clone())
        .map_err(|e| anyhow::anyhow!("controller.id: {e}"))?;
    let token = config
        .gitlab
        .token
        .resolve(&ProcessEnv)
        .context("reading the GitLab token")?;
    let list_all = config.pools.iter().any(|p| {
        matches!(
            p.runner.runner_type,
            autoscaler_config::RunnerType::Instance
        )
    });
    let settings = GitLabSettings::from_config(&config.gitlab, controller.clone(), list_all);
    let gitlab = GitLabAdapter::connect(settings, token)
        .await
        .with_context(|| format!("connecting to GitLab at {}", config.gitlab.url))?;
    let auth = match &config.openstack {
        Some(os) => AuthSettings::from(os),
        None => AuthSettings::default(),
    };
    let resolved = resolve_auth(&auth, &ProcessEnv).context("OpenStack credentials")?;
    let cloud = OpenStack::new(resolved, controller, ClientOptions::default())
        .context("building the OpenStack client")?;
    Ok((gitlab, cloud))
}

fn load(args: &ConfigArg) -> anyhow::Result<Arc<Config>> {
    autoscaler_config::load(&args.config)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `autoscaler run`: reconcile until SIGTERM or Ctrl-C, serving the HTTP endpoint.
pub(super) fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let Some(path) = &args.config else {
        anyhow::bail!("--config is required (or --dev for the embedded demo)");
    };
    // SIGTERM and SIGINT are caught from here on: one that arrives while the config loads,
    // while connecting or during the first tick ends the controller in order (and drains
    // with --drain-on-exit) instead of killing it.
    let rt = runtime()?;
    let shutdown = {
        let _entered = rt.enter();
        shutdown_signal().context("installing the SIGTERM/SIGINT handler")?
    };
    let config = load(&ConfigArg {
        config: path.clone(),
    })?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "configuration");
    }
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.controller.listen)
            .await
            .with_context(|| format!("listening on {}", config.controller.listen))?;
        serve_and_reconcile(
            config,
            listener,
            ControllerOptions {
                drain_on_exit: args.drain_on_exit,
                drain_timeout: args.drain_timeout,
                reports: None,
                memory: None,
            },
            shutdown,
        )
        .await?;
        Ok(0)
    })
}

/// How [`serve_and_reconcile`] runs.
#[derive(Debug)]
pub struct ControllerOptions {
    /// After `shutdown`, drain and delete every VM.
    pub drain_on_exit: bool,
    /// How long that drain may take.
    pub drain_timeout: std::time::Duration,
    /// Where the reconciler publishes its tick reports (`run --dev` reads them too).
    pub reports: Option<tokio::sync::watch::Sender<Option<Arc<crate::tick::TickReport>>>>,
    /// Where the durable memory is kept instead of `[controller] state_dir` (`run --dev`:
    /// in memory, for a world that starts empty).
    pub memory: Option<Arc<dyn autoscaler_core::memory::StateStore>>,
}

/// The controller as `run` starts it: connect, serve the HTTP endpoint on `listener`,
/// reconcile until `shutdown` completes, then (optionally) drain.
///
/// # Errors
///
/// A secret cannot be read, GitLab or OpenStack cannot be reached at start, or VMs are
/// left after the drain timeout.
pub async fn serve_and_reconcile(
    config: Arc<Config>,
    listener: tokio::net::TcpListener,
    options: ControllerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let webhook_token = match &config.gitlab.webhook_token {
        Some(source) => Some(
            source
                .resolve(&ProcessEnv)
                .context("reading the webhook token")?,
        ),
        None => None,
    };
    tokio::pin!(shutdown);
    let (gitlab, cloud) = tokio::select! {
        connected = connect(&config) => connected?,
        () = &mut shutdown => {
            tracing::warn!("shutdown requested while connecting to GitLab and OpenStack: nothing started, nothing to drain");
            return Ok(());
        }
    };
    let (telemetry, nudges) = crate::endpoint::Telemetry::new(
        &config.controller.id,
        config.controller.poll_interval,
        webhook_token,
    );
    let listen = listener.local_addr()?;
    let app = crate::endpoint::router(telemetry.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP endpoint stopped");
        }
    });
    // One channel: the reconciler publishes each tick's report, the endpoint (and
    // `run --dev`, when it passed its own sender) read it.
    let reports = options
        .reports
        .unwrap_or_else(|| tokio::sync::watch::channel(None).0);
    let follower = telemetry.follow(reports.subscribe());
    let mut reconciler =
        Reconciler::new(gitlab, cloud, Arc::clone(&config), Arc::new(SystemClock), 8)?
            .with_reports(reports);
    match &config.controller.state_dir {
        _ if options.memory.is_some() => {
            if let Some(store) = options.memory {
                reconciler = reconciler.with_store(store);
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating state_dir {}", dir.display()))?;
            reconciler =
                reconciler.with_store(Arc::new(autoscaler_core::memory::FileStore::in_dir(dir)));
        }
        None => tracing::warn!(
            "no [controller] state_dir: creates in flight are forgotten on a restart (see docs/operations.md)"
        ),
    }
    tracing::info!(
        controller = %config.controller.id,
        pools = config.pools.len(),
        listen = %listen,
        "controller started"
    );
    reconciler
        .run(config.controller.poll_interval, shutdown, Some(nudges))
        .await;
    let result = if options.drain_on_exit {
        tracing::info!("draining every VM before exit");
        let left = reconciler
            .drain_all(config.controller.poll_interval, options.drain_timeout)
            .await;
        if left > 0 {
            Err(anyhow::anyhow!(
                "{left} VM(s) still exist after the drain timeout"
            ))
        } else {
            Ok(())
        }
    } else {
        Ok(())
    };
    server.abort();
    follower.abort();
    result
}

/// Installs the SIGTERM and SIGINT handlers now (inside a runtime) and returns a future
/// that completes on the first of them. Registering at once matters: a signal that comes
/// before the future is first polled is still seen, where a lazily registered handler
/// would leave the default action (exit 143) in place until then.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutdown signal received");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The read-only reconciler of `plan` and `status`: it starts from the memory the running
/// controller keeps in `state_dir` (failures, backoff and breaker, learned bursts, creates
/// in flight, runners seen missing), so it decides as `run` does; it never writes it.
fn observer<G: GitLab + 'static, C: Cloud + 'static>(
    gitlab: G,
    cloud: C,
    config: &Arc<Config>,
) -> anyhow::Result<Reconciler<G, C>> {
    let r = Reconciler::read_only(gitlab, cloud, Arc::clone(config), Arc::new(SystemClock))?;
    Ok(match &config.controller.state_dir {
        Some(dir) => r.with_store(Arc::new(autoscaler_core::memory::FileStore::in_dir(dir))),
        None => r,
    })
}

/// `autoscaler plan`: what `run` would do now; exit 0 no change, 2 changes pending.
pub(super) fn plan(args: &PlanArgs) -> anyhow::Result<i32> {
    let config = load(&args.config)?;
    let at = match &args.at {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| {
                    format!("--at `{s}`: expected RFC 3339, e.g. 2026-11-24T02:00:00+01:00")
                })?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    runtime()?.block_on(async {
        let (gitlab, cloud) = connect(&config).await?;
        let mut r = observer(gitlab, cloud, &config)?;
        let (obs, now) = r.observe().await?;
        let when = at.unwrap_or(now);
        let policy = settings::policy_at(&config, when);
        let plan = autoscaler_core::plan::plan(&obs, &policy, when);
        let gitlab_error = r.gitlab_down().map(|o| o.error.clone());
        let out = match args.format {
            Format::Text => plan_text(&config, &obs, &plan, when, gitlab_error.as_deref()),
            Format::Json => {
                let mut j = plan_json(&config, &obs, &plan, when);
                j.gitlab_error = gitlab_error.clone();
                serde_json::to_string_pretty(&j)? + "\n"
            }
        };
        print!("{out}");
        if let Some(why) = gitlab_error {
            // Not a plan anyone can rely on: an error for scripts and monitoring.
            eprintln!("error: GitLab could not be read: {why}");
            return Ok(1);
        }
        Ok(if plan.is_empty() { 0 } else { 2 })
    })
}

/// Text rendering of a plan: per pool the period, demand, VMs by state and actions.
pub fn plan_text(
    config: &Config,
    obs: &Observed,
    plan: &Plan,
    at: Timestamp,
    gitlab_error: Option<&str>,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "plan at {}", at.to_rfc3339());
    if plan.gitlab_unavailable {
        let why = gitlab_error.map(|e| format!(" ({e})")).unwrap_or_default();
        let _ = writeln!(
            o,
            "GitLab could not be read{why}: no action is taken; VMs whose runner cannot be checked are shown as unknown"
        );
    }
    for (pool, summary) in config.pools.iter().zip(&plan.pools) {
        let _ = writeln!(o, "\npool {}", pool.name);
        let _ = writeln!(o, "  {}", settings::period_summary(pool, at));
        let _ = writeln!(
            o,
            "  demand: {} pending + {} running; expected burst {}; target {} VM(s)",
            summary.pending,
            summary.running,
            obs.expected.get(&pool.name).copied().unwrap_or(0),
            summary.target
        );
        if let (Some(r), Some(wait)) = (&summary.reserve, pool.policy_at(at).policy.target_wait) {
            let _ = writeln!(
                o,
                "  wait target: {}% of jobs within {}s; {}",
                pool.target_percentile,
                wait.as_secs(),
                r.explain()
            );
        }
        let states: Vec<String> = VmState::ALL
            .iter()
            .filter_map(|s| {
                let n = summary.count(*s);
                (n > 0).then(|| format!("{} {}", n, s.label()))
            })
            .collect();
        let _ = writeln!(
            o,
            "  VMs: {}",
            if states.is_empty() {
                "none".to_string()
            } else {
                states.join(", ")
            }
        );
        if let Some(f) = obs.failures.get(&pool.name).filter(|f| f.consecutive > 0) {
            let last = f
                .last_failure_at
                .map(|t| format!(", the last at {}", t.to_rfc3339()))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  create/boot failures: {} in a row{last}",
                f.consecutive
            );
        }
        for cap in &summary.caps {
            let _ = writeln!(o, "  growth held back: {cap}");
        }
        let actions: Vec<_> = plan
            .actions
            .iter()
            .filter(|a| action_pool(a) == Some(pool.name.as_str()))
            .collect();
        if actions.is_empty() {
            let _ = writeln!(o, "  no change");
        }
        for a in actions {
            let _ = writeln!(o, "  - {a} ({})", a.reason_label());
        }
    }
    let other: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| {
            !config
                .pools
                .iter()
                .any(|p| action_pool(a) == Some(p.name.as_str()))
        })
        .collect();
    if !other.is_empty() {
        let _ = writeln!(o, "\nother");
        for a in other {
            let _ = writeln!(o, "  - {a} ({})", a.reason_label());
        }
    }
    let _ = writeln!(o, "\n{} action(s) pending", plan.actions.len());
    o
}

fn action_pool(a: &autoscaler_core::plan::Action) -> Option<&str> {
    use autoscaler_core::plan::Action;
    match a {
        Action::Create { pool, .. }
        | Action::Pause { pool, .. }
        | Action::Unpause { pool, .. }
        | Action::Delete { pool, .. } => Some(pool),
        Action::DeleteRunner { pool, .. } => pool.as_deref(),
    }
}

#[derive(Serialize)]
struct PlanJson {
    at: String,
    gitlab_unavailable: bool,
    /// Why GitLab could not be read (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    gitlab_error: Option<String>,
    pools: Vec<PoolJson>,
    actions: Vec<ActionJson>,
}

#[derive(Serialize)]
struct PoolJson {
    name: String,
    period: Option<usize>,
    next_transition: Option<String>,
    idle_count: u32,
    limit: u32,
    pending: u32,
    running: u32,
    target: u32,
    vms: std::collections::BTreeMap<&'static str, u32>,
    caps: Vec<String>,
    /// The learned burst expected soon (from the running controller's memory).
    expected_burst: u32,
    /// Consecutive create/boot failures, and the last one (backoff and breaker).
    failures: u32,
    last_failure_at: Option<String>,
    /// Wait-target mode: the reserve the forecast asked for and why.
    reserve: Option<ReserveJson>,
}

/// [`autoscaler_core::reserve::Reserve`] for `plan --format json`.
#[derive(Serialize)]
struct ReserveJson {
    target_wait_s: u64,
    target_percentile: u32,
    slots: u32,
    rate_per_hour: f64,
    history_days: f64,
    boot_s: u64,
    boot_samples: u32,
    lead_s: u64,
    late_share: f64,
    allowed_miss_share: f64,
    threshold_jobs_per_hour: Option<f64>,
    surplus_kept_s: u64,
    explanation: String,
}

#[derive(Serialize)]
struct ActionJson {
    kind: &'static str,
    reason: &'static str,
    pool: Option<String>,
    description: String,
}

fn plan_json(config: &Config, obs: &Observed, plan: &Plan, at: Timestamp) -> PlanJson {
    PlanJson {
        at: at.to_rfc3339(),
        gitlab_unavailable: plan.gitlab_unavailable,
        gitlab_error: None,
        pools: config
            .pools
            .iter()
            .zip(&plan.pools)
            .map(|(pool, s)| {
                let eff = pool.policy_at(at);
                PoolJson {
                    name: pool.name.clone(),
                    period: eff.period,
                    next_transition: pool.next_transition(at).map(|t| t.to_rfc3339()),
                    idle_count: eff.policy.idle_count,
                    limit: eff.policy.limit,
                    pending: s.pending,
                    running: s.running,
                    target: s.target,
                    vms: VmState::ALL
                        .iter()
                        .map(|st| (st.label(), s.count(*st)))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                    caps: s.caps.iter().map(ToString::to_string).collect(),
                    expected_burst: obs.expected.get(&pool.name).copied().unwrap_or(0),
                    failures: obs.failures.get(&pool.name).map_or(0, |f| f.consecutive),
                    last_failure_at: obs
                        .failures
                        .get(&pool.name)
                        .and_then(|f| f.last_failure_at)
                        .map(|t| t.to_rfc3339()),
                    reserve: s
                        .reserve
                        .as_ref()
                        .zip(eff.policy.target_wait)
                        .map(|(r, wait)| ReserveJson {
                            target_wait_s: wait.as_secs(),
                            target_percentile: pool.target_percentile,
                            slots: r.slots,
                            rate_per_hour: r.rate_per_hour,
                            history_days: r.history_days,
                            boot_s: r.boot.as_secs(),
                            boot_samples: r.boot_samples,
                            lead_s: r.lead.as_secs(),
                            late_share: r.late,
                            allowed_miss_share: r.allowed_miss.min(1.0),
                            threshold_jobs_per_hour: r.threshold,
                            surplus_kept_s: r.keep.as_secs(),
                            explanation: r.explain(),
                        }),
                }
            })
            .collect(),
        actions: plan
            .actions
            .iter()
            .map(|a| ActionJson {
                kind: a.kind(),
                reason: a.reason_label(),
                pool: action_pool(a).map(String::from),
                description: a.to_string(),
            })
            .collect(),
    }
}

/// `autoscaler status`: a `docker-machine ls`-like table.
pub(super) fn status(args: &PlanArgs) -> anyhow::Result<i32> {
    let config = load(&args.config)?;
    runtime()?.block_on(async {
        let (gitlab, cloud) = connect(&config).await?;
        let mut r = observer(gitlab, cloud, &config)?;
        let (obs, now) = r.observe().await?;
        let policy = settings::policy_at(&config, now);
        let plan = autoscaler_core::plan::plan(&obs, &policy, now);
        let rows = status_rows(&obs, &plan, now);
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
            Format::Text => print!("{}", status_text(&rows)),
        }
        Ok(0)
    })
}

/// One line of `status`.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    /// Server name.
    pub name: String,
    /// Pool.
    pub pool: String,
    /// Planner state (booting, idle, busy, draining, ...).
    pub state: &'static str,
    /// First IP address, `-` when none yet.
    pub address: String,
    /// GitLab runner id.
    pub runner: Option<u64>,
    /// `active`, `paused`, `never_contacted` or `missing`.
    pub runner_status: &'static str,
    /// Jobs the runner has run (for `max_builds`).
    pub jobs_run: u32,
    /// Seconds since the server was created.
    pub age_s: i64,
    /// Seconds since the runner last finished a job (idle runners only).
    pub idle_s: Option<i64>,
}

/// Rows of `status`, in planning order.
pub fn status_rows(obs: &Observed, plan: &Plan, now: Timestamp) -> Vec<StatusRow> {
    let state_of = |id: &autoscaler_core::model::VmId| {
        plan.pools
            .iter()
            .flat_map(|p| p.vms.iter())
            .chain(plan.unknown_pool_vms.iter())
            .find(|(v, _)| v == id)
            .map_or("unknown", |(_, s)| s.label())
    };
    obs.vms
        .iter()
        .map(|vm| {
            let runner_status = match &vm.runner {
                None => "missing",
                Some(r) if r.paused => "paused",
                Some(r) if r.contacted_at.is_none() => "never_contacted",
                Some(_) => "active",
            };
            let busy = vm.runner.as_ref().is_some_and(|r| r.running_jobs > 0);
            StatusRow {
                name: vm.name.clone(),
                pool: vm.pool.clone(),
                state: state_of(&vm.id),
                address: vm.address.clone().unwrap_or_else(|| "-".into()),
                runner: vm.runner.as_ref().map(|r| r.id),
                runner_status,
                jobs_run: vm.runner.as_ref().map_or(0, |r| r.jobs_run),
                age_s: (now - vm.created_at).num_seconds(),
                idle_s: (!busy && vm.runner.is_some())
                    .then(|| (now - idle_since(vm)).num_seconds()),
            }
        })
        .collect()
}

/// The `status` table.
pub fn status_text(rows: &[StatusRow]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<40} {:<16} {:<9} {:<16} {:>8} {:<16} {:>5} {:>8} {:>8}",
        "NAME", "POOL", "STATE", "ADDRESS", "RUNNER", "RUNNER STATUS", "JOBS", "AGE", "IDLE"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "{:<40} {:<16} {:<9} {:<16} {:>8} {:<16} {:>5} {:>8} {:>8}",
            r.name,
            r.pool,
            r.state,
            r.address,
            r.runner.map_or("-".into(), |id| id.to_string()),
            r.runner_status,
            r.jobs_run,
            human(r.age_s),
            r.idle_s.map_or("-".into(), human)
        );
    }
    if rows.is_empty() {
        let _ = writeln!(o, "(no VMs)");
    }
    o
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Fails on the code before issue 11: `plan` said neither why GitLab could not be read
    /// nor that the VMs it cannot check are unknown (it labelled a busy VM "failed").
    #[test]
    fn plan_says_which_forecast_sized_a_wait_target_reserve() {
        let config = autoscaler_config::parse(
            include_str!("../../../docs/examples/cost-optimised.toml"),
            "cost-optimised.toml",
        )
        .unwrap();
        let at = chrono::Utc::now();
        let policy = crate::settings::policy_at(&config, at);
        let mut memory = autoscaler_core::memory::Memory::default();
        for k in 0..400i64 {
            // Two days of a job every 7 minutes.
            let t = at - chrono::TimeDelta::minutes(7 * k + 1);
            memory.arrivals.record("non-privileged", t);
        }
        let obs = Observed {
            pending: Some(Vec::new()),
            reserve: memory.reserve(&policy, at),
            ..Observed::default()
        };
        let plan = autoscaler_core::plan::plan(&obs, &policy, at);
        let text = plan_text(&config, &obs, &plan, at, None);
        assert!(
            text.contains("wait target: 95% of jobs within 60s; reserve "),
            "{text}"
        );
        assert!(text.contains("days of history"), "{text}");
        let json = serde_json::to_value(plan_json(&config, &obs, &plan, at)).unwrap();
        let r = &json["pools"][0]["reserve"];
        assert_eq!(r["target_wait_s"], 60, "{json}");
        assert!(r["history_days"].as_f64().unwrap() > 1.9, "{json}");
        assert!(r["explanation"].as_str().unwrap().starts_with("reserve "));
    }

    #[test]
    fn plan_text_says_why_gitlab_could_not_be_read() {
        let config = autoscaler_config::parse(
            include_str!("../../../docs/examples/reference-setup.toml"),
            "reference-setup.toml",
        )
        .unwrap();
        let obs = Observed::default();
        let plan = Plan {
            gitlab_unavailable: true,
            ..Plan::default()
        };
        let at = chrono::Utc::now();
        let text = plan_text(
            &config,
            &obs,
            &plan,
            at,
            Some("gitlab unreachable: connection refused"),
        );
        assert!(
            text.contains(
                "GitLab could not be read (gitlab unreachable: connection refused): no action is taken"
            ),
            "{text}"
        );
        assert!(text.contains("shown as unknown"), "{text}");
    }
}
