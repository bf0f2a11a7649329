//! What a tick reports: its summary, what it saw and decided, or why it could not act, as
//! one [`TickReport`] the reconciler publishes on one watch channel. The HTTP endpoint
//! (metrics, `/status`, `/healthz`) and `run --dev` read that channel; neither is called by
//! the reconciler, and this module depends on neither.

use std::collections::{BTreeMap, VecDeque};

use autoscaler_core::model::{Observed, Timestamp};
use autoscaler_core::plan::Plan;
use autoscaler_core::ports::{CloudError, CloudErrorKind, GitLabError};

/// What kind of failure stopped a tick or kept a service unread: decides the retry pace,
/// the log level, and the `kind` in `/status` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Credentials refused: OpenStack's 401 after a fresh token, GitLab's 401 or 403. Only
    /// the operator can fix it: logged as an error once, retried at a steady pace.
    Auth,
    /// No answer in time, connection refused, 5xx, 429, out of quota: retried with
    /// exponential backoff.
    Unavailable,
    /// The settings are wrong: a 404 on something configured (a flavor gone, an unknown
    /// project), a name that resolves to nothing, a missing endpoint, a request the service
    /// refuses as configured, a bad clouds.yaml. Handled as [`FailureKind::Auth`].
    Misconfigured,
    /// An answer the adapter cannot understand: retried with exponential backoff.
    Unexpected,
}

// === impl FailureKind ===

impl FailureKind {
    /// The class of a failed cloud call.
    pub fn from_cloud(kind: CloudErrorKind) -> Self {
        match kind {
            CloudErrorKind::Auth => FailureKind::Auth,
            CloudErrorKind::Transient | CloudErrorKind::Quota => FailureKind::Unavailable,
            CloudErrorKind::Rejected | CloudErrorKind::NotFound | CloudErrorKind::Misconfigured => {
                FailureKind::Misconfigured
            }
            CloudErrorKind::Unexpected => FailureKind::Unexpected,
        }
    }

    /// The class of a failed GitLab call.
    pub fn from_gitlab(e: &GitLabError) -> Self {
        match e {
            GitLabError::Auth { .. } => FailureKind::Auth,
            GitLabError::Unreachable { .. }
            | GitLabError::RateLimited { .. }
            | GitLabError::BudgetSpent { .. }
            | GitLabError::Server { .. } => FailureKind::Unavailable,
            GitLabError::NotFound { .. }
            | GitLabError::Rejected { .. }
            | GitLabError::Misconfigured { .. } => FailureKind::Misconfigured,
            GitLabError::Unexpected { .. } => FailureKind::Unexpected,
        }
    }

    /// Stable label for `/status` and metrics: `auth`, `unavailable`, `misconfigured`,
    /// `unexpected`.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Misconfigured => "misconfigured",
            FailureKind::Unexpected => "unexpected",
        }
    }

    /// Whether only the operator can fix it (waiting longer does not help): retried at a
    /// steady pace rather than with a growing backoff.
    pub fn needs_operator(self) -> bool {
        matches!(self, FailureKind::Auth | FailureKind::Misconfigured)
    }

    /// What the operator should check, for the error log line of `service`.
    pub(crate) fn hint(self, service: &str) -> &'static str {
        match (self, service) {
            (FailureKind::Auth, "openstack") => {
                "OpenStack refused the credentials: check the password or application credential secret (clouds.yaml, secure.yaml, the OS_* variables or the [openstack] section) and that it has not expired or been revoked; retrying at a steady pace"
            }
            (FailureKind::Auth, _) => {
                "GitLab refused the token: check [gitlab] token_file or token_env, that the token has not expired or been revoked, and its scope and role; retrying at a steady pace"
            }
            (FailureKind::Misconfigured, "openstack") => {
                "OpenStack refused the request as configured: check the [openstack] section, clouds.yaml and the pools' server templates; retrying at a steady pace"
            }
            (FailureKind::Misconfigured, _) => {
                "GitLab refused the request as configured: check [gitlab] url and scope; retrying at a steady pace"
            }
            (FailureKind::Unavailable | FailureKind::Unexpected, "openstack") => {
                "tick failed: openstack unavailable; retrying with backoff"
            }
            (FailureKind::Unavailable | FailureKind::Unexpected, _) => {
                "gitlab unavailable this tick: no action"
            }
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A tick that failed: the cloud could not be listed, so nothing was planned or done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listing owned servers: {error}")]
pub struct TickError {
    /// The class, from the cloud error's kind.
    pub kind: FailureKind,
    /// The cloud's error (no secrets).
    pub error: CloudError,
}

/// A service that cannot be read: since when, what kind of failure, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The first failed tick of this outage.
    pub since: Timestamp,
    /// The kind of the latest failure.
    pub kind: FailureKind,
    /// The latest failure (no secrets).
    pub error: String,
}

