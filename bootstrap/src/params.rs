//! Inputs of the renderer: the pool's settings and the values of one VM.
//!
//! These types mirror the `[pools.runner]` and `[pools.bootstrap]` keys of the
//! configuration file, but this crate does not depend on `autoscaler-config`: the caller
//! maps the validated config onto them and resolves secrets (runner token, S3 keys)
//! before rendering. Nothing here reads files or the environment.

use std::num::NonZeroU32;

use secrecy::SecretString;

/// Everything [`render`](crate::render) needs for one VM.
#[derive(Debug, Clone)]
pub struct BootstrapParams {
    /// Settings shared by every VM of the pool.
    pub pool: PoolBootstrap,
    /// Values that differ per VM (token, name, runner id).
    pub vm: VmIdentity,
}

/// The pool-level settings that shape the user-data.
#[derive(Debug, Clone)]
pub struct PoolBootstrap {
    /// Concurrent jobs per VM; becomes `concurrent` and the runner's `limit` in
    /// `config.toml`, so one VM never takes more jobs than the planner counted for it.
    pub capacity: NonZeroU32,
    /// How the runner runs jobs (`[pools.runner]`).
    pub runner: RunnerSettings,
    /// How the VM is prepared (`[pools.bootstrap]`).
    pub bootstrap: BootstrapOptions,
}

/// The docker executor settings written into `config.toml` (`[pools.runner]`).
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Default image for jobs that name none (`docker_image`, e.g. `alpine`).
    pub docker_image: String,
    /// Run job containers privileged (needed for docker-in-docker builds).
    pub privileged: bool,
    /// Volumes mounted into every job container (`volumes`, e.g. `["/cache"]`).
    pub volumes: Vec<String>,
    /// Distributed cache shared between VMs; `None` keeps the cache local to the VM.
    pub cache: Option<S3Cache>,
}

/// An S3 cache (`[pools.runner.cache]` with `type = "s3"`), with its keys resolved.
#[derive(Debug, Clone)]
pub struct S3Cache {
    /// Share the cache between runners (`Shared` in `config.toml`).
    pub shared: bool,
    /// S3 endpoint, `host[:port]` (`ServerAddress`).
    pub server_address: String,
    /// Bucket holding the cache archives (`BucketName`).
    pub bucket_name: String,
    /// Region of the bucket (`BucketLocation`); empty or `None` leaves it out.
    pub bucket_location: Option<String>,
    /// Talk plain HTTP to the endpoint (`Insecure`).
    pub insecure: bool,
    /// S3 access key, resolved from its file or variable by the caller.
    pub access_key: SecretString,
    /// S3 secret key, resolved from its file or variable by the caller.
    pub secret_key: SecretString,
}

/// The `[pools.bootstrap]` options.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// How Docker gets onto the VM.
    pub docker_install: DockerInstall,
    /// Install `qemu-user-static` and `binfmt-support` and check the handlers below.
    pub qemu_binfmt: bool,
    /// Docker platform architectures whose binfmt handlers must be registered
    /// (e.g. `arm64`, `arm`); see [`BINFMT_ARCHES`](crate::BINFMT_ARCHES).
    /// Ignored when `qemu_binfmt` is false.
    pub binfmt_arches: Vec<String>,
    /// How gitlab-runner gets onto the VM.
    pub runner_install: RunnerInstall,
    /// Extra cloud-config (the file's content, read by the caller), merged by the rule
    /// in `docs/bootstrap.md`.
    pub extra_cloud_config: Option<String>,
    /// Shell run as the very first bootstrap step; its failure stops the bootstrap.
    pub shell_before: Option<String>,
    /// Shell run as the very last bootstrap step, after the runner started.
    pub shell_after: Option<String>,
    /// Keep job containers away from the metadata service (169.254.169.254), which
    /// serves the user-data with the runner token and S3 keys: a `DOCKER-USER` rule,
    /// installed before the runner starts and after every Docker start. Default on;
    /// off only for setups whose jobs need the metadata service.
    pub block_metadata_in_jobs: bool,
}

/// How Docker is installed (`docker_install`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerInstall {
    /// The distribution's `docker.io` package.
    Distro,
    /// Docker's convenience script from `https://get.docker.com`.
    ConvenienceScript,
    /// A script from this URL, run with `sh` (docker-machine's `--engine-install-url`).
    ScriptUrl(String),
    /// Docker is already in the image; the bootstrap only checks for it.
    Image,
}

/// How gitlab-runner is installed (`runner_install`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerInstall {
    /// From a packages.gitlab.com-style apt repository at this base URL
    /// (`runner_repository`, e.g. `https://packages.gitlab.com/runner/gitlab-runner`).
    Repository(String),
    /// gitlab-runner and its systemd unit are already in the image.
    Image,
}

/// The values that belong to one VM.
#[derive(Debug, Clone)]
pub struct VmIdentity {
    /// GitLab instance URL the runner talks to (`url` in `config.toml`).
    pub gitlab_url: String,
    /// The VM's own `glrt-` runner authentication token; it appears only in this VM's
    /// `config.toml`.
    pub runner_token: SecretString,
    /// The server name, used as the runner name so GitLab and Nova show the same name.
    pub name: String,
    /// GitLab's id of the runner created for this VM (`id` in `config.toml`).
    pub runner_id: u64,
}

/// The URL of gitlab-runner's official package repository, the default of
/// `runner_repository`.
pub const DEFAULT_RUNNER_REPOSITORY: &str = "https://packages.gitlab.com/runner/gitlab-runner";

// === impl VmIdentity ===

impl VmIdentity {
    /// A stand-in VM for previews (`autoscaler bootstrap render`), where no runner exists
    /// yet: runner id 0 and the token [`PREVIEW_TOKEN`]. Render it with
    /// [`render_redacted`](crate::render_redacted) unless asked to reveal secrets.
    #[must_use]
    pub fn preview(gitlab_url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            gitlab_url: gitlab_url.into(),
            runner_token: SecretString::from(PREVIEW_TOKEN),
            name: name.into(),
            runner_id: 0,
        }
    }
}

/// The token of [`VmIdentity::preview`]: not a real token.
pub const PREVIEW_TOKEN: &str = "glrt-preview-not-a-real-token";

// === impl BootstrapOptions ===

impl Default for BootstrapOptions {
    /// The defaults of `[pools.bootstrap]`: distro Docker, QEMU for `arm64` and `arm`,
    /// gitlab-runner from the official repository, no hooks, metadata blocked for jobs.
    fn default() -> Self {
        Self {
            docker_install: DockerInstall::Distro,
            qemu_binfmt: true,
            binfmt_arches: vec!["arm64".to_owned(), "arm".to_owned()],
            runner_install: RunnerInstall::Repository(DEFAULT_RUNNER_REPOSITORY.to_owned()),
            extra_cloud_config: None,
            shell_before: None,
            shell_after: None,
            block_metadata_in_jobs: true,
        }
    }
}

// === impl RunnerSettings ===

impl Default for RunnerSettings {
    /// The defaults of `[pools.runner]`: image `alpine`, unprivileged, `/cache`, no cache.
    fn default() -> Self {
        Self {
            docker_image: "alpine".to_owned(),
            privileged: false,
            volumes: vec!["/cache".to_owned()],
            cache: None,
        }
    }
}
