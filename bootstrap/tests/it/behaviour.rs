//! Runs the real rendered bootstrap of every variant in a sandbox folder and checks what
//! it did.
//!
//! The sandbox emulates the part of cloud-init the user-data relies on: `write_files`
//! (path, permissions, content) under a root folder, the copies of the user-data
//! cloud-init keeps under `/var/lib/cloud/instances/<id>/`, then `runcmd`'s bootstrap
//! entry with `BOOTSTRAP_ROOT` pointing at that folder. `PATH` holds only stub commands
//! (apt-get, curl, systemctl, docker, gitlab-runner, update-binfmts,
//! systemd-machine-id-setup, uname, iptables, ip6tables) that append their calls to one
//! log, plus links to a few coreutils; a command the script calls that is neither fails
//! the run, so nothing on the host is touched. The script's own output goes to the same
//! log, which gives a single ordered record of steps, hook output and stub calls.
//!
//! The `iptables`/`ip6tables` stubs keep chains and rules in a state file per tool; the
//! `systemctl` stub creates `DOCKER-USER` when Docker starts (as dockerd does) and runs
//! a unit's `ExecStart` on `start`/`restart` (as systemd does), so the test sees the
//! rules the rendered unit really installs.
//!
//! Needs only `sh` and coreutils: no root, no network, no apt.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use autoscaler_bootstrap::{BootstrapParams, DockerInstall, RunnerInstall, paths, render};
use secrecy::ExposeSecret as _;
use serde_yaml_ng::Value;

use crate::variants::{self, TOKEN, Variant};

/// Host tools the script (and the stubs) may use, linked into the sandbox's PATH.
const TOOLS: &[&str] = &[
    "sh", "mkdir", "mv", "chmod", "rm", "ln", "head", "cat", "stat", "printf", "grep",
];

/// The instance id of the emulated cloud-init state.
const INSTANCE_ID: &str = "i-0123";

/// The rule that keeps job containers away from the IPv4 metadata address.
const RULE_V4: &str = "DOCKER-USER -d 169.254.169.254/32 -j REJECT";
/// The same for the IPv6 metadata address.
const RULE_V6: &str = "DOCKER-USER -d fe80::a9fe:a9fe/128 -j REJECT";

/// The machine-id the stub `systemd-machine-id-setup` writes.
const NEW_MACHINE_ID: &str = "0123456789abcdef0123456789abcdef";

const STUB_APT_GET: &str = r#"#!/bin/sh
echo "call: apt-get $*" >>"$STUB_LOG"
case " $* " in
  *" install "*qemu-user-static*)
    # like the package's postinst: register the qemu handlers with the kernel
    mkdir -p "$BOOTSTRAP_ROOT/proc/sys/fs/binfmt_misc"
    for h in qemu-aarch64 qemu-arm qemu-x86_64 qemu-i386 qemu-ppc64le qemu-s390x qemu-riscv64 qemu-mips64el qemu-loongarch64; do
      case " ${STUB_UNREGISTERED:-} " in *" $h "*) continue ;; esac
      printf 'enabled\ninterpreter /usr/libexec/qemu-binfmt/%s\n' "$h" >"$BOOTSTRAP_ROOT/proc/sys/fs/binfmt_misc/$h"
    done ;;
esac
"#;

const STUB_CURL: &str = r#"#!/bin/sh
echo "call: curl $*" >>"$STUB_LOG"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --retry) shift 2 ;;
    *) shift ;;
  esac
done
[ -n "$out" ] || { echo "stub curl: no -o" >&2; exit 2; }
printf '#!/bin/sh\necho "call: downloaded installer ran" >>"$STUB_LOG"\n' >"$out"
"#;

