#!/bin/bash
# Offline validation of cloud-init user-data with Debian bookworm's cloud-init 22.4.2.
# Runs cloud-init's own schema validator on rendered user-data; owned by the bootstrap crate.
#
# Usage: ./cloudinit-check.sh                -> self-test on the example documents in examples/
#                                               (exits non-zero if any gives the wrong verdict)
#        ./cloudinit-check.sh FILE [FILE...] -> validates the given user-data files
#           (a #cloud-config YAML, or a multipart MIME built by `cloud-init devel make-mime`)
# Exit 0 only if every file passes:
#   - cloud-init's schema (`cloud-init schema -c`),
#   - a strict top-level key check (22.4.2's schema lets typos such as `pakages:` through),
#   - `sh -n` (or `bash -n`) on every shell part: MIME x-shellscript parts, and
#     write_files entries whose content starts with `#!`,
#   - shellcheck on the same shell parts when shellcheck is installed; with
#     CLOUDINIT_CHECK_SHELLCHECK=required a missing shellcheck is a failure.
# Installs cloud-init through apt when it is missing (root only).
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd)/examples
PY=/usr/bin/python3          # cloud-init's python modules live in Debian's python3, not pyenv's

if ! command -v cloud-init >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get -o DPkg::Lock::Timeout=900 update &&
         apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends cloud-init; }; then
    echo "cloudinit-check: cannot install cloud-init" >&2; exit 2
  fi
