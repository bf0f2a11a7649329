//! Seeded fault simulation of the real reconciler (issue 11, "The test that proves it").
//!
//! Each seed draws a pool configuration, a job stream and fault rates, then runs the real
//! `Reconciler` tick by tick against the in-memory fakes behind the fault injector
//! (`autoscaler::testing::faults`), in paused tokio time: first a fault phase with jobs
//! arriving, then a convergence phase with no fault and no new job. Safety invariants I1
//! (no job killed, no busy server deleted) and I2 (never more servers than `limit`) are
//! checked after every port call and every step; I3 (everything converges: every job done,
//! exactly the idle servers `idle_count` asks for, all healthy, no orphan server or runner)
//! within a bounded number of ticks once faults stop. See docs/simulation.md.
//!
//! Environment:
//!
//! * `SIM_SEEDS=n`: seeds to run (default 2000 in release builds, 500 in debug builds).
//! * `SIM_FIRST_SEED=n`: first seed (default 0).
//! * `SIM_SEED=n`: replay exactly this seed and print its whole event log (the ignored test
//!   `replay`: `-- --ignored --nocapture replay`).
//! * `SIM_FAULTS=all|none|class,class`: fault classes (default all), see `Fault::name`.
//! * `SIM_CLASS_SEEDS=n`: seeds of each `<class>_alone` test (default 100 in debug builds,
//!   500 in release builds).
//! * `SIM_LOG_LINES=n`: event lines printed per failing seed (default 40).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use autoscaler::reconcile::Reconciler;
use autoscaler::testing::faults::{
    Arrival, Fault, FaultCloud, FaultGitLab, FaultRates, FaultSet, Faults, PoolBounds, SimRng,
    Violation, WorldPlan,
};
use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_core::ports::{CloudStatus, ControllerId};
use autoscaler_core::testing::cloud::FakeCloud;
use autoscaler_core::testing::gitlab::{FakeGitLab, FakeJobState};
use tokio::time::Instant;

/// Backoff of a failed tick, as `Reconciler::run` does it.
const MAX_TICK_BACKOFF: Duration = Duration::from_secs(300);
/// How often the world moves between ticks (faults drawn, runners boot, invariants checked).
const WORLD_STEP: Duration = Duration::from_secs(5);
/// Consecutive converged ticks that end the convergence phase early.
const CONVERGED_TICKS: u32 = 3;

// ===================================================================================
// Scenario drawn from a seed
// ===================================================================================

#[derive(Debug, Clone)]
struct PoolSpec {
    name: String,
    limit: u32,
    idle_count: u32,
    max_builds: u32,
    idle_time: u64,
    boot_timeout: u64,
    park_surplus: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    set: FaultSet,
    pools: Vec<PoolSpec>,
    capacity: u32,
    poll: u64,
    delete_delay: u64,
    boot_delay: (u64, u64),
    fault_phase: Duration,
    arrivals: Vec<Arrival>,
    rates: FaultRates,
}

impl Scenario {
    fn draw(seed: u64, set: FaultSet) -> Self {
        let mut rng = SimRng::new(seed, 1);
        let capacity = if rng.chance(0.2) { 2 } else { 1 };
        let npools = if rng.chance(0.25) { 2 } else { 1 };
        let pools: Vec<PoolSpec> = (0..npools)
            .map(|i| {
                let limit = rng.range(1, 6) as u32;
                PoolSpec {
                    name: format!("p{i}"),
                    limit,
                    idle_count: (rng.range(0, 2) as u32).min(limit * capacity),
                    max_builds: rng.range(0, 3) as u32,
                    idle_time: *rng.pick(&[60, 120, 300, 600]).unwrap(),
                    boot_timeout: *rng.pick(&[180, 300, 600]).unwrap(),
                    park_surplus: rng.chance(0.5),
                }
            })
            .collect();
        let poll = *rng.pick(&[5, 10, 15, 30, 60]).unwrap();
        let delete_delay = *rng.pick(&[0, 0, 5, 20]).unwrap();
        let boot_delay = (20, rng.range(30, 90));
        let fault_phase = Duration::from_secs(rng.range(10, 40) * 60);
        let njobs = rng.range(0, 16);
        let arrivals = (0..njobs)
            .map(|_| Arrival {
                at: Duration::from_secs(rng.range(0, fault_phase.as_secs())),
                tag: rng.pick(&pools).unwrap().name.clone(),
                duration: Duration::from_secs(*rng.pick(&[15, 45, 90, 240, 600]).unwrap()),
            })
            .collect();
        let rates = FaultRates::draw(set, &mut rng);
        Scenario {
            seed,
            set,
            pools,
            capacity,
            poll,
            delete_delay,
            boot_delay,
            fault_phase,
            arrivals,
            rates,
        }
    }

