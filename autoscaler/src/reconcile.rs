//! The reconcile loop: one tick = observe → plan → apply.
//!
//! * **Observe** reads GitLab (pending jobs, owned runners) and the cloud (owned servers,
//!   quota) concurrently and joins servers with runners into the planner's [`Observed`].
//!   When GitLab cannot be read, `Observed::pending` is `None` and the planner acts on
//!   nothing. When the cloud cannot be listed the tick fails: nothing is planned blind.
//! * **Plan** is the pure [`autoscaler_core::plan::plan`].
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
//!
//! Failures are typed ([`FailureKind`], derived from [`CloudErrorKind`] and [`GitLabError`],
//! never from message text) because they call for different retries: credentials refused
//! ([`FailureKind::Auth`]) or wrong settings ([`FailureKind::Misconfigured`]) do not heal by
//! waiting, so they are logged as an error once per change and retried at a steady pace
//! that picks up the operator's fix promptly; an unavailable or confused service
//! ([`FailureKind::Unavailable`], [`FailureKind::Unexpected`]) is retried with exponential
//! backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use autoscaler_bootstrap as bs;
use autoscaler_config::Config;
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

use crate::settings;
pub use crate::tick::{
    FailureKind, Outage, TickError, TickReport, TickSummary, TickTotals, TickView,
};
use autoscaler_core::memory::{Memory, OrphanMemo, PendingCreate, StateStore};
use autoscaler_core::model::{
    CloudStatus, Observed, RunnerId, RunnerLink, Timestamp, Vm, VmId, chrono_duration,
};
use autoscaler_core::plan::{Action, Plan, plan};
use autoscaler_core::ports::{
    Cloud, CloudError, CloudErrorKind, CloudServer, ControllerId, CreateRunner, CreateServer,
    GitLab, GitLabError, OwnedRunner, ServerId, ServerTemplateSpec,
};

/// Logs a failure of `service` (`openstack`, `gitlab`): an error once per change of kind or
/// message for those only the operator can fix (then debug), a warning each time otherwise.
fn report_failure(service: &'static str, kind: FailureKind, why: &str, changed: bool) {
    let hint = kind.hint(service);
    match (kind.needs_operator(), changed) {
        (true, true) => error!(service, kind = kind.label(), error = %why, "{hint}"),
        (true, false) => debug!(service, kind = kind.label(), error = %why, "still failing"),
        (false, _) => warn!(service, kind = kind.label(), error = %why, "{hint}"),
    }
}

/// Records a failure of a service in `slot`: keeps `since` across the outage, logs it (see
/// [`report_failure`]).
fn note_outage(
    slot: &mut Option<Outage>,
    service: &'static str,
    kind: FailureKind,
    why: String,
    now: Timestamp,
) {
    let changed = slot
        .as_ref()
        .is_none_or(|o| o.kind != kind || o.error != why);
    report_failure(service, kind, &why, changed);
    let since = slot.as_ref().map_or(now, |o| o.since);
    *slot = Some(Outage {
        since,
        kind,
        error: why,
    });
}

/// The longest steady retry pace after a failure only the operator can fix.
pub const STEADY_RETRY_MAX: Duration = Duration::from_secs(60);

/// A GitLab port that can be told a project has a new pending job (from the job webhook),
/// so its next poll of that project comes at once.
pub trait Nudge {
    /// Makes `project` due for polling.
    fn nudge(&self, project: u64) -> impl std::future::Future<Output = ()> + Send;
}

impl Nudge for autoscaler_gitlab::GitLabAdapter {
    async fn nudge(&self, project: u64) {
        self.nudge_project(project).await;
    }
}

