//! Unit tests of [`super::evaluate`]: one behaviour each, on hand-built snapshots.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::{ControllerPoolStatus, ControllerStatus, Fetched, PendingJob, PoolInfo, Quota};

fn now() -> DateTime<Utc> {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> DateTime<Utc> {
    now() - TimeDelta::seconds(secs)
}

fn pool(name: &str, tags: &[&str], untagged: bool) -> PoolInfo {
    PoolInfo {
        name: name.into(),
        limit: 4,
        boot_timeout: Duration::from_secs(600),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        run_untagged: untagged,
    }
}

fn runner(id: u64, pool: &str, status: RunnerStatus, contact: Option<i64>) -> Runner {
    Runner {
        id,
        description: format!("ci-{pool}-{id}"),
        pool: Some(pool.into()),
        status,
        paused: false,
        created_at: Some(ago(7200)),
        contacted_at: contact.map(ago),
    }
}

fn server(id: u64, pool: &str, status: ServerStatus, age: i64, runner: Option<u64>) -> Server {
    Server {
        id: format!("srv-{id}"),
        name: format!("ci-{pool}-{id}"),
        pool: Some(pool.into()),
        status,
        created: ago(age),
        runner_id: runner,
    }
}

fn heartbeat(success_age: i64) -> ControllerStatus {
    ControllerStatus {
        controller_id: "ci".into(),
        version: "0.1.0".into(),
        last_tick_at: Some(ago(success_age)),
        last_success_at: Some(ago(success_age)),
        last_error: None,
        gitlab_unavailable_since: None,
        gitlab_error: None,
        gitlab_error_kind: None,
        openstack_unavailable_since: None,
        openstack_error: None,
        openstack_error_kind: None,
        pools: vec![ControllerPoolStatus {
            name: "docker".into(),
            vms: 2,
            desired: 2,
            pending_jobs: 0,
            circuit_open: false,
            held_back: Vec::new(),
        }],
    }
}

/// Two healthy VMs with live runners, no queue, fresh heartbeat.
fn healthy() -> Snapshot {
    Snapshot {
        controller_id: "ci".into(),
        pools: vec![
            pool("docker", &["docker"], true),
            pool("arm", &["arm", "docker"], false),
        ],
        runners: Fetched::Ok(vec![
            runner(1, "docker", RunnerStatus::Online, Some(5)),
            runner(2, "docker", RunnerStatus::Online, Some(3)),
        ]),
        servers: Fetched::Ok(vec![
            server(1, "docker", ServerStatus::Active, 3000, Some(1)),
            server(2, "docker", ServerStatus::Active, 3000, Some(2)),
        ]),
        quota: Fetched::Ok(Quota {
            used_instances: 2,
            max_instances: Some(20),
        }),
        pending: Fetched::Ok(Vec::new()),
        controller: Fetched::Ok(heartbeat(10)),
    }
}

fn all() -> BTreeSet<Subcheck> {
    Subcheck::ALL.into_iter().collect()
}

fn only(sc: Subcheck) -> BTreeSet<Subcheck> {
    BTreeSet::from([sc])
}

fn th() -> Thresholds {
    Thresholds::defaults(Duration::from_secs(15))
}

fn eval(s: &Snapshot, which: &BTreeSet<Subcheck>) -> CheckResult {
    evaluate(s, which, &th(), now())
}

fn sub(r: &CheckResult, sc: Subcheck) -> &SubcheckResult {
    r.subchecks.iter().find(|s| s.subcheck == sc).unwrap()
}

fn perf(r: &CheckResult, label: &str) -> f64 {
    r.perfdata.iter().find(|p| p.label == label).unwrap().value
}

fn details(r: &CheckResult) -> String {
    r.subchecks
        .iter()
        .flat_map(|s| s.details.iter().map(|d| d.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn healthy_snapshot_is_ok_in_every_subcheck() {
    let r = eval(&healthy(), &all());
    assert_eq!(r.state, State::Ok, "{r:#?}");
    assert_eq!(r.subchecks.len(), 4);
    assert!(r.subchecks.iter().all(|s| s.details.is_empty()), "{r:#?}");
}

#[test]
fn one_offline_runner_warns_and_three_are_critical() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.push(runner(3, "docker", RunnerStatus::Offline, Some(8000)));
    let r = eval(&s, &only(Subcheck::Runners));
    assert_eq!(r.state, State::Warning);
    assert_eq!(perf(&r, "runners_offline"), 1.0);
    assert!(details(&r).contains("runner 3 ci-docker-3: offline, last contact 2h 13m ago"));
    for id in [4, 5] {
        let Fetched::Ok(rs) = &mut s.runners else {
            panic!()
        };
        rs.push(runner(id, "docker", RunnerStatus::Offline, Some(8000)));
    }
    let r = eval(&s, &only(Subcheck::Runners));
    assert_eq!(r.state, State::Critical);
}

#[test]
fn online_runner_silent_too_long_alerts_by_contact_age() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.push(runner(3, "docker", RunnerStatus::Online, Some(700)));
    let r = eval(&s, &only(Subcheck::Runners));
    assert_eq!(r.state, State::Warning);
    assert_eq!(perf(&r, "runner_contact_age"), 700.0);
    assert!(details(&r).contains("runner 3 ci-docker-3: online, last contact 11m 40s ago"));
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.push(runner(4, "docker", RunnerStatus::Online, Some(1801)));
    assert_eq!(eval(&s, &only(Subcheck::Runners)).state, State::Critical);
}

#[test]
fn never_contacted_runners_within_boot_timeout_are_registering_not_offenders() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    let mut young = runner(3, "docker", RunnerStatus::NeverContacted, None);
    young.created_at = Some(ago(60));
    let mut old = runner(4, "docker", RunnerStatus::NeverContacted, None);
    old.created_at = Some(ago(601));
    rs.extend([young, old]);
    let r = eval(&s, &only(Subcheck::Runners));
    assert_eq!(perf(&r, "runners_never_contacted"), 1.0);
    assert_eq!(r.state, State::Warning);
    assert!(sub(&r, Subcheck::Runners).summary.contains("1 registering"));
    assert!(details(&r).contains("runner 4 ci-docker-4: never contacted, created 10m 1s ago"));
}

#[test]
fn error_servers_are_named_with_state_age_and_fault() {
    let mut s = healthy();
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    sv.push(server(
        9,
        "docker",
        ServerStatus::Error(Some("No valid host was found. ".into())),
        125,
        None,
    ));
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(r.state, State::Warning);
    assert_eq!(perf(&r, "vms_error"), 1.0);
    assert!(
        details(&r)
            .contains("server ci-docker-9 (srv-9): ERROR, age 2m 5s (No valid host was found. )"),
        "{}",
        details(&r)
    );
    assert_eq!(
        perf(&r, "vms_orphaned"),
        0.0,
        "ERROR servers are not also orphans"
    );
}

#[test]
fn building_past_boot_timeout_is_stuck_and_before_it_is_not() {
    let mut s = healthy();
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    sv.push(server(3, "docker", ServerStatus::Building, 500, None));
    sv.push(server(4, "docker", ServerStatus::Building, 700, None));
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(perf(&r, "vms_stuck_booting"), 1.0);
    assert!(details(&r).contains("server ci-docker-4 (srv-4): still BUILD after 11m 40s"));
    assert_eq!(
        perf(&r, "vms_orphaned"),
        0.0,
        "a building server is not an orphan"
    );
}

#[test]
fn active_server_whose_runner_never_contacted_is_stuck_after_boot_timeout() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.push(runner(7, "docker", RunnerStatus::NeverContacted, None));
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    sv.push(server(7, "docker", ServerStatus::Active, 900, Some(7)));
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(perf(&r, "vms_stuck_booting"), 1.0);
    assert!(details(&r).contains("ACTIVE but its runner never contacted GitLab"));
}

