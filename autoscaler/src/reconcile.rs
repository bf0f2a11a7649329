//! The reconcile loop: one tick = observe → plan → apply.
//!
//! * **Observe** reads GitLab (pending jobs, owned runners) and the cloud (owned servers,
//!   quota) concurrently and joins servers with runners into the planner's [`Observed`].
//!   When GitLab cannot be read, `Observed::pending` is `None` and the planner acts on
//!   nothing. When the cloud cannot be listed the tick fails: nothing is planned blind.
//! * **Plan** is the pure [`crate::plan::plan`].
//! * **Apply** runs the actions with bounded concurrency. A create makes the runner first,
//!   renders that VM's user-data with its token, then creates the server; if the server
//!   create fails, the runner is deleted. A delete pauses the runner, re-checks that it runs
//!   no job, deletes the runner, then the server; 404s count as done.
//!
//! Crash safety comes from the ports' idempotence and from planning on what exists: a runner
//! whose server was never created is an orphan runner, a server whose runner is gone is a
//! `runner_missing` server; the planner removes both after the boot grace.
//!
//! Time is read through [`Clock`] once per tick and passed to the planner.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use autoscaler_bootstrap as bs;
use autoscaler_config::Config;
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::forecast::{ArrivalHistory, ForecastSettings};
use crate::model::{CloudPhase, FailureHistory, Observed, QuotaHeadroom, Timestamp, Vm, VmId};
use crate::plan::{Action, Plan, plan};
use crate::ports::{
    Cloud, CloudServer, CloudStatus, ControllerId, CreateRunner, CreateServer, GitLab, OwnedRunner,
    ServerId, ServerTemplateSpec,
};
use crate::settings;

/// A GitLab port that can be told a project has a new pending job (from the job webhook),
/// so its next poll of that project comes at once.
pub trait Nudge {
    /// Makes `project` due for polling.
    fn nudge(&self, project: u64) -> impl std::future::Future<Output = ()> + Send;
}

impl Nudge for crate::gitlab::GitLabAdapter {
    async fn nudge(&self, project: u64) {
        self.nudge_project(project).await;
    }
}

#[cfg(any(test, feature = "testing"))]
impl Nudge for crate::testing::gitlab::FakeGitLab {
    async fn nudge(&self, _project: u64) {}
}

/// Source of wall-clock time: read once per tick.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that follows `tokio::time` from a fixed epoch, for paused-time tests.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: Timestamp,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `epoch` now.
    pub fn new(epoch: Timestamp) -> Self {
        TokioClock {
            epoch,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.epoch
            + chrono::Duration::from_std(self.started.elapsed()).unwrap_or(chrono::Duration::MAX)
    }
}

/// What one tick did, for the summary log line, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// When the tick observed.
    pub at: Option<Timestamp>,
    /// Pending jobs seen (`None` = GitLab unavailable).
    pub pending: Option<usize>,
    /// Owned servers seen.
    pub servers: usize,
    /// Owned runners seen.
    pub runners: usize,
    /// Actions planned, by kind.
    pub planned: BTreeMap<&'static str, u32>,
    /// Actions that failed, with a message (no secrets).
    pub failures: Vec<String>,
    /// Deletes skipped because the runner still ran a job at the re-check.
    pub deletes_refused: u32,
}

/// Everything one pool's creates need, prepared once at start-up.
struct PoolRuntime {
    template: ServerTemplateSpec,
    bootstrap: bs::PoolBootstrap,
    metadata: BTreeMap<String, String>,
    create_runner: CreateRunner,
}

/// The controller's memory between ticks (all of it can be lost: it only tunes backoff and
/// the forecast).
#[derive(Debug, Default)]
struct State {
    failures: BTreeMap<String, FailureHistory>,
    history: ArrivalHistory,
    seen_jobs: BTreeSet<u64>,
    counted_failures: BTreeSet<String>,
    seq: u64,
}

