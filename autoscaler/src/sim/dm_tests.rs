//! One test per rule of the docker+machine model (`dm.rs`), each on a tiny trace or a
//! hand-built fleet. The rules and the gitlab-runner source they come from are listed in
//! docs/simulation.md, "docker+machine model: checked against gitlab-runner's source".
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use autoscaler_core::model::{Backoff, Limits, PoolPolicy};

use super::{Data, run_observed, update_pass};
use crate::sim::world::{CHECK_INTERVAL, CloudModel, Phase, PoolMatch, Secs, World};
use crate::sim::{Overrides, PeriodRule, SimPeriod, SimPool, SimSpec, Trace, ts};

/// Every trace starts here (a Monday, 10:00 UTC); the window starts at this second.
const T0: &str = "2026-11-02T10:00:00Z";

fn t0() -> Secs {
    chrono::DateTime::parse_from_rfc3339(T0)
        .unwrap()
        .timestamp()
}

fn limits(idle_count: u32, limit: u32, max_builds: u32, max_growth: u32) -> Limits {
    Limits {
        idle_count,
        idle_time: Duration::from_secs(1800),
        max_builds,
        limit,
        max_growth,
        boot_timeout: Duration::from_secs(600),
        target_wait: None,
    }
}

fn pool(tags: &[&str], l: Limits) -> SimPool {
    SimPool {
        policy: PoolPolicy {
            name: tags.join("+"),
            tags: tags.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            run_untagged: false,
            capacity: 1,
            park_surplus: true,
            limits: l,
            forecast: autoscaler_core::forecast::ForecastSettings::default(),
            target_percentile: 95,
            billing_period: None,
        },
        periods: Vec::new(),
    }
}

/// Boots take exactly 90 s (no spread), deletes 10 s.
fn spec(pools: Vec<SimPool>) -> SimSpec {
    SimSpec {
        pools,
        poll_interval: Duration::from_secs(15),
        cloud: CloudModel {
            boot_sigma: 0.0,
            ..CloudModel::default()
        },
        backoff: Backoff::default(),
        seed: 1,
        tail_s: 3600,
        sample_every_s: 0,
        webhook: false,
    }
}

/// Jobs as (seconds after T0, duration, `;`-separated tags), after a job at T0 that no
/// pool runs: it opens the window at T0, so pools warm up before the jobs that matter.
/// Job indexes in [`Run`] leave it out.
fn trace(jobs: &[(i64, u32, &str)]) -> Trace {
    let mut csv = String::from("submitted_at,duration_s,tags,project,pipeline,stage\n");
    csv.push_str(&format!("{T0},1,nobody,p,0,0\n"));
    for (i, &(at, d, tags)) in jobs.iter().enumerate() {
        let t = ts(t0() + at).to_rfc3339();
        csv.push_str(&format!("{t},{d},{tags},p,{i},0\n"));
    }
    Trace::parse(&csv, "dm.csv").unwrap()
}

/// One VM as seen at the end of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Vm {
    pool: usize,
    phase: Phase,
    running: usize,
    jobs_run: u32,
    created: Secs,
}

/// What a run left behind: job starts (seconds after T0), the pool that ran each job, and
/// the fleet at the end of every second.
struct Run {
    starts: Vec<Option<Secs>>,
    pools: Vec<Option<usize>>,
    fleet: Vec<(Secs, Vec<Vm>)>,
}

impl Run {
    fn start(&self, job: usize) -> Secs {
        self.starts[job].unwrap()
    }
    /// The fleet at `t` seconds after T0.
    fn at(&self, t: Secs) -> &[Vm] {
        &self.fleet.iter().find(|(s, _)| *s == t).unwrap().1
    }
    fn alive_max(&self) -> usize {
        self.fleet
            .iter()
            .map(|(_, v)| v.iter().filter(|m| m.phase != Phase::Deleted).count())
            .max()
            .unwrap()
    }
    /// Seconds after T0 at which VMs were created, in creation order.
    fn creates(&self) -> Vec<Secs> {
        self.fleet
            .last()
            .unwrap()
            .1
            .iter()
            .map(|v| v.created)
            .collect()
    }
}

