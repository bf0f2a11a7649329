//! Ports: the narrow traits the reconciler talks through, and the domain types they carry.
//!
//! The reconciler never sees HTTP or OpenStack DTOs: it sees [`Cloud`] and the cloud-facing
//! types below. The real adapter is [`autoscaler_openstack::OpenStack`]; tests use
//! `testing::cloud::FakeCloud`. Nothing in this module does I/O.
//!
//! # Ownership scheme
//!
//! Every server this controller creates carries two Nova tags and three metadata keys:
//!
//! * tag `autoscaler:<controller-id>` ([`owner_tag`]): the only filter used to list servers.
//!   Servers without it are never listed, deleted or otherwise touched.
//! * tag `pool:<pool-name>` ([`pool_tag`]).
//! * metadata [`META_CONTROLLER`], [`META_POOL`] and [`META_RUNNER_ID`] (the GitLab runner
//!   created for the VM), so that a restarted controller can pair servers with runners.
//!
//! Nova tags may not contain `/` or `,` and are at most 60 characters long:
//! [`ControllerId::new`] and [`ownership_tags`] refuse values that would break that.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// Prefix of the ownership tag: `autoscaler:<controller-id>`.
pub const OWNER_TAG_PREFIX: &str = "autoscaler:";
/// Prefix of the pool tag: `pool:<pool-name>`.
pub const POOL_TAG_PREFIX: &str = "pool:";
/// Metadata key holding the controller id.
pub const META_CONTROLLER: &str = "autoscaler-controller";
/// Metadata key holding the pool name.
pub const META_POOL: &str = "autoscaler-pool";
/// Metadata key holding the GitLab runner id created for the server.
pub const META_RUNNER_ID: &str = "autoscaler-runner-id";
/// Longest tag Nova accepts.
pub const MAX_TAG_LEN: usize = 60;

/// Result of a [`Cloud`] call.
pub type CloudResult<T> = Result<T, CloudError>;

/// The cloud as the reconciler sees it.
///
/// Implementations must be idempotent where the method says so, and must only ever return or
/// touch servers carrying this controller's ownership tag.
pub trait Cloud: Send + Sync {
    /// Lists every server carrying this controller's ownership tag, in any state.
    ///
    /// # Errors
    ///
    /// A [`CloudError`] classified by [`CloudErrorKind`]; transient ones may be retried.
    fn list_owned_servers(&self) -> impl Future<Output = CloudResult<Vec<CloudServer>>> + Send;

    /// Creates one server with the ownership tags and metadata, and returns its id as soon
    /// as the cloud accepted the request (the server is usually still building).
    ///
    /// Never retried blindly by implementations: a create whose answer was lost may still
    /// have created a server, which the next [`Cloud::list_owned_servers`] will show.
    ///
    /// # Errors
    ///
    /// [`CloudErrorKind::Quota`] when the project is out of quota,
    /// [`CloudErrorKind::Rejected`] when the cloud refused the request,
    /// [`CloudErrorKind::Misconfigured`] when the template names something that does not exist.
    fn create_server(
        &self,
        req: CreateServer,
    ) -> impl Future<Output = CloudResult<ServerId>> + Send;

    /// Deletes a server. A server that no longer exists counts as deleted (`Ok`).
    ///
    /// # Errors
    ///
    /// Any failure other than "not found".
    fn delete_server(&self, id: &ServerId) -> impl Future<Output = CloudResult<()>> + Send;

    /// Reads the project's compute quota and its use.
    ///
    /// # Errors
    ///
    /// A [`CloudError`] when the limits cannot be read.
    fn quota(&self) -> impl Future<Output = CloudResult<ComputeQuota>> + Send;

    /// vCPUs and RAM of a flavor given by id or name, so that the planner can budget the
    /// cores and RAM quota, not only the instance count. `Ok(None)` when the cloud does not
    /// say (the planner then budgets instances only).
    ///
    /// # Errors
    ///
    /// The flavor cannot be resolved.
    fn flavor_size(
        &self,
        _flavor: &str,
    ) -> impl Future<Output = CloudResult<Option<crate::model::FlavorSize>>> + Send {
        async { Ok(None) }
    }
}

/// A server id as the cloud assigned it (a Nova UUID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub String);