/// The reconciler: ports, config, and state between ticks.
pub struct Reconciler<G, C> {
    gitlab: Arc<G>,
    cloud: Arc<C>,
    config: Arc<Config>,
    controller: ControllerId,
    clock: Arc<dyn Clock>,
    pools: BTreeMap<String, PoolRuntime>,
    limit: Arc<Semaphore>,
    state: State,
    telemetry: Option<crate::server::Telemetry>,
    /// Drain mode: every VM is removed (idle ones at once, busy ones after their job).
    draining: bool,
    /// Last plan, for `/status` and tests.
    pub last_plan: Option<Plan>,
    /// Receives every tick's observation and plan (`run --dev` draws its table from it).
    view: Option<tokio::sync::watch::Sender<Option<TickView>>>,
}

/// What one tick saw and decided.
#[derive(Debug, Clone)]
pub struct TickView {
    /// When the tick observed.
    pub at: Timestamp,
    /// What it observed.
    pub observed: Observed,
    /// What it planned (and then applied).
    pub plan: Plan,
    /// What applying did.
    pub summary: TickSummary,
}

impl<G, C> std::fmt::Debug for Reconciler<G, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("controller", &self.controller)
            .finish_non_exhaustive()
    }
}

impl<G: GitLab + 'static, C: Cloud + 'static> Reconciler<G, C> {
    /// Prepares a reconciler; the pools' S3 cache secrets and extra cloud-config files are
    /// read once, here.
    ///
    /// # Errors
    ///
    /// An invalid controller id, or a pool whose bootstrap secrets or files cannot be read.
    pub fn new(
        gitlab: G,
        cloud: C,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        Self::build(gitlab, cloud, config, clock, concurrency, true)
    }

    /// A reconciler that only observes and plans (`plan`, `status`): it reads no bootstrap
    /// secret, and its creates would fail, so never `tick` it.
    ///
    /// # Errors
    ///
    /// An invalid controller id.
    pub fn read_only(
        gitlab: G,
        cloud: C,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build(gitlab, cloud, config, clock, 1, false)
    }

    fn build(
        gitlab: G,
        cloud: C,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        concurrency: usize,
        prepare: bool,
    ) -> anyhow::Result<Self> {
        let controller = ControllerId::new(config.controller.id.clone())
            .map_err(|e| anyhow::anyhow!("controller id: {e}"))?;
        let mut pools = BTreeMap::new();
        for pool in config.pools.iter().filter(|_| prepare) {
            let bootstrap = settings::pool_bootstrap(pool, true)?;
            pools.insert(
                pool.name.clone(),
                PoolRuntime {
                    template: ServerTemplateSpec::from(&pool.server),
                    bootstrap,
                    metadata: pool.server.metadata.clone(),
                    create_runner: CreateRunner {
                        scope: pool.runner.runner_type.into(),
                        description: String::new(),
                        pool: pool.name.clone(),
                        tags: pool.runner.tags.clone(),
                        run_untagged: pool.runner.run_untagged,
                        ref_protected: matches!(
                            pool.runner.access_level,
                            autoscaler_config::AccessLevel::RefProtected
                        ),
                        locked: pool.runner.locked,
                        maximum_timeout: pool.runner.maximum_timeout.map(|d| d.as_secs()),
                    },
                },
            );
        }
        Ok(Reconciler {
            gitlab: Arc::new(gitlab),
            cloud: Arc::new(cloud),
            config,
            controller,
            clock,
            pools,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            state: State::default(),
            telemetry: None,
            draining: false,
            last_plan: None,
            view: None,
        })
    }

