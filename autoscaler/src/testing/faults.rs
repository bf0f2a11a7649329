//! Fault injection for the seeded fault simulation (`autoscaler/tests/fault_sim.rs`).
//!
//! [`Faults`] is the simulation's shared world: the two fakes, a deterministic PRNG
//! ([`SimRng`]), the fault classes switched on ([`FaultSet`]) with their per-seed rates
//! ([`FaultRates`]), scheduled job arrivals, the event log and the safety invariants.
//! [`FaultGitLab`] and [`FaultCloud`] wrap [`FakeGitLab`] and [`FakeCloud`] and implement
//! the ports: every call first sleeps a drawn latency, brings the world up to now (runners
//! of ACTIVE servers contact GitLab and take jobs, delayed creates appear, jobs arrive),
//! may be the moment the controller is killed, may fail or lose its answer, and afterwards
//! the safety invariants are checked again. [`SkewClock`] is the controller's clock, off
//! the APIs' clocks by at most [`MAX_CLOCK_SKEW`].
//!
//! Safety invariants checked here ([`Faults::check_safety`], after every port call, before
//! every server delete and after every simulation step):
//!
//! * **I1**: no running job is on a runner that was deleted (no job killed in
//!   [`FakeGitLab::killed_jobs`]) or on a server that was deleted (a `delete_server` of a
//!   server whose runner, by its `autoscaler-runner-id` metadata, runs a job).
//! * **I2**: per pool, servers that exist in the cloud (building, active, error or still
//!   deleting) never outnumber the pool's `limit`.
//!
//! The liveness invariant (I3: everything converges once faults stop) needs the harness's
//! notion of "done" and lives in the test.
//!
//! A SIGKILL-style restart: at a drawn port call the wrapper marks the controller
//! generation dead, wakes [`Faults::killed`] and never answers; every later call of that
//! generation never answers either (a killed process makes no further calls). The harness
//! drops the tick in flight and builds a new reconciler from [`Faults::restart`]'s
//! generation; the fakes keep their state.
//!
//! Everything is deterministic for a seed: the runtime is tokio's current-thread one with
//! paused time, all randomness comes from [`SimRng`], and every collection iterates in a
//! fixed order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::reconcile::Clock;
use crate::sim::world::Rng;
use autoscaler_core::model::{PendingJob, RunnerId, Timestamp};
use autoscaler_core::ports::{
    Cloud, CloudError, CloudErrorKind, CloudResult, CloudServer, CloudStatus, ComputeQuota,
    CreateRunner, CreateServer, GitLab, GitLabError, GitLabResult, NewRunner, OwnedRunner,
    ServerId,
};
use autoscaler_core::testing::cloud::FakeCloud;
use autoscaler_core::testing::gitlab::{FakeGitLab, FakeJobState};

/// Largest offset between the controller's clock and the APIs' clocks ([`SkewClock`]):
/// NTP-synchronised hosts are far closer; 30 s covers a host whose NTP daemon is broken
/// for a while, and stays well below every timeout the planner measures (boot timeout,
/// idle time, orphan grace are minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

// ===================================================================================
// PRNG
// ===================================================================================

/// The simulator's SplitMix64 ([`Rng`]), seeded per stream: the same sequence on every
/// platform.
#[derive(Debug, Clone)]
pub struct SimRng(Rng);

impl SimRng {
    /// A generator for `seed`; `stream` separates independent sequences of one seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng::new(seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        r.next_u64();
        SimRng(r)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.0.unit() < p
    }

    /// One element of `items`, `None` when empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = self.range(0, items.len() as u64 - 1) as usize;
        items.get(i)
    }
}

// ===================================================================================
// Fault classes
// ===================================================================================

/// One class of fault; each can be switched on alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `owned_runners` silently omits some of our runners (an offset page shifted, an admin
    /// edited the description for a while); `runner_by_id` still returns them.
    ListOmission,
    /// `owned_runners` fails because the listing was cut short (detected truncation).
    ListTruncation,
    /// 429, 5xx or a timeout on any port call, before anything happened.
    Transient,
    /// A mutating call whose answer is lost: it happened (a create may surface later, within
    /// the pool's boot timeout) but the caller gets a transient error.
    LostAnswer,
    /// `create_server` refused with a quota 403.
    Quota,
    /// A server goes to ERROR on its own (hypervisor failure); its runner stops.
    AsyncError,
    /// `delete_server` is accepted but the server stays listed as deleting until the
    /// delete is issued again (Nova's soft delete, a stuck `deleting` task state).
    StuckDelete,
    /// A runner stops contacting GitLab while its server stays ACTIVE; a job running on it
    /// stays "running" in GitLab until its duration ends.
    Offline,
    /// The controller is killed between two port calls and restarted with no memory.
    Restart,
    /// The controller's clock jumps within [`MAX_CLOCK_SKEW`].
    ClockSkew,
}

impl Fault {
    /// Every class.
    pub const ALL: [Fault; 10] = [
        Fault::ListOmission,
        Fault::ListTruncation,
        Fault::Transient,
        Fault::LostAnswer,
        Fault::Quota,
        Fault::AsyncError,
        Fault::StuckDelete,
        Fault::Offline,
        Fault::Restart,
        Fault::ClockSkew,
    ];

