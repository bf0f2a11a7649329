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
/// The script that inserts the `DOCKER-USER` rules keeping job containers away from the
/// metadata service; run by [`BLOCK_METADATA_UNIT`].
pub const BLOCK_METADATA_SCRIPT: &str = "/usr/local/sbin/gitlab-autoscaler-block-metadata";
/// The systemd unit that runs [`BLOCK_METADATA_SCRIPT`] after every Docker start.
pub const BLOCK_METADATA_UNIT: &str =
    "/etc/systemd/system/gitlab-autoscaler-block-metadata.service";
/// The unit's name, as `systemctl` wants it.
pub const BLOCK_METADATA_UNIT_NAME: &str = "gitlab-autoscaler-block-metadata.service";
/// The drop-in that makes gitlab-runner wait for (and require) [`BLOCK_METADATA_UNIT`].
pub const RUNNER_DROP_IN: &str =
    "/etc/systemd/system/gitlab-runner.service.d/gitlab-autoscaler-block-metadata.conf";
/// A cloud-init per-boot script that deletes the copies of the user-data cloud-init
/// writes under `/var/lib/cloud/instances/` (they hold the runner token and S3 keys).
/// The bootstrap script also runs it once, after the runner started.
pub const FORGET_USER_DATA: &str =
    "/var/lib/cloud/scripts/per-boot/gitlab-autoscaler-forget-user-data";
/// The metadata service's IPv4 address.
pub const METADATA_IPV4: &str = "169.254.169.254";
/// The metadata service's IPv6 (link-local) address.
pub const METADATA_IPV6: &str = "fe80::a9fe:a9fe";