    fn toml(&self) -> String {
        let mut config = ConfigFixture::new()
            .id("sim")
            .poll_interval(&format!("{}s", self.poll));
        for p in &self.pools {
            config = config.pool(
                PoolFixture::new(&p.name)
                    .limit(p.limit)
                    .idle_count(p.idle_count)
                    .idle_time(&format!("{}s", p.idle_time))
                    .boot_timeout(&format!("{}s", p.boot_timeout))
                    .max_builds(p.max_builds)
                    .capacity(self.capacity)
                    .park_surplus(p.park_surplus)
                    .forecast_days(0)
                    .tags(&[&p.name]),
            );
        }
        config.render()
    }

    fn describe(&self) -> String {
        let pools: Vec<String> = self
            .pools
            .iter()
            .map(|p| {
                format!(
                    "{}(limit {}, idle_count {}, max_builds {}, idle_time {}s, boot_timeout {}s, park {})",
                    p.name,
                    p.limit,
                    p.idle_count,
                    p.max_builds,
                    p.idle_time,
                    p.boot_timeout,
                    p.park_surplus
                )
            })
            .collect();
        format!(
            "pools {}; capacity {}; poll {}s; boot {}..{}s; delete {}s; {} jobs over {} min; faults {}",
            pools.join(", "),
            self.capacity,
            self.poll,
            self.boot_delay.0,
            self.boot_delay.1,
            self.delete_delay,
            self.arrivals.len(),
            self.fault_phase.as_secs() / 60,
            self.set.names()
        )
    }
}

// ===================================================================================
// One seed
// ===================================================================================

#[derive(Debug, Clone)]
struct Outcome {
    seed: u64,
    scenario: String,
    events: Vec<String>,
    violation: Option<Violation>,
    injected: u64,
    calls: u64,
    checks: u64,
    ticks: u64,
    restarts: u64,
}

fn epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn run_seed(seed: u64, set: FaultSet) -> Outcome {
    run_seed_traced(seed, set, false)
}

/// Runs one seed; with `trace`, the reconciler's own log lines (plans, actions and their
/// reasons) are interleaved into the event log. Tracing only observes: the event log's
/// other lines are the same either way.
fn run_seed_traced(seed: u64, set: FaultSet, trace: bool) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(simulate(Scenario::draw(seed, set), trace))
}