const STUB_MACHINE_ID: &str = r#"#!/bin/sh
echo "call: systemd-machine-id-setup $*" >>"$STUB_LOG"
root=""
for a in "$@"; do case "$a" in --root=*) root=${a#--root=} ;; esac; done
[ -n "$root" ] || { echo "stub: refusing to touch the real /etc/machine-id" >&2; exit 1; }
echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
"#;

const STUB_SYSTEMCTL: &str = r#"#!/bin/sh
echo "call: systemctl $*" >>"$STUB_LOG"
case "$1" in
  start|restart|enable)
    if [ "$2" = docker.service ] || [ "$3" = docker.service ]; then
      # like dockerd: create DOCKER-USER and jump to it from FORWARD; keep its rules
      for t in iptables ip6tables; do
        f="$STUB_NET/$t"
        grep -qxF ":DOCKER-USER" "$f" || echo ":DOCKER-USER" >>"$f"
        grep -qxF "FORWARD -j DOCKER-USER" "$f" || echo "FORWARD -j DOCKER-USER" >>"$f"
      done
    fi ;;
esac
if [ "$1" = start ] || [ "$1" = restart ]; then
  unit="$BOOTSTRAP_ROOT/etc/systemd/system/$2"
  if [ -f "$unit" ]; then
    # like systemd: run the unit's ExecStart
    while IFS= read -r line; do
      case "$line" in ExecStart=*) "$BOOTSTRAP_ROOT${line#ExecStart=}" || exit 1 ;; esac
    done <"$unit"
  fi
fi
if [ "$1" = restart ] && [ "$2" = gitlab-runner.service ]; then
  f="$BOOTSTRAP_ROOT/etc/gitlab-runner/config.toml"
  echo "stub: runner starts with config.toml mode $(stat -c %a "$f") and machine-id $(cat "$BOOTSTRAP_ROOT/etc/machine-id")" >>"$STUB_LOG"
fi
"#;

/// A tiny iptables: one state file per tool, a line `:CHAIN` per chain and a line
/// `CHAIN rule...` per rule. Enough for -N, -L, -C and -I as the bootstrap uses them.
const STUB_IPTABLES: &str = r#"#!/bin/sh
tool=${0##*/}
echo "call: $tool $*" >>"$STUB_LOG"
state="$STUB_NET/$tool"
[ "$1" = -w ] && shift
op=$1 chain=$2
shift 2
case "$op" in
  -N) grep -qxF ":$chain" "$state" && exit 1
      echo ":$chain" >>"$state" ;;
  -L) grep -qxF ":$chain" "$state" || exit 1 ;;
  -C) grep -qxF ":$chain" "$state" || exit 2
      grep -qxF "$chain $*" "$state" || exit 1 ;;
  -I) case "$1" in [0-9]*) shift ;; esac
      grep -qxF ":$chain" "$state" || { echo "$tool: no chain $chain" >&2; exit 1; }
      echo "$chain $*" >>"$state" ;;
  *) echo "stub $tool: unsupported $op" >&2; exit 2 ;;
esac
"#;

const STUB_BROKEN: &str = r#"#!/bin/sh
echo "call: ${0##*/} $*" >>"$STUB_LOG"
exit 4
"#;

const STUB_LOGGER: &str = r#"#!/bin/sh
echo "call: ${0##*/} $*" >>"$STUB_LOG"
"#;

const STUB_UPDATE_BINFMTS: &str = r#"#!/bin/sh
echo "call: update-binfmts $*" >>"$STUB_LOG"
exit 1
"#;

const STUB_UNAME: &str = r#"#!/bin/sh
echo "${STUB_UNAME:-x86_64}"
"#;

/// Knobs for one run.
#[derive(Default)]
struct Run {
    /// Handlers the fake qemu package does not register.
    unregistered: &'static str,
    /// What `uname -m` answers (default `x86_64`).
    uname: Option<&'static str>,
    /// Leave the `docker` stub out, as if the image had no Docker.
    without_docker: bool,
    /// Leave the `ip6tables` stub out, as on a host without IPv6 netfilter tools.
    without_ip6tables: bool,
    /// An `iptables` that fails every call.
    broken_iptables: bool,
}

