//! The simulator: replays a job trace through a policy against a simulated cloud.
//!
//! Policies compared side by side:
//! * `autoscaler`: this project's controller, calling the real [`autoscaler_core::plan::plan`] every
//!   poll interval against simulated VMs and runners;
//! * `docker+machine`: a model of GitLab Runner's docker+machine executor built from its
//!   source (`provider.go`, `idle_limit_strategy.go`; see `dm.rs`);
//! * `clairvoyant`: a lower bound on VM-hours with zero wait (see `bound.rs`);
//! * `limit floor`: `limit` VMs always warm, FIFO: the wait no policy can beat when demand
//!   exceeds `limit`.
//!
//! Everything is deterministic for a given seed. No I/O here: callers parse files.

pub mod bound;
pub mod dm;
pub mod ours;
pub mod plot;
pub mod report;
pub mod synthetic;
pub mod trace;
pub mod world;

use std::time::Duration;

use autoscaler_core::model::{Backoff, Limits, PoolPolicy, Timestamp};
pub use report::{Figures, PolicyReport};
pub use trace::{Trace, TraceError, TraceJob};
use world::{CloudModel, PoolMatch, Secs};

/// Values a period block may override (the config crate's type).
pub use autoscaler_config::PolicyOverrides as Overrides;

/// A period block as the simulator sees it: a matcher and the values it sets.
pub struct SimPeriod {
    /// Label for reports (e.g. the schedules joined).
    pub label: String,
    /// Whether the block matches at an instant.
    pub active: Box<dyn Fn(Timestamp) -> bool + Send + Sync>,
    /// Values it sets.
    pub overrides: Overrides,
}

impl std::fmt::Debug for SimPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPeriod")
            .field("label", &self.label)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

/// One pool: its policy at root level and its periods.
#[derive(Debug)]
pub struct SimPool {
    /// Name, tags, capacity and the root values.
    pub policy: PoolPolicy,
    /// Period blocks in config order (the last matching one wins).
    pub periods: Vec<SimPeriod>,
}

/// How unset fields of a matching period are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodRule {
    /// This project: unset fields are inherited from the pool.
    Inherit,
    /// docker+machine: a matching block replaces IdleCount and IdleTime, unset ones are 0.
    DockerMachine,
}

impl SimPool {
    /// The values in force at `t` under the given rule.
    pub fn limits_at(&self, t: Timestamp, rule: PeriodRule) -> Limits {
        let base = self.policy.limits;
        let Some(p) = self.periods.iter().rev().find(|p| (p.active)(t)) else {
            return base;
        };
        let o = p.overrides;
        match rule {
            // The controller's own rule (the config's), not a copy of it.
            PeriodRule::Inherit => o.apply(base),
            PeriodRule::DockerMachine => Limits {
                idle_count: o.idle_count.unwrap_or(0),
                idle_time: o.idle_time.unwrap_or(Duration::ZERO),
                ..base
            },
        }
    }

    fn matcher(&self) -> PoolMatch {
        PoolMatch {
            tags: self.policy.tags.clone(),
            run_untagged: self.policy.run_untagged,
            capacity: self.policy.capacity.max(1),
        }
    }
}

/// Everything a simulation needs besides the trace.
#[derive(Debug)]
pub struct SimSpec {
    /// Pools in config order.
    pub pools: Vec<SimPool>,
    /// Controller poll interval.
    pub poll_interval: Duration,
    /// Cloud behaviour.
    pub cloud: CloudModel,
    /// Create backoff.
    pub backoff: Backoff,
    /// Random seed.
    pub seed: u64,
    /// Seconds simulated after the last job arrives (jobs finish, idle VMs time out).
    pub tail_s: Secs,
    /// Plot sample period in seconds (0 = no samples).
    pub sample_every_s: Secs,
    /// GitLab's job webhook is configured: a job event brings the controller's next tick
    /// forward, as `run` does (docker+machine has no such path).
    pub webhook: bool,
}

/// The simulated window: from the first arrival to the last arrival plus the tail.
pub fn window(trace: &Trace, spec: &SimSpec) -> (Secs, Secs) {
    let start = trace.jobs.first().map_or(0, |j| j.submitted.timestamp());
    let last = trace.jobs.last().map_or(0, |j| j.submitted.timestamp());
    (start - start.rem_euclid(60), last + spec.tail_s)
}

/// Runs every policy of `--compare` on the trace.
pub fn compare(trace: &Trace, spec: &SimSpec) -> Vec<PolicyReport> {
    vec![
        ours::run(trace, spec),
        dm::run(trace, spec),
        bound::clairvoyant(trace, spec),
        ours::limit_floor(trace, spec),
    ]
}

/// Converts simulator seconds to a timestamp.
pub fn ts(t: Secs) -> Timestamp {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// Caches each pool's limits per minute: schedules are minute-granular in practice (a
/// 7-field expression with `*` seconds or a 5-field one), so evaluating cron once per
/// simulated minute gives the same answer as every second, far faster.
pub(crate) struct LimitsCache {
    minute: Secs,
    rule: PeriodRule,
    values: Vec<Limits>,
}

impl LimitsCache {
    pub(crate) fn new(rule: PeriodRule) -> Self {
        LimitsCache {
            minute: Secs::MIN,
            rule,
            values: Vec::new(),
        }
    }

    pub(crate) fn get(&mut self, pools: &[SimPool], t: Secs) -> &[Limits] {
        let minute = t - t.rem_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.values = pools
                .iter()
                .map(|p| p.limits_at(ts(minute), self.rule))
                .collect();
        }
        &self.values
    }
}

#[cfg(test)]
mod tests;
