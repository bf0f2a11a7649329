//! Simulator tests on the shipped trace and on small synthetic ones.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::Limits;
use chrono::{Datelike, Timelike};
use std::collections::BTreeSet;

/// The reference setup built by hand (the config-file path is tested in the CLI tests).
pub(crate) fn reference_spec() -> SimSpec {
    let pool = |name: &str, tags: &[&str]| SimPool {
        policy: PoolPolicy {
            name: name.into(),
            tags: tags.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            run_untagged: false,
            capacity: 1,
            park_surplus: true,
            limits: Limits {
                idle_count: 4,
                idle_time: Duration::from_secs(3600),
                max_builds: 100,
                limit: 24,
                max_growth: 0,
                boot_timeout: Duration::from_secs(600),
            },
        },
        periods: vec![SimPeriod {
            label: "off-peak".into(),
            active: Box::new(|t| {
                let l = t.with_timezone(&chrono_tz::Europe::Berlin);
                let wd = l.weekday().num_days_from_monday();
                wd >= 5 || l.hour() <= 8 || l.hour() >= 22
            }),
            overrides: Overrides {
                idle_count: Some(2),
                idle_time: Some(Duration::from_secs(1800)),
                ..Overrides::default()
            },
        }],
    };
    SimSpec {
        pools: vec![
            pool("non-privileged", &["docker"]),
            pool("privileged", &["docker", "privileged"]),
        ],
        poll_interval: Duration::from_secs(10),
        cloud: world::CloudModel::default(),
        backoff: Backoff::default(),
        forecast: crate::forecast::ForecastSettings::default(),
        seed: 1,
        tail_s: 4 * 3600,
        sample_every_s: 0,
    }
}

fn release_week() -> Trace {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces/release-week.csv");
    let text = std::fs::read_to_string(path).unwrap();
    Trace::parse(&text, "release-week.csv").unwrap()
}

#[test]
#[ignore = "prints figures; run with --ignored --nocapture"]
fn print_reference_figures() {
    let trace = release_week();
    let spec = reference_spec();
    for r in compare(&trace, &spec) {
        println!("{} {:?}", r.name, r.total);
    }
}

#[test]
#[ignore = "debug print"]
fn print_dm_nightly_waits() {
    let trace = release_week();
    let spec = reference_spec();
    let (start, end) = window(&trace, &spec);
    let _ = (start, end);
    for (name, runner) in [("dm", dm::run as fn(&Trace, &SimSpec) -> PolicyReport), ("ours", ours::run)] {
        let r = runner(&trace, &spec);
        println!("{name} p95 {}", r.total.wait_p95_s);
    }
    let (_, starts) = dm::run_world(&trace, &spec);
    for (j, s) in trace.jobs.iter().zip(&starts) {
        if j.pipeline == 233 || j.pipeline == 235 {
            println!("p{} {} wait {:?}", j.pipeline, j.submitted, s.map(|s| s - j.submitted.timestamp()));
        }
    }
}

#[test]
#[ignore = "debug print"]
fn print_forecast_creates() {
    let trace = release_week();
    let mut spec = reference_spec();
    for p in spec.pools.iter_mut() {
        p.policy.limits.idle_count = 0;
        p.periods[0].overrides.idle_count = Some(0);
    }
    let (start, end) = window(&trace, &spec);
    let mut hist = crate::forecast::ArrivalHistory::default();
    let mut j = 0;
    let mut last = 0u32;
    for t in (start..end).step_by(15) {
        while j < trace.jobs.len() && trace.jobs[j].submitted.timestamp() <= t {
            hist.record("p", trace.jobs[j].submitted);
            j += 1;
        }
        let e = hist.expected("p", ts(t), spec.forecast);
        if e != last {
            println!("{} expected {}", ts(t), e);
            last = e;
        }
    }
}