struct Outcome {
    success: bool,
    log: Vec<String>,
    root: PathBuf,
    /// The stub commands' folder (the sandbox's `PATH`).
    bin: PathBuf,
    /// The iptables stubs' state files.
    net: PathBuf,
    /// The shared log file.
    log_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn find_tool(name: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("host tool {name} not found"))
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Applies the document's `write_files` under `root`, as cloud-init would under `/`.
fn apply_write_files(doc: &Value, root: &Path) {
    for entry in doc["write_files"].as_sequence().unwrap() {
        let map = entry.as_mapping().unwrap();
        for key in map.keys() {
            let key = key.as_str().unwrap();
            assert!(
                ["path", "permissions", "content"].contains(&key),
                "the sandbox does not emulate write_files key {key}"
            );
        }
        let path = root.join(entry["path"].as_str().unwrap().trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, entry["content"].as_str().unwrap_or("")).unwrap();
        let mode = entry["permissions"].as_str().unwrap_or("0644");
        let mode = u32::from_str_radix(mode, 8).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn run(params: &BootstrapParams, knobs: &Run) -> Outcome {
    let data = render(params).unwrap();
    let doc: Value = serde_yaml_ng::from_str(data.as_str()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let bin = dir.path().join("bin");
    let log = dir.path().join("log");
    let net = dir.path().join("net");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&net).unwrap();
    // The kernel's built-in chain; Docker adds DOCKER-USER when it starts.
    for tool in ["iptables", "ip6tables"] {
        fs::write(net.join(tool), ":FORWARD\n").unwrap();
    }

    // The image as the VM boots it: a baked machine-id and a stale runner system id.
    for (path, text) in [
        ("etc/os-release", "ID=debian\nVERSION_CODENAME=bookworm\n"),
        ("etc/machine-id", "baked-into-the-image\n"),
        ("var/lib/dbus/machine-id", "baked-into-the-image\n"),
        ("etc/gitlab-runner/.runner_system_id", "s_stale0000000\n"),
    ] {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    apply_write_files(&doc, &root);

    // What cloud-init leaves on disk: the raw and the processed user-data, and its
    // cache of the datasource (which holds the user-data too), in the instance folder
    // that /var/lib/cloud/instance points to.
    let instance = root.join("var/lib/cloud/instances").join(INSTANCE_ID);
    fs::create_dir_all(&instance).unwrap();
    for name in ["user-data.txt", "user-data.txt.i", "obj.pkl"] {
        fs::write(instance.join(name), data.as_str()).unwrap();
    }
    std::os::unix::fs::symlink(
        format!("/var/lib/cloud/instances/{INSTANCE_ID}"),
        root.join("var/lib/cloud/instance"),
    )
    .unwrap();

    for tool in TOOLS {
        std::os::unix::fs::symlink(find_tool(tool), bin.join(tool)).unwrap();
    }
    let mut stubs = vec![
        ("apt-get", STUB_APT_GET),
        ("curl", STUB_CURL),
        ("systemd-machine-id-setup", STUB_MACHINE_ID),
        ("systemctl", STUB_SYSTEMCTL),
        ("gitlab-runner", STUB_LOGGER),
        ("update-binfmts", STUB_UPDATE_BINFMTS),
        ("uname", STUB_UNAME),
    ];
    if !knobs.without_docker {
        stubs.push(("docker", STUB_LOGGER));
    }
    stubs.push((
        "iptables",
        if knobs.broken_iptables {
            STUB_BROKEN
        } else {
            STUB_IPTABLES
        },
    ));
    if !knobs.without_ip6tables {
        stubs.push(("ip6tables", STUB_IPTABLES));
    }
    for (name, text) in stubs {
        write_exec(&bin.join(name), text);
    }

    // runcmd: our entry comes first and runs the script; extra entries are the pool's
    // own commands and are not run here.
    let runcmd = doc["runcmd"].as_sequence().unwrap();
    assert_eq!(
        runcmd[0].as_str(),
        Some(format!("sh {}", paths::SCRIPT).as_str())
    );
    let script = root.join(paths::SCRIPT.trim_start_matches('/'));

    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let status = sandboxed(&bin, &root, &net, &log)
        .arg(&script)
        .env("STUB_UNREGISTERED", knobs.unregistered)
        .env("STUB_UNAME", knobs.uname.unwrap_or("x86_64"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    let text = fs::read_to_string(&log).unwrap();
    Outcome {
        success: status.success(),
        log: text.lines().map(str::to_owned).collect(),
        root,
        bin,
        net,
        log_file: log,
        _dir: dir,
    }
}

/// `sh` of the sandbox with its environment and nothing of the host's.
fn sandboxed(bin: &Path, root: &Path, net: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(bin.join("sh"));
    cmd.env_clear()
        .env("PATH", bin)
        .env("HOME", root)
        .env("BOOTSTRAP_ROOT", root)
        .env("STUB_LOG", log)
        .env("STUB_NET", net);
    cmd
}

// === impl Outcome ===

impl Outcome {
    fn dump(&self) -> String {
        self.log.join("\n")
    }

    /// Index of the first log line containing `needle`; panics with the log if none.
    fn at(&self, needle: &str) -> usize {
        self.log
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line contains {needle:?}; log:\n{}", self.dump()))
    }

    fn has(&self, needle: &str) -> bool {
        self.log.iter().any(|l| l.contains(needle))
    }

    fn before(&self, first: &str, then: &str) {
        let (a, b) = (self.at(first), self.at(then));
        assert!(
            a < b,
            "{first:?} (line {a}) must come before {then:?} (line {b}); log:\n{}",
            self.dump()
        );
    }

    fn file(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The lines of the iptables stub's state for `tool` (`iptables` or `ip6tables`).
    fn rules(&self, tool: &str) -> Vec<String> {
        fs::read_to_string(self.net.join(tool))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How often `line` is in `tool`'s state.
    fn count(&self, tool: &str, line: &str) -> usize {
        self.rules(tool).iter().filter(|l| *l == line).count()
    }

    /// Runs `systemctl ARGS` in the sandbox, as systemd or an operator would after the
    /// bootstrap; its calls go to the same log.
    fn systemctl(&self, args: &str) -> bool {
        sandboxed(&self.bin, &self.root, &self.net, &self.log_file)
            .arg("-c")
            .arg(format!("systemctl {args}"))
            .stdin(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Emulates a reboot for the firewall: the kernel forgets every rule.
    fn reboot_firewall(&self) {
        for tool in ["iptables", "ip6tables"] {
            fs::write(self.net.join(tool), ":FORWARD\n").unwrap();
        }
    }
}

fn check_variant(v: &Variant) {
    let params = &v.params;
    let o = run(params, &Run::default());
    assert!(
        o.success,
        "{}: bootstrap failed; log:\n{}",
        v.name,
        o.dump()
    );
    let start = "call: systemctl restart gitlab-runner.service";
    assert_eq!(
        o.log.last().map(String::as_str),
        Some("gitlab-autoscaler-bootstrap: done")
    );

    // machine-id: the runner is stopped and its stale id forgotten, then a new id, then start.
    o.before(
        "call: systemctl stop gitlab-runner.service",
        "call: systemd-machine-id-setup",
    );
    o.before("call: systemd-machine-id-setup", start);
    assert_eq!(
        fs::read_to_string(o.file("/etc/machine-id"))
            .unwrap()
            .trim(),
        NEW_MACHINE_ID
    );
    assert!(!o.file("/etc/gitlab-runner/.runner_system_id").exists());
    let dbus = o.file("/var/lib/dbus/machine-id");
    assert_eq!(fs::read_link(dbus).unwrap(), Path::new("/etc/machine-id"));

    // Docker is installed and running before the runner starts.
    let options = &params.pool.bootstrap;
    match &options.docker_install {
        DockerInstall::Distro => o.before("install -y --no-install-recommends docker.io", start),
        DockerInstall::ConvenienceScript => {
            o.before(
                "call: curl -fsSL --retry 5 https://get.docker.com -o",
                "downloaded installer ran",
            );
            o.before("downloaded installer ran", start);
        }
        DockerInstall::ScriptUrl(url) => {
            o.before(
                &format!("call: curl -fsSL --retry 5 {url} -o"),
                "downloaded installer ran",
            );
            o.before("downloaded installer ran", start);
        }
        DockerInstall::Image => assert!(!o.has("docker.io") && !o.has("installer ran")),
    }
    o.before("call: systemctl enable --now docker.service", start);
    o.before("call: docker info", start);

    // QEMU: installed, then every handler checked, all before the runner starts.
    if options.qemu_binfmt {
        let install = "install -y --no-install-recommends qemu-user-static binfmt-support";
        for handler in ["qemu-aarch64", "qemu-arm"] {
            let ok = format!("gitlab-autoscaler-bootstrap: {handler}: registered");
            o.before(install, &ok);
            o.before(&ok, start);
        }
        assert!(
            !o.has("call: update-binfmts"),
            "handlers were registered by the package"
        );
    } else {
        assert!(
            !o.has("qemu") && !o.has("binfmt"),
            "{}: qemu off but:\n{}",
            v.name,
            o.dump()
        );
    }

    // gitlab-runner: installed from the repository (or found in the image) before start.
    match &options.runner_install {
        RunnerInstall::Repository(url) => {
            o.before(
                &format!("call: curl -fsSL --retry 5 {url}/gpgkey -o"),
                start,
            );
            o.before("install -y --no-install-recommends gitlab-runner", start);
            let list =
                fs::read_to_string(o.file("/etc/apt/sources.list.d/gitlab-runner.list")).unwrap();
            assert_eq!(
                list,
                format!(
                    "deb [signed-by=/etc/apt/keyrings/gitlab-runner.asc] {url}/debian/ bookworm main\n"
                )
            );
        }
        RunnerInstall::Image => assert!(
            !o.has("gitlab-runner.list")
                && !o.has("install -y --no-install-recommends gitlab-runner")
        ),
    }
    o.before("call: systemctl enable gitlab-runner.service", start);
    assert!(
        o.has(&format!(
            "stub: runner starts with config.toml mode 600 and machine-id {NEW_MACHINE_ID}"
        )),
        "{}",
        o.dump()
    );

    // Hooks: shell_before before every command, shell_after after every command.
    let calls: Vec<usize> = (0..o.log.len())
        .filter(|&i| o.log[i].starts_with("call: "))
        .collect();
    if options.shell_before.is_some() {
        assert!(o.at("hook: shell_before ran") < calls[0], "{}", o.dump());
    }
    if options.shell_after.is_some() {
        assert!(
            o.at("hook: shell_after ran") > *calls.last().unwrap(),
            "{}",
            o.dump()
        );
    }

    // config.toml: in place, 0600, parses, carries the VM's values; the staged copy is gone.
    check_runner_config(&o, params);
    assert!(!o.file(paths::STAGED_RUNNER_CONFIG).exists());

    // Job containers are blocked from the metadata service before the runner starts.
    check_metadata_block(&o, options.block_metadata_in_jobs);

    // cloud-init's copies of the user-data are deleted after the runner started; its
    // datasource cache is kept on purpose (docs/bootstrap.md, "Secrets").
    o.before(start, "removing cloud-init's copies of the user-data");
    let instance = o.file(&format!("/var/lib/cloud/instances/{INSTANCE_ID}"));
    for name in ["user-data.txt", "user-data.txt.i"] {
        assert!(!instance.join(name).exists(), "{}: {name} left", v.name);
    }
    let cache = instance.join("obj.pkl");
    assert!(cache.exists(), "cloud-init's cache must stay");

    // The token is in config.toml and nowhere else (not in the log, not in any other
    // file but cloud-init's cache).
    assert!(!o.dump().contains(TOKEN), "token in the log");
    let config = o.file(paths::RUNNER_CONFIG);
    for file in walk(&o.root) {
        if file != config && file != cache {
            let text = fs::read(&file).unwrap();
            assert!(
                !String::from_utf8_lossy(&text).contains(TOKEN),
                "token in {}",
                file.display()
            );
        }
    }
}

/// With the block on: the unit was enabled and started after Docker, its `ExecStart`
/// put exactly one REJECT rule for each metadata address into `DOCKER-USER`, before the
/// runner started; the unit follows Docker and the runner requires the unit. With the
/// block off: no rule, no unit, no drop-in.
fn check_metadata_block(o: &Outcome, on: bool) {
    let start = "call: systemctl restart gitlab-runner.service";
    let unit = o.file(paths::BLOCK_METADATA_UNIT);
    let drop_in = o.file(paths::RUNNER_DROP_IN);
    if !on {
        assert!(!o.has("iptables"), "{}", o.dump());
        assert!(!unit.exists() && !drop_in.exists());
        assert!(!o.file(paths::BLOCK_METADATA_SCRIPT).exists());
        return;
    }
    let insert = "call: iptables -w -I DOCKER-USER 1 -d 169.254.169.254/32 -j REJECT";
    o.before("call: systemctl enable --now docker.service", insert);
    o.before(
        &format!(
            "call: systemctl restart {}",
            paths::BLOCK_METADATA_UNIT_NAME
        ),
        insert,
    );
    o.before(insert, start);
    o.before(
        &format!("call: systemctl enable {}", paths::BLOCK_METADATA_UNIT_NAME),
        start,
    );
    assert_eq!(o.count("iptables", RULE_V4), 1, "{:?}", o.rules("iptables"));
    assert_eq!(
        o.count("ip6tables", RULE_V6),
        1,
        "{:?}",
        o.rules("ip6tables")
    );
    assert_eq!(o.count("iptables", "FORWARD -j DOCKER-USER"), 1);

    let unit = fs::read_to_string(unit).unwrap();
    for line in [
        "After=docker.service",
        "PartOf=docker.service",
        "WantedBy=docker.service",
        "Type=oneshot",
        &format!("ExecStart={}", paths::BLOCK_METADATA_SCRIPT),
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }
    let drop_in = fs::read_to_string(drop_in).unwrap();
    for line in [
        format!("Requires={}", paths::BLOCK_METADATA_UNIT_NAME),
        format!("After={}", paths::BLOCK_METADATA_UNIT_NAME),
    ] {
        assert!(drop_in.lines().any(|l| l == line), "drop-in lacks {line}");
    }
}

fn check_runner_config(o: &Outcome, params: &BootstrapParams) {
    let path = o.file(paths::RUNNER_CONFIG);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.toml mode {mode:o}");
    let cfg: toml_edit::DocumentMut = fs::read_to_string(&path).unwrap().parse().unwrap();
    let capacity = i64::from(params.pool.capacity.get());
    assert_eq!(cfg["concurrent"].as_integer(), Some(capacity));
    let r = &cfg["runners"][0];
    assert_eq!(
        r["token"].as_str(),
        Some(params.vm.runner_token.expose_secret())
    );
    assert_eq!(r["name"].as_str(), Some(params.vm.name.as_str()));
    assert_eq!(r["url"].as_str(), Some(params.vm.gitlab_url.as_str()));
    assert_eq!(
        r["id"].as_integer(),
        i64::try_from(params.vm.runner_id).ok()
    );
    assert_eq!(r["executor"].as_str(), Some("docker"));
    assert_eq!(r["limit"].as_integer(), Some(capacity));
    assert_eq!(
        r["docker"]["image"].as_str(),
        Some(params.pool.runner.docker_image.as_str())
    );
    assert_eq!(
        r["docker"]["privileged"].as_bool(),
        Some(params.pool.runner.privileged)
    );
    let volumes = r["docker"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), params.pool.runner.volumes.len());
    match &params.pool.runner.cache {
        Some(cache) => {
            let s3 = &r["cache"]["s3"];
            assert_eq!(r["cache"]["Type"].as_str(), Some("s3"));
            assert_eq!(
                s3["AccessKey"].as_str(),
                Some(cache.access_key.expose_secret())
            );
            assert_eq!(
                s3["SecretKey"].as_str(),
                Some(cache.secret_key.expose_secret())
            );
            assert_eq!(s3["BucketName"].as_str(), Some(cache.bucket_name.as_str()));
            assert_eq!(
                s3["ServerAddress"].as_str(),
                Some(cache.server_address.as_str())
            );
        }
        None => assert!(r.get("cache").is_none()),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            out.extend(walk(&entry.path()));
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    out
}

fn variant(name: &str) -> Variant {
    variants::all()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap()
}

#[test]
fn every_variant_bootstraps_in_order_and_writes_a_0600_runner_config() {
    for v in variants::all() {
        check_variant(&v);
    }
}

#[test]
fn missing_binfmt_handler_stops_the_bootstrap_before_the_runner_starts() {
    let o = run(
        &variant("distro-docker").params,
        &Run {
            unregistered: "qemu-arm",
            ..Run::default()
        },
    );
    assert!(!o.success, "{}", o.dump());
    o.before(
        "call: update-binfmts --enable qemu-arm",
        "binfmt handler qemu-arm is not registered",
    );
    assert!(!o.has("call: systemctl restart gitlab-runner.service"));
    assert!(!o.file(paths::RUNNER_CONFIG).exists());
}

#[test]
fn native_architecture_needs_no_binfmt_handler() {
    let knobs = Run {
        unregistered: "qemu-aarch64",
        uname: Some("aarch64"),
        ..Run::default()
    };
    let o = run(&variant("distro-docker").params, &knobs);
    assert!(o.success, "{}", o.dump());
    assert!(o.has("qemu-aarch64: native architecture, no handler needed"));
    assert!(o.has("qemu-arm: registered"));
}

#[test]
fn image_without_docker_stops_the_bootstrap_before_the_runner_starts() {
    let knobs = Run {
        without_docker: true,
        ..Run::default()
    };
    let o = run(&variant("docker-in-image").params, &knobs);
    assert!(!o.success, "{}", o.dump());
    assert!(o.has("docker_install is image, but the image has no docker command"));
    assert!(!o.has("call: systemctl restart gitlab-runner.service"));
}

#[test]
fn failing_shell_before_stops_the_bootstrap_before_anything_else() {
    let mut params = variant("hooks-extra").params;
    params.pool.bootstrap.shell_before = Some("echo \"hook: shell_before ran\"\nexit 3\n".into());
    let o = run(&params, &Run::default());
    assert!(!o.success, "{}", o.dump());
    assert!(o.has("hook: shell_before ran"));
    assert!(
        !o.log.iter().any(|l| l.starts_with("call: ")),
        "{}",
        o.dump()
    );
}

#[test]
fn metadata_rule_survives_a_docker_restart_and_a_reboot_without_doubling() {
    let o = run(&variant("distro-docker").params, &Run::default());
    assert!(o.success, "{}", o.dump());
    let unit = paths::BLOCK_METADATA_UNIT_NAME;
    // Docker restart: dockerd keeps DOCKER-USER; PartOf restarts the unit.
    assert!(o.systemctl("restart docker.service"));
    assert!(o.systemctl(&format!("restart {unit}")));
    assert_eq!(o.count("iptables", RULE_V4), 1, "{:?}", o.rules("iptables"));
    assert_eq!(o.count("ip6tables", RULE_V6), 1);
    // Reboot: the kernel forgot the rules; Docker starts and WantedBy starts the unit.
    o.reboot_firewall();
    assert_eq!(o.count("iptables", RULE_V4), 0);
    assert!(o.systemctl("start docker.service"));
    assert!(o.systemctl(&format!("start {unit}")));
    assert_eq!(o.count("iptables", RULE_V4), 1, "{:?}", o.rules("iptables"));
    assert_eq!(o.count("ip6tables", RULE_V6), 1);
    assert_eq!(o.count("iptables", "FORWARD -j DOCKER-USER"), 1);
}

#[test]
fn metadata_rule_is_installed_without_ip6tables() {
    let knobs = Run {
        without_ip6tables: true,
        ..Run::default()
    };
    let o = run(&variant("distro-docker").params, &knobs);
    assert!(o.success, "{}", o.dump());
    assert_eq!(o.count("iptables", RULE_V4), 1);
    assert!(!o.has("call: ip6tables"), "{}", o.dump());
}

#[test]
fn failing_metadata_rule_stops_the_bootstrap_before_the_runner_starts() {
    let knobs = Run {
        broken_iptables: true,
        ..Run::default()
    };
    let o = run(&variant("distro-docker").params, &knobs);
    assert!(!o.success, "{}", o.dump());
    assert!(!o.has("call: systemctl restart gitlab-runner.service"));
    assert!(!o.file(paths::RUNNER_CONFIG).exists());
}

#[test]
fn metadata_block_off_installs_no_rule_but_still_deletes_the_user_data_copies() {
    let o = run(&variant("metadata-open").params, &Run::default());
    assert!(o.success, "{}", o.dump());
    check_metadata_block(&o, false);
    let instance = o.file(&format!("/var/lib/cloud/instances/{INSTANCE_ID}"));
    assert!(!instance.join("user-data.txt").exists());
}
