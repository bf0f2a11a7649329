//! [`FakeGitLab`]: an in-memory [`GitLab`] for fast reconciler tests.
//!
//! It behaves like GitLab where the reconciler can tell: jobs stay pending until a runner
//! whose VM has booted ([`FakeGitLab::runner_booted`]) and that is not paused picks them
//! up (tags must be a subset of the runner's, untagged jobs need `run_untagged`); a job
//! finishes after its duration; deleting a runner that runs a job records the job as
//! killed ([`FakeGitLab::killed_jobs`]); delete of a missing runner is `Ok`; only runners
//! with this controller's description prefix and maintenance-note marker are listed.
//! Failures and latency are scripted. Time comes from `tokio::time` (paused-time tests).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::model::{PendingJob, RunnerId};
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

/// One fake job.
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
    created: DateTime<Utc>,
    started: Option<Instant>,
}

#[derive(Debug, Clone)]
struct FakeRunner {
    id: RunnerId,
    description: String,
    note: String,
    tags: BTreeSet<String>,
    run_untagged: bool,
    paused: bool,
    created_at: DateTime<Utc>,
    contacted_at: Option<DateTime<Utc>>,
    booted: bool,
    jobs_run: u32,
    last_job_at: Option<DateTime<Utc>>,
}

struct State {
    controller: ControllerId,
    epoch: DateTime<Utc>,
    started: Instant,
    next_job: u64,
    next_runner: RunnerId,
    jobs: BTreeMap<u64, FakeJob>,
    runners: BTreeMap<RunnerId, FakeRunner>,
    capacity: u32,
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
            .field("jobs", &s.jobs.len())
            .field("runners", &s.runners.len())
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
        FakeGitLab {
            state: Arc::new(Mutex::new(State {
                controller,
                epoch,
                started: Instant::now(),
                next_job: 1,
                next_runner: 1,
                jobs: BTreeMap::new(),
                runners: BTreeMap::new(),
                capacity: 1,
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
        self.lock().capacity = capacity.max(1);
    }

    /// Latency added to every port call.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Queues a pending job with these tags that runs for `duration`; returns its id.
    pub fn add_job(&self, tags: &[&str], duration: Duration) -> u64 {
        let mut s = self.lock();
        let id = s.next_job;
        s.next_job += 1;
        let created = s.wall(Instant::now());
        s.jobs.insert(
            id,
            FakeJob {
                id,
                tags: tags.iter().map(|t| (*t).to_string()).collect(),
                duration,
                state: FakeJobState::Pending,
                created,
                started: None,
            },
        );
        id
    }

    /// The VM of runner `id` has booted: its gitlab-runner starts polling for jobs.
    pub fn runner_booted(&self, id: RunnerId) {
        let mut s = self.lock();
        if let Some(r) = s.runners.get_mut(&id) {
            r.booted = true;
        }
        s.advance(Instant::now());
    }

    /// The VM of runner `id` is gone: its gitlab-runner stops contacting GitLab.
    pub fn runner_vanished(&self, id: RunnerId) {
        if let Some(r) = self.lock().runners.get_mut(&id) {
            r.booted = false;
        }
    }

    /// Adds a runner this controller did not create (wrong prefix or marker).
    pub fn add_foreign_runner(&self, description: &str, maintenance_note: &str) -> RunnerId {
        self.lock().insert_runner(
            description.into(),
            maintenance_note.into(),
            BTreeSet::new(),
            true,
        )
    }

    /// The next call of `op` fails with `err` (queued: several calls fail in order).
    pub fn fail_next(&self, op: Op, err: GitLabError) {
        self.lock().failures.entry(op).or_default().push_back(err);
    }

    /// Jobs killed because their runner was deleted while they ran.
    pub fn killed_jobs(&self) -> Vec<u64> {
        let mut s = self.lock();
        s.advance(Instant::now());
        s.jobs
            .values()
            .filter(|j| matches!(j.state, FakeJobState::Killed(_)))
            .map(|j| j.id)
            .collect()
    }

    /// Every job as it is now.
    pub fn jobs(&self) -> Vec<FakeJob> {
        let mut s = self.lock();
        s.advance(Instant::now());
        s.jobs.values().cloned().collect()
    }

    /// Ids of all runners (owned or not) that exist.
    pub fn runner_ids(&self) -> Vec<RunnerId> {
        self.lock().runners.keys().copied().collect()
    }

    /// Whether runner `id` exists and is paused.
    pub fn is_paused(&self, id: RunnerId) -> Option<bool> {
        self.lock().runners.get(&id).map(|r| r.paused)
    }

    /// Successful creates and deletes so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.creates, s.deletes)
    }

    /// Latency, then a scripted failure if one is queued for `op`; brings the world to now.
    async fn enter(&self, op: Op) -> GitLabResult<()> {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut s = self.lock();
        s.advance(Instant::now());
        if let Some(e) = s.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            return Err(e);
        }
        Ok(())
    }
}

impl State {
    fn wall(&self, now: Instant) -> DateTime<Utc> {
        let d = now.saturating_duration_since(self.started);
        self.epoch + chrono::Duration::from_std(d).unwrap_or_default()
    }