/// Writes each tracing line of the reconciler into the simulation's event log.
#[derive(Clone)]
struct LogWriter(Faults);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for line in String::from_utf8_lossy(buf).lines() {
            let line = line.trim();
            if !line.is_empty() {
                self.0.log(format!("  reconciler: {line}"));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Rec = Reconciler<FaultGitLab, FaultCloud>;

/// A controller as `run` builds one with a `state_dir`: its durable memory is in `store`,
/// which outlives the controller (a restarted one is given the same store).
fn reconciler(
    faults: &Faults,
    config: &Arc<autoscaler_config::Config>,
    store: &autoscaler_core::memory::MemoryStore,
) -> Rec {
    Reconciler::new(
        faults.gitlab(),
        faults.cloud(),
        Arc::clone(config),
        Arc::new(faults.clock()),
        4,
    )
    .unwrap()
    .with_store(Arc::new(store.clone()))
}

async fn simulate(sc: Scenario, trace: bool) -> Outcome {
    let id = ControllerId::new("sim").unwrap();
    let gitlab = FakeGitLab::new(id.clone());
    gitlab.set_capacity(sc.capacity);
    let cloud = FakeCloud::new(id);
    cloud.set_delete_delay(Duration::from_secs(sc.delete_delay));
    let config = Arc::new(autoscaler_config::parse_at(&sc.toml(), "sim.toml", epoch()).unwrap());
    let world = WorldPlan {
        pools: sc
            .pools
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    PoolBounds {
                        limit: p.limit,
                        boot_timeout: Duration::from_secs(p.boot_timeout),
                    },
                )
            })
            .collect(),
        boot_delay: (
            Duration::from_secs(sc.boot_delay.0),
            Duration::from_secs(sc.boot_delay.1),
        ),
        arrivals: sc.arrivals.clone(),
    };
    let faults = Faults::new(
        gitlab,
        cloud,
        SimRng::new(sc.seed, 2),
        sc.set,
        sc.rates,
        world,
    );
    faults.log(format!("seed {}: {}", sc.seed, sc.describe()));
    let _trace = trace.then(|| {
        let writer = LogWriter(faults.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("autoscaler=debug"))
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    });
    let store = autoscaler_core::memory::MemoryStore::default();
    let mut rec = reconciler(&faults, &config, &store);
    let poll = Duration::from_secs(sc.poll);
    let start = Instant::now();
    let fault_end = start + sc.fault_phase;
    let mut converge_deadline: Option<Instant> = None;
    let mut next_tick = start;
    let mut delay = poll;
    let (mut ticks, mut restarts, mut streak) = (0u64, 0u64, 0u32);

    while faults.violation().is_none() {
        let now = Instant::now();
        if now < next_tick {
            tokio::time::sleep_until(next_tick.min(now + WORLD_STEP)).await;
            faults.sync_world().await;
            faults.step_faults();
            faults.check_safety();
            continue;
        }
        if converge_deadline.is_none() && now >= fault_end && faults.world_settled() {
            faults.set_active(false);
            let budget = convergence_budget(&sc, &faults);
            faults.log(format!(
                "convergence phase: at most {} s ({} ticks)",
                budget.as_secs(),
                budget.as_secs() / sc.poll
            ));
            converge_deadline = Some(now + budget);
        }
        faults.step_clock();
        let kill = faults.killed();
        ticks += 1;
        let result = {
            let tick = rec.tick();
            tokio::pin!(tick);
            tokio::select! {
                biased;
                () = kill.notified() => None,
                r = &mut tick => Some(r),
            }
        };
        match result {
            None => {
                restarts += 1;
                faults.restart();
                rec = reconciler(&faults, &config, &store);
                delay = poll;
                next_tick = Instant::now();
                continue;
            }
            Some(Ok(_)) => delay = poll,
            Some(Err(e)) => {
                faults.log(format!("tick failed: {e:#}"));
                delay = (delay * 2).min(MAX_TICK_BACKOFF);
            }
        }
        faults.sync_world().await;
        faults.check_safety();
        if let Some(deadline) = converge_deadline {
            faults.count_check();
            let left = leftovers(&sc, &faults);
            if left.is_empty() {
                streak += 1;
                if streak >= CONVERGED_TICKS {
                    faults.log("converged");
                    break;
                }
            } else {
                streak = 0;
                if Instant::now() >= deadline {
                    faults.violate(
                        "I3",
                        format!("not converged within the bound: {}", left.join("; ")),
                    );
                    break;
                }
            }
        }
        next_tick = Instant::now() + delay;
    }

    let (calls, checks) = faults.counters();
    Outcome {
        seed: sc.seed,
        scenario: sc.describe(),
        events: faults.events(),
        violation: faults.violation(),
        injected: faults.injected().values().sum(),
        calls,
        checks,
        ticks,
        restarts,
    }
}

/// How long convergence may take once faults stop: the circuit breaker's cooldown and the
/// longest create backoff, three boot timeouts and idle times of the slowest pool, and for
/// every job still to finish its run time plus a boot and two polls (jobs may run one after
/// the other when `limit` is 1).
fn convergence_budget(sc: &Scenario, faults: &Faults) -> Duration {
    let worst = sc
        .pools
        .iter()
        .map(|p| p.boot_timeout + p.idle_time)
        .max()
        .unwrap_or(0);
    let jobs: u64 = faults
        .fake_gitlab()
        .jobs()
        .iter()
        .filter(|j| !matches!(j.state, FakeJobState::Done(_)))
        .map(|j| j.duration.as_secs() + sc.boot_delay.1 + 2 * sc.poll)
        .sum();
    Duration::from_secs(900 + 600 + 3 * worst + jobs + 4 * sc.poll + sc.delete_delay)
}