impl ServerId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub use crate::model::CloudStatus;

impl CloudStatus {
    /// Whether this is an `Error` whose fault says the quota was exceeded: what the extras
    /// of concurrent creates that all got 202 turn into when Nova rechecks the quota.
    pub fn is_quota_error(&self) -> bool {
        matches!(self, CloudStatus::Error { fault: Some(f) } if is_quota_message(f))
    }
}

/// Whether a Nova message (an error body or a server fault) reports an exceeded quota.
pub fn is_quota_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("quota exceeded") || m.contains("exceeds quota")
}

/// One owned server as listed by [`Cloud::list_owned_servers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudServer {
    /// The cloud's id: what delete takes.
    pub id: ServerId,
    /// The name given at create time (deterministic names make duplicates visible).
    pub name: String,
    /// What the server is doing.
    pub status: CloudStatus,
    /// When the cloud created it: ages (boot timeout, idle time) are measured from here.
    pub created: DateTime<Utc>,
    /// Pool from the `autoscaler-pool` metadata (or the `pool:` tag), if present.
    pub pool: Option<String>,
    /// GitLab runner id from the `autoscaler-runner-id` metadata, to pair server and runner.
    pub runner_id: Option<u64>,
    /// All Nova tags of the server.
    pub tags: Vec<String>,
    /// An address of the server (floating first, then fixed IPv4), for operators.
    pub address: Option<String>,
}

/// Where and what to boot: a pool's server template. Names or ids are both accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTemplateSpec {
    /// Flavor name or id.
    pub flavor: String,
    /// Image name or id.
    pub image: String,
    /// Networks (names or ids) to attach, in order; at least one.
    pub networks: Vec<String>,
    /// Security groups (names or ids); empty means the project's default group.
    pub security_groups: Vec<String>,
    /// Nova key pair name, for operator SSH access.
    pub key_name: Option<String>,
    /// Availability zone, if the pool is pinned to one.
    pub availability_zone: Option<String>,
    /// Boot from a new volume of this many GiB (deleted with the server) instead of the
    /// flavor's local disk.
    pub boot_volume_size: Option<u32>,
}

impl From<&autoscaler_config::ServerTemplate> for ServerTemplateSpec {
    /// A pool's validated `[pools.server]` table.
    fn from(t: &autoscaler_config::ServerTemplate) -> Self {
        ServerTemplateSpec {
            flavor: t.flavor.clone(),
            image: t.image.clone(),
            networks: t.networks.clone(),
            security_groups: t.security_groups.clone(),
            key_name: t.key_name.clone(),
            availability_zone: t.availability_zone.clone(),
            boot_volume_size: t.boot_volume_size.map(|n| n.get()),
        }
    }
}

/// Everything needed to create one server.
#[derive(Debug, Clone)]
pub struct CreateServer {
    /// Server name (deterministic, unique per controller).
    pub name: String,
    /// The pool the server belongs to: becomes the `pool:` tag and `autoscaler-pool` metadata.
    pub pool: String,
    /// The GitLab runner created for this server, if any: `autoscaler-runner-id` metadata.
    pub runner_id: Option<u64>,
    /// Flavor, image, networks, security groups, key pair, zone, boot volume.
    pub template: ServerTemplateSpec,
    /// cloud-init user data (holds the runner token: secret, redacted in Debug).
    pub user_data: SecretString,
    /// Extra metadata; the `autoscaler-*` keys are reserved and refused here.
    pub metadata: BTreeMap<String, String>,
}

/// Compute quota of the project as the cloud reports it: limits (`None` = unlimited) and
/// current use. The planner takes what is left of it, [`ComputeQuota::headroom`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComputeQuota {
    /// Maximum number of servers, `None` when unlimited.
    pub max_instances: Option<u64>,
    /// Servers counted against the quota now.
    pub used_instances: u64,
    /// Maximum vCPUs, `None` when unlimited.
    pub max_cores: Option<u64>,
    /// vCPUs in use.
    pub used_cores: u64,
    /// Maximum RAM in MiB, `None` when unlimited.
    pub max_ram_mb: Option<u64>,
    /// RAM in use, MiB.
    pub used_ram_mb: u64,
}

