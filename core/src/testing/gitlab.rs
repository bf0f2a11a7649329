//! [`FakeGitLab`]: the in-memory [`GitLab`] face of the fake GitLab world
//! ([`autoscaler_world::gitlab::World`]), for fast reconciler tests.
//!
//! The world holds GitLab's rules, the same ones the HTTP fake serves: jobs stay pending
//! until a runner whose VM has booted ([`FakeGitLab::runner_booted`]) and that is not
//! paused picks them up (tags must be a subset of the runner's, untagged jobs need
//! `run_untagged`); a job finishes after its duration; deleting a runner that runs a job
//! kills the job ([`FakeGitLab::killed_jobs`]). This face adds what the port does: only
//! runners with this controller's description prefix and maintenance-note marker are
//! listed, delete of a missing runner is `Ok`, a description without the prefix is refused.
//! Failures and latency are scripted here. The world's clock is virtual: it starts at
//! 2025-01-01T00:00:00Z and advances with `tokio::time` (paused-time tests).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoscaler_world::gitlab::{Clock, Job, Runner, World};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::model::{JobArrival, PendingJob, RunnerId};
use crate::ports::{
    ControllerId, CreateRunner, GitLab, GitLabError, GitLabResult, NewRunner, OwnedRunner,
    runner_maintenance_note, runner_ownership,
};

/// Which port call a scripted failure applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// [`GitLab::pending_jobs`].
    PendingJobs,
    /// [`GitLab::owned_runners`].
    OwnedRunners,
    /// [`GitLab::create_runner`].
    CreateRunner,
    /// [`GitLab::set_paused`].
    SetPaused,
    /// [`GitLab::running_jobs`].
    RunningJobs,
    /// [`GitLab::delete_runner`].
    DeleteRunner,
    /// [`GitLab::runner_by_id`].
    RunnerById,
}

/// State of one fake job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeJobState {
    /// Waiting for a runner.
    Pending,
    /// Running on this runner.
    Running(RunnerId),
    /// Finished on this runner.
    Done(RunnerId),
    /// Its runner was deleted while it ran.
    Killed(RunnerId),
}

/// One fake job, as the world has it now.
#[derive(Debug, Clone)]
pub struct FakeJob {
    /// Job id.
    pub id: u64,
    /// Job tags.
    pub tags: BTreeSet<String>,
    /// How long it runs once picked up.
    pub duration: Duration,
    /// Where it is.
    pub state: FakeJobState,
}

impl From<&Job> for FakeJob {
    fn from(j: &Job) -> Self {
        let runner = j.runner.unwrap_or_default();
        let state = match j.status.as_str() {
            _ if j.killed => FakeJobState::Killed(runner),
            "running" => FakeJobState::Running(runner),
            "success" => FakeJobState::Done(runner),
            _ => FakeJobState::Pending,
        };
        FakeJob {
            id: j.id,
            tags: j.tags.clone(),
            duration: j.duration,
            state,
        }
    }
}

/// The world and this face's scripting.
struct State {
    controller: ControllerId,
    world: World,
    latency: Duration,
    failures: BTreeMap<Op, VecDeque<GitLabError>>,
    creates: u64,
    deletes: u64,
}

/// An in-memory GitLab. Clones share state.
#[derive(Clone)]
pub struct FakeGitLab {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeGitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeGitLab")
            .field("controller", &s.controller)
            .field("jobs", &s.world.jobs.len())
            .field("runners", &s.world.runners.len())
            .finish_non_exhaustive()
    }
}

/// A request for an instance runner of pool `docker` described as `description`, with
/// `tags` (untagged jobs only when there is no tag), no timeout: what a controller sends.
pub fn runner_request(description: &str, tags: &[&str]) -> CreateRunner {
    CreateRunner {
        scope: crate::ports::RunnerScope::Instance,
        description: description.into(),
        pool: "docker".into(),
        tags: tags.iter().map(|t| (*t).to_string()).collect(),
        run_untagged: tags.is_empty(),
        ref_protected: false,
        locked: false,
        maximum_timeout: None,
    }
}

// === impl FakeGitLab ===

