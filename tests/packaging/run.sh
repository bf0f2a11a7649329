#!/usr/bin/env bash
# Packaging test: builds the .deb with packaging/build-deb.sh (reusing the release build in
# the checkout's target directory), checks its contents and metadata, then installs, checks
# and purges it in a throwaway root: an overlay of / in a private mount namespace, entered
# with chroot, so the machine itself is not changed. Prints "N passed, M failed" and exits
# non-zero on any failure.
#
#   bash tests/packaging/run.sh
#
# Install checks need root. Without overlay support they run on this machine instead only
# when PKG_TEST_REAL_INSTALL=1 (CI runners that are thrown away afterwards); otherwise they
# are skipped and reported as skipped. REQUIRE_CHECK_PLUGIN=1 makes a package without
# check_gitlab_autoscaler a failure.
# Single-quoted `bash -c` bodies expand their own arguments; helpers are called through `check`.
# shellcheck disable=SC2016,SC2317
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
# Same target directory as build-deb.sh (the checkout's own).
unset CARGO_TARGET_DIR

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
skipped=0
start=$SECONDS

ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 15 | sed 's/^/       /'; fail=$((fail + 1)); }
skip() { echo "skip - $1"; skipped=$((skipped + 1)); }
# check NAME COMMAND...: passes when COMMAND exits 0; shows its output otherwise.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
finish() {
  echo "$pass passed, $fail failed${skipped:+, $skipped skipped} ($((SECONDS - start)) s)"
  [ "$fail" -eq 0 ]
  exit
}

# --- tools (a fresh Debian machine may lack them; install as root) --------------------------
missing=()
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v objcopy >/dev/null || missing+=(binutils)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v man >/dev/null || missing+=(man-db)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- build --------------------------------------------------------------------------------
build_args=()
[ "${REQUIRE_CHECK_PLUGIN:-0}" = 1 ] && build_args+=(--require-check-plugin)
if deb=$(bash packaging/build-deb.sh --out "$work/out" "${build_args[@]}" 2>"$work/build.log"); then
  ok "build-deb.sh builds $(basename "$deb") ($(du -h "$deb" | cut -f1))"
else
  bad "build-deb.sh builds a package" "$(cat "$work/build.log")"
  finish
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
version=$("$target_dir/release/autoscaler" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)

# --- metadata (dpkg-deb -I / -f) ----------------------------------------------------------
check "file name is autoscaler_<version>_<arch>.deb" \
  test "$(basename "$deb")" = "autoscaler_${version}_${arch}.deb"
field() { dpkg-deb -f "$deb" "$1"; }
check "Package is autoscaler" test "$(field Package)" = autoscaler
check "Version $version matches autoscaler --version" test "$(field Version)" = "$version"
check "Architecture is $arch" test "$(field Architecture)" = "$arch"
depends=$(field Depends)
check "Depends names libc6 with a minimum version ($depends)" \
  grep -Eq '(^|, )libc6 \(>= [0-9.]+\)' <<<"$depends"
check "Depends names adduser (postinst creates the user)" grep -Eq '(^|, )adduser(,|$| )' <<<"$depends"
info=$(dpkg-deb -I "$deb")
for s in postinst prerm postrm conffiles; do
  check "control archive has $s" grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$s( |$)" <<<"$info"
done
dpkg-deb -e "$deb" "$work/control"
check "conffiles lists /etc/gitlab-autoscaler/config.toml.example and /etc/default/gitlab-autoscaler" \
  test "$(sort "$work/control/conffiles" | tr '\n' ' ')" = \
  "/etc/default/gitlab-autoscaler /etc/gitlab-autoscaler/config.toml.example "
for s in postinst prerm postrm; do
  check "$s passes sh -n" sh -n "$work/control/$s"
done
if command -v shellcheck >/dev/null; then
  check "maintainer scripts pass shellcheck" shellcheck -s sh "$work/control/postinst" \
    "$work/control/prerm" "$work/control/postrm"
else
  skip "shellcheck of the maintainer scripts (shellcheck not installed)"
fi

