//! The planner: `plan(&Observed, &Policy, now) -> Plan`.
//!
//! Pure: no I/O, no clock, no randomness, deterministic iteration (pools in config order,
//! VMs sorted by creation time then id). `run`, `plan`, `simulate` and the tests all call
//! this one function. Every action carries a typed reason.
//!
//! The rules (documented for operators in `docs/policy.md`):
//!
//! * Demand of a pool = pending jobs it can run (a job several pools could run counts for
//!   the first in config order) + jobs running on its usable VMs.
//! * Target VMs = ceil((demand + max(idle_count, expected)) / capacity), capped by `limit`,
//!   where `expected` is the learned forecast of a recurring burst (usually 0).
//! * Usable VMs are creating, booting, idle, busy and parked ones. Active = usable minus
//!   parked. If active < target, parked VMs are unpaused first (most recently used first),
//!   then new VMs are created, capped by `limit` (every state counts), `max_growth`
//!   (creating + booting), quota headroom, create backoff and the circuit breaker.
//! * If active > target, the surplus idle VMs (least recently used first) are parked
//!   (runner paused) when `park_surplus` is on; otherwise they are paused only once idle
//!   longer than `idle_time`. A paused, idle, surplus VM idle longer than `idle_time` is
//!   deleted.
//! * Removal protocol: a VM whose runner has contacted GitLab is deleted only when its runner
//!   is paused and runs no job; otherwise the planner pauses it first and waits. A VM with
//!   running jobs is never deleted.
//! * Retirement (`max_builds` reached), ERROR servers, boot timeouts, servers whose runner
//!   is gone and VMs of pools no longer configured are removed by that protocol. Runners
//!   of ours without a server are deleted once older than the boot timeout.
//! * When GitLab could not be read (`Observed::pending` is `None`), nothing is created,
//!   paused or deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{
    Backoff, FailureHistory, Observed, Policy, PoolPolicy, QuotaHeadroom, RunnerId, Timestamp, Vm,
    VmId, chrono_duration,
};
use crate::model::{CloudStatus, RunnerLink, RunnerView};

/// Per-pool inputs of [`PoolCtx::plan_pool`] besides the VMs.
struct PoolInputs {
    /// Pending jobs counted for the pool.
    pending: u32,
    /// Forecast arrivals within the look-ahead.
    expected: u32,
    /// VMs that may be on their way without a server seen (orphan runners, unknown creates).
    unsettled: u32,
    /// Wait-target mode: the forecast's reserve and how long surplus VMs are kept.
    reserve: Option<crate::reserve::Reserve>,
    /// Surplus VMs left unparked for jobs that arrive before the next poll.
    unparked_buffer: u32,
}

/// Where a VM stands in its lifecycle, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VmState {
    /// Create accepted, server not ACTIVE yet.
    Creating,
    /// Server ACTIVE, runner has not contacted GitLab yet.
    Booting,
    /// Ready, unpaused, running nothing.
    Idle,
    /// Running at least one job.
    Busy,
    /// Runner paused while the VM stays up: takes no job, can be unpaused instantly.
    Parked,
    /// Being removed: runner paused or about to be, waiting for running jobs to end.
    Draining,
    /// ERROR, boot timeout, or runner gone: will be removed.
    Failed,
    /// Server delete in progress.
    Deleting,
    /// GitLab did not report the VM's runner and its absence is not proven: counts against
    /// `limit`, is no capacity, and is never deleted (it might be running a job).
    Unknown,
    /// The runner stopped contacting GitLab while its server is ACTIVE: no capacity,
    /// replaced, and removed once GitLab says it runs no job.
    Offline,
}

impl VmState {
    /// Lowercase name for tables, logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            VmState::Creating => "creating",
            VmState::Booting => "booting",
            VmState::Idle => "idle",
            VmState::Busy => "busy",
            VmState::Parked => "parked",
            VmState::Draining => "draining",
            VmState::Failed => "failed",
            VmState::Deleting => "deleting",
            VmState::Unknown => "unknown",
            VmState::Offline => "offline",
        }
    }

    /// All states in display order.
    pub const ALL: [VmState; 10] = [
        VmState::Creating,
        VmState::Booting,
        VmState::Idle,
        VmState::Busy,
        VmState::Parked,
        VmState::Draining,
        VmState::Failed,
        VmState::Deleting,
        VmState::Unknown,
        VmState::Offline,
    ];
}

