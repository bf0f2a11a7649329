#!/bin/bash
# Start a self-contained Icinga 2 (Debian bookworm icinga2-bin 2.13) under $ICINGA_DIR/icinga,
# REST API on 127.0.0.1:5665 only, without touching /etc/icinga2 or /var/lib/icinga2.
# A real Icinga 2 on loopback for the check plugin's suite; the caller puts
# its objects (*.conf) in $ICINGA_CONF and the plugins in $ICINGA_PLUGIN_DIR.
# Usage: icinga-up.sh        (starts the daemon, waits for the API; PID in icinga/icinga2.daemon.pid)
#        icinga-up.sh install (installs icinga2 from Debian if missing: creates the nagios user)
#        icinga-up.sh stop   (stops the daemon started by this script, by PID)
set -euo pipefail

ROOT=${ICINGA_DIR:-/var/tmp/icinga-loopback}; mkdir -p "$ROOT"
B=$ROOT/icinga
NODE=loopback.local
API_USER=checker
API_PASS=checkerpass
PIDFILE=$B/icinga2.daemon.pid
DEFS=(-DConfigDir="$B/etc" -DDataDir="$B/lib" -DLogDir="$B/log" -DCacheDir="$B/cache"
      -DSpoolDir="$B/spool" -DInitRunDir="$B/run" -DNodeName="$NODE")

install_icinga() {
  if ! command -v icinga2 >/dev/null; then
    # ~2.5 s (5 packages, 5.6 MB); --no-install-recommends skips monitoring-plugins-basic
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends icinga2-bin icinga2-common \
      || { apt-get -o DPkg::Lock::Timeout=900 update -qq \
           && apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends icinga2-bin icinga2-common; }
  fi
}

if [[ "${1:-}" == "stop" ]]; then
  if [[ -f $PIDFILE ]]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$PIDFILE"; echo "stopped icinga2 $pid"
  fi
  exit 0
fi

if [[ "${1:-}" == "install" ]]; then install_icinga; exit 0; fi

: "${ICINGA_CONF:?set ICINGA_CONF to a directory of *.conf object files}"
: "${ICINGA_PLUGIN_DIR:?set ICINGA_PLUGIN_DIR to the directory holding the plugin}"

install_icinga

T0=$(date +%s.%N)
rm -rf "$B"
mkdir -p "$B"/{etc/conf.d,lib,log,cache,spool,run}
cp "$ICINGA_CONF"/*.conf "$B/etc/conf.d/"

cat > "$B/etc/icinga2.conf" <<CONF
const ZoneName = NodeName
const TicketSalt = ""
const PluginDir = "$ICINGA_PLUGIN_DIR"

include <itl>        // CheckCommand templates incl. "dummy"
include <plugins>    // ITL definitions for monitoring-plugins; binaries not needed to load

object Endpoint NodeName { }
object Zone ZoneName { endpoints = [ NodeName ] }

object FileLogger "main-log" { severity = "information"; path = LogDir + "/icinga2.log" }
object CheckerComponent "checker" { }

object ApiListener "api" {
  bind_host = "127.0.0.1"
  bind_port = 5665
  ticket_salt = TicketSalt
}
object ApiUser "$API_USER" {
  password = "$API_PASS"
  // console: run parse_performance_data() as metric writers do, to assert parsed perfdata
  permissions = [ "objects/query/*", "status/query", "actions/*", "console" ]
}

include_recursive "conf.d"
CONF

# icinga2 (daemon *and* CLI) drops privileges to nagios when started as root: everything it
# writes must be owned by nagios.
chown -R nagios:nagios "$B"

# PKI: the ApiListener refuses to start without DataDir/certs/<NodeName>.{crt,key} + ca.crt
icinga2 pki new-ca "${DEFS[@]}" >/dev/null
install -d -o nagios -g nagios "$B/lib/certs"
icinga2 pki new-cert --cn "$NODE" --key "$B/lib/certs/$NODE.key" --csr "$B/lib/certs/$NODE.csr" "${DEFS[@]}" >/dev/null
icinga2 pki sign-csr --csr "$B/lib/certs/$NODE.csr" --cert "$B/lib/certs/$NODE.crt" "${DEFS[@]}" >/dev/null
cp "$B/lib/ca/ca.crt" "$B/lib/certs/ca.crt"; chown nagios:nagios "$B/lib/certs/ca.crt"
T1=$(date +%s.%N)

icinga2 daemon -C -c "$B/etc/icinga2.conf" "${DEFS[@]}" > "$B/validate.log" 2>&1 \
  || { cat "$B/validate.log"; exit 1; }
T2=$(date +%s.%N)

# Foreground daemon, backgrounded by the shell so we own its PID.
icinga2 daemon -c "$B/etc/icinga2.conf" "${DEFS[@]}" > "$B/daemon.out" 2>&1 &
echo $! > "$PIDFILE"

for _ in $(seq 1 100); do
  if curl -sk -u "$API_USER:$API_PASS" https://127.0.0.1:5665/v1/status/IcingaApplication >/dev/null 2>&1; then break; fi
  sleep 0.1
done
T3=$(date +%s.%N)
curl -skf -u "$API_USER:$API_PASS" https://127.0.0.1:5665/v1/status/IcingaApplication \
  | jq -c '.results[0].status.icingaapplication.app | {version, node_name, pid}'
printf 'timing: pki=%.2fs validate=%.2fs api-ready=%.2fs total=%.2fs\n' \
  "$(echo "$T1-$T0"|bc)" "$(echo "$T2-$T1"|bc)" "$(echo "$T3-$T2"|bc)" "$(echo "$T3-$T0"|bc)" | tee "$B/timing.txt"
echo "daemon pid $(cat "$PIDFILE")"
