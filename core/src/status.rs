//! The controller's `/status` document: a wire contract between `autoscaler run` (which
//! serves it) and the check plugin (which reads it). Field names are the contract; a test in
//! `tests/` keeps both sides in step.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// `/status`: the document the check plugin reads. Field names are a wire contract (the
/// check plugin deserialises exactly these; a test in `tests/` keeps them in step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ControllerStatus {
    /// `[controller] id`.
    pub controller_id: String,
    /// Version of the controller.
    pub version: String,
    /// Start of the last tick, successful or not.
    pub last_tick_at: Option<Timestamp>,
    /// End of the last successful tick.
    pub last_success_at: Option<Timestamp>,
    /// Error of the most recent tick (no secrets), `None` when it succeeded.
    pub last_error: Option<String>,
    /// Since when GitLab cannot be read (`None` while it can): no action is taken then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_unavailable_since: Option<Timestamp>,
    /// Why GitLab cannot be read (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_error: Option<String>,
    /// Class of `gitlab_error`: `auth` (the token is refused: fix it, retried at a steady
    /// pace), `unavailable` (timeouts, 5xx, 429: retried with backoff), `misconfigured` (a
    /// project or group that does not exist, a refused request) or `unexpected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_error_kind: Option<String>,
    /// Since when the cloud cannot be listed (`None` while it can): ticks fail then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openstack_unavailable_since: Option<Timestamp>,
    /// Why the cloud cannot be listed (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openstack_error: Option<String>,
    /// Class of `openstack_error`: `auth` (the credentials are refused), `unavailable`,
    /// `misconfigured` or `unexpected`, as for `gitlab_error_kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openstack_error_kind: Option<String>,
    /// Per pool.
    pub pools: Vec<ControllerPoolStatus>,
}

/// One pool in [`ControllerStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerPoolStatus {
    /// Pool name.
    pub name: String,
    /// VMs in every state.
    pub vms: u32,
    /// Target after the last plan.
    pub desired: u32,
    /// Pending jobs attributed to the pool.
    pub pending_jobs: u32,
    /// The pool's circuit breaker is open.
    pub circuit_open: bool,
    /// What held the pool's growth back in the last plan (limit, quota, backoff, breaker),
    /// worded as `plan` words it.
    #[serde(default)]
    pub held_back: Vec<String>,
}
