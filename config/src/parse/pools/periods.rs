//! `[[pools.periods]]`: when a period is active (cron schedules in a time zone) and
//! which policy keys it overrides. The overrides obey the pool's rules with the values
//! they inherit; a schedule that can no longer match is a warning, not an error.

use std::num::NonZeroU32;

use chrono_tz::Tz;

use super::PolicyKeys;
use crate::parse::reader::{Ctx, Node, Sp};
use crate::policy::{Period, Policy};
use crate::schedule::Schedule;

/// Reads one period of a pool whose policy is `base`; `None` when anything in it is
/// wrong (reported).
pub(super) fn period(
    ctx: &mut Ctx<'_>,
    n: &Node<'_>,
    capacity: Option<NonZeroU32>,
    base: &Policy,
) -> Option<Period> {
    ctx.check_keys(
        n,
        &[
            "schedules",
            "timezone",
            "idle_count",
            "idle_time",
            "max_builds",
            "limit",
            "max_growth",
            "target_wait",
        ],
        &[],
    );
    let mark = ctx.mark();
    let mut schedules = Vec::new();
    match ctx.required(n, "schedules", Ctx::str_list) {
        Some(list) if list.is_empty() => {
            ctx.err_at(n, "schedules", "at least one schedule is required");
        }
        Some(list) => {
            for s in list {
                if let Some(sched) = schedule(ctx, s) {
                    schedules.push(sched);
                }
            }
        }
        None => {}
    }
    let timezone = ctx.defaulted(n, "timezone", timezone, || Tz::UTC);
    let keys = PolicyKeys::read(ctx, n);
    let overrides = keys.overrides();
    if overrides.target_wait.is_some() && base.target_wait.is_none() {
        ctx.err_at(
            n,
            "target_wait",
            "a period can change `target_wait` only in a pool in wait-target mode: set `target_wait` in the pool",
        );
    }
    keys.check_fit(ctx, n, capacity, &overrides.apply(*base));
    let period = Period {
        schedules,
        timezone: timezone?,
        overrides,
    };
    ctx.clean_since(mark, period)
}

/// One entry of `schedules`; a parse error points into the expression when it can.
fn schedule(ctx: &mut Ctx<'_>, s: Sp<String>) -> Option<Schedule> {
    let shown = s.v.escape_debug().to_string();
    match Schedule::parse(&s.v) {
        Ok(sched) => {
            if !sched.can_match_from(ctx.now) {
                ctx.warn(
                    &s.span,
                    &s.path,
                    format!(
                        "schedule `{shown}` can no longer match (no date from today on satisfies its date fields, e.g. a year in the past); it is never active again, remove it"
                    ),
                );
            }
            Some(sched)
        }
        Err(e) => {
            let span = match e.offset() {
                Some(offset) => ctx.inner_span(&s.span, &s.v, offset),
                None => s.span.clone(),
            };
            ctx.err(&span, &s.path, format!("schedule `{shown}`: {e}"));
            None
        }
    }
}

