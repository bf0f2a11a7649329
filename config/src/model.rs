//! The validated configuration: types other crates code against.
//!
//! Values here have passed every check in [`crate::parse`]: durations are `Duration`s,
//! counts are in range, cross-field rules hold, and secrets are only [`SecretSource`]s.
//! No I/O happens here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::policy::{Period, Policy};
use crate::secret::SecretSource;

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[controller]`: identity and loop settings.
    pub controller: Controller,
    /// `[gitlab]`: where jobs come from and where runners are registered.
    pub gitlab: GitLab,
    /// `[openstack]`; `None` when the section is absent and the client falls back to
    /// `OS_CLOUD` / `OS_*` environment variables.
    pub openstack: Option<OpenStack>,
    /// `[[pools]]` in file order (the order decides which pool counts a shared job).
    pub pools: Vec<Pool>,
    /// Findings that do not stop the file from loading, each with file, line, column
    /// and key (a period schedule that can no longer match). `validate` should print
    /// them and `run` log them at start-up.
    pub warnings: Vec<crate::ConfigError>,
}

/// `[controller]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Ownership tag value on every server and runner; `^[a-z0-9][a-z0-9-]{0,30}$`.
    pub id: String,
    /// Time between reconcile ticks (default 15 s).
    pub poll_interval: Duration,
    /// A runner whose last contact with GitLab is older than this while its server is
    /// ACTIVE is offline: no capacity, replaced, removed once it runs no job (default 5 min).
    pub offline_after: Duration,
    /// Address for metrics, health, webhook and status (default `127.0.0.1:9252`).
    pub listen: SocketAddr,
    /// Directory for the status file and other state, if any.
    pub state_dir: Option<PathBuf>,
}

impl Controller {
    /// Default of [`Controller::offline_after`]: a few minutes over gitlab-runner's 3 s
    /// check interval and GitLab's minute-granular `contacted_at`.
    pub const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(300);
}

/// `[gitlab]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLab {
    /// Instance URL (http or https).
    pub url: Url,
    /// API token (`token_file` or `token_env`).
    pub token: SecretSource,
    /// Shared secret expected in `X-Gitlab-Token` on the webhook endpoint, if enabled.
    pub webhook_token: Option<SecretSource>,
    /// Which pending jobs are watched.
    pub scope: Scope,
}

/// `[gitlab.scope]`: projects and/or groups, or the whole instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Projects by path or numeric id.
    pub projects: Vec<ProjectRef>,
    /// Groups by full path or numeric id (expanded to their projects).
    pub groups: Vec<String>,
    /// Watch every pending job of the instance (admin token, GraphQL); excludes the
    /// other two.
    pub instance: bool,
}

/// A project named in the scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProjectRef {
    /// Numeric project id.
    Id(u64),
    /// Full path such as `icinga/icinga2`.
    Path(String),
}

/// `[openstack]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenStack {
    /// How to authenticate.
    pub auth: OpenStackAuth,
    /// Region; `None` = from `clouds.yaml` or the only region.
    pub region: Option<String>,
    /// Endpoint interface; `None` = from `clouds.yaml`, else public.
    pub interface: Option<Interface>,
    /// CA bundle for the endpoints, if not the system store.
    pub cacert: Option<PathBuf>,
}

/// OpenStack authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenStackAuth {
    /// An entry in `clouds.yaml` (`OS_CLOUD` semantics).
    Cloud {
        /// Name of the entry.
        cloud: String,
        /// Explicit `clouds.yaml` path; `None` = the usual search path.
        clouds_file: Option<PathBuf>,
    },
    /// Keystone v3 password authentication.
    Password {
        /// Keystone URL.
        auth_url: Url,
        /// User name.
        username: String,
        /// The user's domain (default `Default`).
        user_domain_name: String,
        /// The project to scope the token to.
        project: ProjectScope,
        /// Where the password is.
        password: SecretSource,
    },
    /// Keystone v3 application credential.
    ApplicationCredential {
        /// Keystone URL.
        auth_url: Url,
        /// Which credential.
        credential: AppCredential,
        /// Where the credential secret is.
        secret: SecretSource,
    },
}

/// Project scope of a password login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    /// Project by name within a domain.
    Name {
        /// Project name.
        name: String,
        /// Project domain (default `Default`).
        domain_name: String,
    },
    /// Project by id.
    Id(String),
}

/// Which application credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredential {
    /// By id.
    Id(String),
    /// By name, which Keystone resolves through the owning user.
    Name {
        /// Credential name.
        name: String,
        /// Owning user.
        username: String,
        /// The user's domain.
        user_domain_name: String,
    },
}

/// Keystone catalog endpoint interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `public`.
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

