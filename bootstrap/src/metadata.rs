//! Keeping the runner token and the S3 keys away from CI jobs.
//!
//! Two ways lead from a job to the VM's user-data, which holds the `glrt-` token and the
//! cache keys:
//!
//! * the metadata service (`http://169.254.169.254/openstack/latest/user_data`), which
//!   answers anything on the VM, job containers included. With `block_metadata_in_jobs`
//!   (the default) a `REJECT` rule in Docker's `DOCKER-USER` chain stops traffic from
//!   every container network to that address. A systemd unit ordered after
//!   `docker.service` (and part of it) inserts the rule after every Docker start and
//!   every boot, and a drop-in makes `gitlab-runner.service` require that unit, so the
//!   runner never starts without the rule;
//! * the copies cloud-init keeps under `/var/lib/cloud/instances/<id>/`. A per-boot
//!   script deletes `user-data.txt` and `user-data.txt.i` (cloud-init writes them again
//!   on every boot); the bootstrap script runs it once after the runner started.
//!
//! What this does not cover is in docs/bootstrap.md ("Secrets").

use crate::cloud_config::File;
use crate::paths::{
    BLOCK_METADATA_SCRIPT, BLOCK_METADATA_UNIT, BLOCK_METADATA_UNIT_NAME, FORGET_USER_DATA,
    RUNNER_DROP_IN,
};

/// The `write_files` entries of the metadata block (only with `block_metadata_in_jobs`).
pub(crate) fn block_files() -> Vec<File> {
    vec![
        File {
            path: BLOCK_METADATA_SCRIPT,
            permissions: "0755",
            content: BLOCK_SCRIPT.to_owned(),
        },
        File {
            path: BLOCK_METADATA_UNIT,
            permissions: "0644",
            content: block_unit(),
        },
        File {
            path: RUNNER_DROP_IN,
            permissions: "0644",
            content: runner_drop_in(),
        },
    ]
}

/// The `write_files` entry of the per-boot script that deletes the user-data copies.
pub(crate) fn forget_file() -> File {
    File {
        path: FORGET_USER_DATA,
        permissions: "0700",
        content: FORGET_SCRIPT.to_owned(),
    }
}

/// Inserts the rules; idempotent (`-C` before `-I`). Needs no `BOOTSTRAP_ROOT`: it
/// touches no file.
const BLOCK_SCRIPT: &str = r#"#!/bin/sh
# gitlab-autoscaler: keeps CI job containers away from the cloud metadata service,
# which serves this VM's user-data (runner token, S3 cache keys) to anyone who asks.
# Docker sends traffic from every container network through the DOCKER-USER chain of
# FORWARD; a REJECT rule there stops containers, not the host. Run by
# gitlab-autoscaler-block-metadata.service after every Docker start (a reboot clears
# the rules). Safe to run again: each rule is checked (-C) before it is inserted (-I).
set -eu

ensure() { # tool address
  "$1" -w -N DOCKER-USER 2>/dev/null || true
  "$1" -w -C FORWARD -j DOCKER-USER 2>/dev/null || "$1" -w -I FORWARD 1 -j DOCKER-USER
  "$1" -w -C DOCKER-USER -d "$2" -j REJECT 2>/dev/null || "$1" -w -I DOCKER-USER 1 -d "$2" -j REJECT
}

ensure iptables 169.254.169.254/32
# A router does not forward link-local traffic, so containers cannot reach the IPv6
# address anyway; where Docker manages ip6tables, the rule is added as well.
if command -v ip6tables >/dev/null 2>&1 && ip6tables -w -L DOCKER-USER -n >/dev/null 2>&1; then
  ensure ip6tables fe80::a9fe:a9fe/128
fi
"#;

fn block_unit() -> String {
    format!(
        "# gitlab-autoscaler: blocks CI job containers from the metadata service; see\n\
         # {BLOCK_METADATA_SCRIPT}.\n\
         # WantedBy and PartOf docker.service: it runs after every Docker (re)start.\n\
         [Unit]\n\
         Description=Block CI job containers from the cloud metadata service\n\
         After=docker.service\n\
         PartOf=docker.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={BLOCK_METADATA_SCRIPT}\n\
         \n\
         [Install]\n\
         WantedBy=docker.service\n"
    )
}

fn runner_drop_in() -> String {
    format!(
        "# gitlab-autoscaler: the runner starts only after job containers are blocked from\n\
         # the metadata service, and not at all when that failed.\n\
         [Unit]\n\
         Requires={BLOCK_METADATA_UNIT_NAME}\n\
         After={BLOCK_METADATA_UNIT_NAME}\n"
    )
}

/// Deletes the user-data copies. Paths are prefixed with `$R` like the bootstrap
/// script's, so the behavioural test can run it in its sandbox.
const FORGET_SCRIPT: &str = r#"#!/bin/sh
# gitlab-autoscaler: cloud-init keeps copies of the user-data (user-data.txt and
# user-data.txt.i under /var/lib/cloud/instances/<id>/). They hold this VM's runner
# token and S3 cache keys, and nothing reads them after write_files ran. cloud-init
# writes them again on every boot, so this is a per-boot script; the bootstrap also
# runs it once after the runner started. cloud-init's cache (obj.pkl) is kept: without
# it, a reboot while the metadata service is unreachable would look like a new instance.
# BOOTSTRAP_ROOT prefixes every path; only the project's tests set it.
set -eu
R="${BOOTSTRAP_ROOT:-}"
for dir in "$R"/var/lib/cloud/instances/*/; do
  [ -d "$dir" ] || continue
  rm -f "${dir}user-data.txt" "${dir}user-data.txt.i"
done
"#;
