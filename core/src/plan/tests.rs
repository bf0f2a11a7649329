//! Tests of the planner: one behaviour per test, plus property tests.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::{
    CloudStatus, FailureHistory, Limits, OrphanRunner, PendingJob, PoolPolicy, QuotaHeadroom,
    RunnerLink, RunnerView, Vm, VmId,
};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap()
}

fn mins(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

fn tags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn pool(name: &str, tag_list: &[&str]) -> PoolPolicy {
    PoolPolicy {
        name: name.into(),
        tags: tags(tag_list),
        run_untagged: false,
        capacity: 1,
        park_surplus: true,
        limits: Limits {
            idle_count: 0,
            idle_time: Duration::from_secs(3600),
            max_builds: 0,
            limit: 24,
            max_growth: 0,
            boot_timeout: Duration::from_secs(600),
            target_wait: None,
        },
        forecast: crate::forecast::ForecastSettings::default(),
        target_percentile: 95,
        billing_period: None,
    }
}

fn policy(pools: Vec<PoolPolicy>) -> Policy {
    Policy {
        pools,
        backoff: Backoff::default(),
        offline_after: Policy::DEFAULT_OFFLINE_AFTER,
        delete_retry: Policy::DEFAULT_DELETE_RETRY,
        poll_interval: Policy::DEFAULT_POLL_INTERVAL,
    }
}

fn job(id: u64, tag_list: &[&str]) -> PendingJob {
    PendingJob {
        id,
        tags: tags(tag_list),
        queued_since: t0(),
    }
}

/// Fixture builder for VMs: `VmB::new("a").idle().age(mins(30))`.
struct VmB(Vm);

impl VmB {
    fn new(id: &str) -> Self {
        VmB(Vm {
            id: VmId(id.into()),
            name: format!("runner-{id}"),
            pool: "p".into(),
            created_at: t0() - mins(180),
            phase: CloudStatus::Active,
            runner: Some(RunnerView {
                id: id.bytes().map(u64::from).sum(),
                paused: false,
                contacted_at: Some(t0()),
                running_jobs: 0,
                jobs_run: 1,
                last_job_at: Some(t0() - mins(5)),
                running: Vec::new(),
            }),
            runner_link: RunnerLink::Seen,
            deleting_since: None,
            address: None,
        })
    }
    fn pool(mut self, p: &str) -> Self {
        self.0.pool = p.into();
        self
    }
    fn age(mut self, d: chrono::Duration) -> Self {
        self.0.created_at = t0() - d;
        self
    }
    fn idle_for(mut self, d: chrono::Duration) -> Self {
        self.runner().last_job_at = Some(t0() - d);
        self
    }
    fn busy(mut self, n: u32) -> Self {
        self.runner().running_jobs = n;
        self
    }
    fn paused(mut self) -> Self {
        self.runner().paused = true;
        self
    }
    fn jobs_run(mut self, n: u32) -> Self {
        self.runner().jobs_run = n;
        self
    }
    fn booting(mut self) -> Self {
        let r = self.runner();
        r.contacted_at = None;
        r.last_job_at = None;
        r.jobs_run = 0;
        self.age(mins(1))
    }
    fn building(mut self) -> Self {
        self = self.booting();
        self.0.phase = CloudStatus::Building;
        self
    }
    fn error(mut self) -> Self {
        self.0.phase = CloudStatus::Error {
            fault: Some("No valid host was found".into()),
        };
        self
    }
    /// GitLab did not report the runner and its absence is not proven.
    fn no_runner(mut self) -> Self {
        self.0.runner = None;
        self.0.runner_link = RunnerLink::Unknown;
        self
    }
    /// `GET /runners/:id` answered 404 twice, a poll interval apart.
    fn runner_gone(mut self) -> Self {
        self.0.runner = None;
        self.0.runner_link = RunnerLink::Gone;
        self
    }
    fn runner(&mut self) -> &mut RunnerView {
        self.0.runner.as_mut().unwrap()
    }
    fn vm(self) -> Vm {
        self.0
    }
}

fn observed(pending: Vec<PendingJob>, vms: Vec<Vm>) -> Observed {
    Observed {
        pending: Some(pending),
        vms,
        ..Observed::default()
    }
}

fn creates(plan: &Plan, pool_name: &str) -> usize {
    plan.actions
        .iter()
        .filter(|a| matches!(a, Action::Create { pool, .. } if pool == pool_name))
        .count()
}

fn deleted(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { vm, .. } => Some(vm.0.clone()),
            _ => None,
        })
        .collect()
}

