//! GitLab through the controller's own adapter ([`GitLabAdapter`]), so the check sees
//! exactly the runners the controller owns (one ownership rule:
//! [`autoscaler_core::ports::runner_ownership`], description prefix `<controller-id>-` AND the
//! maintenance-note marker) and the pending jobs it plans on. GitLab's JSON stays in the
//! adapter; this module maps the adapter's reads to the check's [`model`](crate::model).
//!
//! Calls (all made by the adapter): `GET /runners` or `/runners/all` (offset paged and
//! checked; `status`, `job_execution_status`, `paused` and `created_at` come from this
//! list), then one `GET /runners/:id` per runner whose description has the prefix, at most
//! [`CONCURRENCY`] at once: the list has neither the maintenance note (ownership) nor
//! `contacted_at`, which only the runner's details carry. Pending jobs: per project
//! `GET /projects/:id/jobs?scope[]=pending` (keyset paged, groups expanded with
//! `GET /groups/:id/projects`), or for an instance-wide scope GraphQL
//! `jobs(statuses: [PENDING])`, within the adapter's jobs-list budget.

use std::sync::Arc;
use std::time::Duration;

use autoscaler_config::{Config, RunnerType};
use autoscaler_core::ports::{ControllerId, GitLab as _, GitLabError};
use autoscaler_gitlab::{GitLabAdapter, GitLabSettings, QueuedJob, RunnerState};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Progress;
use crate::error::SourceError;
use crate::model::{PendingJob, Runner, RunnerStatus};

/// Runner detail requests in flight at once.
pub const CONCURRENCY: usize = 32;

/// The controller's GitLab adapter, set up for one check run.
#[derive(Debug, Clone)]
pub struct GitLab {
    adapter: Arc<GitLabAdapter>,
    /// `<controller-id>-`.
    prefix: String,
}

// === impl GitLab ===

impl GitLab {
    /// The adapter for `config`'s instance, scope and controller. `timeout` bounds each
    /// request; nothing is sent until a read is asked for. Runners are listed with
    /// `/runners/all` when a pool registers instance runners (as the controller does).
    ///
    /// # Errors
    ///
    /// [`SourceError::Setup`] for an invalid controller id or an unusable URL or token.
    pub fn new(
        config: &Config,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let controller = ControllerId::new(config.controller.id.clone())
            .map_err(|e| SourceError::Setup(format!("controller id: {e}")))?;
        let list_all = config
            .pools
            .iter()
            .any(|p| matches!(p.runner.runner_type, RunnerType::Instance));
        let mut settings = GitLabSettings::from_config(&config.gitlab, controller, list_all);
        settings.request_timeout = timeout;
        // One run reads the whole scope once: no per-call cap (the budget still holds).
        settings.max_polls_per_call = usize::MAX;
        let adapter = GitLabAdapter::new(settings, &token)
            .map_err(|e| SourceError::Setup(format!("gitlab: {e}")))?;
        Ok(GitLab {
            adapter: Arc::new(adapter),
            prefix: format!("{}-", config.controller.id),
        })
    }

    /// This controller's runners, by the controller's ownership rule.
    ///
    /// # Errors
    ///
    /// The first failing call ([`SourceError::GitLab`]).
    pub async fn runners(
        &self,
        pools: &[String],
        progress: &Progress,
    ) -> Result<Vec<Runner>, SourceError> {
        const PART: &str = "gitlab runners";
        progress.stage(PART, "listing runners");
        let candidates = self
            .adapter
            .runner_candidates()
            .await
            .map_err(|e| gitlab_error("gitlab runner list", &e))?;
        let total = candidates.len();
        progress.stage(PART, format!("runner details 0 of {total}"));
        let sem = Arc::new(Semaphore::new(CONCURRENCY));
        let mut set = JoinSet::new();
        for c in candidates {
            let adapter = self.adapter.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                adapter.runner_state(&c).await
            });
        }
        let mut out = Vec::with_capacity(total);
        let mut done = 0usize;
        while let Some(joined) = set.join_next().await {
            let state = joined
                .map_err(|e| SourceError::Setup(format!("runner detail task failed: {e}")))?
                .map_err(|e| gitlab_error("gitlab runner details", &e))?;
            done += 1;
            if let Some(s) = state {
                out.push(to_runner(s, &self.prefix, pools));
            }
            progress.stage(PART, format!("runner details {done} of {total}"));
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Pending jobs of the configured scope, as the controller reads them. A scope entry
    /// the adapter had to skip (a project or group it cannot read) fails the whole read:
    /// the check never reports a queue it knows to be incomplete.
    ///
    /// # Errors
    ///
    /// The adapter's error, or the skipped entries ([`SourceError::GitLab`]).
    pub async fn pending_jobs(
        &self,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<Vec<PendingJob>, SourceError> {
        const PART: &str = "gitlab jobs";
        const WHAT: &str = "gitlab pending jobs";
        progress.stage(PART, "listing pending jobs");
        let jobs = self
            .adapter
            .queued_jobs()
            .await
            .map_err(|e| gitlab_error(WHAT, &e))?;
        let skipped = self.adapter.skipped_scope();
        if !skipped.is_empty() {
            let reason = skipped
                .iter()
                .map(|p| format!("{}: {}", p.entry, p.reason))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(SourceError::GitLab {
                what: WHAT,
                reason: format!("not read: {reason}"),
            });
        }
        let mut out: Vec<PendingJob> = jobs.into_iter().map(|j| to_job(j, now)).collect();
        out.sort_by_key(|j| j.id);
        Ok(out)
    }
}

/// What a GitLab status code usually means for the check.
pub fn hint(status: u16) -> &'static str {
    match status {
        401 => " (token refused)",
        403 => " (token lacks permission)",
        404 => " (not found, or not visible to the token)",
        429 => " (rate limited)",
        _ => "",
    }
}

