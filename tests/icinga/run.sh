#!/bin/bash
# End-to-end test of check_gitlab_autoscaler in a real Icinga 2 on loopback:
# builds the plugin, starts local fakes (GitLab, Keystone/Nova, controller /status), runs the
# plugin through the shipped CheckCommand (check-plugin/icinga/check_gitlab_autoscaler.conf)
# for OK, WARNING, CRITICAL, UNKNOWN and a timeout, reads state, output and parsed
# performance data back from Icinga's REST API and asserts them.
# Needs root (apt, icinga2 drops to nagios), curl, jq, bc. Prints "N passed, M failed".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export ICINGA_DIR=${ICINGA_DIR:-/var/tmp/icinga-check-plugin}
export ICINGA_CONF=$ICINGA_DIR/conf
export ICINGA_PLUGIN_DIR=$ICINGA_DIR/plugins
FAKES=$ICINGA_DIR/fakes
TOKEN_FILE=$FAKES/env
HOST=autoscaler

for tool in curl jq bc; do
  command -v "$tool" >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$tool"
  }
done

# --- build (default target dir, as CI does) ---------------------------------------------
echo "building the plugin and the fakes"
(cd "$REPO" && env -u CARGO_TARGET_DIR cargo build -q -p autoscaler-check \
   --bin check_gitlab_autoscaler --example fake_services)
BIN=$REPO/target/debug

