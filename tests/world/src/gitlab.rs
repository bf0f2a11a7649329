//! The fake GitLab's world: jobs, runners, projects, groups, and GitLab's rules over them
//! (which runner picks which job, when a job ends, what deleting a runner does, runner
//! statuses), as `docs/gitlab.md` has them.
//!
//! No HTTP and no ports here. Job timing uses `tokio::time` (tests may pause time); the
//! wall clock is a [`Clock`]: the real clock plus a settable offset (the HTTP fake, so
//! tests can age runners into `stale`), or a virtual one that starts at a fixed instant and
//! advances with `tokio::time` (the in-memory fake, deterministic per seed).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// `ONLINE_CONTACT_TIMEOUT` of `app/models/ci/runner.rb`.
pub const ONLINE_CONTACT_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// `STALE_TIMEOUT` (7 days in current GitLab).
pub const STALE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Build statuses GitLab accepts in `scope` (`CommitStatus::AVAILABLE_STATUSES`).
pub const AVAILABLE_STATUSES: [&str; 13] = [
    "created",
    "pending",
    "preparing",
    "running",
    "failed",
    "success",
    "canceled",
    "canceling",
    "skipped",
    "manual",
    "scheduled",
    "waiting_for_resource",
    "waiting_for_callback",
];

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id (global, increasing).
    pub id: u64,
    /// Project id.
    pub project: u64,
    /// Job tags.
    pub tags: BTreeSet<String>,
    /// How long it runs once picked up.
    pub duration: Duration,
    /// GitLab status: `pending`, `running`, `success`, or `failed` when killed.
    pub status: String,
    /// Runner that picked it up.
    pub runner: Option<u64>,
    /// Its runner was deleted while it ran.
    pub killed: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it became pending (`queued_at`); later than `created_at` for a job that waited
    /// for an earlier stage.
    pub queued_at: DateTime<Utc>,
    /// When a runner picked it up.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (`started_at` plus its duration, or when its runner was deleted).
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was picked up, on `tokio::time` (its duration counts from here).
    pub started: Option<Instant>,
}

/// One runner. [`Runner::new`] and struct update syntax describe one to register.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Runner id.
    pub id: u64,
    /// `glrt-` authentication token.
    pub token: String,
    /// `instance_type`, `group_type` or `project_type`.
    pub runner_type: String,
    /// Description.
    pub description: String,
    /// Maintenance note.
    pub maintenance_note: String,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Takes untagged jobs.
    pub run_untagged: bool,
    /// Paused.
    pub paused: bool,
    /// Locked.
    pub locked: bool,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    /// Maximum timeout, seconds.
    pub maximum_timeout: Option<u64>,
    /// Group or project owning it.
    pub owner_id: Option<u64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last contact.
    pub contacted_at: Option<DateTime<Utc>>,
    /// Its VM has booted: the fake polls for jobs on its behalf.
    pub booted: bool,
}

/// A project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Id.
    pub id: u64,
    /// Full path.
    pub path: String,
    /// Direct parent group.
    pub group: Option<u64>,
}

/// A group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Id.
    pub id: u64,
    /// Full path.
    pub path: String,
    /// Parent group.
    pub parent: Option<u64>,
}

/// The wall clock of a [`World`].
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The real clock plus `offset`, or `frozen` (plus `offset`) when set.
    Real {
        /// Added to the clock.
        offset: chrono::Duration,
        /// The clock stands still here.
        frozen: Option<DateTime<Utc>>,
    },
    /// `epoch` plus the `tokio::time` elapsed since `start`: deterministic in paused-time
    /// tests.
    Virtual {
        /// Wall time at `start`.
        epoch: DateTime<Utc>,
        /// When the clock started.
        start: Instant,
    },
}

impl Runner {
    /// An `instance_type` runner with GitLab's defaults (untagged jobs, not paused, not
    /// protected) described `description`, to register.
    pub fn new(description: impl Into<String>, maintenance_note: impl Into<String>) -> Self {
        Runner {
            id: 0,
            token: String::new(),
            runner_type: "instance_type".into(),
            description: description.into(),
            maintenance_note: maintenance_note.into(),
            tags: BTreeSet::new(),
            run_untagged: true,
            paused: false,
            locked: false,
            access_level: "not_protected".into(),
            maximum_timeout: None,
            owner_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            contacted_at: None,
            booted: false,
        }
    }
}