fn paused(plan: &Plan) -> Vec<(String, PauseReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Pause { vm, reason, .. } => Some((vm.0.clone(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn scale_up_creates_one_vm_per_pending_job_plus_idle_count() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_count = 2;
    let obs = observed(vec![job(1, &["docker"]), job(2, &["docker"])], vec![]);
    let plan = plan(&obs, &policy(vec![p]), t0());
    assert_eq!(creates(&plan, "p"), 4);
    let reasons: Vec<_> = plan.actions.iter().map(Action::reason_label).collect();
    assert_eq!(reasons, ["demand", "demand", "idle_floor", "idle_floor"]);
}

#[test]
fn scale_up_is_capped_at_limit_counting_every_state() {
    let mut p = pool("p", &["docker"]);
    p.limits.limit = 3;
    let jobs = (0..10).map(|i| job(i, &["docker"])).collect();
    let vms = vec![VmB::new("a").busy(1).vm(), VmB::new("b").error().vm()];
    let plan = plan(&observed(jobs, vms), &policy(vec![p]), t0());
    assert_eq!(creates(&plan, "p"), 1);
    assert_eq!(plan.pools[0].caps, vec![Cap::Limit]);
}

#[test]
fn max_growth_counts_creating_and_booting_vms() {
    let mut p = pool("p", &["docker"]);
    p.limits.max_growth = 3;
    let jobs = (0..10).map(|i| job(i, &["docker"])).collect();
    let vms = vec![VmB::new("a").building().vm(), VmB::new("b").booting().vm()];
    let plan = plan(&observed(jobs, vms), &policy(vec![p]), t0());
    assert_eq!(creates(&plan, "p"), 1);
    assert!(plan.pools[0].caps.contains(&Cap::MaxGrowth));
}

#[test]
fn quota_headroom_is_shared_by_pools_in_config_order() {
    let a = pool("a", &["docker"]);
    let b = pool("b", &["privileged"]);
    let mut obs = observed(
        vec![
            job(1, &["docker"]),
            job(2, &["docker"]),
            job(3, &["privileged"]),
        ],
        vec![],
    );
    obs.quota = Some(QuotaHeadroom {
        instances: Some(2),
        cores: None,
        ram_mb: None,
    });
    let plan = plan(&obs, &policy(vec![a, b]), t0());
    assert_eq!(creates(&plan, "a"), 2);
    assert_eq!(creates(&plan, "b"), 0);
    assert_eq!(plan.pool("b").unwrap().caps, vec![Cap::Quota]);
}

#[test]
fn quota_in_cores_limits_creates_by_flavor_size() {
    let p = pool("p", &["docker"]);
    let mut obs = observed((0..5).map(|i| job(i, &["docker"])).collect(), vec![]);
    obs.quota = Some(QuotaHeadroom {
        instances: Some(100),
        cores: Some(9),
        ram_mb: None,
    });
    obs.flavors.insert(
        "p".into(),
        crate::model::FlavorSize {
            vcpus: 4,
            ram_mb: 8192,
        },
    );
    let plan = plan(&obs, &policy(vec![p]), t0());
    assert_eq!(creates(&plan, "p"), 2);
}

#[test]
fn a_job_several_pools_can_run_counts_for_the_first_pool_only() {
    let a = pool("a", &["docker", "privileged"]);
    let b = pool("b", &["docker"]);
    let plan = plan(
        &observed(vec![job(1, &["docker"])], vec![]),
        &policy(vec![a, b]),
        t0(),
    );
    assert_eq!(creates(&plan, "a"), 1);
    assert_eq!(creates(&plan, "b"), 0);
}

#[test]
fn jobs_whose_tags_are_not_a_subset_are_not_counted() {
    let p = pool("p", &["docker"]);
    let plan = plan(
        &observed(vec![job(1, &["docker", "arm"])], vec![]),
        &policy(vec![p]),
        t0(),
    );
    assert_eq!(creates(&plan, "p"), 0);
}

#[test]
fn untagged_jobs_count_only_for_pools_with_run_untagged() {
    let a = pool("a", &["docker"]);
    let mut b = pool("b", &["docker"]);
    b.run_untagged = true;
    let plan = plan(
        &observed(vec![job(1, &[])], vec![]),
        &policy(vec![a, b]),
        t0(),
    );
    assert_eq!(creates(&plan, "a"), 0);
    assert_eq!(creates(&plan, "b"), 1);
}

#[test]
fn capacity_per_vm_divides_slots_rounding_up() {
    let mut p = pool("p", &["docker"]);
    p.capacity = 4;
    p.limits.idle_count = 1;
    let jobs = (0..6).map(|i| job(i, &["docker"])).collect();
    let plan = plan(&observed(jobs, vec![]), &policy(vec![p]), t0());
    assert_eq!(creates(&plan, "p"), 2); // ceil((6 + 1) / 4)
}

#[test]
fn creating_and_booting_vms_count_as_capacity_on_its_way() {
    let p = pool("p", &["docker"]);
    let vms = vec![VmB::new("a").building().vm(), VmB::new("b").booting().vm()];
    let plan = plan(
        &observed(vec![job(1, &["docker"]), job(2, &["docker"])], vms),
        &policy(vec![p]),
        t0(),
    );
    assert!(plan.is_empty(), "{:?}", plan.actions);
}

#[test]
fn surplus_idle_vm_is_parked_least_recently_used_first() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_count = 1;
    let vms = vec![
        VmB::new("recent").idle_for(mins(1)).vm(),
        VmB::new("old").idle_for(mins(20)).vm(),
    ];
    let plan = plan(&observed(vec![], vms), &policy(vec![p]), t0());
    assert_eq!(paused(&plan), vec![("old".to_string(), PauseReason::Park)]);
    assert!(deleted(&plan).is_empty());
}

#[test]
fn parked_vm_is_deleted_only_after_idle_time() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_time = Duration::from_secs(1800);
    let young = VmB::new("young").paused().idle_for(mins(29)).vm();
    let old = VmB::new("old").paused().idle_for(mins(31)).vm();
    let plan = plan(&observed(vec![], vec![young, old]), &policy(vec![p]), t0());
    assert_eq!(deleted(&plan), vec!["old".to_string()]);
    assert!(matches!(
        plan.actions[0],
        Action::Delete {
            reason: RemoveReason::IdleTimeout,
            ..
        }
    ));
}

#[test]
fn without_parking_surplus_stays_unpaused_until_idle_time_then_drains() {
    let mut p = pool("p", &["docker"]);
    p.park_surplus = false;
    let fresh = VmB::new("fresh").idle_for(mins(10)).vm();
    let stale = VmB::new("stale").idle_for(mins(61)).vm();
    let plan = plan(
        &observed(vec![], vec![fresh, stale]),
        &policy(vec![p]),
        t0(),
    );
    assert_eq!(
        paused(&plan),
        vec![(
            "stale".to_string(),
            PauseReason::Drain(RemoveReason::IdleTimeout)
        )]
    );
    assert!(deleted(&plan).is_empty(), "drain before delete");
}

#[test]
fn idle_vms_within_idle_count_are_kept_however_long_idle() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_count = 2;
    let vms = vec![
        VmB::new("a").idle_for(mins(300)).vm(),
        VmB::new("b").idle_for(mins(300)).vm(),
    ];
    let plan = plan(&observed(vec![], vms), &policy(vec![p]), t0());
    assert!(plan.is_empty(), "{:?}", plan.actions);
}

