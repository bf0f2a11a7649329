//! Domain types shared by the planner, the observer, the simulator and the adapters.
//!
//! No I/O here. Everything the planner needs is a plain value: what GitLab and OpenStack
//! reported ([`Observed`]) and what the operator configured, resolved for the current
//! moment ([`Policy`]). Adapters map their HTTP DTOs into these types; nothing here knows
//! about HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Wall-clock instant in UTC. Server and job ages come from API timestamps, so the
/// planner works in wall-clock time; `now` is always a parameter, never read here.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Identifier of one server in the cloud (a Nova UUID, or a simulator id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(pub String);

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifier of one GitLab runner.
pub type RunnerId = u64;

/// A job GitLab has queued that no runner has picked up yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJob {
    /// GitLab job id; used to keep iteration deterministic.
    pub id: u64,
    /// The job's tags (`tag_list`): a pool can run it only if these are a subset of its tags.
    pub tags: BTreeSet<String>,
    /// When the job became pending, for queue-age reporting.
    pub queued_since: Timestamp,
}

/// What the cloud says about a server, reduced to what the controller acts on (the one
/// cloud-side state; the planner derives its [`crate::plan::VmState`] from it and the runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudStatus {
    /// Nova `BUILD`: scheduled or booting.
    Building,
    /// Nova `ACTIVE`: running.
    Active,
    /// Nova `ERROR`, with the fault message when Nova reports one (e.g. "No valid host",
    /// "Quota exceeded for instances").
    Error {
        /// Nova's fault message.
        fault: Option<String>,
    },
    /// Being deleted (`DELETED`, `SOFT_DELETED`, or task state `deleting`).
    Deleting,
    /// Any other Nova status (`SHUTOFF`, `REBOOT`, ...), kept verbatim.
    Other(String),
}

impl CloudStatus {
    /// Whether the server exists and is not on its way out or broken: `ACTIVE`, or another
    /// status such as `SHUTOFF` or `REBOOT`, which is judged like `ACTIVE` (a stopped VM's
    /// runner stops contacting GitLab, so it goes offline and is replaced).
    pub fn is_up(&self) -> bool {
        matches!(self, CloudStatus::Active | CloudStatus::Other(_))
    }
}

/// What GitLab says about the runner registered for one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerView {
    /// The runner's id.
    pub id: RunnerId,
    /// Paused runners take no new job: used both to park surplus VMs and to drain.
    pub paused: bool,
    /// Last contact of the VM's gitlab-runner; `None` = never contacted (still booting).
    pub contacted_at: Option<Timestamp>,
    /// Jobs running on this runner right now. A VM with running jobs is never deleted.
    pub running_jobs: u32,
    /// Jobs this runner has started so far, for `max_builds` retirement.
    pub jobs_run: u32,
    /// When a job last started or finished on this runner; idle time is measured from it.
    pub last_job_at: Option<Timestamp>,
    /// The running jobs with when each was created (as far as GitLab says): a job taken by
    /// a warm VM between two polls is never seen pending, and the forecast learns its
    /// arrival from here.
    pub running: Vec<JobArrival>,
}

/// A job and when it became pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobArrival {
    /// Job id.
    pub id: u64,
    /// When it was created (queued).
    pub queued_since: Timestamp,
}

/// How much the observation knows about a VM's runner.
///
/// One observation is never proof: a runner missing from a listing (offset pages shift
/// when runners are deleted between page requests; admins edit descriptions; a listing can
/// be cut short) is [`RunnerLink::Unknown`] until GitLab positively confirms it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunnerLink {
    /// GitLab reported the runner this tick: [`Vm::runner`] holds it.
    #[default]
    Seen,
    /// GitLab did not report the runner and its absence is not proven (not listed, the
    /// `GET /runners/:id` probe failed or answered 404 only once, GitLab unreachable, or the
    /// server carries no runner id). Such a VM counts against `limit`, is not capacity,
    /// and is never deleted: it might be running a job.
    Unknown,
    /// `GET /runners/:id` answered 404 on two observations at least one poll interval
    /// apart: no job can run on this VM, so it is removed.
    Gone,
}

/// One VM owned by this controller: the server joined with its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// Server id.
    pub id: VmId,
    /// Server name (also the runner description).
    pub name: String,
    /// Pool the VM belongs to (from its ownership tag).
    pub pool: String,
    /// When the server was created; boot timeout and orphan grace count from here.
    pub created_at: Timestamp,
    /// The cloud's view.
    pub phase: CloudStatus,
    /// The runner, or `None` when GitLab has no runner for this server (an orphan server,
    /// or a runner deleted out of band).
    pub runner: Option<RunnerView>,
    /// What is known about the runner when [`Vm::runner`] is `None` (`Seen` otherwise).
    pub runner_link: RunnerLink,
    /// Since when the controller has seen this server in the cloud's deleting state
    /// (`None` when it is not deleting): a delete that does not finish is re-issued.
    pub deleting_since: Option<Timestamp>,
    /// An address of the server, for operators (`status`); not used by the planner.
    pub address: Option<String>,
}

/// A runner this controller created whose server does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanRunner {
    /// The runner's id.
    pub id: RunnerId,
    /// Pool named in the runner's description or tags, when known.
    pub pool: Option<String>,
    /// When the runner was created: runners are created before their servers, so a young
    /// runner without a server may simply be waiting for its server.
    pub created_at: Timestamp,
    /// Jobs running on it (a runner without a VM cannot run one; reported for safety).
    pub running_jobs: u32,
    /// Seen without a server on two observations at least one poll interval apart: only
    /// then may it be deleted (one server listing is no proof either).
    pub confirmed: bool,
}