fn run(trace: &Trace, spec: &SimSpec) -> Run {
    let base = t0();
    let mut fleet = Vec::new();
    let mut pools = Vec::new();
    let (_, starts) = run_observed(trace, spec, &mut |t, w: &World<'_>| {
        let vms = w
            .vms
            .iter()
            .map(|v| Vm {
                pool: v.pool,
                phase: v.phase,
                running: v.running.len(),
                jobs_run: v.jobs_run,
                created: v.created - base,
            })
            .collect();
        fleet.push((t - base, vms));
        pools = w.records.iter().map(|r| r.pool).collect();
    });
    Run {
        starts: starts
            .into_iter()
            .skip(1)
            .map(|s| s.map(|s| s - base))
            .collect(),
        pools: pools.into_iter().skip(1).collect(),
        fleet,
    }
}

/// A fleet of `n` machines of pool 0, booted at second 10, for the update-pass tests.
fn fleet(n: usize) -> World<'static> {
    let mut w = World::new(
        &[],
        vec![PoolMatch {
            tags: BTreeSet::new(),
            run_untagged: true,
            capacity: 1,
        }],
        1,
    );
    for _ in 0..n {
        let i = w.create_vm(0, 0, 10, false);
        w.vms[i].phase = Phase::Ready;
    }
    w
}

fn deleting(w: &World<'_>) -> Vec<usize> {
    (0..w.vms.len())
        .filter(|&i| matches!(w.vms[i].phase, Phase::Deleting(_)))
        .collect()
}

// --- updateMachines / shouldRemoveIdle -----------------------------------------------------

#[test]
fn update_pass_judges_each_idle_machine_against_the_machines_before_it() {
    // Four idle machines, limit 3: only the newest sees Total >= limit before it.
    let mut w = fleet(4);
    let d = update_pass(&mut w, 0, limits(4, 3, 0, 0), 100, 10);
    assert_eq!(deleting(&w), vec![3]);
    assert_eq!(
        d,
        Data {
            idle: 3,
            removing: 1,
            ..Data::default()
        }
    );
}

#[test]
fn machines_being_removed_count_toward_limit() {
    // The oldest is being deleted: it still counts, so the third idle one is over the limit.
    let mut w = fleet(4);
    w.vms[0].phase = Phase::Deleting(200);
    let d = update_pass(&mut w, 0, limits(4, 3, 0, 0), 100, 10);
    assert_eq!(deleting(&w), vec![0, 3]);
    assert_eq!(d.removing, 2);
    assert_eq!(d.total(), 4);
}

#[test]
fn idle_time_removes_only_once_available_reaches_idle_count_and_only_when_exceeded() {
    // idle_time 1800, IdleCount 2, three machines idle since second 10: the two oldest are
    // kept (fewer than IdleCount available before them), the newest goes.
    let mut w = fleet(3);
    update_pass(&mut w, 0, limits(2, 0, 0, 0), 10 + 1800, 10);
    assert!(
        deleting(&w).is_empty(),
        "idle exactly IdleTime is kept (strict >)"
    );
    update_pass(&mut w, 0, limits(2, 0, 0, 0), 10 + 1801, 10);
    assert_eq!(deleting(&w), vec![2]);
}

#[test]
fn an_idle_machine_at_max_builds_is_removed_by_the_pass() {
    let mut w = fleet(2);
    w.vms[1].jobs_run = 3;
    update_pass(&mut w, 0, limits(2, 0, 3, 0), 100, 10);
    assert_eq!(deleting(&w), vec![1]);
}

#[test]
fn creating_and_used_machines_are_never_removed_by_the_pass() {
    let mut w = fleet(3);
    w.vms[0].phase = Phase::Creating;
    w.vms[1].running.push((0, 10_000));
    let d = update_pass(&mut w, 0, limits(0, 1, 0, 0), 5000, 10);
    assert_eq!(deleting(&w), vec![2], "only the idle one, over the limit");
    assert_eq!((d.creating, d.used, d.removing), (1, 1, 1));
}

