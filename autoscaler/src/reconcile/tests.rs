//! Reconciler scenarios against the in-memory fakes, in paused time. Every scenario
//! asserts on final state: servers, runners, jobs, and that no job was killed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::ports::{CloudErrorKind, ControllerId};
use crate::testing::cloud::FakeCloud;
use crate::testing::gitlab::{FakeGitLab, Op};

const CONFIG: &str = r#"
[controller]
id = "ci"
poll_interval = "10s"

[gitlab]
url = "https://gitlab.example.com/"
token_file = "/etc/token"

[gitlab.scope]
projects = ["group/project"]

[[pools]]
name = "docker"
limit = 5
idle_count = 0
idle_time = "10m"
boot_timeout = "5m"
max_builds = 0
forecast_days = 0

[pools.server]
flavor = "s1.large"
image = "Debian 12"
networks = ["net"]

[pools.runner]
tags = ["docker"]
"#;

struct Scenario {
    gitlab: FakeGitLab,
    cloud: FakeCloud,
    reconciler: Reconciler<FakeGitLab, FakeCloud>,
}

fn epoch() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn scenario(config: &str) -> Scenario {
    let config = autoscaler_config::parse_at(config, "test.toml", epoch()).unwrap();
    let id = ControllerId::new("ci").unwrap();
    let gitlab = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    cloud.set_boot_delay(Duration::from_secs(60));
    let reconciler = Reconciler::new(
        gitlab.clone(),
        cloud.clone(),
        Arc::new(config),
        Arc::new(TokioClock::new(epoch())),
        4,
    )
    .unwrap();
    Scenario {
        gitlab,
        cloud,
        reconciler,
    }
}

impl Scenario {
    /// Lets VMs that are ACTIVE start their runners, as gitlab-runner on a booted VM would.
    fn boot_runners(&self) {
        for s in self.cloud.servers() {
            if let (CloudStatus::Active, Some(r)) = (&s.status, s.runner_id) {
                self.gitlab.runner_booted(r);
            }
        }
    }

    /// Runs ticks every `step` for `total`, letting VMs boot in between.
    async fn run_for(&mut self, total: Duration, step: Duration) -> Vec<TickSummary> {
        let mut out = Vec::new();
        let end = tokio::time::Instant::now() + total;
        while tokio::time::Instant::now() < end {
            self.boot_runners();
            out.push(self.reconciler.tick().await.unwrap());
            tokio::time::advance(step).await;
        }
        self.boot_runners();
        out
    }

    fn servers(&self) -> usize {
        self.cloud.servers().len()
    }
}

#[tokio::test(start_paused = true)]
async fn pending_jobs_get_vms_which_run_them_and_are_removed_when_idle() {
    let mut s = scenario(CONFIG);
    for _ in 0..3 {
        s.gitlab.add_job(&["docker"], Duration::from_secs(120));
    }
    let first = s.reconciler.tick().await.unwrap();
    assert_eq!(first.planned.get("create"), Some(&3));
    assert_eq!(s.servers(), 3);
    assert_eq!(s.gitlab.runner_ids().len(), 3);
    // Each server carries its own runner's token in its user-data, and no other.
    for server in s.cloud.servers() {
        let data = s.cloud.user_data(&server.id).unwrap();
        assert!(data.contains("#cloud-config"));
        assert!(server.runner_id.is_some());
    }
    // Boot (60 s), run the jobs (120 s), idle out (10 min), park, delete.
    s.run_for(Duration::from_secs(20 * 60), Duration::from_secs(10))
        .await;
    let jobs = s.gitlab.jobs();
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter()
            .all(|j| matches!(j.state, crate::testing::gitlab::FakeJobState::Done(_))),
        "every job ran to the end: {jobs:?}"
    );
    assert!(s.gitlab.killed_jobs().is_empty());
    assert_eq!(s.servers(), 0, "idle VMs are deleted after idle_time");
    assert!(s.gitlab.runner_ids().is_empty(), "and their runners too");
}

#[tokio::test(start_paused = true)]
async fn a_failed_server_create_deletes_its_runner_and_backs_off() {
    let mut s = scenario(CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(60));
    s.cloud.fail_next_create(crate::ports::CloudError::new(
        CloudErrorKind::Quota,
        "Quota exceeded for instances",
    ));
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.failures.len(), 1, "{t:?}");
    assert_eq!(s.servers(), 0);
    assert!(
        s.gitlab.runner_ids().is_empty(),
        "no runner outlives its failed server"
    );
    // Backoff: the next tick 10 s later creates nothing; after 30 s it retries.
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), None);
    tokio::time::advance(Duration::from_secs(25)).await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), Some(&1));
    assert_eq!(s.servers(), 1);
}

