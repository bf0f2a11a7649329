//! The fake's state and GitLab's rules over it: jobs, runners, projects, groups, statuses.
//!
//! No HTTP here. Job timing uses `tokio::time` (scenarios may pause time); timestamps are
//! the real wall clock plus a settable offset, so tests can age runners into `stale`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
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
    /// GitLab status: `pending`, `running`, `success`, or `canceled` when killed.
    pub status: String,
    /// Runner that picked it up.
    pub runner: Option<u64>,
    /// Its runner was deleted while it ran.
    pub killed: bool,
    pub(crate) created_at: DateTime<Utc>,
    /// When it became pending (`queued_at`); later than `created_at` for a job that waited
    /// for an earlier stage.
    pub(crate) queued_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) started: Option<Instant>,
}

/// One runner.
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

/// Everything the fake knows.
#[derive(Debug)]
pub struct World {
    pub(crate) next_id: u64,
    pub(crate) jobs: BTreeMap<u64, Job>,
    pub(crate) runners: BTreeMap<u64, Runner>,
    pub(crate) projects: BTreeMap<u64, Project>,
    pub(crate) groups: BTreeMap<u64, Group>,
    pub(crate) deleted_runners: BTreeSet<u64>,
    pub(crate) clock_offset: chrono::Duration,
    /// Set by [`crate::gitlab::FakeGitLabServer::freeze_clock`]: the wall clock stands still.
    pub(crate) frozen_at: Option<DateTime<Utc>>,
    pub(crate) capacity: usize,
}

impl Default for World {
    fn default() -> Self {
        World {
            next_id: 1,
            jobs: BTreeMap::new(),
            runners: BTreeMap::new(),
            projects: BTreeMap::new(),
            groups: BTreeMap::new(),
            deleted_runners: BTreeSet::new(),
            clock_offset: chrono::Duration::zero(),
            frozen_at: None,
            capacity: 1,
        }
    }
}

impl World {
    /// Wall-clock now of the fake.
    pub fn now(&self) -> DateTime<Utc> {
        self.frozen_at.unwrap_or_else(Utc::now) + self.clock_offset
    }

    pub(crate) fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Finishes jobs whose time is up; booted, unpaused runners contact GitLab and pick up
    /// pending jobs they can run.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let wall = self.now();
        for job in self.jobs.values_mut() {
            if job.status == "running" {
                if let Some(start) = job.started {
                    if now.saturating_duration_since(start) >= job.duration {
                        job.status = "success".into();
                        job.finished_at = Some(wall);
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
        for id in booted {
            while self.pick_job(id).is_some() {}
        }
    }

    /// Runner `id` asks for a job (runner protocol): marks contact, returns the job picked.
    pub fn pick_job(&mut self, id: u64) -> Option<u64> {
        let wall = self.now();
        let capacity = self.capacity;
        let runner = self.runners.get_mut(&id)?;
        runner.contacted_at = Some(wall);
        if runner.paused {
            return None;
        }
        let runner = runner.clone();
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
        job.started = Some(Instant::now());
        Some(job.id)
    }

    /// Deletes a runner (`DELETE /runners/:id`); a job it was running is killed.
    pub fn delete_runner(&mut self, id: u64) {
        if self.runners.remove(&id).is_none() {
            return;
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

    /// `Job` entity (JobBasic + `tag_list`, `runner`, `runner_manager`, `artifacts`...).
    pub fn job_json(&self, j: &Job) -> Value {
        let mut v = self.job_basic(j);
        v["tag_list"] = json!(j.tags);
        v["runner"] = match j.runner.and_then(|r| self.runners.get(&r)) {
            Some(r) => self.runner_json(r),
            None => Value::Null,
        };
        v["runner_manager"] = Value::Null;
        v["artifacts"] = json!([]);
        v["artifacts_expire_at"] = Value::Null;
        v["archived"] = json!(false);
        v
    }

    /// `JobBasicWithProject` entity (no `tag_list`, `runner`, `runner_manager`).
    pub fn job_with_project_json(&self, j: &Job) -> Value {
        let mut v = self.job_basic(j);
        let p = self.projects.get(&j.project);
        v["project"] = json!({
            "id": j.project,
            "name": p.map(|p| p.path.rsplit('/').next().unwrap_or_default().to_string()),
            "name_with_namespace": p.map(|p| p.path.replace('/', " / ")),
            "path": p.map(|p| p.path.rsplit('/').next().unwrap_or_default().to_string()),
            "path_with_namespace": p.map(|p| p.path.clone()),
            "created_at": j.created_at,
        });
        v
    }

    fn job_basic(&self, j: &Job) -> Value {
        let duration = match (j.started_at, j.finished_at) {
            (Some(s), Some(f)) => json!((f - s).num_milliseconds() as f64 / 1000.0),
            _ => Value::Null,
        };
        // `Ci::Build#queued_duration`: from `queued_at` until started (or now).
        let queued_end = j.started_at.unwrap_or_else(|| self.now());
        json!({
            "id": j.id,
            "status": j.status,
            "stage": "test",
            "name": format!("job-{}", j.id),
            "ref": "main",
            "tag": false,
            "coverage": null,
            "allow_failure": false,
            "created_at": j.created_at,
            "started_at": j.started_at,
            "finished_at": j.finished_at,
            "erased_at": null,
            "duration": duration,
            "queued_duration": (queued_end - j.queued_at).num_milliseconds() as f64 / 1000.0,
            "user": {"id": 1, "username": "root"},
            "commit": {"id": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd"},
            "pipeline": {"id": j.id, "project_id": j.project, "ref": "main",
                         "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd", "status": j.status},
            "web_url": format!("http://gitlab.fake/p/{}/-/jobs/{}", j.project, j.id),
            "project": {"ci_job_token_scope_enabled": false},
        })
    }

    /// `Runner` entity.
    pub fn runner_json(&self, r: &Runner) -> Value {
        let status = self.runner_status(r);
        let busy = self
            .jobs
            .values()
            .any(|j| j.status == "running" && j.runner == Some(r.id));
        json!({
            "id": r.id,
            "description": r.description,
            "ip_address": null,
            "active": !r.paused,
            "paused": r.paused,
            "is_shared": r.runner_type == "instance_type",
            "runner_type": r.runner_type,
            "name": "gitlab-runner",
            "online": status == "online",
            "created_at": r.created_at,
            "status": status,
            "job_execution_status": if busy { "active" } else { "idle" },
        })
    }

    /// `RunnerDetails` entity.
    pub fn runner_details_json(&self, r: &Runner) -> Value {
        let mut v = self.runner_json(r);
        v["tag_list"] = json!(r.tags);
        v["run_untagged"] = json!(r.run_untagged);
        v["locked"] = json!(r.locked);
        v["maximum_timeout"] = json!(r.maximum_timeout);
        v["access_level"] = json!(r.access_level);
        v["version"] = Value::Null;
        v["revision"] = Value::Null;
        v["platform"] = Value::Null;
        v["architecture"] = Value::Null;
        v["contacted_at"] = json!(r.contacted_at);
        v["maintenance_note"] = json!(r.maintenance_note);
        v["projects"] = json!([]);
        v["groups"] = json!([]);
        v
    }
}
