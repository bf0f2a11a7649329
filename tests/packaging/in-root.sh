#!/usr/bin/env bash
# Install checks of tests/packaging/run.sh, run as root inside the throwaway root (or, with
# PKG_TEST_REAL_INSTALL=1, on the machine itself). Prints one "ok   - ", "FAIL - " or
# "skip - " line per check; run.sh counts them.
#
#   in-root.sh DEB VERSION overlay|real
# Single-quoted `bash -c` bodies expand their own arguments; helpers are called through `check`.
# shellcheck disable=SC2016,SC2317
set -uo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
deb=$1
version=$2
mode=$3

ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 15 | sed 's/^/       /'; }
skip() { echo "skip - $1"; }
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

CONF_DIR=/etc/gitlab-autoscaler
WANTS=/etc/systemd/system/multi-user.target.wants/autoscaler.service

if [ "$mode" = real ]; then
  # Never clobber a real installation.
  if dpkg-query -W -f='${Status}' autoscaler 2>/dev/null | grep -q installed || [ -e "$CONF_DIR" ]; then
    bad "refusing a real install: autoscaler or $CONF_DIR already exists on this machine"
    exit 1
  fi
fi
if [ -d /run/systemd/system ]; then systemd=1; else systemd=0; fi

# --- 1. fresh install without a configuration --------------------------------------------
if out=$(apt-get install -y "$deb" 2>&1); then
  ok "apt-get install -y ./$(basename "$deb")"
else
  bad "apt-get install -y ./$(basename "$deb")" "$out"
  exit 1
fi
check "postinst explains how to create the missing config and does not start" \
  grep -q "config.toml does not exist, so the service was not started" <<<"$out"
check "/usr/bin/autoscaler --version prints autoscaler $version" \
  test "$(/usr/bin/autoscaler --version)" = "autoscaler $version"
if [ -x /usr/lib/nagios/plugins/check_gitlab_autoscaler ]; then
  # Monitoring Plugins guidelines: --version exits 3 (UNKNOWN).
  v=$(/usr/lib/nagios/plugins/check_gitlab_autoscaler --version 2>&1)
  check "check_gitlab_autoscaler --version runs and names $version ($v)" grep -q "$version" <<<"$v"
else
  skip "check_gitlab_autoscaler (not in this package)"
fi
pw=$(getent passwd gitlab-autoscaler)
check "system user gitlab-autoscaler exists ($pw)" test -n "$pw"
uid=$(cut -d: -f3 <<<"$pw")
check "gitlab-autoscaler is a system uid (< 1000)" test "${uid:-1000}" -lt 1000
check "gitlab-autoscaler has no login shell" grep -Eq ':/usr/sbin/nologin$|:/bin/false$' <<<"$pw"
check "gitlab-autoscaler's home is /var/lib/gitlab-autoscaler" \
  test "$(cut -d: -f6 <<<"$pw")" = /var/lib/gitlab-autoscaler
check "/var/lib/gitlab-autoscaler is 750 gitlab-autoscaler:gitlab-autoscaler" \
  test "$(stat -c '%a %U:%G' /var/lib/gitlab-autoscaler)" = "750 gitlab-autoscaler:gitlab-autoscaler"
check "$CONF_DIR is 750 root:gitlab-autoscaler" \
  test "$(stat -c '%a %U:%G' "$CONF_DIR")" = "750 root:gitlab-autoscaler"
check "/etc/default/gitlab-autoscaler is 600 root:root" \
  test "$(stat -c '%a %U:%G' /etc/default/gitlab-autoscaler)" = "600 root:root"
conffiles=$(dpkg-query -W -f='${Conffiles}' autoscaler)
check "dpkg records both conffiles" \
  bash -c 'grep -q " /etc/default/gitlab-autoscaler " <<<"$1" && grep -q " /etc/gitlab-autoscaler/config.toml.example " <<<"$1"' _ "$conffiles"
check "service is not enabled without a config" test ! -e "$WANTS"
if [ "$systemd" = 1 ]; then
  check "systemctl cat autoscaler.service" systemctl cat autoscaler.service
  check "service is not running without a config" bash -c '! systemctl is-active --quiet autoscaler.service'
