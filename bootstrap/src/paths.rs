//! File paths on the VM. The golden files, the behavioural test and docs/bootstrap.md
//! refer to these; change them together.

/// Folder holding the bootstrap script, the hooks and the staged runner config.
pub const WORK_DIR: &str = "/var/lib/gitlab-autoscaler/bootstrap";
/// The bootstrap script that `runcmd` runs.
pub const SCRIPT: &str = "/var/lib/gitlab-autoscaler/bootstrap/bootstrap.sh";
/// The pool's `shell_before` hook.
pub const SHELL_BEFORE: &str = "/var/lib/gitlab-autoscaler/bootstrap/shell-before.sh";
/// The pool's `shell_after` hook.
pub const SHELL_AFTER: &str = "/var/lib/gitlab-autoscaler/bootstrap/shell-after.sh";
/// Where cloud-init's `write_files` puts `config.toml` (mode 0600) until the script has
/// regenerated the machine-id; the script then moves it to [`RUNNER_CONFIG`].
pub const STAGED_RUNNER_CONFIG: &str = "/var/lib/gitlab-autoscaler/bootstrap/runner-config.toml";
/// gitlab-runner's configuration folder.
pub const RUNNER_DIR: &str = "/etc/gitlab-runner";
/// gitlab-runner's configuration file, mode 0600.
pub const RUNNER_CONFIG: &str = "/etc/gitlab-runner/config.toml";