    /// Name used in `SIM_FAULTS` and reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::ListOmission => "list_omission",
            Fault::ListTruncation => "list_truncation",
            Fault::Transient => "transient",
            Fault::LostAnswer => "lost_answer",
            Fault::Quota => "quota",
            Fault::AsyncError => "async_error",
            Fault::StuckDelete => "stuck_delete",
            Fault::Offline => "offline",
            Fault::Restart => "restart",
            Fault::ClockSkew => "clock_skew",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of fault classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultSet(u16);

impl FaultSet {
    /// No fault at all (the baseline).
    pub const NONE: FaultSet = FaultSet(0);

    /// Every class.
    pub fn all() -> Self {
        Fault::ALL.iter().fold(FaultSet::NONE, |s, f| s.with(*f))
    }

    /// Just one class.
    pub fn only(f: Fault) -> Self {
        FaultSet::NONE.with(f)
    }

    /// This set plus `f`.
    pub fn with(self, f: Fault) -> Self {
        FaultSet(self.0 | f.bit())
    }

    /// Whether `f` is on.
    pub fn has(self, f: Fault) -> bool {
        self.0 & f.bit() != 0
    }

    /// Parses `all`, `none`, or a comma-separated list of [`Fault::name`]s.
    ///
    /// # Errors
    ///
    /// An unknown name, with the known ones.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = FaultSet::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => set = FaultSet::all(),
                "none" => {}
                name => match Fault::ALL.iter().find(|f| f.name() == name) {
                    Some(f) => set = set.with(*f),
                    None => {
                        let known: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                        return Err(format!(
                            "unknown fault class {name:?}; known: all, none, {}",
                            known.join(", ")
                        ));
                    }
                },
            }
        }
        Ok(set)
    }

    /// The names of the classes on, comma-separated (`none` when empty).
    pub fn names(self) -> String {
        let v: Vec<_> = Fault::ALL
            .iter()
            .filter(|f| self.has(**f))
            .map(|f| f.name())
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

/// Per-seed fault rates; a class that is off has rate 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    /// Per `owned_runners` call: omit one or two of our runners.
    pub omission: f64,
    /// Per `owned_runners` call: the listing is cut short (an error).
    pub truncation: f64,
    /// Per port call: a transient error before anything happened.
    pub transient: f64,
    /// Per mutating call: done, answer lost.
    pub lost_answer: f64,
    /// Per `create_server`: quota 403.
    pub quota: f64,
    /// Per simulation step: one server goes to ERROR.
    pub async_error: f64,
    /// Per `delete_server`: accepted, but the server stays deleting.
    pub stuck_delete: f64,
    /// Per simulation step: one online runner goes offline.
    pub offline: f64,
    /// Per port call: the controller is killed here.
    pub restart: f64,
    /// Per tick: the clock offset jumps.
    pub clock_jump: f64,
    /// Largest latency of one port call.
    pub max_latency: Duration,
}

impl FaultRates {
    /// Draws rates for the classes in `set`: each enabled class gets 0, half, one or two
    /// times its base rate, so that seeds mix classes in different proportions.
    pub fn draw(set: FaultSet, rng: &mut SimRng) -> Self {
        let mut r = |f: Fault, base: f64| {
            if set.has(f) {
                [0.0, 0.5, 1.0, 2.0][rng.range(0, 3) as usize] * base
            } else {
                0.0
            }
        };
        FaultRates {
            omission: r(Fault::ListOmission, 0.15),
            truncation: r(Fault::ListTruncation, 0.05),
            transient: r(Fault::Transient, 0.05),
            lost_answer: r(Fault::LostAnswer, 0.08),
            quota: r(Fault::Quota, 0.1),
            async_error: r(Fault::AsyncError, 0.01),
            stuck_delete: r(Fault::StuckDelete, 0.15),
            offline: r(Fault::Offline, 0.01),
            restart: r(Fault::Restart, 0.005),
            clock_jump: r(Fault::ClockSkew, 0.2),
            max_latency: Duration::from_millis(rng.range(0, 1500)),
        }
    }
}

// ===================================================================================
// Shared world
// ===================================================================================

/// A violated invariant.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// `I1`, `I2` or `I3`.
    pub invariant: &'static str,
    /// What was seen, with ids.
    pub detail: String,
    /// Simulated seconds since the start.
    pub at_secs: f64,
    /// Number of events logged when it was seen.
    pub event: usize,
}

/// What one pool allows, for the invariants.
#[derive(Debug, Clone, Copy)]
pub struct PoolBounds {
    /// `limit`.
    pub limit: u32,
    /// `boot_timeout`: a lost create surfaces within half of it.
    pub boot_timeout: Duration,
}

/// What the world holds for one seed besides the faults.
#[derive(Debug, Clone)]
pub struct WorldPlan {
    /// Bounds of every configured pool, by name.
    pub pools: BTreeMap<String, PoolBounds>,
    /// Range each server's boot time is drawn from.
    pub boot_delay: (Duration, Duration),
    /// Jobs to submit.
    pub arrivals: Vec<Arrival>,
}