/// Why a VM is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CreateReason {
    /// Pending or running jobs need more slots than the active VMs have.
    Demand,
    /// Demand is covered; this keeps `idle_count` slots warm.
    IdleFloor,
    /// A burst that recurred at this time of day is expected soon (learned from history).
    Forecast,
}

/// Why a VM is removed (drained, then deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemoveReason {
    /// Surplus VM idle longer than `idle_time`.
    IdleTimeout,
    /// The VM has run `max_builds` jobs.
    MaxBuilds,
    /// The runner did not contact GitLab within `boot_timeout`.
    BootTimeout,
    /// The server is in ERROR.
    CloudError,
    /// The server's runner no longer exists in GitLab.
    RunnerMissing,
    /// More VMs than `limit` (e.g. a period lowered it): idle ones go first.
    OverLimit,
    /// The VM belongs to a pool that is no longer configured.
    UnknownPool,
    /// The runner stopped contacting GitLab (last contact older than `offline_after`).
    RunnerOffline,
    /// The server has been deleting for longer than `delete_retry`: delete it again.
    DeleteRetry,
}

/// Why a runner is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PauseReason {
    /// Surplus idle VM parked so new jobs land on the VMs that stay.
    Park,
    /// First step of removing the VM.
    Drain(RemoveReason),
}

/// Why an action is taken on a runner without a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunnerReason {
    /// The runner's server does not exist (past the grace period).
    NoServer,
}

/// One step the reconciler should take. Every variant names its pool (for metrics) and
/// carries a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a runner, then a server for it.
    Create {
        /// Pool to grow.
        pool: String,
        /// Why.
        reason: CreateReason,
    },
    /// Pause a VM's runner.
    Pause {
        /// Pool of the VM.
        pool: String,
        /// The VM.
        vm: VmId,
        /// Its runner.
        runner: RunnerId,
        /// Why.
        reason: PauseReason,
    },
    /// Unpause a parked VM's runner because demand came back.
    Unpause {
        /// Pool of the VM.
        pool: String,
        /// The VM.
        vm: VmId,
        /// Its runner.
        runner: RunnerId,
    },
    /// Delete a VM's runner (if any) and then its server. Only planned when the runner is
    /// absent, never contacted GitLab, or is paused with no running job.
    Delete {
        /// Pool of the VM.
        pool: String,
        /// The VM.
        vm: VmId,
        /// Its runner, when it still exists.
        runner: Option<RunnerId>,
        /// Why.
        reason: RemoveReason,
    },
    /// Delete a runner of ours that has no server.
    DeleteRunner {
        /// Pool, when the runner names one.
        pool: Option<String>,
        /// The runner.
        runner: RunnerId,
        /// Why.
        reason: RunnerReason,
    },
}

impl Action {
    /// Short kind name, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Pause { .. } => "pause",
            Action::Unpause { .. } => "unpause",
            Action::Delete { .. } => "delete",
            Action::DeleteRunner { .. } => "delete_runner",
        }
    }

    /// Reason as a snake_case label, for logs and metric labels.
    pub fn reason_label(&self) -> &'static str {
        match self {
            Action::Create { reason, .. } => match reason {
                CreateReason::Demand => "demand",
                CreateReason::IdleFloor => "idle_floor",
                CreateReason::Forecast => "forecast",
            },
            Action::Pause { reason, .. } => match reason {
                PauseReason::Park => "park",
                PauseReason::Drain(r) => r.label(),
            },
            Action::Unpause { .. } => "demand_returned",
            Action::Delete { reason, .. } => reason.label(),
            Action::DeleteRunner { reason, .. } => match reason {
                RunnerReason::NoServer => "no_server",
            },
        }
    }
}

