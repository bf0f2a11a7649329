//! The live source against the shared HTTP fakes (`autoscaler-fakes`): paging (GitLab
//! offset pages, Nova markers), the ownership rule, runner/server pairing, quota, jobs and
//! `/status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use autoscaler_check::model::{Fetched, RunnerStatus, ServerStatus, Snapshot};
use autoscaler_check::{LiveSource, Progress, Source, Subcheck};
use chrono::{DateTime, TimeDelta, Utc};
use support::scenario::{self as fake, Fake, World};

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("FAKE_GITLAB_TOKEN".to_string(), fake::TOKEN.to_string()),
        ("OS_PASSWORD".to_string(), fake::OS_PASSWORD.to_string()),
    ])
}

async fn snapshot(world: World, now: DateTime<Utc>) -> (Snapshot, Progress, u64) {
    let f = Fake::start(world).await.unwrap();
    let config = autoscaler_config::parse(&f.config(true, 1), "fake.toml").expect("valid config");
    let source = LiveSource::new(config, &env(), Duration::from_secs(10));
    let all: BTreeSet<Subcheck> = Subcheck::ALL.into_iter().collect();
    let progress = Progress::default();
    let snap = tokio::time::timeout(
        Duration::from_secs(30),
        source.snapshot(&all, now, &progress),
    )
    .await
    .expect("in time")
    .expect("snapshot");
    let requests = f.requests();
    (snap, progress, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_runners_and_servers_are_paged_paired_and_filtered_by_owner() {
    let now = Utc::now();
    let (snap, progress, requests) = snapshot(World::scenario("big", now).unwrap(), now).await;
    let Fetched::Ok(runners) = &snap.runners else {
        panic!("{:?}", snap.runners)
    };
    assert_eq!(
        runners.len(),
        1000,
        "11 pages of 100, other controllers' runner dropped"
    );
    assert!(runners.iter().all(|r| r.description.starts_with("ci-")));
    assert_eq!(
        runners
            .iter()
            .filter(|r| r.pool.as_deref() == Some("arm"))
            .count(),
        250
    );
    assert!(
        runners
            .iter()
            .all(|r| r.status == RunnerStatus::Online && r.contacted_at.is_some())
    );
    let Fetched::Ok(servers) = &snap.servers else {
        panic!("{:?}", snap.servers)
    };
    assert_eq!(
        servers.len(),
        1000,
        "5 Nova pages of 200, foreign server not listed"
    );
    assert!(
        servers
            .iter()
            .all(|s| s.status == ServerStatus::Active && s.runner_id.is_some())
    );
    let Fetched::Ok(q) = &snap.quota else {
        panic!("{:?}", snap.quota)
    };
    assert_eq!((q.used_instances, q.max_instances), (1001, Some(2100)));
    let Fetched::Ok(jobs) = &snap.pending else {
        panic!("{:?}", snap.pending)
    };
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].project_id, 42);
    assert_eq!(jobs[0].queued_at, now - TimeDelta::seconds(30));
    let Fetched::Ok(status) = &snap.controller else {
        panic!("{:?}", snap.controller)
    };
    assert_eq!(status.controller_id, "ci");
    assert_eq!(
        progress.describe(),
        "controller: done; gitlab jobs: done; gitlab runners: done; openstack: done"
    );
    assert!(requests >= 1000 + 11 + 5, "{requests}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_deleted_between_list_and_detail_is_skipped_not_an_error() {
    let now = Utc::now();
    let mut w = World::scenario("ok", now).unwrap();
    w.vanished = vec![1002];
    let (snap, _, _) = snapshot(w, now).await;
    let Fetched::Ok(runners) = &snap.runners else {
        panic!("{:?}", snap.runners)
    };
    assert_eq!(runners.len(), 7);
    assert!(runners.iter().all(|r| r.id != 1002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_openstack_password_fails_only_the_openstack_parts() {
    let now = Utc::now();
    let f = Fake::start(World::scenario("ok", now).unwrap())
        .await
        .unwrap();
    let config = autoscaler_config::parse(&f.config(true, 1), "fake.toml").unwrap();
    let mut e = env();
    e.remove("OS_PASSWORD");
    let source = LiveSource::new(config, &e, Duration::from_secs(10));
    let all: BTreeSet<Subcheck> = Subcheck::ALL.into_iter().collect();
    let snap = source
        .snapshot(&all, now, &Progress::default())
        .await
        .unwrap();
    let Fetched::Failed(m) = &snap.servers else {
        panic!("{:?}", snap.servers)
    };
    assert!(m.contains("OS_PASSWORD"), "{m}");
    assert!(matches!(snap.runners, Fetched::Ok(_)));
    assert!(matches!(snap.controller, Fetched::Ok(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_scope_reads_pending_jobs_through_graphql_pages() {
    let now = Utc::now();
    let mut w = World::scenario("warning", now).unwrap();
    for j in &mut w.jobs {
        j.queued_at = j.created_at + TimeDelta::seconds(10);
    }
    let created: Vec<_> = w.jobs.iter().map(|j| (j.id, j.created_at)).collect();
    let f = Fake::start(w).await.unwrap();
    let text = f
        .config(true, 1)
        .replace("projects = [42]\ngroups = [\"7\"]", "instance = true");
    assert!(text.contains("instance = true"));
    let config = autoscaler_config::parse(&text, "fake.toml").unwrap();
    let source = LiveSource::new(config, &env(), Duration::from_secs(10));
    let snap = source
        .snapshot(
            &BTreeSet::from([Subcheck::Queue]),
            now,
            &Progress::default(),
        )
        .await
        .unwrap();
    let Fetched::Ok(jobs) = &snap.pending else {
        panic!("{:?}", snap.pending)
    };
    assert_eq!(jobs.len(), 2, "two pages of one job");
    for (j, (id, c)) in jobs.iter().zip(&created) {
        assert_eq!(j.id, *id);
        assert_eq!(j.queued_at, *c + TimeDelta::seconds(10), "queuedAt wins");
    }
    assert_eq!(jobs[1].project_id, 43);
    assert_eq!(jobs[1].tags, vec!["arm".to_string(), "docker".to_string()]);
    assert!(matches!(snap.runners, Fetched::Skipped));
}