// --- createMachines / canCreateIdle ------------------------------------------------------

#[test]
fn create_pass_stops_at_max_growth_rate_then_at_limit() {
    // IdleCount 5, limit 3, MaxGrowthRate 2: two creates at once, the third once one booted.
    let r = run(
        &trace(&[(900, 60, "docker")]),
        &spec(vec![pool(&["docker"], limits(5, 3, 0, 2))]),
    );
    let c = r.creates();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0], c[1]);
    assert!(c[2] >= c[0] + 90, "third create waits for a boot: {c:?}");
    assert_eq!(r.alive_max(), 3);
}

#[test]
fn a_failed_create_still_counts_toward_limit_until_removed() {
    // Every create fails (ERROR after 20 s, then a 10 s delete): with limit 1 the next
    // create waits until the failed machine is gone.
    let mut s = spec(vec![pool(&["docker"], limits(1, 1, 0, 0))]);
    s.cloud.create_failure_rate = 1.0;
    s.tail_s = 300;
    let r = run(&trace(&[(0, 60, "docker")]), &s);
    assert_eq!(r.alive_max(), 1);
    let c = r.creates();
    assert!(c.len() >= 5, "{c:?}");
    for w in c.windows(2) {
        assert!(
            w[1] - w[0] >= 30 && w[1] - w[0] < 30 + CHECK_INTERVAL,
            "{c:?}"
        );
    }
    assert_eq!(r.starts[0], None);
}

// --- Acquire / requestJob ----------------------------------------------------------------

#[test]
fn burst_of_five_with_idle_count_2_and_limit_3() {
    // Two machines are warm when five 600 s jobs arrive. At the first poll: the newest idle
    // machine takes job 0, the runner asks again at once, the pass creates one machine
    // (Available 1 < 2, Total 2 < 3), the other idle machine takes job 1; the next pass
    // creates nothing (Total 3 = limit) and with nothing idle no job is requested. Job 2
    // starts when the third machine has booted, jobs 3 and 4 when jobs 0 and 1 end.
    let r = run(
        &trace(&[(300, 600, "docker"); 5]),
        &spec(vec![pool(&["docker"], limits(2, 3, 0, 0))]),
    );
    let b = r.start(0);
    assert!((300..300 + CHECK_INTERVAL).contains(&b));
    assert_eq!(r.start(1), b);
    assert_eq!(r.start(2), b + 90);
    assert_eq!(r.start(3), b + 600);
    assert_eq!(r.start(4), b + 600);
    assert_eq!(r.alive_max(), 3);
    assert_eq!(r.creates().len(), 3);
}

#[test]
fn with_idle_count_above_zero_no_job_is_requested_while_nothing_is_idle() {
    // IdleCount 1: job 1 is not taken at the first poll although limit allows it; it waits
    // for the machine the pass created when job 0 took the idle one.
    let r = run(
        &trace(&[(300, 600, "docker"); 2]),
        &spec(vec![pool(&["docker"], limits(1, 10, 0, 0))]),
    );
    assert_eq!(r.start(1), r.start(0) + 90);
    // The warm one, the one job 1 waited for, and the one that keeps IdleCount after it.
    assert_eq!(r.creates().len(), 3);
}

#[test]
fn the_newest_idle_machine_takes_the_job() {
    let r = run(
        &trace(&[(300, 60, "docker")]),
        &spec(vec![pool(&["docker"], limits(2, 10, 0, 0))]),
    );
    let fleet = r.at(r.start(0));
    assert_eq!(fleet[0].jobs_run, 0);
    assert_eq!(fleet[1].jobs_run, 1);
}

#[test]
fn after_a_job_the_runner_asks_again_at_once() {
    let r = run(
        &trace(&[(300, 60, "docker"); 3]),
        &spec(vec![pool(&["docker"], limits(3, 10, 0, 0))]),
    );
    assert_eq!(r.start(1), r.start(0));
    assert_eq!(r.start(2), r.start(0));
}

