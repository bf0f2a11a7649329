#!/usr/bin/env bash
# Builds autoscaler_<version>_<arch>.deb with plain `dpkg-deb --build` (no debhelper) from a
# release build of this checkout, and prints the path of the package.
#
#   bash packaging/build-deb.sh [--out DIR] [--no-build] [--require-check-plugin] [--no-strip]
#
#   --out DIR               where the .deb goes (default: <target dir>/debian)
#   --no-build              package the existing release binaries instead of running cargo
#   --require-check-plugin  fail if check_gitlab_autoscaler does not build (default: package
#                           without it and say so)
#   --no-strip              keep the binaries' debug line tables (about 5x larger)
#
# The release build always uses the checkout's own target directory (<checkout>/target, or
# build.target-dir of its .cargo/config.toml): CARGO_TARGET_DIR is ignored, so CI reuses the
# release build of the checkout it runs in and a helper's private target dir never leaks in.
# Needs: cargo, dpkg-deb, gzip; dpkg-shlibdeps (package dpkg-dev) for exact Depends, else a
# readelf-based fallback; objcopy (binutils) for stripping.
set -euo pipefail

out=""
build=1
require_check=0
strip=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    --require-check-plugin) require_check=1; shift ;;
    --no-strip) strip=0; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unset CARGO_TARGET_DIR
cd "$root"
pkgdir="$root/packaging"

die() { echo "build-deb.sh: $*" >&2; exit 1; }
for tool in cargo dpkg-deb gzip; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done