impl ComputeQuota {
    /// What is left: the planner's [`crate::model::QuotaHeadroom`].
    pub fn headroom(&self) -> crate::model::QuotaHeadroom {
        crate::model::QuotaHeadroom {
            instances: self
                .max_instances
                .map(|m| u32::try_from(m.saturating_sub(self.used_instances)).unwrap_or(u32::MAX)),
            cores: self.max_cores.map(|m| m.saturating_sub(self.used_cores)),
            ram_mb: self.max_ram_mb.map(|m| m.saturating_sub(self.used_ram_mb)),
        }
    }

    /// How many more servers of `vcpus` cores and `ram_mb` MiB fit, `None` when unlimited.
    pub fn servers_left(&self, vcpus: u64, ram_mb: u64) -> Option<u64> {
        let left = |max: Option<u64>, used: u64, per: u64| {
            max.map(|m| {
                let free = m.saturating_sub(used);
                free.checked_div(per).unwrap_or(u64::MAX)
            })
        };
        [
            left(self.max_instances, self.used_instances, 1),
            left(self.max_cores, self.used_cores, vcpus),
            left(self.max_ram_mb, self.used_ram_mb, ram_mb),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The identity of one controller, carried in its ownership tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControllerId(String);

impl ControllerId {
    /// Validates a controller id: non-empty, no `/`, `,` or whitespace, and short enough for
    /// the `autoscaler:<id>` tag to fit Nova's 60 characters.
    ///
    /// # Errors
    ///
    /// [`CloudErrorKind::Misconfigured`] naming the value.
    pub fn new(id: impl Into<String>) -> CloudResult<Self> {
        let id = id.into();
        check_tag_value("controller id", &id, OWNER_TAG_PREFIX)
            .map_err(|m| CloudError::new(CloudErrorKind::Misconfigured, m))?;
        Ok(ControllerId(id))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ControllerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ownership tag of a controller: `autoscaler:<id>`.
pub fn owner_tag(controller: &ControllerId) -> String {
    format!("{OWNER_TAG_PREFIX}{}", controller.0)
}

/// The pool tag: `pool:<name>`.
pub fn pool_tag(pool: &str) -> String {
    format!("{POOL_TAG_PREFIX}{pool}")
}

/// Tags and metadata a server of `controller` in `req.pool` gets, merged with `req.metadata`.
///
/// # Errors
///
/// [`CloudErrorKind::Rejected`] when the pool name cannot be a Nova tag or `req.metadata`
/// uses a reserved `autoscaler-*` key.
pub fn ownership_labels(
    controller: &ControllerId,
    req: &CreateServer,
) -> CloudResult<(Vec<String>, BTreeMap<String, String>)> {
    check_tag_value("pool name", &req.pool, POOL_TAG_PREFIX)
        .map_err(|m| CloudError::new(CloudErrorKind::Rejected, m))?;
    for key in [META_CONTROLLER, META_POOL, META_RUNNER_ID] {
        if req.metadata.contains_key(key) {
            return Err(CloudError::new(
                CloudErrorKind::Rejected,
                format!("metadata key {key:?} is reserved for the autoscaler"),
            ));
        }
    }
    let tags = vec![owner_tag(controller), pool_tag(&req.pool)];
    let mut metadata = req.metadata.clone();
    metadata.insert(META_CONTROLLER.into(), controller.0.clone());
    metadata.insert(META_POOL.into(), req.pool.clone());
    if let Some(r) = req.runner_id {
        metadata.insert(META_RUNNER_ID.into(), r.to_string());
    }
    Ok((tags, metadata))
}

fn check_tag_value(what: &str, value: &str, prefix: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | ',') || c.is_whitespace())
    {
        return Err(format!(
            "{what} {value:?} contains {c:?}, which Nova tags do not allow"
        ));
    }
    let max = MAX_TAG_LEN - prefix.len();
    if value.chars().count() > max {
        return Err(format!(
            "{what} {value:?} is longer than {max} characters (Nova tags are at most {MAX_TAG_LEN})"
        ));
    }
    Ok(())
}

/// Class of a [`CloudError`]: what the caller should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudErrorKind {
    /// No answer, 5xx or 429: try again later.
    Transient,
    /// Out of quota: wait for servers to go away; do not retry now.
    Quota,
    /// The cloud refused the request (400, 403 without quota, 409): retrying will not help.
    Rejected,
    /// Credentials refused even after re-authenticating.
    Auth,
    /// The object does not exist (404).
    NotFound,
    /// The settings are wrong: unknown flavor/image/network, ambiguous name, bad clouds.yaml.
    Misconfigured,
    /// The cloud answered something the client cannot understand.
    Unexpected,
}

impl CloudErrorKind {
    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            CloudErrorKind::Transient => "transient",
            CloudErrorKind::Quota => "quota",
            CloudErrorKind::Rejected => "rejected",
            CloudErrorKind::Auth => "auth",
            CloudErrorKind::NotFound => "not_found",
            CloudErrorKind::Misconfigured => "misconfigured",
            CloudErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for CloudErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A failed [`Cloud`] call: its class and a message without secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct CloudError {
    kind: CloudErrorKind,
    message: String,
}

impl CloudError {
    /// Builds an error of `kind`; the message must not contain secrets.
    pub fn new(kind: CloudErrorKind, message: impl Into<String>) -> Self {
        CloudError {
            kind,
            message: message.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> CloudErrorKind {
        self.kind
    }

    /// The message, without the class prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == CloudErrorKind::Transient
    }

    /// Stable metric label of the class.
    pub fn label(&self) -> &'static str {
        self.kind.label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pool: &str) -> CreateServer {
        CreateServer {
            name: "runner-1".into(),
            pool: pool.into(),
            runner_id: Some(42),
            template: ServerTemplateSpec::default(),
            user_data: SecretString::from("glrt-secret-token"),
            metadata: BTreeMap::from([("team".to_string(), "ci".to_string())]),
        }
    }

    #[test]
    fn ownership_labels_add_tags_and_metadata() -> CloudResult<()> {
        let c = ControllerId::new("ctl-1")?;
        let (tags, meta) = ownership_labels(&c, &request("docker"))?;
        assert_eq!(tags, vec!["autoscaler:ctl-1", "pool:docker"]);
        assert_eq!(meta.get(META_CONTROLLER).map(String::as_str), Some("ctl-1"));
        assert_eq!(meta.get(META_POOL).map(String::as_str), Some("docker"));
        assert_eq!(meta.get(META_RUNNER_ID).map(String::as_str), Some("42"));
        assert_eq!(meta.get("team").map(String::as_str), Some("ci"));
        Ok(())
    }

    #[test]
    fn reserved_metadata_keys_are_refused() -> CloudResult<()> {
        let c = ControllerId::new("ctl-1")?;
        let mut req = request("docker");
        req.metadata.insert(META_POOL.into(), "other".into());
        let err = ownership_labels(&c, &req).expect_err("reserved key must be refused");
        assert_eq!(err.kind(), CloudErrorKind::Rejected);
        assert!(err.message().contains("autoscaler-pool"));
        Ok(())
    }

    #[test]
    fn controller_ids_that_break_nova_tags_are_refused() {
        for bad in ["", "a,b", "a/b", "a b", &"x".repeat(50)] {
            let err = ControllerId::new(bad).expect_err("must be refused");
            assert_eq!(err.kind(), CloudErrorKind::Misconfigured, "{bad:?}");
        }
        assert!(ControllerId::new("x".repeat(49)).is_ok());
    }

    #[test]
    fn create_request_debug_redacts_user_data() {
        let shown = format!("{:?}", request("docker"));
        assert!(!shown.contains("glrt-secret-token"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn quota_faults_are_recognised_in_error_servers_only() {
        let err = |f: &str| CloudStatus::Error {
            fault: Some(f.into()),
        };
        assert!(
            err("Quota exceeded for instances: Requested 1, but already used 2 of 2 instances")
                .is_quota_error()
        );
        assert!(!err("No valid host was found. ").is_quota_error());
        assert!(!CloudStatus::Error { fault: None }.is_quota_error());
        assert!(!CloudStatus::Other("Quota exceeded".into()).is_quota_error());
    }

    #[test]
    fn servers_left_is_the_tightest_limit_and_none_when_unlimited() {
        let q = ComputeQuota {
            max_instances: Some(10),
            used_instances: 4,
            max_cores: Some(20),
            used_cores: 12,
            max_ram_mb: None,
            used_ram_mb: 9000,
        };
        assert_eq!(q.servers_left(2, 512), Some(4));
        assert_eq!(q.servers_left(1, 512), Some(6));
        assert_eq!(ComputeQuota::default().servers_left(1, 1), None);
    }
}

// ===================================================================================
// GitLab port
// ===================================================================================

/// Marker every runner created by a controller carries in its `maintenance_note`, followed
/// by a space and the controller id. Ownership needs both this marker and the description
/// prefix `<controller-id>-`.
pub const RUNNER_MARKER: &str = "managed-by: gitlab-openstack-autoscaler";

/// Result of a [`GitLab`] call.
pub type GitLabResult<T> = Result<T, GitLabError>;

/// GitLab as the reconciler sees it: pending jobs of the configured scope and the runners
/// this controller owns. HTTP DTOs never leave the adapter.
pub trait GitLab: Send + Sync {
    /// Pending jobs of the configured scope (tags included).
    ///
    /// # Errors
    ///
    /// A [`GitLabError`] when the scope could not be read well enough to plan on it.
    fn pending_jobs(
        &self,
    ) -> impl Future<Output = GitLabResult<Vec<crate::model::PendingJob>>> + Send;

    /// Runners this controller owns: description prefix `<controller-id>-` AND the
    /// [`RUNNER_MARKER`] in the maintenance note, with their job counters.
    ///
    /// # Errors
    ///
    /// A [`GitLabError`] when the runners or their jobs could not be listed.
    fn owned_runners(&self) -> impl Future<Output = GitLabResult<Vec<OwnedRunner>>> + Send;

    /// One runner by id (`GET /runners/:id` plus its running jobs), whatever its
    /// description or maintenance note say now: the caller knows it is ours from the
    /// server's `autoscaler-runner-id` metadata. This is the only positive evidence that a
    /// runner is gone: `Ok(None)` means GitLab answered 404. A listing that merely lacks
    /// the runner proves nothing (offset pages shift, admins edit descriptions).
    ///
    /// # Errors
    ///
    /// Any failure other than 404 (the runner's presence is then unknown).
    fn runner_by_id(
        &self,
        id: crate::model::RunnerId,
    ) -> impl Future<Output = GitLabResult<Option<OwnedRunner>>> + Send;

    /// Scope entries (projects, groups) whose pending jobs could not be read on the last
    /// [`GitLab::pending_jobs`] call and were skipped, with why. Their jobs are missing
    /// from the list, so demand is undercounted for them; everything else goes on.
    fn skipped_scope(&self) -> Vec<ScopeProblem> {
        Vec::new()
    }

    /// Creates one runner (`POST /user/runners`) and returns its id and authentication token.
    /// Not retried blindly: a lost answer may still have created a runner, which the next
    /// [`GitLab::owned_runners`] shows.
    ///
    /// # Errors
    ///
    /// [`GitLabError::Rejected`] or [`GitLabError::Auth`] when GitLab refuses the request.
    fn create_runner(
        &self,
        req: CreateRunner,
    ) -> impl Future<Output = GitLabResult<NewRunner>> + Send;

    /// Pauses or resumes a runner.
    ///
    /// # Errors
    ///
    /// [`GitLabError::NotFound`] when the runner does not exist, or any other failure.
    fn set_paused(
        &self,
        id: crate::model::RunnerId,
        paused: bool,
    ) -> impl Future<Output = GitLabResult<()>> + Send;

    /// Jobs running on a runner now: the re-check right before a delete.
    ///
    /// # Errors
    ///
    /// Any failure to list the runner's running jobs.
    fn running_jobs(
        &self,
        id: crate::model::RunnerId,
    ) -> impl Future<Output = GitLabResult<u32>> + Send;

    /// Deletes a runner. A runner that no longer exists counts as deleted (`Ok`).
    ///
    /// # Errors
    ///
    /// Any failure other than "not found".
    fn delete_runner(
        &self,
        id: crate::model::RunnerId,
    ) -> impl Future<Output = GitLabResult<()>> + Send;
}

/// One runner owned by this controller, as [`GitLab::owned_runners`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRunner {
    /// Runner id.
    pub id: crate::model::RunnerId,
    /// Description: the server name, which pairs the runner with its VM.
    pub description: String,
    /// Pool from the `pool: <name>` line of the maintenance note, when present.
    pub pool: Option<String>,
    /// Paused runners take no new job.
    pub paused: bool,
    /// When GitLab created the runner (runners are created before their servers).
    pub created_at: DateTime<Utc>,
    /// Last contact of its gitlab-runner; `None` = never contacted.
    pub contacted_at: Option<DateTime<Utc>>,
    /// Jobs running on it now.
    pub running_jobs: u32,
    /// Jobs it has started so far (for `max_builds`).
    pub jobs_run: u32,
    /// Latest start or finish of one of its jobs: idle time counts from here.
    pub last_job_at: Option<DateTime<Utc>>,
    /// The running jobs with their creation time, where GitLab gives it (the forecast
    /// learns arrivals that no poll saw pending from these).
    pub running: Vec<crate::model::JobArrival>,
}

impl OwnedRunner {
    /// The planner's view of this runner.
    pub fn view(&self) -> crate::model::RunnerView {
        crate::model::RunnerView {
            id: self.id,
            paused: self.paused,
            contacted_at: self.contacted_at,
            running_jobs: self.running_jobs,
            jobs_run: self.jobs_run,
            last_job_at: self.last_job_at,
            running: self.running.clone(),
        }
    }

    /// The planner's view of this runner when no server carries it.
    pub fn orphan(&self) -> crate::model::OrphanRunner {
        crate::model::OrphanRunner {
            id: self.id,
            pool: self.pool.clone(),
            created_at: self.created_at,
            running_jobs: self.running_jobs,
            confirmed: false,
        }
    }
}

/// A scope entry whose pending jobs could not be read, reported and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeProblem {
    /// The entry as configured (`project 12`, `group ci/packages`).
    pub entry: String,
    /// Why it was skipped (no secrets).
    pub reason: String,
}

/// Where a runner is registered: `runner_type` and its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerScope {
    /// `instance_type` (admin token).
    Instance,
    /// `group_type` under this group id.
    Group(u64),
    /// `project_type` under this project id.
    Project(u64),
}

impl From<autoscaler_config::RunnerType> for RunnerScope {
    fn from(t: autoscaler_config::RunnerType) -> Self {
        match t {
            autoscaler_config::RunnerType::Instance => RunnerScope::Instance,
            autoscaler_config::RunnerType::Group { group_id } => RunnerScope::Group(group_id),
            autoscaler_config::RunnerType::Project { project_id } => {
                RunnerScope::Project(project_id)
            }
        }
    }
}

/// Everything needed to create one runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRunner {
    /// Runner type and owner (from the pool).
    pub scope: RunnerScope,
    /// Description: the server name (must start with `<controller-id>-`).
    pub description: String,
    /// Pool name, recorded in the maintenance note.
    pub pool: String,
    /// Job tags the runner accepts.
    pub tags: std::collections::BTreeSet<String>,
    /// Whether it takes untagged jobs.
    pub run_untagged: bool,
    /// `ref_protected` when true, `not_protected` otherwise.
    pub ref_protected: bool,
    /// Locked to its current projects.
    pub locked: bool,
    /// Maximum job timeout in seconds, if any.
    pub maximum_timeout: Option<u64>,
}

/// A freshly created runner: its id and the `glrt-` token the VM registers with.
#[derive(Debug, Clone)]
pub struct NewRunner {
    /// Runner id.
    pub id: crate::model::RunnerId,
    /// Authentication token (secret: redacted in Debug, never logged).
    pub token: SecretString,
}

/// A failed [`GitLab`] call. Messages never contain tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitLabError {
    /// No answer in time or the connection failed.
    #[error("gitlab unreachable: {message}")]
    Unreachable {
        /// What failed (no secrets).
        message: String,
    },
    /// GitLab answered 429; nothing is sent before `retry_after` has passed.
    #[error("gitlab rate limit hit on {what}, retry after {retry_after:?}")]
    RateLimited {
        /// The request that was throttled.
        what: String,
        /// How long GitLab asked to wait.
        retry_after: std::time::Duration,
    },
    /// The adapter's own budget (e.g. the jobs list limit per minute) is spent.
    #[error("gitlab request budget for {what} spent for this minute")]
    BudgetSpent {
        /// Which budget.
        what: String,
    },
    /// GitLab answered 5xx.
    #[error("gitlab server error {status} on {what}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
    },
    /// 401 or 403: the token is wrong or lacks a scope or role.
    #[error("gitlab refused the token ({status}) on {what}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
    },
    /// 404.
    #[error("gitlab has no {what}")]
    NotFound {
        /// The object asked for.
        what: String,
    },
    /// 400, 409, 412 and other refusals: retrying will not help.
    #[error("gitlab rejected {what} ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
        /// GitLab's message, shortened.
        message: String,
    },
    /// GitLab answered something the adapter cannot read.
    #[error("unexpected answer from gitlab on {what}: {message}")]
    Unexpected {
        /// The request.
        what: String,
        /// What was wrong with it.
        message: String,
    },
    /// The adapter's settings are wrong (bad URL, bad controller id).
    #[error("gitlab settings: {message}")]
    Misconfigured {
        /// What is wrong, naming the key or value.
        message: String,
    },
}

