//! This project's controller in the simulator, and the limit floor.
//!
//! Every poll interval the simulated controller builds an [`Observed`] from the simulated
//! world, calls the real planner and applies the plan the way the reconciler does: creates
//! take a boot time, pauses are instant, deletes take the cloud's delete time.

use super::report::PolicyReport;
use super::world::{Phase, Secs, World};
use super::{LimitsCache, PeriodRule, SimSpec, Trace, ts};
use autoscaler_core::memory::Memory;
use autoscaler_core::model::{
    CloudStatus, JobArrival, Observed, PendingJob, Policy, RunnerLink, RunnerView, Vm, VmId,
};
use autoscaler_core::plan::{Action, plan};

/// Seconds after a failed create request before the server shows ERROR.
const ERROR_AFTER_S: Secs = 20;

/// Runs the trace under this project's policy.
pub fn run(trace: &Trace, spec: &SimSpec) -> PolicyReport {
    let (start, end) = super::window(trace, spec);
    let mut world = World::new(
        &trace.jobs,
        spec.pools.iter().map(super::SimPool::matcher).collect(),
        spec.seed,
    );
    let mut cache = LimitsCache::new(PeriodRule::Inherit);
    let poll = (spec.poll_interval.as_secs() as Secs).max(1);
    let mut policy = Policy {
        pools: spec.pools.iter().map(|p| p.policy.clone()).collect(),
        backoff: spec.backoff,
        offline_after: Policy::DEFAULT_OFFLINE_AFTER,
        delete_retry: Policy::DEFAULT_DELETE_RETRY,
        poll_interval: spec.poll_interval,
    };
    let mut ids: Vec<VmId> = Vec::new();
    let mut refused_deletes = 0u32;
    let names: Vec<String> = spec.pools.iter().map(|p| p.policy.name.clone()).collect();
    // The controller's own memory, learned by the controller's own rules from what each
    // poll observes (failures, backoff and breaker, job arrivals for the forecast).
    let mut memory = Memory::default();
    // Ticks as `run` schedules them: every poll interval, and with the job webhook
    // configured, a job event brings the next tick forward (delivered within a second, at
    // least `MIN_TICK_SPACING` after the previous tick started).
    let spacing = (crate::reconcile::MIN_TICK_SPACING.as_secs() as Secs).max(1);
    let mut next_tick = start;
    let mut last_tick = start - spacing;
    for t in start..=end {
        let arrived = world.arrivals(t);
        if spec.webhook && !arrived.is_empty() {
            next_tick = next_tick.min((t + 1).max(last_tick + spacing));
        }
        let _ = world.lifecycle(t, ERROR_AFTER_S);
        world.finish_jobs(t);
        world.runner_polls(t);

        if t >= next_tick {
            last_tick = t;
            next_tick = t + poll;
            let limits = cache.get(&spec.pools, t);
            for (p, l) in policy.pools.iter_mut().zip(limits) {
                p.limits = *l;
            }
            while ids.len() < world.vms.len() {
                ids.push(VmId(format!("vm{}", ids.len())));
            }
            let mut obs = observe(&world, &ids, &names, t);
            memory.learn(&obs, &policy, ts(t));
            obs.failures = memory.failures.clone();
            obs.expected = memory.expected(&policy, ts(t));
            obs.reserve = memory.reserve(&policy, ts(t));
            obs.arrivals_per_poll = memory.arrivals_per_poll(&policy, ts(t));
            let plan = plan(&obs, &policy, ts(t));
            for action in &plan.actions {
                match action {
                    Action::Create { pool, .. } => {
                        let p = spec
                            .pools
                            .iter()
                            .position(|sp| &sp.policy.name == pool)
                            .unwrap_or(0);
                        let boot = spec.cloud.boot(&mut world.rng);
                        let fails = world.rng.unit() < spec.cloud.create_failure_rate;
                        world.create_vm(p, t, boot, fails);
                    }
                    Action::Pause { vm, .. } => world.vms[index(vm)].paused = true,
                    Action::Unpause { vm, .. } => world.vms[index(vm)].paused = false,
                    Action::Delete { vm, .. } => {
                        let i = index(vm);
                        if world.vms[i].running.is_empty() {
                            world.delete_vm(i, t, spec.cloud.delete_s);
                        } else {
                            refused_deletes += 1;
                        }
                    }
                    Action::DeleteRunner { .. } => {}
                }
            }
        }
        if spec.sample_every_s > 0 && (t - start) % spec.sample_every_s == 0 {
            world.sample(t);
        }
    }
    world.close(end);
    let mut report = PolicyReport::from_world("autoscaler", &world, &spec.pools, end);
    report.killed_jobs = refused_deletes;
    report
}

fn index(vm: &VmId) -> usize {
    vm.0.get(2..)
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Builds the planner's snapshot from the simulated world, as `observe` does from the APIs.
fn observe(world: &World<'_>, ids: &[VmId], names: &[String], t: Secs) -> Observed {
    let pending = world
        .pending
        .iter()
        .map(|&j| PendingJob {
            id: j as u64,
            tags: world.jobs[j].tags.clone(),
            queued_since: world.jobs[j].submitted,
        })
        .collect();
    let vms = world
        .vms
        .iter()
        .enumerate()
        .filter(|(_, v)| v.alive())
        .map(|(i, v)| {
            let phase = match v.phase {
                Phase::Creating => CloudStatus::Building,
                Phase::Ready => CloudStatus::Active,
                Phase::Error => CloudStatus::Error { fault: None },
                Phase::Deleting(_) | Phase::Deleted => CloudStatus::Deleting,
            };
            Vm {
                id: ids[i].clone(),
                name: ids[i].0.clone(),
                pool: names[v.pool].clone(),
                created_at: ts(v.created),
                phase,
                runner: Some(RunnerView {
                    id: v.id,
                    paused: v.paused,
                    // A live gitlab-runner contacts GitLab every few seconds.
                    contacted_at: (v.phase == Phase::Ready).then(|| ts(t.max(v.ready_at))),
                    running_jobs: v.running.len() as u32,
                    jobs_run: v.jobs_run,
                    last_job_at: v.last_job_at.map(ts),
                    running: v
                        .running
                        .iter()
                        .map(|&(j, _)| JobArrival {
                            id: j as u64,
                            queued_since: world.jobs[j].submitted,
                        })
                        .collect(),
                }),
                runner_link: RunnerLink::Seen,
                deleting_since: None,
                address: None,
            }
        })
        .collect::<Vec<_>>();
    Observed {
        pending: Some(pending),
        vms,
        ..Observed::default()
    }
}

/// The limit floor: `limit` VMs per pool warm for the whole window, never deleted.
pub fn limit_floor(trace: &Trace, spec: &SimSpec) -> PolicyReport {
    let (start, end) = super::window(trace, spec);
    let mut world = World::new(
        &trace.jobs,
        spec.pools.iter().map(super::SimPool::matcher).collect(),
        spec.seed,
    );
    for (p, pool) in spec.pools.iter().enumerate() {
        for _ in 0..pool.policy.limits.limit {
            world.create_vm(p, start, 0, false);
        }
    }
    for t in start..=end {
        let _ = world.arrivals(t);
        world.lifecycle(t, ERROR_AFTER_S);
        world.finish_jobs(t);
        world.runner_polls(t);
        if spec.sample_every_s > 0 && (t - start) % spec.sample_every_s == 0 {
            world.sample(t);
        }
    }
    world.close(end);
    PolicyReport::from_world("limit floor", &world, &spec.pools, end)
}
