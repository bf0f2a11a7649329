//! The shipped example configurations: the reference setup loads with the expected
//! values, and every file in `docs/examples/broken/` gives exactly one error at the
//! expected position and key.

use std::path::PathBuf;
use std::time::Duration;

use autoscaler_config::{DockerInstall, OpenStackAuth, RunnerType, SecretSource, load};
use chrono::{DateTime, Utc};

fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples")
        .join(rel)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
}

#[test]
fn reference_setup_loads_with_the_reference_values() {
    let cfg = load(&example("reference-setup.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.controller.id, "icinga-ci");
    assert_eq!(cfg.gitlab.url.as_str(), "https://git.icinga.com/");
    assert_eq!(
        cfg.gitlab.token,
        SecretSource::File("/etc/gitlab-autoscaler/token".into())
    );
    assert!(matches!(
        cfg.openstack.as_ref().map(|o| &o.auth),
        Some(OpenStackAuth::Cloud { cloud, .. }) if cloud == "netways"
    ));
    let names: Vec<&str> = cfg.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["non-privileged", "privileged"]);

    for pool in &cfg.pools {
        let p = pool.policy;
        assert_eq!(p.idle_count, 4, "{}", pool.name);
        assert_eq!(p.idle_time, Duration::from_secs(3600));
        assert_eq!(p.max_builds, 100);
        assert_eq!(p.limit, 24);
        assert_eq!(pool.capacity.get(), 1);
        assert_eq!(pool.server.flavor, "s1.large");
        assert_eq!(pool.server.image, "Debian 10.1");
        assert_eq!(pool.server.networks, ["customer-network"]);
        assert_eq!(pool.server.security_groups, ["mine"]);
        assert_eq!(pool.server.key_name.as_deref(), Some("GitLab Runner"));
        assert_eq!(pool.runner.runner_type, RunnerType::Instance);
        assert!(!pool.runner.run_untagged);
        assert_eq!(pool.runner.docker_image, "alpine");
        let cache = pool
            .runner
            .cache
            .as_ref()
            .unwrap_or_else(|| panic!("cache"));
        assert_eq!(cache.bucket_name, "openstack-gitlab-runner");
        assert_eq!(cache.server_address, "s3provider.domain.localdomain");
        assert!(cache.shared);
        assert_eq!(
            cache.access_key,
            SecretSource::File("/etc/gitlab-autoscaler/s3-access".into())
        );
        assert_eq!(pool.bootstrap.docker_install, DockerInstall::Distro);
        assert_eq!(pool.bootstrap.binfmt_arches, ["arm64", "arm"]);
        assert_eq!(pool.periods.len(), 1);
        let period = &pool.periods[0];
        assert_eq!(period.timezone, chrono_tz::Europe::Berlin);
        let sources: Vec<&str> = period.schedules.iter().map(|s| s.source()).collect();
        assert_eq!(
            sources,
            ["* * 0-8,22-23 * * mon-fri *", "* * * * * sat,sun *"]
        );
    }
    let np = cfg.pool("non-privileged").unwrap_or_else(|| panic!("pool"));
    let pr = cfg.pool("privileged").unwrap_or_else(|| panic!("pool"));
    assert_eq!(np.runner.tags.iter().collect::<Vec<_>>(), ["docker"]);
    assert_eq!(
        pr.runner.tags.iter().collect::<Vec<_>>(),
        ["docker", "privileged"]
    );
    assert!(pr.runner.privileged && !np.runner.privileged);
}

#[test]
fn reference_setup_is_off_peak_at_night_and_on_weekends() {
    let cfg = load(&example("reference-setup.toml")).unwrap_or_else(|e| panic!("{e}"));
    let pool = cfg.pool("non-privileged").unwrap_or_else(|| panic!("pool"));
    // Wednesday 2025-01-08 10:00 Berlin (09:00Z): peak.
    let peak = pool.policy_at(at("2025-01-08T09:00:00Z"));
    assert_eq!((peak.period, peak.policy.idle_count), (None, 4));
    // Wednesday 23:30 Berlin: off-peak, idle_time overridden, limit inherited.
    let night = pool.policy_at(at("2025-01-08T22:30:00Z"));
    assert_eq!(night.period, Some(0));
    assert_eq!(night.policy.idle_count, 2);
    assert_eq!(night.policy.idle_time, Duration::from_secs(1800));
    assert_eq!(night.policy.limit, 24);
    assert_eq!(night.policy.max_builds, 100);
    // Saturday noon: off-peak.
    assert_eq!(pool.policy_at(at("2025-01-11T11:00:00Z")).period, Some(0));
    // From Wednesday noon, the next change is 22:00 Berlin = 21:00Z.
    assert_eq!(
        pool.next_transition(at("2025-01-08T11:00:00Z")),
        Some(at("2025-01-08T21:00:00Z"))
    );
    // From Friday 23:00 Berlin the window runs through the weekend until Monday 09:00.
    assert_eq!(
        pool.next_transition(at("2025-01-10T22:00:00Z")),
        Some(at("2025-01-13T08:00:00Z"))
    );
}

/// (file, line, column, key, message fragment)
const BROKEN: &[(&str, usize, usize, &str, &str)] = &[
    (
        "typo-key.toml",
        15,
        1,
        "pools[0].idle_tme",
        "did you mean `idle_time`?",
    ),
    (
        "bad-duration.toml",
        15,
        13,
        "pools[0].idle_time",
        "invalid duration `an hour`",
    ),
    (
        "unknown-timezone.toml",
        26,
        12,
        "pools[0].periods[0].timezone",
        "unknown timezone `Europe/Berlim`",
    ),
    (
        "impossible-cron.toml",
        25,
        14,
        "pools[0].periods[0].schedules[0]",
        "can never match",
    ),
    (
        "cron-field-out-of-range.toml",
        25,
        19,
        "pools[0].periods[0].schedules[0]",
        "hour field `0-8,22-24`: 24 is out of range 0-23 (both included)",
    ),
    (
        "absurd-poll-interval.toml",
        4,
        17,
        "controller.poll_interval",
        "`1000000000y` is out of range: must be between 1s and 1h",
    ),
    (
        "inline-token.toml",
        7,
        1,
        "gitlab.token",
        "inline secrets are not accepted",
    ),
    (
        "idle-count-over-limit.toml",
        15,
        14,
        "pools[0].idle_count",
        "exceeds limit 4 x capacity 1",
    ),
];

#[test]
fn each_broken_example_gives_exactly_one_positioned_error() {
    for (file, line, col, key, fragment) in BROKEN {
        let path = example(&format!("broken/{file}"));
        let errors = match load(&path) {
            Ok(_) => panic!("{file} loaded without error"),
            Err(e) => e,
        };
        assert_eq!(errors.len(), 1, "{file}: {errors}");
        let e = &errors.0[0];
        assert_eq!((e.line(), e.column()), (*line, *col), "{file}: {e}");
        assert_eq!(e.key, *key, "{file}: {e}");
        assert!(e.message.contains(fragment), "{file}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:{line}:{col}: {key}: ", path.display()))
        );
    }
}