fi
[[ -x $PY ]] || { echo "cloudinit-check: $PY is missing" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Strict extra check: 22.4.2's schema has no top-level additionalProperties=false, so a typo
# like "pakages:" passes `cloud-init schema`. Compare top-level keys with every key the schema knows.
strict_keys() {
  "$PY" - "$1" <<'PYEOF'
import sys, yaml
from cloudinit.config.schema import get_schema
schema = get_schema()
known = set()
def walk(node):
    if isinstance(node, dict):
        known.update(node.get("properties", {}).keys())
        for k in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(k, []):
                walk(sub)
        ref = node.get("$ref")
        if ref and ref.startswith("#/$defs/"):
            walk(schema["$defs"][ref.split("/")[-1]])
walk(schema)
# valid keys that 22.4.2's schema does not describe (system/merge/datasource config)
known.update({"merge_how", "merge_type", "system_info", "datasource", "datasource_list",
              "network", "reporting", "vendor_data2"})
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
if doc is None:
    doc = {}
if not isinstance(doc, dict):
    print("top level is a %s, not a mapping of cloud-config keys" % type(doc).__name__); sys.exit(1)
unknown = sorted(str(k) for k in doc if k not in known)
if unknown:
    print("unknown top-level keys: %s" % ", ".join(unknown)); sys.exit(1)
print("top-level keys all known (%d keys in schema)" % len(known))
PYEOF
}

check_shell() { # file [label]: syntax check with the interpreter its #! names, then shellcheck
  local f=$1 label=${2:-$1} rc=0 r shell=sh
  head -n 1 "$f" | grep -q 'bash' && shell=bash
  echo "\$ $shell -n $label"; "$shell" -n "$f"; r=$?; echo "-> rc=$r"; ((r)) && rc=1
  if command -v shellcheck >/dev/null; then
    echo "\$ shellcheck $label"; shellcheck "$f"; r=$?; echo "-> rc=$r"; ((r)) && rc=1
  elif [[ ${CLOUDINIT_CHECK_SHELLCHECK:-} == required ]]; then
    echo "shellcheck is required but not installed"; rc=1
  fi
  return $rc
}

# write_files entries whose content starts with "#!" are scripts: check them like MIME parts.
check_embedded_scripts() { # file
  local f=$1 dir rc=0 s path
  dir=$(mktemp -d -p "$WORK")
  "$PY" - "$f" "$dir" >"$dir/list" <<'PYEOF' || return 1
import os, sys, yaml
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
files = (doc.get("write_files") or []) if isinstance(doc, dict) else []
for i, entry in enumerate(files):
    content = entry.get("content") if isinstance(entry, dict) else None
    if isinstance(content, str) and content.startswith("#!"):
        name = os.path.join(sys.argv[2], "%02d.sh" % i)
        with open(name, "w") as out:
            out.write(content)
        print("%s\t%s" % (name, entry.get("path")))
PYEOF
  while IFS=$'\t' read -r s path; do
    check_shell "$s" "write_files:$path" || rc=1
  done <"$dir/list"
  return $rc
}

check_cloud_config() { # file
  local f=$1 rc=0 r
  echo "\$ cloud-init schema -c $f"; cloud-init schema -c "$f"; r=$?; echo "-> rc=$r"; ((r)) && rc=1
  if ((r == 0)); then
    echo "\$ strict_keys $f"; strict_keys "$f"; r=$?; echo "-> rc=$r"; ((r)) && rc=1
    check_embedded_scripts "$f" || rc=1
  fi
  return $rc
}

check_file() { # file: cloud-config or MIME multipart
  local f=$1 start
  [[ -r $f ]] || { echo "cannot read $f"; return 1; }
  start=$(head -c 200 "$f")
  if grep -qi '^Content-Type: multipart/' <<<"$start"; then
    local out; out=$(mktemp -d -p "$WORK")
    # split the MIME parts with the stdlib email parser (what cloud-init does at boot)
    "$PY" - "$f" "$out" <<'PYEOF' || return 1
import email, sys, os
with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f)
for i, part in enumerate(p for p in msg.walk() if not p.is_multipart()):
    ctype = part.get_content_type()
    name = os.path.join(sys.argv[2], "%02d.%s" % (i, ctype.replace("/", "_")))
    with open(name, "wb") as out:
        out.write(part.get_payload(decode=True))
    print(name)
PYEOF
    local rc=0 p
    for p in "$out"/*; do
      case "$p" in
        *text_cloud-config) check_cloud_config "$p" || rc=1 ;;
        *text_x-shellscript*) check_shell "$p" || rc=1 ;;
        *) echo "part $p: not validated" ;;
      esac
    done
    return $rc
  fi
  check_cloud_config "$f"
}

if (($#)); then
  rc=0; for f in "$@"; do echo "=== $f"; check_file "$f" || rc=1; done; exit $rc
fi

# ---- self-test (example documents): each must get the expected verdict ----
cp "$D"/* "$WORK"/
cd "$WORK" || exit 2
cloud-init devel make-mime -a valid.yaml:cloud-config -a script.sh:x-shellscript > user-data.mime
cloud-init devel make-mime -a typo.yaml:cloud-config -a script.sh:x-shellscript > user-data-typo.mime
bad=0
for pair in valid.yaml:0 typo.yaml:1 badtype.yaml:1 noheader.yaml:1 badyaml.yaml:1 \
            badscript.yaml:1 user-data.mime:0 user-data-typo.mime:1; do
  f=${pair%:*} want=${pair#*:}
  echo "=== $f"; check_file "$f"; got=$?
  echo "=== overall $f rc=$got (expected $want)"
  ((got == want)) || { echo "!!! wrong verdict for $f"; bad=1; }
done
if command -v shellcheck >/dev/null; then   # a script with sh -n clean but shellcheck warnings
  echo "=== lintscript.yaml"; check_file lintscript.yaml; got=$?
  echo "=== overall lintscript.yaml rc=$got (expected 1)"
  ((got == 1)) || { echo "!!! wrong verdict for lintscript.yaml"; bad=1; }
fi
echo "=== raw: cloud-init schema -c user-data.mime (MIME is not understood by 22.4.2)"
cloud-init schema -c user-data.mime; echo "-> rc=$?"
((bad == 0)) && echo "self-test: every example got its expected verdict"
exit $bad
