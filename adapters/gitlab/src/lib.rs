//! GitLab adapter: the [`GitLab`] port over GitLab's REST and GraphQL APIs.
//!
//! The `gitlab` crate's typed endpoints describe each request; [`http`] sends them with the
//! adapter's own client, which keeps the token on the configured origin and bounds bodies
//! ([`guard`]). Facts about the API it relies on are in `docs/gitlab.md`; the HTTP fake in
//! `autoscaler-fakes` is checked against them.
//!
//! * Pending jobs: per project `GET /projects/:id/jobs?scope[]=pending` with keyset
//!   pagination (`Link rel="next"`); groups expand to their projects (subgroups included),
//!   refreshed every [`GitLabSettings::group_refresh`]; instance-wide scope uses the admin
//!   GraphQL `jobs(statuses: [PENDING])`.
//! * Rate limits: the jobs-list budget per minute is never exceeded ([`schedule::Budget`]),
//!   busy projects are polled on every call and dormant ones back off
//!   ([`schedule::Cadence`]); a `429` blocks every request until its `Retry-After` passed.
//! * Runners: created with `POST /user/runners`, owned when the description starts with
//!   `<controller-id>-` and the maintenance note carries [`autoscaler_core::ports::RUNNER_MARKER`].
//!   Jobs run so far are counted incrementally ([`counter`]). Runner lists are offset-paged
//!   and checked ([`paging`]): truncated or inconsistent is an error, never a short list.
//! * Scope entries that cannot be read are skipped and reported ([`GitLab::skipped_scope`]).
//! * Read-only calls for the check plugin, which has no client of its own:
//!   [`GitLabAdapter::new`] (no startup probe), [`GitLabAdapter::runner_candidates`] and
//!   [`GitLabAdapter::runner_state`] (state from the list, ownership by the same rule),
//!   [`GitLabAdapter::queued_jobs`] (pending jobs with project and queue time).
//!
//! The token lives only inside the transport; no error, log line or `Debug` output of this
//! module contains one.
//!
//! It must not decide: which runners to create, pause or delete is the planner's job in
//! `autoscaler_core`; ownership is the core's rule (`runner_ownership`), applied here.

mod counter;
mod dto;
pub mod guard;
mod http;
pub mod paging;
mod schedule;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use ::http::Method;
use futures_util::{StreamExt, stream};
use gitlab::api::common::SortOrder;
use gitlab::api::groups::projects::GroupProjects;
use gitlab::api::projects::jobs::{JobScope, Jobs};
use gitlab::api::runners::{
    AllRunners, DeleteRunner, EditRunner, Runner, RunnerAccessLevel, RunnerJobStatus, RunnerJobs,
    RunnerJobsOrderBy, Runners,
};
use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use self::counter::{JobCounter, SeenJob};
use self::http::Transport;
use self::schedule::{Budget, Cadence};
use autoscaler_core::model::{JobArrival, PendingJob, RunnerId};
use autoscaler_core::ports::{
    ControllerId, CreateRunner, GitLab, GitLabError, GitLabResult, NewRunner, OwnedRunner,
    RunnerScope, ScopeProblem, runner_maintenance_note, runner_ownership,
};

/// Page size for every paged list (GitLab's maximum).
const PER_PAGE: u32 = 100;
/// Pages read at most per list, so a runaway listing cannot loop forever.
const MAX_PAGES: u32 = 100;

/// Everything the adapter needs besides the token.
#[derive(Debug, Clone)]
pub struct GitLabSettings {
    /// Instance URL (`http` is allowed for local fakes).
    pub url: Url,
    /// Which pending jobs are watched.
    pub scope: autoscaler_config::Scope,
    /// Owner of the runners: description prefix and maintenance-note marker.
    pub controller: ControllerId,
    /// List runners with the admin `GET /runners/all` (needed for instance runners, which
    /// `GET /runners` never shows) instead of `GET /runners`.
    pub list_all_runners: bool,
    /// Jobs-list requests allowed per minute (GitLab's `project_jobs_api_rate_limit`).
    pub jobs_per_minute: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// First re-poll delay of a project that had no pending job; doubles per quiet poll.
    pub quiet_base: Duration,
    /// Longest delay between two polls of a dormant project.
    pub dormant_interval: Duration,
    /// How often group membership (projects, subgroups) is re-read.
    pub group_refresh: Duration,
    /// How old a project's last good poll may be and still be reported.
    pub max_stale: Duration,
    /// Requests in flight at once while polling projects or reading runners.
    pub concurrency: usize,
    /// Connection attempts at startup (`GET /api/v4/user`).
    pub connect_attempts: u32,
    /// First wait between connection attempts; doubles up to one minute.
    pub connect_backoff: Duration,
    /// Largest response body read (bigger answers are an error naming the path).
    pub max_body: usize,
    /// Pages read at most per offset-paged list (runners, group projects): a list with more
    /// is an error (truncated), never a silently short list.
    pub max_list_pages: u32,
    /// Projects polled at most per `pending_jobs` call, least recently polled first, so a
    /// large scope costs a bounded time per tick and every project gets its turn.
    pub max_polls_per_call: usize,
}

