#!/bin/bash
# Validates the bootstrap user-data end to end. CI runs it from the repository root:
#   bash tests/cloud-init/run.sh
# 1. installs cloud-init and shellcheck through apt when missing (needs root);
# 2. cargo test -p autoscaler-bootstrap --test it: every golden file equals render() of
#    its variant, and the behavioural test runs each rendered script against stubs;
# 3. the checker's self-test on its example documents;
# 4. each golden file (= rendered user-data) through cloudinit-check.sh: cloud-init schema,
#    strict top-level keys, sh -n and shellcheck on every shell part.
# Prints one PASS/FAIL line per check and a final "N passed, M failed"; exits non-zero on
# any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
golden_dir=bootstrap/tests/golden
passed=0 failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

record() { # rc name logfile
  if (($1 == 0)); then
    passed=$((passed + 1)); echo "PASS $2"
  else
    failed=$((failed + 1)); echo "FAIL $2"; sed 's/^/    /' "$3"
  fi
}

# --- 1. tools -------------------------------------------------------------------------
missing=()
command -v cloud-init >/dev/null || missing+=(cloud-init)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get -o DPkg::Lock::Timeout=900 update -qq >"$log/apt" 2>&1 &&
     apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}" >>"$log/apt" 2>&1; then
    # The package enables cloud-init's units; keep them from running at this host's next boot.
    if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
      mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
    fi
    record 0 "install ${missing[*]}" "$log/apt"
  else
    record 1 "install ${missing[*]}" "$log/apt"
    echo "$passed passed, $failed failed"; exit 1
  fi
fi

# --- 2. golden == render(), behavioural test --------------------------------------------
cargo test -p autoscaler-bootstrap --test it >"$log/cargo" 2>&1
record $? "cargo test -p autoscaler-bootstrap --test it (golden files current, behaviour)" "$log/cargo"
grep -E '^test result:' "$log/cargo" | sed 's/^/    /'

# --- 3. the checker judges its own examples correctly -----------------------------------
CLOUDINIT_CHECK_SHELLCHECK=required bash "$here/cloudinit-check.sh" >"$log/selftest" 2>&1
record $? "cloudinit-check.sh self-test" "$log/selftest"

shellcheck "$here"/*.sh >"$log/selfcheck" 2>&1
record $? "shellcheck tests/cloud-init/*.sh" "$log/selfcheck"

# --- 4. every golden user-data -----------------------------------------------------------
shopt -s nullglob
goldens=("$golden_dir"/*.yaml)
if ((${#goldens[@]} == 0)); then
  echo "no golden files in $golden_dir" >"$log/none"; record 1 "golden files present" "$log/none"
fi
for f in "${goldens[@]}"; do
  CLOUDINIT_CHECK_SHELLCHECK=required bash "$here/cloudinit-check.sh" "$f" >"$log/one" 2>&1
  rc=$?
  # every golden file has at least the bootstrap script as a shell part: make sure it was seen
  if ((rc == 0)) && ! grep -q '^\$ shellcheck write_files:/var/lib/gitlab-autoscaler/bootstrap/bootstrap.sh' "$log/one"; then
    echo "the bootstrap script was not checked" >>"$log/one"; rc=1
  fi
  record $rc "cloud-init check $f" "$log/one"
done

echo "$passed passed, $failed failed"
((failed == 0))