impl GitLabError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GitLabError::Unreachable { .. }
                | GitLabError::RateLimited { .. }
                | GitLabError::BudgetSpent { .. }
                | GitLabError::Server { .. }
        )
    }

    /// Stable metric label.
    pub fn label(&self) -> &'static str {
        match self {
            GitLabError::Unreachable { .. } => "unreachable",
            GitLabError::RateLimited { .. } => "rate_limited",
            GitLabError::BudgetSpent { .. } => "budget_spent",
            GitLabError::Server { .. } => "server",
            GitLabError::Auth { .. } => "auth",
            GitLabError::NotFound { .. } => "not_found",
            GitLabError::Rejected { .. } => "rejected",
            GitLabError::Unexpected { .. } => "unexpected",
            GitLabError::Misconfigured { .. } => "misconfigured",
        }
    }
}

/// The maintenance note of a runner created by `controller` for `pool`.
pub fn runner_maintenance_note(controller: &ControllerId, pool: &str) -> String {
    format!("{RUNNER_MARKER} {controller}\npool: {pool}")
}

/// Whether a runner with this description and maintenance note belongs to `controller`;
/// returns its pool (from the note) when it does.
pub fn runner_ownership(
    controller: &ControllerId,
    description: &str,
    maintenance_note: Option<&str>,
) -> Option<Option<String>> {
    let prefix = format!("{controller}-");
    if !description.starts_with(&prefix) {
        return None;
    }
    let note = maintenance_note?;
    let marker = format!("{RUNNER_MARKER} {controller}");
    let mut owned = false;
    let mut pool = None;
    for line in note.lines().map(str::trim) {
        if line == marker {
            owned = true;
        } else if let Some(p) = line.strip_prefix("pool: ") {
            pool = Some(p.trim().to_string());
        }
    }
    owned.then_some(pool)
}