target_dir=$(cargo metadata --format-version 1 --no-deps |
  grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
[ -n "$target_dir" ] || die "cargo metadata did not name a target directory"
release="$target_dir/release"

# --- build -------------------------------------------------------------------------------
with_check=1
if [ "$build" = 1 ]; then
  echo "building release binaries in $target_dir" >&2
  if ! cargo build --release --bin autoscaler --bin check_gitlab_autoscaler >&2; then
    [ "$require_check" = 1 ] && die "the release build failed (check_gitlab_autoscaler required)"
    echo "build-deb.sh: warning: building both binaries failed; retrying autoscaler alone" >&2
    cargo build --release --bin autoscaler >&2 || die "the release build of autoscaler failed"
    with_check=0
  fi
fi
[ -x "$release/autoscaler" ] || die "$release/autoscaler is missing (build it or drop --no-build)"
if [ ! -x "$release/check_gitlab_autoscaler" ]; then
  [ "$require_check" = 1 ] && die "$release/check_gitlab_autoscaler is missing"
  with_check=0
fi
if [ "$with_check" = 0 ]; then
  echo "build-deb.sh: warning: packaging WITHOUT check_gitlab_autoscaler" >&2
elif [ "$build" = 0 ] && [ "$release/check_gitlab_autoscaler" -ot "$release/autoscaler" ]; then
  echo "build-deb.sh: note: check_gitlab_autoscaler is older than autoscaler (--no-build)" >&2
fi

bin="$release/autoscaler"
version_line=$("$bin" --version) || die "'$bin --version' failed"
version=${AUTOSCALER_DEB_VERSION:-${version_line##* }}
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "unusable package version '$version'"
arch=$(dpkg --print-architecture)

# --- stage the file tree ------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/root"
mkdir -p "$stage/DEBIAN"

install_bin() { # source destination
  install -D -m 0755 "$1" "$stage/$2"
  if [ "$strip" = 1 ]; then
    objcopy --strip-debug "$stage/$2" || die "objcopy --strip-debug $2 failed (install binutils or use --no-strip)"
  fi
}
install_bin "$bin" usr/bin/autoscaler
if [ "$with_check" = 1 ]; then
  install_bin "$release/check_gitlab_autoscaler" usr/lib/nagios/plugins/check_gitlab_autoscaler
fi

install -D -m 0644 "$pkgdir/autoscaler.service" "$stage/lib/systemd/system/autoscaler.service"
install -d -m 0750 "$stage/etc/gitlab-autoscaler"
install -m 0644 "$root/docs/examples/reference-setup.toml" \
  "$stage/etc/gitlab-autoscaler/config.toml.example"
# May hold tokens: root only (systemd reads it before dropping privileges).
install -D -m 0600 "$pkgdir/debian/default" "$stage/etc/default/gitlab-autoscaler"

install -d "$stage/usr/share/man/man1"
"$bin" man | gzip -9n >"$stage/usr/share/man/man1/autoscaler.1.gz"
[ -s "$stage/usr/share/man/man1/autoscaler.1.gz" ] || die "'autoscaler man' printed nothing"

install -d "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
"$bin" completions bash >"$stage/usr/share/bash-completion/completions/autoscaler"
"$bin" completions zsh >"$stage/usr/share/zsh/vendor-completions/_autoscaler"
"$bin" completions fish >"$stage/usr/share/fish/vendor_completions.d/autoscaler.fish"
for f in "$stage/usr/share/bash-completion/completions/autoscaler" \
  "$stage/usr/share/zsh/vendor-completions/_autoscaler" \
  "$stage/usr/share/fish/vendor_completions.d/autoscaler.fish"; do
  [ -s "$f" ] || die "'autoscaler completions' printed nothing for ${f##*/}"
done

doc="$stage/usr/share/doc/autoscaler"
install -d "$doc/examples"
install -m 0644 "$pkgdir/debian/copyright" "$doc/copyright"
for f in operations.md migration-from-docker-machine.md configuration.md policy.md \
  architecture.md icinga.md; do
  if [ -f "$root/docs/$f" ]; then install -m 0644 "$root/docs/$f" "$doc/$f"; fi
done
install -m 0644 "$root/docs/examples/reference-setup.toml" \
  "$root/docs/examples/docker-machine-config.toml" "$doc/examples/"
# The Icinga 2 CheckCommand of the check plugin, when this checkout has it.
icinga_conf="$root/check-plugin/icinga/check_gitlab_autoscaler.conf"
if [ "$with_check" = 1 ] && [ -f "$icinga_conf" ]; then
  install -D -m 0644 "$icinga_conf" "$doc/examples/icinga2/check_gitlab_autoscaler.conf"
fi

# Prometheus alerting rules and the Grafana dashboard (docs/operations.md).
install -D -m 0644 "$pkgdir/prometheus/autoscaler-alerts.yml" \
  "$stage/usr/share/autoscaler/prometheus/autoscaler-alerts.yml"
install -D -m 0644 "$pkgdir/grafana/autoscaler-dashboard.json" \
  "$stage/usr/share/autoscaler/grafana/autoscaler-dashboard.json"

for s in postinst prerm postrm; do
  install -m 0755 "$pkgdir/debian/$s" "$stage/DEBIAN/$s"
done
# Every file dpkg puts under /etc is a conffile (Debian policy 10.7.3): local edits survive
# upgrades. The live config.toml is never shipped; the admin creates it.
printf '%s\n' /etc/default/gitlab-autoscaler /etc/gitlab-autoscaler/config.toml.example \
  >"$stage/DEBIAN/conffiles"

# --- Depends ------------------------------------------------------------------------------
bins=("$stage/usr/bin/autoscaler")
[ "$with_check" = 1 ] && bins+=("$stage/usr/lib/nagios/plugins/check_gitlab_autoscaler")

shlibs_depends() {
  if command -v dpkg-shlibdeps >/dev/null; then
    local d="$work/shlibs"
    mkdir -p "$d/debian"
    printf 'Source: autoscaler\n\nPackage: autoscaler\nArchitecture: any\n' >"$d/debian/control"
    local args=()
    for b in "${bins[@]}"; do args+=("-e$b"); done
    (cd "$d" && dpkg-shlibdeps -O "${args[@]}") | sed -n 's/^shlibs:Depends=//p'
    return
  fi
  # Fallback: the package of each NEEDED library; libc6 at the newest GLIBC_ symbol version.
  local libs pkgs glibc
  libs=$(for b in "${bins[@]}"; do readelf -d "$b"; done |
    sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u)
  pkgs=$(for l in $libs; do
    p=$(ldconfig -p | awk -v l="$l" '$1 == l { print $NF; exit }')
    [ -n "$p" ] && dpkg -S "$(readlink -f "$p")" 2>/dev/null | head -1 | cut -d: -f1
  done | sort -u | grep -v '^libc6$' || true)
  glibc=$(for b in "${bins[@]}"; do objdump -T "$b"; done |
    grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  local dep="libc6 (>= ${glibc:-2.31})"
  for p in $pkgs; do dep="$dep, $p"; done
  echo "$dep"
}
shlibs=$(shlibs_depends)
[ -n "$shlibs" ] || die "could not compute the shared-library dependencies"
case "$shlibs" in libc6*|*" libc6"*) ;; *) die "Depends '$shlibs' does not name libc6" ;; esac

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
description="GitLab CI runner autoscaler for OpenStack
 Replaces GitLab Runner's deprecated docker+machine executor on OpenStack: reads
 the GitLab job queue, keeps warm pools of cloud-init bootstrapped VMs with one
 runner each, grows to a limit when pipelines fan out, honours idle count, idle
 time, max builds and cron periods with time zones, and never kills a running job."
if [ "$with_check" = 1 ]; then
  description="$description
 .
 Includes the Icinga/Nagios plugin check_gitlab_autoscaler."
fi
cat >"$stage/DEBIAN/control" <<EOF
Package: autoscaler
Version: $version
Architecture: $arch
Maintainer: gitlab-openstack-autoscaler maintainers <root@localhost>
Installed-Size: $installed_size
Depends: adduser, $shlibs
Suggests: monitoring-plugins-basic
Section: admin
Priority: optional
Description: $description
EOF

# --- build the package --------------------------------------------------------------------
out=${out:-$target_dir/debian}
mkdir -p "$out"
deb="$(cd "$out" && pwd)/autoscaler_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