#[test]
fn parked_vms_are_unpaused_before_any_create() {
    let p = pool("p", &["docker"]);
    let vms = vec![
        VmB::new("a").paused().idle_for(mins(3)).vm(),
        VmB::new("b").paused().idle_for(mins(1)).vm(),
    ];
    let plan = plan(
        &observed(vec![job(1, &["docker"])], vms),
        &policy(vec![p]),
        t0(),
    );
    assert_eq!(plan.actions.len(), 1);
    assert!(
        matches!(&plan.actions[0], Action::Unpause { vm, .. } if vm.0 == "b"),
        "most recently used parked VM comes back: {:?}",
        plan.actions
    );
}

#[test]
fn busy_vm_past_max_builds_is_paused_not_deleted() {
    let mut p = pool("p", &["docker"]);
    p.limits.max_builds = 100;
    let vm = VmB::new("a").busy(1).jobs_run(100).vm();
    let plan = plan(&observed(vec![], vec![vm]), &policy(vec![p]), t0());
    assert_eq!(
        paused(&plan),
        vec![("a".into(), PauseReason::Drain(RemoveReason::MaxBuilds))]
    );
    assert!(deleted(&plan).is_empty());
}

#[test]
fn retired_vm_is_deleted_once_paused_and_idle_and_replaced() {
    let mut p = pool("p", &["docker"]);
    p.limits.max_builds = 100;
    p.limits.idle_count = 1;
    let vm = VmB::new("a").paused().jobs_run(100).vm();
    let plan = plan(&observed(vec![], vec![vm]), &policy(vec![p]), t0());
    assert_eq!(deleted(&plan), vec!["a".to_string()]);
    assert_eq!(
        creates(&plan, "p"),
        1,
        "the idle floor creates its replacement"
    );
}