/// A job the world will submit.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When it is submitted, as time since the start of the simulation.
    pub at: Duration,
    /// Its one tag (a pool's runner tag).
    pub tag: String,
    /// How long it runs.
    pub duration: Duration,
}

struct Inner {
    rng: SimRng,
    set: FaultSet,
    rates: FaultRates,
    /// Faults are injected only while true (the convergence phase turns it off).
    active: bool,
    generation: u64,
    dead: bool,
    kill: Arc<tokio::sync::Notify>,
    pools: BTreeMap<String, PoolBounds>,
    boot_delay: (Duration, Duration),
    arrivals: Vec<Arrival>,
    next_arrival: usize,
    delayed_creates: Vec<(Instant, CreateServer)>,
    /// Runners whose VM stopped contacting GitLab (offline or ERROR).
    offline: BTreeSet<RunnerId>,
    /// Runners of servers this controller deleted.
    deleted_hosts: BTreeSet<RunnerId>,
    /// Runners hidden from `owned_runners` until the given time (admin edits).
    hidden_until: BTreeMap<RunnerId, Instant>,
    clock_offset_ms: i64,
    log: Vec<String>,
    violation: Option<Violation>,
    injected: BTreeMap<Fault, u64>,
    calls: u64,
    checks: u64,
}

/// The simulation's shared world and fault injector. Clones share state.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
    gitlab: FakeGitLab,
    cloud: FakeCloud,
    t0: Instant,
    epoch: Timestamp,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

/// The port calls, for logs and decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    PendingJobs,
    OwnedRunners,
    RunnerById,
    CreateRunner,
    SetPaused,
    RunningJobs,
    DeleteRunner,
    ListServers,
    CreateServer,
    DeleteServer,
    Quota,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::PendingJobs => "pending_jobs",
            Call::OwnedRunners => "owned_runners",
            Call::RunnerById => "runner_by_id",
            Call::CreateRunner => "create_runner",
            Call::SetPaused => "set_paused",
            Call::RunningJobs => "running_jobs",
            Call::DeleteRunner => "delete_runner",
            Call::ListServers => "list_owned_servers",
            Call::CreateServer => "create_server",
            Call::DeleteServer => "delete_server",
            Call::Quota => "quota",
        }
    }

    fn mutates(self) -> bool {
        matches!(
            self,
            Call::CreateRunner
                | Call::SetPaused
                | Call::DeleteRunner
                | Call::CreateServer
                | Call::DeleteServer
        )
    }
}

/// What the injector decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Normal,
    /// Fail before anything happens.
    Transient,
    /// Do it, then answer with a transient error.
    LostAnswer,
    /// Quota 403 (create_server only).
    Quota,
    /// Accepted, but the server stays deleting (delete_server only).
    StuckDelete,
    /// The listing is cut short (owned_runners only).
    Truncate,
}

// === impl Faults ===

impl Faults {
    /// A world for one seed: both fakes must have been created just now (they count time
    /// from their creation, at 2025-01-01T00:00:00Z).
    pub fn new(
        gitlab: FakeGitLab,
        cloud: FakeCloud,
        rng: SimRng,
        set: FaultSet,
        rates: FaultRates,
        world: WorldPlan,
    ) -> Self {
        let WorldPlan {
            pools,
            boot_delay,
            mut arrivals,
        } = world;
        arrivals.sort_by_key(|a| a.at);
        let epoch = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        Faults {
            inner: Arc::new(Mutex::new(Inner {
                rng,
                set,
                rates,
                active: true,
                generation: 0,
                dead: false,
                kill: Arc::new(tokio::sync::Notify::new()),
                pools,
                boot_delay,
                arrivals,
                next_arrival: 0,
                delayed_creates: Vec::new(),
                offline: BTreeSet::new(),
                deleted_hosts: BTreeSet::new(),
                hidden_until: BTreeMap::new(),
                clock_offset_ms: 0,
                log: Vec::new(),
                violation: None,
                injected: BTreeMap::new(),
                calls: 0,
                checks: 0,
            })),
            gitlab,
            cloud,
            t0: Instant::now(),
            epoch,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wall-clock epoch of the fakes (and of an unskewed controller clock).
    pub fn epoch(&self) -> Timestamp {
        self.epoch
    }

    /// Simulated seconds since the start.
    pub fn secs(&self) -> f64 {
        Instant::now()
            .saturating_duration_since(self.t0)
            .as_secs_f64()
    }

    /// The fake GitLab behind the wrappers.
    pub fn fake_gitlab(&self) -> &FakeGitLab {
        &self.gitlab
    }

    /// The fake cloud behind the wrappers.
    pub fn fake_cloud(&self) -> &FakeCloud {
        &self.cloud
    }

    /// The GitLab port of the current controller generation.
    pub fn gitlab(&self) -> FaultGitLab {
        FaultGitLab {
            faults: self.clone(),
            generation: self.lock().generation,
        }
    }

    /// The cloud port of the current controller generation.
    pub fn cloud(&self) -> FaultCloud {
        FaultCloud {
            faults: self.clone(),
            generation: self.lock().generation,
        }
    }

    /// The controller's clock.
    pub fn clock(&self) -> SkewClock {
        SkewClock {
            faults: self.clone(),
        }
    }

    /// Wakes when the current generation is killed.
    pub fn killed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.lock().kill)
    }