#[test]
fn orphans_are_found_both_ways_after_the_grace() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.push(runner(8, "docker", RunnerStatus::Online, Some(5)));
    let mut fresh = runner(10, "docker", RunnerStatus::NeverContacted, None);
    fresh.created_at = Some(ago(30));
    rs.push(fresh);
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    sv.push(server(5, "docker", ServerStatus::Active, 1200, Some(55)));
    sv.push(server(6, "docker", ServerStatus::Active, 100, None));
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(perf(&r, "vms_orphaned"), 1.0);
    assert_eq!(perf(&r, "runners_orphaned"), 1.0);
    let d = details(&r);
    assert!(
        d.contains("server ci-docker-5 (srv-5): ACTIVE without a runner, age 20m 0s"),
        "{d}"
    );
    assert!(
        d.contains("runner 8 ci-docker-8: online without a server"),
        "{d}"
    );
    assert_eq!(r.state, State::Warning);
}

#[test]
fn servers_pair_with_runners_by_name_when_metadata_lacks_the_id() {
    let mut s = healthy();
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    sv[0].runner_id = None;
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(r.state, State::Ok, "{r:#?}");
}

#[test]
fn over_the_limit_is_critical_and_quota_shortfall_warns() {
    let mut s = healthy();
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    for id in 3..=5 {
        sv.push(server(id, "docker", ServerStatus::Active, 3000, Some(id)));
        rs.push(runner(id, "docker", RunnerStatus::Online, Some(1)));
    }
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(perf(&r, "vms_limit_headroom"), -1.0);
    assert_eq!(perf(&r, "docker_vms"), 5.0);
    assert_eq!(r.state, State::Critical);
    assert!(details(&r).contains("pool docker: 5 VMs, over its limit of 4"));

    let mut s = healthy();
    s.quota = Fetched::Ok(Quota {
        used_instances: 18,
        max_instances: Some(20),
    });
    // Room to grow: docker 4-2 = 2, arm 4-0 = 4 -> 6; quota leaves 2 -> short by 4.
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(perf(&r, "quota_shortfall"), 4.0);
    assert_eq!(r.state, State::Warning);
}