impl FakeGitLab {
    /// An empty GitLab for `controller`; timestamps start at 2025-01-01T00:00:00Z and
    /// advance with `tokio::time`. Each runner runs one job at a time.
    pub fn new(controller: ControllerId) -> Self {
        let epoch = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let clock = Clock::Virtual {
            epoch,
            start: Instant::now(),
        };
        FakeGitLab {
            state: Arc::new(Mutex::new(State {
                controller,
                world: World::new(clock),
                latency: Duration::ZERO,
                failures: BTreeMap::new(),
                creates: 0,
                deletes: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Concurrent jobs per runner (default 1).
    pub fn set_capacity(&self, capacity: u32) {
        self.lock().world.capacity = capacity.max(1) as usize;
    }

    /// Latency added to every port call.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Queues a pending job with these tags that runs for `duration`; returns its id.
    pub fn add_job(&self, tags: &[&str], duration: Duration) -> u64 {
        let tags = tags.iter().map(|t| (*t).to_string()).collect();
        self.lock().world.add_job(0, tags, duration)
    }

    /// The VM of runner `id` has booted: its gitlab-runner starts polling for jobs.
    pub fn runner_booted(&self, id: RunnerId) {
        self.lock().world.set_booted(id, true);
    }

    /// The VM of runner `id` is gone: its gitlab-runner stops contacting GitLab.
    pub fn runner_vanished(&self, id: RunnerId) {
        self.lock().world.set_booted(id, false);
    }

    /// Adds a runner this controller did not create (wrong prefix or marker).
    pub fn add_foreign_runner(&self, description: &str, maintenance_note: &str) -> RunnerId {
        let runner = Runner::new(description, maintenance_note);
        self.lock().world.register_runner(runner).0
    }

    /// The next call of `op` fails with `err` (queued: several calls fail in order).
    pub fn fail_next(&self, op: Op, err: GitLabError) {
        self.lock().failures.entry(op).or_default().push_back(err);
    }

    /// Jobs killed because their runner was deleted while they ran.
    pub fn killed_jobs(&self) -> Vec<u64> {
        let mut s = self.lock();
        s.world.advance();
        s.world
            .jobs
            .values()
            .filter(|j| j.killed)
            .map(|j| j.id)
            .collect()
    }

    /// Every job as it is now.
    pub fn jobs(&self) -> Vec<FakeJob> {
        let mut s = self.lock();
        s.world.advance();
        s.world.jobs.values().map(FakeJob::from).collect()
    }

    /// Ids of all runners (owned or not) that exist.
    pub fn runner_ids(&self) -> Vec<RunnerId> {
        self.lock().world.runners.keys().copied().collect()
    }

    /// Whether runner `id` exists and is paused.
    pub fn is_paused(&self, id: RunnerId) -> Option<bool> {
        self.lock().world.runners.get(&id).map(|r| r.paused)
    }

    /// Successful creates and deletes so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.creates, s.deletes)
    }

    /// Latency, then a scripted failure if one is queued for `op`; brings the world to now.
    async fn enter(&self, op: Op) -> GitLabResult<MutexGuard<'_, State>> {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut s = self.lock();
        s.world.advance();
        if let Some(e) = s.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            return Err(e);
        }
        Ok(s)
    }
}

impl State {
    /// Runner `r` as the port reports it, in `pool`.
    fn owned(&self, r: &Runner, pool: Option<String>) -> OwnedRunner {
        let running: Vec<JobArrival> = self
            .world
            .running_on(r.id)
            .map(|j| JobArrival {
                id: j.id,
                queued_since: j.queued_at,
            })
            .collect();
        let (jobs_run, last_job_at) = self.world.job_history(r.id);
        OwnedRunner {
            id: r.id,
            description: r.description.clone(),
            pool,
            paused: r.paused,
            created_at: r.created_at,
            contacted_at: r.contacted_at,
            running_jobs: running.len() as u32,
            jobs_run,
            last_job_at,
            running,
        }
    }

    fn not_found(id: RunnerId) -> GitLabError {
        GitLabError::NotFound {
            what: format!("runner {id}"),
        }
    }
}

impl GitLab for FakeGitLab {
    async fn pending_jobs(&self) -> GitLabResult<Vec<PendingJob>> {
        let s = self.enter(Op::PendingJobs).await?;
        Ok(s.world
            .jobs
            .values()
            .filter(|j| j.status == "pending")
            .map(|j| PendingJob {
                id: j.id,
                tags: j.tags.clone(),
                queued_since: j.queued_at,
            })
            .collect())
    }

    async fn owned_runners(&self) -> GitLabResult<Vec<OwnedRunner>> {
        let s = self.enter(Op::OwnedRunners).await?;
        Ok(s.world
            .runners
            .values()
            .filter_map(|r| {
                let pool =
                    runner_ownership(&s.controller, &r.description, Some(&r.maintenance_note))?;
                Some(s.owned(r, pool))
            })
            .collect())
    }

    async fn runner_by_id(&self, id: RunnerId) -> GitLabResult<Option<OwnedRunner>> {
        let s = self.enter(Op::RunnerById).await?;
        Ok(s.world.runners.get(&id).map(|r| {
            let pool = runner_ownership(&s.controller, &r.description, Some(&r.maintenance_note))
                .flatten();
            s.owned(r, pool)
        }))
    }

    async fn create_runner(&self, req: CreateRunner) -> GitLabResult<NewRunner> {
        let mut s = self.enter(Op::CreateRunner).await?;
        let prefix = format!("{}-", s.controller);
        if !req.description.starts_with(&prefix) {
            return Err(GitLabError::Misconfigured {
                message: format!(
                    "runner description {:?} must start with {prefix:?}",
                    req.description
                ),
            });
        }
        s.creates += 1;
        let note = runner_maintenance_note(&s.controller, &req.pool);
        let runner = Runner {
            tags: req.tags,
            run_untagged: req.run_untagged,
            locked: req.locked,
            access_level: if req.ref_protected {
                "ref_protected"
            } else {
                "not_protected"
            }
            .into(),
            maximum_timeout: req.maximum_timeout,
            ..Runner::new(req.description, note)
        };
        let (id, token) = s.world.register_runner(runner);
        Ok(NewRunner {
            id,
            token: SecretString::from(token),
        })
    }

    async fn set_paused(&self, id: RunnerId, paused: bool) -> GitLabResult<()> {
        let mut s = self.enter(Op::SetPaused).await?;
        let r = s
            .world
            .runners
            .get_mut(&id)
            .ok_or_else(|| State::not_found(id))?;
        r.paused = paused;
        Ok(())
    }

    async fn running_jobs(&self, id: RunnerId) -> GitLabResult<u32> {
        let s = self.enter(Op::RunningJobs).await?;
        if !s.world.runners.contains_key(&id) {
            return Err(State::not_found(id));
        }
        Ok(s.world.running_on(id).count() as u32)
    }

    async fn delete_runner(&self, id: RunnerId) -> GitLabResult<()> {
        let mut s = self.enter(Op::DeleteRunner).await?;
        if s.world.delete_runner(id) {
            s.deletes += 1;
        }
        Ok(())
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fake() -> FakeGitLab {
        FakeGitLab::new(ControllerId::new("ctl").unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_stay_pending_until_a_matching_runner_has_booted() {
        let g = fake();
        let job = g.add_job(&["docker"], Duration::from_secs(60));
        let r = g
            .create_runner(runner_request("ctl-docker-1", &["docker"]))
            .await
            .unwrap();
        assert_eq!(g.pending_jobs().await.unwrap().len(), 1);
        g.runner_booted(r.id);
        assert!(g.pending_jobs().await.unwrap().is_empty());
        let owned = g.owned_runners().await.unwrap();
        assert_eq!(owned[0].running_jobs, 1);
        assert_eq!(owned[0].pool.as_deref(), Some("docker"));
        tokio::time::advance(Duration::from_secs(61)).await;
        let owned = g.owned_runners().await.unwrap();
        assert_eq!((owned[0].running_jobs, owned[0].jobs_run), (0, 1));
        assert!(
            matches!(g.jobs()[0].state, FakeJobState::Done(id) if id == r.id),
            "{job}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn paused_runners_and_unmatched_tags_take_no_job() {
        let g = fake();
        g.add_job(&["arm64"], Duration::from_secs(60));
        let r = g
            .create_runner(runner_request("ctl-docker-1", &["docker"]))
            .await
            .unwrap();
        g.runner_booted(r.id);
        assert_eq!(g.pending_jobs().await.unwrap().len(), 1);
        g.set_paused(r.id, true).await.unwrap();
        g.add_job(&["docker"], Duration::from_secs(60));
        assert_eq!(g.pending_jobs().await.unwrap().len(), 2);
        g.set_paused(r.id, false).await.unwrap();
        assert_eq!(g.pending_jobs().await.unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deleting_a_busy_runner_kills_its_job_and_a_second_delete_is_ok() {
        let g = fake();
        let job = g.add_job(&[], Duration::from_secs(600));
        let r = g
            .create_runner(runner_request("ctl-docker-1", &[]))
            .await
            .unwrap();
        g.runner_booted(r.id);
        assert_eq!(g.running_jobs(r.id).await.unwrap(), 1);
        g.delete_runner(r.id).await.unwrap();
        g.delete_runner(r.id).await.unwrap();
        assert_eq!(g.killed_jobs(), vec![job]);
        assert_eq!(g.counts(), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn foreign_runners_are_not_listed_and_failures_are_scripted() {
        let g = fake();
        g.add_foreign_runner("ctl-docker-9", "hand made");
        g.add_foreign_runner(
            "other-1",
            &runner_maintenance_note(&ControllerId::new("ctl").unwrap(), "x"),
        );
        assert!(g.owned_runners().await.unwrap().is_empty());
        g.fail_next(
            Op::PendingJobs,
            GitLabError::Server {
                status: 502,
                what: "jobs".into(),
            },
        );
        assert!(g.pending_jobs().await.unwrap_err().is_transient());
        assert!(g.pending_jobs().await.is_ok());
    }

    #[test]
    fn new_runner_tokens_are_not_in_debug_output() {
        let r = NewRunner {
            id: 1,
            token: SecretString::from("glrt-fake1"),
        };
        assert!(!format!("{r:?}").contains("glrt-fake1"));
    }
}