    /// Starts a new controller generation after a kill.
    pub fn restart(&self) {
        let mut s = self.lock();
        s.generation += 1;
        s.dead = false;
        s.kill = Arc::new(tokio::sync::Notify::new());
        let g = s.generation;
        drop(s);
        self.log(format!("controller restarted (generation {g})"));
    }

    /// Stops (or resumes) fault injection: the convergence phase runs without faults.
    /// Runners already offline stay offline and ERROR servers stay in ERROR.
    pub fn set_active(&self, active: bool) {
        self.lock().active = active;
        self.log(format!(
            "fault injection {}",
            if active { "on" } else { "off" }
        ));
    }

    /// Appends one line to the event log.
    pub fn log(&self, line: impl AsRef<str>) {
        let t = self.secs();
        self.lock().log.push(format!("{t:>8.1}s {}", line.as_ref()));
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<Violation> {
        self.lock().violation.clone()
    }

    /// Records a violation (only the first one is kept).
    pub fn violate(&self, invariant: &'static str, detail: impl Into<String>) {
        let detail = detail.into();
        let at_secs = self.secs();
        let mut s = self.lock();
        if s.violation.is_none() {
            let event = s.log.len();
            s.log
                .push(format!("{at_secs:>8.1}s VIOLATION {invariant}: {detail}"));
            s.violation = Some(Violation {
                invariant,
                detail,
                at_secs,
                event,
            });
        }
    }

    /// The fault classes switched on.
    pub fn fault_set(&self) -> FaultSet {
        self.lock().set
    }

    /// Faults injected so far, by class.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.lock().injected.clone()
    }

    /// Port calls made so far and invariant checks evaluated.
    pub fn counters(&self) -> (u64, u64) {
        let s = self.lock();
        (s.calls, s.checks)
    }

    /// Counts one liveness check made by the harness.
    pub fn count_check(&self) {
        self.lock().checks += 1;
    }

    /// Runners whose VM stopped contacting GitLab.
    pub fn offline_runners(&self) -> BTreeSet<RunnerId> {
        self.lock().offline.clone()
    }

    /// Whether all scheduled jobs have been submitted and every delayed create has surfaced.
    pub fn world_settled(&self) -> bool {
        let s = self.lock();
        s.next_arrival >= s.arrivals.len() && s.delayed_creates.is_empty()
    }

    fn note(&self, f: Fault, line: String) {
        let mut s = self.lock();
        *s.injected.entry(f).or_insert(0) += 1;
        drop(s);
        self.log(format!("FAULT {}: {line}", f.name()));
    }

    /// Draws this step's world faults: a server going to ERROR, a runner going offline.
    /// Called by the harness between ticks.
    pub fn step_faults(&self) {
        let (err, off) = {
            let mut s = self.lock();
            if !s.active {
                return;
            }
            let (pe, po) = (s.rates.async_error, s.rates.offline);
            (s.rng.chance(pe), s.rng.chance(po))
        };
        if err {
            let candidates: Vec<CloudServer> = self
                .cloud
                .servers()
                .into_iter()
                .filter(|v| matches!(v.status, CloudStatus::Building | CloudStatus::Active))
                .collect();
            let chosen = {
                let mut s = self.lock();
                s.rng.pick(&candidates).cloned()
            };
            if let Some(v) = chosen {
                self.cloud.make_error(&v.id, Some("hypervisor lost"));
                if let Some(r) = v.runner_id {
                    self.lock().offline.insert(r);
                    self.gitlab.runner_vanished(r);
                }
                self.note(
                    Fault::AsyncError,
                    format!("server {} (runner {:?}) went to ERROR", v.id, v.runner_id),
                );
            }
        }
        if off {
            let candidates: Vec<(ServerId, RunnerId)> = {
                let offline = self.lock().offline.clone();
                self.cloud
                    .servers()
                    .into_iter()
                    .filter(|v| v.status == CloudStatus::Active)
                    .filter_map(|v| v.runner_id.map(|r| (v.id, r)))
                    .filter(|(_, r)| !offline.contains(r))
                    .collect()
            };
            let chosen = {
                let mut s = self.lock();
                s.rng.pick(&candidates).cloned()
            };
            if let Some((id, r)) = chosen {
                self.lock().offline.insert(r);
                self.gitlab.runner_vanished(r);
                self.note(
                    Fault::Offline,
                    format!("runner {r} of server {id} stopped contacting GitLab"),
                );
            }
        }
    }

    /// Draws a clock jump (once per tick).
    pub fn step_clock(&self) {
        let mut s = self.lock();
        if !s.active {
            return;
        }
        let p = s.rates.clock_jump;
        if s.rng.chance(p) {
            let bound = MAX_CLOCK_SKEW.as_millis() as i64;
            let off = s.rng.range(0, 2 * bound as u64) as i64 - bound;
            s.clock_offset_ms = off;
            *s.injected.entry(Fault::ClockSkew).or_insert(0) += 1;
            drop(s);
            self.log(format!(
                "FAULT clock_skew: controller clock now off by {off} ms"
            ));
        }
    }