#[test]
fn every_broken_example_is_covered_by_the_table() {
    let dir = example("broken");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = BROKEN.iter().map(|b| b.0.to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn inline_token_value_never_appears_in_the_error() {
    let errors = load(&example("broken/inline-token.toml"))
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert!(!errors.to_string().contains("glpat-not-a-real-token"));
    assert!(!format!("{errors:?}").contains("glpat-not-a-real-token"));
}

#[test]
fn unreadable_file_is_one_error_naming_it() {
    let errors = load(&example("does-not-exist.toml"))
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .to_string()
            .contains("does-not-exist.toml: cannot read file")
    );
}

/// A simulator calls `next_transition` once per simulated minute; over a week of the
/// reference config that must stay cheap. The bound is generous for debug builds on a
/// shared machine; the release figure is printed (`--nocapture`) and recorded in
/// docs/adr/0002-schedules.md.
#[test]
fn next_transition_over_a_week_of_minutes_is_fast() {
    let cfg = load(&example("reference-setup.toml")).unwrap_or_else(|e| panic!("{e}"));
    let pool = cfg.pool("non-privileged").unwrap_or_else(|| panic!("pool"));
    let start = at("2025-03-24T00:00:00Z"); // a week containing the spring-forward change
    let mut changes = std::collections::BTreeSet::new();
    let clock = std::time::SystemTime::now();
    for minute in 0..7 * 24 * 60 {
        let t = start + chrono::Duration::minutes(minute);
        if let Some(n) = pool.next_transition(t) {
            changes.insert(n);
        }
    }
    let elapsed = clock.elapsed().unwrap_or_default();
    let per_call = elapsed / (7 * 24 * 60);
    println!("next_transition: {per_call:?} per call over 10080 calls");
    assert!(per_call < Duration::from_millis(5), "{per_call:?} per call");
    // Mon-Fri 09:00 and 22:00 Berlin, plus Monday 09:00 of the next week.
    assert!(changes.contains(&at("2025-03-24T08:00:00Z"))); // CET
    assert!(changes.contains(&at("2025-03-31T07:00:00Z"))); // CEST after the change
    assert!(changes.contains(&at("2025-03-28T21:00:00Z"))); // Friday 22:00 CET
}

// Regression, issue 11 item 9: `load` (what `run` and `validate` call) refused a file
// whose period was restricted to a year that has passed, so a service that started
// during that year failed to restart in a loop after it.
#[test]
fn past_year_period_loads_inactive_with_one_positioned_warning() {
    let path = example("past-year-period.toml");
    let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!(
            "{}:32:14: pools[0].periods[1].schedules[0]: schedule `* * * 24-31 12 * 2020` can no longer match (no date from today on satisfies its date fields, e.g. a year in the past); it is never active again, remove it",
            path.display()
        )]
    );
    let pool = &cfg.pools[0];
    // Christmas 2026, a Friday noon in Berlin: the working-hours policy, not the dead
    // holiday period (which would set limit = 1).
    let xmas = pool.policy_at(at("2026-12-25T11:00:00Z"));
    assert_eq!(xmas.period, None);
    assert_eq!(xmas.policy.limit, 4);
    // Christmas night: the off-peak period.
    assert_eq!(pool.policy_at(at("2026-12-24T23:00:00Z")).period, Some(0));
}