# --- contents (dpkg-deb -c) ---------------------------------------------------------------
listing=$(dpkg-deb -c "$deb")
# has_entry MODE PATH: an entry with that mode, owned by root/root.
has_entry() {
  awk -v m="$1" -v p="./$2" '$1 == m && $2 == "root/root" && $6 == p { f = 1 } END { exit !f }' \
    <<<"$listing"
}
check "/usr/bin/autoscaler, 0755 root" has_entry -rwxr-xr-x usr/bin/autoscaler
if [ -x "$target_dir/release/check_gitlab_autoscaler" ]; then
  check "/usr/lib/nagios/plugins/check_gitlab_autoscaler, 0755 root" \
    has_entry -rwxr-xr-x usr/lib/nagios/plugins/check_gitlab_autoscaler
  if [ -f check-plugin/icinga/check_gitlab_autoscaler.conf ]; then
    check "Icinga 2 CheckCommand in the doc examples" has_entry -rw-r--r-- \
      usr/share/doc/autoscaler/examples/icinga2/check_gitlab_autoscaler.conf
  fi
else
  skip "check_gitlab_autoscaler (it did not build; see build-deb.sh warnings)"
fi
check "/lib/systemd/system/autoscaler.service" has_entry -rw-r--r-- lib/systemd/system/autoscaler.service
check "/usr/share/man/man1/autoscaler.1.gz" has_entry -rw-r--r-- usr/share/man/man1/autoscaler.1.gz
check "bash completion" has_entry -rw-r--r-- usr/share/bash-completion/completions/autoscaler
check "zsh completion" has_entry -rw-r--r-- usr/share/zsh/vendor-completions/_autoscaler
check "fish completion" has_entry -rw-r--r-- usr/share/fish/vendor_completions.d/autoscaler.fish
check "/etc/gitlab-autoscaler/config.toml.example" \
  has_entry -rw-r--r-- etc/gitlab-autoscaler/config.toml.example
check "/etc/default/gitlab-autoscaler is 0600 (may hold tokens)" \
  has_entry -rw------- etc/default/gitlab-autoscaler
check "/usr/share/doc/autoscaler/copyright" has_entry -rw-r--r-- usr/share/doc/autoscaler/copyright
check "Prometheus alerting rules" \
  has_entry -rw-r--r-- usr/share/autoscaler/prometheus/autoscaler-alerts.yml
check "Grafana dashboard" \
  has_entry -rw-r--r-- usr/share/autoscaler/grafana/autoscaler-dashboard.json
check "no live config.toml is shipped" \
  bash -c '! grep -q "etc/gitlab-autoscaler/config.toml$" <<<"$1"' _ "$listing"

# --- the files themselves (dpkg-deb -x) ---------------------------------------------------
x="$work/x"
dpkg-deb -x "$deb" "$x"
check "packaged autoscaler prints version $version" \
  test "$("$x/usr/bin/autoscaler" --version)" = "autoscaler $version"
check "binaries are stripped of debug info" \
  bash -c '! readelf -S "$1" | grep -q "\.debug_line"' _ "$x/usr/bin/autoscaler"
check "config.toml.example is docs/examples/reference-setup.toml" \
  cmp "$x/etc/gitlab-autoscaler/config.toml.example" docs/examples/reference-setup.toml
check "config.toml.example passes autoscaler validate" \
  "$x/usr/bin/autoscaler" validate "$x/etc/gitlab-autoscaler/config.toml.example"
check "packaged alerting rules are packaging/prometheus/autoscaler-alerts.yml" \
  cmp "$x/usr/share/autoscaler/prometheus/autoscaler-alerts.yml" packaging/prometheus/autoscaler-alerts.yml
check "packaged dashboard is packaging/grafana/autoscaler-dashboard.json" \
  cmp "$x/usr/share/autoscaler/grafana/autoscaler-dashboard.json" packaging/grafana/autoscaler-dashboard.json
if command -v promtool >/dev/null; then
  check "packaged alerting rules pass promtool check rules" \
    promtool check rules "$x/usr/share/autoscaler/prometheus/autoscaler-alerts.yml"
else
  skip "promtool check rules (promtool not installed; tests/prometheus/run.sh runs it)"
fi
if command -v python3 >/dev/null; then
  check "packaged dashboard is valid JSON" \
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$x/usr/share/autoscaler/grafana/autoscaler-dashboard.json"
else
  skip "dashboard JSON syntax (python3 not installed)"
fi
check "man page is roff with a .TH header" \
  bash -c 'gzip -dc "$1" | grep -q "^\.TH autoscaler 1"' _ "$x/usr/share/man/man1/autoscaler.1.gz"
if command -v man >/dev/null; then
  check "man page renders and documents the run subcommand" \
    bash -c 'MANWIDTH=80 man -l "$1" 2>/dev/null | grep -q "autoscaler-run"' _ \
    "$x/usr/share/man/man1/autoscaler.1.gz"