/// What keeps the world from being converged (empty = converged): a job not done, a server
/// not ACTIVE or without a healthy unpaused runner, a pool not at exactly the servers its
/// `idle_count` asks for, or a runner without a server.
fn leftovers(sc: &Scenario, faults: &Faults) -> Vec<String> {
    let gitlab = faults.fake_gitlab();
    let mut left = Vec::new();
    for j in gitlab.jobs() {
        match j.state {
            FakeJobState::Done(_) => {}
            s => left.push(format!("job {} {s:?}", j.id)),
        }
    }
    let offline = faults.offline_runners();
    let runners = gitlab.runner_ids();
    let servers = faults.fake_cloud().servers();
    let mut per_pool: BTreeMap<String, u32> = BTreeMap::new();
    for s in &servers {
        let pool = s.pool.clone().unwrap_or_default();
        *per_pool.entry(pool).or_default() += 1;
        if s.status != CloudStatus::Active {
            left.push(format!("server {} is {:?}", s.id, s.status));
        }
        match s.runner_id {
            None => left.push(format!("server {} has no runner id", s.id)),
            Some(r) if !runners.contains(&r) => {
                left.push(format!("server {} has no runner (runner {r} gone)", s.id))
            }
            Some(r) if offline.contains(&r) => left.push(format!(
                "server {} is kept though its runner {r} is offline",
                s.id
            )),
            Some(r) if gitlab.is_paused(r) == Some(true) => {
                left.push(format!("server {} has its runner {r} paused", s.id))
            }
            Some(_) => {}
        }
    }
    for p in &sc.pools {
        let want = p.idle_count.div_ceil(sc.capacity).min(p.limit);
        let have = per_pool.get(&p.name).copied().unwrap_or(0);
        if have != want {
            left.push(format!(
                "pool {} has {have} servers, idle_count wants {want}",
                p.name
            ));
        }
    }
    for r in runners {
        if !servers.iter().any(|s| s.runner_id == Some(r)) {
            left.push(format!("runner {r} has no server (orphan runner)"));
        }
    }
    left
}

// ===================================================================================
// Running many seeds and reporting
// ===================================================================================

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn env_faults() -> FaultSet {
    match std::env::var("SIM_FAULTS") {
        Ok(v) => FaultSet::parse(&v).unwrap_or_else(|e| panic!("SIM_FAULTS: {e}")),
        Err(_) => FaultSet::all(),
    }
}

fn log_lines() -> usize {
    env_u64("SIM_LOG_LINES").unwrap_or(40) as usize
}

fn print_failure(o: &Outcome, lines: usize, set: FaultSet) {
    let Some(v) = &o.violation else { return };
    eprintln!(
        "\nseed {} violates {} at {:.1}s: {}\n  scenario: {}\n  replay: SIM_SEED={} SIM_FAULTS={} cargo test -p autoscaler --features testing --test fault_sim -- --ignored --nocapture replay\n  last events:",
        o.seed,
        v.invariant,
        v.at_secs,
        v.detail,
        o.scenario,
        o.seed,
        set.names()
    );
    let end = (v.event + 4).min(o.events.len());
    for line in &o.events[end.saturating_sub(lines)..end] {
        eprintln!("    {line}");
    }
}

struct Report {
    seeds: u64,
    failures: Vec<Outcome>,
    injected: u64,
    calls: u64,
    checks: u64,
    ticks: u64,
    restarts: u64,
    secs: f64,
}

fn run_many(label: &str, first: u64, seeds: u64, set: FaultSet) -> Report {
    // Real time, for the seeds-per-second figure only (the simulation runs in tokio time).
    let started = std::time::SystemTime::now();
    let mut r = Report {
        seeds,
        failures: Vec::new(),
        injected: 0,
        calls: 0,
        checks: 0,
        ticks: 0,
        restarts: 0,
        secs: 0.0,
    };
    for seed in first..first + seeds {
        let o = run_seed(seed, set);
        r.injected += o.injected;
        r.calls += o.calls;
        r.checks += o.checks;
        r.ticks += o.ticks;
        r.restarts += o.restarts;
        if o.violation.is_some() {
            r.failures.push(o);
        }
    }
    r.secs = started.elapsed().unwrap_or_default().as_secs_f64();
    let n = seeds.max(1) as f64;
    eprintln!(
        "[{label}] faults {}: {} seeds in {:.1} s ({:.1} seeds/s), {} failed; per seed: {:.1} faults injected, {:.0} ticks, {:.2} restarts, {:.0} port calls; {} invariant checks in all",
        set.names(),
        seeds,
        r.secs,
        n / r.secs.max(1e-9),
        r.failures.len(),
        r.injected as f64 / n,
        r.ticks as f64 / n,
        r.restarts as f64 / n,
        r.calls as f64 / n,
        r.checks
    );
    let mut by_inv: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for f in &r.failures {
        if let Some(v) = &f.violation {
            by_inv.entry(v.invariant).or_default().push(f.seed);
        }
    }
    for (inv, seeds) in &by_inv {
        let shown: Vec<String> = seeds.iter().take(12).map(u64::to_string).collect();
        eprintln!(
            "[{label}] {inv} violated by {} seeds, e.g. {}",
            seeds.len(),
            shown.join(" ")
        );
    }
    for f in r.failures.iter().take(40) {
        if let Some(v) = &f.violation {
            let mut d = v.detail.clone();
            d.truncate(220);
            eprintln!(
                "[{label}]   seed {}: {} at {:.0}s: {d}",
                f.seed, v.invariant, v.at_secs
            );
        }
    }
    for f in r.failures.iter().take(3) {
        let traced = run_seed_traced(f.seed, set, true);
        print_failure(&traced, log_lines(), set);
    }
    r
}