FAKE_PID=
cleanup() {
  "$HERE/icinga-up.sh" stop >/dev/null 2>&1 || true
  if [[ -n $FAKE_PID ]]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

rm -rf "$ICINGA_DIR"; mkdir -p "$ICINGA_CONF" "$ICINGA_PLUGIN_DIR" "$FAKES"
install -m 755 "$BIN/check_gitlab_autoscaler" "$ICINGA_PLUGIN_DIR/"

# --- fakes: one per scenario, each with its own controller config -------------------------
mkfifo "$FAKES/stdin"
"$BIN/examples/fake_services" "$FAKES" ok warning critical unknown timeout \
  < "$FAKES/stdin" > "$FAKES/fakes.log" 2>&1 &
FAKE_PID=$!
exec 9> "$FAKES/stdin"   # hold the fifo open; the fakes stop when it closes
for _ in $(seq 1 100); do [[ -f $FAKES/ready ]] && break; sleep 0.1; done
[[ -f $FAKES/ready ]] || { cat "$FAKES/fakes.log"; echo "fakes did not start"; exit 1; }
TOKEN=$(sed -n 's/^FAKE_GITLAB_TOKEN=//p' "$TOKEN_FILE")
OS_PASS=$(sed -n 's/^OS_PASSWORD=//p' "$TOKEN_FILE")
# icinga2 brings the nagios user the files must belong to: install it first (fresh machine).
"$HERE/icinga-up.sh" install
chown -R nagios:nagios "$ICINGA_DIR"

# --- Icinga objects: the shipped CheckCommand plus one service per scenario ---------------
cp "$REPO/check-plugin/icinga/check_gitlab_autoscaler.conf" "$ICINGA_CONF/"
{
  cat <<CONF
object Host "$HOST" {
  address = "127.0.0.1"
  check_command = "dummy"
  vars.dummy_state = 0
  check_interval = 1m
  vars.gitlab_autoscaler_token = "$TOKEN"
  vars.gitlab_autoscaler_os_password = "$OS_PASS"
}
template Service "autoscaler-test" {
  host_name = "$HOST"
  check_command = "gitlab_autoscaler"
  check_interval = 2s
  retry_interval = 2s
  max_check_attempts = 1
}
CONF
  for s in ok warning critical unknown timeout; do
    echo "object Service \"$s\" { import \"autoscaler-test\"; vars.gitlab_autoscaler_config = \"$FAKES/$s.toml\""
    [[ $s == timeout ]] && echo '  vars.gitlab_autoscaler_timeout = 2'
    [[ $s == warning ]] && echo '  vars.gitlab_autoscaler_warning = [ "jobs_pending=5" ]'
    echo "}"
  done
} > "$ICINGA_CONF/services.conf"

"$HERE/icinga-up.sh"

# --- read back and assert -----------------------------------------------------------------
passed=0 failed=0
check() { # service json, description, jq expression that must be true
  if jq -e "$3" >/dev/null <<<"$1"; then passed=$((passed+1)); echo "PASS: $2"
  else failed=$((failed+1)); echo "FAIL: $2"; echo "  expected: $3"; fi
}
R=.last_check_result
perf() { echo "($R.performance_data | map(select(startswith(\"$1=\"))) | .[0])"; }
parsed() { echo "(.parsed_perfdata | map(select(.label == \"$1\")) | .[0])"; }
common() { # json, service, state
  local j=$1 s=$2 st=$3
  check "$j" "$s: exit_status $st" "$R.exit_status == $st"
  check "$j" "$s: state $st, HARD" "$R.state == $st and .state == $st and .state_type == 1"
  check "$j" "$s: token not in argv" "($R.command | tostring | contains(\"$TOKEN\")) | not"
  check "$j" "$s: token and password not in output" "($R.output | contains(\"$TOKEN\") or contains(\"$OS_PASS\")) | not"
  check "$j" "$s: -C from the CheckCommand vars" "$R.command | index(\"-C\") != null"
}

declare -A LABEL=([0]=OK [1]=WARNING [2]=CRITICAL [3]=UNKNOWN)
for entry in ok:0 warning:1 critical:2 unknown:3 timeout:3; do
  s=${entry%%:*} st=${entry##*:}
  J=$("$HERE/check-run.sh" "$HOST" "$s" 60) || { failed=$((failed+1)); echo "FAIL: $s: no result"; continue; }
  echo "--- $s: $(jq -c "{exit: $R.exit_status, state: $R.state, perf: ($R.performance_data | length)}" <<<"$J")"
  jq -r "$R.output" <<<"$J" | head -3 | cut -c1-220 | sed 's/^/    /'
  common "$J" "$s" "$st"
  check "$J" "$s: first line is the ${LABEL[$st]} summary" \
    "$R.output | split(\"\n\")[0] | startswith(\"GITLAB AUTOSCALER ${LABEL[$st]} - \")"
  case $s in
    ok)
      direct=$(GITLAB_AUTOSCALER_TOKEN=$TOKEN OS_PASSWORD=$OS_PASS "$ICINGA_PLUGIN_DIR/check_gitlab_autoscaler" \
                 -C "$FAKES/ok.toml" | head -1 | sed 's/^.* | //' | wc -w) || true
      check "$J" "ok: Icinga parsed all $direct perfdata items the plugin prints" "($R.performance_data | length) == $direct and $direct >= 25"
      check "$J" "ok: parse_performance_data() accepts every item" "(.parsed_perfdata | length) == ($R.performance_data | length)"
      check "$J" "ok: runners_offline raw" "$(perf runners_offline) == \"runners_offline=0;0;2;0\""
      check "$J" "ok: parsed runners_offline value/warn/crit/min" \
        "$(parsed runners_offline) | .value == 0 and .warn == 0 and .crit == 2 and .min == 0"
      check "$J" "ok: parsed pending_age in seconds with thresholds" \
        "$(parsed pending_age) | .value == 30 and .unit == \"seconds\" and .warn == 900 and .crit == 3600"
      check "$J" "ok: parsed docker_vms carries the pool limit as max" "$(parsed docker_vms) | .value == 6 and .max == 24"
      check "$J" "ok: range threshold 0: is dropped by Icinga (documented)" "$(parsed vms_limit_headroom) | .crit == null"
      check "$J" "ok: long output lists every subcheck" \
        "$R.output | contains(\"[OK] controller:\") and contains(\"[OK] runners:\") and contains(\"[OK] vms:\") and contains(\"[OK] queue:\")" ;;
    warning)
      check "$J" "warning: offender named with id, status and contact age" \
        "$R.output | test(\"runner 1003 ci-docker-0003: offline, last contact 3h [0-9]+m ago\")"
      check "$J" "warning: parsed runners_offline 1 against 0/2" "$(parsed runners_offline) | .value == 1 and .warn == 0 and .crit == 2"
      check "$J" "warning: -w array from vars reaches the plugin" "$(perf jobs_pending) == \"jobs_pending=2;5;;0\""
      check "$J" "warning: old pending job named" "$R.output | test(\"job 502 \\\\(project 43, pool arm\\\\): pending for 2[0-9]m\")" ;;
    critical)
      check "$J" "critical: ERROR servers named with fault" "$R.output | contains(\"server ci-docker-0001 (00000000-0000-0000-0000-000000000001): ERROR, age\")"
      check "$J" "critical: '|' in a Nova fault does not split the output" "$R.output | contains(\"Build of instance aborted / retry\")"
      check "$J" "critical: parsed vms_error 3 over crit 2" "$(parsed vms_error) | .value == 3 and .crit == 2"
      check "$J" "critical: controller down is critical" "$R.output | contains(\"[CRITICAL] controller: no heartbeat: \")" ;;
    unknown)
      check "$J" "unknown: refused token named" "$R.output | contains(\"HTTP 401 (token refused)\")"
      check "$J" "unknown: controller still judged" "$R.output | contains(\"[OK] controller:\")" ;;
    timeout)
      check "$J" "timeout: plugin's own -t fired, naming the stage" \
        "$R.output | startswith(\"GITLAB AUTOSCALER UNKNOWN - timed out after 2s; stage reached: \")"
      check "$J" "timeout: stage names the GitLab call in flight" "$R.output | contains(\"gitlab runners: listing runners\")"
      check "$J" "timeout: no perfdata" "($R.performance_data | length) == 0"
      check "$J" "timeout: finished well before Icinga's 30s timeout" "($R.execution_end - $R.execution_start) < 5" ;;
  esac
done

# The docs must show exactly the shipped CheckCommand.
if python3 - "$REPO/check-plugin/icinga/check_gitlab_autoscaler.conf" "$REPO/docs/icinga.md" <<'PY'
import sys
conf = open(sys.argv[1]).read().strip()
sys.exit(0 if conf in open(sys.argv[2]).read() else 1)
PY
then passed=$((passed+1)); echo "PASS: docs/icinga.md shows the shipped CheckCommand verbatim"
else failed=$((failed+1)); echo "FAIL: docs/icinga.md differs from check-plugin/icinga/check_gitlab_autoscaler.conf"; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