else
  check "installed unit is /lib/systemd/system/autoscaler.service" \
    grep -qx 'ExecStart=/usr/bin/autoscaler run --config /etc/gitlab-autoscaler/config.toml $AUTOSCALER_OPTS' \
    /lib/systemd/system/autoscaler.service
fi
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify autoscaler.service is silent" \
    bash -c 'o=$(systemd-analyze verify /lib/systemd/system/autoscaler.service 2>&1); echo "$o"; [ -z "$o" ]'
  score=$(systemd-analyze security --offline=yes /lib/systemd/system/autoscaler.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for autoscaler.service: \([0-9.]*\).*/\1/p')
  if [ -n "$score" ]; then
    # 0 = fully locked down, 10 = unprotected; systemd labels < 2 "OK".
    check "systemd-analyze security exposure $score is below 2.0 (OK)" \
      awk -v s="$score" 'BEGIN { exit !(s < 2.0) }'
  else
    skip "systemd-analyze security --offline (not supported by this systemd)"
  fi
else
  skip "systemd-analyze verify (systemd-analyze not installed)"
fi
check "man -w finds autoscaler(1)" bash -c 'command -v man >/dev/null || exit 0; man -w autoscaler'

# --- 2. purge without admin files -----------------------------------------------------------
out=$(apt-get purge -y autoscaler 2>&1)
check "apt-get purge -y autoscaler" test "$?" = 0
check "purge removes /usr/bin/autoscaler" test ! -e /usr/bin/autoscaler
check "purge removes the unit" test ! -e /lib/systemd/system/autoscaler.service
check "purge removes /var/lib/gitlab-autoscaler" test ! -e /var/lib/gitlab-autoscaler
check "purge removes $CONF_DIR (nothing of the admin's was in it)" test ! -e "$CONF_DIR"
check "purge removes /etc/default/gitlab-autoscaler" test ! -e /etc/default/gitlab-autoscaler
check "dpkg no longer knows the package" \
  bash -c '! dpkg-query -W -f="\${Status}" autoscaler 2>/dev/null | grep -q "installed"'

# --- 3. install with a configuration in place, upgrade, purge --------------------------------
install -d -m 0750 "$CONF_DIR"
cat >"$CONF_DIR/config.toml" <<'EOF'
[controller]
id = "pkgtest"
[gitlab]
url = "https://gitlab.invalid/"
token_file = "/etc/gitlab-autoscaler/token"
[gitlab.scope]
projects = ["group/project"]
[[pools]]
name = "docker"
limit = 2
[pools.server]
flavor = "f"
image = "i"
networks = ["n"]
[pools.runner]
EOF
out=$(apt-get install -y "$deb" 2>&1)
check "apt-get install with a config present" test "$?" = 0
check "with a config, postinst does not print the missing-config note" \
  bash -c '! grep -q "does not exist" <<<"$1"' _ "$out"
check "with a config, the service is enabled (multi-user.target.wants)" test -L "$WANTS"
check "installed autoscaler validates the admin's config" /usr/bin/autoscaler validate "$CONF_DIR/config.toml"
check "an admin's config.toml is left alone by install" grep -q 'id = "pkgtest"' "$CONF_DIR/config.toml"
if [ "$systemd" = 1 ]; then
  skip "service start (systemd runs here; the test config has no real GitLab to reach)"
fi
systemctl disable autoscaler.service >/dev/null 2>&1
check "systemctl disable works offline" test ! -e "$WANTS"
out=$(dpkg -i "$deb" 2>&1)
check "reinstall/upgrade (dpkg -i again)" test "$?" = 0
check "an upgrade keeps the admin's disable" test ! -e "$WANTS"
check "an upgrade keeps the admin's config" grep -q 'id = "pkgtest"' "$CONF_DIR/config.toml"
systemctl enable autoscaler.service >/dev/null 2>&1
out=$(apt-get purge -y autoscaler 2>&1)
check "purge with an admin config" test "$?" = 0
check "purge names and keeps the admin's files" \
  bash -c 'grep -q "kept /etc/gitlab-autoscaler" <<<"$1" && test -f /etc/gitlab-autoscaler/config.toml' _ "$out"
check "purge removes the enable symlink" test ! -e "$WANTS"
check "purge removes the package's example config" test ! -e "$CONF_DIR/config.toml.example"
rm -rf "$CONF_DIR"
exit 0