#[test]
fn limit_caps_the_jobs_a_runner_holds() {
    // IdleCount 0, limit 2: the third job is requested only when one of the two ends.
    let r = run(
        &trace(&[(300, 600, "docker"); 3]),
        &spec(vec![pool(&["docker"], limits(0, 2, 0, 0))]),
    );
    assert_eq!(r.start(0), r.start(1));
    assert_eq!(r.start(2), r.start(0) + 600);
    assert_eq!(r.alive_max(), 2);
}

#[test]
fn an_idle_machine_is_removed_idle_time_after_its_last_job_ended() {
    // Release sets the machine's Used time; with IdleCount 0 it goes at the first pass more
    // than IdleTime (1800 s) after the job ended.
    let r = run(
        &trace(&[(0, 100, "docker")]),
        &spec(vec![pool(&["docker"], limits(0, 10, 0, 0))]),
    );
    let end = r.start(0) + 100;
    let removed = r
        .fleet
        .iter()
        .find(|(_, v)| {
            v.first()
                .is_some_and(|m| matches!(m.phase, Phase::Deleting(_)))
        })
        .unwrap()
        .0;
    assert!(removed > end + 1800 && removed <= end + 1800 + CHECK_INTERVAL);
}

#[test]
fn a_machine_at_max_builds_is_removed_when_its_job_ends() {
    // MaxBuilds 2: the machine that ran two jobs is removed at the second one's release.
    let r = run(
        &trace(&[(300, 60, "docker"), (400, 60, "docker")]),
        &spec(vec![pool(&["docker"], limits(1, 1, 2, 0))]),
    );
    let vm = r
        .at(r.start(1))
        .iter()
        .position(|v| v.running == 1)
        .unwrap();
    let end = r.start(1) + 60;
    assert_eq!(r.at(end)[vm].jobs_run, 2);
    assert!(matches!(r.at(end)[vm].phase, Phase::Deleting(_)));
}

// --- autoscaling periods -----------------------------------------------------------------

#[test]
fn a_matching_period_replaces_idle_count_and_idle_time_and_zeroes_what_it_leaves_unset() {
    let mut p = pool(&["docker"], limits(4, 6, 100, 0));
    let period = |idle_count, idle_time| SimPeriod {
        label: "x".into(),
        active: Box::new(|_| true),
        overrides: Overrides {
            idle_count,
            idle_time,
            ..Overrides::default()
        },
    };
    p.periods = vec![
        period(Some(3), Some(Duration::from_secs(60))),
        period(None, Some(Duration::from_secs(600))),
    ];
    // The last matching block wins; its unset IdleCount is 0; limit and MaxBuilds stay.
    let l = p.limits_at(ts(t0()), PeriodRule::DockerMachine);
    assert_eq!(l.idle_count, 0);
    assert_eq!(l.idle_time, Duration::from_secs(600));
    assert_eq!((l.limit, l.max_builds), (6, 100));
}

// --- feedRunners and GitLab's job handout --------------------------------------------------

#[test]
fn runner_entries_are_fed_in_config_order_check_interval_over_n_apart() {
    // feedRunners: one `[[runners]]` entry every check_interval / N, in config order, from
    // the start: with two entries, entry 0 at seconds 0, 3, 6, ... and entry 1 at 1, 4, 7.
    let r = run(
        &trace(&[(600, 60, "docker")]),
        &spec(vec![
            pool(&["docker"], limits(1, 10, 0, 0)),
            pool(&["docker", "privileged"], limits(1, 10, 0, 0)),
        ]),
    );
    let last = &r.fleet.last().unwrap().1;
    let first = |p: usize| last.iter().find(|v| v.pool == p).unwrap().created;
    assert_eq!((first(0), first(1)), (0, 1));
}

