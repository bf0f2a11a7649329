#!/bin/bash
# Wall time of `check_gitlab_autoscaler` (all subchecks) against the fakes with 1,000 runners
# and 1,000 VMs (release build). Usage: tests/icinga/bench.sh [RUNS]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${1:-20}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
(cd "$REPO" && cargo build -q --release -p autoscaler-check --bin check_gitlab_autoscaler --example fake_services)
DIR=$(mktemp -d)
FAKE_PID=
cleanup() { [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
mkfifo "$DIR/stdin"
"$TARGET/release/examples/fake_services" "$DIR" big < "$DIR/stdin" > "$DIR/log" 2>&1 &
FAKE_PID=$!
exec 9> "$DIR/stdin"
for _ in $(seq 1 100); do [[ -f $DIR/ready ]] && break; sleep 0.1; done
# env is written by fake_services
set -a
# shellcheck disable=SC1091
. "$DIR/env"
set +a
"$TARGET/release/check_gitlab_autoscaler" -C "$DIR/big.toml" | head -1 | cut -c1-200
for _ in $(seq 1 "$RUNS"); do
  s=$(date +%s%N)
  "$TARGET/release/check_gitlab_autoscaler" -C "$DIR/big.toml" > /dev/null || true
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
done | sort -n | awk '{a[NR]=$1} END {printf "runs=%d min=%dms median=%dms p95=%dms max=%dms (target <= 300 ms)\n", NR, a[1], a[int(NR/2)+1], a[int(NR*0.95)], a[NR]}'