impl RemoveReason {
    /// snake_case label.
    pub fn label(self) -> &'static str {
        match self {
            RemoveReason::IdleTimeout => "idle_timeout",
            RemoveReason::MaxBuilds => "max_builds",
            RemoveReason::BootTimeout => "boot_timeout",
            RemoveReason::CloudError => "cloud_error",
            RemoveReason::RunnerMissing => "runner_missing",
            RemoveReason::OverLimit => "over_limit",
            RemoveReason::UnknownPool => "unknown_pool",
            RemoveReason::RunnerOffline => "runner_offline",
            RemoveReason::DeleteRetry => "delete_retry",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Create { pool, .. } => write!(f, "create a VM in pool {pool}"),
            Action::Pause { vm, runner, .. } => write!(f, "pause runner {runner} of VM {vm}"),
            Action::Unpause { vm, runner, .. } => {
                write!(f, "unpause runner {runner} of VM {vm}")
            }
            Action::Delete { vm, runner, .. } => match runner {
                Some(r) => write!(f, "delete runner {r} and VM {vm}"),
                None => write!(f, "delete VM {vm}"),
            },
            Action::DeleteRunner { runner, .. } => write!(f, "delete runner {runner}"),
        }
    }
}

/// What bounded a pool's growth this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    /// `limit` reached (VMs in every state count).
    Limit,
    /// `max_growth` VMs are already creating or booting.
    MaxGrowth,
    /// The cloud quota has no room.
    Quota,
    /// Waiting after a failed create or boot, until the given time.
    Backoff(Timestamp),
    /// Too many consecutive failures: no creates until the given time, then one probe.
    CircuitOpen(Timestamp),
    /// The controller has just started without a stored memory: it creates once it has
    /// seen GitLab's runners on two ticks (one listing is no proof that none is missing).
    Starting(Timestamp),
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cap::Limit => f.write_str("limit reached"),
            Cap::MaxGrowth => f.write_str("max_growth reached"),
            Cap::Quota => f.write_str("quota exhausted"),
            Cap::Backoff(t) => write!(f, "backing off after a failure until {}", t.to_rfc3339()),
            Cap::CircuitOpen(t) => write!(
                f,
                "circuit breaker open (repeated failures) until {}",
                t.to_rfc3339()
            ),
            Cap::Starting(t) => write!(
                f,
                "just started: runners are read twice before the first create (until {})",
                t.to_rfc3339()
            ),
        }
    }
}

/// The planner's view of one pool, for `plan` output, `status`, metrics and the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPlan {
    /// Pool name.
    pub pool: String,
    /// Pending jobs counted for this pool.
    pub pending: u32,
    /// Jobs running on this pool's usable VMs.
    pub running: u32,
    /// Target number of active VMs (before caps other than `limit`).
    pub target: u32,
    /// Every VM of the pool with its state, in planning order.
    pub vms: Vec<(VmId, VmState)>,
    /// What held growth back, if anything did.
    pub caps: Vec<Cap>,
    /// VMs that may be on their way but are not seen as servers (runners of ours without
    /// a server, creates whose outcome is unknown): counted against `limit`.
    pub unsettled: u32,
    /// Wait-target mode: the reserve the forecast asked for and why.
    pub reserve: Option<crate::reserve::Reserve>,
}

impl PoolPlan {
    /// Number of VMs in the given state.
    pub fn count(&self, state: VmState) -> u32 {
        self.vms.iter().filter(|(_, s)| *s == state).count() as u32
    }
}

/// The result of planning: per-pool summaries and the actions to take.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// One summary per configured pool, in config order.
    pub pools: Vec<PoolPlan>,
    /// Actions, pools in config order; within a pool: unpause, create, pause, delete.
    pub actions: Vec<Action>,
    /// GitLab could not be read: the plan holds no action.
    pub gitlab_unavailable: bool,
    /// VMs whose pool is not configured, by pool name (they are drained and deleted).
    pub unknown_pool_vms: Vec<(VmId, VmState)>,
}

impl Plan {
    /// True when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The summary of one pool.
    pub fn pool(&self, name: &str) -> Option<&PoolPlan> {
        self.pools.iter().find(|p| p.pool == name)
    }
}

