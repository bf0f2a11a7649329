#!/bin/bash
# Wait until Icinga (started by icinga-up.sh) has a check result for service $2 of host $1,
# then print one JSON object: the service's state attributes, and its performance_data as
# Icinga's metric writers parse it (parse_performance_data() through the console API).
# Runs one check through the real Icinga 2 and prints its result.
# Usage: check-run.sh HOST SERVICE [TIMEOUT_SECONDS]
set -euo pipefail
HOST=$1 SERVICE=$2 WAIT=${3:-60}
CA=$ICINGA_DIR/icinga/lib/certs/ca.crt   # cert CN is loopback.local, so use --resolve
API=https://loopback.local:5665/v1
CURL=(curl -sS --fail --cacert "$CA" --resolve loopback.local:5665:127.0.0.1 -u checker:checkerpass -H 'Accept: application/json')
NAME="$HOST!$SERVICE"
URL="$API/objects/services?service=$(jq -rn --arg n "$NAME" '$n|@uri')&attrs=last_check_result&attrs=state&attrs=state_type"

J=
for _ in $(seq 1 $((WAIT * 5))); do
  J=$("${CURL[@]}" "$URL")
  [[ $(jq -r '.results[0].attrs.last_check_result != null' <<<"$J") == true ]] && break
  J=
  sleep 0.2
done
[[ -n $J ]] || { echo "no check result for $NAME after ${WAIT}s" >&2; exit 1; }

SCRIPT="get_service(\"$HOST\", \"$SERVICE\").last_check_result.performance_data.map(p => parse_performance_data(p))"
P=$("${CURL[@]}" -X POST "$API/console/execute-script?command=$(jq -rn --arg s "$SCRIPT" '$s|@uri')" \
    | jq -c '.results[0].result')
jq -c --argjson parsed "$P" '.results[0].attrs + {parsed_perfdata: $parsed}' <<<"$J"
