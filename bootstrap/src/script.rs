//! The bootstrap shell script that cloud-init runs once per instance (from `runcmd`).
//!
//! The renderer picks the snippets a pool needs, so the script that runs is exactly the
//! script in the golden files: no run-time switch on the install method. Values from the
//! configuration are shell-quoted ([`shell_quote`]); the runner token never appears in
//! the script (it travels in the staged `config.toml`).
//!
//! Every file path in the script is prefixed with `$R`, set from `BOOTSTRAP_ROOT`.
//! cloud-init leaves that variable unset, so on a VM the paths are the real ones; the
//! project's behavioural test sets it to run the real script inside a sandbox folder
//! with stub commands on `PATH`.

use std::fmt::Write as _;

use crate::escape::shell_quote;
use crate::params::{BootstrapOptions, DockerInstall, RunnerInstall};
use crate::paths::{
    BLOCK_METADATA_UNIT_NAME, FORGET_USER_DATA, METADATA_IPV4, RUNNER_CONFIG, RUNNER_DIR,
    SHELL_AFTER, SHELL_BEFORE, STAGED_RUNNER_CONFIG, WORK_DIR,
};

/// What the script needs besides the options: resolved, validated values.
pub(crate) struct ScriptInputs<'a> {
    /// The pool's bootstrap options.
    pub options: &'a BootstrapOptions,
    /// qemu binfmt handler names (`qemu-aarch64`, ...), deduplicated, in config order.
    pub binfmt_handlers: &'a [&'static str],
    /// Whether a `shell_before` hook file is written.
    pub has_before: bool,
    /// Whether a `shell_after` hook file is written.
    pub has_after: bool,
}

/// Renders the script text.
pub(crate) fn render(inputs: &ScriptInputs<'_>) -> String {
    let options = inputs.options;
    let qemu = options.qemu_binfmt;
    let docker_apt = options.docker_install == DockerInstall::Distro;
    let runner_repo = matches!(options.runner_install, RunnerInstall::Repository(_));
    let needs_apt = qemu || docker_apt || runner_repo;
    let needs_curl = runner_repo
        || matches!(
            options.docker_install,
            DockerInstall::ConvenienceScript | DockerInstall::ScriptUrl(_)
        );

    let mut s = String::new();
    s.push_str(HEADER);
    s.push_str("export DEBIAN_FRONTEND=noninteractive\n\n");
    s.push_str(HELPERS);
    if needs_apt {
        s.push_str(APT_HELPERS);
    }
    if qemu {
        s.push_str(BINFMT_HELPER);
    }

    if inputs.has_before {
        s.push('\n');
        s.push_str("step \"running shell_before\"\n");
        let _ = writeln!(s, "\"$R{SHELL_BEFORE}\"");
    }

    s.push('\n');
    s.push_str(&machine_id());

    if needs_apt {
        s.push_str("\nstep \"refreshing package lists\"\napt_get update\n");
    }
    if needs_curl {
        s.push_str("command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates\n");
    }

    s.push('\n');
    s.push_str(&docker(&options.docker_install));

    if options.block_metadata_in_jobs {
        s.push('\n');
        s.push_str(&block_metadata());
    }

    if qemu {
        s.push('\n');
        s.push_str(&qemu_binfmt(inputs.binfmt_handlers));
    }

    s.push('\n');
    s.push_str(&runner(&options.runner_install));

    s.push('\n');
    let _ = writeln!(s, "step \"installing {RUNNER_CONFIG}\"");
    let _ = writeln!(s, "mkdir -p \"$R{RUNNER_DIR}\"");
    let _ = writeln!(
        s,
        "mv -f \"$R{STAGED_RUNNER_CONFIG}\" \"$R{RUNNER_CONFIG}\""
    );
    let _ = writeln!(s, "chmod 0600 \"$R{RUNNER_CONFIG}\"");

    s.push_str("\nstep \"starting gitlab-runner\"\n");
    s.push_str("systemctl enable gitlab-runner.service\n");
    s.push_str("systemctl restart gitlab-runner.service\n");

    s.push_str("\nstep \"removing cloud-init's copies of the user-data\"\n");
    let _ = writeln!(s, "\"$R{FORGET_USER_DATA}\"");

    if inputs.has_after {
        s.push('\n');
        s.push_str("step \"running shell_after\"\n");
        let _ = writeln!(s, "\"$R{SHELL_AFTER}\"");
    }
    s.push_str("\nstep \"done\"\n");
    s
}

const HEADER: &str = r#"#!/bin/sh
# gitlab-autoscaler bootstrap, run once per instance by cloud-init (runcmd).
# Order: shell_before, machine-id, Docker, metadata block, QEMU binfmt, gitlab-runner,
# config.toml, runner start, user-data clean-up, shell_after. Any failure before the
# runner start stops here, before the runner starts.
# BOOTSTRAP_ROOT prefixes every file path; only the project's tests set it.
set -eu

R="${BOOTSTRAP_ROOT:-}"
"#;

const HELPERS: &str = r#"step() { echo "gitlab-autoscaler-bootstrap: $*"; }
die() { echo "gitlab-autoscaler-bootstrap: error: $*" >&2; exit 1; }
"#;

const APT_HELPERS: &str = r#"apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_install() { apt_get install -y --no-install-recommends "$@"; }
"#;

const BINFMT_HELPER: &str = r#"binfmt_enabled() {
  f="$R/proc/sys/fs/binfmt_misc/$1"
  [ -r "$f" ] && [ "$(head -n 1 "$f")" = enabled ]
}
"#;