    /// Brings the world up to now: scheduled jobs arrive, delayed creates surface, runners
    /// of ACTIVE servers contact GitLab (and take jobs), runners of ERROR or deleting
    /// servers stop.
    pub async fn sync_world(&self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.t0);
        let (arrivals, creates) = {
            let mut s = self.lock();
            let mut due = Vec::new();
            while let Some(a) = s.arrivals.get(s.next_arrival) {
                if a.at > elapsed {
                    break;
                }
                due.push(a.clone());
                s.next_arrival += 1;
            }
            let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.delayed_creates)
                .into_iter()
                .partition(|(t, _)| *t <= now);
            s.delayed_creates = later;
            (due, ready)
        };
        for a in arrivals {
            let id = self.gitlab.add_job(&[a.tag.as_str()], a.duration);
            self.log(format!(
                "job {id} submitted (tag {}, runs {} s)",
                a.tag,
                a.duration.as_secs()
            ));
        }
        for (_, req) in creates {
            let name = req.name.clone();
            match self.cloud.create_server(req).await {
                Ok(id) => self.log(format!("lost create of {name} surfaced as server {id}")),
                Err(e) => self.log(format!("lost create of {name} failed after all: {e}")),
            }
        }
        let offline = self.lock().offline.clone();
        for v in self.cloud.servers() {
            let Some(r) = v.runner_id else { continue };
            match v.status {
                CloudStatus::Active if !offline.contains(&r) => self.gitlab.runner_booted(r),
                CloudStatus::Active | CloudStatus::Building | CloudStatus::Other(_) => {}
                CloudStatus::Error { .. } | CloudStatus::Deleting => self.gitlab.runner_vanished(r),
            }
        }
    }

    /// Checks I1 and I2 now.
    pub fn check_safety(&self) {
        let deleted = {
            let mut s = self.lock();
            s.checks += 1;
            s.deleted_hosts.clone()
        };
        let killed = self.gitlab.killed_jobs();
        if let Some(j) = killed.first() {
            let on = self
                .gitlab
                .jobs()
                .into_iter()
                .find(|x| x.id == *j)
                .map(|x| x.state);
            self.violate(
                "I1",
                format!("job {j} was killed: its runner was deleted while it ran ({on:?})"),
            );
        }
        for job in self.gitlab.jobs() {
            if let FakeJobState::Running(r) = job.state {
                if deleted.contains(&r) {
                    self.violate(
                        "I1",
                        format!(
                            "job {} is running on runner {r} whose server was deleted",
                            job.id
                        ),
                    );
                }
            }
        }
        let pools = self.lock().pools.clone();
        let mut count: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in self.cloud.servers() {
            if let Some(p) = v.pool {
                count
                    .entry(p)
                    .or_default()
                    .push(format!("{}:{}", v.id, status_label(&v.status)));
            }
        }
        for (pool, servers) in count {
            if let Some(b) = pools.get(&pool) {
                if servers.len() as u32 > b.limit {
                    self.violate(
                        "I2",
                        format!(
                            "pool {pool} has {} servers, limit {}: {}",
                            servers.len(),
                            b.limit,
                            servers.join(" ")
                        ),
                    );
                }
            }
        }
    }

    /// Entry of every port call: dead generations never get an answer, then latency, the
    /// world catches up, and the injector decides. Never returns when the controller is
    /// killed here.
    async fn enter(&self, generation: u64, call: Call, detail: &str) -> Decision {
        self.park_if_dead(generation).await;
        let latency = {
            let mut s = self.lock();
            let max = s.rates.max_latency.as_millis() as u64;
            Duration::from_millis(s.rng.range(0, max))
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.park_if_dead(generation).await;
        self.sync_world().await;
        self.check_safety();
        let (decision, killed) = {
            let mut s = self.lock();
            s.calls += 1;
            let r = s.rates;
            if !s.active {
                (Decision::Normal, false)
            } else if s.rng.chance(r.restart) {
                s.dead = true;
                s.kill.notify_one();
                *s.injected.entry(Fault::Restart).or_insert(0) += 1;
                (Decision::Normal, true)
            } else {
                let d = if s.rng.chance(r.transient) {
                    Decision::Transient
                } else if call.mutates() && s.rng.chance(r.lost_answer) {
                    Decision::LostAnswer
                } else if call == Call::CreateServer && s.rng.chance(r.quota) {
                    Decision::Quota
                } else if call == Call::DeleteServer && s.rng.chance(r.stuck_delete) {
                    Decision::StuckDelete
                } else if call == Call::OwnedRunners && s.rng.chance(r.truncation) {
                    Decision::Truncate
                } else {
                    Decision::Normal
                };
                (d, false)
            }
        };
        if killed {
            self.log(format!(
                "FAULT restart: controller killed before {}({detail})",
                call.name()
            ));
            std::future::pending::<()>().await;
        }
        match decision {
            Decision::Normal => {}
            Decision::Transient => self.note(
                Fault::Transient,
                format!("{}({detail}) failed before doing anything", call.name()),
            ),
            Decision::LostAnswer => self.note(
                Fault::LostAnswer,
                format!("{}({detail}) done, answer lost", call.name()),
            ),
            Decision::Quota => self.note(
                Fault::Quota,
                format!("{}({detail}) refused: quota", call.name()),
            ),
            Decision::StuckDelete => self.note(
                Fault::StuckDelete,
                format!("{}({detail}) accepted but stuck deleting", call.name()),
            ),
            Decision::Truncate => self.note(
                Fault::ListTruncation,
                format!("{}({detail}) cut short", call.name()),
            ),
        }
        decision
    }

    /// Exit of every port call: the world catches up, the invariants are checked, and the
    /// outcome is logged. A killed generation never sees the answer.
    async fn leave(&self, generation: u64, call: Call, detail: &str, outcome: String) {
        self.sync_world().await;
        self.check_safety();
        self.log(format!("{}({detail}) -> {outcome}", call.name()));
        self.park_if_dead(generation).await;
    }

    async fn park_if_dead(&self, generation: u64) {
        let dead = {
            let s = self.lock();
            s.dead || s.generation != generation
        };
        if dead {
            std::future::pending::<()>().await;
        }
    }

    fn gitlab_transient(&self, what: &str) -> GitLabError {
        let k = self.lock().rng.range(0, 2);
        match k {
            0 => GitLabError::RateLimited {
                what: what.into(),
                retry_after: Duration::from_secs(5),
            },
            1 => GitLabError::Server {
                status: 502,
                what: what.into(),
            },
            _ => GitLabError::Unreachable {
                message: format!("{what}: timed out"),
            },
        }
    }

    fn cloud_transient(&self, what: &str) -> CloudError {
        let k = self.lock().rng.range(0, 2);
        let m = match k {
            0 => "429 Too Many Requests",
            1 => "503 Service Unavailable",
            _ => "timed out",
        };
        CloudError::new(CloudErrorKind::Transient, format!("{what}: {m}"))
    }
}

