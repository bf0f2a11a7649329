//! Synthetic week traces for benchmarks and tests on data this project does not ship.
//!
//! Shape: merge-request pipelines (a stage of 4 jobs, then 2) at random times in Berlin
//! working hours on weekdays, a nightly burst at 02:00 Berlin every day, and a few release
//! fan-outs (24 package builds plus 3 privileged image builds) at random weekday times.
//! Pipelines are added until the trace holds the requested number of jobs. Deterministic
//! for a seed.

use chrono::{Datelike, TimeZone};

use super::trace::{Trace, TraceJob};
use super::world::Rng;

/// Builds a week (Monday 2026-11-02 00:00 UTC onwards) of about `jobs` jobs.
pub fn week(jobs: usize, seed: u64) -> Trace {
    let mut rng = Rng::new(seed);
    let start = chrono::Utc
        .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let berlin = chrono_tz::Europe::Berlin;
    let mut out: Vec<TraceJob> = Vec::with_capacity(jobs + 64);
    let mut pipeline = 0u64;
    let tags = |privileged: bool| {
        let mut t = std::collections::BTreeSet::from(["docker".to_string()]);
        if privileged {
            t.insert("privileged".to_string());
        }
        t
    };
    let push = |out: &mut Vec<TraceJob>,
                at: chrono::DateTime<chrono::Utc>,
                d: u32,
                p: bool,
                pl: u64,
                st: u32| {
        out.push(TraceJob {
            submitted: at,
            duration_s: d,
            tags: tags(p),
            project: format!("project-{}", pl % 7),
            pipeline: pl,
            stage: st,
        });
    };
    // Nightly bursts and releases first, so `jobs` bounds the merge-request traffic.
    for day in 0..7 {
        let local = (start + chrono::Duration::days(day)).with_timezone(&berlin);
        let night = berlin
            .with_ymd_and_hms(local.year(), local.month(), local.day(), 2, 0, 0)
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc));
        if let Some(night) = night {
            pipeline += 1;
            for _ in 0..18 {
                let d = 300 + (rng.next_u64() % 900) as u32;
                push(&mut out, night, d, false, pipeline, 0);
            }
        }
        if day < 5 && rng.unit() < 0.6 {
            pipeline += 1;
            let at = start
                + chrono::Duration::days(day)
                + chrono::Duration::seconds(8 * 3600 + (rng.next_u64() % (8 * 3600)) as i64);
            for _ in 0..24 {
                push(
                    &mut out,
                    at,
                    700 + (rng.next_u64() % 200) as u32,
                    false,
                    pipeline,
                    0,
                );
            }
            for _ in 0..3 {
                push(
                    &mut out,
                    at,
                    900 + (rng.next_u64() % 300) as u32,
                    true,
                    pipeline,
                    0,
                );
            }
        }
    }
    while out.len() < jobs {
        // A weekday, Berlin working hours 08:00-18:00.
        let day = (rng.next_u64() % 5) as i64;
        let secs = 7 * 3600 + (rng.next_u64() % (10 * 3600)) as i64;
        let at = start + chrono::Duration::days(day) + chrono::Duration::seconds(secs);
        pipeline += 1;
        let mut stage_end = 0;
        for _ in 0..4 {
            let d = 60 + (rng.next_u64() % 600) as u32;
            stage_end = stage_end.max(d);
            push(&mut out, at, d, rng.unit() < 0.1, pipeline, 0);
        }
        let next = at + chrono::Duration::seconds(i64::from(stage_end));
        for _ in 0..2 {
            push(
                &mut out,
                next,
                60 + (rng.next_u64() % 300) as u32,
                false,
                pipeline,
                1,
            );
        }
    }
    out.truncate(jobs.max(1));
    out.sort_by_key(|j| (j.submitted, j.pipeline));
    Trace {
        name: format!("synthetic week ({jobs} jobs, seed {seed})"),
        jobs: out,
    }
}
