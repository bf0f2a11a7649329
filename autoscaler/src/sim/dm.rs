//! A model of GitLab Runner's `docker+machine` executor, from its source
//! (`executors/docker/machine/provider.go`, `idle_limit_strategy.go`, `data.go`,
//! `coordinator.go`, `commands/multi.go`); each rule, its source and its test
//! (`dm_tests.rs`) are listed in docs/simulation.md, "docker+machine model: checked
//! against gitlab-runner's source".
//!
//! Per `[[runners]]` entry (one per pool), fed every `check_interval` (3 s), the entries
//! `check_interval / N` apart in config order (`feedRunners`):
//! 1. **Update pass**: machines are walked oldest first; each idle machine is judged only
//!    against the machines before it: removed when it has run `MaxBuilds` jobs, when
//!    `Total >= limit` (creating and removing machines count), or when idle longer than
//!    `IdleTime` while `Available >= IdleCount` (`Available = Creating + Idle`, with
//!    `IdleCountMin`/`IdleScaleFactor` at their 0 defaults, which this project's config
//!    does not carry).
//! 2. **Create pass**: `while !(Creating >= MaxGrowthRate || Total >= limit ||
//!    Available >= IdleCount) create()`.
//! 3. **Job slot**: no request while the entry holds `limit` jobs (waiting ones included).
//! 4. **Acquire**: the newest idle machine is taken; if none is idle and `IdleCount > 0`,
//!    no job is requested. With `IdleCount = 0` the job is taken and a machine is created
//!    for it (no machine-limit check on this path; the create waits for a `MaxGrowthRate`
//!    slot); the job runs on that machine once booted or on any machine freed or created
//!    before it (`createAndAcquireMachine`); if the create fails the job asks again.
//! 5. After each job is taken the runner asks again at once, with a fresh pass.
//! 6. On release the machine's last-used time is set; at `MaxBuilds` it is removed.
//!
//! A matching `[[runners.machine.autoscaling]]` block (the last one) replaces `IdleCount`
//! and `IdleTime` and zeroes the ones it leaves unset. Failed creates are billed until
//! removed. Not modelled: `concurrent`, the instant between taking a machine and the
//! job's `Use` (an acquired machine counts as available), and GitLab's fair scheduling
//! of instance runners (the world hands out jobs oldest first).

use std::collections::VecDeque;

use autoscaler_core::model::Limits;

use super::report::PolicyReport;
use super::world::{CHECK_INTERVAL, Phase, Secs, World};
use super::{LimitsCache, PeriodRule, SimSpec, Trace};

/// Seconds after a failed create before the machine is seen as failed.
const ERROR_AFTER_S: Secs = 20;

/// `machinesData`: the counts one update pass builds, machine by machine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Data {
    pub(crate) creating: u32,
    pub(crate) idle: u32,
    pub(crate) used: u32,
    pub(crate) removing: u32,
}

impl Data {
    fn available(&self) -> u32 {
        self.creating + self.idle
    }
    fn total(&self) -> u32 {
        self.creating + self.idle + self.used + self.removing
    }
}

/// The machine a job taken on the on-demand path asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// Being created (VM index).
    Vm(usize),
    /// Its create waits for a `MaxGrowthRate` slot.
    Queued,
    /// Its create failed: the job asks for a machine again.
    Failed,
}

/// A job this runner took with no machine for it (`IdleCount = 0`), waiting in
/// `createAndAcquireMachine` for its own machine or any machine that is free first.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    job: usize,
    own: Own,
}

/// Per `[[runners]]` entry state outside the machines themselves.
#[derive(Debug, Default)]
struct Runner {
    /// On-demand jobs waiting for a machine, oldest first.
    waiting: Vec<Waiter>,
    /// Creates waiting for a growth slot (`waitForGrowthCapacity`), oldest first, with the
    /// job they were asked for.
    queued: VecDeque<usize>,
    /// `runnerMachinesCoordinator.available`: machines signalled free (created or
    /// released) and not yet consumed by a waiting job's check.
    available: u32,
}

/// Runs the trace under the docker+machine model.
pub fn run(trace: &Trace, spec: &SimSpec) -> PolicyReport {
    run_world(trace, spec).0
}

/// Runs the trace and also returns each job's start second.
pub fn run_world(trace: &Trace, spec: &SimSpec) -> (PolicyReport, Vec<Option<Secs>>) {
    run_observed(trace, spec, &mut |_, _| {})
}

