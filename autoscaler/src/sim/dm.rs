//! A model of GitLab Runner's `docker+machine` executor, from its source
//! (`executors/docker/machine/provider.go`, `idle_limit_strategy.go`, `data.go`).
//!
//! Per `[[runners]]` entry (one per pool), every `check_interval` (3 s):
//! 1. **Update pass**: machines are walked oldest first; each idle machine is judged only
//!    against the machines before it: removed when it has run `MaxBuilds` jobs, when
//!    `Total >= limit`, or when idle longer than `IdleTime` while `Available >= IdleCount`
//!    (`Available = Creating + Idle`, with `IdleCountMin`/`IdleScaleFactor` at their 0
//!    defaults, which this project's config does not carry).
//! 2. **Create pass**: `while !(Creating >= MaxGrowthRate || Total >= limit ||
//!    Available >= IdleCount) create()`.
//! 3. **Acquire**: the newest idle machine is taken; if none is idle and `IdleCount > 0`,
//!    no job is requested. With `IdleCount = 0`, the job is taken and a machine is created
//!    for it on demand (this path has no machine-limit check); the job starts when the
//!    machine has booted.
//! 4. After each job is taken the runner asks again at once, with a fresh pass.
//! 5. On release the machine's last-used time is set; at `MaxBuilds` it is removed.
//!
//! A matching `[[runners.machine.autoscaling]]` block replaces `IdleCount` and `IdleTime`
//! and zeroes the ones it leaves unset. `limit` is both the job cap and the machine cap.
//! Machine creation failures are modelled as a failed machine removed at once; an
//! on-demand machine that fails delays its job by one more boot (docker+machine retries
//! provisioning).

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

    for t in start..=end {
        let _ = world.arrivals(t);
        let _ = world.lifecycle(t, ERROR_AFTER_S);
        // Failed machines are removed at once.
        for i in 0..world.vms.len() {
            if world.vms[i].phase == Phase::Error {
                world.delete_vm(i, t, spec.cloud.delete_s);
            }
        }
        let limits = cache.get(&spec.pools, t).to_vec();
        // Release: machines at MaxBuilds are removed when their job ends.
        for i in world.finish_jobs(t) {
            let l = limits[world.vms[i].pool];
            if l.max_builds > 0
                && world.vms[i].jobs_run >= l.max_builds
                && world.vms[i].running.is_empty()
            {
                world.delete_vm(i, t, spec.cloud.delete_s);
            }
        }
        for (p, &offset) in offsets.iter().enumerate() {
            if (t - start).rem_euclid(CHECK_INTERVAL) == offset {
                acquire_loop(&mut world, spec, p, limits[p], t);
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

/// One `check_interval` of one runner entry: passes and job requests until it stops.
fn acquire_loop(
    world: &mut World<'_>,
    spec: &SimSpec,
    pool: usize,
    l: autoscaler_core::model::Limits,
    t: Secs,
) {
    loop {
        // 1. Update pass, oldest first, each machine judged against those before it.
        let mut data = update_pass(world, pool, l, t, spec.cloud.delete_s);
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
        // 3. Acquire and request a job. `limit` also caps this runner's jobs.
        let running: u32 = world
            .vms
            .iter()
            .filter(|v| v.pool == pool && v.alive())
            .map(|v| v.running.len() as u32)
            .sum();
        if l.limit > 0 && running >= l.limit {
            return;
        }
        let free = (0..world.vms.len()).rev().find(|&i| {
            let v = &world.vms[i];
            v.pool == pool && v.phase == Phase::Ready && v.running.is_empty()
        });
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
                // On demand: the job waits for a machine of its own.
                let mut boot = spec.cloud.boot(&mut world.rng);
                while world.rng.unit() < spec.cloud.create_failure_rate {
                    boot += spec.cloud.boot(&mut world.rng);
                }
                let vm = world.create_vm(pool, t, boot, false);
                let ready = world.vms[vm].ready_at;
                world.start_job(pos, vm, ready);
            }
        }
        // 4. Ask again at once.
    }
}

/// `updateMachines` with `shouldRemoveIdle`: walks the pool's machines oldest first (the
/// order of `docker-machine ls`, names carry the creation time) and removes an idle one
/// when the counts of the machines *before* it say so. Returns the counts.
pub(crate) fn update_pass(
    world: &mut World<'_>,
    pool: usize,
    l: autoscaler_core::model::Limits,
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