#[tokio::test(start_paused = true)]
async fn when_gitlab_cannot_be_read_nothing_is_deleted() {
    let mut s = scenario(CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(5 * 60), Duration::from_secs(10))
        .await;
    assert_eq!(s.servers(), 1);
    // Long past idle_time, but GitLab is down: the VM stays.
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    s.gitlab.fail_next(
        Op::PendingJobs,
        crate::ports::GitLabError::Unreachable {
            message: "connection refused".into(),
        },
    );
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.pending, None);
    assert!(t.planned.is_empty(), "{t:?}");
    assert_eq!(s.servers(), 1);
}

#[tokio::test(start_paused = true)]
async fn servers_and_runners_of_others_are_never_touched() {
    let mut s = scenario(CONFIG);
    let foreign = s
        .cloud
        .insert_foreign("someone-elses-vm", vec!["autoscaler:other".into()]);
    let foreign_runner = s.gitlab.add_foreign_runner("ci-docker-1-1", "hand-made");
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(30 * 60), Duration::from_secs(10))
        .await;
    let left: Vec<_> = s.cloud.servers().into_iter().map(|v| v.id).collect();
    assert_eq!(
        left,
        vec![foreign],
        "our VM came and went; the foreign one stays"
    );
    assert!(s.gitlab.runner_ids().contains(&foreign_runner));
    assert!(s.gitlab.killed_jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restart_between_runner_and_server_create_converges_without_leaks() {
    let mut s = scenario(CONFIG);
    // A previous controller created a runner and died before creating its server.
    let orphan = s
        .gitlab
        .create_runner(CreateRunner {
            scope: crate::ports::RunnerScope::Instance,
            description: "ci-docker-1-1".into(),
            pool: "docker".into(),
            tags: ["docker".to_string()].into_iter().collect(),
            run_untagged: false,
            ref_protected: false,
            locked: false,
            maximum_timeout: None,
        })
        .await
        .unwrap();
    let t = s.reconciler.tick().await.unwrap();
    assert!(
        t.planned.is_empty(),
        "a young orphan runner may be waiting: {t:?}"
    );
    s.run_for(Duration::from_secs(6 * 60), Duration::from_secs(10))
        .await;
    assert!(
        !s.gitlab.runner_ids().contains(&orphan.id),
        "the orphan runner is removed after the boot grace"
    );
    assert_eq!(s.servers(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_vm_whose_runner_never_contacts_gitlab_is_replaced_after_boot_timeout() {
    let mut s = scenario(CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.reconciler.tick().await.unwrap();
    let first: Vec<_> = s.cloud.servers().into_iter().map(|v| v.id).collect();
    assert_eq!(first.len(), 1);
    // Never call boot_runners: the VM's runner never starts.
    for _ in 0..40 {
        tokio::time::advance(Duration::from_secs(10)).await;
        s.reconciler.tick().await.unwrap();
    }
    let now: Vec<_> = s.cloud.servers().into_iter().map(|v| v.id).collect();
    assert!(!now.contains(&first[0]), "the stuck VM was deleted");
    assert_eq!(now.len(), 1, "and replaced for the pending job");
}

#[tokio::test(start_paused = true)]
async fn drain_all_removes_every_vm_after_its_job_and_kills_nothing() {
    let mut s = scenario(CONFIG);
    for _ in 0..2 {
        s.gitlab.add_job(&["docker"], Duration::from_secs(300));
    }
    s.run_for(Duration::from_secs(90), Duration::from_secs(10))
        .await;
    assert_eq!(s.servers(), 2);
    // The jobs run for 5 minutes: drain must wait for them.
    let booter = {
        let (gitlab, cloud) = (s.gitlab.clone(), s.cloud.clone());
        tokio::spawn(async move {
            loop {
                for v in cloud.servers() {
                    if let (CloudStatus::Active, Some(r)) = (&v.status, v.runner_id) {
                        gitlab.runner_booted(r);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let left = s
        .reconciler
        .drain_all(Duration::from_secs(10), Duration::from_secs(30 * 60))
        .await;
    booter.abort();
    assert_eq!(left, 0);
    assert_eq!(s.servers(), 0);
    assert!(s.gitlab.runner_ids().is_empty());
    assert!(s.gitlab.killed_jobs().is_empty());
    assert!(
        s.gitlab
            .jobs()
            .iter()
            .all(|j| matches!(j.state, crate::testing::gitlab::FakeJobState::Done(_)))
    );
}

#[tokio::test(start_paused = true)]
async fn run_ticks_until_shutdown_and_a_webhook_nudge_ticks_at_once() {
    let mut s = scenario(CONFIG);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let gitlab = s.gitlab.clone();
    let cloud = s.cloud.clone();
    // A job arrives 5 s in and its webhook nudge right after; the poll interval is 60 s.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        gitlab.add_job(&["docker"], Duration::from_secs(60));
        tx.send(42).await.unwrap();
    });
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(7)).await;
        cloud.servers().len()
    });
    s.reconciler
        .run(
            Duration::from_secs(60),
            tokio::time::sleep(Duration::from_secs(30)),
            Some(rx),
        )
        .await;
    assert_eq!(
        watcher.await.unwrap(),
        1,
        "the nudge created the VM within 2 s, not at the next 60 s poll"
    );
}