/// Remaining cloud quota, as far as the cloud reports limits (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaHeadroom {
    /// Instances that can still be created.
    pub instances: Option<u32>,
    /// vCPUs still free.
    pub cores: Option<u64>,
    /// RAM still free, in MiB.
    pub ram_mb: Option<u64>,
}

/// Size of a pool's flavor, used to turn core/RAM headroom into instance headroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlavorSize {
    /// vCPUs per server.
    pub vcpus: u32,
    /// RAM per server in MiB.
    pub ram_mb: u64,
}

/// Recent create/boot failures of one pool, kept in the controller's memory between ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FailureHistory {
    /// Failures since the last VM of this pool came up successfully.
    pub consecutive: u32,
    /// When the last failure happened.
    pub last_failure_at: Option<Timestamp>,
}

/// Everything the planner looks at: one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// Pending jobs of the configured scope. `None` when GitLab could not be read this
    /// tick: then nothing that might be busy is deleted and nothing is created.
    pub pending: Option<Vec<PendingJob>>,
    /// Owned VMs.
    pub vms: Vec<Vm>,
    /// Owned runners without a server.
    pub orphan_runners: Vec<OrphanRunner>,
    /// Cloud quota headroom, when known.
    pub quota: Option<QuotaHeadroom>,
    /// Flavor sizes per pool, when known.
    pub flavors: BTreeMap<String, FlavorSize>,
    /// Failure history per pool.
    pub failures: BTreeMap<String, FailureHistory>,
    /// Creates whose outcome is unknown (the create call failed in a way that may still
    /// have created the server), per pool, not yet seen as a server or as a runner. Each
    /// counts against `limit` and `max_growth` until it is seen or proven void.
    pub unsettled_creates: BTreeMap<String, u32>,
    /// Until when the controller holds creates after a start without stored memory (`None`
    /// = not holding): one runner listing is then all it knows, and a listing can lack a
    /// serverless runner of ours (a create in flight when it stopped) that counts against
    /// `limit`.
    pub starting_until: Option<Timestamp>,
    /// Jobs expected to arrive per pool within the pre-warm look-ahead, learned from past
    /// arrivals only (see [`crate::forecast`]). Kept warm like idle slots: the idle reserve
    /// is `max(idle_count, expected)`.
    pub expected: BTreeMap<String, u32>,
    /// Wait-target pools' reserve, sized from the arrival forecast and the learned boot
    /// time (see [`crate::reserve`]); pools in the idle mode are absent.
    pub reserve: BTreeMap<String, crate::reserve::Reserve>,
    /// Most jobs that arrived per pool within one poll interval during the last hour:
    /// that many surplus VMs stay unparked, so jobs arriving between two polls find an
    /// unpaused runner (parking them would make those jobs wait for the next poll).
    pub arrivals_per_poll: BTreeMap<String, u32>,
}

/// The scaling values in force for one pool at one moment (periods already applied):
/// the config crate's validated policy type, used as is.
pub use autoscaler_config::Policy as Limits;

/// One pool as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Pool name (unique).
    pub name: String,
    /// Runner tags: a job is runnable here if its tags are a subset.
    pub tags: BTreeSet<String>,
    /// Whether the pool's runners take untagged jobs.
    pub run_untagged: bool,
    /// Concurrent jobs per VM (>= 1).
    pub capacity: u32,
    /// Pause surplus idle runners early so new jobs land on the VMs that stay.
    pub park_surplus: bool,
    /// Values in force now.
    pub limits: Limits,
    /// How bursts that recur at the same time of day are learned and pre-warmed for.
    pub forecast: crate::forecast::ForecastSettings,
    /// Wait-target mode: share of jobs (percent) that must wait at most
    /// `limits.target_wait`.
    pub target_percentile: u32,
    /// Servers are billed per started period of this length: a surplus VM is removed just
    /// before its next period starts. `None`: per-second billing.
    pub billing_period: Option<Duration>,
}

impl PoolPolicy {
    /// Whether a job with these tags can run on this pool's runners (GitLab's rule: the
    /// job's tags are a subset of the runner's; untagged jobs only with `run_untagged`).
    pub fn can_run(&self, job_tags: &BTreeSet<String>) -> bool {
        if job_tags.is_empty() {
            self.run_untagged
        } else {
            job_tags.is_subset(&self.tags)
        }
    }
}

/// Create retry and circuit-breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub base: Duration,
    /// Upper bound of the exponential wait.
    pub max: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker blocks creates before one probe is allowed.
    pub breaker_cooldown: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(600),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(900),
        }
    }
}

/// The whole policy: pools in config order (order decides which pool counts a job that
/// several pools could run) and the retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Pools in config order.
    pub pools: Vec<PoolPolicy>,
    /// Create backoff and circuit breaker.
    pub backoff: Backoff,
    /// A runner whose last contact is older than this while its server is ACTIVE is
    /// unhealthy: no capacity, replaced, and removed by the safe protocol.
    pub offline_after: Duration,
    /// A server still deleting this long after it was first seen deleting gets its delete
    /// re-issued (soft-deleted or stuck servers).
    pub delete_retry: Duration,
    /// How often the controller ticks (the reserve's lead time and the billing margin).
    pub poll_interval: Duration,
}

impl Policy {
    /// Default of [`Policy::offline_after`]: a few minutes over gitlab-runner's 3 s check
    /// interval and GitLab's minute-granular `contacted_at`.
    pub const DEFAULT_OFFLINE_AFTER: Duration =
        autoscaler_config::Controller::DEFAULT_OFFLINE_AFTER;
    /// Default of [`Policy::delete_retry`].
    pub const DEFAULT_DELETE_RETRY: Duration = Duration::from_secs(180);
    /// Default of [`Policy::poll_interval`] (the config's default).
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);
}

/// Converts a `std` duration to a chrono one, saturating (config durations are small).
pub fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