impl GitLabSettings {
    /// Settings from the validated `[gitlab]` section with the defaults below:
    /// 600 jobs-list requests per minute, 30 s request timeout, dormant projects polled at
    /// least every 2 min, groups re-read every 10 min, results stale after 5 min, 8 requests
    /// in flight, 8 connection attempts starting 1 s apart, bodies up to 32 MiB, lists up to
    /// 100 pages (10,000 items), at most 200 projects polled per call.
    pub fn from_config(
        cfg: &autoscaler_config::GitLab,
        controller: ControllerId,
        list_all_runners: bool,
    ) -> Self {
        GitLabSettings {
            url: cfg.url.clone(),
            scope: cfg.scope.clone(),
            controller,
            list_all_runners,
            jobs_per_minute: 600,
            request_timeout: Duration::from_secs(30),
            quiet_base: Duration::from_secs(10),
            dormant_interval: Duration::from_secs(120),
            group_refresh: Duration::from_secs(600),
            max_stale: Duration::from_secs(300),
            concurrency: 8,
            connect_attempts: 8,
            connect_backoff: Duration::from_secs(1),
            max_body: guard::DEFAULT_MAX_BODY,
            max_list_pages: 100,
            max_polls_per_call: 200,
        }
    }
}

/// The GitLab adapter.
#[derive(Debug)]
pub struct GitLabAdapter {
    settings: GitLabSettings,
    transport: Transport,
    /// Polling state, held for the whole of one `pending_jobs` call.
    jobs: Mutex<JobsState>,
    /// Jobs-list requests of the last minute (shared by concurrent polls).
    budget: std::sync::Mutex<Budget>,
    /// Per-runner job counters, by runner id.
    counters: Mutex<HashMap<RunnerId, JobCounter>>,
    /// What was last read of each candidate runner, so a steady runner costs no request
    /// beyond the runner list (see [`GitLabAdapter::owned_runner`]).
    runner_cache: std::sync::Mutex<HashMap<RunnerId, CachedRunner>>,
    /// Scope entries skipped by the last `pending_jobs` call.
    skipped: std::sync::Mutex<Vec<ScopeProblem>>,
}

/// A job that starts and ends between two observations of a runner idle for longer than
/// [`ACTIVE_WINDOW`] shows in its job count at the latest this long after.
const HISTORY_REFRESH: Duration = Duration::from_secs(300);

/// A runner created, or last running a job, this recently has its job history read on
/// every call: a burst of short jobs (each shorter than a poll interval) is then counted at
/// once, so `max_builds` holds.
const ACTIVE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// The last reading of one runner.
#[derive(Debug, Clone)]
struct CachedRunner {
    /// `Some(pool)` when this controller owns it (`None`: someone else's, never read again).
    ownership: Option<Option<String>>,
    description: String,
    created_at: chrono::DateTime<chrono::Utc>,
    contacted_at: Option<chrono::DateTime<chrono::Utc>>,
    paused: bool,
    /// `job_execution_status` of the list when the job history was read.
    exec: Option<String>,
    /// Ids of the jobs it ran when the job history was read.
    running: Vec<JobArrival>,
    /// Totals from the job history and when they were read.
    totals: Option<(counter::Totals, Instant)>,
}

/// Polling state of the pending-jobs scope.
#[derive(Debug)]
struct JobsState {
    projects: BTreeMap<String, ProjectState>,
    groups: BTreeMap<String, GroupState>,
    /// When pending jobs were last asked for (the caller's poll rate).
    last_call: Option<Instant>,
}

/// Last good poll and cadence of one project (key: id or full path, as used in the URL).
#[derive(Debug)]
struct ProjectState {
    cadence: Cadence,
    last: Option<(Instant, Vec<QueuedJob>)>,
    /// Last poll attempt (good or not): the round-robin order.
    polled_at: Option<Instant>,
    /// Why the last poll failed (cleared by a good one), for `skipped_scope`.
    failure: Option<String>,
}

impl ProjectState {
    fn new() -> Self {
        ProjectState {
            cadence: Cadence::new(),
            last: None,
            polled_at: None,
            failure: None,
        }
    }
}

/// Expanded projects of one group.
#[derive(Debug)]
struct GroupState {
    read_at: Instant,
    projects: Vec<u64>,
}

/// How many requests one `pending_jobs` call made, for tests and debug logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Projects polled.
    pub polled: usize,
    /// Projects skipped because they were not due.
    pub not_due: usize,
    /// Projects skipped because the jobs-list budget was spent.
    pub over_budget: usize,
    /// Projects due but left for a later call ([`GitLabSettings::max_polls_per_call`]).
    pub deferred: usize,
}

/// A pending job as [`GitLabAdapter::queued_jobs`] reports it: the planner's
/// [`PendingJob`] plus its project and GitLab's own queue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// Job id.
    pub id: u64,
    /// Its project (`pipeline.project_id`, else the polled project when configured by id;
    /// GraphQL `project { id }`); `None` when GitLab did not say.
    pub project_id: Option<u64>,
    /// The job's tags.
    pub tags: BTreeSet<String>,
    /// When the job was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it entered the queue (GraphQL `queuedAt`); `None` from the REST list.
    pub queued_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How long it had been queued when GitLab answered (REST `queued_duration`).
    pub queued_for: Option<Duration>,
}

impl QueuedJob {
    /// The planner's view: queued since `queuedAt` when GitLab gave it, else since creation.
    pub fn pending(&self) -> PendingJob {
        PendingJob {
            id: self.id,
            tags: self.tags.clone(),
            queued_since: self.queued_at.unwrap_or(self.created_at),
        }
    }
}

/// A runner of the runner list whose description carries this controller's prefix: a
/// candidate, not yet known to be ours (see [`GitLabAdapter::runner_candidates`]).
#[derive(Debug, Clone)]
pub struct RunnerCandidate {
    /// Runner id.
    pub id: RunnerId,
    /// Description as listed.
    pub description: String,
    item: dto::Runner,
}