#[test]
fn busy_paused_vm_waits_for_its_job_before_delete() {
    let mut p = pool("p", &["docker"]);
    p.limits.max_builds = 10;
    let vm = VmB::new("a").paused().busy(1).jobs_run(10).vm();
    let plan = plan(&observed(vec![], vec![vm]), &policy(vec![p]), t0());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.pools[0].vms[0].1, VmState::Draining);
}

#[test]
fn boot_timeout_deletes_a_vm_whose_runner_never_contacted() {
    let p = pool("p", &["docker"]);
    let late = VmB::new("late").booting().age(mins(11)).vm();
    let ok = VmB::new("ok").booting().age(mins(9)).vm();
    let plan = plan(&observed(vec![], vec![late, ok]), &policy(vec![p]), t0());
    assert_eq!(deleted(&plan), vec!["late".to_string()]);
    assert!(matches!(
        plan.actions[0],
        Action::Delete {
            reason: RemoveReason::BootTimeout,
            ..
        }
    ));
}

#[test]
fn error_server_is_deleted_and_replaced() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_count = 1;
    let vm = VmB::new("e").booting().error().age(mins(1)).vm();
    let plan = plan(&observed(vec![], vec![vm]), &policy(vec![p]), t0());
    assert_eq!(deleted(&plan), vec!["e".to_string()]);
    assert_eq!(creates(&plan, "p"), 1);
}

#[test]
fn server_whose_runner_is_unknown_is_never_deleted_and_counts_against_the_limit() {
    // A runner missing from one listing (a shifted offset page, an admin's edit) proves
    // nothing: the VM may run a job. The old rule deleted it after the boot grace.
    let mut p = pool("p", &["docker"]);
    p.limits.limit = 2;
    let young = VmB::new("young").no_runner().age(mins(2)).vm();
    let old = VmB::new("old").no_runner().age(mins(600)).vm();
    let pending = vec![job(1, &["docker"]), job(2, &["docker"])];
    let plan = plan(&observed(pending, vec![young, old]), &policy(vec![p]), t0());
    assert!(deleted(&plan).is_empty(), "{:?}", plan.actions);
    assert!(paused(&plan).is_empty());
    assert_eq!(creates(&plan, "p"), 0, "unknown VMs fill the limit");
    let pool = plan.pool("p").unwrap();
    assert_eq!(pool.count(VmState::Unknown), 2);
}

#[test]
fn server_whose_runner_is_proven_gone_is_deleted_at_once() {
    let p = pool("p", &["docker"]);
    let young = VmB::new("young").runner_gone().age(mins(2)).vm();
    let old = VmB::new("old").runner_gone().age(mins(20)).vm();
    let plan = plan(&observed(vec![], vec![young, old]), &policy(vec![p]), t0());
    assert_eq!(deleted(&plan), vec!["old".to_string(), "young".to_string()]);
}