fn machine_id() -> String {
    format!(
        r#"step "regenerating /etc/machine-id"
# gitlab-runner derives its system id from /etc/machine-id. A runner baked into the
# image may already run with the image's id and have stored a system id: stop it and
# forget that id, so every VM registers as its own runner manager.
systemctl stop gitlab-runner.service 2>/dev/null || true
rm -f "$R{RUNNER_DIR}/.runner_system_id" "$R/etc/machine-id"
systemd-machine-id-setup ${{R:+"--root=$R"}}
if [ -f "$R/var/lib/dbus/machine-id" ] && [ ! -L "$R/var/lib/dbus/machine-id" ]; then
  ln -sf /etc/machine-id "$R/var/lib/dbus/machine-id"
fi
"#
    )
}

fn docker(install: &DockerInstall) -> String {
    let mut s = String::new();
    match install {
        DockerInstall::Distro => {
            s.push_str("step \"installing Docker from the distribution (docker.io)\"\n");
            s.push_str("apt_install docker.io\n");
        }
        DockerInstall::ConvenienceScript => {
            s.push_str("step \"installing Docker with https://get.docker.com\"\n");
            let _ = writeln!(
                s,
                "curl -fsSL --retry 5 https://get.docker.com -o \"$R{WORK_DIR}/get-docker.sh\""
            );
            let _ = writeln!(s, "sh \"$R{WORK_DIR}/get-docker.sh\"");
        }
        DockerInstall::ScriptUrl(url) => {
            s.push_str(&assign("DOCKER_INSTALL_URL", url));
            s.push_str("step \"installing Docker with $DOCKER_INSTALL_URL\"\n");
            let _ = writeln!(
                s,
                "curl -fsSL --retry 5 \"$DOCKER_INSTALL_URL\" -o \"$R{WORK_DIR}/engine-install.sh\""
            );
            let _ = writeln!(s, "sh \"$R{WORK_DIR}/engine-install.sh\"");
        }
        DockerInstall::Image => {
            s.push_str("step \"checking the Docker in the image\"\n");
            s.push_str(
                "command -v docker >/dev/null 2>&1 || die \"docker_install is image, but the image has no docker command\"\n",
            );
        }
    }
    s.push_str("systemctl enable --now docker.service\n");
    s.push_str("docker info >/dev/null || die \"docker is installed but does not answer\"\n");
    s
}

/// Enables and starts the unit that inserts the `DOCKER-USER` rule, then checks that the
/// rule is there: the runner must not start without it.
fn block_metadata() -> String {
    format!(
        r#"step "blocking job containers from the metadata service ({METADATA_IPV4})"
systemctl daemon-reload
systemctl enable {BLOCK_METADATA_UNIT_NAME}
systemctl restart {BLOCK_METADATA_UNIT_NAME}
iptables -w -C DOCKER-USER -d {METADATA_IPV4}/32 -j REJECT ||
  die "job containers are not blocked from the metadata service"
"#
    )
}

fn qemu_binfmt(handlers: &[&str]) -> String {
    let list = handlers.join(" ");
    let mut s = String::new();
    s.push_str("step \"installing qemu-user-static and binfmt-support\"\n");
    s.push_str("apt_install qemu-user-static binfmt-support\n");
    if handlers.is_empty() {
        return s;
    }
    let _ = write!(
        s,
        r#"step "checking binfmt handlers: {list}"
case "$(uname -m)" in
  armv*) native=qemu-arm ;;
  i?86) native=qemu-i386 ;;
  *) native="qemu-$(uname -m)" ;;
esac
for handler in {list}; do
  if [ "$handler" = "$native" ]; then
    step "$handler: native architecture, no handler needed"
    continue
  fi
  binfmt_enabled "$handler" || update-binfmts --enable "$handler" || true
  binfmt_enabled "$handler" || die "binfmt handler $handler is not registered"
  step "$handler: registered"
done
"#
    );
    s
}

fn runner(install: &RunnerInstall) -> String {
    match install {
        RunnerInstall::Repository(url) => format!(
            r#"{assignment}step "adding the gitlab-runner repository $RUNNER_REPOSITORY"
# shellcheck disable=SC1091
os_id=$(. "$R/etc/os-release" && echo "$ID")
# shellcheck disable=SC1091
os_codename=$(. "$R/etc/os-release" && echo "$VERSION_CODENAME")
mkdir -p "$R/etc/apt/keyrings" "$R/etc/apt/sources.list.d"
curl -fsSL --retry 5 "$RUNNER_REPOSITORY/gpgkey" -o "$R/etc/apt/keyrings/gitlab-runner.asc"
echo "deb [signed-by=/etc/apt/keyrings/gitlab-runner.asc] $RUNNER_REPOSITORY/$os_id/ $os_codename main" \
  >"$R/etc/apt/sources.list.d/gitlab-runner.list"
apt_get update
step "installing gitlab-runner"
apt_install gitlab-runner
"#,
            assignment = assign("RUNNER_REPOSITORY", url)
        ),
        RunnerInstall::Image => r#"step "checking the gitlab-runner in the image"
command -v gitlab-runner >/dev/null 2>&1 || die "runner_install is image, but the image has no gitlab-runner command"
"#
        .to_owned(),
    }
}

/// `NAME='value'` with the value shell-quoted. shellcheck flags `$` or a backtick inside
/// single quotes (SC2016) as a possible mistake; here it is the literal value from the
/// configuration, so the warning is switched off for that line.
fn assign(name: &str, value: &str) -> String {
    let directive = if value.contains(['$', '`']) {
        "# shellcheck disable=SC2016 # literal value from the configuration\n"
    } else {
        ""
    };
    format!("{directive}{name}={}\n", shell_quote(value))
}