#[test]
fn unknown_quota_makes_vms_unknown_but_still_reports_servers() {
    let mut s = healthy();
    s.quota = Fetched::Failed("openstack limits: HTTP 500".into());
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(r.state, State::Unknown);
    assert!(details(&r).contains("cannot read quota: openstack limits: HTTP 500"));
    assert_eq!(perf(&r, "vms_error"), 0.0);
}

#[test]
fn failed_source_makes_only_its_subchecks_unknown() {
    let mut s = healthy();
    s.servers = Fetched::Failed("openstack authentication: 401".into());
    let r = eval(&s, &all());
    assert_eq!(sub(&r, Subcheck::Vms).state, State::Unknown);
    assert_eq!(sub(&r, Subcheck::Runners).state, State::Ok);
    assert_eq!(r.state, State::Unknown);
}

#[test]
fn critical_outranks_unknown_and_unknown_outranks_warning() {
    assert_eq!(State::Unknown.worst(State::Critical), State::Critical);
    assert_eq!(State::Warning.worst(State::Unknown), State::Unknown);
    assert_eq!(State::Ok.worst(State::Warning), State::Warning);
}

#[test]
fn pending_jobs_go_to_the_first_matching_pool_and_old_ones_alert() {
    let mut s = healthy();
    s.pending = Fetched::Ok(vec![
        PendingJob {
            id: 11,
            project_id: 1,
            tags: vec!["docker".into()],
            queued_at: ago(1000),
        },
        PendingJob {
            id: 12,
            project_id: 1,
            tags: vec!["arm".into()],
            queued_at: ago(4000),
        },
        PendingJob {
            id: 13,
            project_id: 2,
            tags: vec![],
            queued_at: ago(20),
        },
        PendingJob {
            id: 14,
            project_id: 2,
            tags: vec!["windows".into()],
            queued_at: ago(99_999),
        },
    ]);
    let r = eval(&s, &only(Subcheck::Queue));
    assert_eq!(perf(&r, "docker_jobs_pending"), 2.0);
    assert_eq!(perf(&r, "arm_jobs_pending"), 1.0);
    assert_eq!(perf(&r, "jobs_pending_unmatched"), 1.0);
    assert_eq!(
        perf(&r, "pending_age"),
        4000.0,
        "unmatched jobs do not count"
    );
    assert_eq!(r.state, State::Critical);
    let d = details(&r);
    assert!(
        d.contains("job 12 (project 1, pool arm): pending for 1h 6m"),
        "{d}"
    );
    assert!(
        d.contains("job 11 (project 1, pool docker): pending for 16m 40s"),
        "{d}"
    );
    assert!(!d.contains("job 13"), "{d}");
}

#[test]
fn unreachable_controller_is_critical() {
    let mut s = healthy();
    s.controller =
        Fetched::Failed("controller status: no answer from http://127.0.0.1:9252/status".into());
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Critical);
    assert!(
        sub(&r, Subcheck::Controller)
            .summary
            .starts_with("no heartbeat: ")
    );
}

#[test]
fn stale_heartbeat_warns_then_goes_critical_and_shows_the_last_error() {
    let mut s = healthy();
    let mut hb = heartbeat(200);
    hb.last_error = Some("gitlab: HTTP 502".into());
    s.controller = Fetched::Ok(hb);
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Warning);
    assert!(
        sub(&r, Subcheck::Controller)
            .summary
            .contains("last error: gitlab: HTTP 502")
    );
    s.controller = Fetched::Ok(heartbeat(301));
    assert_eq!(eval(&s, &only(Subcheck::Controller)).state, State::Critical);
}

/// Fails on the code before issue 11: the controller's own report that it cannot read
/// GitLab was not shown.
#[test]
fn a_controller_that_cannot_read_gitlab_warns_then_goes_critical() {
    let mut s = healthy();
    let mut hb = heartbeat(5);
    hb.gitlab_unavailable_since = Some(ago(120));
    hb.gitlab_error = Some("gitlab unreachable: connection refused".into());
    s.controller = Fetched::Ok(hb.clone());
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Warning, "{r:#?}");
    assert!(
        details(&r).contains("cannot read GitLab since 2m"),
        "{}",
        details(&r)
    );
    hb.gitlab_unavailable_since = Some(ago(1200));
    s.controller = Fetched::Ok(hb);
    assert_eq!(eval(&s, &only(Subcheck::Controller)).state, State::Critical);
}