/// One `[[pools]]` entry: identical VMs serving one kind of runner.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Unique name, `^[a-z0-9][a-z0-9-]*$`; part of server names and tags.
    pub name: String,
    /// Concurrent jobs per VM.
    pub capacity: NonZeroU32,
    /// Base scaling policy, in force when no period matches.
    pub policy: Policy,
    /// Pause surplus idle runners early so they idle out.
    pub park_surplus: bool,
    /// Pre-warm for a burst that arrived in the same minute of the day on each of the last
    /// this many days (0 = no forecast).
    pub forecast_days: u32,
    /// How far ahead such a burst is pre-warmed for (1m..1h).
    pub forecast_lookahead: std::time::Duration,
    /// Wait-target mode: the share of jobs (percent, 50..99) that must wait at most
    /// `target_wait`.
    pub target_percentile: u32,
    /// The cloud bills each server per started period of this length (e.g. 1 h): a surplus
    /// VM is removed just before its next paid period starts. `None`: per-second billing.
    pub billing_period: Option<std::time::Duration>,
    /// What each server looks like.
    pub server: ServerTemplate,
    /// How each VM's runner is registered and configured.
    pub runner: RunnerSettings,
    /// How each VM is bootstrapped.
    pub bootstrap: BootstrapOptions,
    /// Time windows overriding the policy; the last matching one wins.
    pub periods: Vec<Period>,
}

/// `[pools.server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTemplate {
    /// Flavor name or id.
    pub flavor: String,
    /// Image name or id.
    pub image: String,
    /// Network names or ids (at least one).
    pub networks: Vec<String>,
    /// Security group names or ids.
    pub security_groups: Vec<String>,
    /// Nova key pair, if any.
    pub key_name: Option<String>,
    /// Availability zone, if any.
    pub availability_zone: Option<String>,
    /// Boot from a volume of this many GB when set.
    pub boot_volume_size: Option<NonZeroU32>,
    /// Extra server metadata (ownership metadata is added by the controller).
    pub metadata: BTreeMap<String, String>,
}

/// `[pools.runner]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSettings {
    /// Runner type and owner.
    pub runner_type: RunnerType,
    /// Job tags this runner accepts.
    pub tags: BTreeSet<String>,
    /// Whether untagged jobs are taken (default: true iff `tags` is empty).
    pub run_untagged: bool,
    /// Which refs' jobs the runner takes.
    pub access_level: AccessLevel,
    /// Locked to its current projects (project runners).
    pub locked: bool,
    /// Maximum job timeout the runner enforces, if any.
    pub maximum_timeout: Option<std::time::Duration>,
    /// Default Docker image for jobs.
    pub docker_image: String,
    /// Run job containers privileged.
    pub privileged: bool,
    /// Docker volumes for job containers.
    pub volumes: Vec<String>,
    /// Shared S3 cache, if any.
    pub cache: Option<S3Cache>,
}

/// Runner type and the owner it is created under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerType {
    /// `instance_type` (admin token).
    Instance,
    /// `group_type` for this group id.
    Group {
        /// GitLab group id.
        group_id: u64,
    },
    /// `project_type` for this project id.
    Project {
        /// GitLab project id.
        project_id: u64,
    },
}

/// `access_level` of a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    /// Jobs from any ref.
    NotProtected,
    /// Only jobs from protected refs.
    RefProtected,
}

/// `[pools.runner.cache]` (S3 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Cache {
    /// Shared between runners.
    pub shared: bool,
    /// S3 endpoint host (and port).
    pub server_address: String,
    /// Bucket name.
    pub bucket_name: String,
    /// Bucket location / region, if any.
    pub bucket_location: Option<String>,
    /// Use plain HTTP.
    pub insecure: bool,
    /// Where the access key is.
    pub access_key: SecretSource,
    /// Where the secret key is.
    pub secret_key: SecretSource,
}

/// `[pools.bootstrap]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapOptions {
    /// How Docker gets onto the VM.
    pub docker_install: DockerInstall,
    /// Install `qemu-user-static` and `binfmt-support`.
    pub qemu_binfmt: bool,
    /// Docker platform architectures whose binfmt handlers must work (see
    /// [`crate::binfmt_arches`], the bootstrap renderer's own list).
    pub binfmt_arches: Vec<String>,
    /// How gitlab-runner gets onto the VM.
    pub runner_install: RunnerInstall,
    /// Extra cloud-config file merged by the renderer, if any.
    pub extra_cloud_config_file: Option<PathBuf>,
    /// Shell run first, if any.
    pub shell_before: Option<String>,
    /// Shell run last, if any.
    pub shell_after: Option<String>,
    /// Keep CI job containers away from the metadata service, which serves the VM's
    /// user-data with its runner token and S3 keys (`block_metadata_in_jobs`, default
    /// true; docs/bootstrap.md).
    pub block_metadata_in_jobs: bool,
}

/// `docker_install` and `runner_install`: the bootstrap renderer's own vocabulary (one
/// definition, so a value the config accepts is one the renderer knows). Their URLs are
/// checked as URLs when the config is read and kept as text.
pub use autoscaler_bootstrap::{DockerInstall, RunnerInstall};

// === impl Config ===

impl Config {
    /// The pool with this name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Path(p) => f.write_str(p),
        }
    }
}