#[test]
fn runner_without_server_is_deleted_after_the_grace_only() {
    let p = pool("p", &["docker"]);
    let mut obs = observed(vec![], vec![]);
    obs.orphan_runners = vec![
        OrphanRunner {
            id: 7,
            pool: Some("p".into()),
            created_at: t0() - mins(2),
            running_jobs: 0,
            confirmed: true,
        },
        OrphanRunner {
            id: 8,
            pool: Some("p".into()),
            created_at: t0() - mins(20),
            running_jobs: 0,
            confirmed: true,
        },
        // Seen without a server only once: one server listing is no proof either.
        OrphanRunner {
            id: 9,
            pool: Some("p".into()),
            created_at: t0() - mins(20),
            running_jobs: 0,
            confirmed: false,
        },
    ];
    let plan = plan(&obs, &policy(vec![p]), t0());
    assert_eq!(
        plan.actions,
        vec![Action::DeleteRunner {
            pool: Some("p".into()),
            runner: 8,
            reason: RunnerReason::NoServer
        }]
    );
}

#[test]
fn gitlab_unavailable_means_no_action_at_all() {
    let p = pool("p", &["docker"]);
    let vms = vec![
        VmB::new("a").error().vm(),
        VmB::new("b").paused().idle_for(mins(600)).vm(),
    ];
    let mut obs = observed(vec![], vms);
    obs.pending = None;
    let plan = plan(&obs, &policy(vec![p]), t0());
    assert!(plan.gitlab_unavailable);
    assert!(plan.actions.is_empty());
}

#[test]
fn backoff_blocks_creates_until_it_expires() {
    let p = pool("p", &["docker"]);
    let mut obs = observed(vec![job(1, &["docker"])], vec![]);
    obs.failures.insert(
        "p".into(),
        FailureHistory {
            consecutive: 2,
            last_failure_at: Some(t0() - chrono::Duration::seconds(30)),
        },
    );
    let pol = policy(vec![p]);
    let blocked = plan(&obs, &pol, t0());
    assert_eq!(creates(&blocked, "p"), 0);
    assert!(matches!(blocked.pools[0].caps[0], Cap::Backoff(_)));
    // Second failure: 30 s * 2 = 60 s after the failure.
    let later = plan(&obs, &pol, t0() + chrono::Duration::seconds(31));
    assert_eq!(creates(&later, "p"), 1);
}

#[test]
fn circuit_breaker_opens_then_allows_one_probe() {
    let p = pool("p", &["docker"]);
    let mut obs = observed((0..5).map(|i| job(i, &["docker"])).collect(), vec![]);
    obs.failures.insert(
        "p".into(),
        FailureHistory {
            consecutive: 5,
            last_failure_at: Some(t0()),
        },
    );
    let pol = policy(vec![p]);
    let open = plan(&obs, &pol, t0() + mins(10));
    assert_eq!(creates(&open, "p"), 0);
    assert!(matches!(open.pools[0].caps[0], Cap::CircuitOpen(_)));
    let probe = plan(&obs, &pol, t0() + mins(16));
    assert_eq!(creates(&probe, "p"), 1);
}

#[test]
fn lowered_limit_removes_idle_vms_beyond_it_but_not_busy_ones() {
    let mut p = pool("p", &["docker"]);
    p.limits.limit = 1;
    let vms = vec![
        VmB::new("busy").busy(1).vm(),
        VmB::new("idle").idle_for(mins(1)).vm(),
    ];
    let plan = plan(&observed(vec![], vms), &policy(vec![p]), t0());
    assert_eq!(
        paused(&plan),
        vec![("idle".into(), PauseReason::Drain(RemoveReason::OverLimit))]
    );
}

#[test]
fn vms_of_a_removed_pool_are_drained() {
    let p = pool("p", &["docker"]);
    let gone = VmB::new("g").pool("old-pool").vm();
    let plan = plan(&observed(vec![], vec![gone]), &policy(vec![p]), t0());
    assert_eq!(
        paused(&plan),
        vec![("g".into(), PauseReason::Drain(RemoveReason::UnknownPool))]
    );
}

#[test]
fn deleting_servers_count_towards_the_limit() {
    let mut p = pool("p", &["docker"]);
    p.limits.limit = 2;
    let mut d = VmB::new("d").vm();
    d.phase = CloudStatus::Deleting;
    let plan = plan(
        &observed(vec![job(1, &["docker"]), job(2, &["docker"])], vec![d]),
        &policy(vec![p]),
        t0(),
    );
    assert_eq!(creates(&plan, "p"), 1);
}