/// Plans one tick. Pure and deterministic: see the module documentation for the rules.
pub fn plan(obs: &Observed, policy: &Policy, now: Timestamp) -> Plan {
    let mut out = Plan {
        gitlab_unavailable: obs.pending.is_none(),
        ..Plan::default()
    };
    let pending_by_pool = assign_pending(obs, policy);
    let mut quota = QuotaBudget::new(obs.quota);

    for (index, pool) in policy.pools.iter().enumerate() {
        let mut vms: Vec<&Vm> = obs.vms.iter().filter(|v| v.pool == pool.name).collect();
        vms.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let failures = obs.failures.get(&pool.name).copied().unwrap_or_default();
        let expected = obs.expected.get(&pool.name).copied().unwrap_or(0);
        let flavor = obs.flavors.get(&pool.name).copied();
        let mut ctx = PoolCtx {
            pool,
            now,
            offline_after: policy.offline_after,
            delete_retry: policy.delete_retry,
            poll_interval: policy.poll_interval,
            starting_until: obs.starting_until,
            backoff: policy.backoff,
            failures,
            actions: Vec::new(),
        };
        let unsettled = obs
            .orphan_runners
            .iter()
            .filter(|r| r.pool.as_deref() == Some(pool.name.as_str()))
            .count() as u32
            + obs.unsettled_creates.get(&pool.name).copied().unwrap_or(0);
        let summary = ctx.plan_pool(
            &vms,
            PoolInputs {
                pending: pending_by_pool[index],
                expected,
                unsettled,
                reserve: pool
                    .limits
                    .target_wait
                    .and_then(|_| obs.reserve.get(&pool.name).cloned()),
                unparked_buffer: obs.arrivals_per_poll.get(&pool.name).copied().unwrap_or(0),
            },
            &mut quota,
            flavor,
        );
        out.pools.push(summary);
        if !out.gitlab_unavailable {
            out.actions.extend(ctx.actions);
        }
    }

    // VMs of pools that are no longer configured: drain and delete them.
    let mut unknown: Vec<&Vm> = obs
        .vms
        .iter()
        .filter(|v| !policy.pools.iter().any(|p| p.name == v.pool))
        .collect();
    unknown.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut unknown_actions = Vec::new();
    for vm in unknown {
        let state = if vm.phase == CloudStatus::Deleting {
            retry_stuck_delete(vm, policy.delete_retry, now, &mut unknown_actions);
            VmState::Deleting
        } else {
            remove_vm(vm, RemoveReason::UnknownPool, &mut unknown_actions)
        };
        out.unknown_pool_vms.push((vm.id.clone(), state));
    }

    // Runners of ours without a server, once past the grace period.
    let mut orphans: Vec<_> = obs.orphan_runners.iter().collect();
    orphans.sort_by_key(|r| r.id);
    for runner in orphans {
        let grace = runner
            .pool
            .as_deref()
            .and_then(|name| policy.pools.iter().find(|p| p.name == name))
            .map(|p| p.limits.boot_timeout)
            .or_else(|| policy.pools.iter().map(|p| p.limits.boot_timeout).max())
            .unwrap_or(std::time::Duration::from_secs(600));
        if runner.confirmed
            && now - runner.created_at > chrono_duration(grace)
            && runner.running_jobs == 0
        {
            unknown_actions.push(Action::DeleteRunner {
                pool: runner.pool.clone(),
                runner: runner.id,
                reason: RunnerReason::NoServer,
            });
        }
    }
    if !out.gitlab_unavailable {
        out.actions.extend(unknown_actions);
    }
    out
}

/// Counts pending jobs per pool: each job for the first pool (config order) that can run it.
fn assign_pending(obs: &Observed, policy: &Policy) -> Vec<u32> {
    let mut counts = vec![0u32; policy.pools.len()];
    for job in obs.pending.iter().flatten() {
        if let Some(i) = policy.pools.iter().position(|p| p.can_run(&job.tags)) {
            counts[i] += 1;
        }
    }
    counts
}

/// Instance headroom shared by all pools, consumed in config order.
struct QuotaBudget {
    quota: Option<QuotaHeadroom>,
}

impl QuotaBudget {
    fn new(quota: Option<QuotaHeadroom>) -> Self {
        QuotaBudget { quota }
    }