#[test]
fn a_job_two_runners_accept_goes_to_the_one_that_asks_first() {
    // Both entries have an idle machine. A `docker` job pending at second 301 is handed to
    // entry 1 (its beat); one pending at 602 to entry 0, whose beat (603) comes first.
    let r = run(
        &trace(&[(301, 60, "docker"), (602, 60, "docker")]),
        &spec(vec![
            pool(&["docker"], limits(1, 10, 0, 0)),
            pool(&["docker", "privileged"], limits(1, 10, 0, 0)),
        ]),
    );
    assert_eq!((r.pools[0], r.start(0)), (Some(1), 301));
    assert_eq!((r.pools[1], r.start(1)), (Some(0), 603));
}

#[test]
fn the_oldest_pending_job_the_tags_allow_is_handed_out_first() {
    let r = run(
        &trace(&[
            (300, 60, "docker"),
            (301, 60, "docker;privileged"),
            (302, 60, "docker"),
        ]),
        &spec(vec![pool(&["docker"], limits(1, 1, 0, 0))]),
    );
    assert_eq!(r.starts[1], None, "not allowed by the runner's tags");
    assert_eq!(r.start(2), r.start(0) + 60);
}

// --- the on-demand path (IdleCount = 0): Use, useMachine, createAndAcquireMachine ------------

#[test]
fn an_on_demand_job_takes_whichever_machine_is_free_first_and_on_demand_ignores_limit() {
    // IdleCount 0, limit 2. Job 0 gets a machine of its own (m0). Job 1 is taken at 150 and
    // its machine m1 starts booting, but m0 is released at job 0's end, earlier: job 1 runs
    // there. Job 2 is taken then (one job held < limit 2) and creates m2 although m0 and m1
    // already make Total = limit (the on-demand path has no machine-limit check); it runs
    // on m1 as soon as m1 has booted. m2 then boots into an idle machine with Total >= limit
    // before it, and the next pass removes it.
    let r = run(
        &trace(&[
            (0, 100, "docker"),
            (150, 1000, "docker"),
            (150, 1000, "docker"),
        ]),
        &spec(vec![pool(&["docker"], limits(0, 2, 0, 0))]),
    );
    let c = r.creates();
    assert_eq!(r.start(0), c[0] + 90);
    assert_eq!(
        r.start(1),
        r.start(0) + 100,
        "job 1 on m0, before its own m1 boots"
    );
    assert_eq!(c.len(), 3);
    assert_eq!(r.alive_max(), 3);
    assert_eq!(r.start(2), c[1] + 90, "job 2 on m1");
    let ready = c[2] + 90;
    let end = r.fleet.last().unwrap().1[2];
    assert_eq!(end.jobs_run, 0);
    assert!(matches!(
        r.at(ready + CHECK_INTERVAL)[2].phase,
        Phase::Deleting(_) | Phase::Deleted
    ));
}

#[test]
fn on_demand_creates_wait_for_max_growth_rate() {
    // MaxGrowthRate 1: every create waits for a growth slot (coordinator), so the three
    // on-demand machines boot one after another.
    let r = run(
        &trace(&[(300, 600, "docker"); 3]),
        &spec(vec![pool(&["docker"], limits(0, 10, 0, 1))]),
    );
    let b = r.start(0) - 90;
    assert_eq!(r.start(1), b + 180);
    assert_eq!(r.start(2), b + 270);
}

#[test]
fn an_on_demand_job_whose_machine_fails_asks_for_another() {
    // Every create fails (ERROR after 20 s): the waiting job asks for a new machine each
    // time (retryUseMachine; gitlab-runner gives up after 3 tries x 3 preparation attempts
    // and fails the job, which the model does not represent: it keeps asking).
    let mut s = spec(vec![pool(&["docker"], limits(0, 1, 0, 0))]);
    s.cloud.create_failure_rate = 1.0;
    s.tail_s = 300;
    let r = run(&trace(&[(0, 60, "docker")]), &s);
    assert_eq!(r.starts[0], None);
    let c = r.creates();
    assert!(c.len() >= 10, "{c:?}");
    for w in c.windows(2) {
        assert_eq!(w[1] - w[0], 20, "{c:?}");
    }
}
