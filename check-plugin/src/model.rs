//! What the check looks at: one [`Snapshot`] of GitLab, OpenStack and the controller,
//! plus the controller's `/status` document ([`ControllerStatus`], defined by the controller).
//!
//! The sources fill these types; [`crate::evaluate()`] reads them. No I/O here.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Everything one check run observed. Each part is fetched independently, so one
/// unreachable API makes only the subchecks that need it UNKNOWN.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The controller id from the config: runner descriptions start with `<id>-`.
    pub controller_id: String,
    /// The configured pools, in config order.
    pub pools: Vec<PoolInfo>,
    /// This controller's GitLab runners.
    pub runners: Fetched<Vec<Runner>>,
    /// This controller's servers (owned by its tag).
    pub servers: Fetched<Vec<Server>>,
    /// Compute quota of the project.
    pub quota: Fetched<Quota>,
    /// Pending jobs of the watched projects.
    pub pending: Fetched<Vec<PendingJob>>,
    /// The controller's heartbeat.
    pub controller: Fetched<ControllerStatus>,
}

/// One part of a [`Snapshot`]: not asked for, obtained, or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched<T> {
    /// No selected subcheck needs it.
    Skipped,
    /// Obtained.
    Ok(T),
    /// Could not be obtained; the message names what failed (never a secret).
    Failed(String),
}

impl<T> Fetched<T> {
    /// The value, or the failure message.
    ///
    /// # Errors
    ///
    /// The failure message, or `not fetched` for [`Fetched::Skipped`].
    pub fn as_result(&self) -> Result<&T, &str> {
        match self {
            Fetched::Ok(v) => Ok(v),
            Fetched::Failed(m) => Err(m),
            Fetched::Skipped => Err("not fetched"),
        }
    }
}

/// What the check needs to know about a configured pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolInfo {
    /// Pool name (part of server names and runner descriptions).
    pub name: String,
    /// Hard cap on VMs (the base policy's `limit`).
    pub limit: u32,
    /// How long a VM may take to boot and register its runner.
    pub boot_timeout: Duration,
    /// Job tags the pool's runners accept (to attribute pending jobs).
    pub tags: Vec<String>,
    /// Whether the pool takes untagged jobs.
    pub run_untagged: bool,
}

/// GitLab's view of a runner (`status` as the REST API reports it).
#[derive(Debug, Clone, PartialEq)]
pub struct Runner {
    /// Runner id.
    pub id: u64,
    /// Description: the server name for runners the controller creates.
    pub description: String,
    /// Pool derived from the description, if it names a configured pool.
    pub pool: Option<String>,
    /// GitLab's status.
    pub status: RunnerStatus,
    /// Paused runners take no job (parked or draining).
    pub paused: bool,
    /// When the runner was created (grace for never-contacted runners).
    pub created_at: Option<DateTime<Utc>>,
    /// Last contact; `None` when never contacted or when the detail call was skipped.
    pub contacted_at: Option<DateTime<Utc>>,
}

/// A runner's REST `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunnerStatus {
    /// Contacted within the last two hours.
    Online,
    /// Not contacted for two hours.
    Offline,
    /// Not contacted (nor created) for seven days.
    Stale,
    /// Never contacted.
    NeverContacted,
    /// Paused (older GitLab reports this instead of online/offline for paused runners).
    Paused,
}

impl RunnerStatus {
    /// The REST spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerStatus::Online => "online",
            RunnerStatus::Offline => "offline",
            RunnerStatus::Stale => "stale",
            RunnerStatus::NeverContacted => "never_contacted",
            RunnerStatus::Paused => "paused",
        }
    }

    /// Parses the REST spelling (`active` is the pre-16 spelling of online).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "online" | "active" => RunnerStatus::Online,
            "offline" => RunnerStatus::Offline,
            "stale" => RunnerStatus::Stale,
            "never_contacted" | "not_connected" => RunnerStatus::NeverContacted,
            "paused" => RunnerStatus::Paused,
            _ => return None,
        })
    }
}

/// An owned server, reduced to what the check reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Nova id.
    pub id: String,
    /// Server name (the runner's description).
    pub name: String,
    /// Pool from metadata or tag.
    pub pool: Option<String>,
    /// Nova state.
    pub status: ServerStatus,
    /// Creation time: ages are measured from here.
    pub created: DateTime<Utc>,
    /// The runner created for it (`autoscaler-runner-id` metadata).
    pub runner_id: Option<u64>,
}

/// A server's state.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerStatus {
    /// `BUILD`.
    Building,
    /// `ACTIVE`.
    Active,
    /// `ERROR` with Nova's fault message, if any.
    Error(Option<String>),
    /// Being deleted.
    Deleting,
    /// Anything else (`SHUTOFF`, ...), verbatim.
    Other(String),
}

impl ServerStatus {
    /// Short name for output.
    pub fn label(&self) -> &str {
        match self {
            ServerStatus::Building => "BUILD",
            ServerStatus::Active => "ACTIVE",
            ServerStatus::Error(_) => "ERROR",
            ServerStatus::Deleting => "DELETING",
            ServerStatus::Other(s) => s,
        }
    }
}

/// Compute quota, instances only (cores and RAM need flavor sizes the check does not look up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Instances counted against the quota now.
    pub used_instances: u64,
    /// Maximum instances, `None` when unlimited.
    pub max_instances: Option<u64>,
}

impl Quota {
    /// How many more servers fit, `None` when unlimited.
    pub fn servers_left(&self) -> Option<u64> {
        self.max_instances
            .map(|m| m.saturating_sub(self.used_instances))
    }
}

/// A pending job of a watched project.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJob {
    /// Job id.
    pub id: u64,
    /// Project id.
    pub project_id: u64,
    /// The job's tags.
    pub tags: Vec<String>,
    /// When it entered the queue (or was created, when GitLab gives no queue duration).
    pub queued_at: DateTime<Utc>,
}

/// The controller's heartbeat document, served as JSON on `GET /status` at the config's
/// `controller.listen` address. One definition for both sides: the controller serves
/// `autoscaler::endpoint::ControllerStatus` and the check parses the same type (the schema is
/// documented in `docs/icinga.md`).
pub use autoscaler_core::status::{ControllerPoolStatus, ControllerStatus};