    /// How many servers of this flavor still fit.
    fn room(&self, flavor: Option<crate::model::FlavorSize>) -> Option<u32> {
        let q = self.quota?;
        let mut room = q.instances;
        if let Some(f) = flavor {
            if let (Some(cores), true) = (q.cores, f.vcpus > 0) {
                let by_cores = u32::try_from(cores / u64::from(f.vcpus)).unwrap_or(u32::MAX);
                room = Some(room.map_or(by_cores, |r| r.min(by_cores)));
            }
            if let (Some(ram), true) = (q.ram_mb, f.ram_mb > 0) {
                let by_ram = u32::try_from(ram / f.ram_mb).unwrap_or(u32::MAX);
                room = Some(room.map_or(by_ram, |r| r.min(by_ram)));
            }
        }
        room
    }

    fn consume(&mut self, n: u32, flavor: Option<crate::model::FlavorSize>) {
        if let Some(q) = self.quota.as_mut() {
            if let Some(i) = q.instances.as_mut() {
                *i = i.saturating_sub(n);
            }
            if let Some(f) = flavor {
                if let Some(c) = q.cores.as_mut() {
                    *c = c.saturating_sub(u64::from(n) * u64::from(f.vcpus));
                }
                if let Some(r) = q.ram_mb.as_mut() {
                    *r = r.saturating_sub(u64::from(n) * f.ram_mb);
                }
            }
        }
    }
}

/// Planning state for one pool.
struct PoolCtx<'a> {
    pool: &'a PoolPolicy,
    now: Timestamp,
    offline_after: std::time::Duration,
    delete_retry: std::time::Duration,
    poll_interval: std::time::Duration,
    starting_until: Option<Timestamp>,
    backoff: Backoff,
    failures: FailureHistory,
    actions: Vec<Action>,
}

/// A VM with its classification, during planning.
struct Classified<'a> {
    vm: &'a Vm,
    state: VmState,
    /// Set when the VM must go, with the reason.
    remove: Option<RemoveReason>,
    /// Parked by this plan (its runner is still unpaused in the observation).
    parked_now: bool,
}

