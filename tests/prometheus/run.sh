#!/bin/bash
# The shipped alerting rules and Grafana dashboard, proven in a real Prometheus on loopback:
#
# 1. `promtool check rules` on packaging/prometheus/autoscaler-alerts.yml and
#    `promtool test rules` on tests/prometheus/autoscaler-alerts.test.yml (every alert, with
#    a firing and a not-firing case);
# 2. a real `autoscaler run --dev` (built with `--features dev`: the real controller against
#    the HTTP fakes on 127.0.0.1, fed from the built-in trace) scraped by a real Prometheus
#    (its own config and data dir in a temp dir, 1 s scrape and evaluation intervals) loaded
#    with a TEST COPY of the shipped rules in which every `for:` is shortened to 5s (the
#    expressions and thresholds are the shipped ones);
# 3. faults injected through run --dev's fault control: a boot-failure storm
#    (AutoscalerBootCircuitOpen must fire, then resolve once boots succeed again), GitLab
#    down (AutoscalerGitLabUnreadable must fire, then resolve), and the controller killed
#    (AutoscalerDown must fire); alert states are read from /api/v1/alerts;
# 4. every PromQL expression of packaging/grafana/autoscaler-dashboard.json run through
#    /api/v1/query against the live data: each must succeed and every metric it names must
#    exist in the scrape.
#
# Needs root for apt (prometheus, curl, jq, python3). Bounded: each wait has a timeout; the
# whole suite takes about 3 minutes after the build. Prints "N passed, M failed".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RULES=$REPO/packaging/prometheus/autoscaler-alerts.yml
DASHBOARD=$REPO/packaging/grafana/autoscaler-dashboard.json
SPEED=20   # run --dev replay speed; the dev backoff and breaker cooldown scale with it (45 s)
T0=$SECONDS

