//! Scaling policy, periods and the policy in force at an instant.
//!
//! A pool's [`Policy`] applies unless a [`Period`] matches; then the **last** matching
//! period's overrides apply, and fields the period leaves unset keep the pool's value
//! (unlike docker+machine, which zeroes them). Pure functions of their inputs: the caller
//! passes the time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::Pool;
use crate::schedule::Schedule;

/// How far ahead [`Pool::next_transition`] looks: 366 days.
pub const TRANSITION_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(366);

/// The numbers that drive scaling for one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Idle job slots kept warm beyond demand.
    pub idle_count: u32,
    /// How long a surplus VM may stay idle before it is drained.
    pub idle_time: Duration,
    /// Jobs after which a VM is replaced; 0 = unlimited.
    pub max_builds: u32,
    /// Hard cap on VMs in every state (>= 1).
    pub limit: u32,
    /// VMs creating at once; 0 = unlimited.
    pub max_growth: u32,
    /// How long a VM may take from creation to its runner's first contact.
    pub boot_timeout: Duration,
    /// Wait-target mode when set: the warm reserve is sized from the job-arrival forecast
    /// so that the pool's `target_percentile` of jobs waits at most this long, and surplus
    /// VMs leave as soon as the forecast does not need them (`idle_count` is a floor).
    /// `None`: the docker+machine-compatible mode (`idle_count` and `idle_time`).
    pub target_wait: Option<Duration>,
}

/// Fields a period may override; `None` keeps the pool's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyOverrides {
    /// Overrides [`Policy::idle_count`].
    pub idle_count: Option<u32>,
    /// Overrides [`Policy::idle_time`].
    pub idle_time: Option<Duration>,
    /// Overrides [`Policy::max_builds`].
    pub max_builds: Option<u32>,
    /// Overrides [`Policy::limit`].
    pub limit: Option<u32>,
    /// Overrides [`Policy::max_growth`].
    pub max_growth: Option<u32>,
    /// Overrides [`Policy::target_wait`] (a period can change the target, not the mode).
    pub target_wait: Option<Duration>,
}

/// One `[[pools.periods]]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// The period is active while any of these matches.
    pub schedules: Vec<Schedule>,
    /// Zone the schedules are read in.
    pub timezone: Tz,
    /// What changes while the period is active.
    pub overrides: PolicyOverrides,
}

/// The policy in force at an instant and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The pool policy with the winning period's overrides applied.
    pub policy: Policy,
    /// Index into [`Pool::periods`] of the winning period; `None` = base policy.
    pub period: Option<usize>,
}

// === impl PolicyOverrides ===

impl PolicyOverrides {
    /// `base` with the set fields replaced.
    pub fn apply(&self, base: Policy) -> Policy {
        Policy {
            idle_count: self.idle_count.unwrap_or(base.idle_count),
            idle_time: self.idle_time.unwrap_or(base.idle_time),
            max_builds: self.max_builds.unwrap_or(base.max_builds),
            limit: self.limit.unwrap_or(base.limit),
            max_growth: self.max_growth.unwrap_or(base.max_growth),
            boot_timeout: base.boot_timeout,
            target_wait: base.target_wait.map(|w| self.target_wait.unwrap_or(w)),
        }
    }
}

// === impl Period ===

impl Period {
    /// Whether any schedule matches at `t`.
    pub fn is_active(&self, t: DateTime<Utc>) -> bool {
        self.schedules.iter().any(|s| s.matches(t, self.timezone))
    }
}

// === impl Pool ===

impl Pool {
    /// The policy in force at `t`: the last matching period wins, unset fields inherit.
    pub fn policy_at(&self, t: DateTime<Utc>) -> EffectivePolicy {
        let period = self.periods.iter().rposition(|p| p.is_active(t));
        let policy = match period {
            Some(i) => self.periods[i].overrides.apply(self.policy),
            None => self.policy,
        };
        EffectivePolicy { policy, period }
    }

    /// First instant strictly after `t` at which the winning period changes, within
    /// [`TRANSITION_HORIZON`] (366 days); `None` = no change within it.
    ///
    /// Only the winning period's *index* is compared: two periods with equal overrides
    /// still count as a change.
    pub fn next_transition(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let until = t + TRANSITION_HORIZON;
        let current = self.policy_at(t).period;
        // Next state change of every schedule; recomputed only once passed.
        let mut next: Vec<Vec<Option<DateTime<Utc>>>> = self
            .periods
            .iter()
            .map(|p| {
                p.schedules
                    .iter()
                    .map(|s| s.next_change(t, p.timezone, until))
                    .collect()
            })
            .collect();
        loop {
            let c = next.iter().flatten().flatten().min().copied()?;
            if self.policy_at(c).period != current {
                return Some(c);
            }
            for (p, row) in self.periods.iter().zip(next.iter_mut()) {
                for (s, slot) in p.schedules.iter().zip(row.iter_mut()) {
                    if *slot == Some(c) {
                        *slot = s.next_change(c, p.timezone, until);
                    }
                }
            }
        }
    }
}