// === property tests ===

fn arb_vm(i: usize) -> impl Strategy<Value = Vm> {
    (
        0u8..5,                    // phase / runner shape
        0i64..200,                 // age in minutes
        any::<bool>(),             // paused
        0u32..3,                   // running jobs
        0u32..120,                 // jobs run
        0i64..200,                 // idle minutes
        prop::bool::weighted(0.2), // second pool
    )
        .prop_map(
            move |(shape, age, paused, running, jobs_run, idle, second)| {
                let id = format!("vm{i:03}");
                let mut b = VmB::new(&id).idle_for(mins(idle.min(age)));
                b = match shape {
                    0 => b.building(),
                    1 => b.booting(),
                    2 => b.error(),
                    3 => b.no_runner(),
                    _ => b,
                };
                b = b.age(mins(age));
                let mut vm = b.vm();
                vm.pool = if second { "q".into() } else { "p".into() };
                if let Some(r) = vm.runner.as_mut() {
                    if r.contacted_at.is_some() {
                        r.paused = paused;
                        r.running_jobs = running;
                        r.jobs_run = jobs_run.max(running);
                    }
                }
                vm
            },
        )
}

fn arb_observed() -> impl Strategy<Value = Observed> {
    (
        prop::collection::vec(0u8..4, 0..40),
        (0usize..30).prop_flat_map(|n| (0..n).map(arb_vm).collect::<Vec<_>>()),
        prop::option::of(0u32..30),
    )
        .prop_map(|(job_kinds, vms, quota)| {
            let jobs = job_kinds
                .iter()
                .enumerate()
                .map(|(i, k)| match k {
                    0 => job(i as u64, &["docker"]),
                    1 => job(i as u64, &["docker", "privileged"]),
                    2 => job(i as u64, &[]),
                    _ => job(i as u64, &["arm"]),
                })
                .collect();
            let mut obs = observed(jobs, vms);
            obs.quota = quota.map(|q| QuotaHeadroom {
                instances: Some(q),
                cores: None,
                ram_mb: None,
            });
            obs
        })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        0u32..6,
        1u32..20,
        0u32..5,
        0u32..100,
        1u32..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(idle_count, limit, max_growth, max_builds, capacity, park, untagged)| {
                let mut p = pool("p", &["docker"]);
                p.capacity = capacity;
                p.park_surplus = park;
                p.limits.idle_count = idle_count.min(limit * capacity);
                p.limits.limit = limit;
                p.limits.max_growth = max_growth;
                p.limits.max_builds = max_builds;
                let mut q = pool("q", &["docker", "privileged"]);
                q.run_untagged = untagged;
                q.limits.limit = limit;
                policy(vec![p, q])
            },
        )
}

/// Applies a plan to an observation the way a perfect reconciler would.
fn apply(obs: &Observed, plan: &Plan, now: Timestamp) -> Observed {
    let mut next = obs.clone();
    let mut seq = 0;
    for a in &plan.actions {
        match a {
            Action::Create { pool, .. } => {
                seq += 1;
                next.vms.push(Vm {
                    id: VmId(format!("new{seq:03}")),
                    name: format!("new{seq}"),
                    pool: pool.clone(),
                    created_at: now,
                    phase: CloudStatus::Building,
                    runner: Some(RunnerView {
                        id: 10_000 + seq,
                        paused: false,
                        contacted_at: None,
                        running_jobs: 0,
                        jobs_run: 0,
                        last_job_at: None,
                        running: Vec::new(),
                    }),
                    runner_link: RunnerLink::Seen,
                    deleting_since: None,
                    address: None,
                });
                if let Some(q) = next.quota.as_mut() {
                    if let Some(i) = q.instances.as_mut() {
                        *i = i.saturating_sub(1);
                    }
                }
            }
            Action::Pause { vm, .. } | Action::Unpause { vm, .. } => {
                let pause = matches!(a, Action::Pause { .. });
                if let Some(v) = next.vms.iter_mut().find(|v| &v.id == vm) {
                    if let Some(r) = v.runner.as_mut() {
                        r.paused = pause;
                    }
                }
            }
            Action::Delete { vm, .. } => {
                if let Some(v) = next.vms.iter_mut().find(|v| &v.id == vm) {
                    v.phase = CloudStatus::Deleting;
                }
            }
            Action::DeleteRunner { runner, .. } => next.orphan_runners.retain(|r| r.id != *runner),
        }
    }
    next
}

