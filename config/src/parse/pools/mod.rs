//! The `[[pools]]` blocks: each pool's name, capacity, scaling policy and forecast, and
//! the cross-field rules between them. The subsections have their own readers:
//! `server` (the VM template), `runner` (registration and its S3 cache), `bootstrap`
//! (cloud-init options) and `periods` (scheduled policy overrides, which share the
//! policy keys and their rules with the pool).

pub(super) mod bootstrap;
mod periods;
mod runner;
mod server;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use super::bounds;
use super::names::{join, valid_name};
use super::reader::{Ctx, Node, Sp};
use crate::model::Pool;
use crate::policy::{Policy, PolicyOverrides};

/// Reads every pool; names must be unique. `None` when any pool is wrong (reported).
pub(super) fn pools(ctx: &mut Ctx<'_>, nodes: &[Node<'_>]) -> Option<Vec<Pool>> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = true;
    for n in nodes {
        if let Some(name) = ctx
            .entry(n, "name")
            .and_then(|(_, span, item)| item.as_str().map(|s| (s.to_owned(), span)))
        {
            if let Some(first) = seen.get(&name.0) {
                let path = join(&n.path, "name");
                ctx.err(
                    &name.1,
                    &path,
                    format!(
                        "duplicate pool name `{}` (first used by pools[{first}])",
                        name.0
                    ),
                );
                ok = false;
            } else {
                seen.insert(name.0, out.len());
            }
        }
        match pool(ctx, n) {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `[[pools]]` block.
fn pool(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Pool> {
    ctx.check_keys(
        n,
        &[
            "name",
            "capacity",
            "idle_count",
            "idle_time",
            "max_builds",
            "limit",
            "max_growth",
            "boot_timeout",
            "park_surplus",
            "forecast_days",
            "forecast_lookahead",
            "target_wait",
            "target_percentile",
            "billing_period",
            "server",
            "runner",
            "bootstrap",
            "periods",
        ],
        &[],
    );
    let mark = ctx.mark();
    let name = ctx.required(n, "name", |c, n, k| {
        c.str_as(n, k, |name| {
            if valid_name(name, usize::MAX) {
                Ok(name.to_owned())
            } else {
                Err(format!("`{name}` must match ^[a-z0-9][a-z0-9-]*$"))
            }
        })
    });
    let capacity = ctx.defaulted(
        n,
        "capacity",
        |c, n, k| {
            c.bounded_u32(n, k, bounds::CAPACITY)
                .and_then(|c| NonZeroU32::new(c.v))
        },
        || NonZeroU32::MIN,
    );
    let keys = PolicyKeys::read(ctx, n);
    if keys.limit.is_none() {
        ctx.require(n, "limit");
    }
    let mut policy = keys.overrides().apply(Policy {
        idle_count: 0,
        idle_time: Duration::from_secs(30 * 60),
        max_builds: 0,
        limit: 1,
        max_growth: 0,
        target_wait: None,
        boot_timeout: ctx
            .bounded_duration(n, "boot_timeout", bounds::BOOT_TIMEOUT)
            .map_or(Duration::from_secs(10 * 60), |d| d.v),
    });
    policy.target_wait = keys.target_wait;
    if let (Some(_), Some(_)) = (capacity, &keys.limit) {
        keys.check_fit(ctx, n, capacity, &policy);
    }
    let park_surplus = ctx.bool(n, "park_surplus").unwrap_or(true);
    let forecast_days = ctx
        .bounded_u32(n, "forecast_days", bounds::FORECAST_DAYS)
        .map_or(2, |s| s.v);
    let forecast_lookahead = match ctx.duration(n, "forecast_lookahead") {
        Some(d) if d.v < Duration::from_secs(60) || d.v > Duration::from_secs(3600) => {
            ctx.err(&d.span, &d.path, "must be between 1m and 1h");
            Duration::from_secs(300)
        }
        Some(d) => d.v,
        None => Duration::from_secs(300),
    };
    let target_percentile = ctx
        .bounded_u32(n, "target_percentile", bounds::TARGET_PERCENTILE)
        .map_or(95, |s| s.v);
    if policy.target_wait.is_none() && n.has("target_percentile") {
        ctx.err_at(
            n,
            "target_percentile",
            "applies only in wait-target mode: set `target_wait` in this pool too",
        );
    }
    let billing_period = ctx
        .bounded_duration(n, "billing_period", bounds::BILLING_PERIOD)
        .map(|d| d.v);
    let server = ctx
        .required_table(n, "server", "")
        .and_then(|s| server::server(ctx, &s));
    let runner = ctx
        .required_table(n, "runner", "")
        .and_then(|r| runner::runner(ctx, &r));
    let bootstrap = ctx.defaulted(
        n,
        "bootstrap",
        |c, n, k| c.table(n, k).and_then(|b| bootstrap::bootstrap(c, &b)),
        bootstrap::default_bootstrap,
    );
    let mut periods = Vec::new();
    for p in ctx.tables(n, "periods").unwrap_or_default() {
        if let Some(p) = periods::period(ctx, &p, capacity, &policy) {
            periods.push(p);
        }
    }
    let pool = Pool {
        name: name?,
        capacity: capacity?,
        policy,
        park_surplus,
        forecast_days,
        forecast_lookahead,
        target_percentile,
        billing_period,
        server: server?,
        runner: runner?,
        bootstrap: bootstrap?,
        periods,
    };
    ctx.clean_since(mark, pool)
}

/// The policy keys a pool and its periods share, as one table sets them.
struct PolicyKeys {
    /// `idle_count`, with where it is for messages.
    idle_count: Option<Sp<u32>>,
    /// `limit`, with where it is for messages.
    limit: Option<Sp<u32>>,
    /// `max_growth`, with where it is for messages.
    max_growth: Option<Sp<u32>>,
    /// `idle_time`.
    idle_time: Option<Duration>,
    /// `max_builds`.
    max_builds: Option<u32>,
    /// `target_wait`.
    target_wait: Option<Duration>,
}

// === impl PolicyKeys ===

impl PolicyKeys {
    /// Reads the keys of `n` (each checked against its bounds).
    fn read(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Self {
        PolicyKeys {
            idle_count: ctx.u32(n, "idle_count"),
            limit: ctx.bounded_u32(n, "limit", bounds::LIMIT),
            max_growth: ctx.u32(n, "max_growth"),
            idle_time: ctx
                .bounded_duration(n, "idle_time", bounds::IDLE_TIME)
                .map(|d| d.v),
            max_builds: ctx
                .bounded_u32(n, "max_builds", bounds::MAX_BUILDS)
                .map(|s| s.v),
            target_wait: ctx
                .bounded_duration(n, "target_wait", bounds::TARGET_WAIT)
                .map(|d| d.v),
        }
    }

    /// The keys that are set, as overrides of a base policy.
    fn overrides(&self) -> PolicyOverrides {
        PolicyOverrides {
            idle_count: self.idle_count.as_ref().map(|s| s.v),
            idle_time: self.idle_time,
            max_builds: self.max_builds,
            limit: self.limit.as_ref().map(|s| s.v),
            max_growth: self.max_growth.as_ref().map(|s| s.v),
            target_wait: self.target_wait,
        }
    }

    /// Cross-field rules of the policy `eff` in force where these keys are set:
    /// `idle_count` fits in `limit` x `capacity` job slots (checked when the capacity
    /// is known), and `max_growth` does not exceed `limit`. An error points at the key
    /// this table sets (else at the table) and says which value it inherits.
    fn check_fit(
        &self,
        ctx: &mut Ctx<'_>,
        n: &Node<'_>,
        capacity: Option<NonZeroU32>,
        eff: &Policy,
    ) {
        let at = |own: &Option<Sp<u32>>, other: &Option<Sp<u32>>| match (own, other) {
            (Some(s), _) | (None, Some(s)) => (s.span.clone(), s.path.clone()),
            (None, None) => (n.span.clone(), n.path.clone()),
        };
        let src = |set: &Option<Sp<u32>>| {
            if set.is_some() {
                ""
            } else {
                " (inherited from the pool)"
            }
        };
        if let Some(cap) = capacity {
            let slots = u64::from(eff.limit) * u64::from(cap.get());
            if u64::from(eff.idle_count) > slots && eff.limit > 0 {
                let (span, path) = at(&self.idle_count, &self.limit);
                ctx.err(
                    &span,
                    &path,
                    format!(
                        "idle_count {}{} exceeds limit {}{} x capacity {cap} = {slots} job slots",
                        eff.idle_count,
                        src(&self.idle_count),
                        eff.limit,
                        src(&self.limit),
                    ),
                );
            }
        }
        if eff.max_growth > eff.limit && eff.limit > 0 {
            let (span, path) = at(&self.max_growth, &self.limit);
            ctx.err(
                &span,
                &path,
                format!("max_growth {} exceeds limit {}", eff.max_growth, eff.limit),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::parse::testing::*;

    #[test]
    fn forecast_defaults_to_two_days_and_five_minutes() {
        let p = &ok(&BASE).pools[0];
        assert_eq!(p.forecast_days, 2);
        assert_eq!(p.forecast_lookahead, Duration::from_secs(300));
        let off = ok(&with("[[pools]]", "forecast_days = 0"));
        assert_eq!(off.pools[0].forecast_days, 0);
    }

    #[test]
    fn forecast_lookahead_outside_one_minute_to_one_hour_is_rejected() {
        one_err(
            &with("[[pools]]", "forecast_lookahead = \"30s\""),
            "pools[0].forecast_lookahead",
            "between 1m and 1h",
        );
    }

    #[test]
    fn pool_names_must_be_valid_and_unique() {
        one_err(
            &BASE.replace("name = \"default\"", "name = \"Default\""),
            "pools[0].name",
            "must match",
        );
        let second = BASE[BASE.find("[[pools]]").unwrap()..].to_owned();
        let e = errs(&format!("{BASE}{second}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "pools[1].name");
        assert!(
            e[0].1
                .contains("duplicate pool name `default` (first used by pools[0])")
        );
    }

    #[test]
    fn limit_is_required_and_at_least_one() {
        one_err(
            &BASE.replace("limit = 4", ""),
            "pools[0].limit",
            "missing required key",
        );
        one_err(
            &BASE.replace("limit = 4", "limit = 0"),
            "pools[0].limit",
            "0 is out of range: must be between 1 and 10000",
        );
    }

    #[test]
    fn capacity_must_be_at_least_one() {
        one_err(
            &with("[[pools]]", "capacity = 0"),
            "pools[0].capacity",
            "0 is out of range: must be between 1 and 1000",
        );
    }

    #[test]
    fn idle_count_must_fit_in_limit_times_capacity() {
        one_err(
            &with("[[pools]]", "idle_count = 5"),
            "pools[0].idle_count",
            "idle_count 5 exceeds limit 4 x capacity 1 = 4",
        );
        let c = ok(&with("[[pools]]", "idle_count = 8\ncapacity = 2"));
        assert_eq!(c.pools[0].policy.idle_count, 8);
    }

    #[test]
    fn max_growth_must_not_exceed_limit() {
        one_err(
            &with("[[pools]]", "max_growth = 5"),
            "pools[0].max_growth",
            "max_growth 5 exceeds limit 4",
        );
    }

    #[test]
    fn absurd_pool_durations_are_refused() {
        one_err(
            &with("[[pools]]", "idle_time = \"1000000000y\""),
            "pools[0].idle_time",
            "`1000000000y` is out of range: must be between 0s and 30days",
        );
        one_err(
            &with("[[pools]]", "boot_timeout = \"1s\""),
            "pools[0].boot_timeout",
            "`1s` is out of range: must be between 10s and 1day",
        );
        one_err(
            &with("[pools.runner]", "maximum_timeout = \"100y\""),
            "pools[0].runner.maximum_timeout",
            "must be between 10m and 30days",
        );
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_time = \"1000000000y\""),
            "pools[0].periods[0].idle_time",
            "must be between 0s and 30days",
        );
        assert_eq!(
            ok(&with("[[pools]]", "idle_time = 0")).pools[0]
                .policy
                .idle_time,
            Duration::ZERO
        );
    }

    // Regression, issue 11 item 9: counts near u32::MAX passed validation and
    // overflowed downstream.
    #[test]
    fn counts_near_u32_max_are_refused_with_their_bound() {
        let max = u32::MAX;
        one_err(
            &BASE.replace("limit = 4", &format!("limit = {max}")),
            "pools[0].limit",
            &format!("{max} is out of range: must be between 1 and 10000"),
        );
        one_err(
            &with("[[pools]]", &format!("capacity = {max}")),
            "pools[0].capacity",
            "must be between 1 and 1000",
        );
        one_err(
            &with("[[pools]]", &format!("idle_count = {max}")),
            "pools[0].idle_count",
            &format!("idle_count {max} exceeds limit 4 x capacity 1"),
        );
        one_err(
            &with("[[pools]]", &format!("max_growth = {max}")),
            "pools[0].max_growth",
            "exceeds limit 4",
        );
        one_err(
            &with("[[pools]]", &format!("max_builds = {max}")),
            "pools[0].max_builds",
            "must be between 0 and 1000000",
        );
        one_err(
            &with("[[pools]]", &format!("forecast_days = {max}")),
            "pools[0].forecast_days",
            "must be between 0 and 30",
        );
        one_err(
            &period(&format!("schedules = [\"* * * * *\"]\nlimit = {max}")),
            "pools[0].periods[0].limit",
            "must be between 1 and 10000",
        );
        one_err(
            &period(&format!("schedules = [\"* * * * *\"]\nmax_builds = {max}")),
            "pools[0].periods[0].max_builds",
            "must be between 0 and 1000000",
        );
        let big = ok(&BASE.replace(
            "limit = 4",
            "limit = 10000\ncapacity = 1000\nidle_count = 10000000",
        ));
        assert_eq!(big.pools[0].policy.idle_count, 10_000_000);
    }

    #[test]
    fn period_limit_is_checked_against_inherited_idle_count() {
        let src = with("[[pools]]", "idle_count = 3")
            + "\n[[pools.periods]]\nschedules = [\"* * * * *\"]\nlimit = 2\n";
        one_err(
            &src,
            "pools[0].periods[0].limit",
            "idle_count 3 (inherited from the pool) exceeds limit 2",
        );
    }

    #[test]
    fn period_idle_count_is_checked_against_inherited_limit() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_count = 5"),
            "pools[0].periods[0].idle_count",
            "exceeds limit 4 (inherited from the pool)",
        );
    }

    #[test]
    fn period_limit_must_be_at_least_one_and_cover_max_growth() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nlimit = 0"),
            "pools[0].periods[0].limit",
            "must be between 1 and 10000",
        );
        let src = with("[[pools]]", "max_growth = 3")
            + "\n[[pools.periods]]\nschedules = [\"* * * * *\"]\nlimit = 2\n";
        one_err(
            &src,
            "pools[0].periods[0].limit",
            "max_growth 3 exceeds limit 2",
        );
    }

    #[test]
    fn wait_target_mode_reads_its_keys_and_a_period_may_change_the_target() {
        let src = with(
            "[[pools]]",
            "target_wait = \"90s\"\ntarget_percentile = 97\nbilling_period = \"1h\"",
        ) + "\n[[pools.periods]]\nschedules = [\"* * * * *\"]\ntarget_wait = \"3m\"\n";
        let c = ok(&src);
        let p = &c.pools[0];
        assert_eq!(p.policy.target_wait, Some(Duration::from_secs(90)));
        assert_eq!(p.target_percentile, 97);
        assert_eq!(p.billing_period, Some(Duration::from_secs(3600)));
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(
            p.policy_at(t).policy.target_wait,
            Some(Duration::from_secs(180))
        );
        let plain = ok(&BASE);
        assert_eq!(
            plain.pools[0].policy.target_wait, None,
            "idle mode by default"
        );
        assert_eq!(plain.pools[0].target_percentile, 95);
        assert_eq!(plain.pools[0].billing_period, None);
    }

    #[test]
    fn wait_target_keys_are_bounded_and_need_the_mode() {
        one_err(
            &with("[[pools]]", "target_wait = \"0s\""),
            "pools[0].target_wait",
            "out of range",
        );
        one_err(
            &with(
                "[[pools]]",
                "target_wait = \"60s\"\ntarget_percentile = 100",
            ),
            "pools[0].target_percentile",
            "100 is out of range: must be between 50 and 99",
        );
        one_err(
            &with("[[pools]]", "target_percentile = 90"),
            "pools[0].target_percentile",
            "applies only in wait-target mode",
        );
        one_err(
            &period("schedules = [\"* * * * *\"]\ntarget_wait = \"2m\""),
            "pools[0].periods[0].target_wait",
            "only in a pool in wait-target mode",
        );
        one_err(
            &with("[[pools]]", "billing_period = \"0s\""),
            "pools[0].billing_period",
            "out of range",
        );
    }
}