/// A runner this controller owns, as GitLab reports it now (see
/// [`GitLabAdapter::runner_state`]). State comes from the runner list; `contacted_at`
/// and the ownership marker from the runner's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerState {
    /// Runner id.
    pub id: RunnerId,
    /// Description (the server name).
    pub description: String,
    /// Pool from the maintenance note, if it names one.
    pub pool: Option<String>,
    /// REST `status` from the list: `online`, `offline`, `stale`, `never_contacted`, or
    /// `paused` (GitLab before 16 for paused runners); `None` when the list lacks it.
    pub status: Option<String>,
    /// `active` (running a job) or `idle` from the list; `None` on GitLab before 15.8.
    pub job_execution_status: Option<String>,
    /// Paused (parked or draining).
    pub paused: bool,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last contact (details only); `None` when never contacted.
    pub contacted_at: Option<chrono::DateTime<chrono::Utc>>,
}

// === impl GitLabAdapter ===

impl GitLabAdapter {
    /// Connects: checks the token with `GET /api/v4/user`, retrying transient failures with
    /// exponential backoff. Warns when the URL is plain `http://` to a non-loopback host.
    ///
    /// # Errors
    ///
    /// [`GitLabError::Misconfigured`] for an unusable URL or a redirect off its origin,
    /// [`GitLabError::Auth`] when the token is refused (not retried), or the last transient
    /// error after `connect_attempts` tries.
    pub async fn connect(settings: GitLabSettings, token: SecretString) -> GitLabResult<Self> {
        let adapter = Self::new(settings, &token)?;
        let transport = &adapter.transport;
        let settings = &adapter.settings;
        let user = transport.rest_url("user")?;
        let mut wait = settings.connect_backoff;
        let mut attempt = 1;
        loop {
            let err = match transport
                .send("current user", Method::GET, &user, None)
                .await
            {
                Ok(_) => break,
                Err(e) => e,
            };
            if !err.is_transient() || attempt >= settings.connect_attempts.max(1) {
                return Err(err);
            }
            tracing::warn!(attempt, error = %err, retry_in = ?wait, "gitlab not reachable yet");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
            attempt += 1;
        }
        Ok(adapter)
    }

