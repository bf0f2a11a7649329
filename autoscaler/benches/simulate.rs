//! Simulator speed: `cargo bench -p autoscaler --bench simulate`.
//!
//! Replays the built-in release week (1,602 jobs) and a synthetic week of 6,000 jobs
//! through this project's policy alone and through `--compare` (four policies), with the
//! reference configuration (and this project's policy with the cost-optimised one, in
//! wait-target mode), and prints the best and median wall time of several runs.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use autoscaler::sim::{self, Trace};

fn sim_spec(text: &str, name: &str) -> sim::SimSpec {
    let config = autoscaler_config::parse(text, name).unwrap();
    sim::SimSpec {
        pools: config
            .pools
            .iter()
            .map(autoscaler::settings::sim_pool)
            .collect(),
        poll_interval: config.controller.poll_interval,
        cloud: sim::world::CloudModel::default(),
        backoff: autoscaler_core::model::Backoff::default(),
        seed: 1,
        tail_s: 4 * 3600,
        sample_every_s: 0,
        webhook: config.gitlab.webhook_token.is_some(),
    }
}

fn time<F: FnMut()>(label: &str, runs: usize, mut f: F) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            // Wall-clock timing is what this benchmark measures.
            #[allow(clippy::disallowed_types)]
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{label:<48} best {:>8.1} ms   median {:>8.1} ms   ({runs} runs)",
        times[0].as_secs_f64() * 1e3,
        times[runs / 2].as_secs_f64() * 1e3
    );
}

fn main() {
    let spec = sim_spec(
        include_str!("../../docs/examples/reference-setup.toml"),
        "reference-setup.toml",
    );
    let cost = sim_spec(
        include_str!("../../docs/examples/cost-optimised.toml"),
        "cost-optimised.toml",
    );
    let week = Trace::parse(include_str!("../data/release-week.csv"), "release-week.csv").unwrap();
    let big = sim::synthetic::week(6000, 1);
    println!(
        "traces: {} ({} jobs), {} ({} jobs)",
        week.name,
        week.jobs.len(),
        big.name,
        big.jobs.len()
    );
    time("release week, autoscaler policy", 5, || {
        std::hint::black_box(sim::ours::run(&week, &spec));
    });
    time("release week, --compare (4 policies)", 5, || {
        std::hint::black_box(sim::compare(&week, &spec));
    });
    time("6,000-job week, autoscaler policy", 5, || {
        std::hint::black_box(sim::ours::run(&big, &spec));
    });
    time("6,000-job week, --compare (4 policies)", 5, || {
        std::hint::black_box(sim::compare(&big, &spec));
    });
    time("release week, wait-target mode (cost-optimised)", 5, || {
        std::hint::black_box(sim::ours::run(&week, &cost));
    });
    time(
        "6,000-job week, wait-target mode (cost-optimised)",
        5,
        || {
            std::hint::black_box(sim::ours::run(&big, &cost));
        },
    );
}