/// Everything the fake knows.
#[derive(Debug)]
pub struct World {
    /// The next id of any object (groups, projects, jobs and runners share one sequence).
    pub next_id: u64,
    /// Every job, by id.
    pub jobs: BTreeMap<u64, Job>,
    /// Every runner that exists, by id.
    pub runners: BTreeMap<u64, Runner>,
    /// Projects, by id.
    pub projects: BTreeMap<u64, Project>,
    /// Groups, by id.
    pub groups: BTreeMap<u64, Group>,
    /// Ids of deleted runners.
    pub deleted_runners: BTreeSet<u64>,
    /// The wall clock.
    pub clock: Clock,
    /// Concurrent jobs per runner.
    pub capacity: usize,
}

impl Default for World {
    /// An empty GitLab on the real clock.
    fn default() -> Self {
        World::new(Clock::Real {
            offset: chrono::Duration::zero(),
            frozen: None,
        })
    }
}

impl World {
    /// An empty GitLab on `clock`; each runner runs one job at a time.
    pub fn new(clock: Clock) -> Self {
        World {
            next_id: 1,
            jobs: BTreeMap::new(),
            runners: BTreeMap::new(),
            projects: BTreeMap::new(),
            groups: BTreeMap::new(),
            deleted_runners: BTreeSet::new(),
            clock,
            capacity: 1,
        }
    }

    /// Wall-clock now of the fake.
    pub fn now(&self) -> DateTime<Utc> {
        match self.clock {
            Clock::Real { offset, frozen } => frozen.unwrap_or_else(Utc::now) + offset,
            Clock::Virtual { epoch, start } => {
                let d = Instant::now().saturating_duration_since(start);
                epoch + chrono::Duration::from_std(d).unwrap_or_default()
            }
        }
    }

    /// Takes the next id.
    pub fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues a pending job in `project` with these tags, running `duration` once picked
    /// up; returns its id.
    pub fn add_job(&mut self, project: u64, tags: BTreeSet<String>, duration: Duration) -> u64 {
        let id = self.id();
        let created_at = self.now();
        self.jobs.insert(
            id,
            Job {
                id,
                project,
                tags,
                duration,
                status: "pending".into(),
                runner: None,
                killed: false,
                created_at,
                queued_at: created_at,
                started_at: None,
                finished_at: None,
                started: None,
            },
        );
        id
    }

    /// Registers `runner` (its id, token and creation time are given here; never
    /// contacted, VM not booted) with a new `glrt-` token; returns its id and token.
    pub fn register_runner(&mut self, runner: Runner) -> (u64, String) {
        let id = self.id();
        let token = format!(
            "glrt-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("fake-runner-{id:08}"))
        );
        self.insert_runner(id, token.clone(), runner);
        (id, token)
    }

    /// Adds `runner` as runner `id` with `token`, created now, never contacted.
    pub fn insert_runner(&mut self, id: u64, token: String, runner: Runner) {
        let runner = Runner {
            id,
            token,
            created_at: self.now(),
            contacted_at: None,
            booted: false,
            ..runner
        };
        self.runners.insert(id, runner);
    }

    /// The VM of runner `id` has booted (or is gone): while booted, its gitlab-runner
    /// contacts GitLab and picks up jobs it can run. Returns whether the runner exists.
    pub fn set_booted(&mut self, id: u64, booted: bool) -> bool {
        let Some(r) = self.runners.get_mut(&id) else {
            return false;
        };
        r.booted = booted;
        self.advance();
        true
    }

    /// The id of the runner authenticated by `token`.
    pub fn runner_by_token(&self, token: &str) -> Option<u64> {
        self.runners
            .values()
            .find(|r| r.token == token)
            .map(|r| r.id)
    }

    /// Jobs runner `id` is running now.
    pub fn running_on(&self, id: u64) -> impl Iterator<Item = &Job> {
        self.jobs
            .values()
            .filter(move |j| j.status == "running" && j.runner == Some(id))
    }

    /// How many jobs runner `id` has picked up, and the latest `started_at`/`finished_at`
    /// of its jobs (`last_job_at`).
    pub fn job_history(&self, id: u64) -> (u32, Option<DateTime<Utc>>) {
        self.jobs
            .values()
            .filter(|j| j.runner == Some(id))
            .fold((0, None), |(n, last), j| {
                (n + 1, last.max(j.started_at).max(j.finished_at))
            })
    }