fi
check "bash completion parses and registers autoscaler" \
  bash -c 'source "$1" && complete -p autoscaler' _ "$x/usr/share/bash-completion/completions/autoscaler"
check "zsh completion declares #compdef autoscaler" \
  grep -q '^#compdef autoscaler' "$x/usr/share/zsh/vendor-completions/_autoscaler"
check "fish completion completes the run subcommand" \
  grep -q -- '-a "run"' "$x/usr/share/fish/vendor_completions.d/autoscaler.fish"
if command -v zsh >/dev/null; then
  check "zsh completion passes zsh -n" zsh -n "$x/usr/share/zsh/vendor-completions/_autoscaler"
fi
if command -v fish >/dev/null; then
  check "fish completion passes fish -n" fish -n "$x/usr/share/fish/vendor_completions.d/autoscaler.fish"
fi
unit="$x/lib/systemd/system/autoscaler.service"
unit_has() { grep -qx "$1" "$unit"; }
for line in 'Type=exec' 'User=gitlab-autoscaler' 'Restart=on-failure' 'KillSignal=SIGTERM' \
  'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
  'ReadWritePaths=/var/lib/gitlab-autoscaler' 'StateDirectory=gitlab-autoscaler' \
  'EnvironmentFile=-/etc/default/gitlab-autoscaler' \
  'ExecStart=/usr/bin/autoscaler run --config /etc/gitlab-autoscaler/config.toml $AUTOSCALER_OPTS'; do
  check "unit sets $line" unit_has "$line"
done
check "unit gives an in-flight tick at least 5 minutes to stop" \
  bash -c 'v=$(sed -n "s/^TimeoutStopSec=\([0-9]*\)min$/\1/p" "$1"); [ "${v:-0}" -ge 5 ]' _ "$unit"

# --- install, inspect and purge in a throwaway root ---------------------------------------
mode=""
if [ "$(id -u)" != 0 ]; then
  skip "install/purge checks (need root)"
elif mkdir -p "$work/probe" && unshare -m --propagation private sh -c '
      mount -t tmpfs tmpfs "$1" && mkdir "$1/u" "$1/w" "$1/m" &&
      mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/m"' _ "$work/probe" \
  2>/dev/null; then
  mode=overlay
elif [ "${PKG_TEST_REAL_INSTALL:-0}" = 1 ]; then
  mode=real
else
  skip "install/purge checks (no overlay mounts here; PKG_TEST_REAL_INSTALL=1 installs on this machine)"
fi

if [ -n "$mode" ]; then
  cp "$deb" "$work/"
  inner_out="$work/inner.log"
  if [ "$mode" = overlay ]; then
    echo "installing in a throwaway root (overlay of /, chroot)"
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare -m --propagation private bash -c '
      set -e
      w=$1
      mkdir -p "$w/r"
      mount -t tmpfs tmpfs "$w/r"
      mkdir -p "$w/r/u" "$w/r/w" "$w/r/m"
      mount -t overlay overlay -o "lowerdir=/,upperdir=$w/r/u,workdir=$w/r/w" "$w/r/m"
      m=$w/r/m
      mount -t proc proc "$m/proc"
      mount --rbind /dev "$m/dev"
      mount --rbind /sys "$m/sys"
      mount -t tmpfs tmpfs "$m/run"
      mount -t tmpfs tmpfs "$m/tmp"
      mkdir -p "$m/tmp/pkgtest"
      cp "$2" "$3" "$m/tmp/pkgtest/"
      chroot "$m" bash /tmp/pkgtest/in-root.sh "/tmp/pkgtest/$(basename "$2")" "$4" overlay
    ' _ "$work" "$work/$(basename "$deb")" "$here/in-root.sh" "$version" >"$inner_out" 2>&1
  else
    echo "installing on this machine (PKG_TEST_REAL_INSTALL=1)"
    bash "$here/in-root.sh" "$work/$(basename "$deb")" "$version" real >"$inner_out" 2>&1
  fi
  rc=$?
  cat "$inner_out"
  p=$(grep -c '^ok   - ' "$inner_out")
  f=$(grep -c '^FAIL - ' "$inner_out")
  s=$(grep -c '^skip - ' "$inner_out")
  pass=$((pass + p))
  fail=$((fail + f))
  skipped=$((skipped + s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    bad "install checks ran to the end (exit $rc)"
  fi
  if [ "$p" -eq 0 ]; then
    bad "install checks ran at all"
  fi
fi

finish