need=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
for tool in curl jq python3; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [[ ${#need[@]} -gt 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${need[@]}"
fi
echo "$(prometheus --version 2>&1 | head -1)"

passed=0 failed=0
pass() { passed=$((passed+1)); echo "PASS: $*"; }
fail() { failed=$((failed+1)); echo "FAIL: $*"; }

# --- 1. promtool ------------------------------------------------------------------------
if promtool check rules "$RULES"; then pass "promtool check rules"; else fail "promtool check rules"; fi
if (cd "$HERE" && promtool test rules autoscaler-alerts.test.yml); then pass "promtool test rules (every alert firing and not firing)"
else fail "promtool test rules"; fi
# Every alert of the rules file has a unit test and a runbook section.
for a in $(sed -n 's/^ *- alert: //p' "$RULES"); do
  grep -q "alertname: $a\$" "$HERE/autoscaler-alerts.test.yml" && pass "$a has unit tests" || fail "$a has no unit test"
  grep -qi "^#### $a\$" "$REPO/docs/operations.md" && pass "$a has a runbook in docs/operations.md" || fail "$a has no runbook"
done

# --- 2. build, controller, Prometheus ---------------------------------------------------
echo "building autoscaler with --features dev"
(cd "$REPO" && env -u CARGO_TARGET_DIR cargo build -q -p autoscaler --features dev --bin autoscaler)
BIN=$REPO/target/debug/autoscaler

WORK=$(mktemp -d /tmp/autoscaler-prometheus.XXXXXX)
CTL_PID= PROM_PID=
cleanup() {
  [[ -n $CTL_PID ]] && kill "$CTL_PID" 2>/dev/null || true
  [[ -n $PROM_PID ]] && kill "$PROM_PID" 2>/dev/null || true
  [[ -n $CTL_PID ]] && wait "$CTL_PID" 2>/dev/null || true
  [[ -n $PROM_PID ]] && wait "$PROM_PID" 2>/dev/null || true
  if [[ $failed -gt 0 || -n ${KEEP:-} ]]; then
    echo "--- controller log (tail)"; tail -n 40 "$WORK/controller.log" 2>/dev/null || true
    echo "--- prometheus log (tail)"; tail -n 20 "$WORK/prometheus.log" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" run --dev --speed "$SPEED" --duration 8m > "$WORK/controller.out" 2> "$WORK/controller.log" &
CTL_PID=$!
CTL= FAULT=
for _ in $(seq 1 100); do
  CTL=$(sed -n 's|^controller *http://\([0-9.:]*\)/status.*|\1|p' "$WORK/controller.log")
  FAULT=$(sed -n 's|^fault control *\(http://[0-9.:]*\)/fault/.*|\1|p' "$WORK/controller.log")
  [[ -n $CTL && -n $FAULT ]] && break
  sleep 0.2
done
[[ -n $CTL && -n $FAULT ]] || { fail "run --dev printed its controller and fault-control addresses"; exit 1; }
[[ $CTL == 127.0.0.1:* && $FAULT == http://127.0.0.1:* ]] || { fail "loopback only ($CTL, $FAULT)"; exit 1; }
echo "controller $CTL, fault control $FAULT"

# The test copy of the rules: shipped expressions, every `for:` shortened to 5s.
mkdir -p "$WORK/data"
sed -E 's/^( *)for: .*/\1for: 5s/' "$RULES" > "$WORK/autoscaler-alerts.test-copy.yml"
PROM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $WORK/autoscaler-alerts.test-copy.yml
scrape_configs:
  - job_name: autoscaler
    scrape_timeout: 1s
    static_configs:
      - targets: ["$CTL"]
CONF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
API=http://127.0.0.1:$PROM_PORT
for _ in $(seq 1 100); do curl -fsS "$API/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$API/-/ready" >/dev/null || { fail "prometheus ready"; exit 1; }

query() { curl -fsS --get "$API/api/v1/query" --data-urlencode "query=$1"; }
value() { query "$1" | jq -r '.data.result[0].value[1] // empty'; }
# alert_state NAME: firing, pending or none.
alert_state() {
  curl -fsS "$API/api/v1/alerts" | jq -r --arg a "$1" \
    '[.data.alerts[] | select(.labels.alertname == $a) | .state] | if index("firing") then "firing" elif index("pending") then "pending" else "none" end'
}
# wait_for DESCRIPTION TIMEOUT COMMAND...: polls every second until COMMAND succeeds.
wait_for() {
  local what=$1 limit=$2 start=$SECONDS; shift 2
  while (( SECONDS - start < limit )); do
    if "$@"; then pass "$what (after $((SECONDS - start)) s)"; return 0; fi
    sleep 1
  done
  fail "$what (not within $limit s)"; return 1
}
is_state() { [[ $(alert_state "$1") == "$2" ]]; }
controller_up() { kill -0 "$CTL_PID" 2>/dev/null && [[ $(value 'up{job="autoscaler"}') == 1 ]]; }
fault() { curl -fsS -X POST "$FAULT/fault/$1" >/dev/null; }

wait_for "Prometheus scrapes the controller (up == 1)" 30 controller_up
wait_for "the controller ticks (autoscaler_api_up present for both services)" 30 \
  bash -c "[[ \$(curl -fsS --get '$API/api/v1/query' --data-urlencode 'query=count(autoscaler_api_up == 1)' | jq -r '.data.result[0].value[1] // 0') == 2 ]]"
for a in AutoscalerBootCircuitOpen AutoscalerGitLabUnreadable AutoscalerDown; do
  is_state "$a" none && pass "$a not active before any fault" || fail "$a active before any fault ($(alert_state "$a"))"
done

# --- 3a. boot-failure storm -------------------------------------------------------------
echo "fault: boot failures (every new server goes to ERROR)"
fault boot-failures
wait_for "AutoscalerBootCircuitOpen firing during the boot-failure storm" 150 is_state AutoscalerBootCircuitOpen firing
[[ $(value 'max_over_time(autoscaler_vms{state="failed"}[5m])') -ge 1 ]] 2>/dev/null \
  && pass "failed VMs seen in autoscaler_vms{state=\"failed\"} during the storm" \
  || fail "no failed VM seen in autoscaler_vms during the storm"
echo "AutoscalerVMsFailed during the storm: $(alert_state AutoscalerVMsFailed) (failed VMs are deleted within a tick or two; not asserted)"
echo "fault cleared: boots succeed"
fault boot-ok
wait_for "AutoscalerBootCircuitOpen resolved after boots succeed again" 150 is_state AutoscalerBootCircuitOpen none
controller_up && pass "controller still up and scraped when the breaker alert resolved" || fail "controller gone: the resolution proves nothing"

# --- 3b. GitLab down --------------------------------------------------------------------
echo "fault: GitLab answers 503"
fault gitlab-down
wait_for "AutoscalerGitLabUnreadable firing while GitLab is down" 90 is_state AutoscalerGitLabUnreadable firing
is_state AutoscalerOpenStackUnreadable none && pass "AutoscalerOpenStackUnreadable stays quiet while only GitLab is down" \
  || fail "AutoscalerOpenStackUnreadable active while OpenStack is fine"
echo "fault cleared: GitLab answers"
fault gitlab-up
wait_for "AutoscalerGitLabUnreadable resolved after GitLab is back" 90 is_state AutoscalerGitLabUnreadable none
controller_up && pass "controller still up and scraped when the GitLab alert resolved" || fail "controller gone: the resolution proves nothing"

# --- 4. the dashboard's queries -----------------------------------------------------------
python3 - "$DASHBOARD" > "$WORK/exprs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["panels"]:
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "1m").replace('instance=~"$instance"', 'instance=~".*"')
        print(p["title"] + "\t" + e)
PY
nq=0
while IFS=$'\t' read -r title expr; do
  nq=$((nq+1))
  r=$(query "$expr" 2>/dev/null) || { fail "dashboard '$title': query failed: $expr"; continue; }
  [[ $(jq -r .status <<<"$r") == success ]] || { fail "dashboard '$title': $(jq -r .error <<<"$r")"; continue; }
  missing=()
  for m in $(grep -oE '\b(autoscaler_[a-z_]+|up)\b' <<<"$expr" | sort -u); do
    [[ $(value "count({__name__=\"$m\"})") -ge 1 ]] 2>/dev/null || missing+=("$m")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then pass "dashboard '$title': $(jq '.data.result | length' <<<"$r") series; every metric exists: ${expr:0:90}"
  else fail "dashboard '$title': unknown metric(s) ${missing[*]} in $expr"; fi
done < "$WORK/exprs"
[[ $nq -ge 10 ]] && pass "$nq dashboard queries checked" || fail "only $nq dashboard queries found"

# --- 3c. controller down ------------------------------------------------------------------
echo "fault: the controller is killed"
kill "$CTL_PID"; wait "$CTL_PID" 2>/dev/null || true; CTL_PID=
wait_for "AutoscalerDown firing once the controller is gone" 60 is_state AutoscalerDown firing

echo "suite time: $((SECONDS - T0)) s"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