/// The adapter's error as the check words it: the request and GitLab's HTTP status with
/// what it usually means (`all runners answered HTTP 401 (token refused)`).
fn gitlab_error(what: &'static str, e: &GitLabError) -> SourceError {
    let reason = match e {
        GitLabError::Auth { status, what } | GitLabError::Server { status, what } => {
            format!("{what} answered HTTP {status}{}", hint(*status))
        }
        GitLabError::NotFound { what } => format!("{what} answered HTTP 404{}", hint(404)),
        GitLabError::RateLimited { what, retry_after } => format!(
            "{what} answered HTTP 429{} (retry after {}s)",
            hint(429),
            retry_after.as_secs()
        ),
        other => other.to_string(),
    };
    SourceError::GitLab { what, reason }
}

/// Pool named by a description `<prefix><pool>-...`; the longest matching pool wins.
pub fn pool_of(description: &str, prefix: &str, pools: &[String]) -> Option<String> {
    let rest = description.strip_prefix(prefix)?;
    pools
        .iter()
        .filter(|p| {
            rest.strip_prefix(p.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('-'))
        })
        .max_by_key(|p| p.len())
        .cloned()
}

/// The check's runner: the pool from the maintenance note when it names a configured pool,
/// else from the description. GitLab before 16 reports a paused runner's status as `paused`
/// (hiding its liveness): it is then judged by its last contact.
fn to_runner(s: RunnerState, prefix: &str, pools: &[String]) -> Runner {
    let status_text = s.status.unwrap_or_default();
    let mut status = RunnerStatus::parse(&status_text).unwrap_or(RunnerStatus::Offline);
    if status == RunnerStatus::Paused {
        status = match s.contacted_at {
            None => RunnerStatus::NeverContacted,
            Some(_) => RunnerStatus::Online,
        };
    }
    let pool = s
        .pool
        .filter(|p| pools.contains(p))
        .or_else(|| pool_of(&s.description, prefix, pools));
    Runner {
        id: s.id,
        pool,
        description: s.description,
        status,
        paused: s.paused || status_text == "paused",
        created_at: Some(s.created_at),
        contacted_at: s.contacted_at,
    }
}

/// The check's job: queued since GraphQL's `queuedAt`, else `now` minus the REST
/// `queued_duration`, else since creation; never in the future.
fn to_job(j: QueuedJob, now: DateTime<Utc>) -> PendingJob {
    let queued_at = match (j.queued_at, j.queued_for) {
        (Some(at), _) => at,
        (None, Some(d)) => {
            now - chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero())
        }
        (None, None) => j.created_at,
    };
    PendingJob {
        id: j.id,
        project_id: j.project_id.unwrap_or(0),
        tags: j.tags.into_iter().collect(),
        queued_at: queued_at.min(now),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_the_longest_pool_name_after_the_prefix() {
        let pools = vec!["docker".to_string(), "docker-priv".to_string()];
        assert_eq!(
            pool_of("ci-docker-priv-7", "ci-", &pools).as_deref(),
            Some("docker-priv")
        );
        assert_eq!(
            pool_of("ci-docker-7", "ci-", &pools).as_deref(),
            Some("docker")
        );
        assert_eq!(pool_of("ci-dockerx-7", "ci-", &pools), None);
        assert_eq!(pool_of("other-docker-7", "ci-", &pools), None);
    }

    #[test]
    fn queued_duration_wins_over_created_at() {
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let created: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let j = QueuedJob {
            id: 5,
            project_id: Some(9),
            tags: ["docker".to_string()].into(),
            created_at: created,
            queued_at: None,
            queued_for: Some(Duration::from_millis(60_500)),
        };
        let p = to_job(j, now);
        assert_eq!(p.queued_at, now - chrono::Duration::milliseconds(60_500));
        assert_eq!(p.project_id, 9);
        let j = QueuedJob {
            id: 6,
            project_id: None,
            tags: Default::default(),
            created_at: created,
            queued_at: None,
            queued_for: None,
        };
        assert_eq!(to_job(j, now).queued_at, created);
    }

    #[test]
    fn a_refused_token_is_worded_with_the_http_status() {
        let e = GitLabError::Auth {
            status: 401,
            what: "all runners".into(),
        };
        assert_eq!(
            gitlab_error("gitlab runner list", &e).to_string(),
            "gitlab runner list: all runners answered HTTP 401 (token refused)"
        );
    }
}
