//! Reconciler scenarios against the in-memory fakes, in paused time. Every scenario
//! asserts on final state: servers, runners, jobs, and that no job was killed.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::*;
use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_core::plan::VmState;
use autoscaler_core::ports::{CloudErrorKind, ControllerId};
use autoscaler_core::testing::cloud::FakeCloud;
use autoscaler_core::testing::gitlab::{FakeGitLab, Op};

/// One pool `docker` of at most 5 VMs, no warm VM, no forecast; polled every 10 s.
static CONFIG: LazyLock<String> = LazyLock::new(|| config(docker()));

fn docker() -> PoolFixture {
    PoolFixture::new("docker")
        .limit(5)
        .idle_count(0)
        .idle_time("10m")
        .boot_timeout("5m")
        .max_builds(0)
        .forecast_days(0)
}

fn config(pool: PoolFixture) -> String {
    ConfigFixture::new()
        .poll_interval("10s")
        .pool(pool)
        .render()
}

struct Scenario {
    gitlab: FakeGitLab,
    cloud: FakeCloud,
    reconciler: Reconciler<FakeGitLab, FakeCloud>,
}

/// Every job ran to its end (none pending, running or killed).
fn assert_every_job_done(gitlab: &FakeGitLab) {
    let jobs = gitlab.jobs();
    assert!(
        jobs.iter().all(|j| matches!(
            j.state,
            autoscaler_core::testing::gitlab::FakeJobState::Done(_)
        )),
        "{jobs:?}"
    );
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
    /// The controller's start without stored memory: runners read once, then again a poll
    /// interval (10 s) later; creates wait for that second look.
    async fn warm_up(&mut self) {
        let t = self.reconciler.tick().await.unwrap();
        assert_eq!(
            t.planned.get("create"),
            None,
            "no create on one listing: {t:?}"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
    }

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
    let mut s = scenario(&CONFIG);
    s.warm_up().await;
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
    assert_every_job_done(&s.gitlab);
    assert!(s.gitlab.killed_jobs().is_empty());
    assert_eq!(s.servers(), 0, "idle VMs are deleted after idle_time");
    assert!(s.gitlab.runner_ids().is_empty(), "and their runners too");
}

#[tokio::test(start_paused = true)]
async fn a_failed_server_create_deletes_its_runner_and_backs_off() {
    let mut s = scenario(&CONFIG);
    s.warm_up().await;
    s.gitlab.add_job(&["docker"], Duration::from_secs(60));
    s.cloud
        .fail_next_create(autoscaler_core::ports::CloudError::new(
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
    let mut s = scenario(&CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(5 * 60), Duration::from_secs(10))
        .await;
    assert_eq!(s.servers(), 1);
    // Long past idle_time, but GitLab is down: the VM stays.
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    s.gitlab.fail_next(
        Op::PendingJobs,
        autoscaler_core::ports::GitLabError::Unreachable {
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
    let mut s = scenario(&CONFIG);
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
    let mut s = scenario(&CONFIG);
    // A previous controller created a runner and died before creating its server.
    let orphan = s
        .gitlab
        .create_runner(CreateRunner {
            scope: autoscaler_core::ports::RunnerScope::Instance,
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
    let mut s = scenario(&CONFIG);
    s.warm_up().await;
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
    let mut s = scenario(&CONFIG);
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
    assert_every_job_done(&s.gitlab);
}

#[tokio::test(start_paused = true)]
async fn run_ticks_until_shutdown_and_a_webhook_nudge_ticks_at_once() {
    let mut s = scenario(&CONFIG);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let gitlab = s.gitlab.clone();
    let cloud = s.cloud.clone();
    // A job arrives 15 s in (after the start's second look at the runners) and its webhook
    // nudge right after; the poll interval is 60 s.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(15)).await;
        gitlab.add_job(&["docker"], Duration::from_secs(60));
        tx.send(42).await.unwrap();
    });
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(17)).await;
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

// === issue 11: one observation is never proof ===========================================

/// A GitLab as real ones behave between requests: a listing can skip runners (an offset
/// page shifted, an admin edited the description), and every call is counted.
#[derive(Clone)]
struct Shifty {
    inner: FakeGitLab,
    hidden: Arc<std::sync::Mutex<BTreeSet<RunnerId>>>,
    pending_calls: Arc<std::sync::atomic::AtomicU32>,
}

impl Shifty {
    fn new(inner: FakeGitLab) -> Self {
        Shifty {
            inner,
            hidden: Arc::default(),
            pending_calls: Arc::default(),
        }
    }
    fn hide(&self, id: RunnerId, hidden: bool) {
        let mut h = self.hidden.lock().unwrap();
        if hidden {
            h.insert(id);
        } else {
            h.remove(&id);
        }
    }
    fn ticks(&self) -> u32 {
        self.pending_calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl GitLab for Shifty {
    async fn pending_jobs(
        &self,
    ) -> autoscaler_core::ports::GitLabResult<Vec<autoscaler_core::model::PendingJob>> {
        self.pending_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.pending_jobs().await
    }
    async fn owned_runners(&self) -> autoscaler_core::ports::GitLabResult<Vec<OwnedRunner>> {
        let hidden = self.hidden.lock().unwrap().clone();
        let all = self.inner.owned_runners().await?;
        Ok(all
            .into_iter()
            .filter(|r| !hidden.contains(&r.id))
            .collect())
    }
    async fn runner_by_id(
        &self,
        id: RunnerId,
    ) -> autoscaler_core::ports::GitLabResult<Option<OwnedRunner>> {
        self.inner.runner_by_id(id).await
    }
    async fn create_runner(
        &self,
        req: CreateRunner,
    ) -> autoscaler_core::ports::GitLabResult<autoscaler_core::ports::NewRunner> {
        self.inner.create_runner(req).await
    }
    async fn set_paused(
        &self,
        id: RunnerId,
        paused: bool,
    ) -> autoscaler_core::ports::GitLabResult<()> {
        self.inner.set_paused(id, paused).await
    }
    async fn running_jobs(&self, id: RunnerId) -> autoscaler_core::ports::GitLabResult<u32> {
        self.inner.running_jobs(id).await
    }
    async fn delete_runner(&self, id: RunnerId) -> autoscaler_core::ports::GitLabResult<()> {
        self.inner.delete_runner(id).await
    }
}

impl Nudge for Shifty {
    async fn nudge(&self, _project: u64) {}
}

/// A cloud whose server create answers too late: the client gives up after `timeout`
/// with a transient error, and the cloud creates the server anyway a little later.
#[derive(Clone)]
struct LateCloud {
    inner: FakeCloud,
    late: Arc<std::sync::atomic::AtomicU32>,
    timeout: Duration,
    /// Most servers seen at once (checked on every call).
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl LateCloud {
    fn note_peak(&self) {
        let n = self.inner.servers().len();
        self.peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Cloud for LateCloud {
    async fn list_owned_servers(&self) -> autoscaler_core::ports::CloudResult<Vec<CloudServer>> {
        self.note_peak();
        self.inner.list_owned_servers().await
    }
    async fn create_server(
        &self,
        req: CreateServer,
    ) -> autoscaler_core::ports::CloudResult<ServerId> {
        let late = self
            .late
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if !late {
            let r = self.inner.create_server(req).await;
            self.note_peak();
            return r;
        }
        tokio::time::sleep(self.timeout).await;
        let inner = self.inner.clone();
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let _ = inner.create_server(req).await;
            me.note_peak();
        });
        Err(autoscaler_core::ports::CloudError::new(
            CloudErrorKind::Transient,
            "timed out waiting for the compute API",
        ))
    }
    async fn delete_server(&self, id: &ServerId) -> autoscaler_core::ports::CloudResult<()> {
        self.inner.delete_server(id).await
    }
    async fn quota(
        &self,
    ) -> autoscaler_core::ports::CloudResult<autoscaler_core::ports::ComputeQuota> {
        self.inner.quota().await
    }
}

/// `limit = 1`, a GitLab, a cloud whose first server create answers after `timeout` with
/// an error and creates the server later anyway, and that cloud's inner fake.
fn late_world(timeout: Duration) -> (String, FakeGitLab, FakeCloud, LateCloud) {
    let id = ControllerId::new("ci").unwrap();
    let fake = FakeGitLab::new(id.clone());
    let inner = FakeCloud::new(id);
    inner.set_boot_delay(Duration::from_secs(60));
    let cloud = LateCloud {
        inner: inner.clone(),
        late: Arc::new(1.into()),
        timeout,
        peak: Arc::default(),
    };
    (config(docker().limit(1)), fake, inner, cloud)
}

fn reconciler<G: GitLab + 'static, C: Cloud + 'static>(
    config: &str,
    gitlab: G,
    cloud: C,
) -> Reconciler<G, C> {
    let config = autoscaler_config::parse_at(config, "test.toml", epoch()).unwrap();
    Reconciler::new(
        gitlab,
        cloud,
        Arc::new(config),
        Arc::new(TokioClock::new(epoch())),
        4,
    )
    .unwrap()
}

fn boot_all(cloud: &FakeCloud, gitlab: &FakeGitLab) {
    for s in cloud.servers() {
        if let (CloudStatus::Active, Some(r)) = (&s.status, s.runner_id) {
            gitlab.runner_booted(r);
        }
    }
}

/// Fails on the code before issue 11: the VM was deleted as `runner_missing` (job lost).
#[tokio::test(start_paused = true)]
async fn a_busy_vm_whose_runner_a_listing_skips_is_kept() {
    let id = ControllerId::new("ci").unwrap();
    let fake = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    cloud.set_boot_delay(Duration::from_secs(60));
    let gitlab = Shifty::new(fake.clone());
    let mut r = reconciler(&CONFIG, gitlab.clone(), cloud.clone());
    fake.add_job(&["docker"], Duration::from_secs(40 * 60));
    for _ in 0..60 {
        boot_all(&cloud, &fake);
        r.tick().await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    let runner = fake.runner_ids()[0];
    assert!(matches!(
        fake.jobs()[0].state,
        autoscaler_core::testing::gitlab::FakeJobState::Running(_)
    ));
    // The listing skips the busy runner for several ticks (past boot_timeout = 5 min).
    gitlab.hide(runner, true);
    for _ in 0..40 {
        let t = r.tick().await.unwrap();
        assert_eq!(t.planned.get("delete"), None, "{t:?}");
        assert_eq!(cloud.servers().len(), 1);
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    // It is probed by id, found busy, and kept whole.
    let plan = r.last_plan.as_ref().unwrap();
    assert_eq!(plan.pool("docker").unwrap().count(VmState::Busy), 1);
    gitlab.hide(runner, false);
    for _ in 0..300 {
        boot_all(&cloud, &fake);
        r.tick().await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert!(fake.killed_jobs().is_empty());
    assert_every_job_done(&fake);
    assert_eq!(cloud.servers().len(), 0, "idle after the job: removed");
}

/// A runner deleted out of band: its server goes only after two 404s a poll interval
/// apart, and while unknown it keeps counting against `limit`.
#[tokio::test(start_paused = true)]
async fn a_server_whose_runner_is_gone_is_removed_after_two_404s_a_poll_apart() {
    let mut s = scenario(&CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(3 * 60), Duration::from_secs(10))
        .await;
    assert_eq!(s.servers(), 1);
    let runner = s.gitlab.runner_ids()[0];
    s.gitlab.delete_runner(runner).await.unwrap();
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("delete"), None, "one 404 proves nothing yet");
    assert_eq!(
        s.reconciler
            .last_plan
            .as_ref()
            .unwrap()
            .pool("docker")
            .unwrap()
            .count(VmState::Unknown),
        1
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(
        t.planned.get("delete"),
        None,
        "two 404s within a poll interval"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("delete"), Some(&1), "{t:?}");
    assert_eq!(t.applied.get(&("delete", "runner_missing")), Some(&1));
}

/// Fails on the code before issue 11: the retry came at once (the failure was stamped
/// with the tick's start) and the late server made two, over `limit = 1`.
#[tokio::test(start_paused = true)]
async fn a_create_that_times_out_but_succeeds_later_never_exceeds_the_limit() {
    let (one, fake, inner, cloud) = late_world(Duration::from_secs(60));
    let mut r = reconciler(&one, fake.clone(), cloud.clone());
    fake.add_job(&["docker"], Duration::from_secs(120));
    fake.add_job(&["docker"], Duration::from_secs(120));
    for _ in 0..120 {
        boot_all(&inner, &fake);
        r.tick().await.unwrap();
        cloud.note_peak();
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    for _ in 0..120 {
        boot_all(&inner, &fake);
        r.tick().await.unwrap();
        cloud.note_peak();
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert_eq!(
        cloud.peak.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "limit = 1 held at every step"
    );
    // The late server ran both jobs.
    assert_every_job_done(&fake);
    assert!(fake.killed_jobs().is_empty());
}

/// Fails on the code before issue 11: a runner that stopped contacting GitLab counted as
/// idle capacity for ever, so the pending job never got a VM.
#[tokio::test(start_paused = true)]
async fn a_runner_gone_offline_is_replaced_and_removed_safely() {
    let mut s = scenario(&CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(3 * 60), Duration::from_secs(10))
        .await;
    assert_eq!(s.servers(), 1);
    let dead = s.gitlab.runner_ids()[0];
    let dead_server = s.cloud.servers()[0].id.clone();
    // Its gitlab-runner dies; a new job arrives (idle_count = 0).
    s.gitlab.runner_vanished(dead);
    tokio::time::advance(Duration::from_secs(6 * 60)).await;
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), Some(&1), "{t:?}");
    let plan = s.reconciler.last_plan.clone().unwrap();
    let pool = plan.pool("docker").unwrap();
    assert!(
        pool.vms
            .iter()
            .any(|(id, st)| id.0 == dead_server.0 && *st != VmState::Idle),
        "the dead VM is not capacity: {:?}",
        pool.vms
    );
    // Run on; keep the dead VM's runner from contacting (its VM is broken).
    let end = tokio::time::Instant::now() + Duration::from_secs(10 * 60);
    while tokio::time::Instant::now() < end {
        for sv in s.cloud.servers() {
            if let (CloudStatus::Active, Some(r)) = (&sv.status, sv.runner_id) {
                if r != dead {
                    s.gitlab.runner_booted(r);
                }
            }
        }
        s.reconciler.tick().await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert!(
        s.cloud.servers().iter().all(|sv| sv.id != dead_server),
        "the dead VM was removed"
    );
    assert!(!s.gitlab.runner_ids().contains(&dead));
    assert!(s.gitlab.killed_jobs().is_empty());
    assert_every_job_done(&s.gitlab);
}

/// Fails on the code before issue 11: every nudge started a full tick at once (and during
/// a backoff too).
#[tokio::test(start_paused = true)]
async fn webhook_nudges_coalesce_and_keep_a_minimum_spacing() {
    let id = ControllerId::new("ci").unwrap();
    let fake = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    let gitlab = Shifty::new(fake.clone());
    let mut r = reconciler(&CONFIG, gitlab.clone(), cloud);
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let flood = tokio::spawn(async move {
        for i in 0..1000u64 {
            let _ = tx.send(i % 7).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    r.run(
        Duration::from_secs(60),
        tokio::time::sleep(Duration::from_secs(10)),
        Some(rx),
    )
    .await;
    flood.abort();
    let ticks = gitlab.ticks();
    // One at start, then at most one per MIN_TICK_SPACING.
    assert!(
        (2..=6).contains(&ticks),
        "{ticks} ticks in 10 s of nudges every 10 ms"
    );
}

/// Fails on the code before issue 11: nothing said GitLab was down, or since when.
#[tokio::test(start_paused = true)]
async fn gitlab_down_is_reported_with_since_and_why() {
    let mut s = scenario(&CONFIG);
    s.reconciler.tick().await.unwrap();
    for _ in 0..3 {
        s.gitlab.fail_next(
            Op::OwnedRunners,
            autoscaler_core::ports::GitLabError::Unreachable {
                message: "connection refused".into(),
            },
        );
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    let first = s.reconciler.tick().await.unwrap();
    let Outage {
        since, error: why, ..
    } = first.gitlab_down.clone().unwrap();
    assert!(why.contains("connection refused"), "{why}");
    tokio::time::advance(Duration::from_secs(10)).await;
    let second = s.reconciler.tick().await.unwrap();
    assert_eq!(
        second.gitlab_down.as_ref().unwrap().since,
        since,
        "since stays"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    s.reconciler.tick().await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let back = s.reconciler.tick().await.unwrap();
    assert_eq!(back.gitlab_down, None);
}

/// Fails on the code before issue 11: a server stuck deleting was never deleted again.
#[tokio::test(start_paused = true)]
async fn a_delete_that_does_not_finish_is_reissued() {
    let mut s = scenario(&CONFIG);
    s.gitlab.add_job(&["docker"], Duration::from_secs(30));
    s.run_for(Duration::from_secs(3 * 60), Duration::from_secs(10))
        .await;
    s.cloud.set_delete_delay(Duration::from_secs(3600));
    s.run_for(Duration::from_secs(15 * 60), Duration::from_secs(10))
        .await;
    let first = s.cloud.delete_count();
    assert!(first >= 1);
    s.run_for(Duration::from_secs(10 * 60), Duration::from_secs(10))
        .await;
    assert!(
        s.cloud.delete_count() > first,
        "re-issued: {} -> {}",
        first,
        s.cloud.delete_count()
    );
}

/// A lost create, a restart, and a runner listing that lacks the lost create's runner:
/// the restarted controller restores the memory of the create (written before it started)
/// and does not grow past `limit = 1`. Without the stored memory it had nothing to go on.
#[tokio::test(start_paused = true)]
async fn a_restart_remembers_a_create_of_unknown_outcome() {
    let (one, fake, inner, cloud) = late_world(Duration::from_secs(5));
    let gitlab = Shifty::new(fake.clone());
    let store = autoscaler_core::memory::MemoryStore::default();
    let build = || {
        reconciler(&one, gitlab.clone(), cloud.clone())
            .with_store(Arc::new(store.clone()) as Arc<dyn autoscaler_core::memory::StateStore>)
    };
    fake.add_job(&["docker"], Duration::from_secs(60));
    let mut r = build();
    r.tick().await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = r.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), Some(&1), "{t:?}");
    // The create timed out; its runner exists but an admin's edit hides it from listings.
    let runner = fake.runner_ids()[0];
    gitlab.hide(runner, true);
    drop(r);
    let mut r = build();
    for _ in 0..6 {
        let t = r.tick().await.unwrap();
        assert_eq!(t.planned.get("create"), None, "{t:?}");
        tokio::time::advance(Duration::from_secs(5)).await;
        cloud.note_peak();
    }
    assert_eq!(inner.servers().len(), 1, "the late server surfaced");
    assert_eq!(cloud.peak.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Fails on the code before (issue 12): the pools' flavor sizes were never resolved, so
/// only the instance count was budgeted: with a cores quota that binds first, every create
/// past it was sent, refused with a quota error, and counted as a failure (backoff).
#[tokio::test(start_paused = true)]
async fn a_cores_quota_that_binds_before_instances_is_budgeted() {
    let mut s = scenario(&CONFIG);
    s.cloud.set_flavor(
        "s1.large",
        autoscaler_core::model::FlavorSize {
            vcpus: 4,
            ram_mb: 8192,
        },
    );
    s.cloud.set_quota_instances(Some(10));
    s.cloud.set_quota_cores(Some(8));
    for _ in 0..4 {
        s.gitlab.add_job(&["docker"], Duration::from_secs(60));
    }
    s.warm_up().await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), Some(&2), "{t:?}");
    assert!(t.failures.is_empty(), "no create refused: {t:?}");
    assert_eq!(s.servers(), 2);
    let pool = s
        .reconciler
        .last_plan
        .as_ref()
        .unwrap()
        .pool("docker")
        .unwrap()
        .clone();
    assert!(
        pool.caps.contains(&autoscaler_core::plan::Cap::Quota),
        "{:?}",
        pool.caps
    );
}

/// Fails on the code before (issue 12): `plan` planned from an empty memory, so it never
/// showed the backoff, breaker or forecast that the running controller acted on. Now a
/// read-only reconciler (what `plan` and `status` build) restores the memory the running
/// one wrote and plans exactly as it does: same failures, same learned burst, same caps.
#[tokio::test(start_paused = true)]
async fn plan_reads_the_memory_run_wrote_and_decides_the_same() {
    let config_text = config(docker().forecast_days(1));
    let config = Arc::new(autoscaler_config::parse_at(&config_text, "test.toml", epoch()).unwrap());
    let id = ControllerId::new("ci").unwrap();
    let gitlab = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    cloud.set_boot_delay(Duration::from_secs(60));
    let store = autoscaler_core::memory::MemoryStore::default();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(epoch()));
    let running = Reconciler::new(
        gitlab.clone(),
        cloud.clone(),
        Arc::clone(&config),
        Arc::clone(&clock),
        4,
    )
    .unwrap()
    .with_store(Arc::new(store.clone()) as Arc<dyn autoscaler_core::memory::StateStore>);
    let mut s = Scenario {
        gitlab,
        cloud,
        reconciler: running,
    };
    s.warm_up().await;
    // Day 1, just after midnight: a burst of three jobs (a nightly pipeline).
    for _ in 0..3 {
        s.gitlab.add_job(&["docker"], Duration::from_secs(60));
    }
    s.run_for(Duration::from_secs(30 * 60), Duration::from_secs(10))
        .await;
    assert_every_job_done(&s.gitlab);
    // Three minutes before the same minute on day 2, a create fails.
    let next_burst = epoch() + chrono::Duration::days(1) - chrono::Duration::minutes(3);
    let wait = (next_burst - clock.now()).to_std().unwrap();
    tokio::time::advance(wait).await;
    s.cloud
        .fail_next_create(autoscaler_core::ports::CloudError::new(
            CloudErrorKind::Rejected,
            "image not usable",
        ));
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(
        t.planned.get("create"),
        Some(&3),
        "the burst is pre-warmed: {t:?}"
    );
    assert!(!t.failures.is_empty(), "one create failed: {t:?}");
    tokio::time::advance(Duration::from_secs(10)).await;
    s.reconciler.tick().await.unwrap();
    let run_plan = s.reconciler.last_plan.clone().unwrap();
    let run_pool = run_plan.pool("docker").unwrap().clone();
    assert!(
        run_pool
            .caps
            .iter()
            .any(|c| matches!(c, autoscaler_core::plan::Cap::Backoff(_))),
        "run backs off: {:?}",
        run_pool.caps
    );

    // `plan` at the same moment, on the same memory.
    let mut planner = Reconciler::read_only(
        s.gitlab.clone(),
        s.cloud.clone(),
        Arc::clone(&config),
        Arc::clone(&clock),
    )
    .unwrap()
    .with_store(Arc::new(store.clone()) as Arc<dyn autoscaler_core::memory::StateStore>);
    let (obs, now) = planner.observe().await.unwrap();
    let plan = autoscaler_core::plan::plan(&obs, &settings::policy_at(&config, now), now);
    assert_eq!(obs.expected.get("docker"), Some(&3), "the learned burst");
    assert_eq!(obs.failures.get("docker").map(|f| f.consecutive), Some(1));
    assert_eq!(
        plan.pool("docker").unwrap(),
        &run_pool,
        "plan decides as run does"
    );
    assert_eq!(plan.actions, run_plan.actions);
    // `plan` never writes the memory.
    let before = autoscaler_core::memory::StateStore::load(&store).unwrap();
    drop(planner);
    assert_eq!(
        autoscaler_core::memory::StateStore::load(&store).unwrap(),
        before
    );
}

// === issue 12: typed failures: credentials refused are not retried like a timeout ========

fn cloud_error(kind: CloudErrorKind, message: &str) -> autoscaler_core::ports::CloudError {
    autoscaler_core::ports::CloudError::new(kind, message)
}

/// Runs the loop for `secs` seconds (poll interval 10 s) after `script` has queued
/// failures, and returns how many ticks ran and whether both services were read at the end.
async fn ticks_in(secs: u64, script: impl FnOnce(&FakeGitLab, &FakeCloud)) -> (u32, bool) {
    let id = ControllerId::new("ci").unwrap();
    let fake = FakeGitLab::new(id.clone());
    let cloud = FakeCloud::new(id);
    script(&fake, &cloud);
    let gitlab = Shifty::new(fake);
    let mut r = reconciler(&CONFIG, gitlab.clone(), cloud);
    r.run(
        Duration::from_secs(10),
        tokio::time::sleep(Duration::from_secs(secs)),
        None,
    )
    .await;
    (
        gitlab.ticks(),
        r.cloud_down().is_none() && r.gitlab_down().is_none(),
    )
}

/// Fails on the code before issue 12: credentials refused were retried like a timeout,
/// after 20 s, 40 s, 80 s ... up to 5 minutes, so a fix waited minutes to be noticed.
#[tokio::test(start_paused = true)]
async fn openstack_refusing_the_credentials_is_retried_at_a_steady_pace() {
    let ticks = ticks_in(45, |_, cloud| {
        for _ in 0..3 {
            cloud.fail_next_list(cloud_error(
                CloudErrorKind::Auth,
                "POST identity /auth/tokens: 401 Unauthorized: The request you have made requires authentication.",
            ));
        }
    })
    .await;
    // 0, 10, 20 s refused; 30 and 40 s read the cloud again (not 0, 20, 60 s).
    assert_eq!(ticks, (5, true));
}

/// Fails on the code before issue 12 (GitLab's 401 backed off like an outage).
#[tokio::test(start_paused = true)]
async fn gitlab_refusing_the_token_is_retried_at_a_steady_pace() {
    let ticks = ticks_in(45, |gitlab, _| {
        for _ in 0..3 {
            gitlab.fail_next(
                Op::PendingJobs,
                autoscaler_core::ports::GitLabError::Auth {
                    status: 401,
                    what: "jobs".into(),
                },
            );
        }
    })
    .await;
    assert_eq!(ticks, (5, true));
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_cloud_keeps_the_exponential_backoff() {
    let ticks = ticks_in(45, |_, cloud| {
        cloud.fail_next_list(cloud_error(CloudErrorKind::Transient, "no response"));
        cloud.fail_next_list(cloud_error(CloudErrorKind::Transient, "no response"));
    })
    .await;
    // 0 s and 20 s fail; the next try is at 60 s.
    assert_eq!(ticks, (2, false));
}

/// Fails on the code before issue 12: `/status` and the metrics did not say what kind of
/// failure stopped the ticks.
#[tokio::test(start_paused = true)]
async fn refused_credentials_show_as_kind_auth_in_status_and_metrics() {
    let (telemetry, _rx) = crate::endpoint::Telemetry::new("ci", Duration::from_secs(10), None);
    let (reports, mut read) = tokio::sync::watch::channel::<Option<Arc<TickReport>>>(None);
    // The endpoint reads the reconciler's report channel (here at once after each tick).
    let mut feed = |t: &crate::endpoint::Telemetry| {
        if let Some(r) = read.borrow_and_update().clone() {
            t.record(&r);
        }
    };
    let mut s = scenario(&CONFIG);
    s.reconciler = reconciler(&CONFIG, s.gitlab.clone(), s.cloud.clone()).with_reports(reports);
    s.cloud.fail_next_list(cloud_error(
        CloudErrorKind::Auth,
        "POST identity /auth/tokens: 401 Unauthorized",
    ));
    let err = s.reconciler.tick().await.unwrap_err();
    feed(&telemetry);
    assert_eq!(err.kind, FailureKind::Auth);
    let status = telemetry.status();
    assert_eq!(status.openstack_error_kind.as_deref(), Some("auth"));
    assert!(
        status
            .openstack_error
            .as_deref()
            .is_some_and(|e| e.contains("401")),
        "{status:?}"
    );
    let text = telemetry.metrics_text();
    assert!(
        text.contains(r#"autoscaler_tick_failures_total{service="openstack",kind="auth"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"autoscaler_api_up{service="openstack"} 0"#),
        "{text}"
    );
    // The operator fixed the credentials.
    tokio::time::advance(Duration::from_secs(10)).await;
    s.reconciler.tick().await.unwrap();
    feed(&telemetry);
    let status = telemetry.status();
    assert_eq!(status.openstack_error_kind, None);
    assert_eq!(status.openstack_error, None);

    s.gitlab.fail_next(
        Op::OwnedRunners,
        autoscaler_core::ports::GitLabError::Auth {
            status: 403,
            what: "runners".into(),
        },
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = s.reconciler.tick().await.unwrap();
    feed(&telemetry);
    assert_eq!(t.gitlab_down.unwrap().kind, FailureKind::Auth);
    assert_eq!(
        telemetry.status().gitlab_error_kind.as_deref(),
        Some("auth")
    );
    assert!(
        telemetry
            .metrics_text()
            .contains(r#"autoscaler_tick_failures_total{service="gitlab",kind="auth"} 1"#)
    );
}

/// Fails on the code before issue 12: a create refused for its credentials counted as a
/// failure of the pool, so creates backed off (and five of them opened the breaker for
/// 15 minutes) after the credentials were fixed.
#[tokio::test(start_paused = true)]
async fn a_create_refused_for_credentials_is_not_a_pool_failure() {
    let mut s = scenario(&CONFIG);
    s.warm_up().await;
    s.gitlab.add_job(&["docker"], Duration::from_secs(60));
    s.cloud
        .fail_next_create(cloud_error(CloudErrorKind::Auth, "401 Unauthorized"));
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.failures.len(), 1, "{t:?}");
    assert!(s.gitlab.runner_ids().is_empty(), "its runner is removed");
    assert!(s.reconciler.state.memory.failures.is_empty());
    // Fixed: the next tick creates, without a backoff.
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = s.reconciler.tick().await.unwrap();
    assert_eq!(t.planned.get("create"), Some(&1), "{t:?}");
    assert_eq!(s.servers(), 1);
}

/// Fails on the code before issue 12: a flavor gone counted as boot failures, and after
/// five the circuit breaker blocked the pool for 15 minutes, long after the flavor was back.
#[tokio::test(start_paused = true)]
async fn a_misconfigured_create_holds_the_pool_at_a_steady_pace_without_the_breaker() {
    let mut s = scenario(&CONFIG);
    s.warm_up().await;
    s.gitlab.add_job(&["docker"], Duration::from_secs(600));
    for _ in 0..6 {
        s.cloud.fail_next_create(cloud_error(
            CloudErrorKind::Misconfigured,
            "flavor \"s1.large\" not found",
        ));
    }
    let ticks = s
        .run_for(Duration::from_secs(4 * 60), Duration::from_secs(10))
        .await;
    let failed = ticks.iter().filter(|t| !t.failures.is_empty()).count();
    assert_eq!(failed, 6, "one try per base backoff (30 s)");
    assert_eq!(s.servers(), 1, "created once the flavor is back");
    let plan = s.reconciler.last_plan.clone().unwrap();
    assert!(
        !plan
            .pool("docker")
            .unwrap()
            .caps
            .iter()
            .any(|c| matches!(c, autoscaler_core::plan::Cap::CircuitOpen(_))),
        "{plan:?}"
    );
    assert!(
        s.reconciler
            .state
            .memory
            .failures
            .get("docker")
            .is_none_or(|f| f.consecutive <= 1)
    );
}