#[cfg(test)]
mod gitlab_port_tests {
    use super::*;

    #[test]
    fn runner_ownership_needs_prefix_and_marker_of_this_controller() -> CloudResult<()> {
        let c = ControllerId::new("ctl")?;
        let note = runner_maintenance_note(&c, "docker");
        assert_eq!(
            runner_ownership(&c, "ctl-docker-1", Some(&note)),
            Some(Some("docker".to_string()))
        );
        assert_eq!(runner_ownership(&c, "other-docker-1", Some(&note)), None);
        assert_eq!(runner_ownership(&c, "ctl-docker-1", None), None);
        let other = runner_maintenance_note(&ControllerId::new("ctl2")?, "docker");
        assert_eq!(runner_ownership(&c, "ctl-docker-1", Some(&other)), None);
        Ok(())
    }

    #[test]
    fn new_runner_debug_redacts_the_token() {
        let r = NewRunner {
            id: 1,
            token: SecretString::from("glrt-very-secret"),
        };
        assert!(!format!("{r:?}").contains("glrt-very-secret"));
    }

    #[test]
    fn transient_errors_are_rate_limits_outages_and_5xx() {
        let transient = GitLabError::Server {
            status: 502,
            what: "x".into(),
        };
        let permanent = GitLabError::Auth {
            status: 401,
            what: "x".into(),
        };
        assert!(transient.is_transient());
        assert!(!permanent.is_transient());
        assert_eq!(permanent.label(), "auth");
    }
}