    /// Finishes jobs whose time is up; booted, unpaused runners contact GitLab and pick up
    /// pending jobs they can run.
    pub fn advance(&mut self) {
        let now = Instant::now();
        for job in self.jobs.values_mut() {
            if job.status == "running" {
                if let (Some(start), Some(started_at)) = (job.started, job.started_at) {
                    if now.saturating_duration_since(start) >= job.duration {
                        job.status = "success".into();
                        job.finished_at = Some(
                            started_at
                                + chrono::Duration::from_std(job.duration).unwrap_or_default(),
                        );
                    }
                }
            }
        }
        let booted: Vec<u64> = self
            .runners
            .values()
            .filter(|r| r.booted)
            .map(|r| r.id)
            .collect();
        let wall = self.now();
        for id in booted {
            while self.pick_job_at(id, wall, now).is_some() {}
        }
    }

    /// Runner `id` asks for a job (runner protocol): marks contact, returns the job picked.
    pub fn pick_job(&mut self, id: u64) -> Option<u64> {
        self.pick_job_at(id, self.now(), Instant::now())
    }

    /// [`World::pick_job`] at wall time `wall`, `tokio::time` instant `now`.
    fn pick_job_at(&mut self, id: u64, wall: DateTime<Utc>, now: Instant) -> Option<u64> {
        let capacity = self.capacity;
        let runner = self.runners.get_mut(&id)?;
        runner.contacted_at = Some(wall);
        if runner.paused {
            return None;
        }
        let runner = &*runner;
        let busy = self
            .jobs
            .values()
            .filter(|j| j.status == "running" && j.runner == Some(id))
            .count();
        if busy >= capacity {
            return None;
        }
        let job = self.jobs.values_mut().find(|j| {
            j.status == "pending"
                && if j.tags.is_empty() {
                    runner.run_untagged
                } else {
                    j.tags.is_subset(&runner.tags)
                }
        })?;
        job.status = "running".into();
        job.runner = Some(id);
        job.started_at = Some(wall);
        job.started = Some(now);
        Some(job.id)
    }

    /// Deletes a runner (`DELETE /runners/:id`); a job it was running is killed (status
    /// `failed`). Returns whether the runner existed.
    pub fn delete_runner(&mut self, id: u64) -> bool {
        if self.runners.remove(&id).is_none() {
            return false;
        }
        self.deleted_runners.insert(id);
        let now = self.now();
        for j in self.jobs.values_mut() {
            if j.status == "running" && j.runner == Some(id) {
                j.status = "failed".into();
                j.killed = true;
                j.finished_at = Some(now);
            }
        }
        true
    }

    /// REST `status` of a runner (`deprecated_rest_status`): stale, then never_contacted,
    /// then online/offline when active, else paused.
    pub fn runner_status(&self, r: &Runner) -> &'static str {
        let now = self.now();
        let last = r.contacted_at.map_or(r.created_at, |c| c.max(r.created_at));
        let stale = chrono::Duration::from_std(STALE_TIMEOUT).unwrap_or_default();
        let online = chrono::Duration::from_std(ONLINE_CONTACT_TIMEOUT).unwrap_or_default();
        if last <= now - stale {
            "stale"
        } else if r.contacted_at.is_none() {
            "never_contacted"
        } else if !r.paused {
            if r.contacted_at.is_some_and(|c| c > now - online) {
                "online"
            } else {
                "offline"
            }
        } else {
            "paused"
        }
    }

    /// Projects of a group and all its subgroups.
    pub fn group_projects(&self, group: u64, subgroups: bool) -> Vec<&Project> {
        let mut groups = BTreeSet::from([group]);
        if subgroups {
            loop {
                let before = groups.len();
                for g in self.groups.values() {
                    if g.parent.is_some_and(|p| groups.contains(&p)) {
                        groups.insert(g.id);
                    }
                }
                if groups.len() == before {
                    break;
                }
            }
        }
        self.projects
            .values()
            .filter(|p| p.group.is_some_and(|g| groups.contains(&g)))
            .collect()
    }

    /// Finds a project by id or full path.
    pub fn project(&self, key: &str) -> Option<&Project> {
        match key.parse::<u64>() {
            Ok(id) => self.projects.get(&id),
            Err(_) => self.projects.values().find(|p| p.path == key),
        }
    }

    /// Finds a group by id or full path.
    pub fn group(&self, key: &str) -> Option<&Group> {
        match key.parse::<u64>() {
            Ok(id) => self.groups.get(&id),
            Err(_) => self.groups.values().find(|g| g.path == key),
        }
    }
}