/// Fails on the code before (issue 12): the controller's report that it cannot list the
/// cloud was not shown, and a failure only the operator can fix (credentials refused) waited
/// ten minutes like an outage before going critical.
#[test]
fn a_controller_that_cannot_read_openstack_or_is_refused_credentials_is_reported() {
    let mut s = healthy();
    let mut hb = heartbeat(5);
    hb.openstack_unavailable_since = Some(ago(90));
    hb.openstack_error = Some("listing owned servers: timed out".into());
    hb.openstack_error_kind = Some("unavailable".into());
    s.controller = Fetched::Ok(hb.clone());
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Warning, "{r:#?}");
    assert!(
        details(&r).contains("cannot read OpenStack since 1m"),
        "{}",
        details(&r)
    );
    hb.openstack_unavailable_since = Some(ago(1200));
    s.controller = Fetched::Ok(hb.clone());
    assert_eq!(eval(&s, &only(Subcheck::Controller)).state, State::Critical);
    // Credentials refused: critical at once, and said so.
    hb.openstack_unavailable_since = Some(ago(20));
    hb.openstack_error = Some("POST identity /auth/tokens: 401 Unauthorized".into());
    hb.openstack_error_kind = Some("auth".into());
    s.controller = Fetched::Ok(hb);
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Critical, "{r:#?}");
    assert!(
        details(&r).contains("OpenStack refused the credentials"),
        "{}",
        details(&r)
    );
    let mut hb = heartbeat(5);
    hb.gitlab_unavailable_since = Some(ago(20));
    hb.gitlab_error = Some("runners answered HTTP 401".into());
    hb.gitlab_error_kind = Some("auth".into());
    s.controller = Fetched::Ok(hb);
    let r = eval(&s, &only(Subcheck::Controller));
    assert_eq!(r.state, State::Critical, "{r:#?}");
    assert!(
        details(&r).contains("GitLab refused the credentials"),
        "{}",
        details(&r)
    );
}

#[test]
fn status_of_another_controller_is_critical() {
    let mut s = healthy();
    let mut hb = heartbeat(1);
    hb.controller_id = "other".into();
    s.controller = Fetched::Ok(hb);
    assert_eq!(eval(&s, &only(Subcheck::Controller)).state, State::Critical);
}

#[test]
fn unselected_subchecks_are_neither_evaluated_nor_in_perfdata() {
    let mut s = healthy();
    s.controller = Fetched::Skipped;
    let r = eval(&s, &only(Subcheck::Queue));
    assert_eq!(r.subchecks.len(), 1);
    assert!(r.perfdata.iter().all(|p| !p.label.starts_with("runner")));
}

#[test]
fn evaluation_is_deterministic() {
    let mut s = healthy();
    let Fetched::Ok(rs) = &mut s.runners else {
        panic!()
    };
    rs.reverse();
    rs.push(runner(9, "arm", RunnerStatus::Stale, Some(900_000)));
    let a = eval(&s, &all());
    let b = eval(&s, &all());
    assert_eq!(a, b);
}

#[test]
fn ages_are_human_readable() {
    assert_eq!(human(0), "0s");
    assert_eq!(human(59), "59s");
    assert_eq!(human(61), "1m 1s");
    assert_eq!(human(3661), "1h 1m");
    assert_eq!(human(90_000), "1d 1h");
    assert_eq!(human(-5), "0s");
}

#[test]
fn without_gitlab_vms_still_reports_error_servers_and_leaves_orphans_unknown() {
    let mut s = healthy();
    s.runners = Fetched::Failed("gitlab runner list: HTTP 502".into());
    let Fetched::Ok(sv) = &mut s.servers else {
        panic!()
    };
    for id in 3..=5 {
        sv.push(server(id, "docker", ServerStatus::Error(None), 60, None));
    }
    let r = eval(&s, &only(Subcheck::Vms));
    assert_eq!(
        r.state,
        State::Critical,
        "3 ERROR servers outrank the unknown pairing"
    );
    assert!(
        r.perfdata.iter().all(|p| p.label != "vms_orphaned"),
        "no made-up orphan count"
    );
    assert!(
        details(&r)
            .contains("orphans and silent runners not checked: gitlab runner list: HTTP 502")
    );
    s.servers = Fetched::Ok(Vec::new());
    assert_eq!(eval(&s, &only(Subcheck::Vms)).state, State::Unknown);
}
