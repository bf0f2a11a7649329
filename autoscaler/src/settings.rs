//! Turns the validated configuration into what the planner and the simulator take.
//!
//! No I/O: the config is already loaded; periods are evaluated at the `now` given.

use autoscaler_config::{Config, Pool};

use crate::forecast::ForecastSettings;
use crate::model::{Backoff, Policy, PoolPolicy, Timestamp};
use crate::sim::{SimPeriod, SimPool};

/// One pool as the planner sees it at `now` (its period in force applied).
pub fn pool_policy(pool: &Pool, now: Timestamp) -> PoolPolicy {
    PoolPolicy {
        name: pool.name.clone(),
        tags: pool.runner.tags.clone(),
        run_untagged: pool.runner.run_untagged,
        capacity: pool.capacity.get(),
        park_surplus: pool.park_surplus,
        limits: pool.policy_at(now).policy,
    }
}

/// The whole policy at `now`.
pub fn policy_at(config: &Config, now: Timestamp) -> Policy {
    Policy {
        pools: config.pools.iter().map(|p| pool_policy(p, now)).collect(),
        backoff: Backoff::default(),
    }
}

/// A pool for the simulator: root values plus period matchers built from the schedules.
pub fn sim_pool(pool: &Pool) -> SimPool {
    let mut policy = pool_policy(pool, Timestamp::UNIX_EPOCH);
    policy.limits = pool.policy;
    SimPool {
        policy,
        periods: pool
            .periods
            .iter()
            .map(|period| {
                let p = period.clone();
                SimPeriod {
                    label: period
                        .schedules
                        .iter()
                        .map(|s| s.source().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    active: Box::new(move |t| p.is_active(t)),
                    overrides: period.overrides,
                }
            })
            .collect(),
        forecast: ForecastSettings {
            days: pool.forecast_days,
            lookahead: pool.forecast_lookahead,
        },
    }
}

/// Describes the period in force at `t` and the next transition, for `plan` and `simulate`.
pub fn period_summary(pool: &Pool, t: Timestamp) -> String {
    let eff = pool.policy_at(t);
    let now = match eff.period {
        Some(i) => {
            let p = &pool.periods[i];
            let schedules: Vec<&str> = p.schedules.iter().map(|s| s.source()).collect();
            format!(
                "period #{} ({}, {})",
                i + 1,
                schedules.join(", "),
                p.timezone
            )
        }
        None => "base policy (no period matches)".to_string(),
    };
    let next = match pool.next_transition(t) {
        Some(n) => {
            let to = match pool.policy_at(n).period {
                Some(i) => format!("period #{}", i + 1),
                None => "base policy".to_string(),
            };
            format!("next change {} to {to}", n.to_rfc3339())
        }
        None => "no change within 366 days".to_string(),
    };
    format!(
        "{now}: idle_count={} idle_time={} limit={}; {next}",
        eff.policy.idle_count,
        humantime::format_duration(eff.policy.idle_time),
        eff.policy.limit
    )
}