/// A pool in wait-target mode, and the reserve the forecast asked for.
fn wait_pool() -> PoolPolicy {
    let mut p = pool("p", &["docker"]);
    p.limits.target_wait = Some(Duration::from_secs(60));
    p.limits.idle_time = Duration::from_secs(40 * 60);
    p
}

fn reserve(slots: u32, keep_s: u64) -> crate::reserve::Reserve {
    crate::reserve::Reserve {
        slots,
        boot: Duration::from_secs(keep_s),
        boot_samples: 10,
        lead: Duration::from_secs(keep_s + 18),
        late: 1.0,
        allowed_miss: 0.05,
        rate_per_hour: 20.0,
        threshold: Some(1.5),
        history_days: 3.0,
        keep: Duration::from_secs(keep_s),
    }
}

#[test]
fn wait_target_mode_keeps_the_forecast_reserve_warm_with_idle_count_as_its_floor() {
    let mut obs = observed(vec![], vec![]);
    obs.reserve.insert("p".into(), reserve(3, 90));
    let warm = plan(&obs, &policy(vec![wait_pool()]), t0());
    assert_eq!(creates(&warm, "p"), 3);
    assert_eq!(warm.pools[0].reserve.as_ref().map(|r| r.slots), Some(3));
    // The floor wins when the forecast asks for less.
    let mut floored = wait_pool();
    floored.limits.idle_count = 5;
    assert_eq!(creates(&plan(&obs, &policy(vec![floored]), t0()), "p"), 5);
    // Idle mode ignores a reserve.
    let idle_mode = plan(&obs, &policy(vec![pool("p", &["docker"])]), t0());
    assert_eq!(creates(&idle_mode, "p"), 0);
}

#[test]
fn wait_target_mode_removes_surplus_after_the_break_even_not_after_idle_time() {
    let mut obs = observed(
        vec![],
        vec![
            VmB::new("a").idle_for(mins(1)).paused().vm(),
            VmB::new("b").idle_for(mins(3)).paused().vm(),
        ],
    );
    obs.reserve.insert("p".into(), reserve(0, 90));
    let wait_mode = plan(&obs, &policy(vec![wait_pool()]), t0());
    // b idled 3 minutes, past the 90 s break-even; a only 1 minute.
    assert_eq!(deleted(&wait_mode), ["b"]);
    // In idle mode the same VMs wait for idle_time (1 h).
    let idle_mode = plan(&obs, &policy(vec![pool("p", &["docker"])]), t0());
    assert!(deleted(&idle_mode).is_empty());
}

#[test]
fn with_a_billing_period_surplus_stays_until_just_before_its_next_paid_period() {
    let mut p = wait_pool();
    p.billing_period = Some(Duration::from_secs(3600));
    let vms = |age: i64| {
        vec![
            VmB::new("a")
                .age(mins(age))
                .idle_for(mins(10))
                .paused()
                .vm(),
        ]
    };
    let mut obs = observed(vec![], vms(130));
    obs.reserve.insert("p".into(), reserve(0, 90));
    // 130 minutes old: 50 minutes of its third paid hour are left.
    let early = plan(&obs, &policy(vec![p.clone()]), t0());
    assert!(deleted(&early).is_empty(), "{:?}", early.actions);
    // 179 minutes old: the third hour ends within the margin (2 polls + 1 min).
    obs.vms = vms(179);
    let late = plan(&obs, &policy(vec![p]), t0());
    assert_eq!(deleted(&late), ["a"]);
}

