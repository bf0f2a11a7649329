//! A fake GitLab HTTP server that follows the GitLab facts in `docs/gitlab.md`, for adapter tests,
//! scenario tests and `run --dev`.
//!
//! What it implements (each checked by `tests/tests/gitlab_adapter.rs`):
//!
//! * `GET /api/v4/user` (the `gitlab` crate calls it when a client is built); `PRIVATE-TOKEN`
//!   or `Authorization: Bearer`; 401 for unknown tokens. [`ADMIN_TOKEN`] is an
//!   administrator, [`USER_TOKEN`] is not.
//! * `GET /api/v4/projects/:id/jobs` (id or URL-encoded path): `scope`/`scope[]` checked
//!   against the build statuses (400 otherwise), jobs newest first, the per-user
//!   `jobs_index` limit per minute (default 600, [`FakeGitLabServer::set_jobs_limit`]),
//!   keyset pagination (`pagination=keyset`, only `order_by=id&sort=desc`, next page in
//!   `Link rel="next"` with a `cursor`, no `Link` on the last page) and offset pagination
//!   without `X-Total`/`X-Total-Pages`/`rel="last"` (`without_count`).
//! * `GET /groups/:id/projects?include_subgroups=true`, `GET /runners`, `GET /runners/all`
//!   (admin), `GET|PUT|DELETE /runners/:id`, `GET /runners/:id/jobs` (status filter,
//!   `JobBasicWithProject`), `POST /user/runners` (201 `{id, token: "glrt-…",
//!   token_expires_at}`), offset pagination with counts, `per_page` at most 100.
//! * `POST /api/v4/jobs/request` (runner protocol: 201 job, 204 none, 403 bad token) and
//!   `POST /api/graphql` answering `jobs(statuses: [PENDING])` (empty for non-admins).
//! * Runner `status`: stale, never_contacted, online/offline (2 h), paused, in that order.
//!
//! Jobs become pending with [`FakeGitLabServer::add_job`] and are picked up only by a
//! runner whose VM has booted ([`FakeGitLabServer::runner_booted`]) and that is not paused,
//! or through the runner protocol. A job finishes after its duration; a job whose runner
//! is deleted while it runs is recorded as killed ([`FakeGitLabServer::killed_jobs`]).
//! Failures ([`FakeGitLabServer::fail_next`]), 429s ([`FakeGitLabServer::rate_limit`]) and
//! latency are scripted.
//!
//! These rules live in the world ([`autoscaler_world::gitlab::World`]), shared with the
//! in-memory `autoscaler_core::testing::gitlab::FakeGitLab`; this module is their HTTP face
//! (`server`: routes, paging, auth; `render`: GitLab's JSON entities).

mod render;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::task::JoinHandle;

pub use self::server::{ADMIN_TOKEN, USER_TOKEN};
use self::server::{Shared, lock};
use autoscaler_world::gitlab::{Clock, Group, Project};
pub use autoscaler_world::gitlab::{Job, ONLINE_CONTACT_TIMEOUT, Runner, STALE_TIMEOUT};