    /// Finishes jobs whose time is up, lets booted runners contact GitLab and pick up jobs.
    fn advance(&mut self, now: Instant) {
        let wall = self.wall(now);
        for job in self.jobs.values_mut() {
            if let (FakeJobState::Running(r), Some(start)) = (&job.state, job.started) {
                if now.saturating_duration_since(start) >= job.duration {
                    let r = *r;
                    let end = self.epoch
                        + chrono::Duration::from_std(
                            (start + job.duration).saturating_duration_since(self.started),
                        )
                        .unwrap_or_default();
                    job.state = FakeJobState::Done(r);
                    if let Some(runner) = self.runners.get_mut(&r) {
                        runner.last_job_at = runner.last_job_at.max(Some(end));
                    }
                }
            }
        }
        let ids: Vec<RunnerId> = self.runners.keys().copied().collect();
        for id in ids {
            let Some(runner) = self.runners.get_mut(&id) else {
                continue;
            };
            if !runner.booted {
                continue;
            }
            runner.contacted_at = Some(wall);
            if runner.paused {
                continue;
            }
            let runner = runner.clone();
            let mut busy = self
                .jobs
                .values()
                .filter(|j| j.state == FakeJobState::Running(id))
                .count() as u32;
            for job in self.jobs.values_mut() {
                if busy >= self.capacity {
                    break;
                }
                let fits = if job.tags.is_empty() {
                    runner.run_untagged
                } else {
                    job.tags.is_subset(&runner.tags)
                };
                if job.state == FakeJobState::Pending && fits {
                    job.state = FakeJobState::Running(id);
                    job.started = Some(now);
                    busy += 1;
                    if let Some(r) = self.runners.get_mut(&id) {
                        r.jobs_run += 1;
                        r.last_job_at = Some(wall);
                    }
                }
            }
        }
    }

    /// Registers a new runner (not booted, no job run yet); returns its id.
    fn insert_runner(
        &mut self,
        description: String,
        note: String,
        tags: BTreeSet<String>,
        run_untagged: bool,
    ) -> RunnerId {
        let id = self.next_runner;
        self.next_runner += 1;
        let created_at = self.wall(Instant::now());
        self.runners.insert(
            id,
            FakeRunner {
                id,
                description,
                note,
                tags,
                run_untagged,
                paused: false,
                created_at,
                contacted_at: None,
                booted: false,
                jobs_run: 0,
                last_job_at: None,
            },
        );
        id
    }

    /// Runner `r` as the port reports it, in `pool`.
    fn owned(&self, r: &FakeRunner, pool: Option<String>) -> OwnedRunner {
        let running = self.arrivals_on(r.id);
        OwnedRunner {
            id: r.id,
            description: r.description.clone(),
            pool,
            paused: r.paused,
            created_at: r.created_at,
            contacted_at: r.contacted_at,
            running_jobs: running.len() as u32,
            jobs_run: r.jobs_run,
            last_job_at: r.last_job_at,
            running,
        }
    }

    fn running_on(&self, id: RunnerId) -> u32 {
        self.arrivals_on(id).len() as u32
    }

    fn arrivals_on(&self, id: RunnerId) -> Vec<crate::model::JobArrival> {
        self.jobs
            .values()
            .filter(|j| j.state == FakeJobState::Running(id))
            .map(|j| crate::model::JobArrival {
                id: j.id,
                queued_since: j.created,
            })
            .collect()
    }
}

impl GitLab for FakeGitLab {
    async fn pending_jobs(&self) -> GitLabResult<Vec<PendingJob>> {
        self.enter(Op::PendingJobs).await?;
        let s = self.lock();
        Ok(s.jobs
            .values()
            .filter(|j| j.state == FakeJobState::Pending)
            .map(|j| PendingJob {
                id: j.id,
                tags: j.tags.clone(),
                queued_since: j.created,
            })
            .collect())
    }

    async fn owned_runners(&self) -> GitLabResult<Vec<OwnedRunner>> {
        self.enter(Op::OwnedRunners).await?;
        let s = self.lock();
        Ok(s.runners
            .values()
            .filter_map(|r| {
                let pool = runner_ownership(&s.controller, &r.description, Some(&r.note))?;
                Some(s.owned(r, pool))
            })
            .collect())
    }

    async fn runner_by_id(&self, id: RunnerId) -> GitLabResult<Option<OwnedRunner>> {
        self.enter(Op::RunnerById).await?;
        let s = self.lock();
        Ok(s.runners.get(&id).map(|r| {
            let pool = runner_ownership(&s.controller, &r.description, Some(&r.note)).flatten();
            s.owned(r, pool)
        }))
    }

    async fn create_runner(&self, req: CreateRunner) -> GitLabResult<NewRunner> {
        self.enter(Op::CreateRunner).await?;
        let mut s = self.lock();
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
        let id = s.insert_runner(req.description, note, req.tags, req.run_untagged);
        Ok(NewRunner {
            id,
            token: SecretString::from(format!("glrt-fake{id:016}")),
        })
    }

    async fn set_paused(&self, id: RunnerId, paused: bool) -> GitLabResult<()> {
        self.enter(Op::SetPaused).await?;
        let mut s = self.lock();
        let r = s
            .runners
            .get_mut(&id)
            .ok_or_else(|| GitLabError::NotFound {
                what: format!("runner {id}"),
            })?;
        r.paused = paused;
        Ok(())
    }

    async fn running_jobs(&self, id: RunnerId) -> GitLabResult<u32> {
        self.enter(Op::RunningJobs).await?;
        let s = self.lock();
        if !s.runners.contains_key(&id) {
            return Err(GitLabError::NotFound {
                what: format!("runner {id}"),
            });
        }
        Ok(s.running_on(id))
    }

    async fn delete_runner(&self, id: RunnerId) -> GitLabResult<()> {
        self.enter(Op::DeleteRunner).await?;
        let mut s = self.lock();
        if s.runners.remove(&id).is_some() {
            s.deletes += 1;
            for job in s.jobs.values_mut() {
                if job.state == FakeJobState::Running(id) {
                    job.state = FakeJobState::Killed(id);
                }
            }
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