#[test]
fn cost_optimised_example_is_the_reference_pools_in_wait_target_mode() {
    let cost = load(&example("cost-optimised.toml")).unwrap_or_else(|e| panic!("{e}"));
    let reference = load(&example("reference-setup.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cost.pools.len(), reference.pools.len());
    assert!(
        cost.gitlab.webhook_token.is_some(),
        "job events bring ticks forward"
    );
    for (c, r) in cost.pools.iter().zip(&reference.pools) {
        assert_eq!(c.name, r.name);
        // Same pools: limit, tags, flavor, image, runner and bootstrap.
        assert_eq!(c.policy.limit, r.policy.limit);
        assert_eq!(c.policy.max_builds, r.policy.max_builds);
        assert_eq!(c.server, r.server);
        assert_eq!(c.runner, r.runner);
        assert_eq!(c.bootstrap, r.bootstrap);
        // The new mode: a wait target, idle_count only a floor, no off-peak periods.
        assert_eq!(c.policy.target_wait, Some(Duration::from_secs(60)));
        assert_eq!(c.target_percentile, 95);
        assert_eq!(c.policy.idle_count, 0);
        assert_eq!(c.policy.idle_time, Duration::from_secs(40 * 60));
        assert_eq!(c.forecast_days, 1);
        assert!(c.periods.is_empty());
        assert_eq!(c.billing_period, None);
    }
}