    /// The adapter without the startup check of [`GitLabAdapter::connect`] (no request is
    /// sent): for one-shot readers such as the check plugin, whose first real request
    /// reports an unreachable GitLab or a refused token just as well. Warns when the URL is
    /// plain `http://` to a non-loopback host.
    ///
    /// # Errors
    ///
    /// [`GitLabError::Misconfigured`] for an unusable URL or token.
    pub fn new(settings: GitLabSettings, token: &SecretString) -> GitLabResult<Self> {
        let transport = Transport::new(
            &settings.url,
            token,
            settings.request_timeout,
            settings.max_body,
        )?;
        let budget = Budget::new(settings.jobs_per_minute, Duration::from_secs(60));
        let jobs = JobsState {
            projects: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_call: None,
        };
        Ok(GitLabAdapter {
            settings,
            transport,
            jobs: Mutex::new(jobs),
            budget: std::sync::Mutex::new(budget),
            counters: Mutex::new(HashMap::new()),
            runner_cache: std::sync::Mutex::new(HashMap::new()),
            skipped: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Makes a project due for polling on the next call (a job webhook named it).
    ///
    /// Projects configured by path are keyed by that path and their numeric id is not known
    /// here, so an id that matches no project makes every path-keyed project due instead (a
    /// nudge only moves polls forward; the jobs-list budget still bounds them).
    pub async fn nudge_project(&self, project_id: u64) {
        let mut st = self.jobs.lock().await;
        if let Some(p) = st.projects.get_mut(&project_id.to_string()) {
            p.cadence.nudge();
            return;
        }
        for (key, p) in &mut st.projects {
            if key.parse::<u64>().is_err() {
                p.cadence.nudge();
            }
        }
    }

    /// [`GitLab::pending_jobs`] with the poll statistics of this call.
    ///
    /// A scope entry that cannot be read (a group or project answering 403/404, a project
    /// failing with no recent good poll, projects not polled yet because the budget or the
    /// per-call cap is spent) is skipped and reported by [`GitLab::skipped_scope`]; the
    /// call fails only when nothing in the scope could be read, or the token is refused.
    ///
    /// # Errors
    ///
    /// As [`GitLab::pending_jobs`].
    pub async fn pending_jobs_with_stats(&self) -> GitLabResult<(Vec<PendingJob>, PollStats)> {
        let (jobs, stats) = self.queued_jobs_with_stats().await?;
        Ok((jobs.iter().map(QueuedJob::pending).collect(), stats))
    }

    /// The pending jobs of the scope with their project and queue time ([`QueuedJob`]),
    /// read exactly as [`GitLab::pending_jobs`] reads them (same requests, budget and
    /// skipped entries, see [`GitLab::skipped_scope`]). For readers that report jobs, such
    /// as the check plugin.
    ///
    /// # Errors
    ///
    /// As [`GitLab::pending_jobs`].
    pub async fn queued_jobs(&self) -> GitLabResult<Vec<QueuedJob>> {
        Ok(self.queued_jobs_with_stats().await?.0)
    }

    async fn queued_jobs_with_stats(&self) -> GitLabResult<(Vec<QueuedJob>, PollStats)> {
        if self.settings.scope.instance {
            let jobs = self.instance_pending().await;
            self.set_skipped(Vec::new());
            return Ok((jobs?, PollStats::default()));
        }
        let mut st = self.jobs.lock().await;
        let mut problems: Vec<ScopeProblem> = Vec::new();
        let mut first_error: Option<GitLabError> = None;
        let keys = match self
            .scope_projects(&mut st, &mut problems, &mut first_error)
            .await
        {
            Ok(keys) => keys,
            Err(e) => {
                self.set_skipped(problems);
                return Err(e);
            }
        };
        let mut stats = PollStats::default();
        let now = Instant::now();
        // When polling every project at the caller's rate fits in 80 % of the jobs-list
        // budget, every project is polled on every call (a new job is seen within one poll
        // interval); otherwise quiet projects back off (their cadence) to stay in budget.
        #[allow(clippy::cast_precision_loss)]
        let poll_all = st.last_call.is_some_and(|prev| {
            let secs = now.saturating_duration_since(prev).as_secs_f64().max(1.0);
            keys.len() as f64 * 60.0 / secs <= f64::from(self.settings.jobs_per_minute) * 0.8
        });
        st.last_call = Some(now);
        let mut due: Vec<String> = Vec::new();
        for key in &keys {
            let state = st
                .projects
                .entry(key.clone())
                .or_insert_with(ProjectState::new);
            if poll_all || state.cadence.is_due(now) {
                due.push(key.clone());
            } else {
                stats.not_due += 1;
            }
        }
        // Round-robin: least recently polled first (never polled before all others), so a
        // spent budget or the per-call cap delays the projects polled most recently.
        due.sort_by_key(|k| st.projects.get(k).and_then(|p| p.polled_at));
        let cap = self.settings.max_polls_per_call.max(1);
        if due.len() > cap {
            stats.deferred = due.len() - cap;
            due.truncate(cap);
        }
        let results: Vec<(String, GitLabResult<Vec<QueuedJob>>)> = stream::iter(due)
            .map(|key| async move {
                let result = self.poll_project(&key).await;
                (key, result)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut fatal: Option<GitLabError> = None;
        for (key, result) in results {
            let state = st
                .projects
                .entry(key.clone())
                .or_insert_with(ProjectState::new);
            let at = Instant::now();
            match result {
                Ok(jobs) => {
                    stats.polled += 1;
                    state.cadence.polled(
                        at,
                        jobs.len(),
                        self.settings.quiet_base,
                        self.settings.dormant_interval,
                    );
                    state.polled_at = Some(at);
                    state.failure = None;
                    state.last = Some((at, jobs));
                }
                Err(GitLabError::BudgetSpent { .. }) => stats.over_budget += 1,
                Err(e) => {
                    state.polled_at = Some(at);
                    state.failure = Some(e.to_string());
                    if is_token_refused(&e) {
                        fatal.get_or_insert(e);
                    } else if is_entry_problem(&e) {
                        // Deleted or out of reach: no job we could run there. Polled again
                        // as a dormant project, so a fixed permission shows up.
                        tracing::warn!(project = %key, error = %e, "skipping a project gitlab refuses");
                        state.last = None;
                        state.cadence.polled(
                            at,
                            0,
                            self.settings.dormant_interval,
                            self.settings.dormant_interval,
                        );
                    } else {
                        tracing::warn!(project = %key, error = %e, "polling pending jobs failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = fatal {
            self.set_skipped(problems);
            return Err(e);
        }
        // Every project's last good poll when recent enough; the others are reported.
        let now = Instant::now();
        let mut all: BTreeMap<u64, QueuedJob> = BTreeMap::new();
        let mut read = 0usize;
        let mut waiting: Vec<&String> = Vec::new();
        for key in &keys {
            let Some(p) = st.projects.get(key) else {
                waiting.push(key);
                continue;
            };
            match &p.last {
                Some((at, jobs))
                    if now.saturating_duration_since(*at) <= self.settings.max_stale =>
                {
                    read += 1;
                    for j in jobs {
                        all.insert(j.id, j.clone());
                    }
                }
                _ => match &p.failure {
                    Some(reason) => problems.push(ScopeProblem {
                        entry: format!("project {key}"),
                        reason: reason.clone(),
                    }),
                    None => waiting.push(key),
                },
            }
        }
        if let Some(first) = waiting.first() {
            problems.push(ScopeProblem {
                entry: format!("{} projects (first: project {first})", waiting.len()),
                reason: format!(
                    "not polled within {:?}: the jobs-list budget ({} per minute) or the per-call cap ({cap}) is spent; projects are polled round-robin",
                    self.settings.max_stale, self.settings.jobs_per_minute
                ),
            });
        }
        // Nothing in the scope could be read and GitLab itself failed (or nothing was polled
        // yet): GitLab is unavailable for this call. When every entry was refused on its own
        // (403/404), the scope is empty for now and `skipped_scope` says why.
        if read == 0 && (first_error.is_some() || !waiting.is_empty()) {
            let err = first_error.unwrap_or_else(|| GitLabError::BudgetSpent {
                what: "jobs lists of the scope".into(),
            });
            self.set_skipped(problems);
            return Err(err);
        }
        for p in &problems {
            tracing::warn!(entry = %p.entry, reason = %p.reason, "scope entry skipped");
        }
        self.set_skipped(problems);
        tracing::debug!(?stats, pending = all.len(), "polled pending jobs");
        Ok((all.into_values().collect(), stats))
    }

    fn set_skipped(&self, problems: Vec<ScopeProblem>) {
        *self
            .skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = problems;
    }

    /// Project keys of the scope: listed projects plus every group's projects. A group that
    /// cannot be listed keeps its last list on a transient failure; otherwise (403, 404,
    /// no earlier list) it is skipped and reported in `problems`; the first failure of
    /// GitLab itself (not a refusal of the entry) also goes to `first_error`.
    ///
    /// # Errors
    ///
    /// Only when the token itself is refused (401).
    async fn scope_projects(
        &self,
        st: &mut JobsState,
        problems: &mut Vec<ScopeProblem>,
        first_error: &mut Option<GitLabError>,
    ) -> GitLabResult<BTreeSet<String>> {
        let mut keys: BTreeSet<String> = self
            .settings
            .scope
            .projects
            .iter()
            .map(|p| match p {
                autoscaler_config::ProjectRef::Id(id) => id.to_string(),
                autoscaler_config::ProjectRef::Path(path) => path.clone(),
            })
            .collect();
        // Stale groups are re-read concurrently (many groups must not stall one call).
        let now = Instant::now();
        let stale: Vec<String> = self
            .settings
            .scope
            .groups
            .iter()
            .filter(|group| {
                !st.groups.get(*group).is_some_and(|g| {
                    now.saturating_duration_since(g.read_at) < self.settings.group_refresh
                })
            })
            .cloned()
            .collect();
        let mut read: Vec<(String, GitLabResult<Vec<u64>>)> = stream::iter(stale)
            .map(|group| async move {
                let result = self.group_projects(&group).await;
                (group, result)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        // Configuration order, so problems are reported in a stable order.
        read.sort_by_key(|(group, _)| self.settings.scope.groups.iter().position(|g| g == group));
        for (group, result) in read {
            match result {
                Ok(projects) => {
                    st.groups.insert(
                        group,
                        GroupState {
                            read_at: Instant::now(),
                            projects,
                        },
                    );
                }
                Err(e) if is_token_refused(&e) => return Err(e),
                Err(e) if st.groups.contains_key(&group) && !is_entry_problem(&e) => {
                    tracing::warn!(group = %group, error = %e, "keeping the last project list of the group");
                }
                Err(e) => {
                    st.groups.remove(&group);
                    problems.push(ScopeProblem {
                        entry: format!("group {group}"),
                        reason: e.to_string(),
                    });
                    if !is_entry_problem(&e) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        for group in &self.settings.scope.groups {
            if let Some(g) = st.groups.get(group) {
                keys.extend(g.projects.iter().map(u64::to_string));
            }
        }
        Ok(keys)
    }

    /// `GET /groups/:id/projects?include_subgroups=true`, offset-paged.
    async fn group_projects(&self, group: &str) -> GitLabResult<Vec<u64>> {
        let ep = GroupProjects::builder()
            .group(group)
            .include_subgroups(true)
            .archived(false)
            .simple(true)
            .build()
            .map_err(|e| misconfigured(format!("group {group:?}: {e}")))?;
        let what = format!("projects of group {group}");
        let base = self.transport.url_of(&ep)?;
        let pages: Vec<dto::Project> = self.offset_pages(&what, base).await?;
        let mut ids: Vec<u64> = pages.into_iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Every page of an offset-paginated list (`page`, `per_page`, `X-Next-Page`), checked
    /// for integrity ([`paging::OffsetListing`]): a truncated or inconsistent list is an
    /// error, never a short list.
    async fn offset_pages<T: serde::de::DeserializeOwned + dto::Listed>(
        &self,
        what: &str,
        base: Url,
    ) -> GitLabResult<Vec<T>> {
        let mut out = Vec::new();
        let mut listing = paging::OffsetListing::new(what, PER_PAGE, self.settings.max_list_pages);
        loop {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &listing.page().to_string());
            let reply = self.transport.send(what, Method::GET, &url, None).await?;
            let items: Vec<T> = reply.json(what)?;
            let ids: Vec<u64> = items.iter().map(dto::Listed::list_id).collect();
            let headers = paging::PageHeaders {
                page: reply.number("x-page", what)?.flatten(),
                per_page: reply.number("x-per-page", what)?.flatten(),
                next_page: reply.number("x-next-page", what)?,
                total: reply.number("x-total", what)?.flatten(),
                total_pages: reply.number("x-total-pages", what)?.flatten(),
            };
            out.extend(items);
            match listing.add(&ids, headers)? {
                paging::Next::Page(_) => {}
                paging::Next::Done => return Ok(out),
            }
        }
    }

    /// Pending jobs of one project, keyset-paged; each page costs one budget unit.
    async fn poll_project(&self, key: &str) -> GitLabResult<Vec<QueuedJob>> {
        let ep = Jobs::builder()
            .project(key)
            .scope(JobScope::Pending)
            .build()
            .map_err(|e| misconfigured(format!("project {key:?}: {e}")))?;
        let what = format!("pending jobs of project {key}");
        let mut url = self.transport.url_of(&ep)?;
        url.query_pairs_mut()
            .append_pair("pagination", "keyset")
            .append_pair("per_page", &PER_PAGE.to_string())
            .append_pair("order_by", "id")
            .append_pair("sort", "desc");
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let granted = self
                .budget
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .try_take(Instant::now());
            if !granted {
                return Err(GitLabError::BudgetSpent { what });
            }
            let reply = self.transport.send(&what, Method::GET, &url, None).await?;
            let jobs: Vec<dto::Job> = reply.json(&what)?;
            out.extend(jobs.into_iter().map(|j| {
                QueuedJob {
                    id: j.id,
                    project_id: j
                        .pipeline
                        .and_then(|p| p.project_id)
                        .or_else(|| key.parse().ok()),
                    tags: j.tag_list.into_iter().collect(),
                    created_at: j.created_at,
                    queued_at: None,
                    queued_for: j
                        .queued_duration
                        .filter(|d| d.is_finite() && *d >= 0.0)
                        .map(Duration::from_secs_f64),
                }
            }));
            match reply.next_link() {
                Some(next) => url = next_page_url(&url, &next, &what)?,
                None => break,
            }
        }
        Ok(out)
    }

    /// Instance-wide pending jobs through the admin GraphQL `jobs(statuses: [PENDING])`.
    async fn instance_pending(&self) -> GitLabResult<Vec<QueuedJob>> {
        const QUERY: &str = "query($after: String) { jobs(statuses: [PENDING], first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id status tags createdAt queuedAt project { id } } } }";
        let what = "graphql pending jobs";
        let url = self.transport.instance_url("api/graphql")?;
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = serde_json::json!({ "query": QUERY, "variables": { "after": after } });
            let reply = self
                .transport
                .send(
                    what,
                    Method::POST,
                    &url,
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await?;
            let parsed: dto::GraphQlReply = reply.json(what)?;
            if let Some(e) = parsed.errors.first() {
                return Err(GitLabError::Rejected {
                    status: 200,
                    what: what.to_string(),
                    message: e.message.chars().take(200).collect(),
                });
            }
            let jobs = parsed
                .data
                .and_then(|d| d.jobs)
                .ok_or_else(|| GitLabError::Unexpected {
                    what: what.to_string(),
                    message: "no data.jobs in the answer".into(),
                })?;
            for n in jobs.nodes {
                let id = dto::gid_number(&n.id).ok_or_else(|| GitLabError::Unexpected {
                    what: what.to_string(),
                    message: format!("job id {:?} is not a global id", n.id),
                })?;
                out.push(QueuedJob {
                    id,
                    project_id: n.project.and_then(|p| dto::gid_number(&p.id)),
                    tags: n.tags.into_iter().collect(),
                    created_at: n.created_at,
                    queued_at: n.queued_at,
                    queued_for: None,
                });
            }
            if !jobs.page_info.has_next_page {
                break;
            }
            after = jobs.page_info.end_cursor;
            if after.is_none() {
                break;
            }
        }
        out.sort_by_key(|j| j.id);
        out.dedup_by_key(|j| j.id);
        Ok(out)
    }

    /// One owned runner's details and counters, or `None` when it is not ours.
    async fn owned_runner(&self, item: &dto::Runner) -> GitLabResult<Option<OwnedRunner>> {
        let id = item.id;
        let cached = self
            .runner_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned();
        let never_contacted = item.status.as_deref() == Some("never_contacted");
        // Details (ownership, creation, first contact) are read once, and again only while
        // the runner has not been seen contacting GitLab, or when the list lacks `status`.
        let need_details = match &cached {
            None => true,
            Some(c) => item.status.is_none() || (c.contacted_at.is_none() && !never_contacted),
        };
        let reuse = if need_details { None } else { cached.clone() };
        let mut entry = if let Some(c) = reuse {
            c
        } else {
            // Deleted between the listing and now: `None`.
            let Some((details, description, pool)) = self.runner_details(id).await? else {
                return Ok(None);
            };
            CachedRunner {
                ownership: pool,
                description,
                created_at: details.created_at,
                contacted_at: details.contacted_at,
                paused: details.is_paused(),
                exec: cached.as_ref().and_then(|c| c.exec.clone()),
                running: cached
                    .as_ref()
                    .map(|c| c.running.clone())
                    .unwrap_or_default(),
                totals: cached.as_ref().and_then(|c| c.totals),
            }
        };
        let Some(pool) = entry.ownership.clone() else {
            self.cache_runner(id, entry);
            return Ok(None);
        };
        if let Some(paused) = item.is_paused() {
            entry.paused = paused;
        }
        // Busy or idle from the list; the count of running jobs only for busy runners (or
        // when the list does not say). Deleting re-checks with its own request anyway.
        let running = match item.job_execution_status.as_deref() {
            Some("idle") => Vec::new(),
            _ => self.running_job_ids(id).await?,
        };
        let running_jobs = u32::try_from(running.len()).unwrap_or(u32::MAX);
        let arrivals = running.clone();
        // The job history only when the runner started, changed or ended work since it was
        // last read, or after HISTORY_REFRESH (a whole job between two observations).
        let now = Instant::now();
        let exec = item.job_execution_status.clone();
        let recently_active = |t: &counter::Totals| {
            let last = t
                .last_job_at
                .map_or(entry.created_at, |j| j.max(entry.created_at));
            chrono::Utc::now() - last < ACTIVE_WINDOW
        };
        let fresh = entry.totals.filter(|(t, at)| {
            exec.is_some()
                && exec == entry.exec
                && running
                    .iter()
                    .map(|j| j.id)
                    .eq(entry.running.iter().map(|j| j.id))
                && !recently_active(t)
                && now.saturating_duration_since(*at) < HISTORY_REFRESH
        });
        let totals = match fresh {
            Some((t, _)) => t,
            None => {
                let t = self.job_totals(id).await?;
                entry.totals = Some((t, now));
                entry.exec = exec;
                entry.running = running;
                t
            }
        };
        let runner = OwnedRunner {
            id,
            description: entry.description.clone(),
            pool,
            paused: entry.paused,
            created_at: entry.created_at,
            contacted_at: entry.contacted_at,
            running_jobs,
            jobs_run: totals.jobs_run,
            last_job_at: totals.last_job_at,
            running: arrivals,
        };
        self.cache_runner(id, entry);
        Ok(Some(runner))
    }

    /// `GET /runners/:id`: the details, the description and the ownership rule's verdict
    /// on them (`None` on 404).
    async fn runner_details(
        &self,
        id: RunnerId,
    ) -> GitLabResult<Option<(dto::RunnerDetails, String, Option<Option<String>>)>> {
        let ep = Runner::builder()
            .runner(id)
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        let what = format!("runner {id}");
        let details: dto::RunnerDetails = match self.transport.send_endpoint(&what, &ep).await {
            Ok(reply) => reply.json(&what)?,
            Err(GitLabError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let description = details.description.clone().unwrap_or_default();
        let pool = runner_ownership(
            &self.settings.controller,
            &description,
            details.maintenance_note.as_deref(),
        );
        Ok(Some((details, description, pool)))
    }

    /// [`GitLab::runner_by_id`]: details, running jobs and counters of one runner, read
    /// fresh whatever its description or note say (`None` only on 404).
    async fn runner_details_by_id(&self, id: RunnerId) -> GitLabResult<Option<OwnedRunner>> {
        let Some((details, description, pool)) = self.runner_details(id).await? else {
            return Ok(None);
        };
        let pool = pool.flatten();
        let running = match self.running_job_ids(id).await {
            Ok(r) => r,
            Err(GitLabError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let totals = self.job_totals(id).await?;
        Ok(Some(OwnedRunner {
            id,
            description,
            pool,
            paused: details.is_paused(),
            created_at: details.created_at,
            contacted_at: details.contacted_at,
            running_jobs: u32::try_from(running.len()).unwrap_or(u32::MAX),
            jobs_run: totals.jobs_run,
            last_job_at: totals.last_job_at,
            running,
        }))
    }

    /// The jobs a runner runs now (`GET /runners/:id/jobs?status=running`), by id, with
    /// when each was created (a job whose answer lacks `created_at` counts as created now:
    /// it is running, so it arrived no later).
    async fn running_job_ids(&self, id: RunnerId) -> GitLabResult<Vec<JobArrival>> {
        let ep = RunnerJobs::builder()
            .runner(id)
            .status(RunnerJobStatus::Running)
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        let what = format!("running jobs of runner {id}");
        let base = self.transport.url_of(&ep)?;
        let jobs: Vec<dto::RunnerJob> = self.offset_pages(&what, base).await?;
        let now = chrono::Utc::now();
        let mut running: Vec<JobArrival> = jobs
            .iter()
            .map(|j| JobArrival {
                id: j.id,
                queued_since: j.created_at.unwrap_or(now),
            })
            .collect();
        running.sort_unstable_by_key(|j| j.id);
        running.dedup_by_key(|j| j.id);
        Ok(running)
    }

    fn cache_runner(&self, id: RunnerId, entry: CachedRunner) {
        self.runner_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, entry);
    }

    /// Jobs run so far: reads the runner's jobs newest first down to its high-water mark.
    async fn job_totals(&self, id: RunnerId) -> GitLabResult<counter::Totals> {
        // Not held across the requests, so runners are read concurrently.
        let mut counter = self
            .counters
            .lock()
            .await
            .get(&id)
            .cloned()
            .unwrap_or_default();
        let ep = RunnerJobs::builder()
            .runner(id)
            .order_by(RunnerJobsOrderBy::Id)
            .sort(SortOrder::Descending)
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        let what = format!("jobs of runner {id}");
        let base = self.transport.url_of(&ep)?;
        let mut seen = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let reply = self.transport.send(&what, Method::GET, &url, None).await?;
            let jobs: Vec<dto::RunnerJob> = reply.json(&what)?;
            let short = jobs.len() < PER_PAGE as usize;
            let reached_mark = jobs.iter().any(|j| j.id <= counter.high_water);
            seen.extend(jobs.into_iter().map(|j| SeenJob {
                id: j.id,
                status: j.status,
                started_at: j.started_at,
                finished_at: j.finished_at,
            }));
            if short || reached_mark {
                break;
            }
        }
        let totals = counter.update(&seen);
        self.counters.lock().await.insert(id, counter);
        Ok(totals)
    }

    /// The runners whose description starts with `<controller-id>-`, from one read of
    /// `GET /runners` (or `/runners/all`, see [`GitLabSettings::list_all_runners`]), offset
    /// paged and checked. Candidates only: ownership also needs the maintenance note,
    /// which [`GitLabAdapter::runner_state`] reads.
    ///
    /// # Errors
    ///
    /// A [`GitLabError`] when the list cannot be read completely.
    pub async fn runner_candidates(&self) -> GitLabResult<Vec<RunnerCandidate>> {
        Ok(self
            .candidate_runners()
            .await?
            .into_iter()
            .map(|item| RunnerCandidate {
                id: item.id,
                description: item.description.clone().unwrap_or_default(),
                item,
            })
            .collect())
    }

    /// A candidate's state when this controller owns it (the one rule,
    /// [`runner_ownership`]: description prefix and [`autoscaler_core::ports::RUNNER_MARKER`] in the
    /// maintenance note); `None` when it does not, or when it was deleted since the list
    /// (404). `status`, `job_execution_status` and `paused` come from the list; one
    /// `GET /runners/:id` is still needed per candidate, because GitLab's runner list
    /// (`Runner` entity) has neither `maintenance_note` nor `contacted_at`: both are
    /// `RunnerDetails` only (`lib/api/entities/ci/runner_details.rb`, docs `api/runners`,
    /// "Get runner's details").
    ///
    /// # Errors
    ///
    /// Any failure of the details request other than 404.
    pub async fn runner_state(&self, c: &RunnerCandidate) -> GitLabResult<Option<RunnerState>> {
        let id = c.id;
        let Some((details, description, ownership)) = self.runner_details(id).await? else {
            return Ok(None);
        };
        let Some(pool) = ownership else {
            return Ok(None);
        };
        Ok(Some(RunnerState {
            id,
            description,
            pool,
            status: c.item.status.clone(),
            job_execution_status: c.item.job_execution_status.clone(),
            paused: c.item.is_paused().unwrap_or_else(|| details.is_paused()),
            created_at: c.item.created_at.unwrap_or(details.created_at),
            contacted_at: details.contacted_at,
        }))
    }

    /// Lists candidate runners (description prefix) with `GET /runners` or `/runners/all`.
    async fn candidate_runners(&self) -> GitLabResult<Vec<dto::Runner>> {
        let prefix = format!("{}-", self.settings.controller);
        let (what, base) = if self.settings.list_all_runners {
            let ep = AllRunners::builder()
                .build()
                .map_err(|e| misconfigured(e.to_string()))?;
            ("all runners", self.transport.url_of(&ep)?)
        } else {
            let ep = Runners::builder()
                .build()
                .map_err(|e| misconfigured(e.to_string()))?;
            ("runners", self.transport.url_of(&ep)?)
        };
        let runners: Vec<dto::Runner> = self.offset_pages(what, base).await?;
        let mut found: Vec<dto::Runner> = runners
            .into_iter()
            .filter(|r| {
                r.description
                    .as_deref()
                    .is_some_and(|d| d.starts_with(&prefix))
            })
            .collect();
        found.sort_by_key(|r| r.id);
        found.dedup_by_key(|r| r.id);
        Ok(found)
    }
}

impl GitLab for GitLabAdapter {
    async fn pending_jobs(&self) -> GitLabResult<Vec<PendingJob>> {
        Ok(self.pending_jobs_with_stats().await?.0)
    }

    async fn owned_runners(&self) -> GitLabResult<Vec<OwnedRunner>> {
        let found = self.candidate_runners().await?;
        let ids: std::collections::HashSet<RunnerId> = found.iter().map(|r| r.id).collect();
        let read: Vec<GitLabResult<Option<OwnedRunner>>> = stream::iter(found)
            .map(|item| async move { self.owned_runner(&item).await })
            .buffered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut out = Vec::with_capacity(ids.len());
        for r in read {
            if let Some(r) = r? {
                out.push(r);
            }
        }
        // Forget counters and readings of runners that are gone.
        self.counters.lock().await.retain(|k, _| ids.contains(k));
        self.runner_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| ids.contains(k));
        Ok(out)
    }

    async fn runner_by_id(&self, id: RunnerId) -> GitLabResult<Option<OwnedRunner>> {
        self.runner_details_by_id(id).await
    }

    fn skipped_scope(&self) -> Vec<ScopeProblem> {
        self.skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn create_runner(&self, req: CreateRunner) -> GitLabResult<NewRunner> {
        let prefix = format!("{}-", self.settings.controller);
        if !req.description.starts_with(&prefix) {
            return Err(misconfigured(format!(
                "runner description {:?} must start with {prefix:?}",
                req.description
            )));
        }
        let note = runner_maintenance_note(&self.settings.controller, &req.pool);
        let mut b = gitlab::api::users::CreateRunner::builder();
        match req.scope {
            RunnerScope::Instance => b.instance(),
            RunnerScope::Group(g) => b.group(g),
            RunnerScope::Project(p) => b.project(p),
        };
        b.description(req.description.as_str())
            .maintenance_note(note.as_str())
            .run_untagged(req.run_untagged)
            .locked(req.locked)
            .paused(false)
            .access_level(if req.ref_protected {
                RunnerAccessLevel::RefProtected
            } else {
                RunnerAccessLevel::NotProtected
            })
            .tags(req.tags.iter().map(String::as_str));
        if let Some(t) = req.maximum_timeout {
            b.maximum_timeout(t);
        }
        let ep = b
            .build()
            .map_err(|e| misconfigured(format!("runner {:?}: {e}", req.description)))?;
        let what = format!("create runner {}", req.description);
        let reply = self.transport.send_endpoint(&what, &ep).await?;
        let created: dto::CreatedRunner = reply.json(&what)?;
        tracing::info!(runner_id = created.id, description = %req.description, "created runner");
        Ok(NewRunner {
            id: created.id,
            token: SecretString::from(created.token),
        })
    }

    async fn set_paused(&self, id: RunnerId, paused: bool) -> GitLabResult<()> {
        let ep = EditRunner::builder()
            .runner(id)
            .paused(paused)
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        let what = format!("pause runner {id}");
        self.transport.send_endpoint(&what, &ep).await.map(|_| ())
    }

    async fn running_jobs(&self, id: RunnerId) -> GitLabResult<u32> {
        Ok(u32::try_from(self.running_job_ids(id).await?.len()).unwrap_or(u32::MAX))
    }

    async fn delete_runner(&self, id: RunnerId) -> GitLabResult<()> {
        let ep = DeleteRunner::builder()
            .runner(id)
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        let what = format!("delete runner {id}");
        match self.transport.send_endpoint(&what, &ep).await {
            Ok(_) | Err(GitLabError::NotFound { .. }) => {
                self.counters.lock().await.remove(&id);
                self.runner_cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
                tracing::info!(runner_id = id, "deleted runner");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The next keyset page: the `Link` target's query on our own URL, so the token is never
/// sent to another host even when GitLab's external URL differs from the configured one.
fn next_page_url(current: &Url, link: &str, what: &str) -> GitLabResult<Url> {
    let next = Url::parse(link).map_err(|e| GitLabError::Unexpected {
        what: what.to_string(),
        message: format!("bad Link next url: {e}"),
    })?;
    let mut url = current.clone();
    url.set_query(next.query());
    Ok(url)
}

/// 401: the token itself is refused, for every request: GitLab is unusable, not one entry.
fn is_token_refused(e: &GitLabError) -> bool {
    matches!(e, GitLabError::Auth { status: 401, .. })
}

/// A failure that concerns one scope entry (403, 404, another refusal), not GitLab as a
/// whole: the entry is skipped and reported.
fn is_entry_problem(e: &GitLabError) -> bool {
    matches!(
        e,
        GitLabError::Auth { status: 403, .. }
            | GitLabError::NotFound { .. }
            | GitLabError::Rejected { .. }
    )
}

fn misconfigured(message: String) -> GitLabError {
    GitLabError::Misconfigured { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_stays_on_the_configured_host() -> Result<(), Box<dyn std::error::Error>> {
        let current = Url::parse("http://127.0.0.1:8080/api/v4/projects/1/jobs?pagination=keyset")?;
        let next = next_page_url(
            &current,
            "https://gitlab.example.com/api/v4/projects/1/jobs?pagination=keyset&cursor=abc",
            "jobs",
        )?;
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:8080/api/v4/projects/1/jobs?pagination=keyset&cursor=abc"
        );
        Ok(())
    }
}