fn assert_clean(r: &Report, label: &str) {
    assert!(r.checks > 0, "{label}: no invariant was checked");
    assert!(
        r.failures.is_empty(),
        "{label}: {} of {} seeds violate an invariant; first: seed {} ({:?})",
        r.failures.len(),
        r.seeds,
        r.failures[0].seed,
        r.failures[0].violation.as_ref().map(|v| v.invariant)
    );
}

fn default_seeds() -> u64 {
    env_u64("SIM_SEEDS").unwrap_or(if cfg!(debug_assertions) { 500 } else { 2000 })
}

/// The simulation: every fault class on (or `SIM_FAULTS`), `SIM_SEEDS` seeds.
#[test]
fn fault_simulation_keeps_every_invariant() {
    let set = env_faults();
    let r = run_many(
        "simulation",
        env_u64("SIM_FIRST_SEED").unwrap_or(0),
        default_seeds(),
        set,
    );
    assert!(
        set == FaultSet::NONE || r.injected > 0,
        "faults were switched on but none was injected"
    );
    assert_clean(&r, "simulation");
}

/// Replays `SIM_SEED` (default 0, with `SIM_FAULTS`) and prints its whole event log, with
/// the reconciler's own log lines: `SIM_SEED=n cargo test ... -- --ignored replay`.
#[test]
#[ignore = "replays one seed (SIM_SEED) on request"]
fn replay() {
    let seed = env_u64("SIM_SEED").unwrap_or(0);
    let set = env_faults();
    let o = run_seed_traced(seed, set, true);
    for line in &o.events {
        eprintln!("{line}");
    }
    print_failure(&o, log_lines(), set);
    assert!(o.checks > 0, "no invariant was checked");
    assert!(
        o.violation.is_none(),
        "seed {seed} violates {:?}",
        o.violation
    );
}

/// The same seed gives the same event log, fault for fault and call for call.
#[test]
fn a_seed_replays_to_the_same_event_log() {
    for seed in [3, 17, 42] {
        let a = run_seed(seed, FaultSet::all());
        let b = run_seed(seed, FaultSet::all());
        assert!(
            a.events.len() > 10,
            "seed {seed}: too few events to compare"
        );
        assert_eq!(a.events, b.events, "seed {seed} is not deterministic");
        let traced: Vec<String> = run_seed_traced(seed, FaultSet::all(), true)
            .events
            .into_iter()
            .filter(|l| !l.contains("  reconciler: "))
            .collect();
        assert_eq!(a.events, traced, "seed {seed}: tracing changed the run");
    }
}

/// The harness itself: without any fault every seed is safe and converges. A failure here
/// is a bug in the harness or in the reconciler's fault-free behaviour.
#[test]
fn without_faults_every_seed_is_safe_and_converges() {
    let seeds = env_u64("SIM_SEEDS").map_or(100, |n| n.min(300));
    let r = run_many("no faults", 0, seeds, FaultSet::NONE);
    assert_eq!(r.injected, 0);
    assert_clean(&r, "no faults");
}

fn class_alone(f: Fault) {
    let seeds =
        env_u64("SIM_CLASS_SEEDS").unwrap_or(if cfg!(debug_assertions) { 100 } else { 500 });
    let label = format!("{} alone", f.name());
    let r = run_many(&label, 0, seeds, FaultSet::only(f));
    assert!(r.injected > 0, "{label}: no fault was injected");
    assert_clean(&r, &label);
}

macro_rules! class_tests {
    ($($name:ident => $fault:expr),* $(,)?) => {
        $(
            /// One fault class alone (`SIM_CLASS_SEEDS` seeds; default 100 in debug, 500 in
            /// release builds).
            #[test]
            fn $name() {
                class_alone($fault);
            }
        )*
    };
}

class_tests! {
    list_omission_alone => Fault::ListOmission,
    list_truncation_alone => Fault::ListTruncation,
    transient_errors_alone => Fault::Transient,
    lost_answers_alone => Fault::LostAnswer,
    quota_refusals_alone => Fault::Quota,
    async_error_alone => Fault::AsyncError,
    stuck_deletes_alone => Fault::StuckDelete,
    runners_offline_alone => Fault::Offline,
    restarts_alone => Fault::Restart,
    clock_skew_alone => Fault::ClockSkew,
}