/// What one tick did, for the summary log line, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// When the tick observed.
    pub at: Option<Timestamp>,
    /// Pending jobs seen (`None` = GitLab unavailable).
    pub pending: Option<usize>,
    /// Owned servers seen.
    pub servers: usize,
    /// Owned runners seen.
    pub runners: usize,
    /// Actions planned, by kind.
    pub planned: BTreeMap<&'static str, u32>,
    /// Actions that failed, with a message (no secrets).
    pub failures: Vec<String>,
    /// Deletes skipped because the runner still ran a job at the re-check.
    pub deletes_refused: u32,
    /// Actions that were carried out, by kind and reason label.
    pub applied: BTreeMap<(&'static str, &'static str), u32>,
    /// Since when GitLab cannot be read, and why (`None` when this tick read it).
    pub gitlab_down: Option<Outage>,
}

/// What one tick saw and decided.
#[derive(Debug, Clone)]
pub struct TickView {
    /// When the tick observed.
    pub at: Timestamp,
    /// What it observed.
    pub observed: Observed,
    /// What it planned (and then applied).
    pub plan: Plan,
    /// What applying did.
    pub summary: TickSummary,
}

/// One tick as the reconciler publishes it.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// Sequence number of the tick since the start (1 = the first).
    pub seq: u64,
    /// When it started.
    pub started: Timestamp,
    /// How long it took.
    pub seconds: f64,
    /// What it saw, decided and did; or, when the cloud could not be listed, the outage
    /// (nothing was planned or done).
    pub outcome: Result<TickView, Outage>,
    /// Counts since the start: a reader that skips reports (a watch channel keeps only the
    /// latest) still counts everything.
    pub totals: TickTotals,
}

/// Counts since the controller started, carried by every [`TickReport`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickTotals {
    /// Actions carried out, by kind and reason label.
    pub applied: BTreeMap<(&'static str, &'static str), u64>,
    /// Ticks that could not act because of a service, by service and failure kind.
    pub failures: BTreeMap<(&'static str, &'static str), u64>,
    /// Durations of the latest ticks by sequence number (at most [`RECENT_TICKS`]).
    pub recent_seconds: VecDeque<(u64, f64)>,
}

/// How many tick durations a report carries.
pub const RECENT_TICKS: usize = 64;

impl TickTotals {
    /// Adds one tick: its number, duration, and summary or outage.
    pub fn add(&mut self, seq: u64, seconds: f64, outcome: Result<&TickSummary, &Outage>) {
        match outcome {
            Ok(summary) => {
                for (label, n) in &summary.applied {
                    *self.applied.entry(*label).or_insert(0) += u64::from(*n);
                }
                if let Some(o) = &summary.gitlab_down {
                    *self.failures.entry(("gitlab", o.kind.label())).or_insert(0) += 1;
                }
            }
            Err(o) => {
                *self
                    .failures
                    .entry(("openstack", o.kind.label()))
                    .or_insert(0) += 1
            }
        }
        self.recent_seconds.push_back((seq, seconds));
        while self.recent_seconds.len() > RECENT_TICKS {
            self.recent_seconds.pop_front();
        }
    }
}