fn status_label(s: &CloudStatus) -> &'static str {
    match s {
        CloudStatus::Building => "BUILD",
        CloudStatus::Active => "ACTIVE",
        CloudStatus::Error { .. } => "ERROR",
        CloudStatus::Deleting => "DELETING",
        CloudStatus::Other(_) => "OTHER",
    }
}

fn outcome<T, E: std::fmt::Display>(r: &Result<T, E>, ok: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => format!("error: {e}"),
    }
}

// ===================================================================================
// Ports
// ===================================================================================

/// [`FakeGitLab`] behind the fault injector, for one controller generation.
#[derive(Debug, Clone)]
pub struct FaultGitLab {
    faults: Faults,
    generation: u64,
}

impl GitLab for FaultGitLab {
    async fn pending_jobs(&self) -> GitLabResult<Vec<PendingJob>> {
        let (f, g, c) = (&self.faults, self.generation, Call::PendingJobs);
        let d = f.enter(g, c, "").await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("jobs")),
            _ => f.gitlab.pending_jobs().await,
        };
        let o = outcome(&r, |v| {
            let ids: Vec<_> = v.iter().map(|j| j.id).collect();
            format!("{ids:?}")
        });
        f.leave(g, c, "", o).await;
        r
    }

    async fn owned_runners(&self) -> GitLabResult<Vec<OwnedRunner>> {
        let (f, g, c) = (&self.faults, self.generation, Call::OwnedRunners);
        let d = f.enter(g, c, "").await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("runners")),
            Decision::Truncate => Err(GitLabError::Unexpected {
                what: "runners".into(),
                message: "listing cut short at the page cap".into(),
            }),
            _ => match f.gitlab.owned_runners().await {
                Ok(mut list) => {
                    let now = Instant::now();
                    let (omit, hidden) = {
                        let mut s = f.lock();
                        s.hidden_until.retain(|_, t| *t > now);
                        let p = if s.active { s.rates.omission } else { 0.0 };
                        let mut omit = Vec::new();
                        if s.rng.chance(p) && !list.is_empty() {
                            let n = s.rng.range(1, 2);
                            for _ in 0..n {
                                let victim = s.rng.pick(&list).map(|x| x.id);
                                if let Some(victim) = victim.filter(|v| !omit.contains(v)) {
                                    // An admin edit lasts a while; a shifted page one call.
                                    if s.rng.chance(0.3) {
                                        let secs = s.rng.range(10, 120);
                                        s.hidden_until
                                            .insert(victim, now + Duration::from_secs(secs));
                                    }
                                    omit.push(victim);
                                }
                            }
                        }
                        if !s.active {
                            s.hidden_until.clear();
                        }
                        (omit, s.hidden_until.keys().copied().collect::<Vec<_>>())
                    };
                    if !omit.is_empty() {
                        f.note(
                            Fault::ListOmission,
                            format!("owned_runners omits runners {omit:?}"),
                        );
                    }
                    list.retain(|x| !omit.contains(&x.id) && !hidden.contains(&x.id));
                    Ok(list)
                }
                Err(e) => Err(e),
            },
        };
        let o = outcome(&r, |v| {
            let ids: Vec<_> = v
                .iter()
                .map(|x| format!("{}{}", x.id, if x.running_jobs > 0 { "*" } else { "" }))
                .collect();
            format!("[{}]", ids.join(" "))
        });
        f.leave(g, c, "", o).await;
        r
    }

    async fn runner_by_id(&self, id: RunnerId) -> GitLabResult<Option<OwnedRunner>> {
        let (f, g, c) = (&self.faults, self.generation, Call::RunnerById);
        let detail = id.to_string();
        let d = f.enter(g, c, &detail).await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("runner")),
            _ => f.gitlab.runner_by_id(id).await,
        };
        let o = outcome(&r, |v| match v {
            Some(x) => format!("found, {} running", x.running_jobs),
            None => "404".into(),
        });
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn create_runner(&self, req: CreateRunner) -> GitLabResult<NewRunner> {
        let (f, g, c) = (&self.faults, self.generation, Call::CreateRunner);
        let detail = req.description.clone();
        let d = f.enter(g, c, &detail).await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("create runner")),
            Decision::LostAnswer => match f.gitlab.create_runner(req).await {
                Ok(made) => {
                    f.log(format!(
                        "(runner {} exists though the answer was lost)",
                        made.id
                    ));
                    Err(f.gitlab_transient("create runner"))
                }
                Err(e) => Err(e),
            },
            _ => f.gitlab.create_runner(req).await,
        };
        let o = outcome(&r, |v| format!("runner {}", v.id));
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn set_paused(&self, id: RunnerId, paused: bool) -> GitLabResult<()> {
        let (f, g, c) = (&self.faults, self.generation, Call::SetPaused);
        let detail = format!("{id}, {paused}");
        let d = f.enter(g, c, &detail).await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("pause")),
            Decision::LostAnswer => match f.gitlab.set_paused(id, paused).await {
                Ok(()) => Err(f.gitlab_transient("pause")),
                Err(e) => Err(e),
            },
            _ => f.gitlab.set_paused(id, paused).await,
        };
        let o = outcome(&r, |_| "ok".into());
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn running_jobs(&self, id: RunnerId) -> GitLabResult<u32> {
        let (f, g, c) = (&self.faults, self.generation, Call::RunningJobs);
        let detail = id.to_string();
        let d = f.enter(g, c, &detail).await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("runner jobs")),
            _ => f.gitlab.running_jobs(id).await,
        };
        let o = outcome(&r, |n| n.to_string());
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn delete_runner(&self, id: RunnerId) -> GitLabResult<()> {
        let (f, g, c) = (&self.faults, self.generation, Call::DeleteRunner);
        let detail = id.to_string();
        let d = f.enter(g, c, &detail).await;
        let r = match d {
            Decision::Transient => Err(f.gitlab_transient("delete runner")),
            Decision::LostAnswer => match f.gitlab.delete_runner(id).await {
                Ok(()) => Err(f.gitlab_transient("delete runner")),
                Err(e) => Err(e),
            },
            _ => f.gitlab.delete_runner(id).await,
        };
        let o = outcome(&r, |_| "ok".into());
        f.leave(g, c, &detail, o).await;
        r
    }
}