impl<'a> PoolCtx<'a> {
    fn plan_pool(
        &mut self,
        vms: &[&'a Vm],
        inputs: PoolInputs,
        quota: &mut QuotaBudget,
        flavor: Option<crate::model::FlavorSize>,
    ) -> PoolPlan {
        let PoolInputs {
            pending,
            expected,
            unsettled,
            reserve: forecast,
            unparked_buffer,
        } = inputs;
        let limits = self.pool.limits;
        let capacity = self.pool.capacity.max(1);
        let mut classified: Vec<Classified<'a>> = vms.iter().map(|vm| self.classify(vm)).collect();

        let usable = |c: &Classified<'_>| {
            c.remove.is_none()
                && matches!(
                    c.state,
                    VmState::Creating
                        | VmState::Booting
                        | VmState::Idle
                        | VmState::Busy
                        | VmState::Parked
                )
        };
        let running: u32 = classified
            .iter()
            .filter(|c| usable(c))
            .filter_map(|c| c.vm.runner.as_ref())
            .map(|r| r.running_jobs)
            .sum();
        let demand = pending.saturating_add(running);
        // Wait-target mode: the forecast's reserve, `idle_count` as its floor; surplus VMs
        // are kept for the break-even time (at most `idle_time`) instead of `idle_time`.
        let reserve = limits
            .idle_count
            .max(expected)
            .max(forecast.as_ref().map_or(0, |r| r.slots));
        let keep = forecast
            .as_ref()
            .map_or(limits.idle_time, |r| r.keep.min(limits.idle_time));
        let need = demand.saturating_add(reserve).div_ceil(capacity);
        let target = need.min(limits.limit);
        let total = classified.len() as u32;

        // Over the limit (a period lowered it, or a race): remove idle VMs beyond it,
        // least recently used first, parked before unpaused.
        if total > limits.limit {
            let mut excess = total - limits.limit;
            excess = excess.saturating_sub(
                classified
                    .iter()
                    .filter(|c| c.remove.is_some() || !usable(c))
                    .count() as u32,
            );
            let mut order: Vec<usize> = (0..classified.len())
                .filter(|&i| {
                    usable(&classified[i])
                        && matches!(classified[i].state, VmState::Idle | VmState::Parked)
                        && classified[i]
                            .vm
                            .runner
                            .as_ref()
                            .is_some_and(|r| r.running_jobs == 0)
                })
                .collect();
            order.sort_by_key(|&i| {
                (
                    classified[i].state != VmState::Parked,
                    idle_since(classified[i].vm),
                )
            });
            for i in order.into_iter().take(excess as usize) {
                classified[i].remove = Some(RemoveReason::OverLimit);
            }
        }

        let parked_idx: Vec<usize> = (0..classified.len())
            .filter(|&i| usable(&classified[i]) && classified[i].state == VmState::Parked)
            .collect();
        let active =
            classified.iter().filter(|c| usable(c)).count() as u32 - parked_idx.len() as u32;

        let mut unparked = 0u32;
        let mut caps = Vec::new();
        if active < target {
            // Unpark first: instant capacity, no boot. Busy parked VMs first (they are in
            // use anyway), then most recently used.
            let mut order = parked_idx.clone();
            order.sort_by_key(|&i| {
                let vm = classified[i].vm;
                let busy = vm.runner.as_ref().is_some_and(|r| r.running_jobs > 0);
                (std::cmp::Reverse(busy), std::cmp::Reverse(idle_since(vm)))
            });
            for i in order.into_iter().take((target - active) as usize) {
                if let Some(r) = classified[i].vm.runner.as_ref() {
                    self.actions.push(Action::Unpause {
                        pool: self.pool.name.clone(),
                        vm: classified[i].vm.id.clone(),
                        runner: r.id,
                    });
                }
                classified[i].state = VmState::Idle;
                unparked += 1;
            }
        }
        let active_after = active + unparked;
        if active_after < target {
            let want = target - active_after;
            let mut allowed = want;
            // Unsettled VMs (a runner without a server, a create whose outcome is unknown)
            // may still appear: they count against `limit` and `max_growth`.
            let limit_room = limits.limit.saturating_sub(total.saturating_add(unsettled));
            if limit_room < allowed {
                allowed = limit_room;
                caps.push(Cap::Limit);
            }
            let in_flight = classified
                .iter()
                .filter(|c| matches!(c.state, VmState::Creating | VmState::Booting))
                .count() as u32
                + unsettled;
            if limits.max_growth > 0 {
                let growth_room = limits.max_growth.saturating_sub(in_flight);
                if growth_room < allowed {
                    allowed = growth_room;
                    caps.push(Cap::MaxGrowth);
                }
            }
            if let Some(room) = quota.room(flavor) {
                if room < allowed {
                    allowed = room;
                    caps.push(Cap::Quota);
                }
            }
            if let Some((cap, room)) = self.failure_gate(in_flight) {
                if room < allowed {
                    allowed = room;
                    caps.push(cap);
                }
            }
            if let Some(until) = self.starting_until.filter(|_| allowed > 0) {
                allowed = 0;
                caps.push(Cap::Starting(until));
            }
            let creates = allowed;
            quota.consume(creates, flavor);
            let for_demand = demand.div_ceil(capacity).saturating_sub(active_after);
            let for_idle = demand
                .saturating_add(limits.idle_count)
                .div_ceil(capacity)
                .saturating_sub(active_after);
            for i in 0..creates {
                self.actions.push(Action::Create {
                    pool: self.pool.name.clone(),
                    reason: if i < for_demand {
                        CreateReason::Demand
                    } else if i < for_idle {
                        CreateReason::IdleFloor
                    } else {
                        CreateReason::Forecast
                    },
                });
            }
        } else if active_after > target {
            // Surplus: idle, unpaused VMs beyond the target, least recently used first.
            let surplus = active_after - target;
            let mut idle: Vec<usize> = (0..classified.len())
                .filter(|&i| classified[i].remove.is_none() && classified[i].state == VmState::Idle)
                .collect();
            idle.sort_by_key(|&i| (idle_since(classified[i].vm), classified[i].vm.id.clone()));
            // The most recently used of them stay unparked, enough VMs for
            // `unparked_buffer` jobs: jobs that arrive before the next poll find an
            // unpaused runner.
            let parkable = surplus.saturating_sub(unparked_buffer.div_ceil(capacity)) as usize;
            for (k, i) in idle.into_iter().take(surplus as usize).enumerate() {
                let vm = classified[i].vm;
                let may_park = k < parkable;
                let idle_long = self.idle_for(vm) > chrono_duration(keep) && self.paid_up(vm);
                if idle_long {
                    // Already idle past idle_time: drain it for deletion right away.
                    classified[i].remove = Some(RemoveReason::IdleTimeout);
                } else if self.pool.park_surplus && may_park {
                    if let Some(r) = vm.runner.as_ref() {
                        self.actions.push(Action::Pause {
                            pool: self.pool.name.clone(),
                            vm: vm.id.clone(),
                            runner: r.id,
                            reason: PauseReason::Park,
                        });
                        classified[i].state = VmState::Parked;
                        classified[i].parked_now = true;
                    }
                }
            }
        }

        // Parked VMs that stay parked (surplus) and have idled out are deleted.
        if active_after >= target {
            for c in classified.iter_mut() {
                if c.remove.is_none()
                    && c.state == VmState::Parked
                    && !c.parked_now
                    && self.idle_for(c.vm) > chrono_duration(keep)
                    && self.paid_up(c.vm)
                {
                    c.remove = Some(RemoveReason::IdleTimeout);
                }
            }
        }

        // Removal protocol for everything marked; deletes that do not finish are re-issued.
        let mut states = Vec::with_capacity(classified.len());
        for c in &classified {
            let state = match c.remove {
                Some(reason) => remove_vm(c.vm, reason, &mut self.actions),
                None if c.state == VmState::Deleting => {
                    retry_stuck_delete(c.vm, self.delete_retry, self.now, &mut self.actions);
                    VmState::Deleting
                }
                None => c.state,
            };
            states.push((c.vm.id.clone(), state));
        }

        PoolPlan {
            pool: self.pool.name.clone(),
            pending,
            running,
            target,
            vms: states,
            caps,
            unsettled,
            reserve: forecast,
        }
    }