/// [`run_world`], showing the world to `observe` at the end of every simulated second.
pub(crate) fn run_observed(
    trace: &Trace,
    spec: &SimSpec,
    observe: &mut dyn FnMut(Secs, &World<'_>),
) -> (PolicyReport, Vec<Option<Secs>>) {
    let (start, end) = super::window(trace, spec);
    let mut world = World::new(
        &trace.jobs,
        spec.pools.iter().map(super::SimPool::matcher).collect(),
        spec.seed,
    );
    let mut cache = LimitsCache::new(PeriodRule::DockerMachine);
    // feedRunners: the entries are fed in config order, check_interval / N apart, so
    // entry p asks at p * check_interval / N within every check_interval.
    let n = spec.pools.len().max(1) as Secs;
    let offsets: Vec<Secs> = (0..spec.pools.len() as Secs)
        .map(|p| p * CHECK_INTERVAL / n)
        .collect();

    let mut runners: Vec<Runner> = (0..spec.pools.len()).map(|_| Runner::default()).collect();

    for t in start..=end {
        let _ = world.arrivals(t);
        // Every create that succeeds signals a free machine (createWithGrowthCapacity).
        let (ready, _) = world.lifecycle(t, ERROR_AFTER_S);
        for p in ready {
            runners[p].available += 1;
        }
        // Failed machines are removed at once; a job that waited for one asks again.
        for i in 0..world.vms.len() {
            if world.vms[i].phase == Phase::Error {
                world.delete_vm(i, t, spec.cloud.delete_s);
                for w in &mut runners[world.vms[i].pool].waiting {
                    if w.own == Own::Vm(i) {
                        w.own = Own::Failed;
                    }
                }
            }
        }
        let limits = cache.get(&spec.pools, t).to_vec();
        // Release: machines at MaxBuilds are removed when their job ends; the others
        // become idle and are signalled free (signalRelease).
        for i in world.finish_jobs(t) {
            let l = limits[world.vms[i].pool];
            if !world.vms[i].running.is_empty() {
                continue;
            }
            if l.max_builds > 0 && world.vms[i].jobs_run >= l.max_builds {
                world.delete_vm(i, t, spec.cloud.delete_s);
            } else {
                runners[world.vms[i].pool].available += 1;
            }
        }
        // Jobs waiting on the on-demand path check every second (and on each signal).
        for (p, r) in runners.iter_mut().enumerate() {
            serve_waiting(&mut world, spec, r, p, limits[p], t);
        }
        for (p, &offset) in offsets.iter().enumerate() {
            if (t - start).rem_euclid(CHECK_INTERVAL) == offset {
                acquire_loop(&mut world, spec, &mut runners[p], p, limits[p], t);
            }
        }
        if spec.sample_every_s > 0 && (t - start) % spec.sample_every_s == 0 {
            world.sample(t);
        }
        observe(t, &world);
    }
    world.close(end);
    let starts = world.records.iter().map(|r| r.started).collect();
    (
        PolicyReport::from_world("docker+machine", &world, &spec.pools, end),
        starts,
    )
}

/// One `check_interval` of one runner entry (`processRunner`): `Acquire` (update pass,
/// create pass, reserve the newest idle machine), the job-slot check, the job request, and
/// again at once after each job received.
fn acquire_loop(
    world: &mut World<'_>,
    spec: &SimSpec,
    runner: &mut Runner,
    pool: usize,
    l: Limits,
    t: Secs,
) {
    loop {
        // 1. Update pass, oldest first, each machine judged against those before it.
        let mut data = update_pass(world, pool, l, t, spec.cloud.delete_s);
        // Creates queued for a growth slot already exist as `Creating` details.
        data.creating += runner.queued.len() as u32;
        // 2. Create pass.
        while !((l.max_growth > 0 && data.creating >= l.max_growth)
            || (l.limit > 0 && data.total() >= l.limit)
            || data.available() >= l.idle_count)
        {
            let boot = spec.cloud.boot(&mut world.rng);
            let fails = world.rng.unit() < spec.cloud.create_failure_rate;
            world.create_vm(pool, t, boot, fails);
            data.creating += 1;
        }
        // 3. `limit` caps the jobs this runner holds (acquireBuild), waiting ones included.
        let running: u32 = world
            .vms
            .iter()
            .filter(|v| v.pool == pool && v.alive())
            .map(|v| v.running.len() as u32)
            .sum();
        if l.limit > 0 && running + runner.waiting.len() as u32 >= l.limit {
            return;
        }
        // 4. Acquire's machine: the newest idle one. None idle and IdleCount > 0: no
        //    request (NoFreeExecutorError); IdleCount = 0: request, machine on demand.
        let free = newest_idle(world, pool);
        let Some(pos) = (match free {
            Some(_) => world.oldest_runnable(pool),
            None if l.idle_count == 0 => world.oldest_runnable(pool),
            None => None,
        }) else {
            return;
        };
        match free {
            Some(vm) => world.start_job(pos, vm, t),
            None => {
                // Use -> useMachine: nothing free, so createAndAcquireMachine (no check
                // of the machine limit on this path).
                let job = world.pending.remove(pos);
                let own = request_machine(world, spec, runner, pool, l, t, job);
                runner.waiting.push(Waiter { job, own });
            }
        }
        // 5. A job was received: the runner is requeued and asks again at once.
    }
}

/// The newest idle machine of the pool (findFreeMachine walks the list newest first).
fn newest_idle(world: &World<'_>, pool: usize) -> Option<usize> {
    (0..world.vms.len()).rev().find(|&i| {
        let v = &world.vms[i];
        v.pool == pool && v.phase == Phase::Ready && v.running.is_empty()
    })
}

/// Machines being created right now (`coordinator.growing`).
fn growing(world: &World<'_>, pool: usize) -> u32 {
    world
        .vms
        .iter()
        .filter(|v| v.pool == pool && v.phase == Phase::Creating)
        .count() as u32
}

/// `create()` for an on-demand job: starts at once, or waits for a `MaxGrowthRate` slot.
fn request_machine(
    world: &mut World<'_>,
    spec: &SimSpec,
    runner: &mut Runner,
    pool: usize,
    l: Limits,
    t: Secs,
    job: usize,
) -> Own {
    if l.max_growth > 0 && growing(world, pool) >= l.max_growth {
        runner.queued.push_back(job);
        return Own::Queued;
    }
    let boot = spec.cloud.boot(&mut world.rng);
    let fails = world.rng.unit() < spec.cloud.create_failure_rate;
    Own::Vm(world.create_vm(pool, t, boot, fails))
}

/// Starts queued creates as growth slots free up, then lets each waiting on-demand job
/// take its own machine once booted or, first, any machine signalled free
/// (`createAndAcquireMachine`: whichever comes first). A job whose machine failed asks
/// for one again (`retryUseMachine`).
fn serve_waiting(
    world: &mut World<'_>,
    spec: &SimSpec,
    runner: &mut Runner,
    pool: usize,
    l: Limits,
    t: Secs,
) {
    while !runner.queued.is_empty() && (l.max_growth == 0 || growing(world, pool) < l.max_growth) {
        let Some(job) = runner.queued.pop_front() else {
            break;
        };
        let boot = spec.cloud.boot(&mut world.rng);
        let fails = world.rng.unit() < spec.cloud.create_failure_rate;
        let vm = world.create_vm(pool, t, boot, fails);
        // The job it was for may have taken another machine: then it just boots idle.
        if let Some(w) = runner
            .waiting
            .iter_mut()
            .find(|w| w.job == job && w.own == Own::Queued)
        {
            w.own = Own::Vm(vm);
        }
    }
    let mut i = 0;
    while i < runner.waiting.len() {
        let w = runner.waiting[i];
        let own_ready = match w.own {
            Own::Vm(v) => {
                let v = &world.vms[v];
                v.phase == Phase::Ready && v.running.is_empty()
            }
            _ => false,
        };
        let vm = if let (true, Own::Vm(v)) = (own_ready, w.own) {
            Some(v)
        } else if runner.available > 0 {
            runner.available -= 1;
            newest_idle(world, pool)
        } else if w.own == Own::Failed {
            newest_idle(world, pool)
        } else {
            None
        };
        match vm {
            Some(vm) => {
                world.pending.push(w.job);
                let pos = world.pending.len() - 1;
                world.start_job(pos, vm, t);
                runner.waiting.remove(i);
            }
            None => {
                if w.own == Own::Failed {
                    runner.waiting[i].own = request_machine(world, spec, runner, pool, l, t, w.job);
                }
                i += 1;
            }
        }
    }
}

/// `updateMachines` with `shouldRemoveIdle`: walks the pool's machines oldest first (the
/// order of `docker-machine ls`, names carry the creation time) and removes an idle one
/// when the counts of the machines *before* it say so. Returns the counts.
pub(crate) fn update_pass(
    world: &mut World<'_>,
    pool: usize,
    l: Limits,
    t: Secs,
    delete_s: Secs,
) -> Data {
    let idle_time = l.idle_time.as_secs() as Secs;
    let mut data = Data::default();
    let members: Vec<usize> = (0..world.vms.len())
        .filter(|&i| world.vms[i].pool == pool && world.vms[i].alive())
        .collect();
    for &i in &members {
        let vm = &world.vms[i];
        match vm.phase {
            Phase::Creating => data.creating += 1,
            Phase::Ready if vm.running.is_empty() => {
                let used = vm.last_job_at.unwrap_or(vm.ready_at);
                let remove = (l.max_builds > 0 && vm.jobs_run >= l.max_builds)
                    || (l.limit > 0 && data.total() >= l.limit)
                    || (t - used > idle_time && data.available() >= l.idle_count);
                if remove {
                    world.delete_vm(i, t, delete_s);
                    data.removing += 1;
                } else {
                    data.idle += 1;
                }
            }
            Phase::Ready => data.used += 1,
            Phase::Error | Phase::Deleting(_) => data.removing += 1,
            Phase::Deleted => {}
        }
    }
    data
}

#[cfg(test)]
#[path = "dm_tests.rs"]
mod dm_tests;