#[test]
fn surplus_parking_leaves_the_last_polls_peak_arrivals_unparked() {
    let mut p = pool("p", &["docker"]);
    p.limits.idle_count = 1;
    let vms = vec![
        VmB::new("a").idle_for(mins(9)).vm(),
        VmB::new("b").idle_for(mins(7)).vm(),
        VmB::new("c").idle_for(mins(5)).vm(),
        VmB::new("d").idle_for(mins(3)).vm(),
    ];
    let mut obs = observed(vec![], vms);
    // Without arrivals, the three beyond idle_count are parked.
    let parked_all = paused(&plan(&obs, &policy(vec![p.clone()]), t0()));
    assert_eq!(parked_all.len(), 3);
    // Two jobs arrived within one poll interval in the last hour: the two most recently
    // used surplus VMs stay unpaused for the next such burst; only the oldest is parked.
    obs.arrivals_per_poll.insert("p".into(), 2);
    let parked = paused(&plan(&obs, &policy(vec![p]), t0()));
    assert_eq!(parked, [("a".to_string(), PauseReason::Park)]);
}

proptest! {
    #[test]
    fn creates_never_exceed_limit(obs in arb_observed(), pol in arb_policy()) {
        let plan = plan(&obs, &pol, t0());
        for p in &pol.pools {
            let existing = obs.vms.iter().filter(|v| v.pool == p.name).count();
            let new = creates(&plan, &p.name);
            prop_assert!(new == 0 || existing + new <= p.limits.limit as usize,
                "pool {} existing {} new {} limit {}", p.name, existing, new, p.limits.limit);
        }
    }

    #[test]
    fn a_vm_with_running_jobs_is_never_deleted_nor_drained_for_idleness(
        obs in arb_observed(), pol in arb_policy()
    ) {
        let plan = plan(&obs, &pol, t0());
        for a in &plan.actions {
            let (vm_id, deleting, reason) = match a {
                Action::Delete { vm, reason, .. } => (vm, true, Some(*reason)),
                Action::Pause { vm, reason: PauseReason::Drain(r), .. } => (vm, false, Some(*r)),
                Action::Pause { vm, reason: PauseReason::Park, .. } => (vm, false, None),
                _ => continue,
            };
            let vm = obs.vms.iter().find(|v| &v.id == vm_id).unwrap();
            let running = vm.runner.as_ref().map_or(0, |r| r.running_jobs);
            if running > 0 {
                prop_assert!(!deleting, "deleted busy VM {vm_id}");
                // Pausing a busy VM only stops new work (retirement or failure); it never
                // happens for idleness or parking.
                prop_assert!(matches!(reason,
                    Some(RemoveReason::MaxBuilds | RemoveReason::CloudError | RemoveReason::UnknownPool)),
                    "paused busy VM {vm_id} for {reason:?}");
            }
            if deleting {
                if let Some(r) = vm.runner.as_ref() {
                    prop_assert!(r.paused || r.contacted_at.is_none(),
                        "deleted VM {vm_id} whose contacted runner was not paused");
                }
            }
        }
    }

    #[test]
    fn creates_never_exceed_demand_plus_idle_shortfall(obs in arb_observed(), pol in arb_policy()) {
        let plan = plan(&obs, &pol, t0());
        let pending = assign_pending(&obs, &pol);
        for (i, p) in pol.pools.iter().enumerate() {
            let running: u32 = obs.vms.iter().filter(|v| v.pool == p.name)
                .filter_map(|v| v.runner.as_ref()).map(|r| r.running_jobs).sum();
            let bound = (pending[i] + running + p.limits.idle_count).div_ceil(p.capacity);
            prop_assert!(creates(&plan, &p.name) as u32 <= bound);
        }
    }

    #[test]
    fn planning_again_after_applying_creates_nothing_new(obs in arb_observed(), pol in arb_policy()) {
        let first = plan(&obs, &pol, t0());
        let next = apply(&obs, &first, t0());
        let second = plan(&next, &pol, t0());
        for p in &pol.pools {
            prop_assert_eq!(creates(&second, &p.name), 0,
                "pool {} first {:?} second {:?}", p.name, first.actions, second.actions);
        }
    }

    #[test]
    fn same_input_gives_same_output(obs in arb_observed(), pol in arb_policy()) {
        let mut shuffled = obs.clone();
        shuffled.vms.reverse();
        prop_assert_eq!(plan(&obs, &pol, t0()), plan(&shuffled, &pol, t0()));
    }
}