/// [`FakeCloud`] behind the fault injector, for one controller generation.
#[derive(Debug, Clone)]
pub struct FaultCloud {
    faults: Faults,
    generation: u64,
}

impl Cloud for FaultCloud {
    async fn list_owned_servers(&self) -> CloudResult<Vec<CloudServer>> {
        let (f, g, c) = (&self.faults, self.generation, Call::ListServers);
        let d = f.enter(g, c, "").await;
        let r = match d {
            Decision::Transient => Err(f.cloud_transient("list servers")),
            _ => f.cloud.list_owned_servers().await,
        };
        let o = outcome(&r, |v| {
            let ids: Vec<_> = v
                .iter()
                .map(|x| {
                    format!(
                        "{}:{}:r{}",
                        x.id,
                        status_label(&x.status),
                        x.runner_id.map_or("-".into(), |r| r.to_string())
                    )
                })
                .collect();
            format!("[{}]", ids.join(" "))
        });
        f.leave(g, c, "", o).await;
        r
    }

    async fn create_server(&self, req: CreateServer) -> CloudResult<ServerId> {
        let (f, g, c) = (&self.faults, self.generation, Call::CreateServer);
        let detail = format!("{}, runner {:?}", req.name, req.runner_id);
        let d = f.enter(g, c, &detail).await;
        let boot = {
            let mut s = f.lock();
            let (lo, hi) = s.boot_delay;
            Duration::from_secs(s.rng.range(lo.as_secs(), hi.as_secs()))
        };
        f.cloud.set_boot_delay(boot);
        let r = match d {
            Decision::Transient => Err(f.cloud_transient("create server")),
            Decision::Quota => Err(CloudError::new(
                CloudErrorKind::Quota,
                "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances",
            )),
            Decision::LostAnswer => {
                // Surfaces now or later, but within half the pool's boot timeout.
                let delay = {
                    let mut s = f.lock();
                    let bt = s
                        .pools
                        .get(&req.pool)
                        .map_or(Duration::from_secs(60), |b| b.boot_timeout);
                    if s.rng.chance(0.5) {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(s.rng.range(1, (bt.as_secs() / 2).max(1)))
                    }
                };
                if delay.is_zero() {
                    match f.cloud.create_server(req).await {
                        Ok(id) => f.log(format!("(server {id} exists though the answer was lost)")),
                        Err(e) => f.log(format!("(lost create failed anyway: {e})")),
                    }
                } else {
                    f.log(format!(
                        "(server {} will surface in {} s)",
                        req.name,
                        delay.as_secs()
                    ));
                    f.lock().delayed_creates.push((Instant::now() + delay, req));
                }
                Err(f.cloud_transient("create server"))
            }
            _ => f.cloud.create_server(req).await,
        };
        let o = outcome(&r, |id| id.to_string());
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn delete_server(&self, id: &ServerId) -> CloudResult<()> {
        let (f, g, c) = (&self.faults, self.generation, Call::DeleteServer);
        let detail = id.to_string();
        let d = f.enter(g, c, &detail).await;
        let doomed = |f: &Faults| {
            let server = f.cloud.servers().into_iter().find(|v| &v.id == id);
            if let Some(r) = server.as_ref().and_then(|v| v.runner_id) {
                let busy: Vec<u64> = f
                    .gitlab
                    .jobs()
                    .into_iter()
                    .filter(|j| j.state == FakeJobState::Running(r))
                    .map(|j| j.id)
                    .collect();
                if !busy.is_empty() {
                    f.violate(
                        "I1",
                        format!("server {id} deleted while its runner {r} runs jobs {busy:?}"),
                    );
                }
                f.lock().deleted_hosts.insert(r);
                f.gitlab.runner_vanished(r);
            }
        };
        let r = match d {
            Decision::Transient => Err(f.cloud_transient("delete server")),
            Decision::StuckDelete => {
                doomed(f);
                if !f.cloud.make_stuck_deleting(id) {
                    // Not there or already going: an ordinary delete.
                    f.cloud.delete_server(id).await
                } else {
                    Ok(())
                }
            }
            Decision::LostAnswer => {
                doomed(f);
                match f.cloud.delete_server(id).await {
                    Ok(()) => Err(f.cloud_transient("delete server")),
                    Err(e) => Err(e),
                }
            }
            _ => {
                doomed(f);
                f.cloud.delete_server(id).await
            }
        };
        let o = outcome(&r, |_| "ok".into());
        f.leave(g, c, &detail, o).await;
        r
    }

    async fn quota(&self) -> CloudResult<ComputeQuota> {
        let (f, g, c) = (&self.faults, self.generation, Call::Quota);
        let d = f.enter(g, c, "").await;
        let r = match d {
            Decision::Transient => Err(f.cloud_transient("quota")),
            _ => f.cloud.quota().await,
        };
        let o = outcome(&r, |q| format!("{} used", q.used_instances));
        f.leave(g, c, "", o).await;
        r
    }
}

/// The controller's clock: the fakes' clock plus an offset within [`MAX_CLOCK_SKEW`]
/// that [`Faults::step_clock`] moves.
#[derive(Debug, Clone)]
pub struct SkewClock {
    faults: Faults,
}

impl Clock for SkewClock {
    fn now(&self) -> Timestamp {
        let f = &self.faults;
        let off = f.lock().clock_offset_ms;
        let elapsed = Instant::now().saturating_duration_since(f.t0);
        f.epoch
            + chrono::Duration::from_std(elapsed).unwrap_or_default()
            + chrono::Duration::milliseconds(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rng_repeats_per_seed_and_stays_in_range() {
        let draw = |seed| {
            let mut r = SimRng::new(seed, 1);
            (0..100).map(|_| r.range(3, 7)).collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
        assert!(draw(9).iter().all(|v| (3..=7).contains(v)));
        let mut r = SimRng::new(1, 2);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        assert_eq!(r.pick::<u8>(&[]), None);
    }

    #[test]
    fn fault_sets_parse_names_all_and_none() {
        assert_eq!(FaultSet::parse("all"), Ok(FaultSet::all()));
        assert_eq!(FaultSet::parse("none"), Ok(FaultSet::NONE));
        let s = FaultSet::parse("offline, restart").unwrap_or_default();
        assert!(s.has(Fault::Offline) && s.has(Fault::Restart) && !s.has(Fault::Quota));
        assert_eq!(s.names(), "offline,restart");
        assert!(FaultSet::parse("gremlins").is_err());
        for f in Fault::ALL {
            assert_eq!(FaultSet::parse(f.name()), Ok(FaultSet::only(f)));
        }
    }

    #[test]
    fn classes_that_are_off_get_no_rate() {
        let mut rng = SimRng::new(5, 0);
        let r = FaultRates::draw(FaultSet::only(Fault::Quota), &mut rng);
        assert_eq!(
            (r.omission, r.transient, r.lost_answer, r.restart, r.offline),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
    }
}