/// `timezone`: an IANA name; a wrong case gets a hint.
fn timezone(ctx: &mut Ctx<'_>, n: &Node<'_>, key: &str) -> Option<Tz> {
    ctx.str_as(n, key, |s| {
        s.parse::<Tz>().map_err(|_| {
            let hint = chrono_tz::TZ_VARIANTS
                .iter()
                .find(|tz| tz.name().eq_ignore_ascii_case(s))
                .map(|tz| format!(", did you mean `{}`?", tz.name()))
                .unwrap_or_else(|| " (use an IANA name such as \"Europe/Berlin\")".to_owned());
            format!("unknown timezone `{s}`{hint}")
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use chrono_tz::Tz;

    use crate::parse::parse_config;
    use crate::parse::testing::*;
    use crate::policy::PolicyOverrides;

    #[test]
    fn period_parses_schedules_timezone_and_overrides() {
        let c = ok(&period(
            "schedules = [\"* * 0-8 * * mon-fri *\", \"0 22 * * *\"]\ntimezone = \"Europe/Berlin\"\nidle_count = 1\nidle_time = \"30m\"",
        ));
        let p = &c.pools[0].periods[0];
        assert_eq!(p.schedules.len(), 2);
        assert_eq!(p.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            p.overrides,
            PolicyOverrides {
                idle_count: Some(1),
                idle_time: Some(Duration::from_secs(1800)),
                ..Default::default()
            }
        );
    }

    #[test]
    fn period_timezone_defaults_to_utc() {
        let c = ok(&period("schedules = [\"* * * * * * *\"]"));
        assert_eq!(c.pools[0].periods[0].timezone, Tz::UTC);
    }

    #[test]
    fn period_needs_schedules() {
        one_err(
            &period("idle_count = 1"),
            "pools[0].periods[0].schedules",
            "missing required key",
        );
        one_err(
            &period("schedules = []"),
            "pools[0].periods[0].schedules",
            "at least one schedule",
        );
    }

    #[test]
    fn bad_schedules_name_the_expression() {
        one_err(
            &period("schedules = [\"* * * * * *\"]"),
            "pools[0].periods[0].schedules[0]",
            "`* * * * * *`: 6 fields are ambiguous",
        );
        one_err(
            &period("schedules = [\"* * * 31 2 * *\"]"),
            "pools[0].periods[0].schedules[0]",
            "`* * * 31 2 * *`: can never match",
        );
    }

    // Regression, issue 11 item 9: a schedule restricted to a year validated during that
    // year and then refused to load, so the service failed to restart in a loop. Now it
    // loads, is never active, and the warning names file, line, column and key; `run`
    // and `validate` read the same result.
    #[test]
    fn schedule_restricted_to_a_past_year_loads_inactive_with_a_warning() {
        let src = period("schedules = [\"* * * * * * 2025\"]\nidle_count = 0");
        let line = src.lines().count() - 1;
        let during = parse_config(&src, "t.toml", at("2025-06-01T12:00:00Z")).unwrap();
        assert!(during.warnings.is_empty(), "{:?}", during.warnings);
        assert_eq!(
            during.pools[0].policy_at(at("2025-06-01T12:00:00Z")).period,
            Some(0)
        );

        let after = at("2026-01-02T00:00:00Z");
        let cfg = parse_config(&src, "t.toml", after).unwrap_or_else(|e| panic!("{e}"));
        let warnings: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [format!(
                "t.toml:{line}:14: pools[0].periods[0].schedules[0]: schedule `* * * * * * 2025` can no longer match (no date from today on satisfies its date fields, e.g. a year in the past); it is never active again, remove it"
            )]
        );
        let pool = &cfg.pools[0];
        assert_eq!(pool.policy_at(after).period, None);
        assert_eq!(pool.policy_at(after).policy, pool.policy);
        assert_eq!(pool.next_transition(after), None);
    }

    // Regression, issue 11 item 9: cron errors spanned three lines and repeated the cron
    // crate's "Hours must be less than 23".
    #[test]
    fn cron_errors_are_one_line_naming_file_line_column_and_field() {
        let src = period("schedules = [\"* * 25 * * * *\", \"0 8 * * mon-fry\"]");
        let line = src.lines().count();
        let e = parse_config(&src, "t.toml", now()).unwrap_err();
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                format!(
                    "t.toml:{line}:19: pools[0].periods[0].schedules[0]: schedule `* * 25 * * * *`: hour field `25`: 25 is out of range 0-23 (both included)"
                ),
                format!(
                    "t.toml:{line}:41: pools[0].periods[0].schedules[1]: schedule `0 8 * * mon-fry`: day-of-week field `mon-fry`: `fry` is not a day (use 0-7 or sun..sat)"
                ),
            ]
        );
        assert!(!e.to_string().contains("less than"));
    }

    #[test]
    fn unknown_timezone_is_named_with_a_case_hint() {
        one_err(
            &period("schedules = [\"* * * * *\"]\ntimezone = \"europe/berlin\""),
            "pools[0].periods[0].timezone",
            "did you mean `Europe/Berlin`?",
        );
        one_err(
            &period("schedules = [\"* * * * *\"]\ntimezone = \"Mars/Olympus\""),
            "pools[0].periods[0].timezone",
            "unknown timezone `Mars/Olympus`",
        );
    }

    #[test]
    fn period_unknown_key_gets_a_hint() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_cout = 1"),
            "pools[0].periods[0].idle_cout",
            "did you mean `idle_count`?",
        );
    }
}