#[cfg(any(test, feature = "testing"))]
impl Nudge for autoscaler_core::testing::gitlab::FakeGitLab {
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

/// Everything one pool's creates need, prepared once at start-up.
struct PoolRuntime {
    template: ServerTemplateSpec,
    bootstrap: bs::PoolBootstrap,
    metadata: BTreeMap<String, String>,
    create_runner: CreateRunner,
}

/// The reconciler's state between ticks: the one [`Memory`] (persisted when a store is
/// configured) and what only this process needs.
#[derive(Debug, Default)]
struct State {
    /// Everything learned that one observation does not show (see [`autoscaler_core::memory`]).
    memory: Memory,
    seq: u64,
    /// Pools of remembered orphans this tick could not see (counted against `limit`).
    unseen_orphans: Vec<String>,
    /// When GitLab's runners were first read since the start, and whether they have been
    /// read again at least [`MIN_TICK_SPACING`] later (creates wait for that second look
    /// unless a stored memory was restored: without one, a serverless runner of ours that
    /// one listing lacks would not be counted).
    first_listing: Option<Timestamp>,
    warmed_up: bool,
    /// Since when GitLab cannot be read, and why (`None` while it can).
    gitlab_down: Option<Outage>,
    /// Since when the cloud cannot be listed, and why (`None` while it can).
    cloud_down: Option<Outage>,
    /// The last refusal of a create logged as an error (credentials, settings), so it is
    /// logged once per change; cleared by a create that succeeds.
    create_refused: Option<String>,
    /// Each pool's flavor size as the cloud states it (`None`: the cloud does not say),
    /// resolved once; a failed lookup is retried next tick.
    flavors: BTreeMap<String, Option<autoscaler_core::model::FlavorSize>>,
}

/// The least time between the starts of two ticks, whatever nudges arrive.
pub const MIN_TICK_SPACING: Duration = Duration::from_secs(2);

/// The longest a change to the memory's job arrivals waits to be written.
const MEMORY_WRITE_SPACING: Duration = Duration::from_secs(30);

/// At most this many `GET /runners/:id` probes per tick (the rest stay unknown).
const MAX_PROBES_PER_TICK: usize = 64;

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
    /// Where every tick's report is published (the HTTP endpoint and `run --dev` read it).
    reports: Option<tokio::sync::watch::Sender<Option<Arc<TickReport>>>>,
    /// Ticks so far and the counts every report carries.
    seq: u64,
    totals: TickTotals,
    /// Drain mode: every VM is removed (idle ones at once, busy ones after their job).
    draining: bool,
    /// Last plan, for `/status` and tests.
    pub last_plan: Option<Plan>,
    /// Where the durable memory is kept (`None`: a restart forgets it).
    store: Option<Arc<dyn StateStore>>,
    /// The memory document last written, to skip identical writes.
    saved: String,
    /// Its safety part, and when it was written.
    saved_safety: String,
    saved_at: Option<tokio::time::Instant>,
    /// `plan` and `status`: observe only, never write the memory.
    read_only: bool,
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
            reports: None,
            seq: 0,
            totals: TickTotals::default(),
            draining: false,
            last_plan: None,
            store: None,
            saved: String::new(),
            saved_safety: String::new(),
            saved_at: None,
            read_only: !prepare,
        })
    }

    /// Publishes a [`TickReport`] of every tick on `reports`: the one channel the HTTP
    /// endpoint (metrics, `/status`, `/healthz`) and `run --dev` read.
    pub fn with_reports(
        mut self,
        reports: tokio::sync::watch::Sender<Option<Arc<TickReport>>>,
    ) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Keeps the durable memory in `store`, starting from what it holds. A memory that
    /// cannot be read or parsed is reported and ignored: the controller then knows only
    /// what it observes.
    pub fn with_store(mut self, store: Arc<dyn StateStore>) -> Self {
        match store.load() {
            Ok(Some(text)) => match Memory::from_text(&text) {
                Ok(d) => {
                    info!(
                        creates = d.creates.len(),
                        orphans = d.orphans.len(),
                        "memory restored"
                    );
                    self.saved_safety = d.urgent_text();
                    self.state.memory = d;
                    self.saved = text;
                    self.state.warmed_up = true;
                }
                Err(e) => warn!(error = %format!("{e:#}"), "stored memory ignored"),
            },
            Ok(None) => {}
            Err(e) => warn!(error = %format!("{e:#}"), "stored memory cannot be read: ignored"),
        }
        self.store = Some(store);
        self
    }

    /// Writes the memory when it changed: at once when its urgent part changed (safety
    /// records, failures), otherwise (job arrivals) at most every [`MEMORY_WRITE_SPACING`].
    fn persist(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        if self.read_only {
            return;
        }
        let safety = self.state.memory.urgent_text();
        let due = self
            .saved_at
            .is_none_or(|t| t.elapsed() >= MEMORY_WRITE_SPACING);
        if safety == self.saved_safety && !due {
            return;
        }
        let text = self.state.memory.to_text();
        if text == self.saved {
            return;
        }
        match store.save(&text) {
            Ok(()) => {
                self.saved = text;
                self.saved_safety = safety;
                self.saved_at = Some(tokio::time::Instant::now());
            }
            Err(e) => warn!(error = %format!("{e:#}"), "memory not saved"),
        }
    }

    /// Writes whatever of the memory is not written yet (on shutdown).
    pub fn flush(&mut self) {
        self.saved_at = None;
        self.persist();
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
    /// One observation is never proof: a server whose runner is missing from the runner
    /// listing is probed with `GET /runners/:id`; it counts as gone only after two 404s at
    /// least one poll interval apart, and is "unknown" (counted, never deleted) until then.
    ///
    /// # Errors
    ///
    /// The cloud could not be listed.
    pub async fn observe(&mut self) -> Result<(Observed, Timestamp), TickError> {
        let now = self.clock.now();
        let (pending, runners, servers, quota) = tokio::join!(
            self.gitlab.pending_jobs(),
            self.gitlab.owned_runners(),
            self.cloud.list_owned_servers(),
            self.cloud.quota()
        );
        let servers = servers.map_err(|error| TickError {
            kind: FailureKind::from_cloud(error.kind()),
            error,
        })?;
        let quota = match quota {
            Ok(q) => Some(q.headroom()),
            Err(e) => {
                warn!(error = %e, "quota unknown this tick");
                None
            }
        };
        let (pending, mut runners) = match (pending, runners) {
            (Ok(p), Ok(r)) => {
                if let Some(o) = self.state.gitlab_down.take() {
                    info!(down_since = %o.since.to_rfc3339(), "gitlab readable again");
                }
                (Some(p), r)
            }
            (Err(e), _) | (_, Err(e)) => {
                let kind = FailureKind::from_gitlab(&e);
                note_outage(
                    &mut self.state.gitlab_down,
                    "gitlab",
                    kind,
                    e.to_string(),
                    now,
                );
                (None, Vec::new())
            }
        };
        let gitlab_ok = pending.is_some();
        let links = if gitlab_ok {
            self.probe_missing_runners(&servers, &mut runners, now)
                .await
        } else {
            BTreeMap::new()
        };
        let mut obs = join(&servers, &runners, &links);
        obs.quota = quota;
        self.resolve_flavors().await;
        obs.flavors = self
            .state
            .flavors
            .iter()
            .filter_map(|(pool, size)| Some((pool.clone(), (*size)?)))
            .collect();
        obs.pending = pending;
        // One function learns from the observation, in `run`, `plan` and the simulator.
        let policy = settings::policy_at(&self.config, now);
        self.state.memory.learn(&obs, &policy, now);
        if gitlab_ok {
            self.track_orphans(&mut obs, &links, now);
            let first = *self.state.first_listing.get_or_insert(now);
            if now - first >= chrono_duration(MIN_TICK_SPACING) {
                self.state.warmed_up = true;
            }
        } else {
            self.state.unseen_orphans.clear();
        }
        self.track_deleting(&mut obs, now);
        self.settle_creates(&mut obs, &servers, now);
        obs.failures = self.state.memory.failures.clone();
        obs.expected = self.state.memory.expected(&policy, now);
        obs.reserve = self.state.memory.reserve(&policy, now);
        obs.arrivals_per_poll = self.state.memory.arrivals_per_poll(&policy, now);
        Ok((obs, now))
    }

    /// Resolves the flavor size of every pool not resolved yet, so that the planner budgets
    /// the cores and RAM quota too. A failure is logged and retried on the next tick.
    async fn resolve_flavors(&mut self) {
        let config = Arc::clone(&self.config);
        for pool in &config.pools {
            if self.state.flavors.contains_key(&pool.name) {
                continue;
            }
            match self.cloud.flavor_size(&pool.server.flavor).await {
                Ok(size) => {
                    self.state.flavors.insert(pool.name.clone(), size);
                }
                Err(e) => {
                    warn!(pool = %pool.name, error = %e, "flavor size unknown: budgeting instances only");
                }
            }
        }
    }

    /// Since when GitLab cannot be read, and why (`None` while it can).
    pub fn gitlab_down(&self) -> Option<&Outage> {
        self.state.gitlab_down.as_ref()
    }

    /// Since when the cloud cannot be listed, and why (`None` while it can).
    pub fn cloud_down(&self) -> Option<&Outage> {
        self.state.cloud_down.as_ref()
    }

    /// Probes, with `GET /runners/:id`, the runner of every server whose runner the listing
    /// lacks. A runner found is added to `runners` (whatever its description says now: the
    /// server's metadata names it). Returns what is known of each probed runner.
    async fn probe_missing_runners(
        &mut self,
        servers: &[CloudServer],
        runners: &mut Vec<OwnedRunner>,
        now: Timestamp,
    ) -> BTreeMap<RunnerId, RunnerLink> {
        let listed: BTreeSet<RunnerId> = runners.iter().map(|r| r.id).collect();
        let named: BTreeSet<&str> = runners.iter().map(|r| r.description.as_str()).collect();
        let mut ids: Vec<RunnerId> = servers
            .iter()
            .filter(|s| s.status != CloudStatus::Deleting)
            .filter(|s| !named.contains(s.name.as_str()))
            .filter_map(|s| s.runner_id)
            .filter(|id| !listed.contains(id))
            .collect();
        // Runners seen without a server before and missing from this listing.
        ids.extend(
            self.state
                .memory
                .orphans
                .keys()
                .copied()
                .filter(|id| !listed.contains(id)),
        );
        ids.sort_unstable();
        ids.dedup();
        let carried: BTreeSet<RunnerId> = servers
            .iter()
            .filter_map(|s| s.runner_id)
            .chain(self.state.memory.orphans.keys().copied())
            .collect();
        self.state
            .memory
            .runner_404
            .retain(|id, _| carried.contains(id));
        let mut links = BTreeMap::new();
        let mut found = Vec::new();
        for chunk in ids.chunks(8).take(MAX_PROBES_PER_TICK / 8) {
            let answers = futures_util::future::join_all(
                chunk.iter().map(|&id| self.gitlab.runner_by_id(id)),
            )
            .await;
            for (&id, answer) in chunk.iter().zip(answers) {
                let link = match answer {
                    Ok(Some(mut r)) => {
                        self.state.memory.runner_404.remove(&id);
                        if r.pool.is_none() {
                            // An admin edited the note: the pool we knew still holds.
                            r.pool = self
                                .state
                                .memory
                                .orphans
                                .get(&id)
                                .and_then(|o| o.pool.clone());
                        }
                        found.push(r);
                        RunnerLink::Seen
                    }
                    Ok(None) => {
                        let first = *self.state.memory.runner_404.entry(id).or_insert(now);
                        if now - first >= chrono_duration(self.config.controller.poll_interval) {
                            RunnerLink::Gone
                        } else {
                            RunnerLink::Unknown
                        }
                    }
                    Err(e) => {
                        debug!(runner = id, error = %e, "runner probe failed: unknown");
                        RunnerLink::Unknown
                    }
                };
                links.insert(id, link);
            }
        }
        for id in ids.iter().skip(MAX_PROBES_PER_TICK) {
            links.insert(*id, RunnerLink::Unknown);
        }
        runners.extend(found);
        links
    }

    /// Marks orphan runners confirmed once seen without a server on two observations at
    /// least one poll interval apart, and remembers them. A remembered orphan that neither
    /// the listing nor its probe showed, and that is not proven gone, still counts against
    /// its pool's `limit` (as an unsettled create).
    fn track_orphans(
        &mut self,
        obs: &mut Observed,
        links: &BTreeMap<RunnerId, RunnerLink>,
        now: Timestamp,
    ) {
        let poll = chrono_duration(self.config.controller.poll_interval);
        let seen: BTreeSet<RunnerId> = obs.orphan_runners.iter().map(|r| r.id).collect();
        let paired: BTreeSet<RunnerId> = obs
            .vms
            .iter()
            .filter_map(|v| v.runner.as_ref().map(|r| r.id))
            .collect();
        let mut unseen: Vec<String> = Vec::new();
        self.state.memory.orphans.retain(|id, memo| {
            if seen.contains(id) {
                return true;
            }
            if paired.contains(id) {
                return false; // its server is listed now
            }
            match links.get(id) {
                Some(RunnerLink::Gone) => false,
                _ => {
                    if let Some(pool) = &memo.pool {
                        unseen.push(pool.clone());
                    }
                    true
                }
            }
        });
        for r in &mut obs.orphan_runners {
            let memo = self.state.memory.orphans.entry(r.id).or_insert(OrphanMemo {
                since: now,
                pool: r.pool.clone(),
            });
            r.confirmed = now - memo.since >= poll;
        }
        self.state.unseen_orphans = unseen;
    }

    /// Stamps deleting servers with when they were first seen deleting.
    fn track_deleting(&mut self, obs: &mut Observed, now: Timestamp) {
        let ids: BTreeSet<&str> = obs
            .vms
            .iter()
            .filter(|v| v.phase == CloudStatus::Deleting)
            .map(|v| v.id.0.as_str())
            .collect();
        self.state
            .memory
            .deleting_since
            .retain(|id, _| ids.contains(id.as_str()));
        for vm in obs
            .vms
            .iter_mut()
            .filter(|v| v.phase == CloudStatus::Deleting)
        {
            let first = *self
                .state
                .memory
                .deleting_since
                .entry(vm.id.0.clone())
                .or_insert(now);
            vm.deleting_since = Some(first);
        }
    }

    /// Settles creates of unknown outcome: seen as a server (done), or void once the pool's
    /// `boot_timeout` has passed without one. The rest count per pool, except those whose
    /// runner is already counted as an orphan.
    fn settle_creates(&mut self, obs: &mut Observed, servers: &[CloudServer], now: Timestamp) {
        let names: BTreeSet<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        let config = Arc::clone(&self.config);
        self.state.memory.creates.retain(|name, u| {
            if names.contains(name.as_str()) {
                return false;
            }
            let grace = config
                .pool(&u.pool)
                .map_or(Duration::from_secs(600), |p| p.policy.boot_timeout);
            now - u.since <= chrono_duration(grace)
        });
        let orphans: BTreeSet<RunnerId> = obs
            .orphan_runners
            .iter()
            .map(|r| r.id)
            .chain(self.state.memory.orphans.keys().copied())
            .collect();
        obs.unsettled_creates.clear();
        for pool in &self.state.unseen_orphans {
            *obs.unsettled_creates.entry(pool.clone()).or_insert(0) += 1;
        }
        for u in self.state.memory.creates.values() {
            if u.runner.is_some_and(|r| orphans.contains(&r)) {
                continue;
            }
            *obs.unsettled_creates.entry(u.pool.clone()).or_insert(0) += 1;
        }
    }

    /// One tick: observe, plan, apply.
    ///
    /// # Errors
    ///
    /// The cloud could not be listed (nothing was done).
    #[tracing::instrument(skip_all, fields(tick))]
    pub async fn tick(&mut self) -> Result<TickSummary, TickError> {
        let started = self.clock.now();
        let timer = tokio::time::Instant::now();
        let result = self.tick_inner().await;
        match &result {
            Ok(_) => {
                if let Some(o) = self.state.cloud_down.take() {
                    info!(down_since = %o.since.to_rfc3339(), "openstack readable again");
                }
            }
            Err(e) => note_outage(
                &mut self.state.cloud_down,
                "openstack",
                e.kind,
                e.to_string(),
                started,
            ),
        }
        let seconds = timer.elapsed().as_secs_f64();
        self.seq += 1;
        let outcome: Result<&TickView, Outage> = match &result {
            Ok(view) => Ok(view),
            Err(e) => Err(self.state.cloud_down.clone().unwrap_or(Outage {
                since: started,
                kind: e.kind,
                error: e.to_string(),
            })),
        };
        self.totals
            .add(self.seq, seconds, outcome.as_ref().map(|v| &v.summary));
        if let Some(reports) = &self.reports {
            let outcome = outcome.cloned();
            reports.send_replace(Some(Arc::new(TickReport {
                seq: self.seq,
                started,
                seconds,
                outcome,
                totals: self.totals.clone(),
            })));
        }
        result.map(|view| view.summary)
    }

    async fn tick_inner(&mut self) -> Result<TickView, TickError> {
        let (mut obs, now) = self.observe().await?;
        if !self.state.warmed_up {
            obs.starting_until =
                Some(self.state.first_listing.unwrap_or(now) + chrono_duration(MIN_TICK_SPACING));
        }
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
            gitlab_down: self.state.gitlab_down.clone(),
            ..TickSummary::default()
        };
        for a in &plan.actions {
            *summary.planned.entry(a.kind()).or_insert(0) += 1;
            debug!(action = %a, reason = a.reason_label(), "planned");
        }
        self.apply(&plan, now, &mut summary).await;
        self.persist();
        info!(
            pending = ?summary.pending,
            servers = summary.servers,
            runners = summary.runners,
            planned = ?summary.planned,
            failed = summary.failures.len(),
            "tick"
        );
        self.last_plan = Some(plan.clone());
        Ok(TickView {
            at: now,
            observed: obs,
            plan,
            summary,
        })
    }

    /// Runs ticks every `interval` until `shutdown` completes; a failed tick is logged and
    /// retried with exponential backoff (capped at 5 minutes), never ending the loop; while
    /// GitLab cannot be read, ticks back off the same way up to `max(interval, 60 s)`. A
    /// failure only the operator can fix ([`FailureKind::needs_operator`]: credentials
    /// refused, wrong settings) is retried at a steady pace instead, every `interval` but at
    /// least every [`STEADY_RETRY_MAX`], so a fix is picked up within that time.
    ///
    /// A webhook nudge (a project id on `nudges`) makes that project due for polling and
    /// brings the next tick forward, but never closer than [`MIN_TICK_SPACING`] (or the
    /// interval, when shorter) to the
    /// start of the previous tick, and never into a backoff: nudges that arrive meanwhile
    /// coalesce into that one tick. A tick in progress always finishes its actions before
    /// shutdown is honoured.
    pub async fn run(
        &mut self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
        mut nudges: Option<tokio::sync::mpsc::Receiver<u64>>,
    ) where
        G: Nudge,
    {
        tokio::pin!(shutdown);
        // No hot loop, whatever the configuration says.
        let interval = interval.max(Duration::from_millis(100));
        let spacing = MIN_TICK_SPACING.min(interval);
        let steady = interval.min(STEADY_RETRY_MAX);
        let mut delay = interval;
        loop {
            let started = tokio::time::Instant::now();
            // The tick logged its failure (once per change for those the operator must fix).
            let backing_off = match self.tick().await {
                Ok(_) => match &self.state.gitlab_down {
                    Some(o) if o.kind.needs_operator() => {
                        delay = steady;
                        true
                    }
                    Some(_) => {
                        delay = (delay * 2).min(interval.max(Duration::from_secs(60)));
                        true
                    }
                    None => {
                        delay = interval;
                        false
                    }
                },
                Err(e) if e.kind.needs_operator() => {
                    delay = steady;
                    true
                }
                Err(_) => {
                    delay = (delay * 2).min(Duration::from_secs(300));
                    true
                }
            };
            let mut next = tokio::time::Instant::now() + delay;
            // A nudge may bring the next tick forward to here, no earlier.
            let nudged_at = if backing_off { next } else { started + spacing };
            loop {
                tokio::select! {
                    () = &mut shutdown => {
                        info!("shutting down after the current tick");
                        self.flush();
                        return;
                    }
                    () = tokio::time::sleep_until(next) => break,
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
                        next = next.min(nudged_at);
                        debug!(project, "webhook nudge: project due, next tick brought forward");
                    }
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

    async fn apply(&mut self, plan: &Plan, now: Timestamp, summary: &mut TickSummary) {
        let mut tasks = tokio::task::JoinSet::new();
        let mut actions = Vec::with_capacity(plan.actions.len());
        for action in plan.actions.iter().cloned() {
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
                    // Write-ahead: a create counts against `limit` from before it starts
                    // until its outcome is known, across a restart too.
                    self.state.memory.creates.insert(
                        name.clone(),
                        PendingCreate {
                            pool: pool.clone(),
                            runner: None,
                            since: now,
                        },
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
            let name = create.as_ref().map(|c| c.0.clone());
            actions.push((action, create, gitlab_url, name));
        }
        self.persist();
        for (action, create, gitlab_url, name) in actions {
            let gitlab = Arc::clone(&self.gitlab);
            let cloud = Arc::clone(&self.cloud);
            let permit_pool = Arc::clone(&self.limit);
            tasks.spawn(async move {
                let _permit = permit_pool.acquire_owned().await;
                let result = execute(&*gitlab, &*cloud, &action, create, gitlab_url).await;
                (action, name, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((action, name, result)) = joined else {
                summary.failures.push("an action task panicked".into());
                continue;
            };
            // A create that finished or certainly failed is no longer pending.
            if let Some(n) = &name {
                if !matches!(result, Ok(Outcome::CreateUnsettled { .. })) {
                    self.state.memory.creates.remove(n);
                }
            }
            match result {
                Ok(Outcome::Done) => {
                    if matches!(action, Action::Create { .. }) {
                        self.state.create_refused = None;
                    }
                    info!(action = %action, reason = action.reason_label(), "done");
                    *summary
                        .applied
                        .entry((action.kind(), action.reason_label()))
                        .or_insert(0) += 1;
                }
                Ok(Outcome::CreateUnsettled {
                    name,
                    runner,
                    error,
                }) => {
                    let msg = format!("{action}: {error} (outcome unknown: counted until settled)");
                    warn!(error = %msg, server = %name, "create outcome unknown");
                    if let Action::Create { pool, .. } = &action {
                        // Backoff counts from when the failure happened, not the tick's start.
                        let at = self.clock.now();
                        self.state.memory.count_failure(pool, at);
                        self.state.memory.creates.insert(
                            name,
                            PendingCreate {
                                pool: pool.clone(),
                                runner,
                                since: at,
                            },
                        );
                    }
                    summary.failures.push(msg);
                }
                Ok(Outcome::Refused(n)) => {
                    warn!(action = %action, running = n, "runner still runs a job: not deleted");
                    summary.deletes_refused += 1;
                }
                Err(e) => {
                    let msg = format!("{action}: {e:#}");
                    // Backoff counts from when the failure happened, not the tick's start.
                    let at = self.clock.now();
                    match (&action, failure_class(&e)) {
                        (Action::Create { pool, .. }, Some((service, kind)))
                            if kind.needs_operator() =>
                        {
                            let why = format!("{e:#}");
                            let changed = self.state.create_refused.as_ref() != Some(&why);
                            report_failure(service, kind, &msg, changed);
                            self.state.create_refused = Some(why);
                            // Not the pool's VMs failing, so not counted as a failure (that
                            // would grow the backoff and open the circuit breaker, delaying
                            // the recovery after the fix by up to its cooldown). Credentials
                            // refused hold nothing: the next listing fails the same way and
                            // the tick with it, or the next tick simply tries again. Wrong
                            // settings hold the pool's creates one base backoff at a time,
                            // so a runner is not made and removed on every tick.
                            if kind == FailureKind::Misconfigured {
                                self.state.memory.hold_creates(pool, at);
                            }
                        }
                        (Action::Create { pool, .. }, _) => {
                            warn!(error = %msg, "action failed");
                            self.state.memory.count_failure(pool, at);
                        }
                        _ => warn!(error = %msg, "action failed"),
                    }
                    summary.failures.push(msg);
                }
            }
        }
    }
}

/// The service and class of a failed action's error, when it came from a port (found
/// through the error's context, never from its text).
fn failure_class(e: &anyhow::Error) -> Option<(&'static str, FailureKind)> {
    if let Some(c) = e.downcast_ref::<CloudError>() {
        return Some(("openstack", FailureKind::from_cloud(c.kind())));
    }
    e.downcast_ref::<GitLabError>()
        .map(|g| ("gitlab", FailureKind::from_gitlab(g)))
}

enum Outcome {
    Done,
    /// A delete was refused because the runner ran this many jobs at the re-check.
    Refused(u32),
    /// A create failed in a way that may still have created the server (or its runner).
    CreateUnsettled {
        /// The server name (and the runner description).
        name: String,
        /// The runner, when it was created.
        runner: Option<RunnerId>,
        /// What failed (no secrets).
        error: String,
    },
}

/// Deletes the runner of a create that certainly made no server.
async fn delete_runner_of_failed_create<G: GitLab>(gitlab: &G, runner: RunnerId) {
    if let Err(e) = gitlab.delete_runner(runner).await {
        warn!(runner, error = %e, "could not delete the runner of a failed create; it is an orphan now");
    }
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
            let runner = match gitlab.create_runner(runner_req).await {
                Ok(r) => r,
                // No answer, or a 5xx: GitLab may still have created the runner (it is then
                // an orphan of ours, listed by its description). Count it until settled.
                Err(e @ (GitLabError::Unreachable { .. } | GitLabError::Server { .. })) => {
                    return Ok(Outcome::CreateUnsettled {
                        name,
                        runner: None,
                        error: format!("creating the runner: {e}"),
                    });
                }
                Err(e) => return Err(anyhow::Error::from(e).context("creating the runner")),
            };
            let params = bs::BootstrapParams {
                pool: bootstrap,
                vm: bs::VmIdentity {
                    gitlab_url,
                    runner_token: runner.token.clone(),
                    name: name.clone(),
                    runner_id: runner.id,
                },
            };
            let user_data = match bs::render(&params) {
                Ok(u) => u,
                Err(e) => {
                    delete_runner_of_failed_create(gitlab, runner.id).await;
                    return Err(anyhow::Error::from(e).context("rendering user-data"));
                }
            };
            let created = cloud
                .create_server(CreateServer {
                    name: name.clone(),
                    pool: pool.clone(),
                    runner_id: Some(runner.id),
                    template,
                    user_data: SecretString::from(user_data.as_str().to_string()),
                    metadata,
                })
                .await;
            match created {
                Ok(_) => Ok(Outcome::Done),
                // A timeout or an unexpected answer may still have created the server: keep
                // its runner (the durable record of the attempt: an orphan of ours counts
                // against `limit` even after a restart) and count the create until settled.
                Err(e)
                    if matches!(
                        e.kind(),
                        CloudErrorKind::Transient | CloudErrorKind::Unexpected
                    ) =>
                {
                    Ok(Outcome::CreateUnsettled {
                        name,
                        runner: Some(runner.id),
                        error: format!("creating the server: {e}"),
                    })
                }
                Err(e) => {
                    // Refused: no server exists, and the runner must not outlive it.
                    delete_runner_of_failed_create(gitlab, runner.id).await;
                    Err(anyhow::Error::from(e).context("creating the server"))
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
        Err(autoscaler_core::ports::GitLabError::NotFound { .. }) => return Ok(None),
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
/// server's runner-id metadata, else by description = server name. A server without a
/// runner takes what is known of its runner from `links` (the probes); a runner nobody
/// probed or listed is unknown, never absent.
fn join(
    servers: &[CloudServer],
    runners: &[OwnedRunner],
    links: &BTreeMap<RunnerId, RunnerLink>,
) -> Observed {
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
        let phase = s.status.clone();
        let runner_link = match (runner, s.runner_id) {
            (Some(_), _) => RunnerLink::Seen,
            (None, Some(id)) => links.get(&id).copied().unwrap_or(RunnerLink::Unknown),
            (None, None) => RunnerLink::Unknown,
        };
        vms.push(Vm {
            id: VmId(s.id.0.clone()),
            name: s.name.clone(),
            pool: s.pool.clone().unwrap_or_default(),
            created_at: s.created,
            phase,
            runner: runner.map(OwnedRunner::view),
            runner_link,
            deleting_since: None,
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
