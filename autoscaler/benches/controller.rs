//! Controller benchmarks against the in-memory fakes:
//! `cargo bench -p autoscaler --features testing --bench controller`.
//!
//! 1. 200 VMs requested at once with 100 ms latency on every GitLab and cloud call (each
//!    create is a runner create plus a server create): wall time until all 200 servers exist.
//! 2. 2,000 VMs and 2,000 runners in steady state: CPU time per tick (observe, plan, apply
//!    nothing) and the process's resident memory.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use autoscaler::reconcile::{Reconciler, SystemClock};
use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_core::ports::ControllerId;
use autoscaler_core::testing::cloud::FakeCloud;
use autoscaler_core::testing::gitlab::FakeGitLab;

fn config(limit: u32) -> autoscaler_config::Config {
    let text = ConfigFixture::new()
        .id("bench")
        .token_env("UNUSED")
        .scope("projects = [\"g/p\"]")
        .pool(
            PoolFixture::new("docker")
                .limit(limit)
                .idle_time("1h")
                .forecast_days(0)
                .flavor("m1.small"),
        )
        .render();
    autoscaler_config::parse(&text, "bench.toml").unwrap()
}

/// CPU seconds (user + system) of this process, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn burst_of_200() {
    let id = ControllerId::new("bench").unwrap();
    let gitlab = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    gitlab.set_latency(Duration::from_millis(100));
    cloud.set_latency(Duration::from_millis(100));
    for _ in 0..200 {
        gitlab.add_job(&["docker"], Duration::from_secs(600));
    }
    let mut r = Reconciler::new(
        gitlab,
        cloud.clone(),
        Arc::new(config(200)),
        Arc::new(SystemClock),
        32,
    )
    .unwrap();
    #[allow(clippy::disallowed_types)]
    let t = std::time::Instant::now();
    let s = r.tick().await.unwrap();
    let wall = t.elapsed();
    println!(
        "200 VMs requested in one tick, 100 ms latency per call, 32 in flight: {:.2} s wall, {} servers, {} failures",
        wall.as_secs_f64(),
        cloud.servers().len(),
        s.failures.len()
    );
}

async fn steady_2000() {
    let id = ControllerId::new("bench").unwrap();
    let gitlab = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    cloud.set_boot_delay(Duration::ZERO);
    for _ in 0..2000 {
        gitlab.add_job(&["docker"], Duration::from_secs(24 * 3600));
    }
    let mut r = Reconciler::new(
        gitlab.clone(),
        cloud.clone(),
        Arc::new(config(2000)),
        Arc::new(SystemClock),
        64,
    )
    .unwrap();
    r.tick().await.unwrap();
    for s in cloud.servers() {
        if let Some(id) = s.runner_id {
            gitlab.runner_booted(id);
        }
    }
    // Settle: every job picked up, nothing left to do.
    r.tick().await.unwrap();
    let ticks = 20;
    let cpu0 = cpu_seconds();
    let mut planned = 0;
    for _ in 0..ticks {
        let s = r.tick().await.unwrap();
        planned += s.planned.values().sum::<u32>();
    }
    let cpu = (cpu_seconds() - cpu0) / f64::from(ticks);
    println!(
        "2,000 VMs + 2,000 runners steady state: {:.1} ms CPU per tick (mean of {ticks}), {} actions planned, RSS {:.1} MiB",
        cpu * 1000.0,
        planned,
        rss_mib()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(burst_of_200());
    rt.block_on(steady_2000());
}