/// A running fake GitLab on 127.0.0.1. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGitLabServer {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for FakeGitLabServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitLabServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?).await
    }

    /// Starts the server on `addr` (for `run --dev`).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::default();
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake gitlab server stopped");
            }
        });
        Ok(FakeGitLabServer { addr, shared, task })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a group (optionally a subgroup of `parent`); returns its id.
    pub fn add_group(&self, path: &str, parent: Option<u64>) -> u64 {
        let mut s = lock(&self.shared);
        let id = s.world.id();
        s.world.groups.insert(
            id,
            Group {
                id,
                path: path.into(),
                parent,
            },
        );
        id
    }

    /// Adds a project (optionally in `group`); returns its id.
    pub fn add_project(&self, path: &str, group: Option<u64>) -> u64 {
        let mut s = lock(&self.shared);
        let id = s.world.id();
        s.world.projects.insert(
            id,
            Project {
                id,
                path: path.into(),
                group,
            },
        );
        id
    }

    /// Queues a pending job in `project` with these tags, running `duration` once picked up.
    pub fn add_job(&self, project: u64, tags: &[&str], duration: Duration) -> u64 {
        let tags = tags.iter().map(|t| (*t).to_string()).collect();
        lock(&self.shared).world.add_job(project, tags, duration)
    }

    /// The VM of the runner with this token has booted: from now on it contacts GitLab and
    /// picks up jobs it can run (while not paused). Returns whether the token is known.
    pub fn runner_booted(&self, token: &str) -> bool {
        let mut s = lock(&self.shared);
        let Some(id) = s.world.runner_by_token(token) else {
            return false;
        };
        s.world.set_booted(id, true)
    }

    /// Requests for this group (its project list) answer 403 from now on, as for a token
    /// that lost access to it.
    pub fn forbid_group(&self, group: u64) {
        lock(&self.shared).control.forbidden_groups.insert(group);
    }

    /// Requests for this project's jobs answer 403 from now on.
    pub fn forbid_project(&self, project: u64) {
        lock(&self.shared)
            .control
            .forbidden_projects
            .insert(project);
    }

    /// Sets when a job was created and when it became pending (`queued_at`, at or after
    /// `created_at`: a job of a later stage waits as `created` first). GitLab's
    /// `queued_duration` and GraphQL `queuedAt` follow `queued_at`.
    pub fn set_job_times(
        &self,
        job: u64,
        created_at: chrono::DateTime<chrono::Utc>,
        queued_at: chrono::DateTime<chrono::Utc>,
    ) {
        if let Some(j) = lock(&self.shared).world.jobs.get_mut(&job) {
            j.created_at = created_at;
            j.queued_at = queued_at.max(created_at);
        }
    }

    /// Adds one `instance_type` runner directly (no request) with this description and
    /// maintenance note, never contacted; returns its id. Unlike `POST /user/runners` this
    /// needs no token, so tests can seed runners as an administrator (or an earlier
    /// controller run) left them.
    pub fn add_runner(&self, description: &str, maintenance_note: &str) -> u64 {
        let id = self.add_runners(1, "").first().copied().unwrap_or_default();
        if let Some(r) = lock(&self.shared).world.runners.get_mut(&id) {
            r.description = description.to_string();
            r.maintenance_note = maintenance_note.to_string();
        }
        id
    }

    /// The next object created (group, project, job, runner) gets id `next`, when that is
    /// above every id given so far (ids only grow, as in GitLab). Lets a test pin the ids
    /// its expected output names.
    pub fn set_next_id(&self, next: u64) {
        let mut s = lock(&self.shared);
        s.world.next_id = s.world.next_id.max(next);
    }

    /// The fake's wall clock stands still at `now` from here on (runner statuses,
    /// `queued_duration` and creation times are computed from it), so a test can pin the
    /// time its expected output names. Job durations still run on `tokio::time`.
    pub fn freeze_clock(&self, now: chrono::DateTime<chrono::Utc>) {
        lock(&self.shared).world.clock = Clock::Real {
            offset: chrono::Duration::zero(),
            frozen: Some(now),
        };
    }

    /// Every token is refused with 401 from now on, as after it was revoked or expired.
    pub fn revoke_tokens(&self) {
        lock(&self.shared).control.tokens_revoked = true;
    }

    /// Adds `n` runners directly (no request), described `<prefix><id>`, of `runner_type`
    /// `instance_type` with an empty maintenance note (so no controller owns them); returns
    /// their ids. For lists larger than one page.
    pub fn add_runners(&self, n: usize, prefix: &str) -> Vec<u64> {
        let mut s = lock(&self.shared);
        (0..n)
            .map(|_| {
                let id = s.world.id();
                let runner = Runner::new(format!("{prefix}{id}"), "");
                s.world
                    .insert_runner(id, format!("glrt-bulk-{id:08}"), runner);
                id
            })
            .collect()
    }

    /// Right after serving page `page` of the next `GET /runners` or `/runners/all`
    /// listing, deletes `runner`, as another client deleting it between two page requests
    /// would. Later pages then shift up by one (GitLab computes each page when it is
    /// requested).
    pub fn delete_runner_after_list_page(&self, page: usize, runner: u64) {
        lock(&self.shared)
            .control
            .delete_after_list_page
            .push((page, runner));
    }

    /// Sets a runner's last contact (e.g. to make it offline or stale).
    pub fn set_contacted_at(&self, runner: u64, at: Option<chrono::DateTime<chrono::Utc>>) {
        if let Some(r) = lock(&self.shared).world.runners.get_mut(&runner) {
            r.contacted_at = at;
            r.booted = false;
        }
    }

    /// Sets a runner's creation time.
    pub fn set_created_at(&self, runner: u64, at: chrono::DateTime<chrono::Utc>) {
        if let Some(r) = lock(&self.shared).world.runners.get_mut(&runner) {
            r.created_at = at;
        }
    }

    /// Concurrent jobs per runner (default 1).
    pub fn set_capacity(&self, capacity: usize) {
        lock(&self.shared).world.capacity = capacity.max(1);
    }

    /// The next `n` requests (of any kind) fail with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut s = lock(&self.shared);
        s.control.fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Drops the failures [`FakeGitLabServer::fail_next`] scheduled and not yet served.
    pub fn clear_failures(&self) {
        lock(&self.shared).control.fail_next.clear();
    }

    /// The next `n` requests get 429 with `Retry-After: retry_after_secs` and `RateLimit-*`.
    pub fn rate_limit(&self, n: u32, retry_after_secs: u64) {
        let mut s = lock(&self.shared);
        s.control.rate_limited = n;
        s.control.retry_after = retry_after_secs;
    }

    /// Per-user `jobs_index` limit per minute (GitLab default 600).
    pub fn set_jobs_limit(&self, per_minute: u32) {
        lock(&self.shared).control.jobs_limit = per_minute;
    }

    /// Latency added to every request.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared).control.latency = latency;
    }

    /// Jobs killed because their runner was deleted while they ran.
    pub fn killed_jobs(&self) -> Vec<u64> {
        let s = lock(&self.shared);
        s.world
            .jobs
            .values()
            .filter(|j| j.killed)
            .map(|j| j.id)
            .collect()
    }

    /// A snapshot of every job (time-based completion applied).
    pub fn jobs(&self) -> Vec<Job> {
        let mut s = lock(&self.shared);
        s.world.advance();
        s.world.jobs.values().cloned().collect()
    }

    /// A snapshot of every runner that exists.
    pub fn runners(&self) -> Vec<Runner> {
        lock(&self.shared).world.runners.values().cloned().collect()
    }

    /// Every request received so far, as `"METHOD /path?query"`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared).control.requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared).control.requests.clear();
    }
}