    /// Classifies one VM and marks it for removal when it must go.
    fn classify(&self, vm: &'a Vm) -> Classified<'a> {
        let limits = self.pool.limits;
        let age = self.now - vm.created_at;
        let booting_too_long = age > chrono_duration(limits.boot_timeout);
        let offline = |r: &RunnerView| {
            vm.phase.is_up()
                && r.contacted_at
                    .is_some_and(|c| self.now - c > chrono_duration(self.offline_after))
        };
        let (state, remove) = match (&vm.phase, &vm.runner) {
            (CloudStatus::Deleting, _) => (VmState::Deleting, None),
            // Not proven gone: it might be running a job. Wait, count it, touch nothing.
            (_, None) if vm.runner_link != RunnerLink::Gone => (VmState::Unknown, None),
            // GitLab answered 404 twice: no job can run here.
            (_, None) => (VmState::Failed, Some(RemoveReason::RunnerMissing)),
            (CloudStatus::Error { .. }, _) => (VmState::Failed, Some(RemoveReason::CloudError)),
            (_, Some(r)) if offline(r) => (VmState::Offline, Some(RemoveReason::RunnerOffline)),
            (phase, Some(r)) if r.contacted_at.is_none() && r.running_jobs == 0 => {
                if booting_too_long {
                    (VmState::Failed, Some(RemoveReason::BootTimeout))
                } else if *phase == CloudStatus::Building {
                    (VmState::Creating, None)
                } else {
                    (VmState::Booting, None)
                }
            }
            (_, Some(r)) => {
                let retiring = limits.max_builds > 0 && r.jobs_run >= limits.max_builds;
                if retiring {
                    (VmState::Draining, Some(RemoveReason::MaxBuilds))
                } else if r.paused {
                    (VmState::Parked, None)
                } else if r.running_jobs > 0 {
                    (VmState::Busy, None)
                } else {
                    (VmState::Idle, None)
                }
            }
        };
        Classified {
            vm,
            state,
            remove,
            parked_now: false,
        }
    }

    /// How long a VM has been without work.
    fn idle_for(&self, vm: &Vm) -> chrono::Duration {
        self.now - idle_since(vm)
    }

    /// Whether removing a surplus VM now wastes no paid time: always with per-second
    /// billing; with a `billing_period`, only in the last stretch of a paid period (two
    /// poll intervals and a minute for the delete, at most half the period), so a VM
    /// already paid for stays available until just before the next period would be billed.
    fn paid_up(&self, vm: &Vm) -> bool {
        let Some(period) = self.pool.billing_period.filter(|p| !p.is_zero()) else {
            return true;
        };
        let margin = (self.poll_interval * 2 + std::time::Duration::from_secs(60)).min(period / 2);
        let age = (self.now - vm.created_at).to_std().unwrap_or_default();
        let into = Duration::from_nanos(
            u64::try_from(age.as_nanos() % period.as_nanos()).unwrap_or(u64::MAX),
        );
        period - into <= margin
    }

    /// Creates allowed by the failure history: `None` = no restriction.
    fn failure_gate(&self, in_flight: u32) -> Option<(Cap, u32)> {
        let n = self.failures.consecutive;
        let last = self.failures.last_failure_at?;
        if n == 0 {
            return None;
        }
        if n >= self.backoff.breaker_threshold {
            let until = last + chrono_duration(self.backoff.breaker_cooldown);
            if self.now < until {
                return Some((Cap::CircuitOpen(until), 0));
            }
            // Half-open: one probe at a time.
            return Some((Cap::CircuitOpen(until), u32::from(in_flight == 0)));
        }
        let exp = self
            .backoff
            .base
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(self.backoff.max);
        let until = last + chrono_duration(exp);
        if self.now < until {
            Some((Cap::Backoff(until), 0))
        } else {
            None
        }
    }
}

/// When the VM last did work: its last job start or finish, else its creation.
pub fn idle_since(vm: &Vm) -> Timestamp {
    vm.runner
        .as_ref()
        .and_then(|r| r.last_job_at)
        .map_or(vm.created_at, |t| t.max(vm.created_at))
}

/// Re-issues the delete of a server that has been deleting for longer than `retry`.
fn retry_stuck_delete(
    vm: &Vm,
    retry: std::time::Duration,
    now: Timestamp,
    actions: &mut Vec<Action>,
) {
    if vm
        .deleting_since
        .is_some_and(|since| now - since > chrono_duration(retry))
    {
        actions.push(Action::Delete {
            pool: vm.pool.clone(),
            vm: vm.id.clone(),
            runner: vm.runner.as_ref().map(|r| r.id),
            reason: RemoveReason::DeleteRetry,
        });
    }
}

/// Applies the removal protocol to one VM and returns the state it is in.
fn remove_vm(vm: &Vm, reason: RemoveReason, actions: &mut Vec<Action>) -> VmState {
    let pool = vm.pool.clone();
    match &vm.runner {
        // Unknown is never proof of absence: nothing is deleted that might be busy.
        None if vm.runner_link != RunnerLink::Gone => VmState::Unknown,
        None => {
            actions.push(Action::Delete {
                pool,
                vm: vm.id.clone(),
                runner: None,
                reason,
            });
            VmState::Failed
        }
        Some(r) if r.running_jobs == 0 && (r.paused || r.contacted_at.is_none()) => {
            actions.push(Action::Delete {
                pool,
                vm: vm.id.clone(),
                runner: Some(r.id),
                reason,
            });
            deleting_state(reason)
        }
        Some(RunnerView {
            id, paused: false, ..
        }) => {
            actions.push(Action::Pause {
                pool,
                vm: vm.id.clone(),
                runner: *id,
                reason: PauseReason::Drain(reason),
            });
            VmState::Draining
        }
        Some(_) => VmState::Draining,
    }
}

fn deleting_state(reason: RemoveReason) -> VmState {
    match reason {
        RemoveReason::CloudError | RemoveReason::BootTimeout | RemoveReason::RunnerMissing => {
            VmState::Failed
        }
        _ => VmState::Draining,
    }
}

/// Groups a plan's actions by kind and reason label, for summaries and metrics.
pub fn action_counts(plan: &Plan) -> BTreeMap<(&'static str, &'static str), u32> {
    let mut m = BTreeMap::new();
    for a in &plan.actions {
        *m.entry((a.kind(), a.reason_label())).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests;