    /// Reports every tick to `telemetry` (metrics and `/status`).
    pub fn with_telemetry(mut self, telemetry: crate::server::Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Publishes every tick's observation, plan and summary on `view`.
    pub fn with_view(mut self, view: tokio::sync::watch::Sender<Option<TickView>>) -> Self {
        self.view = Some(view);
        self
    }

    /// The GitLab port (tests inspect their fakes through it).
    pub fn gitlab(&self) -> &G {
        &self.gitlab
    }

    /// The cloud port.
    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// Observes without acting: what `autoscaler plan` prints.
    ///
    /// # Errors
    ///
    /// The cloud could not be listed.
    pub async fn observe(&mut self) -> anyhow::Result<(Observed, Timestamp)> {
        let now = self.clock.now();
        let (pending, runners, servers, quota) = tokio::join!(
            self.gitlab.pending_jobs(),
            self.gitlab.owned_runners(),
            self.cloud.list_owned_servers(),
            self.cloud.quota()
        );
        let servers = servers.context("listing owned servers")?;
        let gitlab_ok = match (&pending, &runners) {
            (Ok(_), Ok(_)) => true,
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "gitlab unavailable this tick: no action");
                false
            }
        };
        let quota = match quota {
            Ok(q) => Some(QuotaHeadroom {
                instances: q
                    .max_instances
                    .map(|m| u32::try_from(m.saturating_sub(q.used_instances)).unwrap_or(u32::MAX)),
                cores: q.max_cores.map(|m| m.saturating_sub(q.used_cores)),
                ram_mb: q.max_ram_mb.map(|m| m.saturating_sub(q.used_ram_mb)),
            }),
            Err(e) => {
                warn!(error = %e, "quota unknown this tick");
                None
            }
        };
        let (pending, runners) = match (pending, runners) {
            (Ok(p), Ok(r)) if gitlab_ok => (Some(p), r),
            _ => (None, Vec::new()),
        };
        let mut obs = join(&servers, &runners, gitlab_ok);
        obs.quota = quota;
        if let Some(jobs) = &pending {
            self.learn(jobs, now);
        }
        obs.pending = pending;
        self.update_failures(&servers, &runners, now);
        obs.failures = self.state.failures.clone();
        for pool in &self.config.pools {
            let f = ForecastSettings {
                days: pool.forecast_days,
                lookahead: pool.forecast_lookahead,
            };
            let e = self.state.history.expected(&pool.name, now, f);
            if e > 0 {
                obs.expected.insert(pool.name.clone(), e);
            }
        }
        Ok((obs, now))
    }

    /// One tick: observe, plan, apply.
    ///
    /// # Errors
    ///
    /// The cloud could not be listed (nothing was done).
    #[tracing::instrument(skip_all, fields(tick))]
    pub async fn tick(&mut self) -> anyhow::Result<TickSummary> {
        let started = self.clock.now();
        let timer = tokio::time::Instant::now();
        let result = self.tick_inner().await;
        if let Some(t) = &self.telemetry {
            let secs = timer.elapsed().as_secs_f64();
            match (&result, &self.last_plan) {
                (Ok(summary), Some(plan)) => t.record_tick(started, secs, Ok((plan, summary))),
                (Err(e), _) => t.record_tick(started, secs, Err(format!("{e:#}"))),
                (Ok(_), None) => {}
            }
        }
        result
    }

    async fn tick_inner(&mut self) -> anyhow::Result<TickSummary> {
        let (obs, now) = self.observe().await?;
        let mut policy = settings::policy_at(&self.config, now);
        if self.draining {
            for p in policy.pools.iter_mut() {
                p.limits.limit = 0;
                p.limits.idle_count = 0;
            }
        }
        let plan = plan(&obs, &policy, now);
        let mut summary = TickSummary {
            at: Some(now),
            pending: obs.pending.as_ref().map(Vec::len),
            servers: obs.vms.len(),
            runners: obs.vms.iter().filter(|v| v.runner.is_some()).count()
                + obs.orphan_runners.len(),
            ..TickSummary::default()
        };
        for a in &plan.actions {
            *summary.planned.entry(a.kind()).or_insert(0) += 1;
            debug!(action = %a, reason = a.reason_label(), "planned");
        }
        self.apply(&plan, now, &mut summary).await;
        info!(
            pending = ?summary.pending,
            servers = summary.servers,
            runners = summary.runners,
            planned = ?summary.planned,
            failed = summary.failures.len(),
            "tick"
        );
        if let Some(view) = &self.view {
            view.send_replace(Some(TickView {
                at: now,
                observed: obs,
                plan: plan.clone(),
                summary: summary.clone(),
            }));
        }
        self.last_plan = Some(plan);
        Ok(summary)
    }

    /// Runs ticks every `interval` until `shutdown` completes; a failed tick is logged and
    /// retried with exponential backoff (capped at 5 minutes), never ending the loop. A
    /// webhook nudge (a project id on `nudges`) starts a tick at once. A tick in progress
    /// always finishes its actions before shutdown is honoured.
    pub async fn run(
        &mut self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
        mut nudges: Option<tokio::sync::mpsc::Receiver<u64>>,
    ) where
        G: Nudge,
    {
        tokio::pin!(shutdown);
        let mut delay = interval;
        loop {
            match self.tick().await {
                Ok(_) => delay = interval,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "tick failed; retrying");
                    delay = (delay * 2).min(Duration::from_secs(300));
                }
            }
            tokio::select! {
                () = &mut shutdown => {
                    info!("shutting down after the current tick");
                    return;
                }
                () = tokio::time::sleep(delay) => {}
                Some(project) = async {
                    match nudges.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.gitlab.nudge(project).await;
                    if let Some(rx) = nudges.as_mut() {
                        while let Ok(p) = rx.try_recv() {
                            self.gitlab.nudge(p).await;
                        }
                    }
                    debug!(project, "webhook nudge: polling now");
                }
            }
        }
    }

    /// Drains and deletes every VM of this controller: idle ones at once, busy ones once
    /// their jobs end. Returns the number of servers left when none is left or at
    /// `deadline`, whichever comes first.
    pub async fn drain_all(&mut self, interval: Duration, deadline: Duration) -> usize {
        self.draining = true;
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = match self.tick().await {
                Ok(s) => s.servers,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "drain tick failed; retrying");
                    usize::MAX
                }
            };
            if left == 0 {
                info!("drained: no VM left");
                return 0;
            }
            if tokio::time::Instant::now() >= end {
                warn!(servers = left, "drain deadline reached with VMs left");
                return left;
            }
            tokio::time::sleep(interval.min(Duration::from_secs(10))).await;
        }
    }

    fn learn(&mut self, jobs: &[crate::model::PendingJob], now: Timestamp) {
        let policy = settings::policy_at(&self.config, now);
        for job in jobs {
            if self.state.seen_jobs.insert(job.id) {
                if let Some(p) = policy.pools.iter().find(|p| p.can_run(&job.tags)) {
                    self.state
                        .history
                        .record(&p.name, job.queued_since.min(now));
                }
            }
        }
        let live: BTreeSet<u64> = jobs.iter().map(|j| j.id).collect();
        self.state.seen_jobs.retain(|id| live.contains(id));
        let keep = self
            .config
            .pools
            .iter()
            .map(|p| ForecastSettings {
                days: p.forecast_days,
                lookahead: p.forecast_lookahead,
            })
            .max_by_key(|f| (f.days, f.lookahead))
            .unwrap_or_default();
        self.state.history.prune(now, keep);
    }

    /// Counts each ERROR server and boot timeout once; a pool's count resets when one of its
    /// runners has contacted GitLab since the last failure.
    fn update_failures(
        &mut self,
        servers: &[CloudServer],
        runners: &[OwnedRunner],
        now: Timestamp,
    ) {
        for s in servers {
            let Some(pool) = s.pool.as_deref() else {
                continue;
            };
            let boot_timeout = self
                .config
                .pool(pool)
                .map_or(Duration::from_secs(600), |p| p.policy.boot_timeout);
            let runner = s
                .runner_id
                .and_then(|id| runners.iter().find(|r| r.id == id));
            let failed = matches!(s.status, CloudStatus::Error { .. })
                || (runner.is_some_and(|r| r.contacted_at.is_none())
                    && now - s.created > crate::model::chrono_duration(boot_timeout));
            if failed && self.state.counted_failures.insert(s.id.0.clone()) {
                let f = self.state.failures.entry(pool.to_string()).or_default();
                f.consecutive += 1;
                f.last_failure_at = Some(now);
            }
        }
        for r in runners {
            let (Some(pool), Some(contacted)) = (r.pool.as_deref(), r.contacted_at) else {
                continue;
            };
            if let Some(f) = self.state.failures.get_mut(pool) {
                if f.last_failure_at.is_none_or(|t| contacted > t) {
                    *f = FailureHistory::default();
                }
            }
        }
        let ids: BTreeSet<&str> = servers.iter().map(|s| s.id.0.as_str()).collect();
        self.state
            .counted_failures
            .retain(|id| ids.contains(id.as_str()));
    }

    fn record_create_failure(&mut self, pool: &str, now: Timestamp) {
        let f = self.state.failures.entry(pool.to_string()).or_default();
        f.consecutive += 1;
        f.last_failure_at = Some(now);
    }

    async fn apply(&mut self, plan: &Plan, now: Timestamp, summary: &mut TickSummary) {
        let mut tasks = tokio::task::JoinSet::new();
        for action in plan.actions.iter().cloned() {
            let gitlab = Arc::clone(&self.gitlab);
            let cloud = Arc::clone(&self.cloud);
            let permit_pool = Arc::clone(&self.limit);
            let create = match &action {
                Action::Create { pool, .. } => {
                    self.state.seq += 1;
                    let name = format!(
                        "{}-{}-{}-{}",
                        self.controller.as_str(),
                        pool,
                        now.timestamp(),
                        self.state.seq
                    );
                    self.pools.get(pool).map(|rt| {
                        let mut runner = rt.create_runner.clone();
                        runner.description = name.clone();
                        (
                            name,
                            runner,
                            rt.template.clone(),
                            rt.bootstrap.clone(),
                            rt.metadata.clone(),
                        )
                    })
                }
                _ => None,
            };
            let gitlab_url = self.config.gitlab.url.to_string();
            tasks.spawn(async move {
                let _permit = permit_pool.acquire_owned().await;
                let result = execute(&*gitlab, &*cloud, &action, create, gitlab_url).await;
                (action, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((action, result)) = joined else {
                summary.failures.push("an action task panicked".into());
                continue;
            };
            match result {
                Ok(Outcome::Done) => {
                    info!(action = %action, reason = action.reason_label(), "done")
                }
                Ok(Outcome::Refused(n)) => {
                    warn!(action = %action, running = n, "runner still runs a job: not deleted");
                    summary.deletes_refused += 1;
                }
                Err(e) => {
                    let msg = format!("{action}: {e:#}");
                    warn!(error = %msg, "action failed");
                    if let Action::Create { pool, .. } = &action {
                        self.record_create_failure(pool, now);
                    }
                    summary.failures.push(msg);
                }
            }
        }
    }
}

enum Outcome {
    Done,
    /// A delete was refused because the runner ran this many jobs at the re-check.
    Refused(u32),
}

type CreateInput = (
    String,
    CreateRunner,
    ServerTemplateSpec,
    bs::PoolBootstrap,
    BTreeMap<String, String>,
);

async fn execute<G: GitLab, C: Cloud>(
    gitlab: &G,
    cloud: &C,
    action: &Action,
    create: Option<CreateInput>,
    gitlab_url: String,
) -> anyhow::Result<Outcome> {
    match action {
        Action::Create { pool, .. } => {
            let (name, runner_req, template, bootstrap, metadata) =
                create.with_context(|| format!("pool `{pool}` is not configured"))?;
            let runner = gitlab
                .create_runner(runner_req)
                .await
                .context("creating the runner")?;
            let params = bs::BootstrapParams {
                pool: bootstrap,
                vm: bs::VmIdentity {
                    gitlab_url,
                    runner_token: runner.token.clone(),
                    name: name.clone(),
                    runner_id: runner.id,
                },
            };
            let server = match bs::render(&params) {
                Ok(user_data) => cloud
                    .create_server(CreateServer {
                        name,
                        pool: pool.clone(),
                        runner_id: Some(runner.id),
                        template,
                        user_data: SecretString::from(user_data.as_str().to_string()),
                        metadata,
                    })
                    .await
                    .map_err(anyhow::Error::from)
                    .context("creating the server"),
                Err(e) => Err(anyhow::Error::from(e).context("rendering user-data")),
            };
            match server {
                Ok(_) => Ok(Outcome::Done),
                Err(e) => {
                    // The runner must not outlive its failed server.
                    if let Err(d) = gitlab.delete_runner(runner.id).await {
                        warn!(runner = runner.id, error = %d, "could not delete the runner of a failed create; it is an orphan now");
                    }
                    Err(e)
                }
            }
        }
        Action::Pause { runner, .. } => {
            gitlab.set_paused(*runner, true).await?;
            Ok(Outcome::Done)
        }
        Action::Unpause { runner, .. } => {
            gitlab.set_paused(*runner, false).await?;
            Ok(Outcome::Done)
        }
        Action::Delete { vm, runner, .. } => {
            if let Some(r) = runner {
                if let Some(n) = drain_runner(gitlab, *r).await? {
                    return Ok(Outcome::Refused(n));
                }
            }
            cloud
                .delete_server(&ServerId(vm.0.clone()))
                .await
                .context("deleting the server")?;
            Ok(Outcome::Done)
        }
        Action::DeleteRunner { runner, .. } => match drain_runner(gitlab, *runner).await? {
            Some(n) => Ok(Outcome::Refused(n)),
            None => Ok(Outcome::Done),
        },
    }
}

/// Pauses, re-checks and deletes a runner. Returns the running job count when it refused.
async fn drain_runner<G: GitLab>(gitlab: &G, runner: u64) -> anyhow::Result<Option<u32>> {
    match gitlab.set_paused(runner, true).await {
        Ok(()) => {}
        Err(crate::ports::GitLabError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(anyhow::Error::from(e).context("pausing the runner")),
    }
    let running = gitlab
        .running_jobs(runner)
        .await
        .context("re-checking the runner's running jobs")?;
    if running > 0 {
        return Ok(Some(running));
    }
    gitlab
        .delete_runner(runner)
        .await
        .context("deleting the runner")?;
    Ok(None)
}

/// Joins servers and runners into the planner's view. Runners pair with servers by the
/// server's runner-id metadata, else by description = server name.
fn join(servers: &[CloudServer], runners: &[OwnedRunner], gitlab_ok: bool) -> Observed {
    let mut paired: BTreeSet<u64> = BTreeSet::new();
    let mut vms = Vec::with_capacity(servers.len());
    for s in servers {
        let runner = s
            .runner_id
            .and_then(|id| runners.iter().find(|r| r.id == id))
            .or_else(|| runners.iter().find(|r| r.description == s.name));
        if let Some(r) = runner {
            paired.insert(r.id);
        }
        let phase = match &s.status {
            CloudStatus::Building => CloudPhase::Building,
            CloudStatus::Active => CloudPhase::Active,
            CloudStatus::Error { fault } => CloudPhase::Error(fault.clone()),
            CloudStatus::Deleting => CloudPhase::Deleting,
            CloudStatus::Other(_) => CloudPhase::Active,
        };
        let runner = if gitlab_ok {
            runner.map(OwnedRunner::view)
        } else {
            // Unknown, not absent: the planner acts on nothing this tick anyway.
            None
        };
        vms.push(Vm {
            id: VmId(s.id.0.clone()),
            name: s.name.clone(),
            pool: s.pool.clone().unwrap_or_default(),
            created_at: s.created,
            phase,
            runner,
            address: s.address.clone(),
        });
    }
    let orphan_runners = runners
        .iter()
        .filter(|r| !paired.contains(&r.id))
        .map(OwnedRunner::orphan)
        .collect();
    Observed {
        vms,
        orphan_runners,
        ..Observed::default()
    }
}

#[cfg(test)]
mod tests;
